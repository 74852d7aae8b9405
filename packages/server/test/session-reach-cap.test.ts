/**
 * A held session to a raw URL remembers every URL its upstream sent it on to beyond its stream's
 * (sessions/session-reach.ts), so that a reload can judge them (reload-session-reach.test.ts).
 * The list is bounded: an upstream that redirects each message to a URL of its own cannot grow it
 * without end. Past {@link MAX_REACHED_URLS} a new one is refused as outside the grant; a caller
 * no URL grant limits follows it unrecorded (review 15 design note).
 *
 * A real loopback HTTP+SSE server names `/public/messages` as its endpoint and answers each POST
 * there with a 307 to a new `/public/messages/<n>`: the session's endpoint and the hops followed
 * number 8 at most; the next message's hop is refused (`redirect_refused`) and nothing is posted
 * there.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MAX_REACHED_URLS } from '../src/sessions/session-reach.ts';
import { initializeResult } from './fixtures/hostile-upstream.ts';
import { postProxy, type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const CALLER = 'session-reach-cap-caller-0123456789';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

describe('a held session remembers a bounded number of URLs it was sent on to', () => {
  let server: Server;
  let port: number;
  let proxy: RunningProxy;
  /** Paths each POST was answered at (not redirected from). */
  const answeredAt: string[] = [];
  const streams = new Set<ServerResponse>();
  let hops = 0;

  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.method === 'GET' && req.url === '/public/sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: endpoint\ndata: /public/messages\n\n');
        streams.add(res);
        res.once('close', () => streams.delete(res));
        return;
      }
      if (req.method !== 'POST' || !req.url?.startsWith('/public/messages')) {
        res.writeHead(405).end();
        return;
      }
      if (req.url === '/public/messages') {
        req.resume();
        res.writeHead(307, { location: `/public/messages/${++hops}` }).end();
        return;
      }
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      req.on('end', () => {
        answeredAt.push(req.url as string);
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
    const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-session-reach-cap-')), 'proxy.json');
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

  const send = (id: number, method: string, headers: Record<string, string> = {}, token = CALLER) =>
    postProxy(
      { url: proxy.url, token },
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

  it(`follows hops until ${MAX_REACHED_URLS} URLs are remembered, then refuses the next`, async () => {
    const init = await send(1, 'initialize');
    assert.equal(init.status, 200, JSON.stringify(init.body));
    const sessionId = init.headers.get('mcp-session-id');
    assert.ok(sessionId, 'a held session was opened');
    // The endpoint is one remembered URL; every hop followed is another.
    let id = 2;
    let refused:
      | { status: number; body: { error?: { data?: { code?: string; reason?: string } } } }
      | undefined;
    while (refused === undefined && id < 2 + 2 * MAX_REACHED_URLS) {
      const reply = await send(id++, 'ping', { 'mcp-session-id': sessionId });
      if (reply.body?.error !== undefined) refused = reply;
      else assert.equal(reply.status, 200, JSON.stringify(reply.body));
    }
    assert.ok(refused, `no hop was refused after ${id - 2} pings: ${JSON.stringify(answeredAt)}`);
    assert.equal(refused.body.error?.data?.code, 'target_forbidden', JSON.stringify(refused.body));
    assert.equal(refused.body.error?.data?.reason, 'redirect_refused', JSON.stringify(refused.body));
    assert.equal(
      new Set(answeredAt).size,
      MAX_REACHED_URLS - 1,
      `hops followed besides the endpoint: ${JSON.stringify(answeredAt)}`,
    );
    assert.ok(!answeredAt.includes(`/public/messages/${hops}`), 'the refused hop was not posted to');
  });

  it(`without a URL grant, follows hops past ${MAX_REACHED_URLS} (unrecorded) rather than refuse them`, async () => {
    const init = await send(1, 'initialize', {}, TEST_TOKEN);
    const sessionId = init.headers.get('mcp-session-id');
    assert.ok(sessionId, `a held session was opened: ${JSON.stringify(init.body)}`);
    const before = answeredAt.length;
    for (let id = 2; id < 2 + 2 * MAX_REACHED_URLS; id++) {
      const reply = await send(id, 'ping', { 'mcp-session-id': sessionId }, TEST_TOKEN);
      assert.equal(reply.status, 200, `ping ${id}: ${JSON.stringify(reply.body)}`);
      assert.equal(reply.body?.error, undefined, `ping ${id}: ${JSON.stringify(reply.body)}`);
    }
    assert.equal(answeredAt.length - before, 2 * MAX_REACHED_URLS, JSON.stringify(answeredAt.slice(before)));
  });
});
