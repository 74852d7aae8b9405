/**
 * Session 8, gap 2: an instance listens for a virtual session's end and its client's
 * cancellations (the principal's fleet channel) only from the moment a resumable call starts
 * there. A DELETE or `notifications/cancelled` sent through another instance while that
 * subscription is still on its way to Redis was published to nobody: the call ran to its
 * timeout. Here the running instance reaches Redis through a forwarder that holds its next
 * SUBSCRIBE until the DELETE (or the cancellation) has been answered, then lets it through:
 * the call must still end, and its member hear the cancellation.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { eventually } from './helpers/eventually.ts';
import { startProxy, TEST_TOKEN } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';
import { firstEvent, oneMemberConfig, rawClient, startWaitingMember } from './helpers/resumable-member.ts';

/** The RESP form of a SUBSCRIBE command's name (ioredis writes it in lower case). */
const SUBSCRIBE = /\r\nsubscribe\r\n/i;

/** A TCP forwarder to Redis that, once armed, holds the connection that sends a SUBSCRIBE. */
async function startHoldingForwarder(target: string) {
  const { hostname, port } = new URL(target);
  let armed = false;
  let heldSubscribe: (() => void) | undefined;
  const releases: Array<() => void> = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    sockets.add(client).add(upstream);
    upstream.pipe(client);
    let held: Buffer[] | undefined;
    client.on('data', (chunk: Buffer) => {
      if (held === undefined && armed && SUBSCRIBE.test(chunk.toString('latin1'))) {
        armed = false;
        held = [];
        releases.push(() => {
          for (const part of held ?? []) upstream.write(part);
          held = undefined;
        });
        heldSubscribe?.();
      }
      if (held !== undefined) held.push(chunk);
      else upstream.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Resolves once the next SUBSCRIBE is held. */
    holdNextSubscribe(): Promise<void> {
      armed = true;
      return new Promise((resolve) => {
        heldSubscribe = resolve;
      });
    },
    release(): void {
      for (const release of releases.splice(0)) release();
    },
    stop(): Promise<void> {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

for (const how of ['DELETE', 'notifications/cancelled'] as const) {
  test(`a ${how} through another instance in a resumable call's first round trip ends the call`, async (t) => {
    const member = await startWaitingMember();
    const { calls } = member;
    t.after(() => member.stop());
    const redis = await startRedis();
    const forwarder = await startHoldingForwarder(redis.url);
    const env = {
      MCP_PROXY_CONFIG: oneMemberConfig(member.url),
      SESSION_SECRET: 'first-round-ends-test-secret-0123456789',
      UPSTREAM_TIMEOUT_MS: '20000',
    };
    const running = await startProxy({ ...env, REDIS_URL: forwarder.url });
    const elsewhere = await startProxy({ ...env, REDIS_URL: redis.url });
    t.after(async () => {
      forwarder.release();
      await Promise.all([running.close(), elsewhere.close()]);
      await forwarder.stop();
      await redis.stop();
    });
    const here = rawClient(running.url);
    const session = await here.initialize();
    const leaving = new AbortController();
    t.after(() => leaving.abort());

    const held = forwarder.holdNextSubscribe();
    const priming = await firstEvent(await here.call(session, 'wait', 7, leaving.signal));
    assert.equal(priming.data, '');
    await held;
    await eventually(() => calls.started === 1, { what: 'the call running on the member' });
    if (how === 'DELETE') assert.equal((await rawClient(elsewhere.url).end(session)).status, 204);
    else {
      const cancelled = await fetch(rawClient(elsewhere.url).url, {
        method: 'POST',
        headers: rawClient(elsewhere.url, TEST_TOKEN).headers(session),
        body: JSON.stringify({
          jsonrpc: '2.0',
          method: 'notifications/cancelled',
          params: { requestId: 7, reason: 'changed my mind' },
        }),
      });
      assert.equal(cancelled.status, 202);
    }
    // The running instance's subscription reaches Redis only after the other one published.
    forwarder.release();
    await eventually(() => calls.aborted === 1, {
      what: 'the call cancelled on the member',
      timeoutMs: 10_000,
    });
  });
}
