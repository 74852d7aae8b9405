/**
 * @module credentials/sign-in-links
 * The one-time sign-in links of the OAuth broker (issue 18) from the offer to the bind: which
 * proof a link asks of whoever opens it, and the three binds (docs/oauth.md). A browser app
 * answers the start page as its opener with the caller's proxy credential; a link opened with no
 * app behind it is bound by the user signing in to the proxy through the principal's OIDC issuer
 * (when the operator gave that issuer a login client: proxy-login.ts), else by the one-time code
 * offered with the link (user-codes.ts; off with `OAUTH_USER_CODES=false`). Each bind goes on
 * only for the principal the link was made for.
 */
import { ProxyError } from '../errors.ts';
import type { Bound, PendingFlow, PendingSignIns } from './pending-sign-ins.ts';
import type { LoginStart, ProxyLogin } from './proxy-login.ts';
import { newUserCode, USER_CODE_TTL_MS, userCodeDigest } from './user-codes.ts';

/** How a link opened without its app is bound (the start page offers that way only). */
export type Confirmation = 'code' | 'login' | 'none';

/** What the start page names and offers for one link (review item 6). */
export interface StartInfo {
  readonly server: string;
  readonly host: string;
  readonly issuerHost: string;
  readonly authorizeHost: string;
  readonly confirmation: Confirmation;
  /** The host of the identity provider a `login` confirmation goes to. */
  readonly loginHost?: string | undefined;
}

/** A link as offered: its id, and the code shown with it when it has one. */
export interface Offered {
  readonly id: string;
  readonly userCode?: string | undefined;
}

/** Collaborators of {@link SignInLinks}. */
export interface SignInLinksDeps {
  readonly pending: PendingSignIns;
  readonly login: ProxyLogin;
  /** OAUTH_USER_CODES now. */
  readonly userCodes: () => boolean;
  readonly now: () => number;
}

/** Sign-in links: offered, described, bound. */
export class SignInLinks {
  readonly #deps: SignInLinksDeps;

  constructor(deps: SignInLinksDeps) {
    this.#deps = deps;
  }

  /**
   * Keeps `flow` under a new link and decides how it may be bound without its app: a sign-in to
   * the proxy when the principal's OIDC issuer has a login client (stronger: bound to the
   * user, no code to phish), else a fresh one-time code unless codes are switched off.
   */
  async offer(flow: PendingFlow): Promise<Offered> {
    const { pending, login, userCodes, now } = this.#deps;
    const issuer = login.issuerFor(flow.principalKey)?.issuer;
    if (issuer !== undefined) return { id: await pending.start({ ...flow, loginIssuer: issuer }) };
    if (!userCodes()) return { id: await pending.start(flow) };
    const userCode = newUserCode();
    const id = await pending.start({
      ...flow,
      userCodeHash: userCodeDigest(userCode),
      userCodeExpiresAt: now() + USER_CODE_TTL_MS,
    });
    return { id, userCode };
  }

  /**
   * What link `id` signs in to, for the start page to name, and how it can be bound without an
   * opener; undefined when the link is unknown or used.
   */
  async startInfo(id: string): Promise<StartInfo | undefined> {
    const flow = await this.#deps.pending.peek(id);
    if (flow === undefined) return undefined;
    const issuerHost = URL.parse(flow.as.issuer)?.host ?? flow.as.issuer;
    const loginIssuer = flow.loginIssuer;
    const confirmation: Confirmation =
      loginIssuer !== undefined && this.#deps.login.issuerFor(flow.principalKey) !== undefined
        ? 'login'
        : flow.userCodeHash !== undefined && (flow.userCodeExpiresAt ?? 0) > this.#deps.now()
          ? 'code'
          : 'none';
    return {
      server: flow.server,
      host: URL.parse(flow.target)?.host ?? flow.server,
      issuerHost,
      // Where the Continue button really goes (review oauth6 R2): the page names that host.
      authorizeHost: URL.parse(flow.authorizeUrl)?.host ?? issuerHost,
      confirmation,
      ...(confirmation === 'login' ? { loginHost: URL.parse(loginIssuer ?? '')?.host } : {}),
    };
  }

  /**
   * The opener's bind: the app that opened link `id` proved to be `principalKey`, from
   * `openerOrigin`. Consumes the link when it is that principal's and returns the authorization
   * URL (the endpoint recorded at the start, review F7) with a fresh `state`, and the nonce the
   * start page keeps in its tab's sessionStorage for the callback (review R1). Throws
   * `oauth_state_invalid` for an unknown link, `oauth_bind_refused` for another principal's.
   */
  async bind(id: string, principalKey: string, openerOrigin: string): Promise<Bound> {
    return this.#bound(await this.#deps.pending.bind(id, principalKey, openerOrigin), 'oauth_bind_refused');
  }

  /** The code's bind (PendingSignIns.bindByCode): the user typed the code offered with link `id`. */
  bindByCode(id: string, code: string): Promise<Bound> {
    return this.#deps.pending.bindByCode(id, code, this.#deps.now());
  }

  /** Starts the user's sign-in to the proxy for link `id` (a `login` link only). */
  async loginStart(id: string): Promise<LoginStart> {
    const flow = await this.#deps.pending.peek(id);
    if (flow?.loginIssuer === undefined) throw new ProxyError('oauth_state_invalid');
    return this.#deps.login.start(id, flow.loginIssuer);
  }

  /**
   * The user came back from signing in to the proxy (ProxyLogin.finish): binds the link it left
   * for when the signed-in subject is that link's principal; `oauth_user_mismatch` otherwise
   * (the link stays for its own user).
   */
  async loginFinish(key: string, query: URLSearchParams, nonce: string | undefined): Promise<Bound> {
    const { linkId, principalKey } = await this.#deps.login.finish(key, query, nonce);
    return this.#bound(await this.#deps.pending.bind(linkId, principalKey, undefined), 'oauth_user_mismatch');
  }

  #bound(
    bound: Bound | 'wrongPrincipal' | undefined,
    wrong: 'oauth_bind_refused' | 'oauth_user_mismatch',
  ): Bound {
    if (bound === undefined) throw new ProxyError('oauth_state_invalid');
    if (bound === 'wrongPrincipal') throw new ProxyError(wrong);
    return bound;
  }
}
