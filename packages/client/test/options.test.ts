/**
 * The constructor's validation, what each transport allows, and the seed's surface (default
 * export, connectWebSocket).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import DefaultExport, {
  InvalidInputError,
  MCPProxyClient,
  type MCPProxyClientOptions,
  MCPProxyError,
  NotSupportedError,
} from '../src/index.ts';

const valid = {
  proxyUrl: 'http://127.0.0.1:9',
  proxyToken: 'a-proxy-token-value',
  mcpServerUrl: 'http://127.0.0.1:9/mcp',
} as const;

/** A WebSocket double that records what it was opened with. */
function fakeWebSocket(opened: Array<{ url: string; protocols: string[] }>) {
  return class extends EventTarget {
    readyState = 0;
    constructor(url: string, protocols?: string | string[]) {
      super();
      opened.push({ url, protocols: [protocols ?? []].flat() });
    }
    close() {}
    send() {}
  } as unknown as typeof WebSocket;
}

/** Runs `make` and returns what it threw. */
function thrown(make: () => unknown): unknown {
  try {
    make();
  } catch (error) {
    return error;
  }
  return assert.fail('expected a throw');
}

describe('client options', () => {
  it('the default export is the MCPProxyClient class', () => {
    assert.equal(DefaultExport, MCPProxyClient);
    const client = new DefaultExport({ ...valid });
    assert.equal(client.closed, false);
    assert.equal(client.sessionId, undefined);
  });

  for (const [field, options] of [
    ['proxyUrl', { ...valid, proxyUrl: 'not a url' }],
    ['proxyUrl', { ...valid, proxyUrl: 'ftp://proxy.example.com' }],
    ['proxyToken', { ...valid, proxyToken: '' }],
    ['mcpServerUrl', { ...valid, mcpServerUrl: '' }],
    ['timeoutMs', { ...valid, timeoutMs: -1 }],
    ['timeoutMs', { ...valid, timeoutMs: Number.NaN }],
    ['transport', { ...valid, transport: 'carrier-pigeon' }],
    ['upstreamTransport', { ...valid, upstreamTransport: 'smoke-signals' }],
  ] as const) {
    it(`rejects a bad ${field} with an InvalidInputError naming it (${String((options as Record<string, unknown>)[field])})`, () => {
      const error = thrown(() => new MCPProxyClient(options as unknown as MCPProxyClientOptions));
      assert.ok(error instanceof InvalidInputError, String(error));
      assert.equal(error.code, 'invalid_input');
      assert.equal(error.field, field);
    });
  }

  for (const transport of ['http', 'streamable', 'ws'] as const) {
    it(`transport "${transport}" is built without any I/O`, () => {
      const client = new MCPProxyClient({
        ...valid,
        transport,
        fetch: () => assert.fail('no fetch'),
        WebSocket: fakeWebSocket([]),
      });
      assert.equal(client.sessionId, undefined);
    });
  }

  it('server and mcpServerUrl are exclusive; server must be a non-empty string', () => {
    const both = thrown(
      () => new MCPProxyClient({ ...valid, server: 'github' } as unknown as MCPProxyClientOptions),
    );
    assert.ok(both instanceof InvalidInputError, String(both));
    assert.equal(both.field, 'server');
    const { mcpServerUrl: _omit, ...rest } = valid;
    const empty = thrown(() => new MCPProxyClient({ ...rest, server: '' }));
    assert.ok(empty instanceof InvalidInputError, String(empty));
    assert.equal(empty.field, 'server');
    assert.equal(new MCPProxyClient({ ...rest, server: 'github' }).closed, false);
  });

  it('setRequestHandler() needs a streaming transport: over http it throws NotSupportedError', () => {
    const http = new MCPProxyClient({ ...valid });
    const error = thrown(() => http.setRequestHandler('roots/list', () => ({ roots: [] })));
    assert.ok(error instanceof NotSupportedError, String(error));
    assert.ok(error instanceof MCPProxyError);
    assert.equal(error.code, 'not_supported');
    assert.match(error.message, /streamable/);
    const streamable = new MCPProxyClient({ ...valid, transport: 'streamable' });
    const remove = streamable.setRequestHandler('roots/list', () => ({ roots: [] }));
    remove();
  });

  it('connectWebSocket() aims /ws at the target, the token in the subprotocol, not the URL', () => {
    const opened: Array<{ url: string; protocols: string[] }> = [];
    const client = new MCPProxyClient({
      proxyUrl: 'https://proxy.example/base',
      proxyToken: 'a-proxy-token-value',
      mcpServerUrl: 'https://mcp.example/mcp?x=1',
      mcpToken: 'mcp secret',
      WebSocket: fakeWebSocket(opened),
    });
    client.connectWebSocket();
    const { url, protocols } = opened[0] ?? assert.fail('no socket');
    const parsed = new URL(url);
    assert.equal(`${parsed.protocol}//${parsed.host}${parsed.pathname}`, 'wss://proxy.example/base/ws');
    assert.equal(parsed.searchParams.get('mcp_server_url'), 'https://mcp.example/mcp?x=1');
    assert.equal(parsed.searchParams.get('mcp_token'), 'mcp secret');
    assert.equal(parsed.searchParams.get('proxy_token'), null, 'the proxy token stays out of the URL');
    assert.deepEqual(protocols, ['mcp', 'proxy-token.a-proxy-token-value']);

    const named = new MCPProxyClient({
      proxyUrl: 'http://127.0.0.1:9',
      proxyToken: 'abc/def+ghi=',
      server: 'github',
      WebSocket: fakeWebSocket(opened),
    });
    named.connectWebSocket();
    const last = new URL(opened[1]?.url ?? '');
    assert.equal(last.protocol, 'ws:');
    assert.equal(last.searchParams.get('server'), 'github');
    assert.equal(last.searchParams.get('mcp_server_url'), null);
    // "/" and "=" cannot be in a subprotocol: such a token falls back to the query parameter.
    assert.equal(last.searchParams.get('proxy_token'), 'abc/def+ghi=');
    assert.deepEqual(opened[1]?.protocols, ['mcp']);
  });

  it('a bad per-call timeout is refused before anything is sent', async () => {
    let sent = 0;
    const client = new MCPProxyClient({
      ...valid,
      fetch: async () => {
        sent++;
        throw new Error('unreachable');
      },
    });
    await assert.rejects(client.ping({ timeoutMs: -5 }), InvalidInputError);
    assert.equal(sent, 0);
  });
});
