import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

/** What a raw connection saw before the proxy closed it (or the wait ran out). */
interface Outcome {
  readonly closed: boolean;
  readonly elapsedMs: number;
  readonly received: string;
}

/** Opens a raw TCP connection to the proxy, writes `data`, and waits up to `waitMs` for it to close. */
async function rawExchange(url: string, data: string, waitMs: number): Promise<Outcome> {
  const { port } = new URL(url);
  const socket: Socket = connect(Number(port), '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const started = Date.now();
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString();
  });
  socket.on('error', () => {});
  if (data !== '') socket.write(data);
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), waitMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  socket.destroy();
  return { closed, elapsedMs: Date.now() - started, received };
}

/** An upstream that answers every request with an event stream trickling progress for `ms`. */
async function tricklingUpstream(ms: number, everyMs: number): Promise<{ url: string; server: Server }> {
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    request.on('end', () => {
      const message = JSON.parse(body) as { id?: number | string };
      if (message.id === undefined) {
        response.writeHead(202).end();
        return;
      }
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      let sent = 0;
      const timer = setInterval(() => {
        sent += everyMs;
        if (sent < ms) {
          const progress = { progressToken: 'p', progress: sent, total: ms };
          response.write(
            `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: progress })}\n\n`,
          );
          return;
        }
        clearInterval(timer);
        response.end(
          `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { content: [], done: true } })}\n\n`,
        );
      }, everyMs);
      response.once('close', () => clearInterval(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, server };
}

describe('connection deadlines', () => {
  let proxy: RunningProxy;
  before(async () => {
    proxy = await startProxy({ HEADERS_TIMEOUT_MS: '300', REQUEST_TIMEOUT_MS: '600' });
  });
  after(async () => {
    await proxy?.close();
  });

  it('close a connection that sends nothing, or only part of its headers, within the header deadline', async () => {
    for (const data of ['', 'POST /proxy HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Proxy-To']) {
      const outcome = await rawExchange(proxy.url, data, 5_000);
      assert.ok(outcome.closed, `closed (sent ${JSON.stringify(data)})`);
      assert.ok(outcome.elapsedMs < 2_000, `closed after ${outcome.elapsedMs} ms`);
    }
  });

  it('close a connection whose authenticated request body stalls, within the request deadline', async () => {
    const outcome = await rawExchange(
      proxy.url,
      `POST /proxy HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Proxy-Token: ${TEST_TOKEN}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"jsonrpc":',
      5_000,
    );
    assert.ok(outcome.closed && outcome.elapsedMs < 2_500, `closed after ${outcome.elapsedMs} ms`);
  });

  it('do not cut a slow but valid event stream that outlives the request deadline', async () => {
    const upstream = await tricklingUpstream(1_500, 100);
    try {
      const started = Date.now();
      const response = await fetch(`${proxy.url}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2025-06-18',
          'x-proxy-token': TEST_TOKEN,
          'x-mcp-server-url': upstream.url,
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 7,
          method: 'tools/call',
          params: { name: 'slow', arguments: {}, _meta: { progressToken: 'p' } },
        }),
      });
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/);
      const text = await response.text();
      assert.ok(Date.now() - started >= 1_400, 'the stream lasted longer than the request deadline');
      assert.match(text, /"done":true/, 'the final result arrived');
      assert.ok((text.match(/notifications\/progress/g) ?? []).length >= 10, 'progress kept flowing');
    } finally {
      upstream.server.closeAllConnections();
      await new Promise((resolve) => upstream.server.close(resolve));
    }
  });
});

describe('an auth refusal', () => {
  let proxy: RunningProxy;
  before(async () => {
    // Deadlines far away: only the refusal itself may close the connection.
    proxy = await startProxy({
      HEADERS_TIMEOUT_MS: '60000',
      REQUEST_TIMEOUT_MS: '60000',
      METRICS_TOKEN: 'metrics-token-0123456789abcdef',
    });
  });
  after(async () => {
    await proxy?.close();
  });

  for (const [path, auth] of [
    ['/proxy', 'X-Proxy-Token: wrong-token-0123456789abcdef'],
    ['/mcp', 'X-Proxy-Token: wrong-token-0123456789abcdef'],
    ['/metrics', 'Authorization: Bearer wrong-token-0123456789abcdef'],
  ] as const) {
    it(`on ${path} answers with Connection: close and closes while the body is still arriving`, async () => {
      const outcome = await rawExchange(
        proxy.url,
        `${path === '/metrics' ? 'GET' : 'POST'} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"jsonrpc":',
        5_000,
      );
      assert.match(outcome.received, /^HTTP\/1\.1 401 /);
      assert.match(outcome.received, /\r\nconnection: close\r\n/i);
      assert.ok(outcome.closed && outcome.elapsedMs < 2_000, `closed after ${outcome.elapsedMs} ms`);
    });
  }
});

describe('the number of open connections', () => {
  it('is capped by MAX_CONNECTIONS: one more is closed as it opens, the others stay', async () => {
    const proxy = await startProxy({ MAX_CONNECTIONS: '2' });
    const { port } = new URL(proxy.url);
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const socket = connect(Number(port), '127.0.0.1');
        socket.on('error', () => {});
        await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
        held.push(socket);
      }
      const extra = await rawExchange(proxy.url, '', 5_000);
      assert.equal(extra.closed, true, 'the connection past the cap is closed');
      assert.equal(extra.received, '');
      assert.ok(held.every((socket) => !socket.destroyed && socket.readyState === 'open'));
    } finally {
      for (const socket of held) socket.destroy();
      await proxy.close();
    }
  });
});
