import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/config.ts';
import { eventually } from './helpers/eventually.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { modernRequest } from './helpers/modern-client.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const A = 'revocable-token-a-0123456789abcdef';
const B = 'revocable-token-b-0123456789abcdef';
const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'revoke', version: '1' } },
};

/** The configuration a SIGHUP would load, with these plain tokens and grants. */
function configWith(proxyTokens: string[], grants: string[] = []) {
  const config = loadConfig({
    env: { ALLOW_PRIVATE_NETWORKS: 'true', LOG_LEVEL: 'debug', WS_ALLOW_MISSING_ORIGIN: 'true' },
  });
  return {
    ...config,
    proxyTokens,
    tokens: grants.map((token) => ({ sha256: createHash('sha256').update(token).digest('hex') })),
  };
}

/** Opens a /ws socket to `url` with `token`; resolves once open, with its close outcome. */
async function openSocket(proxy: RunningProxy, token: string, url: string) {
  const ws = new WebSocket(
    `${proxy.url.replace('http', 'ws')}/ws?${new URLSearchParams({ mcp_server_url: url })}`,
    [`proxy-token.${token}`, 'mcp'],
  );
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const first = new Promise<unknown>((resolve) =>
    ws.once('message', (data) => resolve(JSON.parse(String(data)))),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify(INIT));
  await first;
  return { ws, closed };
}

describe('a reload that revokes a token ends what the token holds', () => {
  let upstream: EverythingServer;
  let streamable: EverythingServer;
  let proxy: RunningProxy;
  before(async () => {
    [upstream, streamable] = await Promise.all([startEverything('sse'), startEverything('streamableHttp')]);
  });
  after(async () => {
    await Promise.all([upstream.stop(), streamable.stop()]);
  });

  it('closes its /ws sockets with 4401 and deletes its held sessions; other tokens keep theirs', async () => {
    proxy = await startProxy({ PROXY_TOKENS: `${A},${B}`, WS_ALLOW_MISSING_ORIGIN: 'true' });
    try {
      const socketA = await openSocket(proxy, A, upstream.url);
      const socketB = await openSocket(proxy, B, upstream.url);
      const heldA = await postProxy({ url: proxy.url, token: A }, { ...INIT, mcp_server_url: upstream.url });
      const sessionA = heldA.headers.get('mcp-session-id') ?? '';
      assert.match(sessionA, /^mcpp-/);

      proxy.app.reload(configWith([B]));
      const outcome = await Promise.race([
        socketA.closed,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('the revoked socket stayed open')), 5_000).unref(),
        ),
      ]);
      assert.equal(outcome.code, 4401);
      assert.match(outcome.reason, /^unauthorized/);
      assert.equal(socketB.ws.readyState, WebSocket.OPEN, 'a token still valid keeps its socket');

      // Bring A back: its old session must be gone, not resumed.
      proxy.app.reload(configWith([A, B]));
      const ping = { mcp_server_url: upstream.url, jsonrpc: '2.0', id: 2, method: 'ping' };
      const reused = await postProxy({ url: proxy.url, token: A }, ping, { 'mcp-session-id': sessionA });
      assert.equal(reused.status, 404, JSON.stringify(reused.body));
      socketB.ws.close();
      await socketB.closed;
    } finally {
      await proxy.close();
    }
  });

  it('keeps sessions of a token moved from a plain token to a SHA-256 grant', async () => {
    proxy = await startProxy({ PROXY_TOKEN: A, WS_ALLOW_MISSING_ORIGIN: 'true' });
    try {
      const socket = await openSocket(proxy, A, upstream.url);
      proxy.app.reload(configWith([], [A]));
      const ping = { jsonrpc: '2.0', id: 'p', method: 'ping' };
      const answer = new Promise<unknown>((resolve) =>
        socket.ws.on('message', (data) => {
          const frame = JSON.parse(String(data));
          if (frame.id === 'p') resolve(frame);
        }),
      );
      socket.ws.send(JSON.stringify(ping));
      assert.deepEqual(((await answer) as { result: unknown }).result, {});
      socket.ws.close();
      await socket.closed;
    } finally {
      await proxy.close();
    }
  });

  it('ends its pooled modern sessions', async () => {
    proxy = await startProxy({ PROXY_TOKENS: `${A},${B}`, METRICS_TOKEN });
    try {
      for (const token of [A, B]) {
        const echoed = await postProxy(
          { url: proxy.url, token },
          {
            mcp_server_url: streamable.url,
            ...modernRequest(1, 'tools/call', { name: 'echo', arguments: { message: 'pooled' } }),
          },
        );
        assert.equal(echoed.status, 200, JSON.stringify(echoed.body));
      }
      assert.equal(await openSessions(proxy), 2, 'one pooled session per token');
      proxy.app.reload(configWith([B]));
      await eventually(async () => (await openSessions(proxy)) === 1, {
        intervalMs: 50,
        what: 'one open session',
      });
    } finally {
      await proxy.close();
    }
  });

  it('ends its /mcp event streams still open', async () => {
    proxy = await startProxy({ PROXY_TOKENS: `${A},${B}` });
    try {
      const headers = {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-proxy-token': A,
        'x-mcp-server-url': streamable.url,
      };
      const init = await fetch(`${proxy.url}/mcp`, { method: 'POST', headers, body: JSON.stringify(INIT) });
      await init.arrayBuffer();
      const session = init.headers.get('mcp-session-id') ?? '';
      assert.notEqual(session, '');
      const withSession = { ...headers, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' };
      const initialized = await fetch(`${proxy.url}/mcp`, {
        method: 'POST',
        headers: withSession,
        body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
      });
      await initialized.arrayBuffer();
      const stream = await fetch(`${proxy.url}/mcp`, {
        method: 'GET',
        headers: { ...withSession, accept: 'text/event-stream' },
      });
      assert.equal(stream.status, 200);
      const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
      const ended = (async () => {
        try {
          while (!(await reader.read()).done) {}
        } catch {
          // A destroyed connection is an end too.
        }
        return true;
      })();
      proxy.app.reload(configWith([B]));
      assert.equal(
        await Promise.race([
          ended,
          new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5_000).unref()),
        ]),
        true,
        'the revoked token’s stream ended',
      );
    } finally {
      await proxy.close();
    }
  });
});

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

/** The open-sessions gauge. */
async function openSessions(proxy: RunningProxy): Promise<number> {
  const text = await (
    await fetch(`${proxy.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
  ).text();
  return Number(/^mcp_proxy_open_sessions (\d+)$/m.exec(text)?.[1] ?? Number.NaN);
}
