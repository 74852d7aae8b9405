/**
 * Revocations that could go unheard (issue 17, review of the minted tokens): an instance whose
 * Redis subscription was down when a token was revoked elsewhere, an instance that never hears an
 * announcement, and a /ws socket or event stream that registers its holding just after its token
 * was revoked. Each must end up refusing the token and closing what it holds.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/config.ts';
import { MemoryRateStore, type RateStore, type WindowHit } from '../src/limits/rate-store.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { namespaced, type Store } from '../src/store/store.ts';
import { type MisbehavingUpstream, startMisbehaving } from './fixtures/misbehaving-upstream.ts';
import { eventually } from './helpers/eventually.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { ADMIN, keyFile, mint, mintRaw, revoke } from './helpers/minted.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';
import { type RedisServer, startRedis } from './helpers/redis.ts';

const PING = { jsonrpc: '2.0', id: 1, method: 'ping' } as const;

/** The close of a socket, or a failure if it stays open `ms`. */
function closeOf(closed: Promise<number>, ms = 5_000): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    closed,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the socket stayed open ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Opens /ws with `token`; resolves once open, with its close code to come. */
async function openSocket(proxy: RunningProxy, token: string, upstreamUrl: string) {
  const ws = new WebSocket(
    `${proxy.url.replace('http', 'ws')}/ws?${new URLSearchParams({ mcp_server_url: upstreamUrl })}`,
    ['mcp', `proxy-token.${token}`],
  );
  ws.on('error', () => {});
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  const opened = await Promise.race([
    new Promise<boolean>((resolve) => ws.once('open', () => resolve(true))),
    new Promise<boolean>((resolve) => ws.once('unexpected-response', () => resolve(false))),
  ]);
  return { ws, closed, opened };
}

/** A TCP relay to Redis that can be cut (every connection dropped, new ones refused) and restored. */
class CuttableLink {
  readonly #server: Server;
  readonly #open = new Set<Socket>();
  #cut = false;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async to(redisUrl: string): Promise<CuttableLink> {
    const target = new URL(redisUrl);
    let link: CuttableLink | undefined;
    const server = createServer((client) => {
      const self = link as CuttableLink;
      if (self.#cut) {
        client.destroy();
        return;
      }
      const upstream = connect(Number(target.port), target.hostname);
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        a.pipe(b);
        a.on('error', () => b.destroy());
        a.on('close', () => b.destroy());
        self.#open.add(a);
        a.once('close', () => self.#open.delete(a));
      }
    });
    link = new CuttableLink(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return link;
  }

  get url(): string {
    const address = this.#server.address() as { port: number };
    return `redis://127.0.0.1:${address.port}`;
  }

  cut(): void {
    this.#cut = true;
    for (const socket of this.#open) socket.destroy();
  }

  restore(): void {
    this.#cut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

/** A memory rate store whose next hit after {@link shutOnce} waits until {@link open}. */
class OneShotGate implements RateStore {
  readonly #inner = new MemoryRateStore();
  #armed = false;
  #gate: Promise<void> | undefined;
  #release: () => void = () => {};
  waiting = 0;

  shutOnce(): void {
    this.#armed = true;
    this.#gate = new Promise((resolve) => {
      this.#release = resolve;
    });
  }

  open(): void {
    this.#armed = false;
    this.#release();
  }

  async hit(key: string, windowMs: number): Promise<WindowHit> {
    if (this.#armed && this.#gate) {
      this.#armed = false;
      this.waiting++;
      await this.#gate;
      this.waiting--;
    }
    return this.#inner.hit(key, windowMs);
  }

  peek(key: string): Promise<WindowHit | undefined> {
    return this.#inner.peek(key);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

describe('revocations that could go unheard', { timeout: 60_000 }, () => {
  let upstream: MisbehavingUpstream;
  let everything: EverythingServer;
  let keyPath = '';
  let env: Record<string, string> = {};
  before(async () => {
    [upstream, everything] = await Promise.all([startMisbehaving(), startEverything('streamableHttp')]);
    keyPath = keyFile();
    const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-gaps-')), 'proxy.yaml');
    writeFileSync(
      configPath,
      ['servers:', '  echo:', `    url: ${upstream.origin}/echo-auth`, ''].join('\n'),
    );
    env = {
      ADMIN_TOKEN: ADMIN,
      SIGNING_KEYS: keyPath,
      MCP_PROXY_CONFIG: configPath,
      WS_ALLOW_MISSING_ORIGIN: 'true',
    };
  });
  after(async () => {
    await Promise.all([upstream?.stop(), everything?.stop()]);
  });
  const ping = (proxy: RunningProxy, token: string) =>
    postProxy({ url: proxy.url, token }, { ...PING, mcp_server_url: `${upstream.origin}/echo-auth` });

  it('an instance whose Redis subscription was down re-checks what it verified once it is back', async () => {
    let redis: RedisServer | undefined;
    let link: CuttableLink | undefined;
    let one: RunningProxy | undefined;
    let two: RunningProxy | undefined;
    try {
      redis = await startRedis();
      link = await CuttableLink.to(redis.url);
      one = await startProxy({ ...env, REDIS_URL: redis.url });
      two = await startProxy({ ...env, REDIS_URL: link.url });
      const { token, id } = await mint(one.url, 'alice', { ttlSeconds: 86_400 });
      assert.equal((await ping(two, token)).status, 200, 'verified and cached on the second instance');
      const socket = await openSocket(two, token, everything.url);
      assert.equal(socket.opened, true);

      link.cut();
      assert.equal(await revoke(one.url, id), 204, 'revoked while the second instance hears nothing');
      link.restore();

      const proxy = two;
      // A ping in flight when the re-check finds the revocation is ended with its connection.
      await eventually(async () => (await ping(proxy, token).catch(() => undefined))?.status === 401, {
        what: 'the second instance to refuse the token revoked while it was not listening',
        timeoutMs: 10_000,
      });
      assert.equal((await ping(two, token)).body.error.data.code, 'token_revoked');
      assert.equal(await closeOf(socket.closed), 4401, 'the socket it held ended');
    } finally {
      await Promise.all([one?.close(), two?.close()]);
      await link?.close();
      await redis?.stop();
    }
  });

  it('an instance that never hears an announcement asks the store again after 30 s', async () => {
    const clock = new ManualClock();
    const shared = new MemoryStore(clock);
    // The second instance's view of the store loses every announcement.
    const deaf: Store = { ...namespaced(shared, ''), subscribe: async () => async () => {} };
    const one = await startProxy(env, { clock, store: namespaced(shared, '') });
    const two = await startProxy(env, { clock, store: deaf });
    try {
      const { token, id } = await mint(one.url, 'alice');
      assert.equal((await ping(two, token)).status, 200);
      assert.equal(await revoke(one.url, id), 204);
      assert.equal((await ping(two, token)).status, 200, 'trusted from its cache for a while');
      clock.advance(31_000);
      // The first request past 30 s sends the store read (it keeps the cached verdict itself,
      // unless the revocation found ends it while in flight); what follows is refused.
      await ping(two, token).catch(() => undefined);
      const refused = await eventually(
        async () => {
          const reply = await ping(two, token).catch(() => undefined);
          return reply?.status === 401 && reply;
        },
        { what: 'the second instance to refuse the token after asking the store' },
      );
      assert.equal(refused.body.error.data.code, 'token_revoked');
    } finally {
      await Promise.all([one.close(), two.close()]);
      await shared.close();
    }
  });

  it('a /ws socket whose token is revoked while its handshake is checked closes at once', async () => {
    const gate = new OneShotGate();
    const proxy = await startProxy(env, { rateStore: gate });
    try {
      const { token, id } = await mint(proxy.url, 'alice');
      assert.equal((await ping(proxy, token)).status, 200, 'cached: the handshake needs no store read');
      gate.shutOnce();
      const opening = openSocket(proxy, token, everything.url);
      await eventually(() => gate.waiting > 0, {
        what: 'the handshake to be authenticated and at the limiter',
      });
      assert.equal(await revoke(proxy.url, id), 204);
      gate.open();
      const socket = await opening;
      if (socket.opened) assert.equal(await closeOf(socket.closed), 4401);
    } finally {
      gate.open();
      await proxy.close();
    }
  });

  it('an event stream whose token is revoked while its request is checked ends at once', async () => {
    const gate = new OneShotGate();
    const proxy = await startProxy(env, { rateStore: gate });
    try {
      const { token, id } = await mint(proxy.url, 'alice');
      const headers = {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-proxy-token': token,
        'x-mcp-server-url': everything.url,
      };
      const init = await fetch(`${proxy.url}/mcp`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: '2025-06-18',
            capabilities: {},
            clientInfo: { name: 'gaps', version: '1' },
          },
        }),
      });
      await init.arrayBuffer();
      assert.equal(init.status, 200);
      gate.shutOnce();
      const streaming = fetch(`${proxy.url}/mcp`, {
        method: 'GET',
        headers: {
          ...headers,
          accept: 'text/event-stream',
          'mcp-session-id': init.headers.get('mcp-session-id') ?? '',
          'mcp-protocol-version': '2025-06-18',
        },
      });
      await eventually(() => gate.waiting > 0, {
        what: 'the request to be authenticated and at the limiter',
      });
      assert.equal(await revoke(proxy.url, id), 204);
      gate.open();
      const ended = streaming.then(
        async (response) => {
          try {
            await response.arrayBuffer();
          } catch {
            // Cut off: ended all the same.
          }
          return true;
        },
        () => true,
      );
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        ended,
        new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), 5_000);
        }),
      ]).finally(() => clearTimeout(timer));
      assert.equal(outcome, true, 'the stream stayed open after its token was revoked');
    } finally {
      gate.open();
      await proxy.close();
    }
  });

  it('STORE=memory never forgets an unexpired revocation: full, it refuses new ones (503 store_full)', async () => {
    const clock = new ManualClock();
    // Room for four keys: each mint records its minter, each revocation is one more key; and two
    // the proxy keeps itself (issue 19: its heartbeat and the session-id sealing key).
    const proxy = await startProxy(env, { clock, store: new MemoryStore(clock, 6) });
    try {
      const a = await mint(proxy.url, 'alice');
      const b = await mint(proxy.url, 'bob');
      assert.equal(await revoke(proxy.url, a.id), 204);
      await mint(proxy.url, 'carol');
      const response = await fetch(`${proxy.url}/auth/tokens/${b.id}`, {
        method: 'DELETE',
        headers: { 'x-proxy-token': ADMIN },
      });
      assert.equal(response.status, 503);
      const body = (await response.json()) as { error: { data: { code: string } } };
      assert.equal(body.error.data.code, 'store_full');
      const refused = await ping(proxy, a.token);
      assert.equal(refused.body.error.data.code, 'token_revoked', 'the earlier revocation is kept');
      clock.advance(700_000);
      assert.equal((await mintRaw(proxy.url, { subject: 'dave' })).status, 201, 'expired entries make room');
    } finally {
      await proxy.close();
    }
  });
});

describe("a reload or revocation while a request's authentication awaits the store (issue 17 review)", () => {
  it('ends the answer it goes on to hold when the reload dropped the key that signed its token', async () => {
    // An upstream that never answers: the request stays open until the proxy ends it.
    const hung = new Set<ServerResponse>();
    const silent = createHttpServer((_request, response) => void hung.add(response));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/mcp`;
    // The revocation read of the first verification waits until the test lets it go.
    const shared = new MemoryStore();
    const inner = namespaced(shared, '');
    let gate: Promise<void> | undefined;
    let open = () => {};
    let reached = false;
    const store: Store = {
      ...inner,
      get: async (key) => {
        if (gate && key.startsWith('revoked:')) {
          reached = true;
          await gate;
        }
        return inner.get(key);
      },
    };
    const keyPath = keyFile();
    const env = { ADMIN_TOKEN: ADMIN, SIGNING_KEYS: keyPath, UPSTREAM_TIMEOUT_MS: '60000' };
    const proxy = await startProxy(env, { store });
    try {
      const { token } = await mint(proxy.url, 'alice');
      gate = new Promise((resolve) => {
        open = resolve;
      });
      const answer = fetch(`${proxy.url}/proxy`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-proxy-token': token },
        body: JSON.stringify({ ...PING, mcp_server_url: silentUrl }),
      }).then(
        async (response) => `answered ${response.status}: ${await response.text()}`,
        () => 'ended',
      );
      await eventually(() => reached, { what: 'the verification to read the store' });
      // The reload re-verifies every holding now: this request holds nothing yet.
      proxy.app.reload(
        loadConfig({
          env: { PROXY_TOKEN: proxy.token, ALLOW_PRIVATE_NETWORKS: 'true', ...env, SIGNING_KEYS: keyFile() },
        }),
      );
      open();
      const outcome = await Promise.race([
        answer,
        new Promise<string>((resolve) => setTimeout(() => resolve('still open after 5 s'), 5_000).unref()),
      ]);
      assert.ok(outcome === 'ended' || outcome.startsWith('answered 401'), outcome);
    } finally {
      for (const response of hung) response.destroy();
      await proxy.close();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('ends the answer it goes on to hold when its token was revoked while its request was counted', async () => {
    const hung = new Set<ServerResponse>();
    const silent = createHttpServer((_request, response) => void hung.add(response));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/mcp`;
    // Counters the proxy must await (as with Redis); the request's count waits for the test.
    const inner = namespaced(new MemoryStore(), '');
    let gate: Promise<void> | undefined;
    let open = () => {};
    let reached = false;
    const store: Store = {
      ...inner,
      hitNow: undefined,
      peekNow: undefined,
      hit: async (key, windowMs) => {
        if (gate && key.startsWith('rate:')) {
          reached = true;
          await gate;
        }
        return inner.hit(key, windowMs);
      },
    };
    const proxy = await startProxy(
      { ADMIN_TOKEN: ADMIN, SIGNING_KEYS: keyFile(), UPSTREAM_TIMEOUT_MS: '60000' },
      { store },
    );
    try {
      const { token, id } = await mint(proxy.url, 'alice');
      // Verified and cached: the revocation read is behind it, only the count is awaited.
      assert.equal((await postProxy({ url: proxy.url, token }, PING)).status, 400);
      gate = new Promise((resolve) => {
        open = resolve;
      });
      const answer = fetch(`${proxy.url}/proxy`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-proxy-token': token },
        body: JSON.stringify({ ...PING, mcp_server_url: silentUrl }),
      }).then(
        async (response) => `answered ${response.status}: ${await response.text()}`,
        () => 'ended',
      );
      await eventually(() => reached, { what: 'the request to be counted' });
      gate = undefined; // the revocation's own request is counted at once
      // The revocation ends what the token holds: this request holds nothing yet.
      assert.equal(await revoke(proxy.url, id), 204);
      open();
      const outcome = await Promise.race([
        answer,
        new Promise<string>((resolve) => setTimeout(() => resolve('still open after 5 s'), 5_000).unref()),
      ]);
      assert.ok(outcome === 'ended' || outcome.startsWith('answered 401'), outcome);
    } finally {
      for (const response of hung) response.destroy();
      await proxy.close();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
