/**
 * @module errors
 * What the client throws: one hierarchy, rooted at {@link MCPProxyError}.
 * - Failures on the way to the MCP server (the proxy refused the call, the upstream failed, the
 *   network failed, it timed out): `code` is a stable string, the proxy's `error.data.code`
 *   (docs/errors.md) or one of the client's own codes.
 * - {@link McpError}: the MCP server itself answered with a JSON-RPC error; `code` is its number.
 *   So `typeof error.code === 'number'` exactly when the server, not the way to it, said no.
 *
 * A cancelled call rejects with the `AbortSignal`'s reason, exactly like `fetch`.
 *
 * `instanceof` works across duplicate copies of this package (two bundles, two versions): each
 * class is branded with a `Symbol.for` key and checks the brand, not the prototype chain.
 *
 * This module holds the classes and codes only; turning what the proxy sent (an HTTP answer, an
 * in-band JSON-RPC error, a WebSocket close) into them is `wire-errors.ts`.
 */

/** The proxy's stable error codes (docs/errors.md). */
export type ProxyErrorCode =
  | 'parse_error'
  | 'invalid_envelope'
  | 'invalid_message'
  | 'header_mismatch'
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
  | 'stream_event_foreign'
  | 'stream_event_unknown'
  | 'unsupported_protocol_version'
  | 'not_found'
  | 'unknown_server'
  | 'method_not_allowed'
  | 'session_not_found'
  | 'rate_limited'
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
  | 'json_too_deep'
  | 'too_many_in_flight'
  | 'search_limit'
  | 'overloaded'
  | 'relay_interrupted'
  | 'batch_too_large'
  | 'client_not_built'
  | 'handshake_timeout'
  | 'token_invalid'
  | 'token_expired'
  | 'token_revoked'
  | 'origin_mismatch'
  | 'admin_required'
  | 'invalid_token_request'
  | 'store_unavailable'
  | 'oidc_issuer_unavailable'
  | 'oidc_no_grant'
  | 'forbidden_server'
  | 'token_not_found'
  | 'store_full'
  | 'signing_key_unavailable'
  | 'upstream_auth_required'
  | 'upstream_auth_failed'
  | 'upstream_auth_unsupported'
  | 'oauth_state_invalid'
  | 'oauth_bind_refused'
  | 'oauth_sign_in_limited'
  | 'upstream_auth_declined'
  | 'oauth_connection_not_found'
  | 'upstream_auth_ended'
  | 'oauth_code_invalid'
  | 'oauth_user_mismatch'
  | 'oauth_login_failed'
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
  /** A feature the chosen transport cannot offer (e.g. request handlers over `http`). */
  | 'not_supported'
  /** The client was closed. */
  | 'closed'
  /** A WebSocket to the proxy closed while calls were in flight (see `data.closeCode`). */
  | 'connection_closed'
  /** `authorize()`: the browser blocked the sign-in popup (not called from a user gesture). */
  | 'popup_blocked'
  /** `authorize()`: the user closed the sign-in popup before it finished. */
  | 'popup_closed'
  /** `authorize()`: the sign-in did not finish within its `timeoutMs`. */
  | 'sign_in_timeout'
  /** `authorize()`: the proxy's callback page reported a failed sign-in. */
  | 'sign_in_failed';

/** A stable string code, including codes a newer proxy may add. */
export type StableCode = ErrorCode | (string & {});

/** Every code an {@link MCPProxyError} may carry. */
export type ErrorCode = ProxyErrorCode | ClientErrorCode;

/** Facts the proxy attaches to an error: its `error.data`, minus `code`. */
export type ErrorData = { readonly [key: string]: unknown };

/** Options of every {@link MCPProxyError} constructor. */
export interface MCPProxyErrorOptions {
  /** HTTP status of the proxy's answer, when there was one. */
  readonly status?: number;
  /** The proxy's `error.data` (without `code`), or an MCP server's JSON-RPC error `data`. */
  readonly data?: unknown;
  /** The JSON-RPC error code of the answer. */
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

/** `data[key]` when it has the type a getter promises, else undefined (a newer proxy may differ). */
function readData<T extends 'string' | 'number'>(
  data: ErrorData | undefined,
  key: string,
  type: T,
): (T extends 'string' ? string : number) | undefined {
  const value = data?.[key];
  return typeof value === type ? (value as T extends 'string' ? string : number) : undefined;
}

/**
 * Root of everything the client throws (other than your own abort reason). Branch on `code`,
 * never on `message`: a stable string for failures on the way to the MCP server, the JSON-RPC
 * number for {@link McpError}.
 *
 * @example
 * ```ts
 * try { await client.callTool('echo', { message: 'hi' }); }
 * catch (error) {
 *   if (error instanceof McpError) console.log('the server said no', error.code, error.data);
 *   else if (error instanceof MCPProxyError) console.log(error.code, error.status, error.requestId);
 * }
 * ```
 */
export class MCPProxyError extends Error {
  /** Brand shared by every copy of this class (see the module comment). */
  static readonly brand: symbol = Symbol.for('mcp-proxy-client.MCPProxyError');

  /**
   * What went wrong: a stable {@link ErrorCode} (a newer proxy may add codes) for failures on
   * the way to the MCP server; the server's JSON-RPC error number for {@link McpError}.
   */
  readonly code: StableCode | number;
  /** HTTP status of the proxy's answer, when there was one. */
  readonly status: number | undefined;
  /** The proxy's `error.data` (without `code`); for {@link McpError}, the server's `data`. */
  readonly data: unknown;
  /** The JSON-RPC error code of the answer (for {@link McpError}, equal to `code`). */
  readonly rpcCode: number | undefined;
  /** The proxy's `X-Request-Id` header. */
  readonly requestId: string | undefined;

  constructor(code: StableCode | number, message: string, options: MCPProxyErrorOptions = {}) {
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
  declare readonly code: StableCode;
  declare readonly data: ErrorData | undefined;
}

/** Why the egress guard refused a target (docs/security.md). */
export type TargetForbiddenReason =
  | 'scheme_not_allowed'
  | 'host_forbidden'
  | 'address_forbidden'
  | 'dns_failed'
  | 'not_in_allowlist'
  | 'port_not_allowed'
  | 'redirect_refused'
  | 'ambiguous_url';

/** The proxy's egress guard refused `mcpServerUrl` (`target_forbidden`, HTTP 403). */
export class TargetForbiddenError extends MCPProxyError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.TargetForbiddenError');
  override name = 'TargetForbiddenError';
  declare readonly code: StableCode;
  declare readonly data: ErrorData | undefined;

  /** Why, e.g. `address_forbidden` for a private address. */
  get reason(): TargetForbiddenReason | (string & {}) | undefined {
    return readData(this.data, 'reason', 'string');
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
  declare readonly code: StableCode;
  declare readonly data: ErrorData | undefined;

  /** The MCP server's HTTP status, when it answered with one. */
  get upstreamStatus(): number | undefined {
    return readData(this.data, 'upstreamStatus', 'number');
  }

  /** For `upstream_unreachable`: the network error code, e.g. `ECONNREFUSED`. */
  get reason(): string | undefined {
    return readData(this.data, 'reason', 'string');
  }
}

/** The MCP server refused the MCP token (`upstream_unauthorized`): check `mcpToken`. */
export class UpstreamAuthError extends UpstreamError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.UpstreamAuthError');
  override name = 'UpstreamAuthError';

  /** The MCP server's `WWW-Authenticate` header (OAuth discovery), passed through by the proxy. */
  readonly wwwAuthenticate: string | undefined;

  constructor(
    code: StableCode,
    message: string,
    options: MCPProxyErrorOptions & { wwwAuthenticate?: string },
  ) {
    super(code, message, options);
    this.wwwAuthenticate = options.wwwAuthenticate;
  }
}

/**
 * The MCP server needs the user to sign in (`upstream_auth_required`, HTTP 401): the proxy's
 * OAuth broker (its docs/oauth.md) holds no token of this user for the server. Open
 * {@link UpstreamAuthRequiredError.authorizeUrl} with `client.authorize(error)` (from a click),
 * or let the client's `onAuthRequired` option do it and retry the call.
 */
export class UpstreamAuthRequiredError extends UpstreamAuthError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.UpstreamAuthRequiredError');
  override name = 'UpstreamAuthRequiredError';

  /** The proxy's one-time sign-in page for this user and server (under the proxy's origin). */
  get authorizeUrl(): string | undefined {
    return readData(this.data, 'authorizeUrl', 'string');
  }

  /** The MCP server that needs the sign-in: its configured name, or its host. */
  get server(): string | undefined {
    return readData(this.data, 'server', 'string');
  }

  /**
   * The one-time code to show the user beside {@link authorizeUrl} when the link is opened
   * without this app (`XXXX-XXXX`); only when the proxy offers codes (`OAUTH_USER_CODES=true`).
   */
  get userCode(): string | undefined {
    return readData(this.data, 'userCode', 'string');
  }
}

/**
 * A sign-in popup opened by `client.authorize()` did not finish: the browser blocked it
 * (`popup_blocked`: call `authorize()` from a click handler), the user closed it
 * (`popup_closed`), it took longer than its `timeoutMs` (`sign_in_timeout`), or the proxy's
 * callback page reported a failure (`sign_in_failed`, its `data.code` when it said).
 */
export class SignInError extends MCPProxyError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.SignInError');
  override name = 'SignInError';
  declare readonly code: StableCode;
  declare readonly data: ErrorData | undefined;
}

/** The call took too long: at the proxy (`upstream_timeout`) or in the client (`client_timeout`). */
export class TimeoutError extends MCPProxyError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.TimeoutError');
  override name = 'TimeoutError';
  declare readonly code: StableCode;
  declare readonly data: ErrorData | undefined;
}

/**
 * The request was malformed: refused by the proxy (`parse_error`, `invalid_envelope`,
 * `invalid_message`, `header_mismatch`, `invalid_target`, `unsupported_media_type`, `payload_too_large`,
 * `batch_too_large`, `json_too_deep`, `not_acceptable`, `unsupported_protocol_version`,
 * `unknown_server`) or caught by the client (`invalid_input`).
 */
export class InvalidInputError extends MCPProxyError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.InvalidInputError');
  override name = 'InvalidInputError';
  declare readonly code: StableCode;
  declare readonly data: ErrorData | undefined;

  /** The offending field, when known. */
  get field(): string | undefined {
    return readData(this.data, 'field', 'string');
  }
}

/**
 * The session is gone, missing or over a limit (`session_not_found`, `upstream_session_expired`,
 * `session_required`, `session_limit`, `request_id_in_use`, `stream_conflict`,
 * `stream_event_foreign`, `stream_event_unknown`). When
 * {@link SessionError.expired} is true, call `initialize()` again.
 */
export class SessionError extends MCPProxyError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.SessionError');
  override name = 'SessionError';
  declare readonly code: StableCode;
  declare readonly data: ErrorData | undefined;

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
 * A limit of the proxy was reached: a rate limit (`rate_limited`, HTTP 429: requests per token or
 * per address, WebSocket messages, new sessions, or failed authentications), the requests in
 * flight for a token or a socket (`too_many_in_flight`, 429: wait for answers), or the proxy's
 * own capacity (`overloaded`, 503: it sheds load). Retry after
 * {@link RateLimitError.retryAfterSeconds} when the proxy said.
 */
export class RateLimitError extends MCPProxyError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.RateLimitError');
  override name = 'RateLimitError';
  declare readonly code: StableCode;
  declare readonly data: ErrorData | undefined;

  /** Seconds to wait before retrying, when the proxy said. */
  get retryAfterSeconds(): number | undefined {
    return readData(this.data, 'retryAfterSeconds', 'number');
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
  declare readonly code: StableCode;
  declare readonly data: ErrorData | undefined;
}

/** A feature the chosen transport cannot offer (`not_supported`), e.g. request handlers over `http`. */
export class NotSupportedError extends MCPProxyError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.NotSupportedError');
  override name = 'NotSupportedError';
  declare readonly code: StableCode;
  declare readonly data: ErrorData | undefined;
}

/**
 * The MCP server answered with a JSON-RPC error (e.g. -32601 method not found, -32602 invalid
 * params): the way to the server worked; the server said no. `code` is the JSON-RPC number,
 * `data` the error's data as the server sent it.
 */
export class McpError extends MCPProxyError {
  static override readonly brand: symbol = Symbol.for('mcp-proxy-client.McpError');
  override name = 'McpError';
  /** The JSON-RPC error code. */
  declare readonly code: number;
  /** The JSON-RPC error code (the same as `code`). */
  declare readonly rpcCode: number;

  constructor(code: number, message: string, data?: unknown, options: { requestId?: string } = {}) {
    super(code, message, { ...options, data, rpcCode: code });
  }
}
