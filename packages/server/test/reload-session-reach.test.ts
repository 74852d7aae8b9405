/**
 * Review 14 (short review of fix-last-4) URLPATTERN-1: a raw URL target's reach test
 * (dispatch/targets.ts `#reachTest`) closes over the principal's grants of the moment the target
 * was resolved, and a legacy HTTP+SSE session fixes its endpoint once, when it opens
 * (upstream/sse.ts `#resolveEndpoint`). A reload that narrows the grant is checked only against
 * the session's target key (`stillReaches` on the SSE stream's URL), never against the endpoint
 * every message is posted to, nor does it rebind the reach test. So a held session opened under
 * `/public/**`, whose endpoint is `/public/internal/messages`, keeps posting the token's messages
 * there after the operator narrowed the grant to `/public/sse` and `/public/messages`.
 *
 * A real loopback HTTP+SSE server records every POST's path: after the reload none may reach
 * `/public/internal/` (the session may end, or the call be refused: either is correct).
 *
 * Fixed: a held session to a raw URL records the URLs its upstream sent it on to
 * (sessions/session-reach.ts) and the reload judges them with its target (identity/reload-reach.ts):
 * the session ends, its event stream upstream closed. (Its caller's grant changed, so the caller
 * would not be served by it anyway: dispatch/held-sessions.ts servesCaller.)
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import { initializeResult } from './fixtures/hostile-upstream.ts';
import { postProxy, type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const CALLER = 'reload-session-reach-caller-0123456789';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

describe('a reload that narrows a URL grant ends a held SSE session whose endpoint it excludes (review14 URLPATTERN-1)', () => {
  let server: Server;
  let port: number;
  let proxy: RunningProxy;
  const posts: string[] = [];
  const streams = new Set<ServerResponse>();
  const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-reload-session-reach-')), 'proxy.json');
  const configure = (urls: readonly string[]) =>
    writeFileSync(configPath, JSON.stringify({ tokens: [{ sha256: sha256(CALLER), urls }] }));

  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.method === 'GET' && req.url === '/public/sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: endpoint\ndata: /public/internal/messages\n\n');
        streams.add(res);
        res.once('close', () => streams.delete(res));
        return;
      }
      if (req.method !== 'POST') {
        res.writeHead(405).end();
        return;
      }
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      req.on('end', () => {
        if (!req.url?.includes('messages')) {
          res.writeHead(405).end();
          return;
        }
        posts.push(req.url);
        res.writeHead(202).end();
        const message = JSON.parse(body) as { id?: number; method?: string };
        const answer =
          message.method === 'initialize'
            ? initializeResult(message.id)
            : message.id === undefined
              ? undefined
              : JSON.stringify({ jsonrpc: '2.0', id: message.id, result: {} });
        if (answer) for (const stream of streams) stream.write(`event: message\ndata: ${answer}\n\n`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    configure([`http://127.0.0.1:${port}/public/**`]);
    proxy = await startProxy({ MCP_PROXY_CONFIG: configPath });
  });

  after(async () => {
    await proxy?.close();
    for (const stream of streams) stream.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const send = (method: string, id: number, headers: Record<string, string> = {}) =>
    postProxy(
      { url: proxy.url, token: CALLER },
      {
        mcp_server_url: `http://127.0.0.1:${port}/public/sse`,
        transport: 'sse',
        jsonrpc: '2.0',
        id,
        method,
        ...(method === 'initialize'
          ? {
              params: {
                protocolVersion: '2024-11-05',
                capabilities: {},
                clientInfo: { name: 't', version: '1' },
              },
            }
          : {}),
      },
      headers,
    );

  it('no message is posted to an endpoint the narrowed grant excludes', async () => {
    const init = await send('initialize', 1);
    assert.equal(init.status, 200, JSON.stringify(init.body));
    const sessionId = init.headers.get('mcp-session-id');
    assert.ok(sessionId, 'a held session was opened');
    const ping = await send('ping', 2, { 'mcp-session-id': sessionId });
    assert.equal(ping.status, 200, JSON.stringify(ping.body));
    assert.ok(posts.includes('/public/internal/messages'), `the setup works: ${JSON.stringify(posts)}`);

    // The session's event stream upstream, which the reload must end.
    const [stream] = streams;
    assert.ok(stream, 'the session holds an event stream upstream');
    const ended = once(stream, 'close', { signal: AbortSignal.timeout(10_000) });
    // The operator narrows the grant: /public/internal/ is no longer the token's to reach.
    configure([`http://127.0.0.1:${port}/public/sse`, `http://127.0.0.1:${port}/public/messages`]);
    proxy.app.reload(
      loadConfig({
        env: {
          PROXY_TOKEN: TEST_TOKEN,
          ALLOW_PRIVATE_NETWORKS: 'true',
          STORE: 'memory',
          MCP_PROXY_CONFIG: configPath,
        },
      }),
    );
    // The reload is in force: the token may no longer name /public/internal/ itself.
    const named = await postProxy(
      { url: proxy.url, token: CALLER },
      {
        mcp_server_url: `http://127.0.0.1:${port}/public/internal/messages`,
        jsonrpc: '2.0',
        id: 9,
        method: 'ping',
      },
    );
    assert.equal(named.body?.error?.data?.code, 'forbidden_server', JSON.stringify(named.body));
    // The stream's own URL is still granted, so the session's target key passes the reload's check.
    const before = posts.length;
    const after = await send('ping', 3, { 'mcp-session-id': sessionId });
    assert.deepEqual(
      posts.slice(before),
      [],
      `after the reload the token still posted to ${posts.slice(before).join(', ')} (answer ${after.status} ${JSON.stringify(after.body)})`,
    );
    assert.equal(after.body?.error?.data?.code, 'session_not_found', JSON.stringify(after.body));
    // The reload ended the session (it reached an endpoint the new grant excludes): not left open.
    await ended;
  });
});
