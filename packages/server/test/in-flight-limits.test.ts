/**
 * Issue 14, finding 5: requests in flight are capped per token (429 `too_many_in_flight`) and in
 * total (503 `overloaded`, Retry-After) on every surface, batches are capped in length, and the
 * heap is watched; refusals carry their registry codes. Black-box through HTTP and /ws against a
 * silent loopback upstream.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import { InFlightLimits } from '../src/limits/in-flight.ts';
import { type HostileUpstream, startHostile } from './fixtures/memory-hostile.ts';
import { eventually } from './helpers/eventually.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const OTHER_TOKEN = 'other-proxy-token-0123456789abcdef';

let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

async function setUp(
  env: Record<string, string>,
): Promise<{ proxy: RunningProxy; upstream: HostileUpstream }> {
  const upstream = await startHostile();
  cleanup.push(() => upstream.stop());
  const proxy = await startProxy({ UPSTREAM_TIMEOUT_MS: '20000', ...env });
  cleanup.push(() => proxy.close());
  return { proxy, upstream };
}

const waitFor = (condition: () => boolean, what: string) => eventually(condition, { what });

/** A POST /proxy to the silent upstream, held until `abort` is called. */
function holdProxyCall(proxy: RunningProxy, upstream: HostileUpstream, id: number, token = proxy.token) {
  const controller = new AbortController();
  const done = fetch(`${proxy.url}/proxy`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-proxy-token': token },
    body: JSON.stringify({
      mcp_server_url: `${upstream.origin}/silent`,
      jsonrpc: '2.0',
      id,
      method: 'tools/list',
    }),
    signal: controller.signal,
  })
    .then(() => {})
    .catch(() => {});
  const abort = () => {
    controller.abort();
    return done;
  };
  cleanup.push(abort);
  return abort;
}

function mcpPost(proxy: RunningProxy, path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${proxy.url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'x-proxy-token': proxy.token,
      ...headers,
    },
    body: JSON.stringify(body),
  });
}

const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'in-flight', version: '1' },
  },
};

describe('requests in flight', { timeout: 30_000 }, () => {
  it('POST /proxy: a token at its cap gets 429 too_many_in_flight; a finished request frees its slot', async () => {
    const { proxy, upstream } = await setUp({ IN_FLIGHT_PER_TOKEN: '2', UPSTREAM_TIMEOUT_MS: '1500' });
    const call = (id: number) =>
      postProxy(proxy, { mcp_server_url: `${upstream.origin}/silent`, jsonrpc: '2.0', id, method: 'ping' });
    const held = [call(1), call(2)];
    await waitFor(() => upstream.held() === 2, 'two held requests');

    const refused = await call(3);
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, -33035);
    assert.equal(refused.body.error.data.code, 'too_many_in_flight');
    assert.equal(refused.body.error.data.limit, 2);
    assert.equal(refused.body.id, null, 'refused before the body is read');

    // Once they end (the silent upstream times out), their slots are free again.
    for (const reply of await Promise.all(held)) assert.equal(reply.body.error.data.code, 'upstream_timeout');
    const next = await call(4);
    assert.equal(next.body.error.data.code, 'upstream_timeout', 'admitted, and held until the timeout');
  });

  it('POST /proxy: the process at its total cap gets 503 overloaded with Retry-After, whatever the token', async () => {
    const { proxy, upstream } = await setUp({ IN_FLIGHT_TOTAL: '2', PROXY_TOKENS: OTHER_TOKEN });
    holdProxyCall(proxy, upstream, 1);
    holdProxyCall(proxy, upstream, 2);
    await waitFor(() => upstream.held() === 2, 'two held requests');
    const refused = await postProxy(
      { url: proxy.url, token: OTHER_TOKEN },
      { mcp_server_url: `${upstream.origin}/silent`, jsonrpc: '2.0', id: 3, method: 'ping' },
    );
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error.code, -33036);
    assert.equal(refused.body.error.data.code, 'overloaded');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    // Health checks are not requests in flight.
    assert.equal((await fetch(`${proxy.url}/health`)).status, 200);
  });

  it('/mcp and /servers/{name}/mcp share the token cap with POST /proxy', async () => {
    const upstream = await startHostile();
    cleanup.push(() => upstream.stop());
    const dir = mkdtempSync(join(tmpdir(), 'in-flight-'));
    const file = join(dir, 'proxy.json');
    writeFileSync(
      file,
      JSON.stringify({
        servers: { silent: { url: `${upstream.origin}/silent`, transport: 'streamable-http' } },
      }),
    );
    const proxy = await startProxy({ IN_FLIGHT_PER_TOKEN: '2', MCP_PROXY_CONFIG: file });
    cleanup.push(() => proxy.close());

    const controller = new AbortController();
    cleanup.push(() => controller.abort());
    const held = (path: string, headers: Record<string, string> = {}) =>
      fetch(`${proxy.url}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'x-proxy-token': proxy.token,
          ...headers,
        },
        body: JSON.stringify(INIT),
        signal: controller.signal,
      }).catch(() => undefined);
    void held('/servers/silent/mcp');
    void held('/mcp', {
      'x-mcp-server-url': `${upstream.origin}/silent`,
      'x-mcp-transport': 'streamable-http',
    });
    await waitFor(() => upstream.held() === 2, 'two held /mcp requests');

    for (const path of ['/mcp', '/servers/silent/mcp']) {
      const refused = await mcpPost(proxy, path, INIT, { 'x-mcp-server-url': `${upstream.origin}/silent` });
      assert.equal(refused.status, 429, path);
      const body = (await refused.json()) as { error: { data: { code: string } } };
      assert.equal(body.error.data.code, 'too_many_in_flight', path);
    }
    const viaProxy = await postProxy(proxy, {
      mcp_server_url: `${upstream.origin}/silent`,
      jsonrpc: '2.0',
      id: 9,
      method: 'ping',
    });
    assert.equal(viaProxy.status, 429);
  });

  it('/mcp: a batch longer than MAX_BATCH_MESSAGES is refused with 413 batch_too_large', async () => {
    const { proxy, upstream } = await setUp({ MAX_BATCH_MESSAGES: '2' });
    const batch = [1, 2, 3].map((id) => ({ jsonrpc: '2.0', id, method: 'ping' }));
    const refused = await mcpPost(proxy, '/mcp', batch, { 'x-mcp-server-url': `${upstream.origin}/silent` });
    assert.equal(refused.status, 413);
    const body = (await refused.json()) as { error: { code: number; data: { code: string; limit: number } } };
    assert.equal(body.error.code, -33037);
    assert.equal(body.error.data.code, 'batch_too_large');
    assert.equal(body.error.data.limit, 2);
    assert.equal(upstream.held(), 0, 'nothing reached the upstream');
  });

  it('/ws: requests in flight are capped per socket and count against the token; batches are capped', async () => {
    const { proxy, upstream } = await setUp({
      WS_ALLOW_MISSING_ORIGIN: 'true',
      IN_FLIGHT_PER_SOCKET: '2',
      IN_FLIGHT_PER_TOKEN: '3',
      MAX_BATCH_MESSAGES: '4',
    });
    const target = encodeURIComponent(`${upstream.wsOrigin}/silent`);
    const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/ws?mcp_server_url=${target}`, [
      'mcp',
      `proxy-token.${proxy.token}`,
    ]);
    cleanup.push(() => ws.terminate());
    // biome-ignore lint/suspicious/noExplicitAny: JSON-RPC frames as the test reads them.
    const frames: any[] = [];
    ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send(JSON.stringify(INIT));
    await waitFor(() => frames.some((f) => f.id === 1), 'initialize answered');

    const send = (id: number) => ws.send(JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' }));
    send(2);
    send(3);
    send(4);
    await waitFor(() => frames.some((f) => f.id === 4), 'the third request refused');
    const refused = frames.find((f) => f.id === 4);
    assert.equal(refused.error.code, -33035);
    assert.equal(refused.error.data.code, 'too_many_in_flight');
    assert.equal(refused.error.data.limit, 2);
    assert.ok(!frames.some((f) => f.id === 2 || f.id === 3), 'the two admitted are still in flight');

    // Cancelling one frees its slot: the next request is admitted, the one after refused again.
    ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 2 } }));
    send(5);
    send(6);
    await waitFor(() => frames.some((f) => f.id === 6), 'the request over the cap refused');
    assert.equal(frames.find((f) => f.id === 6).error.data.code, 'too_many_in_flight');
    assert.ok(!frames.some((f) => f.id === 5), 'the request after the cancellation is admitted');

    // The socket's two requests count against the token: with a cap of 3, one more HTTP call fits…
    const hold = holdProxyCall(proxy, upstream, 7);
    await waitFor(() => upstream.held() === 1, 'the HTTP call admitted');
    // …and the next does not.
    const overToken = await postProxy(proxy, {
      mcp_server_url: `${upstream.origin}/silent`,
      jsonrpc: '2.0',
      id: 8,
      method: 'ping',
    });
    assert.equal(overToken.status, 429);
    assert.equal(overToken.body.error.data.code, 'too_many_in_flight');
    await hold();

    ws.send(
      JSON.stringify(
        [10, 11, 12, 13, 14].map((id) => ({ jsonrpc: '2.0', method: 'notifications/x', params: { id } })),
      ),
    );
    await waitFor(() => frames.some((f) => f.error?.data.code === 'batch_too_large'), 'the batch refused');
    assert.equal(frames.find((f) => f.error?.data.code === 'batch_too_large').error.code, -33037);
  });
});

describe('InFlightLimits', () => {
  it('sheds with overloaded while the heap is over the threshold, reading it at most every 100 ms when low', () => {
    let now = 0;
    let used = 10;
    let reads = 0;
    const limits = new InFlightLimits(
      { perOwner: 100, total: 100, shedHeapPercent: 80 },
      {
        now: () => now,
        heap: () => {
          reads++;
          return { used, limit: 100 };
        },
      },
    );
    // The heap is judged while other work is in flight.
    const held = limits.acquire('b');
    const parsing = limits.acquire('c');
    limits.acquire('a')();
    limits.acquire('a')();
    assert.equal(reads, 1, 'a low heap is read once per interval');
    used = 90;
    limits.acquire('a')();
    now = 100;
    assert.throws(
      () => limits.acquire('a'),
      (error: { code: string; status: number; headers: Record<string, string> }) =>
        error.code === 'overloaded' && error.status === 503 && error.headers['retry-after'] === '2',
    );
    // A request admitted before its body was parsed is shed once it is.
    assert.throws(() => limits.assertHeapRoom(true), { code: 'overloaded' });
    parsing();
    // Near the threshold the heap is read on every request, so relief is seen at once.
    used = 30;
    limits.acquire('a')();
    held();
    assert.equal(limits.total, 0);
  });

  it('judges the heap only while other work is in flight (a heap of garbage cannot lock callers out)', () => {
    const limits = new InFlightLimits(
      { perOwner: 100, total: 100, shedHeapPercent: 80 },
      { now: () => 0, heap: () => ({ used: 95, limit: 100 }) },
    );
    // Nothing in flight: the full heap is garbage or not ours; one request is admitted.
    const first = limits.acquire('a');
    limits.assertHeapRoom(true);
    // With that one in flight, the next is shed, before and after its body is read.
    assert.throws(() => limits.acquire('a'), { code: 'overloaded' });
    first();
    // Work that holds no slot (a /ws frame, a notification) is always judged.
    assert.throws(() => limits.assertHeapRoom(false), { code: 'overloaded' });
    const next = limits.acquire('a');
    next();
    const again = limits.acquire('a');
    again();
    assert.equal(limits.total, 0);
  });
});
