/**
 * @module bench/startup-rss
 * Prints the proxy's start-up RSS (issue #16 item 2) without the rest of the bench: medians of
 * `BENCH_REPEATS` (default 3) fresh proxies, after start and after the first requests. With
 * `BENCH_BASELINE_ROOT` set, that checkout's proxy is measured too, interleaved.
 *
 * Usage: `node bench/startup-rss.ts` (Node 24: `npm exec -- node bench/startup-rss.ts`).
 */
import { SETTINGS } from './lib/env.ts';
import { stopAll } from './lib/procs.ts';
import { startFastUpstream } from './lib/servers.ts';
import { measureStartupRss, type StartupRss } from './lib/startup-rss.ts';

const mib = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MiB`;
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
};

const upstream = await startFastUpstream();
try {
  const roots: Array<[string, string | undefined]> = [['this checkout', undefined]];
  if (SETTINGS.baselineRoot !== '')
    roots.push([`baseline (${SETTINGS.baselineRoot})`, SETTINGS.baselineRoot]);
  const samples = new Map<string, StartupRss[]>(roots.map(([name]) => [name, []]));
  for (let i = 0; i < Math.max(1, SETTINGS.repeats); i++) {
    for (const [name, root] of roots) {
      const sample = await measureStartupRss({
        upstreamUrl: `${upstream.base}/mcp`,
        ...(root ? { root } : {}),
      });
      samples.get(name)?.push(sample);
    }
  }
  for (const [name, list] of samples) {
    const start = list.map((s) => s.afterStart);
    const first = list.map((s) => s.afterFirstRequest);
    console.log(
      `${name}: RSS after start ${mib(median(start))} (${start.map(mib).join(', ')}); ` +
        `after first request ${mib(median(first))} (${first.map(mib).join(', ')})`,
    );
  }
} finally {
  await upstream.stop();
  await stopAll();
}
