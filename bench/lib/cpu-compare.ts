/**
 * @module bench/lib/cpu-compare
 * The proxy's CPU time per request on POST /proxy and /mcp against the fast upstream, for several
 * proxy variants side by side (the status page's and tracing's cost, issue 21). Rounds are
 * interleaved so drift on a shared machine hits every variant alike; medians are printed as a
 * Markdown table. Prints figures, asserts nothing.
 */
import { Pool } from 'undici';
import { mcpSpec, proxySpec } from '../scenarios/paths.ts';
import { cpuSecondsOf } from './procs.ts';
import type { Server } from './servers.ts';

const CONCURRENCY = 16;
const WARM_UP_REQUESTS = 1_000;
const PATHS = ['proxy', 'mcp'] as const;

/** One proxy to measure, with the name its rows carry. */
export interface CpuVariant {
  readonly name: string;
  readonly proxy: Server;
}

/** How many requests a round sends per path and variant, and how many rounds. */
export interface CpuRounds {
  readonly requests: number;
  readonly rounds: number;
}

/** Sends `count` requests at {@link CONCURRENCY}; returns the proxy's CPU µs per request. */
async function measure(
  proxy: Server,
  upstreamUrl: string,
  path: 'proxy' | 'mcp',
  count: number,
): Promise<number> {
  const spec = path === 'proxy' ? proxySpec(proxy.base, upstreamUrl) : mcpSpec(proxy.base, upstreamUrl);
  const pool = new Pool(proxy.base, { connections: CONCURRENCY });
  const url = new URL(spec.url);
  const before = cpuSecondsOf(proxy.pids());
  let left = count;
  const worker = async () => {
    while (left-- > 0) {
      const { statusCode, body } = await pool.request({
        path: url.pathname,
        method: 'POST',
        headers: spec.headers,
        body: spec.body,
      });
      await body.text();
      if (statusCode !== 200) throw new Error(`${path}: status ${statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const cpu = cpuSecondsOf(proxy.pids()) - before;
  await pool.close();
  return (cpu / count) * 1e6;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

/** Warms every variant up, runs the interleaved rounds and prints the table of medians. */
export async function compareCpu(
  variants: readonly CpuVariant[],
  upstreamUrl: string,
  { requests, rounds }: CpuRounds,
): Promise<void> {
  for (const { proxy } of variants)
    for (const path of PATHS) await measure(proxy, upstreamUrl, path, WARM_UP_REQUESTS);
  const figures = new Map<string, number[]>();
  for (let round = 0; round < rounds; round++)
    for (const path of PATHS)
      for (const { name, proxy } of variants) {
        const key = `${path}\t${name}`;
        figures.set(key, [...(figures.get(key) ?? []), await measure(proxy, upstreamUrl, path, requests)]);
      }
  process.stdout.write(
    `| path | variant | CPU µs / request (median of ${rounds} × ${requests}) | rounds |\n|---|---|---|---|\n`,
  );
  for (const [key, values] of figures) {
    const [path, name] = key.split('\t');
    const label = path === 'proxy' ? 'POST /proxy' : '/mcp';
    process.stdout.write(
      `| ${label} | ${name} | ${median(values).toFixed(0)} | ${values.map((v) => v.toFixed(0)).join(', ')} |\n`,
    );
  }
}
