/**
 * @module credentials/broker-means
 * What every part of the upstream OAuth broker works with (the vault, registration, refresh,
 * connections, the proxy login): one namespaced store, the keys that seal all it keeps there,
 * and the fetch its OAuth calls go through.
 */
import type { Store } from '../store/store.ts';
import type { VaultKeys } from '../store/vault-keys.ts';
import type { OAuthFetch } from './guarded-fetch.ts';

/** The broker's store, its sealing keys, and the fetch of one part's OAuth calls. */
export interface BrokerMeans {
  /** The broker's own view of the shared store (namespaced). */
  readonly store: Store;
  /** Seal everything the broker keeps in the store (tokens, pending sign-ins, clients, indexes). */
  readonly keys: VaultKeys;
  /**
   * The part's HTTP calls: through the egress guard towards what callers' servers name
   * (guardedFetch), or to an identity provider the operator configured (trustedFetch).
   */
  readonly fetch: OAuthFetch;
}
