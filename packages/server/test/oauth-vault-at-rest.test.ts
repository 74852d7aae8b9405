/**
 * Issue 18, the vault at rest and across instances: what the embedded SQLite file under DATA_DIR
 * and a real Redis hold after a sign-in and a refresh is sealed (no access token, no refresh
 * token, not even who connected to what), and two proxy instances sharing Redis refresh an
 * expired token once, not twice (the world's authorization server rotates refresh tokens: a
 * second refresh with the same one would fail and lose the grant).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { ManualClock } from './helpers/manual-clock.ts';
import { freePort } from './helpers/net.ts';
import {
  ALICE,
  APP,
  authorizeUrlOf,
  bindAs,
  callTool,
  connect,
  setupOAuth,
  subjectOf,
  upstreamTokens,
} from './helpers/oauth-proxy.ts';
import { type OAuthWorld, startOAuthWorld } from './helpers/oauth-world.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** Every secret a store must not show in clear after alice connected and refreshed once. */
interface Secrets {
  readonly tokens: string[];
  /** What says who connected to what. */
  readonly names: string[];
}

/** Connects alice, refreshes once, and returns what must not appear in clear. */
async function connectAndRefresh(s: {
  world: OAuthWorld;
  proxy: RunningProxy;
  clock: ManualClock;
  publicUrl: string;
}): Promise<Secrets> {
  await connect(s, ALICE, 'alice');
  const refreshTokens = new Set(s.world.as.stored('RefreshToken'));
  assert.equal(subjectOf(await callTool(s, ALICE, 'whoami')), 'alice');
  s.clock.advance(61_000);
  assert.equal(subjectOf(await callTool(s, ALICE, 'whoami')), 'alice');
  for (const token of s.world.as.stored('RefreshToken')) refreshTokens.add(token);
  const accessTokens = upstreamTokens(s);
  assert.equal(accessTokens.length, 2, 'a first and a refreshed access token');
  assert.equal(refreshTokens.size, 2, 'a first and a rotated refresh token');
  return {
    // A JWT's payload segment alone would show its claims (sub, scope).
    tokens: [...accessTokens, ...accessTokens.map((t) => t.split('.')[1] as string), ...refreshTokens],
    names: [ALICE, s.world.upstream.url, 'refreshToken', 'accessToken'],
  };
}

function assertAbsent(where: string, text: string, secrets: Secrets): void {
  for (const token of secrets.tokens) assert.ok(!text.includes(token), `${where} holds a token in clear`);
  for (const name of secrets.names) assert.ok(!text.includes(name), `${where} shows ${name}`);
}

describe('the vault at rest', () => {
  it('the SQLite store under DATA_DIR holds no token in clear (and no principal or server)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oauth-at-rest-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const s = await setupOAuth(cleanup, { STORE: 'sqlite', DATA_DIR: dir });
    const secrets = await connectAndRefresh(s);
    // Read while the proxy still runs too: the write-ahead log holds the latest writes.
    const read = () =>
      readdirSync(dir)
        .filter((file) => file !== 'vault-key')
        .map((file) => [file, readFileSync(join(dir, file)).toString('latin1')] as const);
    const running = read();
    assert.ok(running.length > 0);
    for (const [file, text] of running) assertAbsent(file, text, secrets);
    await s.proxy.close();
    for (const [file, text] of read()) assertAbsent(file, text, secrets);
  });

  it('Redis holds no token in clear (and no principal or server)', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const s = await setupOAuth(cleanup, {
      REDIS_URL: redis.url,
      VAULT_KEY: Buffer.alloc(32, 3).toString('base64'),
    });
    const secrets = await connectAndRefresh(s);
    const reader = new Redis(redis.url, { lazyConnect: true });
    await reader.connect();
    cleanup.push(() => void reader.disconnect());
    const keys = await reader.keys('*');
    assert.ok(
      keys.some((key) => key.includes('oauth:')),
      keys.join(', '),
    );
    const dump: string[] = [];
    for (const key of keys) {
      dump.push(key);
      const type = await reader.type(key);
      if (type === 'string') dump.push((await reader.get(key)) ?? '');
      else if (type === 'hash') dump.push(JSON.stringify(await reader.hgetall(key)));
      else if (type === 'list') dump.push(...(await reader.lrange(key, 0, -1)));
      else if (type === 'set') dump.push(...(await reader.smembers(key)));
      else if (type === 'zset') dump.push(...(await reader.zrange(key, 0, -1)));
      else assert.fail(`unexpected Redis type ${type} at ${key}`);
    }
    assertAbsent('Redis', dump.join('\n'), secrets);
  });
});

describe('two instances sharing Redis', () => {
  it('refresh an expired token once, not twice, and both serve the refreshed token', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const clock = new ManualClock();
    const world = await startOAuthWorld({ clock, accessTokenTtl: 60 });
    cleanup.push(() => world.stop());
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    const env = {
      PUBLIC_URL: publicUrl,
      OAUTH_BROKER: 'true',
      PROXY_TOKENS: ALICE,
      CORS_ORIGINS: APP,
      REDIS_URL: redis.url,
      VAULT_KEY: Buffer.alloc(32, 9).toString('base64'),
    };
    const a = await startProxy({ ...env, PORT: String(port) }, { clock });
    cleanup.push(() => a.close());
    const b = await startProxy(env, { clock });
    cleanup.push(() => b.close());
    const viaA = { world, proxy: a, clock, publicUrl };
    const viaB = { world, proxy: b, clock, publicUrl };
    const url = authorizeUrlOf(viaA, await callTool(viaA, ALICE, 'whoami'));
    const done = await world.user('alice').authorize(url, { follow: true, bind: bindAs(ALICE) });
    assert.equal(done.callback?.status, 200, done.callback?.body);
    // Signed in through A, served by B: the vault is in Redis.
    assert.equal(subjectOf(await callTool(viaB, ALICE, 'whoami')), 'alice');
    clock.advance(61_000);
    const replies = await Promise.all(
      [viaA, viaB, viaA, viaB, viaA, viaB].map((via) => callTool(via, ALICE, 'whoami')),
    );
    for (const reply of replies) assert.equal(subjectOf(reply), 'alice');
    assert.equal(
      world.as.events.filter((e) => e === 'token:refresh_token').length,
      1,
      world.as.events.join(),
    );
    assert.ok(!world.as.events.includes('token-error:invalid_grant'));
    // One refreshed token, used by both instances.
    assert.equal(upstreamTokens(viaA).length, 2);
  });
});
