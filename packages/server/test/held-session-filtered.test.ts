/**
 * Issue 14 review, F4: a session forgets which requests its tool filter must see when those
 * requests end without an answer (failed send, abandoned caller, failed upstream). A key left
 * behind grew the session's memory and, when a later request reused the id, filtered an answer
 * that was never a `tools/list` one. No network: a fake transport stands for the upstream.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProxyError } from '../src/errors.ts';
import type { JsonRpcMessage, JsonRpcResponse } from '../src/jsonrpc.ts';
import { ToolFilter } from '../src/policy/tool-filter.ts';
import { HeldSession, type MessageSink } from '../src/sessions/held-session.ts';
import type { UpstreamTransport } from '../src/upstream/transport.ts';

/** An upstream whose next send can be made to fail, and which answers what the test says. */
function fakeUpstream(): UpstreamTransport & { failNext: boolean } {
  return {
    failNext: false,
    sessionId: undefined,
    protocolVersion: undefined,
    async start() {},
    async send(message: JsonRpcMessage) {
      if (this.failNext && 'method' in message && message.method === 'tools/list') {
        this.failNext = false;
        throw new Error('send failed');
      }
    },
    async close() {},
    pause() {},
    resume() {},
  };
}

function collector(): MessageSink & { got: JsonRpcMessage[] } {
  const got: JsonRpcMessage[] = [];
  return {
    got,
    deliver: (message) => {
      got.push(message);
      return true;
    },
  };
}

/** The caller's tool allowlist, given with each request. */
const filter = new ToolFilter(['shown']);
const listed: JsonRpcResponse = { jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'hidden' }] } };

describe('HeldSession: filtered request keys (F4)', () => {
  it('a tools/list whose send failed leaves no key behind for the next request with its id', async () => {
    const upstream = fakeUpstream();
    const session = new HeldSession('t', upstream);
    const sink = collector();
    upstream.failNext = true;
    await assert.rejects(session.request({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, sink, filter));
    await session.request({ jsonrpc: '2.0', id: 1, method: 'custom/catalogue' }, sink, filter);
    upstream.onmessage?.(listed);
    assert.deepEqual(sink.got, [listed], 'a custom answer is relayed as it is');
  });

  it('an abandoned tools/list leaves no key behind', async () => {
    const upstream = fakeUpstream();
    const session = new HeldSession('t', upstream);
    const sink = collector();
    await session.request({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, sink, filter);
    session.abandon(sink);
    const next = collector();
    await session.request({ jsonrpc: '2.0', id: 1, method: 'custom/catalogue' }, next, filter);
    upstream.onmessage?.(listed);
    assert.deepEqual(next.got, [listed]);
  });

  it('a tools/list failed by the upstream leaves no key behind', async () => {
    const upstream = fakeUpstream();
    const session = new HeldSession('t', upstream);
    const sink = collector();
    await session.request({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, sink, filter);
    upstream.onerror?.(new ProxyError('upstream_unreachable'));
    const next = collector();
    await session.request({ jsonrpc: '2.0', id: 1, method: 'custom/catalogue' }, next, filter);
    upstream.onmessage?.(listed);
    assert.deepEqual(next.got, [listed]);
  });
});
