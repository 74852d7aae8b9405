/**
 * @module http/relay-quota
 * What each side of http/relay.ts may hold at once (issue 19, review 6 item 3, review 7 RELAY-1):
 * exchanges in all and per principal (relayed out from here; run here for others, counted apart),
 * and, on the relaying side, answer bytes received but not yet taken by their callers, in all
 * and per principal (review 7, RELAY-3). A request beyond any of them is answered `relay_interrupted` (503, retry after a
 * second): its session still exists on its owner, so it is never "not found" here.
 */
import { ProxyError } from '../errors.ts';

/** The relay's bounds, both sides; every default in {@link RELAY_LIMITS}. */
export interface RelayLimits {
  /** Exchanges each side keeps at once (relayed out from here; run here for others). */
  readonly maxExchanges: number;
  /** Exchanges one principal may have at once (relayed out from here; run here for others). */
  readonly maxExchangesPerPrincipal: number;
  /** Answer bytes held here for callers, across every exchange relayed out from here. */
  readonly maxHeldBytes: number;
  /** The share of {@link maxHeldBytes} one principal's exchanges may hold (review 7, RELAY-3). */
  readonly maxHeldBytesPerPrincipal: number;
  /**
   * Sending instances (per boot) an owner remembers sealed opens of, against replay, each until
   * twice the seal's freshness after its last open (http/relay-senders.ts); past it, a new
   * sender's opens are refused (retry) rather than forgetting one that could be replayed
   * (review 7 RELAY-6, review 8 SHARED-1). Callers cannot fill it: only instances are senders.
   */
  readonly maxRelaySenders: number;
  /** The owner's answer bytes in one part (one published message). */
  readonly partBytes: number;
  /** The owner's answer bytes of one exchange published and not yet acknowledged. */
  readonly windowBytes: number;
  /** The owner's answer bytes published and not yet acknowledged, across its exchanges. */
  readonly inFlightBytes: number;
}

/** The defaults (tests inject smaller ones through `AppDeps.relayLimits`). */
export const RELAY_LIMITS: RelayLimits = {
  maxExchanges: 10_000,
  maxExchangesPerPrincipal: 1_000,
  maxHeldBytes: 128 * 1_048_576,
  maxHeldBytesPerPrincipal: 32 * 1_048_576,
  maxRelaySenders: 1_024,
  partBytes: 256 * 1_024,
  windowBytes: 1_048_576,
  inFlightBytes: 4 * 1_048_576,
};

/** What a caller whose relayed request was interrupted is told to wait before retrying. */
const RETRY_AFTER_SECONDS = 1;

/** The error of a relayed request that could not be (or was not) seen through: retry. */
export function relayInterrupted(): ProxyError {
  return new ProxyError('relay_interrupted', undefined, {
    headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
    data: { retryAfterSeconds: RETRY_AFTER_SECONDS },
  });
}

/** What one principal has under way on one side. */
interface PrincipalUse {
  exchanges: number;
  heldBytes: number;
}

/** Counts one side's exchanges and held bytes, in all and per principal, against {@link RelayLimits}. */
export class RelayQuota {
  readonly #limits: RelayLimits;
  /** Principals with an exchange under way (an entry goes with its last exchange). */
  readonly #perPrincipal = new Map<string, PrincipalUse>();
  #exchanges = 0;
  #heldBytes = 0;

  constructor(limits: RelayLimits) {
    this.#limits = limits;
  }

  /** Takes one exchange for `principalKey`; throws `relay_interrupted` when any bound is reached. */
  enter(principalKey: string): void {
    if (!this.admits(principalKey)) throw relayInterrupted();
  }

  /** Takes one exchange for `principalKey` if no bound is reached; false (nothing taken) if one is. */
  admits(principalKey: string): boolean {
    const mine = this.#perPrincipal.get(principalKey);
    const limits = this.#limits;
    // The principal's own bounds first: past them, one principal cannot use up the totals.
    if (
      (mine !== undefined &&
        (mine.exchanges >= limits.maxExchangesPerPrincipal ||
          mine.heldBytes >= limits.maxHeldBytesPerPrincipal)) ||
      this.#exchanges >= limits.maxExchanges ||
      this.#heldBytes >= limits.maxHeldBytes
    )
      return false;
    this.#exchanges++;
    if (mine === undefined) this.#perPrincipal.set(principalKey, { exchanges: 1, heldBytes: 0 });
    else mine.exchanges++;
    return true;
  }

  /** Gives back an exchange {@link enter} took (after its held bytes). */
  leave(principalKey: string): void {
    const mine = this.#perPrincipal.get(principalKey);
    if (mine === undefined) return;
    this.#exchanges--;
    mine.exchanges--;
    if (mine.exchanges <= 0) this.#perPrincipal.delete(principalKey);
  }

  /**
   * Changes the bytes one of `principalKey`'s exchanges holds by `delta`; false (and nothing
   * taken) when growing would pass {@link RelayLimits.maxHeldBytes} or the principal's share.
   */
  hold(principalKey: string, delta: number): boolean {
    const mine = this.#perPrincipal.get(principalKey);
    if (mine === undefined) return delta <= 0;
    const limits = this.#limits;
    if (
      delta > 0 &&
      (this.#heldBytes + delta > limits.maxHeldBytes ||
        mine.heldBytes + delta > limits.maxHeldBytesPerPrincipal)
    )
      return false;
    this.#heldBytes += delta;
    mine.heldBytes += delta;
    return true;
  }
}
