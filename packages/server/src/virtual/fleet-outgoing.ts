/**
 * @module virtual/fleet-outgoing
 * What virtual servers' messages hold on their way to the shared store (fleet-streams.ts),
 * counted per principal in two lanes so that one never crowds out the other: its members'
 * messages (notifications, offered server requests) and its clients' (answers, which the proxy
 * accepted whole, and session ends and requests taken).
 */

/** Whose bytes a message counts against. */
export type Lane = 'member' | 'client';

/** Bytes on their way to the store, bounded per principal and lane, and in all. */
export class OutgoingBytes {
  readonly #bounds: Readonly<Record<Lane, number>>;
  readonly #totalBytes: number;
  /** By lane and principal. */
  readonly #held = new Map<string, number>();
  #total = 0;

  /** @param totalBytes the bound of every lane together (never below one lane's own). */
  constructor(bounds: Readonly<Record<Lane, number>>, totalBytes: number) {
    this.#bounds = bounds;
    this.#totalBytes = totalBytes;
  }

  /** Counts `bytes` of `principalKey`'s in `lane`: what gives them back, or undefined past a bound. */
  take(principalKey: string, lane: Lane, bytes: number): (() => void) | undefined {
    const bound = this.#bounds[lane];
    const key = `${lane}\n${principalKey}`;
    const held = this.#held.get(key) ?? 0;
    if (held + bytes > bound || this.#total + bytes > Math.max(this.#totalBytes, bound)) return undefined;
    this.#held.set(key, held + bytes);
    this.#total += bytes;
    return () => {
      const left = (this.#held.get(key) ?? bytes) - bytes;
      if (left > 0) this.#held.set(key, left);
      else this.#held.delete(key);
      this.#total -= bytes;
    };
  }
}
