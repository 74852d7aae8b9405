/**
 * @module surfaces/ws/message-spans
 * The server span of every message a `/ws` caller sends (issue 21), while tracing is on. A
 * request's span lasts from the frame's arrival until its answer goes to the socket (the
 * upstream's, or the proxy's refusal), the caller cancels it, or the socket closes; the upstream
 * calls it makes are its children. A notification's (or an answer to a server request) lasts
 * until the upstream took it. A message refused before it went anywhere (rate limit, in-flight
 * cap, a request id in use) has a span too, ended at once with the refusal's code; so has a
 * frame refused before its messages could be read. A `_meta.traceparent` in the message is
 * continued.
 *
 * A request's span waits for its answer with its in-flight slot (requests-in-flight.ts).
 */
import type { Attributes } from '@opentelemetry/api';
import { messageAttributes, metaOf, serverAttributes, urlAttributes } from '../../http/trace-hooks.ts';
import { isResponse, type JsonRpcMessage } from '../../jsonrpc.ts';
import { knownMethod } from '../../observability/mcp-methods.ts';
import type { ProxySpan, Tracing } from '../../observability/tracing.ts';

/** The message spans of one socket. */
export class WsMessageSpans {
  readonly #tracing: Tracing;
  /** What every span of the socket carries: the surface and the upstream it reaches. */
  readonly #attributes: Attributes;

  /** The spans of a socket to `targetKey`; undefined while tracing is off (nothing to do). */
  static of(tracing: Tracing | undefined, targetKey: string): WsMessageSpans | undefined {
    return tracing?.enabled === true ? new WsMessageSpans(tracing, targetKey) : undefined;
  }

  private constructor(tracing: Tracing, targetKey: string) {
    this.#tracing = tracing;
    // The socket's target was resolved at the handshake: a configured server's name, or a URL.
    const name = /^(?:server|stdio):(.*)$/s.exec(targetKey)?.[1];
    this.#attributes = {
      'mcp_proxy.surface': 'ws',
      ...(name === undefined ? urlAttributes(targetKey) : serverAttributes(name, () => true)),
    };
  }

  /** Now, in the clock spans are timed by (milliseconds since the epoch). */
  static now(): number {
    return performance.timeOrigin + performance.now();
  }

  /** Starts the span of `message`, which arrived at `at` ({@link WsMessageSpans.now}). */
  start(message: JsonRpcMessage, at: number): ProxySpan {
    const fields = message as { method?: unknown; params?: unknown };
    const method = typeof fields.method === 'string' ? fields.method : undefined;
    const name = method === undefined ? (isResponse(message) ? 'response' : 'other') : knownMethod(method);
    return this.#tracing.server(
      name,
      metaOf(fields.params),
      {
        ...this.#attributes,
        ...messageAttributes(method === undefined ? undefined : { method, params: fields.params }),
      },
      at,
    );
  }

  /** A frame refused before its messages were read (or of messages refused together): ended now. */
  refused(errorCode: string, at: number, messages: readonly JsonRpcMessage[] = []): void {
    if (messages.length === 0) {
      this.#tracing.server('other', undefined, this.#attributes, at).end(errorCode);
      return;
    }
    for (const message of messages) this.start(message, at).end(errorCode);
  }
}
