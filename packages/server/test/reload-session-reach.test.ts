/**
 * Review 14 (short review of fix-last-4) URLPATTERN-1: a raw URL target's reach test
 * (dispatch/targets.ts `#reachTest`) closes over the principal's grants of the moment the target
 * was resolved, and a legacy HTTP+SSE session fixes its endpoint once, when it opens
 * (upstream/sse.ts `#resolveEndpoint`). A reload that narrows the grant is checked only against
 * the session's target key (`stillReaches` on the SSE stream's URL), never against the endpoint
 * every message is posted to, nor does it rebind the reach test. So a held session opened under
 * `/public/**`, whose endpoint is `/public/internal/messages`, keeps posting the token's messages
 * there after the operator narrowed the grant to `/public/sse` and `/public/messages`.
 *
 * A real loopback HTTP+SSE server records every POST's path: after the reload none may reach
 * `/public/internal/` (the session may end, or the call be refused: either is correct).
 *
 * Fixed: a held session to a raw URL records the URLs its upstream sent it on to
 * (sessions/session-reach.ts) and the reload judges them with its target (identity/reload-reach.ts):
 * the session ends, its event stream upstream closed. (Its caller's grant changed, so the caller
 * would not be served by it anyway: dispatch/held-sessions.ts servesCaller.)
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import {
  grantConfig,
  type LoopbackUpstream,
  postSse,
  reloadGrant,
  startSseUpstream,
} from './helpers/grant-upstreams.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const CALLER = 'reload-session-reach-caller-0123456789';

describe('a reload that narrows a URL grant ends a held SSE session whose endpoint it excludes (review14 URLPATTERN-1)', () => {
  let upstream: LoopbackUpstream;
  let port: number;
  let proxy: RunningProxy;
  const posts: string[] = [];
  const config = grantConfig('reload-session-reach', CALLER);

  before(async () => {
    upstream = await startSseUpstream({
      endpoint: (url) => (url === '/public/sse' ? '/public/internal/messages' : undefined),
      onMessage: (url) => posts.push(url),
    });
    port = upstream.port;
    config.configure([`http://127.0.0.1:${port}/public/**`]);
    proxy = await startProxy({ MCP_PROXY_CONFIG: config.path });
  });

  after(async () => {
    await proxy?.close();
    await upstream?.close();
  });

  const send = (method: string, id: number, headers: Record<string, string> = {}) =>
    postSse({ url: proxy.url, token: CALLER }, `http://127.0.0.1:${port}/public/sse`, method, id, headers);

  it('no message is posted to an endpoint the narrowed grant excludes', async () => {
    const init = await send('initialize', 1);
    assert.equal(init.status, 200, JSON.stringify(init.body));
    const sessionId = init.headers.get('mcp-session-id');
    assert.ok(sessionId, 'a held session was opened');
    const ping = await send('ping', 2, { 'mcp-session-id': sessionId });
    assert.equal(ping.status, 200, JSON.stringify(ping.body));
    assert.ok(posts.includes('/public/internal/messages'), `the setup works: ${JSON.stringify(posts)}`);

    // The session's event stream upstream, which the reload must end.
    const [stream] = upstream.streams;
    assert.ok(stream, 'the session holds an event stream upstream');
    const ended = once(stream, 'close', { signal: AbortSignal.timeout(10_000) });
    // The operator narrows the grant: /public/internal/ is no longer the token's to reach.
    config.configure([`http://127.0.0.1:${port}/public/sse`, `http://127.0.0.1:${port}/public/messages`]);
    reloadGrant(proxy, config);
    // The reload is in force: the token may no longer name /public/internal/ itself.
    const named = await postProxy(
      { url: proxy.url, token: CALLER },
      {
        mcp_server_url: `http://127.0.0.1:${port}/public/internal/messages`,
        jsonrpc: '2.0',
        id: 9,
        method: 'ping',
      },
    );
    assert.equal(named.body?.error?.data?.code, 'forbidden_server', JSON.stringify(named.body));
    // The stream's own URL is still granted, so the session's target key passes the reload's check.
    const before = posts.length;
    const after = await send('ping', 3, { 'mcp-session-id': sessionId });
    assert.deepEqual(
      posts.slice(before),
      [],
      `after the reload the token still posted to ${posts.slice(before).join(', ')} (answer ${after.status} ${JSON.stringify(after.body)})`,
    );
    assert.equal(after.body?.error?.data?.code, 'session_not_found', JSON.stringify(after.body));
    // The reload ended the session (it reached an endpoint the new grant excludes): not left open.
    await ended;
  });
});
