/**
 * The server's folders read top to bottom in the order a request travels (issue 15, part 2):
 * every import in packages/server/src must point to its own layer or one below it, and no public
 * surface reaches into another's folder. The order is the one docs/architecture.md describes.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';

const SRC = resolve(import.meta.dirname, '../src');

/**
 * Layers, top first: a file may import its own layer and any layer below it. An entry ending in
 * `/` is a folder, any other a file directly under src/.
 */
const LAYERS: readonly (readonly string[])[] = [
  // Entry and wiring: the only place that knows every part.
  [
    'main.ts',
    'compile-cache.ts',
    'startup-memory.ts',
    'app.ts',
    'app-deps.ts',
    'app-limits.ts',
    'app-reload.ts',
    'token-cli.ts',
    'workers/',
  ],
  // The public surfaces, thin: POST /proxy, /mcp, /ws, info, health, metrics.
  ['surfaces/'],
  // Cross-cutting HTTP plumbing: CORS, inbound checks, caller signal, event streams, access log.
  ['http/'],
  // Who the caller is.
  ['identity/'],
  // The upstream OAuth broker (issue 18): discovery, registration, the flow, the token vault.
  ['credentials/'],
  // Virtual servers (issue 20): the proxy as one MCP server over several configured ones.
  ['virtual/'],
  // THE decision (plan.ts), targets, the connector, era and transport verdicts.
  ['dispatch/'],
  // Sessions the proxy holds, the modern pool, sealed ids.
  ['sessions/'],
  // Translation between the protocol eras (the facades), era classification.
  ['eras/'],
  // The wire: transports, the HTTP path out, request metadata headers, status mapping.
  ['upstream/'],
  // Shared lower layers, usable from anywhere above.
  ['config/'],
  ['egress/'],
  ['limits/', 'policy/', 'observability/', 'store/'],
  [
    'errors.ts',
    'errors/',
    'jsonrpc.ts',
    'json-depth.ts',
    'json-object.ts',
    'abort.ts',
    'version.ts',
    'clock.ts',
    'ttl-cache.ts',
    'response-closed.ts',
    'read-capped.ts',
  ],
];

/** The layer index of a path relative to src/, or -1 when no layer names it. */
function layerOf(path: string): number {
  return LAYERS.findIndex((layer) =>
    layer.some((entry) => (entry.endsWith('/') ? path.startsWith(entry) : path === entry)),
  );
}

/** Every .ts file under `dir`, relative to src/. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [relative(SRC, path)] : [];
  });
}

/** The relative imports of a file (static, re-exports, dynamic, type-only), resolved under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(SRC, file), 'utf8');
  return ts
    .preProcessFile(text, true, true)
    .importedFiles.map((imported) => imported.fileName)
    .filter((specifier) => specifier.startsWith('.'))
    .map((specifier) => relative(SRC, resolve(SRC, dirname(file), specifier)))
    .filter((target) => !target.startsWith('..'));
}

/** The surface folder a file belongs to (`surfaces/mcp/`), if any. */
function surfaceOf(path: string): string | undefined {
  return /^surfaces\/[^/]+\//.exec(path)?.[0];
}

describe('layering of packages/server/src', () => {
  const files = sources(SRC);

  it('finds the sources and their imports', () => {
    assert.ok(files.length > 50, `only ${files.length} files found under ${SRC}`);
    assert.ok(importsOf('app.ts').includes('surfaces/mcp/endpoint.ts'));
  });

  it('places every source file in a layer', () => {
    const unplaced = files.filter((file) => layerOf(file) === -1);
    assert.deepEqual(unplaced, [], 'add the new folder or file to LAYERS (and docs/architecture.md)');
  });

  it('has no import running back up a layer', () => {
    const backEdges: string[] = [];
    for (const file of files) {
      const from = layerOf(file);
      for (const target of importsOf(file)) {
        const to = layerOf(target);
        if (to !== -1 && to < from) backEdges.push(`${file} -> ${target}`);
      }
    }
    assert.deepEqual(backEdges, []);
  });

  it('keeps each public surface out of the others', () => {
    const crossings: string[] = [];
    for (const file of files) {
      const own = surfaceOf(file);
      if (own === undefined) continue;
      for (const target of importsOf(file)) {
        const other = surfaceOf(target);
        if (other !== undefined && other !== own) crossings.push(`${file} -> ${target}`);
      }
    }
    assert.deepEqual(crossings, []);
  });
});
