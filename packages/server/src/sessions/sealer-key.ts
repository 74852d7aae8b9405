/**
 * @module sessions/sealer-key
 * The secrets sealed session ids are sealed under (sessions/session-id-sealer.ts). With
 * `SESSION_SECRET` they come from the configuration. Without it, every instance sharing the store
 * must still open the ids any of them sealed (issue 19: no affinity), so the first instance
 * generates a key and keeps it in the store, and every other one reads it from there. Whoever can
 * read the store can then open sealed ids (they hold an upstream's session id, which the store's
 * readers can see in far more ways): an operator who wants the key out of the store sets
 * `SESSION_SECRET`. Without a store that answers, or with an embedded one no other process
 * shares (app.ts asks only then), the key is the process's own, as before.
 */
import { randomBytes } from 'node:crypto';
import type { Store } from '../store/store.ts';

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

/** The configured secrets, newest first, or the store's shared key; `[]`: a per-process key. */
export async function sealerSecrets(
  configured: SecretSettings,
  store: Store,
  onError: (error: Error) => void,
): Promise<string[]> {
  if (configured.sessionSecret !== undefined) return configuredSecrets(configured);
  try {
    // The first instance to start writes it; the others (and restarts) find it there.
    await store.setIfAbsent(KEY, randomBytes(32).toString('base64url'));
    const shared = await store.get(KEY);
    return shared === undefined ? [] : [shared];
  } catch (error) {
    onError(error as Error);
    return [];
  }
}
