/**
 * @module bench/scenarios/ws
 * `WS /ws` messages per second: one socket and many, each configuration repeated and
 * interleaved like the HTTP points. The load runs in its own Node process on the load core.
 */
import { join } from 'node:path';
import { LOAD_CORES, NODE, ORIGIN, PROXY_TOKEN, ROOT, SETTINGS } from '../lib/env.ts';
import { startPinned } from '../lib/procs.ts';
import type { Server } from '../lib/servers.ts';
import { type LoadOutcome, measured, type Point } from '../lib/stats.ts';

/** A socket count and the requests each keeps in flight. */
export interface WsShape {
  readonly sockets: number;
  readonly inflight: number;
}

/** The shapes measured by default. */
export const WS_SHAPES: readonly WsShape[] = [
  { sockets: 1, inflight: 1 },
  { sockets: 1, inflight: 64 },
  { sockets: 64, inflight: 1 },
];

/** The label of a shape in tables. */
export function wsLabel(shape: WsShape): string {
  return `WS ${shape.sockets} socket${shape.sockets === 1 ? '' : 's'} × ${shape.inflight} in flight`;
}

/** Measures every shape against `proxy` bridging to `upstreamUrl`. */
export async function measureWs(
  proxy: Server,
  upstream: Server,
  upstreamUrl: string,
  log: (line: string) => void,
  shapes: readonly WsShape[] = WS_SHAPES,
  repeats: number = SETTINGS.repeats,
): Promise<Point[]> {
  const points = shapes.map(
    (s): Point => ({ group: 'ws', path: wsLabel(s), concurrency: s.sockets * s.inflight, runs: [] }),
  );
  const url = `ws://127.0.0.1:${proxy.port}/ws?mcp_server_url=${encodeURIComponent(upstreamUrl)}`;
  for (let repeat = 1; repeat <= repeats; repeat++) {
    for (const [i, shape] of shapes.entries()) {
      const warmup = repeat === 1 ? Math.max(0.5, SETTINGS.warmupSeconds) : 0.3;
      const run = await measured(proxy.pids, upstream.pids, (mark) => runWsLoad(url, shape, warmup, mark));
      (points[i] as Point).runs.push(run);
      log(
        `  ${wsLabel(shape)} #${repeat}: ${Math.round(run.rps)} msg/s, p50 ${(run.p50 / 1000).toFixed(2)} ms, ` +
          `${Math.round(run.cpuUs ?? 0)} µs CPU/msg${run.errors > 0 ? `, ${run.errors} ERRORS` : ''}`,
      );
    }
  }
  return points;
}

async function runWsLoad(
  url: string,
  shape: WsShape,
  warmupSeconds: number,
  mark: { start(): void; stop(): void },
): Promise<LoadOutcome> {
  const options = {
    url,
    protocols: ['mcp', `proxy-token.${PROXY_TOKEN}`],
    origin: ORIGIN,
    sockets: shape.sockets,
    inflight: shape.inflight,
    warmupSeconds,
    seconds: SETTINGS.seconds,
  };
  const load = startPinned(NODE, [join(ROOT, 'bench/clients/ws-load.ts'), JSON.stringify(options)], {
    name: 'ws load',
    cores: LOAD_CORES,
    captureStdout: true,
  });
  await load.waitForLine((l) => l === 'MEASURE-START', 60_000);
  mark.start();
  await load.waitForLine((l) => l === 'MEASURE-END', 60_000);
  mark.stop();
  const line = await load.waitForLine((l) => l.startsWith('RESULT '), 30_000);
  await load.exited;
  return JSON.parse(line.slice('RESULT '.length)) as LoadOutcome;
}
