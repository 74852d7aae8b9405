import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const PROXY_SECRET = 'proxy-secret-LEAKCHECK-4b1d8e7a9c';
const MCP_SECRET = 'mcp-secret-LEAKCHECK-77f0a2c3e1';

describe('logs', () => {
  let upstream: EverythingServer;
  let proxy: RunningProxy;
  before(async () => {
    upstream = await startEverything('streamableHttp');
    proxy = await startProxy({ PROXY_TOKEN: PROXY_SECRET, LOG_LEVEL: 'trace' });
  });
  after(async () => {
    await proxy?.close();
    await upstream?.stop();
  });

  it('never contain a token, whatever path it took', async () => {
    const init = await postProxy(proxy, {
      mcp_server_url: upstream.url,
      mcp_token: MCP_SECRET,
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    assert.equal(init.status, 200);
    // Failures log more detail: provoke some, with the secrets in every place a caller might put them.
    await postProxy({ url: proxy.url, token: `${PROXY_SECRET}-wrong` }, { mcp_token: MCP_SECRET });
    await postProxy(proxy, {
      mcp_server_url: 'ftp://x/',
      mcp_token: MCP_SECRET,
      jsonrpc: '2.0',
      id: 2,
      method: 'x',
    });
    await fetch(`${proxy.url}/nowhere?proxy_token=${PROXY_SECRET}&mcp_token=${MCP_SECRET}`, {
      headers: { authorization: `Bearer ${MCP_SECRET}`, 'x-mcp-token': MCP_SECRET },
    });

    const text = proxy.logs.join('\n');
    assert.ok(proxy.logs.length >= 4, 'log lines were captured');
    assert.ok(!text.includes(PROXY_SECRET), 'proxy token absent from logs');
    assert.ok(!text.includes(MCP_SECRET), 'MCP token absent from logs');
    assert.ok(!text.includes('LEAKCHECK'));
  });

  it('write one line per request with method, MCP method, target, status and duration', async () => {
    const before = proxy.logs.length;
    await postProxy(proxy, { mcp_server_url: upstream.url, jsonrpc: '2.0', id: 3, method: 'ping' });
    const lines = proxy.logs
      .slice(before)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'request');
    assert.equal(lines.length, 1);
    const line = lines[0] as Record<string, unknown>;
    assert.equal(line.method, 'POST');
    assert.equal(line.url, '/proxy');
    assert.equal(line.mcpMethod, 'ping');
    assert.equal(line.target, new URL(upstream.url).host);
    assert.equal(typeof line.status, 'number');
    assert.equal(typeof line.durationMs, 'number');
  });
});
