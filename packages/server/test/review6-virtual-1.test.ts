/**
 * Review 6 (virtual servers), finding 1: listing a virtual server spends the principal's
 * sign-in offers. Every `tools/list` (and every page of every search) that meets a member the
 * user has not signed in to yet starts a new upstream sign-in (`broker.required`), and each one
 * counts against the per-principal, per-server offer cap (30 per 10 minutes). A client that
 * merely lists a few dozen times (reconnects, list refreshes) is then refused the sign-in it
 * needs: the member's tool call answers `rate_limited` instead of `upstream_auth_required` with
 * an `authorizeUrl`, for up to 10 minutes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { freePort } from './helpers/net.ts';
import { type OAuthWorld, startOAuthWorld } from './helpers/oauth-world.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const require = createRequire(import.meta.url);
const EVERYTHING = join(
  dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')),
  'dist/index.js',
);
const ALICE = 'alice-review6-virtual-token-0123456789';
const APP = 'http://app.example';
/** More lists than the per-server offer cap (SIGN_INS_PER_PRINCIPAL = 30). */
const LISTS = 35;

describe('review6 virtual 1: listing does not use up the sign-in offers', () => {
  let world: OAuthWorld;
  let proxy: RunningProxy;
  let dir: string;
  let id = 1;
  const call = (method: string, params: Record<string, unknown>) =>
    postProxy(
      { url: proxy.url, token: ALICE },
      { server: 'workspace', jsonrpc: '2.0', id: id++, method, params },
      { origin: APP },
    );

  before(async () => {
    const clock = new ManualClock();
    const port = await freePort();
    world = await startOAuthWorld({ clock, accessTokenTtl: 600 });
    dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-review6-virtual-1-'));
    writeFileSync(
      join(dir, 'proxy.json'),
      JSON.stringify({
        servers: {
          files: { url: world.upstream.url, transport: 'streamable-http' },
          everything: { command: process.execPath, args: [EVERYTHING, 'stdio'], env: compileCacheEnv() },
        },
        virtualServers: { workspace: { servers: ['files', 'everything'] } },
      }),
    );
    proxy = await startProxy(
      {
        PORT: String(port),
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        OAUTH_BROKER: 'true',
        PROXY_TOKENS: ALICE,
        CORS_ORIGINS: APP,
        MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
      },
      { clock },
    );
  });
  after(async () => {
    await proxy?.close();
    await world?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('still offers the sign-in on a call after many lists', async () => {
    const codes: string[] = [];
    for (let n = 0; n < LISTS; n++) {
      const list = await call('tools/list', {});
      assert.equal(list.status, 200, JSON.stringify(list.body));
      const meta = list.body.result._meta?.['io.github.mcp-proxy/unavailable'] as
        | Array<{ server: string; code: string }>
        | undefined;
      codes.push(meta?.find((each) => each.server === 'files')?.code ?? 'listed');
    }
    // The member is not signed in to: it is left out of every list as needing a sign-in.
    assert.deepEqual(new Set(codes), new Set(['upstream_auth_required']), codes.join(','));
    const refused = await call('tools/call', { name: 'files__whoami', arguments: {} });
    assert.equal(refused.body.error?.data?.code, 'upstream_auth_required', JSON.stringify(refused.body));
    assert.ok(String(refused.body.error.data.authorizeUrl).includes('/oauth/start/'));
  });
});
