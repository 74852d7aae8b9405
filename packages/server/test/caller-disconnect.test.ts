/**
 * A caller that leaves while the proxy is still working on its POST, before the request was
 * registered for cancellation (here: while an earlier notification of its batch is still being
 * delivered upstream), must not leave that request running upstream: the proxy either never
 * sends it or cancels it. Issue 15: the caller signal and the answer stream listened for the
 * response's 'close' event only from that point on, and an event already past never fires.
 */
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { initializeResult } from './fixtures/hostile-upstream.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

const PROTOCOL_VERSION = '2025-06-18';
/** The notification whose delivery upstream the test holds, to leave while the proxy waits on it. */
const HOLD = 'notifications/test/hold';

interface Received {
  readonly method?: string;
  readonly id?: string | number;
  readonly params?: Record<string, unknown>;
}

/**
 * A legacy HTTP+SSE upstream that records every message, answers `initialize` and `ping` on its
 * stream, never answers anything else, and holds its 202 for {@link HOLD} until released.
 */
async function startHoldingSse() {
  const received: Received[] = [];
  const streams = new Set<ServerResponse>();
  const held = Promise.withResolvers<() => void>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' && req.url === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: endpoint\ndata: /messages\n\n');
      streams.add(res);
      res.once('close', () => streams.delete(res));
      return;
    }
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => {
      const message = JSON.parse(body) as Received;
      received.push(message);
      if (message.method === HOLD) {
        held.resolve(() => res.writeHead(202).end());
        return;
      }
      res.writeHead(202).end();
      const answer =
        message.method === 'initialize'
          ? initializeResult(message.id)
          : message.method === 'ping'
            ? JSON.stringify({ jsonrpc: '2.0', id: message.id, result: {} })
            : undefined;
      if (answer) for (const stream of streams) stream.write(`event: message\ndata: ${answer}\n\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/sse`,
    received,
    /** Resolves, once the held notification arrived, to the function that answers it. */
    held: held.promise,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('a caller that leaves before its request was registered', () => {
  let proxy: RunningProxy;
  let upstream: Awaited<ReturnType<typeof startHoldingSse>>;

  beforeEach(async () => {
    upstream = await startHoldingSse();
    proxy = await startProxy({ HOST: '127.0.0.1' });
  });
  afterEach(async () => {
    await proxy.close();
    await upstream.stop();
  });

  const headers = (extra: Record<string, string> = {}) => ({
    'content-type': 'application/json',
    'x-proxy-token': proxy.token,
    'x-mcp-server-url': upstream.url,
    'x-mcp-transport': 'sse',
    'mcp-protocol-version': PROTOCOL_VERSION,
    ...extra,
  });

  async function post(message: unknown, sessionId?: string) {
    const response = await fetch(`${proxy.url}/mcp`, {
      method: 'POST',
      headers: headers({
        accept: 'application/json',
        ...(sessionId === undefined ? {} : { 'mcp-session-id': sessionId }),
      }),
      body: JSON.stringify(message),
    });
    return {
      status: response.status,
      sessionId: response.headers.get('mcp-session-id'),
      text: await response.text(),
    };
  }

  for (const accept of ['text/event-stream', 'application/json']) {
    it(`never leaves the request running upstream (answer as ${accept})`, async () => {
      const opened = await post({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: {
          protocolVersion: PROTOCOL_VERSION,
          capabilities: {},
          clientInfo: { name: 't', version: '1' },
        },
      });
      assert.equal(opened.status, 200, opened.text);
      const sessionId = opened.sessionId as string;
      assert.ok(sessionId);
      assert.equal(
        (await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, sessionId)).status,
        202,
      );

      // Seen from the proxy's side: when its response to the batch has closed.
      const proxySawClose = Promise.withResolvers<void>();
      proxy.app.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        if (req.headers['x-test-batch'] !== undefined) res.once('close', () => proxySawClose.resolve());
      });
      const body = JSON.stringify([
        { jsonrpc: '2.0', method: HOLD },
        { jsonrpc: '2.0', id: 'abandoned', method: 'tools/call', params: { name: 'slow', arguments: {} } },
      ]);
      const batch = httpRequest(`${proxy.url}/mcp`, {
        method: 'POST',
        agent: false,
        headers: headers({
          accept: `${accept}, application/json`,
          'content-length': String(Buffer.byteLength(body)),
          'mcp-session-id': sessionId,
          'x-test-batch': '1',
        }),
      });
      batch.on('error', () => {});
      batch.end(body);

      // The proxy is delivering the notification; the request waits behind it. The caller leaves.
      const release = await upstream.held;
      batch.destroy();
      await proxySawClose.promise;
      release();

      // The abandoned request, if the proxy sends it, leaves as soon as the notification is
      // through; two later round trips on the session start after that and go the same way.
      for (const id of ['after-1', 'after-2']) {
        const after = await post({ jsonrpc: '2.0', id, method: 'ping' }, sessionId);
        assert.equal(after.status, 200, after.text);
      }
      const sent = upstream.received.some((m) => m.method === 'tools/call' && m.id === 'abandoned');
      const cancelled = upstream.received.some(
        (m) => m.method === 'notifications/cancelled' && m.params?.requestId === 'abandoned',
      );
      assert.ok(
        !sent || cancelled,
        `the request reached the server and was never cancelled: ${JSON.stringify(upstream.received)}`,
      );
    });
  }
});
