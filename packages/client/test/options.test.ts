/**
 * The constructor's validation, the transports this proxy version does not serve yet, and the
 * seed's surface (default export, connectWebSocket).
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

  for (const transport of ['streamable', 'ws'] as const) {
    it(`transport "${transport}" throws NotSupportedError until the proxy serves it`, () => {
      const error = thrown(() => new MCPProxyClient({ ...valid, transport }));
      assert.ok(error instanceof NotSupportedError, String(error));
      assert.equal(error.code, 'not_supported');
      assert.match(error.message, /not yet supported by this proxy version/);
    });
  }

  it('the "server" option throws NotSupportedError until the proxy serves named servers', () => {
    const { mcpServerUrl: _omit, ...rest } = valid;
    const error = thrown(() => new MCPProxyClient({ ...rest, server: 'github' }));
    assert.ok(error instanceof NotSupportedError, String(error));
    assert.match(error.message, /mcpServerUrl/);
  });

  it('connectWebSocket() throws NotSupportedError', () => {
    const error = thrown(() => new MCPProxyClient({ ...valid }).connectWebSocket());
    assert.ok(error instanceof NotSupportedError);
    assert.ok(error instanceof MCPProxyError);
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
