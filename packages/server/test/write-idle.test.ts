/**
 * The deadline on sending an answer (review 7, RELAY-4): a caller that stops reading while its
 * answer still has bytes to go loses its connection after WRITE_IDLE_TIMEOUT_MS without
 * progress, and with it what the answer held (here its in-flight slot), instead of holding it
 * for as long as it keeps the connection. Counted in bytes: the caller reads far less than the
 * answer, and the slot comes back while it still does not read.
 *
 * The same proxy serves the second case (review 9, RELAY-1): a caller that reads its large
 * answer steadily is never cut, however long one large write takes to drain.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ConfigDir, configDir, INITIALIZE_2025 } from './helpers/config-dir.ts';
import { eventually } from './helpers/eventually.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const wideEntry = fileURLToPath(new URL('./fixtures/wide-stdio.ts', import.meta.url));
let config: ConfigDir;
let proxy: RunningProxy;
const sockets: Socket[] = [];

before(async () => {
  config = await configDir('mcpp-write-idle-', { wide: { command: process.execPath, args: [wideEntry] } });
  proxy = await startProxy({
    LOG_LEVEL: 'warn',
    MCP_PROXY_CONFIG: config.path,
    IN_FLIGHT_PER_TOKEN: '1',
    WRITE_IDLE_TIMEOUT_MS: '1000',
  });
});
after(async () => {
  for (const socket of sockets) socket.destroy();
  await proxy?.close();
  await config.remove();
});

/** A `wide` call of `chars` euro signs (3 bytes each) in session `sid`. */
function wide(sid: string, chars: number, id: number) {
  return {
    server: 'wide',
    mcp_session_id: sid,
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: 'wide', arguments: { chars } },
  };
}

it('an answer its caller stopped reading is cut after the write-idle deadline, and gives back what it held', {
  timeout: 60_000,
}, async () => {
  const opened = await postProxy(proxy, { server: 'wide', ...INITIALIZE_2025 });
  assert.equal(opened.status, 200, JSON.stringify(opened.body));
  const sid = opened.headers.get('mcp-session-id') as string;
  // A 9 MB answer on a raw connection that reads its first bytes, then nothing: more than the
  // loopback socket buffers take.
  const body = JSON.stringify(wide(sid, 3_000_000, 2));
  const socket = connect(Number(new URL(proxy.url).port), '127.0.0.1');
  sockets.push(socket);
  socket.write(
    `POST /proxy HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nx-proxy-token: ${proxy.token}\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  let read = 0;
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('data', (chunk: Buffer) => {
    read += chunk.length;
  });
  socket.once('data', () => socket.pause());
  await eventually(() => read > 0, { what: "the answer's first bytes" });
  // Its one in-flight slot is held by the unread answer, until the deadline cuts it: then the
  // next call passes, with the first caller still reading nothing.
  await eventually(async () => (await postProxy(proxy, wide(sid, 10, 3))).status === 200, {
    timeoutMs: 20_000,
    what: 'the next call once the unread answer was cut',
  });
  socket.resume();
  await ended;
  assert.ok(read < 9_000_000, `the cut answer was not sent whole (${read} bytes read)`);
});

/**
 * Review 9, RELAY-1 (repro, not fixed): the write-idle deadline (http/write-idle.ts) cuts a
 * caller that IS reading, steadily, when its answer went to the socket as one large write.
 * Progress is measured as `bytesWritten - writableLength`, which moves only when a whole
 * write completes: while one 9 MB JSON body drains into a reader's socket buffers, that value
 * stays put however fast the reader reads, and after WRITE_IDLE_TIMEOUT_MS the connection is
 * destroyed mid-answer. Here the reader takes about 64 KiB every 20 ms (~3 MB/s, a fair
 * mobile link), and the deadline is 1 s: the same holds at the default 60 s for any answer that
 * takes longer than 60 s to drain past the kernel buffers (e.g. 9 MB at 100 KB/s).
 */
it('a caller reading its large answer steadily is not cut by the write-idle deadline', {
  timeout: 60_000,
}, async () => {
  const opened = await postProxy(proxy, { server: 'wide', ...INITIALIZE_2025 });
  assert.equal(opened.status, 200, JSON.stringify(opened.body));
  const sid = opened.headers.get('mcp-session-id') as string;
  const body = JSON.stringify(wide(sid, 3_000_000, 2));
  const socket = connect(Number(new URL(proxy.url).port), '127.0.0.1');
  sockets.push(socket);
  socket.write(
    `POST /proxy HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nx-proxy-token: ${proxy.token}\r\n` +
      `connection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  const chunks: Buffer[] = [];
  let read = 0;
  // A steady reader: every chunk it takes, it takes the next 20 ms later.
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    read += chunk.length;
    socket.pause();
    setTimeout(() => socket.resume(), 20);
  });
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const text = Buffer.concat(chunks).toString('latin1');
  const headEnd = text.indexOf('\r\n\r\n');
  assert.ok(headEnd > 0, 'an answer head arrived');
  const length = Number(/\r\ncontent-length: (\d+)/i.exec(text.slice(0, headEnd))?.[1]);
  const bodyBytes = read - headEnd - 4;
  assert.ok(Number.isFinite(length) && length > 9_000_000, `a 9 MB answer (${text.slice(0, headEnd)})`);
  assert.equal(bodyBytes, length, `the steady reader got its whole answer (${bodyBytes} of ${length} bytes)`);
});
