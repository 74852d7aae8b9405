/**
 * The `ws` transport with the `ws` package as its WebSocket (what Node < 22 needs): a refused or
 * broken handshake rejects the call with the client's typed error and never kills the process
 * with an unhandled 'error' event (issue #14.15). Each scenario runs in a child process so a
 * crash shows as one, not as a test-runner artefact.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type RunningProxy, startProxy } from '../../server/test/helpers/proxy.ts';
import { CLIENT_ROOT } from '../scripts/bundle.ts';

const run = promisify(execFile);
const CHILD = join(CLIENT_ROOT, 'test/fixtures/ws-package-call.ts');

interface Outcome {
  readonly outcome: 'resolved' | 'rejected';
  readonly typed?: boolean;
  readonly name?: string;
  readonly code?: string;
  readonly status?: number;
  readonly message?: string;
}

/** Runs one call in a child process; fails the test if the child dies instead of printing. */
async function callInChild(proxyUrl: string, token: string): Promise<Outcome> {
  try {
    const { stdout } = await run(process.execPath, [CHILD, proxyUrl, token], { timeout: 30_000 });
    return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Outcome;
  } catch (error) {
    const { code, stderr } = error as { code?: number; stderr?: string };
    assert.fail(`the client's process died (exit ${code}): ${stderr}`);
  }
}

/** An HTTP server on loopback whose upgrade handling the test chooses. */
async function handshakeServer(
  onUpgrade: (socket: Socket, key: string) => void,
): Promise<{ url: string; stop(): Promise<void> }> {
  const server = createServer((_request, response) => response.writeHead(404).end());
  // Upgraded sockets leave the server's books: tracked here so stop() never waits on one.
  const upgraded = new Set<Socket>();
  server.on('upgrade', (request, socket: Socket) => {
    upgraded.add(socket);
    socket.on('error', () => {});
    onUpgrade(socket, String(request.headers['sec-websocket-key']));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async stop() {
      for (const socket of upgraded) socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function refuseWith(status: number, text: string) {
  return (socket: Socket) =>
    socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`);
}

describe('the ws transport with the ws package', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function hostile(onUpgrade: (socket: Socket, key: string) => void): Promise<string> {
    const { url, stop } = await handshakeServer(onUpgrade);
    cleanups.push(stop);
    return url;
  }

  it('a real proxy refusing the token: ProxyAuthError unauthorized, status 401', async () => {
    // The ws package sends no Origin: the proxy must be told to accept that, or it answers 403.
    const proxy: RunningProxy = await startProxy({ WS_ALLOW_MISSING_ORIGIN: 'true' });
    cleanups.push(() => proxy.close());
    const result = await callInChild(proxy.url, 'not-the-token');
    assert.deepEqual(
      { outcome: result.outcome, name: result.name, code: result.code, status: result.status },
      { outcome: 'rejected', name: 'ProxyAuthError', code: 'unauthorized', status: 401 },
    );
  });

  it('a real proxy refusing a missing Origin (403): NetworkError carrying the status', async () => {
    const proxy: RunningProxy = await startProxy();
    cleanups.push(() => proxy.close());
    const result = await callInChild(proxy.url, proxy.token);
    assert.deepEqual(
      { outcome: result.outcome, name: result.name, code: result.code, status: result.status },
      { outcome: 'rejected', name: 'NetworkError', code: 'network_error', status: 403 },
    );
  });

  it('a 401 handshake answer: ProxyAuthError', async () => {
    const url = await hostile(refuseWith(401, 'Unauthorized'));
    const result = await callInChild(url, 'token');
    assert.equal(result.outcome, 'rejected');
    assert.equal(result.name, 'ProxyAuthError');
    assert.equal(result.status, 401);
  });

  it('a 403 handshake answer: NetworkError carrying the status', async () => {
    const url = await hostile(refuseWith(403, 'Forbidden'));
    const result = await callInChild(url, 'token');
    assert.equal(result.outcome, 'rejected');
    assert.equal(result.typed, true);
    assert.equal(result.name, 'NetworkError');
    assert.equal(result.code, 'network_error');
    assert.equal(result.status, 403);
    assert.match(result.message ?? '', /403/);
  });

  it('a server that closes mid-handshake: NetworkError', async () => {
    const url = await hostile((socket) => socket.destroy());
    const result = await callInChild(url, 'token');
    assert.equal(result.outcome, 'rejected');
    assert.equal(result.typed, true);
    assert.equal(result.name, 'NetworkError');
  });

  it('a server that answers half a handshake and hangs up: NetworkError', async () => {
    const url = await hostile((socket) => socket.end('HTTP/1.1 101 Switching Protocols\r\nupgrade: web'));
    const result = await callInChild(url, 'token');
    assert.equal(result.outcome, 'rejected');
    assert.equal(result.typed, true);
    assert.equal(result.name, 'NetworkError');
  });

  it('an open socket that then receives a broken frame: the call fails typed, no crash', async () => {
    const url = await hostile((socket, key) => {
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n' +
          `sec-websocket-accept: ${accept}\r\nsec-websocket-protocol: mcp\r\n\r\n`,
      );
      // Once the client's first message arrives: a frame with reserved opcode 3, which the ws
      // package reports as an 'error' (then closes 1002).
      socket.once('data', () => socket.write(Buffer.from([0x83, 0x00])));
    });
    const result = await callInChild(url, 'token');
    assert.equal(result.outcome, 'rejected');
    assert.equal(result.typed, true);
    assert.equal(result.name, 'NetworkError');
    assert.equal(result.code, 'connection_closed', result.message);
  });

  it('connection refused: NetworkError', async () => {
    // A port that was just free: nothing listens on it once this server has closed.
    const url = await hostile(() => {});
    await cleanups.pop()?.();
    const result = await callInChild(url, 'token');
    assert.equal(result.outcome, 'rejected');
    assert.equal(result.typed, true);
    assert.equal(result.name, 'NetworkError');
    assert.equal(result.code, 'network_error');
  });
});
