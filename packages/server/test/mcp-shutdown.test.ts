/**
 * Graceful shutdown with `/mcp` clients attached: `close()` (what SIGTERM runs) must end the
 * long-lived event streams itself rather than wait for every client to leave, or the process
 * only ever stops when `SHUTDOWN_TIMEOUT_MS` forces it (exit code 1, "shutdown timed out").
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { startWsUpstream } from './fixtures/ws-upstream.ts';
import { eventually } from './helpers/eventually.ts';
import { startEverything } from './helpers/everything.ts';
import { type ConnectedClient, connectClient, type ProxyTarget, urlTarget } from './helpers/mcp-client.ts';
import { startProxy } from './helpers/proxy.ts';

/** How long close() may take with a client attached; the default shutdown timeout is 10 s. */
const CLOSE_WITHIN_MS = 3_000;

describe('proxy close() with /mcp clients attached', () => {
  it('ends a bridged session’s streams (WebSocket upstream) instead of waiting for the client', async () => {
    const ws = await startWsUpstream();
    try {
      await expectPromptClose(urlTarget(ws.url));
    } finally {
      await ws.stop();
    }
  });

  it('ends a relayed pass-through stream (Streamable HTTP upstream) instead of waiting for the client', async () => {
    const upstream = await startEverything('streamableHttp');
    try {
      await expectPromptClose(urlTarget(upstream.url));
    } finally {
      await upstream.stop();
    }
  });

  it('is not held open by a connection that never sent a request', async () => {
    // Browsers pre-connect, and undici (the SDK's fetch) opens spare pooled connections.
    const proxy = await startProxy({ HOST: '127.0.0.1' });
    const socket = connect(Number(new URL(proxy.url).port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const closing = proxy.close();
    try {
      assert.equal(await settlesWithin(closing, CLOSE_WITHIN_MS), true, 'close() still waiting');
    } finally {
      socket.destroy();
      await closing;
    }
  });
});

/** Connects an SDK client with its GET stream open, then requires close() to finish promptly. */
async function expectPromptClose(target: ProxyTarget): Promise<void> {
  const proxy = await startProxy({ HOST: '127.0.0.1' });
  let client: ConnectedClient | undefined;
  let closing: Promise<void> | undefined;
  try {
    client = await connectClient(proxy, target);
    // Both upstreams ask for roots right after initialization, which gets the GET stream
    // answered; failing that (a race on the pass-through), the stream is at least under way.
    await client.standaloneOpened(2_000).catch(() => {});
    closing = proxy.close();
    assert.equal(
      await settlesWithin(closing, CLOSE_WITHIN_MS),
      true,
      `close() still waiting ${CLOSE_WITHIN_MS} ms later for the client's open event streams`,
    );
    // The client learns of the end a moment after the proxy sent it.
    await eventually(() => client?.standaloneEnded(), {
      timeoutMs: 2_000,
      what: 'the client to see its stream end',
    });
    assert.ok(client.standaloneEnded(), 'the client saw its stream end');
  } finally {
    await client?.close();
    await (closing ?? proxy.close());
  }
}

/** True if `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = promise.then(
    () => true as const,
    () => true as const,
  );
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}
