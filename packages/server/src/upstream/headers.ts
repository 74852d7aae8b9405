/**
 * @module upstream/headers
 * The one place the headers of a request to an MCP server are built: what it accepts back,
 * its body's type, the MCP token, the upstream session and the protocol version. Every HTTP
 * request the proxy makes to an upstream (the transports, the one-shot path, the pass-through,
 * the era probe) goes through {@link upstreamHeaders}, so a header rule changes in one place.
 */

/** What a request asks to get back. */
export type UpstreamAccept =
  /** A POST of a JSON-RPC message: its answer comes as JSON or as an event stream. */
  | 'message'
  /** A GET for an event stream (the standalone stream, the SSE transport's stream). */
  | 'stream';

const ACCEPT: Readonly<Record<UpstreamAccept, string>> = {
  message: 'application/json, text/event-stream',
  stream: 'text/event-stream',
};

/**
 * An upstream credential: a fixed token, or a function read at each request (a long-lived
 * session whose OAuth broker token a refresh or a new sign-in replaces, review R5).
 */
export type BearerSource = string | (() => string | undefined);

/** The proxy's own parts of an upstream request's headers. */
export interface UpstreamHeaderParts {
  /** Absent: no `Accept` of the proxy's own (the pass-through relays the caller's). */
  readonly accept?: UpstreamAccept | undefined;
  /** True when the body is a JSON-RPC message (`Content-Type: application/json`). */
  readonly jsonBody?: boolean | undefined;
  /** The MCP token, sent as `Authorization: Bearer` (read now when it is a {@link BearerSource} function). */
  readonly bearerToken?: BearerSource | undefined;
  /** The upstream's `Mcp-Session-Id` (session era). */
  readonly sessionId?: string | undefined;
  /** The negotiated `Mcp-Protocol-Version`. */
  readonly protocolVersion?: string | undefined;
}

/**
 * The headers of one upstream request: the proxy's own parts, then each of `extra` in order,
 * later ones winning (forwarded `Mcp-Param-*`, a 2026-07-28 request's metadata headers, which
 * must match its body).
 */
export function upstreamHeaders(
  parts: UpstreamHeaderParts,
  ...extra: ReadonlyArray<Readonly<Record<string, string>> | undefined>
): Record<string, string> {
  const headers: Record<string, string> = {};
  if (parts.jsonBody) headers['content-type'] = 'application/json';
  if (parts.accept) headers.accept = ACCEPT[parts.accept];
  const bearer = typeof parts.bearerToken === 'function' ? parts.bearerToken() : parts.bearerToken;
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (parts.sessionId) headers['mcp-session-id'] = parts.sessionId;
  if (parts.protocolVersion) headers['mcp-protocol-version'] = parts.protocolVersion;
  for (const more of extra) if (more) Object.assign(headers, more);
  return headers;
}
