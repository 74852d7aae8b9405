/**
 * @module http/connection-drain
 * The inbound connections of one server and what each has in flight, for a shutdown that loses
 * no request (issue 19, rolling restarts). Closing a keep-alive connection while it is idle races
 * the client's next request on it: the request may already be on the wire, and a load balancer
 * does not retry a POST it has sent (nginx: `proxy_next_upstream` without `non_idempotent`). Only
 * the client closes an idle connection without that race. So a drain stops accepting, lets each
 * busy connection end with its next answer (`Connection: close`), and closes only connections
 * idle longer than their client keeps one (`DRAIN_IDLE_MS`, set above the load balancer's idle
 * timeout: it has closed them by then).
 */

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import { onResponseClosed } from '../response-closed.ts';

/** How often {@link ConnectionDrain.quiet} looks at the connections. */
const POLL_MS = 50;

interface Connection {
  inFlight: number;
  /** When its last answer ended (or it opened), in ms from `performance.now()`. */
  idleSince: number;
}

/** Tracks a server's connections from the moment it is built. */
export class ConnectionDrain {
  readonly #server: Server;
  readonly #connections = new Map<Socket, Connection>();

  constructor(server: Server) {
    this.#server = server;
    server.on('connection', (socket: Socket) => {
      this.#connections.set(socket, { inFlight: 0, idleSince: performance.now() });
      socket.once('close', () => this.#connections.delete(socket));
    });
    // A WebSocket is not an HTTP exchange: its own shutdown ends it.
    server.on('upgrade', (request: IncomingMessage) => this.#connections.delete(request.socket));
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      const connection = this.#connections.get(request.socket);
      if (connection === undefined) return;
      connection.inFlight++;
      onResponseClosed(response, () => {
        connection.inFlight = Math.max(0, connection.inFlight - 1);
        connection.idleSince = performance.now();
      });
    });
  }

  /** Open HTTP connections (WebSockets excluded). */
  get size(): number {
    return this.#connections.size;
  }

  /**
   * Stops accepting connections (under `WORKERS`, the primary stops handing this process any)
   * while the open ones stay: `http.Server#close` would also close the idle ones at once.
   */
  stopAccepting(): void {
    if (this.#server.listening) NetServer.prototype.close.call(this.#server);
  }

  /** Closes every connection with nothing in flight (the answers in flight still finish). */
  closeIdle(): void {
    for (const [socket, connection] of this.#connections) if (connection.inFlight === 0) socket.destroy();
  }

  /**
   * Resolves once no connection is left, closing those idle for `idleMs` or more, or after
   * `boundMs` whatever is left.
   */
  async quiet(boundMs: number, idleMs: number): Promise<void> {
    const until = performance.now() + boundMs;
    while (this.#connections.size > 0 && performance.now() < until) {
      const now = performance.now();
      for (const [socket, connection] of this.#connections)
        if (connection.inFlight === 0 && now - connection.idleSince >= idleMs) socket.destroy();
      if (this.#connections.size === 0) return;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }
}
