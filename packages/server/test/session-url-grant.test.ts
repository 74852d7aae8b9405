/**
 * Review 14 (short review of fix-last-4) URLPATTERN-2: the reach test is bound to the transport
 * of a session when it opens (dispatch/connector.ts `#transportFor`: `http.reaching(
 * target.mayReach)`), but sessions are keyed by principal, not by token: the tokens one admin
 * mints for one subject share that subject's pooled and held sessions (docs/identity.md), and
 * each may carry its own `urls` grant. A pooled legacy session (sessions/modern-pool.ts: owner,
 * target, envelope) opened by a wider sibling token keeps that token's reach test, and its SSE
 * endpoint was judged once, under it. A narrower token naming the same (granted) stream URL then
 * rides that session: its messages go to the endpoint its own grant refuses
 * (review13 URLPATTERN-2 reopened through a sibling token).
 *
 * A real loopback HTTP+SSE server records every POST's path: none of the narrow token's messages
 * may reach `/admin/`.
 *
 * Fixed: a session to a raw URL records the digest of its opener's URL grant; the modern pool keys
 * by it (the narrow token gets a session of its own, whose endpoint its grant refuses), and a held
 * session named by id serves only a caller with the same grant (`session_not_found` otherwise, as
 * for a session that is not the caller's): dispatch/held-sessions.ts servesCaller.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LEGACY_INITIALIZE, type LoopbackUpstream, startSseUpstream } from './helpers/grant-upstreams.ts';
import { ADMIN, keyFile, mint } from './helpers/minted.ts';
import { mcpFetch } from './helpers/modern-client.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

describe('a sibling token’s session does not carry a narrower token past its grant (review14 URLPATTERN-2)', () => {
  let upstream: LoopbackUpstream;
  let port: number;
  let proxy: RunningProxy;
  /** Each POST: the path, and the JSON-RPC id it carried (the proxy's own for a pooled session). */
  const posts: { path: string; id: unknown }[] = [];

  before(async () => {
    upstream = await startSseUpstream({
      endpoint: (url) => (url === '/public/sse' ? '/admin/messages' : undefined),
      onMessage: (url, message) => posts.push({ path: url, id: message.id }),
    });
    port = upstream.port;
    proxy = await startProxy({ ADMIN_TOKEN: ADMIN, SIGNING_KEYS: keyFile() });
  });

  after(async () => {
    await proxy?.close();
    await upstream?.close();
  });

  const ping = (token: string, id: number) =>
    postProxy(
      { url: proxy.url, token },
      {
        mcp_server_url: `http://127.0.0.1:${port}/public/sse`,
        transport: 'sse',
        // A 2026-07-28 caller: the proxy holds the legacy session for it, pooled per principal.
        mcp_protocol_version: '2026-07-28',
        jsonrpc: '2.0',
        id,
        method: 'ping',
      },
    );

  it('the narrow token’s message is not posted to /admin/', async () => {
    const wide = await mint(proxy.url, 'alice', { urls: [`http://127.0.0.1:${port}/**`] });
    const narrow = await mint(proxy.url, 'alice', { urls: [`http://127.0.0.1:${port}/public/**`] });
    // The setup: alone, the narrow token is refused the endpoint (review13 URLPATTERN-2 fixed)...
    const alone = await ping(narrow.token, 1);
    assert.equal(alone.body?.error?.data?.code, 'upstream_protocol_error', JSON.stringify(alone.body));
    assert.equal(posts.length, 0, `nothing was posted for the narrow token alone: ${JSON.stringify(posts)}`);
    // ...and the wide token may use it: its pooled session posts to /admin/messages.
    const widely = await ping(wide.token, 2);
    assert.equal(widely.status, 200, JSON.stringify(widely.body));
    assert.ok(
      posts.some((post) => post.path === '/admin/messages'),
      JSON.stringify(posts),
    );

    // (The pooled session numbers requests itself: what the narrow token's ping posts is what comes after.)
    const before = posts.length;
    const reply = await ping(narrow.token, 3);
    const leaked = posts.slice(before).filter((post) => post.path.startsWith('/admin/'));
    assert.deepEqual(
      leaked,
      [],
      `the narrow token's ping was posted to /admin/messages through the wide token's pooled session (answer ${reply.status} ${JSON.stringify(reply.body)})`,
    );
    // Its own pooled session: the endpoint is outside its grant.
    assert.equal(reply.body?.error?.data?.code, 'upstream_protocol_error', JSON.stringify(reply.body));
  });

  it('a held session opened by the wide token is not the narrow token’s', async () => {
    const wide = await mint(proxy.url, 'bob', { urls: [`http://127.0.0.1:${port}/**`] });
    const narrow = await mint(proxy.url, 'bob', { urls: [`http://127.0.0.1:${port}/public/**`] });
    const send = (token: string, message: Record<string, unknown>, headers: Record<string, string> = {}) =>
      postProxy(
        { url: proxy.url, token },
        {
          mcp_server_url: `http://127.0.0.1:${port}/public/sse`,
          transport: 'sse',
          jsonrpc: '2.0',
          ...message,
        },
        headers,
      );
    const init = await send(wide.token, {
      id: 1,
      method: 'initialize',
      params: LEGACY_INITIALIZE,
    });
    assert.equal(init.status, 200, JSON.stringify(init.body));
    const sessionId = init.headers.get('mcp-session-id');
    assert.ok(sessionId, 'the wide token holds a session');
    const byWide = await send(wide.token, { id: 2, method: 'ping' }, { 'mcp-session-id': sessionId });
    assert.equal(byWide.status, 200, JSON.stringify(byWide.body));

    const before = posts.length;
    const byNarrow = await send(narrow.token, { id: 3, method: 'ping' }, { 'mcp-session-id': sessionId });
    assert.deepEqual(posts.slice(before), [], JSON.stringify(byNarrow.body));
    assert.equal(byNarrow.body?.error?.data?.code, 'session_not_found', JSON.stringify(byNarrow.body));
  });

  it('/mcp: a held session opened by the wide token is not the narrow token’s', async () => {
    const wide = await mint(proxy.url, 'carol', { urls: [`http://127.0.0.1:${port}/**`] });
    const narrow = await mint(proxy.url, 'carol', { urls: [`http://127.0.0.1:${port}/public/**`] });
    const send = (token: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
      mcpFetch({ url: proxy.url, token }, `http://127.0.0.1:${port}/public/sse`, {
        body: { jsonrpc: '2.0', ...body },
        headers: { 'x-mcp-transport': 'sse', ...headers },
      });
    const init = await send(wide.token, {
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    const initText = await init.text();
    assert.equal(init.status, 200, initText);
    const sessionId = init.headers.get('mcp-session-id');
    assert.ok(sessionId, `the wide token holds a session: ${initText}`);
    const session = { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' };
    const byWide = await send(wide.token, { id: 2, method: 'ping' }, session);
    assert.equal(byWide.status, 200, await byWide.text());

    const before = posts.length;
    const byNarrow = await send(narrow.token, { id: 3, method: 'ping' }, session);
    const text = await byNarrow.text();
    assert.deepEqual(posts.slice(before), [], text);
    assert.equal(byNarrow.status, 404, text);
    assert.equal(JSON.parse(text).error?.data?.code, 'session_not_found', text);
  });

  it('/mcp: the owner may DELETE its session whatever grant it was opened under (review15 URLPATTERN-3)', async () => {
    const wide = await mint(proxy.url, 'dave', { urls: [`http://127.0.0.1:${port}/**`] });
    const narrow = await mint(proxy.url, 'dave', { urls: [`http://127.0.0.1:${port}/public/**`] });
    const url = `http://127.0.0.1:${port}/public/sse`;
    const init = await mcpFetch({ url: proxy.url, token: wide.token }, url, {
      body: {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      },
      headers: { 'x-mcp-transport': 'sse' },
    });
    const initText = await init.text();
    const sessionId = init.headers.get('mcp-session-id');
    assert.ok(sessionId, `the wide token holds a session: ${initText}`);
    const session = {
      'x-mcp-transport': 'sse',
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-06-18',
    };
    const ended = await mcpFetch({ url: proxy.url, token: narrow.token }, url, {
      method: 'DELETE',
      headers: session,
    });
    assert.equal(ended.status, 200, await ended.text());
    const byWide = await mcpFetch({ url: proxy.url, token: wide.token }, url, {
      body: { jsonrpc: '2.0', id: 2, method: 'ping' },
      headers: session,
    });
    const text = await byWide.text();
    assert.equal(byWide.status, 404, `the session outlived its owner's DELETE: ${text}`);
  });
});
