/**
 * The MCP Inspector's web client in its "Direct" mode, in real Chromium, against the proxy's
 * /mcp (issue #14.17). The Inspector (its published web client, @modelcontextprotocol/inspector-client,
 * the v1 line: v2 has no Direct mode) is served from its own loopback origin; it connects
 * straight to the proxy with the proxy token and the MCP server URL as custom headers, which
 * makes it send `x-custom-auth-headers` too. The proxy must let that preflight through
 * (CORS_ALLOWED_HEADERS) and the Inspector must list server-everything's tools.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, normalize } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../../client/test/helpers/chromium.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

/** The Inspector web client's built files. */
const INSPECTOR_DIST = join(
  dirname(createRequire(import.meta.url).resolve('@modelcontextprotocol/inspector-client/package.json')),
  'dist',
);

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Serves the Inspector's single-page app from 127.0.0.1:0 (unknown paths get index.html). */
async function serveInspector(): Promise<{ origin: string; stop(): Promise<void> }> {
  const server = createServer((request, response) => {
    const path = normalize(new URL(request.url ?? '/', 'http://localhost').pathname);
    const asset = path.startsWith('/assets/') || path === '/mcp.svg';
    const file = join(INSPECTOR_DIST, asset ? path : 'index.html');
    readFile(file).then(
      (body) =>
        response
          .writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' })
          .end(body),
      () => response.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('the MCP Inspector in Direct mode, in Chromium', () => {
  let upstream: EverythingServer;
  let inspector: { origin: string; stop(): Promise<void> };
  let browser: Browser;
  let proxy: RunningProxy | undefined;
  let page: Page | undefined;

  before(async () => {
    upstream = await startEverything('streamableHttp');
    inspector = await serveInspector();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await inspector?.stop();
    await upstream?.stop();
  });
  afterEach(async () => {
    await page?.close();
    page = undefined;
    proxy?.app.server.closeAllConnections();
    await proxy?.close();
    proxy = undefined;
  });

  /**
   * Opens the Inspector with its own saved settings (what its sidebar stores after a user typed
   * them): Streamable HTTP, Direct, the proxy's /mcp, the two proxy headers. Then clicks
   * Connect. Resolves to what the page logged, for failure messages.
   */
  async function connect(target: RunningProxy): Promise<string[]> {
    page = await browser.newPage();
    const logs: string[] = [];
    page.on('console', (message) => logs.push(message.text()));
    page.on('pageerror', (error) => logs.push(error.message));
    await page.addInitScript(
      ({ url, headers }) => {
        localStorage.setItem('lastTransportType', 'streamable-http');
        localStorage.setItem('lastConnectionType', 'direct');
        localStorage.setItem('lastSseUrl', url);
        localStorage.setItem('lastCustomHeaders', JSON.stringify(headers));
      },
      {
        url: `${target.url}/mcp`,
        headers: [
          { name: 'X-Proxy-Token', value: target.token, enabled: true },
          { name: 'X-MCP-Server-URL', value: upstream.url, enabled: true },
        ],
      },
    );
    await page.goto(`${inspector.origin}/`);
    await page.getByRole('button', { name: 'Connect', exact: true }).click();
    return logs;
  }

  it('connects and lists tools when CORS_ALLOWED_HEADERS lets x-custom-auth-headers through', async () => {
    proxy = await startProxy({
      CORS_ORIGINS: inspector.origin,
      CORS_ALLOWED_HEADERS: 'x-custom-auth-headers',
    });
    const logs = await connect(proxy);
    const tools = page?.getByRole('tab', { name: 'Tools' });
    await tools?.click({ timeout: 15_000 }).catch(() => assert.fail(`not connected: ${logs.join(' | ')}`));
    await page?.getByRole('button', { name: 'List Tools' }).click();
    // server-everything's `echo` tool, shown by its title.
    await page
      ?.getByText('Echo Tool', { exact: true })
      .first()
      .waitFor({ timeout: 15_000 })
      .catch(() => assert.fail(`no tools listed: ${logs.join(' | ')}`));
    assert.equal(await page?.getByText('Connected', { exact: true }).count(), 1);
  });

  it('without it the browser refuses the preflight and the Inspector cannot connect', async () => {
    proxy = await startProxy({ CORS_ORIGINS: inspector.origin });
    const logs = await connect(proxy);
    await page
      ?.getByText(/Connection Error|Failed to connect/i)
      .first()
      .waitFor({ timeout: 15_000 })
      .catch(() => assert.fail(`no connection error shown: ${logs.join(' | ')}`));
    assert.ok(
      logs.some((line) => /x-custom-auth-headers is not allowed by Access-Control-Allow-Headers/i.test(line)),
      logs.join(' | '),
    );
  });
});
