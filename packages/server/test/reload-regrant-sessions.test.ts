/**
 * A reload that changes a URL grant (review 15 URLPATTERN-3): a held session to a raw URL serves only
 * callers with the URL grant it was opened under (dispatch/held-sessions.ts `servesCaller`). A
 * reload that changes a config token's `urls` without taking anything away (it widens them) makes
 * every held session of that token unusable for it (documented), but the reload does not end
 * them (identity/reload-reach.ts: they still reach all they reached), so they keep counting
 * against the token's session cap (`MAX_SESSIONS_PER_TOKEN`) until they idle out: the token
 * cannot open the session it is told to open instead (404 session_not_found says "initialize
 * again"), up to the idle timeout, and for as long as the old session's GET stream keeps it alive.
 *
 * A real loopback HTTP+SSE server; `MAX_SESSIONS_PER_TOKEN=1`; the token's grant widens from
 * `/public/**` to `/public/**` and `/docs/**`. After the reload the old session answers
 * session_not_found (as designed); a new initialize must then open a session.
 *
 * Fixed: the reload ends a raw URL session whose grant digest is not its config token's now
 * (identity/reload-reach.ts `regranted`); its owner may also DELETE it (session-url-grant.test.ts).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import { initializeResult } from './fixtures/hostile-upstream.ts';
import { postProxy, type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const CALLER = 'review15-urlpattern-3-caller-0123456789';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

describe('a reload that changes a URL grant does not leave the token locked out of sessions (review15 URLPATTERN-3)', () => {
  let server: Server;
  let port: number;
  let proxy: RunningProxy;
  const streams = new Set<ServerResponse>();
  const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-review15-urlpattern-3-')), 'proxy.json');
  const configure = (urls: readonly string[]) =>
    writeFileSync(configPath, JSON.stringify({ tokens: [{ sha256: sha256(CALLER), urls }] }));
  const env = { EGRESS_FOLLOW_REDIRECTS: '0', MAX_SESSIONS_PER_TOKEN: '1' };

  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.method === 'GET' && req.url === '/public/sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: endpoint\ndata: /public/messages\n\n');
        streams.add(res);
        res.once('close', () => streams.delete(res));
        return;
      }
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      req.on('end', () => {
        if (req.method !== 'POST' || req.url !== '/public/messages') {
          res.writeHead(405).end();
          return;
        }
        res.writeHead(202).end();
        const message = JSON.parse(body) as { id?: number; method?: string };
        const answer =
          message.method === 'initialize'
            ? initializeResult(message.id)
            : message.id === undefined
              ? undefined
              : JSON.stringify({ jsonrpc: '2.0', id: message.id, result: {} });
        // Each stream is one session; answer on all (the test holds one at a time but two at the end).
        if (answer) for (const stream of streams) stream.write(`event: message\ndata: ${answer}\n\n`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    configure([`http://127.0.0.1:${port}/public/**`]);
    proxy = await startProxy({ MCP_PROXY_CONFIG: configPath, ...env });
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

  it('after the reload the old session is not the token’s, and a new one opens', async () => {
    const init = await send('initialize', 1);
    assert.equal(init.status, 200, JSON.stringify(init.body));
    const sessionId = init.headers.get('mcp-session-id');
    assert.ok(sessionId, 'a held session was opened');
    // The cap holds (the setup works): a second session is refused while the first is open.
    const second = await send('initialize', 2);
    assert.equal(second.body?.error?.data?.code, 'session_limit', JSON.stringify(second.body));

    // The operator widens the grant: nothing the session reached is taken away.
    configure([`http://127.0.0.1:${port}/public/**`, `http://127.0.0.1:${port}/docs/**`]);
    proxy.app.reload(
      loadConfig({
        env: {
          PROXY_TOKEN: TEST_TOKEN,
          ALLOW_PRIVATE_NETWORKS: 'true',
          STORE: 'memory',
          MCP_PROXY_CONFIG: configPath,
          ...env,
        },
      }),
    );
    const old = await send('ping', 3, { 'mcp-session-id': sessionId });
    assert.equal(old.body?.error?.data?.code, 'session_not_found', JSON.stringify(old.body));
    // Told its session is gone, the client initializes again: it must get a session.
    const again = await send('initialize', 4);
    assert.equal(again.status, 200, `the token is locked out of sessions: ${JSON.stringify(again.body)}`);
  });
});
