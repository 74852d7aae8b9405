/**
 * @module bench/lib/targets
 * The performance targets of issues #10 and #16, judged against a run's figures. They are
 * reported, never asserted: a missed target is a finding, not a failed run.
 */
import type { BenchResults } from './results.ts';
import { med, type Point, spread } from './stats.ts';

/** One target and how the run did against it. */
export interface TargetVerdict {
  readonly target: string;
  readonly figure: string;
  /** undefined when the run has no figure for it. */
  readonly met: boolean | undefined;
}

/** Finds a point by group, path and concurrency. */
export function findPoint(
  points: readonly Point[],
  group: string,
  path: string,
  c: number,
): Point | undefined {
  return points.find((p) => p.group === group && p.path === path && p.concurrency === c);
}

const us = (v: number) => (Number.isFinite(v) ? `${Math.round(v)} µs` : 'n/a');
const plus = (v: number) =>
  Number.isFinite(v) ? `${v >= 0 ? '+' : '−'}${Math.abs(Math.round(v))} µs` : 'n/a';
const pct = (v: number) => (Number.isFinite(v) ? `${Math.round(v * 100)}%` : 'n/a');
const judge = (ok: boolean, ...figures: number[]) => (figures.every(Number.isFinite) ? ok : undefined);

/** Leak tolerance: RSS wobbles by a few MiB with GC heap sizing; more than this after the baseline is growth. */
export const LEAK_TOLERANCE_BYTES = 5 * 2 ** 20;

/** Judges every target. */
export function judgeTargets(results: BenchResults): TargetVerdict[] {
  const { points } = results;
  const http = (path: string, c: number) => findPoint(points, 'http', path, c);
  const verdicts: TargetVerdict[] = [];
  const nginxCpu = med(http('nginx', 64), 'cpuUs');
  for (const path of ['POST /proxy', '/mcp']) {
    const cpu = med(http(path, 64), 'cpuUs');
    verdicts.push({
      target: `${path}: proxy CPU per request ≤ 200 µs (c=64), within 1.6× of nginx`,
      figure: `${us(cpu)} (nginx ${us(nginxCpu)}, ${(cpu / nginxCpu).toFixed(2)}×)`,
      met: judge(cpu <= 200 && cpu <= 1.6 * nginxCpu, cpu, nginxCpu),
    });
  }
  const nginxRps = med(http('nginx', 64), 'rps');
  for (const path of ['POST /proxy', '/mcp']) {
    const ratio = med(http(path, 64), 'rps') / nginxRps;
    verdicts.push({
      target: `${path}: throughput ≥ 70% of nginx at c=64`,
      figure: pct(ratio),
      met: judge(ratio >= 0.7, ratio),
    });
  }
  for (const path of ['POST /proxy', '/mcp']) {
    const d50 = med(http(path, 1), 'p50') - med(http('direct', 1), 'p50');
    const d99 = med(http(path, 1), 'p99') - med(http('direct', 1), 'p99');
    verdicts.push({
      target: `${path}: added latency at c=1 ≤ 0.3 ms p50, ≤ 1.5 ms p99`,
      figure: `${plus(d50)} p50, ${plus(d99)} p99`,
      met: judge(d50 <= 300 && d99 <= 1500, d50, d99),
    });
  }
  for (const group of ['peers-stdio', 'peers-http']) {
    const ours = points.filter((p) => p.group === group && p.path.startsWith('mcp-proxy (ours)'));
    for (const peer of points.filter((p) => p.group === group && !p.path.startsWith('mcp-proxy (ours)'))) {
      if (peer.concurrency !== Math.max(...ours.map((p) => p.concurrency))) continue;
      const mine = ours.find((p) => p.concurrency === peer.concurrency);
      const ratio = med(mine, 'rps') / med(peer, 'rps');
      verdicts.push({
        target: `≥ 5× the throughput of ${peer.path} (c=${peer.concurrency}, ${group === 'peers-stdio' ? 'stdio server' : 'HTTP server'})`,
        figure: `${Number.isFinite(ratio) ? ratio.toFixed(2) : 'n/a'}×`,
        met: judge(ratio >= 5, ratio),
      });
    }
  }
  for (const path of ['POST /proxy', '/mcp']) {
    const point = findPoint(points, 'event-stream', path, 64);
    if (!point) continue;
    const cpu = med(point, 'cpuUs');
    verdicts.push({
      target: `${path}, event-stream answers: proxy CPU per request ≤ 200 µs (c=64)`,
      figure: us(cpu),
      met: judge(cpu <= 200, cpu),
    });
  }
  const startup = results.startup?.find((s) => s.proxy === 'proxy');
  if (startup) {
    const rss = spread(startup.runs.map((r) => r.startRssBytes)).median;
    verdicts.push({
      target: '≤ 80 MiB RSS after start (default configuration, no request yet)',
      figure: Number.isFinite(rss) ? `${(rss / 2 ** 20).toFixed(1)} MiB` : 'n/a',
      met: judge(rss <= 80 * 2 ** 20, rss),
    });
  }
  const ws = results.idle.find((r) => r.mode === 'ws');
  const largest = ws?.samples.at(-1);
  verdicts.push({
    target: `≤ 20 KiB RSS per idle WebSocket at ${largest?.count ?? 10_000} sockets`,
    figure: largest ? `${(largest.perConnectionBytes / 1024).toFixed(1)} KiB` : 'n/a',
    met: largest ? largest.perConnectionBytes <= 20 * 1024 : undefined,
  });
  const leak = results.leak;
  const after = leak ? leak.requests - (leak.samples[1]?.requests ?? 0) : 0;
  verdicts.push({
    target: `no RSS growth after the first ${results.settings.leakBaseline.toLocaleString('en')} requests`,
    figure: leak
      ? `+${(leak.growthBytes / 2 ** 20).toFixed(1)} MiB over the next ${after.toLocaleString('en')} requests ` +
        `(${Math.round(leak.growthBytes / Math.max(1, after))} B/request; noise allowance ${LEAK_TOLERANCE_BYTES / 2 ** 20} MiB)` +
        heapNote(leak.samples)
      : 'n/a',
    met: leak ? leak.growthBytes <= LEAK_TOLERANCE_BYTES : undefined,
  });
  return verdicts;
}

/** The live heap after a full GC at the baseline and at the end: whether RSS growth is held memory. */
function heapNote(samples: readonly { readonly heapBytes?: number | undefined }[]): string {
  const start = samples[1]?.heapBytes;
  const end = samples.at(-1)?.heapBytes;
  if (start === undefined || end === undefined) return '';
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  return `; live heap after a full GC ${mib(start)} → ${mib(end)} MiB`;
}
