/**
 * Review 12 (second review of fix-last-2's URL patterns) URLPATTERN-1: a URL pattern is matched
 * against the target's parsed form (policy/url-pattern.ts `matchedForm`), where `..` and `%2e%2e`
 * segments are resolved but an encoded slash (`%2F`) is a character like any other. So
 * `http://h/public/..%2Fadmin%2Fmcp` is "inside" `http://h/public/**` (and `/public/*`: one
 * segment), and the proxy sends it upstream as written. A common front end, nginx, decodes `%2F`
 * and resolves the `..` it makes: the request lands on `/admin/mcp`, a path the grant was written
 * to keep the token out of. This test runs a real nginx with two locations and a token granted
 * `/public/**`: the proxy must refuse the target (4xx, before any request) and nginx must never
 * see a request for `/admin/`.
 *
 * Fixed: dispatch/targets.ts refuses, `400 invalid_target`, a target whose path has an encoded
 * `/` or `\` (`%2F`, `%5C`, any case) or a segment starting `..;` or `.;` (servlet containers
 * drop what follows `;`, then resolve the dots), for every token whose reach URL patterns judge;
 * a pattern naming one is refused where patterns are taken in (it could match nothing:
 * url-pattern-normalise.test.ts). A caller no URL pattern limits may name such a path (an
 * upstream's `group%2Fproject`): nothing is matched that it could escape (review13, Low).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { answerWhere, grantConfig, type PathLogNginx, startPathLogNginx } from './helpers/grant-upstreams.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const CALLER = 'url-pattern-encoded-slash-caller-0123456789';

describe('an encoded slash does not carry a target out of its pattern (review12 URLPATTERN-1)', () => {
  let nginx: PathLogNginx;
  let nginxPort: number;
  let proxy: RunningProxy;

  before(async () => {
    nginx = await startPathLogNginx(
      'url-pattern-encoded-slash',
      `location /public/ { ${answerWhere('public')} }
    location /admin/ { ${answerWhere('admin')} }`,
    );
    nginxPort = nginx.port;
    const config = grantConfig('url-pattern-encoded-slash', CALLER);
    config.configure([`http://127.0.0.1:${nginxPort}/public/**`]);
    proxy = await startProxy({ MCP_PROXY_CONFIG: config.path });
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
    assert.notEqual(reply.status, 403, JSON.stringify(reply.body));
    assert.ok(seen().includes('/public/mcp'), `nginx saw ${JSON.stringify(seen())}`);
  });

  for (const path of [
    '/public/..%2Fadmin%2Fmcp',
    '/public/%2e%2e%2fadmin%2fmcp',
    '/public/x/..%2F..%2Fadmin/mcp',
    '/public/..%5cadmin%5Cmcp',
    '/public/..;/admin/mcp',
    '/public/x/.;/../..;/admin/mcp',
    '/public/%2E%2e;x/admin/mcp',
    '/public/..%3B/admin/mcp',
  ]) {
    it(`a target ${path} is refused and never reaches /admin/`, async () => {
      const before = seen().length;
      const reply = await postProxy(
        { url: proxy.url, token: CALLER },
        { mcp_server_url: `http://127.0.0.1:${nginxPort}${path}`, jsonrpc: '2.0', id: 1, method: 'ping' },
      );
      const admin = seen()
        .slice(before)
        .filter((line) => line.startsWith('/admin/'));
      assert.deepEqual(admin, [], `the grant /public/** let the token reach ${admin.join(', ')}`);
      assert.ok(
        reply.status === 400 || reply.status === 403,
        `refused before any upstream request: got ${reply.status} ${JSON.stringify(reply.body)}`,
      );
      assert.equal(reply.body.error.data.code, 'invalid_target', JSON.stringify(reply.body));
      assert.equal(seen().length, before, `nginx saw ${JSON.stringify(seen().slice(before))}`);
    });
  }

  it('a caller no URL pattern limits names an encoded slash and reaches it', async () => {
    const before = seen().length;
    const reply = await postProxy(proxy, {
      mcp_server_url: `http://127.0.0.1:${nginxPort}/public/group%2Fproject/mcp`,
      jsonrpc: '2.0',
      id: 1,
      method: 'ping',
    });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.deepEqual(reply.body.result, { where: 'public' });
    assert.deepEqual(seen().slice(before), ['/public/group/project/mcp']);
  });

  it('a path with a ; that starts no dot segment, or dots that are a name, is still reached', async () => {
    for (const path of ['/public/a;b/mcp', '/public/...;/mcp', '/public/.well-known/mcp']) {
      const reply = await postProxy(
        { url: proxy.url, token: CALLER },
        { mcp_server_url: `http://127.0.0.1:${nginxPort}${path}`, jsonrpc: '2.0', id: 1, method: 'ping' },
      );
      assert.equal(reply.status, 200, `${path}: ${JSON.stringify(reply.body)}`);
    }
  });
});
