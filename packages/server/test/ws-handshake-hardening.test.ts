import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { startChildProxy } from './helpers/child-proxy.ts';
import { eventually } from './helpers/eventually.ts';
import { startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** A raw upgrade request for `path`, with optional extra header lines. */
function upgrade(path: string, extra = ''): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`
  );
}

/** Connects to the port (half-open allowed: this side never ends unless told). */
function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('/ws handshakes that do not complete', { timeout: 30_000 }, () => {
  it('a reset during a refused upgrade does not crash the proxy', async () => {
    // A child process: an uncaught 'error' event ends it, which the test sees (in-process, it
    // would end the test runner instead).
    const proxy = await startChildProxy({}, 128);
    try {
      const port = Number(new URL(proxy.url).port);
      for (let i = 0; i < 100; i++) {
        const socket = await open(port);
        socket.on('error', () => {});
        // Wrong path (refused before any check) and /ws (refused after them).
        socket.write(upgrade(i % 2 === 0 ? '/nope' : '/ws?server=x'));
        socket.resetAndDestroy();
      }
      const health = await fetch(`${proxy.url}/health`);
      await health.arrayBuffer();
      assert.equal(health.status, 200);
      assert.ok(proxy.alive(), `the proxy died:\n${proxy.output()}`);
    } finally {
      await proxy.stop();
    }
  });

  it('a refused upgrade is closed by the proxy even if the client never closes it', async () => {
    const proxy = await startProxy({ CORS_ORIGINS: 'https://app.example.com' });
    const clients: Socket[] = [];
    try {
      const port = Number(new URL(proxy.url).port);
      const connections = () =>
        new Promise<number>((resolve) => proxy.app.server.getConnections((_error, n) => resolve(n)));
      const refusals = [
        upgrade('/ws?server=x&proxy_token=wrong-token', 'Origin: https://app.example.com\r\n'), // 401
        upgrade(`/ws?server=x&proxy_token=${TEST_TOKEN}`, 'Origin: https://evil.example\r\n'), // 403
        upgrade(`/ws?server=nope&proxy_token=${TEST_TOKEN}`, 'Origin: https://app.example.com\r\n'), // 404
        upgrade('/not-ws', 'Origin: https://app.example.com\r\n'), // 404, wrong path
      ];
      const answers: string[] = [];
      for (let i = 0; i < 20; i++) {
        const socket = await open(port);
        socket.on('error', () => {});
        socket.on('data', (chunk) => answers.push(String(chunk).split('\r\n')[0] ?? ''));
        socket.write(refusals[i % refusals.length] as string);
        clients.push(socket);
      }
      await eventually(() => answers.length === 20, { what: 'every refusal to be answered' });
      assert.deepEqual(
        new Set(answers),
        new Set(['HTTP/1.1 401 Unauthorized', 'HTTP/1.1 403 Forbidden', 'HTTP/1.1 404 Not Found']),
      );
      await eventually(async () => (await connections()) === 0, {
        timeoutMs: 3_000,
        what: 'the proxy to close every refused connection',
      });
    } finally {
      for (const socket of clients) socket.destroy();
      await proxy.close();
    }
  });

  it('checks that outlast the request deadline refuse the handshake (408) and close it', async () => {
    // A resolver that does not answer while the test runs: the target check of the handshake
    // hangs. It fails at the end, so the guard's DNS deadline does not hold the process open.
    const hanging: Array<(error: Error) => void> = [];
    const proxy = await startProxy(
      { HEADERS_TIMEOUT_MS: '300', REQUEST_TIMEOUT_MS: '300', WS_ALLOW_MISSING_ORIGIN: 'true' },
      { resolver: () => new Promise((_resolve, reject) => hanging.push(reject)) },
    );
    const socket = await open(Number(new URL(proxy.url).port));
    try {
      socket.on('error', () => {});
      let answer = '';
      socket.on('data', (chunk) => {
        answer += String(chunk);
      });
      const closed = new Promise<void>((resolve) => socket.once('end', () => resolve()));
      socket.write(upgrade(`/ws?mcp_server_url=http://hangs.example/mcp&proxy_token=${TEST_TOKEN}`));
      await closed;
      assert.match(answer, /^HTTP\/1\.1 408 /);
      assert.match(answer, /"code":"handshake_timeout"/);
    } finally {
      for (const reject of hanging) reject(new Error('the test is over'));
      socket.destroy();
      await proxy.close();
    }
  });

  it('logs the shape of a /ws URL, never an upstream credential in it', async () => {
    const proxy = await startProxy({ WS_ALLOW_MISSING_ORIGIN: 'true', LOG_LEVEL: 'info' });
    const socket = await open(Number(new URL(proxy.url).port));
    try {
      socket.on('error', () => {});
      socket.resume();
      const upstream = encodeURIComponent('http://127.0.0.1:9/mcp?api_key=UPSTREAM-SECRET-123');
      const closed = new Promise<void>((resolve) => socket.once('end', () => resolve()));
      socket.write(upgrade(`/ws?mcp_server_url=${upstream}&proxy_token=wrong-wrong-wrong`));
      await closed;
      const line = proxy.logs.find((l) => l.includes('websocket refused'));
      assert.ok(line, 'the refusal is logged');
      assert.ok(!line.includes('UPSTREAM-SECRET'), line);
      assert.ok(!line.includes('api_key'), line);
      const entry = JSON.parse(line);
      assert.equal(entry.path, '/ws');
      assert.deepEqual(entry.params, ['mcp_server_url', 'proxy_token']);
      assert.equal(entry.target, '127.0.0.1:9');
    } finally {
      socket.destroy();
      await proxy.close();
    }
  });
});
