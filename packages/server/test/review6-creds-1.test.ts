/**
 * Review 7 (credentials), finding CREDS-1: review6 OAUTH-1 made a disconnect reach the sessions
 * the proxy holds on /proxy, /mcp and /ws (credentials/live-credential.ts), but not the sessions a
 * virtual server holds to its members (virtual/member-sessions.ts). Those are opened with the
 * broker's token as a fixed string (credentials/member-credentials.ts `supply`), keyed by its
 * hash: after DELETE /oauth/connections the next request opens another session, and the one
 * opened with the ended token lives on — its HTTP+SSE stream (authenticated once with the ended
 * token) still open upstream, whatever it sends still routed to the principal's virtual GET
 * streams — until the idle sweep.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { authServerMetadata, type Handler, json, serveHostile } from './helpers/hostile-server.ts';
import { freePort } from './helpers/net.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const ALICE = 'alice-proxy-token-0123456789abcdef';
const APP = 'http://app.example';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

// biome-ignore lint/suspicious/noExplicitAny: JSON-RPC answers are arbitrary JSON.
type Json = any;

/**
 * An authorization server (no revocation endpoint, access token `at-1`) and an HTTP+SSE MCP
 * server that accepts only `Bearer at-1`. `closed` resolves when a stream opened with it ends.
 */
async function sseMember() {
  const streams = new Map<string, ServerResponse>();
  const opened: string[] = [];
  let ended!: () => void;
  const closed = new Promise<void>((resolve) => {
    ended = resolve;
  });
  let next = 0;
  let base = '';
  const challenge = () => ({ 'www-authenticate': `Bearer resource_metadata="${base}/prm/sse"` });
  const handler: Handler = (req, res, url, body) => {
    // Also at the well-known place: an `auth: oauth` server is asked before any 401.
    if (url.pathname === '/prm/sse' || url.pathname === '/.well-known/oauth-protected-resource/sse')
      return json(res, 200, { resource: `${base}/sse`, authorization_servers: [`${base}/as`] });
    if (url.pathname === '/.well-known/oauth-authorization-server/as')
      return json(res, 200, authServerMetadata(base, `${base}/as`));
    if (url.pathname === '/register') return json(res, 201, { client_id: 'c1' });
    if (url.pathname === '/token')
      return json(res, 200, { access_token: 'at-1', token_type: 'bearer', expires_in: 3600 });
    if (url.pathname === '/sse' && req.method === 'GET') {
      if (req.headers.authorization !== 'Bearer at-1') return json(res, 401, {}, challenge());
      const id = String(++next);
      streams.set(id, res);
      opened.push(id);
      res.on('close', () => ended());
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      res.write(`event: endpoint\ndata: /messages?s=${id}\n\n`);
      return;
    }
    if (url.pathname === '/messages' && req.method === 'POST') {
      if (req.headers.authorization !== 'Bearer at-1') return json(res, 401, {}, challenge());
      const message = JSON.parse(body) as Json;
      const stream = streams.get(url.searchParams.get('s') ?? '');
      if (stream === undefined) return void res.writeHead(404).end();
      res.writeHead(202).end('Accepted');
      if (message.id === undefined) return;
      const result =
        message.method === 'initialize'
          ? {
              protocolVersion: '2024-11-05',
              capabilities: { tools: {} },
              serverInfo: { name: 'm', version: '1' },
            }
          : { content: [{ type: 'text', text: 'served' }] };
      stream.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: message.id, result })}\n\n`);
      return;
    }
    res.writeHead(404).end();
  };
  base = await serveHostile(cleanup, handler);
  cleanup.push(() => {
    for (const stream of streams.values()) stream.destroy();
  });
  return { base, opened, closed };
}

describe('CREDS-1: a disconnect reaches the sessions a virtual server holds to its members', () => {
  // `auth: oauth`: the next request finds no token and asks for a sign-in without reaching the
  // member's session; that session must end all the same.
  for (const auth of [undefined, 'oauth'] as const) {
    it(`the member session opened with the ended token is closed by the next request (auth: ${auth ?? 'unset'})`, async () => {
      const member = await sseMember();
      const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-creds-1-'));
      cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      writeFileSync(
        join(dir, 'proxy.json'),
        JSON.stringify({
          servers: { files: { url: `${member.base}/sse`, transport: 'sse', ...(auth ? { auth } : {}) } },
          virtualServers: { workspace: { servers: ['files'] } },
        }),
      );
      const port = await freePort();
      const publicUrl = `http://127.0.0.1:${port}`;
      const proxy = await startProxy({
        PORT: String(port),
        PUBLIC_URL: publicUrl,
        OAUTH_BROKER: 'true',
        PROXY_TOKENS: ALICE,
        CORS_ORIGINS: APP,
        LOG_LEVEL: 'warn',
        MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
      });
      cleanup.push(() => proxy.close());
      let id = 1;
      const call = () =>
        postProxy(
          { url: proxy.url, token: ALICE },
          {
            server: 'workspace',
            jsonrpc: '2.0',
            id: id++,
            method: 'tools/call',
            params: { name: 'files__x', arguments: {} },
          },
          { origin: APP },
        );

      // Signed in as the start and callback pages would.
      const refused = await call();
      assert.equal(refused.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(refused.body));
      const same = { 'content-type': 'application/json', origin: publicUrl, 'sec-fetch-site': 'same-origin' };
      const bound = await fetch(refused.body.error.data.authorizeUrl, {
        method: 'POST',
        headers: same,
        body: JSON.stringify({ credential: ALICE, origin: APP }),
      });
      const b = (await bound.json()) as { authorizeUrl: string; state: string; nonce: string };
      assert.equal(bound.status, 200, JSON.stringify(b));
      const callback = new URL(b.authorizeUrl).searchParams.get('redirect_uri') as string;
      const done = await fetch(callback, {
        method: 'POST',
        headers: same,
        body: JSON.stringify({ query: `?code=c&state=${b.state}`, nonce: b.nonce }),
      });
      assert.equal(done.status, 200, await done.text());

      const served = await call();
      assert.equal(served.body?.result?.content?.[0]?.text, 'served', JSON.stringify(served.body));
      assert.equal(member.opened.length, 1, 'one member session, authenticated with at-1');

      const del = await fetch(`${proxy.url}/oauth/connections/files`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${ALICE}`, origin: APP },
      });
      assert.equal(del.status, 200, await del.text());

      // The next request through the virtual server: as on /proxy and /mcp (OAUTH-1), the session
      // authenticated with the ended token must serve nobody any more.
      const after = await call();
      assert.equal(after.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(after.body));
      const outcome = await Promise.race([
        member.closed.then(() => 'closed'),
        new Promise<string>((resolve) => setTimeout(() => resolve('still open'), 3000).unref()),
      ]);
      assert.equal(
        outcome,
        'closed',
        "the member's stream opened with the ended token is still open upstream",
      );
    });
  }
});
