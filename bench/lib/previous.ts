/**
 * @module bench/lib/previous
 * Figures of earlier runs to compare this run's event-stream and start-up figures with, read
 * from the results files the bench keeps in bench/results/ (or from the one file named by
 * BENCH_PREVIOUS). Runs often measure only some sections, so each figure comes from the newest
 * earlier file that has it; the report names the files used.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AnswerMode } from './env.ts';
import type { BenchResults } from './results.ts';
import { med, type Point, spread } from './stats.ts';

/** One HTTP point of an earlier run, summarised by its medians. */
export interface PreviousPoint {
  readonly answers: AnswerMode;
  readonly path: string;
  readonly concurrency: number;
  /** The earlier run's `startedAt`. */
  readonly from: string;
  readonly cpuUs: number;
  readonly upstreamCpuUs: number;
  readonly p50: number;
  readonly p99: number;
  readonly rps: number;
}

/** One proxy's start-up figures of an earlier run (medians). */
export interface PreviousStartup {
  readonly proxy: string;
  readonly from: string;
  readonly startRssBytes: number;
  readonly afterProxyRssBytes: number;
  readonly afterMcpRssBytes: number;
}

/** What earlier runs had for the figures this run compares. */
export interface Previous {
  readonly points: PreviousPoint[];
  readonly startup: PreviousStartup[];
}

/**
 * How the fast upstream answered for a point: the event-stream section always with an event
 * stream, the http section as that run's BENCH_UPSTREAM_ANSWERS said (JSON before the knob
 * existed); undefined for the other sections.
 */
export function answersOf(results: BenchResults, point: Point): AnswerMode | undefined {
  if (point.group === 'event-stream') return 'event-stream';
  if (point.group === 'http') return results.settings.upstreamAnswers ?? 'json';
  return undefined;
}

/** The medians of an earlier run for each event-stream row (both answer modes) and start-up figure. */
export function findPrevious(current: BenchResults, dir: string, explicitFile: string): Previous {
  const wantedPoints = current.points
    .filter((p) => p.group === 'event-stream')
    .flatMap((p) =>
      (['event-stream', 'json'] as const).map((answers) => ({
        answers,
        path: p.path,
        concurrency: p.concurrency,
      })),
    );
  const wantedStartup = (current.startup ?? []).map((s) => s.proxy);
  const points: PreviousPoint[] = [];
  const startup: PreviousStartup[] = [];
  for (const earlier of earlierRuns(current, dir, explicitFile)) {
    for (const want of wantedPoints) {
      if (points.some((p) => same(p, want))) continue;
      const point = earlier.points.find(
        (p) =>
          answersOf(earlier, p) === want.answers &&
          p.path === want.path &&
          p.concurrency === want.concurrency &&
          p.runs.length > 0,
      );
      if (!point) continue;
      points.push({
        ...want,
        from: earlier.startedAt,
        cpuUs: med(point, 'cpuUs'),
        upstreamCpuUs: med(point, 'upstreamCpuUs'),
        p50: med(point, 'p50'),
        p99: med(point, 'p99'),
        rps: med(point, 'rps'),
      });
    }
    for (const proxy of wantedStartup) {
      if (startup.some((s) => s.proxy === proxy)) continue;
      const found = earlier.startup?.find((s) => s.proxy === proxy && s.runs.length > 0);
      if (!found) continue;
      const median = (field: 'startRssBytes' | 'afterProxyRssBytes' | 'afterMcpRssBytes') =>
        spread(found.runs.map((r) => r[field])).median;
      startup.push({
        proxy,
        from: earlier.startedAt,
        startRssBytes: median('startRssBytes'),
        afterProxyRssBytes: median('afterProxyRssBytes'),
        afterMcpRssBytes: median('afterMcpRssBytes'),
      });
    }
    if (points.length === wantedPoints.length && startup.length === wantedStartup.length) break;
  }
  return { points, startup };
}

/** Finds a previous figure for one row. */
export function previousPoint(
  previous: Previous | undefined,
  answers: AnswerMode,
  path: string,
  concurrency: number,
): PreviousPoint | undefined {
  return previous?.points.find((p) => same(p, { answers, path, concurrency }));
}

function same(
  a: { answers: AnswerMode; path: string; concurrency: number },
  b: { answers: AnswerMode; path: string; concurrency: number },
): boolean {
  return a.answers === b.answers && a.path === b.path && a.concurrency === b.concurrency;
}

/** Earlier runs, newest first; unreadable files are skipped. */
function* earlierRuns(current: BenchResults, dir: string, explicitFile: string): Generator<BenchResults> {
  const files = explicitFile
    ? [explicitFile]
    : safeList(dir)
        .filter((f) => /^\d{4}-\d\d-\d\dT[\d-]+Z\.json$/.test(f))
        .sort()
        .reverse()
        .map((f) => join(dir, f));
  for (const file of files) {
    try {
      const earlier = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
      if (!explicitFile && earlier.startedAt >= current.startedAt) continue;
      if (!Array.isArray(earlier.points)) continue;
      yield earlier;
    } catch {
      // not a results file this bench can read
    }
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
