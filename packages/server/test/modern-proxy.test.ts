/**
 * MCP 2026-07-28 through `POST /proxy`: raw envelopes whose JSON-RPC message carries the modern
 * `_meta` envelope reach a modern-only SDK v2 server. The proxy derives the metadata headers
 * from the body, forwards the caller's Mcp-Param-* headers, hands an InputRequiredResult back
 * for the caller to retry, and cancels the upstream request when the caller goes away.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GREETING_TEXT, GREETING_URI, startModernServer } from './fixtures/modern-server.ts';
import { MODERN, modernRequest } from './helpers/modern-client.ts';
import { proxiedUpstream } from './helpers/proxied-upstream.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

describe('POST /proxy with modern envelopes → modern-only server', () => {
  const fixture = proxiedUpstream(() => startModernServer(), { HOST: '127.0.0.1' });

  const forward = (message: unknown, headers: Record<string, string> = {}) =>
    postProxy(fixture.proxy, { mcp_server_url: fixture.upstream.url, ...(message as object) }, headers);

  it('answers server/discover and tools/list, deriving the headers from the body', async () => {
    const discover = await forward(modernRequest(1, 'server/discover'));
    assert.equal(discover.status, 200, JSON.stringify(discover.body));
    assert.deepEqual(discover.body.result.supportedVersions, [MODERN]);
    assert.equal(discover.headers.get('mcp-session-id'), null);
    const seen = fixture.upstream.requests.findLast((r) => r.method === 'server/discover');
    assert.equal(seen?.headers['mcp-protocol-version'], MODERN);
    assert.equal(seen?.headers['mcp-method'], 'server/discover');

    const list = await forward(modernRequest(2, 'tools/list'));
    assert.equal(list.status, 200);
    assert.ok(list.body.result.tools.some((t: { name: string }) => t.name === 'echo'));
  });

  it('calls tools, reads a resource and gets a prompt (Mcp-Name derived)', async () => {
    const echo = await forward(
      modernRequest(3, 'tools/call', { name: 'echo', arguments: { message: 'hi' } }),
    );
    assert.equal(echo.body.result.content[0].text, 'Echo: hi');
    assert.equal(
      fixture.upstream.requests.findLast((r) => r.method === 'tools/call')?.headers['mcp-name'],
      'echo',
    );

    const add = await forward(modernRequest(4, 'tools/call', { name: 'add', arguments: { a: 1, b: 2 } }));
    assert.deepEqual(add.body.result.structuredContent, { sum: 3 });

    const read = await forward(modernRequest(5, 'resources/read', { uri: GREETING_URI }));
    assert.equal(read.body.result.contents[0].text, GREETING_TEXT);
    assert.equal(
      fixture.upstream.requests.findLast((r) => r.method === 'resources/read')?.headers['mcp-name'],
      GREETING_URI,
    );

    const prompt = await forward(
      modernRequest(6, 'prompts/get', { name: 'greet', arguments: { name: 'Ada' } }),
    );
    assert.equal(prompt.body.result.messages[0].content.text, 'Say hello to Ada.');
  });

  it("forwards the caller's Mcp-Param-* headers: declared ones and unknown ones", async () => {
    const weather = await forward(
      modernRequest(7, 'tools/call', { name: 'weather', arguments: { region: 'eu' } }),
      {
        'mcp-param-region': 'eu',
      },
    );
    assert.equal(weather.status, 200, JSON.stringify(weather.body));
    assert.equal(weather.body.result.content[0].text, 'Sunny in eu (header: eu)');

    const headers = await forward(modernRequest(8, 'tools/call', { name: 'headers', arguments: {} }), {
      'mcp-param-tenant': 'acme',
    });
    assert.equal(headers.body.result.structuredContent.headers['mcp-param-tenant'], 'acme');
  });

  it('mirrors an x-mcp-header parameter the caller did not send (the proxy learns the declaration)', async () => {
    const reply = await forward(
      modernRequest(9, 'tools/call', { name: 'weather', arguments: { region: 'eu' } }),
    );
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.match(JSON.stringify(reply.body.result), /header: eu/);
  });

  it('hands an InputRequiredResult back; the retry with inputResponses and requestState completes', async () => {
    const first = await forward(
      modernRequest(10, 'tools/call', { name: 'confirm', arguments: { action: 'ship' } }),
    );
    assert.equal(first.status, 200);
    const pending = first.body.result;
    assert.equal(pending.resultType, 'input_required');
    assert.equal(pending.inputRequests.confirm.method, 'elicitation/create');
    assert.equal(pending.requestState, 'confirm:ship');

    const retry = await forward(
      modernRequest(11, 'tools/call', {
        name: 'confirm',
        arguments: { action: 'ship' },
        inputResponses: { confirm: { action: 'accept', content: { ok: true } } },
        requestState: pending.requestState,
      }),
    );
    assert.equal(retry.status, 200);
    assert.equal(retry.body.result.resultType, 'complete');
    assert.equal(retry.body.result.content[0].text, 'Confirmed: ship (state confirm:ship)');
  });

  it('answers a progress-reporting call with its final result only (one response per POST)', async () => {
    const reply = await forward(
      modernRequest(
        12,
        'tools/call',
        { name: 'slow', arguments: { steps: 3, intervalMs: 10 } },
        { progressToken: 'p' },
      ),
    );
    assert.equal(reply.status, 200);
    assert.equal(reply.body.result.content[0].text, 'done after 3 steps');
  });

  it('cancels: the caller disconnects, the proxy closes the upstream stream, the server observes it', async () => {
    const since = fixture.upstream.cancellations.length;
    const abort = new AbortController();
    const call = fetch(`${fixture.proxy.url}/proxy`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-proxy-token': fixture.proxy.token },
      body: JSON.stringify({
        mcp_server_url: fixture.upstream.url,
        ...modernRequest(13, 'tools/call', { name: 'slow', arguments: { steps: 100, intervalMs: 30 } }),
      }),
      signal: abort.signal,
    });
    setTimeout(() => abort.abort(), 150);
    await assert.rejects(call);
    const observed = await fixture.upstream.waitForCancellation(since, 5_000);
    assert.equal(observed.requestId, 13);
  });

  it('refuses caller headers that disagree with the body before calling upstream (400, -32020)', async () => {
    const calls = () => fixture.upstream.requests.filter((r) => r.method === 'tools/call').length;
    const before = calls();
    const reply = await forward(
      modernRequest(14, 'tools/call', { name: 'echo', arguments: { message: 'x' } }),
      {
        'mcp-protocol-version': MODERN,
        'mcp-method': 'tools/call',
        'mcp-name': 'add',
      },
    );
    assert.equal(reply.status, 400);
    assert.equal(reply.body.error.code, -32020);
    assert.equal(calls(), before, 'no upstream call was spent');
  });
});

describe('POST /proxy: what one response per POST cannot carry', () => {
  it('subscriptions/listen never ends with a response, so it runs into the upstream timeout (504)', async () => {
    const upstream = await startModernServer();
    const proxy = await startProxy({ HOST: '127.0.0.1', UPSTREAM_TIMEOUT_MS: '300' });
    try {
      const listen = modernRequest(1, 'subscriptions/listen', { notifications: { toolsListChanged: true } });
      const reply = await postProxy(proxy, { mcp_server_url: upstream.url, ...listen });
      assert.equal(reply.status, 504);
      assert.equal(reply.body.error.data.code, 'upstream_timeout');
    } finally {
      await proxy.close();
      await upstream.stop();
    }
  });
});

describe('POST /proxy with a modern-only upstream: relayed JSON-RPC errors', () => {
  const fixture = proxiedUpstream(() => startModernServer(), { HOST: '127.0.0.1' });

  it("relays the server's JSON-RPC error of a 4xx answer (here -32022 with data.supported)", async () => {
    // 2026-07-28 servers answer protocol errors with HTTP 400 and a JSON-RPC error body; a client
    // negotiates from -32022's data.supported. Today the proxy replaces it with -33015.
    const message = modernRequest(
      1,
      'tools/list',
      {},
      { 'io.modelcontextprotocol/protocolVersion': '2099-01-01' },
    );
    const reply = await postProxy(fixture.proxy, { mcp_server_url: fixture.upstream.url, ...message });
    assert.equal(reply.body.error.code, -32022, JSON.stringify(reply.body));
    assert.deepEqual(reply.body.error.data?.supported, [MODERN]);
  });
});
