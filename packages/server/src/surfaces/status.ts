/**
 * @module surfaces/status
 * `GET /status` (the page, which holds no data) and `GET /status.json` (what it polls), for
 * people rather than Prometheus (issue 21). The data wants the metrics token or an admin token
 * (a static token with `admin: true`, or ADMIN_TOKEN); failed attempts count as brute force, as
 * on `/metrics`. The routes exist only when one of those could be presented.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.ts';
import type { HeldSessionsDeps } from '../dispatch/held-sessions.ts';
import { findProxyError } from '../errors.ts';
import { assertOperatorBearer, type OperatorBearer } from '../http/operator-bearer.ts';
import type { Authenticator } from '../identity/authenticator.ts';
import { TokenVerifier } from '../identity/tokens.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import type { LiveStatus, SessionCounts } from '../observability/live-status.ts';

/** True when someone could read the status: a metrics token or an admin token is configured. */
export function statusEnabled(config: Config): boolean {
  return (
    config.metricsToken !== undefined ||
    config.adminToken !== undefined ||
    config.tokens.some((token) => token.admin === true)
  );
}

/** Configured servers and the host each reaches (`stdio:<name>` for a command), for the page. */
export function serverHosts(servers: Config['servers']): Array<{ name: string; host: string }> {
  return Object.entries(servers).map(([name, server]) => ({
    name,
    host: 'url' in server ? (URL.parse(server.url)?.host ?? name) : `stdio:${name}`,
  }));
}

/**
 * Proxy-held sessions by upstream transport (a `/ws` socket's, a POST /proxy or `/mcp` held
 * session's, a modern pool's), and the open sockets; counted when the page asks.
 */
export function sessionCounts(
  sessions: Iterable<{ readonly transport: string }>,
  webSockets: number,
): SessionCounts {
  const byTransport: Record<string, number> = {};
  for (const { transport } of sessions) byTransport[transport] = (byTransport[transport] ?? 0) + 1;
  return { byTransport, webSockets };
}

/** Counts a stdio or WebSocket upstream's opening (HeldSessions' `onOpen`) on the page. */
export function openingsOf(status: LiveStatus): NonNullable<HeldSessionsDeps['onOpen']> {
  return (host, ms, failure) =>
    status.opened(host, ms, failure === undefined ? undefined : (findProxyError(failure)?.code ?? 'error'));
}

/** What the status routes need. */
export interface StatusRouteOptions {
  readonly status: LiveStatus;
  /** METRICS_TOKEN, when set. */
  readonly metricsToken: string | undefined;
  /** Resolves a proxy credential, for admin principals. */
  readonly authenticator: Authenticator;
  /** Counts failed attempts per address. */
  readonly limiter: RateLimiter;
}

/** Registers `GET /status` and `GET /status.json`. */
export async function statusRoutes(app: FastifyInstance, options: StatusRouteOptions): Promise<void> {
  const { status, authenticator, limiter } = options;
  const metricsToken =
    options.metricsToken === undefined ? undefined : new TokenVerifier([options.metricsToken]);
  // The page's markup loads with the routes, only where they exist (issue #16: start-up memory).
  const page = (await import('./status-page.ts')).statusPage();

  /** True for the metrics token or an admin static token; anything else is a refusal. */
  async function allowed(presented: string | undefined, origin: string | undefined): Promise<boolean> {
    if (presented === undefined) return false;
    if (metricsToken?.verify(presented)) return true;
    try {
      const principal = await authenticator.authenticate(presented, origin);
      return principal.auth === 'static' && principal.grants.admin === true;
    } catch (error) {
      if (findProxyError(error) === undefined) throw error;
      return false;
    }
  }

  app.get('/status', (_request, reply) => {
    reply.headers(page.headers).send(page.html);
  });
  const gate: OperatorBearer = {
    limiter,
    accepts: (token, request) => allowed(token, request.headers.origin),
    realm: 'status',
    hint: 'Send the metrics token, or an admin token, as Authorization: Bearer <token>.',
  };
  app.get('/status.json', async (request, reply) => {
    await assertOperatorBearer(gate, request, reply);
    return reply.header('cache-control', 'no-store').send(status.snapshot());
  });
}
