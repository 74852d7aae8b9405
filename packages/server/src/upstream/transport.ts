/**
 * @module upstream/transport
 * The one interface every upstream transport implements, shaped like the MCP SDK's `Transport`
 * (start / send / close + onmessage / onerror / onclose) so sessions and routes never care
 * which wire protocol the MCP server speaks.
 */
import type { ProxyError } from '../errors.ts';
import type { JsonRpcMessage } from '../jsonrpc.ts';

/** Options for one `send`. */
export interface SendOptions {
  /** Aborts this message's HTTP exchange (and any response stream it opened). */
  readonly signal?: AbortSignal;
  /** The answer may stay open and silent for long (a `subscriptions/listen` stream): no idle timeout. */
  readonly streaming?: boolean;
}

/** A connection to one upstream MCP server. */
export interface UpstreamTransport {
  /** Opens whatever long-lived channel the transport needs (no-op for plain HTTP). */
  start(): Promise<void>;
  /**
   * Sends one message. Resolves once the upstream accepted it and any response stream it opened
   * has ended; messages that arrive meanwhile go to {@link onmessage}.
   */
  send(message: JsonRpcMessage, options?: SendOptions): Promise<void>;
  /** Closes the channel; pending sends are aborted. Idempotent. */
  close(): Promise<void>;
  /** Every message from the upstream: responses, notifications and server-to-client requests. */
  onmessage?: ((message: JsonRpcMessage) => void) | undefined;
  /** Errors not tied to one `send` (e.g. a broken event stream). */
  onerror?: ((error: ProxyError) => void) | undefined;
  /** The channel has closed, for whatever reason. */
  onclose?: (() => void) | undefined;
  /** The upstream's session id, when it issued one. */
  readonly sessionId: string | undefined;
  /** The protocol version negotiated with the upstream, once known. */
  readonly protocolVersion: string | undefined;
  /** Stop reading from the upstream (the inbound side is falling behind). */
  pause(): void;
  /** Read from the upstream again. */
  resume(): void;
  /** True while the transport holds work of its own the session cannot see (a call waiting for input). */
  readonly busy?: boolean;
}

/**
 * The callbacks of an {@link UpstreamTransport}, as fields: the base of every transport, wire
 * ones ({@link MessageSource}) and those that wrap another (the era facades, the switches).
 */
export abstract class TransportCallbacks {
  /** Every message from the upstream. */
  onmessage: ((message: JsonRpcMessage) => void) | undefined;
  /** Errors not tied to one `send`. */
  onerror: ((error: ProxyError) => void) | undefined;
  /** The channel has closed. */
  onclose: (() => void) | undefined;
}

/** The wire protocols the proxy speaks upstream over HTTP. */
export type HttpTransportKind = 'streamable-http' | 'sse';
