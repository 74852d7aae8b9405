/**
 * @module bench/scenarios/relay
 * Issue 19: what relaying costs. Two proxy instances share a real Redis; one holds a `/mcp`
 * session bridged to the fast upstream's WebSocket. The same requests go to the owner itself and
 * to the other instance, which relays each one to the owner through Redis pub/sub and streams the
 * answer back. Both rows count the CPU of both proxies and of Redis, so the difference is
 * the relay's whole cost per message (and its added latency).
 */
import { existsSync } from 'node:fs';
import { SERVER_CORES } from '../lib/env.ts';
import { freePort, startPinned, waitForPort } from '../lib/procs.ts';
import { type Server, startProxy } from '../lib/servers.ts';
import type { Point } from '../lib/stats.ts';
import { type LoadConfig, measurePoints } from './load.ts';
import { bridgedSpec, checkSpec, mcpSpec } from './paths.ts';

/** The group the relay's points carry (bench/lib/report.ts renders it). */
export const RELAY_GROUP = 'relay';
/** The two rows' names. */
export const RELAY_PATHS = {
  owner: '/mcp held session, on its owner',
  relayed: '/mcp held session, relayed',
};

const REDIS_SERVER = '/usr/bin/redis-server';

/** Measures a held session's requests on its owner and relayed through another instance. */
export async function measureRelay(
  upstream: Server,
  concurrency: readonly number[],
  dir: string,
  log: (line: string) => void,
): Promise<Point[]> {
  if (!existsSync(REDIS_SERVER))
    throw new Error('redis-server is not installed (node scripts/ensure-system-deps.mjs redis-server)');
  const port = await freePort();
  const redis = startPinned(
    REDIS_SERVER,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { name: 'redis-server', cores: SERVER_CORES },
  );
  await waitForPort(port, 10_000, redis.exited);
  const env = { STORE: 'auto', REDIS_URL: `redis://127.0.0.1:${port}` };
  const owner = await startProxy({ name: 'proxy (owner)', env });
  const relaying = await startProxy({ name: 'proxy (relaying)', env });
  try {
    const wsUrl = `${upstream.base.replace(/^http/, 'ws')}/ws`;
    // The session lives on the owner; the relaying instance finds it through Redis.
    const onOwner = await bridgedSpec(owner.base, `${upstream.base}/mcp`);
    const sessionId = onOwner.headers['Mcp-Session-Id'];
    if (sessionId === undefined) throw new Error('no session id in the bridged spec');
    const relayed = mcpSpec(relaying.base, wsUrl, sessionId);
    await checkSpec(`relay ${RELAY_PATHS.owner}`, onOwner);
    await checkSpec(`relay ${RELAY_PATHS.relayed}`, relayed);
    const pids = () => [owner.proc.pid, relaying.proc.pid, redis.pid];
    const configs = concurrency.flatMap((c): LoadConfig[] => [
      {
        group: RELAY_GROUP,
        path: RELAY_PATHS.owner,
        concurrency: c,
        spec: onOwner,
        serverPids: pids,
        upstreamPids: upstream.pids,
      },
      {
        group: RELAY_GROUP,
        path: RELAY_PATHS.relayed,
        concurrency: c,
        spec: relayed,
        serverPids: pids,
        upstreamPids: upstream.pids,
      },
    ]);
    return await measurePoints(configs, dir, log);
  } finally {
    await relaying.stop();
    await owner.stop();
    await redis.stop();
  }
}
