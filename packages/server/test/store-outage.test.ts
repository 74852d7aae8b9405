/**
 * What the proxy's counters do when the shared store (Redis) does not answer them (docs/security.md
 * "When the shared store fails"): the security counters (sign-in code tries, sign-in offers and
 * binds, proxy logins, client registrations, ends of virtual sessions) fail closed with `503
 * store_unavailable`; failed authentications per address are counted by each instance alone
 * meanwhile; the ordinary rate limits let traffic through. Real redis-server, stopped (or refused
 * its scripts, which every counter runs on) in the middle of each test.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startMisbehaving } from './fixtures/misbehaving-upstream.ts';
import { ALICE, authorizeUrlOf, callTool, postStart, setupOAuth } from './helpers/oauth-proxy.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

describe('counters when the shared store fails', () => {
  it('refuses sign-in codes and new sign-in links (503) while Redis cannot count them', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const s = await setupOAuth(cleanup, {
      REDIS_URL: redis.url,
      VAULT_KEY: Buffer.alloc(32, 3).toString('base64'),
      OAUTH_USER_CODES: 'true',
    });
    const reply = await callTool(s, ALICE, 'whoami');
    const url = authorizeUrlOf(s, reply);
    const code: string = reply.body.error.data.userCode;
    assert.ok(code, 'a code was offered');
    const wrong = code === 'AAAA-AAAA' ? 'BBBB-BBBB' : 'AAAA-AAAA';
    // Redis goes on answering reads and writes but refuses scripts, which every counter runs on.
    const admin = new Redis(redis.url);
    cleanup.push(() => void admin.disconnect());
    await admin.call('ACL', 'SETUSER', 'default', '-@scripting');
    // No new sign-in link is offered uncounted either: nothing reaches the authorization server.
    const before = s.world.as.events.length;
    const offered = await callTool(s, ALICE, 'whoami');
    assert.equal(offered.status, 503, JSON.stringify(offered.body));
    assert.equal(offered.body.error.data.code, 'store_unavailable');
    assert.equal(s.world.as.events.length, before);
    for (let attempt = 0; attempt < 8; attempt++) {
      const typed = await postStart(url, { code: wrong });
      assert.equal(typed.status, 503, `try ${attempt + 1}: ${JSON.stringify(typed.body)}`);
      assert.equal(typed.body.error.data.code, 'store_unavailable');
    }
    // Counting again, the tries count from the start: none was spent uncounted.
    await admin.call('ACL', 'SETUSER', 'default', '+@all');
    const counted = await postStart(url, { code: wrong });
    assert.equal(counted.status, 403, JSON.stringify(counted.body));
    assert.equal(counted.body.error.data.code, 'oauth_code_invalid');
    assert.equal(counted.body.error.data.attemptsLeft, 4);
  });

  it('holds failed authentications per address on each instance once Redis stops, and lets requests through', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const upstream = await startMisbehaving();
    cleanup.push(() => upstream.stop());
    const proxy = await startProxy({
      REDIS_URL: redis.url,
      RATE_LIMIT_PER_TOKEN: '1',
      RATE_LIMIT_WINDOW_MS: '60000',
      RATE_LIMIT_AUTH_FAILURES_PER_IP: '3',
    });
    cleanup.push(() => proxy.close());
    const body = { mcp_server_url: `${upstream.origin}/echo-auth`, jsonrpc: '2.0', id: 1, method: 'ping' };
    assert.equal((await postProxy(proxy, body)).status, 200);
    assert.equal((await postProxy(proxy, body)).status, 429, 'Redis counts');
    await redis.stop();
    // An ordinary rate limit lets traffic through while Redis is away.
    assert.equal((await postProxy(proxy, body)).status, 200);
    assert.equal((await postProxy(proxy, body)).status, 200);
    const guesses: number[] = [];
    for (let guess = 0; guess < 5; guess++) {
      guesses.push(
        (await postProxy({ url: proxy.url, token: `wrong-token-${guess}-0123456789abcdef` }, body)).status,
      );
    }
    assert.deepEqual(guesses, [401, 401, 401, 429, 429]);
    assert.match(proxy.logs.join('\n'), /failed authentications counted by this instance alone/);
  });
});
