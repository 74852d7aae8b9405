import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { eventually } from './helpers/eventually.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

const APP = 'http://app.example.test';
const INIT = {
  jsonrpc: '2.0',
  id: 'init',
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'ws-test', version: '1' } },
};

/** A connected test socket that records every frame. */
interface Peer {
  readonly ws: WebSocket;
  // biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON.
  readonly frames: any[];
  // biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON.
  next(predicate: (frame: any) => boolean, timeoutMs?: number): Promise<any>;
  closed: Promise<{ code: number; reason: string }>;
}

function wsUrl(proxy: RunningProxy, query: Record<string, string>): string {
  return `${proxy.url.replace('http', 'ws')}/ws?${new URLSearchParams(query)}`;
}

async function connect(
  url: string,
  options: { protocols?: string[]; origin?: string; autoPong?: boolean } = {},
) {
  const ws = new WebSocket(url, options.protocols ?? [], {
    ...(options.origin ? { origin: options.origin } : {}),
    autoPong: options.autoPong ?? true,
  });
  // biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON.
  const frames: any[] = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (data) => {
    frames.push(JSON.parse(data.toString()));
    for (const wake of waiters.splice(0)) wake();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const peer: Peer = {
    ws,
    frames,
    closed,
    next: async (predicate, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = frames.find(predicate);
        if (found) return found;
        if (Date.now() > deadline)
          throw new Error(`no matching frame; got ${JSON.stringify(frames).slice(0, 500)}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
  };
  return peer;
}

/** The HTTP status of a refused handshake. */
async function refusedStatus(url: string, protocols: string[], origin?: string): Promise<number> {
  const ws = new WebSocket(url, protocols, origin ? { origin } : {});
  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => reject(new Error('the handshake was accepted')));
    ws.once('error', () => {});
  });
}

describe('WS /ws', () => {
  let upstream: EverythingServer;
  let proxy: RunningProxy;
  before(async () => {
    upstream = await startEverything('sse');
    proxy = await startProxy({ HOST: '127.0.0.1', CORS_ORIGINS: APP });
  });
  after(async () => {
    await proxy?.close();
    await upstream?.stop();
  });

  const protocols = () => ['mcp', `proxy-token.${proxy.token}`];

  it('bridges a conversation with the token in the subprotocol, echoing only "mcp"', async () => {
    const peer = await connect(wsUrl(proxy, { mcp_server_url: upstream.url }), {
      protocols: protocols(),
      origin: APP,
    });
    assert.equal(peer.ws.protocol, 'mcp');
    peer.ws.send(JSON.stringify(INIT));
    const init = await peer.next((f) => f.id === 'init');
    assert.equal(typeof init.result.serverInfo.name, 'string');
    peer.ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    peer.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }));
    const tools = await peer.next((f) => f.id === 1);
    assert.ok(tools.result.tools.some((t: { name: string }) => t.name === 'echo'));
    peer.ws.send(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'echo', arguments: { message: 'über ws' } },
      }),
    );
    const echo = await peer.next((f) => f.id === 2);
    assert.equal(echo.result.content[0].text, 'Echo: über ws');
    // Server-initiated traffic arrives on the socket too.
    const notification = await peer.next(
      (f) => typeof f.method === 'string' && f.method.startsWith('notifications/'),
    );
    assert.equal(notification.jsonrpc, '2.0');
    peer.ws.close();
  });

  it('accepts the token as a query parameter and redacts it (and the MCP token) in the logs', async () => {
    const peer = await connect(
      wsUrl(proxy, {
        proxy_token: proxy.token,
        mcp_server_url: upstream.url,
        mcp_token: 'ws-mcp-secret-LEAK',
      }),
      { origin: APP },
    );
    peer.ws.send(JSON.stringify(INIT));
    await peer.next((f) => f.id === 'init');
    peer.ws.close();
    await peer.closed;
    await eventually(() => /websocket closed/.test(proxy.logs.join('\n')), { what: 'the close logged' });
    const text = proxy.logs.join('\n');
    assert.match(text, /websocket closed/);
    assert.ok(!text.includes(proxy.token), 'proxy token absent from logs');
    assert.ok(!text.includes('ws-mcp-secret-LEAK'), 'MCP token absent from logs');
  });

  it('refuses a missing or wrong token before the upgrade (401)', async () => {
    assert.equal(await refusedStatus(wsUrl(proxy, { mcp_server_url: upstream.url }), ['mcp'], APP), 401);
    assert.equal(
      await refusedStatus(
        wsUrl(proxy, { mcp_server_url: upstream.url }),
        ['mcp', 'proxy-token.wrong-token-0000000000'],
        APP,
      ),
      401,
    );
  });

  it('refuses a foreign Origin (403), and a missing one unless the operator allows it', async () => {
    const url = wsUrl(proxy, { mcp_server_url: upstream.url });
    assert.equal(await refusedStatus(url, protocols(), 'https://evil.example.test'), 403);
    assert.equal(await refusedStatus(url, protocols()), 403);
    const open = await startProxy({ HOST: '127.0.0.1', WS_ALLOW_MISSING_ORIGIN: 'true' });
    try {
      const peer = await connect(wsUrl(open, { mcp_server_url: upstream.url }), {
        protocols: ['mcp', `proxy-token.${open.token}`],
      });
      assert.equal(peer.ws.protocol, 'mcp');
      peer.ws.close();
    } finally {
      await open.close();
    }
  });

  it('refuses bad targets on the handshake: forbidden 403, unknown server 404, none 400', async () => {
    assert.equal(
      await refusedStatus(wsUrl(proxy, { mcp_server_url: 'file:///etc/passwd' }), protocols(), APP),
      403,
    );
    assert.equal(await refusedStatus(wsUrl(proxy, { server: 'nope' }), protocols(), APP), 404);
    assert.equal(await refusedStatus(wsUrl(proxy, {}), protocols(), APP), 400);
  });

  it('answers bad frames with JSON-RPC errors and keeps the socket open', async () => {
    const peer = await connect(wsUrl(proxy, { mcp_server_url: upstream.url }), {
      protocols: protocols(),
      origin: APP,
    });
    peer.ws.send('{ not json');
    const parse = await peer.next((f) => f.error?.code === -32700);
    assert.equal(parse.id, null);
    peer.ws.send(JSON.stringify({ hello: 'world', id: 5 }));
    const invalid = await peer.next((f) => f.error?.code === -32600);
    assert.equal(invalid.id, 5);
    assert.equal(invalid.error.data.code, 'invalid_message');
    peer.ws.send(JSON.stringify(INIT));
    await peer.next((f) => f.id === 'init');
    assert.equal(peer.ws.readyState, WebSocket.OPEN);
    peer.ws.close();
  });

  it('closes on a binary frame with 1003', async () => {
    const peer = await connect(wsUrl(proxy, { mcp_server_url: upstream.url }), {
      protocols: protocols(),
      origin: APP,
    });
    peer.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    const { code, reason } = await peer.closed;
    assert.equal(code, 1003);
    assert.match(reason, /binary/);
  });

  it('closes with 1001 when the proxy shuts down', async () => {
    const own = await startProxy({ HOST: '127.0.0.1', CORS_ORIGINS: APP });
    const peer = await connect(wsUrl(own, { mcp_server_url: upstream.url }), {
      protocols: ['mcp', `proxy-token.${own.token}`],
      origin: APP,
    });
    await own.close();
    const { code } = await peer.closed;
    assert.equal(code, 1001);
  });
});

describe('WS /ws limits and failures', () => {
  let proxy: RunningProxy;
  let configPath = '';
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-ws-'));
    const config = join(dir, 'proxy.yaml');
    configPath = config;
    const flood = [
      "let n=0;process.stdin.once('data',()=>{const w=()=>{while(n<4000){",
      "const ok=process.stdout.write(JSON.stringify({jsonrpc:'2.0',method:'notifications/message',",
      "params:{level:'info',data:{n:n++,pad:'x'.repeat(1000)}}})+'\\n');if(!ok){process.stdout.once('drain',w);return;}}};w();});",
    ].join('');
    writeFileSync(
      config,
      [
        'servers:',
        '  dying:',
        `    command: ${JSON.stringify(process.execPath)}`,
        `    args: ["-e", "process.stdin.once('data', () => process.exit(3))"]`,
        '  flood:',
        `    command: ${JSON.stringify(process.execPath)}`,
        `    args: ["-e", ${JSON.stringify(flood)}]`,
        '',
      ].join('\n'),
    );
    proxy = await startProxy({
      HOST: '127.0.0.1',
      CORS_ORIGINS: APP,
      MCP_PROXY_CONFIG: config,
      WS_MAX_MESSAGE_BYTES: '2048',
      WS_HEARTBEAT_MS: '200',
      WS_MAX_QUEUED_BYTES: '262144',
    });
  });
  after(() => proxy?.close());
  const protocols = () => ['mcp', `proxy-token.${proxy.token}`];

  it('closes a frame over the size limit with 1009', async () => {
    const peer = await connect(wsUrl(proxy, { server: 'dying' }), { protocols: protocols(), origin: APP });
    peer.ws.send(
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'y'.repeat(4096) } }),
    );
    const { code } = await peer.closed;
    assert.equal(code, 1009);
  });

  it('closes with 4502 and a reason when the upstream dies', async () => {
    const peer = await connect(wsUrl(proxy, { server: 'dying' }), { protocols: protocols(), origin: APP });
    peer.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }));
    const { code, reason } = await peer.closed;
    assert.equal(code, 4502);
    assert.match(reason, /dying.*exited with code 3/);
  });

  it('closes a peer that stops answering pings', async () => {
    const peer = await connect(wsUrl(proxy, { server: 'dying' }), {
      protocols: protocols(),
      origin: APP,
      autoPong: false,
    });
    const started = Date.now();
    const { code } = await peer.closed;
    assert.equal(code, 1006, 'terminated without a close frame');
    assert.ok(Date.now() - started < 5_000);
  });

  it('pauses the upstream for a slow reader instead of buffering: nothing is lost, the socket stays open', async () => {
    // Its own proxy: the suite's 200 ms heartbeat would (rightly) drop a reader paused this long.
    const own = await startProxy({
      HOST: '127.0.0.1',
      CORS_ORIGINS: APP,
      MCP_PROXY_CONFIG: configPath,
      WS_MAX_QUEUED_BYTES: '262144',
    });
    after(() => own.close());
    const peer = await connect(wsUrl(own, { server: 'flood' }), {
      protocols: ['mcp', `proxy-token.${own.token}`],
      origin: APP,
    });
    peer.ws.pause();
    peer.ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    // 4,000 notifications of ~1 kB: 15 times the 256 KiB queue the proxy may hold for this reader.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    peer.ws.resume();
    await peer.next((f) => f.params?.data?.n === 3999, 20_000);
    const seen = peer.frames.filter((f) => f.method === 'notifications/message').map((f) => f.params.data.n);
    assert.equal(seen.length, 4000);
    assert.ok(
      seen.every((n: number, i: number) => n === i),
      'in order, none dropped',
    );
    assert.equal(peer.ws.readyState, WebSocket.OPEN);
    peer.ws.close();
  });
});
