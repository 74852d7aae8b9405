/**
 * Runs a real redis-server (Debian's, installed by scripts/ensure-system-deps.mjs) on an
 * ephemeral loopback port, without persistence.
 */
import { spawn } from 'node:child_process';
import { freePort, waitForPort } from './net.ts';

/** A running Redis. */
export interface RedisServer {
  readonly url: string;
  /** Sends `signal` to the server (SIGSTOP: it holds its connections open and answers nothing). */
  signal(signal: NodeJS.Signals): void;
  stop(): Promise<void>;
}

/** Starts redis-server on 127.0.0.1. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'yes',
    ],
    { stdio: 'ignore' },
  );
  await waitForPort(port);
  return {
    url: `redis://127.0.0.1:${port}`,
    signal: (signal) => {
      child.kill(signal);
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      // A stopped server (SIGSTOP) acts on it once continued.
      child.kill('SIGCONT');
      await exited;
    },
  };
}
