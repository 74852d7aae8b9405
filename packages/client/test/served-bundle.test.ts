/**
 * The bundle the proxy serves, used the way the README says (issue #14.14): a page on another
 * origin, with no build step, `import`s the client from the proxy's
 * /client/mcp-proxy-client.js in real Chromium and lists an MCP server's tools through it. The
 * page's origin is allowed for calls (CORS_ORIGINS) but the bundle itself is readable from any.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { type EverythingServer, startEverything } from '../../server/test/helpers/everything.ts';
import { type RunningProxy, startProxy } from '../../server/test/helpers/proxy.ts';
import { CLIENT_ROOT } from '../scripts/bundle.ts';
import { launchChromium } from './helpers/chromium.ts';
import { type StaticServer, serveStatic } from './helpers/static.ts';

/** The page: its module script imports the client from the proxy by absolute URL. */
function page(proxyUrl: string): string {
  return `<!doctype html>
<meta charset="utf-8">
<title>loading</title>
<script type="module">
  import MCPProxyClient, { ProxyAuthError } from '${proxyUrl}/client/mcp-proxy-client.js';
  window.MCPProxyClient = MCPProxyClient;
  window.ProxyAuthError = ProxyAuthError;
  document.title = 'ready';
</script>`;
}

describe('the client bundle served by the proxy, in Chromium', () => {
  let upstream: EverythingServer;
  let proxy: RunningProxy;
  let site: StaticServer;
  let other: StaticServer;
  let browser: Browser;

  before(async () => {
    // The bundle npm ci / npm run build leaves in dist/; built here too so the test stands alone.
    // Built by npm ci (prepare) and npm test (typecheck); building again here would race the other
    // test file that reads dist/ (both run side by side), so only when it is missing.
    if (!existsSync(join(CLIENT_ROOT, 'dist', 'mcp-proxy-client.js')))
      execFileSync(process.execPath, [join(CLIENT_ROOT, 'scripts/build.ts')], { stdio: 'pipe' });
    upstream = await startEverything('streamableHttp');
    // The page names the proxy's URL and the proxy names the page's origin: the page is added
    // once both are listening (the static server looks files up per request).
    const files: Record<string, readonly [string, string]> = {};
    site = await serveStatic(files);
    proxy = await startProxy({ CORS_ORIGINS: site.origin });
    files['/'] = ['text/html; charset=utf-8', page(proxy.url)];
    other = await serveStatic(files);
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    proxy?.app.server.closeAllConnections();
    await proxy?.close();
    await upstream?.stop();
    await site?.stop();
    await other?.stop();
  });

  /** Opens `origin`'s page and waits until its module script has imported the bundle. */
  async function open(origin: string) {
    const tab = await browser.newPage();
    const failures: string[] = [];
    tab.on('pageerror', (error) => failures.push(error.message));
    tab.on('console', (message) => failures.push(message.text()));
    await tab.goto(`${origin}/`);
    await tab
      .waitForFunction(() => document.title === 'ready', undefined, { timeout: 10_000 })
      .catch(() => assert.fail(`the page could not import the bundle: ${failures.join('; ')}`));
    return tab;
  }

  it('a page on another origin imports it and lists tools', async () => {
    const tab = await open(site.origin);
    const target = { proxyUrl: proxy.url, proxyToken: proxy.token, mcpServerUrl: upstream.url };
    const names = await tab.evaluate(async ({ proxyUrl, proxyToken, mcpServerUrl }) => {
      const Client = (
        window as unknown as { MCPProxyClient: typeof import('../src/index.ts').MCPProxyClient }
      ).MCPProxyClient;
      const client = new Client({ proxyUrl, proxyToken, mcpServerUrl, transport: 'streamable' });
      try {
        await client.initialize();
        const { tools } = await client.listTools();
        return tools.map((tool) => tool.name);
      } finally {
        await client.close();
      }
    }, target);
    assert.ok(names.includes('echo'), `tools: ${names.join(', ')}`);
    await tab.close();
  });

  it('a page on an origin CORS_ORIGINS does not list can still import it (public code)', async () => {
    const tab = await open(other.origin);
    await tab.close();
  });
});
