/**
 * @module limits/client-address
 * The client address behind the operator's own reverse proxies, for connections Fastify does
 * not see as requests (WebSocket upgrades). `X-Forwarded-For` is believed only hop by hop from
 * the right, and only while the hop is a configured trusted proxy — as Fastify's `trustProxy`.
 */
import { BlockList, isIP } from 'node:net';

/** Resolves client addresses against a fixed list of trusted proxies (addresses or CIDRs). */
export class ClientAddress {
  readonly #trusted = new BlockList();
  readonly #any: boolean;

  constructor(trustedProxies: readonly string[]) {
    this.#any = trustedProxies.length > 0;
    for (const entry of trustedProxies) {
      const [address = '', prefix] = entry.split('/');
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (isIP(address) === 0) continue;
      if (prefix === undefined) this.#trusted.addAddress(address, family);
      else this.#trusted.addSubnet(address, Number(prefix), family);
    }
  }

  /** The client's address given the socket peer and the X-Forwarded-For header. */
  of(remote: string | undefined, forwardedFor: string | string[] | undefined): string {
    let client = normalise(remote ?? '');
    if (!this.#any) return client;
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : (forwardedFor ?? ''))
      .split(',')
      .map((hop) => normalise(hop.trim()))
      .filter((hop) => isIP(hop) !== 0);
    while (this.#isTrusted(client) && hops.length > 0) client = hops.pop() as string;
    return client;
  }

  #isTrusted(address: string): boolean {
    const family = isIP(address);
    return family !== 0 && this.#trusted.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}

function normalise(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}
