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
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { afterEach, describe, it } from 'node:test';
import { authServerMetadata, type Handler, json, serveHostile } from './helpers/hostile-server.ts';
import { freePort } from './helpers/net.ts';
import { postProxy, type Reply, startProxy } from './helpers/proxy.ts';

const ALICE = 'alice-proxy-token-0123456789abcdef';
const APP = 'http://app.example';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

// biome-ignore lint/suspicious/noExplicitAny: JSON-RPC answers are arbitrary JSON.
type Json = any;

interface SseWorld {
  readonly base: string;
  /** The Authorization header of every POST to a session's message endpoint, in order. */
  readonly posts: Array<{ readonly authorization: string | undefined; readonly method: string }>;
  /** From now on the MCP server refuses `at-1` and the token endpoint's next token is `at-2`. */
  rotate(): void;
}

/**
 * An authorization server (dynamic registration, no revocation endpoint, access token `at-1`)
 * and an HTTP+SSE (2024-11-05) MCP server that accepts only `Bearer at-1`, on one loopback port.
 */
async function sseWorld(): Promise<SseWorld> {
  const posts: SseWorld['posts'] = [];
  const streams = new Map<string, ServerResponse>();
  let next = 0;
  let base = '';
  let accepted = 'Bearer at-1';
  let issued = 'at-1';
  const challenge = () => ({ 'www-authenticate': `Bearer resource_metadata="${base}/prm/sse"` });
  const handler: Handler = (req, res, url, body) => {
    if (url.pathname === '/prm/sse')
      return json(res, 200, { resource: `${base}/sse`, authorization_servers: [`${base}/as`] });
    if (url.pathname === '/.well-known/oauth-authorization-server/as')
      return json(res, 200, authServerMetadata(base, `${base}/as`));
    if (url.pathname === '/register') return json(res, 201, { client_id: 'c1' });
    if (url.pathname === '/token')
      return json(res, 200, {
        access_token: issued,
        refresh_token: 'rt-1',
        token_type: 'bearer',
        expires_in: 3600,
      });
    if (url.pathname === '/sse' && req.method === 'GET') {
      if (req.headers.authorization !== 'Bearer at-1') return json(res, 401, {}, challenge());
      const id = String(++next);
      streams.set(id, res);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      res.write(`event: endpoint\ndata: /messages?s=${id}\n\n`);
      return;
    }
    if (url.pathname === '/messages' && req.method === 'POST') {
      const message = JSON.parse(body) as Json;
      posts.push({ authorization: req.headers.authorization, method: String(message.method ?? 'response') });
      if (req.headers.authorization !== accepted) return json(res, 401, {}, challenge());
      const stream = streams.get(url.searchParams.get('s') ?? '');
      if (stream === undefined) return void res.writeHead(404).end();
      res.writeHead(202).end('Accepted');
      if (message.id === undefined) return;
      const result =
        message.method === 'initialize'
          ? {
              protocolVersion: '2024-11-05',
              capabilities: { tools: {} },
              serverInfo: { name: 'sse-upstream', version: '1' },
            }
          : { content: [{ type: 'text', text: 'served' }] };
      stream.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: message.id, result })}\n\n`);
      return;
    }
    res.writeHead(404).end();
  };
  base = await serveHostile(cleanup, handler);
  cleanup.push(() => {
    for (const stream of streams.values()) stream.destroy();
  });
  return {
    base,
    posts,
    rotate: () => {
      accepted = 'Bearer at-2';
      issued = 'at-2';
    },
  };
}

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

/** Signs alice in from a refused call, as the start and callback pages would. */
async function signIn(publicUrl: string, refused: Reply): Promise<void> {
  assert.equal(refused.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(refused.body));
  const link: string = refused.body.error.data.authorizeUrl;
  const same = { 'content-type': 'application/json', origin: publicUrl, 'sec-fetch-site': 'same-origin' };
  const bound = await fetch(link, {
    method: 'POST',
    headers: same,
    body: JSON.stringify({ credential: ALICE, origin: APP }),
  });
  const b = (await bound.json()) as { authorizeUrl: string; state: string; nonce: string };
  assert.equal(bound.status, 200, JSON.stringify(b));
  const callback = new URL(b.authorizeUrl).searchParams.get('redirect_uri') as string;
  const done = await fetch(callback, {
    method: 'POST',
    headers: same,
    body: JSON.stringify({ query: `?code=c&state=${b.state}`, nonce: b.nonce }),
  });
  assert.equal(done.status, 200, await done.text());
}

/** A proxy with the broker on, and alice signed in to a fresh {@link sseWorld}'s server. */
async function signedIn() {
  const world = await sseWorld();
  const serverUrl = `${world.base}/sse`;
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const proxy = await startProxy({
    PORT: String(port),
    PUBLIC_URL: publicUrl,
    OAUTH_BROKER: 'true',
    PROXY_TOKENS: ALICE,
    CORS_ORIGINS: APP,
    LOG_LEVEL: 'warn',
  });
  cleanup.push(() => proxy.close());
  await signIn(publicUrl, await call(proxy.url, serverUrl, 'tools/list'));
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

describe('OAUTH-1: a disconnect reaches sessions the proxy holds, not only /ws sockets', () => {
  it('POST /proxy: a held HTTP+SSE session stops sending the token once the user disconnected', async () => {
    const { world, serverUrl, proxy } = await signedIn();
    const sessionId = await openSession(proxy.url, serverUrl);
    const first = await call(proxy.url, serverUrl, 'tools/call', sessionId, { name: 'x', arguments: {} });
    assert.equal(first.body?.result?.content?.[0]?.text, 'served', JSON.stringify(first.body));

    const del = await fetch(`${proxy.url}/oauth/connections/${encodeURIComponent(serverUrl)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ALICE}`, origin: APP },
    });
    const ended = await del.text();
    assert.equal(del.status, 200, ended);
    assert.equal(JSON.parse(ended).disconnected[0].revocation, 'not_offered');
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

    const del = await fetch(`${proxy.url}/oauth/connections/${encodeURIComponent(serverUrl)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ALICE}`, origin: APP },
    });
    assert.equal(del.status, 200, await del.text());
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
