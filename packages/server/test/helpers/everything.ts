/**
 * Runs the real `@modelcontextprotocol/server-everything` in one of its HTTP modes on an
 * ephemeral loopback port.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { compileCacheEnv } from './compile-cache.ts';
import { freePort, waitForPort } from './net.ts';

const require = createRequire(import.meta.url);
const entry = join(
  dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')),
  'dist/index.js',
);

/** A running server-everything. */
export interface EverythingServer {
  /** The MCP endpoint URL (`/mcp` for streamableHttp, `/sse` for sse). */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Starts server-everything in `mode` and waits until it says it listens. The port is chosen
 * free, then bound by the child: another test process may take it in between (the suite runs
 * files side by side), and then the child exits with EADDRINUSE while the port answers for
 * someone else. So readiness is the child's own "listening on port" line, and a child that
 * exits first is started again on another port.
 */
export async function startEverything(mode: 'streamableHttp' | 'sse'): Promise<EverythingServer> {
  let failure = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child: ChildProcess = spawn(process.execPath, [entry, mode], {
      env: { ...process.env, PORT: String(port) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    const listening = new Promise<boolean>((resolve) => {
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-4000);
        if (new RegExp(`(running|listening) on port ${port}\\b`).test(stderr)) resolve(true);
      });
      child.once('exit', () => resolve(false));
    });
    const deadline = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const started = await listening;
    clearTimeout(deadline);
    if (started) {
      await waitForPort(port);
      return {
        url: `http://127.0.0.1:${port}/${mode === 'sse' ? 'sse' : 'mcp'}`,
        port,
        stop: async () => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGTERM');
          await exited;
        },
      };
    }
    failure = stderr;
  }
  throw new Error(`server-everything ${mode} did not start:\n${failure}`);
}

/** A configured server that runs server-everything over stdio (the compile cache shared). */
export function everythingStdio(): {
  command: string;
  args: string[];
  env: ReturnType<typeof compileCacheEnv>;
} {
  return { command: process.execPath, args: [entry, 'stdio'], env: compileCacheEnv() };
}
