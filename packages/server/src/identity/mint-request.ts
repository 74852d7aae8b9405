/**
 * @module identity/mint-request
 * What a request for a minted token may ask (issue 17), checked the same way for
 * `POST /auth/tokens` and `npm run token`: a subject, a TTL (capped), servers or virtual servers
 * named in the config, URL patterns, tool names, an origin; and grants within the minter's own
 * in every dimension (policy/grant-within.ts), a field left out taking the minter's.
 */
import { z } from 'zod';
import { type Config, isOrigin } from '../config/config.ts';
import { urlPattern } from '../config/schemas.ts';
import { ProxyError } from '../errors.ts';
import { describeExcess, grantExcess, type HandedGrants } from '../policy/grant-within.ts';
import {
  MAX_TOKEN_BYTES,
  MAX_TTL_SECONDS,
  type MintRequest,
  normalSubject,
  SUBJECT,
} from './minted-tokens.ts';

/** Lifetime of a minted token when the request names none. */
export const DEFAULT_TTL_SECONDS = 3_600;

const mintBody = z.strictObject({
  subject: z
    .string()
    .transform(normalSubject)
    .pipe(
      z
        .string()
        .regex(
          SUBJECT,
          'subject must be 1 to 256 characters, without control, format or separator characters or surrounding spaces',
        ),
    ),
  ttlSeconds: z.number().int().positive().optional(),
  servers: z.array(z.string().min(1).max(128)).max(256).optional(),
  // Bounded so comparing them with the minter's patterns stays cheap (policy/grant-within.ts).
  urls: z.array(z.string().max(512).pipe(urlPattern)).max(64).optional(),
  tools: z.array(z.string().min(1).max(256)).max(1_024).optional(),
  origin: z
    .string()
    .refine(isOrigin, 'origin must be a scheme, host and optional port, like https://app.example.com')
    .optional(),
});

/** What the request is judged against. */
export interface MintContext {
  /** The configuration now: the servers and virtual servers (issue 20) a token may be limited to. */
  readonly configured: Pick<Config, 'servers' | 'virtualServers'>;
  /**
   * The minter's own grants: the token's never exceed them, and a field the request leaves out
   * takes the minter's. Absent: a minter limited by nothing (`npm run token`).
   */
  readonly minter?: HandedGrants | undefined;
}

/** Checks a request body; throws `invalid_token_request` naming the first bad field. */
export function parseMintRequest(body: unknown, context: MintContext): MintRequest {
  const parsed = mintBody.safeParse(body ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') || 'body';
    throw new ProxyError('invalid_token_request', `Invalid token request: ${field}: ${issue?.message}`);
  }
  const request = parsed.data;
  // Patterns past what a token can carry are refused before they are compared (review10 MINT-3).
  const urlBytes = request.urls?.reduce((sum, pattern) => sum + Buffer.byteLength(pattern), 0) ?? 0;
  if (urlBytes > MAX_TOKEN_BYTES)
    throw new ProxyError(
      'invalid_token_request',
      `Invalid token request: urls: the token would be too large for a header (${urlBytes} bytes of URL patterns, at most ${MAX_TOKEN_BYTES}): name fewer or shorter ones`,
    );
  const { servers: named, virtualServers } = context.configured;
  const isVirtual = (name: string) => Object.hasOwn(virtualServers, name);
  const unknown = request.servers?.find((name) => !Object.hasOwn(named, name) && !isVirtual(name));
  if (unknown !== undefined)
    throw new ProxyError(
      'invalid_token_request',
      `Invalid token request: servers: no server named "${unknown}"`,
    );
  const minter = context.minter ?? {};
  const grants: HandedGrants = {
    servers: request.servers ?? minter.servers,
    urls: request.urls ?? minter.urls,
    tools: request.tools ?? minter.tools,
    rateClass: minter.rateClass,
  };
  const excess = grantExcess(grants, minter, isVirtual);
  if (excess !== undefined)
    throw new ProxyError(
      'invalid_token_request',
      `Invalid token request: ${describeExcess(excess, 'the admin token')}`,
    );
  return {
    subject: request.subject,
    ttlSeconds: Math.min(request.ttlSeconds ?? DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS),
    servers: grants.servers,
    urls: grants.urls,
    tools: grants.tools,
    rateClass: grants.rateClass,
    origin: request.origin?.replace(/\/$/, ''),
  };
}
