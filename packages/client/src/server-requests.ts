/**
 * @module server-requests
 * The client's side of server-to-client requests (sampling, elicitation, roots, ping): the
 * handlers registered with `setRequestHandler()`, the capabilities they imply in `initialize`,
 * and the JSON-RPC answer each request gets.
 */
import { McpError } from './errors.ts';
import { isObject } from './json.ts';
import type {
  ClientCapabilities,
  JsonRpcRequest,
  JsonRpcResponse,
  RequestId,
  ServerRequestMap,
  ServerRequestMethod,
} from './types.ts';

/** What a request handler gets besides the params. */
export interface RequestHandlerExtra {
  /** Aborts when the server cancels its request (`notifications/cancelled`) or the client closes. */
  readonly signal: AbortSignal;
  /** The server's id of the request. */
  readonly requestId: RequestId;
}

/**
 * Answers one kind of server-to-client request. Resolve with the result; throw an
 * {@link McpError} to answer with that JSON-RPC error (e.g. `-1` when the user declines a
 * sampling request); any other throw answers `-32603` with its message.
 */
export type RequestHandler<M extends ServerRequestMethod> = (
  params: ServerRequestMap[M]['params'],
  extra: RequestHandlerExtra,
) => ServerRequestMap[M]['result'] | Promise<ServerRequestMap[M]['result']>;

/** The registered handlers, one per method. */
export class ServerRequests {
  readonly #handlers = new Map<string, RequestHandler<ServerRequestMethod>>();

  /** Answers `method` with `handler` (replacing any earlier one); returns a function that removes it. */
  set<M extends ServerRequestMethod>(method: M, handler: RequestHandler<M>): () => void {
    const stored = handler as unknown as RequestHandler<ServerRequestMethod>;
    this.#handlers.set(method, stored);
    return () => {
      if (this.#handlers.get(method) === stored) this.#handlers.delete(method);
    };
  }

  /** Drops every handler. */
  clear(): void {
    this.#handlers.clear();
  }

  /** The capabilities the registered handlers imply (`sampling`, `elicitation`, `roots`). */
  capabilities(): ClientCapabilities {
    const implied: ClientCapabilities = {};
    if (this.#handlers.has('sampling/createMessage')) implied.sampling = {};
    if (this.#handlers.has('elicitation/create')) implied.elicitation = {};
    if (this.#handlers.has('roots/list')) implied.roots = {};
    return implied;
  }

  /** Answers a server-to-client request with the registered handler. */
  async answer(request: JsonRpcRequest, signal: AbortSignal): Promise<JsonRpcResponse> {
    const { id, method } = request;
    const handler = this.#handlers.get(method);
    try {
      if (!handler) {
        if (method === 'ping') return { jsonrpc: '2.0', id, result: {} };
        return { jsonrpc: '2.0', id, error: { code: -32601, message: `Method not found: ${method}` } };
      }
      const params = request.params as ServerRequestMap[ServerRequestMethod]['params'];
      const result: unknown = await handler(params as never, { signal, requestId: id });
      if (!isObject(result)) throw new TypeError(`The ${method} handler returned no result object.`);
      return { jsonrpc: '2.0', id, result };
    } catch (error) {
      if (error instanceof McpError) {
        const data = error.data === undefined ? {} : { data: error.data };
        return { jsonrpc: '2.0', id, error: { code: error.code, message: error.message, ...data } };
      }
      return {
        jsonrpc: '2.0',
        id,
        error: { code: -32603, message: error instanceof Error ? error.message : String(error) },
      };
    }
  }
}
