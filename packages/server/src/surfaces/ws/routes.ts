/**
 * @module surfaces/ws/routes
 * `WS /ws`: the browser-grade WebSocket surface. The upgrade is checked (Origin, proxy token,
 * target) before it completes; a refusal is a plain HTTP error with a JSON-RPC body.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer } from 'ws';
import type { OAuthBroker } from '../../credentials/broker.ts';
import { LiveCredential } from '../../credentials/live-credential.ts';
import type { DispatchPlanner, Route } from '../../dispatch/plan.ts';
import type { TargetResolver } from '../../dispatch/targets.ts';
import { findProxyError, ProxyError, SOCKET_CLOSES, toCloseFrame, toErrorReply } from '../../errors.ts';
import { type AuditTrail, serverLabel, socketAudit, targetLabel } from '../../identity/audit-trail.ts';
import { type Authenticator, CREDENTIAL_REFUSALS } from '../../identity/authenticator.ts';
import type { CredentialHoldings } from '../../identity/credential-holdings.ts';
import { FollowedPrincipal } from '../../identity/followed-principal.ts';
import type { MayKeep } from '../../identity/live-requests.ts';
import { ClientAddress, rateSubject } from '../../limits/client-address.ts';
import type { RateLimiter } from '../../limits/rate-limiter.ts';
import { describeUrl } from '../../observability/logger.ts';
import { type Carrier, carried } from '../../observability/tracing.ts';
import { authRefusal } from '../../upstream/status.ts';
import { WsConnection, type WsConnectionDeps } from './connection.ts';
import { checkHandshake, type HandshakePolicy, MCP_PROTOCOL } from './handshake.ts';
import { type VirtualPeer, virtualPeer } from './virtual-socket.ts';

/** What the WebSocket route needs. */
export interface WsRouteOptions {
  readonly authenticator: Authenticator;
  /** Where a minted token's sockets are registered: its revocation or expiry closes them (4401). */
  readonly holdings: CredentialHoldings;
  readonly limiter: RateLimiter;
  /** The audit trail, when it is on: a line per message, and per handshake refused by policy. */
  readonly audit?: AuditTrail | undefined;
  /** Reverse proxies whose X-Forwarded-For is believed. */
  readonly trustedProxies: readonly string[];
  readonly targets: TargetResolver;
  /** Decides the route of a socket (a held session, today always). */
  readonly planner: DispatchPlanner;
  readonly policy: HandshakePolicy;
  readonly maxMessageBytes: number;
  /** Deadline on the checks before a handshake completes (the configured request deadline). */
  readonly handshakeTimeoutMs: number;
  /** Whether an owner may still use a socket to a target (the reload's decision). */
  readonly mayKeep: MayKeep;
  /** The proxy's own resource URL (`PUBLIC_URL`), which a resource-bound bearer token must name. */
  readonly resource?: (() => string | undefined) | undefined;
  readonly connection: Omit<
    WsConnectionDeps,
    'logger' | 'limiter' | 'audit' | 'authRequired' | 'freshen' | 'renewed' | 'ended'
  >;
  /**
   * The upstream OAuth broker, once loaded (undefined: not loaded, so off): signs the principal
   * in when the caller brings no credential.
   */
  readonly broker?: (() => OAuthBroker | undefined) | undefined;
}

/** The open `/ws` sockets, as the app sees them. */
export interface WsRegistry {
  /** Number of open sockets. */
  count(): number;
  /** Closes (4401) every socket whose owner may no longer reach its target (after a reload). */
  endUnreachable(mayKeep: MayKeep): void;
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
    // Before anything else: Node removed its own 'error' listener before emitting 'upgrade', so
    // a reset arriving while we answer would otherwise be an uncaught exception (issue 14 review).
    socket.on('error', () => {});
    const url = request.url ?? '/';
    if (handshakePath(url) !== '/ws') {
      const reply = toErrorReply(new ProxyError('not_found', 'No WebSocket endpoint here: connect to /ws.'));
      refuse(socket, reply.status, reply.body);
      return;
    }
    // The URL may carry an upstream URL with a credential in it: log its shape, never its values.
    const shape = describeUrl(url);
    const log = app.log.child({ ws: true, path: shape.path, params: shape.params });
    let accepted: Awaited<ReturnType<typeof checkHandshake>> | undefined;
    // The socket's id in audit lines (an upgrade is not a Fastify request, so it has none).
    const socketId = randomUUID();
    let route: Extract<Route, { kind: 'open-held' }>;
    // Set instead of `route` when the socket names a virtual server.
    let virtual: VirtualPeer | undefined;
    let authRequired: WsConnectionDeps['authRequired'];
    let freshen: WsConnectionDeps['freshen'];
    let renewed: WsConnectionDeps['renewed'];
    let ended: WsConnectionDeps['ended'];
    // An upgrading socket is outside Node's request deadlines: the checks below (limiter round
    // trips, DNS) get the configured request deadline, then the handshake is refused.
    let settled = false;
    const deadline = setTimeout(() => {
      if (settled) return;
      settled = true;
      const reply = toErrorReply(new ProxyError('handshake_timeout'));
      log.info({ status: reply.status, error: reply.error.code, target: targetOf(url) }, 'websocket refused');
      refuse(socket, reply.status, reply.body);
    }, options.handshakeTimeoutMs);
    deadline.unref();
    const ip = rateSubject(addresses.of(request.socket.remoteAddress, request.headers['x-forwarded-for']));
    (async () => {
      await options.limiter.assertUnder('authFailuresPerIp', ip);
      try {
        accepted = await checkHandshake(request, options.authenticator, options.policy, options.resource?.());
      } catch (error) {
        const code = findProxyError(error)?.code;
        if (code !== undefined && CREDENTIAL_REFUSALS.has(code))
          await options.limiter.consume('authFailuresPerIp', ip);
        throw error;
      }
      await options.limiter.consume('requestsPerIp', ip);
      const { identity, recheck } = accepted;
      virtual = virtualPeer(
        options.connection.virtual,
        accepted.target,
        identity,
        () => new FollowedPrincipal(identity, recheck, options.authenticator),
      );
      if (virtual !== undefined) return;
      const resolved = await options.targets.resolve(
        accepted.target,
        accepted.identity.grants,
        accepted.identity.principalKey,
      );
      const broker = options.broker?.();
      let target = resolved;
      if (broker?.enabled && resolved.kind !== 'stdio' && resolved.bearerToken === undefined) {
        // The broker supplies the credential: the vault's token, or a sign-in once the upstream asks.
        const principalKey = accepted.identity.principalKey;
        const origin = request.headers.origin;
        // The mark is read before the token: a disconnect in between changes it, and the socket ends.
        const credential = await LiveCredential.read(broker, principalKey, resolved);
        const token = credential.token;
        if (token === undefined && broker.demands(resolved)) {
          throw await broker.required(principalKey, resolved, undefined, origin);
        }
        // Review R5: the socket outlives its handshake token. Its upstream reads the credential
        // at each request, read again from the vault (refreshed when due) before each frame goes
        // upstream: a refresh or a new sign-in reaches a socket already open. Review oauth6 R1:
        // the user ended this connection (disconnect, eviction) since the socket opened: what
        // holds its token ends, a WebSocket upstream included.
        target = { ...resolved, bearerToken: token, credential };
        ended = () => credential.ended();
        freshen = () => credential.freshen();
        // The token `renewed` just failed to replace: `authRequired`, which follows it for the same
        // refusal, does not try again (review oauth6 R4: one refused request, one refresh).
        let unrenewed: string | undefined;
        renewed = async () => {
          const refused = credential.token;
          if (refused === undefined) return false;
          const fresh = await broker.rejected(principalKey, resolved, refused);
          if (fresh === undefined) {
            unrenewed = refused;
            return false;
          }
          credential.replace(fresh);
          return true;
        };
        authRequired = async (refusal) => {
          const challenge = refusal.headers['www-authenticate'];
          if (refusal.status === 403) {
            // Step-up: a token that lacks a scope this call needs (403 insufficient_scope).
            const stepUp =
              credential.token === undefined
                ? undefined
                : await broker.stepUp(principalKey, resolved, challenge);
            return stepUp ?? refusal;
          }
          const refused = credential.token;
          const justFailed = refused === unrenewed;
          unrenewed = undefined;
          if (refused !== undefined && !justFailed) {
            const fresh = await broker.rejected(principalKey, resolved, refused);
            if (fresh !== undefined) {
              // A usable token exists (refreshed now): no sign-in; the next call carries it.
              credential.replace(fresh);
              return refusal;
            }
          }
          const notOAuth = authRefusal(401, challenge, { upstreamStatus: 401 }) as ProxyError;
          return broker.required(principalKey, resolved, challenge, origin, notOAuth);
        };
      }
      const planned = await options.planner.plan(
        {
          principalKey: accepted.identity.principalKey,
          rateClass: accepted.identity.grants.rateClass,
          surface: 'ws',
          era: undefined,
          opens: false,
          session: { kind: 'none' },
        },
        target,
      );
      if (planned.kind !== 'open-held') throw new ProxyError('internal_error');
      route = planned;
    })().then(
      () => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        if (socket.destroyed) return;
        wss.handleUpgrade(request, socket, head, (ws) => {
          const principal = (accepted as NonNullable<typeof accepted>).identity;
          const owner = virtual ?? {
            ownerId: route.ownerId,
            target: route.target,
            targetKey: route.targetKey,
            rateClass: principal.grants.rateClass,
            ...(options.connection.tracing?.enabled ? { trace: handshakeTrace(request) } : {}),
          };
          // A reload may have run while the checks above awaited: what it ended, this must not
          // open (before any upstream connection is made).
          if (!options.mayKeep(owner.ownerId, owner.targetKey)) {
            ws.on('error', () => {});
            const { code, reason } = toCloseFrame(revokedError());
            ws.close(code, reason);
            return;
          }
          const target = owner.target;
          const connection = new WsConnection(ws, owner, {
            ...options.connection,
            limiter: options.limiter,
            logger: log,
            audit:
              options.audit &&
              socketAudit(
                options.audit,
                socketId,
                principal,
                target.kind === 'virtual' ? target.name : targetLabel(target),
                target.tools,
              ),
            authRequired,
            freshen,
            ended,
            renewed,
          });
          connections.add(connection);
          const recheck = (accepted as NonNullable<typeof accepted>).recheck;
          const release = options.holdings.hold(principal, (error) => connection.close(toCloseFrame(error)), {
            // Judged with the grants the token stands for now (an OIDC claim mapping reloaded): the
            // socket must still reach its server, and its tool filter (fixed at the handshake)
            // must still be the token's; a virtual server's socket takes the grants of now at
            // each request (identity/followed-principal.ts), so only its reach is judged here.
            recheck:
              recheck &&
              (() =>
                recheck(
                  (now) =>
                    options.connection.virtual?.stillReaches(owner.targetKey, now.grants) ??
                    (options.targets.stillReaches(owner.targetKey, now.grants, new Set()) &&
                      sameTools(now.grants.tools, principal.grants.tools)),
                )),
            stale: recheck?.stale(),
          });
          ws.once('close', () => {
            connections.delete(connection);
            release();
          });
        });
      },
      (error: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        const reply = toErrorReply(error);
        // A refusal of an authenticated caller (its grants, the egress guard) is audited.
        if (options.audit && accepted)
          options.audit.refused(socketId, accepted.identity, 'ws', serverLabel(accepted.target), error);
        log.info(
          { status: reply.status, error: reply.error.code, target: targetOf(url) },
          'websocket refused',
        );
        refuse(socket, reply.status, reply.body);
      },
    );
  };

  app.server.on('upgrade', onUpgrade);
  app.addHook('preClose', async () => {
    app.server.off('upgrade', onUpgrade);
    for (const connection of connections) connection.close(SOCKET_CLOSES.shutting_down);
  });
  return {
    count: () => connections.size,
    endUnreachable: (mayKeep) => {
      const frame = toCloseFrame(revokedError());
      for (const connection of connections) {
        if (!mayKeep(connection.ownerId, connection.targetKey)) connection.close(frame);
      }
    },
  };
}

/**
 * The trace context a handshake carries: its `traceparent` / `tracestate` headers, else query
 * parameters of those names (a browser cannot set headers on a WebSocket; the project already
 * reads the proxy token there): within the W3C bounds, copied (the socket keeps it).
 */
function handshakeTrace(request: IncomingMessage): Carrier | undefined {
  if (typeof request.headers.traceparent === 'string') return carried(request.headers as Carrier);
  const query = URL.parse(request.url ?? '/', 'http://ws.invalid')?.searchParams;
  return carried({ traceparent: query?.get('traceparent'), tracestate: query?.get('tracestate') });
}

/** Why a reload ends a socket: its token was revoked or no longer reaches the socket's target. */
function revokedError(): ProxyError {
  return new ProxyError(
    'unauthorized',
    'A configuration reload revoked the proxy token or its access to this MCP server.',
  );
}

/** The path of a request target as the handshake check reads it (up to `?` or `#`). */
function handshakePath(url: string): string {
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

/** The upstream a refused handshake named, for the log: a configured name or a URL's host only. */
function targetOf(url: string): string | undefined {
  const query = URL.parse(url, 'http://ws.invalid')?.searchParams;
  const server = query?.get('server');
  if (server) return `server:${server.slice(0, 64)}`;
  return URL.parse(query?.get('mcp_server_url') ?? '')?.host || undefined;
}

/** How long a refused handshake's answer may take to drain before the socket is destroyed. */
const REFUSAL_LINGER_MS = 2_000;

/**
 * Node's reason phrases, read from `node:http`'s CommonJS exports: an ES `import` of `node:http`
 * builds its whole namespace, whose lazy `WebSocket`/`MessageEvent` getters load Node's bundled
 * fetch (~8 MiB of RSS for the life of the process, issue #16).
 */
const STATUS_CODES = process.getBuiltinModule('node:http').STATUS_CODES;

/**
 * Answers a refused upgrade with an HTTP error and a JSON-RPC body, then destroys the socket: an
 * upgrading socket is outside Node's deadlines, and `end()` alone leaves it half open for as long
 * as the peer likes (issue 14 review). The timer covers a peer that never reads the answer.
 */
function refuse(socket: Duplex, status: number, body: unknown): void {
  if (socket.destroyed) return;
  const payload = JSON.stringify(body);
  const linger = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
  linger.unref();
  socket.once('close', () => clearTimeout(linger));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(payload)}\r\n` +
      'Connection: close\r\n\r\n' +
      payload,
    () => socket.destroy(),
  );
}

/** Whether two tool grants allow the same tools (order aside). */
function sameTools(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.length !== b.length) return false;
  const allowed = new Set(a);
  return b.every((tool) => allowed.has(tool));
}
