/**
 * Review 16 URLPATTERN-1: fix-last-6 records the URL every redirect hop of a live request goes
 * to (identity/live-requests.ts `recordingReach`, `answeredFrom`) for EVERY target, a configured
 * server's too (surfaces/mcp/passthrough.ts, surfaces/proxy/forwarder.ts wrap `mayReach` even
 * when it is undefined), and `endUnreachable` then judges that hop as if the caller had named it
 * as a raw URL (`mayKeep(ownerId, answeredFrom)` -> targets.stillReaches(url) -> permitsTarget
 * {url}). A config token granted `servers: ['up']` and no `urls` may name no raw URL
 * (policy/grants.ts permitsTarget: `grants.servers === undefined`), so ANY reload, even one that
 * changes nothing, ends its live answers from a configured server that redirects (e.g. to a path
 * with a trailing slash, or http -> https): a configured server's redirects are the operator's
 * choice (docs/security.md "Redirects"), and before fix-last-6 such a stream outlived a reload.
 *
 * A real loopback Streamable HTTP upstream configured as `up` answers POST /public/mcp with a
 * 307 to /public/internal/mcp, which streams. The caller reads the first event, the operator
 * reloads the unchanged configuration, the upstream writes a second event: the caller must
 * read it.
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
import { postProxy, type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const CALLER = 'review16-urlpattern-1-caller-0123456789';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');
const progress = (n: number) =>
  `event: message\ndata: ${JSON.stringify({
    jsonrpc: '2.0',
    method: 'notifications/progress',
    params: { progressToken: 't', progress: n },
  })}\n\n`;

describe('a reload that changes nothing leaves a configured server redirected answer open (review16 URLPATTERN-1)', () => {
  let server: Server;
  let port: number;
  let proxy: RunningProxy;
  const streams = new Set<ServerResponse>();
  let streamOpened: ((stream: ServerResponse) => void) | undefined;
  const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-review16-urlpattern-1-')), 'proxy.json');
  const env = {
    PROXY_TOKEN: TEST_TOKEN,
    ALLOW_PRIVATE_NETWORKS: 'true',
    STORE: 'memory',
    EGRESS_FOLLOW_REDIRECTS: '2',
    MCP_PROXY_CONFIG: configPath,
  };

  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      if (req.method === 'POST' && req.url === '/public/mcp') {
        res.writeHead(307, { location: '/public/internal/mcp' }).end();
        return;
      }
      if (req.method === 'POST' && req.url === '/public/internal/mcp') {
        req.once('end', () => {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(progress(1));
          streams.add(res);
          res.once('close', () => streams.delete(res));
          streamOpened?.(res);
        });
        return;
      }
      res.writeHead(405).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    writeFileSync(
      configPath,
      JSON.stringify({
        servers: { up: { url: `http://127.0.0.1:${port}/public/mcp`, transport: 'streamable-http' } },
        tokens: [{ sha256: sha256(CALLER), servers: ['up'] }],
      }),
    );
    proxy = await startProxy({ MCP_PROXY_CONFIG: configPath, EGRESS_FOLLOW_REDIRECTS: '2' });
  });

  after(async () => {
    await proxy?.close();
    for (const stream of streams) stream.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('/servers/up/mcp: the stream read from the hop goes on after a reload of the same configuration', async () => {
    const opened = new Promise<ServerResponse>((resolve) => {
      streamOpened = resolve;
    });
    const caller = new AbortController();
    const response = await fetch(`${proxy.url}/servers/up/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-proxy-token': CALLER,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'slow', arguments: {}, _meta: { progressToken: 't' } },
      }),
      signal: caller.signal,
    });
    try {
      assert.equal(
        response.status,
        200,
        `answer ${response.status}: ${response.ok ? '' : await response.text()}`,
      );
      const upstream = await opened;
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      let seen = '';
      const readUntil = async (needle: string) => {
        while (!seen.includes(needle)) {
          const chunk = await reader.read();
          if (chunk.done) return false;
          seen += decoder.decode(chunk.value, { stream: true });
        }
        return true;
      };
      // The setup works: the answer streams from the hop /public/internal/mcp.
      assert.ok(await readUntil('"progress":1'), 'the first event, read from the hop');

      // The operator reloads: nothing about this token or server changed.
      proxy.app.reload(loadConfig({ env }));
      upstream.write(progress(2));
      const timer = setTimeout(() => caller.abort(), 10_000);
      const goesOn = await readUntil('"progress":2').catch(() => false);
      clearTimeout(timer);
      assert.ok(
        goesOn,
        'a reload that changed nothing ended the answer a configured server streams from its redirect hop',
      );
    } finally {
      caller.abort();
    }
  });
  it('POST /proxy: the answer read from the hop arrives after a reload of the same configuration', async () => {
    const opened = new Promise<ServerResponse>((resolve) => {
      streamOpened = resolve;
    });
    const answer = postProxy(
      { url: proxy.url, token: CALLER },
      {
        server: 'up',
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'slow', arguments: {}, _meta: { progressToken: 't' } },
      },
    ).catch((error: unknown) => error);
    // The setup works: the call was followed to /public/internal/mcp, which streams its answer.
    const upstream = await opened;
    proxy.app.reload(loadConfig({ env }));
    upstream.end(
      `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 2, result: { content: [] } })}\n\n`,
    );
    const reply = await answer;
    assert.ok(
      !(reply instanceof Error),
      `a reload that changed nothing ended the POST /proxy answer read from a configured server's redirect hop: ${String(reply)}`,
    );
    assert.equal((reply as { status: number }).status, 200);
    assert.deepEqual((reply as { body: unknown }).body, { jsonrpc: '2.0', id: 2, result: { content: [] } });
  });
});
