/**
 * @module credentials/broker
 * The upstream OAuth broker (issue 18): signs each principal in to OAuth-protected MCP servers
 * and keeps their tokens server-side. `bearerFor` gives the access token for (principal, server),
 * refreshed shortly before it expires (once across instances: a store lock); `required` starts a
 * sign-in and returns the `upstream_auth_required` error whose `authorizeUrl` the frontend opens;
 * `start` and `callback` are the two browser legs. No token leaves this module except as the
 * upstream's `Authorization` header.
 */
import { randomBytes } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { ProxyError } from '../errors.ts';
import type { Store } from '../store/store.ts';
import { parseBearerChallenge } from './challenge.ts';
import { OAuthConnections } from './connections.ts';
import { canonical, discover, isLoopbackHttp, NO_OAUTH, requestOptions } from './discovery.ts';
import type { OAuthFetch } from './guarded-fetch.ts';
import {
  CALLBACK_PATH,
  chooseClient,
  clientAuth,
  clientMetadata,
  type OAuthClient,
  type PreRegistered,
} from './registration.ts';
import { open, seal } from './sealed-box.ts';
import { TokenVault, type VaultEntry } from './vault.ts';
import type { VaultKeys } from './vault-keys.ts';

/** How long a sign-in may take from the error to the callback. */
const FLOW_TTL_MS = 10 * 60 * 1000;
/** Refresh this long before expiry at most (a quarter of the token's life when that is shorter). */
const REFRESH_MARGIN_MS = 60_000;
/** How long one instance may hold a refresh lock. */
const REFRESH_LOCK_MS = 15_000;
/** How often an instance waiting for another's refresh looks again. */
const REFRESH_POLL_MS = 100;

/** The server configuration the broker reads for one upstream. */
export interface OAuthServerSettings {
  /** `oauth`: sign in before the first call, without waiting for a 401. */
  readonly auth?: 'oauth' | undefined;
  readonly oauth?: (PreRegistered & { readonly scopes?: readonly string[] | undefined }) | undefined;
}

/** An upstream as the broker sees it. */
export interface OAuthTarget {
  readonly url: URL;
  /** The configured server's name; absent for a raw URL. */
  readonly name?: string | undefined;
}

/** Collaborators of the broker. */
export interface OAuthBrokerDeps {
  /** The broker's own view of the shared store (namespaced). */
  readonly store: Store;
  readonly keys: VaultKeys;
  /** Every HTTP call of the flow: through the egress guard. */
  readonly fetch: OAuthFetch;
  /** PUBLIC_URL (no trailing slash), read at each use: a reload may change it. */
  /** OAUTH_BROKER: the broker acts only when the operator switched it on. */
  readonly switchedOn: () => boolean;
  readonly publicUrl: () => string | undefined;
  /** The configured server of a name (its `auth` and `oauth` settings). */
  readonly server: (name: string) => OAuthServerSettings | undefined;
  readonly now?: () => number;
}

/** A pending sign-in, sealed in the store under its `state`. */
interface PendingFlow {
  readonly principalKey: string;
  /** The vault slot's resource: the MCP server's URL as the caller reaches it. */
  readonly target: string;
  readonly server: string;
  readonly indicator: string;
  readonly as: oauth.AuthorizationServer;
  readonly client: OAuthClient;
  readonly verifier: string;
  readonly redirectUri: string;
  readonly openerOrigin?: string | undefined;
}

/** What a stored vault entry carries besides the tokens: enough to refresh without discovery. */
interface StoredEntry extends VaultEntry {
  readonly as: oauth.AuthorizationServer;
  readonly client: OAuthClient;
  readonly issuedAt: number;
}

/** The outcome of a completed callback, for the page that closes the popup. */
export interface CallbackOutcome {
  readonly server: string;
  readonly openerOrigin?: string | undefined;
}

/** Signs principals in to upstream MCP servers and keeps their tokens. */
export class OAuthBroker {
  readonly #deps: OAuthBrokerDeps;
  readonly #vault: TokenVault;
  readonly #now: () => number;
  readonly #refreshing = new Map<string, Promise<StoredEntry | undefined>>();
  readonly #connections: OAuthConnections;

  constructor(deps: OAuthBrokerDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#vault = new TokenVault(deps.store, deps.keys, this.#now);
    this.#connections = new OAuthConnections({
      store: deps.store,
      keys: deps.keys,
      fetch: deps.fetch,
      now: this.#now,
    });
  }

  /** The principals' connections: listed and ended by `/oauth/connections`. */
  get connections(): OAuthConnections {
    return this.#connections;
  }

  /** Whether the broker runs: switched on (OAUTH_BROKER), PUBLIC_URL set, https (http only on loopback). */
  get enabled(): boolean {
    if (!this.#deps.switchedOn()) return false;
    const url = this.#deps.publicUrl();
    return url !== undefined && (url.startsWith('https://') || isLoopbackHttp(new URL(url)));
  }

  /** Whether this target must be signed in to before any call (`auth: oauth`). */
  demands(target: OAuthTarget): boolean {
    return target.name !== undefined && this.#deps.server(target.name)?.auth === 'oauth';
  }

  /** The principal's access token for `target`, refreshed when close to expiry; else undefined. */
  async bearerFor(principalKey: string, target: OAuthTarget): Promise<string | undefined> {
    const resource = canonical(target.url);
    const entry = (await this.#vault.get(principalKey, resource)) as StoredEntry | undefined;
    if (!entry) return undefined;
    if (!this.#due(entry)) return entry.accessToken;
    const refreshed = await this.#refreshOnce(principalKey, resource);
    return refreshed?.accessToken;
  }

  /** The upstream refused the token the broker supplied: it is forgotten. */
  async rejected(principalKey: string, target: OAuthTarget): Promise<void> {
    await this.#vault.delete(principalKey, canonical(target.url));
  }

  /**
   * Starts a sign-in for (principal, target) and returns the `upstream_auth_required` error to
   * throw: discovery and registration happen now, so a server the proxy cannot sign in to fails
   * here with a clear code rather than in the user's browser. A 401 from a server that shows no
   * sign of OAuth (no metadata anywhere) is not the broker's: `notOAuth` is returned then, so the
   * caller still sees the upstream's own refusal (and may bring a token of its own).
   */
  async required(
    principalKey: string,
    target: OAuthTarget,
    challengeHeader: string | undefined,
    openerOrigin: string | undefined,
    notOAuth?: ProxyError,
  ): Promise<ProxyError> {
    try {
      return await this.#begin(principalKey, target, challengeHeader, openerOrigin);
    } catch (error) {
      if (notOAuth && error instanceof ProxyError && error.data.reason === NO_OAUTH) return notOAuth;
      throw error;
    }
  }

  /**
   * Step-up (MCP authorization, "Scope Challenge Handling"): the upstream refused the broker's
   * token with 403 `insufficient_scope`. Starts a sign-in for the union of the scopes the token
   * holds, the configured ones and those the challenge names, and returns the same
   * `upstream_auth_required` error; undefined when the 403 is no scope challenge (it stays the
   * upstream's own refusal). The token held keeps serving the calls it can until the new one
   * replaces it.
   */
  async stepUp(
    principalKey: string,
    target: OAuthTarget,
    challengeHeader: string | undefined,
    openerOrigin: string | undefined,
  ): Promise<ProxyError | undefined> {
    const challenge = parseBearerChallenge(challengeHeader);
    if (challenge.error?.toLowerCase() !== 'insufficient_scope') return undefined;
    const held = await this.#vault.get(principalKey, canonical(target.url));
    const configured = target.name === undefined ? undefined : this.#deps.server(target.name)?.oauth?.scopes;
    const scopes = new Set(
      [held?.scope, challenge.scope, configured?.join(' ')].flatMap((each) => each?.split(' ') ?? []),
    );
    scopes.delete('');
    return this.#begin(principalKey, target, challengeHeader, openerOrigin, [...scopes].join(' '));
  }

  async #begin(
    principalKey: string,
    target: OAuthTarget,
    challengeHeader: string | undefined,
    openerOrigin: string | undefined,
    stepUpScopes?: string,
  ): Promise<ProxyError> {
    const publicUrl = this.#deps.publicUrl();
    if (publicUrl === undefined || !this.enabled) {
      throw new ProxyError('upstream_auth_unsupported', undefined, {
        data: { reason: 'public_url_not_set' },
      });
    }
    const challenge = parseBearerChallenge(challengeHeader);
    const discovered = await discover(this.#deps.fetch, target.url, challenge);
    const settings = target.name === undefined ? undefined : this.#deps.server(target.name)?.oauth;
    const client = await chooseClient(
      { fetch: this.#deps.fetch, store: this.#deps.store, keys: this.#deps.keys },
      discovered.as,
      publicUrl,
      settings,
    );
    const scopes =
      stepUpScopes ||
      (settings?.scopes?.join(' ') ?? challenge.scope ?? discovered.scopesSupported?.join(' '));
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const redirectUri = `${publicUrl}${CALLBACK_PATH}`;
    const endpoint = discovered.as.authorization_endpoint;
    if (endpoint === undefined) {
      throw new ProxyError(
        'upstream_auth_failed',
        "The MCP server's authorization server has no authorization endpoint.",
      );
    }
    const authorize = new URL(endpoint);
    const params = authorize.searchParams;
    params.set('response_type', 'code');
    params.set('client_id', client.client_id);
    params.set('redirect_uri', redirectUri);
    params.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
    params.set('code_challenge_method', 'S256');
    params.set('state', state);
    params.set('resource', discovered.resource);
    if (scopes) params.set('scope', scopes);
    const server = target.name ?? target.url.host;
    const pending: PendingFlow = {
      principalKey,
      target: canonical(target.url),
      server,
      indicator: discovered.resource,
      as: discovered.as,
      client,
      verifier,
      redirectUri,
      openerOrigin,
    };
    const stateSlot = `state:${state}`;
    await this.#deps.store.set(
      stateSlot,
      seal(this.#deps.keys, stateSlot, JSON.stringify(pending)),
      FLOW_TTL_MS,
    );
    const id = randomBytes(18).toString('base64url');
    await this.#deps.store.set(`start:${id}`, authorize.href, FLOW_TTL_MS);
    return new ProxyError('upstream_auth_required', undefined, {
      data: { authorizeUrl: `${publicUrl}/oauth/start/${id}`, server },
    });
  }

  /** The authorization URL behind a one-time start id (consumed), else undefined. */
  async start(id: string): Promise<string | undefined> {
    const slot = `start:${id}`;
    const url = await this.#deps.store.get(slot);
    if (url === undefined) return undefined;
    // Single use: only the caller that removes it follows it.
    return (await this.#deps.store.deleteIf(slot, url)) ? url : undefined;
  }

  /** Completes a sign-in from the callback URL's query; stores the tokens. */
  async callback(query: URLSearchParams): Promise<CallbackOutcome> {
    const state = query.get('state') ?? '';
    const stateSlot = `state:${state}`;
    const sealed = state === '' ? undefined : await this.#deps.store.get(stateSlot);
    // Single use: a replayed state finds nothing (deleteIf: only one of two racing callbacks wins).
    if (sealed === undefined || !(await this.#deps.store.deleteIf(stateSlot, sealed))) {
      throw new ProxyError('oauth_state_invalid');
    }
    const plain = open(this.#deps.keys, stateSlot, sealed);
    if (plain === undefined) throw new ProxyError('oauth_state_invalid');
    const flow = JSON.parse(plain) as PendingFlow;
    const client: oauth.Client = { client_id: flow.client.client_id };
    let params: URLSearchParams;
    try {
      // Checks `state`, an `error` answer, and `iss` (RFC 9207) where the server advertises it.
      params = oauth.validateAuthResponse(flow.as, client, query, state);
    } catch (cause) {
      throw new ProxyError('upstream_auth_failed', 'The authorization server did not grant access.', {
        cause,
        data: { server: flow.server },
      });
    }
    const tokenUrl = new URL(flow.as.token_endpoint ?? flow.as.issuer);
    let tokens: oauth.TokenEndpointResponse;
    try {
      const response = await oauth.authorizationCodeGrantRequest(
        flow.as,
        client,
        clientAuth(flow.client),
        params,
        flow.redirectUri,
        flow.verifier,
        { ...requestOptions(this.#deps.fetch, tokenUrl), additionalParameters: { resource: flow.indicator } },
      );
      tokens = await oauth.processAuthorizationCodeResponse(flow.as, client, response);
    } catch (cause) {
      if (cause instanceof ProxyError) throw cause;
      throw new ProxyError('upstream_auth_failed', 'The authorization server refused to issue tokens.', {
        cause,
        data: { server: flow.server },
      });
    }
    await this.#vault.put(flow.principalKey, this.#entry(flow, tokens, undefined));
    await this.#connections.record(flow.principalKey, flow.server, flow.target);
    return { server: flow.server, openerOrigin: flow.openerOrigin };
  }

  /** The Client ID Metadata Document, when PUBLIC_URL is https. */
  clientMetadataDocument(): Record<string, unknown> | undefined {
    const publicUrl = this.#deps.publicUrl();
    return publicUrl?.startsWith('https://') ? clientMetadata(publicUrl) : undefined;
  }

  #entry(
    source: { target: string; indicator: string; as: oauth.AuthorizationServer; client: OAuthClient },
    tokens: oauth.TokenEndpointResponse,
    previousRefresh: string | undefined,
  ): StoredEntry {
    const now = this.#now();
    return {
      accessToken: tokens.access_token,
      // An AS that does not rotate refresh tokens answers without one: the old one stays good.
      refreshToken: tokens.refresh_token ?? previousRefresh,
      expiresAt: typeof tokens.expires_in === 'number' ? now + tokens.expires_in * 1000 : undefined,
      scope: tokens.scope,
      issuer: source.as.issuer,
      resource: source.target,
      indicator: source.indicator,
      clientId: source.client.client_id,
      as: source.as,
      client: source.client,
      issuedAt: now,
    };
  }

  #due(entry: StoredEntry): boolean {
    if (entry.expiresAt === undefined) return false;
    const margin = Math.min(REFRESH_MARGIN_MS, (entry.expiresAt - entry.issuedAt) / 4);
    return this.#now() >= entry.expiresAt - margin;
  }

  /** One refresh per (principal, resource): in this process a shared promise, across instances a lock. */
  #refreshOnce(principalKey: string, resource: string): Promise<StoredEntry | undefined> {
    const slot = TokenVault.slot(principalKey, resource);
    const running = this.#refreshing.get(slot);
    if (running) return running;
    const task = this.#refresh(principalKey, resource, slot).finally(() => this.#refreshing.delete(slot));
    this.#refreshing.set(slot, task);
    return task;
  }

  async #refresh(principalKey: string, resource: string, slot: string): Promise<StoredEntry | undefined> {
    const lock = `lock:${slot}`;
    const holder = randomBytes(12).toString('base64url');
    const deadline = this.#now() + REFRESH_LOCK_MS;
    while (!(await this.#deps.store.setIfAbsent(lock, holder, REFRESH_LOCK_MS))) {
      // Another instance refreshes: its result lands in the vault.
      await new Promise((resolve) => setTimeout(resolve, REFRESH_POLL_MS));
      const current = (await this.#vault.get(principalKey, resource)) as StoredEntry | undefined;
      if (!current) return undefined;
      if (!this.#due(current)) return current;
      if (this.#now() > deadline) return undefined;
    }
    try {
      // Another instance may have refreshed between our read and the lock.
      const current = (await this.#vault.get(principalKey, resource)) as StoredEntry | undefined;
      if (!current) return undefined;
      if (!this.#due(current)) return current;
      if (current.refreshToken === undefined) {
        await this.#vault.delete(principalKey, resource);
        return undefined;
      }
      const client: oauth.Client = { client_id: current.client.client_id };
      let tokens: oauth.TokenEndpointResponse;
      try {
        const response = await oauth.refreshTokenGrantRequest(
          current.as,
          client,
          clientAuth(current.client),
          current.refreshToken,
          {
            ...requestOptions(this.#deps.fetch, new URL(current.as.token_endpoint ?? current.as.issuer)),
            additionalParameters: { resource: current.indicator },
          },
        );
        tokens = await oauth.processRefreshTokenResponse(current.as, client, response);
      } catch (cause) {
        if (cause instanceof oauth.ResponseBodyError && cause.error === 'invalid_grant') {
          // Revoked or expired: the user signs in again.
          await this.#vault.delete(principalKey, resource);
          return undefined;
        }
        if (cause instanceof ProxyError) throw cause;
        throw new ProxyError(
          'upstream_auth_failed',
          'Refreshing the upstream access token failed: try again shortly.',
          {
            cause,
          },
        );
      }
      const next = this.#entry(
        {
          target: resource,
          indicator: current.indicator,
          as: current.as,
          client: current.client,
        },
        tokens,
        current.refreshToken,
      );
      await this.#vault.put(principalKey, next);
      return next;
    } finally {
      await this.#deps.store.deleteIf(lock, holder);
    }
  }
}

/** Reads the `oauth` settings of a configured server entry, whatever its shape. */
export function oauthSettingsOf(server: unknown): OAuthServerSettings | undefined {
  if (typeof server !== 'object' || server === null) return undefined;
  return server as OAuthServerSettings;
}

export type { VaultEntry };
