/**
 * @module wire-errors
 * Reading the proxy's failures off the wire into the classes of `errors.ts`: a failed HTTP
 * answer, a JSON-RPC error that carries the proxy's `data.code` in-band (an event stream, a
 * WebSocket frame), and a WebSocket close. The code → class table is here too, so the classes
 * stay free of any knowledge of the wire.
 *
 * Both tables below mirror the server's registry (packages/server/src/errors.ts). The client
 * cannot import it (no dependencies, browser-bundled), so test/wire-errors.test.ts checks them
 * against it: every code of the proxy has a class here and every close code agrees.
 */
import type { MCPProxyErrorOptions, ProxyErrorCode, StableCode } from './errors.ts';
import {
  InvalidInputError,
  MCPProxyError,
  NetworkError,
  ProxyAuthError,
  RateLimitError,
  SessionError,
  TargetForbiddenError,
  TimeoutError,
  UpstreamAuthError,
  UpstreamAuthRequiredError,
  UpstreamError,
} from './errors.ts';
import { isObject } from './json.ts';

type ErrorClass = new (code: StableCode, message: string, options: MCPProxyErrorOptions) => MCPProxyError;

/** The one mapping from the proxy's stable codes to classes; unknown codes get the root. */
export const ERROR_CLASSES: { readonly [C in ProxyErrorCode]: ErrorClass } = Object.freeze({
  parse_error: InvalidInputError,
  invalid_envelope: InvalidInputError,
  invalid_message: InvalidInputError,
  header_mismatch: InvalidInputError,
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
  stream_event_foreign: SessionError,
  stream_event_unknown: SessionError,
  unsupported_protocol_version: InvalidInputError,
  not_found: MCPProxyError,
  unknown_server: InvalidInputError,
  method_not_allowed: MCPProxyError,
  session_not_found: SessionError,
  rate_limited: RateLimitError,
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
  json_too_deep: InvalidInputError,
  too_many_in_flight: RateLimitError,
  overloaded: RateLimitError,
  // Another instance holds the session and did not finish relaying: retry after Retry-After.
  relay_interrupted: RateLimitError,
  batch_too_large: InvalidInputError,
  search_limit: RateLimitError,
  client_not_built: MCPProxyError,
  handshake_timeout: MCPProxyError,
  // Identity (the proxy's docs/identity.md): a user token that is wrong, old, revoked, used from
  // another origin, or one whose grants do not reach the server.
  token_invalid: ProxyAuthError,
  token_expired: ProxyAuthError,
  token_revoked: ProxyAuthError,
  origin_mismatch: ProxyAuthError,
  admin_required: ProxyAuthError,
  invalid_token_request: InvalidInputError,
  store_unavailable: MCPProxyError,
  oidc_issuer_unavailable: MCPProxyError,
  oidc_no_grant: ProxyAuthError,
  forbidden_server: ProxyAuthError,
  token_not_found: InvalidInputError,
  store_full: MCPProxyError,
  signing_key_unavailable: MCPProxyError,
  // The upstream OAuth broker (the proxy's docs/oauth.md): `data.authorizeUrl` is the page to open.
  upstream_auth_required: UpstreamAuthRequiredError,
  upstream_auth_failed: UpstreamError,
  upstream_auth_unsupported: UpstreamError,
  oauth_state_invalid: InvalidInputError,
  // The sign-in page was not opened by the app of the principal that asked (docs/oauth.md).
  oauth_bind_refused: ProxyAuthError,
  oauth_sign_in_limited: RateLimitError,
  upstream_auth_declined: UpstreamAuthError,
  oauth_connection_not_found: InvalidInputError,
  // The user ended the socket's upstream sign-in: a new socket asks for one again.
  upstream_auth_ended: UpstreamAuthError,
  // A sign-in link opened without its app (the proxy's docs/oauth.md): the proxy's own pages say these.
  oauth_code_invalid: ProxyAuthError,
  oauth_user_mismatch: ProxyAuthError,
  oauth_login_failed: MCPProxyError,
  internal_error: MCPProxyError,
});

/** What a transport read from a failed HTTP answer of the proxy. */
export interface ProxyFailure {
  readonly status: number;
  readonly body: unknown;
  readonly requestId?: string | undefined;
  readonly wwwAuthenticate?: string | undefined;
  /**
   * `/mcp` passes a Streamable HTTP server's own answers through: a failure without a proxy
   * error body, from the proxy (it carries `X-Request-Id`), is the MCP server's.
   */
  readonly relayed?: boolean | undefined;
  /** An `Mcp-Session-Id` was sent, so a relayed 404 means the session expired. */
  readonly withSession?: boolean | undefined;
}

/** Turns a failed proxy answer (4xx/5xx, a JSON-RPC error body) into the right class. */
export function errorFromProxyFailure(failure: ProxyFailure): MCPProxyError {
  const { status, requestId, wwwAuthenticate } = failure;
  const base: MCPProxyErrorOptions = { status, ...(requestId ? { requestId } : {}) };
  const error = readErrorObject(failure.body);
  const proxyError = error && errorFromRpcError(error, base, false, wwwAuthenticate);
  if (proxyError) return proxyError;
  if (failure.relayed && requestId) {
    const message = error?.message ?? `The MCP server answered HTTP ${status}.`;
    const data = { upstreamStatus: status, ...(error ? { upstreamMessage: error.message } : {}) };
    const options = { ...base, data };
    if (status === 401 || status === 403) {
      return new UpstreamAuthError('upstream_unauthorized', message, {
        ...options,
        ...(wwwAuthenticate ? { wwwAuthenticate } : {}),
      });
    }
    if (status === 404 && failure.withSession)
      return new SessionError('upstream_session_expired', message, options);
    return new UpstreamError(status < 500 ? 'upstream_rejected' : 'upstream_http_error', message, options);
  }
  return new MCPProxyError(
    'invalid_response',
    `The proxy answered HTTP ${status} without a proxy error body: is proxyUrl the mcp-proxy?`,
    base,
  );
}

/**
 * The proxy's error for a JSON-RPC error object whose `data.code` is a proxy code, or undefined
 * when it is an MCP server's own error. `knownOnly`: in-band answers (event streams, WebSocket
 * frames) mix both kinds, so only codes in {@link ERROR_CLASSES} count there.
 */
export function errorFromRpcError(
  error: { code: number; message: string; data?: unknown },
  options: MCPProxyErrorOptions,
  knownOnly: boolean,
  wwwAuthenticate?: string,
): MCPProxyError | undefined {
  const data = error.data;
  const code = isObject(data) && typeof data.code === 'string' ? data.code : undefined;
  const known = code !== undefined && Object.hasOwn(ERROR_CLASSES, code);
  if (code === undefined || (knownOnly && !known)) return undefined;
  const { code: _code, ...rest } = data as { code: string; [key: string]: unknown };
  const all: MCPProxyErrorOptions = { ...options, data: rest, rpcCode: error.code };
  if (code === 'upstream_unauthorized') {
    return new UpstreamAuthError(code, error.message, {
      ...all,
      ...(wwwAuthenticate ? { wwwAuthenticate } : {}),
    });
  }
  const Class = known ? ERROR_CLASSES[code as ProxyErrorCode] : MCPProxyError;
  return new Class(code, error.message, all);
}

/**
 * What each `/ws` close code means when the close reason names no stable code (the proxy's own
 * closes say `<code>: <message>`; a few, such as 1001 on shutdown, say it in words). Where the
 * proxy closes with one code for several errors (4403, 4429), the entry is the likeliest one.
 * 1013 is left out: the proxy sends it both for `overloaded` and for a reader too slow to keep
 * up, which has no stable code, so it stays a `connection_closed`.
 */
export const CLOSE_CODES: { readonly [closeCode: number]: ProxyErrorCode } = Object.freeze({
  1001: 'shutting_down',
  1009: 'payload_too_large',
  1011: 'internal_error',
  4400: 'invalid_target',
  4401: 'unauthorized',
  4403: 'target_forbidden',
  4404: 'unknown_server',
  4410: 'upstream_auth_ended',
  4429: 'session_limit',
  4502: 'upstream_unreachable',
  4504: 'upstream_timeout',
});

/**
 * The error for a WebSocket to the proxy that closed. The proxy's close reason is
 * `<code>: <message>`. Before the socket opened, browsers say nothing (1006) whatever the cause.
 */
export function errorFromClose(closeCode: number, closeReason: string, opened: boolean): MCPProxyError {
  const data = { closeCode, closeReason };
  if (!opened) {
    return new NetworkError(
      'network_error',
      'Could not open the WebSocket to the proxy. Browsers do not say why: the proxy may be down, or ' +
        'it refused the proxy token, this page’s origin (CORS_ORIGINS) or the MCP server.',
      { data },
    );
  }
  const named = /^([a-z][a-z_]*): ([\s\S]*)$/.exec(closeReason);
  const code = named?.[1] ?? CLOSE_CODES[closeCode];
  if (code === undefined) {
    return new NetworkError(
      'connection_closed',
      `The WebSocket to the proxy closed (${closeCode}${closeReason ? `: ${closeReason}` : ''}).`,
      { data },
    );
  }
  const Class = Object.hasOwn(ERROR_CLASSES, code) ? ERROR_CLASSES[code as ProxyErrorCode] : MCPProxyError;
  return new Class(code, named?.[2] || `The proxy closed the WebSocket (${closeCode}).`, { data });
}

function readErrorObject(body: unknown): { code: number; message: string; data?: unknown } | undefined {
  if (!isObject(body) || !isObject(body.error)) return undefined;
  const { code, message, data } = body.error;
  if (typeof code !== 'number' || typeof message !== 'string') return undefined;
  return { code, message, data };
}
