/**
 * @module credentials/token-endpoint
 * Every request the proxy makes to a token endpoint as an OAuth client: the broker's code
 * exchange at the end of a sign-in and its refreshes (as the client it registered or was given,
 * naming the MCP server as the resource, RFC 8707), and the code exchange of a sign-in to the
 * proxy itself (proxy-login.ts). All go through the caller's fetch, under its deadline.
 */
import * as oauth from 'oauth4webapi';
import { requestOptions } from './discovery.ts';
import type { OAuthFetch } from './guarded-fetch.ts';
import { clientAuth, type OAuthClient } from './registration.ts';

/** A client of an authorization server, as its token requests authenticate. */
export interface TokenClient {
  readonly as: oauth.AuthorizationServer;
  readonly client: oauth.Client;
  readonly auth: oauth.ClientAuth;
}

/** What a sign-in's redirect brought back, and what the exchange proves it with (PKCE). */
export interface CodeCallback {
  /** The validated callback parameters (oauth4webapi's `validateAuthResponse`). */
  readonly params: URLSearchParams;
  readonly redirectUri: string;
  readonly verifier: string;
}

/** How one token request goes out. */
export interface TokenCall {
  readonly fetch: OAuthFetch;
  readonly signal: AbortSignal;
  /** The RFC 8707 resource indicator, when tokens are for an MCP server. */
  readonly resource?: string | undefined;
}

/** The broker's side of a sign-in: the authorization server, its client, the MCP server's indicator. */
export interface TokenRequester {
  /** The authorization server's metadata, trimmed to the fields the flow uses. */
  readonly as: oauth.AuthorizationServer;
  readonly client: OAuthClient;
  readonly indicator: string;
}

/** What the broker trades for tokens. */
export type TokenGrant =
  | ({ readonly kind: 'authorization_code' } & CodeCallback)
  | { readonly kind: 'refresh_token'; readonly refreshToken: string };

function optionsOf(call: TokenCall, as: oauth.AuthorizationServer) {
  return {
    ...requestOptions(call.fetch, new URL(as.token_endpoint ?? as.issuer)),
    ...(call.resource === undefined ? {} : { additionalParameters: { resource: call.resource } }),
    signal: call.signal,
  };
}

/** Exchanges a sign-in's code; the answer is the caller's to process (a login expects an ID token). */
export function exchangeCode(call: TokenCall, who: TokenClient, callback: CodeCallback): Promise<Response> {
  const { as, client, auth } = who;
  const { params, redirectUri, verifier } = callback;
  return oauth.authorizationCodeGrantRequest(
    as,
    client,
    auth,
    params,
    redirectUri,
    verifier,
    optionsOf(call, as),
  );
}

/** Trades the broker's `grant` for tokens; rejects with oauth4webapi's errors. */
export async function requestTokens(
  fetch: OAuthFetch,
  requester: TokenRequester,
  grant: TokenGrant,
  signal: AbortSignal,
): Promise<oauth.TokenEndpointResponse> {
  const { as } = requester;
  const client: oauth.Client = { client_id: requester.client.client_id };
  const auth = clientAuth(requester.client);
  const call = { fetch, signal, resource: requester.indicator };
  if (grant.kind === 'refresh_token') {
    const response = await oauth.refreshTokenGrantRequest(
      as,
      client,
      auth,
      grant.refreshToken,
      optionsOf(call, as),
    );
    return oauth.processRefreshTokenResponse(as, client, response);
  }
  const response = await exchangeCode(call, { as, client, auth }, grant);
  return oauth.processAuthorizationCodeResponse(as, client, response);
}
