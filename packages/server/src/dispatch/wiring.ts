/**
 * @module dispatch/wiring
 * `buildDispatch(config, deps)` assembles the way out for the app: the egress guard (reloadable),
 * the one upstream HTTP client, what is learnt about each upstream (transport and era verdicts,
 * shared through the store; `x-mcp-header` declarations), the target resolver, the connector,
 * the one opener of held sessions, the modern pool and the planner. app.ts wires them to the
 * surfaces; a reload replaces the guard's policy and the resolver's servers.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { ReloadableGuard } from '../egress/reloadable-guard.ts';
import type { Resolver } from '../egress/types.ts';
import type { LiveStatus } from '../observability/live-status.ts';
import type { ProxyMetrics } from '../observability/metrics.ts';
import type { Tracing } from '../observability/tracing.ts';
import type { HeldSession } from '../sessions/held-session.ts';
import { ModernSessionPool } from '../sessions/modern-pool.ts';
import { configuredSecrets } from '../sessions/sealer-key.ts';
import type { SessionStore } from '../sessions/store.ts';
import { purposeSeal } from '../store/purpose-seal.ts';
import type { Store } from '../store/store.ts';
import { ChildRegistry } from '../upstream/child-registry.ts';
import { UpstreamHttp } from '../upstream/http.ts';
import { ParamHeaderCatalog } from '../upstream/param-headers.ts';
import { UpstreamConnector, type UpstreamTarget } from './connector.ts';
import { EraDetector, EraVerdicts } from './era-detector.ts';
import { HeldSessions, type HeldSessionsDeps } from './held-sessions.ts';
import { DispatchPlanner } from './plan.ts';
import { type GrantsNow, TargetResolver } from './targets.ts';
import { TransportVerdicts } from './transport-verdicts.ts';
import { VET_CACHE_DEFAULTS } from './vet-cache.ts';

const VERDICT_TTL_MS = 10 * 60_000;
const VERDICT_MAX_ENTRIES = 1_000;
/** The verdicts' key label (store/purpose-seal.ts). */
const VERDICT_PURPOSE = 'mcp-proxy shared verdicts aes-256-gcm v1';

/** What the dispatch parts take from the app. */
export interface DispatchDeps {
  readonly logger: Logger;
  readonly now: () => number;
  readonly sessions: SessionStore<HeldSession>;
  readonly metrics: ProxyMetrics;
  /** The status page's counters, when it is on: told of egress refusals and upstream timings. */
  readonly status: LiveStatus | undefined;
  /** Told how opening a stdio or WebSocket upstream went (the status page). */
  readonly onOpen?: HeldSessionsDeps['onOpen'] | undefined;
  readonly tracing: Tracing;
  /** This instance's tag in `requestState` handles (the session ownership's instance id). */
  readonly instanceId: string;
  /** DNS resolver for the egress guard (tests). */
  readonly resolver?: Resolver | undefined;
  /** Registry of live stdio children (main.ts kills them on a forced exit). */
  readonly children?: ChildRegistry | undefined;
  /**
   * Where transport and era verdicts are shared with the other instances (a namespaced view of
   * the store, issue 19); absent: this instance keeps its own.
   */
  readonly verdictStore?: Store | undefined;
  /** Hears the verdict store failing (throttled by the caller). */
  readonly onVerdictStoreError?: ((error: Error) => void) | undefined;
  /** An owner's grants after a reload, for reach tests asked after one (targets.ts `GrantsNow`). */
  readonly grantsNow: GrantsNow;
}

/** The dispatch parts of one app. */
export interface Dispatch {
  readonly guard: ReloadableGuard;
  readonly http: UpstreamHttp;
  readonly paramHeaders: ParamHeaderCatalog;
  readonly targets: TargetResolver;
  readonly held: HeldSessions;
  readonly pool: ModernSessionPool<UpstreamTarget>;
  readonly planner: DispatchPlanner;
  /** The shared verdicts' subscriptions: listen once at start, close at shutdown. */
  readonly verdictChannels: { listen(): Promise<void>; close(): Promise<void> };
}

/** Builds the guard, the upstream HTTP client, the verdict caches, resolver, connector and openers. */
export function buildDispatch(config: Config, deps: DispatchDeps): Dispatch {
  const { status, metrics, now } = deps;
  const guard = new ReloadableGuard(
    config.egress,
    {
      connectTimeoutMs: config.upstream.connectTimeoutMs,
      agent: { connections: config.upstream.maxConnectionsPerOrigin },
      ...(deps.resolver ? { resolver: deps.resolver } : {}),
    },
    status && ((host, reason) => status.egressRefusal(host, reason)),
  );
  const http = new UpstreamHttp(guard, {
    timeoutMs: config.upstream.timeoutMs,
    responseLimitBytes: config.upstream.responseLimitBytes,
    onTiming: status
      ? (outcome, seconds, url, failure) => {
          metrics.upstream(outcome, seconds);
          status.upstream(url, outcome, seconds, failure);
        }
      : (outcome, seconds) => metrics.upstream(outcome, seconds),
    tracing: deps.tracing,
  });
  const shared = {
    ttlMs: VERDICT_TTL_MS,
    maxEntries: VERDICT_MAX_ENTRIES,
    now,
    store: deps.verdictStore,
    onError: deps.onVerdictStoreError,
    // With SESSION_SECRET a store writer is not trusted: what is shared is sealed and keyed.
    seal: purposeSeal(configuredSecrets(config), VERDICT_PURPOSE),
  };
  const verdicts = new TransportVerdicts(shared);
  const eraVerdicts = new EraVerdicts(shared);
  const paramHeaders = new ParamHeaderCatalog({ now });
  const eras = new EraDetector({ http, verdicts: eraVerdicts, timeoutMs: config.upstream.timeoutMs });
  const targets = new TargetResolver(config.servers, guard, { ...VET_CACHE_DEFAULTS, now }, deps.grantsNow);
  const connector = new UpstreamConnector({
    guard,
    http,
    logger: deps.logger,
    timeoutMs: config.upstream.timeoutMs,
    responseLimitBytes: config.upstream.responseLimitBytes,
    verdicts,
    paramHeaders,
    eras,
    // A call waiting on a modern client's input is held as long as an idle session would be.
    inputDeadlineMs: config.sessions.idleTimeoutMs,
    children: deps.children ?? new ChildRegistry(),
    handleTag: deps.instanceId,
    tracing: deps.tracing.enabled ? deps.tracing : undefined,
  });
  const { sessions } = deps;
  const held = new HeldSessions({ sessions, connector, ...(deps.onOpen && { onOpen: deps.onOpen }) });
  const pool = new ModernSessionPool<UpstreamTarget>({
    sessions,
    open: (owner, target) => held.open(owner, target),
  });
  const planner = new DispatchPlanner({ verdicts, eras });
  const verdictChannels = {
    listen: async () => {
      await Promise.all([verdicts.listen(), eraVerdicts.listen()]);
    },
    close: async () => {
      await Promise.all([verdicts.close(), eraVerdicts.close()]);
    },
  };
  return { guard, http, paramHeaders, targets, held, pool, planner, verdictChannels };
}
