/**
 * Errors over the streaming transports, produced by the real proxy: Streamable HTTP answers
 * (the proxy's own, and an MCP server's relayed through /mcp), WebSocket handshake refusals and
 * close codes, and the raw socket of connectWebSocket().
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../server/test/helpers/net.ts';
import { startProxy } from '../../server/test/helpers/proxy.ts';
import {
  InvalidInputError,
  MCPProxyClient,
  MCPProxyError,
  NetworkError,
  ProxyAuthError,
  SessionError,
  TargetForbiddenError,
  UpstreamAuthError,
  UpstreamError,
} from '../src/index.ts';
import { type Stack, startStack } from './helpers/stack.ts';
import { CHALLENGE, startRefusing } from './helpers/upstreams.ts';

/** Resolves with what `promise` rejects with; fails the test if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => assert.fail(`expected a rejection, got ${JSON.stringify(value)}`),
    (error: unknown) => error,
  );
}

/** The next message frame of `socket`, parsed. */
function nextFrame(socket: WebSocket, where: (message: Record<string, unknown>) => boolean) {
  return new Promise<Record<string, unknown>>((resolve) => {
    const onMessage = (event: MessageEvent) => {
      const message = JSON.parse(String(event.data)) as Record<string, unknown>;
      if (!where(message)) return;
      socket.removeEventListener('message', onMessage);
      resolve(message);
    };
    socket.addEventListener('message', onMessage);
  });
}

describe('errors over the streamable transport (/mcp)', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack('streamableHttp');
  });
  after(() => stack.close());

  it('a wrong proxy token is a ProxyAuthError (401)', async () => {
    const error = await rejection(
      stack.client({ transport: 'streamable', proxyToken: 'not-the-right-token-at-all' }).initialize(),
    );
    assert.ok(error instanceof ProxyAuthError, String(error));
    assert.equal(error.code, 'unauthorized');
    assert.equal(error.status, 401);
    assert.match(error.requestId ?? '', /.+/);
  });

  it('a forbidden target is a TargetForbiddenError', async () => {
    const error = await rejection(
      stack.client({ transport: 'streamable', mcpServerUrl: 'file:///etc/passwd' }).initialize(),
    );
    assert.ok(error instanceof TargetForbiddenError, String(error));
    assert.equal(error.reason, 'scheme_not_allowed');
  });

  it('a closed port is an UpstreamError (upstream_unreachable)', async () => {
    const port = await freePort();
    const error = await rejection(
      stack.client({ transport: 'streamable', mcpServerUrl: `http://127.0.0.1:${port}/mcp` }).initialize(),
    );
    assert.ok(error instanceof UpstreamError, String(error));
    assert.equal(error.code, 'upstream_unreachable');
  });

  it("an MCP server's own 401, relayed by /mcp, is an UpstreamAuthError with its challenge", async () => {
    const refusing = await startRefusing();
    try {
      const error = await rejection(
        stack
          .client({
            transport: 'streamable',
            mcpServerUrl: refusing.url,
            upstreamTransport: 'streamable-http',
          })
          .initialize(),
      );
      assert.ok(error instanceof UpstreamAuthError, String(error));
      assert.equal(error.code, 'upstream_unauthorized');
      assert.equal(error.status, 401);
      assert.equal(error.wwwAuthenticate, CHALLENGE);
    } finally {
      await refusing.stop();
    }
  });

  it('a session the proxy does not know is a SessionError to re-initialize after', async () => {
    const client = stack.client({
      transport: 'streamable',
      fetch: (url, init) =>
        fetch(url, {
          ...init,
          headers: init.headers['mcp-session-id']
            ? { ...init.headers, 'mcp-session-id': 'mcpp1.forged.session' }
            : init.headers,
        }),
    });
    const error = await rejection(client.initialize());
    assert.ok(error instanceof SessionError, String(error));
    assert.equal(error.code, 'session_not_found');
    assert.equal(error.expired, true);
  });

  it('a session the MCP server forgot: its own refusal, relayed by /mcp, is an UpstreamError', async () => {
    const client = stack.client({ transport: 'streamable' });
    await client.initialize();
    // End the session behind the client's back, as a server restart would.
    const response = await fetch(`${stack.proxy.url}/mcp`, {
      method: 'DELETE',
      headers: {
        'x-proxy-token': stack.proxy.token,
        'x-mcp-server-url': stack.upstream.url,
        'mcp-session-id': client.sessionId ?? '',
      },
    });
    assert.equal(response.status, 200);
    const error = await rejection(client.ping());
    // server-everything answers 400 (the spec says 404, which the client maps to a SessionError
    // upstream_session_expired: see streamable-contract.test.ts).
    assert.ok(error instanceof UpstreamError, String(error));
    assert.equal(error.code, 'upstream_rejected');
    assert.equal(error.upstreamStatus, 400);
    assert.match(error.message, /session/i);
    await client.initialize();
    assert.deepEqual(await client.ping(), {}, 'a new session works');
  });

  it('a proxy that is not listening is a NetworkError', async () => {
    const port = await freePort();
    const client = new MCPProxyClient({
      proxyUrl: `http://127.0.0.1:${port}`,
      proxyToken: 'any-token-value-1234',
      mcpServerUrl: 'http://127.0.0.1:1/mcp',
      transport: 'streamable',
    });
    const error = await rejection(client.initialize());
    assert.ok(error instanceof NetworkError, String(error));
  });
});

describe('errors over the ws transport (/ws)', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack('streamableHttp', {
      WS_ALLOW_MISSING_ORIGIN: 'true',
      WS_MAX_MESSAGE_BYTES: '4096',
    });
  });
  after(() => stack.close());

  for (const [what, overrides] of [
    ['a wrong proxy token', { proxyToken: 'not-the-right-token-at-all' }],
    ['a forbidden target', { mcpServerUrl: 'file:///etc/passwd' }],
  ] as const) {
    it(`${what} is refused before the upgrade: a NetworkError, as a browser sees it`, async () => {
      const error = await rejection(stack.client({ transport: 'ws', ...overrides }).initialize());
      assert.ok(error instanceof NetworkError, String(error));
      assert.equal(error.code, 'network_error');
      assert.equal((error.data as { closeCode?: number }).closeCode, 1006);
    });
  }

  it('an upstream that cannot be reached closes the socket with 4502: UpstreamError', async () => {
    const port = await freePort();
    const error = await rejection(
      stack.client({ transport: 'ws', mcpServerUrl: `http://127.0.0.1:${port}/mcp` }).initialize(),
    );
    assert.ok(error instanceof UpstreamError, String(error));
    assert.equal(error.code, 'upstream_unreachable');
  });

  it('a message over WS_MAX_MESSAGE_BYTES closes with 1009: InvalidInputError payload_too_large', async () => {
    const client = stack.client({ transport: 'ws' });
    await client.initialize();
    const error = await rejection(client.callTool('echo', { message: 'x'.repeat(10_000) }));
    assert.ok(error instanceof InvalidInputError, String(error));
    assert.equal(error.code, 'payload_too_large');
    await client.initialize();
    assert.deepEqual(await client.ping(), {}, 'initialize() opens a new socket');
  });

  it('a proxy shutting down closes with 1001: code shutting_down', async () => {
    const proxy = await startProxy({ WS_ALLOW_MISSING_ORIGIN: 'true' });
    const client = new MCPProxyClient({
      proxyUrl: proxy.url,
      proxyToken: proxy.token,
      mcpServerUrl: stack.upstream.url,
      transport: 'ws',
    });
    try {
      await client.initialize();
      const call = client.callTool('trigger-long-running-operation', { duration: 5, steps: 1 });
      setTimeout(() => void proxy.close(), 100);
      const error = await rejection(call);
      assert.ok(error instanceof MCPProxyError, String(error));
      assert.equal(error.code, 'shutting_down');
    } finally {
      await client.close();
      await proxy.close();
    }
  });

  it('connectWebSocket(): the raw socket converses, gets notifications, survives an invalid frame', async () => {
    const client = stack.client({});
    const ws = client.connectWebSocket();
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    assert.equal(ws.protocol, 'mcp', 'the proxy echoes only "mcp", never the token');

    // The seed's example frame is not JSON-RPC (no "jsonrpc"): an error frame, the socket stays open.
    const refusal = nextFrame(ws, (m) => m.error !== undefined);
    ws.send(JSON.stringify({ method: 'ping' }));
    assert.equal(((await refusal).error as { code?: number }).code, -32600);

    const initialized = nextFrame(ws, (m) => m.id === 1);
    ws.send(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'raw', version: '1' },
        },
      }),
    );
    assert.equal(((await initialized).result as { protocolVersion?: string }).protocolVersion, '2025-06-18');
    ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));

    const progress = nextFrame(ws, (m) => m.method === 'notifications/progress');
    const done = nextFrame(ws, (m) => m.id === 2);
    ws.send(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: {
          name: 'trigger-long-running-operation',
          arguments: { duration: 0.2, steps: 1 },
          _meta: { progressToken: 'raw-1' },
        },
      }),
    );
    assert.deepEqual((await progress).params, { progress: 1, total: 1, progressToken: 'raw-1' });
    assert.ok((await done).result);

    const closed = new Promise<CloseEvent>((resolve) => {
      ws.onclose = resolve;
    });
    await client.close();
    assert.equal((await closed).code, 1000, 'close() closes the raw sockets too');
  });
});
