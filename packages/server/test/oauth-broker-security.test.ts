/**
 * Issue 18, the security review of the upstream OAuth broker (F1-F8): each finding replayed
 * against the proxy, black-box, with the OAuth test world (oidc-provider) or hostile
 * authorization servers and MCP servers written here, on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import { MemoryStore } from '../src/store/memory-store.ts';
import type { Store } from '../src/store/store.ts';
import { eventually } from './helpers/eventually.ts';
import { type Handler, json, serveHostile } from './helpers/hostile-server.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { freePort } from './helpers/net.ts';
import { linkOf } from './helpers/oauth-proxy.ts';
import { type OAuthWorld, startOAuthWorld } from './helpers/oauth-world.ts';
import { postProxy, type Reply, type RunningProxy, startProxy } from './helpers/proxy.ts';

const ALICE = 'alice-proxy-token-0123456789abcdef';
const BOB = 'bob-proxy-token-0123456789abcdefgh';
/** The app's origin, listed in CORS_ORIGINS. */
const APP = 'http://app.example';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

interface Proxy {
  readonly proxy: RunningProxy;
  readonly publicUrl: string;
}

/** A proxy with the broker on, PUBLIC_URL on its own loopback port, alice and bob as principals. */
async function proxyWith(
  env: Record<string, string> = {},
  deps: Parameters<typeof startProxy>[1] = {},
  config?: unknown,
): Promise<Proxy> {
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  if (config !== undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'oauth-sec-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'proxy.json'), JSON.stringify(config));
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
    deps,
  );
  cleanup.push(() => proxy.close());
  return { proxy, publicUrl };
}

let nextId = 1;
function call(p: Proxy, token: string, serverUrl: string, method = 'tools/call'): Promise<Reply> {
  return postProxy(
    { url: p.proxy.url, token },
    {
      mcp_server_url: serverUrl,
      jsonrpc: '2.0',
      id: nextId++,
      method,
      ...(method === 'tools/call' ? { params: { name: 'whoami', arguments: {} } } : {}),
    },
    { origin: APP },
  );
}

function subjectOf(reply: Reply): string | undefined {
  if (reply.status !== 200) return undefined;
  return JSON.parse(reply.body.result.content[0].text).sub;
}

/** The bind POST the start page makes (docs/oauth.md), with the given headers. */
function bind(link: string, credential: string, origin = APP, headers: Record<string, string> = {}) {
  return fetch(link, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: new URL(link).origin, ...headers },
    body: JSON.stringify({ credential, origin }),
  });
}

/**
 * Where the sign-in link leads a browser: before the bind protocol, the start link's redirect;
 * with it, the `authorizeUrl` of a bind by `credential` (its cookie stays in that browser).
 */
async function authorizationUrlOf(link: string, credential: string): Promise<string> {
  const start = await fetch(link, { redirect: 'manual' });
  const location = start.headers.get('location');
  if (location !== null) return location;
  const bound = await bind(link, credential);
  assert.equal(bound.status, 200, await bound.clone().text());
  return ((await bound.json()) as { authorizeUrl: string }).authorizeUrl;
}

/**
 * A browser for the hostile-world tests: follows redirects by hand, answers the proxy's start
 * page as its opener would (when `credential` is given), keeps cookies per origin. Returns the
 * last response and its body.
 */
async function browse(
  link: string,
  credential?: string,
): Promise<{ status: number; url: string; body: string }> {
  const jar = new Map<string, string[]>();
  /** The tab's sessionStorage: the bind's nonce per state. */
  const nonces = new Map<string, string>();
  let next = new URL(link);
  let init: RequestInit = {};
  for (let hop = 0; hop < 20; hop++) {
    const cookies = jar.get(next.origin) ?? [];
    const headers = new Headers(init.headers);
    if (cookies.length > 0) headers.set('cookie', cookies.join('; '));
    const response = await fetch(next, { ...init, headers, redirect: 'manual' });
    const set = response.headers.getSetCookie().map((line) => line.split(';')[0] as string);
    if (set.length > 0) jar.set(next.origin, [...cookies, ...set]);
    init = {};
    const location = response.headers.get('location');
    if (location !== null) {
      await response.body?.cancel();
      next = new URL(location, next);
      continue;
    }
    const body = await response.text();
    if (response.status === 200 && body.includes('data-mcpp-bind') && credential !== undefined) {
      init = {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: next.origin },
        body: JSON.stringify({ credential, origin: APP }),
      };
      continue;
    }
    if (response.status === 200 && body.startsWith('{"authorizeUrl"')) {
      const bound = JSON.parse(body) as { authorizeUrl: string; state: string; nonce: string };
      nonces.set(bound.state, bound.nonce);
      next = new URL(bound.authorizeUrl);
      continue;
    }
    if (response.status === 200 && body.includes('data-mcpp-callback')) {
      // The callback page's script: the query and the nonce this tab kept, POSTed same-origin.
      init = {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: next.origin },
        body: JSON.stringify({
          query: next.search,
          nonce: nonces.get(next.searchParams.get('state') ?? '') ?? '',
        }),
      };
      continue;
    }
    return { status: response.status, url: next.href, body };
  }
  throw new Error('too many hops');
}

/** A hostile party's server (helpers/hostile-server.ts); stopped after each test. */
const serve = (handler: Handler) => serveHostile(cleanup, handler);

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(302, { location });
  res.end();
}

/** Authorization server metadata for `issuer` with endpoints under `base`. */
function asMetadata(issuer: string, base: string, extra: Record<string, unknown> = {}) {
  return {
    issuer,
    authorization_endpoint: `${base}/authorize`,
    token_endpoint: `${base}/token`,
    registration_endpoint: `${base}/register`,
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
    ...extra,
  };
}

async function world(): Promise<{ world: OAuthWorld; clock: ManualClock }> {
  const clock = new ManualClock();
  const w = await startOAuthWorld({ clock, accessTokenTtl: 60 });
  cleanup.push(() => w.stop());
  return { world: w, clock };
}

describe('F1: a sign-in link binds only the principal that made the call, in its browser', () => {
  it("another user's browser completing a link connects nothing (the start page asks the opener)", async () => {
    const { world: w, clock } = await world();
    const p = await proxyWith({}, { clock });
    // Bob used the proxy before: the authorization server remembers his consent.
    const bobLink = linkOf(await call(p, BOB, w.upstream.url));
    await w.user('bob').authorize(bobLink, { follow: true, bind: { credential: BOB, origin: APP } });
    assert.equal(subjectOf(await call(p, BOB, w.upstream.url)), 'bob');
    // Alice sends Bob her link; Bob's app (his credential) answers the page's bind.
    const link = linkOf(await call(p, ALICE, w.upstream.url));
    const attempt = await w
      .user('bob')
      .authorize(link, { follow: true, bind: { credential: BOB, origin: APP } })
      .then(
        () => 'completed',
        (error: Error) => error.message,
      );
    assert.notEqual(subjectOf(await call(p, ALICE, w.upstream.url)), 'bob', 'alice acts as bob upstream');
    assert.match(attempt, /HTTP 403/);
    assert.match(attempt, /oauth_bind_refused/);
    // The link stays usable by alice herself.
    const done = await w
      .user('alice')
      .authorize(link, { follow: true, bind: { credential: ALICE, origin: APP } });
    assert.equal(done.callback?.status, 200, done.callback?.body);
    assert.equal(subjectOf(await call(p, ALICE, w.upstream.url)), 'alice');
    // The access log names neither the link id nor the state.
    const id = new URL(link).pathname.split('/').pop() as string;
    const logs = p.proxy.logs.join('\n');
    assert.ok(!logs.includes(id), 'the start link id was logged');
    assert.ok(!logs.includes(done.state as string), 'the state was logged');
  });

  it('an authorization URL copied to another browser completes nothing (its tab holds no nonce)', async () => {
    const { world: w, clock } = await world();
    const p = await proxyWith({}, { clock });
    const bobLink = linkOf(await call(p, BOB, w.upstream.url));
    await w.user('bob').authorize(bobLink, { follow: true, bind: { credential: BOB, origin: APP } });
    // Alice binds her own link in her browser, then sends the authorization server's URL to Bob.
    const asUrl = await authorizationUrlOf(linkOf(await call(p, ALICE, w.upstream.url)), ALICE);
    const done = await w.user('bob').authorize(asUrl, { follow: true });
    assert.notEqual(subjectOf(await call(p, ALICE, w.upstream.url)), 'bob', 'alice acts as bob upstream');
    assert.equal(done.callback?.status, 400, done.callback?.body);
    assert.match(done.callback?.body ?? '', /already used or expired/);
    assert.equal(w.as.events.filter((e) => e === 'token:authorization_code').length, 1, "only bob's own");
  });

  it('opened without an opener, the start page redirects nowhere and says what to do', async () => {
    const { world: w, clock } = await world();
    const p = await proxyWith({}, { clock });
    const link = linkOf(await call(p, ALICE, w.upstream.url));
    const page = await fetch(link, { redirect: 'manual' });
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('location'), null);
    const body = await page.text();
    assert.match(body, /Open this sign-in link from the app that asked you to sign in/);
    assert.match(body, /window\.opener\.postMessage\(\{type:"mcp-proxy:oauth-bind"\},'\*'\)/);
    // It names what is connected, and where the user signs in (review item 6).
    assert.match(body, new RegExp(`Sign in to <strong>${new URL(w.upstream.url).host}</strong>`));
    assert.match(body, new RegExp(`your account at <strong>${new URL(w.issuer).host}</strong>`));
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'nonce-/);
    assert.equal(w.as.events.filter((e) => e.startsWith('authorize')).length, 0);
  });

  it('refuses a bind from a page of another origin, an unlisted opener, or a `*` CORS_ORIGINS', async () => {
    const { world: w, clock } = await world();
    const p = await proxyWith({}, { clock });
    const link = linkOf(await call(p, ALICE, w.upstream.url));
    const refusals = [
      // A cross-site page POSTing from the victim's browser.
      await bind(link, ALICE, APP, { origin: 'https://evil.example' }),
      await bind(link, ALICE, APP, { 'sec-fetch-site': 'cross-site' }),
      // An opener that is not one of the operator's apps, with a credential of its own.
      await bind(link, ALICE, 'https://evil.example'),
    ];
    for (const refused of refusals) {
      assert.equal(refused.status, 403);
      const body = (await refused.json()) as { error: { data: { code: string } } };
      assert.equal(body.error.data.code, 'oauth_bind_refused');
    }
    const unknown = await bind(link, 'not-a-token-0123456789abcdef');
    assert.equal(unknown.status, 401);
    const star = await proxyWith({ CORS_ORIGINS: '*' }, { clock });
    const starLink = linkOf(await call(star, ALICE, w.upstream.url));
    assert.equal((await bind(starLink, ALICE)).status, 403);
    // None of it consumed the link.
    assert.equal((await bind(link, ALICE)).status, 200);
  });

  it('tells only the app that bound the sign-in; the bind sets no cookie, the nonce goes to the page', async () => {
    const { world: w, clock } = await world();
    const p = await proxyWith({ CORS_ORIGINS: `https://other.example,${APP}` }, { clock });
    const link = linkOf(await call(p, ALICE, w.upstream.url));
    const bound = await bind(link, ALICE);
    assert.equal(bound.headers.get('set-cookie'), null);
    const { authorizeUrl, state, nonce } = (await bound.json()) as Record<string, string>;
    assert.ok(authorizeUrl?.startsWith(`${w.issuer}/`), authorizeUrl);
    assert.equal(new URL(authorizeUrl as string).searchParams.get('state'), state);
    assert.match(nonce ?? '', /^[A-Za-z0-9_-]{32}$/);
    const done = await w.user('alice').authorize(authorizeUrl as string);
    const page = await fetch(done.redirect);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /connect-src 'self'/);
    const complete = (nonceSent: string) =>
      fetch(new URL(done.redirect.pathname, done.redirect), {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: p.publicUrl },
        body: JSON.stringify({ query: done.redirect.search, nonce: nonceSent }),
      });
    // Another nonce (another tab) neither completes nor uses up the sign-in.
    assert.equal((await complete('x'.repeat(32))).status, 400);
    const answer = await complete(nonce as string);
    const text = await answer.text();
    assert.equal(answer.status, 200, text);
    assert.deepEqual(JSON.parse(text), { ok: true, server: new URL(w.upstream.url).host, openerOrigin: APP });
    assert.equal(subjectOf(await call(p, ALICE, w.upstream.url)), 'alice');
  });
});

describe('F1: the bind under an https PUBLIC_URL', () => {
  it('wants the https origin', async () => {
    const { world: w, clock } = await world();
    const proxy = await startProxy(
      {
        PUBLIC_URL: 'https://proxy.example.com',
        OAUTH_BROKER: 'true',
        PROXY_TOKENS: ALICE,
        CORS_ORIGINS: APP,
      },
      { clock },
    );
    cleanup.push(() => proxy.close());
    const reply = await call({ proxy, publicUrl: 'https://proxy.example.com' }, ALICE, w.upstream.url);
    const link = new URL(linkOf(reply));
    assert.equal(link.origin, 'https://proxy.example.com');
    const local = `${proxy.url}${link.pathname}`;
    const post = (origin: string) =>
      fetch(local, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin },
        body: JSON.stringify({ credential: ALICE, origin: APP }),
      });
    assert.equal((await post(proxy.url)).status, 403);
    const bound = await post('https://proxy.example.com');
    assert.equal(bound.status, 200);
    assert.equal(bound.headers.get('set-cookie'), null);
  });
});

describe('F2: mix-up without RFC 9207 iss', () => {
  /**
   * An honest authorization server that sends no `iss` and, like every real one, redirects only
   * to a redirect URI registered for the client; a malicious MCP server whose own authorization
   * server bounces the user to the honest one with the proxy's request, and wants the code.
   */
  async function mixUp(rewriteRedirect: boolean) {
    const honestClients = new Map<string, string[]>();
    const codes = new Map<string, { challenge: string; redirect: string }>();
    const honestTokenCalls: string[] = [];
    let honest = '';
    honest = await serve((_req, res, url, body) => {
      if (url.pathname === '/mcp') {
        return json(res, 401, {}, { 'www-authenticate': `Bearer resource_metadata="${honest}/prm"` });
      }
      if (url.pathname === '/prm')
        return json(res, 200, { resource: `${honest}/mcp`, authorization_servers: [honest] });
      if (url.pathname === '/.well-known/oauth-authorization-server')
        return json(res, 200, asMetadata(honest, honest));
      if (url.pathname === '/register') {
        const id = `h-client-${honestClients.size + 1}`;
        honestClients.set(id, (JSON.parse(body) as { redirect_uris: string[] }).redirect_uris);
        return json(res, 201, { client_id: id, token_endpoint_auth_method: 'none' });
      }
      if (url.pathname === '/authorize') {
        const uris = honestClients.get(url.searchParams.get('client_id') ?? '');
        const target = url.searchParams.get('redirect_uri') ?? '';
        if (!uris?.includes(target)) return json(res, 400, { error: 'invalid_redirect_uri' });
        const code = `H-CODE-${codes.size}`;
        codes.set(code, { challenge: url.searchParams.get('code_challenge') ?? '', redirect: target });
        const back = new URL(target);
        back.searchParams.set('code', code);
        back.searchParams.set('state', url.searchParams.get('state') ?? '');
        return redirect(res, back.href); // no iss
      }
      if (url.pathname === '/token') {
        const params = new URLSearchParams(body);
        honestTokenCalls.push(params.get('code') ?? '');
        const issued = codes.get(params.get('code') ?? '');
        const verifier = createHash('sha256')
          .update(params.get('code_verifier') ?? '')
          .digest('base64url');
        if (!issued || issued.challenge !== verifier) return json(res, 400, { error: 'invalid_grant' });
        return json(res, 200, { access_token: 'HONEST-TOKEN-OF-THE-USER', token_type: 'Bearer' });
      }
      res.writeHead(404).end();
    });
    const stolen: string[] = [];
    let evil = '';
    evil = await serve((_req, res, url, body) => {
      if (url.pathname === '/mcp')
        return json(res, 401, {}, { 'www-authenticate': `Bearer resource_metadata="${evil}/prm"` });
      if (url.pathname === '/prm')
        return json(res, 200, { resource: `${evil}/mcp`, authorization_servers: [evil] });
      if (url.pathname === '/.well-known/oauth-authorization-server')
        return json(res, 200, asMetadata(evil, evil));
      // The proxy's client id at the honest server is public (it is in every authorization URL).
      if (url.pathname === '/register') return json(res, 201, { client_id: [...honestClients.keys()][0] });
      if (url.pathname === '/authorize') {
        const bounced = new URL(`${honest}/authorize${url.search}`);
        const [registered] = [...honestClients.values()][0] ?? [];
        if (rewriteRedirect && registered) bounced.searchParams.set('redirect_uri', registered);
        return redirect(res, bounced.href);
      }
      if (url.pathname === '/token') {
        stolen.push(body);
        return json(res, 400, { error: 'invalid_grant' });
      }
      res.writeHead(404).end();
    });
    const p = await proxyWith();
    // The proxy is a registered client of the honest server (someone signed in there before).
    linkOf(await call(p, ALICE, `${honest}/mcp`, 'tools/list'));
    assert.equal(honestClients.size, 1);
    // Alice uses the malicious MCP server, and signs in where it sends her.
    const ended = await browse(linkOf(await call(p, ALICE, `${evil}/mcp`, 'tools/list')), ALICE);
    return { stolen, honestTokenCalls, ended };
  }

  it('a code of the honest server never reaches the malicious one (its callback is not the honest one)', async () => {
    const { stolen, honestTokenCalls, ended } = await mixUp(false);
    assert.deepEqual(stolen, [], 'the malicious authorization server got the code and verifier');
    assert.deepEqual(honestTokenCalls, []);
    // The honest server refused the malicious server's redirect URI: no code was issued.
    assert.equal(ended.status, 400);
    assert.match(ended.body, /invalid_redirect_uri/);
  });

  it("a code sent back on the honest server's callback is refused for the malicious server's state", async () => {
    const { stolen, honestTokenCalls, ended } = await mixUp(true);
    assert.deepEqual(stolen, [], 'the malicious authorization server got the code and verifier');
    assert.deepEqual(honestTokenCalls, []);
    assert.equal(ended.status, 502);
    assert.match(ended.body, /another authorization server/);
  });
});

describe('F3: a pre-registered client is used only at its issuer', () => {
  async function hostileMetadata() {
    const received: string[] = [];
    let base = '';
    base = await serve((req, res, url) => {
      if (url.pathname === '/mcp')
        return json(res, 401, {}, { 'www-authenticate': `Bearer resource_metadata="${base}/prm"` });
      if (url.pathname === '/prm' || url.pathname.startsWith('/.well-known/oauth-protected-resource')) {
        return json(res, 200, { resource: `${base}/mcp`, authorization_servers: [`${base}/evil-as`] });
      }
      if (url.pathname === '/.well-known/oauth-authorization-server/evil-as') {
        return json(res, 200, asMetadata(`${base}/evil-as`, base));
      }
      if (url.pathname === '/authorize') {
        const back = new URL(url.searchParams.get('redirect_uri') ?? '');
        back.searchParams.set('code', 'C');
        back.searchParams.set('state', url.searchParams.get('state') ?? '');
        return redirect(res, back.href);
      }
      if (url.pathname === '/token') {
        received.push(String(req.headers.authorization));
        return json(res, 400, { error: 'invalid_grant' });
      }
      res.writeHead(404).end();
    });
    return { base, received };
  }

  it("refuses to sign in when the server's metadata names another issuer than the client's", async () => {
    const { base, received } = await hostileMetadata();
    const p = await proxyWith(
      {},
      {},
      {
        servers: {
          github: {
            url: `${base}/mcp`,
            transport: 'streamable-http',
            auth: 'oauth',
            oauth: {
              clientId: 'operator-client',
              clientSecret: 'OPERATOR-SECRET',
              issuer: 'https://github.example',
            },
          },
        },
      },
    );
    const reply = await postProxy(
      { url: p.proxy.url, token: ALICE },
      { server: 'github', jsonrpc: '2.0', id: 1, method: 'tools/list' },
      { origin: APP },
    );
    assert.equal(reply.status, 502, JSON.stringify(reply.body));
    assert.equal(reply.body.error.data.code, 'upstream_auth_unsupported');
    assert.equal(reply.body.error.data.reason, 'client_issuer_mismatch');
    assert.deepEqual(received, []);
  });

  it('refuses a configured client secret without its issuer', async () => {
    await assert.rejects(
      proxyWith(
        {},
        {},
        {
          servers: {
            github: {
              url: 'https://mcp.example.com/mcp',
              oauth: { clientId: 'operator-client', clientSecret: 'OPERATOR-SECRET' },
            },
          },
        },
      ),
      /oauth\.issuer is required/,
    );
  });

  it('uses a client pre-registered per issuer (oauthClients) for any server of that issuer', async () => {
    const clock = new ManualClock();
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    const { issuerKey } = await import('../src/credentials/registration.ts');
    const w = await startOAuthWorld({
      clock,
      accessTokenTtl: 60,
      clients: (issuer) => [
        {
          client_id: 'proxy-per-issuer',
          client_secret: 'per-issuer-secret-0123456789',
          redirect_uris: [`${publicUrl}/oauth/callback/${issuerKey(issuer)}`],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
    });
    cleanup.push(() => w.stop());
    const dir = mkdtempSync(join(tmpdir(), 'oauth-sec-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(
      join(dir, 'proxy.json'),
      JSON.stringify({
        oauthClients: [
          { issuer: w.issuer, clientId: 'proxy-per-issuer', clientSecret: 'per-issuer-secret-0123456789' },
        ],
      }),
    );
    const proxy = await startProxy(
      {
        PORT: String(port),
        PUBLIC_URL: publicUrl,
        OAUTH_BROKER: 'true',
        PROXY_TOKENS: ALICE,
        CORS_ORIGINS: APP,
        MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
      },
      { clock },
    );
    cleanup.push(() => proxy.close());
    const p = { proxy, publicUrl };
    const link = linkOf(await call(p, ALICE, w.upstream.url));
    await w.user('alice').authorize(link, { follow: true, bind: { credential: ALICE, origin: APP } });
    const me = JSON.parse((await call(p, ALICE, w.upstream.url)).body.result.content[0].text);
    assert.equal(me.client_id, 'proxy-per-issuer');
    assert.ok(!w.as.events.some((e) => e.startsWith('register')));
  });
});

describe('F4 + F7: what hostile metadata can make the proxy keep, and where it sends browsers', () => {
  /** A store that records the size of every value the broker writes. */
  function measured(): { store: Store; sizes: Map<string, number> } {
    const inner = new MemoryStore();
    const sizes = new Map<string, number>();
    const set: Store['set'] = async (key, value, ttl) => {
      if (key.startsWith('oauth:')) sizes.set(key, value.length);
      return inner.set(key, value, ttl);
    };
    const store = new Proxy(inner, {
      get(target, property) {
        if (property === 'set') return set;
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Store;
    return { store, sizes };
  }

  const PAD = 'A'.repeat(200_000);

  it('keeps each sign-in small, refuses oversized registrations, caps sign-ins per principal', async () => {
    let base = '';
    let registrations = 0;
    base = await serve((_req, res, url) => {
      const mcp = /^\/mcp\/(\d+)$/.exec(url.pathname);
      if (mcp)
        return json(res, 401, {}, { 'www-authenticate': `Bearer resource_metadata="${base}/prm/${mcp[1]}"` });
      const prm = /^\/prm\/(\d+)$/.exec(url.pathname);
      if (prm)
        return json(res, 200, {
          resource: `${base}/mcp/${prm[1]}`,
          authorization_servers: [`${base}/as/${prm[1]}`],
        });
      const as = /^\/.well-known\/oauth-authorization-server\/as\/(\d+)$/.exec(url.pathname);
      if (as) return json(res, 200, asMetadata(`${base}/as/${as[1]}`, base, { padding: PAD }));
      if (url.pathname === '/register') {
        registrations++;
        return json(res, 201, { client_id: registrations === 2 ? `c-${PAD}` : `c${registrations}` });
      }
      res.writeHead(404).end();
    });
    const { store, sizes } = measured();
    const p = await proxyWith({ LOG_LEVEL: 'warn' }, { store });
    const codes: string[] = [];
    for (let i = 0; i < 32; i++) {
      const reply = await call(p, ALICE, `${base}/mcp/${i}`, 'tools/list');
      codes.push(String(reply.body?.error?.data?.code));
    }
    assert.ok(
      Math.max(...sizes.values()) < 8 * 1024,
      `a value of ${Math.max(...sizes.values())} bytes was stored`,
    );
    assert.equal(codes[1], 'upstream_auth_failed', 'an oversized client id was kept');
    // Ten registrations an hour per principal (the oversized one counts), then thirty sign-ins
    // per ten minutes: the last two calls meet the second cap.
    assert.equal(codes.filter((c) => c === 'upstream_auth_required').length, 9, codes.join());
    assert.equal(codes.filter((c) => c === 'oauth_sign_in_limited').length, 22, codes.join());
    const bob = await call(p, BOB, `${base}/mcp/0`, 'tools/list');
    assert.equal(bob.body.error.data.code, 'upstream_auth_required', 'the limit is per principal');
  });

  it('keeps no oversized token an authorization server issues', async () => {
    let base = '';
    base = await serve((_req, res, url) => {
      if (url.pathname === '/mcp') {
        return json(res, 401, {}, { 'www-authenticate': `Bearer resource_metadata="${base}/prm"` });
      }
      if (url.pathname === '/prm')
        return json(res, 200, { resource: `${base}/mcp`, authorization_servers: [base] });
      if (url.pathname === '/.well-known/oauth-authorization-server')
        return json(res, 200, asMetadata(base, base));
      if (url.pathname === '/register') return json(res, 201, { client_id: 'c' });
      if (url.pathname === '/authorize') {
        const back = new URL(url.searchParams.get('redirect_uri') ?? '');
        back.searchParams.set('code', 'C');
        back.searchParams.set('state', url.searchParams.get('state') ?? '');
        return redirect(res, back.href);
      }
      if (url.pathname === '/token') return json(res, 200, { access_token: PAD, token_type: 'Bearer' });
      res.writeHead(404).end();
    });
    const { store, sizes } = measured();
    const p = await proxyWith({}, { store });
    const ended = await browse(linkOf(await call(p, ALICE, `${base}/mcp`, 'tools/list')), ALICE);
    assert.equal(ended.status, 502, ended.body);
    assert.match(ended.body, /oversized token/);
    assert.ok(
      Math.max(...sizes.values()) < 8 * 1024,
      `a value of ${Math.max(...sizes.values())} bytes was stored`,
    );
    linkOf(await call(p, ALICE, `${base}/mcp`, 'tools/list'));
  });

  it('never redirects a browser from the start link, and refuses a non-https authorization endpoint', async () => {
    let base = '';
    // '1' (set below): on the issuer's origin, as review oauth6 R2 requires of an unconfigured issuer.
    const endpoints: Record<string, string> = {
      '2': 'javascript:alert(1)',
      '3': 'http://phish.example/login',
    };
    base = await serve((_req, res, url) => {
      const mcp = /^\/mcp\/(\d+)$/.exec(url.pathname);
      if (mcp)
        return json(res, 401, {}, { 'www-authenticate': `Bearer resource_metadata="${base}/prm/${mcp[1]}"` });
      const prm = /^\/prm\/(\d+)$/.exec(url.pathname);
      if (prm)
        return json(res, 200, {
          resource: `${base}/mcp/${prm[1]}`,
          authorization_servers: [`${base}/as/${prm[1]}`],
        });
      const as = /^\/.well-known\/oauth-authorization-server\/as\/(\d+)$/.exec(url.pathname);
      if (as) {
        return json(
          res,
          200,
          asMetadata(`${base}/as/${as[1]}`, base, {
            authorization_endpoint: endpoints[as[1] as string] ?? `${base}/login`,
          }),
        );
      }
      if (url.pathname === '/register') return json(res, 201, { client_id: 'c' });
      res.writeHead(404).end();
    });
    const p = await proxyWith();
    const link = linkOf(await call(p, ALICE, `${base}/mcp/1`, 'tools/list'));
    const start = await fetch(link, { redirect: 'manual' });
    assert.equal(start.status, 200);
    assert.equal(start.headers.get('location'), null, 'the start link redirects');
    for (const n of ['2', '3']) {
      const reply = await call(p, ALICE, `${base}/mcp/${n}`, 'tools/list');
      assert.equal(reply.body.error.data.code, 'upstream_auth_failed', JSON.stringify(reply.body));
      assert.match(reply.body.error.message, /not an https URL/);
    }
  });
});

describe('F5 + F6: a refused token or a forgotten client never leaves the user stuck', () => {
  it("a socket's stale access token does not destroy the refresh token", async () => {
    const { world: w, clock } = await world();
    const p = await proxyWith({}, { clock });
    const link = linkOf(await call(p, ALICE, w.upstream.url));
    await w.user('alice').authorize(link, { follow: true, bind: { credential: ALICE, origin: APP } });
    assert.equal(subjectOf(await call(p, ALICE, w.upstream.url)), 'alice');
    const query = new URLSearchParams({ mcp_server_url: w.upstream.url, transport: 'streamable-http' });
    const ws = new WebSocket(
      `${p.proxy.url.replace('http', 'ws')}/ws?${query}`,
      ['mcp', `proxy-token.${ALICE}`],
      {
        origin: APP,
      },
    );
    cleanup.push(() => ws.close());
    // biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON.
    const frames: any[] = [];
    ws.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      }),
    );
    await eventually(() => frames.some((f) => f.id === 1));
    ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    clock.advance(61_000); // the socket's token expires
    ws.send(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'whoami', arguments: {} },
      }),
    );
    await eventually(() => frames.some((f) => f.id === 2));
    // The next call is served with a refreshed token: no new sign-in.
    assert.equal(subjectOf(await call(p, ALICE, w.upstream.url)), 'alice');
    assert.equal(w.as.events.filter((e) => e === 'token:refresh_token').length, 1);
  });

  it('a token the upstream refuses before its expiry is refreshed and the call tried once more', async () => {
    let base = '';
    let issued = 0;
    let refreshes = 0;
    const refusedTokens = new Set<string>();
    base = await serve((req, res, url, body) => {
      if (url.pathname === '/mcp') {
        const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
        if (/^ACCESS-\d+$/.test(token) && !refusedTokens.has(token)) {
          return json(res, 200, { jsonrpc: '2.0', id: JSON.parse(body).id, result: { tools: [] } });
        }
        return json(res, 401, {}, { 'www-authenticate': `Bearer resource_metadata="${base}/prm"` });
      }
      if (url.pathname === '/prm')
        return json(res, 200, { resource: `${base}/mcp`, authorization_servers: [base] });
      if (url.pathname === '/.well-known/oauth-authorization-server')
        return json(res, 200, asMetadata(base, base));
      if (url.pathname === '/register') return json(res, 201, { client_id: 'c' });
      if (url.pathname === '/authorize') {
        const back = new URL(url.searchParams.get('redirect_uri') ?? '');
        back.searchParams.set('code', 'CODE');
        back.searchParams.set('state', url.searchParams.get('state') ?? '');
        return redirect(res, back.href);
      }
      if (url.pathname === '/token') {
        if (new URLSearchParams(body).get('grant_type') === 'refresh_token') refreshes++;
        issued++;
        return json(res, 200, {
          access_token: `ACCESS-${issued}`,
          refresh_token: `R-${issued}`,
          expires_in: 3600,
          token_type: 'Bearer',
        });
      }
      res.writeHead(404).end();
    });
    const p = await proxyWith();
    const list = () => call(p, ALICE, `${base}/mcp`, 'tools/list');
    await browse(linkOf(await list()), ALICE);
    assert.equal((await list()).status, 200);
    // The upstream stops accepting the first token long before it expires.
    refusedTokens.add('ACCESS-1');
    const again = await list();
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(refreshes, 1);
    // A token refused right after its refresh asks for a sign-in, without a second refresh.
    refusedTokens.add('ACCESS-2');
    refusedTokens.add('ACCESS-3');
    linkOf(await list());
    assert.equal(refreshes, 2);
  });

  it('invalid_client at the token endpoint drops the registration: the next call offers a sign-in', async () => {
    let base = '';
    let registrations = 0;
    let accepted = '';
    base = await serve((req, res, url, body) => {
      if (url.pathname === '/mcp') {
        if (accepted !== '' && req.headers.authorization === `Bearer ${accepted}`) {
          return json(res, 200, { jsonrpc: '2.0', id: JSON.parse(body).id, result: { tools: [] } });
        }
        return json(res, 401, {}, { 'www-authenticate': `Bearer resource_metadata="${base}/prm"` });
      }
      if (url.pathname === '/prm')
        return json(res, 200, { resource: `${base}/mcp`, authorization_servers: [base] });
      if (url.pathname === '/.well-known/oauth-authorization-server')
        return json(res, 200, asMetadata(base, base));
      if (url.pathname === '/register') {
        registrations++;
        return json(res, 201, { client_id: `c${registrations}` });
      }
      if (url.pathname === '/authorize') {
        const back = new URL(url.searchParams.get('redirect_uri') ?? '');
        back.searchParams.set('code', `CODE-${url.searchParams.get('client_id')}`);
        back.searchParams.set('state', url.searchParams.get('state') ?? '');
        return redirect(res, back.href);
      }
      if (url.pathname === '/token') {
        const params = new URLSearchParams(body);
        // The server forgot the first client: only a newer one gets tokens on refresh.
        if (params.get('grant_type') === 'refresh_token') return json(res, 401, { error: 'invalid_client' });
        accepted = `ACCESS-${params.get('client_id')}`;
        return json(res, 200, {
          access_token: accepted,
          refresh_token: 'R',
          token_type: 'Bearer',
          expires_in: 60,
        });
      }
      res.writeHead(404).end();
    });
    const clock = new ManualClock();
    const p = await proxyWith({}, { clock });
    const list = () => call(p, ALICE, `${base}/mcp`, 'tools/list');
    const first = await browse(linkOf(await list()), ALICE);
    assert.equal(first.status, 200, first.body);
    const served = await list();
    assert.equal(served.status, 200, JSON.stringify(served.body));
    clock.advance(61_000);
    const stuck = await list();
    assert.equal(stuck.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(stuck.body));
    const ended = await browse(stuck.body.error.data.authorizeUrl, ALICE);
    assert.equal(ended.status, 200, ended.body);
    assert.equal(registrations, 2, 'the forgotten client was not registered again');
    assert.equal(accepted, 'ACCESS-c2');
    assert.equal((await list()).status, 200);
  });
});

describe('F6: invalid_client when the code is exchanged', () => {
  it('drops the registration: the next sign-in registers again and succeeds', async () => {
    let base = '';
    let registrations = 0;
    base = await serve((req, res, url, body) => {
      if (url.pathname === '/mcp') {
        if (req.headers.authorization === 'Bearer ACCESS-c2') {
          return json(res, 200, { jsonrpc: '2.0', id: JSON.parse(body).id, result: { tools: [] } });
        }
        return json(res, 401, {}, { 'www-authenticate': `Bearer resource_metadata="${base}/prm"` });
      }
      if (url.pathname === '/prm')
        return json(res, 200, { resource: `${base}/mcp`, authorization_servers: [base] });
      if (url.pathname === '/.well-known/oauth-authorization-server')
        return json(res, 200, asMetadata(base, base));
      if (url.pathname === '/register') {
        registrations++;
        return json(res, 201, { client_id: `c${registrations}` });
      }
      if (url.pathname === '/authorize') {
        const back = new URL(url.searchParams.get('redirect_uri') ?? '');
        back.searchParams.set('code', 'CODE');
        back.searchParams.set('state', url.searchParams.get('state') ?? '');
        return redirect(res, back.href);
      }
      if (url.pathname === '/token') {
        // The server lost its first client between the registration and the exchange.
        const client = new URLSearchParams(body).get('client_id');
        if (client === 'c1') return json(res, 401, { error: 'invalid_client' });
        return json(res, 200, { access_token: `ACCESS-${client}`, token_type: 'Bearer' });
      }
      res.writeHead(404).end();
    });
    const p = await proxyWith();
    const list = () => call(p, ALICE, `${base}/mcp`, 'tools/list');
    const refused = await browse(linkOf(await list()), ALICE);
    assert.equal(refused.status, 502, refused.body);
    const ended = await browse(linkOf(await list()), ALICE);
    assert.equal(ended.status, 200, ended.body);
    assert.equal(registrations, 2, 'the forgotten client was not registered again');
    assert.equal((await list()).status, 200);
  });
});

describe('F8: discovery honours the request deadline and the caller', () => {
  it('a dripping metadata server holds a call no longer than UPSTREAM_TIMEOUT_MS', {
    timeout: 30_000,
  }, async () => {
    let base = '';
    const hits: string[] = [];
    base = await serve((_req, res, url) => {
      if (url.pathname === '/a/b/mcp')
        return json(res, 401, {}, { 'www-authenticate': `Bearer resource_metadata="${base}/prm"` });
      hits.push(url.pathname);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"x":"');
      const drip = setInterval(() => res.write('a'), 200);
      res.on('close', () => clearInterval(drip));
    });
    const p = await proxyWith({ UPSTREAM_TIMEOUT_MS: '1500', LOG_LEVEL: 'warn' });
    const started = Date.now();
    const reply = await call(p, ALICE, `${base}/a/b/mcp`, 'tools/list');
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 6_000, `answered after ${elapsed} ms (${hits.length} metadata URLs fetched)`);
    assert.equal(reply.body.error.data.code, 'upstream_timeout', JSON.stringify(reply.body));
  });

  it('stops discovery when the caller goes away', { timeout: 30_000 }, async () => {
    let base = '';
    const hits: string[] = [];
    let closed = 0;
    base = await serve((_req, res, url) => {
      if (url.pathname === '/mcp')
        return json(res, 401, {}, { 'www-authenticate': `Bearer resource_metadata="${base}/prm"` });
      hits.push(url.pathname);
      // Never answers: only an abort ends the request.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{');
      res.on('close', () => closed++);
    });
    const p = await proxyWith({ UPSTREAM_TIMEOUT_MS: '60000', LOG_LEVEL: 'warn' });
    const abort = new AbortController();
    const pending = fetch(`${p.proxy.url}/proxy`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-proxy-token': ALICE, origin: APP },
      body: JSON.stringify({ mcp_server_url: `${base}/mcp`, jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      signal: abort.signal,
    }).catch(() => undefined);
    await eventually(() => hits.length === 1, { what: 'the first metadata request' });
    abort.abort();
    await pending;
    // The proxy drops the metadata request at once (not after its own 10 s deadline)...
    await eventually(() => closed === 1, { timeoutMs: 3_000, what: 'the metadata request to end' });
    // ...and tries no further candidate URL.
    assert.deepEqual(hits, ['/prm']);
  });
});
