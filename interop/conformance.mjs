// Runs the official MCP conformance suite (@modelcontextprotocol/conformance)
// against the real converse-server binary, once per protocol revision the
// server implements, with interop/conformance-baseline.yml as the baseline of
// expected failures. Needs Node >= 22 (run.sh uses the one from node_modules).
//
//   node conformance.mjs                      # both revisions
//   node conformance.mjs 2026-07-28           # one
//
// Results (the suite's checks.json per scenario plus the full console output)
// go to interop/results/conformance/<revision>/ (gitignored). Exit status 1 when
// any run has a failure the baseline does not list, or a baseline entry that
// now passes (stale), exactly as the suite itself decides.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { INTEROP_DIR, serverEnv, startFake, startServer, stopAll } from './harness.mjs';

const REVISIONS = ['2025-11-25', '2026-07-28'];
const PKG = join(INTEROP_DIR, 'node_modules', '@modelcontextprotocol', 'conformance');
const CLI = join(PKG, 'dist', 'index.js');
const BASELINE = join(INTEROP_DIR, 'conformance-baseline.yml');
const RESULTS = join(INTEROP_DIR, 'results', 'conformance');
const ANSI = /\x1b\[[0-9;]*m/g;

const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  console.error(`conformance: needs Node >= 22, this is ${process.version} (use interop/node_modules/node/bin/node)`);
  process.exit(2);
}
if (!existsSync(CLI)) {
  console.error(`conformance: ${CLI} missing; run npm ci in interop/`);
  process.exit(2);
}

const wanted = process.argv.slice(2);
for (const rev of wanted) {
  if (!REVISIONS.includes(rev)) {
    console.error(`conformance: unknown revision ${rev}; known: ${REVISIONS.join(', ')}`);
    process.exit(2);
  }
}
const revisions = wanted.length ? wanted : REVISIONS;

function runCli(args, logFile) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: INTEROP_DIR,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe']
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      out = out.replace(ANSI, '');
      writeFileSync(logFile, out);
      resolve({ code: code ?? 128, signal, out });
    });
  });
}

/** The lines of a section the suite prints after its baseline evaluation. */
function section(out, heading) {
  const lines = out.split('\n');
  const start = lines.findIndex((l) => l.startsWith(heading));
  if (start < 0) return [];
  const entries = [];
  for (const line of lines.slice(start + 1)) {
    const m = line.match(/^ {2}[~✓✗] (.+)$/);
    if (!m) break;
    entries.push(m[1].trim());
  }
  return entries;
}

/** scenario name -> checks, from the suite's per-scenario result folders. */
function readChecks(dir) {
  const byScenario = new Map();
  if (!existsSync(dir)) return byScenario;
  for (const entry of readdirSync(dir)) {
    const m = entry.match(/^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/);
    const file = join(dir, entry, 'checks.json');
    if (!m || !existsSync(file)) continue;
    byScenario.set(m[1], JSON.parse(readFileSync(file, 'utf8')));
  }
  return byScenario;
}

/**
 * The `server:` list of a requirements file (the scenarios the revision scores).
 * Its shape is a flat YAML list, so no YAML library is needed for it.
 */
function scoredScenarios(yamlText) {
  const scored = new Set();
  let inServer = false;
  for (const line of yamlText.split('\n')) {
    if (/^\S/.test(line)) inServer = /^server:\s*$/.test(line);
    else if (inServer) {
      const m = line.match(/^\s+-\s+([\w./-]+)\s*$/);
      if (m) scored.add(m[1]);
    }
  }
  if (scored.size === 0) throw new Error('no server scenarios found in the requirements file');
  return scored;
}

const isFailing = (c) => c.status === 'FAILURE' || c.status === 'WARNING';

async function runRevision(rev) {
  const dir = join(RESULTS, rev);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'checks'), { recursive: true });

  // A fresh fake and server per revision, so one run's sessions cannot affect the other.
  const fake = await startFake();
  const server = await startServer(serverEnv(fake.base));
  let result;
  try {
    result = await runCli(
      [
        'server',
        '--url', server.url,
        '--requirements', rev,
        '--expected-failures', BASELINE,
        '-o', join(dir, 'checks')
      ],
      join(dir, 'output.log')
    );
  } finally {
    await stopAll();
  }

  const scored = scoredScenarios(readFileSync(join(PKG, 'requirements', `${rev}.yaml`), 'utf8'));
  const checks = readChecks(join(dir, 'checks'));
  const tally = { scenarios: 0, scenariosFailing: 0, ok: 0, failing: 0, skipped: 0 };
  const notScoredFailing = [];
  for (const [scenario, list] of checks) {
    if (!scored.has(scenario)) {
      if (list.some(isFailing)) notScoredFailing.push(scenario);
      continue;
    }
    tally.scenarios++;
    if (list.some(isFailing)) tally.scenariosFailing++;
    for (const c of list) {
      if (c.status === 'SUCCESS') tally.ok++;
      else if (isFailing(c)) tally.failing++;
      else if (c.status === 'SKIPPED') tally.skipped++;
    }
  }
  const missing = [...scored].filter((s) => !checks.has(s));

  const expected = section(result.out, 'Expected failures (in baseline):');
  const stale = section(result.out, 'Stale baseline entries');
  const unexpected = section(result.out, 'Unexpected failures (not in baseline):');

  // Explain each unexpected failure with the suite's own message.
  const explain = (entry) => {
    const [scenario, checkId] = entry.split(':');
    const list = checks.get(scenario) ?? [];
    return list
      .filter((c) => isFailing(c) && (!checkId || c.id === checkId))
      .map((c) => `      ${c.status} ${scenario}:${c.id}: ${c.errorMessage ?? ''}`.trimEnd());
  };

  const ok = result.code === 0 && missing.length === 0;
  console.log(`\n--- conformance --requirements ${rev}: ${ok ? 'OK' : 'FAILED'} ---`);
  console.log(
    `  scored scenarios: ${tally.scenarios} run, ${tally.scenarios - tally.scenariosFailing} clean; ` +
      `checks: ${tally.ok} ok, ${tally.failing} failing (of which ${expected.length} baselined), ${tally.skipped} skipped`
  );
  if (missing.length) console.log(`  scored scenarios with no result: ${missing.join(', ')}`);
  if (unexpected.length) {
    console.log(`  UNEXPECTED failures (not in conformance-baseline.yml) — ${unexpected.length}:`);
    for (const e of unexpected) {
      console.log(`    ${e}`);
      for (const line of explain(e)) console.log(line);
    }
  }
  if (stale.length) {
    console.log(`  STALE baseline entries (these checks pass now; remove them) — ${stale.length}:`);
    for (const e of stale) console.log(`    ${e}`);
  }
  if (notScoredFailing.length) {
    console.log(`  not scored for ${rev} (extension/pending; reported only): failing in ${notScoredFailing.join(', ')}`);
  }
  if (result.code !== 0 && !unexpected.length && !stale.length) {
    console.log(`  the suite exited with ${result.code}${result.signal ? ` (${result.signal})` : ''}; see the log`);
  }
  console.log(`  full output: ${join(dir, 'output.log')}; checks: ${join(dir, 'checks')}`);
  return ok;
}

let allOk = true;
try {
  for (const rev of revisions) {
    if (!(await runRevision(rev))) allOk = false;
  }
} catch (e) {
  console.error(`conformance: ${e.stack ?? e}`);
  allOk = false;
} finally {
  await stopAll();
}
process.exit(allOk ? 0 : 1);
