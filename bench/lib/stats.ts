/**
 * @module bench/lib/stats
 * The figures a point is reported with: every repetition kept, summarised as the median with
 * min and max; CPU per request from the server's /proc CPU time around the measured window.
 */
import { SERVER_CORES } from './env.ts';
import { coreBusySeconds, cpuSecondsOf, systemSecondsOf } from './procs.ts';

const SERVER_CORE_LIST = SERVER_CORES.split(',').map(Number);

/** One measured repetition. */
export interface Run {
  /** Requests (or messages) per second. */
  readonly rps: number;
  readonly requests: number;
  readonly errors: number;
  /** Latency percentiles, µs. */
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  /** CPU µs per request of the process(es) under test (proxy, nginx, peer). */
  readonly cpuUs: number | undefined;
  /** Of `cpuUs`, the part spent in the kernel (system time). */
  readonly cpuSysUs: number | undefined;
  /** CPU µs per request of the upstream, for context. */
  readonly upstreamCpuUs: number | undefined;
  /**
   * Busy time on the server core not accounted for by the server and upstream measured, in % of
   * the run: other tenants of a shared machine (noise), or children not listed.
   */
  readonly foreignPct: number;
}

/** One configuration, all its repetitions and their summary. */
export interface Point {
  readonly group: string;
  readonly path: string;
  readonly concurrency: number;
  readonly note?: string;
  readonly runs: Run[];
}

/** Median/min/max of one figure. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** Median, min and max of a list (NaN for an empty list). */
export function spread(values: readonly number[]): Spread {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
  const mid = sorted.length >> 1;
  const median =
    sorted.length % 2 === 1
      ? (sorted[mid] as number)
      : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted[sorted.length - 1] as number };
}

/** The median of one field over a point's runs. */
export function med(point: Point | undefined, field: keyof Omit<Run, never>): number {
  if (!point) return Number.NaN;
  return spread(point.runs.map((r) => r[field] ?? Number.NaN)).median;
}

/** The result of a load function, before CPU is attached. */
export interface LoadOutcome {
  readonly rps: number;
  readonly requests: number;
  readonly errors: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
}

/** Runs `load` and attaches the CPU per request of `server` and `upstream` pids. */
export async function measured(
  server: (() => number[]) | undefined,
  upstream: (() => number[]) | undefined,
  load: (mark: { start(): void; stop(): void }) => Promise<LoadOutcome>,
): Promise<Run> {
  const serverPids = server?.() ?? [];
  const upstreamPids = upstream?.() ?? [];
  type Sample = { server: number; serverSys: number; upstream: number; core: number; at: number };
  const sample = (): Sample => ({
    server: cpuSecondsOf(serverPids),
    serverSys: systemSecondsOf(serverPids),
    upstream: cpuSecondsOf(upstreamPids),
    core: coreBusySeconds(SERVER_CORE_LIST),
    at: performance.now(),
  });
  let first = sample();
  let last: Sample | undefined;
  const mark = {
    start() {
      first = sample();
    },
    stop() {
      last = sample();
    },
  };
  const outcome = await load(mark);
  const end = last ?? sample();
  const perRequest = (seconds: number) =>
    outcome.requests > 0 ? (seconds * 1e6) / outcome.requests : Number.NaN;
  const ours = end.server - first.server + (end.upstream - first.upstream);
  const wall = (end.at - first.at) / 1000;
  return {
    ...outcome,
    cpuUs: serverPids.length > 0 ? perRequest(end.server - first.server) : undefined,
    cpuSysUs: serverPids.length > 0 ? perRequest(end.serverSys - first.serverSys) : undefined,
    upstreamCpuUs: upstreamPids.length > 0 ? perRequest(end.upstream - first.upstream) : undefined,
    foreignPct:
      wall > 0 ? Math.max(0, (100 * (end.core - first.core - ours)) / (wall * SERVER_CORE_LIST.length)) : 0,
  };
}
