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

/**
 * The subject per-address limits count under. An IPv6 host is usually given a whole /64, so
 * counting each address apart would hand one client 2^64 budgets (issue 14 #10): IPv6 counts
 * per /64. IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
 */
export function rateSubject(address: string): string {
  const plain = normalise(address.split('%')[0] ?? '');
  if (isIP(plain) !== 6) return plain;
  const groups = ipv6Groups(plain);
  return groups ? `${groups.slice(0, 4).join(':')}::/64` : plain;
}

/** The eight 16-bit groups of a valid IPv6 address, as lower-case hex without leading zeros. */
function ipv6Groups(address: string): string[] | undefined {
  let text = address.toLowerCase();
  // A dotted IPv4 tail (e.g. 64:ff9b::192.0.2.1) is two groups.
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (tail) {
    const [a, b, c, d] = tail.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const fill = rest === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  const groups = [...left, ...fill, ...right];
  if (groups.length !== 8) return undefined;
  return groups.map((group) => Number.parseInt(group, 16).toString(16));
}

function normalise(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}
