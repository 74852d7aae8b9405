/**
 * Issue 19, in one process: two proxy instances sharing one store, and clients whose every
 * request goes to the other instance than the one before (no affinity). A proxy-held session
 * (or an input round) lives on the instance holding its upstream; the other relays each request
 * to it through the store's pub/sub and streams the answer back. The multi-process version, with
 * Redis and nginx, is scale-out.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SYSTEM_CLOCK } from '../src/clock.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { namespaced } from '../src/store/store.ts';
import { eventually } from './helpers/eventually.ts';
import { startEverything } from './helpers/everything.ts';
import {
  connectClient,
  SAMPLING_MODEL,
  serverTarget,
  startSlowCall,
  urlTarget,
} from './helpers/mcp-client.ts';
import { connectModernClient, ELICIT_ANSWER, modernRequest, SAMPLED_TEXT } from './helpers/modern-client.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const featureServerEntry = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));
const REQUEST = { timeout: 15_000 } as const;
/** Another principal's token: a session is found only by the principal that opened it. */
const SECOND_TOKEN = 'relay-second-token-0123456789abcdef';
/** A POST /proxy envelope opening a held session with the stdio fixture. */
const OPEN = {
  server: 'feat',
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};

/** The text of a tool result's first content item. */
// biome-ignore lint/suspicious/noExplicitAny: tool results are arbitrary JSON.
function textOf(result: any): string {
  return result.content?.[0]?.text ?? '';
}

describe('two instances, one store: held sessions answer on either (issue 19)', () => {
  let dir: string;
  let store: MemoryStore;
  let a: RunningProxy;
  let b: RunningProxy;
  /** Starts an instance sharing the store (the store outlives each app: the view's close does nothing). */
  const instance = () =>
    startProxy(
      {
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        PROXY_TOKENS: SECOND_TOKEN,
        MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
      },
      { store: namespaced(store, '') },
    );

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcpp-relay-'));
    await writeFile(
      join(dir, 'proxy.json'),
      JSON.stringify({ servers: { feat: { command: process.execPath, args: [featureServerEntry] } } }),
    );
    store = new MemoryStore(SYSTEM_CLOCK);
    a = await instance();
    b = await instance();
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('/mcp to a stdio server: tools, progress, logs and sampling, each request on the other instance', async () => {
    const client = await connectClient(a, serverTarget('feat'), { rotate: [a.url, b.url] });
    try {
      // One upstream process serves every call: the session never moved.
      const pids = new Set<string>();
      for (let i = 0; i < 3; i++)
        pids.add(textOf(await client.client.callTool({ name: 'pid' }, undefined, REQUEST)));
      assert.equal(pids.size, 1, `one upstream process, saw ${[...pids].join(', ')}`);
      const progress: number[] = [];
      const done = await client.client.callTool(
        { name: 'progress', arguments: { steps: 3, intervalMs: 5 } },
        undefined,
        { ...REQUEST, onprogress: (p) => progress.push(p.progress) },
      );
      assert.match(textOf(done), /3/);
      assert.deepEqual(progress, [1, 2, 3]);
      await client.client.setLoggingLevel('info', REQUEST);
      await client.client.callTool(
        { name: 'log', arguments: { level: 'warning', data: 'relayed log' } },
        undefined,
        REQUEST,
      );
      const logged = await client.notifications.waitFor('notifications/message', 5_000);
      assert.equal((logged.params as { data?: unknown }).data, 'relayed log');
      const sampled = await client.client.callTool(
        { name: 'sample', arguments: { prompt: 'hi' } },
        undefined,
        REQUEST,
      );
      assert.equal(client.samplingRequests.length, 1);
      assert.match(textOf(sampled), new RegExp(SAMPLING_MODEL));
      assert.deepEqual(client.errors, []);
      // DELETE through whichever instance ends it on its owner: gone on both.
      const sessionId = client.transport.sessionId as string;
      const owner = await store.get(`instances:session:${sessionId}`);
      assert.ok(owner, 'the session is claimed in the store');
      await client.transport.terminateSession();
      for (const proxy of [a, b]) {
        const after = await fetch(`${proxy.url}/servers/feat/mcp`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            'x-proxy-token': proxy.token,
            'mcp-session-id': sessionId,
            'mcp-protocol-version': '2025-11-25',
          },
          body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' }),
        });
        assert.equal(after.status, 404, `after DELETE, on ${proxy === a ? 'a' : 'b'}`);
      }
      // Its ownership leaves the store with it (the next heartbeat), so nothing piles up there.
      await eventually(async () => (await store.get(`instances:session:${sessionId}`)) === undefined, {
        timeoutMs: 5_000,
        what: "the ended session's ownership key to go",
      });
    } finally {
      await client.close();
    }
  });

  it('POST /proxy: a session opened on one instance is used on the other, by its principal only', async () => {
    const opened = await postProxy(a, OPEN);
    assert.equal(opened.status, 200, JSON.stringify(opened.body));
    const sessionId = opened.headers.get('mcp-session-id') as string;
    assert.match(sessionId, /^mcpp-/);
    const call = (proxy: RunningProxy) =>
      postProxy(proxy, {
        server: 'feat',
        mcp_session_id: sessionId,
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'pid' },
      });
    const onA = await call(a);
    const onB = await call(b);
    assert.equal(onB.status, 200, JSON.stringify(onB.body));
    assert.equal(textOf(onB.body.result), textOf(onA.body.result), 'the same upstream process');
    // Another principal gets "not found" through the other instance, as on the owner itself:
    // the owner checks the relayed principal against the session's.
    const stranger = await postProxy(
      { url: b.url, token: SECOND_TOKEN },
      { server: 'feat', mcp_session_id: sessionId, jsonrpc: '2.0', id: 3, method: 'ping' },
    );
    assert.equal(stranger.status, 404);
    assert.equal(stranger.body.error.data.code, 'session_not_found');
  });

  it('an input round crosses instances: the retry with requestState lands on the other one', async () => {
    const modern = await connectModernClient(a, '', { path: '/servers/feat/mcp', rotate: [a.url, b.url] });
    try {
      const result = await modern.client.callTool({ name: 'sample', arguments: { prompt: 'summarise' } });
      assert.equal(modern.samplings.length, 1);
      assert.match(JSON.stringify(result.content), new RegExp(SAMPLED_TEXT));
    } finally {
      await modern.close();
    }
  });

  it('POST /proxy: an input round started on one instance is answered through the other', async () => {
    const asked = await postProxy(a, {
      server: 'feat',
      ...modernRequest(3, 'tools/call', { name: 'elicit', arguments: {} }),
    });
    assert.equal(asked.body.result?.resultType, 'input_required', JSON.stringify(asked.body));
    const [key] = Object.keys(asked.body.result.inputRequests);
    const done = await postProxy(b, {
      server: 'feat',
      ...modernRequest(4, 'tools/call', {
        name: 'elicit',
        arguments: {},
        inputResponses: { [key as string]: ELICIT_ANSWER },
        requestState: asked.body.result.requestState,
      }),
    });
    assert.equal(done.body.id, 4, JSON.stringify(done.body));
    assert.equal(done.body.result?.resultType, 'complete', JSON.stringify(done.body));
    assert.match(JSON.stringify(done.body.result.content), /accept/);
  });

  it('a caller leaving a relayed answer stream cancels the call on the owner, upstream', async () => {
    const client = await connectClient(a, serverTarget('feat'));
    try {
      const sessionId = client.transport.sessionId as string;
      const requestId = 'relayed-slow';
      // Through the other instance, answered as an event stream: its headers come once the owner runs it.
      const call = await startSlowCall(b, '/servers/feat/mcp', sessionId, requestId, 20_000);
      assert.equal(call.status, 200);
      assert.match(call.contentType, /text\/event-stream/);
      call.leave();
      const observed = await eventually(
        async () => {
          const result = await client.client.callTool({ name: 'cancellations' }, undefined, REQUEST);
          const list = JSON.parse(textOf(result)) as Array<{ requestId: unknown; reason: string }>;
          return list.find((entry) => entry.requestId === requestId);
        },
        { timeoutMs: 5_000, intervalMs: 50, what: 'the upstream seeing the cancellation' },
      );
      assert.equal(observed.reason, 'client disconnected');
    } finally {
      await client.close();
    }
  });

  it('a session whose instance has gone is not found at once, never a hang', async () => {
    const c = await instance();
    const opened = await postProxy(c, OPEN);
    const sessionId = opened.headers.get('mcp-session-id') as string;
    const ping = () =>
      postProxy(b, { server: 'feat', mcp_session_id: sessionId, jsonrpc: '2.0', id: 2, method: 'ping' });
    assert.equal((await ping()).status, 200);
    await c.close();
    const started = Date.now();
    const gone = await ping();
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.data.code, 'session_not_found');
    assert.ok(Date.now() - started < 1_000, `answered in ${Date.now() - started} ms`);
  });

  it('a store that stops answering makes a session held elsewhere "retry", never "not found" nor a hang', async () => {
    // The same store, through a view whose reads can be made to fail (Redis unreachable).
    let down = false;
    const shared = namespaced(store, '');
    const flaky = {
      ...shared,
      get: (key: string) => (down ? Promise.reject(new Error('store down')) : shared.get(key)),
    };
    const c = await startProxy(
      { HOST: '127.0.0.1', LOG_LEVEL: 'warn', MCP_PROXY_CONFIG: join(dir, 'proxy.json') },
      { store: flaky },
    );
    try {
      const opened = await postProxy(a, OPEN);
      const sessionId = opened.headers.get('mcp-session-id') as string;
      const ping = () =>
        postProxy(c, { server: 'feat', mcp_session_id: sessionId, jsonrpc: '2.0', id: 2, method: 'ping' });
      assert.equal((await ping()).status, 200, 'relayed while the store answers');
      down = true;
      const started = Date.now();
      const reply = await ping();
      // The session still lives on a: "not found" would make its client drop it (RELAY-2).
      assert.equal(reply.status, 503);
      assert.equal(reply.body.error.data.code, 'relay_interrupted');
      assert.ok(Date.now() - started < 1_000, `answered in ${Date.now() - started} ms`);
    } finally {
      down = false;
      await c.close();
    }
  });

  it('without SESSION_SECRET, a pass-through id sealed by one instance opens on the other', async (t) => {
    const upstream = await startEverything('streamableHttp');
    t.after(() => upstream.stop());
    const client = await connectClient(a, urlTarget(upstream.url), { rotate: [a.url, b.url], roots: false });
    try {
      for (let i = 0; i < 3; i++) {
        const echoed = await client.client.callTool(
          { name: 'echo', arguments: { message: `hop ${i}` } },
          undefined,
          REQUEST,
        );
        assert.match(textOf(echoed), new RegExp(`hop ${i}`));
      }
    } finally {
      await client.close();
    }
  });
});
