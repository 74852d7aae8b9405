/**
 * Issue 14 review: what one upstream can make the proxy open or keep from a single call. Each
 * runs against a proxy in a child process (its sockets are counted in /proc, its heap is small)
 * and a hostile loopback upstream.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { afterEach, describe, it } from 'node:test';
import { type AmplifyUpstream, startAmplifyUpstream } from './fixtures/amplify-hostile.ts';
import { type ChildProxy, startChildProxy } from './helpers/child-proxy.ts';
import { postProxy } from './helpers/proxy.ts';

const MODERN = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' };
const linux = process.platform === 'linux';

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

async function setUp(
  heapMb: number,
  env: Record<string, string> = {},
): Promise<{ proxy: ChildProxy; upstream: AmplifyUpstream }> {
  const upstream = await startAmplifyUpstream();
  cleanup.push(() => upstream.stop());
  const proxy = await startChildProxy({ UPSTREAM_TIMEOUT_MS: '20000', LOG_LEVEL: 'error', ...env }, heapMb);
  cleanup.push(() => proxy.stop());
  return { proxy, upstream };
}

/** Open file descriptors of the child (sockets among them). */
function fds(proxy: ChildProxy): number {
  return readdirSync(`/proc/${proxy.child.pid}/fd`).length;
}

describe('server requests a caller cannot answer (F2)', {
  timeout: 30_000,
  skip: !linux && 'reads /proc',
}, () => {
  for (const era of ['session', 'modern'] as const) {
    it(`POST /proxy (${era} era): hundreds of sampling requests open a few refusals, then the call fails`, async () => {
      const { proxy, upstream } = await setUp(256);
      const before = fds(proxy);
      const started = Date.now();
      const reply = await postProxy(proxy, {
        mcp_server_url: `${upstream.origin}/server-requests?n=600&holdMs=3000`,
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'x', arguments: {}, ...(era === 'modern' ? { _meta: MODERN } : {}) },
      });
      const during = fds(proxy);
      assert.equal(reply.status, 502, JSON.stringify(reply.body));
      assert.equal(reply.body.error.data.code, 'upstream_protocol_error');
      assert.match(reply.body.error.message, /cannot answer/);
      // Failed as soon as the upstream passed the bound, not when it chose to answer.
      assert.ok(Date.now() - started < 2_500, `the call ended early: ${Date.now() - started} ms`);
      const { max } = upstream.connections();
      assert.ok(max <= 12, `a few connections to the upstream at most (saw ${max} at once)`);
      assert.ok(upstream.refusals() <= 8, `a few refusals (got ${upstream.refusals()})`);
      assert.ok(during - before <= 16, `a few sockets in the proxy (${before} → ${during} fds)`);
      assert.ok(proxy.alive(), proxy.output());
    });
  }
});

describe('sockets to one upstream origin (F2)', { timeout: 30_000 }, () => {
  it('UPSTREAM_MAX_CONNECTIONS_PER_ORIGIN caps them: further calls wait for a free one', async () => {
    const { proxy, upstream } = await setUp(256, { UPSTREAM_MAX_CONNECTIONS_PER_ORIGIN: '3' });
    const replies = await Promise.all(
      Array.from({ length: 9 }, (_, i) =>
        postProxy(proxy, {
          mcp_server_url: `${upstream.origin}/server-requests?n=0&holdMs=300`,
          jsonrpc: '2.0',
          id: i,
          method: 'tools/call',
          params: { name: 'x', arguments: {} },
        }),
      ),
    );
    for (const reply of replies) assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const { max } = upstream.connections();
    assert.ok(max <= 3, `at most 3 sockets to the upstream at once (saw ${max})`);
  });
});

describe('server requests through a held session (F2)', { timeout: 30_000 }, () => {
  it('POST /proxy to a WebSocket upstream asking hundreds of times: the call fails at once', async () => {
    const { proxy, upstream } = await setUp(256);
    const started = Date.now();
    const reply = await postProxy(proxy, {
      mcp_server_url: `${upstream.origin.replace('http', 'ws')}/asker`,
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'x', arguments: {} },
    });
    assert.equal(reply.status, 502, JSON.stringify(reply.body));
    assert.equal(reply.body.error.data.code, 'upstream_protocol_error');
    assert.ok(Date.now() - started < 5_000, `not at the upstream timeout: ${Date.now() - started} ms`);
    assert.ok(proxy.alive(), proxy.output());
  });
});

describe('input requests a modern caller owes (F6)', { timeout: 30_000 }, () => {
  it('a session-era server asking for input a hundred times: a bounded few wait, the rest are refused', async () => {
    const { proxy, upstream } = await setUp(256);
    const reply = await postProxy(proxy, {
      mcp_server_url: `${upstream.origin}/legacy-asker?n=100`,
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'ask', arguments: {}, _meta: MODERN },
    });
    assert.equal(reply.status, 200, JSON.stringify(reply.body).slice(0, 300));
    assert.equal(reply.body.result?.resultType, 'input_required', JSON.stringify(reply.body).slice(0, 300));
    const asked = Object.keys(reply.body.result.inputRequests).length;
    assert.ok(asked >= 1 && asked <= 16, `a bounded number of input requests (${asked})`);
    // The others were refused, a few at a time (the upstream never answers a refusal).
    const { max } = upstream.connections();
    assert.ok(max <= 12, `a few connections to the upstream at most (saw ${max} at once)`);
    assert.ok(proxy.alive(), proxy.output());
  });
});

describe('the Mcp-Param catalog (F3)', { timeout: 60_000 }, () => {
  it('keeps a bounded amount of what tools/list answers declare, whatever the query string', async () => {
    const { proxy, upstream } = await setUp(96);
    for (let i = 0; i < 12; i++) {
      const reply = await postProxy(proxy, {
        mcp_server_url: `${upstream.origin}/catalog?t=${i}`,
        jsonrpc: '2.0',
        id: i,
        method: 'tools/list',
        params: { _meta: MODERN },
      }).catch((error: Error) => error);
      assert.ok(proxy.alive(), `the proxy died after ${i + 1} lists:\n${proxy.output()}`);
      if (reply instanceof Error) assert.fail(`tools/list ${i} failed: ${reply.message}`);
      assert.ok([200, 503].includes(reply.status), `tools/list ${i}: ${reply.status}`);
    }
    // Each list is ~4.5 MB: the heap has room again for another caller.
    const health = await fetch(`${proxy.url}/health`);
    assert.equal(health.status, 200);
    assert.ok(proxy.alive(), proxy.output());
  });
});
