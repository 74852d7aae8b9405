/**
 * @module identity/mint-records
 * Who minted each token (issue 17 review), by `jti`, kept in the shared store as long as the token
 * lives: a revocation is for the admin that minted the token (or an unrestricted admin), and an id
 * no token was minted with is refused rather than recorded as revoked for a day.
 */
import { parseJsonObject } from '../json-object.ts';
import { readOrRefuse, type Store, storeFailure } from '../store/store.ts';

/** What is kept about one minted token. */
export interface MintRecord {
  /** The minter's principal key (`static:<sha256>`), or `cli` for `npm run token`. */
  readonly by: string;
  /** When the token expires (ms since the epoch). */
  readonly until: number;
}

/** The minter recorded for `npm run token`'s tokens: only an unrestricted admin revokes them. */
export const CLI_MINTER = 'cli';

/** Extra time a record is kept past the token's expiry, for clock differences between instances. */
const KEEP_PAST_EXPIRY_MS = 60_000;

/** Mint records in the shared store (pass a `minted:` namespace of it). */
export class MintRecords {
  readonly #store: Store;
  readonly #now: () => number;

  constructor(store: Store, now: () => number = Date.now) {
    this.#store = store;
    this.#now = now;
  }

  /** Records that `by` minted token `id`, valid until `until`; `store_unavailable` (or `store_full`) if it cannot. */
  async record(id: string, by: string, until: number): Promise<void> {
    const value: MintRecord = { by, until };
    try {
      await this.#store.set(
        id,
        JSON.stringify(value),
        Math.max(1_000, until - this.#now() + KEEP_PAST_EXPIRY_MS),
      );
    } catch (error) {
      throw storeFailure(error);
    }
  }

  /** The record of token `id`, or `undefined` when none was minted with it (or it expired). */
  async lookup(id: string): Promise<MintRecord | undefined> {
    const text = await readOrRefuse(this.#store, id);
    if (text === undefined) return undefined;
    const value = parseJsonObject(text) as Partial<MintRecord> | undefined;
    // Not a record this code wrote: treated as absent.
    if (typeof value?.by !== 'string' || typeof value.until !== 'number') return undefined;
    return { by: value.by, until: value.until };
  }
}
