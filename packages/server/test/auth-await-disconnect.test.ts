/**
 * Issue 17 review: a caller that leaves while authentication awaits its store (Redis: the rate
 * counters are a round trip away) must not leave anything behind. Its response has closed before
 * the later hooks run, and a 'close' listener added then never fires: in-flight slots leaked
 * that way lock the token out (429 `too_many_in_flight`) until a restart. Real redis-server.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { postProxy, startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';

let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

/** Sends a whole POST /proxy, then closes the connection at once, without reading the answer. */
function abortedPost(port: number, token: string): Promise<void> {
  const raw =
    'POST /proxy HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n' +
    `x-proxy-token: ${token}\r\ncontent-length: 2\r\n\r\n{}`;
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(raw, () => socket.destroy()));
    socket.once('close', () => resolve());
    socket.on('error', () => {});
  });
}

describe('a caller that leaves while authentication awaits Redis', () => {
  it('gives back its in-flight slot: the token is not locked out', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const proxy = await startProxy({
      REDIS_URL: redis.url,
      LOG_LEVEL: 'error',
      IN_FLIGHT_PER_TOKEN: '4',
      RATE_LIMIT_PER_IP: '0',
      RATE_LIMIT_PER_TOKEN: '0',
    });
    cleanup.push(() => proxy.close());
    const port = Number(new URL(proxy.url).port);
    // Several at a time so some close while their auth step waits on Redis.
    for (let round = 0; round < 20; round++)
      await Promise.all(Array.from({ length: 10 }, () => abortedPost(port, proxy.token)));
    // Every aborted request has finished its hooks by the time these are answered (one event
    // loop, Redis answers in order): a leaked slot would leave them 429.
    for (let i = 0; i < 3; i++) {
      const reply = await postProxy(proxy, {});
      assert.equal(reply.status, 400, JSON.stringify(reply.body));
    }
  });
});
