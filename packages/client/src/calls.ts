/**
 * @module calls
 * One exchange with the MCP server, as every method of the client makes it: the call's signal
 * (the caller's signal, `close()` and the deadline), the request id (also the progress token)
 * and the progress listener found by it, and a JSON-RPC error answer turned into
 * {@link McpError}.
 */
import type { RequestOptions } from './call-options.ts';
import { McpError } from './errors.ts';
import { Emitter } from './events.ts';
import { isObject } from './json.ts';
import { checkTimeout, invalid } from './options.ts';
import { abortable, callSignal } from './signals.ts';
import type { Transport } from './transport/transport.ts';
import type { JsonRpcResponse, ProgressToken, ResultOf, ServerNotification } from './types.ts';

/** Makes the client's calls over one transport, within the client's lifetime. */
export class Calls {
  readonly #transport: Transport;
  readonly #timeoutMs: number;
  readonly #lifetime: AbortSignal;
  readonly #progress = new Map<ProgressToken, NonNullable<RequestOptions['onprogress']>>();
  #nextId = 1;

  /** `timeoutMs`: the client's default deadline; `lifetime` aborts at `close()`. */
  constructor(transport: Transport, timeoutMs: number, lifetime: AbortSignal) {
    this.#transport = transport;
    this.#timeoutMs = timeoutMs;
    this.#lifetime = lifetime;
  }

  /** Hands a `notifications/progress` to the listener of the call whose token it names. */
  progressed(notification: ServerNotification): void {
    if (notification.method !== 'notifications/progress') return;
    const listener = this.#progress.get(notification.params.progressToken);
    if (listener) Emitter.safely(listener, notification.params);
  }

  /** Sends one request; a JSON-RPC error answer throws {@link McpError}. */
  async request<M extends string>(
    method: M,
    params: unknown,
    options: RequestOptions | undefined,
  ): Promise<ResultOf<M>> {
    const id = this.#nextId++;
    let sent = params as Record<string, unknown> | undefined;
    const onprogress = options?.onprogress;
    if (onprogress !== undefined) {
      if (typeof onprogress !== 'function') throw invalid('onprogress', 'must be a function');
      // MCP "Progress": the token is ours to choose; the request id is unique per client.
      const meta = isObject(sent?._meta) ? sent._meta : {};
      sent = { ...sent, _meta: { ...meta, progressToken: id } };
      this.#progress.set(id, onprogress);
    }
    const message = { jsonrpc: '2.0' as const, id, method, ...(sent === undefined ? {} : { params: sent }) };
    let response: JsonRpcResponse;
    try {
      response = await this.send(options, (signal) => this.#transport.request(message, { signal }));
    } finally {
      this.#progress.delete(id);
    }
    if ('error' in response) {
      throw new McpError(response.error.code, response.error.message, response.error.data);
    }
    return response.result as ResultOf<M>;
  }

  /** Sends one notification (no answer). */
  notify(
    method: string,
    params: Record<string, unknown> | undefined,
    options: RequestOptions | undefined,
  ): Promise<void> {
    const message = { jsonrpc: '2.0' as const, method, ...(params === undefined ? {} : { params }) };
    return this.send(options, (signal) => this.#transport.notify(message, { signal }));
  }

  /** Runs one exchange under the call's signal: caller's signal, close() and the deadline. */
  async send<T>(
    options: RequestOptions | undefined,
    exchange: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const timeoutMs = options?.timeoutMs ?? this.#timeoutMs;
    checkTimeout(timeoutMs, 'timeoutMs');
    const call = callSignal([options?.signal, this.#lifetime], timeoutMs);
    try {
      if (call.signal.aborted) throw call.signal.reason;
      return await abortable(exchange(call.signal), call.signal);
    } finally {
      call.dispose();
    }
  }
}
