/**
 * @module sessions/sealer-key
 * The secrets sealed session ids are sealed under (sessions/session-id-sealer.ts). With
 * `SESSION_SECRET` they come from the configuration. Without it, every instance sharing the store
 * must still open the ids any of them sealed (issue 19: no affinity), so the first instance
 * generates a key and keeps it in the store, and every other one reads it from there. Whoever can
 * read the store can then open sealed ids (they hold an upstream's session id, which the store's
 * readers can see in far more ways): an operator who wants the key out of the store sets
 * `SESSION_SECRET` (recommended with several instances: nothing to lose with the store). With an
 * embedded store no other process shares (app.ts asks only then), the key is the process's own,
 * as before; with a shared store that does not answer, it is too until the store answers, and
 * the instance is not ready meanwhile.
 */
import { randomBytes } from 'node:crypto';
import type { Store } from '../store/store.ts';
import type { SessionIdSealer } from './session-id-sealer.ts';

/** The store key (under the caller's namespace). */
const KEY = 'sealer-key';

/** The secrets settings. */
interface SecretSettings {
  readonly sessionSecret?: string | undefined;
  readonly sessionSecretPrevious: readonly string[];
}

/** The configured secrets, newest first; `[]` (a per-process key) without `SESSION_SECRET`. */
export function configuredSecrets(configured: SecretSettings): string[] {
  return configured.sessionSecret === undefined
    ? []
    : [configured.sessionSecret, ...configured.sessionSecretPrevious];
}

/** How often the shared key is looked for (not known yet) or checked (known). */
export const SEALER_KEY_CHECK_MS = 3_000;

/** What {@link SharedSealerKey} needs. */
export interface SharedSealerKeyDeps {
  /** A namespaced view of the shared store. */
  readonly store: Store;
  /** Seals with the shared key once it is known. */
  readonly sealer: SessionIdSealer;
  /** Hears store failures (throttled by the caller). */
  readonly onError: (error: Error) => void;
  readonly checkEveryMs?: number;
}

/**
 * The key every instance sharing the store seals session ids under, when `SESSION_SECRET` is
 * not set. Until it is known (the store did not answer at start) the instance seals with a key
 * of its own that no other instance opens, so it is not ready (`/ready` 503) and keeps asking.
 * Once known it is checked each {@link SEALER_KEY_CHECK_MS}: a store that lost it (a Redis
 * restarted without persistence) gets it back from memory before a new instance would write
 * another; one holding another key (written while this one could not) has it adopted, the
 * previous one still opening what it sealed.
 */
export class SharedSealerKey {
  readonly #deps: SharedSealerKeyDeps;
  #known: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #checking = false;

  constructor(deps: SharedSealerKeyDeps) {
    this.#deps = deps;
  }

  /** Whether the shared key is known (the instance's sealed ids open on every instance). */
  get known(): boolean {
    return this.#known !== undefined;
  }

  /** Looks for the key once, then keeps checking in the background. */
  async start(): Promise<void> {
    await this.#check();
    this.#timer = setInterval(() => void this.#check(), this.#deps.checkEveryMs ?? SEALER_KEY_CHECK_MS);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
  }

  async #check(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    const { store, sealer, onError } = this.#deps;
    try {
      // The first instance to start writes it; the others (and restarts) find it there; one that
      // knew it writes it back when the store lost it.
      await store.setIfAbsent(KEY, this.#known ?? randomBytes(32).toString('base64url'));
      const shared = await store.get(KEY);
      if (shared !== undefined && shared !== this.#known) {
        sealer.adopt(shared);
        this.#known = shared;
      }
    } catch (error) {
      onError(error as Error);
    } finally {
      this.#checking = false;
    }
  }
}
