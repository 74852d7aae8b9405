/**
 * @module bench/lib/procs
 * Child processes for the benchmarks: started pinned to a core with `taskset`, with the file
 * descriptor limit raised to the hard limit, their CPU time and RSS read from `/proc`, and all
 * of them stopped (by pid) when the run ends, however it ends.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { createInterface } from 'node:readline';

/** Kernel clock ticks per second, the unit of utime/stime in /proc/<pid>/stat. */
export const CLOCK_TICKS =
  Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** Options for {@link startPinned}. */
export interface StartOptions {
  /** Name for messages. */
  readonly name: string;
  /** `taskset -c` core list, e.g. "0". */
  readonly cores: string;
  readonly env?: Record<string, string | undefined>;
  /** Start from an empty environment (PATH and HOME kept) instead of this process's. */
  readonly cleanEnv?: boolean;
  readonly cwd?: string;
  /** Keep stdout readable through {@link Proc.lines}; otherwise it goes to /dev/null. */
  readonly captureStdout?: boolean;
  /** Keep stdin open for commands (`Proc.send`). */
  readonly stdin?: boolean;
}

/** A started child process. */
export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves with the first stdout line matching `test` (captureStdout only). */
  waitForLine(test: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Writes one line to the child's stdin. */
  send(line: string): void;
  /** The tail of stderr, for error messages. */
  stderrTail(): string;
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
  readonly exited: Promise<number | null>;
}

const running = new Set<Proc>();

/** Starts `command args` pinned to `cores`, with `ulimit -n` raised to the hard limit. */
export function startPinned(command: string, args: readonly string[], options: StartOptions): Proc {
  // `exec` keeps the pid: bash becomes taskset becomes the command, so pid is the real process.
  const child = spawn(
    'bash',
    [
      '-c',
      'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec taskset -c "$0" "$@"',
      options.cores,
      command,
      ...args,
    ],
    {
      env: {
        ...(options.cleanEnv ? { PATH: process.env.PATH, HOME: process.env.HOME } : process.env),
        ...options.env,
      } as NodeJS.ProcessEnv,
      cwd: options.cwd,
      stdio: [options.stdin ? 'pipe' : 'ignore', options.captureStdout ? 'pipe' : 'ignore', 'pipe'],
    },
  );
  if (child.pid === undefined) throw new Error(`${options.name}: could not start ${command}`);
  const pid = child.pid;
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines: string[] = [];
  const waiters = new Set<(line: string) => void>();
  if (child.stdout) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      if (lines.length > 1000) lines.shift();
      for (const waiter of waiters) waiter(line);
    });
  }
  const proc: Proc = {
    name: options.name,
    pid,
    child,
    exited,
    waitForLine(test, timeoutMs = 30_000) {
      const seen = lines.find(test);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`${options.name}: no expected output after ${timeoutMs} ms\n${stderr}`));
        }, timeoutMs);
        const waiter = (line: string) => {
          if (!test(line)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(line);
        };
        waiters.add(waiter);
        void exited.then((code) => {
          if (!waiters.has(waiter)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          reject(new Error(`${options.name} exited (${code}) before the expected output\n${stderr}`));
        });
      });
    },
    send(line) {
      child.stdin?.write(`${line}\n`);
    },
    stderrTail: () => stderr,
    async stop(graceMs = 5_000) {
      running.delete(proc);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  running.add(proc);
  return proc;
}

/** Stops every process this run started (each by its own pid). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((proc) => proc.stop(2_000)));
}

process.once('exit', () => {
  for (const proc of running) {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** user and system CPU seconds of one process (zeros once it is gone). */
export function cpuTimes(pid: number): { user: number; system: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / CLOCK_TICKS, system: Number(fields[12]) / CLOCK_TICKS };
  } catch {
    return { user: 0, system: 0 };
  }
}

/** user+system CPU seconds of several processes together. */
export function cpuSecondsOf(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => {
    const t = cpuTimes(pid);
    return sum + t.user + t.system;
  }, 0);
}

/** System (kernel) CPU seconds of several processes together. */
export function systemSecondsOf(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + cpuTimes(pid).system, 0);
}

/** Busy seconds of the given cores (all tasks, ours and everyone else's), from /proc/stat. */
export function coreBusySeconds(cores: readonly number[]): number {
  let busy = 0;
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const match = /^cpu(\d+) (.+)$/.exec(line);
    if (!match || !cores.includes(Number(match[1]))) continue;
    // user nice system idle iowait irq softirq steal …: busy is everything but idle and iowait.
    const [user, nice, system, , , irq, softirq, steal] = (match[2] as string)
      .trim()
      .split(/\s+/)
      .map(Number);
    busy += (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  }
  return busy / CLOCK_TICKS;
}

/** Resident set size of one process in bytes (0 once it is gone). */
export function rssBytes(pid: number): number {
  return statusBytes(pid, 'VmRSS');
}

/** The largest resident set size the process has had (its high-water mark), in bytes. */
export function peakRssBytes(pid: number): number {
  return statusBytes(pid, 'VmHWM');
}

function statusBytes(pid: number, field: string): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(
      readFileSync(`/proc/${pid}/status`, 'utf8'),
    );
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Direct children of a process. */
export function childPids(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    if (text !== '') return text.split(/\s+/).map(Number);
  } catch {
    // fall back to scanning /proc
  }
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) found.push(Number(entry));
    } catch {
      // raced with an exit
    }
  }
  return found;
}

/** Every descendant of a process (children, their children, …). */
export function descendantPids(pid: number): number[] {
  const found: number[] = [];
  for (let queue = childPids(pid); queue.length > 0; ) {
    const next = queue.shift() as number;
    found.push(next);
    queue = queue.concat(childPids(next));
  }
  return found;
}

/** Polls `check` until it returns true. */
export async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves once `url` answers with a status below 500. */
export function waitForHttp(url: string, timeoutMs = 30_000): Promise<void> {
  return waitUntil(
    async () => (await fetch(url, { signal: AbortSignal.timeout(1_000) })).status < 500,
    timeoutMs,
    url,
  );
}

/**
 * Resolves once 127.0.0.1:`port` accepts a TCP connection (closed at once, nothing sent: no
 * request is served), polling every 10 ms; rejects if `exited` settles first or after `timeoutMs`.
 */
export async function waitForPort(port: number, timeoutMs: number, exited?: Promise<unknown>): Promise<void> {
  let gone = false;
  void exited?.then(() => {
    gone = true;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (gone) throw new Error(`the process exited before port ${port} opened`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for port ${port}`);
    await sleep(10);
  }
}

/** Pins the calling process (all its threads) to `cores`. */
export function pinSelf(cores: string): void {
  spawnSync('taskset', ['-a', '-cp', cores, String(process.pid)], { stdio: 'ignore' });
}

/** Runs a command to completion, returning stdout; throws with its stderr on failure. */
export function run(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', env: options.env ?? process.env });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (${result.status}): ${result.stderr || result.error}`,
    );
  }
  return result.stdout;
}
