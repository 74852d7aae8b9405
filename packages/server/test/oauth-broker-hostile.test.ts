/**
 * Issue 18, the second attacker review of the upstream OAuth broker (FIX-OAUTH5): each finding
 * replayed black-box against the proxy, with the OAuth test world (oidc-provider) or hostile
 * authorization and MCP servers written here, on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import { eventually } from './helpers/eventually.ts';
import { type Handler, json, serveHostile } from './helpers/hostile-server.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import * as world from './helpers/oauth-proxy.ts';
import { bind, linkOf } from './helpers/oauth-proxy.ts';
import { startBrokerProxy } from './helpers/oauth-sse-server.ts';
import { postProxy, type Reply, type startProxy } from './helpers/proxy.ts';

const ALICE = 'alice-proxy-token-0123456789abcdef';
const BOB = 'bob-proxy-token-0123456789abcdefgh';
/** The app's origin, listed in CORS_ORIGINS. */
const APP = 'http://app.example';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A hostile party's server (helpers/hostile-server.ts); stopped after each test. */
const serve = (handler: Handler) => serveHostile(cleanup, handler);

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

interface Hostile {
  /** The base URL; the MCP server is at `${base}/mcp` (and `/mcp/<n>`). */
  readonly base: string;
  /** What the token endpoint answers (a token answer's fields; `access_token: 'at-n'`: `at-<n>`, `rt-<n>`). */
  tokenAnswer: Record<string, unknown>;
  /** The `resource` its protected resource metadata names (default: the server's URL). */
  resource: ((base: string, path: string) => string) | undefined;
  /** What reached it: `revoke:<token>`, `token:<grant type>`. */
  readonly events: string[];
}

/**
 * An MCP server that answers 401 to everything, its protected resource metadata and an
 * authorization server that registers anyone and issues whatever `tokenAnswer` says.
 */
async function hostile(): Promise<Hostile> {
  const state: Hostile = {
    base: '',
    tokenAnswer: { access_token: 'at-1', refresh_token: 'rt-1', token_type: 'bearer', expires_in: 3600 },
    resource: undefined,
    events: [],
  };
  let issued = 0;
  const base = await serve((_req, res, url, body) => {
    if (url.pathname === '/mcp' || url.pathname.startsWith('/mcp/'))
      return json(
        res,
        401,
        {},
        { 'www-authenticate': `Bearer resource_metadata="${base}/prm${url.pathname}"` },
      );
    if (url.pathname.startsWith('/prm/')) {
      const path = url.pathname.slice('/prm'.length);
      return json(res, 200, {
        resource: state.resource ? state.resource(base, path) : `${base}${path}`,
        authorization_servers: [`${base}/as`],
      });
    }
    if (url.pathname === '/.well-known/oauth-authorization-server/as')
      return json(res, 200, asMetadata(`${base}/as`, base, { revocation_endpoint: `${base}/revoke` }));
    if (url.pathname === '/register') return json(res, 201, { client_id: 'c1' });
    if (url.pathname === '/token') {
      state.events.push(`token:${new URLSearchParams(body).get('grant_type')}`);
      issued++;
      return json(res, 200, {
        ...state.tokenAnswer,
        ...(state.tokenAnswer.access_token === 'at-n'
          ? { access_token: `at-${issued}`, refresh_token: `rt-${issued}` }
          : {}),
      });
    }
    if (url.pathname === '/revoke') {
      state.events.push(`revoke:${new URLSearchParams(body).get('token')}`);
      res.writeHead(200).end();
      return;
    }
    res.writeHead(404).end();
  });
  Object.assign(state, { base });
  return state;
}

type Proxy = Awaited<ReturnType<typeof startBrokerProxy>>;

/** A proxy with the broker on, PUBLIC_URL on its own loopback port, alice and bob as principals. */
function proxyWith(
  env: Record<string, string> = {},
  deps: Parameters<typeof startProxy>[1] = {},
): Promise<Proxy> {
  return startBrokerProxy(cleanup, { PROXY_TOKENS: `${ALICE},${BOB}`, ...env }, deps);
}

let nextId = 1;
function call(p: Proxy, token: string, serverUrl: string, method = 'tools/list'): Promise<Reply> {
  return postProxy(
    { url: p.proxy.url, token },
    { mcp_server_url: serverUrl, jsonrpc: '2.0', id: nextId++, method },
    { origin: APP },
  );
}

describe('R3: protected resource metadata names the resource, the proxy chooses the indicator', () => {
  it('asks for the canonical server URL, whatever size of `resource` the metadata names', async () => {
    const evil = await hostile();
    evil.resource = (base) => `${base}/?${'"'.repeat(120_000)}`;
    const p = await proxyWith();
    const link = linkOf(await call(p, ALICE, `${evil.base}/mcp`));
    const bound = await bind(link, ALICE);
    assert.equal(bound.status, 200, JSON.stringify(bound.body));
    const authorize = new URL(bound.body.authorizeUrl as string);
    assert.equal(authorize.searchParams.get('resource'), `${evil.base}/mcp`);
    assert.ok(authorize.href.length < 2048, `an authorization URL of ${authorize.href.length} characters`);
  });
});

/**
 * Signs `credential` in through `link` against a hostile authorization server that grants
 * anything: the bind, then the callback page's POST from the tab that bound it.
 */
async function complete(link: string, credential: string): Promise<Response> {
  const bound = await bind(link, credential);
  assert.equal(bound.status, 200);
  const authorize = new URL(bound.body.authorizeUrl as string);
  const callback = new URL(authorize.searchParams.get('redirect_uri') as string);
  const query = new URLSearchParams({ code: 'code-1', state: bound.body.state as string });
  return fetch(callback, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: callback.origin, 'sec-fetch-site': 'same-origin' },
    body: JSON.stringify({ query: `?${query}`, nonce: bound.body.nonce }),
  });
}

function connections(p: Proxy, token: string): Promise<Response> {
  return fetch(`${p.proxy.url}/oauth/connections`, { headers: { 'x-proxy-token': token, origin: APP } });
}

describe('R4: a token answer cannot break the connections list', () => {
  it('clamps a huge expires_in, and lists the connection', async () => {
    const evil = await hostile();
    evil.tokenAnswer = {
      access_token: 'at-1',
      refresh_token: 'rt-1',
      token_type: 'bearer',
      expires_in: 1e300,
    };
    const p = await proxyWith();
    const signedIn = await complete(linkOf(await call(p, ALICE, `${evil.base}/mcp`)), ALICE);
    assert.equal(signedIn.status, 200, await signedIn.text());
    const listed = await connections(p, ALICE);
    const text = await listed.text();
    assert.equal(listed.status, 200, text);
    const [only] = (JSON.parse(text) as { connections: Array<{ expiresAt: string }> }).connections;
    const expires = Date.parse(only?.expiresAt ?? '');
    assert.ok(expires <= Date.now() + 366 * 24 * 3600 * 1000, only?.expiresAt);
  });
});

describe('R6: a refresh runs to its end whoever stops waiting for it', () => {
  it('a caller leaving while the authorization server rotates the refresh token loses nothing', async () => {
    const s = await world.setupOAuth(cleanup);
    await world.connect(s, world.ALICE, 'alice');
    s.clock.advance(61_000); // the access token is due
    const release = s.world.as.holdTokenResponses();
    const aborter = new AbortController();
    const pending = fetch(`${s.proxy.url}/proxy`, {
      method: 'POST',
      signal: aborter.signal,
      headers: { 'content-type': 'application/json', 'x-proxy-token': world.ALICE, origin: world.APP },
      body: JSON.stringify({
        mcp_server_url: s.world.upstream.url,
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'whoami', arguments: {} },
      }),
    }).catch(() => undefined);
    // Rotated at the authorization server, its answer held: then the caller goes away.
    await eventually(() => s.world.as.events.includes('token:refresh_token'));
    aborter.abort();
    await pending;
    // A round trip behind the abort: the proxy has read the caller's close by the time it answers.
    assert.equal((await fetch(`${s.proxy.url}/health`)).status, 200);
    release();
    assert.equal(world.subjectOf(await world.callTool(s, world.ALICE, 'whoami')), 'alice');
    assert.ok(!s.world.as.events.includes('token-error:invalid_grant'), s.world.as.events.join());
  });
});

describe('R1: the sign-in completes only in the tab and at the origin that bound it', () => {
  it('a nonce tossed into another browser (a cookie from another loopback port) completes nothing', async () => {
    const s = await world.setupOAuth(cleanup);
    // Bob has used the proxy before (a session and a consent at the authorization server).
    await world.connect(s, world.BOB, 'bob');
    // Alice binds her own link by script, and learns everything the bind answers.
    const link = world.authorizeUrlOf(s, await world.callTool(s, world.ALICE, 'whoami'));
    const bound = await fetch(link, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: s.publicUrl, 'sec-fetch-site': 'same-origin' },
      body: JSON.stringify(world.bindAs(world.ALICE)),
    });
    assert.equal(bound.status, 200);
    const tossed = (bound.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const answer = (await bound.json()) as { authorizeUrl: string; nonce?: string };
    // Bob's browser follows Alice's authorization URL, carrying whatever a page on another port
    // of 127.0.0.1 could put there (cookies do not isolate ports).
    const done = await s.world.user('bob').authorize(answer.authorizeUrl, {
      follow: true,
      headers: tossed === '' ? {} : { cookie: tossed },
    });
    assert.equal(done.sawConsent, false);
    assert.notEqual(done.callback?.status, 200, done.callback?.body);
    // Nor can Alice's own script finish with Bob's code from another origin.
    const callback = new URL(done.redirect.pathname, done.redirect);
    const forged = await fetch(callback, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        origin: 'http://127.0.0.1:1',
        'sec-fetch-site': 'same-site',
      },
      body: JSON.stringify({ query: done.redirect.search, nonce: answer.nonce }),
    });
    assert.equal(forged.status, 403);
    const alice = await world.callTool(s, world.ALICE, 'whoami');
    assert.equal(alice.body.error?.data?.code, 'upstream_auth_required', JSON.stringify(alice.body));
  });

  it('the callback GET only answers the page: it exchanges no code', async () => {
    const s = await world.setupOAuth(cleanup);
    const link = world.authorizeUrlOf(s, await world.callTool(s, world.ALICE, 'whoami'));
    const done = await s.world.user('alice').authorize(link, { bind: world.bindAs(world.ALICE) });
    const page = await fetch(done.redirect);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /data-mcpp-callback/);
    assert.ok(!s.world.as.events.includes('token:authorization_code'), s.world.as.events.join());
  });
});

describe('R5: a /ws socket uses the token the vault holds now', () => {
  it('after its token expires, a socket goes on with the refreshed one, and after a sign-in with the new one', async () => {
    const s = await world.setupOAuth(cleanup);
    await world.connect(s, world.ALICE, 'alice');
    const query = new URLSearchParams({ mcp_server_url: s.world.upstream.url, transport: 'streamable-http' });
    const ws = new WebSocket(
      `${s.proxy.url.replace('http', 'ws')}/ws?${query}`,
      ['mcp', `proxy-token.${world.ALICE}`],
      {
        origin: world.APP,
      },
    );
    cleanup.push(() => ws.close());
    // biome-ignore lint/suspicious/noExplicitAny: JSON-RPC frames
    const frames: any[] = [];
    ws.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const answer = async (id: number, method: string, params: unknown) => {
      ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
      return eventually(() => frames.find((frame) => frame.id === id), { what: `the answer to ${id}` });
    };
    await answer(1, 'initialize', {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 't', version: '1' },
    });
    ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    const whoami = async (id: number) => {
      // biome-ignore lint/suspicious/noExplicitAny: JSON-RPC frame
      const frame: any = await answer(id, 'tools/call', { name: 'whoami', arguments: {} });
      assert.ok(frame.result, JSON.stringify(frame).slice(0, 300));
      return JSON.parse(frame.result.content[0].text).sub;
    };
    assert.equal(await whoami(2), 'alice');
    s.clock.advance(61_000); // the socket's token expires
    assert.equal(await whoami(3), 'alice');
    assert.ok(s.world.as.events.includes('token:refresh_token'));
    // The grant is revoked at the authorization server: the user signs in again elsewhere.
    s.world.as.forgetGrants();
    s.clock.advance(61_000);
    // biome-ignore lint/suspicious/noExplicitAny: JSON-RPC frame
    const refused: any = await answer(4, 'tools/call', { name: 'whoami', arguments: {} });
    assert.equal(refused.error?.data?.code, 'upstream_auth_required', JSON.stringify(refused));
    const done = await s.world
      .user('alice')
      .authorize(refused.error.data.authorizeUrl, { follow: true, bind: world.bindAs(world.ALICE) });
    assert.equal(done.callback?.status, 200, done.callback?.body);
    assert.equal(await whoami(5), 'alice');
  });
});

describe('item 8: sign-ins are counted when bound, not when offered', () => {
  it('a server answering 401 to everything cannot spend the sign-ins of a principal', async () => {
    const s = await world.setupOAuth(cleanup);
    const evil = await hostile();
    const p = { proxy: s.proxy, publicUrl: s.publicUrl };
    const codes = new Set<string>();
    for (let i = 0; i < 40; i++)
      codes.add(String((await call(p, world.ALICE, `${evil.base}/mcp/${i}`)).body.error?.data?.code));
    // The hostile server meets a cap of its own...
    assert.ok(codes.has('oauth_sign_in_limited'), [...codes].join());
    // ...and the principal can still sign in to another server.
    await world.connect(s, world.ALICE, 'alice');
    assert.equal(world.subjectOf(await world.callTool(s, world.ALICE, 'whoami')), 'alice');
  });

  it('binding counts: thirty sign-ins per principal per ten minutes', async () => {
    const first = await hostile();
    const second = await hostile();
    // Configured servers: raw URLs of servers never connected are offered 30 links in all
    // (review oauth6 R3), too few to reach the bind cap.
    const dir = mkdtempSync(join(tmpdir(), 'oauth-r5-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(
      join(dir, 'proxy.json'),
      JSON.stringify({
        servers: { first: { url: `${first.base}/mcp/1` }, second: { url: `${second.base}/mcp/2` } },
      }),
    );
    const p = await proxyWith({ MCP_PROXY_CONFIG: join(dir, 'proxy.json') });
    const links: string[] = [];
    for (let i = 0; i < 31; i++) {
      const reply = await postProxy(
        { url: p.proxy.url, token: ALICE },
        { server: i % 2 === 0 ? 'first' : 'second', jsonrpc: '2.0', id: nextId++, method: 'tools/list' },
        { origin: APP },
      );
      links.push(linkOf(reply));
    }
    const statuses: number[] = [];
    for (const link of links) statuses.push((await bind(link, ALICE)).status);
    assert.deepEqual(statuses.slice(0, 30), new Array(30).fill(200));
    assert.equal(statuses[30], 429);
    // Bob's are his own.
    assert.equal((await bind(linkOf(await call(p, BOB, `${first.base}/mcp/x`)), BOB)).status, 200);
  });
});

describe('item 7: past the connection cap, the oldest is revoked and logged', () => {
  it('revokes what it evicts (RFC 7009), logs it without a token, and lists the newest 100', async () => {
    const evil = await hostile();
    evil.tokenAnswer = { access_token: 'at-n', token_type: 'bearer', expires_in: 3600 };
    const clock = new ManualClock();
    const p = await proxyWith({}, { clock });
    for (let i = 0; i < 101; i++) {
      // Ten links per ten minutes from one server not connected yet (review oauth6 R3): time moves on.
      if (i > 0 && i % 10 === 0) clock.advance(11 * 60 * 1000);
      const signedIn = await complete(linkOf(await call(p, ALICE, `${evil.base}/mcp/${i}`)), ALICE);
      assert.equal(signedIn.status, 200, await signedIn.text());
    }
    assert.deepEqual(
      evil.events.filter((e) => e.startsWith('revoke:')),
      ['revoke:rt-1', 'revoke:at-1'],
    );
    const listed = (await (await connections(p, ALICE)).json()) as {
      connections: Array<{ resource: string }>;
    };
    assert.equal(listed.connections.length, 100);
    assert.ok(!listed.connections.some((c) => c.resource === `${evil.base}/mcp/0`));
    const line = p.proxy.logs.find((l) => l.includes('evicted'));
    assert.ok(line, 'the eviction was logged');
    assert.match(line, /"revocation":"revoked"/);
    assert.ok(!/at-1\b|rt-1\b/.test(p.proxy.logs.join('\n')), 'a token was logged');
  });
});

describe('R5: a /ws request refused with 401 while a newer token can be had', () => {
  it('is sent once more with the refreshed token, without a sign-in', async () => {
    let issued = 0;
    let refreshes = 0;
    const refused = new Set<string>();
    const base: string = await serve((req, res, url, body) => {
      if (url.pathname === '/mcp') {
        const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
        if (req.method !== 'POST') return json(res, 405, {});
        if (/^ACCESS-\d+$/.test(token) && !refused.has(token)) {
          const message = JSON.parse(body) as { id?: number; method: string };
          if (message.id === undefined) {
            res.writeHead(202).end();
            return;
          }
          const result =
            message.method === 'initialize'
              ? {
                  protocolVersion: '2025-06-18',
                  capabilities: { tools: {} },
                  serverInfo: { name: 'h', version: '1' },
                }
              : { tools: [] };
          return json(res, 200, { jsonrpc: '2.0', id: message.id, result });
        }
        return json(res, 401, {}, { 'www-authenticate': `Bearer resource_metadata="${base}/prm"` });
      }
      if (url.pathname === '/prm')
        return json(res, 200, { resource: `${base}/mcp`, authorization_servers: [base] });
      if (url.pathname === '/.well-known/oauth-authorization-server')
        return json(res, 200, asMetadata(base, base));
      if (url.pathname === '/register') return json(res, 201, { client_id: 'c' });
      if (url.pathname === '/token') {
        if (new URLSearchParams(body).get('grant_type') === 'refresh_token') refreshes++;
        issued++;
        return json(res, 200, {
          access_token: `ACCESS-${issued}`,
          refresh_token: `R-${issued}`,
          token_type: 'bearer',
          expires_in: 3600,
        });
      }
      res.writeHead(404).end();
    });
    const p = await proxyWith();
    const signedIn = await complete(linkOf(await call(p, ALICE, `${base}/mcp`)), ALICE);
    assert.equal(signedIn.status, 200, await signedIn.text());
    const query = new URLSearchParams({ mcp_server_url: `${base}/mcp`, transport: 'streamable-http' });
    const ws = new WebSocket(
      `${p.proxy.url.replace('http', 'ws')}/ws?${query}`,
      ['mcp', `proxy-token.${ALICE}`],
      {
        origin: APP,
      },
    );
    cleanup.push(() => ws.close());
    // biome-ignore lint/suspicious/noExplicitAny: JSON-RPC frames
    const frames: any[] = [];
    ws.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const answer = async (id: number, method: string, params: unknown = {}) => {
      ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
      return eventually(() => frames.find((frame) => frame.id === id), { what: `the answer to ${id}` });
    };
    await answer(1, 'initialize', {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 't', version: '1' },
    });
    assert.ok((await answer(2, 'tools/list')).result);
    // The authorization server ends the access token early (revoked); the refresh token is good.
    refused.add('ACCESS-1');
    const third = await answer(3, 'tools/list');
    assert.ok(third.result, JSON.stringify(third));
    assert.equal(refreshes, 1);
  });
});
