/**
 * @module upstream/websocket
 * WebSocket client transport (`ws`/`wss` URLs): one JSON-RPC message per text frame, the
 * `mcp` subprotocol offered, connected through the egress guard's resolve-check-pin lookup.
 */
import WebSocket from 'ws';
import type { EgressGuard } from '../egress/types.ts';
import { ProxyError } from '../errors.ts';
import type { JsonRpcMessage } from '../jsonrpc.ts';
import type { Tracing } from '../observability/tracing.ts';
import { type BearerSource, upstreamHeaders } from './headers.ts';
import { toUpstreamError } from './http.ts';
import { ConnectionSource } from './message-source.ts';
import { authRefusal } from './status.ts';
import { sendTraced } from './trace-context.ts';
import type { SendOptions, UpstreamTransport } from './transport.ts';

/** How to reach one WebSocket MCP endpoint. */
export interface WebSocketOptions {
  /** Already vetted by the guard (literal addresses are not looked up again). */
  readonly url: URL;
  readonly guard: EgressGuard;
  readonly bearerToken?: BearerSource | undefined;
  /** Largest frame accepted from the upstream. */
  readonly maxPayloadBytes: number;
  readonly handshakeTimeoutMs: number;
  /** Each message sent in a client span, its context in `_meta` (issue 21; off: undefined). */
  readonly tracing?: Tracing | undefined;
}

/** WebSocket transport to one upstream server. */
export class WebSocketTransport extends ConnectionSource<WebSocketOptions> implements UpstreamTransport {
  #socket: WebSocket | undefined;

  async start(): Promise<void> {
    const { url, guard, bearerToken, maxPayloadBytes, handshakeTimeoutMs } = this.options;
    const socket = new WebSocket(url, ['mcp'], {
      lookup: guard.lookup,
      headers: upstreamHeaders({ bearerToken }),
      maxPayload: maxPayloadBytes,
      handshakeTimeout: handshakeTimeoutMs,
      followRedirects: false,
      perMessageDeflate: false,
    });
    this.#socket = socket;
    await new Promise<void>((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('unexpected-response', (_request, response) => {
        const status = response.statusCode ?? 0;
        const data = { upstreamStatus: status };
        response.resume();
        reject(
          authRefusal(status, response.headers['www-authenticate'], data) ??
            new ProxyError(
              'upstream_rejected',
              `The MCP server refused the WebSocket upgrade (HTTP ${status}).`,
              { status: 400, data },
            ),
        );
        socket.terminate();
      });
      socket.once('error', (error) => reject(toUpstreamError(error)));
    });
    socket.on('message', (data, isBinary) => {
      if (isBinary) {
        this.onerror?.(
          new ProxyError('upstream_protocol_error', 'The MCP server sent a binary WebSocket frame.'),
        );
        return;
      }
      this.deliverText(data.toString());
    });
    socket.on('error', (error) => {
      if (!this.closed) this.onerror?.(toUpstreamError(error));
    });
    socket.on('close', () => void this.close());
  }

  pause(): void {
    this.#socket?.pause();
  }

  resume(): void {
    this.#socket?.resume();
  }

  send(message: JsonRpcMessage, _options: SendOptions = {}): Promise<void> {
    const tracing = this.options.tracing;
    if (tracing !== undefined)
      return sendTraced(tracing, 'websocket', message, (traced) => this.#send(traced));
    return this.#send(message);
  }

  async #send(message: JsonRpcMessage): Promise<void> {
    const socket = this.#socket;
    if (!socket || this.closed || socket.readyState !== WebSocket.OPEN) {
      throw new ProxyError('upstream_unreachable', 'The MCP server WebSocket is closed.');
    }
    await new Promise<void>((resolve, reject) => {
      // The callback fires once the frame is flushed to the socket, so a slow upstream throttles us.
      socket.send(JSON.stringify(message), (error) => (error ? reject(toUpstreamError(error)) : resolve()));
    });
  }

  protected release(): void {
    const socket = this.#socket;
    if (socket && socket.readyState !== WebSocket.CLOSED) {
      if (socket.readyState === WebSocket.OPEN) socket.close(1000, 'session closed');
      else socket.terminate();
    }
  }
}
