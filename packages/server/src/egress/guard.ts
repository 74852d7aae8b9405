/**
 * @module egress/guard
 * The egress guard: the one way out of the process. `vet()` applies the URL policy and judges
 * the host early (a friendly refusal before any upstream work); the dispatcher and lookup apply
 * the same host policy again at connect time, which is the check that actually binds.
 *
 * @example
 * ```ts
 * const guard = createEgressGuard(config.egress);
 * const url = await guard.vet('https://mcp.example.com/mcp');
 * const res = await request(url, { dispatcher: guard.dispatcher });
 * ```
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupFunction } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { Dispatcher, Agent as UndiciAgent } from 'undici';
import { EGRESS_DEFAULTS } from './defaults.ts';
import { HostList } from './host-list.ts';
import { createGuardedConnector, createPinnedLookup, type PinOverride } from './pinned-lookup.ts';
import { refuse } from './refusal.ts';
import { TargetPolicy } from './target-policy.ts';
import type { EgressGuard, EgressPolicy, ResolvedAddress, Resolver } from './types.ts';
import { Agent } from './undici-parts.ts';
import { parseTarget, refuseAmbiguous } from './url-policy.ts';

/** Injectable collaborators and tuning for {@link createEgressGuard}. */
export interface EgressGuardDeps {
  /** Resolves names to all A and AAAA answers; defaults to `dns.promises.lookup({ all: true })`. */
  readonly resolver?: Resolver;
  /**
   * Test hook that rewrites vetted answers at connect time (see {@link PinOverride}). Refused
   * at construction unless `policy.allowPrivateNetworks` is true, so it can never widen a
   * production policy that blocks private networks.
   */
  readonly pinOverride?: PinOverride;
  /** Deadline for one name resolution. */
  readonly resolveTimeoutMs?: number;
  /** Deadline for TCP + TLS connection set-up. */
  readonly connectTimeoutMs?: number;
  /** TLS settings for https/wss upstreams (e.g. a private CA). */
  readonly tls?: Pick<ConnectionOptions, 'ca' | 'rejectUnauthorized'>;
  /** Pool tuning for the shared agent (keep-alive, connections per origin, …). */
  readonly agent?: Omit<UndiciAgent.Options, 'connect' | 'factory'>;
}

/** The default resolver: every A and AAAA answer, in the order the system resolver gives them. */
export const systemResolver: Resolver = async (hostname) => {
  const answers = await dnsLookup(hostname, { all: true, order: 'verbatim' });
  return answers.map(({ address, family }): ResolvedAddress => ({ address, family: family === 6 ? 6 : 4 }));
};

/** Builds the egress guard for a policy; throws a TypeError for an invalid policy. */
export function createEgressGuard(policy: EgressPolicy, deps: EgressGuardDeps = {}): EgressGuard {
  return new Guard(policy, deps);
}

class Guard implements EgressGuard {
  readonly #policy: EgressPolicy;
  readonly #allowed: HostList;
  readonly #denied: HostList;
  readonly #targets: TargetPolicy;
  readonly #agent: UndiciAgent;
  readonly lookup: LookupFunction;

  constructor(policy: EgressPolicy, deps: EgressGuardDeps) {
    validatePolicy(policy);
    if (deps.pinOverride !== undefined && !policy.allowPrivateNetworks) {
      throw new TypeError('egress: pinOverride is a test hook and requires allowPrivateNetworks: true');
    }
    this.#policy = Object.freeze({
      ...policy,
      allowedHosts: Object.freeze([...policy.allowedHosts]),
      deniedHosts: Object.freeze([...policy.deniedHosts]),
      allowedPorts: Object.freeze([...policy.allowedPorts]),
    });
    this.#allowed = HostList.parse(policy.allowedHosts, 'egress.allowedHosts');
    this.#denied = HostList.parse(policy.deniedHosts, 'egress.deniedHosts');
    this.#targets = new TargetPolicy({
      allowPrivateNetworks: policy.allowPrivateNetworks,
      allowed: this.#allowed,
      denied: this.#denied,
      resolver: deps.resolver ?? systemResolver,
      resolveTimeoutMs: deps.resolveTimeoutMs ?? EGRESS_DEFAULTS.resolveTimeoutMs,
    });
    this.lookup = createPinnedLookup(this.#targets, deps.pinOverride);
    const connect = createGuardedConnector({
      policy: this.#targets,
      lookup: this.lookup,
      allowedPorts: this.#policy.allowedPorts,
      connect: { ...deps.tls, timeout: deps.connectTimeoutMs ?? EGRESS_DEFAULTS.connectTimeoutMs },
    });
    // One shared agent: keep-alive pooling means most requests reuse a vetted connection.
    this.#agent = new Agent({ ...deps.agent, connect });
  }

  /** The shared undici agent whose connector and lookup enforce the policy. */
  get dispatcher(): Dispatcher {
    return this.#agent;
  }

  async vet(rawUrl: string | URL): Promise<URL> {
    const target = parseTarget(rawUrl, this.#policy.allowedPorts);
    if (target.host.kind === 'address') this.#targets.checkAddress(target.host.address);
    else await this.#targets.resolveHost(target.host.name);
    return target.url;
  }

  async vetRedirect(from: URL, location: string, hop: number): Promise<URL> {
    const max = this.#policy.followRedirects;
    if (max === 0) {
      throw refuse(
        'redirect_refused',
        'The MCP server answered with a redirect; this proxy does not follow redirects.',
      );
    }
    if (!Number.isInteger(hop) || hop < 1 || hop > max) {
      throw refuse('redirect_refused', `The MCP server redirected more than ${max} times.`);
    }
    // Relative locations too: `\\evil.com\@host/` is scheme-relative to WHATWG, a path to others.
    refuseAmbiguous(location);
    let next: URL;
    try {
      next = new URL(location, from);
    } catch (cause) {
      throw refuse('redirect_refused', 'The MCP server redirected to an invalid URL.', cause);
    }
    // Only HTTP is followed: a WebSocket URL is no answer to an HTTP request (undici would fail
    // it with a generic error), and no other scheme is a place an MCP request may go.
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw refuse(
        'redirect_refused',
        `The MCP server redirected to a ${next.protocol} URL; the proxy follows redirects only to http: and https: URLs.`,
      );
    }
    // A downgrade would send the caller's MCP token in clear text.
    if (from.protocol === 'https:' && next.protocol === 'http:') {
      throw refuse('redirect_refused', 'The MCP server redirected from an encrypted to a plain-text URL.');
    }
    // The host is vetted as written, not as WHATWG normalised it, so obfuscated IPv4 spellings
    // (`0x7f.1`, `2130706433`) are spotted: an absolute Location as it is, a scheme-relative one
    // (`//host/…`) with the current scheme in front. A path-relative one keeps the current host.
    const written = URL.canParse(location)
      ? location
      : location.startsWith('//')
        ? `${from.protocol}${location}`
        : next.href;
    return this.vet(written);
  }

  describe(): string {
    const p = this.#policy;
    const ports = p.allowedPorts.length === 0 ? 'any' : p.allowedPorts.join(', ');
    const redirects =
      p.followRedirects === 0
        ? 'not followed'
        : `followed up to ${p.followRedirects} hops, each vetted again`;
    return [
      `egress: private networks ${p.allowPrivateNetworks ? 'ALLOWED' : 'blocked'}`,
      `allowlist ${summarise(this.#allowed)}`,
      `denylist ${summarise(this.#denied)}`,
      `ports ${ports}`,
      `redirects ${redirects}`,
      'cloud metadata always blocked',
    ].join('; ');
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

function summarise(list: HostList): string {
  if (list.size === 0) return 'none';
  const shown = list.entries.slice(0, EGRESS_DEFAULTS.describeMaxEntries);
  const more = list.size > shown.length ? `, … ${list.size - shown.length} more` : '';
  return `${list.size} ${list.size === 1 ? 'entry' : 'entries'} (${shown.join(', ')}${more})`;
}

function validatePolicy(policy: EgressPolicy): void {
  const { followRedirects, allowedPorts } = policy;
  if (
    !Number.isInteger(followRedirects) ||
    followRedirects < 0 ||
    followRedirects > EGRESS_DEFAULTS.maxFollowRedirects
  ) {
    throw new TypeError(`egress.followRedirects must be an integer 0-${EGRESS_DEFAULTS.maxFollowRedirects}`);
  }
  for (const port of allowedPorts) {
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new TypeError(`egress.allowedPorts: ${port} is not a port number (1-65535)`);
    }
  }
}
