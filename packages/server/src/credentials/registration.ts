/**
 * @module credentials/registration
 * Which OAuth client the proxy is at an authorization server, in the MCP spec's priority: a client
 * the operator pre-registered for the server (config `oauth.clientId`), else the proxy's Client ID
 * Metadata Document (`PUBLIC_URL/oauth/client-metadata.json`, when `PUBLIC_URL` is https and the
 * server supports it), else dynamic client registration (RFC 7591), registered once per issuer
 * and kept sealed in the store.
 */
import * as oauth from 'oauth4webapi';
import { ProxyError } from '../errors.ts';
import type { Store } from '../store/store.ts';
import { requestOptions } from './discovery.ts';
import type { OAuthFetch } from './guarded-fetch.ts';
import { open, seal } from './sealed-box.ts';
import type { VaultKeys } from './vault-keys.ts';

/** A client as the broker keeps it: its id, and a secret when it has one. */
export interface OAuthClient {
  readonly client_id: string;
  readonly client_secret?: string | undefined;
  /** How it authenticates at the token endpoint. */
  readonly auth: 'none' | 'client_secret_basic' | 'client_secret_post';
}

/** A client the operator registered (config). */
export interface PreRegistered {
  readonly clientId: string;
  readonly clientSecret?: string | undefined;
}

/** The path of the Client ID Metadata Document under PUBLIC_URL. */
export const CLIENT_METADATA_PATH = '/oauth/client-metadata.json';
/** The callback path under PUBLIC_URL. */
export const CALLBACK_PATH = '/oauth/callback';

/** The client metadata the proxy presents (the document it serves, and what it registers). */
export function clientMetadata(publicUrl: string): Record<string, string | string[]> {
  return {
    client_id: `${publicUrl}${CLIENT_METADATA_PATH}`,
    client_name: 'mcp-proxy',
    client_uri: publicUrl,
    redirect_uris: [`${publicUrl}${CALLBACK_PATH}`],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  };
}

/** The oauth4webapi client authentication of `client`. */
export function clientAuth(client: OAuthClient): oauth.ClientAuth {
  if (client.client_secret === undefined || client.auth === 'none') return oauth.None();
  return client.auth === 'client_secret_post'
    ? oauth.ClientSecretPost(client.client_secret)
    : oauth.ClientSecretBasic(client.client_secret);
}

/** Collaborators of {@link chooseClient}. */
export interface RegistrationDeps {
  readonly fetch: OAuthFetch;
  /** Registered clients, per issuer and callback (namespaced). */
  readonly store: Store;
  readonly keys: VaultKeys;
}

const REGISTERED_TTL_MS = 30 * 24 * 3600 * 1000;

/** Picks (or registers) the client for `as`. */
export async function chooseClient(
  deps: RegistrationDeps,
  as: oauth.AuthorizationServer,
  publicUrl: string,
  preRegistered: PreRegistered | undefined,
): Promise<OAuthClient> {
  if (preRegistered) {
    const methods = as.token_endpoint_auth_methods_supported;
    const auth =
      preRegistered.clientSecret === undefined
        ? 'none'
        : methods?.includes('client_secret_basic') === false && methods.includes('client_secret_post')
          ? 'client_secret_post'
          : 'client_secret_basic';
    return { client_id: preRegistered.clientId, client_secret: preRegistered.clientSecret, auth };
  }
  if (as.client_id_metadata_document_supported === true && publicUrl.startsWith('https://')) {
    return { client_id: `${publicUrl}${CLIENT_METADATA_PATH}`, auth: 'none' };
  }
  if (typeof as.registration_endpoint !== 'string') {
    throw new ProxyError('upstream_auth_unsupported', undefined, {
      data: { reason: 'no_client_registration' },
    });
  }
  const slot = `client:${as.issuer}\n${publicUrl}`;
  const sealed = await deps.store.get(slot);
  const known = sealed === undefined ? undefined : open(deps.keys, slot, sealed);
  if (known !== undefined) return JSON.parse(known) as OAuthClient;
  const { client_id: _unused, ...metadata } = clientMetadata(publicUrl);
  let registered: oauth.OmitSymbolProperties<oauth.Client>;
  try {
    const response = await oauth.dynamicClientRegistrationRequest(
      as,
      metadata,
      requestOptions(deps.fetch, new URL(as.registration_endpoint)),
    );
    registered = await oauth.processDynamicClientRegistrationResponse(response);
  } catch (cause) {
    if (cause instanceof ProxyError) throw cause;
    throw new ProxyError(
      'upstream_auth_failed',
      "The MCP server's authorization server refused to register the proxy as a client.",
      { cause },
    );
  }
  const secret = typeof registered.client_secret === 'string' ? registered.client_secret : undefined;
  const method = registered.token_endpoint_auth_method;
  const client: OAuthClient = {
    client_id: registered.client_id,
    client_secret: secret,
    auth:
      secret === undefined || method === 'none'
        ? 'none'
        : method === 'client_secret_post'
          ? 'client_secret_post'
          : 'client_secret_basic',
  };
  await deps.store.set(slot, seal(deps.keys, slot, JSON.stringify(client)), REGISTERED_TTL_MS);
  return client;
}
