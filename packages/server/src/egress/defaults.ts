/**
 * @module egress/defaults
 * Every default of the egress guard, in one place.
 */
import type { EgressPolicy } from './types.ts';

/** The policy when the operator configures nothing: public internet only, no redirects. */
export const DEFAULT_EGRESS_POLICY: EgressPolicy = Object.freeze({
  allowPrivateNetworks: false,
  allowedHosts: Object.freeze([]),
  deniedHosts: Object.freeze([]),
  allowedPorts: Object.freeze([]),
  followRedirects: 0,
});

/** Tuning defaults for the guard itself (overridable through `createEgressGuard` deps). */
export const EGRESS_DEFAULTS = Object.freeze({
  /** getaddrinfo cannot be cancelled, so bound how long a connect waits for it. */
  resolveTimeoutMs: 5_000,
  /** TCP + TLS handshake deadline for a new upstream connection. */
  connectTimeoutMs: 10_000,
  /** How many list entries `describe()` prints before eliding the rest. */
  describeMaxEntries: 5,
  /** Redirect hops beyond this are refused even if configured higher (matches config validation). */
  maxFollowRedirects: 10,
});
