/**
 * Regressions from the attacker review of OIDC (issue 17): what a refused token leaves in the
 * logs, what a trusted proxy's `X-Forwarded-Proto` may put in a challenge, which issuer and
 * `jwks_uri` URLs pass, which token types are access tokens, which audience is accepted where,
 * and how a reload re-judges what a token holds open. A real `oidc-provider` on loopback where
 * a provider is needed; an in-memory fetcher where a URL must be judged without being fetched.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/config.ts';
import { type ConformanceServer, startConformanceServer } from './fixtures/conformance-server.ts';
import { startOidcIssuer, type TestOidcIssuer } from './helpers/oidc-issuer.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

const AUDIENCE = 'https://mcp-proxy.test';

function configFile(content: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), 'oidc-review-')), 'config.json');
  writeFileSync(path, JSON.stringify(content));
  return path;
}

const PING = { jsonrpc: '2.0', id: 1, method: 'ping' };

/** POSTs a ping to `path` with a bearer token; the status and the body's error. */
async function call(
  proxy: RunningProxy,
  token: string,
  path = '/proxy',
  body: unknown = { server: 'x', ...PING },
) {
  const response = await fetch(`${proxy.url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${token}`,
    },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, text };
}

describe('OIDC review: a real provider on loopback', () => {
  let idp: TestOidcIssuer;
  let proxy: RunningProxy | undefined;

  beforeEach(async () => {
    idp = await startOidcIssuer({ audience: AUDIENCE });
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await idp.stop();
  });

  it('logs no claim of a refused token, even at trace level (review 6)', async () => {
    proxy = await startProxy({ OIDC_ISSUER: idp.issuer, OIDC_AUDIENCE: AUDIENCE, LOG_LEVEL: 'trace' });
    const now = Math.floor(Date.now() / 1000);
    const tokens = [
      await idp.sign({ exp: now - 3600, email: 'SECRET-CLAIM-expired@example.test' }),
      await idp.sign({ aud: 'https://other.test', email: 'SECRET-CLAIM-audience@example.test' }),
      await idp.sign({ nbf: now + 3600, email: 'SECRET-CLAIM-nbf@example.test' }),
      await idp.sign({ sub: 'x'.repeat(300), email: 'SECRET-CLAIM-subject@example.test' }),
    ];
    for (const token of tokens) {
      for (const path of ['/proxy', '/mcp']) {
        const { status, text } = await call(proxy, token, path);
        assert.equal(status, 401, text);
        assert.doesNotMatch(text, /SECRET-CLAIM/);
      }
    }
    const leaks = proxy.logs.filter(
      (line) =>
        line.includes('SECRET-CLAIM') || tokens.some((token) => line.includes(token.split('.')[2] as string)),
    );
    assert.deepEqual(leaks, []);
  });
});

describe('OIDC review: what a trusted proxy forwards', () => {
  it('puts only http or https from X-Forwarded-Proto in the challenge and the metadata (review 7)', async () => {
    // No provider is contacted: a challenge and the metadata need only the configured issuer.
    const proxy = await startProxy({
      OIDC_ISSUER: 'https://idp.example.test',
      OIDC_AUDIENCE: AUDIENCE,
      TRUSTED_PROXIES: '127.0.0.1',
    });
    try {
      const ask = (path: string, proto: string) =>
        fetch(`${proxy.url}${path}`, {
          method: path.endsWith('/mcp') && !path.includes('well-known') ? 'POST' : 'GET',
          headers: {
            'x-forwarded-proto': proto,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
          },
          ...(path.includes('well-known') ? {} : { body: '{}' }),
        });
      const hostile = 'https://evil.example/?", error_uri="https://evil.example';
      for (const proto of [hostile, 'javascript', 'ftp']) {
        const refused = await ask('/mcp', proto);
        assert.equal(refused.status, 401);
        const challenge = refused.headers.get('www-authenticate');
        assert.ok(challenge === null || !/evil|javascript|ftp/.test(challenge), String(challenge));
        const metadata = await ask('/.well-known/oauth-protected-resource/mcp', proto);
        assert.doesNotMatch(await metadata.text(), /evil|javascript|ftp/);
      }
      // A sound one is still honoured.
      const forwarded = await ask('/mcp', 'https');
      assert.match(
        String(forwarded.headers.get('www-authenticate')),
        /resource_metadata="https:\/\/127\.0\.0\.1:/,
      );
    } finally {
      await proxy.close();
    }
  });
});

describe('OIDC review: issuer URLs', () => {
  const load = (issuer: string, where: 'env' | 'file') =>
    where === 'env'
      ? loadConfig({ env: { OIDC_ISSUER: issuer, OIDC_AUDIENCE: 'a' } })
      : loadConfig({ env: {}, configPath: configFile({ oidc: { issuers: [{ issuer, audience: 'a' }] } }) });

  it('judges the host an http issuer names, and refuses userinfo, a query or a fragment (review 8)', () => {
    for (const where of ['env', 'file'] as const) {
      for (const issuer of [
        // userinfo that makes a remote host look like loopback to a prefix check
        'http://localhost:@evil.example.test',
        'http://127.0.0.1:x@evil.example.test/',
        'http://[::1]:@evil.example.test',
        'https://user:secret@idp.example.test',
        // `oidc:<issuer>#<sub>` must split in one place only
        'https://idp.example.test/#t',
        'https://idp.example.test/realm#b',
        'https://idp.example.test/?tenant=a',
        'http://localhost.evil.example.test',
        'ftp://idp.example.test',
      ]) {
        assert.throws(() => load(issuer, where), /https/, `${where}: ${issuer}`);
      }
      for (const issuer of [
        'https://idp.example.test',
        'https://idp.example.test/realms/apps',
        'http://127.0.0.1:8080',
        'http://localhost',
        'http://[::1]:9000/issuer',
      ]) {
        assert.doesNotThrow(() => load(issuer, where), `${where}: ${issuer}`);
      }
    }
  });
});

describe('OIDC review: the key set a discovery document names', () => {
  it('fetches keys over https, or plain http only from loopback (review 9)', async () => {
    // An in-memory fetcher records what would be fetched: nothing leaves the process.
    const cases: Array<{ issuer: string; jwks: string; fetched: boolean }> = [
      { issuer: 'http://127.0.0.1:1', jwks: 'http://169.254.169.254/latest/meta-data', fetched: false },
      { issuer: 'http://127.0.0.1:1', jwks: 'http://internal.corp.example.test/jwks', fetched: false },
      { issuer: 'http://127.0.0.1:1', jwks: 'http://localhost:@evil.example.test/jwks', fetched: false },
      { issuer: 'https://idp.example.test', jwks: 'http://idp.example.test/jwks', fetched: false },
      { issuer: 'https://idp.example.test', jwks: 'file:///etc/passwd', fetched: false },
      { issuer: 'https://idp.example.test', jwks: 'https://user:pw@idp.example.test/jwks', fetched: false },
      { issuer: 'http://127.0.0.1:1', jwks: 'http://127.0.0.1:1/jwks', fetched: true },
      { issuer: 'https://idp.example.test', jwks: 'https://keys.example.test/jwks?tenant=a', fetched: true },
    ];
    for (const { issuer, jwks, fetched: expected } of cases) {
      const fetched: string[] = [];
      const proxy = await startProxy(
        { OIDC_ISSUER: issuer, OIDC_AUDIENCE: 'a' },
        {
          oidcFetch: async (url) => {
            fetched.push(url);
            return url.endsWith('/openid-configuration') ? { issuer, jwks_uri: jwks } : { keys: [] };
          },
        },
      );
      try {
        const header = Buffer.from('{"alg":"ES256","kid":"k"}').toString('base64url');
        const claims = Buffer.from(JSON.stringify({ iss: issuer, aud: 'a', sub: 's', exp: 9e9 })).toString(
          'base64url',
        );
        const { status, text } = await call(proxy, `${header}.${claims}.AAAA`);
        assert.equal(fetched.includes(jwks), expected, `${issuer} → ${jwks}: fetched ${fetched.join(', ')}`);
        assert.equal(status, expected ? 401 : 503, text);
      } finally {
        await proxy.close();
      }
    }
  });
});

describe('OIDC review: token types', () => {
  let idp: TestOidcIssuer;
  let proxy: RunningProxy | undefined;

  beforeEach(async () => {
    idp = await startOidcIssuer({ audience: AUDIENCE });
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await idp.stop();
  });

  /** The status of POST /proxy with a token of type `typ`, and the refusal's reason. */
  async function judged(typ: string | null): Promise<string> {
    const token = await idp.sign({}, { typ });
    const { status, text } = await call(proxy as RunningProxy, token);
    if (status === 401) return `401 ${JSON.parse(text).error?.data?.reason}`;
    return String(status);
  }

  it('refuses a JWT whose typ says it is no access token, and can require at+jwt (review 10)', async () => {
    proxy = await startProxy({ OIDC_ISSUER: idp.issuer, OIDC_AUDIENCE: AUDIENCE });
    // Accepted: an access token (RFC 9068), a plain JWT or no typ (many providers, ID tokens).
    // `server: 'x'` is unknown: 404 means the token itself passed.
    for (const typ of ['at+jwt', 'application/at+jwt', 'AT+JWT', 'JWT', null]) {
      assert.equal(await judged(typ), '404', String(typ));
    }
    // Refused: logout tokens, security events, DPoP proofs… signed by the same provider.
    for (const typ of [
      'logout+jwt',
      'secevent+jwt',
      'dpop+jwt',
      'application/jwt+logout',
      'token-introspection+jwt',
    ]) {
      assert.equal(await judged(typ), '401 type', typ);
    }
    await proxy.close();

    proxy = await startProxy({
      OIDC_ISSUER: idp.issuer,
      OIDC_AUDIENCE: AUDIENCE,
      OIDC_REQUIRE_AT_JWT: 'true',
    });
    for (const typ of ['at+jwt', 'application/at+jwt']) assert.equal(await judged(typ), '404', String(typ));
    for (const typ of ['JWT', null, 'logout+jwt']) assert.equal(await judged(typ), '401 type', String(typ));
    // A real access token of the provider is an at+jwt.
    const { status } = await call(proxy, await idp.serviceToken());
    assert.equal(status, 404);
  });
});

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'oidc-review', version: '1' },
  },
};

describe('OIDC review: a reload re-judges what a token holds (review 3)', () => {
  let idp: TestOidcIssuer;
  let upstream: ConformanceServer;
  let proxy: RunningProxy | undefined;

  beforeEach(async () => {
    idp = await startOidcIssuer({ audience: AUDIENCE });
    upstream = await startConformanceServer();
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await upstream.stop();
    await idp.stop();
  });

  const servers = () => ({ upstream: { url: upstream.url }, other: { url: upstream.url } });
  const issuerWith = (claims: unknown) => ({ issuers: [{ issuer: idp.issuer, audience: AUDIENCE, claims }] });
  const reload = (running: RunningProxy, oidc: unknown) =>
    running.app.reload(
      loadConfig({
        env: {
          PROXY_TOKEN: running.token,
          ALLOW_PRIVATE_NETWORKS: 'true',
          STORE: 'memory',
          WS_ALLOW_MISSING_ORIGIN: 'true',
        },
        configPath: configFile({ servers: servers(), ...(oidc === undefined ? {} : { oidc }) }),
      }),
    );
  const initialize = async (running: RunningProxy, token: string, server: string) =>
    (await call(running, token, '/proxy', { server, ...INITIALIZE })).status;

  const staffOnly = (servers: string[]) => ({ groups: { staff: { servers } } });
  for (const { change, oidc, closes, server, after } of [
    { change: 'removes the issuer', oidc: undefined, closes: 4401, server: 'other', after: 401 },
    {
      change: "removes the token's group",
      oidc: { groups: { admins: {} } },
      closes: 4403,
      server: 'other',
      after: 403,
    },
    {
      change: "narrows the group's servers to the socket's",
      oidc: staffOnly(['upstream']),
      closes: undefined,
      server: 'other',
      after: 404,
    },
    {
      change: "narrows the group's servers to others",
      oidc: staffOnly(['other']),
      closes: 4401,
      server: 'upstream',
      after: 404,
    },
  ]) {
    it(`ends a /ws socket, and refuses the next request, when a reload ${change}`, async () => {
      proxy = await startProxy({
        MCP_PROXY_CONFIG: configFile({ servers: servers(), oidc: issuerWith({ groups: { staff: {} } }) }),
        WS_ALLOW_MISSING_ORIGIN: 'true',
      });
      const running = proxy;
      const token = await idp.sign({ groups: ['staff'] });
      assert.equal(await initialize(running, token, 'other'), 200);
      const ws = new WebSocket(`${running.url.replace('http', 'ws')}/ws?server=upstream`, [
        'mcp',
        `proxy-token.${token}`,
      ]);
      try {
        await new Promise((resolve, reject) => {
          ws.once('open', resolve);
          ws.once('error', reject);
        });
        const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
        reload(running, oidc === undefined ? undefined : issuerWith(oidc));
        if (closes !== undefined) {
          // A bound on the failure only: the recheck closes it as soon as it has verified again.
          const timeout = new Promise<string>((resolve) =>
            setTimeout(() => resolve('still open'), 5_000).unref(),
          );
          assert.equal(await Promise.race([closed, timeout]), closes);
        }
        // The recheck must not have remembered the token under the old mapping.
        const answered = await call(running, token, '/proxy', { server, ...INITIALIZE });
        assert.equal(answered.status, after, answered.text);
        if (closes === undefined) assert.equal(ws.readyState, WebSocket.OPEN);
      } finally {
        ws.terminate();
      }
    });
  }

  it('does not remember a verification that began before a reload', async () => {
    // Keys served by an in-memory fetcher whose first key-set answer the test holds back.
    const issuer = 'https://idp.example.test';
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const keys = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] };
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let keyFetches = 0;
    let fetching: () => void = () => {};
    const fetchStarted = new Promise<void>((resolve) => {
      fetching = resolve;
    });
    const config = (claims: unknown) =>
      configFile({ servers: servers(), oidc: { issuers: [{ issuer, audience: AUDIENCE, claims }] } });
    proxy = await startProxy(
      { MCP_PROXY_CONFIG: config({ groups: { staff: {} } }) },
      {
        oidcFetch: async (url) => {
          if (url === `${issuer}/.well-known/openid-configuration`)
            return { issuer, jwks_uri: `${issuer}/jwks` };
          if (url !== `${issuer}/jwks`) throw new Error(`unexpected fetch of ${url}`);
          if (++keyFetches === 1) {
            fetching();
            await held;
          }
          return keys;
        },
      },
    );
    const running = proxy;
    const token = await new SignJWT({ groups: ['staff'] })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
      .setIssuer(issuer)
      .setAudience(AUDIENCE)
      .setSubject('alice')
      .setExpirationTime('5m')
      .sign(privateKey);
    const before = initialize(running, token, 'other');
    await fetchStarted;
    running.app.reload(
      loadConfig({
        env: { PROXY_TOKEN: running.token, ALLOW_PRIVATE_NETWORKS: 'true', STORE: 'memory' },
        configPath: config({ groups: { admins: {} } }),
      }),
    );
    release();
    // Begun under the old mapping, it may finish under it, or end as what it holds is judged
    // again under the new one (held after the reload re-judged every holding); what comes next
    // may not pass.
    const first = await before.catch(() => 'ended');
    assert.ok(first === 200 || first === 'ended', String(first));
    assert.equal(await initialize(running, token, 'other'), 403);
  });
});

describe('OIDC review: resource audiences under PUBLIC_URL (review 11)', () => {
  let idp: TestOidcIssuer;
  let upstream: ConformanceServer;
  let proxy: RunningProxy | undefined;
  const PUBLIC = 'https://proxy.example.test';

  beforeEach(async () => {
    idp = await startOidcIssuer({ audience: AUDIENCE });
    upstream = await startConformanceServer();
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await upstream.stop();
    await idp.stop();
  });

  /** Whether a token passes authentication on each surface (anything but a 401 / a refused handshake). */
  async function surfaces(running: RunningProxy, token: string): Promise<Record<string, boolean>> {
    const passes = async (path: string) => {
      const body = path === '/proxy' ? { server: 'one', ...INITIALIZE } : INITIALIZE;
      const { status } = await call(running, token, path, body);
      return status !== 401;
    };
    const ws = new WebSocket(`${running.url.replace('http', 'ws')}/ws?server=one`, [
      'mcp',
      `proxy-token.${token}`,
    ]);
    const opened = await new Promise<boolean>((resolve) => {
      ws.once('unexpected-response', () => resolve(false));
      ws.once('open', () => resolve(true));
      ws.once('error', () => resolve(false));
    });
    ws.terminate();
    return {
      '/proxy': await passes('/proxy'),
      '/ws': opened,
      '/mcp': await passes('/mcp'),
      '/servers/one/mcp': await passes('/servers/one/mcp'),
      '/servers/two/mcp': await passes('/servers/two/mcp'),
    };
  }

  it('accepts a resource URL as audience only on the endpoint it names', async () => {
    proxy = await startProxy({
      MCP_PROXY_CONFIG: configFile({
        servers: { one: { url: upstream.url }, two: { url: upstream.url } },
        oidc: { issuers: [{ issuer: idp.issuer, audience: AUDIENCE }] },
        publicUrl: PUBLIC,
      }),
      WS_ALLOW_MISSING_ORIGIN: 'true',
    });
    const only = (...open: string[]) =>
      Object.fromEntries(
        ['/proxy', '/ws', '/mcp', '/servers/one/mcp', '/servers/two/mcp'].map((path) => [
          path,
          open.includes(path),
        ]),
      );
    const two = await idp.sign({ aud: `${PUBLIC}/servers/two/mcp` });
    // Verified (and remembered) on its own endpoint first: the binding holds for the cached token too.
    assert.equal((await call(proxy, two, '/servers/two/mcp', INITIALIZE)).status, 200);
    const refused = await call(proxy, two, '/servers/one/mcp', INITIALIZE);
    assert.equal(refused.status, 401);
    assert.equal(JSON.parse(refused.text).error.data.reason, 'audience');
    assert.deepEqual(await surfaces(proxy, two), only('/servers/two/mcp'));
    assert.deepEqual(await surfaces(proxy, await idp.sign({ aud: PUBLIC })), only('/proxy', '/ws'));
    assert.deepEqual(await surfaces(proxy, await idp.sign({ aud: `${PUBLIC}/mcp` })), only('/mcp'));
    assert.deepEqual(
      await surfaces(
        proxy,
        await idp.sign({ aud: [`${PUBLIC}/servers/one/mcp`, `${PUBLIC}/servers/two/mcp`] }),
      ),
      only('/servers/one/mcp', '/servers/two/mcp'),
    );
    // A configured audience is not tied to an endpoint; with it, a resource in `aud` does not narrow.
    const everywhere = only('/proxy', '/ws', '/mcp', '/servers/one/mcp', '/servers/two/mcp');
    assert.deepEqual(await surfaces(proxy, await idp.sign({})), everywhere);
    assert.deepEqual(
      await surfaces(proxy, await idp.sign({ aud: [AUDIENCE, `${PUBLIC}/servers/two/mcp`] })),
      everywhere,
    );
  });

  it('binds the audience to the route matched, however its path is spelled', async () => {
    proxy = await startProxy({
      MCP_PROXY_CONFIG: configFile({
        servers: { one: { url: upstream.url }, two: { url: upstream.url } },
        oidc: { issuers: [{ issuer: idp.issuer, audience: AUDIENCE }] },
        publicUrl: PUBLIC,
      }),
    });
    // The router decodes `%6f` to `o`: these reach /servers/one/mcp and /mcp.
    const base = await idp.sign({ aud: PUBLIC });
    const two = await idp.sign({ aud: `${PUBLIC}/servers/two/mcp` });
    for (const token of [base, two])
      for (const path of ['/servers/%6fne/mcp', '/%6dcp', '/servers/%6Fne/mcp?x=1']) {
        const refused = await call(proxy, token, path, INITIALIZE);
        assert.equal(refused.status, 401, `${path}: ${refused.text}`);
        assert.equal(JSON.parse(refused.text).error.data.reason, 'audience');
      }
    // The endpoint it names, spelled encoded, is still that endpoint.
    assert.equal((await call(proxy, two, '/servers/%74wo/mcp', INITIALIZE)).status, 200);
    const one = await idp.sign({ aud: `${PUBLIC}/servers/one/mcp` });
    assert.equal((await call(proxy, one, '/servers/%6fne/mcp', INITIALIZE)).status, 200);
  });
});
