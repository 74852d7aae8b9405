/**
 * OIDC bearer tokens (issue 17 #4) against a real OpenID provider on loopback: tokens it issues
 * are accepted through discovery and its JWKS; rotation is followed; expired, wrong-audience,
 * `alg: none`, HS256-with-the-public-key and unknown-`kid` tokens are refused with stable codes;
 * the JWKS refetch an unknown `kid` causes is rate-limited; claims map to grants.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { exportJWK, exportSPKI, generateKeyPair, importJWK, SignJWT } from 'jose';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/config.ts';
import { type ConformanceServer, startConformanceServer } from './fixtures/conformance-server.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { startOidcIssuer, type TestOidcIssuer } from './helpers/oidc-issuer.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

const AUDIENCE = 'https://mcp-proxy.test';

function configFile(content: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), 'oidc-test-')), 'config.json');
  writeFileSync(path, JSON.stringify(content));
  return path;
}

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'oidc-test', version: '1' },
  },
};

/** POST /proxy to the configured server `name` with a bearer token. */
async function viaProxy(proxy: RunningProxy, token: string | undefined, server = 'upstream') {
  const response = await fetch(`${proxy.url}/proxy`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify({ server, ...INITIALIZE }),
  });
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary JSON bodies.
  const body = (await response.json()) as any;
  return { status: response.status, body, headers: response.headers };
}

/** POST /servers/{name}/mcp (or /mcp) with a bearer token. */
async function viaMcp(proxy: RunningProxy, token: string | undefined, path = '/servers/upstream/mcp') {
  const response = await fetch(`${proxy.url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(INITIALIZE),
  });
  const text = await response.text();
  return { status: response.status, text, headers: response.headers };
}

describe('OIDC bearer tokens', () => {
  let idp: TestOidcIssuer;
  let upstream: ConformanceServer;
  let proxy: RunningProxy | undefined;
  let clock: ManualClock;

  beforeEach(async () => {
    idp = await startOidcIssuer({ audience: AUDIENCE, extraClaims: { groups: ['staff'] } });
    upstream = await startConformanceServer();
    clock = new ManualClock();
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await upstream.stop();
    await idp.stop();
  });

  async function start(oidc: Record<string, unknown> = {}, env: Record<string, string> = {}) {
    const file = configFile({
      servers: { upstream: { url: upstream.url }, other: { url: upstream.url } },
      oidc: { issuers: [{ issuer: idp.issuer, audience: AUDIENCE, ...oidc }] },
    });
    proxy = await startProxy({ MCP_PROXY_CONFIG: file, ...env }, { clock });
    return proxy;
  }

  it('accepts an access token the provider issued, on POST /proxy and /servers/{name}/mcp', async () => {
    const proxy = await start();
    const token = await idp.serviceToken();
    const viaEnvelope = await viaProxy(proxy, token);
    assert.equal(viaEnvelope.status, 200, JSON.stringify(viaEnvelope.body));
    assert.ok(viaEnvelope.body.result?.serverInfo);
    const streamable = await viaMcp(proxy, token);
    assert.equal(streamable.status, 200, streamable.text);
    assert.match(streamable.text, /serverInfo/);
    // Verified once, then remembered: one discovery and one JWKS fetch for both requests.
    assert.equal(idp.jwksHits, 1);
  });

  it('takes the issuer and audience from OIDC_ISSUER and OIDC_AUDIENCE', async () => {
    const file = configFile({ servers: { upstream: { url: upstream.url } } });
    proxy = await startProxy(
      { MCP_PROXY_CONFIG: file, OIDC_ISSUER: idp.issuer, OIDC_AUDIENCE: AUDIENCE },
      { clock },
    );
    assert.equal((await viaProxy(proxy, await idp.serviceToken())).status, 200);
    assert.equal((await viaProxy(proxy, await idp.sign({ aud: 'https://elsewhere.test' }))).status, 401);
  });

  it('refuses expired, not-yet-valid, wrong-audience and wrong-issuer tokens with stable codes', async () => {
    const proxy = await start();
    const now = Math.floor(clock.now() / 1000);
    const cases: Array<[string, Promise<string>, number, string, string?]> = [
      ['expired beyond the leeway', idp.sign({ iat: now - 600, exp: now - 60 }), 401, 'token_expired'],
      ['not valid yet', idp.sign({ nbf: now + 120 }), 401, 'token_invalid', 'not yet valid'],
      ['another audience', idp.sign({ aud: 'https://elsewhere.test' }), 401, 'token_invalid', 'audience'],
      ['no sub', idp.sign({ sub: undefined }), 401, 'token_invalid', 'claims'],
      // A JWT from an issuer the proxy does not trust: no verifier takes it.
      ['another issuer', idp.sign({ iss: 'https://evil.test' }), 401, 'token_invalid'],
    ];
    for (const [what, token, status, code, reason] of cases) {
      const reply = await viaProxy(proxy, await token);
      assert.equal(reply.status, status, what);
      assert.equal(reply.body.error.data.code, code, what);
      if (reason !== undefined) assert.equal(reply.body.error.data.reason, reason, what);
      assert.ok(!JSON.stringify(reply.body).includes(await token), `${what}: the token is not echoed`);
    }
    // Within the leeway (30 s by default) a just-expired token still passes.
    const justExpired = await idp.sign({ iat: now - 600, exp: now - 10 });
    assert.equal((await viaProxy(proxy, justExpired)).status, 200);
  });

  it('refuses alg none and an HS256 token keyed with the public key (key confusion)', async () => {
    const proxy = await start();
    const none = await idp.sign({}, { alg: 'none' });
    const publicJwk = idp.publicJwk();
    // The classic confusion: HMAC keyed with the provider's public key, as JWK text and as PEM.
    const publicKey = await importJWK(publicJwk, 'ES256', { extractable: true });
    if (publicKey instanceof Uint8Array) throw new Error('an EC key imports as a key object');
    const pem = await exportSPKI(publicKey);
    const hmac = (secret: string) =>
      new SignJWT({
        iss: idp.issuer,
        aud: AUDIENCE,
        sub: 'mallory',
        exp: Math.floor(clock.now() / 1000) + 300,
      })
        .setProtectedHeader({ alg: 'HS256', kid: publicJwk.kid as string })
        .sign(new TextEncoder().encode(secret));
    for (const [what, token] of [
      ['alg none', none],
      ['HS256 keyed with the JWK', await hmac(JSON.stringify(publicJwk))],
      ['HS256 keyed with the PEM', await hmac(pem)],
    ] as const) {
      const reply = await viaProxy(proxy, token);
      assert.equal(reply.status, 401, what);
      assert.equal(reply.body.error.data.code, 'token_invalid', what);
      assert.equal(reply.body.error.data.reason, 'algorithm', what);
    }
  });

  it('refuses an asymmetric algorithm the issuer is not configured for', async () => {
    const proxy = await start({ algorithms: ['RS256'] });
    const reply = await viaProxy(proxy, await idp.serviceToken());
    assert.equal(reply.status, 401);
    assert.equal(reply.body.error.data.reason, 'algorithm');
  });

  it('follows a key rotation, and refetches for an unknown kid at most once per cooldown', async () => {
    const proxy = await start();
    assert.equal((await viaProxy(proxy, await idp.serviceToken())).status, 200);
    assert.equal(idp.jwksHits, 1);

    // The provider rotates (later than the cooldown after the first fetch): its new tokens carry a
    // kid the proxy has not seen, and it refetches the key set once.
    clock.advance(30_000);
    const newKid = await idp.rotate();
    const rotated = await idp.serviceToken();
    assert.equal(
      JSON.parse(Buffer.from(rotated.split('.')[0] as string, 'base64url').toString()).kid,
      newKid,
    );
    assert.equal((await viaProxy(proxy, rotated)).status, 200);
    assert.equal(idp.jwksHits, 2);

    // Made-up kids: refused, and the flood costs the provider nothing within the cooldown.
    for (let i = 0; i < 5; i++) {
      const forged = await idp.sign({ jti: `forged-${i}` }, { kid: `unknown-${i}` });
      const reply = await viaProxy(proxy, forged);
      assert.equal(reply.status, 401);
      assert.equal(reply.body.error.data.reason, 'key');
    }
    assert.equal(idp.jwksHits, 2, 'no refetch within the cooldown');

    // After the cooldown an unknown kid may cause one fetch again.
    clock.advance(29_000);
    assert.equal(
      (await viaProxy(proxy, await idp.sign({ jti: 'early' }, { kid: 'unknown-early' }))).status,
      401,
    );
    assert.equal(idp.jwksHits, 2, 'still within the cooldown');
    clock.advance(1_000);
    const late = await idp.sign({ jti: 'late' }, { kid: 'unknown-late' });
    assert.equal((await viaProxy(proxy, late)).status, 401);
    assert.equal(idp.jwksHits, 3);
  });

  it('answers 503 oidc_issuer_unavailable while the provider cannot be reached', async () => {
    const proxy = await start();
    const token = await idp.serviceToken();
    await idp.stop();
    const reply = await viaProxy(proxy, token);
    assert.equal(reply.status, 503);
    assert.equal(reply.body.error.data.code, 'oidc_issuer_unavailable');
  });

  it('maps claims to grants: a matching group reaches its servers only; no match is 403 oidc_no_grant', async () => {
    const proxy = await start({ claims: { groups: { staff: { servers: ['upstream'] } } } });
    const staff = await idp.sign({ groups: ['staff'] });
    assert.equal((await viaProxy(proxy, staff)).status, 200);
    // A server outside the grant looks as if it did not exist (as for a restricted static token).
    const elsewhere = await viaProxy(proxy, staff, 'other');
    assert.equal(elsewhere.status, 404, JSON.stringify(elsewhere.body));
    assert.equal(elsewhere.body.error.data.code, 'unknown_server');
    const outsider = await viaProxy(proxy, await idp.sign({ sub: 'bob', groups: ['guests'] }));
    assert.equal(outsider.status, 403);
    assert.equal(outsider.body.error.data.code, 'oidc_no_grant');
  });

  it('adds up several matches: restricted lists join, an open one opens, a dotted path reaches nested claims', async () => {
    const proxy = await start({
      claims: {
        groups: { staff: { servers: ['upstream'] }, ops: { servers: ['other'] } },
        'realm_access.roles': { auditor: {} },
      },
    });
    const both = await idp.sign({ groups: ['staff', 'ops'] });
    assert.equal((await viaProxy(proxy, both, 'upstream')).status, 200);
    assert.equal((await viaProxy(proxy, both, 'other')).status, 200);
    const staffOnly = await idp.sign({ groups: 'staff' });
    assert.equal((await viaProxy(proxy, staffOnly, 'other')).status, 404);
    // A role whose grant restricts nothing opens every server, whatever else matched.
    const auditor = await idp.sign({ groups: ['staff'], realm_access: { roles: ['auditor'] } });
    assert.equal((await viaProxy(proxy, auditor, 'other')).status, 200);
  });

  it('binds sessions to the principal: a refreshed token keeps them, another user gets 404', async () => {
    const proxy = await start();
    const post = async (token: string, message: unknown, sessionId?: string) =>
      fetch(`${proxy.url}/servers/upstream/mcp`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2025-06-18',
          ...(sessionId === undefined ? {} : { 'mcp-session-id': sessionId }),
        },
        body: JSON.stringify(message),
      });
    const opened = await post(await idp.sign({ jti: 'first' }), INITIALIZE);
    assert.equal(opened.status, 200);
    const sessionId = opened.headers.get('mcp-session-id');
    assert.ok(sessionId);
    await opened.text();
    const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
    const refreshed = await post(await idp.sign({ jti: 'second' }), list, sessionId);
    assert.equal(refreshed.status, 200, await refreshed.text());
    const bob = await post(await idp.sign({ sub: 'bob' }), list, sessionId);
    assert.equal(bob.status, 404, await bob.text());
  });

  it('accepts an OIDC token in the /ws subprotocol, and refuses an expired one at the handshake', async () => {
    const proxy = await start({}, { WS_ALLOW_MISSING_ORIGIN: 'true' });
    const open = (token: string) =>
      new WebSocket(`${proxy.url.replace('http', 'ws')}/ws?server=upstream`, ['mcp', `proxy-token.${token}`]);
    const ws = open(await idp.serviceToken());
    const answer = await new Promise<{ result?: unknown }>((resolve, reject) => {
      ws.once('open', () => ws.send(JSON.stringify(INITIALIZE)));
      ws.once('message', (data) => resolve(JSON.parse(String(data))));
      ws.once('error', reject);
    });
    ws.close();
    assert.ok(answer.result, JSON.stringify(answer));
    const now = Math.floor(clock.now() / 1000);
    const refused = open(await idp.sign({ iat: now - 600, exp: now - 60 }));
    const status = await new Promise<number | undefined>((resolve) => {
      refused.once('unexpected-response', (_request, response) => resolve(response.statusCode));
      refused.once('open', () => resolve(undefined));
      refused.once('error', () => resolve(-1));
    });
    refused.terminate();
    assert.equal(status, 401);
  });

  it('opens sessions under the rate class its claims map to (sessionsPerWindow), not the default', async () => {
    const file = configFile({
      servers: { upstream: { url: upstream.url } },
      rateClasses: { single: { sessionsPerWindow: 1 } },
      oidc: {
        issuers: [
          { issuer: idp.issuer, audience: AUDIENCE, claims: { groups: { staff: { rateClass: 'single' } } } },
        ],
      },
    });
    proxy = await startProxy({ MCP_PROXY_CONFIG: file, WS_ALLOW_MISSING_ORIGIN: 'true' }, { clock });
    const token = await idp.sign({ groups: ['staff'] });
    // Each /ws socket holds one upstream session: the second one is past the class's one per window.
    const socket = async () => {
      const ws = new WebSocket(`${(proxy as RunningProxy).url.replace('http', 'ws')}/ws?server=upstream`, [
        'mcp',
        `proxy-token.${token}`,
      ]);
      // The answer to initialize, or the close frame's reason when the socket's session is refused.
      const answer = await new Promise<string>((resolve, reject) => {
        ws.once('open', () => ws.send(JSON.stringify(INITIALIZE)));
        ws.once('message', (data) => resolve(String(data)));
        ws.once('close', (_code, reason) => resolve(`closed: ${reason}`));
        ws.once('error', reject);
      });
      ws.close();
      return answer;
    };
    assert.match(await socket(), /"result"/);
    assert.match(await socket(), /^closed: rate_limited/);
  });

  it('trusts several issuers; the same sub from two issuers is two principals', async () => {
    const second = await startOidcIssuer({ audience: 'https://second.test' });
    try {
      const file = configFile({
        servers: { upstream: { url: upstream.url } },
        oidc: {
          issuers: [
            { issuer: idp.issuer, audience: AUDIENCE },
            { issuer: second.issuer, audience: 'https://second.test' },
          ],
        },
      });
      proxy = await startProxy({ MCP_PROXY_CONFIG: file }, { clock });
      const mcp = proxy;
      const post = (token: string, message: unknown, sessionId?: string) =>
        fetch(`${mcp.url}/servers/upstream/mcp`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            'mcp-protocol-version': '2025-06-18',
            ...(sessionId === undefined ? {} : { 'mcp-session-id': sessionId }),
          },
          body: JSON.stringify(message),
        });
      const opened = await post(await idp.sign({ sub: 'alice' }), INITIALIZE);
      assert.equal(opened.status, 200);
      const sessionId = opened.headers.get('mcp-session-id') ?? '';
      await opened.text();
      const fromSecond = await second.serviceToken();
      assert.equal((await viaProxy(mcp, fromSecond)).status, 200);
      // Each issuer's audience is its own: the first's audience means nothing to the second.
      assert.equal((await viaProxy(mcp, await second.sign({ aud: AUDIENCE }))).status, 401);
      const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
      const otherAlice = await post(await second.sign({ sub: 'alice' }), list, sessionId);
      assert.equal(otherAlice.status, 404, 'alice of another issuer is someone else');
      const sameAlice = await post(await idp.sign({ sub: 'alice', jti: 'again' }), list, sessionId);
      assert.equal(sameAlice.status, 200);
    } finally {
      await second.stop();
    }
  });

  it('closes a /ws socket opened with an OIDC token when the token expires', async () => {
    const proxy = await start({}, { WS_ALLOW_MISSING_ORIGIN: 'true' });
    const now = Math.floor(clock.now() / 1000);
    const token = await idp.sign({ iat: now, exp: now + 60 });
    const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/ws?server=upstream`, [
      'mcp',
      `proxy-token.${token}`,
    ]);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    await new Promise<unknown>((resolve, reject) => {
      ws.once('open', () => ws.send(JSON.stringify(INITIALIZE)));
      ws.once('message', resolve);
      ws.once('error', reject);
    });
    clock.advance(59_000);
    ws.ping();
    assert.equal(ws.readyState, WebSocket.OPEN);
    clock.advance(2_000);
    // A bound on the failure only: the close follows the clock's sweep at once.
    const timeout = new Promise<number>((resolve) => setTimeout(() => resolve(-1), 5_000).unref());
    assert.equal(await Promise.race([closed, timeout]), 4401);
    ws.terminate();
  });

  it('applies a reload: a changed mapping on the next request, a removed issuer at once', async () => {
    const proxy = await start({ claims: { groups: { staff: { servers: ['upstream'] } } } });
    const staff = await idp.sign({ groups: ['staff'] });
    assert.equal((await viaProxy(proxy, staff, 'other')).status, 404);
    const reload = (oidc: unknown) =>
      proxy.app.reload(
        loadConfig({
          env: { PROXY_TOKEN: proxy.token, ALLOW_PRIVATE_NETWORKS: 'true' },
          configPath: configFile({
            servers: { upstream: { url: upstream.url }, other: { url: upstream.url } },
            ...(oidc === undefined ? {} : { oidc }),
          }),
        }),
      );
    reload({
      issuers: [
        { issuer: idp.issuer, audience: AUDIENCE, claims: { groups: { staff: { servers: ['other'] } } } },
      ],
    });
    // The same token, remembered as verified before: judged again under the new mapping.
    assert.equal((await viaProxy(proxy, staff, 'other')).status, 200);
    assert.equal((await viaProxy(proxy, staff, 'upstream')).status, 404);
    reload(undefined);
    const refused = await viaProxy(proxy, staff, 'other');
    assert.equal(refused.status, 401);
  });
});

describe('OIDC configuration', () => {
  const load = (env: Record<string, string>, oidc?: unknown) =>
    loadConfig({
      env,
      ...(oidc === undefined
        ? {}
        : { configPath: configFile({ servers: { github: { url: 'https://example.com/mcp' } }, oidc }) }),
    });

  it('needs an audience with OIDC_ISSUER', () => {
    assert.throws(
      () => load({ OIDC_ISSUER: 'https://login.example.com' }),
      /OIDC_ISSUER: needs OIDC_AUDIENCE/,
    );
    const config = load({ OIDC_ISSUER: 'https://login.example.com', OIDC_AUDIENCE: 'a, b' });
    assert.deepEqual(config.oidc.audience, ['a', 'b']);
  });

  it('takes https issuers, and http ones only on loopback', () => {
    assert.throws(() => load({ OIDC_ISSUER: 'http://login.example.com', OIDC_AUDIENCE: 'a' }), /https/);
    assert.doesNotThrow(() => load({ OIDC_ISSUER: 'http://127.0.0.1:8080', OIDC_AUDIENCE: 'a' }));
    assert.doesNotThrow(() => load({ OIDC_ISSUER: 'http://localhost', OIDC_AUDIENCE: 'a' }));
    assert.throws(() => load({ OIDC_ISSUER: 'http://localhost.evil.test', OIDC_AUDIENCE: 'a' }), /https/);
  });

  it('refuses symmetric algorithms and grants naming unknown servers', () => {
    const issuer = { issuer: 'https://login.example.com', audience: 'a' };
    assert.throws(() => load({}, { issuers: [{ ...issuer, algorithms: ['HS256'] }] }), /algorithms/);
    assert.throws(() => load({}, { issuers: [{ ...issuer, algorithms: ['none'] }] }), /algorithms/);
    assert.throws(
      () => load({}, { issuers: [{ ...issuer, claims: { groups: { staff: { servers: ['gitlab'] } } } }] }),
      /no server named "gitlab"/,
    );
    assert.doesNotThrow(() =>
      load({}, { issuers: [{ ...issuer, claims: { groups: { staff: { servers: ['github'] } } } }] }),
    );
    assert.throws(() => load({}, { issuers: [issuer, { ...issuer, audience: 'b' }] }), /listed twice/);
  });

  it('checks mapped and fallback grants as config tokens grants are checked (URL patterns, rate classes)', () => {
    const issuer = { issuer: 'https://login.example.com', audience: 'a' };
    const mapped = (grants: unknown) =>
      load({}, { issuers: [{ ...issuer, claims: { groups: { staff: grants } } }] });
    const fallback = (grants: unknown) => load({}, { issuers: [{ ...issuer, grants }] });
    for (const check of [mapped, fallback]) {
      assert.throws(() => check({ urls: ['not a url pattern'] }), /a URL pattern looks like/);
      assert.throws(() => check({ rateClass: 'no spaces here' }), /rate class names use/);
      assert.throws(() => check({ rateClass: 'missing' }), /no rate class named "missing"/);
      assert.throws(() => check({ servers: ['gitlab'] }), /no server named "gitlab"/);
      assert.doesNotThrow(() => check({ urls: ['https://*.example.com/mcp'], servers: ['github'] }));
    }
  });
});

describe('OIDC discovery documents', () => {
  it('refuses a document naming another issuer, or keys over plain http, and uses a sound one', async () => {
    const issuer = 'https://login.example.test';
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const keys = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1' }] };
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(issuer)
      .setAudience(AUDIENCE)
      .setSubject('alice')
      .setExpirationTime('5m')
      .sign(privateKey);
    const documents: Array<Record<string, unknown>> = [
      { issuer: 'https://other.example.test', jwks_uri: `${issuer}/jwks` },
      { issuer, jwks_uri: 'http://login.example.test/jwks' },
      { issuer, jwks_uri: `${issuer}/jwks` },
    ];
    const outcomes: number[] = [];
    for (const document of documents) {
      const fetched: string[] = [];
      const proxy = await startProxy(
        { OIDC_ISSUER: issuer, OIDC_AUDIENCE: AUDIENCE },
        {
          oidcFetch: async (url) => {
            fetched.push(url);
            if (url === `${issuer}/.well-known/openid-configuration`) return document;
            if (url === `${issuer}/jwks`) return keys;
            throw new Error(`unexpected fetch of ${url}`);
          },
        },
      );
      try {
        const response = await fetch(`${proxy.url}/proxy`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ server: 'none', ...INITIALIZE }),
        });
        const body = (await response.json()) as { error: { data: { code: string } } };
        outcomes.push(response.status);
        if (response.status === 503) assert.equal(body.error.data.code, 'oidc_issuer_unavailable');
        assert.ok(!fetched.includes('http://login.example.test/jwks'), 'keys are never fetched over http');
      } finally {
        await proxy.close();
      }
    }
    // The sound document gets the token past authentication (to an unknown server: 404).
    assert.deepEqual(outcomes, [503, 503, 404]);
  });
});
