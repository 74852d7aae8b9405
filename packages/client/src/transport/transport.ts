/**
 * @module transport/transport
 * The one interface every way of reaching the proxy implements: POST /proxy (`http`), the
 * Streamable HTTP endpoint /mcp (`streamable`) and the WebSocket /ws (`ws`). The client above
 * it only deals in JSON-RPC messages; where the session lives (headers, a socket) is the
 * transport's business.
 */
import type { UpstreamTransport } from '../options.ts';
import type { JsonRpcNotification, JsonRpcRequest, JsonRpcResponse, ServerNotification } from '../types.ts';

/** Where every transport aims: the proxy, its token, and the MCP server behind it. */
export interface ProxyTarget {
  readonly proxyUrl: string;
  readonly proxyToken: string;
  readonly mcpServerUrl: string | undefined;
  readonly server: string | undefined;
  readonly mcpToken: string | undefined;
  readonly upstreamTransport: UpstreamTransport | undefined;
}

/** Per-message options the client hands a transport. */
export interface SendOptions {
  /** Aborts the exchange; its `reason` is what the call rejects with. */
  readonly signal: AbortSignal;
}

/** The session a transport carries, as far as the caller may see it. */
export interface SessionInfo {
  /** The session id (`Mcp-Session-Id`) once `initialize` returned one. */
  readonly id: string | undefined;
  /** The negotiated protocol version (`MCP-Protocol-Version`). */
  readonly protocolVersion: string | undefined;
}

/** Answers one server-to-client request; resolves with the response to send back. */
export type ServerRequestListener = (
  request: JsonRpcRequest,
  signal: AbortSignal,
) => Promise<JsonRpcResponse>;

/**
 * Where the messages the server starts go: given to a transport once, when it is made (only the
 * streaming transports ever call them).
 */
export interface ServerListeners {
  /** Receives each server notification. */
  readonly onnotification: (notification: ServerNotification) => void;
  /** Answers each server-to-client request. */
  readonly onrequest: ServerRequestListener;
}

/** A way of exchanging JSON-RPC messages with an MCP server through the proxy. */
export interface Transport {
  /** True when server notifications and requests can arrive (not over POST /proxy). */
  readonly streaming: boolean;
  /**
   * Sends one request; resolves with its response (an MCP server's JSON-RPC error response is
   * not a throw; a proxy error is). Aborting `signal` cancels it (streaming transports also
   * send `notifications/cancelled`).
   */
  request(message: JsonRpcRequest, options: SendOptions): Promise<JsonRpcResponse>;
  /** Sends one notification; resolves once the proxy accepted it. */
  notify(message: JsonRpcNotification, options: SendOptions): Promise<void>;
  /** The current session. */
  readonly session: SessionInfo;
  /** Forgets (and ends) the session, before a new `initialize`. */
  resetSession(): void;
  /** Records the protocol version `initialize` negotiated, for later messages. */
  setProtocolVersion(version: string): void;
  /** Releases whatever the transport holds (streams, sockets, the session). */
  close(): Promise<void>;
}
