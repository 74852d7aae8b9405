/**
 * Bundles the client for browsers with esbuild, in memory: minified ESM, platform `browser`, so
 * any Node built-in the source reached for would fail the build. Used by `npm run build` (the
 * file the proxy serves), `npm run size` and the real-browser test.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

/** Where the client's sources are. */
export const CLIENT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** A built browser bundle and its sizes. */
export interface Bundle {
  readonly code: string;
  readonly bytes: number;
  readonly gzipBytes: number;
}

/** Bundles `entry` (module source resolved from the package root), minified for browsers. */
export async function bundleForBrowser(entry: string): Promise<Bundle> {
  const result = await build({
    stdin: { contents: entry, resolveDir: CLIENT_ROOT, sourcefile: 'entry.ts', loader: 'ts' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome111', 'firefox111', 'safari16.4'],
    write: false,
    logLevel: 'silent',
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error('esbuild produced no output');
  const code = file.text;
  return { code, bytes: Buffer.byteLength(code), gzipBytes: gzipSync(code, { level: 9 }).length };
}

/** Entry that imports only the client class (what most apps do). */
export const CLASS_ONLY_ENTRY = "export { MCPProxyClient } from './src/index.ts';";

/** Entry of the bundle the proxy serves: everything, default export included. */
export const SERVED_ENTRY = "export * from './src/index.ts'; export { default } from './src/index.ts';";

/** File name of that bundle in dist/ (the proxy serves it at /client/<name>). */
export const SERVED_BUNDLE_NAME = 'mcp-proxy-client.js';

/** Entry that re-exports everything the package offers. */
export const EVERYTHING_ENTRY = "export * from './src/index.ts';";
