/**
 * @module credentials/wiring
 * `buildBroker(config, deps)` assembles the upstream OAuth broker (issue 18) for the app: tokens
 * sealed in the shared store under `oauth:`, every call through the egress guard; it acts only
 * with PUBLIC_URL set (the callback must be reachable) unless OAUTH_BROKER=false.
 */
import type { Config } from '../config/config.ts';
import type { EgressGuard } from '../egress/types.ts';
import type { Tracing } from '../observability/tracing.ts';
import { storeKind } from '../store/open-store.ts';
import { namespaced, type Store } from '../store/store.ts';
import { OAuthBroker, oauthSettingsOf } from './broker.ts';
import { guardedFetch } from './guarded-fetch.ts';
import { tracedFetch } from './traced-fetch.ts';
import { VaultKeys } from './vault-keys.ts';

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

/**
 * Whether the operator wants the broker (issue 18's default): OAUTH_BROKER when set, else on
 * exactly when PUBLIC_URL is set, since without it no sign-in link or callback can exist.
 */
export function brokerSwitchedOn(config: Pick<Config, 'oauthBroker' | 'publicUrl'>): boolean {
  return config.oauthBroker ?? config.publicUrl !== undefined;
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
  return new OAuthBroker({
    store: namespaced(deps.store, 'oauth:'),
    keys: deps.keys,
    fetch:
      deps.tracing?.enabled === true
        ? tracedFetch(guardedFetch(deps.guard), deps.tracing)
        : guardedFetch(deps.guard),
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

/**
 * The issuers with the proxy's login client (`oidc.issuers[].login`, or `OIDC_LOGIN_CLIENT_ID`
 * for `OIDC_ISSUER`): users of these sign in to the proxy to bind an upstream sign-in link.
 */
export function loginIssuers(
  config: Config,
): { readonly issuer: string; readonly clientId: string; readonly clientSecret?: string | undefined }[] {
  const { issuer, loginClientId, loginClientSecret, issuers } = config.oidc;
  const listed = issuers.flatMap((entry) =>
    entry.login === undefined || (entry.issuer === issuer && loginClientId !== undefined)
      ? []
      : [{ issuer: entry.issuer, ...entry.login }],
  );
  if (issuer === undefined || loginClientId === undefined) return listed;
  const secret = loginClientSecret === undefined ? {} : { clientSecret: loginClientSecret };
  return [...listed, { issuer, clientId: loginClientId, ...secret }];
}
