/**
 * @module surfaces/ws/message-spans
 * The server span of every message a `/ws` caller sends (issue 21), while tracing is on. A
 * request's span lasts from the frame's arrival until its answer goes to the socket (the
 * upstream's, or the proxy's refusal), the caller cancels it, or the socket closes; the upstream
 * calls it makes are its children. A notification's (or an answer to a server request) lasts
 * until the upstream took it. A message refused before it went anywhere (rate limit, in-flight
 * cap, a request id in use) has a span too, ended at once with the refusal's code; so has a
 * frame refused before its messages could be read, and a frame that arrives once the socket
 * began closing (outcome `closed`). A `_meta.traceparent` in the message is continued; else the
 * trace context the handshake carried (its `traceparent` header, or query parameter: browsers
 * cannot set headers on a WebSocket). A tool the socket's grants hide is never named.
 *
 * A request's span waits for its answer with its in-flight slot (requests-in-flight.ts).
 */
import type { Attributes } from '@opentelemetry/api';
import { messageAttributes, metaOf, serverAttributes, urlAttributes } from '../../http/trace-hooks.ts';
import { isResponse, type JsonRpcMessage } from '../../jsonrpc.ts';
import { knownMethod } from '../../observability/mcp-methods.ts';
import type { Carrier, ProxySpan, Tracing } from '../../observability/tracing.ts';

/** What the spans of a socket know of it from its handshake. */
export interface SpannedSocket {
  /** What the socket's upstream is keyed by (a URL, `server:<name>` or `stdio:<name>`). */
  readonly targetKey: string;
  /** The tools its principal may use there (undefined: every one). */
  readonly tools?: readonly string[] | undefined;
  /** The trace context its handshake carried (bounded: routes.ts). */
  readonly trace?: Carrier | undefined;
}

/** The message spans of one socket. */
export class WsMessageSpans {
  readonly #tracing: Tracing;
  /** What every span of the socket carries: the surface and the upstream it reaches. */
  readonly #attributes: Attributes;
  readonly #tools: readonly string[] | undefined;
  readonly #handshake: Carrier | undefined;

  /** The spans of `socket`; undefined while tracing is off (nothing to do). */
  static of(tracing: Tracing | undefined, socket: SpannedSocket): WsMessageSpans | undefined {
    return tracing?.enabled === true ? new WsMessageSpans(tracing, socket) : undefined;
  }

  private constructor(tracing: Tracing, { targetKey, tools, trace }: SpannedSocket) {
    this.#tracing = tracing;
    this.#tools = tools;
    this.#handshake = trace;
    // The socket's target was resolved at the handshake: a configured or virtual server's name, or a URL.
    const name = /^(?:server|stdio|virtual):(.*)$/s.exec(targetKey)?.[1];
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
    const meta = metaOf(fields.params);
    const tools = this.#tools;
    return this.#tracing.server(
      name,
      typeof meta?.traceparent === 'string' ? meta : this.#handshake,
      {
        ...this.#attributes,
        ...messageAttributes(
          method === undefined ? undefined : { method, params: fields.params },
          (tool) => tools === undefined || tools.includes(tool),
        ),
      },
      at,
    );
  }

  /** A frame refused before its messages were read (or of messages refused together): ended now. */
  refused(errorCode: string, at: number, messages: readonly JsonRpcMessage[] = []): void {
    for (const span of this.#each(at, messages)) span.end(errorCode);
  }

  /** A frame (or its messages) that arrived once the socket began closing: outcome `closed`. */
  closed(at: number, messages: readonly JsonRpcMessage[] = []): void {
    for (const span of this.#each(at, messages)) endClosed(span);
  }

  /** A span per message, or one for the frame when its messages were not read. */
  #each(at: number, messages: readonly JsonRpcMessage[]): ProxySpan[] {
    if (messages.length > 0) return messages.map((message) => this.start(message, at));
    return [this.#tracing.server('other', this.#handshake, this.#attributes, at)];
  }
}

/** Ends the span of a message the socket's closing left unhandled or unanswered. */
export function endClosed(span: ProxySpan): void {
  span.set({ 'mcp_proxy.outcome': 'closed' });
  span.end();
}
