/**
 * @module bench/scenarios/leak
 * Leak check: a fresh proxy serves `POST /proxy` and `/mcp` in alternating timed chunks at
 * concurrency 64 until the request count is reached; RSS is sampled after the first
 * `SETTINGS.leakBaseline` requests and after every chunk. Growth after the baseline, not the
 * absolute size, is the figure. (wrk cannot stop at a request count, so chunks are timed and
 * the requests actually served are counted.)
 */
import { fileURLToPath } from 'node:url';
import { SETTINGS } from '../lib/env.ts';
import { rssBytes } from '../lib/procs.ts';
import { type Server, startProxy } from '../lib/servers.ts';
import { runWrk, writeScript } from '../lib/wrk.ts';
import { checkSpec, mcpSpec, proxySpec } from './paths.ts';

/** RSS after a number of requests. */
export interface LeakSample {
  readonly requests: number;
  readonly rssBytes: number;
  /** Live heap after a full GC (what the proxy still holds), when the probe answered. */
  readonly heapBytes?: number | undefined;
}

/** The leak check's outcome. */
export interface LeakResult {
  readonly requested: number;
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  /** The first sample is the fresh proxy; the second the baseline. */
  readonly samples: LeakSample[];
  /** RSS at the end minus RSS at the baseline. */
  readonly growthBytes: number;
  /** Why fewer than the configured requests were sent, if so. */
  readonly scaledNote?: string;
}

const CHUNK_SECONDS = 5;

/**
 * Runs about `total` requests through a fresh proxy in front of `upstream`, or fewer if the
 * `deadline` (epoch ms) comes first — but always the baseline and two chunks after it.
 */
export async function leakCheck(
  upstream: Server,
  total: number,
  deadline: number,
  dir: string,
  log: (line: string) => void,
): Promise<LeakResult> {
  const proxy = await startProxy({
    name: 'proxy (leak check)',
    nodeFlags: ['--expose-gc', '--import', fileURLToPath(new URL('../lib/heap-probe.ts', import.meta.url))],
  });
  /** RSS now, and the live heap after a forced GC (read back from the probe's stderr line). */
  let signals = 0;
  const sample = async (count: number): Promise<LeakSample> => {
    const expected = `mcp-proxy-bench-heap ${++signals} `;
    process.kill(proxy.proc.pid, 'SIGUSR2');
    let heapBytes: number | undefined;
    for (let waited = 0; waited < 3_000 && heapBytes === undefined; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const line = proxy.proc
        .stderrTail()
        .split('\n')
        .find((l) => l.startsWith(expected));
      if (line) heapBytes = Number(line.slice(expected.length));
    }
    return { requests: count, rssBytes: rssBytes(proxy.proc.pid), heapBytes };
  };
  const upstreamUrl = `${upstream.base}/mcp`;
  const specs = [proxySpec(proxy.base, upstreamUrl), mcpSpec(proxy.base, upstreamUrl)] as const;
  await checkSpec('leak /proxy', specs[0]);
  await checkSpec('leak /mcp', specs[1]);
  const scripts = specs.map((spec, i) => writeScript(dir, `leak-${i}`, spec));
  const samples: LeakSample[] = [await sample(0)];
  let requests = 0;
  let errors = 0;
  let baselineTaken = false;
  let chunksAfterBaseline = 0;
  const started = Date.now();
  const outOfTime = () => chunksAfterBaseline >= 2 && Date.now() + CHUNK_SECONDS * 1000 > deadline;
  try {
    for (let chunk = 0; requests < total && !outOfTime(); chunk++) {
      const spec = specs[chunk % 2] as (typeof specs)[number];
      const result = await runWrk(scripts[chunk % 2] as string, spec.url, 64, CHUNK_SECONDS);
      requests += result.requests;
      errors += result.errors;
      if (result.requests === 0) throw new Error('the proxy stopped answering during the leak check');
      if (!baselineTaken && requests < SETTINGS.leakBaseline) continue;
      if (baselineTaken) chunksAfterBaseline++;
      const last = samples.at(-1) as LeakSample;
      // A sample at the baseline, then about every 100k requests, and at the end.
      if (!baselineTaken || requests - last.requests >= 100_000 || requests >= total || outOfTime()) {
        baselineTaken = true;
        const taken = await sample(requests);
        samples.push(taken);
        const heap =
          taken.heapBytes === undefined
            ? ''
            : `, heap after GC ${(taken.heapBytes / 2 ** 20).toFixed(1)} MiB`;
        log(`  leak check: ${requests} requests, RSS ${(taken.rssBytes / 2 ** 20).toFixed(1)} MiB${heap}`);
      }
    }
  } finally {
    await proxy.stop();
  }
  const baseline = samples[1]?.rssBytes ?? 0;
  const end = samples.at(-1)?.rssBytes ?? 0;
  const scaledNote =
    requests < total
      ? `Scaled down from ${total.toLocaleString('en')} requests to stay within the ${SETTINGS.budgetSeconds} s budget (BENCH_BUDGET_SECONDS to change).`
      : undefined;
  return {
    requested: total,
    requests,
    errors,
    seconds: (Date.now() - started) / 1000,
    samples,
    growthBytes: end - baseline,
    ...(scaledNote ? { scaledNote } : {}),
  };
}
