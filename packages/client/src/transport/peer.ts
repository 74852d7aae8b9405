/**
 * @module transport/peer
 * The JSON-RPC bookkeeping the streaming transports (`streamable`, `ws`) share: responses matched
 * to calls by id, cancellation (`notifications/cancelled`, MCP spec "Cancellation"), server
 * notifications handed on, server-to-client requests answered. The transports only move bytes.
 */
import { MCPProxyError } from '../errors.ts';
import { isObject } from '../json.ts';
import type {
  JsonRpcMessage,
  JsonRpcNotification,
  JsonRpcRequest,
  JsonRpcResponse,
  RequestId,
  ServerNotification,
} from '../types.ts';
import { errorFromRpcError } from '../wire-errors.ts';
import type { ServerListeners } from './transport.ts';

interface Pending {
  resolve(response: JsonRpcResponse): void;
  reject(error: unknown): void;
}

/** Sends one message; resolves when it is handed over (for a POST: accepted and read). */
export type Send = (message: JsonRpcMessage) => Promise<void>;

/** One side of a JSON-RPC conversation over a streaming transport. */
export class Peer {
  readonly #send: Send;
  readonly #listeners: ServerListeners;
  readonly #pending = new Map<RequestId, Pending>();
  /** Server requests being answered, so `notifications/cancelled` can abort their handler. */
  readonly #serving = new Map<RequestId, AbortController>();

  /**
   * @param send how answers to server requests and cancellations leave
   * @param listeners where server notifications and requests go
   */
  constructor(send: Send, listeners: ServerListeners) {
    this.#send = send;
    this.#listeners = listeners;
  }

  /**
   * Sends `message` with `transmit` and resolves with the response that `receive()` is handed.
   * Rejects when `transmit` fails, or with the signal's reason when it aborts (and then tells
   * the server, except for `initialize`, which the spec says must not be cancelled).
   */
  call(
    message: JsonRpcRequest,
    signal: AbortSignal,
    transmit: () => Promise<void>,
  ): Promise<JsonRpcResponse> {
    const { id } = message;
    return new Promise<JsonRpcResponse>((resolve, reject) => {
      const onAbort = () => {
        if (!this.#pending.has(id)) return;
        settle();
        reject(signal.reason);
        const reason = signal.reason;
        const closing = reason instanceof MCPProxyError && reason.code === 'closed';
        if (message.method !== 'initialize' && !closing) {
          const text = reason instanceof Error ? reason.message : 'The request was cancelled.';
          this.#send({
            jsonrpc: '2.0',
            method: 'notifications/cancelled',
            params: { requestId: id, reason: text },
          }).catch(() => {
            // Best effort: the call already rejected, and the server may be gone.
          });
        }
      };
      const settle = () => {
        this.#pending.delete(id);
        signal.removeEventListener('abort', onAbort);
      };
      this.#pending.set(id, {
        resolve: (response) => {
          settle();
          resolve(response);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      });
      signal.addEventListener('abort', onAbort, { once: true });
      transmit().catch((error: unknown) => {
        if (signal.aborted) onAbort();
        else this.#pending.get(id)?.reject(error);
      });
    });
  }

  /** True while the call with `id` waits for its response. */
  waiting(id: RequestId): boolean {
    return this.#pending.has(id);
  }

  /** Fails the call with `id`, if it still waits. */
  reject(id: RequestId, error: unknown): void {
    this.#pending.get(id)?.reject(error);
  }

  /** Fails every waiting call (the connection is gone) and aborts server requests in progress. */
  failAll(error: unknown): void {
    for (const pending of [...this.#pending.values()]) pending.reject(error);
    for (const controller of this.#serving.values()) controller.abort(error);
    this.#serving.clear();
  }

  /** Routes one incoming message (or batch): a response, a notification or a server request. */
  receive(message: unknown): void {
    if (Array.isArray(message)) {
      for (const one of message) this.receive(one);
      return;
    }
    if (!isObject(message) || message.jsonrpc !== '2.0') return;
    const { id, method } = message;
    if (typeof method === 'string') {
      if (id === undefined) this.#notification(message as unknown as JsonRpcNotification);
      else if (typeof id === 'string' || typeof id === 'number')
        void this.#serve(message as unknown as JsonRpcRequest);
      return;
    }
    if (typeof id !== 'string' && typeof id !== 'number') return;
    const pending = this.#pending.get(id);
    if (!pending) return;
    const { result, error } = message;
    if (isObject(error) && typeof error.code === 'number' && typeof error.message === 'string') {
      const failure = { code: error.code, message: error.message, data: error.data };
      // The proxy reports its own failures in-band here (a timeout, an unreachable upstream).
      const proxyError = errorFromRpcError(failure, {}, true);
      if (proxyError) pending.reject(proxyError);
      else pending.resolve({ jsonrpc: '2.0', id, error: failure });
    } else if (isObject(result)) {
      pending.resolve({ jsonrpc: '2.0', id, result });
    } else {
      pending.reject(
        new MCPProxyError('invalid_response', 'The JSON-RPC response has neither a result nor an error.'),
      );
    }
  }

  #notification(message: JsonRpcNotification): void {
    if (message.method === 'notifications/cancelled') {
      const requestId = message.params?.requestId;
      if (typeof requestId === 'string' || typeof requestId === 'number') {
        this.#serving
          .get(requestId)
          ?.abort(new DOMException('The server cancelled its request.', 'AbortError'));
        this.#serving.delete(requestId);
      }
    }
    const { method, params } = message;
    this.#listeners.onnotification(
      (params === undefined ? { method } : { method, params }) as ServerNotification,
    );
  }

  async #serve(request: JsonRpcRequest): Promise<void> {
    const controller = new AbortController();
    this.#serving.set(request.id, controller);
    let response: JsonRpcResponse;
    try {
      response = await this.#listeners.onrequest(request, controller.signal);
    } catch (error) {
      response = {
        jsonrpc: '2.0',
        id: request.id,
        error: { code: -32603, message: error instanceof Error ? error.message : 'Internal error' },
      };
    }
    // MCP "Cancellation": a cancelled request gets no response.
    if (controller.signal.aborted || this.#serving.get(request.id) !== controller) return;
    this.#serving.delete(request.id);
    await this.#send(response).catch(() => {
      // The connection is gone; the server will time the request out.
    });
  }
}
