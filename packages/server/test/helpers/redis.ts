/**
 * Runs a real redis-server (Debian's, installed by scripts/ensure-system-deps.mjs) on an
 * ephemeral loopback port, without persistence.
 */
import { spawn } from 'node:child_process';
import { freePort, waitForPort } from './net.ts';

/** A running Redis. */
export interface RedisServer {
  readonly url: string;
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
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
