/**
 * @module limits/client-address
 * The client address behind the operator's own reverse proxies, for connections Fastify does
 * not see as requests (WebSocket upgrades), and the one subject per-address limits count under.
 * `X-Forwarded-For` is believed only hop by hop from the right, and only while the hop is a
 * configured trusted proxy — as Fastify's `trustProxy` (proxy-addr) does: the first hop that is
 * not a trusted proxy is the client, whatever its spelling (`1.2.3.4:5555` included), so HTTP
 * and `/ws` arrive at the same address and {@link rateSubject} makes one subject of it.
 */
import { BlockList, isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

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
    let client = unmapped(remote ?? '');
    if (!this.#any) return client;
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : (forwardedFor ?? ''))
      .split(',')
      .map((hop) => unmapped(hop.trim()))
      .filter((hop) => hop !== '');
    while (this.#isTrusted(client) && hops.length > 0) client = hops.pop() as string;
    return client;
  }

  #isTrusted(address: string): boolean {
    const family = isIP(address);
    return family !== 0 && this.#trusted.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}

/** Longest subject kept for a client "address" no parser reads as one. */
const MAX_UNPARSED = 64;

/**
 * The subject per-address limits count under, from a client address however it is spelled
 * (issue 14 #10 and its review). An address is parsed (ipaddr.js), not compared as text: a port
 * (`1.2.3.4:5555`, `[2001:db8::1]:443`) or a zone (`%eth0`) is dropped; an IPv4 address carried
 * in IPv6 — IPv4-mapped (`::ffff:1.2.3.4` in any spelling) or NAT64's well-known prefix
 * (`64:ff9b::1.2.3.4`, RFC 6052) — counts as that IPv4 address; any other IPv6 address counts
 * per /64, since a host is usually given a whole /64 and would otherwise get 2^64 budgets.
 */
export function rateSubject(address: string): string {
  // The common case, a canonical IPv4 address as the socket reports it, is its own subject
  // (and parsing costs a few microseconds per request).
  if (CANONICAL_IPV4.test(address)) return address;
  const parsed = parseClientAddress(address);
  if (parsed === undefined) return address.trim().slice(0, MAX_UNPARSED);
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const v6 = parsed as ipaddr.IPv6;
  const range = v6.range();
  if (range === 'ipv4Mapped') return v6.toIPv4Address().toString();
  if (range === 'rfc6052') return ipaddr.fromByteArray(v6.toByteArray().slice(12)).toString();
  return `${v6.parts
    .slice(0, 4)
    .map((part) => part.toString(16))
    .join(':')}::/64`;
}

/** Dotted-decimal IPv4 without leading zeros, each part 0-255: already canonical. */
const CANONICAL_IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** An address with an optional port or zone, parsed; undefined if it is none. */
function parseClientAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  let address = text.trim();
  const bracketed = /^\[([^\]]*)\](?::\d{1,5})?$/.exec(address);
  if (bracketed) address = bracketed[1] as string;
  else if (/^[^:]+:\d{1,5}$/.test(address)) address = address.slice(0, address.lastIndexOf(':'));
  address = address.split('%')[0] as string;
  // Only the standard spellings: ipaddr.parse would also read `127.1` or `0x7f.1` as IPv4.
  if (ipaddr.IPv4.isValidFourPartDecimal(address)) return ipaddr.IPv4.parse(address);
  if (ipaddr.IPv6.isValid(address)) return ipaddr.IPv6.parse(address);
  return undefined;
}

/** `::ffff:a.b.c.d` as Node reports IPv4 peers on a dual-stack socket, as the IPv4 address. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}
