/**
 * @module identity/credential-holdings
 * What a minted credential holds open — `/ws` sockets, event streams, the proxy-held sessions it
 * opened — so that revoking the token ends them at once, and its expiry ends its sockets and
 * streams on time (issue 17): a socket authenticated once must not outlive the credential that
 * opened it. Held sessions outlive an expiry: they bind to the subject, whose next token goes on.
 */
import { type Clock, SYSTEM_CLOCK } from '../clock.ts';
import { ProxyError } from '../errors.ts';
import type { Principal } from './principal.ts';

/** Ends one holding, with the reason to give its peer. */
export type EndHolding = (error: ProxyError) => void;

interface Holding {
  readonly expiresAt: number;
  readonly end: EndHolding;
  /** Whether the credential's expiry ends it too (sockets, streams), or only its revocation. */
  readonly endsAtExpiry: boolean;
  readonly alive: (() => boolean) | undefined;
  readonly recheck: Recheck | undefined;
}

/** Verifies a holding's credential again: the refusal, or `undefined` while it is still good. */
export type Recheck = () => Promise<ProxyError | undefined>;

/** How a holding ends. */
export interface HoldOptions {
  /** Also end it when the credential expires (default true); false: only a revocation ends it. */
  readonly endsAtExpiry?: boolean;
  /** Names the holding: holding the same key again keeps one entry (a session used many times). */
  readonly key?: string;
  /**
   * Whether what is held still exists: checked at each sweep, so a session that ended by itself
   * does not keep its entry until the credential expires (up to 24 h of them otherwise).
   */
  readonly alive?: () => boolean;
  /** Verifies the credential again after a reload (a signing key dropped): refused, it ends. */
  readonly recheck?: Recheck | undefined;
  /**
   * The credential was verified before a reload that has re-verified the holdings already:
   * `recheck` runs as it is held.
   */
  readonly stale?: boolean | undefined;
}

/** How often expiries are checked. */
const SWEEP_EVERY_MS = 1_000;

/** Holdings by credential id. */
export class CredentialHoldings {
  readonly #byCredential = new Map<string, Map<unknown, Holding>>();
  readonly #now: () => number;
  readonly #revoked: (credentialId: string) => boolean;
  readonly #stop: () => void;

  /** @param revoked whether a credential is already known to be revoked (no store round trip). */
  constructor(clock: Clock = SYSTEM_CLOCK, revoked: (credentialId: string) => boolean = () => false) {
    this.#now = () => clock.now();
    this.#revoked = revoked;
    this.#stop = clock.every(SWEEP_EVERY_MS, () => this.#sweep());
  }

  /**
   * Records that `principal`'s credential holds something `end` closes; returns the release to
   * call when it closes by itself. A credential without an id or expiry (a static token) holds
   * nothing here: reloads end those. A credential revoked since it was checked (the caller
   * awaited rate limits, DNS, the store in between: the revocation found nothing to end) ends what
   * it would hold at once, before this returns. One that expired in between needs nothing here:
   * the next sweep ends it (and a bearer token may be accepted a little past its `exp`, by leeway).
   */
  hold(principal: Principal, end: EndHolding, options: HoldOptions = {}): () => void {
    const id = principal.credentialId;
    if (id === undefined || principal.expiresAt === undefined) return () => {};
    const endsAtExpiry = options.endsAtExpiry ?? true;
    if (this.#revoked(id)) {
      end(new ProxyError('token_revoked'));
      return () => {};
    }
    const holding = {
      expiresAt: principal.expiresAt,
      end,
      endsAtExpiry,
      alive: options.alive,
      recheck: options.recheck,
    };
    let map = this.#byCredential.get(id);
    if (!map) {
      map = new Map();
      this.#byCredential.set(id, map);
    }
    const own = map;
    const key = options.key ?? holding;
    own.set(key, holding);
    if (options.stale && holding.recheck) void this.#recheck(id, own, key, holding).catch(() => {});
    return () => {
      if (own.get(key) === holding) own.delete(key);
      if (own.size === 0 && this.#byCredential.get(id) === own) this.#byCredential.delete(id);
    };
  }

  /** Ends everything `credentialId` holds (its token was revoked). */
  endCredential(credentialId: string): void {
    const map = this.#byCredential.get(credentialId);
    if (!map) return;
    this.#byCredential.delete(credentialId);
    for (const holding of map.values()) holding.end(new ProxyError('token_revoked'));
  }

  /**
   * Verifies every holding's credential again (a reload changed the signing keys or issuers) and
   * ends those refused now, with the refusal (`token_invalid` for a dropped key).
   */
  async recheckAll(): Promise<void> {
    const checks: Promise<void>[] = [];
    for (const [id, map] of this.#byCredential) {
      for (const [key, holding] of map) {
        if (holding.recheck) checks.push(this.#recheck(id, map, key, holding));
      }
    }
    await Promise.all(checks);
  }

  /** Verifies one holding's credential again; ends the holding when it is refused now. */
  #recheck(id: string, map: Map<unknown, Holding>, key: unknown, holding: Holding): Promise<void> {
    return (holding.recheck as Recheck)().then((refusal) => {
      if (!refusal || map.get(key) !== holding) return;
      map.delete(key);
      if (map.size === 0 && this.#byCredential.get(id) === map) this.#byCredential.delete(id);
      holding.end(refusal);
    });
  }

  close(): void {
    this.#stop();
  }

  #sweep(): void {
    const now = this.#now();
    for (const [id, map] of this.#byCredential) {
      for (const [key, holding] of map) {
        if (holding.alive?.() === false) {
          map.delete(key);
          continue;
        }
        if (holding.expiresAt > now) continue;
        map.delete(key);
        if (holding.endsAtExpiry) holding.end(new ProxyError('token_expired'));
      }
      if (map.size === 0) this.#byCredential.delete(id);
    }
  }
}
