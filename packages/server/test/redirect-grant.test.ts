/**
 * Review 13 (short review of fix-last-3) URLPATTERN-1: a token's URL grant (`urls`) and the
 * target refusals of dispatch/targets.ts (an encoded `/`, a `..;` segment: review12
 * URLPATTERN-1) are applied to the URL the caller names only. With redirects followed
 * (`EGRESS_FOLLOW_REDIRECTS` > 0), upstream/http.ts sends each hop to wherever the `Location`
 * says once the egress guard vetted it (scheme, host, port, addresses): the grant is never asked
 * again. So a token granted `http://h/public/**` reaches `http://h/admin/mcp` through any path
 * under `/public/` that redirects (a login bounce, an open redirect, a moved page), and an
 * encoded slash the target check now refuses (`/public/..%2Fadmin%2Fmcp`) comes back in a
 * `Location`, which nginx decodes and resolves to `/admin/mcp`.
 *
 * A real nginx serves `/public/` and `/admin/` and redirects two `/public/` paths (307, so the
 * POST is repeated): the proxy must not send any request to `/admin/` for this token.
 *
 * Fixed: a raw URL target judged by URL patterns carries its reach test (dispatch/targets.ts, the
 * rule the first URL is judged by), and upstream/http.ts asks it before following each hop:
 * refused `target_forbidden` (`redirect_refused`), as any other refused redirect, on POST /proxy
 * and /mcp. A redirect inside the grant is still followed; a caller no URL pattern limits, and a
 * configured server (the operator's choice), are limited by the egress policy alone.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { answerWhere, grantConfig, type PathLogNginx, startPathLogNginx } from './helpers/grant-upstreams.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const CALLER = 'redirect-grant-caller-0123456789';

describe('a redirect does not carry a target out of its URL grant (review13 URLPATTERN-1)', () => {
  let upstream: string;
  let nginx: PathLogNginx;
  let nginxPort: number;
  let proxy: RunningProxy;

  before(async () => {
    nginx = await startPathLogNginx(
      'redirect-grant',
      `location = /public/inside { return 307 /public/mcp; }
    location = /public/moved { return 307 /admin/mcp; }
    location = /public/encoded { return 307 /public/..%2Fadmin%2Fmcp; }
    location = /public/semicolon { return 307 "/public/..;/admin/mcp"; }
    location /public/ { ${answerWhere('public')} }
    location /admin/ { ${answerWhere('admin')} }`,
      'absolute_redirect off;',
    );
    nginxPort = nginx.port;
    upstream = `http://127.0.0.1:${nginxPort}`;
    const config = grantConfig('redirect-grant', CALLER, {
      servers: { moved: { url: `${upstream}/public/moved`, transport: 'streamable-http' } },
    });
    config.configure([`http://127.0.0.1:${nginxPort}/public/**`]);
    proxy = await startProxy({ MCP_PROXY_CONFIG: config.path, EGRESS_FOLLOW_REDIRECTS: '2' });
  });

  after(async () => {
    await proxy?.close();
    await nginx?.close();
  });

  const seen = () => nginx.seen();

  it('the granted prefix is reached (the setup works)', async () => {
    const reply = await postProxy(
      { url: proxy.url, token: CALLER },
      { mcp_server_url: `http://127.0.0.1:${nginxPort}/public/mcp`, jsonrpc: '2.0', id: 1, method: 'ping' },
    );
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.ok(seen().includes('/public/mcp'), `nginx saw ${JSON.stringify(seen())}`);
  });

  for (const path of ['/public/moved', '/public/encoded']) {
    it(`a redirect from ${path} is not followed to /admin/`, async () => {
      const before = seen().length;
      const reply = await postProxy(
        { url: proxy.url, token: CALLER },
        { mcp_server_url: `http://127.0.0.1:${nginxPort}${path}`, jsonrpc: '2.0', id: 1, method: 'ping' },
      );
      const admin = seen()
        .slice(before)
        .filter((line) => line.startsWith('/admin/'));
      assert.deepEqual(
        admin,
        [],
        `the grant /public/** let the token reach ${admin.join(', ')} (answer ${reply.status} ${JSON.stringify(reply.body)})`,
      );
      assert.notEqual(reply.status, 200, JSON.stringify(reply.body));
      assert.equal(reply.status, 403, JSON.stringify(reply.body));
      assert.equal(reply.body.error.data.code, 'target_forbidden', JSON.stringify(reply.body));
      assert.equal(reply.body.error.data.reason, 'redirect_refused', JSON.stringify(reply.body));
      assert.match(reply.body.error.message, /outside what this caller may reach/);
    });
  }

  it('a redirect to a ..; segment is not followed either (the path rule holds for every hop)', async () => {
    const before = seen().length;
    const reply = await postProxy(
      { url: proxy.url, token: CALLER },
      { mcp_server_url: `${upstream}/public/semicolon`, jsonrpc: '2.0', id: 1, method: 'ping' },
    );
    assert.equal(reply.body?.error?.data?.reason, 'redirect_refused', JSON.stringify(reply.body));
    assert.deepEqual(seen().slice(before), ['/public/semicolon']);
  });

  it('a redirect inside the grant is followed', async () => {
    const before = seen().length;
    const reply = await postProxy(
      { url: proxy.url, token: CALLER },
      { mcp_server_url: `${upstream}/public/inside`, jsonrpc: '2.0', id: 1, method: 'ping' },
    );
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.deepEqual(reply.body.result, { where: 'public' });
    assert.deepEqual(seen().slice(before), ['/public/inside', '/public/mcp']);
  });

  it('on /mcp too: the pass-through does not follow the redirect out of the grant', async () => {
    const before = seen().length;
    const response = await fetch(`${proxy.url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-proxy-token': CALLER,
        'x-mcp-server-url': `${upstream}/public/moved`,
        'x-mcp-transport': 'streamable-http',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    const body = (await response.json()) as { error?: { data?: { code?: string; reason?: string } } };
    const admin = seen()
      .slice(before)
      .filter((line) => line.startsWith('/admin/'));
    assert.deepEqual(admin, [], `/mcp let the token reach ${admin.join(', ')}`);
    assert.equal(response.status, 403, JSON.stringify(body));
    assert.equal(body.error?.data?.reason, 'redirect_refused', JSON.stringify(body));
  });

  it('a caller no URL pattern limits, and a configured server, follow redirects as the egress policy allows', async () => {
    const before = seen().length;
    const unlimited = await postProxy(proxy, {
      mcp_server_url: `${upstream}/public/moved`,
      jsonrpc: '2.0',
      id: 1,
      method: 'ping',
    });
    assert.equal(unlimited.status, 200, JSON.stringify(unlimited.body));
    assert.deepEqual(unlimited.body.result, { where: 'admin' });
    const configured = await postProxy(
      { url: proxy.url, token: CALLER },
      { server: 'moved', jsonrpc: '2.0', id: 1, method: 'ping' },
    );
    assert.equal(configured.status, 200, JSON.stringify(configured.body));
    assert.deepEqual(configured.body.result, { where: 'admin' });
    assert.deepEqual(seen().slice(before), ['/public/moved', '/admin/mcp', '/public/moved', '/admin/mcp']);
  });
});
