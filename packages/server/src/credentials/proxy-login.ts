/**
 * @module credentials/proxy-login
 * The user signs in to the proxy itself (issue 18, docs/oauth.md "Sign-in links opened without
 * the app"): when a sign-in link was made for an OIDC principal (`oidc:<issuer>#<sub>`) whose
 * issuer the operator gave a login client (`oidc.issuers[].login`, `OIDC_LOGIN_CLIENT_ID`), the
 * start page opened with no app behind it sends the user to that issuer (authorization code +
 * PKCE S256 + an OIDC `nonce`; the proxy is the OIDC client), and the link is bound only when
 * the ID token's subject is the principal the link was made for. So the link binds to the user,
 * not to whoever opens it. Like the upstream sign-in, the return completes only in the tab that
 * left (a nonce in its sessionStorage, POSTed same-origin), and its state is single use.
 */
import { randomBytes } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { ProxyError } from '../errors.ts';
import { parseJsonObject } from '../json-object.ts';
import { countOrRefuse } from '../limits/store-failures.ts';
import { open, seal } from '../store/sealed-box.ts';
import type { BrokerMeans } from './broker-means.ts';
import { requestOptions } from './discovery.ts';
import { digest, sameText } from './hashed-secrets.ts';
import { LOGIN_BASE } from './oauth-paths.ts';
import { isIssuerKey, issuerKey } from './registration.ts';
import { exchangeCode } from './token-endpoint.ts';

/** How long a user may take at the identity provider. */
const LOGIN_TTL_MS = 10 * 60 * 1000;
/** Logins one link may start (a user retrying is fine; a script pressing the button is not). */
const LOGINS_PER_LINK = 5;

/** A user-facing OIDC issuer with the proxy's login client there. */
export interface LoginIssuer {
  readonly issuer: string;
  readonly clientId: string;
  /** Absent: a public client (PKCE alone). */
  readonly clientSecret?: string | undefined;
}

/** What the proxy keeps while the user is at the identity provider (sealed). */
interface PendingLogin {
  /** The sign-in link this login is to bind. */
  readonly linkId: string;
  readonly issuer: string;
  readonly verifier: string;
  /** The OIDC `nonce` the ID token must carry. */
  readonly oidcNonce: string;
  /** SHA-256 of the nonce the leaving tab keeps (only that tab completes). */
  readonly tabNonceHash: string;
}

/** What the start page gets to leave for the identity provider. */
export interface LoginStart {
  readonly loginUrl: string;
  readonly state: string;
  readonly nonce: string;
}

/**
 * Collaborators of {@link ProxyLogin}. Its `fetch` makes every call to the identity provider
 * (discovery, token): the operator configured it, so it is reached like the OIDC verifier's key
 * sets (deadline, cap, no redirects), not through the upstream egress guard (review6 LINKS-1).
 */
export interface ProxyLoginDeps extends BrokerMeans {
  /** The issuers with a login client, read at each use (reloadable). */
  readonly issuers: () => readonly LoginIssuer[];
  readonly publicUrl: () => string | undefined;
  /** The deadline of one login's calls. */
  readonly deadline: () => AbortSignal;
}

/** Signs users in to the proxy through their OIDC issuer, to bind sign-in links to them. */
export class ProxyLogin {
  readonly #deps: ProxyLoginDeps;

  constructor(deps: ProxyLoginDeps) {
    this.#deps = deps;
  }

  /** The login issuer of `principalKey` (an `oidc:<issuer>#<sub>` key of an issuer with a login client). */
  issuerFor(principalKey: string): LoginIssuer | undefined {
    return this.#deps.issuers().find((each) => principalKey.startsWith(`oidc:${each.issuer}#`));
  }

  /** Starts a login at `issuer` to bind link `linkId`: the URL to go to, its state, the tab's nonce. */
  async start(linkId: string, issuer: string): Promise<LoginStart> {
    // Anyone holding the link may press the button: each press costs a store entry and a
    // discovery request, so a link starts a few logins only.
    const starts = await countOrRefuse(this.#deps.store, `login-starts:${digest(linkId)}`, LOGIN_TTL_MS);
    if (starts.count > LOGINS_PER_LINK) {
      throw new ProxyError('oauth_sign_in_limited', undefined, {
        headers: { 'retry-after': String(Math.max(1, Math.ceil(starts.resetInMs / 1000))) },
      });
    }
    const { login, as, redirectUri } = await this.#provider(issuer);
    const endpoint = as.authorization_endpoint;
    if (endpoint === undefined) throw failed('the identity provider has no authorization endpoint');
    const verifier = oauth.generateRandomCodeVerifier();
    const state = randomBytes(24).toString('base64url');
    const nonce = randomBytes(24).toString('base64url');
    const pending: PendingLogin = {
      linkId,
      issuer: login.issuer,
      verifier,
      oidcNonce: randomBytes(24).toString('base64url'),
      tabNonceHash: digest(nonce),
    };
    const slot = `login:${digest(state)}`;
    await this.#deps.store.set(slot, seal(this.#deps.keys, slot, JSON.stringify(pending)), LOGIN_TTL_MS);
    const url = new URL(endpoint);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', login.clientId);
    url.searchParams.set('redirect_uri', redirectUri);
    url.searchParams.set('scope', 'openid');
    url.searchParams.set('state', state);
    url.searchParams.set('nonce', pending.oidcNonce);
    url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
    url.searchParams.set('code_challenge_method', 'S256');
    return { loginUrl: url.href, state, nonce };
  }

  /**
   * Completes a login that came back on `/oauth/login/{key}` with `query`, POSTed by the tab that
   * left with `nonce`: the link it was for, and the principal key the ID token proves. Throws
   * `oauth_state_invalid` (unknown, used, expired state, or another tab), `oauth_login_failed`.
   */
  async finish(
    key: string,
    query: URLSearchParams,
    nonce: string | undefined,
  ): Promise<{ readonly linkId: string; readonly principalKey: string }> {
    const pending = await this.#take(query.get('state') ?? '', nonce);
    if (pending === undefined || !isIssuerKey(key) || issuerKey(pending.issuer) !== key) {
      throw new ProxyError('oauth_state_invalid');
    }
    const { login, as, redirectUri } = await this.#provider(pending.issuer);
    const client: oauth.Client = { client_id: login.clientId };
    const auth = login.clientSecret === undefined ? oauth.None() : oauth.ClientSecretPost(login.clientSecret);
    try {
      const params = oauth.validateAuthResponse(as, client, query, query.get('state') ?? '');
      const call = { fetch: this.#deps.fetch, signal: this.#deps.deadline() };
      const callback = { params, redirectUri, verifier: pending.verifier };
      const response = await exchangeCode(call, { as, client, auth }, callback);
      // The ID token comes straight from the token endpoint (OIDC Core 3.1.3.7: its TLS vouches
      // for it); its iss, aud, exp and nonce are checked here.
      const result = await oauth.processAuthorizationCodeResponse(as, client, response, {
        expectedNonce: pending.oidcNonce,
        requireIdToken: true,
      });
      const subject = oauth.getValidatedIdTokenClaims(result)?.sub;
      // As for access tokens (identity/oidc/issuer.ts): an ill-formed subject keys another's slots.
      if (typeof subject !== 'string' || subject === '' || !subject.isWellFormed()) {
        throw failed('the ID token names no well-formed subject');
      }
      return { linkId: pending.linkId, principalKey: `oidc:${login.issuer}#${subject}` };
    } catch (cause) {
      if (cause instanceof ProxyError) throw cause;
      throw failed(cause instanceof Error ? cause.message : 'the identity provider refused');
    }
  }

  /** The login client of `issuer` now, its discovered metadata and the redirect URI. */
  async #provider(issuer: string) {
    const login = this.#deps.issuers().find((each) => each.issuer === issuer);
    const publicUrl = this.#deps.publicUrl();
    if (login === undefined || publicUrl === undefined) throw new ProxyError('oauth_state_invalid');
    const url = new URL(login.issuer);
    let as: oauth.AuthorizationServer;
    try {
      const response = await oauth.discoveryRequest(url, {
        ...requestOptions(this.#deps.fetch, url),
        algorithm: 'oidc',
        signal: this.#deps.deadline(),
      });
      as = await oauth.processDiscoveryResponse(url, response);
    } catch (cause) {
      throw failed(`discovery: ${cause instanceof Error ? cause.message : 'failed'}`);
    }
    return { login, as, redirectUri: `${publicUrl}${LOGIN_BASE}/${issuerKey(login.issuer)}` };
  }

  /** The pending login of `state`, consumed, when `nonce` is the leaving tab's. */
  async #take(state: string, nonce: string | undefined): Promise<PendingLogin | undefined> {
    if (state === '' || nonce === undefined || nonce === '') return undefined;
    const slot = `login:${digest(state)}`;
    const sealed = await this.#deps.store.get(slot);
    const plain = sealed === undefined ? undefined : open(this.#deps.keys, slot, sealed);
    if (sealed === undefined || plain === undefined) return undefined;
    const pending = parseJsonObject(plain) as PendingLogin | undefined;
    if (pending === undefined) return undefined;
    if (!sameText(pending.tabNonceHash ?? '', digest(nonce))) return undefined;
    return (await this.#deps.store.deleteIf(slot, sealed)) ? pending : undefined;
  }
}

/** `oauth_login_failed`, its cause said in words (no token, no code). */
function failed(reason: string): ProxyError {
  return new ProxyError('oauth_login_failed', undefined, { cause: new Error(reason) });
}
