/**
 * @module connections
 * The caller's upstream OAuth connections (the proxy's docs/oauth.md, "Connections"): which MCP
 * servers the proxy holds a sign-in for, for this client's principal (`GET /oauth/connections`),
 * and ending one (`DELETE /oauth/connections/{server}`: revoked at the authorization server where
 * it offers that, then forgotten). Plain HTTP with the proxy token, whatever the MCP transport.
 */
import { MCPProxyError } from './errors.ts';
import { isObject, parseJson } from './json.ts';
import type { ResolvedOptions } from './options.ts';
import { refusal, unreachable } from './transport/proxy-fetch.ts';

/** One upstream sign-in the proxy holds for the caller. Never a token. */
export interface UpstreamConnection {
  /** The configured server's name, or the host of a raw `mcpServerUrl`: what {@link disconnect} takes. */
  readonly server: string;
  /** The MCP server's URL. */
  readonly resource: string;
  /** The authorization server that issued the tokens. */
  readonly issuer: string;
  readonly scopes: readonly string[];
  /** When the access token expires (ISO 8601), or null when the server did not say. */
  readonly expiresAt: string | null;
  /** Whether the proxy can renew the access token without asking the user again. */
  readonly refreshable: boolean;
}

/** What ending one connection did. */
export interface Disconnected {
  readonly server: string;
  readonly resource: string;
  /**
   * `revoked`: the authorization server confirmed the revocation; `not_offered`: it has no
   * revocation endpoint; `failed`: it could not be reached or refused. The proxy forgot the
   * tokens in every case.
   */
  readonly revocation: 'revoked' | 'not_offered' | 'failed';
}

/** One exchange with the connection routes; the parsed JSON answer. */
async function exchange(
  options: ResolvedOptions,
  method: 'GET' | 'DELETE',
  path: string,
  signal: AbortSignal,
): Promise<Record<string, unknown>> {
  const url = `${options.proxyUrl.replace(/\/+$/, '')}/oauth/connections${path}`;
  let response: Awaited<ReturnType<ResolvedOptions['fetch']>>;
  let text: string;
  try {
    response = await options.fetch(url, {
      method,
      headers: { accept: 'application/json', 'x-proxy-token': options.proxyToken },
      signal,
    });
    text = await response.text();
  } catch (error) {
    throw unreachable(url, signal, error);
  }
  if (!response.ok) throw refusal(response, text);
  const body = parseJson(text);
  if (!isObject(body)) {
    throw new MCPProxyError(
      'invalid_response',
      `The proxy answered ${method} ${path || '/'} with no JSON object.`,
      {
        status: response.status,
      },
    );
  }
  return body;
}

/** `GET /oauth/connections`. */
export async function listConnections(
  options: ResolvedOptions,
  signal: AbortSignal,
): Promise<UpstreamConnection[]> {
  const body = await exchange(options, 'GET', '', signal);
  return Array.isArray(body.connections) ? (body.connections as UpstreamConnection[]) : [];
}

/** `DELETE /oauth/connections/{server}`. */
export async function endConnection(
  options: ResolvedOptions,
  server: string,
  signal: AbortSignal,
): Promise<Disconnected[]> {
  const body = await exchange(options, 'DELETE', `/${encodeURIComponent(server)}`, signal);
  return Array.isArray(body.disconnected) ? (body.disconnected as Disconnected[]) : [];
}
