/**
 * @module test/helpers/oauth-sse-server
 * An HTTP+SSE (2024-11-05) MCP server behind OAuth, on one loopback port with its authorization
 * server (dynamic registration, no revocation endpoint): what a held or pooled upstream session
 * authenticated with a token looks like from the server's side. It records every stream it
 * opened and whether it is still open, and the Authorization header of every message POST.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { authServerMetadata, type Handler, json, serveHostile } from './hostile-server.ts';
import { freePort } from './net.ts';
import { ALICE, APP, bindAs } from './oauth-proxy.ts';
import { postProxy, type Reply, type RunningProxy, startProxy } from './proxy.ts';

// biome-ignore lint/suspicious/noExplicitAny: JSON-RPC messages are arbitrary JSON.
type Json = any;

/** One event stream the server opened. */
export interface OpenedStream {
  /** The Authorization header it was opened with. */
  readonly authorization: string | undefined;
  /** True once the proxy closed it (or it was destroyed). */
  closed: boolean;
}

/** The running server. */
export interface OAuthSseServer {
  /** The MCP server's URL (`transport: 'sse'`). */
  readonly url: string;
  /** Every stream opened, in order. */
  readonly streams: readonly OpenedStream[];
  /** The Authorization header and method of every message POST, in order. */
  readonly posts: ReadonlyArray<{ readonly authorization: string | undefined; readonly method: string }>;
  /** From now on the server accepts only `at-2`, and the token endpoint issues `at-2`. */
  rotate(): void;
}

/**
 * Starts the server; its stop goes into `cleanup`. Its protected-resource metadata is both where
 * its 401 points and at the well-known place (an `auth: oauth` server is asked before any 401).
 * Tokens come with a refresh token and live `expiresIn` seconds (default an hour).
 */
export async function startOAuthSseServer(
  cleanup: Array<() => Promise<void> | void>,
  expiresIn = 3600,
): Promise<OAuthSseServer> {
  const streams: OpenedStream[] = [];
  const responses = new Map<string, ServerResponse>();
  const posts: Array<{ authorization: string | undefined; method: string }> = [];
  let token = 'at-1';
  let base = '';
  const challenge = () => ({ 'www-authenticate': `Bearer resource_metadata="${base}/prm/sse"` });
  const handler: Handler = (req, res, url, body) => {
    const path = url.pathname;
    if (path === '/prm/sse' || path === '/.well-known/oauth-protected-resource/sse')
      return json(res, 200, { resource: `${base}/sse`, authorization_servers: [`${base}/as`] });
    if (path === '/.well-known/oauth-authorization-server/as')
      return json(res, 200, authServerMetadata(base, `${base}/as`));
    if (path === '/register') return json(res, 201, { client_id: 'c1' });
    if (path === '/token')
      return json(res, 200, {
        access_token: token,
        refresh_token: 'rt-1',
        token_type: 'bearer',
        expires_in: expiresIn,
      });
    const authorized = req.headers.authorization === `Bearer ${token}`;
    if (path === '/sse' && req.method === 'GET') {
      if (!authorized) return json(res, 401, {}, challenge());
      const stream: OpenedStream = { authorization: req.headers.authorization, closed: false };
      streams.push(stream);
      const id = String(streams.length);
      responses.set(id, res);
      res.on('close', () => {
        stream.closed = true;
        responses.delete(id);
      });
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      res.write(`event: endpoint\ndata: /messages?s=${id}\n\n`);
      return;
    }
    if (path === '/messages' && req.method === 'POST') {
      const message = JSON.parse(body) as Json;
      posts.push({ authorization: req.headers.authorization, method: String(message.method ?? 'response') });
      if (!authorized) return json(res, 401, {}, challenge());
      const stream = responses.get(url.searchParams.get('s') ?? '');
      if (stream === undefined) return void res.writeHead(404).end();
      res.writeHead(202).end('Accepted');
      if (message.id === undefined) return;
      const result =
        message.method === 'initialize'
          ? {
              protocolVersion: '2024-11-05',
              capabilities: { tools: {} },
              serverInfo: { name: 'oauth-sse', version: '1' },
            }
          : { content: [{ type: 'text', text: 'served' }] };
      stream.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: message.id, result })}\n\n`);
      return;
    }
    res.writeHead(404).end();
  };
  base = await serveHostile(cleanup, handler);
  cleanup.push(() => {
    for (const res of responses.values()) res.destroy();
  });
  return {
    url: `${base}/sse`,
    streams,
    posts,
    rotate: () => {
      token = 'at-2';
    },
  };
}

/** A proxy with the broker on for alice, called from the app {@link APP}; its stop goes into `cleanup`. */
export async function startBrokerProxy(
  cleanup: Array<() => Promise<void> | void>,
  env: Record<string, string> = {},
  deps: Parameters<typeof startProxy>[1] = {},
): Promise<{ proxy: RunningProxy; publicUrl: string }> {
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const proxy = await startProxy(
    {
      PORT: String(port),
      PUBLIC_URL: publicUrl,
      OAUTH_BROKER: 'true',
      PROXY_TOKENS: ALICE,
      CORS_ORIGINS: APP,
      LOG_LEVEL: 'warn',
      ...env,
    },
    deps,
  );
  cleanup.push(() => proxy.close());
  return { proxy, publicUrl };
}

/** Signs alice in from a refused call (its `upstream_auth_required`), as the start and callback pages would. */
export async function signInFrom(publicUrl: string, refused: Reply): Promise<void> {
  assert.equal(refused.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(refused.body));
  const same = { 'content-type': 'application/json', origin: publicUrl, 'sec-fetch-site': 'same-origin' };
  const bound = await fetch(refused.body.error.data.authorizeUrl, {
    method: 'POST',
    headers: same,
    body: JSON.stringify(bindAs(ALICE)),
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
}

/** Ends alice's connection to `server` (a configured server's name or a URL); the answer's body. */
export async function disconnect(proxyUrl: string, server: string): Promise<Json> {
  const del = await fetch(`${proxyUrl}/oauth/connections/${encodeURIComponent(server)}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${ALICE}`, origin: APP },
  });
  const text = await del.text();
  assert.equal(del.status, 200, text);
  return JSON.parse(text);
}

/** A POST /proxy of one JSON-RPC message as alice from the app, to `target`. */
export function proxyCall(
  proxyUrl: string,
  target: Record<string, unknown>,
  message: Record<string, unknown>,
): Promise<Reply> {
  return postProxy(
    { url: proxyUrl, token: ALICE },
    { ...target, jsonrpc: '2.0', ...message },
    { origin: APP },
  );
}
