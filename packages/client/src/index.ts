/**
 * @module mcp-proxy-client
 * Typed client for mcp-proxy: reach any MCP server from a browser or Node through the proxy.
 * Default export and named export {@link MCPProxyClient}; typed errors; MCP spec types.
 * Three transports: POST /proxy (`http`), Streamable HTTP /mcp (`streamable`), WebSocket /ws (`ws`).
 */
export type { AuthorizeOptions, AuthRequiredContext, AuthRequiredHandler } from './auth-required.ts';
export type {
  CompleteOptions,
  Listings,
  ListOptions,
  RequestArgs,
  RequestOptions,
} from './call-options.ts';
export { MCPProxyClient, MCPProxyClient as default } from './client.ts';
export type { Disconnected, UpstreamConnection } from './connections.ts';
export {
  type ClientErrorCode,
  type ErrorCode,
  type ErrorData,
  InvalidInputError,
  MCPProxyError,
  type MCPProxyErrorOptions,
  McpError,
  NetworkError,
  NotSupportedError,
  ProxyAuthError,
  type ProxyErrorCode,
  RateLimitError,
  SessionError,
  SignInError,
  type StableCode,
  TargetForbiddenError,
  type TargetForbiddenReason,
  TimeoutError,
  UpstreamAuthError,
  UpstreamAuthRequiredError,
  UpstreamError,
} from './errors.ts';
export type { ClientEventMap, Listener } from './events.ts';
export {
  type BaseClientOptions,
  DEFAULTS,
  type FetchInit,
  type FetchLike,
  type FetchResponse,
  type MCPProxyClientOptions,
  type TransportKind,
  type UpstreamTransport,
  type WebSocketConstructor,
} from './options.ts';
export type { RequestHandler, RequestHandlerExtra } from './server-requests.ts';
export type { SignInMessageEvent, SignInPopup, SignInResult, SignInWindow } from './sign-in.ts';
export type * from './types.ts';
export { VERSION } from './version.ts';
export { ERROR_CLASSES } from './wire-errors.ts';
