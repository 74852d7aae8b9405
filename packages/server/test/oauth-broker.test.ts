/**
 * Issue 18, first slice: the upstream OAuth broker on POST /proxy, end to end against the OAuth
 * test world (helpers/oauth-world.ts: oidc-provider with DCR, PKCE S256, RFC 8707 and refresh
 * tokens; an SDK upstream that accepts only its tokens). The first call fails with
 * `upstream_auth_required`; a scripted user follows `authorizeUrl` through login and consent to
 * the proxy's callback; the retry succeeds with the token the proxy keeps, never shown to anyone.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import { issuerKey } from '../src/credentials/registration.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { authServerMetadata, json, serveHostile } from './helpers/hostile-server.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { freePort } from './helpers/net.ts';
import { connectMcp } from './helpers/oauth-proxy.ts';
import { type OAuthWorld, type OAuthWorldOptions, startOAuthWorld } from './helpers/oauth-world.ts';
import { postProxy, type Reply, type RunningProxy, startProxy } from './helpers/proxy.ts';

const ALICE = 'alice-proxy-token-0123456789abcdef';
const BOB = 'bob-proxy-token-0123456789abcdefgh';

/** The app's origin: listed in CORS_ORIGINS, it answers the start page's bind (docs/oauth.md). */
const APP = 'http://app.example';
/** What the start page gets from the app that opened it: the caller's proxy token. */
function bindAs(credential: string) {
  return { credential, origin: APP };
}

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

interface Setup {
  readonly world: OAuthWorld;
  readonly proxy: RunningProxy;
  readonly clock: ManualClock;
  readonly publicUrl: string;
}

async function setup(
  env: Record<string, string> = {},
  options: {
    readonly world?: (publicUrl: string) => OAuthWorldOptions;
    readonly config?: (world: OAuthWorld) => unknown;
  } = {},
): Promise<Setup> {
  const clock = new ManualClock();
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const world = await startOAuthWorld({ clock, accessTokenTtl: 60, ...options.world?.(publicUrl) });
  cleanup.push(() => world.stop());
  if (options.config) {
    const dir = mkdtempSync(join(tmpdir(), 'oauth-config-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'proxy.json'), JSON.stringify(options.config(world)));
    env = { MCP_PROXY_CONFIG: join(dir, 'proxy.json'), ...env };
  }
  const proxy = await startProxy(
    {
      PORT: String(port),
      PUBLIC_URL: publicUrl,
      OAUTH_BROKER: 'true',
      PROXY_TOKENS: `${ALICE},${BOB}`,
      CORS_ORIGINS: APP,
      ...env,
    },
    { clock },
  );
  cleanup.push(() => proxy.close());
  return { world, proxy, clock, publicUrl };
}

let nextId = 1;
function whoami(s: Setup, token: string): Promise<Reply> {
  return postProxy(
    { url: s.proxy.url, token },
    {
      mcp_server_url: s.world.upstream.url,
      jsonrpc: '2.0',
      id: nextId++,
      method: 'tools/call',
      params: { name: 'whoami', arguments: {} },
    },
    { origin: 'http://app.example' },
  );
}

function subjectOf(reply: Reply): string {
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  return JSON.parse(reply.body.result.content[0].text).sub;
}

/** The first call's error, checked, and its authorize URL. */
function authRequired(s: Setup, reply: Reply): string {
  assert.equal(reply.status, 401, JSON.stringify(reply.body));
  assert.equal(reply.body.error.code, -33200);
  assert.equal(reply.body.error.data.code, 'upstream_auth_required');
  const url: string = reply.body.error.data.authorizeUrl;
  assert.ok(url.startsWith(`${s.publicUrl}/oauth/start/`), url);
  assert.equal(reply.body.error.data.server, new URL(s.world.upstream.url).host);
  return url;
}

async function connect(s: Setup, token: string, user: string): Promise<void> {
  const url = authRequired(s, await whoami(s, token));
  const done = await s.world.user(user).authorize(url, { follow: true, bind: bindAs(token) });
  assert.equal(done.callback?.status, 200, done.callback?.body);
  assert.equal(JSON.parse(done.callback?.body ?? '{}').ok, true);
}

/** The access tokens the upstream saw (without `Bearer `). */
function upstreamTokens(s: Setup): string[] {
  return s.world.upstream
    .authorizations()
    .filter((h) => h.startsWith('Bearer '))
    .map((h) => h.slice('Bearer '.length));
}

describe('upstream OAuth broker on POST /proxy', () => {
  it('is on by default when PUBLIC_URL is set (OAUTH_BROKER unset)', async () => {
    const s = await setup({ OAUTH_BROKER: '' });
    authRequired(s, await whoami(s, ALICE));
  });

  it("stays off by default without PUBLIC_URL: the upstream 401 is the caller's", async () => {
    const s = await setup({ OAUTH_BROKER: '', PUBLIC_URL: '' });
    const reply = await whoami(s, ALICE);
    assert.equal(reply.status, 401, JSON.stringify(reply.body));
    assert.equal(reply.body.error.data.code, 'upstream_unauthorized');
    assert.equal(s.world.as.events.length, 0, 'nothing reached the authorization server');
  });

  it('says at start that a plain-http PUBLIC_URL off loopback keeps it off, and stays off', async () => {
    const s = await setup({ OAUTH_BROKER: '', PUBLIC_URL: 'http://proxy.example.test' });
    const warned = s.proxy.logs.filter((line) => line.includes('the OAuth broker stays off'));
    assert.equal(warned.length, 1, s.proxy.logs.join('\n'));
    assert.match(String(warned[0]), /PUBLIC_URL http:\/\/proxy\.example\.test/);
    const reply = await whoami(s, ALICE);
    assert.equal(reply.body.error.data.code, 'upstream_unauthorized');
    // Loopback http (the tests' own PUBLIC_URL) runs the broker and says nothing of the kind.
    const running = await setup({ OAUTH_BROKER: '' });
    assert.equal(running.proxy.logs.filter((line) => line.includes('the OAuth broker stays off')).length, 0);
  });

  it('says at start that it is on, naming the PUBLIC_URL origin; off, it says nothing of the kind', async () => {
    const on = (s: Setup) => s.proxy.logs.filter((line) => line.includes('OAuth broker on'));
    const s = await setup({ OAUTH_BROKER: '' });
    assert.equal(on(s).length, 1, s.proxy.logs.join('\n'));
    const line = JSON.parse(String(on(s)[0])) as { level: number; publicUrl: string; msg: string };
    assert.equal(line.publicUrl, s.publicUrl);
    assert.ok(line.msg.includes(`PUBLIC_URL ${s.publicUrl}`), line.msg);
    assert.equal(line.level, 30, 'an info line');
    for (const off of [
      { OAUTH_BROKER: 'false' },
      { OAUTH_BROKER: '', PUBLIC_URL: 'http://proxy.example.test' },
    ]) {
      const quiet = await setup(off);
      assert.equal(on(quiet).length, 0, JSON.stringify(off));
    }
  });

  it("stays out of the way with OAUTH_BROKER=false: the upstream 401 is the caller's, with its challenge", async () => {
    const s = await setup({ OAUTH_BROKER: 'false' });
    const reply = await whoami(s, ALICE);
    assert.equal(reply.status, 401, JSON.stringify(reply.body));
    assert.equal(reply.body.error.data.code, 'upstream_unauthorized');
    assert.equal(reply.body.error.data.authorizeUrl, undefined);
    assert.match(String(reply.headers.get('www-authenticate')), /resource_metadata=/);
    assert.equal(s.world.as.events.length, 0, 'nothing reached the authorization server');
  });

  it('asks for sign-in, then calls with the token it keeps; no token reaches the caller or the logs', async () => {
    const s = await setup();
    const first = await whoami(s, ALICE);
    const url = authRequired(s, first);
    const done = await s.world.user('alice').authorize(url, { follow: true, bind: bindAs(ALICE) });
    assert.equal(done.sawLogin, true);
    assert.equal(done.callback?.status, 200);
    // The page tells the caller's origin only, and says nothing secret.
    assert.deepEqual(JSON.parse(done.callback?.body ?? '{}'), {
      ok: true,
      server: new URL(s.world.upstream.url).host,
      openerOrigin: 'http://app.example',
    });
    const second = await whoami(s, ALICE);
    assert.equal(subjectOf(second), 'alice');
    const tokens = upstreamTokens(s);
    assert.equal(tokens.length, 1);
    const token = tokens[0] as string;
    const everything = [
      JSON.stringify(first.body),
      JSON.stringify(second.body),
      done.callback?.body,
      ...s.proxy.logs,
    ].join('\n');
    assert.ok(!everything.includes(token), 'an upstream token was shown');
    assert.ok(!everything.includes(done.code as string), 'the authorization code was logged');
    // The caller's proxy token never went upstream.
    assert.ok(!s.world.upstream.authorizations().some((h) => h.includes(ALICE)));
  });

  it('keeps alice and bob apart', async () => {
    const s = await setup();
    await connect(s, ALICE, 'alice');
    assert.equal(subjectOf(await whoami(s, ALICE)), 'alice');
    // Bob is another principal: alice's connection is not his.
    await connect(s, BOB, 'bob');
    assert.equal(subjectOf(await whoami(s, BOB)), 'bob');
    assert.equal(subjectOf(await whoami(s, ALICE)), 'alice');
  });

  it('refreshes an expired access token once, and asks again when the refresh is refused', async () => {
    const s = await setup();
    await connect(s, ALICE, 'alice');
    assert.equal(subjectOf(await whoami(s, ALICE)), 'alice');
    s.clock.advance(61_000);
    const [a, b] = await Promise.all([whoami(s, ALICE), whoami(s, ALICE)]);
    assert.equal(subjectOf(a), 'alice');
    assert.equal(subjectOf(b), 'alice');
    assert.equal(s.world.as.events.filter((e) => e === 'token:refresh_token').length, 1);
    // The refreshed token, not the expired one, went upstream.
    assert.equal(upstreamTokens(s).length, 2);
    // The authorization server forgets the grant: the refresh fails with invalid_grant.
    s.world.as.forgetGrants();
    s.clock.advance(61_000);
    authRequired(s, await whoami(s, ALICE));
  });

  it('two instances sharing the store and VAULT_KEY share the tokens and refresh once', async () => {
    const clock = new ManualClock();
    const store = new MemoryStore(clock);
    const key = Buffer.alloc(32, 7).toString('base64');
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    const world = await startOAuthWorld({ clock, accessTokenTtl: 60 });
    cleanup.push(() => world.stop());
    const env = {
      PUBLIC_URL: publicUrl,
      OAUTH_BROKER: 'true',
      PROXY_TOKENS: ALICE,
      VAULT_KEY: key,
      CORS_ORIGINS: APP,
    };
    const a = await startProxy({ ...env, PORT: String(port) }, { clock, store });
    cleanup.push(() => a.close());
    const b = await startProxy(env, { clock, store });
    cleanup.push(() => b.close());
    const call = (proxy: RunningProxy) =>
      postProxy(
        { url: proxy.url, token: ALICE },
        {
          mcp_server_url: world.upstream.url,
          jsonrpc: '2.0',
          id: nextId++,
          method: 'tools/call',
          params: { name: 'whoami', arguments: {} },
        },
      );
    const first = await call(a);
    assert.equal(first.status, 401);
    const done = await world
      .user('alice')
      .authorize(first.body.error.data.authorizeUrl, { follow: true, bind: bindAs(ALICE) });
    assert.equal(done.callback?.status, 200);
    // Signed in through A, served by B too.
    assert.equal(subjectOf(await call(b)), 'alice');
    clock.advance(61_000);
    const [ra, rb] = await Promise.all([call(a), call(b)]);
    assert.equal(subjectOf(ra), 'alice');
    assert.equal(subjectOf(rb), 'alice');
    assert.equal(world.as.events.filter((e) => e === 'token:refresh_token').length, 1);
  });

  it('refuses a replayed state, a replayed code and a used start link', async () => {
    const s = await setup();
    const url = authRequired(s, await whoami(s, ALICE));
    const done = await s.world.user('alice').authorize(url, { follow: true, bind: bindAs(ALICE) });
    assert.equal(done.callback?.status, 200);
    /** The callback page's POST, as its script makes it. */
    const complete = (redirect: URL, nonce: string) =>
      fetch(new URL(redirect.pathname, redirect), {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: s.publicUrl },
        body: JSON.stringify({ query: redirect.search, nonce }),
      });
    // Replayed, with any nonce: the state is spent.
    for (const nonce of ['', 'x'.repeat(32)]) {
      const replay = await complete(done.redirect, nonce);
      assert.equal(replay.status, 400);
      assert.match(await replay.text(), /already used or expired/);
    }
    const again = await fetch(url, { redirect: 'manual' });
    assert.equal(again.status, 400);
    assert.match(await again.text(), /already used or expired/);
    const rebind = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: s.publicUrl },
      body: JSON.stringify(bindAs(ALICE)),
    });
    assert.equal(rebind.status, 400);
    const body = (await rebind.json()) as { error: { data: { code: string } } };
    assert.equal(body.error.data.code, 'oauth_state_invalid');
    // A fresh state with an old code: the authorization server refuses the code.
    const url2 = authRequired(s, await whoami(s, BOB));
    const bound = await fetch(url2, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: s.publicUrl },
      body: JSON.stringify(bindAs(BOB)),
    });
    assert.equal(bound.status, 200);
    const { state, nonce } = (await bound.json()) as { state: string; nonce: string };
    const forged = new URL(done.redirect);
    forged.searchParams.set('state', state);
    const refused = await complete(forged, nonce);
    assert.equal(refused.status, 502);
    assert.equal(upstreamTokens(s).length, 0);
  });

  it('keeps the vault sealed in sqlite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oauth-vault-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const s = await setup({ STORE: 'sqlite', DATA_DIR: dir });
    await connect(s, ALICE, 'alice');
    assert.equal(subjectOf(await whoami(s, ALICE)), 'alice');
    const [token] = upstreamTokens(s);
    assert.ok(token);
    await s.proxy.close();
    const files = readdirSync(dir).filter((f) => f !== 'vault-key');
    assert.ok(files.length > 0);
    for (const file of files) {
      const bytes = readFileSync(join(dir, file)).toString('latin1');
      assert.ok(!bytes.includes(token), `${file} holds the access token in clear`);
      assert.ok(!bytes.includes('refreshToken'), `${file} holds vault fields in clear`);
      assert.ok(!bytes.includes(token.split('.')[1] as string), `${file} holds the token's claims`);
    }
  });

  it('asks before the first call for an `auth: oauth` server, with the pre-registered client', async () => {
    const s = await setup(
      {},
      {
        world: (publicUrl) => ({
          clients: (issuer) => [
            {
              client_id: 'proxy-preregistered',
              client_secret: 'preregistered-secret-0123456789',
              redirect_uris: [`${publicUrl}/oauth/callback/${issuerKey(issuer)}`],
              grant_types: ['authorization_code', 'refresh_token'],
              response_types: ['code'],
              token_endpoint_auth_method: 'client_secret_basic',
            },
          ],
        }),
        config: (world) => ({
          servers: {
            files: {
              url: world.upstream.url,
              transport: 'streamable-http',
              auth: 'oauth',
              oauth: {
                clientId: 'proxy-preregistered',
                clientSecret: 'preregistered-secret-0123456789',
                issuer: world.issuer,
              },
            },
          },
        }),
      },
    );
    const call = () =>
      postProxy(
        { url: s.proxy.url, token: ALICE },
        {
          server: 'files',
          jsonrpc: '2.0',
          id: nextId++,
          method: 'tools/call',
          params: { name: 'whoami', arguments: {} },
        },
      );
    const first = await call();
    assert.equal(first.status, 401);
    assert.equal(first.body.error.data.server, 'files');
    // Asked before any call: the upstream saw nothing but the metadata request.
    assert.ok(!s.world.upstream.seen.some((r) => r.method === 'POST'));
    const done = await s.world
      .user('alice')
      .authorize(first.body.error.data.authorizeUrl, { follow: true, bind: bindAs(ALICE) });
    assert.equal(done.callback?.status, 200, done.callback?.body);
    const me = JSON.parse((await call()).body.result.content[0].text);
    assert.equal(me.sub, 'alice');
    assert.equal(me.client_id, 'proxy-preregistered');
    // No dynamic registration happened.
    assert.ok(!s.world.as.events.some((e) => e.startsWith('register:')));
  });

  it("leaves a 401 from a server without OAuth metadata as the upstream's own refusal", async () => {
    const s = await setup();
    const plain = createServer((_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="api-key"' });
      res.end();
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => plain.close(() => resolve())));
    const reply = await postProxy(
      { url: s.proxy.url, token: ALICE },
      {
        mcp_server_url: `http://127.0.0.1:${(plain.address() as AddressInfo).port}/mcp`,
        transport: 'streamable-http',
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/list',
      },
    );
    assert.equal(reply.status, 401, JSON.stringify(reply.body));
    assert.equal(reply.body.error.data.code, 'upstream_unauthorized');
    assert.equal(reply.headers.get('www-authenticate'), 'Bearer realm="api-key"');
  });

  it('refuses discovery that points at the cloud metadata address (egress guard)', async () => {
    const s = await setup();
    // A hostile upstream whose protected resource metadata names 169.254.169.254 as its issuer.
    const hostile = createServer((req, res) => {
      const base = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}`;
      if (req.url?.startsWith('/.well-known/oauth-protected-resource')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ resource: `${base}/mcp`, authorization_servers: ['http://169.254.169.254/'] }),
        );
        return;
      }
      res.writeHead(401, {
        'www-authenticate': `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`,
      });
      res.end();
    });
    await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => hostile.close(() => resolve())));
    const url = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}/mcp`;
    const reply = await postProxy(
      { url: s.proxy.url, token: ALICE },
      { mcp_server_url: url, transport: 'streamable-http', jsonrpc: '2.0', id: 1, method: 'tools/list' },
    );
    assert.equal(reply.status, 403, JSON.stringify(reply.body));
    assert.equal(reply.body.error.data.code, 'target_forbidden');
  });
});

describe('upstream OAuth broker: discovery, registration, keys', () => {
  it('falls back to OpenID discovery and the root resource metadata', async () => {
    const s = await setup(
      {},
      { world: () => ({ oauthMetadata: false, metadataAtPath: false, challengeMetadata: false }) },
    );
    await connect(s, ALICE, 'alice');
    assert.equal(subjectOf(await whoami(s, ALICE)), 'alice');
    const paths = s.world.upstream.seen.filter((r) => r.method === 'GET').map((r) => r.path);
    assert.deepEqual(paths, [
      '/.well-known/oauth-protected-resource/mcp',
      '/.well-known/oauth-protected-resource',
    ]);
  });

  it('refuses an authorization server that does not offer PKCE S256', async () => {
    const s = await setup();
    const hostile = createServer((req, res) => {
      const base = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}`;
      const json = (value: unknown) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      if (req.url === '/.well-known/oauth-protected-resource/mcp') {
        return json({ resource: `${base}/mcp`, authorization_servers: [base] });
      }
      if (req.url === '/.well-known/oauth-authorization-server') {
        return json({
          issuer: base,
          authorization_endpoint: `${base}/authorize`,
          token_endpoint: `${base}/token`,
          registration_endpoint: `${base}/register`,
          code_challenge_methods_supported: ['plain'],
        });
      }
      res.writeHead(401, { 'www-authenticate': 'Bearer' });
      res.end();
    });
    await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => hostile.close(() => resolve())));
    const reply = await postProxy(
      { url: s.proxy.url, token: ALICE },
      {
        mcp_server_url: `http://127.0.0.1:${(hostile.address() as AddressInfo).port}/mcp`,
        transport: 'streamable-http',
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/list',
      },
    );
    assert.equal(reply.status, 502, JSON.stringify(reply.body));
    assert.equal(reply.body.error.code, -33202);
    assert.equal(reply.body.error.data.reason, 'pkce_s256_not_offered');
  });

  it('serves the client metadata document only under an https PUBLIC_URL, for issuers it went to', async () => {
    // An authorization server that takes the proxy's metadata document as its client id.
    let base = '';
    base = await serveHostile(cleanup, (_req, res, url) => {
      if (url.pathname === '/prm/mcp')
        return json(res, 200, { resource: `${base}/mcp`, authorization_servers: [`${base}/as`] });
      if (url.pathname === '/.well-known/oauth-authorization-server/as')
        return json(res, 200, {
          ...authServerMetadata(base, `${base}/as`),
          client_id_metadata_document_supported: true,
        });
      return json(res, 401, {}, { 'www-authenticate': `Bearer resource_metadata="${base}/prm/mcp"` });
    });
    const https = await startProxy({
      PUBLIC_URL: 'https://proxy.example.com',
      OAUTH_BROKER: 'true',
      PROXY_TOKENS: ALICE,
    });
    cleanup.push(() => https.close());
    // One document per issuer: its one redirect URI is that issuer's (mix-up defence).
    const key = issuerKey(`${base}/as`);
    const document = () => fetch(`${https.url}/oauth/client-metadata/${key}.json`);
    // Review6 D1: not for an issuer the proxy never presented it to.
    assert.equal((await document()).status, 404);
    const offered = await postProxy(
      { url: https.url, token: ALICE },
      { mcp_server_url: `${base}/mcp`, jsonrpc: '2.0', id: 1, method: 'tools/list' },
    );
    assert.equal(offered.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(offered.body));
    const doc = await document();
    assert.equal(doc.status, 200);
    const body = (await doc.json()) as Record<string, unknown>;
    assert.equal(body.client_id, `https://proxy.example.com/oauth/client-metadata/${key}.json`);
    assert.deepEqual(body.redirect_uris, [`https://proxy.example.com/oauth/callback/${key}`]);
    assert.equal((await fetch(`${https.url}/oauth/client-metadata/nope.json`)).status, 404);
    assert.equal(
      (await fetch(`${https.url}/oauth/client-metadata/${issuerKey('https://as.example.com')}.json`)).status,
      404,
    );
    const plain = await startProxy({ PUBLIC_URL: 'http://127.0.0.1:9', OAUTH_BROKER: 'true' });
    cleanup.push(() => plain.close());
    assert.equal((await fetch(`${plain.url}/oauth/client-metadata/${key}.json`)).status, 404);
  });

  it('decrypts with an older VAULT_KEY after a rotation, and not without it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oauth-rotate-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const k1 = Buffer.alloc(32, 1).toString('base64');
    const k2 = Buffer.alloc(32, 2).toString('base64');
    const s = await setup({ STORE: 'sqlite', DATA_DIR: dir, VAULT_KEY: k1 });
    await connect(s, ALICE, 'alice');
    await s.proxy.close();
    const env = {
      STORE: 'sqlite',
      DATA_DIR: dir,
      PUBLIC_URL: s.publicUrl,
      OAUTH_BROKER: 'true',
      PROXY_TOKENS: ALICE,
    };
    const rotated = await startProxy({ ...env, VAULT_KEY: `${k2},${k1}` });
    const viaRotated = await whoami({ ...s, proxy: rotated }, ALICE);
    await rotated.close();
    assert.equal(subjectOf(viaRotated), 'alice');
    const dropped = await startProxy({ ...env, VAULT_KEY: k2 });
    cleanup.push(() => dropped.close());
    authRequired(s, await whoami({ ...s, proxy: dropped }, ALICE));
  });
});

describe('upstream OAuth broker on /mcp', () => {
  it('answers a 2025 client with URL elicitation required (-32042), then serves it once signed in', async () => {
    const s = await setup();
    const connect = () => connectMcp(s, ALICE, cleanup);
    const error = await connect().then(
      () => assert.fail('connected without signing in'),
      (e: { code?: number; data?: { elicitations?: Array<{ mode: string; url: string }> } }) => e,
    );
    assert.equal(error.code, -32042);
    const [elicitation] = error.data?.elicitations ?? [];
    assert.equal(elicitation?.mode, 'url');
    assert.ok(elicitation?.url.startsWith(`${s.publicUrl}/oauth/start/`));
    const done = await s.world
      .user('alice')
      .authorize(elicitation.url, { follow: true, bind: bindAs(ALICE) });
    assert.equal(done.callback?.status, 200, done.callback?.body);
    const client = await connect();
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    const [content] = result.content as Array<{ text: string }>;
    assert.equal(JSON.parse(content?.text ?? '{}').sub, 'alice');
    const [token] = upstreamTokens(s);
    assert.ok(token && !s.proxy.logs.join('\n').includes(token));
  });
});

describe('upstream OAuth broker on /ws', () => {
  /** Opens a socket, sends `first`, and collects frames until the socket closes. */
  async function session(s: Setup, first: unknown) {
    const query = new URLSearchParams({ mcp_server_url: s.world.upstream.url, transport: 'streamable-http' });
    const ws = new WebSocket(
      `${s.proxy.url.replace('http', 'ws')}/ws?${query}`,
      ['mcp', `proxy-token.${ALICE}`],
      {
        origin: 'http://app.example',
      },
    );
    // biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON.
    const frames: any[] = [];
    ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(JSON.stringify(first));
    return { ws, frames, closed };
  }

  it('sends upstream_auth_required in an error frame, then serves the socket once signed in', async () => {
    const s = await setup();
    const init = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    };
    const refused = await session(s, init);
    const until = Date.now() + 5_000;
    while (!refused.frames.some((f) => f.error) && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    refused.ws.close();
    const frame = refused.frames.find((f) => f.error?.data?.code === 'upstream_auth_required');
    assert.ok(frame, JSON.stringify(refused.frames));
    assert.equal(frame.error.code, -33200);
    const done = await s.world
      .user('alice')
      .authorize(frame.error.data.authorizeUrl, { follow: true, bind: bindAs(ALICE) });
    assert.equal(done.callback?.status, 200, done.callback?.body);
    const served = await session(s, init);
    cleanup.push(() => served.ws.close());
    served.ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    served.ws.send(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'whoami', arguments: {} },
      }),
    );
    const deadline = Date.now() + 10_000;
    while (!served.frames.some((f) => f.id === 2) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const answer = served.frames.find((f) => f.id === 2);
    assert.equal(
      JSON.parse(answer?.result?.content?.[0]?.text ?? '{}').sub,
      'alice',
      JSON.stringify(served.frames),
    );
  });
});
