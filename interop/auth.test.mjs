// Authentication through the official TypeScript MCP clients: the real
// converse-server binary under MCP_AUTH_STRATEGY=api_key, bearer (RS256) and
// oidc, the last against a real OpenID provider (the `oidc-provider` package)
// running inside this test process on loopback. Credentials travel as static
// headers (`requestInit.headers`), the way a client configured with a key or a
// token sends them; refusals are checked both as the SDKs surface them and on
// the wire (status, WWW-Authenticate, JSON-RPC error body).
//
// Run with Node >= 22's built-in runner: `node --test auth.test.mjs`
// (run.sh uses the Node 22 binary from node_modules).

import assert from 'node:assert/strict';
import { createHash, createHmac, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';

import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { ClientCredentialsProvider as ClientCredentialsV1 } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { StreamableHTTPClientTransport as HttpV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  Client as ClientV2,
  ClientCredentialsProvider as ClientCredentialsV2,
  StreamableHTTPClientTransport as HttpV2
} from '@modelcontextprotocol/client';
import Provider, { errors as oidcErrors } from 'oidc-provider';

import { serverEnv, startFake, startServer, startServerAt, stop, stopAll } from './harness.mjs';

const CLIENT_INFO = { name: 'converse-interop-auth', version: '0.0.0' };
const MODERN = '2026-07-28';
const LEGACY = '2025-11-25';

let fake;

before(async () => {
  fake = await startFake();
});

after(async () => {
  await stopAll();
});

// ---------------------------------------------------------------------------
// Clients

/**
 * Connects `client` over `transport`; if that fails, the client is closed
 * before the error is passed on, so no transport outlives a refused connect.
 */
async function connectOrClose(client, transport) {
  try {
    await client.connect(transport);
  } catch (e) {
    await client.close().catch(() => {});
    throw e;
  }
}

// Each flavour connects one SDK client to `url`, sending `headers` with every
// request (or letting `authProvider` obtain a token), and says which protocol
// revision it must end up speaking.
const flavours = [
  {
    name: '@modelcontextprotocol/sdk 1.32.2 (legacy era)',
    sdk: 'v1',
    ClientCredentials: ClientCredentialsV1,
    version: LEGACY,
    async connect(url, headers = {}, authProvider = undefined) {
      const client = new ClientV1(CLIENT_INFO);
      const transport = new HttpV1(new URL(url), { requestInit: { headers }, authProvider });
      await connectOrClose(client, transport);
      return {
        client,
        negotiated: () => transport.protocolVersion,
        close: async () => {
          await transport.terminateSession();
          await client.close();
        }
      };
    }
  },
  ...[
    { mode: { pin: MODERN }, version: MODERN, era: 'modern' },
    { mode: 'legacy', version: LEGACY, era: 'legacy' }
  ].map(({ mode, version, era }) => ({
    name: `@modelcontextprotocol/client 2.4.0, versionNegotiation ${JSON.stringify(mode)}`,
    sdk: 'v2',
    ClientCredentials: ClientCredentialsV2,
    version,
    async connect(url, headers = {}, authProvider = undefined) {
      const client = new ClientV2(CLIENT_INFO, { versionNegotiation: { mode } });
      const transport = new HttpV2(new URL(url), { requestInit: { headers }, authProvider });
      await connectOrClose(client, transport);
      assert.equal(client.getProtocolEra(), era);
      return {
        client,
        negotiated: () => client.getNegotiatedProtocolVersion(),
        close: async () => {
          if (era === 'legacy') await transport.terminateSession();
          await client.close();
        }
      };
    }
  }))
];

/** The HTTP status an SDK error carries: v2's `SdkHttpError.status`, v1's `StreamableHTTPError.code`. */
function httpStatusOf(error) {
  if (typeof error?.status === 'number') return error.status;
  if (Number.isInteger(error?.code) && error.code >= 100 && error.code < 600) return error.code;
  return undefined;
}

/**
 * Connecting with these headers fails, and the SDK reports the HTTP status and
 * the server's JSON-RPC error message.
 */
async function assertConnectRefused(flavour, url, headers, { status, message }) {
  let conn;
  await assert.rejects(
    async () => {
      conn = await flavour.connect(url, headers);
    },
    (e) => {
      assert.equal(httpStatusOf(e), status, `the SDK surfaces HTTP ${status}: ${e?.stack ?? e}`);
      // v1 quotes the response body in its message; v2 keeps it in `data.text`
      // (its version-negotiation probe words the message itself).
      if (message) assert.match(`${e.message}\n${e.data?.text ?? ''}`, message);
      return true;
    },
    'connect must fail'
  );
  await conn?.close().catch(() => {});
}

/** The requests the fake provider received, oldest first. */
async function fakeRequests() {
  const res = await fetch(`${fake.base}/_fake/requests`);
  assert.equal(res.status, 200, 'the fake serves its request log');
  return res.json();
}

function textOf(result) {
  return (result.content ?? [])
    .filter((c) => c.type === 'text')
    .map((c) => c.text)
    .join('\n');
}

/** Connected and authorised: the revision is right, tools list, chat reaches the provider. */
async function assertWorks(flavour, conn) {
  const { client } = conn;
  assert.equal(client.getServerVersion()?.name, 'converse-server');
  assert.equal(conn.negotiated(), flavour.version);

  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), ['chat', 'consensus']);

  const marker = `marker-${randomUUID()}`;
  const result = await client.callTool({ name: 'chat', arguments: { prompt: `Say hello (${marker})`, model: 'gpt-4o' } });
  assert.ok(!result.isError, `chat succeeded: ${textOf(result)}`);
  assert.match(textOf(result), /\[fake/);
  assert.match(result.structuredContent?.continuation?.id ?? '', /^conv_/);
  const sent = (await fakeRequests()).filter((r) => JSON.stringify(r.body).includes(marker));
  assert.equal(sent.length, 1, 'exactly one provider request carried the prompt');
}

async function withConnection(flavour, url, headers, body, authProvider = undefined) {
  const conn = await flavour.connect(url, headers, authProvider);
  try {
    await body(conn);
  } finally {
    await conn.close();
  }
}

// ---------------------------------------------------------------------------
// Raw HTTP: what a refusal looks like on the wire

const TOOLS_LIST = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });
const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: LEGACY, capabilities: {}, clientInfo: CLIENT_INFO }
});

async function rawPost(url, headers = {}, body = TOOLS_LIST) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return {
    status: res.status,
    challenge: res.headers.get('www-authenticate'),
    contentType: res.headers.get('content-type'),
    session: res.headers.get('mcp-session-id'),
    json,
    text
  };
}

/** A refusal by the server's gate: status, a JSON-RPC error body with `id: null`, no session. */
function assertRefusal(r, { status, code, message }) {
  assert.equal(r.status, status, `HTTP ${status} expected: ${r.text}`);
  assert.match(r.contentType ?? '', /^application\/json/);
  assert.equal(r.json?.jsonrpc, '2.0', r.text);
  assert.equal(r.json.id, null);
  assert.equal(r.json.error?.code, code, r.text);
  assert.match(r.json.error.message, message);
  assert.equal(r.session, null, 'a refused request opens no session');
}

/** The challenge starts `Bearer realm="mcp"` and carries `error="invalid_token"` and the reason. */
function assertInvalidToken(challenge, description) {
  assert.match(challenge ?? '', /^Bearer realm="mcp"(,|$)/, String(challenge));
  assert.match(challenge, /, error="invalid_token"/);
  assert.match(challenge, new RegExp(`, error_description="[^"]*${description.source}[^"]*"`), challenge);
}

// ---------------------------------------------------------------------------
// JWTs, signed here with node:crypto

const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** `header.payload.signature`; `signer(bytes)` returns the signature (empty for `alg: none`). */
function jwt(header, payload, signer) {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${Buffer.from(signer(Buffer.from(input))).toString('base64url')}`;
}
const rs256 = (privateKey) => (data) => sign('sha256', data, privateKey);
const hs256 = (secret) => (data) => createHmac('sha256', secret).update(data).digest();

function decodeJwt(token) {
  const [header, payload] = token.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
  return { header, payload };
}

// ---------------------------------------------------------------------------

describe('api_key', () => {
  const PLAIN_KEY = `interop-plain-${randomUUID()}`;
  const HASHED_KEY = `interop-hashed-${randomUUID()}`;
  const WRONG_KEY = `interop-wrong-${randomUUID()}`;
  let server;

  before(async () => {
    const digest = createHash('sha256').update(HASHED_KEY).digest('hex');
    server = await startServer(
      serverEnv(fake.base, { MCP_AUTH_STRATEGY: 'api_key', MCP_API_KEYS: `${PLAIN_KEY}, sha256:${digest}` })
    );
  });

  after(async () => {
    await stop(server?.child);
  });

  for (const flavour of flavours) {
    describe(flavour.name, () => {
      it('works with the plain key in X-API-Key: connect, listTools, chat', async () => {
        await withConnection(flavour, server.url, { 'X-API-Key': PLAIN_KEY }, (conn) => assertWorks(flavour, conn));
      });

      it('works with the sha256:-configured key in Authorization: Bearer', async () => {
        await withConnection(flavour, server.url, { Authorization: `Bearer ${HASHED_KEY}` }, (conn) =>
          assertWorks(flavour, conn)
        );
      });

      it('a wrong key: connect fails with 401 (unknown API key)', async () => {
        await assertConnectRefused(flavour, server.url, { 'X-API-Key': WRONG_KEY }, {
          status: 401,
          message: /unknown API key/
        });
        await assertConnectRefused(flavour, server.url, { Authorization: `Bearer ${WRONG_KEY}` }, {
          status: 401,
          message: /unknown API key/
        });
      });

      it('no key: connect fails with 401 (authentication required)', async () => {
        await assertConnectRefused(flavour, server.url, {}, { status: 401, message: /authentication required/ });
      });

      it('a valid key in ?api_key= is refused with 401, even with the key in a header too', async () => {
        const inQuery = `${server.url}?api_key=${encodeURIComponent(PLAIN_KEY)}`;
        await assertConnectRefused(flavour, inQuery, {}, { status: 401, message: /credentials in the URL/ });
        await assertConnectRefused(flavour, inQuery, { 'X-API-Key': PLAIN_KEY }, {
          status: 401,
          message: /credentials in the URL/
        });
      });
    });
  }

  describe('on the wire', () => {
    it('no key: 401, WWW-Authenticate: Bearer realm="mcp", JSON-RPC error -32001', async () => {
      const r = await rawPost(server.url);
      assertRefusal(r, { status: 401, code: -32001, message: /^authentication required$/ });
      assert.equal(r.challenge, 'Bearer realm="mcp"');
    });

    it('a wrong key: 401 with error="invalid_token", and the key is never echoed', async () => {
      for (const headers of [{ 'X-API-Key': WRONG_KEY }, { Authorization: `Bearer ${WRONG_KEY}` }]) {
        const r = await rawPost(server.url, headers);
        assertRefusal(r, { status: 401, code: -32001, message: /^invalid credentials: unknown API key$/ });
        assertInvalidToken(r.challenge, /unknown API key/);
        assert.ok(!r.text.includes(WRONG_KEY) && !r.challenge.includes(WRONG_KEY), 'the key is not echoed');
      }
      // The same shape for initialize: a wrong key never opens a session.
      const init = await rawPost(server.url, { 'X-API-Key': WRONG_KEY }, INITIALIZE);
      assertRefusal(init, { status: 401, code: -32001, message: /unknown API key/ });
    });

    it('?api_key= with a valid key: 401, credentials in the URL are not accepted', async () => {
      for (const name of ['api_key', 'API_KEY', 'access_token']) {
        const r = await rawPost(`${server.url}?${name}=${encodeURIComponent(PLAIN_KEY)}`, {}, INITIALIZE);
        assertRefusal(r, {
          status: 401,
          code: -32001,
          message: /^credentials in the URL are not accepted; send them in a header$/
        });
        assertInvalidToken(r.challenge, /credentials in the URL/);
        assert.ok(!r.text.includes(PLAIN_KEY), 'the key is not echoed');
      }
    });

    it('a valid key in the header passes the gate', async () => {
      const r = await rawPost(server.url, { 'X-API-Key': PLAIN_KEY }, INITIALIZE);
      assert.equal(r.status, 200, r.text);
      assert.match(r.session ?? '', /\S/, 'initialize opened a session');
    });
  });
});

// ---------------------------------------------------------------------------

describe('bearer (RS256)', () => {
  const ISSUER = 'https://tokens.interop.test';
  const AUDIENCE = 'converse-interop';
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' });
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const RS = { alg: 'RS256', typ: 'JWT' };
  const claims = (overrides = {}) => ({
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'interop-ci',
    iat: now(),
    nbf: now() - 5,
    exp: now() + 600,
    ...overrides
  });
  let server;

  // Refused tokens, each with the reason the server gives (docs/AUTHENTICATION.md §5).
  const refused = () => [
    {
      why: 'expired',
      token: jwt(RS, claims({ iat: now() - 900, nbf: now() - 900, exp: now() - 120 }), rs256(privateKey)),
      reason: /the token has expired/
    },
    {
      why: 'wrong iss',
      token: jwt(RS, claims({ iss: 'https://someone-else.test' }), rs256(privateKey)),
      reason: /the token's issuer \(iss\) is not accepted/
    },
    {
      why: 'wrong aud',
      token: jwt(RS, claims({ aud: 'another-api' }), rs256(privateKey)),
      reason: /the token's audience \(aud\) is not this server/
    },
    {
      why: 'signed with another key',
      token: jwt(RS, claims(), rs256(other.privateKey)),
      reason: /the token's signature is invalid/
    },
    {
      why: 'alg: none',
      token: jwt({ alg: 'none', typ: 'JWT' }, claims(), () => Buffer.alloc(0)),
      reason: /the token is malformed/
    },
    {
      why: 'HS256 "signed" with the RSA public key (algorithm confusion)',
      token: jwt({ alg: 'HS256', typ: 'JWT' }, claims(), hs256(publicPem)),
      reason: /the token's algorithm is not accepted/
    }
  ];

  before(async () => {
    server = await startServer(
      serverEnv(fake.base, {
        MCP_AUTH_STRATEGY: 'bearer',
        MCP_JWT_ALGORITHM: 'RS256',
        MCP_JWT_PUBLIC_KEY: publicPem,
        MCP_JWT_ISSUER: ISSUER,
        MCP_JWT_AUDIENCE: AUDIENCE
      })
    );
  });

  after(async () => {
    await stop(server?.child);
  });

  for (const flavour of flavours) {
    describe(flavour.name, () => {
      it('works with a valid RS256 token: connect, listTools, chat', async () => {
        const token = jwt(RS, claims(), rs256(privateKey));
        await withConnection(flavour, server.url, { Authorization: `Bearer ${token}` }, (conn) =>
          assertWorks(flavour, conn)
        );
      });

      it('refuses expired, wrong-iss, wrong-aud, wrongly signed, alg:none and HS256-confusion tokens with 401', async () => {
        for (const { why, token, reason } of refused()) {
          await assertConnectRefused(flavour, server.url, { Authorization: `Bearer ${token}` }, {
            status: 401,
            message: reason
          }).catch((e) => {
            e.message = `${why}: ${e.message}`;
            throw e;
          });
        }
      });
    });
  }

  describe('on the wire', () => {
    for (const { why, reason } of refused()) {
      it(`${why}: 401 with error="invalid_token" and a JSON-RPC error body`, async () => {
        const { token } = refused().find((t) => t.why === why);
        const r = await rawPost(server.url, { Authorization: `Bearer ${token}` });
        assertRefusal(r, { status: 401, code: -32001, message: new RegExp(`^invalid credentials: ${reason.source}$`) });
        assertInvalidToken(r.challenge, reason);
      });
    }

    it('no token: 401 with the bare challenge', async () => {
      const r = await rawPost(server.url);
      assertRefusal(r, { status: 401, code: -32001, message: /^authentication required$/ });
      assert.equal(r.challenge, 'Bearer realm="mcp"');
    });
  });
});

// ---------------------------------------------------------------------------

/**
 * A real OpenID provider (`oidc-provider`) on 127.0.0.1: client_credentials
 * with resource indicators, issuing RS256 JWT access tokens whose audience is
 * the MCP server's public URL. `resource()` names the one resource it serves.
 */
async function startIdp(resource) {
  const requests = [];
  let handler = (_req, res) => res.writeHead(503).end();
  const http = createServer((req, res) => {
    requests.push(new URL(req.url, 'http://idp').pathname);
    handler(req, res);
  });
  await new Promise((ok, fail) => {
    http.once('error', fail);
    http.listen(0, '127.0.0.1', ok);
  });
  const issuer = `http://127.0.0.1:${http.address().port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'interop-idp-rs256', use: 'sig', alg: 'RS256' };
  // One machine-to-machine client (client_secret_basic, client_credentials only).
  const m2m = {
    client_id: 'interop-m2m',
    client_secret: `secret-${randomUUID()}`,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: []
  };

  const provider = new Provider(issuer, {
    adapter: MemoryAdapter,
    clients: [m2m],
    jwks: { keys: [signingKey] },
    ttl: { ClientCredentials: 600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          if (indicator !== resource()) throw new oidcErrors.InvalidTarget();
          return {
            scope: 'mcp:tools mcp:read',
            audience: resource(),
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } }
          };
        }
      }
    }
  });
  handler = provider.callback();

  /** client_credentials with `resource` (and `scope`, when given): the token response. */
  async function clientCredentials({ scope } = {}) {
    const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
    const body = new URLSearchParams({ grant_type: 'client_credentials', resource: resource() });
    if (scope) body.set('scope', scope);
    const { client_id, client_secret } = m2m;
    const res = await fetch(discovery.token_endpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${client_id}:${client_secret}`).toString('base64')}` },
      body
    });
    const answer = await res.json();
    assert.equal(res.status, 200, `token endpoint: ${JSON.stringify(answer)}`);
    return answer;
  }

  return {
    issuer,
    requests,
    signingKid: signingKey.kid,
    client: m2m,
    clientCredentials,
    close: () =>
      new Promise((ok) => {
        http.closeAllConnections();
        http.close(() => ok());
      })
  };
}

/** oidc-provider's storage for this test: a Map, so the provider prints no development-adapter warning. */
const idpStore = new Map();
class MemoryAdapter {
  constructor(model) {
    this.model = model;
  }
  key(id) {
    return `${this.model}:${id}`;
  }
  async upsert(id, payload) {
    idpStore.set(this.key(id), payload);
  }
  async find(id) {
    return idpStore.get(this.key(id));
  }
  async findByUid() {
    return undefined;
  }
  async findByUserCode() {
    return undefined;
  }
  async consume(id) {
    const payload = idpStore.get(this.key(id));
    if (payload) payload.consumed = now();
  }
  async destroy(id) {
    idpStore.delete(this.key(id));
  }
  async revokeByGrantId() {}
}

describe('oidc against a real OpenID provider (oidc-provider)', () => {
  let idp;
  let server;
  let publicUrl;
  let token;
  let metadataUrl;

  before(async () => {
    idp = await startIdp(() => publicUrl);
    server = await startServerAt((port) => {
      publicUrl = `http://127.0.0.1:${port}/mcp`;
      return serverEnv(fake.base, {
        MCP_AUTH_STRATEGY: 'oidc',
        MCP_OIDC_ISSUER: idp.issuer,
        MCP_PUBLIC_URL: publicUrl,
        MCP_OIDC_REQUIRED_SCOPES: 'mcp:tools'
      });
    });
    metadataUrl = `http://127.0.0.1:${server.port}/.well-known/oauth-protected-resource/mcp`;
    assert.equal(server.url, publicUrl, 'the server listens where MCP_PUBLIC_URL says');
  });

  after(async () => {
    await stop(server?.child);
    await idp?.close();
  });

  it('publishes Protected Resource Metadata at both paths, naming the issuer as discovery spells it', async () => {
    assert.ok(!idp.requests.includes('/.well-known/openid-configuration'), 'no discovery before first use');
    const documents = [];
    for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
      const res = await fetch(`http://127.0.0.1:${server.port}${path}`);
      assert.equal(res.status, 200, path);
      documents.push(await res.json());
    }
    // Only the server can have asked the provider for its metadata so far.
    assert.ok(idp.requests.includes('/.well-known/openid-configuration'), `server ran discovery: ${idp.requests}`);
    const discovery = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json();
    assert.equal(discovery.issuer, idp.issuer);
    for (const prm of documents) {
      assert.equal(prm.resource, publicUrl);
      assert.deepEqual(prm.authorization_servers, [discovery.issuer]);
      assert.deepEqual(prm.scopes_supported, ['mcp:tools']);
      assert.deepEqual(prm.bearer_methods_supported, ['header']);
    }
  });

  it('the provider issues an RS256 JWT for the MCP resource by client_credentials', async () => {
    const answer = await idp.clientCredentials({ scope: 'mcp:tools' });
    assert.equal(answer.token_type, 'Bearer');
    assert.equal(answer.scope, 'mcp:tools');
    token = answer.access_token;
    const { header, payload } = decodeJwt(token);
    assert.equal(header.alg, 'RS256');
    assert.equal(header.kid, idp.signingKid);
    assert.equal(payload.iss, idp.issuer);
    assert.equal(payload.aud, publicUrl);
    assert.equal(payload.scope, 'mcp:tools');
    assert.equal(payload.sub, 'interop-m2m');
  });

  for (const flavour of flavours) {
    describe(flavour.name, () => {
      it('works with the provider token: connect, listTools, chat', async () => {
        assert.ok(token, 'a token was issued');
        await withConnection(flavour, server.url, { Authorization: `Bearer ${token}` }, (conn) =>
          assertWorks(flavour, conn)
        );
        const discovery = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json();
        assert.ok(idp.requests.includes(new URL(discovery.jwks_uri).pathname), 'the server fetched the JWKS');
      });

      it('a token without mcp:tools: refused with 403 insufficient_scope', async () => {
        const { access_token: narrow, scope } = await idp.clientCredentials({ scope: 'mcp:read' });
        assert.equal(scope, 'mcp:read');
        let conn;
        await assert.rejects(
          async () => {
            conn = await flavour.connect(server.url, { Authorization: `Bearer ${narrow}` });
          },
          (e) => {
            if (flavour.sdk === 'v1') {
              assert.equal(httpStatusOf(e), 403, String(e?.stack ?? e));
              assert.match(e.message, /insufficient scope: this server requires mcp:tools/);
            } else {
              // v2 reads the challenge; without an OAuth provider it cannot step up.
              assert.equal(e.name, 'InsufficientScopeError', String(e?.stack ?? e));
              assert.equal(e.requiredScope, 'mcp:tools');
              assert.equal(e.resourceMetadataUrl?.toString(), metadataUrl);
            }
            return true;
          }
        );
        await conn?.close().catch(() => {});
      });

      it('no token: connect fails with 401', async () => {
        await assertConnectRefused(flavour, server.url, {}, { status: 401, message: /authentication required/ });
      });

      it('the SDK\'s ClientCredentialsProvider finds the provider from the 401 and gets a token itself', async () => {
        const seen = idp.requests.length;
        const authProvider = new flavour.ClientCredentials({
          clientId: idp.client.client_id,
          clientSecret: idp.client.client_secret,
          scope: 'mcp:tools',
          expectedIssuer: idp.issuer
        });
        await withConnection(flavour, server.url, {}, (conn) => assertWorks(flavour, conn), authProvider);
        const issued = authProvider.tokens()?.access_token;
        assert.ok(issued, 'the provider holds the token it obtained');
        assert.equal(decodeJwt(issued).payload.aud, publicUrl, 'requested with resource = MCP_PUBLIC_URL');
        assert.ok(idp.requests.slice(seen).includes('/token'), `the SDK called the token endpoint: ${idp.requests.slice(seen)}`);
      });
    });
  }

  describe('on the wire', () => {
    it('no token: 401 whose challenge points at the resource metadata and the scope', async () => {
      for (const body of [INITIALIZE, TOOLS_LIST]) {
        const r = await rawPost(server.url, {}, body);
        assertRefusal(r, { status: 401, code: -32001, message: /^authentication required$/ });
        assert.equal(r.challenge, `Bearer realm="mcp", resource_metadata="${metadataUrl}", scope="mcp:tools"`);
      }
    });

    it('a token without mcp:tools: 403, error="insufficient_scope", JSON-RPC error -32003', async () => {
      const { access_token: narrow } = await idp.clientCredentials({ scope: 'mcp:read' });
      const r = await rawPost(server.url, { Authorization: `Bearer ${narrow}` }, INITIALIZE);
      assertRefusal(r, { status: 403, code: -32003, message: /^insufficient scope: this server requires mcp:tools$/ });
      assert.match(r.challenge, /^Bearer realm="mcp", /);
      assert.ok(r.challenge.includes(`resource_metadata="${metadataUrl}"`), r.challenge);
      assert.ok(r.challenge.includes('scope="mcp:tools"'), r.challenge);
      assert.ok(r.challenge.includes('error="insufficient_scope"'), r.challenge);
    });

    it('a token the provider did not sign: 401 invalid_token', async () => {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const forged = jwt(
        { alg: 'RS256', typ: 'at+jwt', kid: idp.signingKid },
        { iss: idp.issuer, aud: publicUrl, sub: 'mallory', scope: 'mcp:tools', iat: now(), exp: now() + 600 },
        rs256(privateKey)
      );
      const r = await rawPost(server.url, { Authorization: `Bearer ${forged}` }, INITIALIZE);
      assertRefusal(r, { status: 401, code: -32001, message: /^invalid credentials: the token's signature is invalid$/ });
      assertInvalidToken(r.challenge, /signature is invalid/);
      assert.ok(r.challenge.includes(`resource_metadata="${metadataUrl}"`), r.challenge);
    });

    it('a valid provider token passes the gate', async () => {
      const r = await rawPost(server.url, { Authorization: `Bearer ${token}` }, INITIALIZE);
      assert.equal(r.status, 200, r.text);
    });
  });
});
