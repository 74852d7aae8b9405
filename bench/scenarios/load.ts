/**
 * @module bench/scenarios/load
 * The one way HTTP points are measured: for each repetition, every configuration in turn
 * (interleaved, so drift hits all of them alike), each with an unmeasured warm-up and then a
 * measured wrk run, with the CPU time of the server under test read around it.
 */
import { SETTINGS } from '../lib/env.ts';
import { measured, type Point } from '../lib/stats.ts';
import { type RequestSpec, runWrk, writeScript } from '../lib/wrk.ts';

/** One configuration to measure. */
export interface LoadConfig {
  readonly group: string;
  readonly path: string;
  readonly concurrency: number;
  readonly spec: RequestSpec;
  /** Pids whose CPU is "the server's" (proxy, nginx, peer); none for direct. */
  readonly serverPids?: (() => number[]) | undefined;
  readonly upstreamPids?: (() => number[]) | undefined;
  readonly note?: string;
}

/** Measures every configuration `SETTINGS.repeats` times, interleaved. */
export async function measurePoints(
  configs: readonly LoadConfig[],
  dir: string,
  log: (line: string) => void,
): Promise<Point[]> {
  const points = configs.map(
    (c): Point => ({
      group: c.group,
      path: c.path,
      concurrency: c.concurrency,
      ...(c.note ? { note: c.note } : {}),
      runs: [],
    }),
  );
  const scripts = configs.map((c, i) =>
    writeScript(dir, `${c.group}-${c.path}-${i}`.replace(/\W+/g, '_'), c.spec),
  );
  for (let repeat = 1; repeat <= SETTINGS.repeats; repeat++) {
    for (const [i, config] of configs.entries()) {
      const script = scripts[i] as string;
      const { url } = config.spec;
      // Later repetitions find the processes warm: only new connections, included in the run.
      if (SETTINGS.warmupSeconds > 0 && repeat === 1) {
        await runWrk(script, url, config.concurrency, SETTINGS.warmupSeconds);
      }
      const run = await measured(config.serverPids, config.upstreamPids, () =>
        runWrk(script, url, config.concurrency, SETTINGS.seconds),
      );
      (points[i] as Point).runs.push(run);
      log(
        `  ${config.group} ${config.path} c=${config.concurrency} #${repeat}: ${Math.round(run.rps)} req/s, ` +
          `p50 ${(run.p50 / 1000).toFixed(2)} ms, p99 ${(run.p99 / 1000).toFixed(2)} ms` +
          (run.cpuUs === undefined ? '' : `, ${Math.round(run.cpuUs)} µs CPU/req`) +
          (run.errors > 0 ? `, ${run.errors} ERRORS` : ''),
      );
    }
  }
  return points;
}
