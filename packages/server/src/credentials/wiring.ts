/**
 * @module credentials/wiring
 * `buildBroker(config, deps)` assembles the upstream OAuth broker (issue 18) for the app: tokens
 * sealed in the shared store under `oauth:`, every call through the egress guard; it acts only
 * with OAUTH_BROKER on and PUBLIC_URL set (the callback must be reachable).
 */
import type { Config } from '../config/config.ts';
import type { EgressGuard } from '../egress/types.ts';
import { storeKind } from '../store/open-store.ts';
import { namespaced, type Store } from '../store/store.ts';
import { OAuthBroker, oauthSettingsOf } from './broker.ts';
import { guardedFetch } from './guarded-fetch.ts';
import { VaultKeys } from './vault-keys.ts';

/** What the broker takes from the app; the getters read the configuration in force. */
export interface BrokerWiring {
  /** The shared store (the broker keeps its part under `oauth:`). */
  readonly store: Store;
  readonly guard: EgressGuard;
  /** OAUTH_BROKER now. */
  readonly switchedOn: () => boolean;
  /** PUBLIC_URL now. */
  readonly publicUrl: () => string | undefined;
  /** The configured servers now. */
  readonly servers: () => Config['servers'];
  readonly now: () => number;
}

/** Builds the app's upstream OAuth broker. */
export function buildBroker(config: Config, deps: BrokerWiring): OAuthBroker {
  return new OAuthBroker({
    store: namespaced(deps.store, 'oauth:'),
    keys: new VaultKeys({
      vaultKeys: config.vaultKeys,
      dataDir: config.dataDir,
      ephemeral: storeKind(config) === 'memory',
    }),
    fetch: guardedFetch(deps.guard),
    switchedOn: deps.switchedOn,
    publicUrl: deps.publicUrl,
    server: (name) => {
      const servers = deps.servers();
      return Object.hasOwn(servers, name) ? oauthSettingsOf(servers[name]) : undefined;
    },
    now: deps.now,
  });
}
