/**
 * @module transport/ws
 * The `ws` transport: the proxy's WebSocket `/ws`, one JSON-RPC message per text frame both
 * ways. The proxy holds the MCP session for the socket's lifetime, so there is no session id on
 * the wire: the socket is the session. The proxy token travels as the `proxy-token.<token>`
 * subprotocol next to `mcp`, never in the URL when it can be helped.
 */
import { MCPProxyError, NetworkError, NotSupportedError, ProxyAuthError } from '../errors.ts';
import type { WebSocketConstructor } from '../options.ts';
import { abortable } from '../signals.ts';
import type { JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../types.ts';
import { errorFromClose } from '../wire-errors.ts';
import { Peer } from './peer.ts';
import type { ProxyTarget, SendOptions, ServerListeners, SessionInfo, Transport } from './transport.ts';
import { proxyEndpoint } from './url.ts';

/** What the WebSocket transport needs to know. */
export interface WebSocketTransportOptions extends ProxyTarget {
  readonly WebSocket: WebSocketConstructor | undefined;
}

/** Characters a subprotocol may hold (an RFC 9110 token). */
const TOKEN_CHARS = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Opens a WebSocket to the proxy's `/ws` for the client's target: `mcp_server_url` (or `server`)
 * and `mcp_token` in the query, the proxy token as the `proxy-token.<token>` subprotocol. A
 * token with characters a subprotocol cannot carry (`/`, `=` of base64) goes in the
 * `proxy_token` query parameter instead, which the proxy also accepts (and redacts in logs).
 */
export function openWebSocket(options: WebSocketTransportOptions): WebSocket {
  const Socket = options.WebSocket ?? globalThis.WebSocket;
  if (typeof Socket !== 'function') {
    throw new NotSupportedError(
      'not_supported',
      'This runtime has no WebSocket (Node < 22): pass the WebSocket option, e.g. the ws package’s.',
      { data: { field: 'WebSocket' } },
    );
  }
  const url = proxyEndpoint(options.proxyUrl, 'ws');
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const query = url.searchParams;
  if (options.server !== undefined) query.set('server', options.server);
  else query.set('mcp_server_url', options.mcpServerUrl ?? '');
  if (options.mcpToken !== undefined) query.set('mcp_token', options.mcpToken);
  if (options.upstreamTransport !== undefined && options.server === undefined) {
    query.set('transport', options.upstreamTransport);
  }
  const protocols = ['mcp'];
  if (TOKEN_CHARS.test(options.proxyToken)) protocols.push(`proxy-token.${options.proxyToken}`);
  else query.set('proxy_token', options.proxyToken);
  return new Socket(url.href, protocols);
}

/** Talks to the proxy's `/ws`; the socket opens with the first message and is the session. */
export class WebSocketTransport implements Transport {
  readonly streaming = true;
  readonly #options: WebSocketTransportOptions;
  readonly #peer: Peer;
  #socket: WebSocket | undefined;
  #opening: Promise<WebSocket> | undefined;
  #protocolVersion: string | undefined;
  #closed = false;

  constructor(options: WebSocketTransportOptions, listeners: ServerListeners) {
    this.#options = options;
    // Answers and cancellations belong to the current socket's session: never open a new one for them.
    this.#peer = new Peer(async (message) => {
      const socket = this.#socket;
      if (socket?.readyState !== 1) throw new MCPProxyError('connection_closed', 'The WebSocket is closed.');
      send(socket, message);
    }, listeners);
  }

  get session(): SessionInfo {
    return { id: undefined, protocolVersion: this.#protocolVersion };
  }

  /** A new session is a new socket: the proxy holds one MCP session per connection. */
  resetSession(): void {
    this.#protocolVersion = undefined;
    this.#drop(new MCPProxyError('closed', 'A new session was started.'), 1000, 'new session');
  }

  setProtocolVersion(version: string): void {
    this.#protocolVersion = version;
  }

  request(message: JsonRpcRequest, { signal }: SendOptions): Promise<JsonRpcResponse> {
    return this.#peer.call(message, signal, async () => send(await abortable(this.#open(), signal), message));
  }

  async notify(message: JsonRpcNotification, { signal }: SendOptions): Promise<void> {
    send(await abortable(this.#open(), signal), message);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#drop(new MCPProxyError('closed', 'The client was closed.'), 1000, 'client closed');
  }

  /** The open socket, opening one if there is none. */
  #open(): Promise<WebSocket> {
    if (this.#closed) return Promise.reject(new MCPProxyError('closed', 'The client was closed.'));
    if (this.#socket?.readyState === 1) return Promise.resolve(this.#socket);
    if (this.#opening) return this.#opening;
    let socket: WebSocket;
    try {
      socket = openWebSocket(this.#options);
    } catch (error) {
      return Promise.reject(errorFromConstruction(error));
    }
    this.#socket = socket;
    const opening = new Promise<WebSocket>((resolve, reject) => {
      let opened = false;
      let failure: string | undefined;
      socket.addEventListener('open', () => {
        opened = true;
        if (this.#opening === opening) this.#opening = undefined;
        resolve(socket);
      });
      socket.addEventListener('message', (event) => {
        // A replaced socket's late messages belong to a session that is over.
        if (this.#socket !== socket || typeof event.data !== 'string') return;
        let message: unknown;
        try {
          message = JSON.parse(event.data);
        } catch {
          return;
        }
        this.#peer.receive(message);
      });
      // 'error' is always followed by 'close', which carries the code. The listener must exist
      // all the same: the `ws` package's socket is an EventEmitter, and an 'error' nobody listens
      // to (a refused handshake) is thrown out of the process (issue #14.15). Its message is the
      // only place a refused handshake's HTTP status shows up; browsers give none.
      socket.addEventListener('error', (event) => {
        failure = errorEventMessage(event);
        // After open, the ws package waits up to 30 s for the peer's close frame before 'close'
        // (a broken frame, say): the session is over now, so its calls fail now.
        if (!opened || this.#socket !== socket) return;
        this.#socket = undefined;
        const detail = failure === undefined ? '' : ` (${failure})`;
        this.#peer.failAll(
          new NetworkError('connection_closed', `The WebSocket to the proxy failed${detail}.`),
        );
      });
      socket.addEventListener('close', (event) => {
        const error = opened
          ? errorFromClose(event.code, event.reason, opened)
          : errorFromRefusal(event.code, event.reason, failure);
        if (!opened) reject(error);
        if (this.#socket !== socket) return;
        this.#socket = undefined;
        if (this.#opening === opening) this.#opening = undefined;
        if (opened) this.#peer.failAll(error);
      });
    });
    this.#opening = opening;
    return opening;
  }

  /** Forgets the current socket, fails its calls with `error`, and closes it. */
  #drop(error: unknown, code: number, reason: string): void {
    const socket = this.#socket;
    this.#socket = undefined;
    this.#opening = undefined;
    this.#peer.failAll(error);
    if (socket && socket.readyState < 2) socket.close(code, reason);
  }
}

/** The message an 'error' event carries, if any (the `ws` package's does; browsers' do not). */
function errorEventMessage(event: Event): string | undefined {
  const message: unknown = (event as Event & { message?: unknown }).message;
  return typeof message === 'string' && message !== '' ? message : undefined;
}

/**
 * Why a socket closed before it opened. The `ws` package says "Unexpected server response: 401"
 * for a refused handshake: a 401 is the proxy refusing the token, anything else stays a network
 * error that carries the status.
 */
function errorFromRefusal(
  closeCode: number,
  closeReason: string,
  failure: string | undefined,
): MCPProxyError {
  const status = Number(/Unexpected server response: (\d{3})/.exec(failure ?? '')?.[1] ?? Number.NaN);
  if (status === 401) {
    return new ProxyAuthError(
      'unauthorized',
      'The proxy refused the proxy token (HTTP 401): check proxyToken.',
      {
        status,
        data: { closeCode, closeReason },
      },
    );
  }
  const error = errorFromClose(closeCode, closeReason, false);
  if (failure === undefined) return error;
  return new NetworkError(error.code, `${error.message} (${failure})`, {
    ...(Number.isNaN(status) ? {} : { status }),
    data: { closeCode, closeReason },
  });
}

/** A WebSocket constructor that threw (a URL it rejects, a missing implementation) as a typed error. */
function errorFromConstruction(error: unknown): MCPProxyError {
  if (error instanceof MCPProxyError) return error;
  return new NetworkError('network_error', `Could not create the WebSocket to the proxy: ${String(error)}`, {
    cause: error,
  });
}

function send(socket: WebSocket, message: JsonRpcMessage): void {
  socket.send(JSON.stringify(message));
}
