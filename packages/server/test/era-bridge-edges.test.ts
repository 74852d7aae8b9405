/**
 * Era bridging at its edges: a modern-only server over stdio (the SDK v2 `serveStdio` with
 * `legacy: 'reject'`), pooled sessions that must never mix callers' upstream credentials, era
 * verdicts one caller must not be able to poison for others, and `ping` on both bridges.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { startModernServer } from './fixtures/modern-server.ts';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import {
  connectLegacyClient,
  connectModernClient,
  connectWs,
  ELICIT_ANSWER,
  modernRequest,
} from './helpers/modern-client.ts';
import { proxiedUpstream } from './helpers/proxied-upstream.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const APP = 'http://app.example.test';
const modernStdioEntry = fileURLToPath(new URL('./fixtures/modern-stdio.ts', import.meta.url));

describe('a modern-only server over stdio', () => {
  let proxy: RunningProxy;
  before(async () => {
    const config = join(mkdtempSync(join(tmpdir(), 'mcp-proxy-eras-')), 'proxy.yaml');
    writeFileSync(
      config,
      [
        'servers:',
        '  modern:',
        `    command: ${JSON.stringify(process.execPath)}`,
        `    args: [${JSON.stringify(modernStdioEntry)}]`,
        `    env: ${JSON.stringify(compileCacheEnv())}`,
      ].join('\n'),
    );
    proxy = await startProxy({ HOST: '127.0.0.1', CORS_ORIGINS: APP, MCP_PROXY_CONFIG: config });
  });
  after(async () => {
    await proxy?.close();
  });

  it('WS /ws: a 2025 initialize is refused by the server, and the proxy bridges it on the spot', async () => {
    const peer = await connectWs(proxy, { server: 'modern' }, APP);
    try {
      peer.send({
        jsonrpc: '2.0',
        id: 'init',
        method: 'initialize',
        params: {
          protocolVersion: '2025-11-25',
          capabilities: { elicitation: {} },
          clientInfo: { name: 'raw', version: '1' },
        },
      });
      const init = await peer.next((f) => f.id === 'init');
      assert.equal(init.result?.serverInfo?.name, 'mcp-proxy-modern-fixture', JSON.stringify(init));
      assert.equal(init.result.protocolVersion, '2025-11-25');
      peer.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      peer.send({
        jsonrpc: '2.0',
        id: 'e',
        method: 'tools/call',
        params: { name: 'echo', arguments: { message: 'stdio' } },
      });
      const echo = await peer.next((f) => f.id === 'e');
      assert.deepEqual(echo.result.content, [{ type: 'text', text: 'Echo: stdio' }]);
      peer.send({ jsonrpc: '2.0', id: 'p', method: 'ping' });
      assert.deepEqual((await peer.next((f) => f.id === 'p')).result, {}, 'ping is answered by the bridge');
      peer.send({
        jsonrpc: '2.0',
        id: 'c',
        method: 'tools/call',
        params: { name: 'confirm', arguments: { action: 'go' } },
      });
      const asked = await peer.next((f) => f.method === 'elicitation/create');
      peer.send({ jsonrpc: '2.0', id: asked.id, result: ELICIT_ANSWER });
      const done = await peer.next((f) => f.id === 'c');
      assert.match(done.result.content[0].text, /^Confirmed: go/);
      assert.ok(!peer.frames.some((f) => f.error), `no error frame: ${JSON.stringify(peer.frames)}`);
    } finally {
      await peer.close();
    }
  });

  it('/servers/{name}/mcp: the SDK v1 client connects and calls tools', async () => {
    const legacy = await connectLegacyClient(proxy, '', { path: '/servers/modern/mcp', answerInput: true });
    try {
      assert.equal(legacy.client.getServerVersion()?.name, 'mcp-proxy-modern-fixture');
      const result = await legacy.client.callTool({ name: 'add', arguments: { a: 2, b: 5 } });
      assert.deepEqual(result.structuredContent, { sum: 7 });
    } finally {
      await legacy.close();
    }
  });

  it('/servers/{name}/mcp: the SDK v2 client stays modern (the in-band probe finds a modern server)', async () => {
    const modern = await connectModernClient(proxy, '', { path: '/servers/modern/mcp' });
    try {
      const result = await modern.client.callTool({ name: 'confirm', arguments: { action: 'probe' } });
      assert.equal(modern.elicitations.length, 1, 'the InputRequiredResult came from the server itself');
      assert.match(JSON.stringify(result.content), /Confirmed: probe/);
    } finally {
      await modern.close();
    }
  });
});

/** A session-era (SDK v1) Streamable HTTP server recording the bearer token of each initialize. */
async function startRecordingLegacyServer(): Promise<{
  url: string;
  initializedWith: string[];
  stop(): Promise<void>;
}> {
  const initializedWith: string[] = [];
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const server: Server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
    const sessionId = req.headers['mcp-session-id'];
    let transport = typeof sessionId === 'string' ? transports.get(sessionId) : undefined;
    if (!transport && body?.method === 'initialize') {
      initializedWith.push(String(req.headers.authorization));
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: randomUUID,
        onsessioninitialized: (id) => void transports.set(id, created),
      });
      const mcp = new McpServer({ name: 'recording-legacy', version: '1.0.0' });
      mcp.registerTool('whoami', { description: 'The bearer token of this request.' }, (extra) => ({
        content: [{ type: 'text', text: String(extra.requestInfo?.headers.authorization) }],
      }));
      await mcp.connect(created);
      transport = created;
    }
    if (!transport) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          jsonrpc: '2.0',
          id: null,
          error: { code: -32000, message: 'Bad Request: Server not initialized' },
        }),
      );
      return;
    }
    await transport.handleRequest(req, res, body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    initializedWith,
    stop: async () => {
      for (const transport of transports.values()) await transport.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('pooled sessions and the caller’s upstream credentials', () => {
  const fixture = proxiedUpstream(() => startRecordingLegacyServer(), { HOST: '127.0.0.1' });

  it('POST /proxy: two callers with different upstream tokens never share a pooled session', async () => {
    const whoami = (token: string, id: number) =>
      postProxy(fixture.proxy, {
        mcp_server_url: fixture.upstream.url,
        mcp_token: token,
        ...modernRequest(id, 'tools/call', { name: 'whoami', arguments: {} }),
      });
    const alice = await whoami('alice-token', 1);
    const bob = await whoami('bob-token', 2);
    const aliceAgain = await whoami('alice-token', 3);
    assert.equal(alice.body.result?.content[0].text, 'Bearer alice-token', JSON.stringify(alice.body));
    assert.equal(bob.body.result?.content[0].text, 'Bearer bob-token', JSON.stringify(bob.body));
    assert.equal(aliceAgain.body.result?.content[0].text, 'Bearer alice-token');
    assert.deepEqual(
      fixture.upstream.initializedWith,
      ['Bearer alice-token', 'Bearer bob-token'],
      'one session each, reused',
    );
  });
});

describe('era verdicts cannot be poisoned by a caller', () => {
  const fixture = proxiedUpstream(() => startModernServer({ legacy: 'stateless' }), { HOST: '127.0.0.1' });

  it('a modern request naming an unknown version does not make a dual-era server look modern-only', async () => {
    const odd = await postProxy(fixture.proxy, {
      mcp_server_url: fixture.upstream.url,
      ...modernRequest(1, 'tools/list', {}, { 'io.modelcontextprotocol/protocolVersion': '2099-01-01' }),
    });
    assert.equal(odd.body.error?.code, -32022, JSON.stringify(odd.body));
    const seen = fixture.upstream.requests.length;
    const init = await postProxy(fixture.proxy, {
      mcp_server_url: fixture.upstream.url,
      jsonrpc: '2.0',
      id: 2,
      method: 'initialize',
      params: {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 'after', version: '1' },
      },
    });
    assert.equal(init.status, 200, JSON.stringify(init.body));
    assert.equal(init.body.result.protocolVersion, '2025-11-25');
    const upstreamInit = fixture.upstream.requests.slice(seen).find((r) => r.method === 'initialize');
    assert.equal(upstreamInit?.status, 200, 'the server itself answered the session client');
  });
});

/**
 * An upstream whose answers depend on the credential a caller sends it: a 400 without a JSON-RPC
 * error to anything carrying `Bearer bad-credential` (what reads as "not modern"), a modern
 * server to everyone else. Records each POST's method and Authorization.
 */
async function startCredentialSensitiveServer() {
  const seen: Array<{ method: string; authorization: string }> = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => {
      let message: { id?: unknown; method?: string } = {};
      try {
        message = JSON.parse(body) as typeof message;
      } catch {
        // Not JSON: recorded without a method.
      }
      const authorization = req.headers.authorization ?? '';
      seen.push({ method: message.method ?? '', authorization });
      if (authorization === 'Bearer bad-credential') {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('bad credential');
        return;
      }
      const result = message.method === 'tools/list' ? { tools: [] } : {};
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', id: message.id ?? null, result }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    seen,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('era verdicts and the caller’s upstream credentials', () => {
  const fixture = proxiedUpstream(() => startCredentialSensitiveServer(), { HOST: '127.0.0.1' });

  it('what the upstream answered one caller’s credential does not steer a caller with another', async () => {
    const list = (token: string, id: number) =>
      postProxy(fixture.proxy, {
        mcp_server_url: fixture.upstream.url,
        mcp_token: token,
        ...modernRequest(id, 'tools/list'),
      });
    await list('bad-credential', 1);
    assert.ok(
      fixture.upstream.seen.some(
        (r) => r.method === 'server/discover' && r.authorization === 'Bearer bad-credential',
      ),
      'the bad credential was probed',
    );
    const good = await list('good-credential', 2);
    // Probed afresh under its own credential, and passed through as the modern request it is
    // (not pooled into a session as for a session-era server).
    const asGood = fixture.upstream.seen.filter((r) => r.authorization === 'Bearer good-credential');
    assert.deepEqual(
      asGood.map((r) => r.method),
      ['server/discover', 'tools/list'],
      JSON.stringify(good.body),
    );
    assert.deepEqual(good.body.result, { tools: [] }, JSON.stringify(good.body));
  });
});
