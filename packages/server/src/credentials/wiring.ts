/**
 * @module credentials/wiring
 * `buildBroker(config, deps)` assembles the upstream OAuth broker (issue 18) for the app: tokens
 * sealed in the shared store under `oauth:`, every call to what a server names through the egress
 * guard (the operator's login issuers are trusted, like the OIDC verifier's); it acts only
 * with PUBLIC_URL set (the callback must be reachable) unless OAUTH_BROKER=false.
 */
import { brokerSwitchedOn, loginIssuers } from '../config/broker-switch.ts';
import type { Config } from '../config/config.ts';
import type { EgressGuard } from '../egress/types.ts';
import type { Tracing } from '../observability/tracing.ts';
import { storeKind } from '../store/open-store.ts';
import { namespaced, type Store } from '../store/store.ts';
import { VaultKeys } from '../store/vault-keys.ts';
import { OAuthBroker, oauthSettingsOf } from './broker.ts';
import { guardedFetch, type OAuthFetch, trustedFetch } from './guarded-fetch.ts';
import { tracedFetch } from './traced-fetch.ts';

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

/** Builds the app's upstream OAuth broker. */
export function buildBroker(config: Config, deps: BrokerWiring): OAuthBroker {
  const traced = (fetch: OAuthFetch) =>
    deps.tracing?.enabled === true ? tracedFetch(fetch, deps.tracing) : fetch;
  return new OAuthBroker({
    store: namespaced(deps.store, 'oauth:'),
    keys: deps.keys,
    fetch: traced(guardedFetch(deps.guard)),
    // The operator's own identity providers, like the OIDC verifier's (review6 LINKS-1).
    loginFetch: traced(trustedFetch()),
    switchedOn: () => brokerSwitchedOn(deps.settings()),
    publicUrl: deps.publicUrl,
    server: (name) => {
      const servers = deps.servers();
      return Object.hasOwn(servers, name) ? oauthSettingsOf(servers[name]) : undefined;
    },
    issuerClients: () => deps.settings().oauthClients,
    loginIssuers: () => loginIssuers(deps.settings()),
    userCodes: () => deps.settings().oauthUserCodes,
    // Each call of the flow has the upstream deadline (UPSTREAM_TIMEOUT_MS, a restart setting).
    timeoutMs: () => config.upstream.timeoutMs,
    now: deps.now,
  });
}
