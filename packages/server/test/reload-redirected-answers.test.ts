/**
 * A reload and an answer that comes from a redirect hop (review 15 URLPATTERN-1): the fix of
 * review14 URLPATTERN-1 records the URLs a HELD session was sent on to and has the reload judge
 * them; a request in flight on the `/mcp` pass-through (identity/live-requests.ts `endUnreachable`) is still judged by its
 * target key alone (`request.targetKey`, the URL the caller named). With redirects followed, a
 * streamed answer whose POST was redirected inside the grant keeps streaming from the hop after
 * a reload that takes that hop's path away from the token: the same bug on another surface.
 *
 * A real loopback Streamable HTTP server answers POST `/public/mcp` with a 307 to
 * `/public/internal/mcp`, which answers with an event stream it keeps open. The token is granted
 * `/public/**`; the operator narrows it to `/public/mcp`: the upstream stream at
 * `/public/internal/mcp` must end with the reload, as a held session's does
 * (reload-session-reach.test.ts). The same for a POST /proxy call read from the hop.
 *
 * Fixed: each hop a request is sent on to is recorded on it (identity/live-requests.ts
 * `recordingReach`, `answeredFrom`), and `endUnreachable` judges it with the target.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import {
  grantConfig,
  holdStream,
  type LoopbackUpstream,
  reloadGrant,
  startLoopback,
} from './helpers/grant-upstreams.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const CALLER = 'review15-urlpattern-1-caller-0123456789';

describe('a reload ends a pass-through stream answered from a redirect hop it no longer grants (review15 URLPATTERN-1)', () => {
  let upstream: LoopbackUpstream;
  let port: number;
  let proxy: RunningProxy;
  /** Told of the next stream the hop opens. */
  let streamOpened: ((stream: ServerResponse) => void) | undefined;
  const config = grantConfig('review15-urlpattern-1', CALLER);

  before(async () => {
    upstream = await startLoopback((req, res, streams) => {
      if (req.method === 'POST' && req.url === '/public/mcp') {
        req.resume();
        res.writeHead(307, { location: '/public/internal/mcp' }).end();
        return;
      }
      if (req.method === 'POST' && req.url === '/public/internal/mcp') {
        req.resume();
        req.once('end', () => {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(
            `event: message\ndata: ${JSON.stringify({
              jsonrpc: '2.0',
              method: 'notifications/progress',
              params: { progressToken: 't', progress: 1 },
            })}\n\n`,
          );
          holdStream(streams, res);
          streamOpened?.(res);
        });
        return;
      }
      req.resume();
      res.writeHead(405).end();
    });
    port = upstream.port;
    config.configure([`http://127.0.0.1:${port}/public/**`]);
    proxy = await startProxy({ MCP_PROXY_CONFIG: config.path, EGRESS_FOLLOW_REDIRECTS: '2' });
  });

  after(async () => {
    await proxy?.close();
    await upstream?.close();
  });

  const reload = (urls: readonly string[]) => {
    config.configure(urls);
    reloadGrant(proxy, config, { EGRESS_FOLLOW_REDIRECTS: '2' });
  };

  it('the upstream stream from /public/internal/ ends when the reload takes /public/internal/ away', async () => {
    const caller = new AbortController();
    const response = await fetch(`${proxy.url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-proxy-token': CALLER,
        'x-mcp-server-url': `http://127.0.0.1:${port}/public/mcp`,
        'x-mcp-transport': 'streamable-http',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'slow', arguments: {}, _meta: { progressToken: 't' } },
      }),
      signal: caller.signal,
    });
    try {
      assert.equal(response.status, 200, `answer ${response.status}`);
      assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/);
      // The setup works: the answer streams from the hop, inside the grant /public/**.
      const [stream] = upstream.streams;
      assert.ok(stream, 'the POST was followed to /public/internal/mcp, which streams the answer');
      const ended = once(stream, 'close', { signal: AbortSignal.timeout(10_000) });

      // The operator narrows the grant: /public/internal/ is no longer the token's to reach.
      config.configure([`http://127.0.0.1:${port}/public/mcp`]);
      reloadGrant(proxy, config, { EGRESS_FOLLOW_REDIRECTS: '2' });
      // The reload is in force: the token may no longer name /public/internal/ itself.
      const named = await postProxy(
        { url: proxy.url, token: CALLER },
        {
          mcp_server_url: `http://127.0.0.1:${port}/public/internal/mcp`,
          jsonrpc: '2.0',
          id: 9,
          method: 'ping',
        },
      );
      assert.equal(named.body?.error?.data?.code, 'forbidden_server', JSON.stringify(named.body));
      // The stream the token still reads from /public/internal/ ends with the reload.
      await ended.catch((error: unknown) => {
        throw new Error(
          'after the reload the pass-through answer still streams from /public/internal/mcp (10 s)',
          { cause: error },
        );
      });
    } finally {
      caller.abort();
    }
  });

  it('POST /proxy: the answer read from /public/internal/ ends when the reload takes it away', async () => {
    reload([`http://127.0.0.1:${port}/public/**`]);
    const opened = new Promise<ServerResponse>((resolve) => {
      streamOpened = resolve;
    });
    const answer = postProxy(
      { url: proxy.url, token: CALLER },
      {
        mcp_server_url: `http://127.0.0.1:${port}/public/mcp`,
        transport: 'streamable-http',
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'slow', arguments: {}, _meta: { progressToken: 't' } },
      },
    ).catch((error: unknown) => error);
    // The setup works: the call was followed to /public/internal/mcp, which streams its answer.
    const stream = await opened;
    const ended = once(stream, 'close', { signal: AbortSignal.timeout(10_000) });
    reload([`http://127.0.0.1:${port}/public/mcp`]);
    await ended.catch((error: unknown) => {
      throw new Error(
        'after the reload POST /proxy still reads its answer from /public/internal/mcp (10 s)',
        {
          cause: error,
        },
      );
    });
    await answer;
  });
});
