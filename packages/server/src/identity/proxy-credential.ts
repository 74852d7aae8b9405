/**
 * @module identity/proxy-credential
 * The credential a request authenticated to the proxy with never goes upstream (MCP forbids
 * token passthrough, issue 17): not even when the caller also offers it as the upstream token
 * (a client whose HTTP layer adds its one token to every header and field).
 */
import type { FastifyRequest } from 'fastify';
import { bearerOf, PROXY_TOKEN_HEADER } from './hook.ts';

/**
 * Whether `token` is the credential this request authenticated to the proxy with, by the hook's
 * own precedence (X-Proxy-Token, else Authorization when it carried it, else `?proxy_token=`).
 */
export function isProxyCredential(request: FastifyRequest, token: string): boolean {
  const header = request.headers[PROXY_TOKEN_HEADER];
  if (typeof header === 'string' && header !== '') return token === header;
  if (request.credentialInAuthorization) return token === bearerOf(request.headers.authorization);
  const query = (request.query as Record<string, unknown> | undefined)?.proxy_token;
  return typeof query === 'string' && token === query;
}
