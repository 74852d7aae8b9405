/**
 * Issue 18, first slice: the upstream OAuth broker on POST /proxy, end to end against the OAuth
 * test world (helpers/oauth-world.ts: oidc-provider with DCR, PKCE S256, RFC 8707 and refresh
 * tokens; an SDK upstream that accepts only its tokens). The first call fails with
 * `upstream_auth_required`; a scripted user follows `authorizeUrl` through login and consent to
 * the proxy's callback; the retry succeeds with the token the proxy keeps, never shown to anyone.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { ManualClock } from './helpers/manual-clock.ts';
import { freePort } from './helpers/net.ts';
import { type OAuthWorld, startOAuthWorld } from './helpers/oauth-world.ts';
import { postProxy, type Reply, type RunningProxy, startProxy } from './helpers/proxy.ts';

const ALICE = 'alice-proxy-token-0123456789abcdef';
const BOB = 'bob-proxy-token-0123456789abcdefgh';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

interface Setup {
  readonly world: OAuthWorld;
  readonly proxy: RunningProxy;
  readonly clock: ManualClock;
  readonly publicUrl: string;
}

async function setup(env: Record<string, string> = {}, ttl = 60): Promise<Setup> {
  const clock = new ManualClock();
  const world = await startOAuthWorld({ clock, accessTokenTtl: ttl });
  cleanup.push(() => world.stop());
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const proxy = await startProxy(
    { PORT: String(port), PUBLIC_URL: publicUrl, PROXY_TOKENS: `${ALICE},${BOB}`, ...env },
    { clock },
  );
  cleanup.push(() => proxy.close());
  return { world, proxy, clock, publicUrl };
}

let nextId = 1;
function whoami(s: Setup, token: string): Promise<Reply> {
  return postProxy(
    { url: s.proxy.url, token },
    {
      mcp_server_url: s.world.upstream.url,
      jsonrpc: '2.0',
      id: nextId++,
      method: 'tools/call',
      params: { name: 'whoami', arguments: {} },
    },
    { origin: 'http://app.example' },
  );
}

function subjectOf(reply: Reply): string {
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  return JSON.parse(reply.body.result.content[0].text).sub;
}

/** The first call's error, checked, and its authorize URL. */
function authRequired(s: Setup, reply: Reply): string {
  assert.equal(reply.status, 401, JSON.stringify(reply.body));
  assert.equal(reply.body.error.code, -33200);
  assert.equal(reply.body.error.data.code, 'upstream_auth_required');
  const url: string = reply.body.error.data.authorizeUrl;
  assert.ok(url.startsWith(`${s.publicUrl}/oauth/start/`), url);
  assert.equal(reply.body.error.data.server, new URL(s.world.upstream.url).host);
  return url;
}

async function connect(s: Setup, token: string, user: string): Promise<void> {
  const url = authRequired(s, await whoami(s, token));
  const done = await s.world.user(user).authorize(url, { follow: true });
  assert.equal(done.callback?.status, 200, done.callback?.body);
  assert.match(done.callback?.body ?? '', /Signed in/);
}

/** The access tokens the upstream saw (without `Bearer `). */
function upstreamTokens(s: Setup): string[] {
  return s.world.upstream
    .authorizations()
    .filter((h) => h.startsWith('Bearer '))
    .map((h) => h.slice('Bearer '.length));
}

describe('upstream OAuth broker on POST /proxy', () => {
  it('asks for sign-in, then calls with the token it keeps; no token reaches the caller or the logs', async () => {
    const s = await setup();
    const first = await whoami(s, ALICE);
    const url = authRequired(s, first);
    const done = await s.world.user('alice').authorize(url, { follow: true });
    assert.equal(done.sawLogin, true);
    assert.equal(done.callback?.status, 200);
    // The page tells the caller's origin only, and says nothing secret.
    assert.match(done.callback?.body ?? '', /postMessage\(\{"type":"mcp-proxy:oauth","ok":true/);
    assert.match(done.callback?.body ?? '', /"http:\/\/app\.example"\)/);
    const second = await whoami(s, ALICE);
    assert.equal(subjectOf(second), 'alice');
    const tokens = upstreamTokens(s);
    assert.equal(tokens.length, 1);
    const token = tokens[0] as string;
    const everything = [JSON.stringify(first.body), JSON.stringify(second.body), done.callback?.body, ...s.proxy.logs].join('\n');
    assert.ok(!everything.includes(token), 'an upstream token was shown');
    assert.ok(!everything.includes(done.code as string), 'the authorization code was logged');
    // The caller's proxy token never went upstream.
    assert.ok(!s.world.upstream.authorizations().some((h) => h.includes(ALICE)));
  });

  it('keeps alice and bob apart', async () => {
    const s = await setup();
    await connect(s, ALICE, 'alice');
    assert.equal(subjectOf(await whoami(s, ALICE)), 'alice');
    // Bob is another principal: alice's connection is not his.
    await connect(s, BOB, 'bob');
    assert.equal(subjectOf(await whoami(s, BOB)), 'bob');
    assert.equal(subjectOf(await whoami(s, ALICE)), 'alice');
  });

  it('refreshes an expired access token once, and asks again when the refresh is refused', async () => {
    const s = await setup();
    await connect(s, ALICE, 'alice');
    assert.equal(subjectOf(await whoami(s, ALICE)), 'alice');
    s.clock.advance(61_000);
    const [a, b] = await Promise.all([whoami(s, ALICE), whoami(s, ALICE)]);
    assert.equal(subjectOf(a), 'alice');
    assert.equal(subjectOf(b), 'alice');
    assert.equal(s.world.as.events.filter((e) => e === 'token:refresh_token').length, 1);
    // The refreshed token, not the expired one, went upstream.
    assert.equal(upstreamTokens(s).length, 2);
    // The authorization server forgets the grant: the refresh fails with invalid_grant.
    s.world.as.forgetGrants();
    s.clock.advance(61_000);
    authRequired(s, await whoami(s, ALICE));
  });

  it('refuses a replayed state, a replayed code and a used start link', async () => {
    const s = await setup();
    const url = authRequired(s, await whoami(s, ALICE));
    const done = await s.world.user('alice').authorize(url, { follow: true });
    assert.equal(done.callback?.status, 200);
    const replay = await fetch(done.redirect);
    assert.equal(replay.status, 400);
    assert.match(await replay.text(), /already used or expired/);
    const again = await fetch(url, { redirect: 'manual' });
    assert.equal(again.status, 400);
    assert.equal((await again.json()).error.data.code, 'oauth_state_invalid');
    // A fresh state with an old code: the authorization server refuses the code.
    const url2 = authRequired(s, await whoami(s, BOB));
    const started = await fetch(url2, { redirect: 'manual' });
    const state = new URL(started.headers.get('location') as string).searchParams.get('state') as string;
    const forged = new URL(done.redirect);
    forged.searchParams.set('state', state);
    const refused = await fetch(forged);
    assert.equal(refused.status, 502);
    assert.equal(upstreamTokens(s).length, 0);
  });

  it('keeps the vault sealed in sqlite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oauth-vault-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const s = await setup({ STORE: 'sqlite', DATA_DIR: dir });
    await connect(s, ALICE, 'alice');
    assert.equal(subjectOf(await whoami(s, ALICE)), 'alice');
    const [token] = upstreamTokens(s);
    assert.ok(token);
    await s.proxy.close();
    const files = readdirSync(dir).filter((f) => f !== 'vault-key');
    assert.ok(files.length > 0);
    for (const file of files) {
      const bytes = readFileSync(join(dir, file)).toString('latin1');
      assert.ok(!bytes.includes(token), `${file} holds the access token in clear`);
      assert.ok(!bytes.includes('refreshToken'), `${file} holds vault fields in clear`);
      assert.ok(!bytes.includes(token.split('.')[1] as string), `${file} holds the token's claims`);
    }
  });
});
