// Cross-SDK interoperability: the official TypeScript MCP clients against the
// real converse-server binary, over Streamable HTTP (both protocol eras) and
// stdio, with the strict fake provider standing in for OpenAI and Anthropic.
//
// Run with Node >= 22's built-in runner: `node --test clients.test.mjs`
// (run.sh uses the Node 22 binary from node_modules).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as StdioV1 } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport as HttpV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as ClientV2, StreamableHTTPClientTransport as HttpV2 } from '@modelcontextprotocol/client';
import { StdioClientTransport as StdioV2 } from '@modelcontextprotocol/client/stdio';

import { serverBin, serverEnv, startFake, startServer, stopAll } from './harness.mjs';

const CLIENT_INFO = { name: 'converse-interop', version: '0.0.0' };
const MODERN = '2026-07-28';
const LEGACY = '2025-11-25';

let fake;
let server;

before(async () => {
  fake = await startFake();
  server = await startServer(serverEnv(fake.base));
});

after(async () => {
  await stopAll();
});

/** The requests the fake received, oldest first (credentials redacted by the fake). */
async function fakeRequests() {
  const res = await fetch(`${fake.base}/_fake/requests`);
  assert.equal(res.status, 200, 'the fake serves its request log');
  const body = await res.json();
  assert.ok(Array.isArray(body), 'the request log is a JSON array');
  return body;
}

function textOf(result) {
  return (result.content ?? [])
    .filter((c) => c.type === 'text')
    .map((c) => c.text)
    .join('\n');
}

function stdioParams() {
  return {
    command: serverBin(),
    args: ['--transport', 'stdio'],
    env: serverEnv(fake.base),
    stderr: 'pipe'
  };
}

/**
 * Connects over stdio. The server's stderr (its logs) is piped and drained so a
 * full pipe can never block it; if connecting fails, the child is closed.
 */
async function connectStdio(client, transport) {
  transport.stderr?.resume();
  try {
    await client.connect(transport);
  } catch (e) {
    await transport.close().catch(() => {});
    throw e;
  }
}

// Each flavour connects one client and says which protocol revision it must
// end up speaking.
const flavours = [
  {
    name: '@modelcontextprotocol/sdk 1.32.2, Streamable HTTP (legacy era)',
    version: LEGACY,
    async connect() {
      const client = new ClientV1(CLIENT_INFO);
      const transport = new HttpV1(new URL(server.url));
      await client.connect(transport);
      return {
        client,
        negotiated: () => transport.protocolVersion,
        sessionId: () => transport.sessionId,
        close: async () => {
          await transport.terminateSession();
          await client.close();
        }
      };
    }
  },
  {
    name: '@modelcontextprotocol/sdk 1.32.2, stdio',
    version: LEGACY,
    async connect() {
      const client = new ClientV1(CLIENT_INFO);
      const transport = new StdioV1(stdioParams());
      await connectStdio(client, transport);
      return { client, negotiated: () => undefined, close: () => client.close() };
    }
  },
  ...[
    { mode: 'legacy', version: LEGACY, era: 'legacy' },
    { mode: 'auto', version: MODERN, era: 'modern' },
    { mode: { pin: MODERN }, version: MODERN, era: 'modern' }
  ].map(({ mode, version, era }) => ({
    name: `@modelcontextprotocol/client 2.4.0, Streamable HTTP, versionNegotiation ${JSON.stringify(mode)}`,
    version,
    era,
    async connect() {
      const client = new ClientV2(CLIENT_INFO, { versionNegotiation: { mode } });
      const transport = new HttpV2(new URL(server.url));
      await client.connect(transport);
      return {
        client,
        negotiated: () => client.getNegotiatedProtocolVersion(),
        sessionId: () => transport.sessionId,
        close: async () => {
          if (era === 'legacy') await transport.terminateSession();
          await client.close();
        }
      };
    }
  })),
  {
    name: '@modelcontextprotocol/client 2.4.0, stdio, versionNegotiation "auto"',
    version: MODERN,
    era: 'modern',
    async connect() {
      const client = new ClientV2(CLIENT_INFO, { versionNegotiation: { mode: 'auto' } });
      const transport = new StdioV2(stdioParams());
      await connectStdio(client, transport);
      return { client, negotiated: () => client.getNegotiatedProtocolVersion(), close: () => client.close() };
    }
  }
];

for (const flavour of flavours) {
  describe(flavour.name, () => {
    let conn;
    let client;

    before(async () => {
      conn = await flavour.connect();
      client = conn.client;
    });

    after(async () => {
      await conn?.close();
    });

    it(`speaks protocol revision ${flavour.version}`, () => {
      const info = client.getServerVersion();
      assert.equal(info?.name, 'converse-server');
      assert.match(info?.version ?? '', /^\d+\.\d+\.\d+/);
      if (flavour.era) {
        assert.equal(client.getProtocolEra(), flavour.era);
      }
      const negotiated = conn.negotiated();
      if (negotiated !== undefined) assert.equal(negotiated, flavour.version);
      if (conn.sessionId) {
        // Sessions exist in the legacy era only; 2026-07-28 is stateless.
        if (flavour.version === LEGACY) assert.match(conn.sessionId() ?? '', /\S/);
        else assert.equal(conn.sessionId(), undefined);
      }
      const caps = client.getServerCapabilities();
      assert.ok(caps?.tools, 'tools capability advertised');
      assert.ok(caps?.prompts, 'prompts capability advertised');
      assert.ok(caps?.resources, 'resources capability advertised');
    });

    it('lists the chat and consensus tools with their input schemas', async () => {
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['chat', 'consensus']);
      const chat = tools.find((t) => t.name === 'chat');
      assert.equal(chat.inputSchema.type, 'object');
      assert.ok(chat.inputSchema.required?.includes('prompt'), 'chat requires prompt');
      for (const p of ['prompt', 'model', 'continuation_id', 'files']) {
        assert.ok(chat.inputSchema.properties?.[p], `chat has a ${p} parameter`);
      }
      const consensus = tools.find((t) => t.name === 'consensus');
      assert.ok(consensus.inputSchema.required?.includes('prompt'), 'consensus requires prompt');
      assert.ok(consensus.inputSchema.properties?.models, 'consensus has a models parameter');
    });

    it('calls chat and gets the fake answer with a visible continuation id', async () => {
      const marker = `marker-${randomUUID()}`;
      const result = await client.callTool({
        name: 'chat',
        arguments: { prompt: `Say hello (${marker})`, model: 'gpt-4o' }
      });
      assert.ok(!result.isError, `chat succeeded: ${textOf(result)}`);
      const text = textOf(result);
      assert.match(text, /\[fake/);
      const shown = text.match(/continuation_id: (conv_\S+)/);
      assert.ok(shown, `the answer shows a continuation id:\n${text}`);

      const sc = result.structuredContent;
      assert.ok(sc && typeof sc === 'object', 'structuredContent present');
      assert.match(sc.continuation?.id ?? '', /^conv_/);
      assert.equal(sc.continuation.id, shown[1], 'text and structuredContent name the same conversation');
      assert.equal(sc.continuation.provider, 'openai');
      assert.equal(sc.continuation.messageCount, 2);
      assert.match(sc.content, /\[fake/);

      // The prompt really reached the provider (over the OpenAI wire format).
      const sent = (await fakeRequests()).filter((r) => JSON.stringify(r.body).includes(marker));
      assert.equal(sent.length, 1, 'exactly one provider request carried the prompt');
      assert.match(sent[0].path, /^\/v1\/(responses|chat\/completions)$/);
      assert.equal(sent[0].authenticated, true);
    });

    it('continues a chat conversation with its continuation id', async () => {
      const marker = `marker-${randomUUID()}`;
      const first = await client.callTool({
        name: 'chat',
        arguments: { prompt: `Remember the word "heliotrope" (${marker}).`, model: 'gpt-4o' }
      });
      assert.ok(!first.isError, textOf(first));
      const id = first.structuredContent?.continuation?.id;
      assert.match(id ?? '', /^conv_/);

      const second = await client.callTool({
        name: 'chat',
        arguments: { prompt: `Which word did I ask you to remember? (${marker}, turn 2)`, model: 'gpt-4o', continuation_id: id }
      });
      assert.ok(!second.isError, textOf(second));
      assert.equal(second.structuredContent.continuation.id, id, 'same conversation');
      assert.equal(second.structuredContent.continuation.messageCount, 4);
      assert.match(textOf(second), /\[fake/);

      // The provider got the earlier turn as history.
      const followUps = (await fakeRequests()).filter((r) => JSON.stringify(r.body).includes(`${marker}, turn 2`));
      assert.equal(followUps.length, 1, 'the follow-up reached the provider once');
      assert.ok(JSON.stringify(followUps[0].body).includes('heliotrope'), 'the history was sent along');
    });

    it('runs consensus across two providers', async () => {
      const result = await client.callTool({
        name: 'consensus',
        arguments: { prompt: 'Tabs or spaces?', models: ['gpt-4o', 'sonnet'] }
      });
      assert.ok(!result.isError, textOf(result));
      const sc = result.structuredContent;
      assert.equal(sc.successful, 2, JSON.stringify(sc, null, 2));
      assert.equal(sc.failed, 0);
      assert.deepEqual(sc.models.map((m) => m.provider).sort(), ['anthropic', 'openai']);
      assert.match(sc.continuation?.id ?? '', /^conv_/);
      assert.match(textOf(result), /\[fake/);
      assert.match(textOf(result), /continuation_id: conv_/);
    });

    it('reports the progress of a 3-model consensus in order, then answers', async () => {
      const updates = [];
      const params = { name: 'consensus', arguments: { prompt: 'Progress?', models: ['gpt-4o', 'sonnet', 'gemini-2.5-flash'] } };
      const options = { onprogress: (p) => updates.push(p), resetTimeoutOnProgress: true };
      // SDK 1.x takes (params, resultSchema, options); 2.x dropped the schema argument.
      const result = client instanceof ClientV1
        ? await client.callTool(params, undefined, options)
        : await client.callTool(params, options);
      assert.ok(!result.isError, textOf(result));
      // The server sends the last notification before the result, but a client may dispatch the
      // result first (seen with the 2.x SDK over stdio): give the notifications a moment to land.
      for (let i = 0; i < 100 && updates.length < 7; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(result.structuredContent.successful, 3, JSON.stringify(result.structuredContent));
      // Three answers, the start of the cross-feedback round, three refined answers.
      const seen = JSON.stringify(updates);
      assert.deepEqual(updates.map((u) => u.progress), [1, 2, 3, 4, 5, 6, 7], seen);
      assert.ok(updates.every((u) => u.total === 7), seen);
      assert.equal(updates.filter((u) => / answered \(\d\/7\)$/.test(u.message)).length, 3, seen);
      assert.equal(updates[3].message, 'cross-feedback round started (4/7)', seen);
      assert.equal(updates.filter((u) => /refined its answer/.test(u.message)).length, 3, seen);
    });

    it('lists and gets the help prompt', async () => {
      const { prompts } = await client.listPrompts();
      assert.ok(prompts.some((p) => p.name === 'help'), JSON.stringify(prompts));
      const prompt = await client.getPrompt({ name: 'help' });
      assert.ok(prompt.messages.length > 0);
      const text = prompt.messages.map((m) => m.content?.text ?? '').join('\n');
      assert.match(text, /chat/);
      assert.match(text, /consensus/);
      assert.match(text, /gpt-4o|openai/i, 'the guide reflects the configured providers');
    });

    it('lists and reads the converse://help resource', async () => {
      const { resources } = await client.listResources();
      assert.ok(resources.some((r) => r.uri === 'converse://help'), JSON.stringify(resources));
      const res = await client.readResource({ uri: 'converse://help' });
      assert.equal(res.contents.length, 1);
      assert.equal(res.contents[0].uri, 'converse://help');
      assert.match(res.contents[0].text ?? '', /consensus/);
    });

    it('reports an unknown tool as an error', async () => {
      let result;
      try {
        result = await client.callTool({ name: 'no_such_tool', arguments: {} });
      } catch (e) {
        assert.match(String(e.message), /tool/i);
        return;
      }
      assert.equal(result.isError, true, 'either a JSON-RPC error or an isError result');
    });
  });
}
