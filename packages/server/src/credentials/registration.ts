/**
 * @module credentials/registration
 * Which OAuth client the proxy is at an authorization server, in the MCP spec's priority: a client
 * the operator pre-registered (a server's `oauth.clientId`, or `oauthClients` per issuer), each
 * only at its issuer; else the proxy's Client ID Metadata Document
 * (`PUBLIC_URL/oauth/client-metadata/{issuer-key}.json`, when `PUBLIC_URL` is https and the server
 * supports it); else dynamic client registration (RFC 7591), once per issuer, kept sealed in the
 * store. Every issuer has its own redirect URI (`PUBLIC_URL/oauth/callback/{issuer-key}`).
 */
import * as oauth from 'oauth4webapi';
import { ProxyError } from '../errors.ts';
import { countOrRefuse } from '../limits/store-failures.ts';
import { open, seal } from '../store/sealed-box.ts';
import type { Store } from '../store/store.ts';
import type { BrokerMeans } from './broker-means.ts';
import { requestOptions, throwIfOver } from './discovery.ts';
import { digest } from './hashed-secrets.ts';
import { CALLBACK_BASE, CLIENT_METADATA_BASE } from './oauth-paths.ts';
import { limited, SIGN_IN_TTL_MS } from './pending-sign-ins.ts';

/** A client as the broker keeps it: its id, and a secret when it has one. */
export interface OAuthClient {
  readonly client_id: string;
  readonly client_secret?: string | undefined;
  /** How it authenticates at the token endpoint. */
  readonly auth: 'none' | 'client_secret_basic' | 'client_secret_post';
}

/** A client the operator registered (config: a server's `oauth`, or an entry of `oauthClients`). */
export interface PreRegistered {
  readonly clientId: string;
  readonly clientSecret?: string | undefined;
  /**
   * The issuer it was registered at: the client is used only when the server's authorization
   * server is this one (required with a secret, so the secret never reaches another one).
   */
  readonly issuer?: string | undefined;
}

/** Longest client id or secret a registration may answer (review F4: it is stored for 30 days). */
const MAX_CLIENT_FIELD = 1024;
/** New dynamic registrations one principal may cause per hour, and the proxy per day (F4). */
const REGISTRATIONS_PER_PRINCIPAL_HOUR = 10;
const REGISTRATIONS_PER_DAY = 1000;
/**
 * Each principal's own share of registrations per day (review6 OAUTH-2, as the offers' R3): they
 * neither meet nor spend {@link REGISTRATIONS_PER_DAY}, so no set of principals naming hostile
 * authorization servers can lock the others out of new ones; only those past it spend the total.
 */
const REGISTRATIONS_SHARE_PER_PRINCIPAL_DAY = 5;
const DAY_MS = 24 * 3600_000;

/**
 * The key of an issuer in its callback and metadata paths: each authorization server gets its own
 * redirect URI, so a code that comes back on another one's is refused (mix-up, RFC 9700 §4.4).
 */
export function issuerKey(issuer: string): string {
  return digest(issuer).slice(0, 22);
}

/** `PUBLIC_URL/oauth/callback/{issuer-key}`. */
export function redirectUriFor(publicUrl: string, issuer: string): string {
  return `${publicUrl}${CALLBACK_BASE}/${issuerKey(issuer)}`;
}

/** Whether `key` has the shape {@link issuerKey} gives. */
export function isIssuerKey(key: string): boolean {
  return /^[A-Za-z0-9_-]{22}$/.test(key);
}

/** The client metadata the proxy presents for one issuer (the document it serves, and what it registers). */
export function clientMetadata(publicUrl: string, key: string): Record<string, string | string[]> {
  return {
    client_id: `${publicUrl}${CLIENT_METADATA_BASE}/${key}.json`,
    client_name: 'mcp-proxy',
    client_uri: publicUrl,
    redirect_uris: [`${publicUrl}${CALLBACK_BASE}/${key}`],
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

/** Collaborators of {@link chooseClient}: registered clients are kept per issuer and callback. */
export type RegistrationDeps = BrokerMeans;

/** What {@link chooseClient} picked. */
export interface ChosenClient {
  readonly client: OAuthClient;
  /** Registered dynamically (kept in the store; forgotten when the server says invalid_client). */
  readonly dynamic: boolean;
}

const REGISTERED_TTL_MS = 30 * 24 * 3600 * 1000;
/** How long an issuer's metadata document is served after a sign-in completed with it: its refreshes. */
const DOCUMENT_CONNECTED_MS = 90 * 24 * 3600 * 1000;

/** The store slots marking an issuer key's metadata document in use: a sign-in started, or completed. */
function documentSlots(key: string): { readonly started: string; readonly connected: string } {
  return { started: `document:started:${key}`, connected: `document:connected:${key}` };
}

/**
 * Whether the proxy presented its metadata document at issuer `key` (review6 D1): a sign-in
 * started with it (for that sign-in's life) or completed with it (for its refreshes). Only
 * those are served: the proxy does not vouch for itself at issuers it never went to.
 */
export async function documentInUse(store: Store, key: string): Promise<boolean> {
  const slots = documentSlots(key);
  return (await store.get(slots.started)) !== undefined || (await store.get(slots.connected)) !== undefined;
}

/** A sign-in completed (or refreshed) with `client` at `issuer`: its document stays served. */
export async function keepDocumentInUse(store: Store, issuer: string, client: OAuthClient): Promise<void> {
  const key = issuerKey(issuer);
  if (!client.client_id.endsWith(`${CLIENT_METADATA_BASE}/${key}.json`)) return;
  await store.set(documentSlots(key).connected, '1', DOCUMENT_CONNECTED_MS);
}

/** The store slot of the dynamic registration at `issuer` for `redirectUri`: a hash. */
function registrationSlot(issuer: string, redirectUri: string): string {
  return `client:${digest(`${issuer}\n${redirectUri}`)}`;
}

/**
 * Picks (or registers) the client for `as`. Pre-registered clients come first, each only at the
 * issuer it names (one without an issuer and without a secret: any); a server's client naming
 * another issuer refuses the sign-in rather than fall back (review F3: its secret, or the
 * operator's intent, is for that issuer only).
 */
export async function chooseClient(
  deps: RegistrationDeps,
  as: oauth.AuthorizationServer,
  publicUrl: string,
  preRegistered: PreRegistered | undefined,
  perIssuer: readonly PreRegistered[],
  principalKey: string,
  signal?: AbortSignal,
): Promise<ChosenClient> {
  if (preRegistered) {
    if (
      preRegistered.issuer !== undefined
        ? preRegistered.issuer !== as.issuer
        : preRegistered.clientSecret !== undefined
    ) {
      throw new ProxyError('upstream_auth_unsupported', undefined, {
        data: { reason: 'client_issuer_mismatch' },
      });
    }
    return { client: preRegisteredClient(as, preRegistered), dynamic: false };
  }
  const configured = perIssuer.find((each) => each.issuer === as.issuer);
  if (configured) return { client: preRegisteredClient(as, configured), dynamic: false };
  const key = issuerKey(as.issuer);
  if (as.client_id_metadata_document_supported === true && publicUrl.startsWith('https://')) {
    await deps.store.set(documentSlots(key).started, '1', SIGN_IN_TTL_MS);
    return {
      client: { client_id: `${publicUrl}${CLIENT_METADATA_BASE}/${key}.json`, auth: 'none' },
      dynamic: false,
    };
  }
  if (typeof as.registration_endpoint !== 'string') {
    throw new ProxyError('upstream_auth_unsupported', undefined, {
      data: { reason: 'no_client_registration' },
    });
  }
  const redirectUri = redirectUriFor(publicUrl, as.issuer);
  const slot = registrationSlot(as.issuer, redirectUri);
  const sealed = await deps.store.get(slot);
  const known = sealed === undefined ? undefined : open(deps.keys, slot, sealed);
  if (known !== undefined) return { client: JSON.parse(known) as OAuthClient, dynamic: true };
  await admitRegistration(deps.store, principalKey);
  const { client_id: _unused, ...metadata } = clientMetadata(publicUrl, key);
  let registered: oauth.OmitSymbolProperties<oauth.Client>;
  try {
    const response = await oauth.dynamicClientRegistrationRequest(as, metadata, {
      ...requestOptions(deps.fetch, new URL(as.registration_endpoint)),
      ...(signal ? { signal } : {}),
    });
    registered = await oauth.processDynamicClientRegistrationResponse(response);
  } catch (cause) {
    if (cause instanceof ProxyError) throw cause;
    throwIfOver(signal);
    throw new ProxyError(
      'upstream_auth_failed',
      "The MCP server's authorization server refused to register the proxy as a client.",
      { cause },
    );
  }
  const secret = typeof registered.client_secret === 'string' ? registered.client_secret : undefined;
  if (registered.client_id.length > MAX_CLIENT_FIELD || (secret?.length ?? 0) > MAX_CLIENT_FIELD) {
    throw new ProxyError(
      'upstream_auth_failed',
      "The MCP server's authorization server answered the registration with an oversized client.",
    );
  }
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
  return { client, dynamic: true };
}

/**
 * Forgets the dynamic registration at `issuer` when it is still `clientId` (the authorization
 * server said `invalid_client`: it no longer knows it), so the next sign-in registers again
 * (review F6). Compare-and-delete: a registration made since stays.
 */
export async function forgetRegistration(
  deps: Pick<RegistrationDeps, 'store' | 'keys'>,
  issuer: string,
  redirectUri: string,
  clientId: string,
): Promise<void> {
  const slot = registrationSlot(issuer, redirectUri);
  const sealed = await deps.store.get(slot);
  if (sealed === undefined) return;
  const known = open(deps.keys, slot, sealed);
  if (known !== undefined && (JSON.parse(known) as OAuthClient).client_id !== clientId) return;
  await deps.store.deleteIf(slot, sealed);
}

function preRegisteredClient(as: oauth.AuthorizationServer, preRegistered: PreRegistered): OAuthClient {
  const methods = as.token_endpoint_auth_methods_supported;
  const auth =
    preRegistered.clientSecret === undefined
      ? 'none'
      : methods?.includes('client_secret_basic') === false && methods.includes('client_secret_post')
        ? 'client_secret_post'
        : 'client_secret_basic';
  return { client_id: preRegistered.clientId, client_secret: preRegistered.clientSecret, auth };
}

/**
 * Counts a new dynamic registration against the per-principal cap (F4); past the principal's
 * daily share, against the proxy's total too (OAUTH-2).
 */
async function admitRegistration(store: Store, principalKey: string): Promise<void> {
  const principal = digest(principalKey);
  const mine = await countOrRefuse(store, `regcount:${principal}`, 3600_000);
  if (mine.count > REGISTRATIONS_PER_PRINCIPAL_HOUR) throw limited(mine.resetInMs);
  const share = await countOrRefuse(store, `regshare:${principal}`, DAY_MS);
  if (share.count <= REGISTRATIONS_SHARE_PER_PRINCIPAL_DAY) return;
  const all = await countOrRefuse(store, 'regcount:all', DAY_MS);
  if (all.count > REGISTRATIONS_PER_DAY) throw limited(all.resetInMs);
}
