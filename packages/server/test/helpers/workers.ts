/**
 * Runs the proxy (`src/main.ts`) as a `WORKERS=N` cluster in a child process (issue 19), with a
 * way to see its worker processes, signal the primary, and send requests on a connection of
 * their own (so the cluster hands them to its workers in turn) or on a keep-alive pool.
 *
 * @module
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { type Agent, type IncomingHttpHeaders, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { compileCacheEnv } from './compile-cache.ts';
import { eventually } from './eventually.ts';
import { freePort, waitForPort } from './net.ts';
import { TEST_TOKEN } from './proxy.ts';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

/** A running cluster. */
export interface RunningWorkers {
  readonly url: string;
  readonly port: number;
  readonly primary: ChildProcess;
  /** The primary's current worker processes. */
  workerPids(): number[];
  /** Everything the processes wrote so far (for assertion messages). */
  output(): string;
  /** How many times a worker has started listening (replacements included). */
  listened(): number;
  /** Resolves with the primary's exit code once it has exited. */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL if it lingers; waits for the exit. */
  stop(): Promise<void>;
}

/** The worker processes of `pid` (its direct children). */
export function childPids(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((line) => Number(line.trim()))
      .filter((n) => n > 0);
  } catch {
    // ps exits 1 when there is none.
    return [];
  }
}

/** Starts main.ts with `env` (WORKERS and the rest); resolves once `workers` workers run. */
export async function startWorkers(env: Record<string, string>, workers = 2): Promise<RunningWorkers> {
  const port = await freePort();
  const primary = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: String(port),
      PROXY_TOKEN: TEST_TOKEN,
      ALLOW_PRIVATE_NETWORKS: 'true',
      // info: each worker's "Server listening" line says it takes connections.
      LOG_LEVEL: 'info',
      DOTENV_PATH: '/nonexistent/.env',
      WORKERS: String(workers),
      // The run's compile cache, so the instance starts as it is: no re-execution to name one.
      ...compileCacheEnv(),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let listened = 0;
  let partial = '';
  primary.stdout?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.includes('"msg":"Server listening at')) listened++;
      // Access-log lines would crowd out what explains a failure.
      else if (!line.includes('"msg":"request"')) output = `${output + line}\n`.slice(-50_000);
    }
  });
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-50_000);
  };
  primary.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => primary.once('exit', (code) => resolve(code)));
  const pid = primary.pid as number;
  await waitForPort(port);
  await eventually(() => childPids(pid).length === workers && listened >= workers, {
    timeoutMs: 20_000,
    what: () => `${workers} workers listening (output: ${output})`,
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    primary,
    workerPids: () => childPids(pid),
    output: () => output,
    listened: () => listened,
    exited,
    async stop() {
      if (primary.exitCode !== null || primary.signalCode !== null) return;
      primary.kill('SIGTERM');
      const timer = setTimeout(() => primary.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** An HTTP answer. */
export interface Answer {
  readonly status: number;
  readonly body: string;
  readonly headers: IncomingHttpHeaders;
}

/**
 * One request; with no `agent`, on a connection of its own (`Connection: close`), so a cluster
 * hands consecutive requests to different workers.
 */
export function send(
  url: string,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: string; agent?: Agent },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}${options.path}`,
      {
        method: options.method ?? 'GET',
        headers: {
          ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...options.headers,
        },
        agent: options.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            headers: res.headers,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A POST /proxy of `envelope` with the test token. */
export function postEnvelope(
  url: string,
  envelope: unknown,
  agent?: Agent,
  token = TEST_TOKEN,
): Promise<Answer> {
  return send(url, {
    method: 'POST',
    path: '/proxy',
    headers: { 'x-proxy-token': token },
    body: JSON.stringify(envelope),
    ...(agent ? { agent } : {}),
  });
}
