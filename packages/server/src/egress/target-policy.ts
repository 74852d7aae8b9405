/**
 * @module egress/target-policy
 * Decides whether a host may be reached: the deny list, metadata names, the allowlist and the
 * address policy, applied to an IP literal or to every answer a name resolves to. Both `vet()`
 * and the connect-time lookup call {@link TargetPolicy.resolveHost}, so there is one definition
 * of "allowed".
 */
import { isIP } from 'node:net';
import { type IpAddress, inspectAddress, parseIpAddress } from './address-policy.ts';
import type { HostList } from './host-list.ts';
import { NEVER_REACHABLE_MESSAGE, refuse } from './refusal.ts';
import { isLoopbackName, isMetadataName, LOOPBACK_ANSWERS, normaliseHostName } from './special-names.ts';
import type { ResolvedAddress, Resolver } from './types.ts';

/** What a {@link TargetPolicy} needs. */
export interface TargetPolicyOptions {
  readonly allowPrivateNetworks: boolean;
  readonly allowed: HostList;
  readonly denied: HostList;
  readonly resolver: Resolver;
  readonly resolveTimeoutMs: number;
}

/** Host-level egress decisions (everything except scheme and port). */
export class TargetPolicy {
  readonly #options: TargetPolicyOptions;

  constructor(options: TargetPolicyOptions) {
    this.#options = options;
  }

  /**
   * Judges one address. `allowedByName` is true when the host name matched an allowlist entry:
   * the operator vouched for that name, so its non-global answers are permitted (how on-prem
   * servers are reached without opening every private network), but never metadata or unusable.
   * Throws `target_forbidden`.
   */
  checkAddress(address: IpAddress, allowedByName = false): void {
    const { allowPrivateNetworks, allowed, denied } = this.#options;
    const { addressClass, embedded } = inspectAddress(address);
    // The deny list wins over everything, including through NAT64/6to4/Teredo embeddings.
    if (denied.matchesAddress(address) || embedded.some((v4) => denied.matchesAddress(v4))) {
      throw refuse('host_forbidden');
    }
    if (addressClass === 'metadata' || addressClass === 'unusable') {
      throw refuse('address_forbidden', NEVER_REACHABLE_MESSAGE);
    }
    if (allowed.size > 0) {
      if (allowedByName || allowed.matchesAddress(address)) return;
      throw refuse('not_in_allowlist');
    }
    if (addressClass === 'non_global' && !allowPrivateNetworks) throw refuse('address_forbidden');
  }

  /**
   * Checks a host as a connector sees it (an IP literal or a name) and returns the addresses it
   * may connect to: for a name, every answer, and only if every answer passes. A name with one
   * bad answer is refused outright rather than filtered, because a name that mixes public and
   * private answers is either misconfigured or an attack.
   */
  async resolveHost(hostname: string): Promise<readonly ResolvedAddress[]> {
    const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
    if (bare.includes('%')) throw refuse('address_forbidden');
    const literal = parseIpAddress(bare);
    if (literal !== undefined) {
      this.checkAddress(literal);
      return [{ address: bare, family: literal.kind() === 'ipv4' ? 4 : 6 }];
    }
    const allowedByName = this.#checkName(bare);
    const name = normaliseHostName(bare);
    const answers = isLoopbackName(name) ? LOOPBACK_ANSWERS : await this.#resolve(bare);
    for (const answer of answers) {
      const address = parseIpAddress(answer.address);
      if (address === undefined) throw refuse('address_forbidden');
      this.checkAddress(address, allowedByName);
    }
    return answers;
  }

  /** Name-only checks; returns whether the allowlist names this host. */
  #checkName(hostname: string): boolean {
    const { allowed, denied } = this.#options;
    const name = normaliseHostName(hostname);
    if (name === '') throw refuse('host_forbidden');
    if (denied.matchesName(name)) throw refuse('host_forbidden');
    if (isMetadataName(name)) throw refuse('host_forbidden');
    const allowedByName = allowed.matchesName(name);
    // Without CIDR entries no answer could be allowlisted, so skip the DNS round trip.
    if (allowed.size > 0 && !allowedByName && !allowed.hasAddressEntries) throw refuse('not_in_allowlist');
    return allowedByName;
  }

  /** Resolves through the injected resolver with a deadline; failures become `dns_failed`. */
  async #resolve(hostname: string): Promise<readonly ResolvedAddress[]> {
    const { resolver, resolveTimeoutMs } = this.#options;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`DNS lookup timed out after ${resolveTimeoutMs} ms`)),
        resolveTimeoutMs,
      );
    });
    let answers: readonly ResolvedAddress[];
    try {
      answers = await Promise.race([resolver(hostname), deadline]);
    } catch (cause) {
      throw refuse('dns_failed', undefined, cause);
    } finally {
      clearTimeout(timer);
    }
    if (!Array.isArray(answers) || answers.length === 0) throw refuse('dns_failed');
    // The family comes from the address itself, not from what the resolver claims.
    return answers.map(({ address }) => ({ address, family: isIP(address) === 6 ? 6 : 4 }));
  }
}
