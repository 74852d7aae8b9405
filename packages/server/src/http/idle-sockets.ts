/**
 * @module http/idle-sockets
 * At shutdown, keep-alive connections that fall idle once their request finished (or never
 * sent one) would hold `close()` open until their timeout: this counts each socket's requests in
 * flight so the idle ones can be closed as soon as they are idle.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** How often, while draining, idle sockets are looked for. */
const DRAIN_INTERVAL_MS = 100;

/** The server's sockets and their requests in flight; `drain` closes the idle ones from then on. */
export interface IdleSockets {
  /** From now on, closes every socket with no request in flight (every 100 ms). */
  drain(): void;
  /** Stops draining (the server has closed). */
  stop(): void;
}

/** Starts counting the requests in flight on each of a server's sockets (upgraded ones leave). */
export function trackIdleSockets(server: Server): IdleSockets {
  let drainer: NodeJS.Timeout | undefined;
  // Sockets and how many requests each has in flight: one with none can be closed at shutdown.
  const sockets = new Map<Socket, number>();
  server.on('connection', (socket: Socket) => {
    sockets.set(socket, 0);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('upgrade', (request: IncomingMessage) => sockets.delete(request.socket));
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const socket = request.socket;
    if (!sockets.has(socket)) return;
    sockets.set(socket, (sockets.get(socket) ?? 0) + 1);
    response.once('close', () => {
      if (sockets.has(socket)) sockets.set(socket, Math.max(0, (sockets.get(socket) ?? 1) - 1));
    });
  });
  return {
    drain() {
      drainer = setInterval(() => {
        for (const [socket, inFlight] of sockets) if (inFlight === 0) socket.destroy();
      }, DRAIN_INTERVAL_MS);
      drainer.unref();
    },
    stop() {
      clearInterval(drainer);
    },
  };
}
