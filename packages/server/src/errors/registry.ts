/**
 * @module errors/registry
 * The table of every stable error code the proxy emits: its HTTP status, JSON-RPC code and the
 * message a person can act on. errors.ts is the one import point (it re-exports the table and
 * builds the errors and replies from it); docs/errors.md documents every row (a test keeps the
 * two in step).
 */
import { MAX_JSON_DEPTH } from '../json-depth.ts';

/** Static facts about one error code: HTTP status, JSON-RPC code and the default message. */
export interface ErrorSpec {
  readonly status: number;
  readonly rpcCode: number;
  readonly message: string;
}

/**
 * Every stable error code the proxy emits. JSON-RPC codes use JSON-RPC's and MCP's own codes
 * where one fits (-32700, -32600, -32601, -32602, -32603, and MCP's -32020 HeaderMismatch);
 * errors only a proxy has use -33001..-33099, outside the range JSON-RPC reserves and MCP
 * allocates from, so they never collide with a code an MCP server sends.
 */
export const ERROR_REGISTRY = {
  parse_error: { status: 400, rpcCode: -32700, message: 'The request body is not valid JSON.' },
  invalid_envelope: {
    status: 400,
    rpcCode: -32600,
    message: 'The request is not a valid proxy envelope or JSON-RPC message.',
  },
  invalid_target: {
    status: 400,
    rpcCode: -32602,
    message: 'The MCP server target is missing or inconsistent.',
  },
  invalid_message: {
    status: 400,
    rpcCode: -32600,
    message: 'The body is not a JSON-RPC 2.0 message or batch of messages.',
  },
  header_mismatch: {
    status: 400,
    rpcCode: -32020,
    message: 'Header mismatch: the MCP request headers do not match the body.',
  },
  unsupported_media_type: {
    status: 415,
    rpcCode: -32600,
    message: 'Send the request body as application/json.',
  },
  payload_too_large: {
    status: 413,
    rpcCode: -32600,
    message: 'The request body is larger than this proxy accepts.',
  },
  unauthorized: {
    status: 401,
    rpcCode: -33001,
    message: 'Missing or invalid proxy token: send it in the X-Proxy-Token header.',
  },
  target_forbidden: {
    status: 403,
    rpcCode: -33003,
    message: 'The proxy refuses to connect to this MCP server URL.',
  },
  origin_forbidden: {
    status: 403,
    rpcCode: -33020,
    message: 'Requests from this Origin are not allowed: add it to CORS_ORIGINS.',
  },
  host_forbidden: {
    status: 403,
    rpcCode: -33021,
    message: 'The Host header is not one this proxy serves (DNS-rebinding protection): see TRUSTED_HOSTS.',
  },
  not_acceptable: {
    status: 406,
    rpcCode: -32600,
    message: 'Accept must include application/json and text/event-stream.',
  },
  session_required: {
    status: 400,
    rpcCode: -32600,
    message: 'Missing Mcp-Session-Id header: send initialize first and echo the session id it returns.',
  },
  stream_conflict: {
    status: 409,
    rpcCode: -32600,
    message: 'This session already has an open GET event stream.',
  },
  unsupported_protocol_version: {
    status: 400,
    rpcCode: -32600,
    message: 'Unsupported MCP-Protocol-Version.',
  },
  not_found: { status: 404, rpcCode: -32601, message: 'No such endpoint.' },
  unknown_server: {
    status: 404,
    rpcCode: -33002,
    message: 'No MCP server is configured under that name: check /servers/{name}/mcp.',
  },
  method_not_allowed: {
    status: 405,
    rpcCode: -32600,
    message: 'This endpoint does not allow that HTTP method.',
  },
  session_not_found: {
    status: 404,
    rpcCode: -33004,
    message: 'Unknown or expired proxy session: initialize a new one.',
  },
  rate_limited: {
    status: 429,
    rpcCode: -33029,
    message: 'Rate limit exceeded: retry after the number of seconds in Retry-After.',
  },
  session_limit: {
    status: 429,
    rpcCode: -33005,
    message: 'Too many open sessions: close one or wait for idle sessions to expire.',
  },
  request_id_in_use: {
    status: 409,
    rpcCode: -33006,
    message: 'A request with this id is already in flight on this session: use a unique id.',
  },
  upstream_unreachable: { status: 502, rpcCode: -33010, message: 'Could not connect to the MCP server.' },
  upstream_timeout: { status: 504, rpcCode: -33011, message: 'The MCP server did not answer in time.' },
  upstream_protocol_error: {
    status: 502,
    rpcCode: -33012,
    message: 'The MCP server answered with something that is not valid MCP.',
  },
  upstream_response_too_large: {
    status: 502,
    rpcCode: -33013,
    message: 'The MCP server answer is larger than this proxy accepts.',
  },
  upstream_http_error: { status: 502, rpcCode: -33014, message: 'The MCP server failed with an HTTP error.' },
  upstream_rejected: { status: 400, rpcCode: -33015, message: 'The MCP server rejected the request.' },
  upstream_unauthorized: {
    status: 401,
    rpcCode: -33016,
    message: 'The MCP server refused the credentials: check mcp_token.',
  },
  upstream_session_expired: {
    status: 404,
    rpcCode: -33017,
    message: 'The MCP server no longer knows this session: initialize a new one.',
  },
  shutting_down: {
    status: 503,
    rpcCode: -33019,
    message: 'The proxy is shutting down: retry on another instance.',
  },
  json_too_deep: {
    status: 400,
    rpcCode: -33030,
    message: `The JSON nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep: flatten it.`,
  },
  too_many_in_flight: {
    status: 429,
    rpcCode: -33035,
    message: 'Too many requests in flight for this proxy token: wait for some to finish before sending more.',
  },
  overloaded: {
    status: 503,
    rpcCode: -33036,
    message: 'The proxy is at capacity: retry after the number of seconds in Retry-After.',
  },
  batch_too_large: {
    status: 413,
    rpcCode: -33037,
    message: 'The batch holds more messages than this proxy accepts: send fewer per request.',
  },
  client_not_built: {
    status: 404,
    rpcCode: -33060,
    message: 'The browser client is not built: run `npm run build` (or `npm ci`) in the proxy checkout.',
  },
  handshake_timeout: {
    status: 408,
    rpcCode: -33045,
    message: 'The WebSocket handshake could not be checked in time: retry.',
  },
  token_invalid: {
    status: 401,
    rpcCode: -33100,
    message:
      'The token is not valid here (malformed, altered, or signed by a key or algorithm this proxy does not accept): get a new one.',
  },
  token_expired: {
    status: 401,
    rpcCode: -33101,
    message: 'The token has expired: get a new one from the app that issued it.',
  },
  token_revoked: {
    status: 401,
    rpcCode: -33102,
    message: 'The token was revoked: get a new one from the app that issued it.',
  },
  origin_mismatch: {
    status: 403,
    rpcCode: -33103,
    message: 'This token was minted for another origin: use it only from the page it was issued to.',
  },
  admin_required: {
    status: 403,
    rpcCode: -33104,
    message:
      'Minting and revoking tokens needs an admin token (ADMIN_TOKEN, or a config token with admin: true).',
  },
  invalid_token_request: {
    status: 400,
    rpcCode: -33105,
    message: 'The token request is not valid.',
  },
  store_unavailable: {
    status: 503,
    rpcCode: -33106,
    message: 'The shared store (Redis or the DATA_DIR database) did not answer: retry shortly.',
  },
  oidc_issuer_unavailable: {
    status: 503,
    rpcCode: -33120,
    message: 'The identity provider could not be reached to check the bearer token: try again shortly.',
  },
  oidc_no_grant: {
    status: 403,
    rpcCode: -33121,
    message:
      'The bearer token is valid but its claims match no grant in the proxy configuration: ask the operator for access.',
  },
  forbidden_server: {
    status: 403,
    rpcCode: -33140,
    message: 'This caller may not reach that MCP server: ask the operator to grant its URL or server name.',
  },
  token_not_found: {
    status: 404,
    rpcCode: -33160,
    message:
      'No minted token has this id, or it has expired: DELETE /auth/tokens/{id} takes the "id" that POST /auth/tokens or npm run token answered (22 characters), not the token or its subject.',
  },
  store_full: {
    status: 503,
    rpcCode: -33192,
    message:
      'The proxy keeps its state in memory (STORE=memory) and has no room left: retry once tokens expire; operators: use STORE=sqlite or Redis.',
  },
  signing_key_unavailable: {
    status: 503,
    rpcCode: -33190,
    message:
      'The proxy has no signing key and cannot keep the one it would generate: the operator must make DATA_DIR writable or set SIGNING_KEYS.',
  },
  upstream_auth_required: {
    status: 401,
    rpcCode: -33200,
    message:
      'The MCP server needs you to sign in: open error.data.authorizeUrl in a popup from the app that made the call (it answers the page, see docs/oauth.md), finish signing in, then retry the call. Opened without the app, the page goes on only by signing in to the proxy where it offers that, or with error.data.userCode when one is given.',
  },
  upstream_auth_failed: {
    status: 502,
    rpcCode: -33201,
    message:
      'Signing in to the MCP server failed at its authorization server: retry the call to start again.',
  },
  upstream_auth_unsupported: {
    status: 502,
    rpcCode: -33202,
    message:
      'The proxy cannot sign in to this MCP server: its authorization server lacks PKCE S256 or a way to register a client, or PUBLIC_URL is not set (see data.reason and docs/oauth.md).',
  },
  oauth_state_invalid: {
    status: 400,
    rpcCode: -33203,
    message: 'This sign-in link is unknown, already used or expired: retry the call to get a new one.',
  },
  oauth_bind_refused: {
    status: 403,
    rpcCode: -33204,
    message:
      'This sign-in link was not opened by the app that asked for it: retry the call from the app and let it open the link (docs/oauth.md, the bind protocol).',
  },
  oauth_sign_in_limited: {
    status: 429,
    rpcCode: -33205,
    message: 'Too many sign-ins started: finish one, or retry after the number of seconds in Retry-After.',
  },
  upstream_auth_declined: {
    status: 403,
    rpcCode: -33211,
    message:
      'You declined to sign in to the MCP server, so the call was not made: retry it to be asked again.',
  },
  oauth_connection_not_found: {
    status: 404,
    rpcCode: -33210,
    message:
      'You have no upstream sign-in for this server: GET /oauth/connections lists the servers you are connected to.',
  },
  relay_interrupted: {
    status: 503,
    rpcCode: -33224,
    message:
      'The instance holding this session did not finish relaying the request (it was slow, restarting or lost a message): retry after the seconds in Retry-After; the session is still there.',
  },
  upstream_auth_ended: {
    status: 401,
    rpcCode: -33212,
    message:
      'You ended your sign-in to this MCP server (disconnected, or evicted past 100 connections), so what held it (this socket, or this proxy session) ended: open a new one and sign in again when asked.',
  },
  oauth_code_invalid: {
    status: 403,
    rpcCode: -33213,
    message:
      'That is not the code of this sign-in: type the code your own app showed you with this link (data.attemptsLeft tries are left). If someone sent you the link and the code, stop.',
  },
  oauth_user_mismatch: {
    status: 403,
    rpcCode: -33214,
    message:
      'You signed in to the proxy as someone else than the user who asked for this sign-in, so nothing was connected: open the link from your own app, signed in as yourself.',
  },
  oauth_login_failed: {
    status: 502,
    rpcCode: -33215,
    message:
      'Signing in to the proxy through its identity provider failed: retry the call in your app to get a new link.',
  },
  search_limit: {
    status: 429,
    rpcCode: -33275,
    message: 'One search_tools call per request: send the other searches in requests of their own.',
  },
  stream_event_foreign: {
    status: 403,
    rpcCode: -33290,
    message:
      'Last-Event-ID names no event of this session: resume a stream with the last id it sent you, in the session it belongs to.',
  },
  stream_event_unknown: {
    status: 400,
    rpcCode: -33291,
    message:
      'The stream Last-Event-ID names can no longer be resumed (its events expired or were dropped): send the request again.',
  },
  internal_error: { status: 500, rpcCode: -32603, message: 'Internal proxy error.' },
} as const satisfies Record<string, ErrorSpec>;

/** A stable, documented error code. */
export type ErrorCode = keyof typeof ERROR_REGISTRY;
