/**
 * Review 6 (OAuth broker), finding OAUTH-4: the sign-in offer caps are checked after discovery
 * (credentials/broker.ts:270 `discover` runs before :281 `admitOffer`). Once a principal met a
 * server's cap, every further call to it still makes the proxy fetch the protected resource
 * metadata (from any URL the 401 names) and the authorization server's metadata (up to three
 * URLs of any issuer the metadata names) before answering `oauth_sign_in_limited`: an upstream
 * answering 401 turns each refused call into 2-4 outbound requests to hosts it chooses, with no
 * cap. The cap could be looked at (not spent) before discovery.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { authServerMetadata, json, serveHostile } from './helpers/hostile-server.ts';
import { freePort } from './helpers/net.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const ALICE = 'alice-proxy-token-0123456789abcdef';
const APP = 'http://app.example';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A server that answers 401 to every call, naming its own (registering) authorization server. */
async function hostile(): Promise<{ readonly base: string; readonly metadataFetches: () => number }> {
  let metadataFetches = 0;
  let base = '';
  base = await serveHostile(cleanup, (_req, res, url) => {
    if (url.pathname === '/prm/mcp') {
      metadataFetches++;
      return json(res, 200, { resource: `${base}/mcp`, authorization_servers: [`${base}/as`] });
    }
    if (url.pathname === '/.well-known/oauth-authorization-server/as') {
      metadataFetches++;
      return json(res, 200, authServerMetadata(base, `${base}/as`));
    }
    if (url.pathname === '/register') return json(res, 201, { client_id: 'c1' });
    return json(res, 401, {}, { 'www-authenticate': `Bearer resource_metadata="${base}/prm/mcp"` });
  });
  return { base, metadataFetches: () => metadataFetches };
}

/** A proxy with the broker on; `code(base)` is alice's call to that server's error code. */
async function proxyFor() {
  const port = await freePort();
  const proxy = await startProxy({
    PORT: String(port),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    OAUTH_BROKER: 'true',
    PROXY_TOKENS: ALICE,
    CORS_ORIGINS: APP,
    LOG_LEVEL: 'warn',
  });
  cleanup.push(() => proxy.close());
  let id = 1;
  return async (base: string) => {
    const reply = await postProxy(
      { url: proxy.url, token: ALICE },
      { mcp_server_url: `${base}/mcp`, jsonrpc: '2.0', id: id++, method: 'tools/list' },
      { origin: APP },
    );
    return reply.body?.error?.data?.code as string;
  };
}

describe("OAUTH-4: a principal past a server's offer cap causes no more discovery", () => {
  it('refused calls past the cap fetch no metadata', async () => {
    const server = await hostile();
    const code = await proxyFor();
    // A stranger server: 10 offers, then its cap.
    for (let i = 0; i < 10; i++) assert.equal(await code(server.base), 'upstream_auth_required');
    assert.equal(await code(server.base), 'oauth_sign_in_limited');
    const atCap = server.metadataFetches();
    for (let i = 0; i < 20; i++) assert.equal(await code(server.base), 'oauth_sign_in_limited');
    assert.equal(server.metadataFetches() - atCap, 0, 'metadata fetched for calls the cap refuses anyway');
  });

  it("past the principal's cap on strangers (30), a new server is refused before any fetch", async () => {
    const spent = [await hostile(), await hostile(), await hostile()];
    const fresh = await hostile();
    const code = await proxyFor();
    for (const server of spent) {
      for (let i = 0; i < 10; i++) assert.equal(await code(server.base), 'upstream_auth_required');
    }
    for (let i = 0; i < 5; i++) assert.equal(await code(fresh.base), 'oauth_sign_in_limited');
    assert.equal(fresh.metadataFetches(), 0, 'metadata fetched for calls the cap refuses anyway');
  });
});
