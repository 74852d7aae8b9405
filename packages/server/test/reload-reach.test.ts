import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/config.ts';
import { MemoryRateStore, type RateStore, type WindowHit } from '../src/limits/rate-store.ts';
import { eventually } from './helpers/eventually.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const A = 'reach-token-a-0123456789abcdef01';
const B = 'reach-token-b-0123456789abcdef01';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');
const ENV = { ALLOW_PRIVATE_NETWORKS: 'true', LOG_LEVEL: 'warn', WS_ALLOW_MISSING_ORIGIN: 'true' };
const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'reach', version: '1' } },
};

/** A config file with these servers (name → URL) and grants (token → servers, or all). */
function configFile(servers: Record<string, string>, grants: Record<string, string[] | undefined>): string {
  const path = join(mkdtempSync(join(tmpdir(), 'mcp-proxy-reach-')), 'proxy.json');
  writeFileSync(
    path,
    JSON.stringify({
      servers: Object.fromEntries(Object.entries(servers).map(([name, url]) => [name, { url }])),
      tokens: Object.entries(grants).map(([token, list]) => ({
        sha256: sha256(token),
        ...(list ? { servers: list } : {}),
      })),
    }),
  );
  return path;
}

/** What a SIGHUP would load from that file. */
function reloadWith(proxy: RunningProxy, file: string): void {
  proxy.app.reload(loadConfig({ env: { ...ENV, MCP_PROXY_CONFIG: file } }));
}

/** Opens a /ws socket with `query`; resolves once it answered initialize, with its close outcome. */
async function openSocket(proxy: RunningProxy, token: string, query: Record<string, string>) {
  const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/ws?${new URLSearchParams(query)}`, [
    `proxy-token.${token}`,
    'mcp',
  ]);
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  const first = new Promise<unknown>((resolve) => ws.once('message', resolve));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify(INIT));
  await first;
  return { ws, closed };
}

/** Opens a GET event stream on `path` (after initialize) and tells when it ends. */
async function openStream(proxy: RunningProxy, token: string, path: string) {
  const headers = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'x-proxy-token': token,
  };
  const init = await fetch(`${proxy.url}${path}`, { method: 'POST', headers, body: JSON.stringify(INIT) });
  await init.arrayBuffer();
  const withSession = {
    ...headers,
    'mcp-session-id': init.headers.get('mcp-session-id') ?? '',
    'mcp-protocol-version': '2025-06-18',
  };
  await (
    await fetch(`${proxy.url}${path}`, {
      method: 'POST',
      headers: withSession,
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    })
  ).arrayBuffer();
  const stream = await fetch(`${proxy.url}${path}`, {
    method: 'GET',
    headers: { ...withSession, accept: 'text/event-stream' },
  });
  assert.equal(stream.status, 200);
  const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
  let ended = false;
  void (async () => {
    try {
      while (!(await reader.read()).done) {}
    } catch {
      // A destroyed connection is an end too.
    }
    ended = true;
  })();
  return { ended: () => ended, cancel: () => reader.cancel().catch(() => {}) };
}

describe('a reload ends what a token may no longer reach', { timeout: 60_000 }, () => {
  let upstream: EverythingServer;
  let legacy: EverythingServer;
  before(async () => {
    [upstream, legacy] = await Promise.all([startEverything('streamableHttp'), startEverything('sse')]);
  });
  after(async () => {
    await Promise.all([upstream?.stop(), legacy?.stop()]);
  });

  it('narrowed servers, removed or re-pointed servers, and a token newly limited to servers', async () => {
    const servers = { a: upstream.url, b: upstream.url, c: upstream.url, l: legacy.url };
    const proxy = await startProxy({
      ...ENV,
      MCP_PROXY_CONFIG: configFile(servers, { [A]: ['a', 'b', 'c', 'l'], [B]: undefined }),
    });
    try {
      const aToA = await openSocket(proxy, A, { server: 'a' });
      const aToB = await openSocket(proxy, A, { server: 'b' });
      const bToB = await openSocket(proxy, B, { server: 'b' });
      const bToC = await openSocket(proxy, B, { server: 'c' });
      const bToUrl = await openSocket(proxy, B, { mcp_server_url: upstream.url });
      const streamAToA = await openStream(proxy, A, '/servers/a/mcp');
      const streamAToB = await openStream(proxy, A, '/servers/b/mcp');
      // A session the proxy holds (the SSE server is bridged).
      const held = await postProxy({ url: proxy.url, token: A }, { ...INIT, server: 'l' });
      const heldId = held.headers.get('mcp-session-id') ?? '';
      assert.match(heldId, /^mcpp-/, JSON.stringify(held.body));

      // A loses "a"; "c" now points elsewhere (same host, another path).
      reloadWith(
        proxy,
        configFile({ ...servers, c: `${upstream.url}?moved=1` }, { [A]: ['b', 'c'], [B]: undefined }),
      );
      assert.equal(await aToA.closed, 4401, 'a socket to a server the token lost');
      assert.equal(await bToC.closed, 4401, 'a socket to a re-pointed server');
      await eventually(streamAToA.ended, { what: 'the stream to a server the token lost to end' });
      assert.equal(aToB.ws.readyState, WebSocket.OPEN, 'a server the token keeps');
      assert.equal(bToUrl.ws.readyState, WebSocket.OPEN, 'an unlimited token keeps its URL');
      assert.equal(streamAToB.ended(), false, 'a stream to a server the token keeps');

      // "b" is removed (and so dropped from A's list): an unlimited token loses it too.
      // "l" is granted back, unchanged: the session A held to it must still be gone.
      const kept = { a: upstream.url, c: upstream.url, l: legacy.url };
      reloadWith(proxy, configFile(kept, { [A]: ['c', 'l'], [B]: undefined }));
      assert.equal(await bToB.closed, 4401, 'a socket to a removed server');
      assert.equal(await aToB.closed, 4401);
      await eventually(streamAToB.ended, { what: 'the stream to a removed server to end' });
      assert.equal(bToUrl.ws.readyState, WebSocket.OPEN);
      const ping = { server: 'l', jsonrpc: '2.0', id: 2, method: 'ping' };
      const reused = await postProxy({ url: proxy.url, token: A }, ping, { 'mcp-session-id': heldId });
      assert.equal(reused.status, 404, JSON.stringify(reused.body));
      assert.equal(reused.body.error.data.code, 'session_not_found');

      // B becomes limited to named servers: it reaches no URL any more.
      reloadWith(proxy, configFile(kept, { [A]: ['c', 'l'], [B]: ['a'] }));
      assert.equal(await bToUrl.closed, 4401, 'a URL socket of a token now limited to servers');
      await streamAToA.cancel();
      await streamAToB.cancel();
    } finally {
      await proxy.close();
    }
  });
});

/** A memory rate store whose hits wait at a gate while it is shut (a slow Redis, in effect). */
class GatedStore implements RateStore {
  readonly #inner = new MemoryRateStore();
  #gate: Promise<void> | undefined;
  #open: () => void = () => {};
  waiting = 0;

  shut(): void {
    this.#gate = new Promise((resolve) => {
      this.#open = resolve;
    });
  }

  open(): void {
    this.#gate = undefined;
    this.#open();
  }

  async hit(key: string, windowMs: number): Promise<WindowHit> {
    if (this.#gate) {
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

describe('a request authenticated just before a reload revoked its token', { timeout: 60_000 }, () => {
  let upstream: EverythingServer;
  before(async () => {
    upstream = await startEverything('streamableHttp');
  });
  after(async () => {
    await upstream?.stop();
  });
  const twoTokens = () => configFile({ s: 'http://127.0.0.1:9/mcp' }, { [A]: undefined, [B]: undefined });
  const onlyB = () => configFile({ s: 'http://127.0.0.1:9/mcp' }, { [B]: undefined });

  it('does not get its /mcp event stream', async () => {
    const store = new GatedStore();
    const proxy = await startProxy({ ...ENV, MCP_PROXY_CONFIG: twoTokens() }, { rateStore: store });
    try {
      const headers = {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-proxy-token': A,
        'x-mcp-server-url': upstream.url,
      };
      const init = await fetch(`${proxy.url}/mcp`, { method: 'POST', headers, body: JSON.stringify(INIT) });
      await init.arrayBuffer();
      const withSession = {
        ...headers,
        'mcp-session-id': init.headers.get('mcp-session-id') ?? '',
        'mcp-protocol-version': '2025-06-18',
      };
      store.shut();
      const pending = fetch(`${proxy.url}/mcp`, {
        method: 'GET',
        headers: { ...withSession, accept: 'text/event-stream' },
      });
      await eventually(() => store.waiting > 0, {
        what: 'the request to be authenticated and at the limiter',
      });
      reloadWith(proxy, onlyB());
      store.open();
      const stream = await pending;
      await stream.body?.cancel();
      assert.equal(stream.status, 401);
    } finally {
      store.open();
      await proxy.close();
    }
  });

  it('does not keep its /ws socket', async () => {
    const store = new GatedStore();
    const proxy = await startProxy({ ...ENV, MCP_PROXY_CONFIG: twoTokens() }, { rateStore: store });
    try {
      store.shut();
      const ws = new WebSocket(
        `${proxy.url.replace('http', 'ws')}/ws?${new URLSearchParams({ mcp_server_url: upstream.url })}`,
        [`proxy-token.${A}`, 'mcp'],
      );
      const outcome = new Promise<number>((resolve) => {
        ws.once('close', (code) => resolve(code));
        ws.once('unexpected-response', (_request, response) => {
          resolve(response.statusCode ?? 0);
          ws.terminate();
        });
      });
      ws.on('error', () => {});
      await eventually(() => store.waiting > 0, { what: 'the handshake to be checked and at the limiter' });
      reloadWith(proxy, onlyB());
      store.open();
      assert.equal(await outcome, 4401);
    } finally {
      store.open();
      await proxy.close();
    }
  });
});

describe('a /ws handshake checked just before a reload narrowed its token', { timeout: 30_000 }, () => {
  let upstream: EverythingServer;
  before(async () => {
    upstream = await startEverything('streamableHttp');
  });
  after(async () => {
    await upstream?.stop();
  });

  it('is closed (4401) as soon as it opens', async () => {
    const store = new GatedStore();
    const servers = { s: upstream.url, t: upstream.url };
    const proxy = await startProxy(
      { ...ENV, MCP_PROXY_CONFIG: configFile(servers, { [A]: ['s', 't'] }) },
      { rateStore: store },
    );
    try {
      store.shut();
      const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/ws?server=s`, [`proxy-token.${A}`, 'mcp']);
      const outcome = new Promise<number>((resolve) => {
        ws.once('close', (code) => resolve(code));
        ws.once('unexpected-response', (_request, response) => {
          resolve(response.statusCode ?? 0);
          ws.terminate();
        });
      });
      ws.on('error', () => {});
      await eventually(() => store.waiting > 0, { what: 'the handshake to be checked and at the limiter' });
      reloadWith(proxy, configFile(servers, { [A]: ['t'] }));
      store.open();
      assert.equal(await outcome, 4401);
    } finally {
      store.open();
      await proxy.close();
    }
  });
});
