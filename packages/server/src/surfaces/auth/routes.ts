/**
 * @module surfaces/auth/routes
 * `POST /auth/tokens` and `DELETE /auth/tokens/{id}` (issue 17): an app's backend, holding an
 * admin token, mints short-lived tokens for its users and revokes them. Registered inside the
 * authenticated scope; only an admin static token passes the check here.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ProxyError } from '../../errors.ts';
import { parseMintRequest } from '../../identity/mint-request.ts';
import { MAX_TTL_SECONDS, type MintedTokens } from '../../identity/minted-tokens.ts';
import type { Principal } from '../../identity/principal.ts';
import type { Revocations } from '../../identity/revocations.ts';

/** What the token routes need. */
export interface AuthRouteOptions {
  readonly minted: MintedTokens;
  readonly revocations: Revocations;
  /** The configured server names now (a reload may change them). */
  readonly serverNames: () => readonly string[];
  readonly now: () => number;
}

/** Seconds a revocation outlives the longest token, for clock differences between instances. */
const REVOCATION_LEEWAY_SECONDS = 60;
/** A minted token's `jti`: 16 random bytes, base64url. */
const TOKEN_ID = /^[A-Za-z0-9_-]{22}$/;

/** Registers the token routes. */
export async function authRoutes(app: FastifyInstance, options: AuthRouteOptions): Promise<void> {
  app.post('/auth/tokens', async (request, reply) => {
    const admin = requireAdmin(request);
    const wanted = parseMintRequest(request.body, {
      serverNames: options.serverNames(),
      within: admin.grants.servers,
    });
    const minted = await options.minted.mint(wanted);
    request.log.info({ minted: minted.id, admin: admin.id }, 'token minted');
    return reply.code(201).header('cache-control', 'no-store').send(minted);
  });

  app.delete<{ Params: { id: string } }>('/auth/tokens/:id', async (request, reply) => {
    requireAdmin(request);
    const id = request.params.id;
    // Only the shape of an id is checked: the proxy keeps no list of what it minted (tokens are
    // self-contained, `npm run token` mints without it), so a well-formed id is revoked whether
    // or not this proxy saw it minted; refusing unknown ids would leave such tokens unrevocable.
    if (!TOKEN_ID.test(id)) throw new ProxyError('token_not_found');
    // Kept as long as any token could still be valid: the longest TTL, whenever it was minted.
    await options.revocations.revoke(
      id,
      options.now() + (MAX_TTL_SECONDS + REVOCATION_LEEWAY_SECONDS) * 1000,
    );
    request.log.info({ revoked: id }, 'token revoked');
    return reply.code(204).send();
  });
}

/** The request's principal, if it is an admin static token; else `admin_required`. */
function requireAdmin(request: FastifyRequest): Principal {
  const identity = request.identity;
  if (!identity) throw new ProxyError('unauthorized');
  // Only a static admin token mints: a minted token carrying `admin` must not mint more.
  if (identity.auth !== 'static' || identity.grants.admin !== true) throw new ProxyError('admin_required');
  return identity;
}
