/**
 * Review 10, resumable answers, finding 2: a member that closes its answer stream after each
 * event with `retry: 0`, giving every event a new id and no message, is resumed without end
 * (upstream/answer.ts counts a resumption as empty only when the id did not change): the proxy
 * sends GET after GET with no wait for as long as the call lasts (UPSTREAM_TIMEOUT_MS on a
 * virtual server; as long as the client stays on a held /mcp session). The docs promise the
 * proxy gives up after 3 resumptions that bring nothing new.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { startProxy } from './helpers/proxy.ts';
import { oneMemberConfig, rawClient } from './helpers/resumable-member.ts';

test('a member that closes every resumed stream after a new id and no message is given up on', async (t) => {
  let resumes = 0;
  let next = 0;
  const member = createServer((req, res) => {
    const stream = () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`id: e${next++}\nretry: 0\ndata: \n\n`);
    };
    if (req.method === 'GET') {
      if (req.headers['last-event-id'] === undefined) {
        res.writeHead(405).end();
        return;
      }
      resumes++;
      stream();
      return;
    }
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => {
      if (req.method !== 'POST') {
        res.writeHead(405).end();
        return;
      }
      const message = JSON.parse(body) as { id?: number; method: string };
      const answer = (result: unknown) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result }));
      };
      if (message.id === undefined) res.writeHead(202).end();
      else if (message.method === 'initialize')
        answer({
          protocolVersion: '2025-11-25',
          capabilities: { tools: {} },
          serverInfo: { name: 'poller', version: '1' },
        });
      else if (message.method === 'tools/list')
        answer({ tools: [{ name: 'spin', inputSchema: { type: 'object' } }] });
      else if (message.method === 'tools/call') stream();
      else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: message.id, error: { code: -32601, message: 'no' } }));
      }
    });
  });
  await new Promise<void>((resolve) => member.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    member.closeAllConnections();
    member.close();
  });
  const url = `http://127.0.0.1:${(member.address() as AddressInfo).port}/mcp`;
  const proxy = await startProxy({ MCP_PROXY_CONFIG: oneMemberConfig(url), UPSTREAM_TIMEOUT_MS: '3000' });
  t.after(() => proxy.close());
  const raw = rawClient(proxy.url);
  const session = await raw.initialize();
  const answer = await (await raw.call(session, 'spin')).text();
  assert.match(answer, /"error"/, 'the call fails');
  // Four resumptions bring nothing but ids: the proxy should have stopped there.
  assert.ok(resumes <= 4, `the proxy resumed the member's stream ${resumes} times`);
});
