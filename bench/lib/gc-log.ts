/**
 * @module bench/lib/gc-log
 * Preloaded into a proxy by `bench/gc-counts.ts` (`--import`): records every garbage collection
 * (start, kind, duration) with a `PerformanceObserver` and writes them as JSON to the file named
 * by `MCP_PROXY_BENCH_GC_LOG` when the process exits.
 */
import { writeFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';

const file = process.env.MCP_PROXY_BENCH_GC_LOG;
const entries: Array<[number, number, number]> = [];
if (file) {
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind ?? 0;
      entries.push([Math.round(entry.startTime), kind, entry.duration]);
    }
  }).observe({ entryTypes: ['gc'] });
  process.on('exit', () => writeFileSync(file, JSON.stringify(entries)));
}
