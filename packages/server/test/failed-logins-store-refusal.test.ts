/**
 * Review 10 (hardening), HARD-1: failed authentications per address must stay held while the
 * shared store refuses to count. The local fallback (limits/rate-limiter.ts #failed) only counts
 * locally when the store fails; the check that reads the count (assertUnder → peek: GET + PTTL)
 * still succeeds against Redis when only the counting script (EVAL) is refused — Redis refusing
 * scripts (a named failure mode of docs/security.md) or refusing writes (maxmemory, noeviction).
 * The peek then reads Redis, which never counted, and the local count is never looked at: every
 * guess is still checked, a wrong one answered 429 (counted locally) and the right one 200, so
 * the 429 is no lock-out but an oracle, and guessing is unbounded.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startMisbehaving } from './fixtures/misbehaving-upstream.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

async function guessesWhile(refuse: (admin: Redis) => Promise<unknown>): Promise<number[]> {
  const redis = await startRedis();
  cleanup.push(() => redis.stop());
  const upstream = await startMisbehaving();
  cleanup.push(() => upstream.stop());
  const proxy = await startProxy({ REDIS_URL: redis.url, RATE_LIMIT_AUTH_FAILURES_PER_IP: '3' });
  cleanup.push(() => proxy.close());
  const admin = new Redis(redis.url);
  cleanup.push(() => void admin.disconnect());
  await refuse(admin);
  const body = { mcp_server_url: `${upstream.origin}/echo-auth`, jsonrpc: '2.0', id: 1, method: 'ping' };
  const guesses: number[] = [];
  for (let guess = 0; guess < 5; guess++) {
    const token = `wrong-token-${guess}-0123456789abcdef`;
    guesses.push((await postProxy({ url: proxy.url, token }, body)).status);
  }
  // The guess that happens to be right comes from an address that failed too often: refused
  // before any check, as when Redis counts, and as when Redis is down altogether (store-outage.test.ts).
  guesses.push((await postProxy(proxy, body)).status);
  return guesses;
}

describe('review10 HARD-1: failed authentications while Redis refuses to count', () => {
  it('(control) holds a guesser while Redis counts', async () => {
    assert.deepEqual(await guessesWhile(async () => {}), [401, 401, 401, 429, 429, 429]);
  });

  it('holds a guesser when Redis refuses scripts but still answers reads', async () => {
    const guesses = await guessesWhile((admin) => admin.call('ACL', 'SETUSER', 'default', '-@scripting'));
    assert.deepEqual(guesses, [401, 401, 401, 429, 429, 429]);
  });

  it('holds a guesser when Redis refuses writes (maxmemory reached, noeviction)', async () => {
    const guesses = await guessesWhile(async (admin) => {
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.config('SET', 'maxmemory', '1');
    });
    assert.deepEqual(guesses, [401, 401, 401, 429, 429, 429]);
  });

  it('holds a guesser when the Redis named by REDIS_URL became a read-only replica (a failover)', async () => {
    const elsewhere = await startRedis();
    cleanup.push(() => elsewhere.stop());
    const guesses = await guessesWhile((admin) =>
      admin.call('REPLICAOF', '127.0.0.1', new URL(elsewhere.url).port),
    );
    assert.deepEqual(guesses, [401, 401, 401, 429, 429, 429]);
  });
});
