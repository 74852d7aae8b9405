/**
 * @module config/schemas
 * The schemas of the configuration's parts: proxy tokens, configured servers (by URL or as a
 * stdio child), grants, OIDC issuers. config.ts assembles them into the one config schema.
 */
import { z } from 'zod';
import { normalPattern } from '../policy/url-pattern-normal.ts';
import { ASYMMETRIC_ALGORITHMS, isOidcUrl } from './oidc-url.ts';

/** A positive whole number (counts, bytes, milliseconds). */
export const positiveInt = z.number().int().positive();
/** A proxy token as configured (also a WebSocket subprotocol name, so a narrow alphabet). */
export const tokenSchema = z
  .string()
  .min(16, 'a proxy token must be at least 16 characters (32+ random characters recommended)')
  // Letters, digits and - _ . ~ only: the token must also fit a WebSocket subprotocol name.
  .refine((t) => /^[A-Za-z0-9._~-]+$/.test(t), 'a proxy token may contain only letters, digits and - _ . ~');

/** Name of a configured server: used in `/servers/{name}/mcp`, so URL-safe. */
export const serverName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'server names use letters, digits, . _ -');

/** A rate class's name (`rateClasses`). */
export const rateClassName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'rate class names use letters, digits, . _ -');

/**
 * A URL pattern of a grant: an http(s) or ws(s) URL where `*` and `**` stand for parts, taken in
 * the form targets are matched in (policy/url-pattern-normal.ts: `http://h:80/café` becomes
 * `http://h/caf%C3%A9`), or refused when it has none.
 */
export const urlPattern = z
  .string()
  .regex(
    /^(?:https?|wss?):\/\/[^/?#\s]+(?:\/[^?#\s]*)?$/i,
    'a URL pattern looks like https://*.example.com/mcp (no query or fragment)',
  )
  .transform((pattern, context) => {
    const normal = normalPattern(pattern);
    if ('pattern' in normal) return normal.pattern;
    context.addIssue({
      code: 'custom',
      message: `the URL pattern ${pattern} can match nothing: ${normal.refused}`,
    });
    return z.NEVER;
  });

/** A server's protocol era; `legacy` is the former name of `session`, still accepted. */
const protocolSchema = z
  .enum(['auto', 'modern', 'session', 'legacy'])
  .default('auto')
  .transform((era) => (era === 'legacy' ? 'session' : era));

/** An operator-configured MCP server reached over the network. */
export const urlServerSchema = z.strictObject({
  url: z.string().url('must be an http(s) or ws(s) URL'),
  transport: z.enum(['auto', 'streamable-http', 'sse', 'websocket']).default('auto'),
  /** Bearer token the proxy sends upstream for this server (callers never see it). */
  token: z.string().min(1).optional(),
  /** Only these tools are listed and callable (others look unknown). */
  tools: z.array(z.string().min(1)).optional(),
  /**
   * Which MCP era the server speaks: `modern` (2026-07-28 only), `session` (the 2025 session
   * versions only), or `auto` (learnt from its answers; cached per upstream).
   */
  protocol: protocolSchema,
  /** `oauth`: the proxy signs each user in before the first call (docs/oauth.md). */
  auth: z.enum(['oauth']).optional(),
  /** A client pre-registered at the server's authorization server, and the scopes to ask. */
  oauth: z
    .strictObject({
      clientId: z.string().min(1),
      clientSecret: z.string().min(1).optional(),
      /** The issuer the client is registered at: used only with it (security review F3). */
      issuer: z.url().optional(),
      scopes: z.array(z.string().min(1)).optional(),
    })
    .refine((o) => o.clientSecret === undefined || o.issuer !== undefined, {
      message: 'oauth.issuer is required with oauth.clientSecret (the secret goes to that issuer only)',
    })
    .optional(),
});

/** An operator-configured MCP server run as a child process speaking stdio. */
export const stdioServerSchema = z.strictObject({
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: z.record(z.string(), z.string()).default({}),
  cwd: z.string().min(1).optional(),
  /** Only these tools are listed and callable (others look unknown). */
  tools: z.array(z.string().min(1)).optional(),
  /**
   * Which MCP era the server speaks: `modern` (2026-07-28 only), `session` (the 2025 session
   * versions only), or `auto` (learnt from its answers; cached per upstream).
   */
  protocol: protocolSchema,
});

/**
 * What a principal may do (identity/principal.ts `Grants`): the one schema of a config token's
 * grants, an OIDC claim mapping's and an issuer's fallback grants. config.ts's `checkGrantNames` checks
 * the names they use against the rest of the configuration.
 */
export const grantsSchema = z.strictObject({
  servers: z.array(serverName).optional(),
  /** URL patterns of raw targets it may reach (`https://*.example.com/mcp`). */
  urls: z.array(urlPattern).optional(),
  /** Tools it may list and call on any server. */
  tools: z.array(z.string().min(1)).optional(),
  rateClass: rateClassName.optional(),
  admin: z.boolean().optional(),
});

/** An OIDC issuer (or key set) URL: https, or http on loopback only (config/oidc-url.ts). */
const oidcUrl = (query: boolean) =>
  z
    .string()
    .refine(
      (value) => isOidcUrl(value, { query }),
      'must be an https:// URL (http:// only on loopback) without userinfo, query or fragment',
    );
/** An OIDC issuer URL (no query). */
export const issuerUrl = oidcUrl(false);

/** One trusted OpenID provider (identity/oidc/issuer.ts `OidcIssuerSettings`). */
export const oidcIssuerSchema = z.strictObject({
  issuer: issuerUrl,
  audience: z
    .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
    .transform((aud) => (typeof aud === 'string' ? [aud] : aud)),
  algorithms: z.array(z.enum(ASYMMETRIC_ALGORITHMS)).min(1).optional(),
  jwksUri: oidcUrl(true).optional(),
  claims: z.record(z.string().min(1), z.record(z.string(), grantsSchema)).optional(),
  grants: grantsSchema.optional(),
  scopes: z.array(z.string().min(1)).optional(),
  requireAtJwt: z.boolean().optional(),
  /** The proxy's own OIDC client here: users sign in to bind sign-in links (docs/oauth.md). */
  login: z
    .strictObject({ clientId: z.string().min(1), clientSecret: z.string().min(1).optional() })
    .optional(),
});
