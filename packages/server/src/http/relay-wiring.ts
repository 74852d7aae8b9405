/**
 * @module http/relay-wiring
 * `buildRelay(config, deps)` assembles what lets any instance serve any request (issue 19): the
 * registry of which instance holds which session, the relay to it over the shared store, and the
 * sealer of session ids under a key every instance shares. With an embedded store (SQLite,
 * memory) no other process can lead here: nothing is written to the store before it is needed,
 * the relay never relays, and the sealer key is the process's own (or `SESSION_SECRET`).
 * With `SESSION_SECRET`, relay messages are sealed (http/relay-box.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { throttledWarning } from '../observability/throttled-warning.ts';
import type { Tracing } from '../observability/tracing.ts';
import type { HeldSession } from '../sessions/held-session.ts';
import { SessionOwnership } from '../sessions/ownership.ts';
import { configuredSecrets, SharedSealerKey } from '../sessions/sealer-key.ts';
import { SessionIdSealer } from '../sessions/session-id-sealer.ts';
import type { SessionStore } from '../sessions/store.ts';
import { type StoreSettings, storeKind } from '../store/open-store.ts';
import { namespaced, type Store } from '../store/store.ts';
import { type Inject, Relay } from './relay.ts';
import { relayBox } from './relay-box.ts';
import type { RelayLimits } from './relay-quota.ts';

/** How long start-up waits for the store's subscriptions before serving anyway. */
const START_WAIT_MS = 2_000;

/** The settings the relay's parts read. */
interface RelaySettings extends StoreSettings {
  readonly sessionSecret?: string | undefined;
  readonly sessionSecretPrevious: readonly string[];
}

/** What an app's caller may say of the relay (`AppDeps` carries it). */
export interface RelayAppDeps {
  /** Bounds other than the relay's defaults (tests: small enough to reach). */
  readonly relayLimits?: Partial<RelayLimits>;
}

/** What the relay's parts take from the app. */
export interface RelayWiringDeps extends RelayAppDeps {
  /** The app whose routes run the requests relayed here. */
  readonly app: FastifyInstance;
  readonly store: Store;
  /** True when the store is not the one the config names (a test's, or a worker's cluster store). */
  readonly storeGiven: boolean;
  readonly sessions: SessionStore<HeldSession>;
  readonly logger: Logger;
  /** A client span per relay hop while tracing is on (issue 21). */
  readonly tracing?: Tracing;
}

/** The relay's parts, for one app. */
export interface RelayWiring {
  readonly ownership: SessionOwnership;
  readonly relay: Relay;
  readonly sealer: SessionIdSealer;
  /** True when other instances share the store (Redis, the workers' cluster store, a test's). */
  readonly shared: boolean;
  /** True while the sealing key shared with the other instances is not known (`/ready` 503). */
  starting(): boolean;
  /** Waits (at most `boundMs`) for the requests other instances relayed here (a drain). */
  quiet(boundMs: number): Promise<void>;
  /** Other instances stop relaying here, and what they relayed (or this one did) ends now. */
  close(): Promise<void>;
}

/** Builds and starts the session ownership registry, the relay and the session id sealer. */
export async function buildRelay(config: RelaySettings, deps: RelayWiringDeps): Promise<RelayWiring> {
  const { app, store, sessions } = deps;
  const storeTrouble = throttledWarning(
    deps.logger,
    'shared store unreachable: sessions held elsewhere not found',
  );
  const ownership = new SessionOwnership({
    store: namespaced(store, 'instances:'),
    holdsLocally: (id) => sessions.has(id),
    onError: storeTrouble,
  });
  // Only a store other processes share can lead to another instance: with the embedded ones
  // (SQLite, memory) there is none, and nothing is written before it is needed.
  const shared = deps.storeGiven || !['sqlite', 'memory'].includes(storeKind(config));
  const relay = new Relay({
    store: namespaced(store, 'relay:'),
    ownership,
    inject: (options) => app.inject(options) as unknown as ReturnType<Inject>,
    onError: storeTrouble,
    active: shared,
    ...(deps.tracing ? { tracing: deps.tracing } : {}),
    box: relayBox(configuredSecrets(config)),
    limits: deps.relayLimits,
  });
  if (shared)
    await Promise.race([
      Promise.allSettled([ownership.start(), relay.start()]),
      new Promise((resolve) => setTimeout(resolve, START_WAIT_MS).unref()),
    ]);
  const sealer = new SessionIdSealer(configuredSecrets(config));
  // Without SESSION_SECRET, instances sharing a store seal under a key kept there.
  const sealerKey =
    shared && config.sessionSecret === undefined
      ? new SharedSealerKey({ store: namespaced(store, 'sessions:'), sealer, onError: storeTrouble })
      : undefined;
  await sealerKey?.start();
  return {
    ownership,
    relay,
    sealer,
    shared,
    starting: () => sealerKey?.known === false,
    quiet: (boundMs) => relay.quiet(boundMs),
    close: async () => {
      sealerKey?.close();
      await ownership.close();
      await relay.close();
    },
  };
}
