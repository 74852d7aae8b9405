/**
 * Review 7 (credentials), finding CREDS-3: for a server the principal is not a stranger to (one
 * the operator configured, or one it is connected to), the sign-in offer caps were looked at
 * before OAuth discovery and spent only after it (credentials/broker.ts `#begin`). Calls that
 * arrive together just below a cap each saw room, each ran discovery (metadata fetched from URLs
 * the upstream's 401 names), and all but the first were refused afterwards: the cap bounded the
 * links, not the outbound fetches. The fix spends the cap before discovery.
 * Real parts: a node:http upstream on loopback answering 401 and serving its own OAuth metadata.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { SIGN_INS_PER_PRINCIPAL } from '../src/credentials/pending-sign-ins.ts';
import { authServerMetadata, json, serveHostile } from './helpers/hostile-server.ts';
import { freePort } from './helpers/net.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const ALICE = 'alice-proxy-token-0123456789abcdef';
const APP = 'http://app.example';
const TOGETHER = 10;

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A server answering 401 to every call, naming its own authorization server; counts metadata GETs. */
async function oauthServer(): Promise<{ readonly base: string; readonly metadataFetches: () => number }> {
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

describe('CREDS-3: calls arriving together at a known server past its offer cap run no discovery', () => {
  it('of calls racing for the last offer, only the admitted one fetches metadata', async () => {
    const server = await oauthServer();
    const dir = mkdtempSync(join(tmpdir(), 'creds-3-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const config = join(dir, 'proxy.json');
    writeFileSync(config, JSON.stringify({ servers: { known: { url: `${server.base}/mcp` } } }));
    const port = await freePort();
    const proxy = await startProxy({
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      OAUTH_BROKER: 'true',
      PROXY_TOKENS: ALICE,
      CORS_ORIGINS: APP,
      LOG_LEVEL: 'warn',
      MCP_PROXY_CONFIG: config,
    });
    cleanup.push(() => proxy.close());
    let id = 1;
    const code = async () => {
      const reply = await postProxy(
        { url: proxy.url, token: ALICE },
        { server: 'known', jsonrpc: '2.0', id: id++, method: 'tools/list' },
        { origin: APP },
      );
      return String(reply.body?.error?.data?.code);
    };

    for (let i = 1; i < SIGN_INS_PER_PRINCIPAL - 1; i++) assert.equal(await code(), 'upstream_auth_required');
    // What one offer costs once the authorization server's metadata is known.
    const lastBefore = server.metadataFetches();
    assert.equal(await code(), 'upstream_auth_required');
    const before = server.metadataFetches();
    const perOffer = before - lastBefore;
    assert.ok(perOffer > 0, 'an offer runs discovery');

    // One offer left under the server's cap (30 a server); ten calls ask for it at once.
    const codes = await Promise.all(Array.from({ length: TOGETHER }, () => code()));
    assert.deepEqual(
      codes.toSorted(),
      [...new Array(TOGETHER - 1).fill('oauth_sign_in_limited'), 'upstream_auth_required'],
      codes.join(),
    );
    assert.equal(server.metadataFetches() - before, perOffer, 'calls the cap refused still ran discovery');
  });
});
