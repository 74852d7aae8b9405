/**
 * `GET /client/mcp-proxy-client.js` (issue #14.14): the browser client served by the proxy as
 * one ES module, with no token, readable from any origin, cacheable (Cache-Control + ETag/304),
 * rebuilt files picked up, and a coded 404 that says how to build it when it is missing.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { DEFAULT_CLIENT_BUNDLE_PATH } from '../src/surfaces/client-bundle.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

const ROUTE = '/client/mcp-proxy-client.js';

describe('GET /client/mcp-proxy-client.js', () => {
  let dir: string;
  let bundlePath: string;
  let proxy: RunningProxy | undefined;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-bundle-'));
    bundlePath = join(dir, 'mcp-proxy-client.js');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it('serves the file as JavaScript, no token needed, readable cross-origin, with cache headers', async () => {
    writeFileSync(bundlePath, 'export const answer = 42;\n');
    proxy = await startProxy({ CORS_ORIGINS: 'https://app.example' }, { clientBundlePath: bundlePath });
    const res = await fetch(`${proxy.url}${ROUTE}`, { headers: { origin: 'https://elsewhere.example' } });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'export const answer = 42;\n');
    assert.equal(res.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('cache-control'), 'public, max-age=86400');
    assert.match(res.headers.get('etag') ?? '', /^"[A-Za-z0-9_-]{27}"$/);
  });

  it('answers a matching If-None-Match with 304 and a changed file with a new ETag', async () => {
    writeFileSync(bundlePath, 'export const version = 1;\n');
    proxy = await startProxy({}, { clientBundlePath: bundlePath });
    const first = await fetch(`${proxy.url}${ROUTE}`);
    const etag = first.headers.get('etag') ?? '';
    await first.arrayBuffer();

    const revalidated = await fetch(`${proxy.url}${ROUTE}`, {
      headers: { 'if-none-match': `"other", W/${etag}` },
    });
    assert.equal(revalidated.status, 304);
    assert.equal(await revalidated.text(), '');
    assert.equal(revalidated.headers.get('etag'), etag);
    assert.equal(revalidated.headers.get('cache-control'), 'public, max-age=86400');

    writeFileSync(bundlePath, 'export const version = 22;\n');
    const rebuilt = await fetch(`${proxy.url}${ROUTE}`, { headers: { 'if-none-match': etag } });
    assert.equal(rebuilt.status, 200);
    assert.equal(await rebuilt.text(), 'export const version = 22;\n');
    assert.notEqual(rebuilt.headers.get('etag'), etag);
  });

  it('a missing bundle is a coded 404 that says to run npm run build', async () => {
    proxy = await startProxy({}, { clientBundlePath: join(dir, 'not-built.js') });
    const res = await fetch(`${proxy.url}${ROUTE}`);
    assert.equal(res.status, 404);
    const body = (await res.json()) as { error: { code: number; message: string; data: { code: string } } };
    assert.equal(body.error.data.code, 'client_not_built');
    assert.equal(body.error.code, -33060);
    assert.match(body.error.message, /npm run build/);
    assert.ok(!body.error.message.includes(dir), 'no server path in the answer');
  });

  it('by default serves the bundle npm run build writes in packages/client/dist', async () => {
    if (!existsSync(DEFAULT_CLIENT_BUNDLE_PATH)) {
      const build = new URL('../../client/scripts/build.ts', import.meta.url);
      execFileSync(process.execPath, [build.pathname], { stdio: 'pipe' });
    }
    proxy = await startProxy();
    const res = await fetch(`${proxy.url}${ROUTE}`);
    assert.equal(res.status, 200);
    const code = await res.text();
    assert.equal(code, readFileSync(DEFAULT_CLIENT_BUNDLE_PATH, 'utf8'));
    assert.match(code, /\bexport\s*\{[^}]*\bMCPProxyClient\b/, 'an ES module exporting MCPProxyClient');
    assert.doesNotMatch(code, /\bimport\s*[{*"'\w]/, 'one self-contained file');
  });
});
