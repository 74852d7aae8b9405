/**
 * @module bench/lib/results
 * The shape of one run's results (written as JSON under bench/results/) and the machine
 * description that goes with them.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import type { LeakResult } from '../scenarios/leak.ts';
import type { PathGrowth } from '../scenarios/leak-paths.ts';
import type { IdleResult } from '../scenarios/memory.ts';
import type { PeerNote } from '../scenarios/peers.ts';
import type { ProfileResult } from '../scenarios/profile.ts';
import type { StartupResult } from '../scenarios/startup.ts';
import type { SETTINGS } from './env.ts';
import type { Previous } from './previous.ts';
import type { Point } from './stats.ts';

/** What the figures were taken on. */
export interface Machine {
  readonly nproc: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly node: string;
  /** The Node binary every Node process of the run uses (absent in older files). */
  readonly nodeBinary?: string;
  readonly kernel: string;
  readonly os: string;
  readonly wrk: string;
  readonly nginx: string;
}

/** Everything a run produced. */
export interface BenchResults {
  readonly startedAt: string;
  durationSeconds: number;
  readonly machine: Machine;
  /** Older results files lack the settings added since (e.g. `upstreamAnswers`: JSON then). */
  readonly settings: Omit<typeof SETTINGS, 'upstreamAnswers' | 'previous'> &
    Partial<Pick<typeof SETTINGS, 'upstreamAnswers' | 'previous'>>;
  /** HTTP points; group `http` (answers as `settings.upstreamAnswers`), `event-stream`, `ws`, … */
  readonly points: Point[];
  /** Start-up RSS of a fresh proxy with the default configuration (absent in older files). */
  startup?: StartupResult[];
  /** An earlier run's figures for this run's event-stream rows and start-up figures. */
  previous?: Previous;
  readonly idle: IdleResult[];
  leak?: LeakResult;
  leakPaths?: PathGrowth[];
  profiles: ProfileResult[];
  readonly peerNotes: PeerNote[];
  readonly notes: string[];
}

function firstLine(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  return `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n')[0] ?? '';
}

/** Describes this machine. */
export function describeMachine(): Machine {
  const cpuinfo = (() => {
    try {
      return readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return '';
    }
  })();
  const osRelease = (() => {
    try {
      return /^PRETTY_NAME="?([^"\n]+)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '';
    } catch {
      return '';
    }
  })();
  return {
    nproc: Number(firstLine('nproc', [])) || cpus().length,
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    nodeBinary: process.execPath,
    kernel: firstLine('uname', ['-r']),
    os: osRelease,
    wrk: firstLine('wrk', ['-v']).replace(/ \[.*$/, ''),
    nginx: firstLine('nginx', ['-v']).replace(/^nginx version: /, ''),
  };
}
