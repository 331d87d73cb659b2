// Sessions under real load, with the official TypeScript SDK (1.x, protocol 2025-11-25 with
// sessions): api_key with several principals and converse 1.3.2's session-auth defaults, the way a
// team shares one server. Each SDK client opens its server-to-client stream (GET) after
// `initialize`, as real clients do, so its session is busy while the client lives; `close()`
// without `terminateSession()` is a client that vanished (a crashed IDE, a sleeping laptop).
//
// `/info` tells how many sessions are busy, so the tests wait for the server to notice.
//
// - bursts of 256 simultaneous `initialize`s with the cap at 256: no refusal, and `/info`,
//   `/metrics` and the admissions agree on the count;
// - 256 clients vanish without DELETE: the next burst of 256 is admitted;
// - fairness: a noisy principal at its share cannot push a quiet principal's sessions out.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { serverEnv, startFake, startServer, stopAll } from './harness.mjs';

const CLIENT_INFO = { name: 'converse-sessions-load', version: '0.0.0' };
const PROTOCOL = '2025-11-25';

after(stopAll);

/** Keys of at least 32 characters, one per principal. */
const keys = (n) => Array.from({ length: n }, (_, i) => `sessions-${i}-${randomUUID()}`);

async function startWith(apiKeys, cap) {
  const fake = await startFake();
  return startServer(
    serverEnv(fake.base, {
      MCP_AUTH_STRATEGY: 'api_key',
      MCP_API_KEYS: apiKeys.join(','),
      HTTP_MAX_CONCURRENT_SESSIONS: String(cap)
    })
  );
}

/** One SDK client with its key in X-API-Key from the first request. */
async function connect(url, key) {
  const client = new Client(CLIENT_INFO);
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { 'X-API-Key': key } }
  });
  await client.connect(transport);
  return { client, transport, key, sessionId: transport.sessionId };
}

/** `n` clients connecting at the same moment, keys round-robin; the refusals' messages. */
async function burst(url, keyList, n) {
  const settled = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => connect(url, keyList[i % keyList.length]))
  );
  return {
    clients: settled.filter((s) => s.status === 'fulfilled').map((s) => s.value),
    refusals: settled.filter((s) => s.status === 'rejected').map((s) => String(s.reason?.message ?? s.reason))
  };
}

/**
 * Clients that vanish: the connection goes, no DELETE is sent. The server notices a closed
 * stream when it next writes to it (its SSE keep-alive, every 15 s); then the session is idle.
 * Waits until `/info` counts only `stillBusy` busy sessions.
 */
async function vanish(url, clients, stillBusy) {
  await Promise.all(clients.map((c) => c.client.close()));
  const base = new URL(url).origin;
  const deadline = Date.now() + 40000;
  for (;;) {
    const { sessions } = await (await fetch(`${base}/info`)).json();
    if (sessions.busy <= stillBusy) return;
    assert.ok(Date.now() < deadline, `${sessions.busy} sessions still busy, want ${stillBusy}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function counts(url) {
  const base = new URL(url).origin;
  const info = await (await fetch(`${base}/info`)).json();
  const metrics = await (await fetch(`${base}/metrics`)).text();
  const line = metrics.split('\n').find((l) => l.startsWith('converse_sessions_active '));
  return { info: info.sessions.active, metric: Number(line?.split(' ')[1]) };
}

/** Whether the server still knows a session (a request in it: 200, or 404 when it is gone). */
async function sessionStatus(url, { sessionId, key }) {
  const r = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': sessionId,
      'mcp-protocol-version': PROTOCOL,
      'x-api-key': key
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} })
  });
  await r.body?.cancel();
  return r.status;
}

describe('sessions under load: 4 principals, bursts of 256 with the cap at 256', () => {
  const apiKeys = keys(4);
  let server;
  let live = [];

  it('256 clients initializing at once are all admitted, and /info and /metrics agree', async () => {
    server = await startWith(apiKeys, 256);
    const { clients, refusals } = await burst(server.url, apiKeys, 256);
    live = clients;
    assert.equal(refusals.length, 0, `${refusals.length} refused, e.g. ${refusals[0]}`);
    assert.deepEqual(await counts(server.url), { info: 256, metric: 256 });
    for (const c of live.slice(0, 4)) {
      const { tools } = await c.client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['chat', 'consensus']);
    }
  });

  it('after 256 clients vanished without DELETE, the next burst of 256 is admitted', async () => {
    await vanish(server.url, live, 0);
    assert.equal((await counts(server.url)).info, 256, 'vanished sessions are still open');
    const { clients, refusals } = await burst(server.url, apiKeys, 256);
    live = clients;
    assert.equal(refusals.length, 0, `${refusals.length} refused, e.g. ${refusals[0]}`);
    assert.deepEqual(await counts(server.url), { info: 256, metric: 256 });
    const { tools } = await live[255].client.listTools();
    assert.equal(tools.length, 2);
    await Promise.all(live.map((c) => c.client.close()));
  });
});

describe('fairness: a noisy principal cannot push a quiet one out (cap 64)', () => {
  const [quietKey, noisyKey] = keys(2);

  it('at its share the noisy principal only replaces its own idle sessions', async () => {
    const server = await startWith([quietKey, noisyKey], 64);
    // The quiet principal's 16 clients vanished: 16 idle sessions.
    const quiet = await burst(server.url, [quietKey], 16);
    assert.equal(quiet.refusals.length, 0, quiet.refusals[0]);
    await vanish(server.url, quiet.clients, 0);
    // The noisy principal fills the rest with 48 live clients (above its share of 32).
    const noisy = await burst(server.url, [noisyKey], 48);
    assert.equal(noisy.refusals.length, 0, noisy.refusals[0]);
    assert.equal((await counts(server.url)).info, 64);

    // It wants 16 more: none of its own sessions is idle, and the quiet ones are not its to take.
    const more = await burst(server.url, [noisyKey], 16);
    assert.equal(more.clients.length, 0);
    assert.equal(more.refusals.length, 16);
    assert.ok(more.refusals.every((m) => /503|HTTP_MAX_CONCURRENT_SESSIONS/.test(m)), more.refusals[0]);

    // 16 of its clients vanish: its next 16 take their places.
    const gone = noisy.clients.slice(0, 16);
    await vanish(server.url, gone, 32);
    const again = await burst(server.url, [noisyKey], 16);
    assert.equal(again.refusals.length, 0, again.refusals[0]);
    assert.deepEqual(await counts(server.url), { info: 64, metric: 64 });

    const quietStatus = await Promise.all(quiet.clients.map((c) => sessionStatus(server.url, c)));
    assert.deepEqual(quietStatus, Array(16).fill(200), 'every quiet session survived');
    const goneStatus = await Promise.all(gone.map((c) => sessionStatus(server.url, c)));
    assert.deepEqual(goneStatus, Array(16).fill(404), 'the noisy principal gave up its own');
    await Promise.all([...noisy.clients.slice(16), ...again.clients].map((c) => c.client.close()));
  });
});
