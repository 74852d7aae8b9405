/**
 * Edges of the Streamable HTTP contract that the real proxy and server-everything seldom or never
 * produce (JSON answers, a stream that breaks before its response and is resumed, a relayed 404,
 * in-band proxy errors), driven through the client's public `fetch` option.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type FetchLike,
  MCPProxyClient,
  MCPProxyError,
  McpError,
  type ServerNotification,
  SessionError,
  TimeoutError,
  UpstreamError,
} from '../src/index.ts';

/** A request the fake endpoint received. */
interface Seen {
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly body: Record<string, unknown> | undefined;
}

const INIT_RESULT = {
  protocolVersion: '2025-06-18',
  capabilities: {},
  serverInfo: { name: 'fake', version: '1' },
};

/** An event-stream response of `events` (already formatted). */
function sse(events: string[], headers: Record<string, string> = {}): Response {
  return new Response(events.join(''), { headers: { 'content-type': 'text/event-stream', ...headers } });
}

/** One `message` event carrying `message`, with an optional id. */
function event(message: unknown, id?: string): string {
  return `${id === undefined ? '' : `id: ${id}\n`}event: message\ndata: ${JSON.stringify(message)}\n\n`;
}

/** A fake /mcp endpoint: `answer` decides each reply; initialize and initialized have defaults. */
function fakeEndpoint(answer: (seen: Seen) => Response | undefined) {
  const seen: Seen[] = [];
  const fetch: FetchLike = async (_url, init) => {
    const request: Seen = {
      method: init.method,
      headers: init.headers,
      body: init.body === undefined ? undefined : (JSON.parse(init.body) as Record<string, unknown>),
    };
    seen.push(request);
    const custom = answer(request);
    if (custom) return custom;
    const body = request.body;
    if (body?.method === 'initialize') {
      return Response.json(
        { jsonrpc: '2.0', id: body.id, result: INIT_RESULT },
        { headers: { 'mcp-session-id': 'session-1' } },
      );
    }
    if (request.method === 'GET') return new Response(null, { status: 405 });
    if (request.method === 'DELETE') return new Response(null, { status: 200 });
    if (body && body.id === undefined) return new Response(null, { status: 202 });
    if (body && body.method === undefined) return new Response(null, { status: 202 });
    return Response.json({ jsonrpc: '2.0', id: body?.id, result: {} });
  };
  const client = new MCPProxyClient({
    proxyUrl: 'http://proxy.test',
    proxyToken: 'token-for-the-double',
    mcpServerUrl: 'http://mcp.test/mcp',
    transport: 'streamable',
    fetch,
  });
  return { client, seen };
}

describe('Streamable HTTP contract edges', () => {
  it('JSON answers; the session id and version go back; GET 405 is fine; close() DELETEs', async () => {
    const { client, seen } = fakeEndpoint(() => undefined);
    await client.initialize();
    assert.deepEqual(await client.ping(), {});
    const ping = seen.findLast((s) => s.body?.method === 'ping');
    assert.equal(ping?.headers['mcp-session-id'], 'session-1');
    assert.equal(ping?.headers['mcp-protocol-version'], '2025-06-18');
    assert.equal(ping?.headers['x-mcp-server-url'], 'http://mcp.test/mcp');
    assert.equal(client.sessionId, 'session-1');
    await client.close();
    const del = seen.find((s) => s.method === 'DELETE');
    assert.equal(del?.headers['mcp-session-id'], 'session-1');
    assert.equal(
      seen.filter((s) => s.method === 'GET').length,
      1,
      'a 405 GET is not retried: the server offers no stream',
    );
  });

  it('a stream may carry a server request and a notification before the response', async () => {
    const { client, seen } = fakeEndpoint(({ body }) => {
      if (body?.method !== 'tools/call') return undefined;
      return sse([
        event({
          jsonrpc: '2.0',
          method: 'notifications/message',
          params: { level: 'info', data: 'working' },
        }),
        event({ jsonrpc: '2.0', id: 'srv-1', method: 'roots/list' }),
        event({ jsonrpc: '2.0', id: body.id, result: { content: [] } }),
      ]);
    });
    const notifications: ServerNotification[] = [];
    client.on('notification', (n) => notifications.push(n));
    client.setRequestHandler('roots/list', () => ({ roots: [{ uri: 'file:///a' }] }));
    await client.initialize();
    assert.deepEqual(await client.callTool('x'), { content: [] });
    assert.deepEqual(notifications, [
      { method: 'notifications/message', params: { level: 'info', data: 'working' } },
    ]);
    await waitUntil(() => seen.some((s) => s.body?.id === 'srv-1'));
    const answer = seen.find((s) => s.body?.id === 'srv-1');
    assert.deepEqual(answer?.body, {
      jsonrpc: '2.0',
      id: 'srv-1',
      result: { roots: [{ uri: 'file:///a' }] },
    });
    assert.equal(answer?.headers['mcp-session-id'], 'session-1');
  });

  it('a stream that ends before its response is resumed with Last-Event-ID', async () => {
    let callId: unknown;
    const { client, seen } = fakeEndpoint(({ method, body, headers }) => {
      if (body?.method === 'tools/call') {
        callId = body.id;
        return sse([
          'id: e1\nretry: 10\ndata: \n\n',
          event(
            { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } },
            'e2',
          ),
        ]);
      }
      if (method === 'GET' && headers['last-event-id'] === 'e2') {
        return sse([event({ jsonrpc: '2.0', id: callId, result: { content: [], resumed: true } }, 'e3')]);
      }
      return undefined;
    });
    await client.initialize();
    const result = await client.callTool('x');
    assert.equal(result.resumed, true);
    const resume = seen.find((s) => s.headers['last-event-id'] !== undefined);
    assert.equal(resume?.method, 'GET');
    assert.equal(resume?.headers.accept, 'text/event-stream');
  });

  it('a stream that ends without its response and cannot be resumed is an invalid_response', async () => {
    const { client } = fakeEndpoint(({ body }) => (body?.method === 'ping' ? sse([]) : undefined));
    await client.initialize();
    await assert.rejects(client.ping(), (e) => e instanceof MCPProxyError && e.code === 'invalid_response');
  });

  it("relayed failures: the MCP server's 404 for a session is a SessionError; a 5xx an UpstreamError", async () => {
    let status = 404;
    const { client } = fakeEndpoint(({ body }) =>
      body?.method === 'ping'
        ? Response.json(
            { jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } },
            { status, headers: { 'x-request-id': 'req-1' } },
          )
        : undefined,
    );
    await client.initialize();
    const expired = await client.ping().catch((e: unknown) => e);
    assert.ok(expired instanceof SessionError, String(expired));
    assert.equal(expired.code, 'upstream_session_expired');
    assert.equal(expired.expired, true);
    assert.equal(expired.message, 'Session not found');
    status = 503;
    const failed = await client.ping().catch((e: unknown) => e);
    assert.ok(failed instanceof UpstreamError, String(failed));
    assert.equal(failed.code, 'upstream_http_error');
    assert.equal(failed.upstreamStatus, 503);
  });

  it('a 404 without X-Request-Id is not the proxy at all: invalid_response', async () => {
    const { client } = fakeEndpoint(() => new Response('<h1>Not Found</h1>', { status: 404 }));
    await assert.rejects(
      client.initialize(),
      (e) => e instanceof MCPProxyError && e.code === 'invalid_response' && e.status === 404,
    );
  });

  it("in-band errors: the proxy's own code maps to its class, anything else is the server's McpError", async () => {
    const { client } = fakeEndpoint(({ body }) => {
      if (body?.method === 'tools/call') {
        return sse([
          event({
            jsonrpc: '2.0',
            id: body.id,
            error: {
              code: -33011,
              message: 'The MCP server did not answer in time.',
              data: { code: 'upstream_timeout' },
            },
          }),
        ]);
      }
      if (body?.method === 'prompts/get') {
        return Response.json({
          jsonrpc: '2.0',
          id: body.id,
          error: { code: -32602, message: 'Bad prompt', data: { code: 'not_a_proxy_code' } },
        });
      }
      return undefined;
    });
    await client.initialize();
    const timeout = await client.callTool('slow').catch((e: unknown) => e);
    assert.ok(timeout instanceof TimeoutError, String(timeout));
    assert.equal(timeout.code, 'upstream_timeout');
    assert.equal(timeout.rpcCode, -33011);
    const server = await client.getPrompt('p').catch((e: unknown) => e);
    assert.ok(server instanceof McpError, String(server));
    assert.equal(server.code, -32602);
    assert.deepEqual(server.data, { code: 'not_a_proxy_code' });
  });

  it('a server request without a handler is answered -32601; ping is answered {}', async () => {
    const { client, seen } = fakeEndpoint(({ body }) =>
      body?.method === 'tools/call'
        ? sse([
            event({ jsonrpc: '2.0', id: 's1', method: 'sampling/createMessage', params: {} }),
            event({ jsonrpc: '2.0', id: 's2', method: 'ping' }),
            event({ jsonrpc: '2.0', id: body.id, result: { content: [] } }),
          ])
        : undefined,
    );
    await client.initialize();
    await client.callTool('x');
    await waitUntil(() => seen.some((s) => s.body?.id === 's2'));
    assert.equal(
      (seen.find((s) => s.body?.id === 's1')?.body?.error as { code?: number } | undefined)?.code,
      -32601,
    );
    assert.deepEqual(seen.find((s) => s.body?.id === 's2')?.body?.result, {});
  });
});

/** Polls until `check()` holds (2 s at most). */
async function waitUntil(check: () => boolean): Promise<void> {
  for (const started = Date.now(); !check(); ) {
    if (Date.now() - started > 2_000) assert.fail('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
