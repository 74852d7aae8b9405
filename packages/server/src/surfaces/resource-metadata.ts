/**
 * @module surfaces/resource-metadata
 * OAuth 2.0 Protected Resource Metadata (RFC 9728) for MCP clients, served while an OIDC issuer
 * is configured: `/.well-known/oauth-protected-resource` for the proxy as a whole, and the
 * path-suffixed variants for its MCP endpoints (`…/mcp`, `…/servers/{name}/mcp`), each naming
 * itself as `resource` (§3.3) and the configured issuers as `authorization_servers`. A 401 on
 * those endpoints points at its document with `WWW-Authenticate: Bearer resource_metadata="…"`
 * (§5.1), which is how the MCP SDKs' OAuth clients find where to sign in (MCP authorization,
 * 2025-11-25).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.ts';
import type { OidcIssuerSettings } from '../identity/oidc/issuer.ts';

/** The well-known path (RFC 9728 §3). */
export const RESOURCE_METADATA_PATH = '/.well-known/oauth-protected-resource';
/** Seconds a client may cache a metadata document. */
const MAX_AGE_SECONDS = 300;
/** A configured server's name, as `/servers/{name}/mcp` takes it (config `serverName`). */
const SERVER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** What the metadata and the challenges are built from; read per request (a reload changes it). */
export interface ResourceMetadataSource {
  /** The configured issuers; none: no metadata, no challenge. */
  issuers(): readonly OidcIssuerSettings[];
  /** The proxy's external base URL (`PUBLIC_URL`), else taken from the request. */
  publicUrl(): string | undefined;
}

/** The proxy's resource identifiers under `base`: itself, `/mcp` and each configured server's endpoint. */
export function resourceUrls(base: string, serverNames: readonly string[]): string[] {
  return [base, `${base}/mcp`, ...serverNames.map((name) => `${base}/servers/${name}/mcp`)];
}

/** A `Host` fit to be echoed in a URL and a quoted header parameter: a name or address, a port. */
const PLAIN_HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The proxy's base URL as a client sees it: `PUBLIC_URL`, else the request's scheme and `Host`
 * (`undefined` for a `Host` that is not a plain name or address, or a scheme other than http or
 * https: nothing odd is echoed).
 */
function baseUrl(source: ResourceMetadataSource, request: FastifyRequest): string | undefined {
  const configured = source.publicUrl();
  if (configured !== undefined) return configured;
  // The scheme comes from X-Forwarded-Proto behind a trusted proxy: that is a free-form header,
  // and it lands inside a quoted header parameter.
  const scheme = request.protocol as string;
  if (scheme !== 'http' && scheme !== 'https') return undefined;
  return PLAIN_HOST.test(request.host) ? `${scheme}://${request.host}` : undefined;
}

/**
 * The MCP endpoint path a request went to ('' when it is not one), from the route the router
 * matched and its decoded `name`: the raw URL may spell the same route differently
 * (`/servers/%6fne/mcp`, `/%6dcp`), and a token bound to one endpoint must not reach another.
 */
function endpointPath(request: FastifyRequest): string {
  const route = request.routeOptions.url;
  if (route === '/mcp') return '/mcp';
  if (route !== '/servers/:name/mcp') return '';
  const name = (request.params as { name?: unknown } | undefined)?.name;
  if (typeof name !== 'string') return '';
  // A name no server can have still names an endpoint of its own, never the proxy's base.
  return `/servers/${SERVER_NAME.test(name) ? name : encodeURIComponent(name)}/mcp`;
}

/** The resource URL (under `base`, i.e. `PUBLIC_URL`) of the MCP endpoint a request calls. */
export function resourceOf(base: string, request: FastifyRequest): string {
  return `${base}${endpointPath(request)}`;
}

/**
 * The `WWW-Authenticate` value of a 401 on an MCP endpoint, or `undefined` with no issuer
 * configured. `invalid` adds RFC 6750's `error="invalid_token"` (a token was sent and refused).
 */
export function bearerChallenge(
  source: ResourceMetadataSource,
  request: FastifyRequest,
  invalid: boolean,
): string | undefined {
  const base = baseUrl(source, request);
  if (source.issuers().length === 0 || base === undefined) return undefined;
  const metadata = `${base}${RESOURCE_METADATA_PATH}${endpointPath(request)}`;
  return `Bearer ${invalid ? 'error="invalid_token", ' : ''}resource_metadata="${metadata}"`;
}

/**
 * The same refusal with the challenge added, when it is a 401 and an issuer is configured; any
 * other error unchanged.
 */
export function withBearerChallenge(
  source: ResourceMetadataSource,
  request: FastifyRequest,
  error: unknown,
): unknown {
  if (!ProxyError.is(error) || error.status !== 401) return error;
  const invalid =
    request.headers.authorization !== undefined || request.headers['x-proxy-token'] !== undefined;
  const challenge = bearerChallenge(source, request, invalid);
  if (challenge === undefined) return error;
  return new ProxyError(error.code, error.message, {
    cause: error.cause,
    data: error.data,
    status: error.status,
    headers: { ...error.headers, 'www-authenticate': challenge },
  });
}

/** Registers the metadata routes (public: they hold nothing secret). */
export async function resourceMetadataRoutes(
  app: FastifyInstance,
  source: ResourceMetadataSource,
): Promise<void> {
  const answer = (request: FastifyRequest, reply: FastifyReply, path: string) => {
    const issuers = source.issuers();
    const base = baseUrl(source, request);
    if (issuers.length === 0 || base === undefined) throw new ProxyError('not_found');
    const scopes = [...new Set(issuers.flatMap((issuer) => issuer.scopes ?? []))];
    // Any page may read it: it is public by design, and browser-based MCP clients fetch it.
    reply.header('access-control-allow-origin', '*');
    reply.header('cache-control', `public, max-age=${MAX_AGE_SECONDS}`);
    return {
      resource: `${base}${path}`,
      authorization_servers: issuers.map((issuer) => issuer.issuer),
      bearer_methods_supported: ['header'],
      ...(scopes.length === 0 ? {} : { scopes_supported: scopes }),
      resource_name: 'mcp-proxy',
    };
  };
  app.get(RESOURCE_METADATA_PATH, async (request, reply) => answer(request, reply, ''));
  app.get(`${RESOURCE_METADATA_PATH}/mcp`, async (request, reply) => answer(request, reply, '/mcp'));
  app.get<{ Params: { name: string } }>(
    `${RESOURCE_METADATA_PATH}/servers/:name/mcp`,
    async (request, reply) => {
      if (!SERVER_NAME.test(request.params.name)) throw new ProxyError('not_found');
      return answer(request, reply, `/servers/${request.params.name}/mcp`);
    },
  );
}
