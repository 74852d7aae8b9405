/**
 * @module bench/gc-counts
 * How often a fresh proxy collects garbage under load (issue #16: the c=1 p99): for each
 * repetition and each checkout (this one, and `BENCH_BASELINE_ROOT` when set, interleaved), a
 * fresh proxy in front of the fast upstream serves `POST /proxy` at each `BENCH_CONCURRENCY` for
 * `BENCH_SECONDS`; it prints its RSS after start and after the load, and the count, total and
 * longest duration of its scavenges and mark-compacts (start-up's own included). E.g. with a
 * baseline checkout whose `main.ts` does not call `releaseStartupGarbage()`:
 *
 *   BENCH_BASELINE_ROOT=/tmp/no-compaction BENCH_CONCURRENCY=1 BENCH_SECONDS=8 BENCH_REPEATS=2 \
 *     npm exec -- node bench/gc-counts.ts
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants } from 'node:perf_hooks';
import { BENCH, SETTINGS } from './lib/env.ts';
import { rssBytes, sleep, stopAll } from './lib/procs.ts';
import { startFastUpstream, startProxy } from './lib/servers.ts';
import { runWrk, writeScript } from './lib/wrk.ts';
import { proxySpec } from './scenarios/paths.ts';

const KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenges',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compacts',
};
const mib = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MiB`;

const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-gc-'));
const upstream = await startFastUpstream();
try {
  const roots: Array<[string, string | undefined]> = [['this checkout', undefined]];
  if (SETTINGS.baselineRoot !== '')
    roots.push([`baseline (${SETTINGS.baselineRoot})`, SETTINGS.baselineRoot]);
  for (let repeat = 1; repeat <= Math.max(1, SETTINGS.repeats); repeat++) {
    for (const concurrency of SETTINGS.concurrency) {
      for (const [name, root] of roots) {
        const log = join(dir, `gc-${repeat}-${concurrency}-${root ? 'baseline' : 'this'}.json`);
        const proxy = await startProxy({
          ...(root ? { root } : {}),
          name: `proxy (${name})`,
          nodeFlags: ['--import', join(BENCH, 'lib/gc-log.ts')],
          env: { MCP_PROXY_BENCH_GC_LOG: log },
        });
        await sleep(1_000);
        const atStart = rssBytes(proxy.proc.pid);
        const spec = proxySpec(proxy.base, `${upstream.base}/mcp`);
        const result = await runWrk(
          writeScript(dir, 'gc-counts', spec),
          spec.url,
          concurrency,
          SETTINGS.seconds,
        );
        const afterLoad = rssBytes(proxy.proc.pid);
        await proxy.proc.stop(15_000);
        const entries = JSON.parse(readFileSync(log, 'utf8')) as Array<[number, number, number]>;
        const counts = Object.entries(KINDS).map(([kind, label]) => {
          const durations = entries.filter((e) => e[1] === Number(kind)).map((e) => e[2]);
          const total = durations.reduce((a, b) => a + b, 0);
          return `${label} ${durations.length} (${total.toFixed(0)} ms, longest ${Math.max(0, ...durations).toFixed(1)})`;
        });
        console.log(
          `#${repeat} c=${concurrency} ${name}: ${Math.round(result.rps)} req/s, p99 ${(result.p99 / 1000).toFixed(2)} ms; ` +
            `RSS ${mib(atStart)} -> ${mib(afterLoad)}; ${counts.join('; ')}`,
        );
      }
    }
  }
} finally {
  await upstream.stop();
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
