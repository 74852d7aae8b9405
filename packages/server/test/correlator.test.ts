/**
 * The one request/response correlator (issue 15): answers reach the wait with their id, a
 * deadline or a caller's signal ends a wait (and only a wait that began is cancelled upstream),
 * a failed connection fails every wait, and the table is bounded.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProxyError } from '../src/errors.ts';
import type { JsonRpcResponse } from '../src/jsonrpc.ts';
import { Correlator, PendingRequests } from '../src/upstream/correlator.ts';

const answer = (id: string | number): JsonRpcResponse => ({ jsonrpc: '2.0', id, result: {} });

function codeOf(error: unknown): string | undefined {
  return ProxyError.is(error) ? error.code : undefined;
}

describe('correlator', () => {
  it('hands each answer to the wait with its id (a number and its string are different ids)', async () => {
    const correlator = new Correlator();
    const one = correlator.expect(1);
    const text = correlator.expect('1');
    assert.equal(correlator.settle('1', answer('1')), true);
    assert.equal(correlator.settle(1, answer(1)), true);
    assert.equal(correlator.settle(2, answer(2)), false);
    assert.equal(correlator.settle(null, answer(3)), false);
    assert.deepEqual(await one.answer, answer(1));
    assert.deepEqual(await text.answer, answer('1'));
    assert.equal(correlator.size, 0);
  });

  it('refuses a second wait for an id in flight', () => {
    const correlator = new Correlator();
    correlator.expect('a');
    assert.throws(
      () => correlator.expect('a'),
      (error) => codeOf(error) === 'request_id_in_use',
    );
  });

  it('ends a wait at its deadline, telling who cancels it upstream', async () => {
    const correlator = new Correlator();
    const abandoned: boolean[] = [];
    const wait = correlator.expect(7, { timeoutMs: 1, onAbandon: (timedOut) => abandoned.push(timedOut) });
    await assert.rejects(wait.answer, (error) => codeOf(error) === 'upstream_timeout');
    assert.deepEqual(abandoned, [true]);
    assert.equal(wait.signal.aborted, true);
    assert.equal(correlator.has(7), false);
  });

  it('ends a wait when the caller leaves; a caller gone before it began cancels nothing', async () => {
    const correlator = new Correlator();
    const abandoned: boolean[] = [];
    const caller = new AbortController();
    const wait = correlator.expect(1, { signal: caller.signal, onAbandon: (t) => abandoned.push(t) });
    caller.abort();
    await assert.rejects(wait.answer, (error) => codeOf(error) === 'upstream_unreachable');
    const early = correlator.expect(2, { signal: caller.signal, onAbandon: (t) => abandoned.push(t) });
    await assert.rejects(early.answer, (error) => codeOf(error) === 'upstream_unreachable');
    assert.deepEqual(abandoned, [false]);
  });

  it('fails every wait when the connection fails, and later answers find nobody', async () => {
    const correlator = new Correlator();
    const waits = [correlator.expect(1), correlator.expect(2)];
    correlator.failAll(new ProxyError('upstream_unreachable'));
    for (const wait of waits)
      await assert.rejects(wait.answer, (error) => codeOf(error) === 'upstream_unreachable');
    assert.equal(correlator.settle(1, answer(1)), false);
    assert.equal(correlator.size, 0);
  });

  it('is bounded', () => {
    const table = new PendingRequests<string>(2);
    table.add(1, 'a');
    table.add(2, 'b');
    assert.throws(
      () => table.add(3, 'c'),
      (error) => codeOf(error) === 'too_many_in_flight',
    );
    assert.equal(table.take(1), 'a');
    table.add(3, 'c');
    assert.deepEqual(table.drain(), [
      [2, 'b'],
      [3, 'c'],
    ]);
    assert.equal(table.size, 0);
  });
});
