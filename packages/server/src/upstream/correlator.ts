/**
 * @module upstream/exchange
 * Request/response correlation over an {@link UpstreamTransport}: each request in flight waits
 * for the response with its id, bounded by a deadline; a timed-out or abandoned request is
 * cancelled upstream with `notifications/cancelled`, as the MCP spec asks.
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
  requestKey,
} from '../jsonrpc.ts';
import { ServerRequestRefusals, tooManyServerRequests } from './server-request-refusals.ts';
import type { UpstreamTransport } from './transport.ts';

/** What to do with upstream messages that are not responses to our requests. */
export interface CorrelatorHooks {
  /** A server-to-client request; default: answered with "method not found". */
  readonly onServerRequest?: (request: JsonRpcRequest) => void;
  /** A notification from the server; default: dropped. */
  readonly onNotification?: (notification: JsonRpcNotification) => void;
}

/** Options for one request. */
export interface ExchangeOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

interface Pending {
  readonly resolve: (response: JsonRpcResponse) => void;
  readonly reject: (error: ProxyError) => void;
}

/** Hands each upstream response to the request waiting for it. */
export class RequestCorrelator {
  readonly #transport: UpstreamTransport;
  readonly #inline: boolean;
  readonly #hooks: CorrelatorHooks;
  readonly #pending = new Map<string, Pending>();
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
  async request(message: JsonRpcRequest, options: ExchangeOptions): Promise<JsonRpcResponse> {
    const key = requestKey(message.id);
    if (this.#pending.has(key)) throw new ProxyError('request_id_in_use');
    const link = linkAbort([options.signal], options.timeoutMs);
    const { signal } = link;
    const { promise, resolve, reject } = Promise.withResolvers<JsonRpcResponse>();
    const entry: Pending = { resolve, reject };
    this.#pending.set(key, entry);

    const onAbort = () => {
      const { timedOut } = link;
      reject(
        timedOut
          ? new ProxyError('upstream_timeout', undefined, { data: { timeoutMs: options.timeoutMs } })
          : new ProxyError('upstream_unreachable', 'The request was cancelled by the caller.'),
      );
      this.#cancelUpstream(message.id, timedOut ? 'timeout' : 'client disconnected');
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      this.#transport.send(message, { signal }).then(
        () => {
          // Only a request still waiting was left without an answer.
          if (this.#inline && this.#pending.get(key) === entry) {
            reject(
              new ProxyError(
                'upstream_protocol_error',
                'The MCP server ended its answer without a response.',
              ),
            );
          }
        },
        (error: unknown) => reject(asProxyError(error)),
      );
      return await promise;
    } finally {
      signal.removeEventListener('abort', onAbort);
      link.dispose();
      this.#pending.delete(key);
    }
  }

  /** Ends what the correlator still has in flight of its own (refusals). Idempotent. */
  dispose(): void {
    this.#done.abort();
  }

  /** Sends a notification or a response (no answer expected). */
  async notify(message: JsonRpcMessage, signal?: AbortSignal): Promise<void> {
    await this.#transport.send(message, signal ? { signal } : {});
  }

  #onMessage(message: JsonRpcMessage): void {
    if (isResponse(message)) {
      if (message.id === null) return;
      this.#pending.get(requestKey(message.id))?.resolve(message);
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
    const refused = this.#refusals.refuse(
      request,
      `This client cannot answer "${request.method}" through POST /proxy; connect through /mcp or /ws instead.`,
    );
    if (!refused) this.#failAll(tooManyServerRequests());
  }

  #cancelUpstream(requestId: RequestId, reason: string): void {
    const notice: JsonRpcNotification = {
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId, reason },
    };
    this.#transport.send(notice).catch(() => {});
  }

  #failAll(error: ProxyError): void {
    for (const pending of this.#pending.values()) pending.reject(error);
  }
}

function asProxyError(error: unknown): ProxyError {
  return ProxyError.is(error) ? error : new ProxyError('upstream_unreachable', undefined, { cause: error });
}
