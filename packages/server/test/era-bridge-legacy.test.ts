/**
 * Era bridging, legacy client → modern-only server: a session-era (2025-11-25, `initialize`)
 * client reaches a server that speaks only MCP 2026-07-28 (`test/fixtures/modern-server.ts`,
 * SDK v2, `legacy: 'reject'`) through `/mcp` (the SDK v1 client), `POST /proxy` and `WS /ws`.
 * The proxy answers `initialize` from the server's `server/discover`, adds the modern `_meta`
 * envelope and headers to every request, turns `InputRequiredResult`s into server→client
 * requests on the client's stream, and feeds list_changed from an upstream
 * `subscriptions/listen` into the legacy GET stream. The era verdict is learnt from the
 * server's refusal of the first `initialize` and cached; a server pinned `protocol: modern` in
 * the config never sees an `initialize`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  GREETING_TEXT,
  GREETING_URI,
  type ModernServer,
  startModernServer,
} from './fixtures/modern-server.ts';
import { eventually } from './helpers/eventually.ts';
import {
  connectLegacyClient,
  connectModernClient,
  connectWs,
  ELICIT_ANSWER,
  type LegacyConnection,
  MODERN,
  modernRequest,
  SAMPLED_TEXT,
} from './helpers/modern-client.ts';
import { proxiedUpstream } from './helpers/proxied-upstream.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const APP = 'http://app.example.test';
const LEGACY = '2025-11-25';
const FIXTURE_NAME = 'mcp-proxy-modern-fixture';
const INITIALIZE = {
  jsonrpc: '2.0',
  id: 'init',
  method: 'initialize',
  params: {
    protocolVersion: LEGACY,
    capabilities: { elicitation: { form: {} } },
    clientInfo: { name: 'legacy-raw', version: '1' },
  },
};

/** The text of a tool result's first content block. */
function textOf(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content;
  const first = content?.[0];
  assert.equal(first?.type, 'text', JSON.stringify(result));
  return first.text ?? '';
}

/** How many requests with JSON-RPC `method` the fixture received. */
function count(upstream: ModernServer, method: string): number {
  return upstream.requests.filter((r) => r.method === method).length;
}

describe('switching to the session-era facade keeps the bridge session open', () => {
  let upstream: ModernServer;
  before(async () => {
    upstream = await startModernServer();
  });
  after(async () => {
    await upstream?.stop();
  });

  it('a 2025 initialize through a fresh proxy is answered, not ended with "connection closed"', async () => {
    const proxy = await startProxy({ HOST: '127.0.0.1' });
    try {
      const init = await postProxy(proxy, { mcp_server_url: upstream.url, ...INITIALIZE });
      assert.equal(
        init.body?.error?.code,
        undefined,
        'the switch to SessionEraFacade must not end the session; got ' +
          `${JSON.stringify(init.body)} (era-switch.ts #toSessionFacade closes the native transport ` +
          'while it is still the active one, and its onclose, fired synchronously, closes the bridge session)',
      );
      assert.equal(init.body.result.serverInfo?.name, FIXTURE_NAME);
    } finally {
      await proxy.close();
    }
  });
});

describe('legacy client (SDK v1) → /mcp → modern-only server (bridged)', () => {
  let connected: LegacyConnection | undefined;
  let connectError: unknown;
  after(async () => {
    await connected?.close();
  });
  const fixture = proxiedUpstream(() => startModernServer(), { HOST: '127.0.0.1' });
  before(async () => {
    connected = await connectLegacyClient(fixture.proxy, fixture.upstream.url, { answerInput: true }).catch(
      (error: unknown) => {
        connectError = error;
        return undefined;
      },
    );
  });
  /** The connected client; each test fails with the connect error when connecting failed. */
  const client = (): LegacyConnection => {
    assert.ok(connected, `the SDK v1 client could not connect through the bridge: ${String(connectError)}`);
    return connected;
  };

  it('connects: initialize answered from server/discover, with the server identity; no initialize accepted upstream', () => {
    const legacy = client();
    assert.equal(legacy.client.getServerVersion()?.name, FIXTURE_NAME);
    assert.ok(legacy.client.getServerCapabilities()?.tools, 'the discovered capabilities are passed on');
    assert.ok(
      count(fixture.upstream, 'server/discover') >= 1,
      'the proxy asked the server with server/discover',
    );
    const initializes = fixture.upstream.requests.filter((r) => r.method === 'initialize');
    // The one initialize of a never-seen URL is how the proxy learns the server is modern-only:
    // the server refuses it (-32022) and the client never sees that refusal.
    assert.ok(initializes.length <= 1, `initialize reached the server ${initializes.length} times`);
    assert.ok(
      initializes.every((r) => r.status === 400),
      'no initialize was accepted: the server never held a session',
    );
    assert.ok(
      !fixture.upstream.requests.some((r) => 'mcp-session-id' in r.headers),
      'no session id reached the server',
    );
    assert.ok(
      fixture.upstream.requests.some(
        (r) => r.method === 'server/discover' && r.headers['mcp-protocol-version'] === MODERN,
      ),
      'server/discover carried the modern version header',
    );
  });

  it('lists and calls tools; every request goes up modern (version and method headers)', async () => {
    const legacy = client();
    const { tools } = await legacy.client.listTools();
    const names = tools.map((t) => t.name);
    for (const name of ['echo', 'add', 'weather', 'headers', 'confirm', 'summarize', 'slow'])
      assert.ok(names.includes(name), `${name} is listed`);
    const echo = await legacy.client.callTool({ name: 'echo', arguments: { message: 'old' } });
    assert.equal(textOf(echo), 'Echo: old');
    assert.equal((echo as Record<string, unknown>).resultType, undefined, 'resultType is stripped');
    const seen = fixture.upstream.requests.findLast((r) => r.method === 'tools/call');
    assert.equal(seen?.headers['mcp-protocol-version'], MODERN);
    assert.equal(seen?.headers['mcp-method'], 'tools/call');
    assert.equal(seen?.headers['mcp-name'], 'echo');
    const sum = await legacy.client.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
    assert.deepEqual(sum.structuredContent, { sum: 42 });
  });

  it('adds Mcp-Param-Region for the x-mcp-header parameter of weather', async () => {
    const legacy = client();
    const result = await legacy.client.callTool({ name: 'weather', arguments: { region: 'eu' } });
    assert.equal(textOf(result), 'Sunny in eu (header: eu)');
    const seen = fixture.upstream.requests.findLast((r) => r.method === 'tools/call');
    assert.equal(seen?.headers['mcp-param-region'], 'eu');
    assert.equal(seen?.headers['mcp-name'], 'weather');
  });

  it('reads a resource and gets a prompt', async () => {
    const legacy = client();
    const read = await legacy.client.readResource({ uri: GREETING_URI });
    assert.equal((read.contents[0] as { text?: string }).text, GREETING_TEXT);
    assert.equal(
      fixture.upstream.requests.findLast((r) => r.method === 'resources/read')?.headers['mcp-name'],
      GREETING_URI,
    );
    const prompt = await legacy.client.getPrompt({ name: 'greet', arguments: { name: 'Ada' } });
    assert.deepEqual(prompt.messages[0]?.content, { type: 'text', text: 'Say hello to Ada.' });
  });

  it("turns an elicitation InputRequiredResult into elicitation/create on the client's stream", async () => {
    const legacy = client();
    const before = fixture.upstream.requests.length;
    const result = await legacy.client.callTool({ name: 'confirm', arguments: { action: 'deploy' } });
    assert.equal(textOf(result), 'Confirmed: deploy (state confirm:deploy)');
    assert.equal(legacy.elicitations.length, 1, 'the client answered one elicitation');
    assert.equal((legacy.elicitations[0] as { message?: string }).message, 'Really deploy?');
    const calls = fixture.upstream.requests.slice(before).filter((r) => r.method === 'tools/call');
    assert.equal(calls.length, 2, 'the first call asked for input, the retry completed');
  });

  it('turns a sampling InputRequiredResult into sampling/createMessage', async () => {
    const legacy = client();
    const result = await legacy.client.callTool({ name: 'summarize', arguments: { topic: 'proxies' } });
    assert.equal(textOf(result), `Summary: ${SAMPLED_TEXT}`);
    assert.equal(legacy.samplings.length, 1, 'the client answered one sampling request');
  });

  it('delivers progress notifications to the client', async () => {
    const legacy = client();
    const progress: number[] = [];
    const result = await legacy.client.callTool(
      { name: 'slow', arguments: { steps: 3, intervalMs: 10 } },
      undefined,
      { onprogress: (p) => progress.push(p.progress) },
    );
    assert.equal(textOf(result), 'done after 3 steps');
    assert.deepEqual(progress, [1, 2, 3]);
  });

  it('cancels: the client aborts (notifications/cancelled), the server observes the cancellation', async () => {
    const legacy = client();
    const since = fixture.upstream.cancellations.length;
    const abort = new AbortController();
    const call = legacy.client.callTool(
      { name: 'slow', arguments: { steps: 100, intervalMs: 30 } },
      undefined,
      {
        signal: abort.signal,
        onprogress: () => abort.abort('enough'),
      },
    );
    await assert.rejects(call);
    const observed = await fixture.upstream.waitForCancellation(since, 5_000);
    assert.ok(observed.step < 100, `cancelled after ${observed.step} steps`);
    // The session survives a cancellation.
    assert.equal(
      textOf(await legacy.client.callTool({ name: 'echo', arguments: { message: 'after' } })),
      'Echo: after',
    );
  });

  it('feeds tools/list_changed from an upstream subscriptions/listen into the GET stream', async () => {
    const legacy = client();
    await eventually(() => count(fixture.upstream, 'subscriptions/listen') > 0, {
      what: 'the upstream subscriptions/listen',
    });
    let received = 0;
    legacy.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      received++;
    });
    // The listen stream may still be opening: publish until the notification arrives.
    await eventually(
      () => {
        if (received > 0) return true;
        fixture.upstream.notify.toolsChanged();
        return false;
      },
      { intervalMs: 200, what: 'notifications/tools/list_changed at the SDK v1 client' },
    );
    assert.ok(received > 0, 'the SDK v1 client received notifications/tools/list_changed');
    assert.ok(
      fixture.upstream.requests.every((r) => r.httpMethod === 'POST'),
      'no GET reached the modern-only server: the listen is a POST',
    );
  });
});

describe('legacy requests → POST /proxy → modern-only server (bridged)', () => {
  let upstream: ModernServer;
  before(async () => {
    upstream = await startModernServer();
  });
  after(async () => {
    await upstream?.stop();
  });

  it('answers a 2025 initialize with a proxy session and an InitializeResult; calls work in it', async () => {
    const proxy = await startProxy({ HOST: '127.0.0.1' });
    try {
      const init = await postProxy(proxy, { mcp_server_url: upstream.url, ...INITIALIZE });
      assert.equal(init.status, 200, JSON.stringify(init.body));
      assert.equal(init.body.id, 'init');
      assert.equal(init.body.error, undefined, JSON.stringify(init.body));
      assert.equal(init.body.result.protocolVersion, LEGACY);
      assert.equal(init.body.result.serverInfo?.name, FIXTURE_NAME);
      assert.ok(init.body.result.capabilities?.tools, 'capabilities from server/discover');
      assert.equal(init.body.result.resultType, undefined);
      const sessionId = init.headers.get('mcp-session-id') ?? '';
      assert.match(sessionId, /^mcpp-/, 'a proxy session id');

      const initialized = await postProxy(
        proxy,
        { mcp_server_url: upstream.url, jsonrpc: '2.0', method: 'notifications/initialized' },
        { 'mcp-session-id': sessionId },
      );
      assert.equal(initialized.status, 202);

      const call = await postProxy(
        proxy,
        {
          mcp_server_url: upstream.url,
          jsonrpc: '2.0',
          id: 2,
          method: 'tools/call',
          params: { name: 'echo', arguments: { message: 'via proxy' } },
        },
        { 'mcp-session-id': sessionId },
      );
      assert.equal(call.status, 200, JSON.stringify(call.body));
      assert.equal(call.body.id, 2);
      assert.equal(textOf(call.body.result), 'Echo: via proxy');
      assert.equal(call.body.result.resultType, undefined, 'resultType is stripped');

      const weather = await postProxy(
        proxy,
        {
          mcp_server_url: upstream.url,
          jsonrpc: '2.0',
          id: 3,
          method: 'tools/call',
          params: { name: 'weather', arguments: { region: 'us' } },
        },
        { 'mcp-session-id': sessionId },
      );
      assert.equal(textOf(weather.body.result), 'Sunny in us (header: us)');
      assert.ok(
        !upstream.requests.some((r) => r.method === 'initialize' && r.status === 200),
        'the server accepted no initialize',
      );
    } finally {
      await proxy.close();
    }
  });

  it('answers a seed-style tools/list with no initialize and no session', async () => {
    // A fresh proxy: nothing is known of the server yet.
    const proxy = await startProxy({ HOST: '127.0.0.1' });
    try {
      const list = await postProxy(proxy, {
        mcp_server_url: upstream.url,
        jsonrpc: '2.0',
        id: 'seed',
        method: 'tools/list',
      });
      assert.equal(list.status, 200, JSON.stringify(list.body));
      assert.equal(list.body.id, 'seed');
      assert.equal(list.body.error, undefined, JSON.stringify(list.body));
      const names = (list.body.result.tools as Array<{ name: string }>).map((t) => t.name);
      assert.ok(names.includes('echo'), JSON.stringify(names));
      assert.equal(list.body.result.resultType, undefined, 'resultType is stripped');

      // Once known, the next body-only call goes straight to the bridge.
      const call = await postProxy(proxy, {
        mcp_server_url: upstream.url,
        jsonrpc: '2.0',
        id: 'seed-2',
        method: 'tools/call',
        params: { name: 'echo', arguments: { message: 'seed' } },
      });
      assert.equal(call.status, 200, JSON.stringify(call.body));
      assert.equal(textOf(call.body.result), 'Echo: seed');
      assert.equal(call.body.result.resultType, undefined);
    } finally {
      await proxy.close();
    }
  });
});

describe('legacy frames → WS /ws → modern-only server (bridged)', () => {
  const fixture = proxiedUpstream(() => startModernServer(), { HOST: '127.0.0.1', CORS_ORIGINS: APP });

  it('answers initialize, calls echo, and carries an elicitation round trip as frames', async () => {
    const peer = await connectWs(fixture.proxy, fixture.upstream.url, APP);
    try {
      peer.send(INITIALIZE);
      const init = await peer.next((f) => f.id === 'init');
      assert.equal(init.error, undefined, JSON.stringify(init));
      assert.equal(init.result.protocolVersion, LEGACY);
      assert.equal(init.result.serverInfo?.name, FIXTURE_NAME);
      peer.send({ jsonrpc: '2.0', method: 'notifications/initialized' });

      peer.send({
        jsonrpc: '2.0',
        id: 'echo',
        method: 'tools/call',
        params: { name: 'echo', arguments: { message: 'ws' } },
      });
      const echo = await peer.next((f) => f.id === 'echo');
      assert.equal(textOf(echo.result), 'Echo: ws', JSON.stringify(echo));
      assert.equal(echo.result.resultType, undefined);

      peer.send({
        jsonrpc: '2.0',
        id: 'confirm',
        method: 'tools/call',
        params: { name: 'confirm', arguments: { action: 'ship' } },
      });
      const ask = await peer.next((f) => f.method === 'elicitation/create');
      assert.notEqual(ask.id, undefined, 'a request the client must answer');
      assert.equal(ask.params.message, 'Really ship?');
      peer.send({ jsonrpc: '2.0', id: ask.id, result: ELICIT_ANSWER });
      const done = await peer.next((f) => f.id === 'confirm');
      assert.equal(textOf(done.result), 'Confirmed: ship (state confirm:ship)', JSON.stringify(done));
    } finally {
      await peer.close();
    }
    assert.ok(
      !fixture.upstream.requests.some((r) => r.method === 'initialize' && r.status === 200),
      'the server accepted no initialize',
    );
  });
});

describe('the era verdict is cached per upstream', () => {
  const fixture = proxiedUpstream(() => startModernServer(), { HOST: '127.0.0.1' });

  it('a second SDK v1 connect sends no refused initialize upstream', async () => {
    const first = await connectLegacyClient(fixture.proxy, fixture.upstream.url);
    try {
      assert.equal(first.client.getServerVersion()?.name, FIXTURE_NAME);
    } finally {
      await first.close();
    }
    const afterFirst = count(fixture.upstream, 'initialize');
    assert.ok(afterFirst <= 1, `the first connect sent ${afterFirst} initialize requests`);

    const second = await connectLegacyClient(fixture.proxy, fixture.upstream.url);
    try {
      assert.equal(second.client.getServerVersion()?.name, FIXTURE_NAME);
      const echo = await second.client.callTool({ name: 'echo', arguments: { message: 'cached' } });
      assert.equal(textOf(echo), 'Echo: cached');
    } finally {
      await second.close();
    }
    assert.equal(count(fixture.upstream, 'initialize'), afterFirst, 'the second connect sent no initialize');
    assert.ok(
      count(fixture.upstream, 'server/discover') >= 2,
      'each connect was answered from server/discover',
    );
  });
});

describe('a server pinned `protocol: modern` in the config', () => {
  let upstream: ModernServer;
  let proxy: RunningProxy;
  before(async () => {
    upstream = await startModernServer();
    const config = join(mkdtempSync(join(tmpdir(), 'mcp-proxy-era-')), 'proxy.yaml');
    writeFileSync(
      config,
      ['servers:', '  pinned:', `    url: ${upstream.url}`, '    protocol: modern', ''].join('\n'),
    );
    proxy = await startProxy({ HOST: '127.0.0.1', MCP_PROXY_CONFIG: config });
  });
  after(async () => {
    await proxy?.close();
    await upstream?.stop();
  });

  it('/servers/{name}/mcp: SDK v1 connects and works; the server never sees an initialize', async () => {
    const legacy = await connectLegacyClient(proxy, upstream.url, {
      path: '/servers/pinned/mcp',
      answerInput: true,
    });
    try {
      assert.equal(legacy.client.getServerVersion()?.name, FIXTURE_NAME);
      const echo = await legacy.client.callTool({ name: 'echo', arguments: { message: 'pinned' } });
      assert.equal(textOf(echo), 'Echo: pinned');
      const confirm = await legacy.client.callTool({ name: 'confirm', arguments: { action: 'pin' } });
      assert.equal(textOf(confirm), 'Confirmed: pin (state confirm:pin)');
    } finally {
      await legacy.close();
    }
    assert.equal(count(upstream, 'initialize'), 0, 'no initialize reached the server');
    assert.ok(count(upstream, 'server/discover') >= 1);
  });
});

describe('a modern client first, then a session client, to the same modern-only server', () => {
  const fixture = proxiedUpstream(() => startModernServer(), { HOST: '127.0.0.1' });

  it('/mcp: the session client is still bridged once modern traffic taught the proxy the transport', async () => {
    // POST /proxy records the transport (Streamable HTTP) on any success, modern requests included.
    const first = await postProxy(fixture.proxy, {
      mcp_server_url: fixture.upstream.url,
      ...modernRequest(1, 'tools/call', { name: 'echo', arguments: { message: 'first' } }),
    });
    assert.deepEqual(first.body.result.content, [{ type: 'text', text: 'Echo: first' }]);
    const modern = await connectModernClient(fixture.proxy, fixture.upstream.url);
    await modern.close();
    const legacy = await connectLegacyClient(fixture.proxy, fixture.upstream.url);
    try {
      assert.equal(legacy.client.getServerVersion()?.name, FIXTURE_NAME);
      const echo = await legacy.client.callTool({ name: 'echo', arguments: { message: 'second' } });
      assert.equal(textOf(echo), 'Echo: second');
    } finally {
      await legacy.close();
    }
  });
});
