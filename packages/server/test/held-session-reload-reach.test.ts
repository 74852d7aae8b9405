/**
 * Review 16 URLPATTERN-2 (lockout): fix-last-6 makes a raw URL target's reach test made before a
 * reload judge by its owner's grants of now (dispatch/targets.ts `#reachTest`, generation), and
 * for an OIDC principal those are "not known" (identity/reload-reach.ts `grantsAfterReload`
 * returns undefined), so every hop is refused. A held session's reach test is its opener's,
 * made once at open (dispatch/held-sessions.ts `reachOf`) and asked again for EVERY hop, even one
 * already recorded (sessions/session-reach.ts `judging` calls the test first). So after ANY
 * reload (one that changes nothing at all) an OIDC caller with a URL grant can no longer use a
 * held session whose upstream redirects its POSTs (here a legacy SSE endpoint `/messages` that
 * answers 307 to `/messages/`), while the reload keeps that session (identity/reload-reach.ts
 * mayKeepAfter: an OIDC owner still known, target still reached; `regranted` is for config tokens
 * only): it holds a place under the principal's session cap and answers every request with an
 * error until it idles out.
 *
 * Real oidc-provider, real loopback legacy SSE upstream, /mcp with a proxy-held session.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import { startOidcIssuer, type TestOidcIssuer } from './helpers/oidc-issuer.ts';
import { type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const AUDIENCE = 'https://mcp-proxy.test';

describe('an OIDC caller keeps its held session through a reload that changes nothing (review16 URLPATTERN-2)', () => {
  let idp: TestOidcIssuer;
  let server: Server;
  let port: number;
  let proxy: RunningProxy;
  let sse: ServerResponse | undefined;
  const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-review16-urlpattern-2-')), 'proxy.json');

  before(async () => {
    idp = await startOidcIssuer({ audience: AUDIENCE });
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.method === 'GET' && req.url === '/sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: endpoint\ndata: /messages\n\n');
        sse = res;
        return;
      }
      if (req.method === 'POST' && req.url === '/messages') {
        req.resume();
        res.writeHead(307, { location: '/messages/' }).end();
        return;
      }
      if (req.method === 'POST' && req.url === '/messages/') {
        let body = '';
        req.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        req.once('end', () => {
          res.writeHead(202).end();
          const message = JSON.parse(body) as { id?: number; method: string };
          if (message.id === undefined) return;
          const result =
            message.method === 'initialize'
              ? { protocolVersion: '2024-11-05', capabilities: {}, serverInfo: { name: 'sse', version: '1' } }
              : {};
          sse?.write(
            `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: message.id, result })}\n\n`,
          );
        });
        return;
      }
      req.resume();
      res.writeHead(405).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    writeFileSync(
      configPath,
      JSON.stringify({
        oidc: {
          issuers: [
            { issuer: idp.issuer, audience: AUDIENCE, grants: { urls: [`http://127.0.0.1:${port}/**`] } },
          ],
        },
      }),
    );
    proxy = await startProxy({ MCP_PROXY_CONFIG: configPath, EGRESS_FOLLOW_REDIRECTS: '2' });
  });

  after(async () => {
    await proxy?.close();
    sse?.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await idp.stop();
  });

  it('a ping on the held session is answered after the reload as before it', async () => {
    const token = await idp.serviceToken();
    let sessionId: string | undefined;
    const send = async (message: Record<string, unknown>) => {
      const response = await fetch(`${proxy.url}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          authorization: `Bearer ${token}`,
          'x-mcp-server-url': `http://127.0.0.1:${port}/sse`,
          'x-mcp-transport': 'sse',
          ...(sessionId === undefined ? {} : { 'mcp-session-id': sessionId }),
        },
        body: JSON.stringify({ jsonrpc: '2.0', ...message }),
      });
      sessionId ??= response.headers.get('mcp-session-id') ?? undefined;
      return { status: response.status, text: await response.text() };
    };
    const opened = await send({
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    assert.equal(opened.status, 200, opened.text);
    assert.ok(sessionId, 'a held session id');
    await send({ method: 'notifications/initialized' });
    // The setup works: the ping goes to /messages, is redirected to /messages/ and answered.
    const first = await send({ id: 2, method: 'ping' });
    assert.equal(first.status, 200, first.text);
    assert.match(first.text, /"id":2,"result"/);

    // The operator reloads the same configuration.
    proxy.app.reload(
      loadConfig({
        env: {
          PROXY_TOKEN: TEST_TOKEN,
          ALLOW_PRIVATE_NETWORKS: 'true',
          STORE: 'memory',
          EGRESS_FOLLOW_REDIRECTS: '2',
          MCP_PROXY_CONFIG: configPath,
        },
      }),
    );
    const second = await send({ id: 3, method: 'ping' });
    assert.equal(second.status, 200, second.text);
    assert.match(
      second.text,
      /"id":3,"result"/,
      `after a reload that changed nothing the held session refuses the hop it followed before: ${second.text}`,
    );
  });
});
