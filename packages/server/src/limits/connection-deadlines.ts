/**
 * @module limits/connection-deadlines
 * Deadlines on inbound connections, so that no connection, authenticated or not, is held open
 * by a peer that stops sending (issue 14 #4). Node applies them to *receiving* a request:
 * `headersTimeout` from a message's first byte (or the connection's opening) to its last header,
 * `requestTimeout` to the end of its body, `keepAliveTimeout` between requests. A response that
 * is still streaming (an event stream, a long tool call) is not cut by any of them.
 */
import type { ServerOptions } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** The configured deadlines (`server` in the configuration). */
export interface ConnectionDeadlines {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
}

/** Longest gap between Node's sweeps for expired requests (its own default is 30 s). */
const MAX_CHECK_INTERVAL_MS = 5_000;

/** The Fastify server options that apply the deadlines. */
export function serverDeadlines(deadlines: ConnectionDeadlines): {
  http: ServerOptions;
  requestTimeout: number;
  keepAliveTimeout: number;
} {
  const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs } = deadlines;
  return {
    http: {
      headersTimeout: headersTimeoutMs,
      requestTimeout: requestTimeoutMs,
      keepAliveTimeout: keepAliveTimeoutMs,
      // Node only notices an expired deadline when it sweeps: sweep often enough that a
      // deadline is kept to within a quarter of itself.
      connectionsCheckingInterval: Math.max(
        25,
        Math.min(MAX_CHECK_INTERVAL_MS, Math.floor(Math.min(headersTimeoutMs, requestTimeoutMs) / 4)),
      ),
    },
    // Fastify sets these two on the server after creating it; they must agree with the above.
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: keepAliveTimeoutMs,
  };
}

/**
 * Marks a refused request's connection for closing: `Connection: close` on the answer, and the
 * socket destroyed once it is written if the body is still arriving, so a refused caller cannot
 * keep the connection by trickling a body it was never going to be allowed to send.
 */
export function closeAfterRefusal(request: FastifyRequest, reply: FastifyReply): void {
  reply.header('connection', 'close');
  reply.raw.once('finish', () => {
    if (!request.raw.complete) request.raw.socket?.destroy();
  });
}
