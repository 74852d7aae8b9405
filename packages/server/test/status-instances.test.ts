/**
 * Issue 21: with a shared store the status page lists every live instance — its open sessions by
 * kind, requests and errors — marking the one that answered, and drops an instance that died.
 * Two real processes sharing a real redis-server; then one `WORKERS=2` process (the embedded
 * cluster store), whose workers each answer for both. Last, beats someone without SESSION_SECRET
 * publishes do not crowd real instances off the page (review 8, SHARED-3).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { RedisStore } from '../src/store/redis-store.ts';
import { type Cluster, startCluster } from './helpers/cluster.ts';
import { eventually } from './helpers/eventually.ts';
import { type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';
import { type RecordingUpstream, startRecordingUpstream } from './helpers/recording-upstream.ts';
import { type RedisServer, startRedis } from './helpers/redis.ts';
import { type RunningWorkers, send, startWorkers } from './helpers/workers.ts';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
const HELLO = {
  protocolVersion: '2025-06-18',
  capabilities: {},
  clientInfo: { name: 'status', version: '1' },
};

interface Instance {
  readonly id: string;
  readonly self: boolean;
  readonly requests: number;
  readonly errors: number;
  readonly sessions: { byTransport: Record<string, number>; webSockets: number };
}

async function instancesOf(url: string): Promise<Instance[]> {
  const answer = await send(url, {
    path: '/status.json',
    headers: { authorization: `Bearer ${METRICS_TOKEN}` },
  });
  assert.equal(answer.status, 200, answer.body);
  return JSON.parse(answer.body).instances;
}

/** Opens a /ws socket to `upstream` through `url`; resolves once it is open. */
async function openSocket(url: string, upstream: RecordingUpstream): Promise<WebSocket> {
  const query = new URLSearchParams({ mcp_server_url: upstream.url, transport: 'streamable-http' });
  const ws = new WebSocket(`${url.replace('http', 'ws')}/ws?${query}`, ['mcp', `proxy-token.${TEST_TOKEN}`]);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: HELLO }));
  await new Promise((resolve) => ws.once('message', resolve));
  return ws;
}

describe('the status page across instances', () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  it('lists every instance sharing Redis with its counts, marks the one answering, drops one killed', async () => {
    const upstream = await startRecordingUpstream(['echo']);
    cleanup.push(() => upstream.stop());
    const cluster: Cluster = await startCluster({
      instances: 2,
      nginx: false,
      env: { METRICS_TOKEN, WS_ALLOW_MISSING_ORIGIN: 'true' },
    });
    cleanup.push(() => cluster.stop());
    const [a, b] = cluster.instances as [Cluster['instances'][0], Cluster['instances'][0]];
    const ws = await openSocket(a.url, upstream);
    cleanup.push(() => ws.terminate());
    const refused = await send(a.url, {
      method: 'POST',
      path: '/proxy',
      headers: { 'x-proxy-token': 'wrong' },
      body: '{}',
    });
    assert.equal(refused.status, 401);
    const [aSelf] = await instancesOf(a.url);
    assert.equal(aSelf?.self, true);
    assert.equal(aSelf?.sessions.webSockets, 1);

    const seen = await eventually(
      async () => {
        const listed = await instancesOf(b.url);
        const other = listed.find((i) => i.id === aSelf?.id);
        return other?.errors === 1 && other.sessions.webSockets === 1 && listed;
      },
      { what: 'instance a’s counts on instance b’s page' },
    );
    assert.equal(seen.length, 2);
    assert.equal(seen[0]?.self, true, 'the answering instance comes first, marked');
    assert.notEqual(seen[0]?.id, aSelf?.id);
    assert.equal(seen[1]?.self, false);
    assert.equal(seen[1]?.sessions.byTransport['streamable-http'], 1);

    await a.kill('SIGKILL');
    // Not heard from for the TTL (6.5 s): gone.
    await eventually(async () => (await instancesOf(b.url)).length === 1, {
      what: 'the killed instance gone',
      timeoutMs: 15_000,
      intervalMs: 250,
    });
  });

  it('WORKERS=2 without Redis: each worker answers for both', async () => {
    const upstream = await startRecordingUpstream(['echo']);
    cleanup.push(() => upstream.stop());
    const workers: RunningWorkers = await startWorkers({ METRICS_TOKEN, WS_ALLOW_MISSING_ORIGIN: 'true' });
    cleanup.push(() => workers.stop());
    const ws = await openSocket(workers.url, upstream);
    cleanup.push(() => ws.terminate());
    const answering = new Set<string>();
    await eventually(
      async () => {
        // A connection of its own each time: the cluster hands them to its workers in turn.
        const listed = await instancesOf(workers.url);
        const total = listed.reduce((sum, i) => sum + i.sessions.webSockets, 0);
        const self = listed.filter((i) => i.self);
        if (listed.length === 2 && total === 1 && self.length === 1) answering.add(self[0]?.id ?? '');
        return answering.size === 2;
      },
      { what: 'both workers answering with both listed', timeoutMs: 15_000 },
    );
  });
});

/**
 * Review 8 of shared state, finding 3: the status page's roster (observability/instance-roster.ts)
 * takes every well-formed beat published on `status:beats` as an instance, unsealed even with
 * SESSION_SECRET set (under which relay messages are sealed because a store writer is not
 * trusted). It keeps at most 64 others and, full, ignores newcomers until one expires: whoever
 * can publish to Redis keeps 64 invented instances alive (one beat each every few seconds) and
 * the operator never sees a real instance that starts, nor can tell the invented counts from
 * real ones. (A `gone` beat naming a real instance likewise drops it until its next beat.)
 */
describe('the status page with SESSION_SECRET and a store others can publish to', () => {
  const SECRET = 'review8-shared-3-session-secret-0123456789abcdef';

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
    const bId = (await instancesOf(b.url)).find((instance) => instance.self)?.id as string;
    assert.ok(bId);
    // b beats every 2 s; a lists it within a few beats.
    const listed = await eventually(
      async () => ((await instancesOf(a.url)).some((instance) => instance.id === bId) ? true : undefined),
      { timeoutMs: 8_000, what: `a listing b (${bId}) among the instances` },
    ).catch((error: Error) => error);
    const shown = (await instancesOf(a.url)).map((instance) => instance.id);
    assert.equal(listed, true, `a's status page lists: ${shown.join(', ')}`);
  });
});
