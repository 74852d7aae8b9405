/**
 * @module http/operator-bearer
 * The gate of the operator routes (`/metrics`, `/status.json`): a bearer token in
 * `Authorization`, failed attempts counted per address as brute force (as on the proxy routes),
 * and a refused connection closed after its answer. One gate, so the two routes cannot drift.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.ts';
import { rateSubject } from '../limits/client-address.ts';
import { closeAfterRefusal } from '../limits/connection-deadlines.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';

/** One operator route's gate. */
export interface OperatorBearer {
  /** Counts failed attempts per address. */
  readonly limiter: RateLimiter;
  /** Whether the presented token (absent when none was sent) opens the route. */
  readonly accepts: (token: string | undefined, request: FastifyRequest) => boolean | Promise<boolean>;
  /** The `WWW-Authenticate` realm of a refusal. */
  readonly realm: string;
  /** What a refused caller is told to send. */
  readonly hint: string;
}

/** Resolves when `request` carries a token `gate` accepts; otherwise throws `unauthorized`. */
export async function assertOperatorBearer(
  gate: OperatorBearer,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  const ip = rateSubject(request.ip);
  try {
    await gate.limiter.assertUnder('authFailuresPerIp', ip);
    const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
    if (!(await gate.accepts(match?.[1], request))) {
      await gate.limiter.consume('authFailuresPerIp', ip);
      throw new ProxyError('unauthorized', gate.hint, {
        headers: { 'www-authenticate': `Bearer realm="${gate.realm}"` },
      });
    }
  } catch (error) {
    closeAfterRefusal(request, reply);
    throw error;
  }
}
