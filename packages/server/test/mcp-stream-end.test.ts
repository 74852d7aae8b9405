/**
 * A relayed event stream ends the way its upstream ended it (issue 14, finding 12). An MCP server
 * answers a POST with its last event and the stream's end in one write, so its client finds the
 * stream complete, and the connection free, as soon as it reads the answer. Relayed with the end a
 * few event-loop turns behind, the client (acting on the answer already) found that connection
 * busy and sent its next requests on others, out of order: the SDK client's GET stream then
 * reached the server after the `tools/call` it had sent after it, and a server request sent on
 * the GET stream in between was lost.
 *
 * The proxy's own socket writes are recorded here: the answer and the chunk terminator must leave
 * in one write.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

const ANSWER = { jsonrpc: '2.0', id: 1, result: { marker: 'the-last-event' } };
const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};

/**
 * An upstream that sends the headers at once and, a moment later, its answer and end together:
 * in its next turn (the proxy still has the whole stream at once), or after `delayMs` (the proxy
 * has begun streaming by then).
 */
async function startUpstream(delayMs?: number): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.once('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': 'upstream-session' });
      res.flushHeaders();
      // A separate turn, as a server that does some work before it answers.
      const answer = () => res.end(`event: message\ndata: ${JSON.stringify(ANSWER)}\n\n`);
      if (delayMs === undefined) setImmediate(answer);
      else setTimeout(answer, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Records what each write on the proxy's accepted sockets carried, one string per write. */
function recordWrites(server: Server): string[] {
  const writes: string[] = [];
  server.on('connection', (socket: Socket) => {
    const writable = socket as Socket & {
      _write(chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void;
      _writev(chunks: { chunk: Buffer | string }[], callback: (error?: Error | null) => void): void;
    };
    const write = writable._write;
    const writev = writable._writev;
    writable._write = function (chunk, encoding, callback) {
      writes.push(String(chunk));
      write.call(this, chunk, encoding, callback);
    };
    writable._writev = function (chunks, callback) {
      writes.push(chunks.map(({ chunk }) => String(chunk)).join(''));
      writev.call(this, chunks, callback);
    };
  });
  return writes;
}

for (const [name, delayMs] of [
  ['at once (relayed whole)', undefined],
  ['after the relay began streaming', 200],
] as const) {
  test(`a relayed event stream ends in the same write as its last event: answer ${name}`, async (t) => {
    await relayedEnd(t, delayMs);
  });
}

/** Initializes through `/mcp` to `upstreamUrl`, checking the answer carries the upstream's last event. */
async function initializeThrough(proxy: RunningProxy, upstreamUrl: string): Promise<void> {
  const response = await fetch(`${proxy.url}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'x-proxy-token': proxy.token,
      'x-mcp-server-url': upstreamUrl,
      'x-mcp-transport': 'streamable-http',
    },
    body: JSON.stringify(INITIALIZE),
  });
  assert.equal(response.status, 200);
  assert.match(await response.text(), /the-last-event/);
}

async function relayedEnd(t: TestContext, delayMs: number | undefined): Promise<void> {
  const upstream = await startUpstream(delayMs);
  t.after(() => upstream.close());
  const proxy = await startProxy({ HOST: '127.0.0.1' });
  t.after(() => proxy.close());
  const writes = recordWrites(proxy.app.server);

  await initializeThrough(proxy, upstream.url);

  const carrying = writes.filter((write) => write.includes('the-last-event'));
  assert.equal(carrying.length, 1, 'the answer left in one write');
  const write = carrying[0] ?? '';
  // A stream the proxy had whole goes with its length: it is complete with its last byte.
  const whole = /\r\ncontent-length: \d+\r\n/i.test(write) && write.endsWith('\n\n');
  if (delayMs !== undefined) assert.ok(!whole, 'a stream still open was streamed');
  assert.ok(
    whole || write.endsWith('0\r\n\r\n'),
    `the stream's end left with the answer, not after it: ${JSON.stringify(writes.slice(-3))}`,
  );
}

test('a streamed relay warns of no listener leak (issue 16: one warning, stack and stderr line per answer)', async (t) => {
  // Every answer the proxy streams (server-everything's, whose end trails its event) used to put
  // 11 'close' listeners on its response: Node then built a MaxListenersExceededWarning, with a
  // stack, and wrote it to stderr, for each such answer.
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  const upstream = await startUpstream(50);
  t.after(() => upstream.close());
  const proxy = await startProxy({ HOST: '127.0.0.1' });
  t.after(() => proxy.close());
  const writes = recordWrites(proxy.app.server);

  for (let call = 0; call < 3; call++) {
    await initializeThrough(proxy, upstream.url);
  }
  // A warning is emitted on a later tick than the listener that crossed the limit.
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(
    writes.some((write) => write.includes(': proxied')),
    'the answers were streamed (the headers went before the event)',
  );
  assert.deepEqual(
    warnings.map((warning) => `${warning.name}: ${warning.message}`),
    [],
  );
});

test('a relayed event stream that goes on still delivers each event as it comes', async (t) => {
  // The corking that keeps an end with its event must not hold back a stream that stays open.
  const server: Server = createServer((req, res) => {
    req.resume();
    if (req.url === '/ack') {
      server.emit('ack');
      res.writeHead(204).end();
      return;
    }
    req.once('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(
        `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'first' } })}\n\n`,
      );
      // The answer only once the caller has seen the first event (it posts to /ack).
      server.once('ack', () => res.end(`event: message\ndata: ${JSON.stringify(ANSWER)}\n\n`));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const { port } = server.address() as AddressInfo;
  const proxy = await startProxy({ HOST: '127.0.0.1' });
  t.after(() => proxy.close());

  const response = await fetch(`${proxy.url}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'x-proxy-token': proxy.token,
      'x-mcp-server-url': `http://127.0.0.1:${port}/mcp`,
      'x-mcp-transport': 'streamable-http',
    },
    body: JSON.stringify(INITIALIZE),
  });
  assert.equal(response.status, 200);
  const reader = (response.body as ReadableStream<Uint8Array>)
    .pipeThrough(new TextDecoderStream())
    .getReader();
  let text = '';
  while (!text.includes('first')) {
    const { value, done } = await reader.read();
    assert.equal(done, false, 'the stream ended before its first event');
    text += value;
  }
  await fetch(`http://127.0.0.1:${port}/ack`, { method: 'POST' });
  while (!text.includes('the-last-event')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  assert.match(text, /the-last-event/);
});
