/**
 * @module upstream/message-source
 * What every upstream transport shares: the SDK-shaped callbacks, JSON payload parsing into
 * JSON-RPC messages, and remembering the protocol version an initialize result negotiated.
 */
import { ProxyError } from '../errors.ts';
import { initializeResultVersion, isJsonRpcMessage, type JsonRpcMessage } from '../jsonrpc.ts';

/** Parses one JSON payload holding a message or a batch; anything else is a protocol error. */
export function parseMessages(text: string): JsonRpcMessage[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProxyError('upstream_protocol_error', 'The MCP server sent a body that is not valid JSON.');
  }
  const list = Array.isArray(value) ? value : [value];
  for (const item of list) {
    if (!isJsonRpcMessage(item)) {
      throw new ProxyError(
        'upstream_protocol_error',
        'The MCP server sent JSON that is not a JSON-RPC 2.0 message.',
      );
    }
  }
  return list as JsonRpcMessage[];
}

/** Base of the upstream transports: callbacks and message delivery. */
export abstract class MessageSource {
  /** Every message from the upstream. */
  onmessage: ((message: JsonRpcMessage) => void) | undefined;
  /** Errors not tied to one `send`. */
  onerror: ((error: ProxyError) => void) | undefined;
  /** The channel has closed. */
  onclose: (() => void) | undefined;
  #protocolVersion: string | undefined;

  /** @param protocolVersion already negotiated (a resumed session), if known. */
  constructor(protocolVersion?: string) {
    this.#protocolVersion = protocolVersion;
  }

  /** The protocol version negotiated with the upstream, once known. */
  get protocolVersion(): string | undefined {
    return this.#protocolVersion;
  }

  /** Hands parsed messages on, noting a negotiated protocol version on the way. */
  protected deliver(messages: readonly JsonRpcMessage[]): void {
    for (const message of messages) {
      this.#protocolVersion = initializeResultVersion(message) ?? this.#protocolVersion;
      this.onmessage?.(message);
    }
  }

  /** Parses and delivers one payload from a stream; a bad payload is reported, not thrown. */
  protected deliverText(text: string): void {
    let messages: JsonRpcMessage[];
    try {
      messages = parseMessages(text);
    } catch (error) {
      this.onerror?.(error as ProxyError);
      return;
    }
    this.deliver(messages);
  }
}
