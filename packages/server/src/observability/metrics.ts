/**
 * @module observability/metrics
 * Prometheus metrics, in a registry of this app's own (never prom-client's global one): requests
 * by route, status and MCP method, latency of requests and of upstream calls, open sessions and
 * sockets, bytes, and refusals by reason. Label values come from fixed sets only, so a caller
 * cannot blow up cardinality with made-up method names.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** MCP methods counted by name; anything else is counted as "other". */
const KNOWN_METHODS = new Set([
  'initialize',
  'ping',
  'server/discover',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
  'subscriptions/listen',
  'notifications/initialized',
  'notifications/cancelled',
  'notifications/progress',
  'notifications/roots/list_changed',
  'response',
]);
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

/** The proxy's metrics. */
export class ProxyMetrics {
  readonly registry = new Registry();
  readonly #enabled: boolean;
  readonly #requests: Counter<'route' | 'method' | 'status' | 'mcp_method'>;
  readonly #duration: Histogram<'route'>;
  readonly #upstream: Histogram<'outcome'>;
  readonly #bytes: Counter<'direction'>;
  readonly #refusals: Counter<'reason'>;

  constructor(sources: GaugeSources, options: MetricsOptions = {}) {
    const registers = [this.registry];
    this.#enabled = options.enabled ?? true;
    if (this.#enabled) collectDefaultMetrics({ register: this.registry, prefix: 'mcp_proxy_' });
    this.#requests = new Counter({
      name: 'mcp_proxy_requests_total',
      help: 'HTTP requests answered, by route, HTTP method, status and MCP method.',
      labelNames: ['route', 'method', 'status', 'mcp_method'],
      registers,
    });
    this.#duration = new Histogram({
      name: 'mcp_proxy_request_duration_seconds',
      help: 'Time to answer an HTTP request (to the end of the response).',
      labelNames: ['route'],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.#upstream = new Histogram({
      name: 'mcp_proxy_upstream_duration_seconds',
      help: 'Time until an upstream MCP server answered with headers (or failed).',
      labelNames: ['outcome'],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.#bytes = new Counter({
      name: 'mcp_proxy_http_bytes_total',
      help: 'HTTP body bytes, by direction (declared Content-Length; streamed bodies are not counted).',
      labelNames: ['direction'],
      registers,
    });
    this.#refusals = new Counter({
      name: 'mcp_proxy_refusals_total',
      help: 'Requests refused or failed, by stable error code (rate limits, auth, egress, upstream).',
      labelNames: ['reason'],
      registers,
    });
    new Gauge({
      name: 'mcp_proxy_open_sessions',
      help: 'Proxy-held sessions open (held /mcp sessions, /ws sockets, POST /proxy sessions over HTTP+SSE or stdio).',
      registers,
      collect() {
        this.set(sources.sessions());
      },
    });
    new Gauge({
      name: 'mcp_proxy_open_websockets',
      help: 'Open /ws connections.',
      registers,
      collect() {
        this.set(sources.sockets());
      },
    });
  }

  /** False when nothing is recorded (see {@link MetricsOptions.enabled}). */
  get enabled(): boolean {
    return this.#enabled;
  }

  /** Records one answered HTTP request. */
  request(
    route: string | undefined,
    method: string,
    status: number,
    mcpMethod: string | undefined,
    seconds: number,
  ) {
    if (!this.#enabled) return;
    const knownRoute = route !== undefined && ROUTES.has(route) ? route : 'other';
    const firstMethod = mcpMethod?.split(',')[0];
    const mcp = firstMethod === undefined ? 'none' : KNOWN_METHODS.has(firstMethod) ? firstMethod : 'other';
    this.#requests.inc({ route: knownRoute, method, status: String(status), mcp_method: mcp });
    this.#duration.observe({ route: knownRoute }, seconds);
  }

  /** Records one upstream HTTP exchange. */
  upstream(outcome: 'ok' | 'error', seconds: number): void {
    if (!this.#enabled) return;
    this.#upstream.observe({ outcome }, seconds);
  }

  /** Counts body bytes. */
  bytes(direction: 'in' | 'out', count: number): void {
    if (this.#enabled && count > 0) this.#bytes.inc({ direction }, count);
  }

  /** Counts a refusal or failure by its stable code. */
  refusal(reason: string): void {
    if (!this.#enabled) return;
    this.#refusals.inc({ reason });
  }
}
