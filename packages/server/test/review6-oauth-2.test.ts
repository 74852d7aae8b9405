/**
 * Review 6 (OAuth broker), finding OAUTH-2: the proxy-wide cap on dynamic client registrations
 * (1 000 a day, credentials/registration.ts admitRegistration) has no per-principal share, unlike
 * the sign-in offers (review oauth6 R3). A principal may cause 10 registrations an hour, so five
 * principals naming hostile authorization servers (each answers any registration) spend the
 * day's 1 000 in 20 hours; from then on NO principal can sign in to any authorization server the
 * proxy has not registered at yet (`oauth_sign_in_limited`), for up to a day.
 * The store is pre-spent as those principals would have left it (as the R3 test does for offers).
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { MemoryStore } from '../src/store/memory-store.ts';
import { authServerMetadata, json, serveHostile } from './helpers/hostile-server.ts';
import { freePort } from './helpers/net.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const BOB = 'bob-proxy-token-0123456789abcdefgh';
const APP = 'http://app.example';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/**
 * A hostile MCP server on one loopback port: `/mcp{n}` refuses every call, naming its own
 * authorization server `/as{n}`, which registers anyone. Returns the base URL.
 */
async function hostileServers(): Promise<string> {
  let base = '';
  base = await serveHostile(cleanup, (_req, res, url) => {
    const prm = /^\/prm\/mcp(\d+)$/.exec(url.pathname);
    if (prm)
      return json(res, 200, {
        resource: `${base}/mcp${prm[1]}`,
        authorization_servers: [`${base}/as${prm[1]}`],
      });
    const as = /^\/\.well-known\/oauth-authorization-server\/as(\d+)$/.exec(url.pathname);
    if (as) return json(res, 200, authServerMetadata(base, `${base}/as${as[1]}`));
    if (url.pathname === '/register') return json(res, 201, { client_id: 'c1' });
    return json(
      res,
      401,
      {},
      { 'www-authenticate': `Bearer resource_metadata="${base}/prm${url.pathname}"` },
    );
  });
  return base;
}

/** A proxy (broker on, bob's token) whose store has the day's 1 000 registrations spent by others. */
async function spentProxy() {
  const store = new MemoryStore();
  // 5 principals x 10 registrations an hour x 20 hours (the broker's store is namespaced `oauth:`).
  for (let i = 0; i < 1000; i++) await store.hit('oauth:regcount:all', 24 * 3600_000);
  const port = await freePort();
  const proxy = await startProxy(
    {
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      OAUTH_BROKER: 'true',
      PROXY_TOKENS: BOB,
      CORS_ORIGINS: APP,
      LOG_LEVEL: 'warn',
    },
    { store },
  );
  cleanup.push(() => proxy.close());
  return proxy;
}

/** Bob's call to `/mcp{n}`: the error code it gets (a sign-in link, or a limit). */
async function codeOf(proxyUrl: string, base: string, n: number): Promise<unknown> {
  const reply = await postProxy(
    { url: proxyUrl, token: BOB },
    { mcp_server_url: `${base}/mcp${n}`, jsonrpc: '2.0', id: n, method: 'tools/list' },
    { origin: APP },
  );
  return reply.body?.error?.data?.code ?? JSON.stringify(reply.body);
}

describe("OAUTH-2: other principals cannot spend everyone's dynamic registrations", () => {
  it('a principal that never registered still gets a sign-in link when others spent the daily total', async () => {
    const base = await hostileServers();
    const proxy = await spentProxy();
    assert.equal(await codeOf(proxy.url, base, 1), 'upstream_auth_required');
  });

  it('past its own share (5 a day) a principal meets the spent total', async () => {
    const base = await hostileServers();
    const proxy = await spentProxy();
    // Each server has its own authorization server: each sign-in is a new registration.
    for (let n = 1; n <= 5; n++)
      assert.equal(await codeOf(proxy.url, base, n), 'upstream_auth_required', `#${n}`);
    assert.equal(await codeOf(proxy.url, base, 6), 'oauth_sign_in_limited');
  });
});
