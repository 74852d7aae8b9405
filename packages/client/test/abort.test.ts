/**
 * Cancellation: a caller's AbortSignal, close(), and what the client does afterwards.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MCPProxyError } from '../src/index.ts';
import { recordingFetch, type Stack, startStack } from './helpers/stack.ts';

describe('AbortSignal and close()', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack('streamableHttp');
  });
  after(() => stack.close());

  it('aborting cancels a call in flight: it rejects at once with the signal reason', async () => {
    const client = stack.client();
    await client.initialize();
    const controller = new AbortController();
    const started = performance.now();
    const call = client.callTool(
      'trigger-long-running-operation',
      { duration: 10, steps: 2 },
      {
        signal: controller.signal,
      },
    );
    setTimeout(() => controller.abort(), 200);
    const error = await call.then(
      () => assert.fail('expected the call to be cancelled'),
      (e: unknown) => e,
    );
    const elapsed = performance.now() - started;
    assert.ok(error instanceof DOMException, String(error));
    assert.equal(error.name, 'AbortError');
    assert.ok(elapsed < 3_000, `cancelled after ${elapsed} ms, not after the 10 s operation`);
    assert.deepEqual(await client.ping(), {}, 'the client is still usable');
  });

  it('a custom abort reason is what the call rejects with', async () => {
    const client = stack.client();
    await client.initialize();
    const reason = new Error('user navigated away');
    const controller = new AbortController();
    const call = client.callTool(
      'trigger-long-running-operation',
      { duration: 10, steps: 2 },
      {
        signal: controller.signal,
      },
    );
    setTimeout(() => controller.abort(reason), 100);
    await assert.rejects(call, (e) => e === reason);
  });

  it('an already aborted signal rejects without sending anything', async () => {
    const recorder = recordingFetch();
    const client = stack.client({ fetch: recorder.fetch });
    await assert.rejects(client.ping({ signal: AbortSignal.abort() }), { name: 'AbortError' });
    assert.equal(recorder.calls.length, 0);
  });

  it('close() rejects calls in flight and later calls with code "closed"', async () => {
    const client = stack.client();
    await client.initialize();
    const inFlight = client.callTool('trigger-long-running-operation', { duration: 10, steps: 2 });
    setTimeout(() => void client.close(), 100);
    await assert.rejects(inFlight, (e) => e instanceof MCPProxyError && e.code === 'closed');
    assert.equal(client.closed, true);
    await assert.rejects(client.ping(), (e) => e instanceof MCPProxyError && e.code === 'closed');
    await client.close(); // idempotent
  });
});
