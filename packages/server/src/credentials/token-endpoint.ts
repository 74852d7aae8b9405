/**
 * @module credentials/token-endpoint
 * The one way the broker asks an upstream's authorization server for tokens: a code exchange at
 * the end of a sign-in, or a refresh. Both authenticate as the client the broker registered or
 * was given, name the MCP server as the resource (RFC 8707) and go through the broker's fetch.
 */
import * as oauth from 'oauth4webapi';
import { requestOptions } from './discovery.ts';
import type { OAuthFetch } from './guarded-fetch.ts';
import { clientAuth, type OAuthClient } from './registration.ts';

/** Who asks: the authorization server, the client it knows, and the resource tokens are for. */
export interface TokenRequester {
  readonly as: oauth.AuthorizationServer;
  readonly client: OAuthClient;
  /** The RFC 8707 resource indicator. */
  readonly indicator: string;
}

/** What is traded for tokens. */
export type TokenGrant =
  | {
      readonly kind: 'authorization_code';
      /** The validated callback parameters (oauth4webapi's `validateAuthResponse`). */
      readonly params: URLSearchParams;
      readonly redirectUri: string;
      readonly verifier: string;
    }
  | { readonly kind: 'refresh_token'; readonly refreshToken: string };

/** Trades `grant` for tokens at the token endpoint; rejects with oauth4webapi's errors. */
export async function requestTokens(
  fetch: OAuthFetch,
  requester: TokenRequester,
  grant: TokenGrant,
  signal: AbortSignal,
): Promise<oauth.TokenEndpointResponse> {
  const { as } = requester;
  const client: oauth.Client = { client_id: requester.client.client_id };
  const auth = clientAuth(requester.client);
  const options = {
    ...requestOptions(fetch, new URL(as.token_endpoint ?? as.issuer)),
    additionalParameters: { resource: requester.indicator },
    signal,
  };
  if (grant.kind === 'refresh_token') {
    const response = await oauth.refreshTokenGrantRequest(as, client, auth, grant.refreshToken, options);
    return oauth.processRefreshTokenResponse(as, client, response);
  }
  const { params, redirectUri, verifier } = grant;
  const response = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    auth,
    params,
    redirectUri,
    verifier,
    options,
  );
  return oauth.processAuthorizationCodeResponse(as, client, response);
}
