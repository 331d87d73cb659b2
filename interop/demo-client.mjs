// The demo's MCP client (`make demo`, and the end-to-end test `scripts/e2e.sh`): the official
// TypeScript SDK's Streamable HTTP client against a deployed converse-server, with its API key.
//
//   node demo-client.mjs <url> <api-key> [--models a,b] [--expect-refused <wrong-key>]
//
// Lists the tools, calls `chat` (one model) and `consensus` (two models), prints each answer,
// and exits non-zero when anything is not as a working deployment answers: a missing tool, an
// error result, an answer not from the fake provider, or — with --expect-refused — a wrong key
// that is not refused with 401.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, key, ...rest] = process.argv.slice(2);
if (!url || !key) {
  console.error('usage: demo-client.mjs <url> <api-key> [--models a,b] [--expect-refused <wrong-key>]');
  process.exit(2);
}
const option = (name) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};
const [chatModel, secondModel] = (option('--models') ?? 'gpt-4o,sonnet').split(',');
const wrongKey = option('--expect-refused');
// converse-server refuses plain keys shorter than this (MIN_API_KEY_CHARS): a shorter key cannot
// be the server's, and a shorter wrong key would not show that a well-formed stranger is refused.
const MIN_API_KEY_CHARS = 32;
for (const [what, k] of [['the API key', key], ['the --expect-refused key', wrongKey]]) {
  if (k !== undefined && k.length < MIN_API_KEY_CHARS) {
    console.error(`demo-client: ${what} is shorter than ${MIN_API_KEY_CHARS} characters (e.g. use \`openssl rand -hex 32\`)`);
    process.exit(2);
  }
}

const textOf = (result) => (result.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
const indent = (text) => text.split('\n').map((l) => `    ${l}`).join('\n');
const fail = (message) => {
  console.error(`demo-client: FAILED: ${message}`);
  process.exit(1);
};

async function connect(apiKey) {
  const client = new Client({ name: 'converse-demo', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { 'X-API-Key': apiKey } }
  });
  await client.connect(transport);
  return client;
}

const client = await connect(key).catch((e) => fail(`connecting to ${url}: ${e.message}`));
const server = client.getServerVersion();
console.log(`connected to ${server?.name} ${server?.version} at ${url}`);

const { tools } = await client.listTools();
console.log(`tools/list → ${tools.map((t) => t.name).join(', ')}`);
for (const name of ['chat', 'consensus']) {
  if (!tools.some((t) => t.name === name)) fail(`the server does not offer the ${name} tool`);
}

const chat = await client.callTool({
  name: 'chat',
  arguments: { prompt: 'In one sentence: why run an MCP server on Kubernetes?', model: chatModel }
});
console.log(`chat (${chatModel}) →\n${indent(textOf(chat))}`);
if (chat.isError) fail('chat returned an error');
if (!/\[fake/.test(textOf(chat))) fail('the chat answer did not come from the fake provider');

const consensus = await client.callTool({
  name: 'consensus',
  arguments: { prompt: 'Tabs or spaces?', models: [chatModel, secondModel] }
});
console.log(`consensus (${chatModel}, ${secondModel}) →\n${indent(textOf(consensus))}`);
if (consensus.isError) fail('consensus returned an error');
const sc = consensus.structuredContent ?? {};
if (sc.successful !== 2 || sc.failed !== 0) fail(`consensus: ${sc.successful} of 2 models answered`);
await client.close();

if (wrongKey !== undefined) {
  // The SDK's StreamableHTTPError carries the HTTP status of the refused initialize as `code`.
  const refused = await connect(wrongKey).then(
    async (c) => {
      await c.close();
      return undefined;
    },
    (e) => e
  );
  if (!refused) fail('a wrong API key was accepted');
  if (refused.code !== 401) fail(`a wrong API key was refused, but with ${refused.code} instead of 401: ${refused.message}`);
  console.log(`wrong key → HTTP 401 (${refused.message})`);
}
console.log('demo-client: OK');
