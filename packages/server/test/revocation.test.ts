import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { loadConfig } from '../src/config.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
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
  let proxy: RunningProxy;
  before(async () => {
    upstream = await startEverything('sse');
  });
  after(async () => {
    await upstream.stop();
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
});
