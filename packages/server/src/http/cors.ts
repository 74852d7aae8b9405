/**
 * @module http/cors
 * Browser-correct CORS for every route: configured origins only (none cross-origin by default),
 * preflight answered before auth and cached, headers on error responses too, the MCP headers a
 * browser client must read exposed, `Mcp-Param-*` request headers allowed as requested, and the
 * operator's extra request headers (CORS_ALLOWED_HEADERS) allowed on top, e.g. the MCP
 * Inspector's `x-custom-auth-headers` in its Direct mode (issue #14.17).
 */
import type { FastifyCorsOptions } from '@fastify/cors';
import type { FastifyRequest } from 'fastify';

/** Headers a browser may send. */
export const ALLOWED_HEADERS = [
  'X-Proxy-Token',
  'Content-Type',
  'Accept',
  'Authorization',
  'Mcp-Session-Id',
  'MCP-Protocol-Version',
  'Last-Event-ID',
  'Mcp-Method',
  'Mcp-Name',
  'X-MCP-Server-URL',
  'X-MCP-Token',
  'X-MCP-Transport',
  'X-Request-Id',
];

/** Response headers a browser may read. */
export const EXPOSED_HEADERS = [
  'Mcp-Session-Id',
  'MCP-Protocol-Version',
  'WWW-Authenticate',
  'X-Request-Id',
  'Retry-After',
];

/** True when `origin` may make cross-origin calls under this configuration. */
export function originAllowed(origins: readonly string[], origin: string): boolean {
  return origins.includes('*') || origins.includes(origin);
}

/** What CORS reads per request: both lists are replaced (never mutated) by a reload. */
export interface CorsAccess {
  readonly corsOrigins: readonly string[];
  /** Request headers allowed on top of {@link ALLOWED_HEADERS} (CORS_ALLOWED_HEADERS). */
  readonly corsAllowedHeaders: readonly string[];
}

/** @fastify/cors options for the configured origins and headers, read per request (they reload). */
export function corsOptions(access: CorsAccess, maxAgeSeconds: number) {
  const base = (origins: readonly string[]): FastifyCorsOptions => ({
    origin: origins.length === 0 ? false : origins.includes('*') ? '*' : [...origins],
    // Tokens travel in headers, never cookies, so credentials stay off (and `*` stays legal).
    credentials: false,
    methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: maxAgeSeconds,
    strictPreflight: true,
  });
  // Most requests ask for no extra headers: their options are built once per origins list (a
  // reload assigns a new list), not on every request (issue #10).
  let plain:
    | {
        readonly origins: readonly string[];
        readonly extra: readonly string[];
        readonly options: FastifyCorsOptions;
      }
    | undefined;
  return (request: FastifyRequest, callback: (error: Error | null, options: FastifyCorsOptions) => void) => {
    const requested = request.headers['access-control-request-headers'];
    const extra = access.corsAllowedHeaders;
    if (requested === undefined) {
      const origins = access.corsOrigins;
      if (plain?.origins !== origins || plain.extra !== extra) {
        plain = {
          origins,
          extra,
          options: { ...base(origins), allowedHeaders: [...ALLOWED_HEADERS, ...extra] },
        };
      }
      callback(null, plain.options);
      return;
    }
    const params =
      typeof requested === 'string'
        ? requested
            .split(',')
            .map((h) => h.trim())
            .filter((h) => /^mcp-param-[a-z0-9-]+$/i.test(h))
        : [];
    callback(null, {
      ...base(access.corsOrigins),
      allowedHeaders: [...ALLOWED_HEADERS, ...extra, ...params],
    });
  };
}
