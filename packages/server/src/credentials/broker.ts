/**
 * @module credentials/broker
 * The upstream OAuth broker (issue 18): signs each principal in to OAuth-protected MCP servers
 * and keeps their tokens server-side. `bearerFor` gives the access token for (principal, server),
 * refreshed shortly before it expires (once across instances: a store lock); `required` starts a
 * sign-in and returns the `upstream_auth_required` error whose `authorizeUrl` the frontend opens;
 * `start` and `callback` are the two browser legs. No token leaves this module except as the
 * upstream's `Authorization` header.
 */
import * as oauth from 'oauth4webapi';
import { ProxyError } from '../errors.ts';
import type { BrokerMeans } from './broker-means.ts';
import { CallbackRefused } from './callback-refused.ts';
import { parseBearerChallenge } from './challenge.ts';
import { type Disconnected, OAuthConnections } from './connections.ts';
import { canonical, isLoopbackHttp, refuseForeignEndpoint, showsNoOAuth, throwIfOver } from './discovery.ts';
import type { OAuthFetch } from './guarded-fetch.ts';
import { type PendingFlow, PendingSignIns } from './pending-sign-ins.ts';
import { type LoginIssuer, ProxyLogin } from './proxy-login.ts';
import {
  chooseClient,
  clientMetadata,
  documentInUse,
  isIssuerKey,
  issuerKey,
  keepDocumentInUse,
  type PreRegistered,
  redirectUriFor,
} from './registration.ts';
import { RememberedDiscovery } from './remembered-discovery.ts';
import { SignInLinks } from './sign-in-links.ts';
import { requestTokens } from './token-endpoint.ts';
import {
  entryFrom,
  forgetDeadClient,
  isDue,
  MAX_SCOPE,
  plainCause,
  type StoredEntry,
  TokenRefresher,
} from './token-refresh.ts';
import { TokenVault, type VaultEntry } from './vault.ts';

/** The default deadline of the flow's calls when the caller gives none (discovery, token). */
const FLOW_CALL_TIMEOUT_MS = 30_000;

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

/** Collaborators of the broker; its `fetch` (every HTTP call of the flow) goes through the egress guard. */
export interface OAuthBrokerDeps extends BrokerMeans {
  /** Calls to the operator's login issuers (proxy-login.ts): trusted, not the upstream guard. */
  readonly loginFetch: OAuthFetch;
  /** OAUTH_BROKER: the broker acts only when the operator switched it on. */
  readonly switchedOn: () => boolean;
  /** PUBLIC_URL (no trailing slash), read at each use: a reload may change it. */
  readonly publicUrl: () => string | undefined;
  /** The configured server of a name (its `auth` and `oauth` settings). */
  readonly server: (name: string) => OAuthServerSettings | undefined;
  /** Clients the operator pre-registered per issuer (`oauthClients`), read at each use. */
  readonly issuerClients?: (() => readonly IssuerClient[]) | undefined;
  /** OIDC issuers whose users sign in to the proxy to bind a link (proxy-login.ts), now. */
  readonly loginIssuers?: (() => readonly LoginIssuer[]) | undefined;
  /** OAUTH_USER_CODES now: links opened without their app may be bound with a one-time code. */
  readonly userCodes?: (() => boolean) | undefined;
  /** The upstream deadline (UPSTREAM_TIMEOUT_MS), bounding discovery and token calls. */
  readonly timeoutMs?: (() => number) | undefined;
  readonly now?: () => number;
}

/** A client pre-registered at one issuer (config `oauthClients`). */
export interface IssuerClient extends PreRegistered {
  readonly issuer: string;
  readonly scopes?: readonly string[] | undefined;
}

/** The outcome of a completed callback, for the page that closes the popup. */
export interface CallbackOutcome {
  readonly server: string;
  /** The app that answered the bind: the only origin the page tells. */
  readonly openerOrigin?: string | undefined;
  /** Connections ended to stay within the principal's cap (review item 7): the caller logs them. */
  readonly evicted: readonly Disconnected[];
}

/** Signs principals in to upstream MCP servers and keeps their tokens. */
export class OAuthBroker {
  readonly #deps: OAuthBrokerDeps;
  readonly #vault: TokenVault;
  readonly #pending: PendingSignIns;
  readonly #now: () => number;
  readonly #refresher: TokenRefresher;
  readonly #connections: OAuthConnections;
  readonly #links: SignInLinks;
  readonly #discovery: RememberedDiscovery;

  constructor(deps: OAuthBrokerDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#vault = new TokenVault(deps.store, deps.keys, this.#now);
    this.#pending = new PendingSignIns(deps.store, deps.keys);
    this.#discovery = new RememberedDiscovery(deps.fetch, this.#now);
    const means: BrokerMeans = { store: deps.store, keys: deps.keys, fetch: deps.fetch };
    this.#refresher = new TokenRefresher({
      ...means,
      vault: this.#vault,
      now: this.#now,
      deadline: (signal) => this.#deadline(signal),
    });
    this.#connections = new OAuthConnections({ ...means, now: this.#now });
    this.#links = new SignInLinks({
      pending: this.#pending,
      login: new ProxyLogin({
        ...means,
        fetch: deps.loginFetch,
        issuers: deps.loginIssuers ?? (() => []),
        publicUrl: deps.publicUrl,
        deadline: () => this.#deadline(undefined),
      }),
      userCodes: deps.userCodes ?? (() => true),
      now: this.#now,
    });
  }

  /** The sign-in links' browser legs: described, bound (by the opener, a code, or a login). */
  get links(): SignInLinks {
    return this.#links;
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

  /**
   * The principal's access token for `target`, refreshed when close to expiry; else undefined.
   * `waitWhileValid: false` (a `/ws` frame, review oauth6 R4): a token due for refresh but not
   * expired yet is answered at once and the refresh runs behind it, so no frame waits for the
   * authorization server while the token held still works.
   */
  async bearerFor(
    principalKey: string,
    target: OAuthTarget,
    signal?: AbortSignal,
    waitWhileValid = true,
  ): Promise<string | undefined> {
    const resource = canonical(target.url);
    const entry = (await this.#vault.get(principalKey, resource)) as StoredEntry | undefined;
    if (!entry) return undefined;
    const now = this.#now();
    if (!isDue(entry, now)) return entry.accessToken;
    if (!waitWhileValid && entry.expiresAt !== undefined && entry.expiresAt > now) {
      // Its failure is the refresher's to remember (back-off); nobody waits for it here.
      this.#refresher.refreshOnce(principalKey, resource, undefined, undefined).catch(() => {});
      return entry.accessToken;
    }
    const refreshed = await this.#refresher.refreshOnce(principalKey, resource, undefined, signal);
    return refreshed?.accessToken;
  }

  /**
   * The end mark of (principal, target): it changes when the user disconnects it or it is
   * evicted, so a holder of its token (an open socket) compares it with the one it read first.
   */
  endMark(principalKey: string, target: OAuthTarget): Promise<string | undefined> {
    return this.#vault.endMark(principalKey, canonical(target.url));
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
      const entry = await this.#refresher.refreshOnce(principalKey, resource, token, signal);
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
   * sign of OAuth (no metadata anywhere: discovery.ts `showsNoOAuth`) is not the broker's: `notOAuth` is returned then, so the
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
      if (notOAuth && showsNoOAuth(error, parseBearerChallenge(challengeHeader))) return notOAuth;
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
    signal?: AbortSignal,
  ): Promise<ProxyError | undefined> {
    const challenge = parseBearerChallenge(challengeHeader);
    if (challenge.error?.toLowerCase() !== 'insufficient_scope') return undefined;
    const held = await this.#vault.get(principalKey, canonical(target.url));
    const configured = target.name === undefined ? undefined : this.#deps.server(target.name)?.oauth?.scopes;
    const scopes = new Set(
      [held?.scope, challenge.scope, configured?.join(' ')].flatMap((each) => each?.split(' ') ?? []),
    );
    scopes.delete('');
    return this.#begin(principalKey, target, challengeHeader, this.#deadline(signal), [...scopes].join(' '));
  }

  async #begin(
    principalKey: string,
    target: OAuthTarget,
    challengeHeader: string | undefined,
    signal: AbortSignal,
    stepUpScopes?: string,
  ): Promise<ProxyError> {
    const publicUrl = this.#deps.publicUrl();
    if (publicUrl === undefined || !this.enabled) {
      throw new ProxyError('upstream_auth_unsupported', undefined, {
        data: { reason: 'public_url_not_set' },
      });
    }
    const challenge = parseBearerChallenge(challengeHeader);
    // A server lately found without OAuth costs no fetch and no cap (review6 LINKS-3): its plain
    // 401 (an API key missing) stays the upstream's own refusal however often it comes.
    this.#discovery.refuseIfRemembered(target.url, challenge);
    // A server the operator configured, or one this principal is connected to, is no stranger:
    // raw URLs of servers never connected share one small cap (review oauth6 R3). The caps are
    // spent before discovery (review6 OAUTH-4, LINKS-3; review7 CREDS-3: looked at before and
    // spent after, calls arriving together each saw room and each ran discovery), so a call
    // past a cap costs no outbound fetch. A known server without OAuth spends one offer per
    // remembered finding. An offer spends the server's own cap, not the principal's sign-ins
    // (those count at the bind, review item 8).
    const known =
      target.name !== undefined || (await this.#vault.get(principalKey, canonical(target.url))) !== undefined;
    await this.#pending.admitOffer(principalKey, target.url.origin, known);
    const discovered = await this.#discovery.discover(target.url, challenge, signal);
    const settings = target.name === undefined ? undefined : this.#deps.server(target.name)?.oauth;
    const issuerClients = this.#deps.issuerClients?.() ?? [];
    refuseForeignEndpoint(discovered.as, settings?.issuer, issuerClients);
    const chosen = await chooseClient(
      { fetch: this.#deps.fetch, store: this.#deps.store, keys: this.#deps.keys },
      discovered.as,
      publicUrl,
      settings,
      issuerClients,
      principalKey,
      signal,
    );
    throwIfOver(signal);
    const scopes = (
      stepUpScopes ||
      (settings?.scopes?.join(' ') ??
        issuerClients.find((each) => each.issuer === discovered.as.issuer)?.scopes?.join(' ') ??
        challenge.scope ??
        discovered.scopesSupported?.join(' '))
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
    const { id, userCode } = await this.#links.offer(pending);
    return new ProxyError('upstream_auth_required', undefined, {
      data: { authorizeUrl: `${publicUrl}/oauth/start/${id}`, server, ...(userCode ? { userCode } : {}) },
    });
  }

  /**
   * Completes a sign-in from the callback URL's query, arrived on `/oauth/callback/{key}` and
   * POSTed by the callback page with `nonce`, the one its tab kept at the bind; stores the
   * tokens. Throws {@link CallbackRefused}.
   */
  async callback(key: string, query: URLSearchParams, nonce: string | undefined): Promise<CallbackOutcome> {
    const state = query.get('state') ?? '';
    // Single use, and only from the tab (and origin) that bound it (login CSRF, review F1, R1).
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
    let tokens: oauth.TokenEndpointResponse;
    try {
      const grant = {
        kind: 'authorization_code',
        params,
        redirectUri: flow.redirectUri,
        verifier: flow.verifier,
      } as const;
      tokens = await requestTokens(this.#deps.fetch, flow, grant, this.#deadline(undefined));
    } catch (cause) {
      await forgetDeadClient(this.#deps, cause, flow);
      if (cause instanceof ProxyError) throw refuse(cause);
      throw refuse(
        new ProxyError('upstream_auth_failed', 'The authorization server refused to issue tokens.', {
          cause: plainCause(cause),
          data: { server: flow.server },
        }),
      );
    }
    await this.#vault.put(flow.principalKey, entryFrom(flow, tokens, undefined, this.#now()));
    await keepDocumentInUse(this.#deps.store, flow.as.issuer, flow.client);
    const evicted = await this.#connections.record(flow.principalKey, flow.server, flow.target);
    return { server: flow.server, openerOrigin: flow.openerOrigin, evicted };
  }

  /**
   * The Client ID Metadata Document of the issuer `key`, when PUBLIC_URL is https and the proxy
   * presented it there (a sign-in started or completed with it, review6 D1).
   */
  async clientMetadataDocument(key: string): Promise<Record<string, unknown> | undefined> {
    const publicUrl = this.#deps.publicUrl();
    if (!publicUrl?.startsWith('https://') || !isIssuerKey(key)) return undefined;
    return (await documentInUse(this.#deps.store, key)) ? clientMetadata(publicUrl, key) : undefined;
  }

  /** The caller's signal bounded by the upstream deadline (review F8). */
  #deadline(signal: AbortSignal | undefined): AbortSignal {
    const timeout = AbortSignal.timeout(this.#deps.timeoutMs?.() || FLOW_CALL_TIMEOUT_MS);
    return signal ? AbortSignal.any([signal, timeout]) : timeout;
  }
}

/** Reads the `oauth` settings of a configured server entry, whatever its shape. */
export function oauthSettingsOf(server: unknown): OAuthServerSettings | undefined {
  if (typeof server !== 'object' || server === null) return undefined;
  return server as OAuthServerSettings;
}

export type { VaultEntry };
