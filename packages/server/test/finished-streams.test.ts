/**
 * Issue 14, finding 6: once a call has its answer from an upstream event stream, the proxy stops
 * reading that stream and closes its connection. An upstream that keeps the stream open after
 * the answer, trickling comments (each resets any per-chunk body timeout), used to hold one
 * socket per finished call, forever.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import { eventually } from './helpers/eventually.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

/**
 * A Streamable HTTP upstream that answers every request on an event stream, then keeps the stream
 * open with a comment every 50 ms; it counts the POST streams still open.
 */
class TricklingUpstream {
  readonly #server: Server;
  readonly #timers = new Set<NodeJS.Timeout>();
  openStreams = 0;
  answered = 0;

  constructor() {
    this.#server = createServer((request, response) => void this.#handle(request, response));
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/mcp`;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(request: IncomingMessage, response: import('node:http').ServerResponse): Promise<void> {
    if (request.method !== 'POST') {
      response.writeHead(405).end();
      return;
    }
    let text = '';
    for await (const chunk of request) text += String(chunk);
    const message = JSON.parse(text) as { id?: number | string; method: string };
    if (message.id === undefined && !request.url?.includes('stream-notifications')) {
      response.writeHead(202).end();
      return;
    }
    const result =
      message.method === 'initialize'
        ? {
            protocolVersion: '2025-06-18',
            capabilities: { tools: {} },
            serverInfo: { name: 'trickling', version: '1' },
          }
        : {};
    response.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': 'trickle-1' });
    // A notification gets a stream of comments only (a server should answer it 202).
    if (message.id !== undefined)
      response.write(`data: ${JSON.stringify({ jsonrpc: '2.0', id: message.id, result })}\n\n`);
    this.answered++;
    this.openStreams++;
    const timer = setInterval(() => response.write(': still here\n\n'), 50);
    this.#timers.add(timer);
    response.once('close', () => {
      clearInterval(timer);
      this.#timers.delete(timer);
      this.openStreams--;
    });
  }
}

describe('a finished call does not keep reading its upstream event stream', () => {
  let upstream: TricklingUpstream;
  let proxy: RunningProxy;

  before(async () => {
    upstream = new TricklingUpstream();
    await upstream.start();
    proxy = await startProxy({ WS_ALLOW_MISSING_ORIGIN: 'true' });
  });

  after(async () => {
    await proxy?.close();
    await upstream?.stop();
  });

  beforeEach(async () => {
    await eventually(() => upstream.openStreams === 0, { what: 'earlier streams to close' });
  });

  it('POST /proxy: each answered call closes its stream', async () => {
    for (let id = 1; id <= 5; id++) {
      const reply = await postProxy(proxy, {
        mcp_server_url: upstream.url,
        jsonrpc: '2.0',
        id,
        method: 'ping',
      });
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      assert.deepEqual(reply.body.result, {});
    }
    assert.equal(upstream.answered, 5);
    await eventually(() => upstream.openStreams === 0, {
      what: 'the upstream to see every finished stream closed',
    });
  });

  it('POST /proxy: a notification answered with a stream that never ends is done at once', async () => {
    const reply = await postProxy(proxy, {
      mcp_server_url: `${upstream.url}?stream-notifications`,
      jsonrpc: '2.0',
      method: 'notifications/initialized',
    });
    assert.equal(reply.status, 202);
    await eventually(() => upstream.openStreams === 0, {
      what: 'the upstream to see the notification stream closed',
    });
  });

  it('/ws (a held Streamable HTTP session): an answered request closes its stream', async () => {
    const url = `${proxy.url.replace('http', 'ws')}/ws?${new URLSearchParams({
      mcp_server_url: upstream.url,
      transport: 'streamable-http',
    })}`;
    const ws = new WebSocket(url, ['mcp', `proxy-token.${proxy.token}`]);
    const frames: Array<{ id?: unknown }> = [];
    ws.on('message', (data) => frames.push(JSON.parse(String(data)) as { id?: unknown }));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    try {
      ws.send(
        JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: '2025-06-18',
            capabilities: {},
            clientInfo: { name: 't', version: '1' },
          },
        }),
      );
      await eventually(() => frames.some((frame) => frame.id === 1), { what: 'the initialize answer' });
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }));
      await eventually(() => frames.some((frame) => frame.id === 2), { what: 'the ping answer' });
      await eventually(() => upstream.openStreams === 0, {
        what: 'the upstream to see both answered streams closed',
      });
    } finally {
      ws.close();
    }
  });
});
