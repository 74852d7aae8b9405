/**
 * Issue 21: OpenTelemetry traces, exported over OTLP/HTTP to a receiver written here (JSON
 * payloads decoded as the collector would): a `/mcp` call through a held session gives a server
 * span and an upstream client span under it; `traceparent` reaches the upstream in headers and,
 * for 2026-07-28 messages, in `_meta`; an inbound trace (header or `_meta`) is continued; no
 * secret ever lands in an exported attribute. Spans are read after the proxy closed (shutdown
 * flushes the exporter).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import WebSocket from 'ws';
import { SYSTEM_CLOCK } from '../src/clock.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { namespaced } from '../src/store/store.ts';
import { eventually } from './helpers/eventually.ts';
import { ALICE, callTool, connect, setupOAuth, upstreamTokens } from './helpers/oauth-proxy.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

/** One exported span, flattened from OTLP JSON. */
interface ExportedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: number;
  readonly attributes: Record<string, unknown>;
  readonly status: { code?: number; message?: string } | undefined;
  readonly start: bigint;
  readonly end: bigint;
}

const SERVER = 2;
const CLIENT = 3;

/** Reads a request body as text (gunzipped if the exporter compressed it). */
function bodyOf(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    ),
  );
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** An OTLP/HTTP traces receiver (JSON encoding) on loopback. */
async function startReceiver() {
  const spans: ExportedSpan[] = [];
  const raw: string[] = [];
  const server = createServer(async (req, res) => {
    let body = await bodyOf(req);
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
    if (req.url !== '/v1/traces' || !String(req.headers['content-type']).includes('json')) {
      res.writeHead(415).end();
      return;
    }
    const text = body.toString();
    raw.push(text);
    // biome-ignore lint/suspicious/noExplicitAny: OTLP JSON.
    const payload = JSON.parse(text) as any;
    for (const resource of payload.resourceSpans ?? [])
      for (const scope of resource.scopeSpans ?? [])
        for (const span of scope.spans ?? []) {
          const attributes: Record<string, unknown> = {};
          for (const { key, value } of span.attributes ?? [])
            attributes[key] = value.stringValue ?? value.intValue ?? value.boolValue ?? value.doubleValue;
          spans.push({
            traceId: span.traceId,
            spanId: span.spanId,
            parentSpanId: span.parentSpanId ?? '',
            name: span.name,
            kind: span.kind,
            attributes,
            status: span.status,
            start: BigInt(span.startTimeUnixNano),
            end: BigInt(span.endTimeUnixNano),
          });
        }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  const origin = await listen(server);
  return { origin, spans, raw, stop: () => close(server) };
}

/** What the upstream received: each message with the headers it came with. */
interface Received {
  readonly headers: IncomingMessage['headers'];
  // biome-ignore lint/suspicious/noExplicitAny: JSON-RPC messages.
  readonly message: any;
}

/** Answers any request with a small result; initialize with a server's. */
// biome-ignore lint/suspicious/noExplicitAny: JSON-RPC messages.
function answerTo(message: any): unknown {
  if (message.method === 'initialize')
    return {
      protocolVersion: message.params?.protocolVersion ?? '2025-06-18',
      capabilities: { tools: {} },
      serverInfo: { name: 'trace-upstream', version: '1' },
    };
  return { content: [{ type: 'text', text: 'ok' }] };
}

/**
 * An MCP server on loopback speaking Streamable HTTP at /mcp and the 2024 HTTP+SSE transport at
 * /sse (+ /messages), recording what each message arrived with. Over SSE, the answer to a call of
 * the tool `held` waits until the test calls what it pushed to `held`.
 */
async function startUpstream() {
  const received: Received[] = [];
  const held: Array<() => void> = [];
  let stream: ServerResponse | undefined;
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('event: endpoint\ndata: /messages?s=1\n\n');
      stream = res;
      return;
    }
    if (req.method === 'DELETE') return void res.writeHead(200).end();
    if (req.method !== 'POST') return void res.writeHead(405).end();
    const message = JSON.parse((await bodyOf(req)).toString());
    received.push({ headers: req.headers, message });
    const answer =
      typeof message.method === 'string' && 'id' in message
        ? { jsonrpc: '2.0', id: message.id, result: answerTo(message) }
        : undefined;
    if (url.pathname === '/messages') {
      res.writeHead(202).end();
      const send = () => stream?.write(`event: message\ndata: ${JSON.stringify(answer)}\n\n`);
      if (answer && message.params?.name === 'held') held.push(send);
      else if (answer) send();
      return;
    }
    if (answer === undefined) return void res.writeHead(202).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
  });
  const origin = await listen(server);
  return { origin, received, held, stop: () => close(server) };
}

/** The JSON-RPC answer in a reply that is JSON or an event stream. */
// biome-ignore lint/suspicious/noExplicitAny: JSON-RPC messages.
async function answerOf(response: Response): Promise<any> {
  const text = await response.text();
  if (!(response.headers.get('content-type') ?? '').includes('event-stream')) return JSON.parse(text);
  const data = text
    .split('\n')
    .filter((line) => line.startsWith('data:'))
    .map((line) => line.slice(5).trim());
  return JSON.parse(data.at(-1) ?? 'null');
}

const metaStdioEntry = fileURLToPath(new URL('./fixtures/meta-stdio.ts', import.meta.url));
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const INBOUND = `00-${TRACE_ID}-${PARENT_ID}-01`;
const SECRET_ARG = 'argument-secret-7f3c9a';
const MCP_TOKEN = 'upstream-token-secret-91be4d';
const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'trace-test', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

describe('OpenTelemetry traces', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let proxy: RunningProxy | undefined;

  beforeEach(async () => {
    receiver = await startReceiver();
    upstream = await startUpstream();
    proxy = await startProxy({
      HOST: '127.0.0.1',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.origin,
      WS_ALLOW_MISSING_ORIGIN: 'true',
    });
  });
  afterEach(async () => {
    await proxy?.close();
    await upstream.stop();
    await receiver.stop();
  });

  /** Closes the proxy (flushing its spans) and returns what the receiver got. */
  async function exported(): Promise<ExportedSpan[]> {
    await proxy?.close();
    proxy = undefined;
    return eventually(() => receiver.spans.length > 0 && receiver.spans, { what: 'exported spans' });
  }

  const post = (headers: Record<string, string>, body: unknown) =>
    fetch(`${(proxy as RunningProxy).url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-proxy-token': (proxy as RunningProxy).token,
        ...headers,
      },
      body: JSON.stringify(body),
    });

  it('a /mcp call through a held session: server span, upstream client span under it, traceparent upstream', async () => {
    const target = { 'x-mcp-server-url': `${upstream.origin}/sse`, 'x-mcp-transport': 'sse' };
    const init = await post(target, {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    assert.equal(init.status, 200, await init.clone().text());
    const session = init.headers.get('mcp-session-id') ?? '';
    assert.match(session, /^mcpp-/);
    await answerOf(init);
    const withSession = { ...target, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' };
    await (await post(withSession, { jsonrpc: '2.0', method: 'notifications/initialized' })).text();
    const call = await post(withSession, {
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'echo', arguments: { text: SECRET_ARG } },
    });
    assert.equal(call.status, 200);
    assert.equal((await answerOf(call)).result.content[0].text, 'ok');

    const spans = await exported();
    const server = spans.find((s) => s.kind === SERVER && s.name === 'tools/call');
    assert.ok(server, `spans: ${spans.map((s) => `${s.kind}:${s.name}`).join(', ')}`);
    assert.equal(server.attributes['gen_ai.tool.name'], 'echo');
    assert.equal(server.attributes['mcp_proxy.surface'], 'mcp');
    assert.equal(server.attributes['mcp_proxy.auth.kind'], 'static');
    assert.equal(server.attributes['mcp_proxy.era'], 'session');
    assert.equal(server.attributes['server.address'], undefined);
    const client = spans.find((s) => s.kind === CLIENT && s.parentSpanId === server.spanId);
    assert.ok(client, 'the upstream call is a client span under the server span');
    assert.equal(client.traceId, server.traceId);
    const upstreamCall = upstream.received.find((r) => r.message.method === 'tools/call');
    assert.equal(upstreamCall?.headers.traceparent, `00-${server.traceId}-${client.spanId}-01`);
  });

  it('continues an inbound traceparent header, and passes it on in headers and _meta to a 2026-07-28 server', async () => {
    const reply = await post(
      {
        traceparent: INBOUND,
        tracestate: 'vendor=abc',
        'x-mcp-server-url': `${upstream.origin}/mcp?key=${MCP_TOKEN}`,
        'x-mcp-transport': 'streamable-http',
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'tools/call',
        'mcp-name': 'echo',
      },
      {
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: { name: 'echo', arguments: { text: SECRET_ARG }, _meta: MODERN_META },
      },
    );
    assert.equal(reply.status, 200, await reply.clone().text());
    await reply.text();
    const arrived = upstream.received.find((r) => r.message.method === 'tools/call');
    assert.ok(arrived, 'the call reached the upstream');
    const header = String(arrived.headers.traceparent);
    assert.match(header, new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
    assert.notEqual(header.split('-')[2], PARENT_ID, 'the upstream sees the proxy as its parent');
    assert.equal(arrived.message.params._meta.traceparent, header);
    assert.equal(arrived.headers.tracestate, 'vendor=abc');

    const spans = await exported();
    const server = spans.find((s) => s.kind === SERVER && s.name === 'tools/call');
    assert.ok(server);
    assert.equal(server.traceId, TRACE_ID);
    assert.equal(server.parentSpanId, PARENT_ID);
    assert.equal(server.attributes['mcp_proxy.era'], 'modern');
    const client = spans.find((s) => s.kind === CLIENT && s.spanId === header.split('-')[2]);
    assert.ok(client, 'the traceparent upstream names the client span');
    assert.equal(client.parentSpanId, server.spanId);
  });

  it('continues an inbound _meta.traceparent of a 2026-07-28 message', async () => {
    const reply = await post(
      {
        'x-mcp-server-url': `${upstream.origin}/mcp`,
        'x-mcp-transport': 'streamable-http',
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'tools/call',
        'mcp-name': 'echo',
      },
      {
        jsonrpc: '2.0',
        id: 8,
        method: 'tools/call',
        params: { name: 'echo', arguments: {}, _meta: { ...MODERN_META, traceparent: INBOUND } },
      },
    );
    assert.equal(reply.status, 200, await reply.clone().text());
    await reply.text();
    const spans = await exported();
    const server = spans.find((s) => s.kind === SERVER && s.name === 'tools/call');
    assert.ok(server);
    assert.equal(server.traceId, TRACE_ID);
    assert.equal(server.parentSpanId, PARENT_ID);
  });

  it('exports no token, argument, result or query string in any attribute; errors carry their code', async () => {
    const call = (headers: Record<string, string>) =>
      post(
        {
          'x-mcp-server-url': `${upstream.origin}/mcp?api_key=${MCP_TOKEN}`,
          'x-mcp-transport': 'streamable-http',
          ...headers,
        },
        {
          jsonrpc: '2.0',
          id: 3,
          method: 'tools/call',
          params: { name: 'echo', arguments: { text: SECRET_ARG } },
        },
      ).then((r) => r.text());
    await call({ authorization: `Bearer ${MCP_TOKEN}` });
    const refused = await fetch(`${(proxy as RunningProxy).url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-proxy-token': 'wrong-token-0123456789abcdef',
      },
      body: '{}',
    });
    assert.equal(refused.status, 401);
    const token = (proxy as RunningProxy).token;
    const spans = await exported();
    const everything = receiver.raw.join('\n');
    for (const secret of [token, MCP_TOKEN, SECRET_ARG, 'wrong-token-0123456789abcdef'])
      assert.ok(!everything.includes(secret), `${secret} was exported`);
    const unauthorized = spans.find(
      (s) => s.kind === SERVER && s.attributes['error.type'] === 'unauthorized',
    );
    assert.ok(unauthorized, 'the refused request has a span with its error code');
    assert.equal(unauthorized.status?.code, 2);
  });

  it('names a span by its MCP method only when the method is a known one (else "other"), nor keeps it in an attribute', async () => {
    const made = 'x/made-up-method-4d1e9b';
    const reply = await post(
      { 'x-mcp-server-url': `${upstream.origin}/mcp`, 'x-mcp-transport': 'streamable-http' },
      { jsonrpc: '2.0', id: 9, method: made, params: {} },
    );
    await reply.text();
    const spans = await exported();
    const server = spans.find((s) => s.kind === SERVER && s.attributes['mcp_proxy.surface'] === 'mcp');
    assert.ok(server, `spans: ${spans.map((s) => `${s.kind}:${s.name}`).join(', ')}`);
    assert.equal(server.name, 'other');
    assert.equal(server.attributes['mcp.method.name'], 'other');
    assert.ok(!receiver.raw.join('\n').includes('made-up-method'), 'the made-up method was exported');
  });

  it('names the server only when it is a configured one (a caller-named URL: its host)', async () => {
    const running = proxy as RunningProxy;
    const envelope = (fields: Record<string, unknown>) =>
      fetch(`${running.url}/proxy`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-proxy-token': running.token },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', ...fields }),
      }).then((r) => r.status);
    assert.equal(await envelope({ server: 'no-such-server-5c0ffee' }), 404);
    await envelope({ mcp_server_url: `${upstream.origin}/mcp/path-5c0ffee?k=5c0ffee` });
    const spans = await exported();
    const proxied = spans.filter((s) => s.kind === SERVER && s.attributes['http.route'] === '/proxy');
    assert.equal(proxied.length, 2, `spans: ${spans.map((s) => `${s.kind}:${s.name}`).join(', ')}`);
    assert.ok(!receiver.raw.join('\n').includes('5c0ffee'), 'caller text was exported');
    assert.ok(proxied.every((s) => s.attributes['mcp_proxy.server'] === undefined));
    assert.ok(proxied.some((s) => s.attributes['server.address'] === new URL(upstream.origin).host));
  });

  it('gives each /ws message a server span, continuing its _meta.traceparent', async () => {
    const running = proxy as RunningProxy;
    const query = new URLSearchParams({
      mcp_server_url: `${upstream.origin}/mcp`,
      transport: 'streamable-http',
    });
    const ws = new WebSocket(`${running.url.replace('http', 'ws')}/ws?${query}`, [
      'mcp',
      `proxy-token.${running.token}`,
    ]);
    // biome-ignore lint/suspicious/noExplicitAny: JSON-RPC frames.
    const answers = new Map<number, any>();
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString());
      if (typeof message.id === 'number') answers.set(message.id, message);
    });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const ask = async (id: number, method: string, params: unknown) => {
      ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
      return eventually(() => answers.get(id), { what: `the answer to ${method}` });
    };
    await ask(1, 'initialize', {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 't', version: '1' },
    });
    ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    const answer = await ask(2, 'tools/call', {
      name: 'echo',
      arguments: { text: SECRET_ARG },
      _meta: { traceparent: INBOUND },
    });
    assert.equal(answer.result.content[0].text, 'ok');
    await ask(3, 'x/made-up-method-4d1e9b', {});
    ws.close();
    const arrived = upstream.received.find((r) => r.message.method === 'tools/call');
    const spans = await exported();
    const server = spans.find((s) => s.kind === SERVER && s.name === 'tools/call');
    assert.ok(server, `spans: ${spans.map((s) => `${s.kind}:${s.name}`).join(', ')}`);
    assert.equal(server.attributes['mcp_proxy.surface'], 'ws');
    assert.equal(server.attributes['gen_ai.tool.name'], 'echo');
    assert.equal(server.attributes['server.address'], new URL(upstream.origin).host);
    assert.equal(server.traceId, TRACE_ID);
    assert.equal(server.parentSpanId, PARENT_ID);
    const client = spans.find((s) => s.kind === CLIENT && s.parentSpanId === server.spanId);
    assert.ok(client, 'the upstream call is a client span under the message span');
    assert.equal(arrived?.headers.traceparent, `00-${TRACE_ID}-${client.spanId}-01`);
    assert.ok(!receiver.raw.join('\n').includes(SECRET_ARG));
    const notification = spans.find((s) => s.kind === SERVER && s.name === 'notifications/initialized');
    assert.ok(notification, 'a notification has a server span too');
    assert.equal(notification.attributes['mcp_proxy.surface'], 'ws');
    const made = spans.find(
      (s) => s.kind === SERVER && s.attributes['mcp_proxy.surface'] === 'ws' && s.name === 'other',
    );
    assert.ok(made, 'an unknown method does not name the span');
    assert.equal(made.attributes['mcp.method.name'], 'other');
    assert.ok(!receiver.raw.join('\n').includes('made-up-method'));
  });

  it('ends a /ws request’s span when its answer goes to the socket, not when it was handed upstream', async () => {
    const running = proxy as RunningProxy;
    const query = new URLSearchParams({ mcp_server_url: `${upstream.origin}/sse`, transport: 'sse' });
    const ws = new WebSocket(`${running.url.replace('http', 'ws')}/ws?${query}`, [
      'mcp',
      `proxy-token.${running.token}`,
    ]);
    // biome-ignore lint/suspicious/noExplicitAny: JSON-RPC frames.
    const answers: any[] = [];
    ws.on('message', (data) => answers.push(JSON.parse(data.toString())));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const send = (message: Record<string, unknown>) =>
      ws.send(JSON.stringify({ jsonrpc: '2.0', ...message }));
    const answered = (id: number) =>
      eventually(() => answers.find((a) => a.id === id), { what: `the answer to ${id}` });
    const init = { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } };
    send({ id: 1, method: 'initialize', params: init });
    await answered(1);
    send({ method: 'notifications/initialized' });
    // The upstream took the call (202 on its message endpoint) and holds the answer.
    send({ id: 2, method: 'tools/call', params: { name: 'held' } });
    await eventually(() => upstream.held.length === 1, { what: 'the held call upstream' });
    // Answered while the call waits: its span ends before the call's answer leaves.
    send({ id: 3, method: 'ping' });
    await answered(3);
    // The same id again while the first waits: refused, with a span of its own.
    send({ id: 2, method: 'tools/call', params: { name: 'echo' } });
    assert.equal((await answered(2)).error.data.code, 'request_id_in_use');
    upstream.held[0]?.();
    await eventually(() => answers.find((a) => a.id === 2 && a.result), { what: 'the held answer' });
    ws.close();
    const spans = await exported();
    const ws_ = spans.filter((s) => s.kind === SERVER && s.attributes['mcp_proxy.surface'] === 'ws');
    const held = ws_.find((s) => s.name === 'tools/call' && s.attributes['gen_ai.tool.name'] === 'held');
    const ping = ws_.find((s) => s.name === 'ping');
    assert.ok(held && ping, `spans: ${ws_.map((s) => s.name).join(', ')}`);
    assert.equal(held.status?.code ?? 0, 0);
    assert.ok(held.end > ping.end, 'the call’s span lasted until its answer went out');
    assert.ok(
      ws_.some((s) => s.name === 'notifications/initialized'),
      'the notification has a span',
    );
    const refused = ws_.find((s) => s.attributes['error.type'] === 'request_id_in_use');
    assert.ok(refused, 'the refused duplicate has a span with its code');
    assert.equal(refused.attributes['gen_ai.tool.name'], 'echo');
  });
});

describe('OpenTelemetry traces of the OAuth broker', () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  it('makes each step of the flow a client span under the request behind it, with no secret', async () => {
    const receiver = await startReceiver();
    cleanup.push(() => receiver.stop());
    const s = await setupOAuth(cleanup, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.origin });
    await connect(s, ALICE, 'alice');
    assert.equal((await callTool(s, ALICE, 'whoami')).status, 200);
    const tokens = upstreamTokens(s);
    assert.ok(tokens.length > 0);
    await s.proxy.close();
    const spans = await eventually(() => receiver.spans.length > 0 && receiver.spans, { what: 'spans' });
    const steps = spans.filter((span) => span.kind === CLIENT && span.name.startsWith('oauth '));
    const names = new Set(steps.map((span) => span.attributes['mcp_proxy.oauth.step']));
    for (const step of ['discovery', 'registration', 'token'])
      assert.ok(names.has(step), `steps: ${[...names].join(', ')}`);
    // The callback page POSTs back to its route, which exchanges the code (docs/oauth.md).
    const callback = spans.find(
      (span) =>
        span.kind === SERVER &&
        span.attributes['http.route'] === '/oauth/callback/:key' &&
        span.attributes['http.request.method'] === 'POST',
    );
    assert.ok(callback, `routes: ${spans.map((span) => span.attributes['http.route']).join(', ')}`);
    const exchange = steps.find((span) => span.attributes['mcp_proxy.oauth.step'] === 'token');
    assert.equal(exchange?.parentSpanId, callback.spanId, 'the token exchange runs under the callback');
    const everything = receiver.raw.join('\n');
    for (const secret of [...tokens, ALICE]) assert.ok(!everything.includes(secret), 'a token was exported');
    assert.ok(!/[?&](code|state)=/.test(everything), 'no authorization response parameter was exported');
  });
});

describe('OpenTelemetry traces across instances', () => {
  it('a request relayed to the instance holding its session: one trace, receiving span → relay → owner span → upstream', async () => {
    const receiver = await startReceiver();
    const upstream = await startUpstream();
    const store = new MemoryStore(SYSTEM_CLOCK);
    const instance = () =>
      startProxy(
        { HOST: '127.0.0.1', LOG_LEVEL: 'warn', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.origin },
        { store: namespaced(store, '') },
      );
    const a = await instance();
    const b = await instance();
    try {
      const post = (proxy: RunningProxy, headers: Record<string, string>, body: unknown) =>
        fetch(`${proxy.url}/mcp`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            'x-proxy-token': proxy.token,
            'x-mcp-server-url': `${upstream.origin}/sse`,
            'x-mcp-transport': 'sse',
            ...headers,
          },
          body: JSON.stringify(body),
        });
      const init = await post(
        a,
        {},
        {
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: '2025-06-18',
            capabilities: {},
            clientInfo: { name: 't', version: '1' },
          },
        },
      );
      const session = init.headers.get('mcp-session-id') ?? '';
      await answerOf(init);
      const onB = { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' };
      const call = await post(b, onB, {
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'echo' },
      });
      assert.equal(call.status, 200);
      assert.equal((await answerOf(call)).result.content[0].text, 'ok');
    } finally {
      await b.close();
      await a.close();
      await store.close();
      await upstream.stop();
    }
    const spans = await eventually(() => receiver.spans.length > 0 && receiver.spans, { what: 'spans' });
    await receiver.stop();
    const calls = spans.filter((s) => s.kind === SERVER && s.name === 'tools/call');
    const relay = spans.find((s) => s.kind === CLIENT && s.name === 'relay');
    assert.ok(relay, `spans: ${spans.map((s) => `${s.kind}:${s.name}`).join(', ')}`);
    const received = calls.find((s) => s.spanId === relay.parentSpanId);
    const owner = calls.find((s) => s.parentSpanId === relay.spanId);
    assert.ok(received, 'the relay span is a child of the receiving instance’s server span');
    assert.ok(owner, 'the owner’s server span continues the relay span');
    assert.equal(owner.traceId, received.traceId);
    const upstreamCall = spans.find((s) => s.kind === CLIENT && s.parentSpanId === owner.spanId);
    assert.ok(upstreamCall, 'the owner’s upstream call is in the same trace');
  });
});

describe('OpenTelemetry traces to upstreams without headers', () => {
  it('a message to a stdio server carries the send span’s traceparent in _meta, under the caller’s span', async () => {
    const receiver = await startReceiver();
    const dir = await mkdtemp(join(tmpdir(), 'mcpp-trace-'));
    const config = join(dir, 'proxy.json');
    await writeFile(
      config,
      JSON.stringify({ servers: { meta: { command: process.execPath, args: [metaStdioEntry] } } }),
    );
    const proxy = await startProxy({
      HOST: '127.0.0.1',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.origin,
      WS_ALLOW_MISSING_ORIGIN: 'true',
      MCP_PROXY_CONFIG: config,
    });
    let meta: { traceparent?: string } | null = null;
    try {
      const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/ws?server=meta`, [
        'mcp',
        `proxy-token.${proxy.token}`,
      ]);
      // biome-ignore lint/suspicious/noExplicitAny: JSON-RPC frames.
      const answers = new Map<number, any>();
      ws.on('message', (data) => {
        const message = JSON.parse(data.toString());
        if (typeof message.id === 'number') answers.set(message.id, message);
      });
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      const ask = (id: number, method: string, params: unknown) => {
        ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
        return eventually(() => answers.get(id), { what: `the answer to ${method}` });
      };
      await ask(1, 'initialize', {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 't', version: '1' },
      });
      const answer = await ask(2, 'tools/call', {
        name: 'echo',
        arguments: {},
        _meta: { traceparent: INBOUND },
      });
      meta = JSON.parse(answer.result.content[0].text);
      await ask(3, 'x/made-up-method-4d1e9b', {});
      ws.close();
    } finally {
      await proxy.close();
      await rm(dir, { recursive: true, force: true });
    }
    const spans = await eventually(() => receiver.spans.length > 0 && receiver.spans, { what: 'spans' });
    await receiver.stop();
    const server = spans.find((s) => s.kind === SERVER && s.name === 'tools/call');
    assert.ok(server);
    assert.equal(server.traceId, TRACE_ID);
    assert.equal(server.attributes['mcp_proxy.server'], 'meta', 'a configured server is named');
    const send = spans.find((s) => s.kind === CLIENT && s.parentSpanId === server.spanId);
    assert.ok(send, `spans: ${spans.map((s) => `${s.kind}:${s.name}`).join(', ')}`);
    assert.equal(send.attributes['network.transport'], 'stdio');
    const sends = spans.filter((s) => s.kind === CLIENT && s.name === 'stdio send');
    assert.ok(
      sends.some((s) => s.attributes['mcp.method.name'] === 'other'),
      'the made-up method was sent',
    );
    assert.ok(!receiver.raw.join('\n').includes('made-up-method'), 'a caller’s method name was exported');
    assert.equal(meta?.traceparent, `00-${TRACE_ID}-${send.spanId}-01`);
  });
});
