/**
 * The client in a real browser: Debian's Chromium loads the minified bundle from a page on one
 * loopback origin and calls the proxy on another, so CORS (and the WebSocket Origin check) is the
 * browser's own, not simulated. Every transport: POST /proxy, Streamable HTTP /mcp, WebSocket /ws.
 * A second page, on an origin the proxy does not allow, must be blocked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { EverythingServer } from '../../server/test/helpers/everything.ts';
import { startEverything } from '../../server/test/helpers/everything.ts';
import { type RunningProxy, startProxy } from '../../server/test/helpers/proxy.ts';
import { bundleForBrowser, EVERYTHING_ENTRY } from '../scripts/bundle.ts';
import { launchChromium } from './helpers/chromium.ts';
import { type StaticServer, serveStatic } from './helpers/static.ts';

type ClientModule = typeof import('../src/index.ts');
/** What the page's module script exposes (the bundle's exports). */
type PageGlobals = { mcp: ClientModule };

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>loading</title>
<script type="module">
  import * as mcp from '/client.js';
  window.mcp = mcp;
  document.title = 'ready';
</script>`;

/** The connection facts a page needs, passed into `page.evaluate`. */
interface Target {
  readonly proxyUrl: string;
  readonly proxyToken: string;
  readonly mcpServerUrl: string;
  readonly transport?: 'http' | 'streamable' | 'ws';
}

const TRANSPORTS = ['http', 'streamable', 'ws'] as const;

describe('mcp-proxy-client in Chromium, across origins', () => {
  let upstream: EverythingServer;
  let proxy: RunningProxy;
  let allowed: StaticServer;
  let foreign: StaticServer;
  let browser: Browser;
  let target: Target;

  /** Opens the test page served by `site` and waits for the bundle to load. */
  async function open(site: StaticServer): Promise<Page> {
    const page = await browser.newPage();
    const failures: string[] = [];
    page.on('pageerror', (error) => failures.push(error.message));
    await page.goto(`${site.origin}/`);
    await page
      .waitForFunction(() => document.title === 'ready', undefined, { timeout: 10_000 })
      .catch(() => {
        throw new Error(`the client bundle did not load: ${failures.join('; ')}`);
      });
    return page;
  }

  before(async () => {
    const { code } = await bundleForBrowser(EVERYTHING_ENTRY);
    const files = {
      '/': ['text/html; charset=utf-8', PAGE],
      '/client.js': ['text/javascript', code],
    } as const;
    allowed = await serveStatic(files);
    foreign = await serveStatic(files);
    upstream = await startEverything('streamableHttp');
    proxy = await startProxy({ CORS_ORIGINS: allowed.origin });
    target = { proxyUrl: proxy.url, proxyToken: proxy.token, mcpServerUrl: upstream.url };
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    proxy?.app.server.closeAllConnections();
    await proxy?.close();
    await upstream?.stop();
    await allowed?.stop();
    await foreign?.stop();
  });

  it('the page and the proxy are different origins', () => {
    assert.notEqual(new URL(allowed.origin).origin, new URL(proxy.url).origin);
    assert.notEqual(allowed.origin, foreign.origin);
  });

  for (const transport of TRANSPORTS) {
    it(`${transport}: initializes, lists tools and calls echo from an allowed origin`, async () => {
      const page = await open(allowed);
      const result = await page.evaluate(
        async (t: Target) => {
          const { MCPProxyClient } = (window as unknown as PageGlobals).mcp;
          const client = new MCPProxyClient(t);
          const init = await client.initialize();
          const { tools } = await client.listTools();
          const echo = await client.callTool('echo', { message: 'hello from Chromium' });
          const first = echo.content[0];
          const out = {
            origin: location.origin,
            protocolVersion: init.protocolVersion,
            server: init.serverInfo.name,
            sessionId: client.sessionId,
            negotiated: client.protocolVersion,
            tools: tools.map((tool) => tool.name),
            echo: first?.type === 'text' ? first.text : undefined,
          };
          await client.close();
          return out;
        },
        { ...target, transport },
      );
      assert.equal(result.origin, allowed.origin);
      assert.equal(result.protocolVersion, '2025-06-18');
      assert.equal(result.server, 'mcp-servers/everything');
      if (transport === 'ws') assert.equal(result.sessionId, undefined, 'over /ws the socket is the session');
      else assert.ok(result.sessionId, 'Mcp-Session-Id is readable through CORS');
      assert.equal(result.negotiated, '2025-06-18');
      assert.ok(result.tools.includes('echo'), result.tools.join(','));
      assert.match(result.echo ?? '', /hello from Chromium/);
      await page.close();
    });
  }

  for (const transport of ['streamable', 'ws'] as const) {
    it(`${transport}: notifications and a sampling request reach the page`, async () => {
      const page = await open(allowed);
      const result = await page.evaluate(
        async (t: Target) => {
          const { MCPProxyClient } = (window as unknown as PageGlobals).mcp;
          const client = new MCPProxyClient(t);
          client.setRequestHandler('sampling/createMessage', async () => ({
            role: 'assistant',
            content: { type: 'text', text: 'answered in the browser' },
            model: 'page-model',
          }));
          await client.initialize();
          const progress: number[] = [];
          await client.callTool(
            'trigger-long-running-operation',
            { duration: 0.3, steps: 3 },
            { onprogress: (p) => progress.push(p.progress) },
          );
          const sampled = await client.callTool('trigger-sampling-request', { prompt: 'hi', maxTokens: 5 });
          const text = sampled.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
          await client.close();
          return { progress, text };
        },
        { ...target, transport },
      );
      assert.deepEqual(result.progress, [1, 2, 3]);
      assert.match(result.text, /answered in the browser/);
      await page.close();
    });
  }

  for (const transport of ['http', 'streamable'] as const) {
    it(`${transport}: a wrong token surfaces as a ProxyAuthError the page can read`, async () => {
      const page = await open(allowed);
      const result = await page.evaluate(
        async (t: Target) => {
          const { MCPProxyClient, ProxyAuthError, MCPProxyError } = (window as unknown as PageGlobals).mcp;
          const client = new MCPProxyClient({ ...t, proxyToken: 'wrong-token-from-the-browser' });
          try {
            await client.ping();
            return { thrown: false };
          } catch (error) {
            return {
              thrown: true,
              isProxyAuthError: error instanceof ProxyAuthError,
              isRoot: error instanceof MCPProxyError,
              name: (error as Error).name,
              code: (error as InstanceType<typeof MCPProxyError>).code,
              status: (error as InstanceType<typeof MCPProxyError>).status,
              requestId: (error as InstanceType<typeof MCPProxyError>).requestId,
            };
          }
        },
        { ...target, transport },
      );
      assert.deepEqual(
        { ...result, requestId: typeof result.requestId },
        {
          thrown: true,
          isProxyAuthError: true,
          isRoot: true,
          name: 'ProxyAuthError',
          code: 'unauthorized',
          status: 401,
          requestId: 'string',
        },
      );
      await page.close();
    });
  }

  it('ws: a wrong token fails the handshake: the page sees a NetworkError (browsers hide why)', async () => {
    const page = await open(allowed);
    const result = await page.evaluate(
      async (t: Target) => {
        const { MCPProxyClient, NetworkError } = (window as unknown as PageGlobals).mcp;
        const client = new MCPProxyClient({ ...t, proxyToken: 'wrong-token-from-the-browser' });
        const error = await client.ping().then(
          () => undefined,
          (e: unknown) => e,
        );
        return {
          isNetworkError: error instanceof NetworkError,
          code: (error as { code?: unknown }).code,
          closeCode: (error as { data?: { closeCode?: number } }).data?.closeCode,
        };
      },
      { ...target, transport: 'ws' as const },
    );
    assert.deepEqual(result, { isNetworkError: true, code: 'network_error', closeCode: 1006 });
    await page.close();
  });

  for (const transport of TRANSPORTS) {
    it(`${transport}: an MCP server error and a cancelled call behave in the browser as in Node`, async () => {
      const page = await open(allowed);
      const result = await page.evaluate(
        async (t: Target) => {
          const { MCPProxyClient, McpError } = (window as unknown as PageGlobals).mcp;
          const client = new MCPProxyClient(t);
          await client.initialize();
          const unknown = await client.request('no/such-method').then(
            () => undefined,
            (error: unknown) => ({
              isMcpError: error instanceof McpError,
              code: (error as { code?: unknown }).code,
            }),
          );
          const controller = new AbortController();
          const call = client.callTool(
            'trigger-long-running-operation',
            { duration: 10, steps: 2 },
            {
              signal: controller.signal,
            },
          );
          setTimeout(() => controller.abort(), 100);
          const aborted = await call.then(
            () => 'resolved',
            (error: unknown) => (error as Error).name,
          );
          await client.close();
          return { unknown, aborted };
        },
        { ...target, transport },
      );
      assert.deepEqual(result, { unknown: { isMcpError: true, code: -32601 }, aborted: 'AbortError' });
      await page.close();
    });
  }

  for (const transport of TRANSPORTS) {
    it(`${transport}: a page on an origin the proxy does not allow is blocked: NetworkError`, async () => {
      const page = await open(foreign);
      const result = await page.evaluate(
        async (t: Target) => {
          const { MCPProxyClient, NetworkError } = (window as unknown as PageGlobals).mcp;
          const client = new MCPProxyClient(t);
          try {
            await client.initialize();
            return { thrown: false };
          } catch (error) {
            return {
              thrown: true,
              isNetworkError: error instanceof NetworkError,
              code: (error as { code?: unknown }).code,
              // fetch fails with a TypeError; a refused WebSocket handshake closes with 1006.
              cause: ((error as Error).cause as Error | undefined)?.name,
              closeCode: (error as { data?: { closeCode?: number } }).data?.closeCode,
            };
          }
        },
        { ...target, transport },
      );
      assert.deepEqual(result, {
        thrown: true,
        isNetworkError: true,
        code: 'network_error',
        cause: transport === 'ws' ? undefined : 'TypeError',
        closeCode: transport === 'ws' ? 1006 : undefined,
      });
      await page.close();
    });
  }
});
