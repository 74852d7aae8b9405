/**
 * Review 8 of shared state, finding 3: the status page's roster (observability/instance-roster.ts)
 * takes every well-formed beat published on `status:beats` as an instance, unsealed even with
 * SESSION_SECRET set (under which relay messages are sealed because a store writer is not
 * trusted). It keeps at most 64 others and, full, ignores newcomers until one expires: whoever
 * can publish to Redis keeps 64 invented instances alive (one beat each every few seconds) and
 * the operator never sees a real instance that starts, nor can tell the invented counts from
 * real ones. (A `gone` beat naming a real instance likewise drops it until its next beat.)
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { RedisStore } from '../src/store/redis-store.ts';
import { eventually } from './helpers/eventually.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';
import { type RedisServer, startRedis } from './helpers/redis.ts';

const SECRET = 'review8-shared-3-session-secret-0123456789abcdef';
const METRICS_TOKEN = 'review8-shared-3-metrics-0123456789abcdef';

let redis: RedisServer;
let raw: RedisStore | undefined;
let spoofing: NodeJS.Timeout | undefined;
const running: RunningProxy[] = [];

before(async () => {
  redis = await startRedis();
});
after(async () => {
  clearInterval(spoofing);
  await Promise.allSettled(running.map((proxy) => proxy.close()));
  await raw?.close();
  await redis?.stop();
});

async function instancesOf(proxy: RunningProxy): Promise<Array<{ id: string; self: boolean }>> {
  const answer = await fetch(`${proxy.url}/status.json`, {
    headers: { authorization: `Bearer ${METRICS_TOKEN}` },
  });
  const text = await answer.text();
  assert.equal(answer.status, 200, text);
  return JSON.parse(text).instances;
}

it('with SESSION_SECRET, beats someone else publishes do not crowd real instances off the status page', {
  timeout: 60_000,
}, async () => {
  const env = { REDIS_URL: redis.url, SESSION_SECRET: SECRET, METRICS_TOKEN, LOG_LEVEL: 'warn' };
  const a = await startProxy(env);
  running.push(a);
  // Someone who can publish to Redis (no SESSION_SECRET) invents 64 instances and keeps them alive.
  raw = new RedisStore(redis.url, () => {});
  assert.ok(await raw.ready(), 'the test reaches Redis');
  const store = raw;
  const beat = async () => {
    for (let i = 0; i < 64; i++) {
      const id = `invented-${String(i).padStart(2, '0')}`;
      const counts = { requests: 0, errors: 0, sessions: { byTransport: {}, webSockets: 0 } };
      await store.publish('status:beats', JSON.stringify({ id, startedAt: Date.now(), ...counts }));
    }
  };
  await beat();
  spoofing = setInterval(() => void beat().catch(() => {}), 1_000);
  const b = await startProxy(env);
  running.push(b);
  const bId = (await instancesOf(b)).find((instance) => instance.self)?.id as string;
  assert.ok(bId);
  // b beats every 2 s; a lists it within a few beats.
  const listed = await eventually(
    async () => ((await instancesOf(a)).some((instance) => instance.id === bId) ? true : undefined),
    { timeoutMs: 8_000, what: `a listing b (${bId}) among the instances` },
  ).catch((error: Error) => error);
  const shown = (await instancesOf(a)).map((instance) => instance.id);
  assert.equal(listed, true, `a's status page lists: ${shown.join(', ')}`);
});
