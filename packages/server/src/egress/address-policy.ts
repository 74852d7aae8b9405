/**
 * @module egress/address-policy
 * Classifies an IP address by how far it may be reached, from the IANA IPv4 and IPv6
 * Special-Purpose Address Registries (RFC 6890 and updates) plus cloud metadata endpoints.
 * Works on parsed addresses (ipaddr.js) only, never on strings, so every spelling of an address
 * gets the same verdict. The rule tables are exported so docs/security.md can be checked against
 * them.
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/** A parsed IPv4 or IPv6 address. */
export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;

/**
 * How far an address may be reached, in increasing severity:
 * `global` always; `non_global` only with `allowPrivateNetworks` or an allowlist entry;
 * `metadata` and `unusable` (unspecified, multicast, broadcast) never.
 */
export type AddressClass = 'global' | 'non_global' | 'metadata' | 'unusable';

/** Where an address embeds IPv4 addresses that decide (part of) its verdict. */
type Embedding = 'v4_last32' | 'nat64_local' | 'six_to_four' | 'teredo';

/** One row of the address tables; the first matching row wins. */
export interface AddressRule {
  /** The range as written in the docs, e.g. `10.0.0.0/8`. */
  readonly cidr: string;
  /** Verdict for the range itself (a floor when the range embeds IPv4). */
  readonly addressClass: AddressClass;
  /** The specification that defines the range. */
  readonly source: string;
  /** When set, embedded IPv4 addresses are classified too and the most severe class wins. */
  readonly embeds?: Embedding;
}

/** An address's verdict plus the IPv4 addresses it embeds (for deny-list matching). */
export interface AddressVerdict {
  readonly addressClass: AddressClass;
  readonly embedded: readonly ipaddr.IPv4[];
}

const SEVERITY: Readonly<Record<AddressClass, number>> = {
  global: 0,
  non_global: 1,
  metadata: 2,
  unusable: 3,
};

/** IPv4 rules. Exceptions precede the ranges that contain them. */
export const IPV4_RULES: readonly AddressRule[] = Object.freeze([
  // Cloud metadata endpoints hand out credentials; refused even with allowPrivateNetworks.
  { cidr: '169.254.169.254/32', addressClass: 'metadata', source: 'AWS, GCP, Azure, OpenStack, Oracle IMDS' },
  { cidr: '169.254.170.2/32', addressClass: 'metadata', source: 'AWS ECS task metadata' },
  { cidr: '169.254.170.23/32', addressClass: 'metadata', source: 'AWS EKS Pod Identity agent' },
  { cidr: '169.254.0.23/32', addressClass: 'metadata', source: 'Tencent Cloud metadata' },
  { cidr: '100.100.100.200/32', addressClass: 'metadata', source: 'Alibaba Cloud metadata' },
  { cidr: '192.0.0.192/32', addressClass: 'metadata', source: 'Oracle Cloud Classic metadata' },
  { cidr: '168.63.129.16/32', addressClass: 'metadata', source: 'Azure WireServer (a public address)' },
  // Linux connects 0.0.0.0 to the local host ("0.0.0.0 day"), so "this network" is never usable.
  { cidr: '0.0.0.0/8', addressClass: 'unusable', source: 'RFC 791 / RFC 1122 "this network"' },
  { cidr: '192.0.0.9/32', addressClass: 'global', source: 'RFC 7723 PCP anycast (global exception)' },
  { cidr: '192.0.0.10/32', addressClass: 'global', source: 'RFC 8155 TURN anycast (global exception)' },
  { cidr: '10.0.0.0/8', addressClass: 'non_global', source: 'RFC 1918 private' },
  { cidr: '100.64.0.0/10', addressClass: 'non_global', source: 'RFC 6598 shared (CGNAT)' },
  { cidr: '127.0.0.0/8', addressClass: 'non_global', source: 'RFC 1122 loopback' },
  { cidr: '169.254.0.0/16', addressClass: 'non_global', source: 'RFC 3927 link-local' },
  { cidr: '172.16.0.0/12', addressClass: 'non_global', source: 'RFC 1918 private' },
  { cidr: '192.0.0.0/24', addressClass: 'non_global', source: 'RFC 6890 IETF protocol assignments' },
  { cidr: '192.0.2.0/24', addressClass: 'non_global', source: 'RFC 5737 TEST-NET-1' },
  { cidr: '192.88.99.0/24', addressClass: 'non_global', source: 'RFC 7526 deprecated 6to4 relay anycast' },
  { cidr: '192.168.0.0/16', addressClass: 'non_global', source: 'RFC 1918 private' },
  { cidr: '198.18.0.0/15', addressClass: 'non_global', source: 'RFC 2544 benchmarking' },
  { cidr: '198.51.100.0/24', addressClass: 'non_global', source: 'RFC 5737 TEST-NET-2' },
  { cidr: '203.0.113.0/24', addressClass: 'non_global', source: 'RFC 5737 TEST-NET-3' },
  { cidr: '224.0.0.0/4', addressClass: 'unusable', source: 'RFC 5771 multicast' },
  { cidr: '255.255.255.255/32', addressClass: 'unusable', source: 'RFC 919 limited broadcast' },
  { cidr: '240.0.0.0/4', addressClass: 'non_global', source: 'RFC 1112 reserved' },
]);

/** IPv6 rules (IPv4-mapped addresses are judged as IPv4 before these apply). */
export const IPV6_RULES: readonly AddressRule[] = Object.freeze([
  { cidr: 'fd00:ec2::254/128', addressClass: 'metadata', source: 'AWS IMDS (IPv6)' },
  { cidr: 'fd00:ec2::23/128', addressClass: 'metadata', source: 'AWS EKS Pod Identity agent (IPv6)' },
  { cidr: 'fd20:ce::254/128', addressClass: 'metadata', source: 'GCP metadata (IPv6)' },
  { cidr: '::/128', addressClass: 'unusable', source: 'RFC 4291 unspecified' },
  { cidr: '::1/128', addressClass: 'non_global', source: 'RFC 4291 loopback' },
  {
    cidr: '::/96',
    addressClass: 'non_global',
    source: 'RFC 4291 §2.5.5.1 IPv4-compatible',
    embeds: 'v4_last32',
  },
  // RFC 6052 §3.1: the well-known prefix must not embed non-global IPv4, so judge the embedded one.
  {
    cidr: '64:ff9b::/96',
    addressClass: 'global',
    source: 'RFC 6052 NAT64 well-known prefix',
    embeds: 'v4_last32',
  },
  {
    cidr: '64:ff9b:1::/48',
    addressClass: 'non_global',
    source: 'RFC 8215 local-use NAT64',
    embeds: 'nat64_local',
  },
  { cidr: '100::/64', addressClass: 'non_global', source: 'RFC 6666 discard-only' },
  { cidr: '2001:1::1/128', addressClass: 'global', source: 'RFC 7723 PCP anycast (global exception)' },
  { cidr: '2001:1::2/128', addressClass: 'global', source: 'RFC 8155 TURN anycast (global exception)' },
  { cidr: '2001:1::3/128', addressClass: 'global', source: 'RFC 9665 DNS-SD SRP anycast (global exception)' },
  { cidr: '2001:3::/32', addressClass: 'global', source: 'RFC 7450 AMT (global exception)' },
  { cidr: '2001:4:112::/48', addressClass: 'global', source: 'RFC 7535 AS112-v6 (global exception)' },
  { cidr: '2001:20::/28', addressClass: 'global', source: 'RFC 7343 ORCHIDv2 (global exception)' },
  { cidr: '2001:30::/28', addressClass: 'global', source: 'RFC 9374 DRIP DET (global exception)' },
  { cidr: '2001::/32', addressClass: 'non_global', source: 'RFC 4380 Teredo', embeds: 'teredo' },
  { cidr: '2001::/23', addressClass: 'non_global', source: 'RFC 2928 IETF protocol assignments' },
  { cidr: '2001:db8::/32', addressClass: 'non_global', source: 'RFC 3849 documentation' },
  { cidr: '2002::/16', addressClass: 'global', source: 'RFC 3056 6to4', embeds: 'six_to_four' },
  { cidr: '3fff::/20', addressClass: 'non_global', source: 'RFC 9637 documentation' },
  { cidr: '5f00::/16', addressClass: 'non_global', source: 'RFC 9602 SRv6 SIDs' },
  { cidr: 'fc00::/7', addressClass: 'non_global', source: 'RFC 4193 unique local' },
  { cidr: 'fe80::/10', addressClass: 'non_global', source: 'RFC 4291 link-local' },
  { cidr: 'fec0::/10', addressClass: 'non_global', source: 'RFC 3879 deprecated site-local' },
  { cidr: 'ff00::/8', addressClass: 'unusable', source: 'RFC 4291 multicast' },
  { cidr: '2000::/3', addressClass: 'global', source: 'RFC 4291 global unicast' },
  // IANA IPv6 Address Space: nothing outside 2000::/3 is allocated for global unicast.
  { cidr: '::/0', addressClass: 'non_global', source: 'IANA reserved / unallocated' },
]);

type ParsedRule<T extends IpAddress> = AddressRule & { readonly range: [T, number] };

const PARSED_V4: readonly ParsedRule<ipaddr.IPv4>[] = IPV4_RULES.map((rule) => ({
  ...rule,
  range: ipaddr.IPv4.parseCIDR(rule.cidr),
}));
const PARSED_V6: readonly ParsedRule<ipaddr.IPv6>[] = IPV6_RULES.map((rule) => ({
  ...rule,
  range: ipaddr.IPv6.parseCIDR(rule.cidr),
}));

/** Byte offsets of the IPv4 address inside RFC 6052 §2.2 prefixes of /48, /56, /64 and /96. */
const RFC6052_OFFSETS: readonly (readonly number[])[] = [
  [6, 7, 9, 10],
  [7, 9, 10, 11],
  [9, 10, 11, 12],
  [12, 13, 14, 15],
];

function v4At(bytes: readonly number[], offsets: readonly number[], mask = 0): ipaddr.IPv4 {
  return new ipaddr.IPv4(offsets.map((offset) => ((bytes[offset] ?? 0) ^ mask) & 0xff));
}

function embeddedIPv4(address: ipaddr.IPv6, embedding: Embedding): ipaddr.IPv4[] {
  const bytes = address.toByteArray();
  switch (embedding) {
    case 'v4_last32':
      return [v4At(bytes, [12, 13, 14, 15])];
    case 'nat64_local':
      // The operator picks the prefix length inside 64:ff9b:1::/48, so judge every position.
      return RFC6052_OFFSETS.map((offsets) => v4At(bytes, offsets));
    case 'six_to_four':
      return [v4At(bytes, [2, 3, 4, 5])];
    case 'teredo':
      // RFC 4380 §4: server address in bits 32-63, client address obfuscated (inverted) in bits 96-127.
      return [v4At(bytes, [4, 5, 6, 7]), v4At(bytes, [12, 13, 14, 15], 0xff)];
  }
}

function worst(a: AddressClass, b: AddressClass): AddressClass {
  return SEVERITY[b] > SEVERITY[a] ? b : a;
}

function classifyV4(address: ipaddr.IPv4): AddressClass {
  for (const rule of PARSED_V4) {
    if (address.match(rule.range)) return rule.addressClass;
  }
  return 'global';
}

/** Type guard: `kind()` is a method, so TypeScript cannot narrow on it directly. */
export function isIPv4(address: IpAddress): address is ipaddr.IPv4 {
  return address.kind() === 'ipv4';
}

/** Classifies an address and lists the IPv4 addresses it embeds (NAT64, 6to4, Teredo, …). */
export function inspectAddress(address: IpAddress): AddressVerdict {
  if (isIPv4(address)) return { addressClass: classifyV4(address), embedded: [] };
  if (address.isIPv4MappedAddress()) {
    const v4 = address.toIPv4Address();
    return { addressClass: classifyV4(v4), embedded: [v4] };
  }
  for (const rule of PARSED_V6) {
    if (!address.match(rule.range)) continue;
    if (rule.embeds === undefined) return { addressClass: rule.addressClass, embedded: [] };
    const embedded = embeddedIPv4(address, rule.embeds);
    // Candidate positions inside 64:ff9b:1::/48 are guesses (most hold zeros), so only a
    // metadata match there escalates; elsewhere the embedded address is certain.
    const guessed = rule.embeds === 'nat64_local';
    const addressClass = embedded.reduce((acc, v4) => {
      const embeddedClass = classifyV4(v4);
      return guessed && embeddedClass !== 'metadata' ? acc : worst(acc, embeddedClass);
    }, rule.addressClass);
    return { addressClass, embedded };
  }
  return { addressClass: 'non_global', embedded: [] };
}

/**
 * Parses an address as a resolver or connector reports it. Strict: only the canonical text forms
 * `net.isIP` accepts (no octal, hex or short IPv4), and no IPv6 zone id, because a scoped
 * link-local address names an interface rather than a host. IPv4-mapped IPv6 (RFC 4291 §2.5.5.2)
 * is the same host as its IPv4 address, so it is returned as IPv4.
 */
export function parseIpAddress(text: string): IpAddress | undefined {
  if (isIP(text) === 0 || text.includes('%')) return undefined;
  const address = ipaddr.parse(text);
  if (!isIPv4(address) && address.isIPv4MappedAddress()) return address.toIPv4Address();
  return address;
}
