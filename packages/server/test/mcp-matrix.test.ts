/**
 * Issue #5's feature × transport matrix: the official SDK client, speaking Streamable HTTP to the
 * proxy's `/mcp` endpoint, reaches `server-everything` upstream over Streamable HTTP (stateless
 * pass-through), legacy HTTP+SSE and stdio (session bridge), and the SDK-built feature fixture
 * over WebSocket (session bridge). One `describe` per upstream transport, one `it` per feature,
 * so the results read as the table's columns and rows; a row that cannot apply to a column is
 * skipped with its reason. Where server-everything cannot show something (a server→client ping,
 * a cancellation seen upstream, a crash), the stdio column also runs the feature fixture over
 * stdio, and the Streamable HTTP column uses the conformance fixture where server-everything
 * departs from the spec (404 after DELETE) or is never quiet. Columns run side by side.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { startConformanceServer } from './fixtures/conformance-server.ts';
import { COUNTER_URI } from './fixtures/feature-server.ts';
import { startWsUpstream, type WsUpstream } from './fixtures/ws-upstream.ts';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { eventually } from './helpers/eventually.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import {
  CLIENT_ROOT,
  type ConnectedClient,
  connectClient,
  ELICITED_NAME,
  type ProxyTarget,
  postRaw,
  SAMPLING_MODEL,
  serverTarget,
  urlTarget,
} from './helpers/mcp-client.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

/** A second valid proxy token, to show sessions are bound to the token that opened them. */
const SECOND_TOKEN = 'matrix-second-token-0123456789abcdef';
/** Within how long server-everything's 5 s simulated updates/logs must show up. */
const PERIODIC_WAIT_MS = 12_000;
/** Per-request timeout: a hang fails the test quickly rather than after the SDK's 60 s. */
const REQUEST = { timeout: 15_000 } as const;

const require = createRequire(import.meta.url);
const everythingEntry = join(
  dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')),
  'dist/index.js',
);
const featureServerEntry = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));

/** What one upstream server offers, so one feature test runs against either server. */
interface Profile {
  readonly serverName: string;
  readonly echo: string;
  /** A tool that reports three progress steps quickly. */
  readonly progress: { readonly name: string; readonly arguments: Record<string, unknown> };
  /** A tool that runs long and reports progress at least once a second. */
  readonly longRunning: { readonly name: string; readonly arguments: Record<string, unknown> };
  /** A resource to read and subscribe to, and how to make the server report it updated. */
  readonly subscription: {
    readonly uri: (client: Client) => Promise<string>;
    /** Makes the server send one update during the call and another later, outside any request. */
    readonly start: (client: Client) => Promise<void>;
    readonly stop: (client: Client) => Promise<void>;
    /** How long both updates may take. */
    readonly withinMs: number;
  };
  /** A tool that reports the roots the server obtained from the client after initialization. */
  readonly roots: string;
  readonly prompt: {
    readonly name: string;
    readonly arguments: Record<string, string>;
    readonly text: RegExp;
  };
  readonly completion: {
    readonly prompt: string;
    readonly argument: string;
    readonly value: string;
    readonly expected: string[];
  };
  readonly sampling: { readonly name: string; readonly arguments: Record<string, unknown> };
  readonly elicitation: string;
}

/** `@modelcontextprotocol/server-everything`. */
const EVERYTHING: Profile = {
  serverName: 'mcp-servers/everything',
  echo: 'echo',
  progress: { name: 'trigger-long-running-operation', arguments: { duration: 0.6, steps: 3 } },
  longRunning: { name: 'trigger-long-running-operation', arguments: { duration: 20, steps: 40 } },
  subscription: {
    uri: async (client) => {
      const { resources } = await client.listResources(undefined, REQUEST);
      const first = resources.find((r) => r.uri.startsWith('demo://resource/static/'));
      assert.ok(first, 'server-everything lists its static documents');
      return first.uri;
    },
    // The toggle sends one update at once, then one every 5 s.
    start: (client) => callQuietly(client, 'toggle-subscriber-updates'),
    stop: (client) => callQuietly(client, 'toggle-subscriber-updates'),
    withinMs: PERIODIC_WAIT_MS,
  },
  roots: 'get-roots-list',
  prompt: { name: 'args-prompt', arguments: { city: 'Paris' }, text: /What's weather in Paris\?/ },
  completion: {
    prompt: 'completable-prompt',
    argument: 'department',
    value: 'Eng',
    expected: ['Engineering'],
  },
  sampling: { name: 'trigger-sampling-request', arguments: { prompt: 'matrix says hi', maxTokens: 20 } },
  elicitation: 'trigger-elicitation-request',
};

/** The SDK-built feature fixture (`fixtures/feature-server.ts`). */
const FIXTURE: Profile = {
  serverName: 'mcp-proxy-feature-fixture',
  echo: 'echo',
  progress: { name: 'progress', arguments: { steps: 3, intervalMs: 30 } },
  longRunning: { name: 'progress', arguments: { steps: 20, intervalMs: 500 } },
  subscription: {
    uri: async () => COUNTER_URI,
    start: async (client) => {
      await callQuietly(client, 'touch');
      await callQuietly(client, 'touch', { delayMs: 200 });
    },
    stop: async () => {},
    withinMs: 5_000,
  },
  roots: 'roots',
  prompt: { name: 'greet', arguments: { name: 'Alice' }, text: /Hello, Alice!/ },
  completion: { prompt: 'greet', argument: 'name', value: 'Al', expected: ['Alice', 'Alan'] },
  sampling: { name: 'sample', arguments: { prompt: 'matrix says hi' } },
  elicitation: 'elicit',
};

/** One upstream transport's running world. */
interface Env {
  readonly proxy: RunningProxy;
  /** The server the column is about. */
  readonly target: ProxyTarget;
  readonly profile: Profile;
  /** The feature fixture over the same transport, when there is one. */
  readonly fixture?: ProxyTarget;
  readonly ws?: WsUpstream;
  /**
   * Where DELETE is checked, when not `target`: server-everything answers a terminated session
   * with 400, not the spec's 404 (basic/transports#session-management), and the stateless
   * pass-through relays the upstream's answer, so that column uses the conformance fixture.
   */
  readonly terminable?: ProxyTarget;
  /**
   * Called before DELETE on a session of `terminable ?? target`: resolves to a probe that turns
   * true once the upstream side (connection, process) has ended. Undefined when unobservable.
   */
  readonly watchEnd?: (c: ConnectedClient) => Promise<() => boolean>;
  /** A server over the same transport that sends nothing unprompted (to clients without roots). */
  readonly quiet?: ProxyTarget;
  /** Another upstream reached over the same transport, where this column's session ids are foreign. */
  readonly elsewhere: ProxyTarget;
}

/** Registers how to stop something a setup started; stopped newest first, even if setup fails. */
type Defer = (stop: () => Promise<unknown>) => void;

/** One column of the table. */
interface TransportCase {
  readonly name: string;
  readonly kind: 'streamable-http' | 'sse' | 'stdio' | 'websocket';
  /** The session id the proxy hands out: sealed pass-through or proxy-held bridge. */
  readonly sessionId: RegExp;
  setup(defer: Defer): Promise<Env>;
  /**
   * Opens a session, makes its upstream die, checks the caller hears about it clearly, and
   * returns the (still open) client.
   */
  readonly upstreamDies: (env: Env) => Promise<ConnectedClient>;
}

const SEALED = /^mcpp2\.[\w-]+$/;
const BRIDGED = /^mcpp-[\w-]{20,}$/;

const CASES: TransportCase[] = [
  {
    name: 'Streamable HTTP (server-everything, pass-through)',
    kind: 'streamable-http',
    sessionId: SEALED,
    setup: async (defer) => {
      const upstream = await startEverything('streamableHttp');
      defer(() => upstream.stop());
      const conformance = await startConformanceServer();
      defer(() => conformance.stop());
      const proxy = await startProxy({ HOST: '127.0.0.1', PROXY_TOKENS: SECOND_TOKEN });
      defer(() => proxy.close());
      return {
        proxy,
        target: urlTarget(upstream.url),
        profile: EVERYTHING,
        terminable: urlTarget(conformance.url),
        quiet: urlTarget(conformance.url),
        elsewhere: urlTarget(conformance.url),
      };
    },
    upstreamDies: async (env) => {
      const upstream = stopOnce(await startEverything('streamableHttp'));
      try {
        return await closingOnFailure(await connectClient(env.proxy, urlTarget(upstream.url)), async (c) => {
          // The relayed GET stream answers once the server's roots/list crosses it; if that went
          // out before the stream was up, the stream stays silent and unanswered (see the "answers
          // at once" row), but it has reached the server well within this wait.
          await c.standaloneOpened(2_000).catch(() => {});
          await upstream.stop();
          // Stateless pass-through: the next request finds the server gone.
          await assert.rejects(
            c.client.callTool({ name: 'echo', arguments: { message: 'x' } }, undefined, REQUEST),
            {
              code: 502,
              message: /Could not connect to the MCP server.*upstream_unreachable/s,
            },
          );
        });
      } finally {
        await upstream.stop();
      }
    },
  },
  {
    name: 'legacy SSE (server-everything, bridged)',
    kind: 'sse',
    sessionId: BRIDGED,
    setup: async (defer) => {
      const upstream = await startEverything('sse');
      defer(() => upstream.stop());
      const proxy = await startProxy({ HOST: '127.0.0.1', PROXY_TOKENS: SECOND_TOKEN });
      defer(() => proxy.close());
      return {
        proxy,
        target: urlTarget(upstream.url),
        profile: EVERYTHING,
        // Same server, another URL: a session belongs to the URL it was opened for.
        elsewhere: urlTarget(`${upstream.url}?elsewhere=1`),
      };
    },
    upstreamDies: async (env) => {
      const upstream = stopOnce(await startEverything('sse'));
      try {
        return await closingOnFailure(
          await connectClient(env.proxy, urlTarget(upstream.url, 'sse')),
          async (c) => {
            await c.standaloneOpened(5_000);
            const started = Date.now();
            const call = c.client.callTool(
              { name: 'trigger-long-running-operation', arguments: { duration: 20, steps: 2 } },
              undefined,
              REQUEST,
            );
            const failed = assert.rejects(call, upstreamGone(/The MCP server closed the connection/));
            await sleep(300);
            await upstream.stop();
            await failed;
            assert.ok(Date.now() - started < 10_000, 'the in-flight call fails at once, not at a timeout');
          },
        );
      } finally {
        await upstream.stop();
      }
    },
  },
  {
    name: 'stdio (server-everything, bridged)',
    kind: 'stdio',
    sessionId: BRIDGED,
    setup: async (defer) => {
      const dir = await mkdtemp(join(tmpdir(), 'mcp-matrix-'));
      defer(() => rm(dir, { recursive: true, force: true }));
      const config = join(dir, 'proxy.json');
      await writeFile(
        config,
        JSON.stringify({
          servers: {
            everything: {
              command: process.execPath,
              args: [everythingEntry, 'stdio'],
              env: compileCacheEnv(),
            },
            fixture: { command: process.execPath, args: [featureServerEntry], env: compileCacheEnv() },
            'exits-early': {
              command: process.execPath,
              args: ['-e', 'setTimeout(() => process.exit(3), 300)'],
            },
          },
        }),
      );
      const proxy = await startProxy({
        HOST: '127.0.0.1',
        PROXY_TOKENS: SECOND_TOKEN,
        MCP_PROXY_CONFIG: config,
      });
      defer(() => proxy.close());
      return {
        proxy,
        target: serverTarget('everything'),
        profile: EVERYTHING,
        fixture: serverTarget('fixture'),
        terminable: serverTarget('fixture'),
        quiet: serverTarget('fixture'),
        watchEnd: async (c) => {
          const pid = Number(
            textOf(await c.client.callTool({ name: 'pid', arguments: {} }, undefined, REQUEST)),
          );
          assert.ok(Number.isInteger(pid) && pid !== process.pid);
          return () => !processAlive(pid);
        },
        elsewhere: serverTarget('fixture'),
      };
    },
    upstreamDies: async (env) => {
      return closingOnFailure(await connectClient(env.proxy, serverTarget('fixture')), async (c) => {
        await c.standaloneOpened(5_000);
        await assert.rejects(
          c.client.callTool({ name: 'crash', arguments: {} }, undefined, REQUEST),
          upstreamGone(/The MCP server "fixture" exited with code 3\./),
        );
      });
    },
  },
  {
    name: 'WebSocket (feature fixture, bridged)',
    kind: 'websocket',
    sessionId: BRIDGED,
    setup: async (defer) => {
      const ws = await startWsUpstream();
      defer(() => ws.stop());
      const proxy = await startProxy({ HOST: '127.0.0.1', PROXY_TOKENS: SECOND_TOKEN });
      defer(() => proxy.close());
      const target = urlTarget(ws.url);
      return {
        proxy,
        target,
        profile: FIXTURE,
        fixture: target,
        quiet: target,
        ws,
        watchEnd: async () => {
          const connection = ws.connections.at(-1);
          assert.ok(connection && !connection.closed);
          return () => connection.closed;
        },
        elsewhere: urlTarget(`${ws.url}?elsewhere=1`),
      };
    },
    upstreamDies: async (env) => {
      return closingOnFailure(await connectClient(env.proxy, env.target), async (c) => {
        await c.standaloneOpened(5_000);
        await assert.rejects(
          c.client.callTool({ name: 'crash', arguments: {} }, undefined, REQUEST),
          upstreamGone(/The MCP server connection closed\./),
        );
      });
    },
  },
];

/** One row of the table: runs against a fresh client, or says why it does not apply. */
interface Feature {
  readonly name: string;
  /** A reason when the feature cannot be exercised on this column. */
  readonly skip?: (env: Env, transport: TransportCase) => string | undefined;
  run(env: Env, transport: TransportCase): Promise<void>;
}

const NO_FIXTURE = 'server-everything has no tool for this and no feature fixture runs over this transport';

const FEATURES: Feature[] = [
  {
    name: 'initialize',
    run: (env, transport) =>
      withClient(env, env.target, async (c) => {
        assert.equal(c.client.getServerVersion()?.name, env.profile.serverName);
        const capabilities = c.client.getServerCapabilities();
        assert.ok(
          capabilities?.tools && capabilities.resources && capabilities.prompts && capabilities.logging,
        );
        assert.match(c.transport.sessionId ?? '', transport.sessionId);
        assert.equal(c.transport.protocolVersion, '2025-11-25');
      }),
  },
  {
    name: 'tools/list and tools/call',
    run: (env) =>
      withClient(env, env.target, async (c) => {
        const { tools } = await c.client.listTools(undefined, REQUEST);
        const names = tools.map((t) => t.name);
        for (const name of [env.profile.echo, env.profile.sampling.name, env.profile.elicitation]) {
          assert.ok(names.includes(name), `${name} is listed`);
        }
        const result = await c.client.callTool(
          { name: env.profile.echo, arguments: { message: 'hello matrix' } },
          undefined,
          REQUEST,
        );
        assert.deepEqual(result.content, [{ type: 'text', text: 'Echo: hello matrix' }]);
      }),
  },
  {
    name: 'long-running tool with progress notifications',
    run: (env) =>
      withClient(env, env.target, async (c) => {
        const progress: Array<{ progress: number; total?: number | undefined }> = [];
        const result = await c.client.callTool(
          { name: env.profile.progress.name, arguments: env.profile.progress.arguments },
          undefined,
          { ...REQUEST, onprogress: (p) => progress.push({ progress: p.progress, total: p.total }) },
        );
        assert.deepEqual(progress, [
          { progress: 1, total: 3 },
          { progress: 2, total: 3 },
          { progress: 3, total: 3 },
        ]);
        assert.match(textOf(result), /complete/i);
      }),
  },
  {
    name: 'tool call cancelled midway with an AbortSignal',
    run: (env) =>
      withClient(env, env.target, async (c) => {
        const controller = new AbortController();
        const started = Date.now();
        let progressSeen = 0;
        const call = c.client.callTool(
          { name: env.profile.longRunning.name, arguments: env.profile.longRunning.arguments },
          undefined,
          {
            ...REQUEST,
            signal: controller.signal,
            // Abort once the server has shown it is working on the call.
            onprogress: () => {
              progressSeen += 1;
              controller.abort('matrix gave up');
            },
          },
        );
        await assert.rejects(call, { name: 'McpError', message: /matrix gave up/ });
        assert.equal(progressSeen, 1);
        assert.ok(
          Date.now() - started < 10_000,
          'the call ends at the abort, not at the end of the operation',
        );
        // The session survives the cancellation.
        const echoed = await c.client.callTool(
          { name: env.profile.echo, arguments: { message: 'still here' } },
          undefined,
          REQUEST,
        );
        assert.equal(textOf(echoed), 'Echo: still here');
      }),
  },
  {
    name: 'cancellation reaches the upstream server',
    skip: (env) => (env.fixture ? undefined : NO_FIXTURE),
    run: (env) =>
      withClient(env, env.fixture as ProxyTarget, async (c) => {
        const reason = `cancelled by matrix ${Math.random().toString(36).slice(2)}`;
        const controller = new AbortController();
        const call = c.client.callTool({ name: 'slow', arguments: { ms: 20_000 } }, undefined, {
          ...REQUEST,
          signal: controller.signal,
          // Cancel once the server is known to be running the call.
          onprogress: () => controller.abort(reason),
        });
        await assert.rejects(call, { name: 'McpError', message: new RegExp(reason) });
        const observed = await eventually(
          async () => {
            const result = await c.client.callTool(
              { name: 'cancellations', arguments: {} },
              undefined,
              REQUEST,
            );
            const list = JSON.parse(textOf(result)) as Array<{ requestId: unknown; reason: string }>;
            return list.find((entry) => entry.reason === reason);
          },
          { timeoutMs: 5_000, intervalMs: 50 },
        );
        assert.ok(observed, 'the server saw notifications/cancelled with the client’s reason');
      }),
  },
  {
    name: 'resources/list and resources/read',
    run: (env) =>
      withClient(env, env.target, async (c) => {
        const uri = await env.profile.subscription.uri(c.client);
        const { resources } = await c.client.listResources(undefined, REQUEST);
        assert.ok(resources.some((r) => r.uri === uri));
        const { contents } = await c.client.readResource({ uri }, REQUEST);
        const first = contents[0];
        assert.equal(first?.uri, uri);
        assert.ok(first && 'text' in first && first.text.length > 0, 'a non-empty text resource');
      }),
  },
  {
    name: 'resources/subscribe → resources/updated (on the call’s stream and the standalone stream)',
    run: (env) =>
      withClient(env, env.target, async (c) => {
        const { subscription } = env.profile;
        const uri = await subscription.uri(c.client);
        await c.client.subscribeResource({ uri }, REQUEST);
        await subscription.start(c.client);
        try {
          // The second update comes while no request is open: only the GET stream can carry it.
          const updates = await c.notifications.waitForCount(
            'notifications/resources/updated',
            2,
            subscription.withinMs,
            (n) => n.params?.uri === uri,
          );
          assert.ok(updates.every((n) => n.params?.uri === uri));
        } finally {
          await subscription.stop(c.client);
        }
        await c.client.unsubscribeResource({ uri }, REQUEST);
      }),
  },
  {
    name: 'prompts/list and prompts/get',
    run: (env) =>
      withClient(env, env.target, async (c) => {
        const { prompts } = await c.client.listPrompts(undefined, REQUEST);
        assert.ok(prompts.some((p) => p.name === env.profile.prompt.name));
        const prompt = await c.client.getPrompt(
          { name: env.profile.prompt.name, arguments: env.profile.prompt.arguments },
          REQUEST,
        );
        const content = prompt.messages[0]?.content;
        assert.equal(content?.type, 'text');
        assert.match(content?.type === 'text' ? content.text : '', env.profile.prompt.text);
      }),
  },
  {
    name: 'completion/complete',
    run: (env) =>
      withClient(env, env.target, async (c) => {
        const { completion } = env.profile;
        const result = await c.client.complete(
          {
            ref: { type: 'ref/prompt', name: completion.prompt },
            argument: { name: completion.argument, value: completion.value },
          },
          REQUEST,
        );
        assert.deepEqual(result.completion.values, completion.expected);
      }),
  },
  {
    name: 'logging/setLevel and log notifications',
    run: (env) =>
      withClient(env, env.target, async (c) => {
        if (env.profile === FIXTURE) {
          await c.client.setLoggingLevel('warning', REQUEST);
          await c.client.callTool(
            { name: 'log', arguments: { level: 'info', data: 'quiet' } },
            undefined,
            REQUEST,
          );
          await c.client.callTool(
            { name: 'log', arguments: { level: 'error', data: 'loud' } },
            undefined,
            REQUEST,
          );
          const message = await c.notifications.waitFor('notifications/message', 5_000);
          assert.deepEqual(message.params, { level: 'error', logger: 'fixture', data: 'loud' });
          assert.equal(c.notifications.all('notifications/message').length, 1, 'info is below the set level');
          return;
        }
        await c.client.setLoggingLevel('debug', REQUEST);
        await c.client.callTool({ name: 'toggle-simulated-logging', arguments: {} }, undefined, REQUEST);
        try {
          const message = await c.notifications.waitFor('notifications/message', PERIODIC_WAIT_MS, (n) =>
            // "Debug-level message", …, "Alert level-message": the simulated ones, not the roots log.
            /level[- ]message/i.test(String(n.params?.data)),
          );
          assert.match(
            String(message.params?.level),
            /^(debug|info|notice|warning|error|critical|alert|emergency)$/,
          );
        } finally {
          await c.client.callTool({ name: 'toggle-simulated-logging', arguments: {} }, undefined, REQUEST);
        }
      }),
  },
  {
    name: 'sampling request answered by the client',
    run: (env) =>
      withClient(env, env.target, async (c) => {
        const result = await c.client.callTool(
          { name: env.profile.sampling.name, arguments: env.profile.sampling.arguments },
          undefined,
          REQUEST,
        );
        assert.equal(c.samplingRequests.length, 1);
        const asked = c.samplingRequests[0]?.messages[0]?.content;
        assert.match(asked && 'text' in asked ? String(asked.text) : '', /matrix says hi/);
        assert.match(textOf(result), new RegExp(SAMPLING_MODEL));
        assert.match(textOf(result), /answer to: .*matrix says hi/);
      }),
  },
  {
    name: 'elicitation request answered by the client',
    run: (env) =>
      withClient(env, env.target, async (c) => {
        const result = await c.client.callTool(
          { name: env.profile.elicitation, arguments: {} },
          undefined,
          REQUEST,
        );
        assert.equal(c.elicitationRequests.length, 1);
        assert.ok(c.elicitationRequests[0] && 'requestedSchema' in c.elicitationRequests[0]);
        assert.match(textOf(result), new RegExp(ELICITED_NAME));
      }),
  },
  {
    name: 'ping client → server',
    run: (env) =>
      withClient(env, env.target, async (c) => {
        assert.deepEqual(await c.client.ping(REQUEST), {});
      }),
  },
  {
    name: 'ping server → client',
    skip: (env) => (env.fixture ? undefined : NO_FIXTURE),
    run: (env) =>
      withClient(env, env.fixture as ProxyTarget, async (c) => {
        const result = await c.client.callTool({ name: 'ping-client', arguments: {} }, undefined, REQUEST);
        assert.equal(textOf(result), 'client answered ping');
      }),
  },
  {
    name: 'the standalone GET stream answers at once, before any event',
    skip: (env) =>
      env.quiet
        ? undefined
        : 'server-everything, the only upstream here, announces tools/list_changed at once',
    run: async (env) => {
      // Without roots the server sends nothing unprompted, so only the proxy can start the stream.
      const c = await connectClient(env.proxy, env.quiet as ProxyTarget, { roots: false });
      try {
        await c.standaloneOpened(2_000);
      } finally {
        await c.transport.terminateSession().catch(() => {});
        await c.close();
      }
    },
  },
  {
    name: 'server → client request on the standalone stream (roots/list)',
    run: (env) =>
      withClient(env, env.target, async (c) => {
        // The server asks shortly after initialization; send nothing until it has.
        await eventually(async () => c.rootsRequests() > 0 || undefined, {
          timeoutMs: 5_000,
          intervalMs: 50,
        });
        const result = await c.client.callTool(
          { name: env.profile.roots, arguments: {} },
          undefined,
          REQUEST,
        );
        assert.match(textOf(result), new RegExp(CLIENT_ROOT.uri));
      }),
  },
  {
    name: 'caller disconnect cancels the upstream request',
    skip: (env, transport) =>
      transport.kind === 'streamable-http'
        ? 'pass-through: the upstream sees the disconnect itself'
        : env.fixture === undefined
          ? NO_FIXTURE
          : undefined,
    run: (env) =>
      withClient(env, env.fixture as ProxyTarget, async (c) => {
        const requestId = `disconnect-${Math.random().toString(36).slice(2)}`;
        const stream = await openRawStream(
          env.proxy,
          env.fixture as ProxyTarget,
          c.transport.sessionId ?? '',
          {
            jsonrpc: '2.0',
            id: requestId,
            method: 'tools/call',
            // `slow` reports progress as it starts, so the answer stream is under way.
            params: { name: 'slow', arguments: { ms: 20_000 }, _meta: { progressToken: requestId } },
          },
        );
        assert.equal(stream.status, 200);
        stream.disconnect();
        const observed = await eventually(
          async () => {
            const result = await c.client.callTool(
              { name: 'cancellations', arguments: {} },
              undefined,
              REQUEST,
            );
            const list = JSON.parse(textOf(result)) as Array<{ requestId: unknown; reason: string }>;
            return list.find((entry) => entry.requestId === requestId);
          },
          { timeoutMs: 5_000, intervalMs: 50 },
        );
        assert.equal(observed.reason, 'client disconnected');
      }),
  },
  {
    name: 'DELETE ends the session (old id → 404, upstream side closed)',
    run: (env) => {
      const target = env.terminable ?? env.target;
      return withClient(env, target, async (c) => {
        const sessionId = c.transport.sessionId;
        assert.ok(sessionId);
        const ended = await env.watchEnd?.(c);
        await c.transport.terminateSession();
        assert.equal(c.transport.sessionId, undefined);
        const reply = await postRaw(
          env.proxy,
          target,
          { jsonrpc: '2.0', id: 99, method: 'ping' },
          { sessionId, protocolVersion: '2025-11-25' },
        );
        assert.equal(
          reply.status,
          404,
          `old session id answered ${reply.status}: ${JSON.stringify(reply.body)}`,
        );
        if (ended) await eventually(async () => ended() || undefined, { timeoutMs: 5_000, intervalMs: 50 });
      });
    },
  },
  {
    name: 'the session’s end closes its standalone GET stream (after DELETE)',
    run: (env) =>
      withClient(env, env.terminable ?? env.target, async (c) => {
        await c.transport.terminateSession();
        await expectStandaloneEnd(c);
      }),
  },
  {
    name: 'another proxy token cannot use or end the session (404)',
    run: (env) =>
      withClient(env, env.target, async (c) => {
        const sessionId = c.transport.sessionId;
        assert.ok(sessionId);
        const ping = { jsonrpc: '2.0', id: 7, method: 'ping' };
        const headers = { sessionId, protocolVersion: '2025-11-25' };
        const stranger = await postRaw(env.proxy, env.target, ping, { ...headers, token: SECOND_TOKEN });
        assert.equal(stranger.status, 404);
        assert.equal(stranger.body?.error?.data?.code, 'session_not_found');
        const deleted = await fetch(`${env.proxy.url}${env.target.path}`, {
          method: 'DELETE',
          headers: {
            'x-proxy-token': SECOND_TOKEN,
            'mcp-session-id': sessionId,
            'mcp-protocol-version': '2025-11-25',
            ...env.target.headers,
          },
        });
        await deleted.body?.cancel();
        assert.equal(deleted.status, 404);
        const owner = await postRaw(env.proxy, env.target, ping, headers);
        assert.equal(owner.status, 200, 'the owner still can');
      }),
  },
  {
    name: 'the session id is refused for another upstream (404)',
    run: (env) =>
      withClient(env, env.target, async (c) => {
        const sessionId = c.transport.sessionId;
        assert.ok(sessionId);
        const ping = { jsonrpc: '2.0', id: 8, method: 'ping' };
        const reply = await postRaw(env.proxy, env.elsewhere, ping, {
          sessionId,
          protocolVersion: '2025-11-25',
        });
        assert.equal(reply.status, 404);
        assert.equal(reply.body?.error?.data?.code, 'session_not_found');
      }),
  },
  {
    name: 'upstream dies → the caller gets a clear error',
    run: async (env, transport) => {
      const c = await transport.upstreamDies(env);
      await c.close();
    },
  },
  {
    name: 'the session’s end closes its standalone GET stream (after the upstream died)',
    run: async (env, transport) => {
      const c = await transport.upstreamDies(env);
      try {
        await expectStandaloneEnd(c);
      } finally {
        await c.close();
      }
    },
  },
  {
    name: 'stdio server exits before answering → initialize fails clearly',
    skip: (_env, transport) => (transport.kind === 'stdio' ? undefined : 'only stdio servers are processes'),
    run: async (env) => {
      const started = Date.now();
      await assert.rejects(
        connectClient(env.proxy, serverTarget('exits-early')),
        upstreamGone(/The MCP server "exits-early" exited with code 3\./),
      );
      assert.ok(Date.now() - started < 10_000, 'reported when the process exits, not at a timeout');
    },
  },
  {
    name: 'X-MCP-Token reaches the upstream as Bearer; subprotocol mcp',
    skip: (env) => (env.ws ? undefined : 'the upstream cannot report its handshake'),
    run: async (env) => {
      const ws = env.ws as WsUpstream;
      const before = ws.connections.length;
      await withClient(env, urlTarget(ws.url, 'websocket', 'upstream-secret'), async () => {
        assert.equal(ws.connections.length, before + 1);
        assert.deepEqual(ws.connections[before], {
          protocol: 'mcp',
          authorization: 'Bearer upstream-secret',
          closed: false,
        });
      });
    },
  },
];

describe('/mcp feature matrix: SDK client → proxy → upstream', { concurrency: true }, () => {
  for (const transport of CASES) {
    // Columns run side by side; a column's rows run one after another.
    describe(transport.name, { concurrency: 1 }, () => {
      let env: Env | undefined;
      const stops: Array<() => Promise<unknown>> = [];
      before(async () => {
        env = await transport.setup((stop) => stops.unshift(stop));
      });
      after(async () => {
        for (const stop of stops) await stop().catch(() => {});
      });
      for (const feature of FEATURES) {
        it(feature.name, async (t) => {
          assert.ok(env, 'setup ran');
          const reason = feature.skip?.(env, transport);
          if (reason !== undefined) {
            t.skip(`n/a: ${reason}`);
            return;
          }
          await feature.run(env, transport);
        });
      }
    });
  }
});

/** Runs `body` with a fresh client on `target`, ending its session and closing it afterwards. */
async function withClient(env: Env, target: ProxyTarget, body: (c: ConnectedClient) => Promise<void>) {
  const c = await connectClient(env.proxy, target);
  try {
    await body(c);
  } finally {
    // Best effort: the session may already be gone (DELETE and crash rows).
    await c.transport.terminateSession().catch(() => {});
    await c.close();
  }
}

/** Validates the JSON-RPC error a caller gets when the upstream went away: the proxy's stable code and `message`. */
function upstreamGone(message: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof McpError, `an MCP error, not ${String(error)}`);
    assert.match(error.message, message);
    assert.equal((error.data as { code?: unknown } | undefined)?.code, 'upstream_unreachable');
    return true;
  };
}

/**
 * Makes `stop()` safe to call twice: the helper's own `stop()` waits for an exit that already
 * happened when the process was ended by a signal.
 */
function stopOnce(server: EverythingServer): EverythingServer {
  let stopped: Promise<void> | undefined;
  return { url: server.url, port: server.port, stop: () => (stopped ??= server.stop()) };
}

/** Runs `body` on `c`; closes `c` if it throws, else hands `c` back still open. */
async function closingOnFailure(
  c: ConnectedClient,
  body: (c: ConnectedClient) => Promise<void>,
): Promise<ConnectedClient> {
  try {
    await body(c);
    return c;
  } catch (error) {
    await c.close();
    throw error;
  }
}

/**
 * A session that has ended must not leave its GET stream open: the client would wait on it
 * (heartbeats and all) without learning the session is gone, and the proxy holds the socket.
 */
async function expectStandaloneEnd(c: ConnectedClient): Promise<void> {
  await eventually(async () => c.standaloneEnded() || undefined, { timeoutMs: 2_000, intervalMs: 50 }).catch(
    () => {
      assert.fail('the standalone GET stream is still open 2 s after the session ended');
    },
  );
}

/** Calls a tool that must succeed, ignoring its result. */
async function callQuietly(client: Client, name: string, args: Record<string, unknown> = {}): Promise<void> {
  const result = await client.callTool({ name, arguments: args }, undefined, REQUEST);
  assert.notEqual(result.isError, true, `${name} failed: ${textOf(result)}`);
}

/**
 * POSTs one request on an existing session over a plain socket and waits for the response head,
 * so the test can drop the connection while the answer is still streaming.
 */
async function openRawStream(
  proxy: RunningProxy,
  target: ProxyTarget,
  sessionId: string,
  message: unknown,
): Promise<{ status: number; disconnect: () => void }> {
  const body = JSON.stringify(message);
  const request = httpRequest(`${proxy.url}${target.path}`, {
    method: 'POST',
    agent: false,
    headers: {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      accept: 'application/json, text/event-stream',
      'x-proxy-token': proxy.token,
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-11-25',
      ...target.headers,
    },
  });
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    request.once('response', resolve);
    request.once('error', reject);
    request.end(body);
  });
  response.resume();
  return { status: response.statusCode ?? 0, disconnect: () => request.destroy() };
}

/** The text parts of a tool result, joined by newlines. */
function textOf(result: unknown): string {
  const content = ((result as { content?: unknown }).content ?? []) as Array<{ type: string; text?: string }>;
  return content
    .filter((part) => part.type === 'text')
    .map((part) => part.text)
    .join('\n');
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
