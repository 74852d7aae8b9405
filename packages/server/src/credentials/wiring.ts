/**
 * @module credentials/wiring
 * What the app holds of the upstream OAuth broker (issue 18): the vault's keys, and the broker
 * itself, loaded only once a configuration runs it (PUBLIC_URL set, OAUTH_BROKER not false: the
 * callback must be reachable), at start or when a reload asks for it (issue #16: start-up
 * memory). Until then the routes that serve a request find no broker, as they would find it off.
 */
import { brokerMayRun } from '../config/broker-switch.ts';
import type { Config } from '../config/config.ts';
import type { EgressGuard } from '../egress/types.ts';
import type { Tracing } from '../observability/tracing.ts';
import { storeKind } from '../store/open-store.ts';
import type { Store } from '../store/store.ts';
import { VaultKeys } from '../store/vault-keys.ts';
import type { OAuthBroker } from './broker.ts';

/** What the broker takes from the app; the getters read the configuration in force. */
export interface BrokerWiring {
  /** The shared store (the broker keeps its part under `oauth:`). */
  readonly store: Store;
  readonly guard: EgressGuard;
  /** The vault's keys ({@link vaultKeysFor}). */
  readonly keys: VaultKeys;
  /**
   * The configuration in force (a reload replaces it): OAUTH_BROKER, `oauthClients`,
   * OAUTH_USER_CODES and the OIDC login clients are read from it at each use.
   */
  readonly settings: () => Config;
  /** PUBLIC_URL now. */
  readonly publicUrl: () => string | undefined;
  /** The configured servers now. */
  readonly servers: () => Config['servers'];
  readonly now: () => number;
  /** OAuth calls as spans while tracing is on (issue 21). */
  readonly tracing?: Tracing;
}

/** The vault's keys: VAULT_KEY, else one generated under DATA_DIR (in memory with STORE=memory). */
export function vaultKeysFor(config: Config): VaultKeys {
  return new VaultKeys({
    vaultKeys: config.vaultKeys,
    dataDir: config.dataDir,
    ephemeral: storeKind(config) === 'memory',
  });
}

/**
 * The app's broker, loaded when first needed. `current` (synchronous, for the paths every request
 * takes) is undefined until then; the broker's own pages and `/oauth/connections`, rare and
 * asynchronous, load it on their first use whatever the configuration (what the store holds of an
 * earlier run with the broker on is theirs to show, as before).
 */
export class BrokerHolder {
  readonly #config: Config;
  readonly #deps: BrokerWiring;
  #current: OAuthBroker | undefined;
  #loading: Promise<OAuthBroker> | undefined;

  constructor(config: Config, deps: BrokerWiring) {
    this.#config = config;
    this.#deps = deps;
  }

  /** The broker, once loaded. */
  get current(): OAuthBroker | undefined {
    return this.#current;
  }

  /** Loads the broker (once) and resolves to it. */
  load(): Promise<OAuthBroker> {
    this.#loading ??= import('./build-broker.ts').then(({ buildBroker }) => {
      this.#current = buildBroker(this.#config, this.#deps);
      return this.#current;
    });
    return this.#loading;
  }

  /** Loads the broker when `config` runs it (at start, before a reload applies `config`). */
  async loadFor(config: Config): Promise<void> {
    if (brokerMayRun(config)) await this.load();
  }
}
