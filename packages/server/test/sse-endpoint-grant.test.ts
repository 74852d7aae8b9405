/**
 * Review 13 (short review of fix-last-3) URLPATTERN-2: a token's URL grant (`urls`) and the
 * target refusals of dispatch/targets.ts (an encoded `/`: review12 URLPATTERN-1) judge the URL
 * the caller names, but a legacy HTTP+SSE upstream names the URL the proxy then POSTs every
 * message to (its `endpoint` event), and upstream/sse.ts only keeps that on the stream's origin.
 * So a server under a granted prefix (`http://h/public/sse`, `/public/**` granted) sends the
 * token's messages, with the caller's credentials (same origin), to `/admin/messages` or to
 * `/public/..%2Fadmin%2Fmessages` (which a front end like nginx resolves to `/admin/messages`):
 * paths the grant was written to keep the token out of. Unlike a redirect (review13-urlpattern-1)
 * this needs no configuration: the SSE transport is always on.
 *
 * A real loopback HTTP+SSE server records every request's path: none may be outside the grant.
 *
 * Fixed: the SSE transport asks the target's reach test (dispatch/targets.ts, the rule the stream's
 * URL was judged by) about the endpoint: outside, the call fails `upstream_protocol_error` ("SSE
 * endpoint outside the target's grant") before any POST. A caller no URL pattern limits still
 * uses any endpoint on the stream's origin. A relative endpoint is read against the URL the stream
 * was finally read from, after redirects (review14 URLPATTERN-3), not the one first named.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { initializeResult } from './fixtures/hostile-upstream.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const CALLER = 'sse-endpoint-grant-caller-0123456789';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

/** A legacy HTTP+SSE server: GET /public/<name> names the endpoint `ENDPOINTS[name]`. */
const ENDPOINTS: Readonly<Record<string, string>> = {
  'plain-sse': '/public/messages',
  'admin-sse': '/admin/messages',
  'encoded-sse': '/public/..%2Fadmin%2Fmessages',
  // Relative: read against the URL the stream came from (GET /public/moved-sse redirects here).
  'v2/sse': 'messages',
};

describe('an SSE endpoint does not carry a target out of its URL grant (review13 URLPATTERN-2)', () => {
  let server: Server;
  let port: number;
  let proxy: RunningProxy;
  const paths: string[] = [];
  const streams = new Set<ServerResponse>();

  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      paths.push(`${req.method} ${req.url}`);
      const name = req.url?.slice('/public/'.length) ?? '';
      if (req.method === 'GET' && name === 'moved-sse') {
        res.writeHead(307, { location: '/public/v2/sse' }).end();
        return;
      }
      if (req.method === 'GET' && req.url?.startsWith('/public/') && Object.hasOwn(ENDPOINTS, name)) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(`event: endpoint\ndata: ${ENDPOINTS[name]}\n\n`);
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
        // Streamable HTTP probes at the SSE URL are refused so the proxy falls back; messages
        // posted to an endpoint are answered on every open stream.
        if (!req.url?.includes('messages')) {
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
        if (answer) for (const stream of streams) stream.write(`event: message\ndata: ${answer}\n\n`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-sse-endpoint-grant-')), 'proxy.json');
    writeFileSync(
      configPath,
      JSON.stringify({ tokens: [{ sha256: sha256(CALLER), urls: [`http://127.0.0.1:${port}/public/**`] }] }),
    );
    proxy = await startProxy({ MCP_PROXY_CONFIG: configPath, EGRESS_FOLLOW_REDIRECTS: '2' });
  });

  after(async () => {
    await proxy?.close();
    for (const stream of streams) stream.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const ping = (name: string, token = CALLER) =>
    postProxy(
      { url: proxy.url, token },
      {
        mcp_server_url: `http://127.0.0.1:${port}/public/${name}`,
        transport: 'sse',
        jsonrpc: '2.0',
        id: 1,
        method: 'ping',
      },
    );

  it('an endpoint inside the grant is used (the setup works)', async () => {
    const reply = await ping('plain-sse');
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.ok(
      paths.some((line) => line.startsWith('POST /public/messages')),
      JSON.stringify(paths),
    );
  });

  for (const name of ['admin-sse', 'encoded-sse']) {
    it(`${name}: no message is posted outside /public/`, async () => {
      const before = paths.length;
      const reply = await ping(name);
      const outside = paths
        .slice(before)
        .filter(
          (line) => line.startsWith('POST') && (!line.startsWith('POST /public/') || /%2F/i.test(line)),
        );
      assert.deepEqual(
        outside,
        [],
        `the grant /public/** let the token post to ${outside.join(', ')} (answer ${reply.status} ${JSON.stringify(reply.body)})`,
      );
      assert.equal(reply.body?.error?.data?.code, 'upstream_protocol_error', JSON.stringify(reply.body));
      assert.match(reply.body.error.message, /SSE endpoint outside the target’s grant/);
    });
  }

  it('a redirected stream’s relative endpoint is read against where the stream came from (review14 URLPATTERN-3)', async () => {
    const before = paths.length;
    const reply = await ping('moved-sse');
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const posted = paths.slice(before).filter((line) => line.startsWith('POST') && line.includes('messages'));
    assert.deepEqual(posted, ['POST /public/v2/messages'], JSON.stringify(paths.slice(before)));
  });

  it('a caller no URL pattern limits posts to an endpoint anywhere on the stream’s origin', async () => {
    const before = paths.length;
    const reply = await ping('admin-sse', proxy.token);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.ok(
      paths.slice(before).some((line) => line.startsWith('POST /admin/messages')),
      JSON.stringify(paths.slice(before)),
    );
  });
});
