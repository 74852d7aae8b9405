/**
 * `WORKERS=N` (issue 19): one port served by several processes of a node:cluster. Without
 * REDIS_URL the primary holds the store and serves it to the workers over IPC; with it, the
 * workers share Redis. Either way a rate limit counts across workers and a revocation heard on
 * one worker holds on all. A worker that dies is replaced; SIGUSR2 replaces them all in turn
 * under load without a failed request; SIGTERM drains (readiness 503 first, requests served).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startChildProxy } from './helpers/child-proxy.ts';
import { eventually } from './helpers/eventually.ts';
import { connectClient, serverTarget } from './helpers/mcp-client.ts';
import { ADMIN, mint } from './helpers/minted.ts';
import { TEST_TOKEN } from './helpers/proxy.ts';
import { type RedisServer, startRedis } from './helpers/redis.ts';
import { postEnvelope, type RunningWorkers, send, startWorkers } from './helpers/workers.ts';

/** A stateless Streamable HTTP upstream: every POST is answered at once with an empty result. */
async function startPingUpstream(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const message = JSON.parse(Buffer.concat(chunks).toString()) as { id?: unknown };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: message.id ?? null, result: {} }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, server };
}

const dirs: string[] = [];
const dataDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcpp-workers-'));
  dirs.push(dir);
  return join(dir, 'data');
};
let running: RunningWorkers | undefined;
let upstream: { url: string; server: Server };
before(async () => {
  upstream = await startPingUpstream();
});
afterEach(async () => {
  await running?.stop();
  running = undefined;
});
after(async () => {
  upstream.server.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const ping = (id: number) => ({
  mcp_server_url: upstream.url,
  transport: 'streamable-http',
  jsonrpc: '2.0',
  id,
  method: 'ping',
});

/** Twelve requests, each on its own connection (so the workers take turns), under a limit of 6. */
async function countsAcrossWorkers(workers: RunningWorkers): Promise<void> {
  const statuses: number[] = [];
  for (let i = 0; i < 12; i++) statuses.push((await postEnvelope(workers.url, ping(i))).status);
  assert.deepEqual(
    statuses,
    [...Array(6).fill(200), ...Array(6).fill(429)],
    `one window for every worker (output: ${workers.output()})`,
  );
}

/** A minted token revoked through one worker is refused by every worker. */
async function revocationHoldsOnEveryWorker(workers: RunningWorkers): Promise<void> {
  const { token, id } = await mint(workers.url, 'someone');
  for (let i = 0; i < 4; i++)
    assert.equal(
      (await postEnvelope(workers.url, ping(i), undefined, token)).status,
      200,
      'minted token works on each worker',
    );
  const revoked = await send(workers.url, {
    method: 'DELETE',
    path: `/auth/tokens/${id}`,
    headers: { 'x-proxy-token': ADMIN },
  });
  assert.equal(revoked.status, 204);
  for (let i = 0; i < 4; i++)
    assert.equal(
      (await postEnvelope(workers.url, ping(i), undefined, token)).status,
      401,
      'revoked on each worker',
    );
}

const featureServer = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));
/** A config file naming the stdio feature server `feat` (a session held by one worker). */
const featConfig = () => {
  const path = join(dataDir(), '..', 'proxy.json');
  writeFileSync(
    path,
    JSON.stringify({ servers: { feat: { command: process.execPath, args: [featureServer] } } }),
  );
  return path;
};

/** The parent process of `pid` (a stdio server's parent is the worker holding its session). */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/**
 * Sessions one worker holds (a stdio upstream) work whichever worker each request reaches:
 * every request on a new connection, so the workers take turns; the other worker relays.
 */
async function heldSessionsCrossWorkers(workers: RunningWorkers): Promise<void> {
  const client = await connectClient({ url: workers.url, token: TEST_TOKEN }, serverTarget('feat'), {
    freshConnections: true,
  });
  try {
    const pids = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const result = await client.client.callTool({ name: 'pid' }, undefined, { timeout: 15_000 });
      pids.add((result.content as { text: string }[])[0]?.text ?? '');
    }
    assert.equal(pids.size, 1, `one upstream process, saw ${[...pids].join(', ')}`);
    assert.ok(workers.workerPids().includes(parentOf(Number([...pids][0]))), 'held by a worker');
    const progress: number[] = [];
    await client.client.callTool({ name: 'progress', arguments: { steps: 3, intervalMs: 5 } }, undefined, {
      timeout: 15_000,
      onprogress: (p) => progress.push(p.progress),
    });
    assert.deepEqual(progress, [1, 2, 3]);
    assert.deepEqual(client.errors, []);
  } finally {
    await client.close();
  }
  const opened = await postEnvelope(workers.url, {
    server: 'feat',
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'w', version: '1' } },
  });
  assert.equal(opened.status, 200, opened.body);
  const sessionId = opened.headers['mcp-session-id'];
  assert.match(String(sessionId), /^mcpp-/, 'a session the proxy holds');
  const pids = new Set<string>();
  for (let call = 0; call < 6; call++) {
    const reply = await postEnvelope(workers.url, {
      server: 'feat',
      mcp_session_id: sessionId,
      jsonrpc: '2.0',
      id: call + 2,
      method: 'tools/call',
      params: { name: 'pid' },
    });
    assert.equal(reply.status, 200, `POST /proxy call ${call}: ${reply.body}`);
    pids.add(JSON.parse(reply.body).result.content[0].text);
  }
  assert.equal(pids.size, 1);
}

describe('WORKERS=2 without REDIS_URL: the primary serves the embedded store', () => {
  it('counts one rate limit across workers, and a revocation holds on every worker', async () => {
    running = await startWorkers({ DATA_DIR: dataDir(), RATE_LIMIT_PER_TOKEN: '6', ADMIN_TOKEN: ADMIN });
    await countsAcrossWorkers(running);
    await revocationHoldsOnEveryWorker(running);
  });

  it('serves a held session whichever worker a request reaches (the relay over the IPC store)', async () => {
    running = await startWorkers({ DATA_DIR: dataDir(), MCP_PROXY_CONFIG: featConfig() });
    await heldSessionsCrossWorkers(running);
  });

  it('replaces a worker that dies, and keeps serving', async () => {
    running = await startWorkers({ DATA_DIR: dataDir() });
    const workers = running;
    const [first, second] = workers.workerPids() as [number, number];
    process.kill(first, 'SIGKILL');
    await eventually(
      () => {
        const now = workers.workerPids();
        return now.length === 2 && !now.includes(first) && now.includes(second) && workers.listened() >= 3;
      },
      {
        timeoutMs: 20_000,
        what: () =>
          `a replacement worker (${first} gone, ${second} kept: ${workers.workerPids().join(',')}; primary exit ${workers.primary.exitCode} ${workers.primary.signalCode}; output: ${workers.output()})`,
      },
    );
    for (let i = 0; i < 4; i++) assert.equal((await postEnvelope(workers.url, ping(i))).status, 200);
  });

  // A client that closes its idle connections after a second, as a load balancer does at its
  // idle timeout; a draining worker leaves idle ones longer (DRAIN_IDLE_MS), so it never closes
  // one this client is about to reuse (issue 19; docs/deployment.md#what-a-load-balancer-needs).
  it('replaces every worker on SIGUSR2 under load without a failed request', async (t) => {
    running = await startWorkers({
      DATA_DIR: dataDir(),
      RATE_LIMIT_PER_TOKEN: '1000000',
      RATE_LIMIT_PER_IP: '1000000',
      DRAIN_IDLE_MS: '1500',
    });
    const workers = running;
    const before = workers.workerPids();
    const agent = new Agent({ keepAlive: true, maxSockets: 8, timeout: 1000 });
    const failures: string[] = [];
    let done = 0;
    let stop = false;
    const loop = async () => {
      while (!stop) {
        try {
          const answer = await postEnvelope(workers.url, ping(done), agent);
          if (answer.status !== 200) failures.push(`${answer.status} ${answer.body}`);
        } catch (error) {
          failures.push((error as Error).message);
        }
        done++;
      }
    };
    const loops = Array.from({ length: 8 }, loop);
    try {
      await eventually(() => done >= 100, { timeoutMs: 20_000, what: 'load running' });
      workers.primary.kill('SIGUSR2');
      await eventually(
        () => {
          const now = workers.workerPids();
          return now.length === 2 && now.every((pid) => !before.includes(pid));
        },
        { timeoutMs: 30_000, what: () => `every worker replaced (output: ${workers.output()})` },
      );
      const atRoll = done;
      await eventually(() => done >= atRoll + 100, { timeoutMs: 20_000, what: 'load after the restart' });
    } finally {
      stop = true;
      await Promise.all(loops);
      agent.destroy();
    }
    t.diagnostic(`SIGUSR2: ${failures.length} of ${done} requests failed`);
    assert.deepEqual(failures, [], `no request failed among ${done}`);
  });
});

describe('WORKERS=2 with REDIS_URL: the workers share Redis', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis.stop();
  });

  it('counts one rate limit across workers, and a revocation holds on every worker', async () => {
    running = await startWorkers({
      DATA_DIR: dataDir(),
      REDIS_URL: redis.url,
      RATE_LIMIT_PER_TOKEN: '6',
      ADMIN_TOKEN: ADMIN,
    });
    await countsAcrossWorkers(running);
    await revocationHoldsOnEveryWorker(running);
  });

  it('serves a held session whichever worker a request reaches (the relay over Redis)', async () => {
    running = await startWorkers({
      DATA_DIR: dataDir(),
      REDIS_URL: redis.url,
      MCP_PROXY_CONFIG: featConfig(),
    });
    await heldSessionsCrossWorkers(running);
  });
});

describe('WORKERS=2: the primary speaks for the cluster', () => {
  it('shows one generated token, which every worker accepts', async () => {
    running = await startWorkers({ DATA_DIR: dataDir(), PROXY_TOKEN: '' });
    const banners = [...running.output().matchAll(/X-Proxy-Token: (\S+)/g)];
    assert.equal(banners.length, 1, `shown once (output: ${running.output()})`);
    const token = banners[0]?.[1] as string;
    for (let i = 0; i < 4; i++)
      assert.equal(
        (await postEnvelope(running.url, ping(i), undefined, token)).status,
        200,
        'accepted by each worker',
      );
  });

  it('passes SIGHUP on: every worker reloads the configuration', async () => {
    const envFile = join(dataDir(), '..', 'reload.env');
    writeFileSync(envFile, 'RATE_LIMIT_PER_TOKEN=100\n');
    running = await startWorkers({ DATA_DIR: dataDir(), DOTENV_PATH: envFile });
    const workers = running;
    assert.equal((await postEnvelope(workers.url, ping(0))).status, 200);
    writeFileSync(envFile, 'RATE_LIMIT_PER_TOKEN=3\n');
    workers.primary.kill('SIGHUP');
    await eventually(() => workers.output().split('"msg":"configuration reloaded"').length - 1 >= 2, {
      what: () => `both workers reloaded (output: ${workers.output()})`,
    });
    const statuses: number[] = [];
    for (let i = 1; i < 7; i++) statuses.push((await postEnvelope(workers.url, ping(i))).status);
    assert.deepEqual(statuses, [200, 200, 429, 429, 429, 429], 'the new limit, on every worker');
  });
});

describe('SIGTERM drains', () => {
  it('answers /ready 503 first while still serving, then exits cleanly', async () => {
    const proxy = await startChildProxy({ DATA_DIR: dataDir(), DRAIN_DELAY_MS: '3000' }, 256);
    try {
      assert.equal((await send(proxy.url, { path: '/ready' })).status, 200);
      const exited = new Promise((resolve) => proxy.child.once('exit', resolve));
      proxy.child.kill('SIGTERM');
      await eventually(async () => (await send(proxy.url, { path: '/ready' })).status === 503, {
        what: 'readiness 503',
      });
      assert.equal((await postEnvelope(proxy.url, ping(1))).status, 200, 'still served while draining');
      assert.equal(await exited, 0);
    } finally {
      await proxy.stop();
    }
  });
});
