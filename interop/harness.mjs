// Process harness shared by the interop client tests and the conformance runner:
// starts the strict fake provider (`fake-llm`) and the real `converse-server`
// binary on loopback, and makes sure every process it started is gone when the
// Node process ends, whatever the outcome.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const INTEROP_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(INTEROP_DIR, '..');

/** The key the fake demands and the server is given. Not a secret. */
export const FAKE_API_KEY = 'test-key';

function targetDir() {
  const t = process.env.CARGO_TARGET_DIR;
  if (!t) return join(REPO_ROOT, 'target');
  // cargo resolves a relative CARGO_TARGET_DIR against its working directory;
  // run.sh and the Makefile run cargo from the repository root.
  return isAbsolute(t) ? t : resolve(REPO_ROOT, t);
}

function binary(envVar, name) {
  const path = process.env[envVar] || join(targetDir(), 'debug', name);
  if (!existsSync(path)) {
    throw new Error(
      `${name} not found at ${path}: build it with \`cargo build -p converse-server -p converse-fake-llm\` ` +
        `or set ${envVar}`
    );
  }
  return path;
}

export const serverBin = () => binary('CONVERSE_SERVER_BIN', 'converse-server');
export const fakeBin = () => binary('FAKE_LLM_BIN', 'fake-llm');

// ---------------------------------------------------------------------------
// Child bookkeeping: whatever happens, nothing started here outlives us.

const children = new Set();

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function killAllNow() {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

process.once('exit', killAllNow);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    killAllNow();
    process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 })[signal]);
  });
}

/** Stops one child: SIGTERM, then SIGKILL after `graceMs`. Resolves once it exited. */
export function stop(child, graceMs = 3000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      done();
    });
    child.kill('SIGTERM');
  });
}

/** Stops every child this process started (newest first). */
export async function stopAll() {
  for (const child of [...children].reverse()) await stop(child);
}

// ---------------------------------------------------------------------------

const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * Spawns a process and resolves with the first match of `pattern` on the given
 * stream ('stdout' or 'stderr'). Everything the process prints is kept (the
 * last 200 lines) for error messages, and both pipes keep being drained.
 */
function spawnAndWait(cmd, args, { env, stream, pattern, what, timeoutMs = 30000 }) {
  const child = track(spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  const log = [];
  const remember = (chunk) => {
    for (const line of chunk.toString().split('\n')) {
      if (line.trim()) log.push(line.replace(ANSI, ''));
    }
    if (log.length > 200) log.splice(0, log.length - 200);
  };
  child.log = log;
  return new Promise((resolveStart, rejectStart) => {
    let buffer = '';
    let settled = false;
    const fail = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      rejectStart(new Error(`${what} ${why}:\n${log.join('\n')}`));
    };
    const timer = setTimeout(() => fail(`did not start within ${timeoutMs} ms`), timeoutMs);
    child.on('error', (e) => fail(`could not be spawned (${e.message})`));
    child.once('exit', (code, signal) => fail(`exited (code ${code}, signal ${signal}) before it was ready`));
    child.stdout.on('data', remember);
    child.stderr.on('data', remember);
    child[stream].on('data', (chunk) => {
      if (settled) return;
      buffer += chunk.toString().replace(ANSI, '');
      const m = buffer.match(pattern);
      if (m) {
        settled = true;
        clearTimeout(timer);
        resolveStart({ child, match: m });
      }
    });
  });
}

/** Starts `fake-llm` on a free loopback port. Returns `{ child, base }`. */
export async function startFake() {
  const { child, match } = await spawnAndWait(
    fakeBin(),
    ['--listen', '127.0.0.1:0', '--api-key', FAKE_API_KEY],
    {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', RUST_LOG: 'warn' },
      stream: 'stdout',
      pattern: /Listening on (http:\/\/127\.0\.0\.1:\d+)/,
      what: 'fake-llm'
    }
  );
  return { child, base: match[1] };
}

/**
 * The server's environment, built from nothing (no provider key or other
 * setting of the developer's shell leaks in): OpenAI and Anthropic point at the
 * fake, authentication is off, the listener is loopback only.
 */
export function serverEnv(fakeBase, extra = {}) {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LOG_LEVEL: 'info',
    MCP_AUTH_STRATEGY: 'none',
    CONVERSE_ENV_FILE: '/dev/null', // never a developer's .env
    HTTP_HOST: '127.0.0.1',
    OPENAI_API_KEY: FAKE_API_KEY,
    OPENAI_BASE_URL: `${fakeBase}/v1`,
    ANTHROPIC_API_KEY: FAKE_API_KEY,
    ANTHROPIC_BASE_URL: fakeBase,
    GOOGLE_API_KEY: FAKE_API_KEY,
    GOOGLE_BASE_URL: fakeBase,
    PROVIDER_MAX_RETRIES: '0',
    ...extra
  };
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

/** Spawns converse-server with `env` and waits for its `serving MCP on …/mcp` line. */
function spawnServer(env, port) {
  return spawnAndWait(serverBin(), [], {
    env: { ...env, HTTP_PORT: String(port) },
    stream: 'stderr',
    pattern: /serving MCP on (http:\/\/\S+\/mcp)/,
    what: 'converse-server'
  }).then(({ child, match }) => ({ child, url: match[1], port: port || Number(new URL(match[1]).port) }));
}

const LOST_PORT_RACE = /cannot listen|address already in use/i;

/**
 * Starts `converse-server` over HTTP and waits for its `serving MCP on …/mcp`
 * line. Returns `{ child, url }`. HTTP_PORT=0 lets the server pick a free port;
 * a build that refuses 0 gets a port chosen here instead (a lost race for it
 * is retried).
 */
export async function startServer(env) {
  try {
    return await spawnServer(env, 0);
  } catch (e) {
    if (!/HTTP_PORT: invalid value "0"/.test(e.message)) throw e;
  }
  return startServerAt(() => env);
}

/**
 * Starts `converse-server` on a port chosen here, for configurations that name
 * the server's own address before it starts (`MCP_PUBLIC_URL`): `makeEnv(port)`
 * builds the environment for that port. A lost race for the port is retried
 * with another one. Returns `{ child, url, port }`.
 */
export async function startServerAt(makeEnv) {
  let lastError;
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    try {
      return await spawnServer(makeEnv(port), port);
    } catch (e) {
      lastError = e;
      if (!LOST_PORT_RACE.test(e.message)) throw e;
    }
  }
  throw lastError;
}
