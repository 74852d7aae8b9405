/**
 * The event-stream parser on its own: line ends of every kind and split anywhere, comments,
 * multi-line data, ids, retry, and its bound. (The streaming tests run it against the real
 * proxy; these pin the corner cases a healthy server rarely produces.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventStreamParser, readEventStream, type ServerSentEvent } from '../src/transport/sse.ts';

/** Parses `chunks` as one stream, returning the events and the parser. */
function parse(chunks: string[], maxChars = 1_000_000) {
  const parser = new EventStreamParser(maxChars);
  const events: ServerSentEvent[] = [];
  chunks.forEach((chunk, i) => {
    events.push(...parser.push(chunk, i === chunks.length - 1));
  });
  return { events, parser };
}

/** A byte stream delivering `chunks` one by one. */
function bytes(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

const STREAM =
  ': a comment\r\nevent: message\r\nid: 7\r\ndata: {"a":\r\ndata: 1}\r\n\r\nretry: 2500\ndata:x\n\n';

describe('EventStreamParser', () => {
  it('parses LF, CRLF and CR line ends, comments, multi-line data, id and retry', () => {
    for (const text of [STREAM, STREAM.replaceAll('\r\n', '\n'), STREAM.replaceAll('\r\n', '\r')]) {
      const { events, parser } = parse([text]);
      assert.deepEqual(events, [
        { event: 'message', data: '{"a":\n1}' },
        { event: 'message', data: 'x' },
      ]);
      assert.equal(parser.lastEventId, '7', 'the id persists across events');
      assert.equal(parser.retry, 2500);
    }
  });

  it('gives the same events however the stream is split, even between CR and LF', () => {
    const whole = parse([STREAM]).events;
    for (let cut = 1; cut < STREAM.length; cut++) {
      assert.deepEqual(parse([STREAM.slice(0, cut), STREAM.slice(cut)]).events, whole, `cut at ${cut}`);
    }
    assert.deepEqual(parse([...STREAM]).events, whole, 'one character at a time');
  });

  it('follows the spec on edge fields', () => {
    const { events, parser } = parse([
      'data\n\n', // a field without a colon: empty data, still an event
      'event: ping\ndata:  two spaces\n\n', // only one leading space is removed
      'data: a\nevent: custom\n\n',
      'id: 8\n\n', // no data: no event, but the id counts
      'retry: soon\nunknown: field\ndata: b\n\n', // an invalid retry and unknown fields are ignored
      'data: unterminated', // the last event without its blank line is dropped
    ]);
    assert.deepEqual(events, [
      { event: 'message', data: '' },
      { event: 'ping', data: ' two spaces' },
      { event: 'custom', data: 'a' },
      { event: 'message', data: 'b' },
    ]);
    assert.equal(parser.lastEventId, '8');
    assert.equal(parser.retry, undefined);
  });

  it('an id containing NUL is ignored', () => {
    assert.equal(parse(['id: 1\ndata: x\n\nid: a\0b\ndata: y\n\n']).parser.lastEventId, '1');
  });

  it('bounds what one event may buffer', () => {
    assert.throws(() => parse([`data: ${'x'.repeat(200)}\n`], 100), RangeError);
    assert.throws(() => parse(['x'.repeat(200)], 100), RangeError, 'a line without an end counts too');
    assert.doesNotThrow(() => parse([`data: ${'x'.repeat(60)}\n\n`.repeat(10)], 100));
  });

  it('readEventStream decodes UTF-8 split across chunks and drops a BOM', async () => {
    const encoded = new TextEncoder().encode('\uFEFFdata: héllo ✓\n\n');
    const chunks = [...encoded].map((byte) => Uint8Array.of(byte));
    const events: ServerSentEvent[] = [];
    for await (const event of readEventStream(bytes(chunks))) events.push(event);
    assert.deepEqual(events, [{ event: 'message', data: 'héllo ✓' }]);
  });
});
