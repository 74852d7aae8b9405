/**
 * @module upstream/correlator
 * The one request/response correlator. {@link PendingRequests} is the table every place that
 * matches responses to requests keeps (keyed by request id, bounded, one entry per id);
 * {@link Correlator} waits on it with a deadline and an abort signal; {@link RequestCorrelator}
 * is that over an {@link UpstreamTransport}: each request in flight waits for the response with
 * its id, and a timed-out or abandoned request is cancelled upstream with
 * `notifications/cancelled`, as the MCP spec asks.
 */
import { linkAbort } from '../abort.ts';
import { ProxyError } from '../errors.ts';
import {
  isRequest,
  isResponse,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type RequestId,
  requestIdOf,
  requestKey,
} from '../jsonrpc.ts';
import { cancelUpstream } from './cancellation.ts';
import { refuseForProxyCaller, ServerRequestRefusals } from './server-request-refusals.ts';
import type { UpstreamTransport } from './transport.ts';

/**
 * Requests one table holds at most: a backstop far above the in-flight limits, so that nothing
 * an upstream or a caller does grows a table without bound.
 */
export const MAX_PENDING = 65_536;

/** What waits for the answers of requests in flight, by request id. */
export class PendingRequests<V> {
  readonly #entries = new Map<string, V>();
  readonly #max: number;

  constructor(max = MAX_PENDING) {
    this.#max = max;
  }

  /** Number of requests waiting. */
  get size(): number {
    return this.#entries.size;
  }

  /** True while a request with this id waits. */
  has(id: RequestId): boolean {
    return this.#entries.has(requestKey(id));
  }

  /** What waits for `id`'s answer. */
  get(id: RequestId): V | undefined {
    return this.#entries.get(requestKey(id));
  }

  /** Registers what waits for `id`; an id already waiting is the caller's mistake (409). */
  add(id: RequestId, value: V): void {
    const key = requestKey(id);
    if (this.#entries.has(key)) throw new ProxyError('request_id_in_use');
    if (this.#entries.size >= this.#max) throw new ProxyError('too_many_in_flight');
    this.#entries.set(key, value);
  }

  /** Removes and returns what waits for `id` (a response arrived); null ids wait for nothing. */
  take(id: RequestId | null): V | undefined {
    if (id === null) return undefined;
    const key = requestKey(id);
    const value = this.#entries.get(key);
    this.#entries.delete(key);
    return value;
  }

  /** Forgets `id`, only while `value` (when given) is still what waits for it. */
  delete(id: RequestId, value?: V): boolean {
    const key = requestKey(id);
    if (value !== undefined && this.#entries.get(key) !== value) return false;
    return this.#entries.delete(key);
  }

  /** The requests waiting and what waits for each. */
  *entries(): IterableIterator<[RequestId, V]> {
    for (const [key, value] of this.#entries) yield [requestIdOf(key), value];
  }

  /** What waits, for every request. */
  values(): IterableIterator<V> {
    return this.#entries.values();
  }

  /** Removes every entry and returns them (the connection failed: each is told). */
  drain(): Array<[RequestId, V]> {
    const all = [...this.entries()];
    this.#entries.clear();
    return all;
  }
}

/** How long one answer may be waited for, and who may give up on it. */
export interface ExpectOptions {
  readonly timeoutMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  /**
   * Told when the deadline or the signal ended the wait (e.g. to cancel the request upstream);
   * not when the signal was aborted before the wait began.
   */
  readonly onAbandon?: ((timedOut: boolean) => void) | undefined;
}

/** One answer being waited for. */
export interface Expected<T> {
  /** Settles with the answer, or rejects on the deadline, the signal or a failure. */
  readonly answer: Promise<T>;
  /** Aborted by the deadline or the caller: what sends the request should stop with it. */
  readonly signal: AbortSignal;
  /** Fails this wait (only while it still waits). */
  fail(error: unknown): void;
  /** True once the wait is over (answered, failed or abandoned): no error needs building then. */
  readonly settled: boolean;
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** Why a wait ended unanswered: the deadline, or the caller's signal. */
export type AbandonError = (timedOut: boolean, timeoutMs: number | undefined, reason: unknown) => unknown;

/** The errors of {@link RequestCorrelator}: a timeout, or a caller that left. */
export const abandonedRequest: AbandonError = (timedOut, timeoutMs) =>
  timedOut
    ? new ProxyError('upstream_timeout', undefined, timeoutMs === undefined ? {} : { data: { timeoutMs } })
    : new ProxyError('upstream_unreachable', 'The request was cancelled by the caller.');

/** The reason a request whose wait ended unanswered is cancelled upstream with. */
export function abandonReason(timedOut: boolean): string {
  return timedOut ? 'timeout' : 'client disconnected';
}

/** A failed send as the caller sees it: its own {@link ProxyError}, else an unreachable upstream. */
export function asProxyError(error: unknown): ProxyError {
  return ProxyError.is(error) ? error : new ProxyError('upstream_unreachable', undefined, { cause: error });
}

/**
 * Ties the wait for an answer to the send of its request: a send that fails fails the wait.
 * With `inline` (the send resolves only once the answer stream ended, as over Streamable HTTP)
 * a send that finished while the wait still waits means the upstream ended its answer without
 * a response.
 */
export function followSend<T>(expected: Expected<T>, sent: Promise<void>, inline: boolean): void {
  sent.then(
    () => {
      // Built only when still needed: an error captures a stack, and most calls are answered.
      if (inline && !expected.settled)
        expected.fail(
          new ProxyError('upstream_protocol_error', 'The MCP server ended its answer without a response.'),
        );
    },
    (error: unknown) => expected.fail(asProxyError(error)),
  );
}

/** Promises for answers, by request id, each bounded by a deadline and a signal. */
export class Correlator<T = JsonRpcResponse> {
  readonly #pending: PendingRequests<Waiter<T>>;
  readonly #abandoned: AbandonError;

  constructor(abandoned: AbandonError = abandonedRequest, max = MAX_PENDING) {
    this.#abandoned = abandoned;
    this.#pending = new PendingRequests(max);
  }

  /** Number of answers waited for. */
  get size(): number {
    return this.#pending.size;
  }

  /** True while `id`'s answer is waited for. */
  has(id: RequestId): boolean {
    return this.#pending.has(id);
  }

  /** Waits for `id`'s answer (throws `request_id_in_use` when it is waited for already). */
  expect(id: RequestId, options: ExpectOptions = {}): Expected<T> {
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    const link = linkAbort([options.signal], options.timeoutMs, () => onAbort());
    let done = false;
    const waiter: Waiter<T> = {
      resolve: (value) => settle(() => resolve(value)),
      reject: (error) => settle(() => reject(error)),
    };
    const settle = (then: () => void) => {
      if (done) return;
      done = true;
      this.#pending.delete(id, waiter);
      link.dispose();
      then();
    };
    const onAbort = () => {
      if (done) return;
      const { timedOut } = link;
      waiter.reject(this.#abandoned(timedOut, options.timeoutMs, options.signal?.reason));
      options.onAbandon?.(timedOut);
    };
    try {
      this.#pending.add(id, waiter);
    } catch (error) {
      link.dispose();
      throw error;
    }
    // A caller gone already: nothing went out yet, so there is nothing to cancel upstream.
    if (link.signal.aborted)
      waiter.reject(this.#abandoned(link.timedOut, options.timeoutMs, options.signal?.reason));
    promise.catch(() => {});
    return {
      answer: promise,
      signal: link.signal,
      fail: waiter.reject,
      get settled() {
        return done;
      },
    };
  }

  /** Hands `id`'s answer to its waiter; false when nobody waits for it. */
  settle(id: RequestId | null, value: T): boolean {
    const waiter = this.#pending.take(id);
    waiter?.resolve(value);
    return waiter !== undefined;
  }

  /** Fails the wait for `id`, if any. */
  fail(id: RequestId, error: unknown): void {
    this.#pending.take(id)?.reject(error);
  }

  /** Fails every wait (the connection failed or ended). */
  failAll(error: unknown): void {
    for (const [, waiter] of this.#pending.drain()) waiter.reject(error);
  }
}

/** What to do with upstream messages that are not responses to our requests. */
export interface CorrelatorHooks {
  /** A server-to-client request; default: answered with "method not found". */
  readonly onServerRequest?: (request: JsonRpcRequest) => void;
  /** A notification from the server; default: dropped. */
  readonly onNotification?: (notification: JsonRpcNotification) => void;
}

/** Options for one request. */
export interface RequestOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

/** Hands each upstream response to the request waiting for it. */
export class RequestCorrelator {
  readonly #transport: UpstreamTransport;
  readonly #inline: boolean;
  readonly #hooks: CorrelatorHooks;
  readonly #pending = new Correlator();
  /** Aborted by {@link dispose}: refusals still in flight end with the exchange. */
  readonly #done = new AbortController();
  readonly #refusals: ServerRequestRefusals;

  /**
   * @param inline true when a transport's `send` resolves only after the answer stream ended
   *   (Streamable HTTP), so a finished send without a response is a protocol error.
   */
  constructor(transport: UpstreamTransport, inline: boolean, hooks: CorrelatorHooks = {}) {
    this.#transport = transport;
    this.#inline = inline;
    this.#hooks = hooks;
    this.#refusals = new ServerRequestRefusals(
      (reply, signal) => transport.send(reply, { signal }),
      this.#done.signal,
    );
    transport.onmessage = (message) => this.#onMessage(message);
    transport.onerror = (error) => this.#failAll(error);
    transport.onclose = () =>
      this.#failAll(
        new ProxyError('upstream_unreachable', 'The MCP server connection closed before it answered.'),
      );
  }

  /** Number of requests waiting for a response. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Sends a request and resolves with its response. */
  async request(message: JsonRpcRequest, options: RequestOptions): Promise<JsonRpcResponse> {
    const expected = this.#pending.expect(message.id, {
      ...options,
      onAbandon: (timedOut) => void cancelUpstream(this.#transport, message.id, abandonReason(timedOut)),
    });
    followSend(expected, this.#transport.send(message, { signal: expected.signal }), this.#inline);
    return expected.answer;
  }

  /** Ends what the correlator still has in flight of its own (refusals). Idempotent. */
  dispose(): void {
    // A plain reason: an argument-less abort() builds a DOMException (a stack) per exchange.
    this.#done.abort('exchange over');
  }

  /** Sends a notification or a response (no answer expected). */
  async notify(message: JsonRpcMessage, signal?: AbortSignal): Promise<void> {
    await this.#transport.send(message, signal ? { signal } : {});
  }

  #onMessage(message: JsonRpcMessage): void {
    if (isResponse(message)) {
      this.#pending.settle(message.id, message);
      return;
    }
    if (isRequest(message)) {
      if (this.#hooks.onServerRequest) this.#hooks.onServerRequest(message);
      else this.#refuseServerRequest(message);
      return;
    }
    this.#hooks.onNotification?.(message);
  }

  /**
   * A caller that cannot answer server requests must not leave the server waiting; one that
   * keeps asking gets a few answers, then every request in flight fails (issue 14 review, F2).
   */
  #refuseServerRequest(request: JsonRpcRequest): void {
    const tooMany = refuseForProxyCaller(this.#refusals, request);
    if (tooMany) this.#failAll(tooMany);
  }

  #failAll(error: ProxyError): void {
    this.#pending.failAll(error);
  }
}
