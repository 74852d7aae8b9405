/**
 * @module credentials/discovery
 * Finds who issues tokens for an upstream MCP server, in the order the MCP authorization spec
 * (2025-11-25) gives: the protected resource metadata (RFC 9728) named by the 401's
 * `resource_metadata`, else at the path-aware then the root well-known URL; then the first of its
 * authorization servers' metadata (RFC 8414, then OpenID discovery, path-aware variants first).
 * A server that offers no PKCE S256 is refused: the flow would be open to code interception.
 */
import * as oauth from 'oauth4webapi';
import { ProxyError } from '../errors.ts';
import type { BearerChallenge } from './challenge.ts';
import type { OAuthFetch } from './guarded-fetch.ts';

/** What discovery learnt about an upstream. */
export interface Discovered {
  readonly as: oauth.AuthorizationServer;
  /** The RFC 8707 resource indicator to ask tokens for. */
  readonly resource: string;
  /** Scopes the resource advertises (`scopes_supported`), if any. */
  readonly scopesSupported?: readonly string[] | undefined;
}

/** Options of oauth4webapi calls: our fetch, and plain http only towards loopback (tests, local). */
export function requestOptions(
  fetch: OAuthFetch,
  url: URL,
): { [oauth.customFetch]: OAuthFetch; [oauth.allowInsecureRequests]: boolean } {
  return { [oauth.customFetch]: fetch, [oauth.allowInsecureRequests]: isLoopbackHttp(url) };
}

/** Whether `url` is plain http to this machine, the one place http is accepted in the flow. */
export function isLoopbackHttp(url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return url.protocol === 'http:' && (host === 'localhost' || host === '::1' || /^127\./.test(host));
}

/** `data.reason` when nothing says the server uses OAuth at all (no metadata anywhere). */
export const NO_OAUTH = 'no_authorization_server_metadata';

function failed(message: string): ProxyError {
  return new ProxyError('upstream_auth_failed', message);
}

/** Runs discovery for the MCP server at `serverUrl`, given its 401 challenge. */
export async function discover(
  fetch: OAuthFetch,
  serverUrl: URL,
  challenge: BearerChallenge,
  signal?: AbortSignal,
): Promise<Discovered> {
  const prm = await resourceMetadata(fetch, serverUrl, challenge, signal);
  const servers = Array.isArray(prm?.authorization_servers) ? prm.authorization_servers : [];
  const first = servers.find((s): s is string => typeof s === 'string' && URL.canParse(s));
  // Without resource metadata, 2025-03-26 servers are their own authorization server.
  const issuer = new URL(first ?? serverUrl.origin);
  let as: oauth.AuthorizationServer;
  try {
    as = trimmed(await authorizationServer(fetch, issuer, signal));
  } catch (error) {
    // With resource metadata the server does use OAuth: its issuer is broken, not absent.
    if (prm !== undefined && error instanceof ProxyError && error.data.reason === NO_OAUTH) {
      throw failed("The MCP server's authorization server publishes no metadata the proxy can find.");
    }
    throw error;
  }
  if (!as.code_challenge_methods_supported?.includes('S256')) {
    throw new ProxyError('upstream_auth_unsupported', undefined, {
      data: { reason: 'pkce_s256_not_offered' },
    });
  }
  // Review R3: the metadata only vouches for the server (covers(), above); the indicator is the
  // server's own canonical URI (MCP authorization, "Resource Parameter"), never the metadata's
  // string, which the server chooses at any length and which is kept with every sign-in.
  const resource = indicatorOf(serverUrl);
  const scopes = Array.isArray(prm?.scopes_supported)
    ? prm.scopes_supported.filter((s): s is string => typeof s === 'string')
    : undefined;
  return { as, resource, scopesSupported: scopes };
}

/** The MCP server's canonical URI (RFC 8707 resource): no fragment, no trailing slash on the root. */
export function canonical(url: URL): string {
  const copy = new URL(url);
  copy.hash = '';
  return copy.pathname === '/' && copy.search === '' ? copy.origin : copy.href;
}

/**
 * The RFC 8707 resource indicator of `serverUrl`: its canonical URI without query (RFC 8707 §2:
 * no fragment, should have no query), refused past {@link MAX_METADATA_URL} like other URLs kept.
 */
function indicatorOf(serverUrl: URL): string {
  const copy = new URL(serverUrl);
  copy.search = '';
  const indicator = canonical(copy);
  if (indicator.length > MAX_METADATA_URL) throw failed("The MCP server's URL is too long to sign in to.");
  return indicator;
}

interface ResourceMetadata {
  readonly resource?: unknown;
  readonly authorization_servers?: unknown[];
  readonly scopes_supported?: unknown[];
}

async function resourceMetadata(
  fetch: OAuthFetch,
  serverUrl: URL,
  challenge: BearerChallenge,
  signal: AbortSignal | undefined,
): Promise<ResourceMetadata | undefined> {
  const candidates: URL[] = [];
  if (challenge.resourceMetadata !== undefined && URL.canParse(challenge.resourceMetadata)) {
    candidates.push(new URL(challenge.resourceMetadata));
  }
  const path = serverUrl.pathname === '/' ? '' : serverUrl.pathname.replace(/\/$/, '');
  if (path !== '') candidates.push(new URL(`/.well-known/oauth-protected-resource${path}`, serverUrl.origin));
  candidates.push(new URL('/.well-known/oauth-protected-resource', serverUrl.origin));
  for (const url of candidates) {
    const doc = await getJson(fetch, url, signal);
    if (doc === undefined) continue;
    const metadata = doc as ResourceMetadata;
    // RFC 9728 §3.3: the metadata must be about this server, else it could point us anywhere.
    if (typeof metadata.resource === 'string' && !covers(metadata.resource, serverUrl)) {
      throw failed("The MCP server's protected resource metadata names another resource.");
    }
    return metadata;
  }
  return undefined;
}

/** Whether a metadata `resource` names `serverUrl` (same origin, a path prefix of it). */
function covers(resource: string, serverUrl: URL): boolean {
  if (!URL.canParse(resource)) return false;
  const named = new URL(resource);
  if (named.origin !== serverUrl.origin) return false;
  const prefix = named.pathname.endsWith('/') ? named.pathname : `${named.pathname}/`;
  return (
    named.pathname === serverUrl.pathname || serverUrl.pathname.startsWith(prefix) || named.pathname === '/'
  );
}

/**
 * GETs a metadata document: the response when the server answered 200, else undefined (the
 * caller tries its next candidate). A refusal of the egress guard (a ProxyError) and the flow's
 * deadline end discovery instead.
 */
async function getMetadata(
  fetch: OAuthFetch,
  url: URL,
  signal: AbortSignal | undefined,
): Promise<Response | undefined> {
  let response: Response;
  try {
    response = await fetch(url.href, { method: 'GET', headers: { accept: 'application/json' }, signal });
  } catch (cause) {
    if (cause instanceof ProxyError) throw cause;
    throwIfOver(signal);
    return undefined;
  }
  return response.status === 200 ? response : undefined;
}

async function getJson(fetch: OAuthFetch, url: URL, signal: AbortSignal | undefined): Promise<unknown> {
  const response = await getMetadata(fetch, url, signal);
  if (response === undefined) return undefined;
  try {
    const value: unknown = await response.json();
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The authorization server metadata URLs of `issuer`, in the MCP spec's order. */
export function metadataUrls(issuer: URL): URL[] {
  const path = issuer.pathname === '/' ? '' : issuer.pathname.replace(/\/$/, '');
  if (path === '') {
    return [
      new URL('/.well-known/oauth-authorization-server', issuer.origin),
      new URL('/.well-known/openid-configuration', issuer.origin),
    ];
  }
  return [
    new URL(`/.well-known/oauth-authorization-server${path}`, issuer.origin),
    new URL(`/.well-known/openid-configuration${path}`, issuer.origin),
    new URL(`${path}/.well-known/openid-configuration`, issuer.origin),
  ];
}

async function authorizationServer(
  fetch: OAuthFetch,
  issuer: URL,
  signal: AbortSignal | undefined,
): Promise<oauth.AuthorizationServer> {
  for (const url of metadataUrls(issuer)) {
    const response = await getMetadata(fetch, url, signal);
    if (response === undefined) continue;
    try {
      // Checks `issuer` equals the one we asked about (RFC 8414 §3.3).
      return await oauth.processDiscoveryResponse(issuer, response);
    } catch {
      throw failed("The MCP server's authorization server sent invalid metadata.");
    }
  }
  throw new ProxyError(
    'upstream_auth_failed',
    "The MCP server's authorization server publishes no metadata the proxy can find.",
    { data: { reason: NO_OAUTH } },
  );
}

/**
 * The flow's deadline or the caller's abort ended discovery (review F8): no further candidate URL
 * is tried, and the caller hears a timeout rather than "no OAuth here".
 */
export function throwIfOver(signal: AbortSignal | undefined): void {
  if (signal?.aborted !== true) return;
  throw new ProxyError('upstream_timeout', "The MCP server's authorization server did not answer in time.");
}

/** Longest URL or issuer kept from authorization server metadata (review F4). */
const MAX_METADATA_URL = 2048;

/**
 * The fields of authorization server metadata the flow uses, each bounded (review F4: metadata is
 * kept with every pending sign-in and vault entry, and an attacker chooses its size); the
 * authorization endpoint must be https, or http on loopback (review F7: the browser is sent there).
 */
function trimmed(as: oauth.AuthorizationServer): oauth.AuthorizationServer {
  const url = (value: unknown): string | undefined =>
    typeof value === 'string' && value.length <= MAX_METADATA_URL && URL.canParse(value) ? value : undefined;
  const endpoint = url(as.authorization_endpoint);
  if (as.issuer.length > MAX_METADATA_URL)
    throw failed("The MCP server's authorization server sent invalid metadata.");
  if (endpoint !== undefined) {
    const parsed = new URL(endpoint);
    if (
      !(parsed.protocol === 'https:' || isLoopbackHttp(parsed)) ||
      parsed.username !== '' ||
      parsed.password !== ''
    ) {
      throw failed("The MCP server's authorization endpoint is not an https URL.");
    }
  }
  const methods = Array.isArray(as.token_endpoint_auth_methods_supported)
    ? as.token_endpoint_auth_methods_supported.filter((m) =>
        ['none', 'client_secret_basic', 'client_secret_post'].includes(m),
      )
    : undefined;
  const kept: Record<string, unknown> = {
    issuer: as.issuer,
    authorization_endpoint: endpoint,
    token_endpoint: url(as.token_endpoint),
    registration_endpoint: url(as.registration_endpoint),
    revocation_endpoint: url(as.revocation_endpoint),
    code_challenge_methods_supported: as.code_challenge_methods_supported?.includes('S256') ? ['S256'] : [],
    authorization_response_iss_parameter_supported:
      as.authorization_response_iss_parameter_supported === true,
    token_endpoint_auth_methods_supported: methods,
    client_id_metadata_document_supported: as.client_id_metadata_document_supported === true,
  };
  return Object.fromEntries(
    Object.entries(kept).filter(([, v]) => v !== undefined),
  ) as unknown as oauth.AuthorizationServer;
}
