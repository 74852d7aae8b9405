/**
 * Review 10 (virtual fleet), finding 5: FleetStreams subscribes without the store's `missed`
 * listener (virtual/fleet-channels.ts #listen: `deps.store.subscribe(channel, listener)`), so when
 * the instance's Redis subscriber drops and comes back (store/redis-store.ts resubscribes and
 * tells only those who passed `missed`), whatever was published meanwhile is lost without a
 * word: here the `end` of a DELETEd session, so the GET stream of that session on the other
 * instance stays open for good (as would a list change or a server request offered meanwhile).
 * The relay, told the same, ends what it carried so the client retries.
 *
 * Asserted: after the subscriber came back, the stream of the session deleted meanwhile ends.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { eventually } from './helpers/eventually.ts';
import { type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';
import { type RedisServer, startRedis } from './helpers/redis.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));
const PATH = '/servers/solo/mcp';
const SECRET = 'review10-fleet-5-session-secret-0123456789abcdef';
const sha256hex = (text: string) => createHash('sha256').update(text).digest('hex');

/** A loopback TCP hop in front of Redis for one instance: `down()` cuts it and refuses, `up()` lets it in again. */
async function hop(target: URL) {
  const sockets = new Set<Socket>();
  let open = true;
  let connections = 0;
  const server: Server = createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    connections += 1;
    const upstream = createConnection(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}`,
    connections: () => connections,
    down: () => {
      open = false;
      for (const socket of sockets) socket.destroy();
    },
    up: () => {
      open = true;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const headers = (session?: string) => ({
  authorization: `Bearer ${TEST_TOKEN}`,
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2025-06-18',
  ...(session === undefined ? {} : { 'mcp-session-id': session }),
});

let redis: RedisServer;
let dir: string;
let a: RunningProxy;
let b: RunningProxy;
let hopOfA: Awaited<ReturnType<typeof hop>>;

before(async () => {
  redis = await startRedis();
  dir = await mkdtemp(join(tmpdir(), 'mcpp-review10-fleet-5-'));
  const config = {
    servers: { local: { command: process.execPath, args: [FIXTURE], env: compileCacheEnv() } },
    virtualServers: { solo: { servers: ['local'] } },
    tokens: [{ sha256: sha256hex(TEST_TOKEN) }],
  };
  await writeFile(join(dir, 'proxy.json'), JSON.stringify(config));
  const env = {
    REDIS_URL: redis.url,
    SESSION_SECRET: SECRET,
    MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
    LOG_LEVEL: 'fatal',
  };
  hopOfA = await hop(new URL(redis.url));
  [a, b] = await Promise.all([startProxy({ ...env, REDIS_URL: hopOfA.url }), startProxy(env)]);
});
after(async () => {
  await a?.close();
  await b?.close();
  await hopOfA?.close();
  await redis?.stop();
  await rm(dir, { recursive: true, force: true });
});

it('ends a stream whose session was deleted while its instance’s subscriber was away', {
  timeout: 60_000,
}, async () => {
  const opened = await fetch(`${b.url}${PATH}`, {
    method: 'POST',
    headers: headers(),
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'r10', version: '1' } },
    }),
  });
  await opened.arrayBuffer();
  const session = opened.headers.get('mcp-session-id') as string;
  const stream = await fetch(`${a.url}${PATH}`, {
    method: 'GET',
    headers: { ...headers(session), accept: 'text/event-stream' },
  });
  assert.equal(stream.status, 200);
  let ended = false;
  void stream
    .text()
    .catch(() => '')
    .then(() => {
      ended = true;
    });
  // A's link to Redis drops (a failover, a network blip); the DELETE lands at B meanwhile.
  hopOfA.down();
  const deleted = await fetch(`${b.url}${PATH}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${TEST_TOKEN}`, 'mcp-session-id': session },
  });
  assert.equal(deleted.status, 204);
  // A is let back: its store connects again (its subscriber subscribes again and says so).
  const before = hopOfA.connections();
  hopOfA.up();
  await eventually(() => hopOfA.connections() >= before + 3, {
    what: 'A connected to Redis again',
    timeoutMs: 15_000,
  });
  // Once subscribed again, A hears it may have missed messages: its stream ends (it stops
  // listening on the principal's channel then, so the channel is not waited for here).
  await eventually(() => ended, { what: 'the stream of the deleted session at A ended', timeoutMs: 15_000 });
  // The client opens it again: the session was ended meanwhile.
  const reopened = await fetch(`${a.url}${PATH}`, {
    method: 'GET',
    headers: { ...headers(session), accept: 'text/event-stream' },
  });
  await reopened.arrayBuffer().catch(() => {});
  assert.equal(reopened.status, 404);
});
