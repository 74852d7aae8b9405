/**
 * Era bridging, modern client → session-era server: a 2026-07-28 client (the SDK v2 client
 * pinned to that version, or raw modern requests) reaches `server-everything` (SDK v1, session
 * era only) through `/mcp`, `POST /proxy` and `WS /ws`. The proxy holds the upstream session,
 * answers `server/discover` from its `InitializeResult`, and turns the server's own requests
 * (elicitation, sampling) into `InputRequiredResult` round trips. Also: servers that serve both
 * eras themselves are passed through untouched.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { COUNTER_URI } from './fixtures/feature-server.ts';
import { startModernServer } from './fixtures/modern-server.ts';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { startEverything } from './helpers/everything.ts';
import {
  connectLegacyClient,
  connectModernClient,
  connectWs,
  ELICIT_ANSWER,
  MODERN,
  mcpFetch,
  modernHeaders,
  modernRequest,
  SAMPLED_TEXT,
} from './helpers/modern-client.ts';
import { proxiedUpstream } from './helpers/proxied-upstream.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const APP = 'http://app.example.test';
const featureServerEntry = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));

/** Reads an SSE answer until `done` says so (or the stream ends); returns the JSON-RPC messages. */
// biome-ignore lint/suspicious/noExplicitAny: messages are arbitrary JSON.
type Message = any;

/** True for a JSON-RPC response. */
function isAnswer(message: Message): boolean {
  return message.result !== undefined || message.error !== undefined;
}

async function readEvents(
  response: Response,
  done: (message: Message) => boolean = isAnswer,
): Promise<Message[]> {
  const messages: Message[] = [];
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done: ended } = await reader.read();
    if (ended) return messages;
    buffer += decoder.decode(value, { stream: true });
    let cut = buffer.indexOf('\n\n');
    while (cut !== -1) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = event
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trim())
        .join('\n');
      if (data) {
        const message = JSON.parse(data);
        messages.push(message);
        if (done(message)) {
          await reader.cancel();
          return messages;
        }
      }
      cut = buffer.indexOf('\n\n');
    }
  }
}

describe('modern client → proxy → session-era server (server-everything)', () => {
  const fixture = proxiedUpstream(() => startEverything('streamableHttp'), {
    HOST: '127.0.0.1',
    CORS_ORIGINS: APP,
  });

  it('/mcp: the SDK v2 client pinned to 2026-07-28 discovers the server and lists and calls its tools', async () => {
    const modern = await connectModernClient(fixture.proxy, fixture.upstream.url);
    try {
      assert.equal(modern.client.getNegotiatedProtocolVersion(), MODERN);
      assert.equal(modern.client.getServerVersion()?.name, 'mcp-servers/everything');
      assert.match(modern.client.getInstructions() ?? '', /Everything Server/);
      const tools = await modern.client.listTools();
      assert.ok(tools.tools.some((tool) => tool.name === 'echo'));
      const echoed = await modern.client.callTool({ name: 'echo', arguments: { message: 'across eras' } });
      assert.deepEqual(echoed.content, [{ type: 'text', text: 'Echo: across eras' }]);
      const sum = await modern.client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
      assert.match(JSON.stringify(sum.content), /5/);
    } finally {
      await modern.close();
    }
  });

  it('/mcp: resources and prompts', async () => {
    const modern = await connectModernClient(fixture.proxy, fixture.upstream.url);
    try {
      const resources = await modern.client.listResources();
      const first = resources.resources[0];
      assert.ok(first, 'server-everything lists resources');
      const read = await modern.client.readResource({ uri: first.uri });
      assert.equal(read.contents[0]?.uri, first.uri);
      const prompts = await modern.client.listPrompts();
      assert.ok(prompts.prompts.some((p) => p.name === 'simple-prompt'));
      const prompt = await modern.client.getPrompt({ name: 'simple-prompt' });
      assert.ok(prompt.messages.length > 0);
    } finally {
      await modern.close();
    }
  });

  it("/mcp: the server's elicitation becomes an InputRequiredResult the SDK v2 client answers", async () => {
    const modern = await connectModernClient(fixture.proxy, fixture.upstream.url);
    try {
      const result = await modern.client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
      assert.equal(modern.elicitations.length, 1, 'the client was asked once');
      assert.match(JSON.stringify(modern.elicitations[0]), /message/);
      assert.match(JSON.stringify(result.content), /accept/i, JSON.stringify(result));
    } finally {
      await modern.close();
    }
  });

  it("/mcp: the server's sampling request becomes an InputRequiredResult the SDK v2 client answers", async () => {
    const modern = await connectModernClient(fixture.proxy, fixture.upstream.url);
    try {
      const result = await modern.client.callTool({
        name: 'trigger-sampling-request',
        arguments: { prompt: 'summarise', maxTokens: 20 },
      });
      assert.equal(modern.samplings.length, 1);
      assert.match(JSON.stringify(result.content), new RegExp(SAMPLED_TEXT));
    } finally {
      await modern.close();
    }
  });

  it('/mcp: progress notifications reach the modern client while a call runs', async () => {
    const modern = await connectModernClient(fixture.proxy, fixture.upstream.url);
    try {
      const progress: number[] = [];
      const result = await modern.client.callTool(
        { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } },
        { onprogress: (p) => progress.push(p.progress) },
      );
      assert.match(JSON.stringify(result.content), /completed/i);
      assert.deepEqual(progress, [1, 2, 3]);
    } finally {
      await modern.close();
    }
  });

  it('/mcp raw: a header/body disagreement is refused before anything goes upstream (-32020)', async () => {
    const body = modernRequest(1, 'tools/call', { name: 'echo', arguments: { message: 'x' } });
    const response = await mcpFetch(fixture.proxy, fixture.upstream.url, {
      body,
      headers: { ...modernHeaders(body), 'mcp-name': 'not-echo' },
    });
    assert.equal(response.status, 400);
    const answer = (await response.json()) as { error: { code: number } };
    assert.equal(answer.error.code, -32020);
  });

  it('/mcp raw: an InputRequiredResult carries a requestState handle; the retry completes the same upstream call', async () => {
    const call = modernRequest(7, 'tools/call', { name: 'trigger-elicitation-request', arguments: {} });
    const first = await mcpFetch(fixture.proxy, fixture.upstream.url, {
      body: call,
      headers: { ...modernHeaders(call), accept: 'application/json' },
    });
    assert.equal(first.status, 200);
    const pending = (await first.json()) as {
      id: number;
      result: { resultType: string; inputRequests: Record<string, { method: string }>; requestState: string };
    };
    assert.equal(pending.id, 7);
    assert.equal(pending.result.resultType, 'input_required');
    const [key, asked] = Object.entries(pending.result.inputRequests)[0] ?? [];
    assert.equal(asked?.method, 'elicitation/create');
    assert.match(pending.result.requestState, /^mcpp-state\./);

    const retry = modernRequest(8, 'tools/call', {
      name: 'trigger-elicitation-request',
      arguments: {},
      inputResponses: { [key as string]: ELICIT_ANSWER },
      requestState: pending.result.requestState,
    });
    const second = await mcpFetch(fixture.proxy, fixture.upstream.url, {
      body: retry,
      headers: { ...modernHeaders(retry), accept: 'application/json' },
    });
    const done = (await second.json()) as { id: number; result: { resultType: string; content: unknown } };
    assert.equal(done.id, 8, 'the answer goes to the retry');
    assert.equal(done.result.resultType, 'complete');
    assert.match(JSON.stringify(done.result.content), /accept/i);

    // The handle is single-use: the call is over.
    const again = await mcpFetch(fixture.proxy, fixture.upstream.url, {
      body: { ...retry, id: 9 },
      headers: { ...modernHeaders(retry), accept: 'application/json' },
    });
    const refused = (await again.json()) as { error: { code: number; message: string } };
    assert.equal(refused.error.code, -32602);
    assert.match(refused.error.message, /requestState/);
  });

  it('/mcp raw: closing the response stream cancels the call upstream (the session stays usable)', async () => {
    const controller = new AbortController();
    const call = modernRequest(
      11,
      'tools/call',
      { name: 'trigger-long-running-operation', arguments: { duration: 30, steps: 30 } },
      { progressToken: 'p-11' },
    );
    const response = await mcpFetch(fixture.proxy, fixture.upstream.url, {
      body: call,
      headers: modernHeaders(call),
      signal: controller.signal,
    });
    assert.equal(response.headers.get('content-type'), 'text/event-stream');
    const seen = await readEvents(response, (m) => m.method === 'notifications/progress');
    assert.equal(seen[0]?.params?.progressToken, 'p-11', 'progress carries the caller token back');
    controller.abort();
    // The pooled session answers the next request at once.
    const next = modernRequest(12, 'tools/call', { name: 'echo', arguments: { message: 'after cancel' } });
    const answer = await mcpFetch(fixture.proxy, fixture.upstream.url, {
      body: next,
      headers: { ...modernHeaders(next), accept: 'application/json' },
    });
    const body = (await answer.json()) as { id: number; result: { content: unknown } };
    assert.equal(body.id, 12);
    assert.deepEqual(body.result.content, [{ type: 'text', text: 'Echo: after cancel' }]);
  });

  it('/mcp raw: subscriptions/listen is acknowledged with what the server can honour', async () => {
    const listen = modernRequest('L', 'subscriptions/listen', {
      notifications: {
        toolsListChanged: true,
        resourcesListChanged: true,
        resourceSubscriptions: ['demo://resource/static/document/architecture.md'],
      },
    });
    const controller = new AbortController();
    const response = await mcpFetch(fixture.proxy, fixture.upstream.url, {
      body: listen,
      headers: modernHeaders(listen),
      signal: controller.signal,
    });
    assert.equal(response.status, 200);
    const seen = await readEvents(response, (m) => m.method === 'notifications/subscriptions/acknowledged');
    controller.abort();
    assert.equal(seen.length, 1, `only the stream's own messages: ${JSON.stringify(seen)}`);
    const ack = seen[0];
    assert.equal(ack.params._meta['io.modelcontextprotocol/subscriptionId'], 'L');
    assert.equal(ack.params.notifications.toolsListChanged, true);
    assert.deepEqual(ack.params.notifications.resourceSubscriptions, [
      'demo://resource/static/document/architecture.md',
    ]);
  });

  it('POST /proxy: modern envelopes are served through a pooled session; an input round completes', async () => {
    const discover = await postProxy(fixture.proxy, {
      mcp_server_url: fixture.upstream.url,
      ...modernRequest(1, 'server/discover'),
    });
    assert.equal(discover.status, 200, JSON.stringify(discover.body));
    assert.deepEqual(discover.body.result.supportedVersions, [MODERN]);
    assert.equal(
      discover.body.result._meta['io.modelcontextprotocol/serverInfo'].name,
      'mcp-servers/everything',
    );

    const echoed = await postProxy(fixture.proxy, {
      mcp_server_url: fixture.upstream.url,
      ...modernRequest(2, 'tools/call', { name: 'echo', arguments: { message: 'via /proxy' } }),
    });
    assert.equal(echoed.body.id, 2);
    assert.equal(echoed.body.result.resultType, 'complete');
    assert.deepEqual(echoed.body.result.content, [{ type: 'text', text: 'Echo: via /proxy' }]);
    assert.equal(echoed.headers.get('mcp-session-id'), null, 'a modern caller gets no session id');

    const asked = await postProxy(fixture.proxy, {
      mcp_server_url: fixture.upstream.url,
      ...modernRequest(3, 'tools/call', { name: 'trigger-elicitation-request', arguments: {} }),
    });
    assert.equal(asked.body.result.resultType, 'input_required', JSON.stringify(asked.body));
    const [key] = Object.keys(asked.body.result.inputRequests);
    const done = await postProxy(fixture.proxy, {
      mcp_server_url: fixture.upstream.url,
      ...modernRequest(4, 'tools/call', {
        name: 'trigger-elicitation-request',
        arguments: {},
        inputResponses: { [key as string]: ELICIT_ANSWER },
        requestState: asked.body.result.requestState,
      }),
    });
    assert.equal(done.body.id, 4);
    assert.equal(done.body.result.resultType, 'complete');
    assert.match(JSON.stringify(done.body.result.content), /accept/i);
  });

  it("WS /ws: modern frames are served through the socket's own upstream session", async () => {
    const peer = await connectWs(fixture.proxy, fixture.upstream.url, APP);
    try {
      peer.send(modernRequest('d', 'server/discover'));
      const discovered = await peer.next((f) => f.id === 'd');
      assert.deepEqual(discovered.result.supportedVersions, [MODERN], JSON.stringify(discovered));
      peer.send(modernRequest('e', 'tools/call', { name: 'echo', arguments: { message: 'ws' } }));
      const echoed = await peer.next((f) => f.id === 'e');
      assert.deepEqual(echoed.result.content, [{ type: 'text', text: 'Echo: ws' }]);
      assert.equal(echoed.result.resultType, 'complete');

      peer.send(modernRequest('q', 'tools/call', { name: 'trigger-elicitation-request', arguments: {} }));
      const asked = await peer.next((f) => f.id === 'q');
      assert.equal(asked.result.resultType, 'input_required');
      assert.ok(
        !peer.frames.some((f) => f.method === 'elicitation/create'),
        'no server request reaches a modern client',
      );
      const [key] = Object.keys(asked.result.inputRequests);
      peer.send(
        modernRequest('r', 'tools/call', {
          name: 'trigger-elicitation-request',
          arguments: {},
          inputResponses: { [key as string]: ELICIT_ANSWER },
          requestState: asked.result.requestState,
        }),
      );
      const done = await peer.next((f) => f.id === 'r');
      assert.match(JSON.stringify(done.result.content), /accept/i);
    } finally {
      await peer.close();
    }
  });
});

describe('modern client → proxy → configured stdio server (SDK v1 feature fixture)', () => {
  let proxy: RunningProxy;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-eras-'));
    const configPath = join(dir, 'proxy.yaml');
    writeFileSync(
      configPath,
      [
        'servers:',
        '  feat:',
        `    command: ${JSON.stringify(process.execPath)}`,
        `    args: [${JSON.stringify(featureServerEntry)}]`,
        `    env: ${JSON.stringify(compileCacheEnv())}`,
      ].join('\n'),
    );
    proxy = await startProxy({ HOST: '127.0.0.1', CORS_ORIGINS: APP, MCP_PROXY_CONFIG: configPath });
  });
  after(async () => {
    await proxy?.close();
  });

  it('WS /ws: the in-band probe finds a session-era server; notifications/cancelled cancels the call upstream', async () => {
    const peer = await connectWs(proxy, { server: 'feat' }, APP);
    try {
      peer.send(modernRequest('d', 'server/discover'));
      const discovered = await peer.next((f) => f.id === 'd');
      assert.deepEqual(discovered.result.supportedVersions, [MODERN], JSON.stringify(discovered));
      peer.send(
        modernRequest(
          'slow',
          'tools/call',
          { name: 'slow', arguments: { ms: 20_000 } },
          { progressToken: 'w' },
        ),
      );
      const started = await peer.next((f) => f.method === 'notifications/progress');
      assert.equal(started.params.progressToken, 'w');
      peer.send({
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: 'slow', reason: 'user' },
      });
      // The server records the cancellation under the id the proxy sent it (not the client's).
      let observed: Array<{ requestId: unknown }> = [];
      for (let attempt = 0; attempt < 20 && observed.length === 0; attempt++) {
        peer.send(modernRequest(`c${attempt}`, 'tools/call', { name: 'cancellations', arguments: {} }));
        const listed = await peer.next((f) => f.id === `c${attempt}`);
        observed = JSON.parse(listed.result.content[0].text);
        if (observed.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(observed.length, 1, 'the server saw the cancellation');
      assert.match(String(observed[0]?.requestId), /^mcpp-call-/);
      assert.ok(!peer.frames.some((f) => f.id === 'slow'), 'a cancelled request gets no answer');
    } finally {
      await peer.close();
    }
  });

  it('/servers/{name}/mcp: subscriptions/listen delivers resources/updated stamped with the subscription id', async () => {
    const listen = modernRequest('sub-1', 'subscriptions/listen', {
      notifications: { resourceSubscriptions: [COUNTER_URI] },
    });
    const controller = new AbortController();
    const headers = {
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      'x-proxy-token': proxy.token,
    };
    const stream = await fetch(`${proxy.url}/servers/feat/mcp`, {
      method: 'POST',
      headers: { ...headers, ...modernHeaders(listen) },
      body: JSON.stringify(listen),
      signal: controller.signal,
    });
    assert.equal(stream.status, 200);
    const reading = readEvents(stream, (m) => m.method === 'notifications/resources/updated');
    const touch = modernRequest('t', 'tools/call', { name: 'touch', arguments: {} });
    // Same client envelope: the same pooled upstream session, which holds the subscription.
    const touched = await fetch(`${proxy.url}/servers/feat/mcp`, {
      method: 'POST',
      headers: { ...headers, ...modernHeaders(touch), accept: 'application/json' },
      body: JSON.stringify(touch),
    });
    assert.equal(touched.status, 200);
    const seen = await reading;
    controller.abort();
    const [ack] = seen;
    assert.equal(ack.method, 'notifications/subscriptions/acknowledged');
    assert.deepEqual(ack.params.notifications.resourceSubscriptions, [COUNTER_URI]);
    const updated = seen.at(-1);
    assert.equal(updated.params.uri, COUNTER_URI);
    assert.equal(updated.params._meta['io.modelcontextprotocol/subscriptionId'], 'sub-1');
  });
});

describe('each era served natively where the server speaks it', () => {
  const fixture = proxiedUpstream(() => startModernServer({ legacy: 'stateless' }), {
    HOST: '127.0.0.1',
    CORS_ORIGINS: APP,
  });

  it('/mcp: SDK v1 → dual-era server: the server serves 2025 itself (no bridging)', async () => {
    const legacy = await connectLegacyClient(fixture.proxy, fixture.upstream.url);
    try {
      assert.equal(legacy.client.getServerVersion()?.name, 'mcp-proxy-modern-fixture');
      const result = await legacy.client.callTool({ name: 'echo', arguments: { message: 'old' } });
      assert.deepEqual(result.content, [{ type: 'text', text: 'Echo: old' }]);
    } finally {
      await legacy.close();
    }
    assert.ok(fixture.upstream.requests.some((r) => r.method === 'initialize' && r.status === 200));
    assert.ok(
      !fixture.upstream.requests.some((r) => r.method === 'server/discover'),
      'the proxy did not bridge',
    );
  });

  it('/mcp: SDK v2 → dual-era server stays modern end to end', async () => {
    const seenBefore = fixture.upstream.requests.length;
    const modern = await connectModernClient(fixture.proxy, fixture.upstream.url);
    try {
      const result = await modern.client.callTool({ name: 'echo', arguments: { message: 'new' } });
      assert.deepEqual(result.content, [{ type: 'text', text: 'Echo: new' }]);
    } finally {
      await modern.close();
    }
    const calls = fixture.upstream.requests.slice(seenBefore).filter((r) => r.method === 'tools/call');
    assert.ok(calls.length > 0 && calls.every((r) => r.headers['mcp-protocol-version'] === MODERN));
  });
});
