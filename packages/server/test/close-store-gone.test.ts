/**
 * Closing an instance whose shared Redis is gone (session 8, gap 1): two proxies share a real
 * redis-server; one holds a virtual session with resumable calls under way and the other serves
 * a resumed stream of it and a call of its own (the fleet's channels, the relay's, revocations',
 * answer logs awaiting the store). Redis is then killed (its connections reset) or stopped
 * (SIGSTOP: its connections stay open and nothing answers, as in a network partition), and each
 * proxy closes: the close must finish inside the framework's 10 s close timeout, whatever the
 * store's state. Before the fix the stopped case never finished: each UNSUBSCRIBE on a subscriber
 * that still looked connected waited forever for its answer (the relay's in `preClose`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';
import { firstEvent, oneMemberConfig, rawClient, startWaitingMember } from './helpers/resumable-member.ts';

const SECRET = 'close-store-gone-session-secret-0123456789';

/** Fastify's (avvio's) close timeout: past it `close()` fails with AVV_ERR_READY_TIMEOUT. */
const FRAMEWORK_CLOSE_TIMEOUT_MS = 10_000;

for (const [signal, what] of [
  ['SIGKILL', 'killed'],
  ['SIGSTOP', 'stopped (no answer, connections open)'],
] as const) {
  test(`proxies close after their shared Redis was ${what}, with calls and streams open`, {
    timeout: 90_000,
  }, async (t) => {
    // The member's tool answers only when its call is cancelled: calls stay under way.
    const [member, redis] = await Promise.all([startWaitingMember(60_000), startRedis()]);
    t.after(() => Promise.all([member.stop(), redis.stop()]));
    const config = oneMemberConfig(member.url);
    const env = { MCP_PROXY_CONFIG: config, REDIS_URL: redis.url, SESSION_SECRET: SECRET };
    const [first, second] = [await startProxy(env), await startProxy(env)];
    let closed = false;
    t.after(async () => {
      if (!closed) await Promise.allSettled([first.close(), second.close()]);
    });

    const session = await rawClient(first.url).initialize();
    const leaving = new AbortController();
    t.after(() => leaving.abort());
    const priming = await firstEvent(await rawClient(first.url).call(session, 'wait', 1, leaving.signal));
    const resumed = await rawClient(second.url).resume(session, priming.id as string);
    assert.equal(resumed.status, 200);
    const open = await firstEvent(await rawClient(first.url).call(session, 'wait', 2, leaving.signal));
    assert.equal(open.data, '');
    const elsewhere = await firstEvent(await rawClient(second.url).call(session, 'wait', 3, leaving.signal));
    assert.equal(elsewhere.data, '');

    redis.signal(signal);
    const started = performance.now();
    const results = await Promise.allSettled([first.close(), second.close()]);
    const took = performance.now() - started;
    closed = true;
    for (const result of results)
      assert.equal(result.status, 'fulfilled', String((result as PromiseRejectedResult).reason));
    assert.ok(took < FRAMEWORK_CLOSE_TIMEOUT_MS, `both closed in ${Math.round(took)} ms`);
  });
}
