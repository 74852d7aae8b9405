import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { runFullFlow } from './helpers/flow.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const SECOND_TOKEN = 'second-rotation-token-fedcba9876543210';

describe('POST /proxy → server-everything over legacy HTTP+SSE', () => {
  let upstream: EverythingServer;
  let proxy: RunningProxy;

  before(async () => {
    upstream = await startEverything('sse');
    proxy = await startProxy({ PROXY_TOKENS: SECOND_TOKEN });
  });
  after(async () => {
    await proxy?.close();
    await upstream?.stop();
  });

  it('detects the legacy transport by probing and carries a whole conversation', async () => {
    const { sessionId } = await runFullFlow(proxy, { mcp_server_url: upstream.url });
    assert.match(sessionId, /^mcpp-[\w-]{20,}$/, 'a proxy-issued opaque session id');
  });

  it('carries a conversation when the transport is named explicitly', async () => {
    await runFullFlow(proxy, { mcp_server_url: upstream.url, transport: 'sse' });
  });

  it('answers a session-less call over a one-off stream', async () => {
    const reply = await postProxy(proxy, {
      mcp_server_url: upstream.url,
      jsonrpc: '2.0',
      id: 5,
      method: 'ping',
    });
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.body, { jsonrpc: '2.0', id: 5, result: {} });
    assert.equal(reply.headers.get('mcp-session-id'), null, 'no session is left behind');
  });

  it('binds a proxy session to the token that opened it', async () => {
    const init = await postProxy(proxy, {
      mcp_server_url: upstream.url,
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    const sessionId = init.headers.get('mcp-session-id');
    assert.ok(sessionId);
    const body = { mcp_server_url: upstream.url, jsonrpc: '2.0', id: 2, method: 'ping' };
    const own = await postProxy(proxy, body, { 'mcp-session-id': sessionId });
    assert.equal(own.status, 200);
    const other = await postProxy({ url: proxy.url, token: SECOND_TOKEN }, body, {
      'mcp-session-id': sessionId,
    });
    assert.equal(other.status, 404);
    assert.equal(other.body.error.data.code, 'session_not_found');
  });

  it('refuses an unknown or expired proxy session id', async () => {
    const reply = await postProxy(
      proxy,
      { mcp_server_url: upstream.url, jsonrpc: '2.0', id: 3, method: 'ping' },
      { 'mcp-session-id': 'mcpp-doesnotexist000000000000' },
    );
    assert.equal(reply.status, 404);
    assert.equal(reply.body.error.data.code, 'session_not_found');
    assert.equal(reply.body.id, 3);
  });
});

describe('proxy sessions expire when idle', () => {
  it('closes an idle legacy session and reports it as not found', async () => {
    const upstream = await startEverything('sse');
    const clock = new ManualClock();
    const proxy = await startProxy({ SESSION_IDLE_TIMEOUT_MS: '300' }, { clock });
    try {
      const init = await postProxy(proxy, {
        mcp_server_url: upstream.url,
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      });
      const sessionId = init.headers.get('mcp-session-id') ?? '';
      clock.advance(800);
      const reply = await postProxy(
        proxy,
        { mcp_server_url: upstream.url, jsonrpc: '2.0', id: 2, method: 'ping' },
        { 'mcp-session-id': sessionId },
      );
      assert.equal(reply.status, 404);
      assert.equal(reply.body.error.data.code, 'session_not_found');
    } finally {
      await proxy.close();
      await upstream.stop();
    }
  });

  it('caps sessions in total (503 for every token)', async () => {
    const upstream = await startEverything('sse');
    const proxy = await startProxy({ MAX_SESSIONS: '1', PROXY_TOKENS: SECOND_TOKEN });
    try {
      const init = (token: string) =>
        postProxy(
          { url: proxy.url, token },
          {
            mcp_server_url: upstream.url,
            transport: 'sse',
            jsonrpc: '2.0',
            id: 1,
            method: 'initialize',
            params: {
              protocolVersion: '2024-11-05',
              capabilities: {},
              clientInfo: { name: 't', version: '1' },
            },
          },
        );
      assert.equal((await init(proxy.token)).status, 200);
      const other = await init(SECOND_TOKEN);
      assert.equal(other.status, 503);
      assert.equal(other.body.error.data.code, 'session_limit');
    } finally {
      await proxy.close();
      await upstream.stop();
    }
  });

  it('caps sessions per token', async () => {
    const upstream = await startEverything('sse');
    const proxy = await startProxy({ MAX_SESSIONS_PER_TOKEN: '1' });
    try {
      const init = (id: number) =>
        postProxy(proxy, {
          mcp_server_url: upstream.url,
          transport: 'sse',
          jsonrpc: '2.0',
          id,
          method: 'initialize',
          params: {
            protocolVersion: '2024-11-05',
            capabilities: {},
            clientInfo: { name: 't', version: '1' },
          },
        });
      assert.equal((await init(1)).status, 200);
      const second = await init(2);
      assert.equal(second.status, 429);
      assert.equal(second.body.error.data.code, 'session_limit');
    } finally {
      await proxy.close();
      await upstream.stop();
    }
  });
});
