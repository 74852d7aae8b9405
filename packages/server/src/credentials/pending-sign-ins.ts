/**
 * @module credentials/pending-sign-ins
 * Sign-ins between the `upstream_auth_required` error and the callback (issue 18), sealed in the
 * store in two steps: a start link (`start:`) waits for the browser to prove it acts for the
 * principal (the bind, docs/oauth.md); the bind turns it into a `state` (`state:`) that also holds
 * the hash of the nonce the start page keeps in its tab's sessionStorage. Store keys are hashes of the link id and the
 * state, so a store reader cannot use them. Each principal and the whole proxy have a bounded
 * number of sign-ins per {@link SIGN_IN_TTL_MS} (security review F4): an upstream that answers
 * 401 to everything, or a caller naming many hostile servers, cannot grow the store. A principal's
 * quota is spent by the sign-ins it binds (review item 8), not by the links it is offered: a
 * server answering 401 to everything only meets the cap on its own offers.
 */
import { randomBytes } from 'node:crypto';
import { ProxyError } from '../errors.ts';
import type { WindowHit } from '../limits/rate-store.ts';
import { countOrRefuse } from '../limits/store-failures.ts';
import { open, seal } from '../store/sealed-box.ts';
import type { Store } from '../store/store.ts';
import type { VaultKeys } from '../store/vault-keys.ts';
import { digest, sameText } from './hashed-secrets.ts';
import type { EntrySource } from './token-refresh.ts';
import { USER_CODE_ATTEMPTS, userCodeDigest } from './user-codes.ts';

/** How long a sign-in may take from the error to the callback. */
export const SIGN_IN_TTL_MS = 10 * 60 * 1000;
/** Sign-ins one principal may bind per {@link SIGN_IN_TTL_MS}; also the links one server may cause it. */
export const SIGN_INS_PER_PRINCIPAL = 30;
/**
 * Links one principal may be offered per {@link SIGN_IN_TTL_MS}, over all servers: one caller
 * naming many hostile servers must not spend the proxy's total alone.
 */
export const OFFERS_PER_PRINCIPAL = 300;
/**
 * Links one principal may be offered per {@link SIGN_IN_TTL_MS} for servers it is not connected
 * to and the operator did not configure, all of them together (review oauth6 R3): raw URLs of
 * hostile servers, however many, yield this many, not {@link OFFERS_PER_PRINCIPAL}.
 */
export const STRANGER_OFFERS_PER_PRINCIPAL = 30;
/**
 * Links one principal may be offered per {@link SIGN_IN_TTL_MS} for one such server (origin): a
 * server answering 401 to everything spends a third of {@link STRANGER_OFFERS_PER_PRINCIPAL},
 * never all of it (review item 8: it meets its own cap, not the principal's).
 */
export const STRANGER_OFFERS_PER_SERVER = 10;
/**
 * Each principal's guaranteed share per {@link SIGN_IN_TTL_MS} (review oauth6 R3): its first
 * offers never meet the proxy-wide {@link SIGN_INS_TOTAL}, and do not spend it, so no set of
 * principals can lock the others out of signing in; only offers past it spend the total.
 */
export const OFFERS_SHARE_PER_PRINCIPAL = 30;
/** Offers past the principals' shares the whole proxy may make per {@link SIGN_IN_TTL_MS}. */
export const SIGN_INS_TOTAL = 10_000;

/** A sign-in as started: what the bind and the callback need. */
export interface PendingFlow extends EntrySource {
  readonly principalKey: string;
  readonly server: string;
  readonly dynamic: boolean;
  readonly verifier: string;
  /** `PUBLIC_URL/oauth/callback/{issuer-key}`: the one redirect URI of this issuer (F2). */
  readonly redirectUri: string;
  /** The authorization request without `state` (added at the bind). */
  readonly authorizeUrl: string;
  /** The digest of the one-time code offered with the link (user-codes.ts), if one was. */
  readonly userCodeHash?: string | undefined;
  /** When that code stops being accepted (ms). */
  readonly userCodeExpiresAt?: number | undefined;
  /** The OIDC issuer the user signs in to the proxy with to bind the link (proxy-login.ts), if any. */
  readonly loginIssuer?: string | undefined;
}

/** A bound sign-in, waiting for its callback. */
export interface BoundFlow extends PendingFlow {
  /** SHA-256 (base64url) of the nonce the binding tab keeps (sessionStorage, review R1). */
  readonly nonceHash: string;
  /**
   * The app that answered the bind (an origin listed in CORS_ORIGINS): the callback tells it.
   * Absent when the link was bound without an opener (a code, a sign-in to the proxy).
   */
  readonly openerOrigin?: string | undefined;
}

/** What a bind hands the browser. */
export interface Bound {
  readonly authorizeUrl: string;
  readonly state: string;
  readonly nonce: string;
}

/** Pending sign-ins in the store, keyed by hashes. */
export class PendingSignIns {
  readonly #store: Store;
  readonly #keys: VaultKeys;

  constructor(store: Store, keys: VaultKeys) {
    this.#store = store;
    this.#keys = keys;
  }

  /**
   * Counts a link offered to `principalKey` for the server at `origin`: at most
   * {@link SIGN_INS_PER_PRINCIPAL} per server ({@link STRANGER_OFFERS_PER_SERVER} for a server that
   * is not `known`); {@link STRANGER_OFFERS_PER_PRINCIPAL} over all
   * servers that are not `known` (configured by the operator, or connected by this principal);
   * {@link OFFERS_PER_PRINCIPAL} in all; past its {@link OFFERS_SHARE_PER_PRINCIPAL}, within the
   * proxy's {@link SIGN_INS_TOTAL}. Throws `oauth_sign_in_limited` past one. Called before discovery,
   * client registration and anything stored.
   */
  async admitOffer(principalKey: string, origin: string, known: boolean): Promise<void> {
    // Each counter counts this offer, then is compared (review7 CREDS-3: a look now and a
    // spend later let calls arriving together all pass). Its own prefix (review6 D4): a principal
    // key may hold a newline (an OIDC `sub`), so a digest of `key\norigin` under the
    // per-principal prefix could be another principal's count.
    const count = (key: string): Promise<WindowHit> => countOrRefuse(this.#store, key, SIGN_IN_TTL_MS);
    const server = await count(`server-offers:${digest(`${principalKey}\n${origin}`)}`);
    if (server.count > (known ? SIGN_INS_PER_PRINCIPAL : STRANGER_OFFERS_PER_SERVER))
      throw limited(server.resetInMs);
    if (!known) {
      const strangers = await count(`strangers:${digest(principalKey)}`);
      if (strangers.count > STRANGER_OFFERS_PER_PRINCIPAL) throw limited(strangers.resetInMs);
    }
    const mine = await count(`offers:${digest(principalKey)}`);
    if (mine.count > OFFERS_PER_PRINCIPAL) throw limited(mine.resetInMs);
    // Within its share a principal never meets (nor spends) the total: the store then holds at
    // most a share per principal plus the total.
    if (mine.count <= OFFERS_SHARE_PER_PRINCIPAL) return;
    const all = await count('count:all');
    if (all.count > SIGN_INS_TOTAL) throw limited(all.resetInMs);
  }

  /** Keeps `flow` under a new one-time link id, which it returns. */
  async start(flow: PendingFlow): Promise<string> {
    const id = randomBytes(18).toString('base64url');
    const slot = `start:${digest(id)}`;
    await this.#store.set(slot, seal(this.#keys, slot, JSON.stringify(flow)), SIGN_IN_TTL_MS);
    return id;
  }

  /** The sign-in behind a link id, without consuming it (the start page names the server). */
  async peek(id: string): Promise<PendingFlow | undefined> {
    return (await this.#read(`start:${digest(id)}`))?.flow;
  }

  /**
   * Consumes the link `id` when it belongs to `principalKey` and binds it: a fresh `state` and
   * nonce. Undefined when the link is unknown, used or expired; `wrongPrincipal` when it
   * is someone else's (the link stays for its owner). Throws `oauth_sign_in_limited` past the
   * principal's {@link SIGN_INS_PER_PRINCIPAL}.
   */
  async bind(
    id: string,
    principalKey: string,
    openerOrigin: string | undefined,
  ): Promise<Bound | 'wrongPrincipal' | undefined> {
    const slot = `start:${digest(id)}`;
    const read = await this.#read(slot);
    if (read === undefined) return undefined;
    if (!sameText(read.flow.principalKey, principalKey)) return 'wrongPrincipal';
    return this.#bound(slot, read, openerOrigin);
  }

  /**
   * Consumes the link `id` when `code` is the one-time code offered with it (typed by the user on
   * a start page that has no opener) and binds it for its own principal. Every try counts, in
   * the store (so across instances): the {@link USER_CODE_ATTEMPTS}th wrong one voids the link.
   * Throws `oauth_state_invalid` (unknown, used, expired link; no code offered, or expired),
   * `oauth_code_invalid` (wrong code: `data.attemptsLeft`), `oauth_sign_in_limited`.
   */
  async bindByCode(id: string, code: string, now: number): Promise<Bound> {
    const slot = `start:${digest(id)}`;
    const read = await this.#read(slot);
    const { userCodeHash, userCodeExpiresAt } = read?.flow ?? {};
    if (read === undefined || userCodeHash === undefined) throw new ProxyError('oauth_state_invalid');
    if (userCodeExpiresAt === undefined || userCodeExpiresAt <= now) {
      throw new ProxyError(
        'oauth_state_invalid',
        "This sign-in link's code has expired: retry the call in your app for a new link and code.",
      );
    }
    // Counted before the comparison, so parallel guesses are bounded too.
    const tries = await countOrRefuse(this.#store, `code-tries:${digest(id)}`, SIGN_IN_TTL_MS);
    const attemptsLeft = USER_CODE_ATTEMPTS - tries.count;
    if (attemptsLeft < 0) throw new ProxyError('oauth_state_invalid');
    if (!sameText(userCodeHash, userCodeDigest(code))) {
      if (attemptsLeft === 0) await this.#store.deleteIf(slot, read.sealed);
      throw new ProxyError('oauth_code_invalid', undefined, { data: { attemptsLeft } });
    }
    const bound = await this.#bound(slot, read, undefined);
    if (bound === undefined) throw new ProxyError('oauth_state_invalid');
    return bound;
  }

  /** Binds a link read from `slot` (its principal checked): quota, single use, state and nonce. */
  async #bound(
    slot: string,
    read: { flow: PendingFlow; sealed: string },
    openerOrigin: string | undefined,
  ): Promise<Bound | undefined> {
    const { principalKey } = read.flow;
    // The principal's quota counts the sign-ins it goes on with (review item 8); a refusal here
    // leaves the link for later.
    const mine = await countOrRefuse(this.#store, `count:${digest(principalKey)}`, SIGN_IN_TTL_MS);
    if (mine.count > SIGN_INS_PER_PRINCIPAL) throw limited(mine.resetInMs);
    // Single use: of two racing binds only the one that removes the link goes on.
    if (!(await this.#store.deleteIf(slot, read.sealed))) return undefined;
    const state = randomBytes(24).toString('base64url');
    const nonce = randomBytes(24).toString('base64url');
    const bound: BoundFlow = {
      ...read.flow,
      nonceHash: digest(nonce),
      ...(openerOrigin === undefined ? {} : { openerOrigin }),
    };
    const stateSlot = `state:${digest(state)}`;
    await this.#store.set(stateSlot, seal(this.#keys, stateSlot, JSON.stringify(bound)), SIGN_IN_TTL_MS);
    const authorize = new URL(read.flow.authorizeUrl);
    authorize.searchParams.set('state', state);
    return { authorizeUrl: authorize.href, state, nonce };
  }

  /**
   * The bound sign-in of `state`, consumed, when `nonce` (what the binding tab kept) is the one
   * bound into it; undefined otherwise (unknown, used, expired, or another tab). A wrong nonce
   * does not consume it: the tab that bound it can still finish.
   */
  async take(state: string, nonce: string | undefined): Promise<BoundFlow | undefined> {
    if (state === '' || nonce === undefined || nonce === '') return undefined;
    const slot = `state:${digest(state)}`;
    const read = await this.#read(slot);
    if (read === undefined) return undefined;
    const flow = read.flow as BoundFlow;
    if (typeof flow.nonceHash !== 'string' || !sameText(flow.nonceHash, digest(nonce))) return undefined;
    return (await this.#store.deleteIf(slot, read.sealed)) ? flow : undefined;
  }

  async #read(slot: string): Promise<{ flow: PendingFlow; sealed: string } | undefined> {
    const sealed = await this.#store.get(slot);
    if (sealed === undefined) return undefined;
    const plain = open(this.#keys, slot, sealed);
    if (plain === undefined) return undefined;
    try {
      return { flow: JSON.parse(plain) as PendingFlow, sealed };
    } catch {
      return undefined;
    }
  }
}

/** `oauth_sign_in_limited`, telling when the cap met frees up (`Retry-After`). */
export function limited(resetInMs: number): ProxyError {
  return new ProxyError('oauth_sign_in_limited', undefined, {
    headers: { 'retry-after': String(Math.max(1, Math.ceil(resetInMs / 1000))) },
  });
}
