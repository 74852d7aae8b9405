/**
 * What one instance learns of an upstream (its era, its transport) is shared through the store
 * (issue 19): instance B does not probe an upstream instance A already probed, a verdict that
 * expires is probed again, a malformed verdict in the store is ignored, and a store that is down
 * fails no request. Two proxies sharing a real redis-server (one clock they both read), and a
 * `WORKERS=2` cluster on its embedded store; probes are counted at recording upstreams.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RedisStore } from '../src/store/redis-store.ts';
import { startEverything } from './helpers/everything.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { modernRequest } from './helpers/modern-client.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';
import { startRecordingRelay } from './helpers/recording-relay.ts';
import { type RecordingUpstream, startRecordingUpstream } from './helpers/recording-upstream.ts';
import { type RedisServer, startRedis } from './helpers/redis.ts';
import { postEnvelope, startWorkers } from './helpers/workers.ts';

/** How long a verdict is kept (dispatch/wiring.ts). */
const VERDICT_TTL_MS = 10 * 60_000;

/** A `tools/list` through POST /proxy to `url`: a modern request, or a session client's. */
async function listTools(proxy: RunningProxy, url: string, id: number, modern = true): Promise<void> {
  const message = modern ? modernRequest(id, 'tools/list') : { jsonrpc: '2.0', id, method: 'tools/list' };
  const reply = await postProxy(proxy, { mcp_server_url: url, ...message });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  assert.ok(reply.body.result?.tools?.length > 0, JSON.stringify(reply.body));
}

describe('era and transport verdicts shared through Redis', () => {
  let redis: RedisServer;
  let a: RunningProxy;
  let b: RunningProxy;
  const clock = new ManualClock();
  const upstreams: RecordingUpstream[] = [];

  before(async () => {
    redis = await startRedis();
    a = await startProxy({ REDIS_URL: redis.url }, { clock });
    b = await startProxy({ REDIS_URL: redis.url }, { clock });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await Promise.all(upstreams.map((upstream) => upstream.stop()));
    await redis?.stop();
  });

  const upstream = async () => {
    const started = await startRecordingUpstream(['echo']);
    upstreams.push(started);
    return started;
  };

  it('B does not probe the era of an upstream A probed; an expired verdict is probed again, once', async () => {
    const server = await upstream();
    await listTools(a, server.url, 1);
    assert.equal(server.count('server/discover'), 1, 'A probed the era');
    await listTools(b, server.url, 2);
    await listTools(b, server.url, 3);
    await listTools(a, server.url, 4);
    assert.equal(server.count('server/discover'), 1, 'B used the verdict A learnt');
    assert.equal(server.count('tools/list'), 4);

    clock.advance(VERDICT_TTL_MS + 1_000);
    await listTools(b, server.url, 5);
    assert.equal(server.count('server/discover'), 2, 'the expired verdict was probed again');
    await listTools(a, server.url, 6);
    assert.equal(server.count('server/discover'), 2, 'A used the verdict B learnt anew');
  });

  it('B goes straight to HTTP+SSE for an upstream A found speaking it', async (t) => {
    const everything = await startEverything('sse');
    t.after(() => everything.stop());
    const relay = await startRecordingRelay(everything.url);
    t.after(() => relay.stop());
    const probes = () => relay.requests.filter((request) => request === 'POST /sse').length;
    const list = (proxy: RunningProxy, id: number) => listTools(proxy, relay.url, id, false);
    await list(a, 1);
    assert.equal(probes(), 1, 'A tried Streamable HTTP first');
    await list(b, 2);
    await list(b, 3);
    assert.equal(probes(), 1, `B did not try Streamable HTTP: ${relay.requests.join(', ')}`);
  });

  it('a malformed verdict in the store is ignored: the upstream is probed', async () => {
    const server = await upstream();
    const raw = new RedisStore(redis.url, () => {});
    assert.ok(await raw.ready(), 'the test reaches Redis');
    try {
      const hash = createHash('sha256').update(server.url).digest('base64url');
      const until = clock.now() + 60_000;
      await raw.set(`verdicts:era:${hash}`, JSON.stringify({ value: { modern: 'yes' }, until }), 60_000);
      await listTools(b, server.url, 1);
      assert.equal(server.count('server/discover'), 1, 'the malformed verdict was not taken');
    } finally {
      await raw.close();
    }
    await listTools(a, server.url, 2);
    assert.equal(server.count('server/discover'), 1, 'A took the verdict B learnt');
  });

  it('a store that is down fails no request: the upstream is probed, the trouble logged once', async () => {
    await redis.stop();
    const server = await upstream();
    await listTools(a, server.url, 1);
    await listTools(a, server.url, 2);
    assert.equal(server.count('server/discover'), 1, 'probed once, remembered locally');
    await listTools(b, server.url, 3);
    assert.equal(server.count('server/discover'), 2, 'B had to probe for itself');
    const warned = a.logs.filter((line) => line.includes('upstream verdicts not shared'));
    assert.equal(warned.length, 1, a.logs.slice(-5).join('\n'));
  });
});

describe('era verdicts shared between WORKERS=2 workers (embedded store)', () => {
  it('the second worker does not probe an upstream the first probed', async (t) => {
    const server = await startRecordingUpstream(['echo']);
    t.after(() => server.stop());
    const dataDir = mkdtempSync(join(tmpdir(), 'mcpp-verdicts-'));
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    const running = await startWorkers({ DATA_DIR: dataDir });
    t.after(() => running.stop());
    // Each request on a connection of its own: the cluster hands them to the workers in turn.
    for (let id = 1; id <= 4; id++) {
      const answer = await postEnvelope(running.url, {
        mcp_server_url: server.url,
        ...modernRequest(id, 'tools/list'),
      });
      assert.equal(answer.status, 200, answer.body);
    }
    assert.equal(server.count('tools/list'), 4);
    assert.equal(server.count('server/discover'), 1, running.output());
  });
});
