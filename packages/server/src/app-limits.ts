/**
 * @module app-limits
 * The request limits app.ts applies: the rate limits (per principal and rate class, counted in
 * the store's counters, a counter failure warned of) and the in-flight bounds (per owner, in all,
 * and shedding on heap use), with each refusal counted in the metrics.
 */
import type { Logger } from 'pino';
import type { Config } from './config/config.ts';
import { rateClasses, rateLimits } from './config/rate-rules.ts';
import { InFlightLimits } from './limits/in-flight.ts';
import { type InFlightHooks, inFlightHooks } from './limits/in-flight-hooks.ts';
import { RateLimiter } from './limits/rate-limiter.ts';
import type { RateStore } from './limits/rate-store.ts';
import { COUNTER_FAILURE_WARNING } from './limits/store-failures.ts';
import type { ProxyMetrics } from './observability/metrics.ts';
import { throttledWarning } from './observability/throttled-warning.ts';

/** What the limits need of the app. */
export interface LimitsDeps {
  /** Where the rate counters are kept (the shared store's view, or a test's own). */
  readonly rateStore: RateStore;
  readonly metrics: Pick<ProxyMetrics, 'refusal'>;
  readonly now: () => number;
  readonly logger: Logger;
}

/** The limits, built from `config` (a reload replaces the rate limits: app-reload.ts). */
export interface Limits {
  readonly limiter: RateLimiter;
  readonly inFlight: InFlightLimits;
  /** The in-flight bounds' request hooks. */
  readonly inFlightHook: InFlightHooks;
}

/** Builds the rate limiter and the in-flight bounds. */
export function buildLimits(config: Config, deps: LimitsDeps): Limits {
  const { metrics } = deps;
  const limiter = new RateLimiter(
    deps.rateStore,
    rateLimits(config),
    (name) => metrics.refusal(`rate_limit:${name}`),
    rateClasses(config),
    { now: deps.now, onStoreFailure: throttledWarning(deps.logger, COUNTER_FAILURE_WARNING) },
  );
  const inFlight = new InFlightLimits(
    {
      perOwner: config.limits.inFlightPerToken,
      total: config.limits.inFlightTotal,
      shedHeapPercent: config.limits.shedHeapPercent,
    },
    { onRefused: (reason) => metrics.refusal(`in_flight:${reason}`) },
  );
  return { limiter, inFlight, inFlightHook: inFlightHooks(inFlight, config.limits.maxBatchMessages) };
}
