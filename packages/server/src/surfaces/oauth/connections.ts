/**
 * @module surfaces/oauth/connections
 * `GET /oauth/connections` and `DELETE /oauth/connections/{server}` (issue 18, item 4): the caller
 * sees the upstream servers its principal is signed in to (server, resource, issuer, scopes,
 * expiry: never a token) and ends one (revoked at the authorization server where it offers
 * RFC 7009, then deleted). Registered inside the authenticated scope: the principal is the
 * caller's, from its proxy credential, so nobody lists or ends another principal's connections.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { OAuthConnections } from '../../credentials/connections.ts';
import { ProxyError } from '../../errors.ts';
import { callerSignal } from '../../http/caller-signal.ts';

function principalOf(request: FastifyRequest): string {
  const identity = request.identity;
  if (!identity) throw new ProxyError('unauthorized');
  return identity.principalKey;
}

/** Registers the connection routes (inside the authenticated scope). */
export async function oauthConnectionRoutes(
  app: FastifyInstance,
  options: {
    /** The broker's connections (loading the broker on first use: issue #16). */
    readonly connections: () => Promise<OAuthConnections>;
  },
): Promise<void> {
  app.get('/oauth/connections', async (request, reply) => {
    const listed = await (await options.connections()).list(principalOf(request));
    return reply.code(200).header('cache-control', 'no-store').send({ connections: listed });
  });

  app.delete<{ Params: { server: string } }>('/oauth/connections/:server', async (request, reply) => {
    const ended = await (await options.connections()).disconnect(
      principalOf(request),
      request.params.server,
      callerSignal(reply),
    );
    if (ended.length === 0) throw new ProxyError('oauth_connection_not_found');
    request.log.info(
      { servers: ended.map((each) => each.server), revocation: ended.map((each) => each.revocation) },
      'upstream oauth connection ended',
    );
    return reply.code(200).header('cache-control', 'no-store').send({ disconnected: ended });
  });
}
