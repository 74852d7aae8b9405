/**
 * Runs the conformance suite's own example server (`examples/servers/typescript/everything-server.ts`
 * of `@modelcontextprotocol/conformance`) on an ephemeral loopback port, when a copy of it is at hand.
 *
 * The file is not in the npm package (which ships only `dist/`), only in the suite's git repository,
 * and third-party code is not copied into this one: point `MCP_CONFORMANCE_EXAMPLE_SERVER` at a copy,
 * e.g. `git show v0.1.16:examples/servers/typescript/everything-server.ts` in a clone of
 * github.com/modelcontextprotocol/conformance. Its imports (the SDK v1, express, cors, zod) resolve
 * from this workspace. It imports types without `import type`, which Node's type stripping cannot
 * run, so it is transpiled first with the workspace's TypeScript, into a temporary directory.
 *
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { freePort, waitForPort } from './net.ts';

/** The environment variable naming a copy of the example server's source. */
export const EXAMPLE_SERVER_ENV = 'MCP_CONFORMANCE_EXAMPLE_SERVER';

/** A running example server. */
export interface ExampleServer {
  readonly url: string;
  stop(): Promise<void>;
}

/** The path of the example server's source, if one was given. */
export function exampleServerSource(): string | undefined {
  const path = process.env[EXAMPLE_SERVER_ENV];
  return path === undefined || path === '' ? undefined : path;
}

/** Transpiles and starts the example server at `source`; resolves once it listens. */
export async function startExampleServer(source: string): Promise<ExampleServer> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-conformance-example-'));
  const entry = join(dir, 'everything-server.mjs');
  const { outputText } = ts.transpileModule(await readFile(source, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  });
  // From a temporary directory bare specifiers resolve nowhere: pin them to this workspace's copies.
  const resolved = outputText
    .replace(/^#!.*\n/, '')
    .replace(/from\s+'([^'./][^']*)'/g, (whole, specifier: string) =>
      specifier === 'crypto' || specifier.startsWith('node:')
        ? whole
        : `from '${import.meta.resolve(specifier)}'`,
    );
  await writeFile(entry, resolved);

  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [entry], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(port);
  } catch (error) {
    await stop();
    throw new Error(`the example server did not start: ${(error as Error).message}\n${stderr}`);
  }
  return { url: `http://127.0.0.1:${port}/mcp`, stop };
}
