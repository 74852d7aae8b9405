/**
 * @module egress/types
 * The contract between the egress guard and everything that leaves the process. Every upstream
 * transport connects through {@link EgressGuard}: there is exactly one way out.
 */
import type { LookupFunction } from 'node:net';
import type { Dispatcher } from 'undici';

/** Operator-controlled egress policy (config file `egress` section and env variables). */
export interface EgressPolicy {
  /** Allow loopback, private, link-local and other non-global addresses (on-prem servers, tests). */
  readonly allowPrivateNetworks: boolean;
  /** When non-empty, only these are reachable: exact names, `*.suffix` wildcards or CIDRs. */
  readonly allowedHosts: readonly string[];
  /** Never reachable: exact names, `*.suffix` wildcards or CIDRs. */
  readonly deniedHosts: readonly string[];
  /**
   * When non-empty, only these ports are reachable. A URL without a port is judged by its
   * scheme's default (80 for http/ws, 443 for https/wss), so list 443 to allow plain `https://`.
   */
  readonly allowedPorts: readonly number[];
  /** How many redirects an upstream may answer with; each hop is vetted again. 0 = never follow. */
  readonly followRedirects: number;
}

/** One resolved address. */
export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/** Resolves a host name to all of its A and AAAA answers. Injectable for tests. */
export type Resolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

/** Why the guard refused a target; sent to the caller as `data.reason`. */
export type EgressRefusal =
  | 'scheme_not_allowed'
  | 'host_forbidden'
  | 'address_forbidden'
  | 'dns_failed'
  | 'not_in_allowlist'
  | 'port_not_allowed'
  | 'redirect_refused'
  | 'ambiguous_url';

/** The one gate for outbound connections. */
export interface EgressGuard {
  /**
   * Applies the URL policy, the allow/deny lists and (for names) resolves and checks every
   * answer. Resolves to the normalised URL; rejects with `ProxyError('target_forbidden')`
   * carrying `data.reason`.
   */
  vet(rawUrl: string | URL): Promise<URL>;
  /**
   * Vets redirect number `hop` (1 for the first) from `from` to its `Location` header value.
   * Rejects with reason `redirect_refused` when `followRedirects` is 0, `hop` exceeds it, the
   * location is unparseable or downgrades https/wss to http/ws; otherwise resolves to the
   * absolute target after the same checks as {@link EgressGuard.vet}.
   */
  vetRedirect(from: URL, location: string, hop: number): Promise<URL>;
  /**
   * The undici dispatcher every upstream HTTP request must use: its connect-time lookup
   * resolves, checks and pins, so DNS cannot change between check and connect.
   */
  readonly dispatcher: Dispatcher;
  /** The same resolve-check-pin lookup for connectors that take one (e.g. `ws`). */
  readonly lookup: LookupFunction;
  /** One line describing the effective policy, for the start-up log. No secrets. */
  describe(): string;
  /** Closes pooled connections. */
  close(): Promise<void>;
}
