/**
 * @module bench/scenarios/leak-paths
 * Optional (`BENCH_ONLY=leakpaths`): which path grows RSS. Each path gets a fresh proxy, 30 s
 * of load at concurrency 64, then 35 s idle (longer than the 30 s upstream timeout, so every
 * per-request timer has fired); RSS is sampled every 5 s throughout. A path whose RSS keeps
 * rising under load and does not settle when idle retains something per request.
 */
import { join } from 'node:path';
import { LOAD_CORES, NODE, ORIGIN, PROXY_TOKEN, ROOT } from '../lib/env.ts';
import { rssBytes, sleep, startPinned } from '../lib/procs.ts';
import { type Server, startProxy } from '../lib/servers.ts';
import { runWrk, writeScript } from '../lib/wrk.ts';
import { checkSpec, mcpSpec, proxySpec } from './paths.ts';

/** RSS over time for one path. */
export interface PathGrowth {
  readonly path: string;
  readonly samples: Array<{
    readonly second: number;
    readonly requests: number;
    readonly rssBytes: number;
    readonly idle: boolean;
  }>;
}

const LOAD_CHUNKS = 6;
const IDLE_CHUNKS = 7;
const CHUNK_SECONDS = 5;

/** Measures RSS growth per path. */
export async function leakPaths(
  upstream: Server,
  dir: string,
  log: (line: string) => void,
): Promise<PathGrowth[]> {
  const results: PathGrowth[] = [];
  const upstreamUrl = `${upstream.base}/mcp`;
  for (const path of ['POST /proxy', '/mcp', 'WS /ws'] as const) {
    const proxy = await startProxy({ name: `proxy (growth ${path})` });
    const samples: PathGrowth['samples'] = [];
    const started = Date.now();
    const sample = (requests: number, idle: boolean) => {
      samples.push({
        second: Math.round((Date.now() - started) / 1000),
        requests,
        rssBytes: rssBytes(proxy.proc.pid),
        idle,
      });
      const last = samples.at(-1) as PathGrowth['samples'][number];
      log(
        `  ${path}: ${last.second}s ${idle ? 'idle' : 'load'}, ${requests} requests, RSS ${(last.rssBytes / 2 ** 20).toFixed(0)} MiB`,
      );
    };
    try {
      let requests = 0;
      sample(0, true);
      if (path === 'WS /ws') {
        requests = await wsChunks(proxy, upstreamUrl, (n) => sample(n, false));
      } else {
        const spec = path === '/mcp' ? mcpSpec(proxy.base, upstreamUrl) : proxySpec(proxy.base, upstreamUrl);
        await checkSpec(`growth ${path}`, spec);
        const script = writeScript(dir, `growth-${path.replace(/\W+/g, '')}`, spec);
        for (let i = 0; i < LOAD_CHUNKS; i++) {
          requests += (await runWrk(script, spec.url, 64, CHUNK_SECONDS)).requests;
          sample(requests, false);
        }
      }
      for (let i = 0; i < IDLE_CHUNKS; i++) {
        await sleep(CHUNK_SECONDS * 1000);
        sample(requests, true);
      }
    } finally {
      await proxy.stop();
    }
    results.push({ path, samples });
  }
  return results;
}

/** WS load in chunks: 64 sockets × 1 in flight, one load process per chunk. */
async function wsChunks(
  proxy: Server,
  upstreamUrl: string,
  onChunk: (requests: number) => void,
): Promise<number> {
  const url = `ws://127.0.0.1:${proxy.port}/ws?mcp_server_url=${encodeURIComponent(upstreamUrl)}`;
  let requests = 0;
  for (let i = 0; i < LOAD_CHUNKS; i++) {
    const options = {
      url,
      protocols: ['mcp', `proxy-token.${PROXY_TOKEN}`],
      origin: ORIGIN,
      sockets: 64,
      inflight: 1,
      warmupSeconds: 0,
      seconds: CHUNK_SECONDS,
    };
    const load = startPinned(NODE, [join(ROOT, 'bench/clients/ws-load.ts'), JSON.stringify(options)], {
      name: 'ws load',
      cores: LOAD_CORES,
      captureStdout: true,
    });
    const line = await load.waitForLine((l) => l.startsWith('RESULT '), 60_000);
    await load.exited;
    requests += (JSON.parse(line.slice('RESULT '.length)) as { requests: number }).requests;
    onChunk(requests);
  }
  return requests;
}
