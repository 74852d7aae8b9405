import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { runFullFlow } from './helpers/flow.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

describe('POST /proxy → server-everything over Streamable HTTP', () => {
  let upstream: EverythingServer;
  let proxy: RunningProxy;

  before(async () => {
    upstream = await startEverything('streamableHttp');
    proxy = await startProxy();
  });
  after(async () => {
    await proxy?.close();
    await upstream?.stop();
  });

  it('carries a whole MCP conversation with the upstream session id, sealed', async () => {
    const { sessionId } = await runFullFlow(proxy, { mcp_server_url: upstream.url });
    // The upstream's session id reaches the caller sealed (issue 14, finding 2): no proxy state.
    assert.match(sessionId, /^mcpp2\./);
  });

  it('accepts the session id in the envelope as well as the header', async () => {
    const init = await postProxy(proxy, {
      mcp_server_url: upstream.url,
      transport: 'streamable-http',
      jsonrpc: '2.0',
      id: 'init',
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    const sessionId = init.headers.get('mcp-session-id');
    assert.ok(sessionId);
    const ping = await postProxy(proxy, {
      mcp_server_url: upstream.url,
      mcp_session_id: sessionId,
      jsonrpc: '2.0',
      id: 'p',
      method: 'ping',
    });
    assert.equal(ping.status, 200);
    assert.deepEqual(ping.body, { jsonrpc: '2.0', id: 'p', result: {} });
  });

  it('skips the empty priming events 2025-11-25 servers open their streams with', async () => {
    const init = await postProxy(proxy, {
      mcp_server_url: upstream.url,
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    assert.equal(init.body.result.protocolVersion, '2025-11-25');
    const headers = {
      'mcp-session-id': init.headers.get('mcp-session-id') ?? '',
      'mcp-protocol-version': '2025-11-25',
    };
    const list = await postProxy(
      proxy,
      { mcp_server_url: upstream.url, jsonrpc: '2.0', id: 2, method: 'tools/list' },
      headers,
    );
    assert.equal(list.status, 200, JSON.stringify(list.body));
    assert.ok(list.body.result.tools.length > 0);
  });

  it('refuses a session id it never issued without forwarding it (404 session_not_found)', async () => {
    const reply = await postProxy(
      proxy,
      { mcp_server_url: upstream.url, jsonrpc: '2.0', id: 1, method: 'tools/list' },
      { 'mcp-session-id': 'no-such-session' },
    );
    assert.equal(reply.status, 404);
    assert.equal(reply.body.error.data.code, 'session_not_found');
    assert.equal(reply.body.id, 1);
  });

  it('maps a session the upstream ended to upstream_session_expired', async () => {
    const { sessionId } = await runFullFlow(proxy, { mcp_server_url: upstream.url });
    // End it upstream through /mcp: the same sealed id is valid there for the same token and URL.
    const ended = await fetch(`${proxy.url}/mcp`, {
      method: 'DELETE',
      headers: {
        'x-proxy-token': proxy.token,
        'x-mcp-server-url': upstream.url,
        'mcp-session-id': sessionId,
      },
    });
    assert.ok(ended.status < 300, String(ended.status));
    const reply = await postProxy(
      proxy,
      { mcp_server_url: upstream.url, jsonrpc: '2.0', id: 1, method: 'tools/list' },
      { 'mcp-session-id': sessionId },
    );
    assert.ok(reply.status === 404 || reply.status === 400, String(reply.status));
    assert.match(reply.body.error.data.code, /^upstream_(session_expired|rejected)$/);
    assert.equal(reply.body.id, 1);
  });

  it('reports an upstream rejection of a session-less call with the upstream message', async () => {
    const reply = await postProxy(proxy, {
      mcp_server_url: upstream.url,
      transport: 'streamable-http',
      jsonrpc: '2.0',
      id: 9,
      method: 'tools/list',
    });
    assert.equal(reply.status, 400);
    assert.equal(reply.body.error.data.code, 'upstream_rejected');
    assert.equal(reply.body.error.data.upstreamStatus, 400);
    assert.match(reply.body.error.message, /not initialized|session/i);
  });
});
