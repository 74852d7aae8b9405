/**
 * @module observability/metrics
 * Prometheus metrics, in a registry of this app's own (never prom-client's global one): requests
 * by route, status and MCP method, latency of requests and of upstream calls, open sessions and
 * sockets, bytes, and refusals by reason. Label values come from fixed sets only, so a caller
 * cannot blow up cardinality with made-up method names.
 */
import type { Counter, Histogram, Registry } from 'prom-client';
import { KNOWN_METHODS } from './mcp-methods.ts';

const ROUTES = new Set(['/', '/health', '/ready', '/metrics', '/proxy', '/mcp', '/servers/:name/mcp']);

/** Where live counts come from at scrape time. */
export interface GaugeSources {
  readonly sessions: () => number;
  readonly sockets: () => number;
}

/** Options of {@link ProxyMetrics}. */
export interface MetricsOptions {
  /**
   * False when nothing can scrape the metrics (no METRICS_TOKEN, so no `/metrics` route): then
   * nothing is recorded and no default collectors (GC observer, event-loop monitor) run, which
   * saves their cost on every request (issue #10). Default true.
   */
  readonly enabled?: boolean;
}

/** Histogram buckets for durations, in seconds: a millisecond to half a minute. */
const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** prom-client's exports, loaded only by {@link ProxyMetrics.create} when metrics are enabled. */
type PromClient = typeof import('prom-client');

/** The instruments of enabled metrics. */
interface Instruments {
  readonly registry: Registry;
  readonly requests: Counter<'route' | 'method' | 'status' | 'mcp_method'>;
  readonly duration: Histogram<'route'>;
  readonly upstream: Histogram<'outcome'>;
  readonly bytes: Counter<'direction'>;
  readonly refusals: Counter<'reason'>;
}

/** The proxy's metrics. */
export class ProxyMetrics {
  readonly #on: Instruments | undefined;

  /**
   * Builds the metrics, loading prom-client only when they are enabled: a proxy without
   * METRICS_TOKEN never pays for the module and its collectors (issue #16: start-up memory).
   */
  static async create(sources: GaugeSources, options: MetricsOptions = {}): Promise<ProxyMetrics> {
    return new ProxyMetrics(sources, (options.enabled ?? true) ? await import('prom-client') : undefined);
  }

  /** Use {@link ProxyMetrics.create}; `prom` undefined means disabled (nothing recorded). */
  constructor(sources: GaugeSources, prom: PromClient | undefined) {
    this.#on = prom === undefined ? undefined : instruments(prom, sources);
  }

  /** The registry `/metrics` serves (only when enabled: the route exists only then). */
  get registry(): Registry {
    if (this.#on === undefined) throw new Error('metrics are disabled (no METRICS_TOKEN)');
    return this.#on.registry;
  }

  /** False when nothing is recorded (see {@link MetricsOptions.enabled}). */
  get enabled(): boolean {
    return this.#on !== undefined;
  }

  /** Records one answered HTTP request. */
  request(
    route: string | undefined,
    method: string,
    status: number,
    mcpMethod: string | undefined,
    seconds: number,
  ) {
    const on = this.#on;
    if (on === undefined) return;
    const knownRoute = route !== undefined && ROUTES.has(route) ? route : 'other';
    const firstMethod = mcpMethod?.split(',')[0];
    const mcp = firstMethod === undefined ? 'none' : KNOWN_METHODS.has(firstMethod) ? firstMethod : 'other';
    on.requests.inc({ route: knownRoute, method, status: String(status), mcp_method: mcp });
    on.duration.observe({ route: knownRoute }, seconds);
  }

  /** Records one upstream HTTP exchange. */
  upstream(outcome: 'ok' | 'error', seconds: number): void {
    this.#on?.upstream.observe({ outcome }, seconds);
  }

  /** Counts body bytes. */
  bytes(direction: 'in' | 'out', count: number): void {
    if (count > 0) this.#on?.bytes.inc({ direction }, count);
  }

  /** Counts a refusal or failure by its stable code. */
  refusal(reason: string): void {
    this.#on?.refusals.inc({ reason });
  }
}

/** Registers the default collectors and the proxy's instruments in a registry of their own. */
function instruments(prom: PromClient, sources: GaugeSources): Instruments {
  const registry = new prom.Registry();
  const registers = [registry];
  prom.collectDefaultMetrics({ register: registry, prefix: 'mcp_proxy_' });
  const on: Instruments = {
    registry,
    requests: new prom.Counter({
      name: 'mcp_proxy_requests_total',
      help: 'HTTP requests answered, by route, HTTP method, status and MCP method.',
      labelNames: ['route', 'method', 'status', 'mcp_method'],
      registers,
    }),
    duration: new prom.Histogram({
      name: 'mcp_proxy_request_duration_seconds',
      help: 'Time to answer an HTTP request (to the end of the response).',
      labelNames: ['route'],
      buckets: SECONDS_BUCKETS,
      registers,
    }),
    upstream: new prom.Histogram({
      name: 'mcp_proxy_upstream_duration_seconds',
      help: 'Time until an upstream MCP server answered with headers (or failed).',
      labelNames: ['outcome'],
      buckets: SECONDS_BUCKETS,
      registers,
    }),
    bytes: new prom.Counter({
      name: 'mcp_proxy_http_bytes_total',
      help: 'HTTP body bytes, by direction (declared Content-Length; streamed bodies are not counted).',
      labelNames: ['direction'],
      registers,
    }),
    refusals: new prom.Counter({
      name: 'mcp_proxy_refusals_total',
      help: 'Requests refused or failed, by stable error code (rate limits, auth, egress, upstream).',
      labelNames: ['reason'],
      registers,
    }),
  };
  // After the instruments above, so /metrics lists them in the order it always has.
  new prom.Gauge({
    name: 'mcp_proxy_open_sessions',
    help: 'Proxy-held sessions open (held /mcp sessions, /ws sockets, POST /proxy sessions over HTTP+SSE or stdio).',
    registers,
    collect() {
      this.set(sources.sessions());
    },
  });
  new prom.Gauge({
    name: 'mcp_proxy_open_websockets',
    help: 'Open /ws connections.',
    registers,
    collect() {
      this.set(sources.sockets());
    },
  });
  return on;
}
