/**
 * Issue 18, the third attacker review of the upstream OAuth broker (review oauth6): each finding
 * replayed black-box against the proxy, with the OAuth test world (oidc-provider) or hostile
 * authorization and MCP servers written here, on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import { MemoryStore } from '../src/store/memory-store.ts';
import { eventually } from './helpers/eventually.ts';
import { type Handler, json, serveHostile } from './helpers/hostile-server.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import * as world from './helpers/oauth-proxy.ts';
import { bind, linkOf } from './helpers/oauth-proxy.ts';
import { startBrokerProxy } from './helpers/oauth-sse-server.ts';
import { postProxy, type Reply, type startProxy } from './helpers/proxy.ts';

const { ALICE, BOB, APP } = world;

// biome-ignore lint/suspicious/noExplicitAny: frames and answers are arbitrary JSON.
type Json = any;

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A hostile party's server (helpers/hostile-server.ts); stopped after each test. */
const serve = (handler: Handler) => serveHostile(cleanup, handler);

/** Opens /ws as `token` to `serverUrl`; `answer` sends a request and waits for its answer. */
async function openSocket(s: { readonly proxy: { readonly url: string } }, token: string, serverUrl: string) {
  const query = new URLSearchParams({ mcp_server_url: serverUrl, transport: 'streamable-http' });
  const ws = new WebSocket(
    `${s.proxy.url.replace('http', 'ws')}/ws?${query}`,
    ['mcp', `proxy-token.${token}`],
    {
      origin: world.APP,
    },
  );
  cleanup.push(() => ws.close());
  const frames: Json[] = [];
  let closed: { code: number; reason: string } | undefined;
  ws.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString())));
  ws.on('close', (code: number, reason: Buffer) => {
    closed = { code, reason: reason.toString() };
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const answer = async (id: number, method: string, params: unknown = {}) => {
    ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    return eventually(() => frames.find((f) => f.id === id), { what: `answer ${id}` });
  };
  await answer(1, 'initialize', {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 't', version: '1' },
  });
  ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
  return { ws, frames, answer, closed: () => closed };
}

describe('R1: ending a connection reaches an open /ws socket', () => {
  it('a socket that sends nothing closes too, at its next heartbeat', async () => {
    const s = await world.setupOAuth(cleanup, { WS_HEARTBEAT_MS: '200' }, { revocationEndpoint: null });
    await world.connect(s, world.ALICE, 'alice');
    const socket = await openSocket(s, world.ALICE, s.world.upstream.url);
    const del = await fetch(`${s.proxy.url}/oauth/connections/${encodeURIComponent(s.world.upstream.url)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${world.ALICE}`, origin: world.APP },
    });
    assert.equal(del.status, 200, await del.text());
    const closed = await eventually(() => socket.closed(), { what: 'the idle socket closed' });
    assert.equal(closed.code, 4410);
  });

  it('a DELETE /oauth/connections closes the socket with upstream_auth_ended (4410)', async () => {
    const s = await world.setupOAuth(cleanup, {}, { revocationEndpoint: null });
    await world.connect(s, world.ALICE, 'alice');
    const socket = await openSocket(s, world.ALICE, s.world.upstream.url);
    const w1: Json = await socket.answer(2, 'tools/call', { name: 'whoami', arguments: {} });
    assert.equal(JSON.parse(w1.result.content[0].text).sub, 'alice');

    const del = await fetch(`${s.proxy.url}/oauth/connections/${encodeURIComponent(s.world.upstream.url)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${world.ALICE}`, origin: world.APP },
    });
    assert.equal(del.status, 200, await del.text());

    // The next frame never reaches the upstream with the ended connection's token.
    const w2: Json = await socket.answer(3, 'tools/call', { name: 'whoami', arguments: {} });
    assert.equal(w2.result, undefined, JSON.stringify(w2));
    assert.equal(w2.error.data.code, 'upstream_auth_ended');
    const closed = await eventually(() => socket.closed(), { what: 'the socket closed' });
    assert.equal(closed.code, 4410);
    assert.match(closed.reason, /^upstream_auth_ended:/);

    // A new socket asks for a sign-in (the vault holds nothing for alice any more).
    const again = await openSocket(s, world.ALICE, s.world.upstream.url);
    const w3: Json = await again.answer(2, 'tools/call', { name: 'whoami', arguments: {} });
    assert.equal(w3.error?.data?.code, 'upstream_auth_required', JSON.stringify(w3));
  });
});

/** Where a hostile authorization server sends users to sign in (another origin than its issuer). */
const FOREIGN_AUTHORIZE = 'https://login.microsoftonline.example/common/oauth2/v2.0/authorize';

interface Hostile {
  /** The base URL; the MCP server is at `${base}/mcp`, its issuer at `${base}/as`. */
  readonly base: string;
  /** What reached it: `token:<grant type>`, `mcp`. */
  readonly events: string[];
}

/**
 * An MCP server that answers 401 to everything, its protected resource metadata and an
 * authorization server that registers anyone; `metadata` may change its metadata.
 */
async function hostile(metadata: (base: string) => Record<string, unknown> = () => ({})): Promise<Hostile> {
  const events: string[] = [];
  const base = await serve((_req, res, url, body) => {
    if (url.pathname.startsWith('/prm/'))
      return json(res, 200, {
        resource: `${base}${url.pathname.slice(4)}`,
        authorization_servers: [`${base}/as`],
      });
    if (url.pathname === '/.well-known/oauth-authorization-server/as')
      return json(res, 200, {
        issuer: `${base}/as`,
        authorization_endpoint: `${base}/authorize`,
        token_endpoint: `${base}/token`,
        registration_endpoint: `${base}/register`,
        response_types_supported: ['code'],
        code_challenge_methods_supported: ['S256'],
        ...metadata(base),
      });
    if (url.pathname === '/register') return json(res, 201, { client_id: 'c1' });
    if (url.pathname === '/token') {
      events.push(`token:${new URLSearchParams(body).get('grant_type')}`);
      return json(res, 200, {
        access_token: 'at-1',
        refresh_token: 'rt-1',
        token_type: 'bearer',
        expires_in: 3600,
      });
    }
    events.push('mcp');
    return json(
      res,
      401,
      {},
      { 'www-authenticate': `Bearer resource_metadata="${base}/prm${url.pathname}"` },
    );
  });
  return { base, events };
}

type Proxy = Awaited<ReturnType<typeof startBrokerProxy>>;

/** A proxy with the broker on, PUBLIC_URL on its own loopback port; `file`: its config file. */
async function proxyWith(
  env: Record<string, string> = {},
  file?: unknown,
  deps: Parameters<typeof startProxy>[1] = {},
): Promise<Proxy> {
  const extra: Record<string, string> = {};
  if (file !== undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'oauth-r6-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'proxy.json'), JSON.stringify(file));
    extra.MCP_PROXY_CONFIG = join(dir, 'proxy.json');
  }
  return startBrokerProxy(cleanup, { PROXY_TOKENS: `${ALICE},${BOB}`, ...extra, ...env }, deps);
}

let nextId = 1;
function call(p: Proxy, token: string, serverUrl: string, method = 'tools/list'): Promise<Reply> {
  return postProxy(
    { url: p.proxy.url, token },
    { mcp_server_url: serverUrl, jsonrpc: '2.0', id: nextId++, method },
    { origin: APP },
  );
}

describe('R2: the start page names where the Continue button goes', () => {
  it('refuses an authorization endpoint on another origin than its (unconfigured) issuer', async () => {
    const evil = await hostile(() => ({ authorization_endpoint: FOREIGN_AUTHORIZE }));
    const p = await proxyWith();
    const reply = await call(p, ALICE, `${evil.base}/mcp`);
    assert.equal(reply.body?.error?.data?.code, 'upstream_auth_unsupported', JSON.stringify(reply.body));
    assert.equal(reply.body.error.data.reason, 'authorization_endpoint_elsewhere');
  });

  it('an issuer the operator configured may send users elsewhere: the page and button name both hosts', async () => {
    let issuer = '';
    const evil = await hostile((base) => {
      issuer = `${base}/as`;
      return { authorization_endpoint: FOREIGN_AUTHORIZE };
    });
    const p = await proxyWith(
      {},
      { oauthClients: [{ issuer: `${evil.base}/as`, clientId: 'c-configured' }] },
    );
    const link = linkOf(await call(p, ALICE, `${evil.base}/mcp`));
    assert.equal(issuer, `${evil.base}/as`);
    const page = await (await fetch(link)).text();
    const issuerHost = new URL(evil.base).host;
    const at = 'login.microsoftonline.example';
    assert.match(
      page,
      new RegExp(
        `with your account at <strong>${at}</strong> \\(authorization server <strong>${issuerHost}</strong>\\)`,
      ),
    );
    assert.match(page, new RegExp(`Continue to ${at} \\(for ${issuerHost}\\)<`));
    const bound = await bind(link, ALICE);
    assert.equal(bound.status, 200, JSON.stringify(bound.body));
    assert.equal(new URL(bound.body.authorizeUrl as string).host, at);
  });

  it("the same origin: the page and button name the authorization endpoint's host", async () => {
    const evil = await hostile();
    const p = await proxyWith();
    const link = linkOf(await call(p, ALICE, `${evil.base}/mcp`));
    const page = await (await fetch(link)).text();
    const host = new URL(evil.base).host;
    assert.match(page, new RegExp(`with your account at <strong>${host}</strong>\\.`));
    assert.match(page, new RegExp(`Continue to ${host}<`));
  });
});

/** The error code of each call's answer: `upstream_auth_required` (offered) or a refusal. */
function codeOf(reply: Reply): string {
  const code = reply.body?.error?.data?.code;
  assert.ok(
    code === 'upstream_auth_required' || code === 'oauth_sign_in_limited',
    JSON.stringify(reply.body),
  );
  return code;
}

describe('R3: each principal has a bounded share of the sign-in offers', () => {
  it('servers never connected share one cap of 30 offers per principal, however many origins', async () => {
    // Four origins (a principal may cause 10 dynamic registrations an hour: more origins would
    // meet that cap first), 10 offers each: 40 within each server's own cap.
    const servers = [await hostile(), await hostile(), await hostile(), await hostile()];
    const p = await proxyWith();
    const codes: string[] = [];
    for (const evil of servers) {
      for (let i = 0; i < 10; i++) codes.push(codeOf(await call(p, ALICE, `${evil.base}/mcp`)));
    }
    assert.equal(codes.filter((c) => c === 'upstream_auth_required').length, 30);
    assert.equal(codes.filter((c) => c === 'oauth_sign_in_limited').length, 10);
    // One such server spends a third of it: 10 offers, then its own cap.
    const one = await hostile();
    const mine: string[] = [];
    for (let i = 0; i < 12; i++) mine.push(codeOf(await call(p, BOB, `${one.base}/mcp`)));
    assert.deepEqual(mine.slice(9), [
      'upstream_auth_required',
      'oauth_sign_in_limited',
      'oauth_sign_in_limited',
    ]);
    // Another principal is not limited by alice's offers.
    assert.equal(codeOf(await call(p, BOB, `${servers[0]?.base}/mcp`)), 'upstream_auth_required');
  });

  it('a principal still gets offers when others spent the proxy-wide total', async () => {
    const store = new MemoryStore();
    // What 34 principals making 300 offers each would have spent.
    for (let i = 0; i < 10_200; i++) await store.hit('oauth:count:all', 10 * 60_000);
    const evil = await hostile();
    const p = await proxyWith({}, undefined, { store });
    assert.equal(codeOf(await call(p, BOB, `${evil.base}/mcp`)), 'upstream_auth_required');
  });
});

describe('R4: the per-frame token read on /ws never starts a refresh storm', () => {
  it('frames do not wait for a refresh while the token is valid; a failed refresh backs off', async () => {
    let base = '';
    const events: string[] = [];
    let refuseHeld = false;
    let releaseRefresh: (() => void) | undefined;
    const refreshing = new Promise<void>((resolve) => {
      releaseRefresh = resolve;
    });
    base = await serve(async (req, res, url, body) => {
      if (url.pathname.startsWith('/prm'))
        return json(res, 200, { resource: `${base}/mcp`, authorization_servers: [`${base}/as`] });
      if (url.pathname === '/.well-known/oauth-authorization-server/as')
        return json(res, 200, {
          issuer: `${base}/as`,
          authorization_endpoint: `${base}/authorize`,
          token_endpoint: `${base}/token`,
          registration_endpoint: `${base}/register`,
          response_types_supported: ['code'],
          code_challenge_methods_supported: ['S256'],
        });
      if (url.pathname === '/register') return json(res, 201, { client_id: 'c1' });
      if (url.pathname === '/token') {
        const grant = new URLSearchParams(body).get('grant_type');
        events.push(`token:${grant}`);
        if (grant === 'refresh_token') {
          // The authorization server struggles: slow, then failing (not invalid_grant).
          await refreshing;
          return json(res, 503, { error: 'temporarily_unavailable' });
        }
        return json(res, 200, {
          access_token: 'at-1',
          refresh_token: 'rt-1',
          token_type: 'bearer',
          expires_in: 60,
        });
      }
      if (url.pathname === '/mcp') {
        if (req.headers.authorization !== 'Bearer at-1' || (refuseHeld && !body.includes('"initialize"')))
          return json(res, 401, {}, { 'www-authenticate': `Bearer resource_metadata="${base}/prm/mcp"` });
        if (req.method !== 'POST') return void res.writeHead(405).end();
        const message = JSON.parse(body);
        if (message.id === undefined) return void res.writeHead(202).end();
        if (message.method === 'initialize')
          return json(res, 200, {
            jsonrpc: '2.0',
            id: message.id,
            result: {
              protocolVersion: '2025-06-18',
              capabilities: { tools: {} },
              serverInfo: { name: 'h', version: '1' },
            },
          });
        return json(res, 200, { jsonrpc: '2.0', id: message.id, result: { tools: [] } });
      }
      res.writeHead(404).end();
    });
    cleanup.push(() => releaseRefresh?.());
    const clock = new ManualClock();
    const p = await proxyWith({}, undefined, { clock });
    const link = linkOf(await call(p, ALICE, `${base}/mcp`));
    const bound = await bind(link, ALICE);
    assert.equal(bound.status, 200);
    const callback = new URL(
      new URL(bound.body.authorizeUrl as string).searchParams.get('redirect_uri') as string,
    );
    const done = await fetch(callback, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: p.publicUrl, 'sec-fetch-site': 'same-origin' },
      body: JSON.stringify({ query: `?code=c&state=${bound.body.state}`, nonce: bound.body.nonce }),
    });
    assert.equal(done.status, 200, await done.text());

    const socket = await openSocket(p, ALICE, `${base}/mcp`);
    const refreshes = () => events.filter((e) => e === 'token:refresh_token').length;
    clock.advance(50_000); // due for refresh (within its margin), still valid

    // The refresh hangs: frames go on with the token held, none waits for it, one refresh runs.
    for (let i = 0; i < 10; i++) assert.ok((await socket.answer(100 + i, 'tools/list')).result);
    assert.equal(refreshes(), 1);
    // It fails: no new refresh for the next frames (back-off), the held token serves on.
    releaseRefresh?.();
    await eventually(() => (refreshes() === 1 ? true : undefined), { what: 'the refresh ended' });
    for (let i = 0; i < 10; i++) assert.ok((await socket.answer(200 + i, 'tools/list')).result);
    assert.equal(refreshes(), 1);

    // The upstream now refuses the held token: a sign-in is asked for, with no new refresh grant.
    refuseHeld = true;
    const refused: Json = await socket.answer(300, 'tools/list');
    assert.equal(refused.error?.data?.code, 'upstream_auth_required', JSON.stringify(refused));
    assert.equal(refreshes(), 1);
  });
});
