/**
 * @module http/relay-quota
 * What the relaying side of http/relay.ts may hold at once (issue 19, review 6 item 3): exchanges
 * in all and per principal, and answer bytes received but not yet taken by their callers, across
 * exchanges. A request beyond any of them is answered `relay_interrupted` (503, retry after a
 * second): its session still exists on its owner, so it is never "not found" here.
 */
import { ProxyError } from '../errors.ts';

/** The relay's bounds, both sides; every default in {@link RELAY_LIMITS}. */
export interface RelayLimits {
  /** Exchanges each side keeps at once (relayed out from here; run here for others). */
  readonly maxExchanges: number;
  /** Exchanges one principal may have relayed out from here at once. */
  readonly maxExchangesPerPrincipal: number;
  /** Answer bytes held here for callers, across every exchange relayed out from here. */
  readonly maxHeldBytes: number;
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

/** Counts the relaying side's exchanges (per principal) and held bytes against {@link RelayLimits}. */
export class RelayQuota {
  readonly #limits: RelayLimits;
  readonly #perPrincipal = new Map<string, number>();
  #exchanges = 0;
  #heldBytes = 0;

  constructor(limits: RelayLimits) {
    this.#limits = limits;
  }

  /** Takes one exchange for `principalKey`; throws `relay_interrupted` when any bound is reached. */
  enter(principalKey: string): void {
    const mine = this.#perPrincipal.get(principalKey) ?? 0;
    const limits = this.#limits;
    if (
      this.#exchanges >= limits.maxExchanges ||
      mine >= limits.maxExchangesPerPrincipal ||
      this.#heldBytes >= limits.maxHeldBytes
    )
      throw relayInterrupted();
    this.#exchanges++;
    this.#perPrincipal.set(principalKey, mine + 1);
  }

  /** Gives back an exchange {@link enter} took. */
  leave(principalKey: string): void {
    this.#exchanges--;
    const mine = (this.#perPrincipal.get(principalKey) ?? 1) - 1;
    if (mine <= 0) this.#perPrincipal.delete(principalKey);
    else this.#perPrincipal.set(principalKey, mine);
  }

  /**
   * Changes the bytes one exchange holds by `delta`; false (and nothing taken) when growing
   * would pass {@link RelayLimits.maxHeldBytes}.
   */
  hold(delta: number): boolean {
    if (delta > 0 && this.#heldBytes + delta > this.#limits.maxHeldBytes) return false;
    this.#heldBytes += delta;
    return true;
  }
}
