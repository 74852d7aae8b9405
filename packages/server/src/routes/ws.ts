/**
 * @module routes/ws
 * `WS /ws`: the browser-grade WebSocket bridge. The upgrade is checked (Origin, proxy token,
 * target) before it completes; a refusal is a plain HTTP error with a JSON-RPC body.
 */
import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer } from 'ws';
import type { TokenVerifier } from '../auth/tokens.ts';
import { findProxyError, ProxyError, toCloseFrame, toErrorReply } from '../errors.ts';
import { TargetResolver } from '../forwarding/targets.ts';
import { ClientAddress, rateSubject } from '../limits/client-address.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import { redactUrl } from '../logger.ts';
import { WsConnection, type WsConnectionDeps } from '../ws/connection.ts';
import { checkHandshake, type HandshakePolicy, MCP_PROTOCOL } from '../ws/handshake.ts';

/** What the WebSocket route needs. */
export interface WsRouteOptions {
  readonly verifier: TokenVerifier;
  readonly limiter: RateLimiter;
  /** Reverse proxies whose X-Forwarded-For is believed. */
  readonly trustedProxies: readonly string[];
  readonly targets: TargetResolver;
  readonly policy: HandshakePolicy;
  readonly maxMessageBytes: number;
  readonly connection: Omit<WsConnectionDeps, 'logger' | 'limiter'>;
}

/** The open `/ws` sockets, as the app sees them. */
export interface WsRegistry {
  /** Number of open sockets. */
  count(): number;
  /** Closes (4401) every socket whose proxy token the verifier no longer accepts. */
  endRevoked(): void;
}

/** Attaches the `/ws` upgrade handler to the app's HTTP server. */
export function registerWebSocket(app: FastifyInstance, options: WsRouteOptions): WsRegistry {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxMessageBytes,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has(MCP_PROTOCOL) ? MCP_PROTOCOL : false),
  });
  const connections = new Set<WsConnection>();
  const addresses = new ClientAddress(options.trustedProxies);

  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/ws') {
      const reply = toErrorReply(new ProxyError('not_found', 'No WebSocket endpoint here: connect to /ws.'));
      refuse(socket, reply.status, reply.body);
      return;
    }
    const log = app.log.child({ ws: true, url: redactUrl(request.url ?? '') });
    socket.on('error', () => {});
    let accepted: ReturnType<typeof checkHandshake>;
    let target: Awaited<ReturnType<TargetResolver['resolve']>>;
    const ip = rateSubject(addresses.of(request.socket.remoteAddress, request.headers['x-forwarded-for']));
    (async () => {
      await options.limiter.assertUnder('authFailuresPerIp', ip);
      try {
        accepted = checkHandshake(request, options.verifier, options.policy);
      } catch (error) {
        if (findProxyError(error)?.code === 'unauthorized')
          await options.limiter.consume('authFailuresPerIp', ip);
        throw error;
      }
      await options.limiter.consume('requestsPerIp', ip);
      target = await options.targets.resolve(accepted.target, accepted.identity.servers);
    })().then(
      () => {
        wss.handleUpgrade(request, socket, head, (ws) => {
          const connection = new WsConnection(
            ws,
            { ownerId: accepted.identity.principalKey, target, targetKey: TargetResolver.key(target) },
            { ...options.connection, limiter: options.limiter, logger: log },
          );
          connections.add(connection);
          ws.once('close', () => connections.delete(connection));
        });
      },
      (error: unknown) => {
        const reply = toErrorReply(error);
        log.info({ status: reply.status, error: reply.error.code }, 'websocket refused');
        refuse(socket, reply.status, reply.body);
      },
    );
  };

  app.server.on('upgrade', onUpgrade);
  app.addHook('preClose', async () => {
    app.server.off('upgrade', onUpgrade);
    for (const connection of connections) connection.close(1001, 'proxy shutting down');
  });
  return {
    count: () => connections.size,
    endRevoked: () => {
      const { code, reason } = toCloseFrame(
        new ProxyError('unauthorized', 'The proxy token was revoked by a configuration reload.'),
      );
      for (const connection of connections) {
        if (!options.verifier.knows(connection.ownerId)) connection.close(code, reason);
      }
    },
  };
}

/** Answers a refused upgrade with an HTTP error and a JSON-RPC body, then closes the socket. */
function refuse(socket: Duplex, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(payload)}\r\n` +
      'Connection: close\r\n\r\n' +
      payload,
  );
}
