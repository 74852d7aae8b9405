/**
 * @module surfaces/auth/routes
 * `POST /auth/tokens` and `DELETE /auth/tokens/{id}` (issue 17): an app's backend, holding an
 * admin token, mints short-lived tokens for its users and revokes them. Registered inside the
 * authenticated scope; only an admin static token passes the check here. A token is revoked by
 * the admin that minted it, or by an unrestricted one (no servers, urls, tools or rate class of its own).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ProxyError } from '../../errors.ts';
import type { MintRecords } from '../../identity/mint-records.ts';
import { type MintContext, parseMintRequest } from '../../identity/mint-request.ts';
import { type MintedTokens, TOKEN_ID } from '../../identity/minted-tokens.ts';
import type { Principal } from '../../identity/principal.ts';
import type { Revocations } from '../../identity/revocations.ts';

/** What the token routes need. */
export interface AuthRouteOptions {
  readonly minted: MintedTokens;
  readonly revocations: Revocations;
  /** Who minted each token. */
  readonly records: MintRecords;
  /** The configuration now (a reload may change it): the servers and virtual servers a token may name. */
  readonly configured: () => MintContext['configured'];
  readonly now: () => number;
}

/** How long a revocation outlives its token, for clock differences between instances. */
const REVOCATION_LEEWAY_MS = 60_000;

/** Registers the token routes. */
export async function authRoutes(app: FastifyInstance, options: AuthRouteOptions): Promise<void> {
  app.post('/auth/tokens', async (request, reply) => {
    const admin = requireAdmin(request);
    const wanted = parseMintRequest(request.body, {
      configured: options.configured(),
      minter: admin.grants,
    });
    const minted = await options.minted.mint(wanted, admin.principalKey).catch((error: unknown) => {
      // The operator's to fix: the file and errno go to the log (the caller gets the 503).
      if (error instanceof ProxyError && error.code === 'signing_key_unavailable')
        request.log.warn(
          { reason: (error.cause as Error | undefined)?.message },
          'cannot mint: no usable signing key',
        );
      throw error;
    });
    // Recorded before the token is handed out: one that could not be recorded could not be revoked.
    await options.records.record(minted.id, admin.principalKey, Date.parse(minted.expiresAt));
    request.log.info({ minted: minted.id, admin: admin.id }, 'token minted');
    return reply.code(201).header('cache-control', 'no-store').send(minted);
  });

  app.delete<{ Params: { id: string } }>('/auth/tokens/:id', async (request, reply) => {
    const admin = requireAdmin(request);
    const id = request.params.id;
    // Something that cannot be a minted id (the token itself, its subject) names no token.
    if (!TOKEN_ID.test(id)) throw new ProxyError('token_not_found');
    // Every mint is recorded (by POST /auth/tokens and npm run token), with who minted it: an id
    // without a record names no live token, and nothing is stored for it.
    const record = await options.records.lookup(id);
    if (!record) throw new ProxyError('token_not_found');
    if (record.by !== admin.principalKey && !unrestricted(admin))
      throw new ProxyError(
        'admin_required',
        'Only the admin token that minted this token, or an admin token without servers, urls, tools or rateClass of its own, may revoke it.',
      );
    // Kept as long as the token could still be valid.
    await options.revocations.revoke(id, Math.max(record.until, options.now()) + REVOCATION_LEEWAY_MS);
    request.log.info({ revoked: id }, 'token revoked');
    return reply.code(204).send();
  });
}

/**
 * An admin limited to nothing: it may revoke any token. A rate class is a limit too: every token
 * an admin mints carries its class, so admins that differ only by class serve different tenants
 * (or plans), and neither revokes the other's tokens.
 */
function unrestricted(admin: Principal): boolean {
  const { servers, urls, tools, rateClass } = admin.grants;
  return servers === undefined && urls === undefined && tools === undefined && rateClass === undefined;
}

/** The request's principal, if it is an admin static token; else `admin_required`. */
function requireAdmin(request: FastifyRequest): Principal {
  const identity = request.identity;
  if (!identity) throw new ProxyError('unauthorized');
  // Only a static admin token mints: a minted token carrying `admin` must not mint more.
  if (identity.auth !== 'static' || identity.grants.admin !== true) throw new ProxyError('admin_required');
  return identity;
}
