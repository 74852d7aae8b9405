/**
 * Issue 14, findings 1 and 10: nothing an upstream sends may end the process, and what it sends
 * that is not MCP comes back to the caller as a coded error. Each test drives a hostile upstream
 * through a public surface, checks the caller's error code, and then checks the proxy still
 * serves (the proxy runs in this process: had it thrown out of a listener, this file would die).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import {
  deeplyNested,
  type HostileUpstream,
  initializeResult,
  startHostileHttp,
  startHostileSse,
  startHostileWs,
} from './fixtures/hostile-upstream.ts';
import { modernRequest } from './helpers/modern-client.ts';
import { freePort, waitForPort } from './helpers/net.ts';
import { postProxy, type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

const INIT = {
  jsonrpc: '2.0',
  id: 'init',
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'hostile-test', version: '1' },
  },
};
const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'hostile-test', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};
const HUNDRED_K = 100_000;
const APP = 'http://app.example.test';
/** Longer than any answer here takes, shorter than the proxy's upstream timeout (5 s). */
const FRAME_WAIT_MS = 3_000;

/** A `/ws` client that records every frame. */
interface Peer {
  readonly ws: WebSocket;
  // biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON.
  next(predicate: (frame: any) => boolean): Promise<any>;
}

async function connectWs(
  proxy: Pick<RunningProxy, 'url' | 'token'>,
  target: string | Record<string, string>,
): Promise<Peer> {
  const query = new URLSearchParams(typeof target === 'string' ? { mcp_server_url: target } : target);
  const ws = new WebSocket(
    `${proxy.url.replace('http', 'ws')}/ws?${query}`,
    ['mcp', `proxy-token.${proxy.token}`],
    { origin: APP },
  );
  // biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON.
  const frames: any[] = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (data) => {
    frames.push(JSON.parse(data.toString()));
    for (const wake of waiters.splice(0)) wake();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    next: async (predicate) => {
      const deadline = Date.now() + FRAME_WAIT_MS;
      for (;;) {
        const found = frames.find(predicate);
        if (found) return found;
        if (Date.now() > deadline)
          throw new Error(`no such frame; got ${JSON.stringify(frames).slice(0, 300)}`);
        // Woken by the next frame, or after a while to check the deadline.
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200).unref();
        });
      }
    },
  };
}

/** The proxy still answers: its health endpoint and a fresh call through `/proxy`. */
async function assertServing(proxy: Pick<RunningProxy, 'url' | 'token'>, upstreamUrl: string): Promise<void> {
  const health = await fetch(`${proxy.url}/health`);
  assert.equal(health.status, 200);
  const ping = await postProxy(proxy, {
    mcp_server_url: upstreamUrl,
    jsonrpc: '2.0',
    id: 'still-there',
    method: 'ping',
  });
  assert.equal(ping.status, 200, JSON.stringify(ping.body));
  assert.deepEqual(ping.body.result, {});
}

/** Answers ping with an empty result: the well-behaved part of every script. */
function pong(id: string | number | undefined): string {
  return JSON.stringify({ jsonrpc: '2.0', id, result: {} });
}

describe('hostile upstreams cannot crash the proxy (issue 14)', () => {
  let proxy: RunningProxy;
  const upstreams: HostileUpstream[] = [];
  const track = (upstream: HostileUpstream) => {
    upstreams.push(upstream);
    return upstream;
  };
  before(async () => {
    proxy = await startProxy({ HOST: '127.0.0.1', CORS_ORIGINS: APP, UPSTREAM_TIMEOUT_MS: '5000' });
  });
  after(async () => {
    await proxy?.close();
    for (const upstream of upstreams) await upstream.stop();
  });

  describe('a WebSocket upstream answering initialize with result: null (#1)', () => {
    let upstream: HostileUpstream;
    before(async () => {
      upstream = track(
        await startHostileWs((message) => {
          if (message.method === 'initialize')
            return [JSON.stringify({ jsonrpc: '2.0', id: message.id, result: null })];
          if (message.method === 'ping') return [pong(message.id)];
          return undefined;
        }),
      );
    });

    it('gives a /ws caller upstream_protocol_error, and the socket serves on', async () => {
      const peer = await connectWs(proxy, upstream.url);
      peer.ws.send(JSON.stringify(INIT));
      const failed = await peer.next((f) => f.id === 'init');
      assert.equal(failed.error?.data?.code, 'upstream_protocol_error', JSON.stringify(failed));
      assert.equal(failed.error.code, -33012);
      peer.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 'p', method: 'ping' }));
      assert.deepEqual((await peer.next((f) => f.id === 'p')).result, {});
      peer.ws.close();
      await assertServing(proxy, upstream.url);
    });

    it('gives a POST /proxy caller a 502 upstream_protocol_error', async () => {
      const reply = await postProxy(proxy, { mcp_server_url: upstream.url, ...INIT });
      assert.equal(reply.status, 502, JSON.stringify(reply.body));
      assert.equal(reply.body.error.data.code, 'upstream_protocol_error');
      await assertServing(proxy, upstream.url);
    });
  });

  describe('WebSocket upstreams of the other era answering the bridge with result: null (#1)', () => {
    it('a modern /ws caller of a session-era server whose initialize result is null fails fast', async () => {
      const upstream = track(
        await startHostileWs((message) => {
          if (message.method === 'server/discover') {
            return [
              JSON.stringify({
                jsonrpc: '2.0',
                id: message.id,
                error: { code: -32601, message: 'Method not found' },
              }),
            ];
          }
          if (message.method === 'initialize')
            return [JSON.stringify({ jsonrpc: '2.0', id: message.id, result: null })];
          return undefined;
        }),
      );
      const peer = await connectWs(proxy, upstream.url);
      peer.ws.send(JSON.stringify(modernRequest('list', 'tools/list')));
      const failed = await peer.next((f) => f.id === 'list');
      assert.equal(failed.error?.data?.code, 'upstream_protocol_error', JSON.stringify(failed));
      peer.ws.close();
      // POST /proxy waits for the bridge's own initialize: it fails with the cause, not later
      // with the proxy's upstream timeout.
      const reply = await postProxy(proxy, {
        mcp_server_url: upstream.url,
        ...modernRequest('call', 'tools/list'),
      });
      assert.equal(reply.status, 502, JSON.stringify(reply.body));
      assert.equal(reply.body.error.data.code, 'upstream_protocol_error');
      assert.match(reply.body.error.message, /result is not an object/);
    });

    it('a session /ws caller of a modern-only server whose server/discover result is null fails fast', async () => {
      const upstream = track(
        await startHostileWs((message) => {
          if (message.method === 'initialize') {
            return [
              JSON.stringify({
                jsonrpc: '2.0',
                id: message.id,
                error: {
                  code: -32022,
                  message: 'Unsupported protocol version',
                  data: { supported: ['2026-07-28'] },
                },
              }),
            ];
          }
          if (message.method === 'server/discover')
            return [JSON.stringify({ jsonrpc: '2.0', id: message.id, result: null })];
          return undefined;
        }),
      );
      const peer = await connectWs(proxy, upstream.url);
      peer.ws.send(JSON.stringify(INIT));
      const failed = await peer.next((f) => f.id === 'init');
      assert.equal(failed.error?.data?.code, 'upstream_protocol_error', JSON.stringify(failed));
      peer.ws.close();
      const reply = await postProxy(proxy, { mcp_server_url: upstream.url, ...INIT });
      assert.equal(reply.status, 502, JSON.stringify(reply.body));
      assert.equal(reply.body.error.data.code, 'upstream_protocol_error');
      assert.match(reply.body.error.message, /result is not an object/);
    });
  });

  describe('a WebSocket upstream answering 100,000 levels deep on /ws (#1, #10)', () => {
    let upstream: HostileUpstream;
    before(async () => {
      upstream = track(
        await startHostileWs((message) => {
          if (message.method === 'initialize') return [initializeResult(message.id)];
          if (message.method === 'ping') return [pong(message.id)];
          if (message.method === 'tools/call') {
            return [
              `{"jsonrpc":"2.0","id":${JSON.stringify(message.id)},"result":{"deep":${deeplyNested(HUNDRED_K)}}}`,
            ];
          }
          if (message.method === 'tools/list') {
            // A message of no request, nested as deep, before the answer: the connection is
            // broken for what it has in flight, which fails with the code, not the process.
            return [
              `{"jsonrpc":"2.0","method":"notifications/message","params":{"data":${deeplyNested(HUNDRED_K)}}}`,
              JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { tools: [] } }),
            ];
          }
          return undefined;
        }),
      );
    });

    it('refuses the answer as upstream_protocol_error and keeps the socket serving', async () => {
      const peer = await connectWs(proxy, upstream.url);
      peer.ws.send(JSON.stringify(INIT));
      assert.equal((await peer.next((f) => f.id === 'init')).result.serverInfo.name, 'hostile');
      peer.ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
      peer.ws.send(
        JSON.stringify({
          jsonrpc: '2.0',
          id: 'deep',
          method: 'tools/call',
          params: { name: 'x', arguments: {} },
        }),
      );
      const failed = await peer.next((f) => f.id === 'deep');
      assert.equal(failed.error?.data?.code, 'upstream_protocol_error', JSON.stringify(failed));
      peer.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 'list', method: 'tools/list' }));
      const list = await peer.next((f) => f.id === 'list');
      assert.equal(list.error?.data?.code, 'upstream_protocol_error', JSON.stringify(list));
      peer.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 'p', method: 'ping' }));
      assert.deepEqual((await peer.next((f) => f.id === 'p')).result, {});
      peer.ws.close();
      await assertServing(proxy, upstream.url);
    });
  });

  describe('an HTTP upstream answering 100,000 levels deep (#10)', () => {
    let upstream: HostileUpstream;
    before(async () => {
      upstream = track(
        await startHostileHttp((message) => {
          if (message.method === 'ping') return { contentType: 'application/json', body: pong(message.id) };
          const deep = `{"jsonrpc":"2.0","id":${JSON.stringify(message.id)},"result":{"deep":${deeplyNested(HUNDRED_K)}}}`;
          if (message.params?.name === 'refusal') {
            // A 4xx whose JSON-RPC error would be relayed as the answer, were it not this deep.
            return {
              status: 400,
              contentType: 'application/json',
              body: `{"jsonrpc":"2.0","id":${JSON.stringify(message.id)},"error":{"code":-32602,"message":"bad","data":${deeplyNested(HUNDRED_K)}}}`,
            };
          }
          if (message.params?.name === 'sse')
            return { contentType: 'text/event-stream', body: `event: message\ndata: ${deep}\n\n` };
          return { contentType: 'application/json', body: deep };
        }),
      );
    });

    it('a 4xx with a JSON-RPC error that deep is the coded upstream_rejected, not relayed', async () => {
      const reply = await postProxy(proxy, {
        mcp_server_url: upstream.url,
        jsonrpc: '2.0',
        id: 8,
        method: 'tools/call',
        params: { name: 'refusal', arguments: {} },
      });
      assert.equal(reply.status, 400, JSON.stringify(reply.body).slice(0, 300));
      assert.equal(reply.body.error.data.code, 'upstream_rejected');
      assert.equal(reply.body.error.data.upstreamMessage, 'bad');
    });

    for (const name of ['json', 'sse']) {
      it(`gives POST /proxy a 502 upstream_protocol_error (${name} answer)`, async () => {
        const reply = await postProxy(proxy, {
          mcp_server_url: upstream.url,
          jsonrpc: '2.0',
          id: 7,
          method: 'tools/call',
          params: { name, arguments: {} },
        });
        assert.equal(reply.status, 502, JSON.stringify(reply.body).slice(0, 300));
        assert.equal(reply.body.error.data.code, 'upstream_protocol_error');
        assert.equal(reply.body.id, 7);
        await assertServing(proxy, upstream.url);
      });
    }
  });

  describe('an HTTP upstream answering initialize and server/discover with non-object results (#1)', () => {
    for (const result of ['null', '"a string"', '[1,2]', '42']) {
      it(`initialize answered with result: ${result} is a 502 upstream_protocol_error`, async () => {
        const upstream = track(
          await startHostileHttp((message) => {
            if (message.method === 'ping') return { contentType: 'application/json', body: pong(message.id) };
            return {
              contentType: 'application/json',
              body: `{"jsonrpc":"2.0","id":${JSON.stringify(message.id)},"result":${result}}`,
            };
          }),
        );
        const reply = await postProxy(proxy, { mcp_server_url: upstream.url, ...INIT });
        assert.equal(reply.status, 502, JSON.stringify(reply.body));
        assert.equal(reply.body.error.data.code, 'upstream_protocol_error');
        await assertServing(proxy, upstream.url);
      });
    }

    it('a modern caller whose server/discover is answered with result: null gets a 502', async () => {
      const upstream = track(
        await startHostileHttp((message) => {
          if (message.method === 'ping') return { contentType: 'application/json', body: pong(message.id) };
          return {
            contentType: 'application/json',
            body: `{"jsonrpc":"2.0","id":${JSON.stringify(message.id)},"result":null}`,
          };
        }),
      );
      const reply = await postProxy(proxy, {
        mcp_server_url: upstream.url,
        jsonrpc: '2.0',
        id: 'discover',
        method: 'server/discover',
        params: { _meta: MODERN_META },
      });
      assert.equal(reply.status, 502, JSON.stringify(reply.body));
      assert.equal(reply.body.error.data.code, 'upstream_protocol_error');
      await assertServing(proxy, upstream.url);
    });

    it('a session caller of a modern-only server whose server/discover result is null gets a 502', async () => {
      // Refuses initialize the way a 2026-07-28-only server does, so the proxy bridges the
      // session client and answers its initialize from server/discover, which is hostile.
      const upstream = track(
        await startHostileHttp((message) => {
          if (message.method === 'initialize') {
            return {
              status: 400,
              contentType: 'application/json',
              body: JSON.stringify({
                jsonrpc: '2.0',
                id: message.id,
                error: {
                  code: -32022,
                  message: 'Unsupported protocol version',
                  data: { supported: ['2026-07-28'] },
                },
              }),
            };
          }
          if (message.method === 'ping') return { contentType: 'application/json', body: pong(message.id) };
          return {
            contentType: 'application/json',
            body: `{"jsonrpc":"2.0","id":${JSON.stringify(message.id)},"result":null}`,
          };
        }),
      );
      const reply = await postProxy(proxy, { mcp_server_url: upstream.url, ...INIT });
      assert.equal(reply.status, 502, JSON.stringify(reply.body));
      assert.equal(reply.body.error.data.code, 'upstream_protocol_error');
      assert.equal((await fetch(`${proxy.url}/health`)).status, 200);
    });
  });

  describe('a configured WebSocket server with a tool allowlist listing tools of any shape (#1)', () => {
    let upstream: HostileUpstream;
    let configured: RunningProxy;
    before(async () => {
      upstream = track(
        await startHostileWs((message) => {
          if (message.method === 'initialize') return [initializeResult(message.id)];
          if (message.method === 'tools/list') {
            return [
              `{"jsonrpc":"2.0","id":${JSON.stringify(message.id)},"result":{"tools":[null,5,"x",[],{"name":{"toString":1}},{"name":"allowed"},{"name":"hidden"}]}}`,
            ];
          }
          return undefined;
        }),
      );
      const config = join(mkdtempSync(join(tmpdir(), 'mcp-proxy-hostile-')), 'proxy.yaml');
      writeFileSync(
        config,
        ['servers:', '  hostile:', `    url: ${upstream.url}`, '    tools: [allowed]', ''].join('\n'),
      );
      configured = await startProxy({ HOST: '127.0.0.1', CORS_ORIGINS: APP, MCP_PROXY_CONFIG: config });
    });
    after(async () => {
      await configured?.close();
    });

    it('/ws lists only the allowed tool and skips the entries that are not tools', async () => {
      const peer = await connectWs(configured, { server: 'hostile' });
      peer.ws.send(JSON.stringify(INIT));
      await peer.next((f) => f.id === 'init');
      peer.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 'list', method: 'tools/list' }));
      const list = await peer.next((f) => f.id === 'list');
      assert.deepEqual(list.result, { tools: [{ name: 'allowed' }] }, JSON.stringify(list));
      peer.ws.close();
    });
  });

  describe('a session-era WebSocket server behind the modern bridge sending odd notifications (#1)', () => {
    let upstream: HostileUpstream;
    before(async () => {
      upstream = track(
        await startHostileWs((message) => {
          if (message.method === 'server/discover') {
            return [
              JSON.stringify({
                jsonrpc: '2.0',
                id: message.id,
                error: { code: -32601, message: 'Method not found' },
              }),
            ];
          }
          if (message.method === 'initialize') {
            return [
              JSON.stringify({
                jsonrpc: '2.0',
                id: message.id,
                result: {
                  protocolVersion: '2025-06-18',
                  capabilities: { resources: { subscribe: true } },
                  serverInfo: { name: 'hostile', version: '1' },
                },
              }),
            ];
          }
          if (message.method === 'resources/subscribe') {
            return [JSON.stringify({ jsonrpc: '2.0', id: message.id, result: {} })];
          }
          if (message.method === 'tools/list') {
            return [
              // A uri no String() can turn into text, while the listen stream is open.
              '{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":{"toString":1}}}',
              JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { tools: [] } }),
            ];
          }
          if (message.method === 'ping') return [pong(message.id)];
          return undefined;
        }),
      );
    });

    it('/ws: the listen is acknowledged and later calls are answered', async () => {
      const peer = await connectWs(proxy, upstream.url);
      peer.ws.send(
        JSON.stringify(
          modernRequest('listen', 'subscriptions/listen', {
            notifications: { resourceSubscriptions: ['file:///a'] },
          }),
        ),
      );
      const ack = await peer.next((f) => f.method === 'notifications/subscriptions/acknowledged');
      assert.deepEqual(ack.params.notifications, { resourceSubscriptions: ['file:///a'] });
      peer.ws.send(JSON.stringify(modernRequest('list', 'tools/list')));
      const list = await peer.next((f) => f.id === 'list');
      assert.deepEqual(list.result.tools, [], JSON.stringify(list));
      peer.ws.close();
      await assertServing(proxy, upstream.url);
    });
  });

  describe('a legacy SSE upstream answering with a null result and 100,000 levels deep (#1)', () => {
    it('POST /proxy: both are 502 upstream_protocol_error, and the server is still reachable', async () => {
      const upstream = track(
        await startHostileSse((message) => {
          if (message.id === undefined) return undefined;
          if (message.method === 'initialize')
            return [JSON.stringify({ jsonrpc: '2.0', id: message.id, result: null })];
          if (message.method === 'ping') return [pong(message.id)];
          return [
            `{"jsonrpc":"2.0","id":${JSON.stringify(message.id)},"result":{"deep":${deeplyNested(HUNDRED_K)}}}`,
          ];
        }),
      );
      const target = { mcp_server_url: upstream.url, transport: 'sse' };
      const init = await postProxy(proxy, { ...target, ...INIT });
      assert.equal(init.status, 502, JSON.stringify(init.body));
      assert.equal(init.body.error.data.code, 'upstream_protocol_error');
      const deep = await postProxy(proxy, {
        ...target,
        jsonrpc: '2.0',
        id: 'deep',
        method: 'tools/call',
        params: { name: 'x', arguments: {} },
      });
      assert.equal(deep.status, 502, JSON.stringify(deep.body));
      assert.equal(deep.body.error.data.code, 'upstream_protocol_error');
      const ping = await postProxy(proxy, { ...target, jsonrpc: '2.0', id: 'p', method: 'ping' });
      assert.deepEqual(ping.body.result, {}, JSON.stringify(ping.body));
    });
  });

  describe('a configured stdio server answering with null results and 100,000-deep lines (#1)', () => {
    let configured: RunningProxy;
    before(async () => {
      const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-hostile-stdio-'));
      const script = join(dir, 'hostile-stdio.mjs');
      writeFileSync(
        script,
        [
          "import { createInterface } from 'node:readline';",
          'const write = (text) => process.stdout.write(String(text) + "\\n");',
          "createInterface({ input: process.stdin }).on('line', (line) => {",
          '  const m = JSON.parse(line);',
          '  if (m.id === undefined) return;',
          "  if (m.method === 'initialize') write(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: null }));",
          "  else if (m.method === 'ping') write(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: {} }));",
          `  else write(\`{"jsonrpc":"2.0","id":\${JSON.stringify(m.id)},"result":{"deep":${deeplyNested(HUNDRED_K)}}}\`);`,
          '});',
          '',
        ].join('\n'),
      );
      const config = join(dir, 'proxy.yaml');
      writeFileSync(
        config,
        [
          'servers:',
          '  hostile:',
          `    command: ${JSON.stringify(process.execPath)}`,
          `    args: [${JSON.stringify(script)}]`,
          '',
        ].join('\n'),
      );
      configured = await startProxy({ UPSTREAM_TIMEOUT_MS: '5000', MCP_PROXY_CONFIG: config });
    });
    after(async () => {
      await configured?.close();
    });

    it('POST /proxy: both are 502 upstream_protocol_error, and the server is still reachable', async () => {
      const init = await postProxy(configured, { server: 'hostile', ...INIT });
      assert.equal(init.status, 502, JSON.stringify(init.body));
      assert.equal(init.body.error.data.code, 'upstream_protocol_error');
      const deep = await postProxy(configured, {
        server: 'hostile',
        jsonrpc: '2.0',
        id: 'deep',
        method: 'tools/call',
        params: { name: 'x', arguments: {} },
      });
      assert.equal(deep.status, 502, JSON.stringify(deep.body));
      assert.equal(deep.body.error.data.code, 'upstream_protocol_error');
      const ping = await postProxy(configured, {
        server: 'hostile',
        jsonrpc: '2.0',
        id: 'p',
        method: 'ping',
      });
      assert.deepEqual(ping.body.result, {});
    });
  });

  describe('a CRLF-framed event stream larger than one event limit (#10)', () => {
    const LIMIT = 2_048;
    const EVENTS = 8;
    let limited: RunningProxy;
    before(async () => {
      limited = await startProxy({ HOST: '127.0.0.1', UPSTREAM_RESPONSE_LIMIT_BYTES: String(LIMIT) });
    });
    after(async () => {
      await limited?.close();
    });

    for (const [name, eol] of [
      ['CRLF', '\r\n'],
      ['lone CR', '\r'],
    ] as const) {
      it(`relays every ${name}-framed event through /mcp, each under the limit, all over it`, async () => {
        const upstream = track(
          await startHostileHttp((message) => {
            const events: string[] = [];
            for (let i = 0; i < EVENTS; i++) {
              const progress = {
                jsonrpc: '2.0',
                method: 'notifications/message',
                params: { level: 'info', data: `${i}:${'x'.repeat(1_000)}` },
              };
              events.push(`event: message${eol}data: ${JSON.stringify(progress)}${eol}${eol}`);
            }
            const answer = { jsonrpc: '2.0', id: message.id, result: { content: [], done: true } };
            events.push(`event: message${eol}data: ${JSON.stringify(answer)}${eol}${eol}`);
            return { contentType: 'text/event-stream', body: events };
          }),
        );
        const response = await fetch(`${limited.url}/mcp`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            'x-proxy-token': limited.token,
            'x-mcp-server-url': upstream.url,
            'x-mcp-transport': 'streamable-http',
            'mcp-protocol-version': '2025-06-18',
          },
          body: JSON.stringify({
            jsonrpc: '2.0',
            id: 3,
            method: 'tools/call',
            params: { name: 't', arguments: {} },
          }),
        });
        assert.equal(response.status, 200);
        const text = await response.text();
        assert.ok(text.length > LIMIT * 2, `the whole stream came through (${text.length} bytes)`);
        for (let i = 0; i < EVENTS; i++) assert.ok(text.includes(`"${i}:x`), `event ${i} relayed`);
        assert.ok(text.includes('"done":true'), 'the answer relayed');
      });
    }

    it('an upstream status Node cannot relay is a 502 upstream_protocol_error on /mcp', async () => {
      const upstream = track(
        await startHostileHttp(() => ({ status: 799, contentType: 'application/json', body: '{}' })),
      );
      const response = await fetch(`${limited.url}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'x-proxy-token': limited.token,
          'x-mcp-server-url': upstream.url,
          'x-mcp-transport': 'streamable-http',
          'mcp-protocol-version': '2025-06-18',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/list' }),
      });
      assert.equal(response.status, 502);
      const body = (await response.json()) as { error: { data: { code: string } } };
      assert.equal(body.error.data.code, 'upstream_protocol_error');
    });

    it('still cuts a single event over the limit', async () => {
      const upstream = track(
        await startHostileHttp(() => ({
          contentType: 'text/event-stream',
          body: [`event: message\r\ndata: ${'y'.repeat(LIMIT)}`, `${'y'.repeat(LIMIT)}\r\n\r\n`],
        })),
      );
      const response = await fetch(`${limited.url}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'x-proxy-token': limited.token,
          'x-mcp-server-url': upstream.url,
          'x-mcp-transport': 'streamable-http',
          'mcp-protocol-version': '2025-06-18',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 4,
          method: 'tools/call',
          params: { name: 't', arguments: {} },
        }),
      });
      const text = await response.text().catch(() => '');
      assert.ok(!text.includes(`${'y'.repeat(LIMIT)}\r\n`), 'the oversized event was not relayed whole');
    });
  });
});

describe('the proxy process outlives hostile upstreams (issue 14, #1)', () => {
  it('keeps running after a null initialize result and a 100,000-deep answer on /ws', async () => {
    const upstream = await startHostileWs((message) => {
      if (message.method === 'initialize')
        return [JSON.stringify({ jsonrpc: '2.0', id: message.id, result: null })];
      if (message.method === 'ping') return [pong(message.id)];
      if (message.method === 'tools/call')
        return [`{"jsonrpc":"2.0","id":${JSON.stringify(message.id)},"result":${deeplyNested(HUNDRED_K)}}`];
      return undefined;
    });
    const port = await freePort();
    // The real entry point in its own process: an exception out of a listener would end it.
    const child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH ?? '',
        HOST: '127.0.0.1',
        PORT: String(port),
        PROXY_TOKEN: TEST_TOKEN,
        ALLOW_PRIVATE_NETWORKS: 'true',
        CORS_ORIGINS: APP,
        UPSTREAM_TIMEOUT_MS: '5000',
        LOG_LEVEL: 'warn',
        DOTENV_PATH: '/nonexistent/.env',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let exitCode: number | null | undefined;
    child.once('exit', (code) => {
      exitCode = code;
    });
    try {
      await waitForPort(port);
      const proxy = { url: `http://127.0.0.1:${port}`, token: TEST_TOKEN };
      const peer = await connectWs(proxy, upstream.url);
      peer.ws.send(JSON.stringify(INIT));
      assert.equal((await peer.next((f) => f.id === 'init')).error?.data?.code, 'upstream_protocol_error');
      peer.ws.send(
        JSON.stringify({ jsonrpc: '2.0', id: 'deep', method: 'tools/call', params: { name: 'x' } }),
      );
      assert.equal((await peer.next((f) => f.id === 'deep')).error?.data?.code, 'upstream_protocol_error');
      peer.ws.close();
      const reply = await postProxy(proxy, { mcp_server_url: upstream.url, ...INIT });
      assert.equal(reply.body.error.data.code, 'upstream_protocol_error');
      await assertServing(proxy, upstream.url);
      assert.equal(exitCode, undefined, 'the proxy process is still running');
    } finally {
      child.kill('SIGKILL');
      await upstream.stop();
    }
  });
});
