/**
 * @module app-deps
 * What a caller of `buildApp` (app.ts) may inject: tests pass their own collaborators (a store,
 * a clock, a resolver, log and audit sinks); production takes the defaults.
 */
import type { DestinationStream } from 'pino';
import type { Clock } from './clock.ts';
import type { Resolver } from './egress/types.ts';
import type { RelayAppDeps } from './http/relay-wiring.ts';
import type { AuditDestination } from './identity/audit-trail.ts';
import type { BearerVerifier } from './identity/authenticator.ts';
import type { RateStore } from './limits/rate-store.ts';
import type { Store } from './store/store.ts';
import type { ChildRegistry } from './upstream/child-registry.ts';

/** Injectable collaborators (tests use them; production takes the defaults). */
export interface AppDeps extends RelayAppDeps {
  /** Where log lines go (default: stdout). */
  readonly logDestination?: DestinationStream;
  /** DNS resolver for the egress guard. */
  readonly resolver?: Resolver;
  /** Registry of live stdio children; main.ts passes its own to kill them on a forced exit. */
  readonly children?: ChildRegistry;
  /** The built browser client served at /client/mcp-proxy-client.js (default: packages/client/dist). */
  readonly clientBundlePath?: string;
  /** The shared store, instead of the one the config names (tests). The app closes it. */
  readonly store?: Store;
  /** Where rate-limit counters live, instead of the store (tests: a slow store). */
  readonly rateStore?: RateStore;
  /** More bearer-token verifiers (OIDC), tried for JWTs the proxy did not mint. */
  readonly bearerVerifiers?: readonly BearerVerifier[];
  /**
   * Time for rate windows, idle sessions and caches (default: the system clock). Tests pass one
   * they can move forward, instead of sleeping; a Redis store keeps Redis's own time.
   */
  readonly clock?: Clock;
  /** How the OIDC verifier reads discovery documents and key sets (default: bounded `fetch`). */
  readonly oidcFetch?: (url: string) => Promise<unknown>;
  /** Where audit lines go instead of `AUDIT_LOG`'s stdout or file (tests: a slow sink). */
  readonly auditDestination?: AuditDestination;
}
