/**
 * POST /proxy to a Streamable HTTP upstream that starts an event stream for a call and never
 * answers it, trickling comments so that no idle timeout of the HTTP client ends it: when the
 * deadline passes, or the caller leaves, the proxy cancels the call upstream with the matching
 * reason and closes the stream (issue 16: the one-shot path waits with one timer and the caller's
 * own signal, without a linked controller; these are the behaviours that must not change).
 */
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { eventually } from './helpers/eventually.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

interface Received {
  readonly method?: string;
  readonly id?: unknown;
  readonly params?: { readonly requestId?: unknown; readonly reason?: string };
}

/** An upstream that holds every `tools/call` open on a trickling event stream. */
class TricklingUpstream {
  readonly received: Received[] = [];
  /** Ids of the calls whose stream the proxy closed. */
  readonly closed = new Set<unknown>();
  readonly #server: Server;
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor() {
    this.#server = createServer((request, response) => {
      void readJson(request).then((message) => {
        this.received.push(message);
        if (message.method !== 'tools/call') {
          response.writeHead(202).end();
          return;
        }
        response.writeHead(200, { 'content-type': 'text/event-stream' });
        const timer = setInterval(() => response.write(': still working\n\n'), 50);
        this.#timers.add(timer);
        response.on('close', () => {
          clearInterval(timer);
          this.#timers.delete(timer);
          this.closed.add(message.id);
        });
      });
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/mcp`;
  }

  cancellation(id: unknown): Received | undefined {
    return this.received.find((m) => m.method === 'notifications/cancelled' && m.params?.requestId === id);
  }

  async stop(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

async function readJson(request: IncomingMessage): Promise<Received> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Received;
}

describe('POST /proxy: a call the upstream never answers', () => {
  let upstream: TricklingUpstream;
  let url: string;
  let proxy: RunningProxy;

  before(async () => {
    upstream = new TricklingUpstream();
    url = await upstream.start();
    proxy = await startProxy({ UPSTREAM_TIMEOUT_MS: '600' });
  });
  after(async () => {
    await proxy?.close();
    await upstream?.stop();
  });
  afterEach(() => {
    upstream.received.length = 0;
    upstream.closed.clear();
  });

  const call = (id: string) => ({
    mcp_server_url: url,
    transport: 'streamable-http',
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: 'slow', arguments: {} },
  });

  it('times out with upstream_timeout, cancels it upstream (reason timeout) and closes its stream', async () => {
    const reply = await postProxy(proxy, call('late'));
    assert.equal(reply.status, 504);
    assert.equal(reply.body.error.data.code, 'upstream_timeout');
    assert.equal(reply.body.id, 'late');
    const cancelled = await eventually(() => upstream.cancellation('late'), {
      what: 'notifications/cancelled for the call',
    });
    assert.equal(cancelled.params?.reason, 'timeout');
    // Comments keep arriving, so only the proxy dropping the stream ends it.
    await eventually(() => upstream.closed.has('late'), { what: 'the trickling stream to be closed' });
  });

  it('cancels it upstream (reason client disconnected) and closes its stream when the caller leaves', async () => {
    const body = JSON.stringify(call('left'));
    const caller = httpRequest(`${proxy.url}/proxy`, {
      method: 'POST',
      agent: false,
      headers: {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'x-proxy-token': proxy.token,
      },
    });
    caller.on('error', () => {});
    caller.end(body);
    await eventually(() => upstream.received.some((m) => m.id === 'left'), {
      what: 'the call to reach the upstream',
    });
    caller.destroy();
    const cancelled = await eventually(() => upstream.cancellation('left'), {
      what: 'notifications/cancelled for the call',
    });
    assert.equal(cancelled.params?.reason, 'client disconnected');
    await eventually(() => upstream.closed.has('left'), { what: 'the trickling stream to be closed' });
  });
});
