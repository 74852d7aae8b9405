/**
 * What only the streaming transports (`streamable`, `ws`) can do, against the real
 * server-everything behind the real proxy: progress, log notifications, the server's own
 * requests (sampling, elicitation, roots) answered by the client, cancellation. Defined once,
 * run per upstream kind and transport (streaming-*.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  type CreateMessageParams,
  type ElicitParams,
  type MCPProxyClient,
  McpError,
  type NotificationMap,
  type ServerNotification,
  type TextContent,
} from '../../src/index.ts';
import { type RecordedCall, recordingFetch, type Stack, startStack, type UpstreamMode } from './stack.ts';

/** What a transport sent, as far as the test can see it. */
export interface SentLog {
  /** JSON-RPC messages the client sent (POST bodies, or WebSocket frames). */
  readonly messages: Array<Record<string, unknown>>;
}

/** The text of a tool result's content blocks. */
export function text(result: { content: unknown[] }): string {
  return result.content.map((block) => (block as TextContent).text ?? '').join('\n');
}

/** Resolves once `check()` holds (polling), or fails after `ms`. */
export async function waitFor(check: () => boolean, ms = 5_000, what = 'a condition'): Promise<void> {
  for (const started = Date.now(); !check(); ) {
    if (Date.now() - started > ms) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A WebSocket class that records the frames the client sends. */
export function recordingWebSocket(sent: Array<Record<string, unknown>>): typeof WebSocket {
  return class extends WebSocket {
    override send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
      if (typeof data === 'string') sent.push(JSON.parse(data) as Record<string, unknown>);
      super.send(data);
    }
  };
}

/** Registers the streaming suite for one upstream kind and one streaming transport. */
export function streamingSuite(mode: UpstreamMode, transport: 'streamable' | 'ws'): void {
  describe(`streaming features over ${transport} to a ${mode} server`, () => {
    let stack: Stack;
    let client: MCPProxyClient;
    let posts: RecordedCall[];
    const frames: Array<Record<string, unknown>> = [];
    const notifications: ServerNotification[] = [];
    const sampled: CreateMessageParams[] = [];
    const elicited: ElicitParams[] = [];
    let rejectSampling = false;

    /** Every JSON-RPC message the client sent so far. */
    const sent = () =>
      transport === 'ws' ? frames : posts.filter((c) => c.method === 'POST').map((c) => c.body);

    before(async () => {
      stack = await startStack(mode, { WS_ALLOW_MISSING_ORIGIN: 'true' });
      const recorder = recordingFetch();
      posts = recorder.calls;
      client = stack.client({ transport, fetch: recorder.fetch, WebSocket: recordingWebSocket(frames) });
      client.on('notification', (n) => notifications.push(n));
      client.setRequestHandler('sampling/createMessage', async (params) => {
        sampled.push(params);
        if (rejectSampling) throw new McpError(-1, 'User rejected sampling request');
        return {
          role: 'assistant',
          content: { type: 'text', text: 'sampled by the test client' },
          model: 'test-model',
          stopReason: 'endTurn',
        };
      });
      client.setRequestHandler('elicitation/create', async (params) => {
        elicited.push(params);
        return { action: 'accept', content: { name: 'Ada Lovelace', check: true, integer: 42 } };
      });
      client.setRequestHandler('roots/list', () => ({
        roots: [{ uri: 'file:///srv/projects', name: 'projects' }],
      }));
      await client.initialize();
    });
    after(() => stack.close());

    it('declares the capabilities of the registered handlers in initialize', () => {
      const init = sent().find((m) => m.method === 'initialize');
      assert.deepEqual((init?.params as { capabilities?: unknown } | undefined)?.capabilities, {
        sampling: {},
        elicitation: {},
        roots: {},
      });
    });

    it('progress: onprogress gets every notifications/progress of its call', async () => {
      const progress: Array<NotificationMap['notifications/progress']> = [];
      const seen: number[] = [];
      const off = client.on('notifications/progress', (p) => seen.push(p.progress));
      const result = await client.callTool(
        'trigger-long-running-operation',
        { duration: 0.6, steps: 3 },
        { onprogress: (p) => progress.push(p) },
      );
      off();
      assert.match(text(result), /Long running operation completed/);
      assert.deepEqual(
        progress.map((p) => [p.progress, p.total]),
        [
          [1, 3],
          [2, 3],
          [3, 3],
        ],
      );
      const call = sent().findLast((m) => m.method === 'tools/call');
      const token = (call?.params as { _meta?: { progressToken?: unknown } } | undefined)?._meta
        ?.progressToken;
      assert.equal(token, call?.id, 'the progress token is the request id');
      assert.ok(progress.every((p) => p.progressToken === token));
      assert.deepEqual(seen, [1, 2, 3], 'method listeners see them too');
    });

    it('log notifications: setLoggingLevel() and notifications/message', async () => {
      await client.setLoggingLevel('debug');
      const messages: Array<NotificationMap['notifications/message']> = [];
      const off = client.on('notifications/message', (m) => messages.push(m));
      const started = await client.callTool('toggle-simulated-logging', {});
      assert.match(text(started), /Started simulated/);
      try {
        // server-everything sends one at once, then one every 5 s, on the session's own stream.
        await waitFor(() => messages.some((m) => /level[- ]message/i.test(String(m.data))), 8_000, 'a log');
      } finally {
        await client.callTool('toggle-simulated-logging', {});
        off();
      }
      const message = messages.find((m) => /level[- ]message/i.test(String(m.data)));
      assert.ok(message && typeof message.level === 'string');
      assert.ok(notifications.some((n) => n.method === 'notifications/message'));
    });

    it('sampling: the server asks the client for a completion and gets the handler’s answer', async () => {
      const result = await client.callTool('trigger-sampling-request', { prompt: 'Say hi', maxTokens: 12 });
      assert.match(text(result), /sampled by the test client/);
      assert.match(text(result), /test-model/);
      const params = sampled.at(-1);
      assert.equal(params?.maxTokens, 12);
      const first = params?.messages[0]?.content as TextContent | undefined;
      assert.match(first?.text ?? '', /Say hi/);
      assert.ok(
        sent().some((m) => m.result !== undefined && m.id !== undefined && m.method === undefined),
        'the response went back to the proxy',
      );
    });

    it('a handler that throws McpError answers the server with that JSON-RPC error', async () => {
      rejectSampling = true;
      try {
        const result = await client.callTool('trigger-sampling-request', { prompt: 'No', maxTokens: 5 });
        assert.equal(result.isError, true);
        assert.match(text(result), /User rejected sampling request/);
        const answer = sent().findLast((m) => m.error !== undefined);
        assert.deepEqual((answer?.error as { code?: unknown } | undefined)?.code, -1);
      } finally {
        rejectSampling = false;
      }
    });

    it('elicitation: the server asks the user for input and gets the handler’s answer', async () => {
      const result = await client.callTool('trigger-elicitation-request', {});
      assert.match(text(result), /User provided the requested information/);
      assert.match(text(result), /Name: Ada Lovelace/);
      assert.match(text(result), /Favorite Integer: 42/);
      const params = elicited.at(-1);
      assert.ok(params && params.mode !== 'url', 'a form-mode request');
      assert.ok('name' in params.requestedSchema.properties);
    });

    it('roots: the server lists the client’s roots', async () => {
      const result = await client.callTool('get-roots-list', {});
      assert.match(text(result), /file:\/\/\/srv\/projects/);
    });

    it('aborting a call sends notifications/cancelled and the client stays usable', async () => {
      const controller = new AbortController();
      const call = client.callTool(
        'trigger-long-running-operation',
        { duration: 10, steps: 2 },
        { signal: controller.signal },
      );
      setTimeout(() => controller.abort(new Error('user gave up')), 200);
      await assert.rejects(call, /user gave up/);
      const id = sent().findLast((m) => m.method === 'tools/call')?.id;
      await waitFor(
        () =>
          sent().some(
            (m) =>
              m.method === 'notifications/cancelled' &&
              (m.params as { requestId?: unknown }).requestId === id,
          ),
        5_000,
        'notifications/cancelled',
      );
      const cancel = sent().findLast((m) => m.method === 'notifications/cancelled');
      assert.deepEqual(cancel?.params, { requestId: id, reason: 'user gave up' });
      assert.deepEqual(await client.ping(), {});
    });

    it('a client-side timeout is a TimeoutError, and cancels at the server too', async () => {
      const error = await client
        .callTool('trigger-long-running-operation', { duration: 10, steps: 2 }, { timeoutMs: 150 })
        .then(
          () => assert.fail('expected a timeout'),
          (e: unknown) => e,
        );
      assert.equal((error as { code?: unknown }).code, 'client_timeout');
      await waitFor(
        () => sent().filter((m) => m.method === 'notifications/cancelled').length >= 2,
        5_000,
        'a second notifications/cancelled',
      );
    });
  });
}
