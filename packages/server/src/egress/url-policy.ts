/**
 * @module egress/url-policy
 * Parses a target URL with the WHATWG URL parser (the same one undici uses, so the guard judges
 * exactly the host that will be connected to) and applies the checks that need no DNS: scheme,
 * credentials, host shape and port.
 */
import { isIPv4 } from 'node:net';
import { type IpAddress, parseIpAddress } from './address-policy.ts';
import { authorityAmbiguity } from './authority-check.ts';
import { refuse } from './refusal.ts';

/** Schemes an MCP server may use (Streamable HTTP / SSE over http(s), WebSocket over ws(s)). */
export const ALLOWED_SCHEMES: ReadonlySet<string> = new Set(['http:', 'https:', 'ws:', 'wss:']);

/** Default port per allowed scheme (RFC 9110 §4.2, RFC 6455 §3). */
export const DEFAULT_PORTS: Readonly<Record<string, number>> = {
  'http:': 80,
  'ws:': 80,
  'https:': 443,
  'wss:': 443,
};

/** The host of a parsed target: an IP literal (judged directly) or a name (resolved first). */
export type TargetHost =
  | { readonly kind: 'address'; readonly address: IpAddress }
  | { readonly kind: 'name'; readonly name: string };

/** A URL that passed the URL policy. */
export interface ParsedTarget {
  readonly url: URL;
  readonly host: TargetHost;
  readonly port: number;
}

/** The port a URL connects to: explicit, or its scheme's default. */
export function effectivePort(url: URL): number {
  return url.port === '' ? (DEFAULT_PORTS[url.protocol] ?? 0) : Number(url.port);
}

/** Refuses port 0 always, and any port outside `allowedPorts` when that list is non-empty. */
export function checkPort(port: number, allowedPorts: readonly number[]): void {
  // Port 0 means "any port" to the socket API; connecting to it is never meaningful.
  if (port < 1 || port > 65_535 || (allowedPorts.length > 0 && !allowedPorts.includes(port))) {
    throw refuse('port_not_allowed');
  }
}

/**
 * Applies the URL policy. Throws `target_forbidden` with the refusal reason.
 * A URL object is re-parsed from its `href`, so a subclass or a later mutation cannot smuggle a
 * different host past the check.
 */
export function parseTarget(raw: string | URL, allowedPorts: readonly number[]): ParsedTarget {
  // Before anything else: a URL parsers disagree on is refused, whatever host WHATWG would read.
  if (typeof raw === 'string') refuseAmbiguous(raw);
  let url: URL;
  try {
    url = new URL(typeof raw === 'string' ? raw : raw.href);
  } catch (cause) {
    throw refuse('host_forbidden', 'The MCP server URL is not a valid absolute URL.', cause);
  }
  if (!ALLOWED_SCHEMES.has(url.protocol)) throw refuse('scheme_not_allowed');
  // Credentials in the URL are the classic `http://trusted@evil/` confusion and would leak to
  // the upstream as Basic auth; MCP credentials travel in the Authorization header instead.
  if (url.username !== '' || url.password !== '') {
    throw refuse('host_forbidden', 'The MCP server URL must not contain credentials (user:pass@).');
  }
  if (url.hostname === '') throw refuse('host_forbidden', 'The MCP server URL has no host.');
  const host = targetHost(url, typeof raw === 'string' ? raw : undefined);
  const port = effectivePort(url);
  checkPort(port, allowedPorts);
  return { url, host, port };
}

/** Refuses (`ambiguous_url`) a raw URL or `Location` whose authority parsers read differently. */
export function refuseAmbiguous(raw: string): void {
  const ambiguity = authorityAmbiguity(raw);
  if (ambiguity !== undefined) {
    throw refuse(
      'ambiguous_url',
      `The MCP server URL's host part is written ambiguously (${ambiguity}), so URL parsers disagree on which host it names; write it plainly as scheme://host:port/path.`,
    );
  }
}

function targetHost(url: URL, raw: string | undefined): TargetHost {
  const hostname = url.hostname;
  if (hostname.startsWith('[')) {
    const address = parseIpAddress(hostname.slice(1, -1));
    if (address === undefined) throw refuse('address_forbidden');
    return { kind: 'address', address };
  }
  if (isIPv4(hostname)) {
    // WHATWG turns `0x7f.1`, `2130706433`, `0177.0.0.1`, fullwidth digits and percent-encoding
    // into dotted decimal. Nobody writes those by accident (and `010.0.0.1` being 8.0.0.1 surprises
    // people), so an IPv4 host that was not written canonically is refused outright.
    if (raw !== undefined && rawHost(raw) !== hostname) {
      throw refuse('host_forbidden', 'Write IPv4 addresses in MCP server URLs in plain dotted decimal.');
    }
    return { kind: 'address', address: parseIpAddress(hostname) as IpAddress };
  }
  return { kind: 'name', name: hostname };
}

/**
 * The host text exactly as written in a special-scheme URL (WHATWG URL §4.4: strip C0 controls
 * and spaces at the ends, drop tabs and newlines, any mix of slashes after the scheme, the host
 * follows the last `@` of the authority). Used only to spot obfuscated IPv4 literals; a mismatch
 * refuses, so any imprecision here fails closed.
 */
function rawHost(raw: string): string {
  let text = '';
  for (const char of raw) if (char !== '\t' && char !== '\n' && char !== '\r') text += char;
  let from = 0;
  let to = text.length;
  while (from < to && text.charCodeAt(from) <= 0x20) from++;
  while (to > from && text.charCodeAt(to - 1) <= 0x20) to--;
  text = text.slice(from, to);
  let start = text.indexOf(':') + 1;
  while (text[start] === '/' || text[start] === '\\') start++;
  let end = start;
  while (end < text.length && !'/\\?#'.includes(text[end] as string)) end++;
  const authority = text.slice(start, end);
  const host = authority.slice(authority.lastIndexOf('@') + 1);
  const colon = host.indexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}
