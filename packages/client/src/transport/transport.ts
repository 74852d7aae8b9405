/**
 * @module transport/transport
 * The one interface every way of reaching the proxy implements: POST /proxy today; Streamable
 * HTTP (/mcp) and WebSocket (/ws) when the proxy serves them. The client above it only deals in
 * JSON-RPC messages; where the session lives (headers, a socket) is the transport's business.
 */
import type { JsonRpcNotification, JsonRpcRequest, JsonRpcResponse, ServerNotification } from '../types.ts';

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

/** A way of exchanging JSON-RPC messages with an MCP server through the proxy. */
export interface Transport {
  /** Sends one request; resolves with its response (a JSON-RPC error response is not a throw). */
  request(message: JsonRpcRequest, options: SendOptions): Promise<JsonRpcResponse>;
  /** Sends one notification; resolves once the proxy accepted it. */
  notify(message: JsonRpcNotification, options: SendOptions): Promise<void>;
  /** The current session. */
  readonly session: SessionInfo;
  /** Forgets the session, before a new `initialize`. */
  resetSession(): void;
  /** Records the protocol version `initialize` negotiated, for later messages. */
  setProtocolVersion(version: string): void;
  /** Where server-initiated notifications go (never called over POST /proxy). */
  onnotification: ((notification: ServerNotification) => void) | undefined;
  /** Releases whatever the transport holds. */
  close(): Promise<void>;
}
