/**
 * Review 13 (short review of fix-last-3) URLPATTERN-2: a token's URL grant (`urls`) and the
 * target refusals of dispatch/targets.ts (an encoded `/`: review12 URLPATTERN-1) judge the URL
 * the caller names, but a legacy HTTP+SSE upstream names the URL the proxy then POSTs every
 * message to (its `endpoint` event), and upstream/sse.ts only keeps that on the stream's origin.
 * So a server under a granted prefix (`http://h/public/sse`, `/public/**` granted) sends the
 * token's messages, with the caller's credentials (same origin), to `/admin/messages` or to
 * `/public/..%2Fadmin%2Fmessages` (which a front end like nginx resolves to `/admin/messages`):
 * paths the grant was written to keep the token out of. Unlike a redirect (review13-urlpattern-1)
 * this needs no configuration: the SSE transport is always on.
 *
 * A real loopback HTTP+SSE server records every request's path: none may be outside the grant.
 *
 * Fixed: the SSE transport asks the target's reach test (dispatch/targets.ts, the rule the stream's
 * URL was judged by) about the endpoint: outside, the call fails `upstream_protocol_error` ("SSE
 * endpoint outside the target's grant") before any POST. A caller no URL pattern limits still
 * uses any endpoint on the stream's origin. A relative endpoint is read against the URL the stream
 * was finally read from, after redirects (review14 URLPATTERN-3), not the one first named.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { grantConfig, type LoopbackUpstream, startSseUpstream } from './helpers/grant-upstreams.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const CALLER = 'sse-endpoint-grant-caller-0123456789';

/** A legacy HTTP+SSE server: GET /public/<name> names the endpoint `ENDPOINTS[name]`. */
const ENDPOINTS: Readonly<Record<string, string>> = {
  'plain-sse': '/public/messages',
  'admin-sse': '/admin/messages',
  'encoded-sse': '/public/..%2Fadmin%2Fmessages',
  // Relative: read against the URL the stream came from (GET /public/moved-sse redirects here).
  'v2/sse': 'messages',
};

describe('an SSE endpoint does not carry a target out of its URL grant (review13 URLPATTERN-2)', () => {
  let upstream: LoopbackUpstream;
  let port: number;
  let proxy: RunningProxy;
  const paths: string[] = [];

  before(async () => {
    const nameOf = (url: string) => url.slice('/public/'.length);
    upstream = await startSseUpstream({
      first: (req, res) => {
        paths.push(`${req.method} ${req.url}`);
        if (req.method !== 'GET' || nameOf(req.url ?? '') !== 'moved-sse') return false;
        res.writeHead(307, { location: '/public/v2/sse' }).end();
        return true;
      },
      endpoint: (url) =>
        url.startsWith('/public/') && Object.hasOwn(ENDPOINTS, nameOf(url))
          ? ENDPOINTS[nameOf(url)]
          : undefined,
    });
    port = upstream.port;
    const config = grantConfig('sse-endpoint-grant', CALLER);
    config.configure([`http://127.0.0.1:${port}/public/**`]);
    proxy = await startProxy({ MCP_PROXY_CONFIG: config.path, EGRESS_FOLLOW_REDIRECTS: '2' });
  });

  after(async () => {
    await proxy?.close();
    await upstream?.close();
  });

  const ping = (name: string, token = CALLER) =>
    postProxy(
      { url: proxy.url, token },
      {
        mcp_server_url: `http://127.0.0.1:${port}/public/${name}`,
        transport: 'sse',
        jsonrpc: '2.0',
        id: 1,
        method: 'ping',
      },
    );

  it('an endpoint inside the grant is used (the setup works)', async () => {
    const reply = await ping('plain-sse');
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.ok(
      paths.some((line) => line.startsWith('POST /public/messages')),
      JSON.stringify(paths),
    );
  });

  for (const name of ['admin-sse', 'encoded-sse']) {
    it(`${name}: no message is posted outside /public/`, async () => {
      const before = paths.length;
      const reply = await ping(name);
      const outside = paths
        .slice(before)
        .filter(
          (line) => line.startsWith('POST') && (!line.startsWith('POST /public/') || /%2F/i.test(line)),
        );
      assert.deepEqual(
        outside,
        [],
        `the grant /public/** let the token post to ${outside.join(', ')} (answer ${reply.status} ${JSON.stringify(reply.body)})`,
      );
      assert.equal(reply.body?.error?.data?.code, 'upstream_protocol_error', JSON.stringify(reply.body));
      assert.match(reply.body.error.message, /SSE endpoint outside the target’s grant/);
    });
  }

  it('a redirected stream’s relative endpoint is read against where the stream came from (review14 URLPATTERN-3)', async () => {
    const before = paths.length;
    const reply = await ping('moved-sse');
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const posted = paths.slice(before).filter((line) => line.startsWith('POST') && line.includes('messages'));
    assert.deepEqual(posted, ['POST /public/v2/messages'], JSON.stringify(paths.slice(before)));
  });

  it('a caller no URL pattern limits posts to an endpoint anywhere on the stream’s origin', async () => {
    const before = paths.length;
    const reply = await ping('admin-sse', proxy.token);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.ok(
      paths.slice(before).some((line) => line.startsWith('POST /admin/messages')),
      JSON.stringify(paths.slice(before)),
    );
  });
});
