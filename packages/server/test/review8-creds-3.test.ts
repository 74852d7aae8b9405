/**
 * Review 8 (creds) finding 3: a virtual server's member that refuses the broker's token (401) is
 * never refreshed: credentials/member-credentials.ts `refused` goes straight to
 * `broker.required` (a new sign-in link), where a named server (surfaces/proxy/forwarder.ts, the
 * `/mcp` and `/ws` surfaces) first calls `broker.rejected`, refreshes with the refresh token the
 * vault holds and retries once. The proxy refreshes ahead of `expiresAt` only when it knows it
 * (an authorization server may omit `expires_in`; a token may be refused before it: a clock
 * skew, a key rotation at the resource), so through a virtual server the user is sent to sign in
 * again although one refresh would have served the call.
 * Real parts: the OAuth test world (oidc-provider and an SDK upstream) and the proxy. The world
 * runs on its own clock, one minute ahead of the proxy's once advanced: the upstream refuses the
 * token the proxy still believes valid.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { ManualClock } from './helpers/manual-clock.ts';
import { freePort } from './helpers/net.ts';
import { APP, bindAs } from './helpers/oauth-proxy.ts';
import { startOAuthWorld } from './helpers/oauth-world.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const ALICE = 'alice-review8-creds-3-0123456789ab';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function setup() {
  const worldClock = new ManualClock();
  const world = await startOAuthWorld({ clock: worldClock, accessTokenTtl: 60 });
  cleanup.push(() => world.stop());
  const dir = mkdtempSync(join(tmpdir(), 'review8-creds-3-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'proxy.json'),
    JSON.stringify({
      servers: { files: { url: world.upstream.url, transport: 'streamable-http' } },
      virtualServers: { workspace: { servers: ['files'] } },
    }),
  );
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  // The proxy on its own clock (the real time): the world's moves ahead of it.
  const proxy = await startProxy({
    PORT: String(port),
    PUBLIC_URL: publicUrl,
    OAUTH_BROKER: 'true',
    PROXY_TOKENS: ALICE,
    CORS_ORIGINS: APP,
    MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
  });
  cleanup.push(() => proxy.close());
  let id = 1;
  const call = (target: Record<string, string>) =>
    postProxy(
      { url: proxy.url, token: ALICE },
      {
        ...target,
        jsonrpc: '2.0',
        id: id++,
        method: 'tools/call',
        params: { name: target.server === 'workspace' ? 'files__whoami' : 'whoami', arguments: {} },
      },
      { origin: APP },
    );
  const refused = await call({ server: 'workspace' });
  const url: string = refused.body?.error?.data?.authorizeUrl;
  assert.ok(url?.startsWith(`${publicUrl}/oauth/start/`), JSON.stringify(refused.body));
  const done = await world.user('alice').authorize(url, { follow: true, bind: bindAs(ALICE) });
  assert.equal(done.callback?.status, 200, done.callback?.body);
  const served = await call({ server: 'workspace' });
  assert.equal(
    JSON.parse(served.body?.result?.content?.[0]?.text ?? '{}').sub,
    'alice',
    JSON.stringify(served.body),
  );
  return { world, worldClock, call };
}

describe('review8 creds 3: a virtual member refusing the broker token', () => {
  it('refreshes it and serves the call, as a named server does, instead of asking for a new sign-in', async () => {
    const { world, worldClock, call } = await setup();
    // The upstream now refuses the token (expired in its time), the proxy still thinks it valid.
    worldClock.advance(61_000);
    const reply = await call({ server: 'workspace' });
    assert.equal(
      reply.body?.error?.data?.code,
      undefined,
      `a refusal the refresh token could fix asked for a new sign-in (refreshes: ${
        world.as.events.filter((e) => e === 'token:refresh_token').length
      }): ${JSON.stringify(reply.body)}`,
    );
    assert.equal(JSON.parse(reply.body.result.content[0].text).sub, 'alice');
  });

  it('(control) the named server refreshes and serves under the same conditions', async () => {
    const { worldClock, call } = await setup();
    worldClock.advance(61_000);
    const reply = await call({ server: 'files' });
    assert.equal(
      JSON.parse(reply.body?.result?.content?.[0]?.text ?? '{}').sub,
      'alice',
      JSON.stringify(reply.body),
    );
  });
});
