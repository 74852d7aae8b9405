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
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ConfigDir, configDir, INITIALIZE_2025 } from './helpers/config-dir.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const wideEntry = fileURLToPath(new URL('./fixtures/wide-stdio.ts', import.meta.url));
let config: ConfigDir;
let proxy: RunningProxy;
const sockets: Socket[] = [];

before(async () => {
  config = await configDir('mcpp-review9-relay-1-', {
    wide: { command: process.execPath, args: [wideEntry] },
  });
  proxy = await startProxy({
    LOG_LEVEL: 'warn',
    MCP_PROXY_CONFIG: config.path,
    WRITE_IDLE_TIMEOUT_MS: '1000',
  });
});
after(async () => {
  for (const socket of sockets) socket.destroy();
  await proxy?.close();
  await config.remove();
});

it('a caller reading its large answer steadily is not cut by the write-idle deadline', {
  timeout: 60_000,
}, async () => {
  const opened = await postProxy(proxy, { server: 'wide', ...INITIALIZE_2025 });
  assert.equal(opened.status, 200, JSON.stringify(opened.body));
  const sid = opened.headers.get('mcp-session-id') as string;
  const body = JSON.stringify({
    server: 'wide',
    mcp_session_id: sid,
    jsonrpc: '2.0',
    id: 2,
    method: 'tools/call',
    params: { name: 'wide', arguments: { chars: 3_000_000 } },
  });
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
