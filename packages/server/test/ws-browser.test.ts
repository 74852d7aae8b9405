/**
 * `/ws` from a real browser: Debian's Chromium loads a page from another loopback origin than
 * the proxy, opens the socket with the token in the subprotocol, initializes, lists tools, calls
 * one and receives a notification; a page from an origin the proxy does not allow is refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../../client/test/helpers/chromium.ts';
import { type StaticServer, serveStatic } from '../../client/test/helpers/static.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

// biome-ignore lint/suspicious/noExplicitAny: frames and page results are arbitrary JSON.
type Json = any;

/** Runs in the page: a minimal MCP conversation over the proxy's WebSocket. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>ws test</title><script>
window.runMcp = (url, token) => new Promise((resolve) => {
  const seen = { frames: [], opened: false };
  const ws = new WebSocket(url, ['mcp', 'proxy-token.' + token]);
  const send = (m) => ws.send(JSON.stringify(m));
  const finish = (extra) => { ws.close(); resolve({ ...seen, ...extra }); };
  const timer = setTimeout(() => finish({ timedOut: true }), 15000);
  ws.onopen = () => {
    seen.opened = true;
    seen.protocol = ws.protocol;
    send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18',
      capabilities: {}, clientInfo: { name: 'browser', version: '1' } } });
  };
  ws.onerror = () => { seen.error = true; };
  ws.onclose = (event) => { clearTimeout(timer); resolve({ ...seen, closeCode: event.code }); };
  ws.onmessage = (event) => {
    const m = JSON.parse(event.data);
    seen.frames.push(m);
    if (m.id === 1) {
      send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    } else if (m.id === 2) {
      send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { message: 'from the browser' } } });
    }
    const done = seen.frames.some((f) => f.id === 3) && seen.frames.some((f) => f.method && !('id' in f));
    if (done) { clearTimeout(timer); finish({}); }
  };
});
</script>`;

describe('WS /ws in Chromium', () => {
  let upstream: EverythingServer;
  let proxy: RunningProxy;
  let allowed: StaticServer;
  let foreign: StaticServer;
  let browser: Browser;

  before(async () => {
    upstream = await startEverything('sse');
    allowed = await serveStatic({ '/': ['text/html', PAGE] });
    foreign = await serveStatic({ '/': ['text/html', PAGE] });
    proxy = await startProxy({ HOST: '127.0.0.1', CORS_ORIGINS: allowed.origin });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await proxy?.close();
    await allowed?.stop();
    await foreign?.stop();
    await upstream?.stop();
  });

  const run = async (origin: string) => {
    const page = await browser.newPage();
    try {
      await page.goto(`${origin}/`);
      const url = `${proxy.url.replace('http', 'ws')}/ws?mcp_server_url=${encodeURIComponent(upstream.url)}`;
      return (await page.evaluate(
        ([u, t]) =>
          (globalThis as unknown as { runMcp: (url?: string, token?: string) => Promise<Json> }).runMcp(u, t),
        [url, proxy.token],
      )) as Json;
    } finally {
      await page.close();
    }
  };

  it('initializes, lists tools, calls one and receives a notification from an allowed origin', async () => {
    const result = await run(allowed.origin);
    assert.equal(result.opened, true);
    assert.equal(result.protocol, 'mcp');
    assert.equal(result.timedOut, undefined, JSON.stringify(result).slice(0, 500));
    const byId = (id: number) => result.frames.find((f: Json) => f.id === id);
    assert.equal(typeof byId(1).result.serverInfo.name, 'string');
    assert.ok(byId(2).result.tools.some((t: Json) => t.name === 'echo'));
    assert.equal(byId(3).result.content[0].text, 'Echo: from the browser');
    assert.ok(
      result.frames.some((f: Json) => typeof f.method === 'string' && f.method.startsWith('notifications/')),
    );
  });

  it('is refused from an origin the proxy does not allow', async () => {
    const result = await run(foreign.origin);
    assert.equal(result.opened, false);
    assert.equal(result.closeCode, 1006);
    assert.equal(result.frames.length, 0);
    assert.match(
      proxy.logs.join('\n'),
      /websocket refused.*origin_forbidden|origin_forbidden.*websocket refused/,
    );
  });
});
