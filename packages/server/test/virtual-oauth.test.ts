/**
 * Issue 20: a virtual server member that needs the user's OAuth sign-in raises
 * `upstream_auth_required` for that member only (the upstream OAuth broker, docs/oauth.md),
 * while the other members serve; once signed in, the member serves with the user's token.
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
const ALICE = 'alice-virtual-token-0123456789abcdef';
const APP = 'http://app.example';
const UNAVAILABLE = 'io.github.mcp-proxy/unavailable';

describe('virtual server members behind the upstream OAuth broker', () => {
  let world: OAuthWorld;
  let proxy: RunningProxy;
  let dir: string;
  let publicUrl: string;
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
    publicUrl = `http://127.0.0.1:${port}`;
    world = await startOAuthWorld({ clock, accessTokenTtl: 600 });
    dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-virtual-oauth-'));
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
        PUBLIC_URL: publicUrl,
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

  it('asks for a sign-in to that member only, then serves it with the user’s token', async () => {
    const list = await call('tools/list', {});
    assert.equal(list.status, 200, JSON.stringify(list.body));
    const names = (list.body.result.tools as Array<{ name: string }>).map((tool) => tool.name);
    // The first page is the first member that can answer: files is skipped, everything serves.
    assert.ok(names.length > 0 && names.every((name) => name.startsWith('everything__')), names.join(', '));
    assert.deepEqual(list.body.result._meta[UNAVAILABLE], [
      { server: 'files', code: 'upstream_auth_required' },
    ]);

    const refused = await call('tools/call', { name: 'files__whoami', arguments: {} });
    assert.equal(refused.status, 200);
    assert.equal(refused.body.error.data.code, 'upstream_auth_required', JSON.stringify(refused.body));
    const authorizeUrl: string = refused.body.error.data.authorizeUrl;
    assert.ok(authorizeUrl.startsWith(`${publicUrl}/oauth/start/`), authorizeUrl);
    const echo = await call('tools/call', { name: 'everything__echo', arguments: { message: 'still here' } });
    assert.equal(echo.body.result.content[0].text, 'Echo: still here');

    const done = await world
      .user('alice')
      .authorize(authorizeUrl, { follow: true, bind: { credential: ALICE, origin: APP } });
    assert.equal(done.callback?.status, 200, done.callback?.body);

    const whoami = await call('tools/call', { name: 'files__whoami', arguments: {} });
    assert.equal(whoami.status, 200, JSON.stringify(whoami.body));
    assert.equal(JSON.parse(whoami.body.result.content[0].text).sub, 'alice');
    const again = await call('tools/list', {});
    assert.ok(
      (again.body.result.tools as Array<{ name: string }>).some((tool) => tool.name === 'files__whoami'),
      'listed once signed in',
    );
  });
});
