/**
 * A redirect answered after a reload (review 15 URLPATTERN-2): a raw URL target's reach test
 * (dispatch/targets.ts `#reachTest`) closes over the caller's grants of the moment the request
 * was resolved. A reload that narrows the grant judges what is recorded at that moment (a held
 * session's URLs, a live request's target key), but a redirect that arrives AFTER the reload, on
 * a request already sent, is still judged by the old grant and followed. The upstream chooses
 * when it answers, so it chooses the window.
 *
 * A real loopback Streamable HTTP server holds its answer to POST `/public/mcp` until the test
 * has reloaded the proxy with the token narrowed from `/public/**` to `/public/mcp`, then answers
 * 307 to `/public/internal/mcp`: nothing may be posted there (the hop is refused, or the request
 * ended by the reload: either is correct).
 *
 * Fixed: a reach test made before a reload judges by the owner's grants of now
 * (dispatch/targets.ts `#reachTest`, identity/reload-reach.ts `grantsAfterReload`).
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { grantConfig, type LoopbackUpstream, reloadGrant, startLoopback } from './helpers/grant-upstreams.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const CALLER = 'review15-urlpattern-2-caller-0123456789';

describe('a redirect answered after a reload is judged by the grant of now (review15 URLPATTERN-2)', () => {
  let server: LoopbackUpstream;
  let port: number;
  let proxy: RunningProxy;
  const posts: string[] = [];
  /** The held answer to POST /public/mcp, and a promise settled when it arrives. */
  const held = Promise.withResolvers<ServerResponse>();
  const config = grantConfig('review15-urlpattern-2', CALLER);

  before(async () => {
    server = await startLoopback((req, res) => {
      req.resume();
      req.once('end', () => {
        if (req.method !== 'POST') {
          res.writeHead(405).end();
          return;
        }
        posts.push(req.url as string);
        if (req.url === '/public/mcp') {
          held.resolve(res);
          return;
        }
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { where: req.url } }));
      });
    });
    port = server.port;
    config.configure([`http://127.0.0.1:${port}/public/**`]);
    proxy = await startProxy({ MCP_PROXY_CONFIG: config.path, EGRESS_FOLLOW_REDIRECTS: '2' });
  });

  after(async () => {
    await proxy?.close();
    await server?.close();
  });

  it('a hop to /public/internal/ answered after the reload took it away is not followed', async () => {
    const answer = fetch(`${proxy.url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-proxy-token': CALLER,
        'x-mcp-server-url': `http://127.0.0.1:${port}/public/mcp`,
        'x-mcp-transport': 'streamable-http',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    const upstream = await held.promise;

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

    // Only now does the upstream answer the request sent before the reload, with a redirect.
    upstream.writeHead(307, { location: '/public/internal/mcp' }).end();
    const response = await answer.catch((error: unknown) => error);
    const text =
      response instanceof Response ? `${response.status} ${await response.text()}` : String(response);
    assert.deepEqual(
      posts.filter((path) => path.startsWith('/public/internal/')),
      [],
      `the request sent before the reload followed a hop the new grant refuses (answer ${text})`,
    );
  });
});
