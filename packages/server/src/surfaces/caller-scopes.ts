/**
 * @module surfaces/caller-scopes
 * The authenticated scopes of the HTTP surfaces: `POST /proxy`, `/auth/tokens` with
 * `/oauth/connections`, and `/mcp` with `/servers/{name}/mcp`. Each scope authenticates first
 * (a request relayed from another instance comes in with the principal it authenticated there);
 * `POST /proxy` and `/mcp` then run, in this order, the audit, the live requests a reload may
 * end, the in-flight caps, the relay to the instance holding a session, and the tie of a held
 * session to its token.
 */
import type { FastifyInstance } from 'fastify';
import type { OAuthConnections } from '../credentials/connections.ts';
import type { RelayHooks } from '../http/relay-wiring.ts';
import { registerAuditHooks } from '../identity/audit-hooks.ts';
import type { AuditTrail } from '../identity/audit-trail.ts';
import type { Authenticator } from '../identity/authenticator.ts';
import { proxyTokenHook } from '../identity/hook.ts';
import type { LiveRequests } from '../identity/live-requests.ts';
import type { holdSessionHook } from '../identity/session-holding.ts';
import type { InFlightHooks } from '../limits/in-flight-hooks.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import { type AuthRouteOptions, authRoutes } from './auth/routes.ts';
import type { McpEndpoint } from './mcp/endpoint.ts';
import { mcpRoutes } from './mcp/routes.ts';
import { oauthConnectionRoutes } from './oauth/connections.ts';
import type { Forwarder } from './proxy/forwarder.ts';
import { proxyRoutes } from './proxy/routes.ts';
import { type ResourceMetadataSource, resourceOf, withBearerChallenge } from './resource-metadata.ts';

/** What the authenticated scopes are built from. */
export interface CallerScopesDeps {
  readonly authenticator: Authenticator;
  readonly limiter: RateLimiter;
  /** ALLOW_QUERY_TOKEN: `/mcp` also takes the credential from the query string. */
  readonly allowQueryToken: boolean;
  /** PUBLIC_URL now. */
  readonly publicUrl: () => string | undefined;
  /** Where a `/mcp` 401 says an MCP client learns how to sign in (RFC 9728). */
  readonly resourceMetadata: ResourceMetadataSource;
  readonly audit: AuditTrail | undefined;
  readonly live: LiveRequests;
  readonly inFlight: InFlightHooks;
  readonly relay: RelayHooks;
  readonly holdSession: ReturnType<typeof holdSessionHook>;
  readonly forwarder: Forwarder;
  readonly mcp: McpEndpoint;
  readonly auth: AuthRouteOptions;
  /** The broker's connections, loading the broker on first use (issue #16). */
  readonly connections: () => Promise<OAuthConnections>;
}

/** Registers the three authenticated scopes on `app`. */
export async function registerCallerScopes(app: FastifyInstance, deps: CallerScopesDeps): Promise<void> {
  const { authenticator, limiter, relay } = deps;
  /**
   * What POST /proxy and /mcp run after authentication, in this order: the audit, the live
   * requests a reload may end, the in-flight caps, and the tie of a held session to its token.
   */
  const callerHooks = (scope: FastifyInstance, surface: 'proxy' | 'mcp') => {
    if (deps.audit) registerAuditHooks(scope, deps.audit, surface);
    scope.addHook('onRequest', deps.live.hook());
    scope.addHook('onRequest', deps.inFlight.onRequest);
    scope.addHook('preHandler', deps.inFlight.preHandler);
    // A message of a session another instance holds goes there (issue 19): the one relay decision.
    scope.addHook('preHandler', relay.hook);
    scope.addHook('onSend', deps.holdSession);
  };
  await app.register(async (scope) => {
    scope.addHook(
      'onRequest',
      relay.trusting(proxyTokenHook(authenticator, limiter, undefined, deps.publicUrl)),
    );
    callerHooks(scope, 'proxy');
    await scope.register(proxyRoutes, deps.forwarder);
  });
  await app.register(async (scope) => {
    scope.addHook('onRequest', proxyTokenHook(authenticator, limiter, undefined, deps.publicUrl));
    await scope.register(authRoutes, deps.auth);
    await scope.register(oauthConnectionRoutes, { connections: deps.connections });
  });
  await app.register(async (scope) => {
    // RFC 9728 §5.1: a 401 here says where an MCP client learns how to sign in.
    scope.addHook(
      'onRequest',
      relay.trusting(
        proxyTokenHook(
          authenticator,
          limiter,
          { query: deps.allowQueryToken },
          (request) => {
            const publicUrl = deps.publicUrl();
            return publicUrl === undefined ? undefined : resourceOf(publicUrl, request);
          },
          (request, error) => withBearerChallenge(deps.resourceMetadata, request, error),
        ),
      ),
    );
    callerHooks(scope, 'mcp');
    await scope.register(mcpRoutes, deps.mcp);
  });
}
