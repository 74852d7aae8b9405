import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { postProxy, type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

/** A member: `refuse` answers initialize with an error; else a plain server with one tool. */
async function member(refuse: boolean): Promise<Server> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c;
    });
    req.on('end', () => {
      if (req.method !== 'POST') return void res.writeHead(405).end();
      const m = JSON.parse(body);
      if (m.id === undefined) return void res.writeHead(202).end();
      const answer = refuse
        ? { error: { code: -32000, message: 'go away' } }
        : {
            result:
              m.method === 'initialize'
                ? {
                    protocolVersion: '2025-06-18',
                    capabilities: { tools: {} },
                    serverInfo: { name: 'g', version: '1' },
                  }
                : { tools: [{ name: 'echo', inputSchema: { type: 'object' } }] },
          };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: m.id, ...answer }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}
const port = (s: Server) => (s.address() as AddressInfo).port;

let proxy: RunningProxy;
let evil: Server;
let good: Server;
let other: Server;
before(async () => {
  evil = await member(true);
  good = await member(false);
  other = await member(false);
  const configPath = join(mkdtempSync(join(tmpdir(), 'review-virtual-')), 'proxy.yaml');
  writeFileSync(
    configPath,
    [
      'servers:',
      ...[
        ['evil', evil],
        ['good', good],
        ['other', other],
      ].flatMap(([n, s]) => [
        `  ${n}:`,
        `    url: http://127.0.0.1:${port(s as Server)}/mcp`,
        '    transport: streamable-http',
      ]),
      'virtualServers:',
      '  ws:',
      '    servers: [evil, good]',
      '  ws2:',
      '    servers: [other]',
      '',
    ].join('\n'),
  );
  proxy = await startProxy({
    MCP_PROXY_CONFIG: configPath,
    PROXY_TOKEN: TEST_TOKEN,
    ALLOW_PRIVATE_NETWORKS: 'true',
    RATE_LIMIT_SESSIONS_PER_TOKEN: '10',
  });
});
after(async () => {
  await proxy?.close();
  for (const s of [evil, good, other]) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

it('a member that refuses initialize does not spend the principal session budget on every list', async () => {
  for (let i = 0; i < 12; i++) {
    const reply = await postProxy(proxy, { server: 'ws', jsonrpc: '2.0', id: i, method: 'tools/list' });
    assert.equal(reply.body.result._meta['io.github.mcp-proxy/unavailable'][0].server, 'evil');
  }
  // Now the same principal's first use of another virtual server, whose member is healthy:
  const reply = await postProxy(proxy, { server: 'ws2', jsonrpc: '2.0', id: 99, method: 'tools/list' });
  assert.deepEqual(reply.body.result.tools, [{ name: 'other__echo', inputSchema: { type: 'object' } }]);
  assert.equal(reply.body.result._meta, undefined);
});
