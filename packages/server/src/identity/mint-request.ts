/**
 * @module identity/mint-request
 * What a request for a minted token may ask (issue 17), checked the same way for
 * `POST /auth/tokens` and `npm run token`: a subject, a TTL (capped), servers or virtual servers
 * named in the config and within the minter's own, tool names, an origin.
 */
import { z } from 'zod';
import { type Config, isOrigin } from '../config/config.ts';
import { ProxyError } from '../errors.ts';
import { restrictsMembers } from '../virtual/member-grants.ts';
import { MAX_TTL_SECONDS, type MintRequest, normalSubject, SUBJECT } from './minted-tokens.ts';

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
  /** The minter's own servers, when it is limited: the token gets (some of) them. */
  readonly within?: readonly string[] | undefined;
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
  const { servers: named, virtualServers } = context.configured;
  const isVirtual = (name: string) => Object.hasOwn(virtualServers, name);
  const unknown = request.servers?.find((name) => !Object.hasOwn(named, name) && !isVirtual(name));
  if (unknown !== undefined)
    throw new ProxyError(
      'invalid_token_request',
      `Invalid token request: servers: no server named "${unknown}"`,
    );
  const within = context.within;
  const outside = within === undefined ? undefined : request.servers?.find((name) => !within.includes(name));
  if (outside !== undefined) {
    throw new ProxyError(
      'invalid_token_request',
      `Invalid token request: servers: "${outside}" is not one the admin token may reach`,
    );
  }
  // A grant naming virtual servers only sees every member through them; an admin whose grant sees
  // only the members it names must not mint one that sees the others (docs/identity.md).
  const servers = request.servers;
  if (
    within !== undefined &&
    servers?.some(isVirtual) === true &&
    restrictsMembers(within, isVirtual) &&
    !restrictsMembers(servers, isVirtual)
  ) {
    throw new ProxyError(
      'invalid_token_request',
      'Invalid token request: servers: the admin token sees only the members it names of a virtual server: name those members too',
    );
  }
  return {
    subject: request.subject,
    ttlSeconds: Math.min(request.ttlSeconds ?? DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS),
    servers: request.servers ?? within,
    tools: request.tools,
    origin: request.origin?.replace(/\/$/, ''),
  };
}
