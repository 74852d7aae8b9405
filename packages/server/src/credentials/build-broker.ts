/**
 * @module credentials/build-broker
 * `buildBroker(config, deps)` assembles the upstream OAuth broker (issue 18) for the app: tokens
 * sealed in the shared store under `oauth:`, every call to what a server names through the egress
 * guard (the operator's login issuers are trusted, like the OIDC verifier's). Loaded by
 * {@link BrokerHolder} (credentials/wiring.ts) only once a configuration runs the broker.
 */
import { brokerSwitchedOn, loginIssuers } from '../config/broker-switch.ts';
import type { Config } from '../config/config.ts';
import { namespaced } from '../store/store.ts';
import { OAuthBroker, oauthSettingsOf } from './broker.ts';
import { guardedFetch, type OAuthFetch, trustedFetch } from './guarded-fetch.ts';
import { tracedFetch } from './traced-fetch.ts';
import type { BrokerWiring } from './wiring.ts';

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
