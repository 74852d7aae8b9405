import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import WebSocket from 'ws';
import { eventually } from './helpers/eventually.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const INIT = {
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};

describe('per-server tool allowlists', () => {
  let streamable: EverythingServer;
  let sse: EverythingServer;
  let proxy: RunningProxy;
  before(async () => {
    streamable = await startEverything('streamableHttp');
    sse = await startEverything('sse');
    const config = join(mkdtempSync(join(tmpdir(), 'mcp-proxy-tools-')), 'proxy.yaml');
    writeFileSync(
      config,
      [
        'servers:',
        '  direct:',
        `    url: ${streamable.url}`,
        '    tools: [echo, get-sum]',
        '  legacy:',
        `    url: ${sse.url}`,
        '    tools: [echo]',
        '',
      ].join('\n'),
    );
    proxy = await startProxy({
      HOST: '127.0.0.1',
      MCP_PROXY_CONFIG: config,
      WS_ALLOW_MISSING_ORIGIN: 'true',
    });
  });
  after(async () => {
    await proxy?.close();
    await streamable?.stop();
    await sse?.stop();
  });

  for (const [server, visible] of [
    ['direct', ['echo', 'get-sum']],
    ['legacy', ['echo']],
  ] as const) {
    it(`/mcp (${server}) lists only the allowed tools and hides the others`, async () => {
      const client = new Client({ name: 'allowlist', version: '1' });
      const transport = new StreamableHTTPClientTransport(new URL(`${proxy.url}/servers/${server}/mcp`), {
        requestInit: { headers: { 'x-proxy-token': proxy.token } },
      });
      await client.connect(transport);
      try {
        const tools = await client.listTools();
        assert.deepEqual(tools.tools.map((t) => t.name).sort(), [...visible].sort());
        const echo = await client.callTool({ name: 'echo', arguments: { message: 'ok' } });
        assert.deepEqual(echo.content, [{ type: 'text', text: 'Echo: ok' }]);
        await assert.rejects(
          client.callTool({ name: 'get-env', arguments: {} }),
          (error: Error & { code?: number }) =>
            error.code === -32602 && /Unknown tool: get-env/.test(error.message),
        );
      } finally {
        await client.close();
      }
    });
  }

  it('POST /proxy filters and refuses the same way', async () => {
    const init = await postProxy(proxy, { server: 'direct', ...INIT });
    const sessionId = init.headers.get('mcp-session-id') ?? '';
    const headers = { 'mcp-session-id': sessionId };
    const list = await postProxy(
      proxy,
      { server: 'direct', jsonrpc: '2.0', id: 1, method: 'tools/list' },
      headers,
    );
    assert.deepEqual(list.body.result.tools.map((t: { name: string }) => t.name).sort(), ['echo', 'get-sum']);
    const hidden = await postProxy(
      proxy,
      {
        server: 'direct',
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'get-env', arguments: {} },
      },
      headers,
    );
    assert.equal(hidden.status, 200);
    assert.equal(hidden.body.error.code, -32602);
  });

  it('WS /ws filters and refuses the same way', async () => {
    const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/ws?server=legacy`, [
      'mcp',
      `proxy-token.${proxy.token}`,
    ]);
    const frames: Array<{
      id?: number;
      result?: { tools?: Array<{ name: string }> };
      error?: { code: number };
    }> = [];
    ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify(INIT));
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }));
    ws.send(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'get-sum', arguments: { a: 1, b: 2 } },
      }),
    );
    await eventually(() => frames.some((f) => f.id === 1) && frames.some((f) => f.id === 2), {
      timeoutMs: 10_000,
      what: 'both answers',
    }).catch(() => {});
    assert.deepEqual(
      frames.find((f) => f.id === 1)?.result?.tools?.map((t) => t.name),
      ['echo'],
    );
    assert.equal(frames.find((f) => f.id === 2)?.error?.code, -32602);
    ws.close();
  });
});
