/**
 * Crossing protocol eras through the proxy, as it behaves TODAY: the proxy passes each era
 * through but does not bridge between them (docs/protocol-versions.md has the design for
 * that). A legacy (2025, `initialize`) client in front of a modern-only server, and a modern
 * (2026-07-28, `server/discover`) client in front of a legacy-only server, both get a clear
 * refusal; what does work is an era overlap one side provides itself (a dual-era server, or a
 * client that falls back to `initialize`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type ModernServer, startModernServer } from './fixtures/modern-server.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import {
  connectLegacyClient,
  connectModernClient,
  connectWs,
  MODERN,
  modernRequest,
} from './helpers/modern-client.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const APP = 'http://app.example.test';
const INITIALIZE = {
  jsonrpc: '2.0',
  id: 'init',
  method: 'initialize',
  params: {
    protocolVersion: '2025-11-25',
    capabilities: {},
    clientInfo: { name: 'legacy-raw', version: '1' },
  },
};

describe('legacy client → proxy → modern server', () => {
  let modernOnly: ModernServer;
  let dualEra: ModernServer;
  let proxy: RunningProxy;
  before(async () => {
    modernOnly = await startModernServer();
    dualEra = await startModernServer({ legacy: 'stateless' });
    proxy = await startProxy({ HOST: '127.0.0.1', CORS_ORIGINS: APP });
  });
  after(async () => {
    await proxy?.close();
    await modernOnly?.stop();
    await dualEra?.stop();
  });

  it("/mcp: SDK v1 → modern-only server gets the server's own refusal, with its supported versions (no bridging)", async () => {
    await assert.rejects(connectLegacyClient(proxy, modernOnly.url), (error: Error) => {
      assert.match(error.message, /Unsupported protocol version: 2025-11-25/);
      assert.match(
        error.message,
        /"supported":\["2026-07-28"\]/,
        'the -32022 data reaches the client intact',
      );
      return true;
    });
    const initialize = modernOnly.requests.find((r) => r.method === 'initialize');
    assert.equal(initialize?.status, 400, 'the server refused initialize (-32022)');
    assert.ok(!modernOnly.requests.some((r) => r.method === 'server/discover'), 'the proxy did not bridge');
  });

  it('/mcp: SDK v1 → dual-era server works: the server serves 2025 itself', async () => {
    const legacy = await connectLegacyClient(proxy, dualEra.url);
    try {
      assert.equal(legacy.client.getServerVersion()?.name, 'mcp-proxy-modern-fixture');
      const result = await legacy.client.callTool({ name: 'echo', arguments: { message: 'old' } });
      assert.deepEqual(result.content, [{ type: 'text', text: 'Echo: old' }]);
    } finally {
      await legacy.close();
    }
    assert.ok(dualEra.requests.some((r) => r.method === 'initialize' && r.status === 200));
  });

  it("POST /proxy: a 2025 initialize to a modern-only server gets the server's JSON-RPC refusal", async () => {
    const reply = await postProxy(proxy, { mcp_server_url: modernOnly.url, ...INITIALIZE });
    // The server's own error answers the request (as any upstream JSON-RPC error does: HTTP 200).
    assert.equal(reply.status, 200);
    assert.equal(reply.body.id, 'init');
    assert.equal(reply.body.error.code, -32022);
    assert.match(reply.body.error.message, /Unsupported protocol version/);
    assert.deepEqual(reply.body.error.data.supported, ['2026-07-28']);
  });

  it('WS /ws: a 2025 initialize frame to a modern-only server gets an error frame', async () => {
    const peer = await connectWs(proxy, modernOnly.url, APP);
    try {
      peer.send(INITIALIZE);
      const reply = await peer.next((f) => f.id === 'init');
      assert.ok(reply.error, JSON.stringify(reply));
      assert.match(reply.error.message, /Unsupported protocol version/);
    } finally {
      await peer.close();
    }
  });
});

describe('modern client → proxy → legacy server (server-everything)', () => {
  let everything: EverythingServer;
  let proxy: RunningProxy;
  before(async () => {
    everything = await startEverything('streamableHttp');
    proxy = await startProxy({ HOST: '127.0.0.1', CORS_ORIGINS: APP });
  });
  after(async () => {
    await proxy?.close();
    await everything?.stop();
  });

  it('/mcp: SDK v2 pinned to 2026-07-28 fails era negotiation (no bridging)', async () => {
    await assert.rejects(connectModernClient(proxy, everything.url), (error: Error & { code?: unknown }) => {
      assert.equal(error.code, 'ERA_NEGOTIATION_FAILED', String(error));
      return true;
    });
  });

  it("/mcp: SDK v2 in 'auto' mode falls back to initialize and works in the legacy era", async () => {
    const auto = await connectModernClient(proxy, everything.url, { mode: 'auto' });
    try {
      assert.equal(auto.client.getProtocolEra(), 'legacy');
      assert.notEqual(auto.client.getNegotiatedProtocolVersion(), MODERN);
      const result = await auto.client.callTool({ name: 'echo', arguments: { message: 'new' } });
      assert.deepEqual(result.content, [{ type: 'text', text: 'Echo: new' }]);
    } finally {
      await auto.close();
    }
  });

  it('POST /proxy: a modern request to a legacy server gets a 400 error', async () => {
    const reply = await postProxy(proxy, {
      mcp_server_url: everything.url,
      ...modernRequest(1, 'tools/list'),
    });
    assert.equal(reply.status, 400);
    assert.match(reply.body.error.message, /not initialized/i);
  });

  it('WS /ws: a modern frame to a legacy server gets an error frame', async () => {
    const peer = await connectWs(proxy, everything.url, APP);
    try {
      peer.send(modernRequest('d', 'server/discover'));
      const reply = await peer.next((f) => f.id === 'd');
      assert.ok(reply.error, JSON.stringify(reply));
      assert.match(reply.error.message, /not initialized/i);
    } finally {
      await peer.close();
    }
  });
});
