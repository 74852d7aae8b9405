/**
 * MCP 2026-07-28 through `WS /ws`: raw JSON-RPC frames carrying the modern `_meta` envelope
 * reach a modern-only SDK v2 server over the proxy's long-lived Streamable HTTP upstream, which
 * derives the metadata headers per message. Responses, progress, InputRequiredResults and
 * subscriptions/listen notifications all come back on the socket.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GREETING_TEXT, GREETING_URI, startModernServer } from './fixtures/modern-server.ts';
import { connectWs, MODERN, modernMeta, modernRequest, type WsPeer } from './helpers/modern-client.ts';
import { proxiedUpstream } from './helpers/proxied-upstream.ts';

const APP = 'http://app.example.test';

describe('WS /ws with modern frames → modern-only server', () => {
  let peer: WsPeer;
  after(async () => {
    await peer?.close();
  });
  const fixture = proxiedUpstream(() => startModernServer(), { HOST: '127.0.0.1', CORS_ORIGINS: APP });
  before(async () => {
    peer = await connectWs(fixture.proxy, fixture.upstream.url, APP);
  });

  const call = async (id: string, method: string, params: Record<string, unknown> = {}, meta = {}) => {
    peer.send(modernRequest(id, method, params, meta));
    return peer.next((f) => f.id === id && !('method' in f));
  };

  it('answers server/discover, tools/list and tools/call, deriving the headers per message', async () => {
    const discover = await call('discover', 'server/discover');
    assert.deepEqual(discover.result.supportedVersions, [MODERN]);
    const list = await call('list', 'tools/list');
    assert.ok(list.result.tools.some((t: { name: string }) => t.name === 'slow'));
    const echo = await call('echo', 'tools/call', { name: 'echo', arguments: { message: 'over ws' } });
    assert.equal(echo.result.content[0].text, 'Echo: over ws');
    const seen = fixture.upstream.requests.findLast((r) => r.method === 'tools/call');
    assert.equal(seen?.headers['mcp-protocol-version'], MODERN);
    assert.equal(seen?.headers['mcp-method'], 'tools/call');
    assert.equal(seen?.headers['mcp-name'], 'echo');
    assert.ok(!fixture.upstream.requests.some((r) => r.httpMethod !== 'POST'), 'no GET stream, no DELETE');
  });

  it('reads a resource and gets a prompt', async () => {
    const read = await call('read', 'resources/read', { uri: GREETING_URI });
    assert.equal(read.result.contents[0].text, GREETING_TEXT);
    const prompt = await call('prompt', 'prompts/get', { name: 'greet', arguments: { name: 'Ada' } });
    assert.equal(prompt.result.messages[0].content.text, 'Say hello to Ada.');
  });

  it('delivers progress notifications before the result', async () => {
    const result = await call(
      'slow',
      'tools/call',
      { name: 'slow', arguments: { steps: 3, intervalMs: 10 } },
      { progressToken: 'ws-progress' },
    );
    assert.equal(result.result.content[0].text, 'done after 3 steps');
    const progress = peer.frames.filter(
      (f) => f.method === 'notifications/progress' && f.params.progressToken === 'ws-progress',
    );
    assert.deepEqual(
      progress.map((f) => f.params.progress),
      [1, 2, 3],
    );
  });

  it('hands an InputRequiredResult back; the retried frame completes', async () => {
    const first = await call('confirm-1', 'tools/call', { name: 'confirm', arguments: { action: 'merge' } });
    assert.equal(first.result.resultType, 'input_required');
    assert.equal(first.result.inputRequests.confirm.method, 'elicitation/create');
    const retry = await call('confirm-2', 'tools/call', {
      name: 'confirm',
      arguments: { action: 'merge' },
      inputResponses: { confirm: { action: 'accept', content: { ok: true } } },
      requestState: first.result.requestState,
    });
    assert.equal(retry.result.content[0].text, 'Confirmed: merge (state confirm:merge)');
  });

  it('carries subscriptions/listen: the acknowledgement, then list_changed', async () => {
    peer.send(modernRequest('listen', 'subscriptions/listen', { notifications: { toolsListChanged: true } }));
    const ack = await peer.next((f) => f.method === 'notifications/subscriptions/acknowledged');
    assert.deepEqual(ack.params.notifications, { toolsListChanged: true });
    fixture.upstream.notify.toolsChanged();
    const changed = await peer.next((f) => f.method === 'notifications/tools/list_changed');
    assert.equal(changed.params._meta['io.modelcontextprotocol/subscriptionId'], 'listen');
  });

  it('cancels what is in flight when the socket closes: the server observes it', async () => {
    const other = await connectWs(fixture.proxy, fixture.upstream.url, APP);
    const since = fixture.upstream.cancellations.length;
    try {
      other.send(modernRequest('warm', 'server/discover'));
      await other.next((f) => f.id === 'warm');
      other.send(
        modernRequest(
          'long',
          'tools/call',
          { name: 'slow', arguments: { steps: 100, intervalMs: 30 } },
          { progressToken: 'l' },
        ),
      );
      await other.next((f) => f.method === 'notifications/progress');
    } finally {
      await other.close();
    }
    const observed = await fixture.upstream.waitForCancellation(since, 5_000);
    assert.equal(observed.requestId, 'long');
  });
});

describe('WS /ws with a modern-only upstream: Mcp-Param headers, cancellation, first frames', () => {
  const fixture = proxiedUpstream(() => startModernServer(), { HOST: '127.0.0.1', CORS_ORIGINS: APP });

  it('calls a tool with an x-mcp-header parameter (the proxy must mirror Mcp-Param-Region)', async () => {
    const peer = await connectWs(fixture.proxy, fixture.upstream.url, APP);
    try {
      peer.send(modernRequest('w', 'tools/call', { name: 'weather', arguments: { region: 'eu' } }));
      const reply = await peer.next((f) => f.id === 'w');
      assert.equal(reply.result?.content[0].text, 'Sunny in eu (header: eu)', JSON.stringify(reply));
    } finally {
      await peer.close();
    }
  });

  it('cancels an upstream request when the client sends notifications/cancelled', async () => {
    const peer = await connectWs(fixture.proxy, fixture.upstream.url, APP);
    const since = fixture.upstream.cancellations.length;
    try {
      peer.send(modernRequest('warm', 'server/discover'));
      await peer.next((f) => f.id === 'warm');
      peer.send(
        modernRequest(
          'c',
          'tools/call',
          { name: 'slow', arguments: { steps: 100, intervalMs: 30 } },
          { progressToken: 'c' },
        ),
      );
      await peer.next((f) => f.method === 'notifications/progress');
      peer.send({
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: 'c', reason: 'user', _meta: modernMeta() },
      });
      const observed = await fixture.upstream.waitForCancellation(since, 1_000);
      assert.equal(observed.requestId, 'c');
    } finally {
      await peer.close();
    }
  });

  it('cancels a first-message call when the socket closes (server never contacted before)', async () => {
    // A modern client has no handshake, so its first frame may be a long call. While the very
    // first send to an unknown URL is in flight, AutoHttpTransport.close() has no #inner to close.
    const fresh = await startModernServer();
    try {
      const peer = await connectWs(fixture.proxy, fresh.url, APP);
      peer.send(
        modernRequest(
          'first',
          'tools/call',
          { name: 'slow', arguments: { steps: 60, intervalMs: 30 } },
          { progressToken: 'f' },
        ),
      );
      await peer.next((f) => f.method === 'notifications/progress');
      await peer.close();
      const observed = await fresh.waitForCancellation(0, 1_000);
      assert.equal(observed.requestId, 'first');
    } finally {
      // Ends the leaked upstream stream too, so the proxy's close() need not wait for it.
      await fresh.stop();
    }
  });
});
