/**
 * The package as consumers get it: dist/ built by `npm run build`, resolved through the
 * `exports` map, its .d.ts compiled by a strict consumer, the browser bundle's size and
 * purity, and error brands across two copies of the code.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { ERROR_REGISTRY } from '../../server/src/errors.ts';
import { bundleForBrowser, CLASS_ONLY_ENTRY, CLIENT_ROOT } from '../scripts/bundle.ts';
import * as source from '../src/index.ts';

const dist = join(CLIENT_ROOT, 'dist');
const manifest = JSON.parse(readFileSync(join(CLIENT_ROOT, 'package.json'), 'utf8')) as {
  version: string;
  sideEffects: boolean;
  exports: Record<string, Record<string, string>>;
};

describe('the published package', () => {
  before(() => {
    // Built by npm ci (prepare) and npm test (typecheck); building again here would race the other
    // test file that reads dist/ (both run side by side), so only when it is missing.
    if (!existsSync(join(CLIENT_ROOT, 'dist', 'mcp-proxy-client.js')))
      execFileSync(process.execPath, [join(CLIENT_ROOT, 'scripts/build.ts')], { stdio: 'pipe' });
  });

  it('resolves by name through the exports map to dist ESM with types', async () => {
    assert.deepEqual(manifest.exports['.'], { types: './dist/index.d.ts', import: './dist/index.js' });
    assert.equal(manifest.sideEffects, false);
    const built = await import('mcp-proxy-client');
    assert.equal(typeof built.MCPProxyClient, 'function');
    assert.equal(built.default, built.MCPProxyClient);
    assert.deepEqual(Object.keys(built).sort(), Object.keys(source).sort(), 'dist exports what src exports');
    assert.equal(built.VERSION, manifest.version);
    assert.equal(source.VERSION, manifest.version);
  });

  it('dist never imports a Node built-in', () => {
    for (const file of readdirSync(dist, { recursive: true, encoding: 'utf8' })) {
      if (!file.endsWith('.js')) continue;
      const text = readFileSync(join(dist, file), 'utf8');
      assert.doesNotMatch(text, /from\s+['"](node:|fs|path|http|https|net|crypto|stream)['"]/, file);
      assert.doesNotMatch(text, /\bprocess\.|\bBuffer\b|\brequire\(/, file);
    }
  });

  it('the browser bundle importing MCPProxyClient is at most 15 kB min+gzip', async () => {
    const { code, gzipBytes } = await bundleForBrowser(CLASS_ONLY_ENTRY);
    assert.ok(gzipBytes <= 15 * 1024, `${gzipBytes} bytes gzipped`);
    assert.doesNotMatch(code, /node:/);
  });

  it('a strict TypeScript consumer compiles against the .d.ts (nodenext and bundler)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-client-consumer-'));
    try {
      mkdirSync(join(dir, 'node_modules'));
      symlinkSync(CLIENT_ROOT, join(dir, 'node_modules', 'mcp-proxy-client'), 'dir');
      writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
      writeFileSync(
        join(dir, 'consumer.ts'),
        [
          "import MCPProxyClient, { type CallToolResult, McpError, ProxyAuthError } from 'mcp-proxy-client';",
          'const client = new MCPProxyClient({',
          "  proxyUrl: 'https://p.example', proxyToken: 't', mcpServerUrl: 'https://m.example/mcp',",
          '});',
          "export const result: Promise<CallToolResult> = client.callTool('echo', { message: 'hi' });",
          'export { McpError, ProxyAuthError };',
        ].join('\n'),
      );
      const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
      for (const [module, moduleResolution] of [
        ['nodenext', 'nodenext'],
        ['esnext', 'bundler'],
      ] as const) {
        // No skipLibCheck and no Node types: the shipped .d.ts must be clean with the DOM lib alone.
        const compilerOptions = {
          strict: true,
          exactOptionalPropertyTypes: true,
          noEmit: true,
          module,
          moduleResolution,
          target: 'es2022',
          lib: ['es2022', 'dom'],
          types: [],
        };
        writeFileSync(
          join(dir, 'tsconfig.json'),
          JSON.stringify({ compilerOptions, files: ['consumer.ts'] }),
        );
        try {
          execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, stdio: 'pipe' });
        } catch (error) {
          assert.fail(`${moduleResolution}: ${String((error as { stdout?: Buffer }).stdout ?? error)}`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('instanceof holds across two copies of the package (Symbol.for brands)', async () => {
    const copy = (await import('mcp-proxy-client')) as unknown as typeof source;
    assert.notEqual(copy.ProxyAuthError, source.ProxyAuthError, 'two distinct module instances');
    const fromCopy = new copy.ProxyAuthError('unauthorized', 'x', { status: 401 });
    assert.ok(fromCopy instanceof source.ProxyAuthError);
    assert.ok(fromCopy instanceof source.MCPProxyError);
    assert.ok(!(fromCopy instanceof source.TimeoutError));
    assert.ok(!(fromCopy instanceof source.McpError));
    const mcp = new copy.McpError(-32601, 'Method not found');
    assert.ok(mcp instanceof source.McpError);
    assert.ok(mcp instanceof source.MCPProxyError, 'one hierarchy, across copies too');
    assert.ok(!(mcp instanceof source.UpstreamError));
    assert.ok(!(new Error('plain') instanceof source.MCPProxyError));
  });

  it('scripts/ensure-system-deps.mjs passes when Chromium is there and fails clearly otherwise', () => {
    const script = join(CLIENT_ROOT, '../../scripts/ensure-system-deps.mjs');
    execFileSync(process.execPath, [script, 'chromium'], { stdio: 'pipe' });
    try {
      execFileSync(process.execPath, [script, 'chromium'], {
        stdio: 'pipe',
        env: { ...process.env, CHROMIUM_PATH: join(CLIENT_ROOT, 'no-such-browser') },
      });
      assert.fail('expected a failure');
    } catch (error) {
      const { status, stderr } = error as { status?: number; stderr?: Buffer };
      assert.equal(status, 1);
      assert.match(String(stderr), /CHROMIUM_PATH=.*no-such-browser is not an executable file/);
    }
  });

  it('every error code of the proxy maps to a class (one table)', () => {
    const unmapped = Object.keys(ERROR_REGISTRY).filter((code) => !Object.hasOwn(source.ERROR_CLASSES, code));
    assert.deepEqual(
      unmapped,
      [],
      'add these codes to ERROR_CLASSES in src/wire-errors.ts and to docs/client.md',
    );
  });
});
