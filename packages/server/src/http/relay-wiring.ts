/**
 * @module http/relay-wiring
 * `buildRelay(config, deps)` assembles what lets any instance serve any request (issue 19): the
 * registry of which instance holds which session, the relay to it over the shared store, and the
 * sealer of session ids under a key every instance shares. With an embedded store (SQLite,
 * memory) no other process can lead here: nothing is written to the store before it is needed,
 * the relay never relays, and the sealer key is the process's own (or `SESSION_SECRET`).
 * With `SESSION_SECRET`, relay messages are sealed (http/relay-box.ts). The relay and the
 * ownership registry are loaded only with a store other processes share (start-up memory,
 * issue #16): the embedded stores get the local stand-in below, which relays nothing.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { throttledWarning } from '../observability/throttled-warning.ts';
import type { Tracing } from '../observability/tracing.ts';
import type { HeldSession } from '../sessions/held-session.ts';
import { newInstanceId } from '../sessions/instance-id.ts';
import { configuredSecrets, SharedSealerKey } from '../sessions/sealer-key.ts';
import { SessionIdSealer } from '../sessions/session-id-sealer.ts';
import type { SessionStore } from '../sessions/store.ts';
import { type StoreSettings, storeKind } from '../store/open-store.ts';
import { namespaced, type Store } from '../store/store.ts';
import type { Inject, Relay } from './relay.ts';
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

/** What the routes and the app use of the relay: its hooks. */
export type RelayHooks = Pick<Relay, 'hook' | 'trusting' | 'claim'>;

/** The relay's parts, for one app. */
export interface RelayWiring {
  /** This instance's id (sessions/instance-id.ts). */
  readonly instanceId: string;
  readonly relay: RelayHooks;
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

/**
 * With no store another process shares, no request can name state held elsewhere: the relay's
 * hooks pass every request on (what `Relay` does while inactive), and nothing is relayed here.
 */
const LOCAL_RELAY: RelayHooks = {
  hook: (_request, _reply, done) => done(),
  trusting: (authenticate) => authenticate,
  claim: (_request, _reply, payload, done) => done(null, payload),
};

/** Builds and starts the session ownership registry, the relay and the session id sealer. */
export async function buildRelay(config: RelaySettings, deps: RelayWiringDeps): Promise<RelayWiring> {
  // Only a store other processes share can lead to another instance: with the embedded ones
  // (SQLite, memory) there is none, and nothing is written before it is needed.
  const shared = deps.storeGiven || !['sqlite', 'memory'].includes(storeKind(config));
  const sealer = new SessionIdSealer(configuredSecrets(config));
  if (!shared)
    return {
      instanceId: newInstanceId(),
      relay: LOCAL_RELAY,
      sealer,
      shared,
      starting: () => false,
      quiet: async () => {},
      close: async () => {},
    };
  const { app, store, sessions } = deps;
  const [{ SessionOwnership }, { Relay }, { relayBox }] = await Promise.all([
    import('../sessions/ownership.ts'),
    import('./relay.ts'),
    import('./relay-box.ts'),
  ]);
  const storeTrouble = throttledWarning(
    deps.logger,
    'shared store unreachable: sessions held elsewhere not found',
  );
  const ownership = new SessionOwnership({
    store: namespaced(store, 'instances:'),
    holdsLocally: (id) => sessions.has(id),
    onError: storeTrouble,
  });
  const relay = new Relay({
    store: namespaced(store, 'relay:'),
    ownership,
    inject: (options) => app.inject(options) as unknown as ReturnType<Inject>,
    onError: storeTrouble,
    ...(deps.tracing ? { tracing: deps.tracing } : {}),
    box: relayBox(configuredSecrets(config)),
    limits: deps.relayLimits,
  });
  await Promise.race([
    Promise.allSettled([ownership.start(), relay.start()]),
    new Promise((resolve) => setTimeout(resolve, START_WAIT_MS).unref()),
  ]);
  // Without SESSION_SECRET, instances sharing a store seal under a key kept there.
  const sealerKey =
    config.sessionSecret === undefined
      ? new SharedSealerKey({ store: namespaced(store, 'sessions:'), sealer, onError: storeTrouble })
      : undefined;
  await sealerKey?.start();
  return {
    instanceId: ownership.instanceId,
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
