/**
 * Issue #14.10: whatever the proxy answers carries `X-Content-Type-Options: nosniff`, and every
 * response relayed from an upstream carries `Content-Security-Policy: sandbox; default-src 'none'`
 * so it cannot run script on the proxy's origin. Review F1: the upstream's `Content-Type` is
 * read strictly (exactly one media type, essence `application/json` or `text/event-stream`) and
 * relayed in its canonical spelling; anything else, including types that merely start like an
 * MCP type but that a browser reads as HTML or XML, is relayed as `application/octet-stream`.
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
const XHTML = '<x:script xmlns:x="http://www.w3.org/1999/xhtml">fetch("/proxy")</x:script>';
const SANDBOX = "sandbox; default-src 'none'";

/**
 * Upstream `Content-Type` fields (one, or several sent as separate header lines) and what the
 * proxy must relay for each. A browser reads every "opaque" one as something it might render.
 */
const TYPES: readonly (readonly [sent: string | readonly string[], relayed: string])[] = [
  ['text/html', 'application/octet-stream'],
  ['application/json+xml', 'application/octet-stream'],
  ['text/event-stream+xml', 'application/octet-stream'],
  ['application/jsonx', 'application/octet-stream'],
  ['application/json, text/html', 'application/octet-stream'],
  ['text/event-stream, text/html', 'application/octet-stream'],
  ['application/json;x=1,text/html;charset=utf-8', 'application/octet-stream'],
  ['application/json; charset=utf-8, text/html', 'application/octet-stream'],
  ['application/json text/html', 'application/octet-stream'],
  ['application/json; charset=utf-8; charset=latin1', 'application/octet-stream'],
  ['application/json; charset="utf-8, text/html"', 'application/octet-stream'],
  [['application/json', 'text/html'], 'application/octet-stream'],
  ['application/json', 'application/json'],
  ['Application/JSON ; Charset="UTF-8"', 'application/json; charset=utf-8'],
  ['application/json;profile=x;', 'application/json'],
];

describe('relayed content that is not MCP', () => {
  let proxy: RunningProxy;
  let upstream: Server;
  before(async () => {
    // An upstream answering every request with an HTML page, as a misconfigured server might.
    upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const typed = /^\/typed\/(\d+)$/.exec(req.url ?? '');
        if (typed) {
          const [sent] = TYPES[Number(typed[1])] ?? ['text/html'];
          // An array goes out as one header line per type.
          res.setHeader('content-type', sent);
          res.writeHead(200);
          res.end(typeof sent === 'string' && sent.includes('xml') ? XHTML : HTML);
        } else if (req.url === '/sse') {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.end(`data: ${JSON.stringify({ jsonrpc: '2.0', id: 1, result: { tools: [] } })}\n\n`);
        } else if (req.url === '/json') {
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ jsonrpc: '2.0', id: 1, error: { code: -32600, message: 'no' } }));
        } else {
          res.writeHead(200, { 'content-type': 'text/html' });
          res.end(HTML);
        }
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
        '  sse:',
        `    url: http://127.0.0.1:${port}/sse`,
        '    transport: streamable-http',
        ...TYPES.flatMap((_, index) => [
          `  typed${index}:`,
          `    url: http://127.0.0.1:${port}/typed/${index}`,
          '    transport: streamable-http',
        ]),
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
    assert.equal(response.headers.get('content-type'), 'application/octet-stream');
    assert.equal(body, HTML, 'the test only means something if the HTML is relayed');
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(response.headers.get('content-security-policy'), SANDBOX);
  });

  it('relays JSON as JSON, sandboxed too (CSP binds documents only) and nosniff', async () => {
    const response = await postMcp('json');
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: { message: string } };
    assert.equal(body.error.message, 'no');
    assert.equal(response.headers.get('content-type'), 'application/json');
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(response.headers.get('content-security-policy'), SANDBOX);
  });

  it('relays an event stream as one, sandboxed', async () => {
    const response = await postMcp('sse');
    assert.equal(response.headers.get('content-type'), 'text/event-stream');
    assert.equal(response.headers.get('content-security-policy'), SANDBOX);
    assert.match(await response.text(), /"tools":\[\]/);
  });

  for (const [index, [sent, relayed]] of TYPES.entries()) {
    it(`relays an answer typed ${JSON.stringify(sent)} as ${relayed}, sandboxed`, async () => {
      const response = await postMcp(`typed${index}`);
      const body = await response.text();
      assert.equal(body, typeof sent === 'string' && sent.includes('xml') ? XHTML : HTML);
      assert.equal(response.headers.get('content-type'), relayed);
      assert.equal(response.headers.get('content-security-policy'), SANDBOX);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    });
  }

  it('POST /proxy never relays an upstream body: a crafted type becomes a coded JSON error', async () => {
    for (const index of [0, 1, 3, 6]) {
      const reply = await postProxy(proxy, {
        server: `typed${index}`,
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/list',
      });
      assert.equal(reply.headers.get('content-type'), 'application/json; charset=utf-8', String(index));
      assert.equal(reply.body.error.data.code, 'upstream_protocol_error', String(index));
      assert.ok(!JSON.stringify(reply.body).includes('script'), String(index));
    }
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
