/**
 * @module errors
 * What the client throws. Two roots, kept apart on purpose:
 * - {@link MCPProxyError}: the call did not reach an answer from the MCP server (the proxy refused
 *   it, the upstream failed, the network failed, it timed out). `code` is a stable string: the
 *   proxy's `error.data.code` (docs/errors.md) or one of the client's own codes.
 * - {@link McpError}: the MCP server itself answered with a JSON-RPC error; `code` is its number.
 *
 * A cancelled call rejects with the `AbortSignal`'s reason, exactly like `fetch`.
 *
 * `instanceof` works across duplicate copies of this package (two bundles, two versions): each
 * class is branded with a `Symbol.for` key and checks the brand, not the prototype chain.
 */

/** The proxy's stable error codes (docs/errors.md). */
export type ProxyErrorCode =
  | 'parse_error'
  | 'invalid_envelope'
  | 'invalid_message'
  | 'invalid_target'
  | 'unsupported_media_type'
  | 'payload_too_large'
  | 'unauthorized'
  | 'target_forbidden'
  | 'origin_forbidden'
  | 'host_forbidden'
  | 'not_acceptable'
  | 'session_required'
  | 'stream_conflict'
  | 'unsupported_protocol_version'
  | 'not_found'
  | 'unknown_server'
  | 'method_not_allowed'
  | 'session_not_found'
  | 'session_limit'
  | 'request_id_in_use'
  | 'upstream_unreachable'
  | 'upstream_timeout'
  | 'upstream_protocol_error'
  | 'upstream_response_too_large'
  | 'upstream_http_error'
  | 'upstream_rejected'
  | 'upstream_unauthorized'
  | 'upstream_session_expired'
  | 'shutting_down'
  | 'internal_error';

/** Codes the client raises itself, without an answer from the proxy. */
export type ClientErrorCode =
  /** `fetch` failed: proxy down, DNS, TLS, or the browser blocked the call (CORS, mixed content). */
  | 'network_error'
  /** The call took longer than `timeoutMs`. */
  | 'client_timeout'
  /** The proxy's answer is not what the POST /proxy contract promises. */
  | 'invalid_response'
  /** A bad option or argument, caught before sending anything. */
  | 'invalid_input'
  /** A feature this proxy version does not offer yet (a transport, named servers). */
  | 'not_supported'
  /** The client was closed. */
  | 'closed';

/** Every code an {@link MCPProxyError} may carry. */
export type ErrorCode = ProxyErrorCode | ClientErrorCode;

/** Facts attached to an error: the proxy's `error.data`, minus `code`. */
export type ErrorData = { readonly [key: string]: unknown };

/** Options of every {@link MCPProxyError} constructor. */
export interface MCPProxyErrorOptions {
  /** HTTP status of the proxy's answer, when there was one. */
  readonly status?: number;
  /** The proxy's `error.data` (without `code`). */
  readonly data?: ErrorData;
  /** The JSON-RPC error code the proxy sent. */
  readonly rpcCode?: number;
  /** The proxy's `X-Request-Id`: quote it when reporting a problem. */
  readonly requestId?: string;
  /** The underlying error. */
  readonly cause?: unknown;
}

type Branded = { readonly brand: symbol };

function brandsOf(target: unknown): symbol[] {
  const brands: symbol[] = [];
  for (let ctor = target; typeof ctor === 'function'; ctor = Object.getPrototypeOf(ctor)) {
    if (Object.hasOwn(ctor, 'brand')) brands.push((ctor as unknown as Branded).brand);
  }
  return brands;
}

function hasBrand(value: unknown, brand: symbol): boolean {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    (value as { [key: symbol]: unknown })[brand] === true
  );
}

function mark(instance: object, ctor: unknown): void {
  for (const brand of brandsOf(ctor)) Object.defineProperty(instance, brand, { value: true });
}

/**
 * Root of every failure of the way to the MCP server. Branch on `code`, never on `message`.
 *
 * @example
 * ```ts
 * try { await client.callTool('echo', { message: 'hi' }); }
 * catch (error) {
 *   if (error instanceof MCPProxyError) console.log(error.code, error.status, error.requestId);
 * }
 * ```
 */
export class MCPProxyError extends Error {
  /** Brand shared by every copy of this class (see the module comment). */
  static readonly brand: symbol = Symbol.for('mcp-proxy-client.MCPProxyError');

  /** Stable code: a {@link ProxyErrorCode} or {@link ClientErrorCode}; a newer proxy may add codes. */
  readonly code: ErrorCode | (string & {});
  /** HTTP status of the proxy's answer, when there was one. */
  readonly status: number | undefined;
  /** The proxy's `error.data` (without `code`). */
  readonly data: ErrorData | undefined;
  /** The JSON-RPC error code the proxy sent. */
  readonly rpcCode: number | undefined;
  /** The proxy's `X-Request-Id` header. */
  readonly requestId: string | undefined;

  constructor(code: ErrorCode | (string & {}), message: string, options: MCPProxyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MCPProxyError';
    this.code = code;
    this.status = options.status;
    this.data = options.data;
    this.rpcCode = options.rpcCode;
    this.requestId = options.requestId;
    mark(this, new.target);
  }

  /** Brand check, so `instanceof` holds across duplicate copies of this package. */
  static override [Symbol.hasInstance](this: Branded, value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class right of instanceof (a subclass too).
    return hasBrand(value, this.brand);
  }
}

/**
 * The proxy refused the caller: a missing or wrong proxy token (`unauthorized`, HTTP 401: check
 * `proxyToken`) or an Origin it does not serve (`origin_forbidden`, 403).
 */
export class ProxyAuthError extends MCPProxyError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.ProxyAuthError');
  override name = 'ProxyAuthError';
}

/** Why the egress guard refused a target (docs/security.md). */
export type TargetForbiddenReason =
  | 'scheme_not_allowed'
  | 'host_forbidden'
  | 'address_forbidden'
  | 'dns_failed'
  | 'not_in_allowlist'
  | 'port_not_allowed'
  | 'redirect_refused';

/** The proxy's egress guard refused `mcpServerUrl` (`target_forbidden`, HTTP 403). */
export class TargetForbiddenError extends MCPProxyError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.TargetForbiddenError');
  override name = 'TargetForbiddenError';

  /** Why, e.g. `address_forbidden` for a private address. */
  get reason(): TargetForbiddenReason | (string & {}) | undefined {
    const reason = this.data?.reason;
    return typeof reason === 'string' ? reason : undefined;
  }
}

/**
 * The MCP server could not be reached or answered with something other than MCP
 * (`upstream_unreachable`, `upstream_protocol_error`, `upstream_response_too_large`,
 * `upstream_http_error`, `upstream_rejected`, `upstream_unauthorized`).
 */
export class UpstreamError extends MCPProxyError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.UpstreamError');
  override name = 'UpstreamError';

  /** The MCP server's HTTP status, when it answered with one. */
  get upstreamStatus(): number | undefined {
    const status = this.data?.upstreamStatus;
    return typeof status === 'number' ? status : undefined;
  }

  /** For `upstream_unreachable`: the network error code, e.g. `ECONNREFUSED`. */
  get reason(): string | undefined {
    const reason = this.data?.reason;
    return typeof reason === 'string' ? reason : undefined;
  }
}

/** The MCP server refused the MCP token (`upstream_unauthorized`): check `mcpToken`. */
export class UpstreamAuthError extends UpstreamError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.UpstreamAuthError');
  override name = 'UpstreamAuthError';

  /** The MCP server's `WWW-Authenticate` header (OAuth discovery), passed through by the proxy. */
  readonly wwwAuthenticate: string | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: MCPProxyErrorOptions & { wwwAuthenticate?: string },
  ) {
    super(code, message, options);
    this.wwwAuthenticate = options.wwwAuthenticate;
  }
}

/** The call took too long: at the proxy (`upstream_timeout`) or in the client (`client_timeout`). */
export class TimeoutError extends MCPProxyError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.TimeoutError');
  override name = 'TimeoutError';
}

/**
 * The request was malformed: refused by the proxy (`parse_error`, `invalid_envelope`,
 * `invalid_message`, `invalid_target`, `unsupported_media_type`, `payload_too_large`,
 * `not_acceptable`, `unsupported_protocol_version`, `unknown_server`) or caught by the client
 * (`invalid_input`).
 */
export class InvalidInputError extends MCPProxyError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.InvalidInputError');
  override name = 'InvalidInputError';

  /** The offending field, when known. */
  get field(): string | undefined {
    const field = this.data?.field;
    return typeof field === 'string' ? field : undefined;
  }
}

/**
 * The session is gone, missing or over a limit (`session_not_found`, `upstream_session_expired`,
 * `session_required`, `session_limit`, `request_id_in_use`, `stream_conflict`). When
 * {@link SessionError.expired} is true, call `initialize()` again.
 */
export class SessionError extends MCPProxyError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.SessionError');
  override name = 'SessionError';

  /** True when a new `initialize()` is the fix. */
  get expired(): boolean {
    return (
      this.code === 'session_not_found' ||
      this.code === 'upstream_session_expired' ||
      this.code === 'session_required'
    );
  }
}

/**
 * `fetch` itself failed (`network_error`): the proxy is down or unreachable, or the browser
 * blocked the call (an origin missing from the proxy's `CORS_ORIGINS`, mixed content). Browsers
 * do not say which; the console does.
 */
export class NetworkError extends MCPProxyError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.NetworkError');
  override name = 'NetworkError';
}

/** A feature this proxy version does not offer yet (`not_supported`). */
export class NotSupportedError extends MCPProxyError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.NotSupportedError');
  override name = 'NotSupportedError';
}

/**
 * The MCP server answered with a JSON-RPC error (e.g. -32601 method not found, -32602 invalid
 * params). Not an {@link MCPProxyError}: the way to the server worked; the server said no.
 */
export class McpError extends Error {
  /** Brand shared by every copy of this class. */
  static readonly brand: symbol = Symbol.for('mcp-proxy-client.McpError');

  /** The JSON-RPC error code. */
  readonly code: number;
  /** The JSON-RPC error's `data`, as the server sent it. */
  readonly data: unknown;

  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.name = 'McpError';
    this.code = code;
    this.data = data;
    mark(this, new.target);
  }

  /** Brand check, so `instanceof` holds across duplicate copies of this package. */
  static override [Symbol.hasInstance](this: Branded, value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class right of instanceof (a subclass too).
    return hasBrand(value, this.brand);
  }
}

type ErrorClass = new (code: ErrorCode, message: string, options: MCPProxyErrorOptions) => MCPProxyError;

/** The one mapping from the proxy's stable codes to classes; unknown codes get the root. */
export const ERROR_CLASSES: { readonly [C in ProxyErrorCode]: ErrorClass } = Object.freeze({
  parse_error: InvalidInputError,
  invalid_envelope: InvalidInputError,
  invalid_message: InvalidInputError,
  invalid_target: InvalidInputError,
  unsupported_media_type: InvalidInputError,
  payload_too_large: InvalidInputError,
  unauthorized: ProxyAuthError,
  target_forbidden: TargetForbiddenError,
  origin_forbidden: ProxyAuthError,
  host_forbidden: MCPProxyError,
  not_acceptable: InvalidInputError,
  session_required: SessionError,
  stream_conflict: SessionError,
  unsupported_protocol_version: InvalidInputError,
  not_found: MCPProxyError,
  unknown_server: InvalidInputError,
  method_not_allowed: MCPProxyError,
  session_not_found: SessionError,
  session_limit: SessionError,
  request_id_in_use: SessionError,
  upstream_unreachable: UpstreamError,
  upstream_timeout: TimeoutError,
  upstream_protocol_error: UpstreamError,
  upstream_response_too_large: UpstreamError,
  upstream_http_error: UpstreamError,
  upstream_rejected: UpstreamError,
  upstream_unauthorized: UpstreamAuthError,
  upstream_session_expired: SessionError,
  shutting_down: MCPProxyError,
  internal_error: MCPProxyError,
});

/** What the transport read from a failed proxy answer. */
export interface ProxyFailure {
  readonly status: number;
  readonly body: unknown;
  readonly requestId?: string | undefined;
  readonly wwwAuthenticate?: string | undefined;
}

/** Turns a proxy error answer (4xx/5xx with a JSON-RPC error body) into the right class. */
export function errorFromProxyFailure(failure: ProxyFailure): MCPProxyError {
  const base = { status: failure.status, ...(failure.requestId ? { requestId: failure.requestId } : {}) };
  const error = readErrorObject(failure.body);
  const data = error?.data;
  const code = isObject(data) && typeof data.code === 'string' ? data.code : undefined;
  if (!error || code === undefined) {
    return new MCPProxyError(
      'invalid_response',
      `The proxy answered HTTP ${failure.status} without a proxy error body: is proxyUrl the mcp-proxy?`,
      base,
    );
  }
  const { code: _code, ...rest } = data as { code: string; [key: string]: unknown };
  const options: MCPProxyErrorOptions = { ...base, data: rest, rpcCode: error.code };
  if (code === 'upstream_unauthorized') {
    return new UpstreamAuthError(code, error.message, {
      ...options,
      ...(failure.wwwAuthenticate ? { wwwAuthenticate: failure.wwwAuthenticate } : {}),
    });
  }
  const known = Object.hasOwn(ERROR_CLASSES, code) ? ERROR_CLASSES[code as ProxyErrorCode] : MCPProxyError;
  return new known(code as ErrorCode, error.message, options);
}

function readErrorObject(body: unknown): { code: number; message: string; data?: unknown } | undefined {
  if (!isObject(body) || !isObject(body.error)) return undefined;
  const { code, message, data } = body.error;
  if (typeof code !== 'number' || typeof message !== 'string') return undefined;
  return { code, message, data };
}

/** True for a non-null, non-array object. */
export function isObject(value: unknown): value is { [key: string]: unknown } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
