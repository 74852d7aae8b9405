/**
 * Issue 21, left after the first tracing wave: a `/ws` socket's handshake `traceparent` (header
 * or query parameter) is the parent of each message span without a `_meta.traceparent` of its
 * own; a frame that arrives once the socket began closing still gets a span (outcome `closed`);
 * tool and prompt names reach spans only when they are legal MCP names, and a tool the caller's
 * grants hide never does. Spans are read from the tests' OTLP receiver after the proxy closed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import { eventually } from './helpers/eventually.ts';
import { type ExportedSpan, type OtlpReceiver, SERVER, startReceiver } from './helpers/otlp-receiver.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';
import { type RecordingUpstream, startRecordingUpstream } from './helpers/recording-upstream.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const OWN_TRACE = 'aaaabbbbccccddddeeeeffff00001111';
const OWN_PARENT = '1234567890abcdef';
/** A config token granted only `harmless` on every server. */
const NARROW = 'narrow-token-0123456789abcdef-trace';
const INIT = { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } };

describe('trace context and names of /ws and /mcp spans', () => {
  let receiver: OtlpReceiver;
  let upstream: RecordingUpstream;
  let proxy: RunningProxy | undefined;

  beforeEach(async () => {
    receiver = await startReceiver();
    upstream = await startRecordingUpstream(['harmless', 'drop_database']);
    const config = join(mkdtempSync(join(tmpdir(), 'mcp-proxy-trace-names-')), 'proxy.json');
    writeFileSync(
      config,
      JSON.stringify({
        servers: { rec: { url: upstream.url, transport: 'streamable-http' } },
        tokens: [{ sha256: createHash('sha256').update(NARROW).digest('hex'), tools: ['harmless'] }],
      }),
    );
    proxy = await startProxy({
      HOST: '127.0.0.1',
      MCP_PROXY_CONFIG: config,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.origin,
      WS_ALLOW_MISSING_ORIGIN: 'true',
    });
  });
  afterEach(async () => {
    await proxy?.close();
    await upstream.stop();
    await receiver.stop();
  });

  /** Closes the proxy (flushing its spans) and returns the server spans of `surface`. */
  async function exported(surface: string): Promise<ExportedSpan[]> {
    await proxy?.close();
    proxy = undefined;
    await eventually(() => receiver.spans.length > 0, { what: 'exported spans' });
    return receiver.spans.filter((s) => s.kind === SERVER && s.attributes['mcp_proxy.surface'] === surface);
  }

  /** A socket to the configured server, open, with a helper that waits for each answer. */
  async function socket(options: { token?: string; query?: string; headers?: Record<string, string> } = {}) {
    const running = proxy as RunningProxy;
    const url = `${running.url.replace('http', 'ws')}/ws?server=rec${options.query ?? ''}`;
    const protocols = ['mcp', `proxy-token.${options.token ?? running.token}`];
    const ws = new WebSocket(url, protocols, { headers: options.headers ?? {} });
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
    return { ws, ask };
  }

  it('continues the handshake’s traceparent header for messages without their own', async () => {
    const { ws, ask } = await socket({ headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` } });
    await ask(1, 'initialize', INIT);
    await ask(2, 'tools/call', {
      name: 'harmless',
      _meta: { traceparent: `00-${OWN_TRACE}-${OWN_PARENT}-01` },
    });
    ws.close();
    const spans = await exported('ws');
    const init = spans.find((s) => s.name === 'initialize');
    const call = spans.find((s) => s.name === 'tools/call');
    assert.ok(init && call, `spans: ${spans.map((s) => s.name).join(', ')}`);
    assert.equal(init.traceId, TRACE_ID);
    assert.equal(init.parentSpanId, PARENT_ID);
    assert.equal(call.traceId, OWN_TRACE, 'a message’s own _meta.traceparent wins');
    assert.equal(call.parentSpanId, OWN_PARENT);
  });

  it('continues a traceparent query parameter (browsers cannot set handshake headers)', async () => {
    const query = `&traceparent=00-${TRACE_ID}-${PARENT_ID}-01`;
    const { ws, ask } = await socket({ query });
    await ask(1, 'initialize', INIT);
    ws.close();
    const init = (await exported('ws')).find((s) => s.name === 'initialize');
    assert.equal(init?.traceId, TRACE_ID);
    assert.equal(init?.parentSpanId, PARENT_ID);
  });

  it('gives a frame that arrives once the socket began closing a span with outcome closed', async () => {
    const { ws, ask } = await socket();
    await ask(1, 'initialize', INIT);
    // The binary frame closes the socket (1003); the text frame behind it arrives while it closes.
    ws.send(Buffer.from('binary'), { binary: true });
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }));
    const code = await new Promise((resolve) => ws.once('close', resolve));
    assert.equal(code, 1003);
    const spans = await exported('ws');
    const closed = spans.filter((s) => s.attributes['mcp_proxy.outcome'] === 'closed');
    assert.equal(closed.length, 1, `spans: ${spans.map((s) => s.name).join(', ')}`);
    assert.equal(closed[0]?.status?.code ?? 0, 0, 'not an error of the proxy');
  });

  it('names a tool only when it is a legal MCP name the caller may see (/ws)', async () => {
    const { ws, ask } = await socket({ token: NARROW });
    await ask(1, 'initialize', INIT);
    await ask(2, 'tools/call', { name: 'harmless' });
    const hidden = await ask(3, 'tools/call', { name: 'drop_database' });
    assert.match(hidden.error.message, /Unknown tool/);
    ws.close();
    const names = (await exported('ws'))
      .filter((s) => s.name === 'tools/call')
      .map((s) => s.attributes['gen_ai.tool.name']);
    assert.deepEqual(names.sort(), ['harmless', 'other']);
    assert.ok(!receiver.raw.join('\n').includes('drop_database'), 'the hidden tool is named nowhere');
  });

  it('names tools and prompts on /mcp only when legal and, for tools, visible to the caller', async () => {
    const running = proxy as RunningProxy;
    const post = (token: string, method: string, name: string) =>
      fetch(`${running.url}/servers/rec/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'x-proxy-token': token,
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: { name } }),
      }).then((response) => response.text());
    const long = 'a'.repeat(129);
    await post(NARROW, 'tools/call', 'drop_database');
    await post(NARROW, 'tools/call', 'harmless');
    await post(running.token, 'tools/call', 'drop_database');
    await post(running.token, 'tools/call', 'spaces are <not> legal');
    await post(running.token, 'tools/call', long);
    await post(running.token, 'prompts/get', 'summarize.v2');
    await post(running.token, 'prompts/get', 'ünïcode');
    const spans = await exported('mcp');
    const tools = spans.filter((s) => s.name === 'tools/call').map((s) => s.attributes['gen_ai.tool.name']);
    const prompts = spans
      .filter((s) => s.name === 'prompts/get')
      .map((s) => s.attributes['gen_ai.prompt.name']);
    assert.deepEqual(tools.sort(), ['drop_database', 'harmless', 'other', 'other', 'other']);
    assert.deepEqual(prompts.sort(), ['other', 'summarize.v2']);
    const raw = receiver.raw.join('\n');
    assert.ok(!raw.includes('not> legal') && !raw.includes(long) && !raw.includes('ünïcode'));
  });
});
