/**
 * @module errors
 * The one error hierarchy of the proxy. Every failure a caller can see is a {@link ProxyError}
 * with a stable string `code` from {@link ERROR_REGISTRY} (the table is in errors/registry.ts,
 * re-exported here: import errors from this module); exactly one function, {@link toErrorReply},
 * turns any thrown value into an HTTP status and a JSON-RPC error body. The table is documented
 * in docs/errors.md (a test keeps the two in step).
 */
import { ERROR_REGISTRY, type ErrorCode, type ErrorSpec } from './errors/registry.ts';
import type { JsonRpcError, JsonRpcResponse } from './jsonrpc.ts';

export { ERROR_REGISTRY, type ErrorCode, type ErrorSpec } from './errors/registry.ts';

/** JSON-RPC request id as the spec allows it (null only in replies to unparseable requests). */
export type JsonRpcId = string | number | null;

/** Extra, caller-safe facts attached to an error's JSON-RPC `data`. */
export type ErrorData = Readonly<Record<string, string | number | boolean | null>>;

/** Options for constructing a {@link ProxyError}. */
export interface ProxyErrorOptions {
  /** The underlying error; logged, never sent to the caller. */
  readonly cause?: unknown;
  /** Caller-safe details merged into the JSON-RPC `data` object. */
  readonly data?: ErrorData;
  /** Extra response headers (e.g. an upstream `WWW-Authenticate`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Override the registry's HTTP status (e.g. to mirror an upstream 4xx). */
  readonly status?: number;
}

const BRAND = Symbol.for('mcp-proxy.ProxyError');

/** The root of every error the proxy reports to a caller. */
export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly rpcCode: number;
  readonly data: ErrorData;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message?: string, options: ProxyErrorOptions = {}) {
    const spec: ErrorSpec = ERROR_REGISTRY[code];
    super(message ?? spec.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProxyError';
    this.code = code;
    this.status = options.status ?? spec.status;
    this.rpcCode = spec.rpcCode;
    this.data = options.data ?? {};
    this.headers = options.headers ?? {};
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** Brand check that survives duplicate copies of this module. */
  static is(value: unknown): value is ProxyError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** The JSON-RPC error object the proxy sends. */
export interface JsonRpcErrorBody {
  readonly jsonrpc: '2.0';
  readonly id: JsonRpcId;
  readonly error: {
    readonly code: number;
    readonly message: string;
    readonly data: { readonly code: ErrorCode } & ErrorData;
  };
}

/** An error mapped onto the wire: HTTP status, extra headers and JSON-RPC body. */
export interface ErrorReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: JsonRpcErrorBody;
  /** The error as the proxy saw it, for logging. */
  readonly error: ProxyError;
}

/** Finds a ProxyError anywhere in a `cause` chain (undici and Node wrap errors). */
export function findProxyError(value: unknown): ProxyError | undefined {
  let current: unknown = value;
  for (let depth = 0; depth < 8 && current !== undefined && current !== null; depth++) {
    if (ProxyError.is(current)) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Where an error answer this process made keeps the {@link ProxyError} it was made from: a symbol
 * key, which no message parsed from the wire can hold and which never goes out (JSON has none).
 */
const MADE_FROM = Symbol('mcp-proxy.answerMadeFrom');

/** Turns anything thrown into the proxy's one error reply shape. */
export function toErrorReply(value: unknown, id: JsonRpcId = null): ErrorReply {
  const error = findProxyError(value) ?? new ProxyError('internal_error', undefined, { cause: value });
  const body: JsonRpcErrorBody = {
    jsonrpc: '2.0',
    id,
    error: { code: error.rpcCode, message: error.message, data: { ...error.data, code: error.code } },
  };
  // Enumerable, so a copy of the answer (another id) is still known as the proxy's own.
  Object.defineProperty(body, MADE_FROM, { value: error, enumerable: true });
  return { status: error.status, headers: error.headers, error, body };
}

/**
 * The error this process made `answer` from ({@link toErrorReply}), else undefined: an answer
 * an upstream wrote may say anything in `error.data` (a `code` of the proxy's own included), so
 * only this tells the proxy's answers from an upstream's (review10 HARD-3).
 */
export function proxyErrorOf(answer: JsonRpcResponse): ProxyError | undefined {
  const from = (answer as object as Record<symbol, unknown>)[MADE_FROM];
  return ProxyError.is(from) ? from : undefined;
}

/** Any thrown value as a JSON-RPC error response a session, a stream or a socket can carry. */
export function toJsonRpcError(value: unknown, id: JsonRpcId): JsonRpcResponse {
  return toErrorReply(value, id).body;
}

/**
 * JSON-RPC's own error codes, for answers the proxy gives in an MCP server's place (a tool outside
 * the allowlist, a server request nobody can answer, a client that gave no input). They carry no
 * proxy `code` in `data`: they must read as the server's own answer (a forbidden tool's
 * existence stays hidden).
 */
export const PROTOCOL_ERRORS = {
  method_not_found: -32601,
  invalid_params: -32602,
  internal_error: -32603,
  /** MCP's UnsupportedProtocolVersion (2026-07-28). */
  unsupported_protocol_version: -32022,
} as const;

/** A JSON-RPC error in an MCP server's place: see {@link PROTOCOL_ERRORS}. */
export function protocolError(
  id: JsonRpcId,
  kind: keyof typeof PROTOCOL_ERRORS,
  message: string,
  data?: Readonly<Record<string, unknown>>,
): JsonRpcResponse {
  const error = { code: PROTOCOL_ERRORS[kind], message, ...(data === undefined ? {} : { data }) };
  return { jsonrpc: '2.0', id, error };
}

/** An MCP server's own error passed on (its code and data kept), under another id or message. */
export function relayedError(
  id: JsonRpcId,
  error: JsonRpcError['error'],
  message = error.message,
): JsonRpcResponse {
  return {
    jsonrpc: '2.0',
    id,
    error: { code: error.code, message, ...(error.data === undefined ? {} : { data: error.data }) },
  };
}

/** WebSocket close codes for errors that end a `/ws` connection (documented in docs/websocket.md). */
const CLOSE_CODES: Partial<Record<ErrorCode, number>> = {
  unauthorized: 4401,
  token_invalid: 4401,
  token_expired: 4401,
  token_revoked: 4401,
  origin_mismatch: 4403,
  oidc_no_grant: 4403,
  oidc_issuer_unavailable: 1013,
  store_unavailable: 1013,
  invalid_target: 4400,
  target_forbidden: 4403,
  forbidden_server: 4403,
  origin_forbidden: 4403,
  host_forbidden: 4403,
  unknown_server: 4404,
  session_limit: 4429,
  rate_limited: 4429,
  too_many_in_flight: 4429,
  overloaded: 1013,
  upstream_timeout: 4504,
  upstream_auth_ended: 4410,
  payload_too_large: 1009,
  shutting_down: 1001,
  internal_error: 1011,
};

/** A WebSocket close frame. */
export interface CloseFrame {
  readonly code: number;
  readonly reason: string;
}

/**
 * Close frames for conditions of a `/ws` socket itself rather than errors of the registry:
 * RFC 6455 §7.4.1 codes, documented in docs/websocket.md with the table above.
 */
export const SOCKET_CLOSES = {
  shutting_down: { code: 1001, reason: 'proxy shutting down' },
  binary_frame: { code: 1003, reason: 'binary frames are not supported: send JSON-RPC messages as text' },
  internal: { code: 1011, reason: 'internal error' },
  reader_too_slow: { code: 1013, reason: 'reader too slow: the outbound queue is full' },
  inbound_full: { code: 1013, reason: 'upstream too slow: the inbound queue is full' },
  upstream_stalled: { code: 1013, reason: 'upstream too slow: it stopped taking messages' },
} as const satisfies Record<string, CloseFrame>;

/** The close code of an upstream failure the table gives no code of its own. */
const UPSTREAM_CLOSE_CODE = 4502;

/**
 * A WebSocket close frame for an error: code and a reason within the 123-byte limit.
 * @param cause `upstream` when the socket ends because its upstream connection ended: whatever
 *   failed there is the MCP server's, so an error with no code of its own closes as 4502, never
 *   as the proxy's own 1011.
 */
export function toCloseFrame(value: unknown, cause: 'proxy' | 'upstream' = 'proxy'): CloseFrame {
  const error = findProxyError(value) ?? new ProxyError('internal_error', undefined, { cause: value });
  let code = CLOSE_CODES[error.code] ?? (error.code.startsWith('upstream_') ? UPSTREAM_CLOSE_CODE : 1011);
  if (cause === 'upstream' && code === 1011) code = UPSTREAM_CLOSE_CODE;
  let reason = `${error.code}: ${error.message}`;
  while (Buffer.byteLength(reason) > 123) reason = `${reason.slice(0, -2)}…`;
  return { code, reason };
}
