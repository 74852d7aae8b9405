/**
 * Every client method against the real server-everything behind the real proxy. Defined once,
 * run per upstream kind (methods-streamable.test.ts, methods-sse.test.ts) and per transport.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SEALED_SESSION_PREFIX } from '../../../server/src/sessions/session-id-sealer.ts';
import {
  type MCPProxyClient,
  MCPProxyError,
  McpError,
  type TextContent,
  type TransportKind,
} from '../../src/index.ts';
import {
  collect,
  type RecordedCall,
  recordingFetch,
  type Stack,
  startStack,
  type UpstreamMode,
} from './stack.ts';

const ENDPOINTS = { http: 'POST /proxy', streamable: 'Streamable HTTP /mcp', ws: 'WebSocket /ws' } as const;

/** Resolves once `check()` holds (polling), or fails after 5 s. */
async function waitFor(check: () => boolean): Promise<void> {
  for (const started = Date.now(); !check(); ) {
    if (Date.now() - started > 5_000) assert.fail('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Registers the method suite for one upstream kind and one transport. */
export function methodSuite(mode: UpstreamMode, transport: TransportKind = 'http'): void {
  describe(`every method through ${ENDPOINTS[transport]} to a ${mode} server`, () => {
    let stack: Stack;
    let client: MCPProxyClient;
    let every: RecordedCall[];
    /** The POSTs the client made (the streamable transport also opens GET streams). */
    let calls: RecordedCall[];

    before(async () => {
      stack = await startStack(mode, { WS_ALLOW_MISSING_ORIGIN: 'true' });
      const recorder = recordingFetch();
      every = recorder.calls;
      calls = new Proxy(every, {
        get: (target, key) =>
          Reflect.get(
            target.filter((c) => c.method === 'POST'),
            key,
          ),
      });
      client = stack.client({ fetch: recorder.fetch, transport });
    });
    after(() => stack.close());

    it('initialize() returns the typed result, then sends notifications/initialized', async () => {
      const result = await client.initialize();
      assert.equal(result.protocolVersion, '2025-06-18');
      assert.equal(result.serverInfo.name, 'mcp-servers/everything');
      assert.ok(result.capabilities.tools, 'server announces tools');
      assert.equal(client.initializeResult, result);
      assert.equal(client.protocolVersion, '2025-06-18');
      if (transport === 'ws') {
        assert.equal(client.sessionId, undefined, 'over /ws the socket is the session');
        assert.equal(every.length, 0, 'no HTTP request');
        return;
      }
      assert.ok(client.sessionId, 'a session id was returned');
      if (mode === 'sse')
        assert.match(client.sessionId ?? '', /^mcpp-/, 'the proxy holds legacy SSE sessions');
      else if (transport === 'streamable')
        assert.ok(
          client.sessionId?.startsWith(SEALED_SESSION_PREFIX),
          "the upstream's own id, sealed by the proxy",
        );

      const [init, initialized] = calls;
      assert.equal(init?.body.method, 'initialize');
      assert.deepEqual(init?.body.params, {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'mcp-proxy-client', version: '0.1.0' },
      });
      assert.equal(init?.headers['x-proxy-token'], stack.proxy.token);
      assert.equal(init?.headers['mcp-session-id'], undefined, 'initialize starts without a session');
      if (transport === 'http') {
        assert.equal(init?.body.mcp_server_url, stack.upstream.url);
      } else {
        assert.equal(init?.url, `${stack.proxy.url}/mcp`);
        assert.equal(init?.headers['x-mcp-server-url'], stack.upstream.url);
        assert.equal(init?.headers.accept, 'application/json, text/event-stream');
        assert.equal(init?.body.mcp_server_url, undefined, 'a plain JSON-RPC message, no envelope');
      }
      assert.equal(initialized?.body.method, 'notifications/initialized');
      assert.equal(initialized?.body.id, undefined, 'a notification has no id');
      assert.equal(initialized?.status, 202);
    });

    // Over /ws the socket is the session: there are no HTTP requests to carry an id, so the
    // check exists only for the HTTP transports.
    const httpOnly = transport === 'ws' ? () => {} : it;
    httpOnly('sends the session id and protocol version back on every later call', async () => {
      const before = calls.length;
      await client.ping();
      const last = calls.at(-1);
      assert.equal(calls.length, before + 1);
      assert.equal(last?.headers['mcp-session-id'], client.sessionId);
      assert.equal(last?.headers['mcp-protocol-version'], '2025-06-18');
      assert.equal(last?.body.mcp_session_id, undefined, 'the session travels in headers');
    });

    it('listTools() and callTool(): echo and get-sum', async () => {
      const { tools } = await client.listTools();
      const names = tools.map((t) => t.name);
      assert.ok(names.includes('echo') && names.includes('get-sum'), names.join(','));
      assert.equal(tools.find((t) => t.name === 'echo')?.inputSchema.type, 'object');

      const echo = await client.callTool('echo', { message: 'héllo from the client' });
      assert.equal(echo.isError, undefined);
      const first = echo.content[0] as TextContent;
      assert.equal(first.type, 'text');
      assert.match(first.text, /héllo from the client/);

      const sum = await client.callTool('get-sum', { a: 19, b: 23 });
      assert.match((sum.content[0] as TextContent).text, /\b42\b/);
    });

    it("a tool's own failure is a result with isError, not a throw", async () => {
      const result = await client.callTool('no-such-tool', {});
      assert.equal(result.isError, true);
      assert.match((result.content[0] as TextContent).text, /not found/);
    });

    it('listResources(), readResource() and listResourceTemplates()', async () => {
      const { resources } = await client.listResources();
      const first = resources[0];
      assert.ok(first, 'at least one resource');
      const read = await client.readResource(first.uri);
      assert.equal(read.contents[0]?.uri, first.uri);
      const content = read.contents[0];
      assert.ok(content && ('text' in content || 'blob' in content), 'text or blob contents');

      const { resourceTemplates } = await client.listResourceTemplates();
      assert.ok(
        resourceTemplates.some((t) => t.uriTemplate === 'demo://resource/dynamic/text/{resourceId}'),
        resourceTemplates.map((t) => t.uriTemplate).join(','),
      );
      const dynamic = await client.readResource('demo://resource/dynamic/text/7');
      assert.equal(dynamic.contents[0]?.uri, 'demo://resource/dynamic/text/7');
    });

    it('subscribeResource() and unsubscribeResource()', async () => {
      const { resources } = await client.listResources();
      const uri = resources[0]?.uri ?? '';
      assert.deepEqual(await client.subscribeResource(uri), {});
      assert.deepEqual(await client.unsubscribeResource(uri), {});
    });

    it('listPrompts() and getPrompt(): simple-prompt and args-prompt', async () => {
      const { prompts } = await client.listPrompts();
      const names = prompts.map((p) => p.name);
      assert.ok(names.includes('simple-prompt') && names.includes('args-prompt'), names.join(','));

      const simple = await client.getPrompt('simple-prompt');
      assert.ok(simple.messages.length > 0);
      assert.equal(simple.messages[0]?.role, 'user');

      const withArgs = await client.getPrompt('args-prompt', { city: 'Lyon', state: 'Rhône' });
      assert.match(JSON.stringify(withArgs.messages), /Lyon/);
    });

    it('complete() on a prompt argument', async () => {
      const result = await client.complete(
        { type: 'ref/prompt', name: 'completable-prompt' },
        { name: 'department', value: 'Eng' },
      );
      assert.deepEqual(result.completion.values, ['Engineering']);
    });

    it('ping() and setLoggingLevel()', async () => {
      assert.deepEqual(await client.ping(), {});
      assert.deepEqual(await client.setLoggingLevel('warning'), {});
    });

    it('iterate() walks a whole listing; listTools({ cursor }) sends the cursor', async () => {
      const all = [];
      for await (const tool of client.iterate('tools')) all.push(tool.name);
      const { tools } = await client.listTools();
      assert.deepEqual(
        all,
        tools.map((t) => t.name),
      );
      const prompts = await collect(client.iterate('prompts'));
      assert.ok(prompts.some((p) => p.name === 'simple-prompt'));

      // server-everything does not paginate; an unknown cursor is its call, but it must arrive.
      await client.listTools({ cursor: 'page-2' }).catch((error: unknown) => {
        assert.ok(error instanceof McpError, String(error));
      });
      if (transport !== 'ws') assert.deepEqual(calls.at(-1)?.body.params, { cursor: 'page-2' });
    });

    it('request() is the typed escape hatch; notify() sends a notification', async () => {
      const listed = await client.request('tools/list');
      assert.ok(listed.tools.length > 0);
      const called = await client.request('tools/call', { name: 'get-sum', arguments: { a: 1, b: 2 } });
      assert.match((called.content[0] as TextContent).text, /\b3\b/);
      await client.notify('notifications/roots/list_changed');
      if (transport !== 'ws') assert.equal(calls.at(-1)?.status, 202);
    });

    it('a JSON-RPC error from the MCP server is an McpError with its numeric code', async () => {
      const error = await client.request('no/such-method', {}).then(
        () => assert.fail('expected an McpError'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof McpError);
      assert.equal(error.code, -32601);
      assert.ok(error instanceof MCPProxyError, 'one hierarchy');
      assert.equal(typeof error.code, 'number', 'a numeric code: the server said no, not the way to it');

      const prompt = await client.getPrompt('no-such-prompt').then(
        () => assert.fail('expected an McpError'),
        (e: unknown) => e,
      );
      assert.ok(prompt instanceof McpError);
      assert.equal(typeof prompt.code, 'number');
      assert.match(prompt.message, /no-such-prompt/);
    });

    it('initialize() again starts a new session', async () => {
      const previous = client.sessionId;
      await client.initialize();
      if (transport !== 'ws') {
        assert.ok(client.sessionId);
        assert.notEqual(client.sessionId, previous);
      }
      assert.deepEqual(await client.ping(), {});
      if (transport === 'streamable') {
        // The previous session was ended with DELETE (best effort, in the background).
        await waitFor(() =>
          every.some((c) => c.method === 'DELETE' && c.headers['mcp-session-id'] === previous),
        );
      }
    });

    it('close() ends the session', async () => {
      const session = client.sessionId;
      await client.close();
      if (transport === 'streamable') {
        assert.ok(
          every.some((c) => c.method === 'DELETE' && c.headers['mcp-session-id'] === session),
          'DELETE sent before close() resolved',
        );
      }
    });
  });
}
