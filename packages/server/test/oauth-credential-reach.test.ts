/**
 * A disconnect or a refresh of the broker's credential reaches everything that holds the token:
 * sessions held on POST /proxy and /mcp, the modern pool, a virtual server's member sessions, even
 * when the store forgot the end mark; a refresh in flight never replaces a newer sign-in, and a
 * virtual member refusing the token is refreshed as a named server is.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { TokenVault } from '../src/credentials/vault.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { eventually } from './helpers/eventually.ts';
import { json, serveHostile } from './helpers/hostile-server.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { modernRequest } from './helpers/modern-client.ts';
import { freePort } from './helpers/net.ts';
import { ALICE, APP, bindAs } from './helpers/oauth-proxy.ts';
import {
  disconnect,
  proxyCall,
  signInFrom,
  startBrokerProxy,
  startOAuthSseServer,
} from './helpers/oauth-sse-server.ts';
import { startOAuthWorld } from './helpers/oauth-world.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/**
 * Review 6 (OAuth broker), finding OAUTH-1: ending a connection (DELETE /oauth/connections) does
 * not reach a session the proxy HOLDS for the caller (POST /proxy or /mcp `initialize` to an
 * HTTP+SSE or WebSocket upstream): the held session keeps the access token it was opened with
 * and keeps sending it upstream after the user disconnected. Review oauth6 R1 fixed this for /ws
 * sockets only (an end mark read per frame); held sessions take `bearerToken` as a fixed string
 * (surfaces/proxy/forwarder.ts:127, surfaces/mcp/brokered-sign-in.ts:71, dispatch/connector.ts:107).
 * The authorization server here offers no revocation endpoint (revocation `not_offered`), as
 * with a resource server that checks JWT access tokens itself: only the proxy can stop using it.
 */
describe('OAUTH-1: a disconnect reaches sessions the proxy holds, not only /ws sockets', () => {
  // biome-ignore lint/suspicious/noExplicitAny: JSON-RPC answers are arbitrary JSON.
  type Json = any;

  let nextId = 1;
  function call(proxyUrl: string, serverUrl: string, method: string, sessionId?: string, params: Json = {}) {
    return postProxy(
      { url: proxyUrl, token: ALICE },
      {
        mcp_server_url: serverUrl,
        transport: 'sse',
        ...(sessionId === undefined ? {} : { mcp_session_id: sessionId }),
        jsonrpc: '2.0',
        id: nextId++,
        method,
        params,
      },
      { origin: APP },
    );
  }

  /** A proxy with the broker on, and alice signed in to a fresh OAuth-protected HTTP+SSE server. */
  async function signedIn() {
    const world = await startOAuthSseServer(cleanup);
    const serverUrl = world.url;
    const { proxy, publicUrl } = await startBrokerProxy(cleanup);
    await signInFrom(publicUrl, await call(proxy.url, serverUrl, 'tools/list'));
    return { world, serverUrl, proxy };
  }

  /** Opens a session the proxy holds on POST /proxy; returns its id. */
  async function openSession(proxyUrl: string, serverUrl: string): Promise<string> {
    const opened = await call(proxyUrl, serverUrl, 'initialize', undefined, {
      protocolVersion: '2024-11-05',
      capabilities: {},
      clientInfo: { name: 't', version: '1' },
    });
    assert.equal(opened.status, 200, JSON.stringify(opened.body));
    const sessionId = opened.headers.get('mcp-session-id') ?? undefined;
    assert.ok(sessionId?.startsWith('mcpp-'), `a held session: ${sessionId}`);
    return sessionId as string;
  }

  it('POST /proxy: a held HTTP+SSE session stops sending the token once the user disconnected', async () => {
    const { world, serverUrl, proxy } = await signedIn();
    const sessionId = await openSession(proxy.url, serverUrl);
    const first = await call(proxy.url, serverUrl, 'tools/call', sessionId, { name: 'x', arguments: {} });
    assert.equal(first.body?.result?.content?.[0]?.text, 'served', JSON.stringify(first.body));

    const ended = await disconnect(proxy.url, serverUrl);
    assert.equal(ended.disconnected[0].revocation, 'not_offered');
    const before = world.posts.length;

    // The user ended the connection: the held session must not serve with its token any more.
    const after = await call(proxy.url, serverUrl, 'tools/call', sessionId, { name: 'x', arguments: {} });
    const sent = world.posts.slice(before).filter((p) => p.authorization === 'Bearer at-1');
    assert.deepEqual(sent, [], "the ended connection's token went upstream after the disconnect");
    assert.equal(after.body?.result, undefined, JSON.stringify(after.body));
    assert.equal(after.body?.error?.data?.code, 'upstream_auth_ended', JSON.stringify(after.body));
    const again = await call(proxy.url, serverUrl, 'tools/call', sessionId, { name: 'x', arguments: {} });
    assert.equal(again.body?.error?.data?.code, 'session_not_found', JSON.stringify(again.body));
  });

  it('POST /proxy: a held HTTP+SSE session sends the token a refresh stored, not the one it opened with', async () => {
    const { world, serverUrl, proxy } = await signedIn();
    const sessionId = await openSession(proxy.url, serverUrl);

    // The server stops taking at-1: the proxy refreshes (at-2) and the held session must use it.
    world.rotate();
    const before = world.posts.length;
    const after = await call(proxy.url, serverUrl, 'tools/call', sessionId, { name: 'x', arguments: {} });
    assert.equal(after.body?.result?.content?.[0]?.text, 'served', JSON.stringify(after.body));
    assert.deepEqual(
      world.posts.slice(before).map((p) => p.authorization),
      ['Bearer at-1', 'Bearer at-2'],
    );
  });

  it('/mcp: a held HTTP+SSE session stops sending the token once the user disconnected', async () => {
    const { world, serverUrl, proxy } = await signedIn();

    const mcp = async (message: Json, sessionId?: string) => {
      const response = await fetch(`${proxy.url}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'x-proxy-token': ALICE,
          'x-mcp-server-url': serverUrl,
          'x-mcp-transport': 'sse',
          'mcp-protocol-version': '2025-06-18',
          origin: APP,
          ...(sessionId === undefined ? {} : { 'mcp-session-id': sessionId }),
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, ...message }),
      });
      const text = await response.text();
      return { status: response.status, sessionId: response.headers.get('mcp-session-id'), body: text };
    };
    const opened = await mcp({
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    assert.equal(opened.status, 200, opened.body);
    const sessionId = opened.sessionId ?? undefined;
    assert.ok(sessionId?.startsWith('mcpp-'), `a held session: ${sessionId}`);
    const first = await mcp({ method: 'tools/call', params: { name: 'x', arguments: {} } }, sessionId);
    assert.match(first.body, /served/);

    await disconnect(proxy.url, serverUrl);
    const before = world.posts.length;

    const after = await mcp({ method: 'tools/call', params: { name: 'x', arguments: {} } }, sessionId);
    const sent = world.posts.slice(before).filter((p) => p.authorization === 'Bearer at-1');
    assert.deepEqual(sent, [], "the ended connection's token went upstream after the disconnect");
    assert.doesNotMatch(after.body, /served/);
    // Streamable HTTP's signal that the session is gone (initialize again), saying why.
    assert.equal(after.status, 404, after.body);
    assert.equal(JSON.parse(after.body).error?.data?.code, 'upstream_auth_ended', after.body);
  });
});

/**
 * Review 7 (credentials), finding CREDS-1: review6 OAUTH-1 made a disconnect reach the sessions
 * the proxy holds on /proxy, /mcp and /ws (credentials/live-credential.ts), but not the sessions a
 * virtual server holds to its members (virtual/member-sessions.ts). Those are opened with the
 * broker's token as a fixed string (credentials/member-credentials.ts `supply`), keyed by its
 * hash: after DELETE /oauth/connections the next request opens another session, and the one
 * opened with the ended token lives on — its HTTP+SSE stream (authenticated once with the ended
 * token) still open upstream, whatever it sends still routed to the principal's virtual GET
 * streams — until the idle sweep.
 */
describe('CREDS-1: a disconnect reaches the sessions a virtual server holds to its members', () => {
  // `auth: oauth`: the next request finds no token and asks for a sign-in without reaching the
  // member's session; that session must end all the same.
  for (const auth of [undefined, 'oauth'] as const) {
    it(`the member session opened with the ended token is closed by the next request (auth: ${auth ?? 'unset'})`, async () => {
      const member = await startOAuthSseServer(cleanup);
      const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-creds-1-'));
      cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      writeFileSync(
        join(dir, 'proxy.json'),
        JSON.stringify({
          servers: { files: { url: member.url, transport: 'sse', ...(auth ? { auth } : {}) } },
          virtualServers: { workspace: { servers: ['files'] } },
        }),
      );
      const { proxy, publicUrl } = await startBrokerProxy(cleanup, {
        MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
      });
      let id = 1;
      const call = () =>
        proxyCall(
          proxy.url,
          { server: 'workspace' },
          { id: id++, method: 'tools/call', params: { name: 'files__x', arguments: {} } },
        );

      await signInFrom(publicUrl, await call());
      const served = await call();
      assert.equal(served.body?.result?.content?.[0]?.text, 'served', JSON.stringify(served.body));
      assert.equal(member.streams.length, 1, 'one member session, authenticated with at-1');

      await disconnect(proxy.url, 'files');

      // The next request through the virtual server: as on /proxy and /mcp (OAUTH-1), the session
      // authenticated with the ended token must serve nobody any more.
      const after = await call();
      assert.equal(after.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(after.body));
      await eventually(() => member.streams[0]?.closed, {
        timeoutMs: 3000,
        what: "the member's stream opened with the ended token to close upstream",
      });
    });
  }
});

/**
 * Review 7 (credentials), finding CREDS-2: the sessions the proxy pools for 2026-07-28 clients of
 * a session-era server (sessions/modern-pool.ts) were keyed by the broker's token and never read
 * it again: after DELETE /oauth/connections the one opened with the ended token stayed open
 * upstream (its HTTP+SSE stream, a long `subscriptions/listen`) beside a new one, and each refresh
 * opened another pooled session. A pooled session now holds the broker's credential and renews it
 * before each request goes through it.
 */
describe('CREDS-2: a pooled session for modern clients follows the broker credential', () => {
  /**
   * A proxy with the broker on, alice signed in to a fresh server whose tokens live a minute; `call`
   * is a modern tools/call; the proxy's time is `clock`'s.
   */
  async function signedIn() {
    const server = await startOAuthSseServer(cleanup, 60);
    const clock = new ManualClock();
    const { proxy, publicUrl } = await startBrokerProxy(cleanup, {}, { clock });
    let id = 1;
    const call = () =>
      proxyCall(
        proxy.url,
        { mcp_server_url: server.url, transport: 'sse' },
        modernRequest(id++, 'tools/call', { name: 'x', arguments: {} }),
      );
    await signInFrom(publicUrl, await call());
    const served = await call();
    assert.equal(served.body?.result?.content?.[0]?.text, 'served', JSON.stringify(served.body));
    assert.equal(server.streams.length, 1, 'one pooled session, opened with at-1');
    return { server, proxy, call, clock };
  }

  it('a disconnect closes the pooled session opened with the ended token', async () => {
    const { server, proxy, call } = await signedIn();
    await disconnect(proxy.url, server.url);
    const before = server.posts.length;

    const after = await call();
    assert.equal(after.body?.result, undefined, JSON.stringify(after.body));
    const sent = server.posts.slice(before).filter((post) => post.authorization === 'Bearer at-1');
    assert.deepEqual(sent, [], "the ended connection's token went upstream after the disconnect");
    await eventually(() => server.streams[0]?.closed, {
      timeoutMs: 3000,
      what: 'the stream opened with the ended token to close upstream',
    });
  });

  it('a refresh reaches the pooled session: no second session, the new token upstream', async () => {
    const { server, call, clock } = await signedIn();
    server.rotate();
    // The token is due for refresh (a minute's life, refreshed ahead of its end).
    clock.advance(50_000);
    const before = server.posts.length;

    const after = await call();
    assert.equal(after.body?.result?.content?.[0]?.text, 'served', JSON.stringify(after.body));
    assert.equal(server.streams.length, 1, 'the refresh opened another pooled session');
    assert.equal(server.streams[0]?.closed, false);
    const last = server.posts.slice(before).at(-1);
    assert.equal(last?.authorization, 'Bearer at-2', JSON.stringify(server.posts.slice(before)));
  });
});

/**
 * Review 7 (credentials), finding CREDS-4: what holds the broker's token (a held session, a /ws
 * socket, a pooled or member session) learnt of a disconnect only from the end mark the
 * disconnect writes under its own key (credentials/live-credential.ts), and read a missing mark as
 * "never ended". That key can go while the holder is still open: a Redis with an evicting
 * `maxmemory-policy` drops it (it carries a TTL) while the vault entry's slot stays.
 *
 * The fix: a disconnect leaves a sealed tombstone in the vault entry's own slot (one key: it cannot
 * be evicted apart from what it ends). A missing entry still reads as "needs sign-in" (a refused
 * refresh deletes it: review R5 keeps such a /ws socket open for a new sign-in).
 */
describe('CREDS-4: an end the store forgot still ends what held the token', () => {
  /** A store that loses every end mark at once, as Redis under an evicting policy may. */
  class EvictingStore extends MemoryStore {
    override async set(key: string, value: string, ttlMs?: number): Promise<void> {
      // The broker's keys carry its namespace before the vault's own prefix.
      if (key.includes(`:${TokenVault.endedKey('')}`)) return;
      await super.set(key, value, ttlMs);
    }
  }

  it('POST /proxy: a held HTTP+SSE session ends after a disconnect whose end mark was evicted', async () => {
    const server = await startOAuthSseServer(cleanup);
    const store = new EvictingStore();
    const { proxy, publicUrl } = await startBrokerProxy(cleanup, {}, { store });
    let id = 1;
    const call = (method: string, sessionId?: string, params: Record<string, unknown> = {}) =>
      proxyCall(
        proxy.url,
        { mcp_server_url: server.url, transport: 'sse', ...(sessionId ? { mcp_session_id: sessionId } : {}) },
        { id: id++, method, params },
      );
    await signInFrom(publicUrl, await call('tools/list'));
    const opened = await call('initialize', undefined, {
      protocolVersion: '2024-11-05',
      capabilities: {},
      clientInfo: { name: 't', version: '1' },
    });
    const sessionId = opened.headers.get('mcp-session-id') ?? undefined;
    assert.ok(sessionId?.startsWith('mcpp-'), `a held session: ${JSON.stringify(opened.body)}`);
    const tool = { name: 'x', arguments: {} };
    const first = await call('tools/call', sessionId, tool);
    assert.equal(first.body?.result?.content?.[0]?.text, 'served', JSON.stringify(first.body));
    const streams = server.streams.length;

    await disconnect(proxy.url, server.url);

    const after = await call('tools/call', sessionId, tool);
    assert.equal(after.body?.error?.data?.code, 'upstream_auth_ended', JSON.stringify(after.body));
    await eventually(() => server.streams.slice(0, streams).every((stream) => stream.closed), {
      timeoutMs: 3000,
      what: 'the stream opened with the ended token to close upstream',
    });
  });
});

/**
 * Review 6 (OAuth broker), finding OAUTH-3: a refresh that was already in flight when the user
 * completed a new sign-in for the same server overwrites the new sign-in's tokens. The refresh
 * ends with an unconditional `vault.put` (credentials/token-refresh.ts:310) and the callback
 * stores without the slot's lock (credentials/broker.ts:442), so the older grant's refreshed
 * token wins: the step-up scopes (or the other upstream account) the user just granted are lost,
 * and the proxy goes on calling the server as the old grant.
 */
describe('OAUTH-3: a refresh in flight never replaces a newer sign-in', () => {
  const ALICE = 'alice-proxy-token-0123456789abcdef';
  const APP = 'http://app.example';

  it('the step-up sign-in completed during a refresh keeps its token', async () => {
    const seen: string[] = [];
    const grants: string[] = [];
    let releaseRefresh: (() => void) | undefined;
    const refreshHeld = new Promise<void>((resolve) => {
      releaseRefresh = resolve;
    });
    cleanup.push(() => releaseRefresh?.());
    let codeExchanges = 0;
    let base = '';
    base = await serveHostile(cleanup, async (req, res, url, body) => {
      if (url.pathname === '/prm/mcp')
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
        const grant = new URLSearchParams(body).get('grant_type') ?? '';
        grants.push(grant);
        if (grant === 'refresh_token') {
          await refreshHeld;
          return json(res, 200, {
            access_token: 'at-old-refreshed',
            token_type: 'bearer',
            expires_in: 60,
            scope: 'read',
          });
        }
        codeExchanges++;
        // The first sign-in: read only; the second (step-up): read and admin.
        return codeExchanges === 1
          ? json(res, 200, {
              access_token: 'at-old',
              refresh_token: 'rt-old',
              token_type: 'bearer',
              expires_in: 60,
              scope: 'read',
            })
          : json(res, 200, {
              access_token: 'at-new',
              refresh_token: 'rt-new',
              token_type: 'bearer',
              expires_in: 3600,
              scope: 'read admin',
            });
      }
      if (url.pathname === '/mcp') {
        const auth = req.headers.authorization ?? '';
        const message = body === '' ? {} : JSON.parse(body);
        seen.push(`${auth} ${message.method}`);
        const challenge = `Bearer resource_metadata="${base}/prm/mcp"`;
        if (!['Bearer at-old', 'Bearer at-old-refreshed', 'Bearer at-new'].includes(auth))
          return json(res, 401, {}, { 'www-authenticate': challenge });
        if (message.method === 'tools/call' && auth !== 'Bearer at-new')
          return json(
            res,
            403,
            {},
            {
              'www-authenticate': `Bearer error="insufficient_scope", scope="read admin", resource_metadata="${base}/prm/mcp"`,
            },
          );
        return json(res, 200, {
          jsonrpc: '2.0',
          id: message.id,
          result: { content: [{ type: 'text', text: auth }] },
        });
      }
      res.writeHead(404).end();
    });

    const clock = new ManualClock();
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    const proxy = await startProxy(
      {
        PORT: String(port),
        PUBLIC_URL: publicUrl,
        OAUTH_BROKER: 'true',
        PROXY_TOKENS: ALICE,
        CORS_ORIGINS: APP,
        LOG_LEVEL: 'warn',
      },
      { clock },
    );
    cleanup.push(() => proxy.close());
    let id = 1;
    const call = (method: string) =>
      postProxy(
        { url: proxy.url, token: ALICE },
        {
          mcp_server_url: `${base}/mcp`,
          jsonrpc: '2.0',
          id: id++,
          method,
          params: { name: 'admin', arguments: {} },
        },
        { origin: APP },
      );
    const same = { 'content-type': 'application/json', origin: publicUrl, 'sec-fetch-site': 'same-origin' };
    const bind = async (link: string) => {
      const r = await fetch(link, {
        method: 'POST',
        headers: same,
        body: JSON.stringify({ credential: ALICE, origin: APP }),
      });
      const b = (await r.json()) as { authorizeUrl: string; state: string; nonce: string };
      assert.equal(r.status, 200, JSON.stringify(b));
      return b;
    };
    const complete = async (b: { authorizeUrl: string; state: string; nonce: string }) => {
      const callback = new URL(b.authorizeUrl).searchParams.get('redirect_uri') as string;
      const done = await fetch(callback, {
        method: 'POST',
        headers: same,
        body: JSON.stringify({ query: `?code=c&state=${b.state}`, nonce: b.nonce }),
      });
      assert.equal(done.status, 200, await done.text());
    };

    // Signed in with `read`; the admin tool asks for a step-up: the user starts it.
    const first = await call('tools/list');
    assert.equal(first.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(first.body));
    await complete(await bind(first.body.error.data.authorizeUrl));
    const stepUp = await call('tools/call');
    assert.equal(stepUp.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(stepUp.body));
    const bound = await bind(stepUp.body.error.data.authorizeUrl);

    // The old token falls due: a call starts its refresh, which the authorization server holds.
    clock.advance(50_000);
    const waiting = call('tools/list');
    await eventually(() => (grants.includes('refresh_token') ? true : undefined), {
      what: 'the refresh started',
    });
    // Meanwhile the user finishes the step-up sign-in; then the old grant's refresh answers.
    await complete(bound);
    releaseRefresh?.();
    await waiting;

    const after = await call('tools/call');
    assert.equal(
      after.body?.result?.content?.[0]?.text,
      'Bearer at-new',
      `the step-up sign-in was overwritten: ${JSON.stringify(after.body)} (upstream saw ${seen.slice(-2).join(' | ')})`,
    );
  });
});

/**
 * Review 8 (creds) finding 3: a virtual server's member that refuses the broker's token (401) is
 * never refreshed: credentials/member-credentials.ts `refused` goes straight to
 * `broker.required` (a new sign-in link), where a named server (surfaces/proxy/forwarder.ts, the
 * `/mcp` and `/ws` surfaces) first calls `broker.rejected`, refreshes with the refresh token the
 * vault holds and retries once. The proxy refreshes ahead of `expiresAt` only when it knows it
 * (an authorization server may omit `expires_in`; a token may be refused before it: a clock
 * skew, a key rotation at the resource), so through a virtual server the user is sent to sign in
 * again although one refresh would have served the call.
 * Real parts: the OAuth test world (oidc-provider and an SDK upstream) and the proxy. The world
 * runs on its own clock, one minute ahead of the proxy's once advanced: the upstream refuses the
 * token the proxy still believes valid.
 */
describe('review8 creds 3: a virtual member refusing the broker token', () => {
  const ALICE = 'alice-review8-creds-3-0123456789ab';

  async function setup() {
    const worldClock = new ManualClock();
    const world = await startOAuthWorld({ clock: worldClock, accessTokenTtl: 60 });
    cleanup.push(() => world.stop());
    const dir = mkdtempSync(join(tmpdir(), 'review8-creds-3-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(
      join(dir, 'proxy.json'),
      JSON.stringify({
        servers: { files: { url: world.upstream.url, transport: 'streamable-http' } },
        virtualServers: { workspace: { servers: ['files'] } },
      }),
    );
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    // The proxy on its own clock (the real time): the world's moves ahead of it.
    const proxy = await startProxy({
      PORT: String(port),
      PUBLIC_URL: publicUrl,
      OAUTH_BROKER: 'true',
      PROXY_TOKENS: ALICE,
      CORS_ORIGINS: APP,
      MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
    });
    cleanup.push(() => proxy.close());
    let id = 1;
    const call = (target: Record<string, string>) =>
      postProxy(
        { url: proxy.url, token: ALICE },
        {
          ...target,
          jsonrpc: '2.0',
          id: id++,
          method: 'tools/call',
          params: { name: target.server === 'workspace' ? 'files__whoami' : 'whoami', arguments: {} },
        },
        { origin: APP },
      );
    const refused = await call({ server: 'workspace' });
    const url: string = refused.body?.error?.data?.authorizeUrl;
    assert.ok(url?.startsWith(`${publicUrl}/oauth/start/`), JSON.stringify(refused.body));
    const done = await world.user('alice').authorize(url, { follow: true, bind: bindAs(ALICE) });
    assert.equal(done.callback?.status, 200, done.callback?.body);
    const served = await call({ server: 'workspace' });
    assert.equal(
      JSON.parse(served.body?.result?.content?.[0]?.text ?? '{}').sub,
      'alice',
      JSON.stringify(served.body),
    );
    return { world, worldClock, call };
  }

  it('refreshes it and serves the call, as a named server does, instead of asking for a new sign-in', async () => {
    const { world, worldClock, call } = await setup();
    // The upstream now refuses the token (expired in its time), the proxy still thinks it valid.
    worldClock.advance(61_000);
    const reply = await call({ server: 'workspace' });
    assert.equal(
      reply.body?.error?.data?.code,
      undefined,
      `a refusal the refresh token could fix asked for a new sign-in (refreshes: ${
        world.as.events.filter((e) => e === 'token:refresh_token').length
      }): ${JSON.stringify(reply.body)}`,
    );
    assert.equal(JSON.parse(reply.body.result.content[0].text).sub, 'alice');
  });

  it('(control) the named server refreshes and serves under the same conditions', async () => {
    const { worldClock, call } = await setup();
    worldClock.advance(61_000);
    const reply = await call({ server: 'files' });
    assert.equal(
      JSON.parse(reply.body?.result?.content?.[0]?.text ?? '{}').sub,
      'alice',
      JSON.stringify(reply.body),
    );
  });
});
