/**
 * @module observability/live-status
 * What the status page shows (issue 21): requests and errors by code since start, upstream
 * latency percentiles and health per upstream host, and the egress guard's recent refusals.
 * Everything is bounded: error codes come from the registry, upstream hosts are capped (the rest
 * count together), refusals sit in a fixed ring. Recording a request or an upstream exchange
 * touches a counter and a histogram bucket and allocates nothing; percentiles and the snapshot
 * are computed only when the page asks.
 */
import type { ProxyError } from '../errors.ts';
import type { InstanceCounts, InstanceSummary } from './instance-roster.ts';
import { HALF_WINDOW_MS, LatencyWindow } from './latency-window.ts';

/**
 * Hosts callers named that are tracked one by one; traffic to further ones is counted under
 * {@link OTHER_HOSTS}. Configured servers' hosts always have their own entry.
 */
const MAX_HOSTS = 64;
/**
 * How long a caller-named host must have been idle before a new host may take its entry: its
 * latency window is empty by then, so the page loses only its totals and last success/failure.
 */
const IDLE_EVICT_MS = 2 * HALF_WINDOW_MS;
/** The entry that counts hosts beyond {@link MAX_HOSTS}. */
export const OTHER_HOSTS = '(other hosts)';
/** Egress refusals kept for the page, newest last. */
const MAX_REFUSALS = 50;
/** Longest host kept in a refusal (a DNS name is at most 253 characters). */
const MAX_HOST_CHARS = 255;
/** Routes counted one by one (Fastify's route patterns); others count as "other". */
const ROUTES = ['/proxy', '/mcp', '/servers/:name/mcp', '/ws', '/health', '/ready', '/metrics'];
/** The status page's own routes: not counted, so watching the page does not move its numbers. */
const OWN_ROUTES = new Set(['/status', '/status.json']);
/** The quantiles the page shows. */
const QUANTILES = [0.5, 0.9, 0.99];

/** One upstream host's counts and health. */
class UpstreamStats {
  calls = 0;
  errors = 0;
  lastOkAt: number | undefined;
  lastErrorAt: number | undefined;
  /** The last failure: a stable error code, or `http_<status>` for a 5xx answer. */
  lastError: string | undefined;
  /** The latest exchange or opening (the clock's ms), for evicting idle hosts. */
  lastAt: number;
  readonly latency: LatencyWindow;

  constructor(now: number) {
    this.latency = new LatencyWindow(now);
    this.lastAt = now;
  }
}

/** One refusal by the egress guard: when, which host, which reason. Never a URL or a path. */
export interface EgressRefusalRecord {
  readonly at: number;
  readonly host: string;
  readonly reason: string;
}

/** Sessions as the app counts them when the page asks. */
export interface SessionCounts {
  /** Proxy-held sessions by upstream transport. */
  readonly byTransport: Readonly<Record<string, number>>;
  /** Open `/ws` sockets. */
  readonly webSockets: number;
}

/** What {@link LiveStatus} reads from the app. */
export interface LiveStatusDeps {
  /** Milliseconds since the epoch (the app's clock). */
  readonly now: () => number;
  /** This instance's id (the one the relay and the ownership keys use). */
  readonly instanceId: () => string;
  /** Configured server names with the host each reaches (`stdio:<name>` for a command). */
  readonly servers: () => ReadonlyArray<{ readonly name: string; readonly host: string }>;
  /** Open sessions, counted at snapshot time. */
  readonly sessions: () => SessionCounts;
}

/** The live counters behind `/status.json`. */
export class LiveStatus {
  readonly #deps: LiveStatusDeps;
  readonly #startedAt: number;
  #requests = 0;
  #errors = 0;
  readonly #byRoute = new Float64Array(ROUTES.length + 1);
  /** Counts by error code: the registry's codes, a fixed set. */
  readonly #byCode = new Map<string, number>();
  readonly #upstreams = new Map<string, UpstreamStats>();
  readonly #refusals: EgressRefusalRecord[] = [];
  #refusalsTotal = 0;
  #lastHref = '';
  #lastStats: UpstreamStats | undefined;
  /** The other live instances sharing the store (instance-roster.ts); none without one. */
  #others: () => readonly InstanceSummary[] = () => [];

  constructor(deps: LiveStatusDeps) {
    this.#deps = deps;
    this.#startedAt = deps.now();
  }

  /** Counts one answered HTTP request: its route pattern, and its error code if it failed. */
  request(route: string | undefined, errorCode: string | undefined): void {
    if (route !== undefined && OWN_ROUTES.has(route)) return;
    this.#requests++;
    const found = route === undefined ? -1 : ROUTES.indexOf(route);
    const index = found === -1 ? ROUTES.length : found;
    this.#byRoute[index] = (this.#byRoute[index] as number) + 1;
    if (errorCode !== undefined) {
      this.#errors++;
      this.#byCode.set(errorCode, (this.#byCode.get(errorCode) ?? 0) + 1);
    }
  }

  /**
   * Counts one upstream HTTP exchange (time to its headers) against the URL's host. `failure`
   * is the error, or the 5xx status, of a failed one; the egress guard's refusal when connecting
   * (an address that changed since the target was vetted, DNS rebinding) is a refusal too.
   */
  upstream(url: URL, outcome: 'ok' | 'error', seconds: number, failure?: ProxyError | number): void {
    // Most exchanges go where the previous one went: `href` is the URL's own string (no copy), so
    // comparing it skips slicing out the host and hashing it into the table.
    // (Evicting an entry forgets the previous URL, so the previous one stays right.)
    const now = this.#deps.now();
    const href = url.href;
    let stats = this.#lastStats;
    if (href !== this.#lastHref || stats === undefined) {
      stats = this.#statsFor(url.host, now);
      this.#lastHref = href;
      this.#lastStats = stats;
    }
    this.#count(stats, outcome === 'ok', seconds * 1000, now);
    if (outcome === 'ok') return;
    if (typeof failure === 'number') stats.lastError = `http_${failure}`;
    else {
      stats.lastError = failure?.code ?? 'error';
      if (failure?.code === 'target_forbidden') {
        const reason = failure.data.reason;
        this.egressRefusal(url.host, typeof reason === 'string' ? reason : failure.code);
      }
    }
  }

  /**
   * Counts the opening of an upstream without HTTP exchanges (a stdio command, a WebSocket):
   * `host` is `stdio:<name>` or the URL's host; `failure` the error's code when it failed.
   */
  opened(host: string, ms: number, failure?: string): void {
    const now = this.#deps.now();
    const stats = this.#statsFor(host, now);
    this.#count(stats, failure === undefined, ms, now);
    if (failure !== undefined) stats.lastError = failure;
  }

  #count(stats: UpstreamStats, ok: boolean, ms: number, now: number): void {
    stats.calls++;
    stats.lastAt = now;
    stats.latency.observe(ms, now);
    if (ok) stats.lastOkAt = now;
    else {
      stats.errors++;
      stats.lastErrorAt = now;
    }
  }

  /** Records a refusal by the egress guard (host only: a URL's path or query may hold a key). */
  egressRefusal(host: string, reason: string): void {
    this.#refusalsTotal++;
    if (this.#refusals.length === MAX_REFUSALS) this.#refusals.shift();
    this.#refusals.push({ at: this.#deps.now(), host: host.slice(0, MAX_HOST_CHARS), reason });
  }

  /** Shows the other instances `others` lists (a shared store's roster) with this one. */
  showOthers(others: () => readonly InstanceSummary[]): void {
    this.#others = others;
  }

  /** This instance's counts, as it publishes them to the others. */
  counts(): InstanceCounts {
    return {
      id: this.#deps.instanceId(),
      startedAt: this.#startedAt,
      requests: this.#requests,
      errors: this.#errors,
      sessions: this.#deps.sessions(),
    };
  }

  /** Everything the page shows, as JSON-ready data. */
  snapshot(): StatusSnapshot {
    const now = this.#deps.now();
    const self = this.counts();
    const servers = this.#deps.servers();
    const namesByHost = new Map<string, string[]>();
    for (const { name, host } of servers) {
      const names = namesByHost.get(host) ?? [];
      names.push(name);
      namesByHost.set(host, names);
    }
    const upstreams: UpstreamSnapshot[] = [];
    const hosts = new Set([...namesByHost.keys(), ...this.#upstreams.keys()]);
    for (const host of hosts) {
      const stats = this.#upstreams.get(host);
      const window = stats?.latency.percentiles(QUANTILES, now) ?? { count: 0, ms: [null, null, null] };
      upstreams.push({
        host,
        servers: namesByHost.get(host) ?? [],
        calls: stats?.calls ?? 0,
        errors: stats?.errors ?? 0,
        health: health(stats),
        lastOkAt: stats?.lastOkAt ?? null,
        lastErrorAt: stats?.lastErrorAt ?? null,
        lastError: stats?.lastError ?? null,
        window: {
          count: window.count,
          p50: window.ms[0] ?? null,
          p90: window.ms[1] ?? null,
          p99: window.ms[2] ?? null,
        },
      });
    }
    const byRoute: Record<string, number> = {};
    ROUTES.forEach((route, i) => {
      if (this.#byRoute[i]) byRoute[route] = this.#byRoute[i] as number;
    });
    if (this.#byRoute[ROUTES.length]) byRoute.other = this.#byRoute[ROUTES.length] as number;
    return {
      now,
      instance: { id: this.#deps.instanceId(), startedAt: this.#startedAt },
      requests: {
        total: this.#requests,
        errors: this.#errors,
        byRoute,
        errorsByCode: Object.fromEntries([...this.#byCode].sort((a, b) => b[1] - a[1])),
      },
      sessions: { instance: self.id, ...self.sessions },
      instances: [{ ...self, heardAt: now, self: true }, ...this.#others()],
      upstreams,
      egressRefusals: { total: this.#refusalsTotal, recent: [...this.#refusals].reverse() },
    };
  }

  #statsFor(host: string, now: number): UpstreamStats {
    let stats = this.#upstreams.get(host);
    if (stats !== undefined) return stats;
    // A configured server's host always gets its own entry (the table names it anyway); hosts
    // callers named share one once the table is full, unless the least recently used of them has
    // been idle long enough to give up its entry (else 64 junk hosts named once would hold every
    // entry for good). Reached only for a host not seen yet.
    const own =
      this.#upstreams.size < MAX_HOSTS ||
      this.#deps.servers().some((server) => server.host === host) ||
      this.#evictIdle(now);
    const key = own ? host : OTHER_HOSTS;
    stats = this.#upstreams.get(key) ?? new UpstreamStats(now);
    this.#upstreams.set(key, stats);
    return stats;
  }

  /** Drops the least recently used caller-named host if it has been idle long enough. */
  #evictIdle(now: number): boolean {
    const configured = new Set(this.#deps.servers().map((server) => server.host));
    let oldest: string | undefined;
    let oldestAt = Number.POSITIVE_INFINITY;
    for (const [host, stats] of this.#upstreams) {
      if (host === OTHER_HOSTS || configured.has(host) || stats.lastAt >= oldestAt) continue;
      oldest = host;
      oldestAt = stats.lastAt;
    }
    if (oldest === undefined || now - oldestAt < IDLE_EVICT_MS) return false;
    if (this.#lastStats === this.#upstreams.get(oldest)) {
      this.#lastStats = undefined;
      this.#lastHref = '';
    }
    this.#upstreams.delete(oldest);
    return true;
  }
}

/** `unknown` before any exchange; else whether the latest one succeeded. */
function health(stats: UpstreamStats | undefined): 'unknown' | 'up' | 'failing' {
  if (stats === undefined || (stats.lastOkAt === undefined && stats.lastErrorAt === undefined))
    return 'unknown';
  return (stats.lastErrorAt ?? -1) > (stats.lastOkAt ?? -1) ? 'failing' : 'up';
}

/** One upstream host on the page. */
export interface UpstreamSnapshot {
  readonly host: string;
  /** Configured server names that reach this host (none: URLs callers named). */
  readonly servers: string[];
  readonly calls: number;
  readonly errors: number;
  readonly health: 'unknown' | 'up' | 'failing';
  readonly lastOkAt: number | null;
  readonly lastErrorAt: number | null;
  readonly lastError: string | null;
  /** Time to headers over the last one to two minutes, in milliseconds. */
  readonly window: { count: number; p50: number | null; p90: number | null; p99: number | null };
}

/** The body of `GET /status.json`. */
export interface StatusSnapshot {
  readonly now: number;
  readonly instance: { id: string; startedAt: number };
  readonly requests: {
    total: number;
    errors: number;
    byRoute: Record<string, number>;
    errorsByCode: Record<string, number>;
  };
  readonly sessions: SessionCounts & { instance: string };
  /** Every live instance, the one that answered first (`self`); others only with a shared store. */
  readonly instances: InstanceSummary[];
  readonly upstreams: UpstreamSnapshot[];
  readonly egressRefusals: { total: number; recent: EgressRefusalRecord[] };
}
