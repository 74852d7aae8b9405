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
import { canonical, discover, isLoopbackHttp, NO_OAUTH, requestOptions, throwIfOver } from './discovery.ts';
import type { OAuthFetch } from './guarded-fetch.ts';
import { type Bound, type PendingFlow, PendingSignIns } from './pending-sign-ins.ts';
import {
  chooseClient,
  clientAuth,
  clientMetadata,
  forgetRegistration,
  isIssuerKey,
  issuerKey,
  type OAuthClient,
  type PreRegistered,
  redirectUriFor,
} from './registration.ts';
import { TokenVault, type VaultEntry } from './vault.ts';
import type { VaultKeys } from './vault-keys.ts';

/** The default deadline of the flow's calls when the caller gives none (discovery, token). */
const FLOW_CALL_TIMEOUT_MS = 30_000;
/** Longest `scope` the proxy asks for (review F4: a challenge or metadata chooses it). */
const MAX_SCOPE = 1024;
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
  /** OAUTH_BROKER: the broker acts only when the operator switched it on. */
  readonly switchedOn: () => boolean;
  /** PUBLIC_URL (no trailing slash), read at each use: a reload may change it. */
  readonly publicUrl: () => string | undefined;
  /** The configured server of a name (its `auth` and `oauth` settings). */
  readonly server: (name: string) => OAuthServerSettings | undefined;
  /** Clients the operator pre-registered per issuer (`oauthClients`), read at each use. */
  readonly issuerClients?: (() => readonly IssuerClient[]) | undefined;
  /** The upstream deadline (UPSTREAM_TIMEOUT_MS), bounding discovery and token calls. */
  readonly timeoutMs?: (() => number) | undefined;
  readonly now?: () => number;
}

/** A client pre-registered at one issuer (config `oauthClients`). */
export interface IssuerClient extends PreRegistered {
  readonly issuer: string;
  readonly scopes?: readonly string[] | undefined;
}

/** What a stored vault entry carries besides the tokens: enough to refresh without discovery. */
interface StoredEntry extends VaultEntry {
  readonly as: oauth.AuthorizationServer;
  readonly client: OAuthClient;
  readonly dynamic?: boolean | undefined;
  readonly redirectUri?: string | undefined;
  readonly issuedAt: number;
}

/** The outcome of a completed callback, for the page that closes the popup. */
export interface CallbackOutcome {
  readonly server: string;
  /** The app that answered the bind: the only origin the page tells. */
  readonly openerOrigin?: string | undefined;
}

/** A refused callback: the error, and whom the page may tell (when the sign-in was known). */
export class CallbackRefused extends Error {
  readonly error: ProxyError;
  readonly openerOrigin: string | undefined;
  constructor(error: ProxyError, openerOrigin: string | undefined) {
    super(error.message, { cause: error });
    this.name = 'CallbackRefused';
    this.error = error;
    this.openerOrigin = openerOrigin;
  }
}

/** Signs principals in to upstream MCP servers and keeps their tokens. */
export class OAuthBroker {
  readonly #deps: OAuthBrokerDeps;
  readonly #vault: TokenVault;
  readonly #pending: PendingSignIns;
  readonly #now: () => number;
  readonly #refreshing = new Map<string, Promise<StoredEntry | undefined>>();

  constructor(deps: OAuthBrokerDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#vault = new TokenVault(deps.store, deps.keys, this.#now);
    this.#pending = new PendingSignIns(deps.store, deps.keys);
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
  async bearerFor(
    principalKey: string,
    target: OAuthTarget,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const resource = canonical(target.url);
    const entry = (await this.#vault.get(principalKey, resource)) as StoredEntry | undefined;
    if (!entry) return undefined;
    if (!this.#due(entry)) return entry.accessToken;
    const refreshed = await this.#refreshOnce(principalKey, resource, undefined, signal);
    return refreshed?.accessToken;
  }

  /**
   * The upstream refused `token`, the access token the broker supplied. Only an entry that still
   * holds that token is touched (review F5: a socket's stale token must not destroy what a
   * refresh stored since): with a refresh token it is refreshed now, else it is dropped. Returns
   * the new access token when there is one, so the caller may retry once.
   */
  async rejected(
    principalKey: string,
    target: OAuthTarget,
    token: string,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const resource = canonical(target.url);
    try {
      const entry = await this.#refreshOnce(principalKey, resource, token, signal);
      return entry?.accessToken === token ? undefined : entry?.accessToken;
    } catch {
      // The refresh failing (the authorization server down) must not hide the sign-in to offer.
      return undefined;
    }
  }

  /**
   * Starts a sign-in for (principal, target) and returns the `upstream_auth_required` error to
   * throw: discovery and registration happen now, so a server the proxy cannot sign in to fails
   * here with a clear code rather than in the user's browser. A 401 from a server that shows no
   * sign of OAuth (no metadata anywhere) is not the broker's: `notOAuth` is returned then, so the
   * caller still sees the upstream's own refusal (and may bring a token of its own). `signal`
   * (the caller's abort, the request's deadline) ends discovery early (review F8).
   * `_openerOrigin` is no longer used: the app that answers the bind is the one told.
   */
  async required(
    principalKey: string,
    target: OAuthTarget,
    challengeHeader: string | undefined,
    _openerOrigin?: string | undefined,
    notOAuth?: ProxyError,
    signal?: AbortSignal,
  ): Promise<ProxyError> {
    try {
      return await this.#begin(principalKey, target, challengeHeader, this.#deadline(signal));
    } catch (error) {
      if (notOAuth && error instanceof ProxyError && error.data.reason === NO_OAUTH) return notOAuth;
      throw error;
    }
  }

  async #begin(
    principalKey: string,
    target: OAuthTarget,
    challengeHeader: string | undefined,
    signal: AbortSignal,
  ): Promise<ProxyError> {
    const publicUrl = this.#deps.publicUrl();
    if (publicUrl === undefined || !this.enabled) {
      throw new ProxyError('upstream_auth_unsupported', undefined, {
        data: { reason: 'public_url_not_set' },
      });
    }
    const challenge = parseBearerChallenge(challengeHeader);
    const discovered = await discover(this.#deps.fetch, target.url, challenge, signal);
    // Counted once the server is known to use OAuth: a plain 401 (an API key missing) stays the
    // upstream's own refusal however often it comes.
    await this.#pending.admit(principalKey);
    const settings = target.name === undefined ? undefined : this.#deps.server(target.name)?.oauth;
    const issuerClients = this.#deps.issuerClients?.() ?? [];
    const chosen = await chooseClient(
      { fetch: this.#deps.fetch, store: this.#deps.store, keys: this.#deps.keys },
      discovered.as,
      publicUrl,
      settings,
      issuerClients,
      principalKey,
    );
    throwIfOver(signal);
    const scopes = (
      settings?.scopes?.join(' ') ??
      issuerClients.find((each) => each.issuer === discovered.as.issuer)?.scopes?.join(' ') ??
      challenge.scope ??
      discovered.scopesSupported?.join(' ')
    )?.slice(0, MAX_SCOPE);
    const verifier = oauth.generateRandomCodeVerifier();
    const redirectUri = redirectUriFor(publicUrl, discovered.as.issuer);
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
    params.set('client_id', chosen.client.client_id);
    params.set('redirect_uri', redirectUri);
    params.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
    params.set('code_challenge_method', 'S256');
    params.set('resource', discovered.resource);
    if (scopes) params.set('scope', scopes);
    const server = target.name ?? target.url.host;
    const pending: PendingFlow = {
      principalKey,
      target: canonical(target.url),
      server,
      indicator: discovered.resource,
      as: discovered.as,
      client: chosen.client,
      dynamic: chosen.dynamic,
      verifier,
      redirectUri,
      authorizeUrl: authorize.href,
    };
    const id = await this.#pending.start(pending);
    return new ProxyError('upstream_auth_required', undefined, {
      data: { authorizeUrl: `${publicUrl}/oauth/start/${id}`, server },
    });
  }

  /** The server a start link signs in to (the start page names it); undefined when unknown or used. */
  async startInfo(id: string): Promise<{ readonly server: string } | undefined> {
    const flow = await this.#pending.peek(id);
    return flow === undefined ? undefined : { server: flow.server };
  }

  /**
   * The bind (docs/oauth.md): the app that opened link `id` proved to be `principalKey`, from
   * `openerOrigin`. Consumes the link when it is that principal's and returns the authorization
   * URL (the endpoint recorded at the start, review F7) with a fresh `state`, and the nonce the
   * browser's cookie must hold at the callback. Throws `oauth_state_invalid` for an unknown link,
   * `oauth_bind_refused` for another principal's.
   */
  async bind(id: string, principalKey: string, openerOrigin: string): Promise<Bound> {
    const bound = await this.#pending.bind(id, principalKey, openerOrigin);
    if (bound === undefined) throw new ProxyError('oauth_state_invalid');
    if (bound === 'wrongPrincipal') throw new ProxyError('oauth_bind_refused');
    return bound;
  }

  /**
   * Completes a sign-in from the callback URL's query, arrived on `/oauth/callback/{key}` in a
   * browser whose bind cookie holds `nonce`; stores the tokens. Throws {@link CallbackRefused}.
   */
  async callback(key: string, query: URLSearchParams, nonce: string | undefined): Promise<CallbackOutcome> {
    const state = query.get('state') ?? '';
    // Single use, and only in the browser that holds the bind cookie (login CSRF, review F1).
    const flow = isIssuerKey(key) ? await this.#pending.take(state, nonce) : undefined;
    if (flow === undefined) throw new CallbackRefused(new ProxyError('oauth_state_invalid'), undefined);
    const refuse = (error: ProxyError) => new CallbackRefused(error, flow.openerOrigin);
    // Mix-up (review F2): the code came back on the redirect URI of the issuer this state is
    // for; sent through another's, it is refused before it (and the verifier) goes anywhere.
    if (
      issuerKey(flow.as.issuer) !== key ||
      flow.redirectUri !== redirectUriFor(this.#deps.publicUrl() ?? '', flow.as.issuer)
    ) {
      throw refuse(
        new ProxyError(
          'upstream_auth_failed',
          'The sign-in came back from another authorization server than it went to.',
          {
            data: { server: flow.server, reason: 'issuer_mismatch' },
          },
        ),
      );
    }
    const client: oauth.Client = { client_id: flow.client.client_id };
    let params: URLSearchParams;
    try {
      // Checks `state`, an `error` answer, and `iss` (RFC 9207) where the server advertises it.
      params = oauth.validateAuthResponse(flow.as, client, query, state);
    } catch (cause) {
      throw refuse(
        new ProxyError('upstream_auth_failed', 'The authorization server did not grant access.', {
          cause: plainCause(cause),
          data: { server: flow.server },
        }),
      );
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
        {
          ...requestOptions(this.#deps.fetch, tokenUrl),
          additionalParameters: { resource: flow.indicator },
          signal: this.#deadline(undefined),
        },
      );
      tokens = await oauth.processAuthorizationCodeResponse(flow.as, client, response);
    } catch (cause) {
      await this.#forgetDeadClient(cause, flow);
      if (cause instanceof ProxyError) throw refuse(cause);
      throw refuse(
        new ProxyError('upstream_auth_failed', 'The authorization server refused to issue tokens.', {
          cause: plainCause(cause),
          data: { server: flow.server },
        }),
      );
    }
    await this.#vault.put(flow.principalKey, this.#entry(flow, tokens, undefined));
    return { server: flow.server, openerOrigin: flow.openerOrigin };
  }

  /** The Client ID Metadata Document of the issuer `key`, when PUBLIC_URL is https. */
  clientMetadataDocument(key: string): Record<string, unknown> | undefined {
    const publicUrl = this.#deps.publicUrl();
    return publicUrl?.startsWith('https://') && isIssuerKey(key) ? clientMetadata(publicUrl, key) : undefined;
  }

  /** The caller's signal bounded by the upstream deadline (review F8). */
  #deadline(signal: AbortSignal | undefined): AbortSignal {
    const timeout = AbortSignal.timeout(this.#deps.timeoutMs?.() || FLOW_CALL_TIMEOUT_MS);
    return signal ? AbortSignal.any([signal, timeout]) : timeout;
  }

  /**
   * `invalid_client` from the token endpoint: the authorization server forgot the client the
   * proxy registered, so the registration is dropped and the next sign-in registers anew (F6).
   */
  async #forgetDeadClient(
    cause: unknown,
    source: {
      as: oauth.AuthorizationServer;
      client: OAuthClient;
      dynamic?: boolean | undefined;
      redirectUri?: string | undefined;
    },
  ): Promise<boolean> {
    if (!(cause instanceof oauth.ResponseBodyError) || cause.error !== 'invalid_client') return false;
    if (source.dynamic === true && source.redirectUri !== undefined) {
      await forgetRegistration(
        { store: this.#deps.store, keys: this.#deps.keys },
        source.as.issuer,
        source.redirectUri,
        source.client.client_id,
      );
    }
    return true;
  }

  #entry(
    source: {
      target: string;
      indicator: string;
      as: oauth.AuthorizationServer;
      client: OAuthClient;
      dynamic?: boolean | undefined;
      redirectUri?: string | undefined;
    },
    tokens: oauth.TokenEndpointResponse,
    previousRefresh: string | undefined,
  ): StoredEntry {
    const now = this.#now();
    return {
      accessToken: tokens.access_token,
      // An AS that does not rotate refresh tokens answers without one: the old one stays good.
      refreshToken: tokens.refresh_token ?? previousRefresh,
      expiresAt: typeof tokens.expires_in === 'number' ? now + tokens.expires_in * 1000 : undefined,
      scope: tokens.scope?.slice(0, MAX_SCOPE),
      issuer: source.as.issuer,
      resource: source.target,
      indicator: source.indicator,
      clientId: source.client.client_id,
      as: source.as,
      client: source.client,
      dynamic: source.dynamic,
      redirectUri: source.redirectUri,
      issuedAt: now,
    };
  }

  #due(entry: StoredEntry): boolean {
    if (entry.expiresAt === undefined) return false;
    const margin = Math.min(REFRESH_MARGIN_MS, (entry.expiresAt - entry.issuedAt) / 4);
    return this.#now() >= entry.expiresAt - margin;
  }

  /**
   * One refresh per (principal, resource): in this process a shared promise, across instances a
   * lock. `failed` is an access token the upstream refused: an entry still holding it is stale
   * even before its expiry.
   */
  #refreshOnce(
    principalKey: string,
    resource: string,
    failed: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<StoredEntry | undefined> {
    const slot = TokenVault.slot(principalKey, resource);
    const running = this.#refreshing.get(slot);
    if (running) return running;
    const task = this.#refresh(principalKey, resource, slot, failed, this.#deadline(signal)).finally(() =>
      this.#refreshing.delete(slot),
    );
    this.#refreshing.set(slot, task);
    return task;
  }

  async #refresh(
    principalKey: string,
    resource: string,
    slot: string,
    failed: string | undefined,
    signal: AbortSignal,
  ): Promise<StoredEntry | undefined> {
    const stale = (entry: StoredEntry) => this.#due(entry) || entry.accessToken === failed;
    const lock = `lock:${slot}`;
    const holder = randomBytes(12).toString('base64url');
    const deadline = this.#now() + REFRESH_LOCK_MS;
    while (!(await this.#deps.store.setIfAbsent(lock, holder, REFRESH_LOCK_MS))) {
      // Another instance refreshes: its result lands in the vault.
      await new Promise((resolve) => setTimeout(resolve, REFRESH_POLL_MS));
      const current = (await this.#vault.get(principalKey, resource)) as StoredEntry | undefined;
      if (!current) return undefined;
      if (!stale(current)) return current;
      if (this.#now() > deadline || signal.aborted) return undefined;
    }
    try {
      // Another instance may have refreshed between our read and the lock.
      const read = await this.#vault.read(principalKey, resource);
      const current = read?.entry as StoredEntry | undefined;
      if (!read || !current) return undefined;
      if (!stale(current)) return current;
      // Compare-and-delete from here on (review F5): only the entry read above is dropped.
      if (current.refreshToken === undefined) {
        await this.#vault.deleteIfSealed(principalKey, resource, read.sealed);
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
            signal,
          },
        );
        tokens = await oauth.processRefreshTokenResponse(current.as, client, response);
      } catch (cause) {
        const deadClient = await this.#forgetDeadClient(cause, current);
        if (deadClient || (cause instanceof oauth.ResponseBodyError && cause.error === 'invalid_grant')) {
          // Revoked or expired grant, or a client the server forgot: the user signs in again.
          await this.#vault.deleteIfSealed(principalKey, resource, read.sealed);
          return undefined;
        }
        if (cause instanceof ProxyError) throw cause;
        throw new ProxyError(
          'upstream_auth_failed',
          'Refreshing the upstream access token failed: try again shortly.',
          { cause: plainCause(cause) },
        );
      }
      const next = this.#entry(
        {
          target: resource,
          indicator: current.indicator,
          as: current.as,
          client: current.client,
          dynamic: current.dynamic,
          redirectUri: current.redirectUri,
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

/**
 * What of an oauth4webapi failure may be logged: its name, message and OAuth error code, never
 * the response or its body (a token answer the library refused still holds the tokens).
 */
function plainCause(cause: unknown): Error {
  if (!(cause instanceof Error)) return new Error('oauth flow failure');
  const code = cause instanceof oauth.ResponseBodyError ? ` (${cause.error})` : '';
  const plain = new Error(`${cause.message}${code}`);
  plain.name = cause.name;
  return plain;
}

/** Reads the `oauth` settings of a configured server entry, whatever its shape. */
export function oauthSettingsOf(server: unknown): OAuthServerSettings | undefined {
  if (typeof server !== 'object' || server === null) return undefined;
  return server as OAuthServerSettings;
}

export type { VaultEntry };
