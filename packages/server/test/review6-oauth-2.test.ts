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
import { json, serveHostile } from './helpers/hostile-server.ts';
import { freePort } from './helpers/net.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const BOB = 'bob-proxy-token-0123456789abcdefgh';
const APP = 'http://app.example';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

describe("OAUTH-2: other principals cannot spend everyone's dynamic registrations", () => {
  it('a principal that never registered still gets a sign-in link when others spent the daily total', async () => {
    const store = new MemoryStore();
    // 5 principals x 10 registrations an hour x 20 hours (the broker's store is namespaced `oauth:`).
    for (let i = 0; i < 1000; i++) await store.hit('oauth:regcount:all', 24 * 3600_000);

    let base = '';
    base = await serveHostile(cleanup, (_req, res, url) => {
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
      return json(res, 401, {}, { 'www-authenticate': `Bearer resource_metadata="${base}/prm/mcp"` });
    });
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
    const reply = await postProxy(
      { url: proxy.url, token: BOB },
      { mcp_server_url: `${base}/mcp`, jsonrpc: '2.0', id: 1, method: 'tools/list' },
      { origin: APP },
    );
    assert.equal(reply.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(reply.body));
  });
});
