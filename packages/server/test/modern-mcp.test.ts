/**
 * MCP 2026-07-28 through `/mcp`: the official SDK v2 client, negotiating the sessionless era
 * with `server/discover`, reaches a modern-only SDK v2 server through the proxy's stateless
 * pass-through, with every feature of the era (Mcp-Param-* mirroring, InputRequiredResult
 * round trips, progress, cancellation by closing the stream, subscriptions/listen), and raw
 * requests check what the proxy itself adds: refusal of header/body disagreement, forwarding of
 * unknown Mcp-Param-* headers, and the upstream's 405 for GET and DELETE relayed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GREETING_TEXT, GREETING_URI, startModernServer } from './fixtures/modern-server.ts';
import {
  connectModernClient,
  MODERN,
  type ModernClient,
  mcpFetch,
  modernHeaders,
  modernRequest,
  SAMPLED_TEXT,
} from './helpers/modern-client.ts';
import { proxiedUpstream } from './helpers/proxied-upstream.ts';

/** The text of a tool result's first content block. */
function textOf(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content;
  const first = content?.[0];
  assert.equal(first?.type, 'text', JSON.stringify(result));
  return first.text ?? '';
}

describe('modern client → /mcp → modern-only server (SDK v2 both ends)', () => {
  let modern: ModernClient;
  after(async () => {
    await modern?.close();
  });
  const fixture = proxiedUpstream(() => startModernServer(), { HOST: '127.0.0.1' });
  before(async () => {
    modern = await connectModernClient(fixture.proxy, fixture.upstream.url);
  });

  it('negotiates 2026-07-28 with server/discover, with no initialize and no session', async () => {
    assert.equal(modern.client.getProtocolEra(), 'modern');
    assert.equal(modern.client.getNegotiatedProtocolVersion(), MODERN);
    assert.equal(modern.client.getServerVersion()?.name, 'mcp-proxy-modern-fixture');
    const discover = await modern.client.discover();
    assert.deepEqual(discover.supportedVersions, [MODERN]);
    assert.ok(fixture.upstream.requests.some((r) => r.method === 'server/discover'));
    assert.ok(
      !fixture.upstream.requests.some((r) => r.method === 'initialize'),
      'no initialize reached the server',
    );
    assert.ok(
      !fixture.upstream.requests.some((r) => 'mcp-session-id' in r.headers),
      'no session id was invented',
    );
  });

  it("'auto' negotiation picks the modern era through the proxy too", async () => {
    const auto = await connectModernClient(fixture.proxy, fixture.upstream.url, { mode: 'auto' });
    try {
      assert.equal(auto.client.getProtocolEra(), 'modern');
    } finally {
      await auto.close();
    }
  });

  it('lists and calls tools; the metadata headers reach the server', async () => {
    const { tools } = await modern.client.listTools();
    const names = tools.map((t) => t.name);
    for (const name of ['echo', 'add', 'weather', 'confirm', 'summarize', 'slow'])
      assert.ok(names.includes(name));
    const weather = tools.find((t) => t.name === 'weather');
    assert.deepEqual(weather?.inputSchema.properties?.region, { type: 'string', 'x-mcp-header': 'Region' });

    assert.equal(
      textOf(await modern.client.callTool({ name: 'echo', arguments: { message: 'hi' } })),
      'Echo: hi',
    );
    const sum = await modern.client.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
    assert.deepEqual(sum.structuredContent, { sum: 42 });
    const seen = fixture.upstream.requests.findLast((r) => r.method === 'tools/call');
    assert.equal(seen?.headers['mcp-protocol-version'], MODERN);
    assert.equal(seen?.headers['mcp-method'], 'tools/call');
    assert.equal(seen?.headers['mcp-name'], 'add');
  });

  it('passes the Mcp-Param-* header the client mirrors from an x-mcp-header parameter (plain and Base64)', async () => {
    const plain = await modern.client.callTool({ name: 'weather', arguments: { region: 'eu' } });
    assert.equal(textOf(plain), 'Sunny in eu (header: eu)');
    const encoded = `=?base64?${Buffer.from('Zürich').toString('base64')}?=`;
    const utf8 = await modern.client.callTool({ name: 'weather', arguments: { region: 'Zürich' } });
    assert.equal(textOf(utf8), `Sunny in Zürich (header: ${encoded})`);
    assert.equal(
      fixture.upstream.requests.findLast((r) => r.method === 'tools/call')?.headers['mcp-param-region'],
      encoded,
    );
  });

  it('reads a resource and gets a prompt (Mcp-Name from the uri and the name)', async () => {
    const { resources } = await modern.client.listResources();
    assert.ok(resources.some((r) => r.uri === GREETING_URI));
    const read = await modern.client.readResource({ uri: GREETING_URI });
    assert.equal((read.contents[0] as { text?: string }).text, GREETING_TEXT);
    assert.equal(
      fixture.upstream.requests.findLast((r) => r.method === 'resources/read')?.headers['mcp-name'],
      GREETING_URI,
    );

    const { prompts } = await modern.client.listPrompts();
    assert.deepEqual(
      prompts.map((p) => p.name),
      ['greet'],
    );
    const prompt = await modern.client.getPrompt({ name: 'greet', arguments: { name: 'Ada' } });
    assert.deepEqual(prompt.messages[0]?.content, { type: 'text', text: 'Say hello to Ada.' });
  });

  it('completes an elicitation InputRequiredResult round trip (two calls, state echoed)', async () => {
    const before = fixture.upstream.requests.length;
    const result = await modern.client.callTool({ name: 'confirm', arguments: { action: 'deploy' } });
    assert.equal(textOf(result), 'Confirmed: deploy (state confirm:deploy)');
    assert.equal(modern.elicitations.length, 1);
    const calls = fixture.upstream.requests.slice(before).filter((r) => r.method === 'tools/call');
    assert.equal(calls.length, 2, 'the first call asked for input, the retry completed');
  });

  it('completes a sampling InputRequiredResult round trip', async () => {
    const result = await modern.client.callTool({ name: 'summarize', arguments: { topic: 'proxies' } });
    assert.equal(textOf(result), `Summary: ${SAMPLED_TEXT}`);
    assert.equal(modern.samplings.length, 1);
  });

  it('streams progress notifications on the response stream', async () => {
    const progress: number[] = [];
    const result = await modern.client.callTool(
      { name: 'slow', arguments: { steps: 3, intervalMs: 10 } },
      { onprogress: (p) => progress.push(p.progress) },
    );
    assert.equal(textOf(result), 'done after 3 steps');
    assert.deepEqual(progress, [1, 2, 3]);
  });

  it('cancels: the client aborts, the proxy closes the upstream stream, the server observes it', async () => {
    const since = fixture.upstream.cancellations.length;
    const abort = new AbortController();
    const call = modern.client.callTool(
      { name: 'slow', arguments: { steps: 100, intervalMs: 30 } },
      { signal: abort.signal, onprogress: () => abort.abort() },
    );
    await assert.rejects(call);
    const observed = await fixture.upstream.waitForCancellation(since, 5_000);
    assert.ok(observed.step < 100);
  });

  it('carries a subscriptions/listen stream: acknowledged, then list_changed delivered', async () => {
    const changed = Promise.withResolvers<void>();
    modern.client.setNotificationHandler('notifications/tools/list_changed', () => changed.resolve());
    const subscription = await modern.client.listen({ toolsListChanged: true });
    assert.deepEqual(subscription.honoredFilter, { toolsListChanged: true });
    fixture.upstream.notify.toolsChanged();
    const timer = setTimeout(() => changed.reject(new Error('no list_changed within 5 s')), 5_000);
    try {
      await changed.promise;
    } finally {
      clearTimeout(timer);
    }
    await subscription.close();
    assert.equal(await subscription.closed, 'local');
  });
});

describe('raw modern requests → /mcp → modern-only server', () => {
  const fixture = proxiedUpstream(() => startModernServer(), { HOST: '127.0.0.1' });

  it('answers a matching request without any Mcp-Session-Id', async () => {
    const message = modernRequest(1, 'tools/call', { name: 'echo', arguments: { message: 'raw' } });
    const response = await mcpFetch(fixture.proxy, fixture.upstream.url, {
      body: message,
      headers: modernHeaders(message),
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('mcp-session-id'), null);
    const body = (await response.json()) as { result: { content: Array<{ text: string }> } };
    assert.equal(body.result.content[0]?.text, 'Echo: raw');
  });

  it('refuses header/body disagreement itself (400, -32020): nothing reaches the server', async () => {
    const before = fixture.upstream.requests.length;
    const message = modernRequest(2, 'tools/call', { name: 'echo', arguments: { message: 'x' } });
    const response = await mcpFetch(fixture.proxy, fixture.upstream.url, {
      body: message,
      headers: { ...modernHeaders(message), 'mcp-name': 'add' },
    });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { id: number; error: { code: number; data: { code: string } } };
    assert.equal(body.error.code, -32020);
    assert.equal(body.error.data.code, 'header_mismatch');
    assert.equal(body.id, 2);
    assert.equal(fixture.upstream.requests.length, before, 'no upstream call was spent');
  });

  it('forwards an Mcp-Param-* header it does not know', async () => {
    const message = modernRequest(3, 'tools/call', { name: 'headers', arguments: {} });
    const response = await mcpFetch(fixture.proxy, fixture.upstream.url, {
      body: message,
      headers: { ...modernHeaders(message), 'mcp-param-tenant': 'acme' },
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as {
      result: { structuredContent: { headers: Record<string, string> } };
    };
    const seen = body.result.structuredContent.headers;
    assert.equal(seen['mcp-param-tenant'], 'acme');
    assert.equal(seen['mcp-name'], 'headers');
  });

  it('relays the upstream answer when the server itself refuses the headers (missing Mcp-Param-Region)', async () => {
    const message = modernRequest(4, 'tools/call', { name: 'weather', arguments: { region: 'eu' } });
    const response = await mcpFetch(fixture.proxy, fixture.upstream.url, {
      body: message,
      headers: modernHeaders(message),
    });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: { code: number; message: string } };
    assert.equal(body.error.code, -32020, 'the upstream JSON-RPC error, unchanged');
    assert.match(body.error.message, /Mcp-Param-Region/);
  });

  for (const method of ['GET', 'DELETE']) {
    it(`relays the modern-only server's 405 to ${method}`, async () => {
      const response = await mcpFetch(fixture.proxy, fixture.upstream.url, { method });
      assert.equal(response.status, 405);
      const body = (await response.json()) as { error: { message: string } };
      assert.match(body.error.message, /Method not allowed/);
      assert.ok(fixture.upstream.requests.some((r) => r.httpMethod === method && r.status === 405));
    });
  }
});

describe('/mcp with a modern-only upstream: relayed 405s and errors', () => {
  const fixture = proxiedUpstream(() => startModernServer(), { HOST: '127.0.0.1' });

  it('keeps the Allow header of a relayed 405 (RFC 9110 §15.5.6)', async () => {
    const direct = await fetch(fixture.upstream.url, {
      method: 'GET',
      headers: { accept: 'text/event-stream' },
    });
    await direct.body?.cancel();
    assert.equal(direct.headers.get('allow'), 'POST', 'the server sends it');
    const response = await mcpFetch(fixture.proxy, fixture.upstream.url, { method: 'GET' });
    await response.body?.cancel();
    assert.equal(response.status, 405);
    assert.equal(
      response.headers.get('allow'),
      'POST',
      'the proxy drops it: surfaces/mcp/passthrough.ts RELAYED',
    );
  });
});
