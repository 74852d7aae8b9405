/**
 * Issue 14, finding 10: a caller's JSON nested deeper than the proxy's cap is refused where it
 * enters, as `json_too_deep` (400 on HTTP, an error frame on /ws), not as an `internal_error`
 * when it is serialized again for the upstream; the proxy serves on.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { ERROR_REGISTRY } from '../src/errors.ts';
import { MAX_JSON_DEPTH } from '../src/json-depth.ts';
import {
  deeplyNested,
  type HostileUpstream,
  initializeResult,
  startHostileHttp,
  startHostileWs,
} from './fixtures/hostile-upstream.ts';
import { eventually } from './helpers/eventually.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const APP = 'http://app.example.test';

/** A tools/call whose arguments nest `depth` levels (the envelope adds a few more). */
function callNested(depth: number, id: number | string = 1): string {
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"method":"tools/call","params":{"name":"t","arguments":{"x":${deeplyNested(depth)}}}}`;
}

describe("callers' JSON nested too deep (issue 14, #10)", () => {
  let proxy: RunningProxy;
  let http: HostileUpstream;
  let ws: HostileUpstream;
  const echo = (message: { id?: string | number; method?: string }) =>
    JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { echoed: message.method } });
  before(async () => {
    http = await startHostileHttp((message) => ({ contentType: 'application/json', body: echo(message) }));
    ws = await startHostileWs((message) =>
      message.method === 'initialize'
        ? [initializeResult(message.id)]
        : message.id === undefined
          ? []
          : [echo(message)],
    );
    proxy = await startProxy({ HOST: '127.0.0.1', CORS_ORIGINS: APP });
  });
  after(async () => {
    await proxy?.close();
    await http?.stop();
    await ws?.stop();
  });

  it('POST /proxy: 400 json_too_deep for a deep body, then serves a normal one', async () => {
    const envelope = callNested(100_000).replace('{', `{"mcp_server_url":${JSON.stringify(http.url)},`);
    const reply = await postProxy(proxy, envelope);
    assert.equal(reply.status, 400, JSON.stringify(reply.body));
    assert.equal(reply.body.error.data.code, 'json_too_deep');
    assert.equal(reply.body.error.code, ERROR_REGISTRY.json_too_deep.rpcCode);
    // Just under the cap (the envelope's own levels included) still goes through.
    const fine = callNested(MAX_JSON_DEPTH - 6).replace(
      '{',
      `{"mcp_server_url":${JSON.stringify(http.url)},`,
    );
    const ok = await postProxy(proxy, fine);
    assert.equal(ok.status, 200, JSON.stringify(ok.body).slice(0, 300));
    assert.deepEqual(ok.body.result, { echoed: 'tools/call' });
  });

  it('POST /mcp: 400 json_too_deep', async () => {
    const response = await fetch(`${proxy.url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-proxy-token': proxy.token,
        'x-mcp-server-url': http.url,
        'x-mcp-transport': 'streamable-http',
      },
      body: callNested(MAX_JSON_DEPTH + 1),
    });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: { data: { code: string } } };
    assert.equal(body.error.data.code, 'json_too_deep');
  });

  it('WS /ws: a json_too_deep error frame, and the socket serves on', async () => {
    const socket = new WebSocket(
      `${proxy.url.replace('http', 'ws')}/ws?${new URLSearchParams({ mcp_server_url: ws.url })}`,
      ['mcp', `proxy-token.${proxy.token}`],
      { origin: APP },
    );
    // biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON.
    const frames: any[] = [];
    socket.on('message', (data) => frames.push(JSON.parse(data.toString())));
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    // biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON.
    const next = (predicate: (frame: any) => boolean) =>
      eventually(() => frames.find(predicate), {
        timeoutMs: 3_000,
        what: () => `such a frame; got ${JSON.stringify(frames)}`,
      });
    socket.send(callNested(100_000, 'deep'));
    const refused = await next((f) => f.error !== undefined);
    assert.equal(refused.error.data.code, 'json_too_deep');
    socket.send(JSON.stringify({ jsonrpc: '2.0', id: 'p', method: 'ping' }));
    assert.deepEqual((await next((f) => f.id === 'p')).result, { echoed: 'ping' });
    socket.close();
  });
});
