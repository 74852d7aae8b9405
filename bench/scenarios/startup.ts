/**
 * @module bench/scenarios/startup
 * Start-up memory: a fresh proxy with the default configuration (only what it needs to start and
 * reach the bench's loopback upstream), run by the bench's Node (Node 24 from node_modules under
 * `npm run bench`). Its RSS once it listens and has had a moment to settle, with no request
 * served yet (readiness is a bare TCP connect, not a `/health` request); then after a first
 * `POST /proxy` tools/call, and after a first `/mcp` one too, since each surface may load its
 * own modules. How long it took to listen and what each first request took are kept with it,
 * so lazy loading that moves the cost onto the first request shows. Repeated on a fresh
 * process `SETTINGS.repeats` times, interleaved with the baseline proxy when there is one.
 */
import { SETTINGS } from '../lib/env.ts';
import { expectAnswer, post } from '../lib/mcp-http.ts';
import { peakRssBytes, rssBytes, sleep } from '../lib/procs.ts';
import { startProxy } from '../lib/servers.ts';
import type { RequestSpec } from '../lib/wrk.ts';
import { mcpSpec, proxySpec } from './paths.ts';

/** One fresh proxy's figures. */
export interface StartupRun {
  /** From spawning the process to its port accepting a connection. */
  readonly listenMs: number;
  /** RSS once listening and settled, before any request. */
  readonly startRssBytes: number;
  /** Time to the answer of the first request (`POST /proxy`). */
  readonly firstProxyMs: number;
  /** RSS after that first request, settled. */
  readonly afterProxyRssBytes: number;
  /** Time to the answer of the first `/mcp` request (the process's second request). */
  readonly firstMcpMs: number;
  /** RSS after the first `/mcp` request too, settled. */
  readonly afterMcpRssBytes: number;
  /** The largest RSS the process had at the end (VmHWM): start-up transients included. */
  readonly peakRssBytes: number;
}

/** One proxy's (ours, or the baseline's) repetitions. */
export interface StartupResult {
  readonly proxy: string;
  readonly runs: StartupRun[];
  readonly error?: string;
}

/** How long a figure is left to settle before RSS is read (timers, lazy compilation, GC). */
const SETTLE_MS = 1_000;

/** Measures start-up RSS of our proxy (and the baseline's, if `baselineRoot`). */
export async function measureStartup(
  upstreamUrl: string,
  baselineRoot: string,
  log: (line: string) => void,
): Promise<StartupResult[]> {
  const proxies = [
    { proxy: 'proxy', root: undefined },
    ...(baselineRoot ? [{ proxy: 'proxy (baseline)', root: baselineRoot }] : []),
  ];
  const results = proxies.map((p): StartupResult & { runs: StartupRun[] } => ({ proxy: p.proxy, runs: [] }));
  const errors = new Map<string, string>();
  for (let repeat = 1; repeat <= SETTINGS.repeats; repeat++) {
    for (const [i, p] of proxies.entries()) {
      if (errors.has(p.proxy)) continue;
      try {
        const run = await once(p.proxy, p.root, upstreamUrl);
        results[i]?.runs.push(run);
        log(
          `  start-up ${p.proxy} #${repeat}: listening after ${Math.round(run.listenMs)} ms, ` +
            `RSS ${mib(run.startRssBytes)} → ${mib(run.afterProxyRssBytes)} after POST /proxy ` +
            `(${Math.round(run.firstProxyMs)} ms) → ${mib(run.afterMcpRssBytes)} after /mcp ` +
            `(${Math.round(run.firstMcpMs)} ms), peak ${mib(run.peakRssBytes)}`,
        );
      } catch (error) {
        const message = (error as Error).message.split('\n').slice(0, 3).join(' ');
        errors.set(p.proxy, message);
        log(`  start-up ${p.proxy}: failed: ${message}`);
      }
    }
  }
  return results.map((r) => (errors.has(r.proxy) ? { ...r, error: errors.get(r.proxy) as string } : r));
}

async function once(name: string, root: string | undefined, upstreamUrl: string): Promise<StartupRun> {
  const spawned = performance.now();
  const proxy = await startProxy({
    name: `${name} (start-up)`,
    defaults: true,
    ready: 'port',
    ...(root ? { root } : {}),
  });
  try {
    const listenMs = performance.now() - spawned;
    const settled = async () => {
      await sleep(SETTLE_MS);
      return rssBytes(proxy.proc.pid);
    };
    const startRssBytes = await settled();
    const firstProxyMs = await timed('first POST /proxy', proxySpec(proxy.base, upstreamUrl));
    const afterProxyRssBytes = await settled();
    const firstMcpMs = await timed('first /mcp', mcpSpec(proxy.base, upstreamUrl));
    const afterMcpRssBytes = await settled();
    return {
      listenMs,
      startRssBytes,
      firstProxyMs,
      afterProxyRssBytes,
      firstMcpMs,
      afterMcpRssBytes,
      peakRssBytes: peakRssBytes(proxy.proc.pid),
    };
  } finally {
    await proxy.stop();
  }
}

/** Sends one request of `spec`, checks the echo, returns how long the answer took (ms). */
async function timed(what: string, spec: RequestSpec): Promise<number> {
  const headers = Object.fromEntries(Object.entries(spec.headers).map(([k, v]) => [k.toLowerCase(), v]));
  const sent = performance.now();
  const answer = await post(spec.url, headers, spec.body);
  const ms = performance.now() - sent;
  expectAnswer(what, answer, 'Echo: bench');
  return ms;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
