/**
 * @module upstream/event-stream
 * Reads a `text/event-stream` body into events with a bounded buffer, using the well-kept
 * `eventsource-parser` for the framing rules.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { ProxyError } from '../errors.ts';
import { mcpContentType } from './content-type.ts';
import type { FlowGate } from './flow-gate.ts';
import { discard, eachChunk, tooLarge, toUpstreamError, type UpstreamResponse } from './http.ts';

/**
 * Feeds every event of an SSE body to `onEvent` until the stream ends, or until `onEvent` returns
 * true (the reader has what it came for: the rest is dropped and the connection closed). An event
 * larger than `limitBytes` aborts the stream with `upstream_response_too_large`. `onRetry` hears
 * the server's `retry:` field (how long to wait before resuming the stream).
 */
export async function readEventStream(
  response: UpstreamResponse,
  limitBytes: number,
  onEvent: (event: EventSourceMessage) => unknown,
  signal?: AbortSignal,
  gate?: FlowGate,
  onRetry?: (retryMs: number) => void,
): Promise<void> {
  let failure: ProxyError | undefined;
  let done = false;
  const parser = createParser({
    // The handler reads what the upstream sent; whatever it throws ends this stream as the
    // caller's coded error, never as an exception out of the parser (issue 14, finding 1).
    onEvent: (event) => {
      if (failure || done) return;
      try {
        done = onEvent(event) === true;
      } catch (error) {
        failure = ProxyError.is(error) ? error : unhandled(error);
      }
    },
    ...(onRetry && { onRetry }),
    onError: (error) => {
      // Unknown fields and bad retry values are ignored, as the SSE spec says; size is not.
      if (error.type === 'max-buffer-size-exceeded') failure ??= tooLarge(limitBytes);
    },
    maxBufferSize: limitBytes,
  });
  const decoder = new TextDecoder();
  // Issue 14, finding 6: a stream read for one answer is not read on after it, so an upstream
  // trickling comments cannot hold a socket for a call that is over. But leaving the loop early
  // makes the stream build an AbortError (a stack, ~8% of the CPU of a call answered by an event
  // stream), and an upstream usually ends its stream in the write that carries the answer: the
  // end is already queued then. So the loop reads on until the end of this turn of the event
  // loop, and only a stream still open then is dropped.
  let cutoff: NodeJS.Immediate | undefined;
  try {
    await eachChunk(response.body, (chunk) => {
      if (failure || done) return undefined; // the end (or a cut-off) is on its way
      parser.feed(decoder.decode(chunk, { stream: true }));
      if (failure || done) {
        cutoff = setImmediate(discard, response);
        return undefined;
      }
      return gate?.pass();
    });
  } catch (error) {
    // Once the reader has what it came for (or has failed), how the rest went does not matter.
    if (!(failure || done)) throw toUpstreamError(error, signal);
  } finally {
    clearImmediate(cutoff);
  }
  if (failure) throw failure;
}

/** True when a response declares exactly one media type, and it is an event stream. */
export function isEventStream(response: UpstreamResponse): boolean {
  return mcpContentType(response.headers['content-type'])?.essence === 'text/event-stream';
}

/** True when a response declares exactly one media type, and it is JSON. */
export function isJson(response: UpstreamResponse): boolean {
  return mcpContentType(response.headers['content-type'])?.essence === 'application/json';
}

/**
 * True for an event carrying a JSON-RPC message. Events without data are skipped: MCP
 * 2025-11-25 servers open streams with a "priming" event (an id and empty data) for resumption.
 */
export function isMessageEvent(event: EventSourceMessage): boolean {
  return (event.event === undefined || event.event === 'message') && event.data.trim() !== '';
}

/** What a handler's own exception on an upstream event becomes. */
function unhandled(cause: unknown): ProxyError {
  return new ProxyError('upstream_protocol_error', 'The proxy could not handle an event of the MCP server.', {
    cause,
  });
}
