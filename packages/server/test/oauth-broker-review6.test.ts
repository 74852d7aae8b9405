/**
 * Issue 18, the third attacker review of the upstream OAuth broker (review oauth6): each finding
 * replayed black-box against the proxy, with the OAuth test world (oidc-provider) or hostile
 * authorization and MCP servers written here, on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import { eventually } from './helpers/eventually.ts';
import * as world from './helpers/oauth-proxy.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL, body: string) => void | Promise<void>;

/** A small loopback HTTP server for hostile parties; returns its base URL. */
async function serve(handler: Handler): Promise<string> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://local');
      Promise.resolve(handler(req, res, url, Buffer.concat(chunks).toString())).catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function json(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
}

/** Opens /ws as `token` to `serverUrl`; `answer` sends a request and waits for its answer. */
async function openSocket(s: world.OAuthSetup, token: string, serverUrl: string) {
  const query = new URLSearchParams({ mcp_server_url: serverUrl, transport: 'streamable-http' });
  const ws = new WebSocket(`${s.proxy.url.replace('http', 'ws')}/ws?${query}`, ['mcp', `proxy-token.${token}`], {
    origin: world.APP,
  });
  cleanup.push(() => ws.close());
  const frames: any[] = [];
  let closed: { code: number; reason: string } | undefined;
  ws.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString())));
  ws.on('close', (code: number, reason: Buffer) => {
    closed = { code, reason: reason.toString() };
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const answer = async (id: number, method: string, params: unknown = {}) => {
    ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    return eventually(() => frames.find((f) => f.id === id), { what: `answer ${id}` });
  };
  await answer(1, 'initialize', {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 't', version: '1' },
  });
  ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
  return { ws, frames, answer, closed: () => closed };
}

describe('R1: ending a connection reaches an open /ws socket', () => {
  it('a DELETE /oauth/connections closes the socket with upstream_auth_ended (4410)', async () => {
    const s = await world.setupOAuth(cleanup, {}, { revocationEndpoint: null });
    await world.connect(s, world.ALICE, 'alice');
    const socket = await openSocket(s, world.ALICE, s.world.upstream.url);
    const w1: any = await socket.answer(2, 'tools/call', { name: 'whoami', arguments: {} });
    assert.equal(JSON.parse(w1.result.content[0].text).sub, 'alice');

    const del = await fetch(`${s.proxy.url}/oauth/connections/${encodeURIComponent(s.world.upstream.url)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${world.ALICE}`, origin: world.APP },
    });
    assert.equal(del.status, 200, await del.text());

    // The next frame never reaches the upstream with the ended connection's token.
    const w2: any = await socket.answer(3, 'tools/call', { name: 'whoami', arguments: {} });
    assert.equal(w2.result, undefined, JSON.stringify(w2));
    assert.equal(w2.error.data.code, 'upstream_auth_ended');
    const closed = await eventually(() => socket.closed(), { what: 'the socket closed' });
    assert.equal(closed.code, 4410);
    assert.match(closed.reason, /^upstream_auth_ended:/);

    // A new socket asks for a sign-in (the vault holds nothing for alice any more).
    const again = await openSocket(s, world.ALICE, s.world.upstream.url);
    const w3: any = await again.answer(2, 'tools/call', { name: 'whoami', arguments: {} });
    assert.equal(w3.error?.data?.code, 'upstream_auth_required', JSON.stringify(w3));
  });
});
