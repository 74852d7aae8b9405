/**
 * Runs the proxy (`src/main.ts`) in a child process with a small V8 heap, for heap-exhaustion
 * regressions: a regression kills the child fast, and the test sees it, instead of the test
 * runner itself falling over.
 *
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, waitForPort } from './net.ts';
import { TEST_TOKEN } from './proxy.ts';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

/**
 * Children not stopped yet. A test that times out while its child is still starting never gets
 * to register the child's stop, and a live child's pipes keep the test file's process (and the
 * whole run) waiting forever: whatever is left is killed once the file's tests are done.
 */
const running = new Set<ChildProcess>();
after(() => {
  for (const child of running) child.kill('SIGKILL');
});

/** A proxy running in a child process. */
export interface ChildProxy {
  readonly url: string;
  readonly token: string;
  readonly child: ChildProcess;
  /** True while the process has not exited. */
  alive(): boolean;
  /** Everything it wrote to stdout and stderr so far (for assertion messages). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `main.ts` with `--max-old-space-size=heapMb` (and `nodeFlags`), loopback allowed, one
 * known token (`env` goes over these), on `fixedPort` (default: a free one).
 */
export async function startChildProxy(
  env: Record<string, string>,
  heapMb: number,
  fixedPort?: number,
  nodeFlags: readonly string[] = [],
): Promise<ChildProxy> {
  const port = fixedPort ?? (await freePort());
  const child = spawn(process.execPath, [`--max-old-space-size=${heapMb}`, ...nodeFlags, MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: String(port),
      PROXY_TOKEN: TEST_TOKEN,
      ALLOW_PRIVATE_NETWORKS: 'true',
      LOG_LEVEL: 'warn',
      DOTENV_PATH: '/nonexistent/.env',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    // The tail is what explains a death (V8's "heap out of memory" report).
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  running.add(child);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running.delete(child);
      resolve();
    }),
  );
  try {
    await waitForPort(port, undefined, () => child.exitCode !== null || child.signalCode !== null);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    token: TEST_TOKEN,
    child,
    alive: () => child.exitCode === null && child.signalCode === null,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
