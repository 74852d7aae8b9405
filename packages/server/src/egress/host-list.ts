/**
 * @module egress/host-list
 * Operator allow/deny lists: exact names, `*.suffix` wildcards, CIDRs and single addresses.
 * Entries are parsed once at start-up and a bad entry fails loudly there, because a typo in a
 * deny list that silently matched nothing would be a hole nobody notices.
 */
import ipaddr from 'ipaddr.js';
import { type IpAddress, parseIpAddress } from './address-policy.ts';
import { normaliseHostName } from './special-names.ts';

/** Characters that cannot appear in a host-name entry (URL delimiters, white space, brackets). */
const FORBIDDEN_IN_NAME = /[\s/\\?#@:[\]%*]/u;

/** A parsed allow or deny list. */
export class HostList {
  readonly #entries: readonly string[];
  readonly #exact: ReadonlySet<string>;
  /** Wildcard suffixes with their leading dot, e.g. `.example.com`. */
  readonly #suffixes: readonly string[];
  readonly #ranges: readonly (readonly [IpAddress, number])[];

  private constructor(
    entries: readonly string[],
    exact: ReadonlySet<string>,
    suffixes: readonly string[],
    ranges: readonly (readonly [IpAddress, number])[],
  ) {
    this.#entries = entries;
    this.#exact = exact;
    this.#suffixes = suffixes;
    this.#ranges = ranges;
  }

  /** Parses list entries; throws a TypeError naming the first bad entry. */
  static parse(entries: readonly string[], label: string): HostList {
    const exact = new Set<string>();
    const suffixes: string[] = [];
    const ranges: (readonly [IpAddress, number])[] = [];
    const shown: string[] = [];
    for (const raw of entries) {
      const entry = raw.trim();
      try {
        if (entry.includes('/')) ranges.push(parseRange(entry));
        else if (parseLiteral(entry) !== undefined) ranges.push(singleAddress(entry));
        else if (entry.startsWith('*.')) suffixes.push(`.${parseName(entry.slice(2))}`);
        else exact.add(parseName(entry));
      } catch (error) {
        throw new TypeError(`${label}: invalid entry ${JSON.stringify(raw)}: ${(error as Error).message}`);
      }
      shown.push(entry);
    }
    return new HostList(Object.freeze(shown), exact, Object.freeze(suffixes), Object.freeze(ranges));
  }

  /** Number of entries. */
  get size(): number {
    return this.#entries.length;
  }

  /** True when the list holds at least one CIDR or address entry. */
  get hasAddressEntries(): boolean {
    return this.#ranges.length > 0;
  }

  /** The entries as the operator wrote them (trimmed), for the start-up log. */
  get entries(): readonly string[] {
    return this.#entries;
  }

  /** True when a normalised host name matches an exact or wildcard entry. */
  matchesName(name: string): boolean {
    const host = normaliseHostName(name);
    return this.#exact.has(host) || this.#suffixes.some((suffix) => host.endsWith(suffix));
  }

  /** True when an address lies inside a CIDR or equals an address entry. */
  matchesAddress(address: IpAddress): boolean {
    return this.#ranges.some(([base, bits]) => base.kind() === address.kind() && address.match(base, bits));
  }
}

function parseLiteral(entry: string): IpAddress | undefined {
  const bare = entry.startsWith('[') && entry.endsWith(']') ? entry.slice(1, -1) : entry;
  return parseIpAddress(bare);
}

function singleAddress(entry: string): readonly [IpAddress, number] {
  const address = parseLiteral(entry) as IpAddress;
  return [address, address.kind() === 'ipv4' ? 32 : 128];
}

function parseRange(entry: string): readonly [IpAddress, number] {
  const slash = entry.lastIndexOf('/');
  const base = parseLiteral(entry.slice(0, slash));
  const text = entry.slice(slash + 1);
  const bits = /^\d{1,3}$/u.test(text) ? Number(text) : Number.NaN;
  if (base === undefined) throw new Error('the address part must be a canonical IPv4 or IPv6 address');
  // An IPv4-mapped base was unwrapped to IPv4, so its prefix loses the 96 mapped bits.
  const mapped = base.kind() === 'ipv4' && entry.includes(':');
  const effective = mapped ? bits - 96 : bits;
  const max = base.kind() === 'ipv4' ? 32 : 128;
  if (!Number.isInteger(effective) || effective < 0 || effective > max) {
    throw new Error(`the prefix length must be 0-${mapped ? 128 : max}`);
  }
  return [base, effective];
}

function parseName(name: string): string {
  const host = normaliseHostName(name);
  if (host === '' || FORBIDDEN_IN_NAME.test(host)) throw new Error('not a host name, CIDR or address');
  let parsed: string;
  try {
    parsed = new URL(`http://${host}/`).hostname;
  } catch {
    throw new Error('not a valid host name');
  }
  // A name the URL parser reads as an IPv4 address (e.g. `0x7f.1`) must be written canonically.
  if (ipaddr.IPv4.isValidFourPartDecimal(parsed)) throw new Error('write IPv4 addresses in dotted decimal');
  return parsed;
}
