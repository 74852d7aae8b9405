/**
 * @module upstream/message-source
 * What every upstream transport shares: the SDK-shaped callbacks, JSON payload parsing into
 * JSON-RPC messages, and remembering the protocol version an initialize result negotiated;
 * and, for the transports that hold one connection with no MCP session of their own (stdio,
 * WebSocket, HTTP+SSE), closing it once.
 */
import { ProxyError } from '../errors.ts';
import { exceedsJsonDepth, MAX_JSON_DEPTH } from '../json-depth.ts';
import { initializeResultVersion, isJsonRpcMessage, type JsonRpcMessage } from '../jsonrpc.ts';
import { TransportCallbacks } from './transport.ts';

/**
 * Parses one JSON payload holding a message or a batch; anything else is a protocol error.
 * Beyond the JSON-RPC structure, each message must have the shape every reader downstream
 * relies on (issue 14, finding 1): a `result` that is an object (MCP's `Result`), an `error`
 * with a numeric code and a string message, `params` that are an object. A payload nested
 * deeper than {@link MAX_JSON_DEPTH} is refused before parsing: relaying it would overflow the
 * stack when it is serialized again.
 */
export function parseMessages(text: string): JsonRpcMessage[] {
  if (exceedsJsonDepth(text)) {
    throw new ProxyError(
      'upstream_protocol_error',
      `The MCP server sent JSON nested more than ${MAX_JSON_DEPTH} levels deep.`,
    );
  }
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
    const problem = shapeProblem(item);
    if (problem) throw new ProxyError('upstream_protocol_error', `The MCP server sent a message ${problem}.`);
  }
  return list as JsonRpcMessage[];
}

/** What is wrong with a structurally valid message's members, if anything. */
function shapeProblem(message: JsonRpcMessage): string | undefined {
  const m = message as unknown as Record<string, unknown>;
  if ('result' in m && !isObject(m.result)) return 'whose result is not an object';
  if ('error' in m) {
    const error = m.error as Record<string, unknown>;
    if (typeof error.code !== 'number' || typeof error.message !== 'string')
      return 'whose error lacks a numeric code or a string message';
  }
  if ('method' in m && m.params !== undefined && !isObject(m.params)) return 'whose params are not an object';
  return undefined;
}

function isObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Base of the upstream transports: callbacks and message delivery. */
export abstract class MessageSource extends TransportCallbacks {
  #protocolVersion: string | undefined;

  /** @param protocolVersion already negotiated (a resumed session), if known. */
  constructor(protocolVersion?: string) {
    super();
    this.#protocolVersion = protocolVersion;
  }

  /** The protocol version negotiated with the upstream, once known. */
  get protocolVersion(): string | undefined {
    return this.#protocolVersion;
  }

  /**
   * Hands parsed messages on, noting a negotiated protocol version on the way. Nothing a
   * handler throws on an upstream's message may escape: this runs inside socket and stream
   * listeners, where an exception ends the process (issue 14, finding 1). It becomes an
   * upstream error instead, which fails the requests waiting on this connection.
   */
  protected deliver(messages: readonly JsonRpcMessage[]): void {
    for (const message of messages) {
      try {
        this.#protocolVersion = initializeResultVersion(message) ?? this.#protocolVersion;
        this.onmessage?.(message);
      } catch (error) {
        this.onerror?.(
          ProxyError.is(error)
            ? error
            : new ProxyError(
                'upstream_protocol_error',
                'The proxy could not handle a message of the MCP server.',
                {
                  cause: error,
                },
              ),
        );
      }
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

/**
 * Base of the transports that hold one connection and no MCP session id (stdio, WebSocket,
 * HTTP+SSE), each built from its `Options`: closing is idempotent, releases the connection,
 * then tells the owner.
 */
export abstract class ConnectionSource<Options> extends MessageSource {
  readonly sessionId: string | undefined = undefined;
  readonly #options: Options;
  #closed = false;

  constructor(options: Options) {
    super();
    this.#options = options;
  }

  /** What the transport was built with. */
  protected get options(): Options {
    return this.#options;
  }

  /** True once {@link close} has begun: late events and sends are ignored or refused. */
  protected get closed(): boolean {
    return this.#closed;
  }

  /**
   * Releases the connection (its synchronous part runs before `onclose`), fires `onclose`, and
   * resolves once the release has finished (a child process has exited).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const released = this.release();
    this.onclose?.();
    await released;
  }

  /** Lets go of the connection; called once, by {@link close}. */
  protected abstract release(): Promise<void> | void;
}
