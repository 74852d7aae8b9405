/**
 * Issue #14.10: whatever the proxy answers carries `X-Content-Type-Options: nosniff`, and content
 * relayed from an upstream that is neither JSON nor an event stream (an HTML page from a
 * configured server) is served with `Content-Security-Policy: sandbox`, so it cannot run script
 * on the proxy's origin.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const HTML = '<!doctype html><script>fetch("/proxy")</script>';

describe('relayed content that is not MCP', () => {
  let proxy: RunningProxy;
  let upstream: Server;
  before(async () => {
    // An upstream answering every request with an HTML page, as a misconfigured server might.
    upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const json = req.url === '/json';
        res.writeHead(json ? 400 : 200, { 'content-type': json ? 'application/json' : 'text/html' });
        res.end(
          json ? JSON.stringify({ jsonrpc: '2.0', id: 1, error: { code: -32600, message: 'no' } }) : HTML,
        );
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const { port } = upstream.address() as AddressInfo;
    const config = join(mkdtempSync(join(tmpdir(), 'mcp-proxy-relay-')), 'proxy.yaml');
    writeFileSync(
      config,
      [
        'servers:',
        '  html:',
        `    url: http://127.0.0.1:${port}/mcp`,
        '    transport: streamable-http',
        '  json:',
        `    url: http://127.0.0.1:${port}/json`,
        '    transport: streamable-http',
        '',
      ].join('\n'),
    );
    proxy = await startProxy({ MCP_PROXY_CONFIG: config });
  });
  after(async () => {
    await proxy?.close();
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  async function postMcp(server: string): Promise<Response> {
    return fetch(`${proxy.url}/servers/${server}/mcp`, {
      method: 'POST',
      headers: {
        'x-proxy-token': proxy.token,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
  }

  it('relays an HTML answer sandboxed and unsniffable', async () => {
    const response = await postMcp('html');
    const body = await response.text();
    assert.equal(response.headers.get('content-type'), 'text/html');
    assert.equal(body, HTML, 'the test only means something if the HTML is relayed');
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(response.headers.get('content-security-policy'), 'sandbox');
  });

  it('relays JSON without the sandbox, but still nosniff', async () => {
    const response = await postMcp('json');
    await response.text();
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(response.headers.get('content-security-policy'), null);
  });

  it('sends nosniff on the proxy’s own answers and errors too', async () => {
    const unauthenticated = await fetch(`${proxy.url}/proxy`, { method: 'POST', body: '{}' });
    await unauthenticated.text();
    assert.equal(unauthenticated.headers.get('x-content-type-options'), 'nosniff');
    const refused = await postProxy(proxy, { server: 'nope', jsonrpc: '2.0', id: 1, method: 'ping' });
    assert.equal(refused.headers.get('x-content-type-options'), 'nosniff');
    const health = await fetch(`${proxy.url}/health`);
    await health.text();
    assert.equal(health.headers.get('x-content-type-options'), 'nosniff');
    const missing = await fetch(`${proxy.url}/no-such-route`);
    await missing.text();
    assert.equal(missing.headers.get('x-content-type-options'), 'nosniff');
  });
});
