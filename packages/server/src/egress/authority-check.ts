/**
 * @module egress/authority-check
 * Refuses URLs whose authority (the `host[:port]` part) different URL parsers read differently
 * (issue #14.11). WHATWG treats `\` as `/` in special schemes, strips tabs and newlines, takes
 * the host after the *last* `@` and maps fullwidth punctuation through IDNA; RFC 3986 parsers
 * (and many proxies, logs and allowlists in front of us) do none of that. `http://evil.com\@127.0.0.1/`
 * is `evil.com` to one and `127.0.0.1` to the other. The guard always judges WHATWG's reading,
 * which is what undici connects to, so nothing is bypassed; but such a URL is never legitimate,
 * and refusing it keeps every log and every downstream reader in agreement with the verdict.
 *
 * The check reads the raw text before any parsing and is deliberately broad: it fails closed.
 */
import { domainToASCII, domainToUnicode } from 'node:url';

/** Why a raw URL's authority is ambiguous, or `undefined` when it is written plainly. */
export function authorityAmbiguity(raw: string): string | undefined {
  for (const char of raw) {
    const code = char.codePointAt(0) as number;
    // WHATWG strips leading/trailing C0 and spaces and removes tabs and newlines anywhere;
    // other parsers keep them or stop at them.
    if (code <= 0x20 || code === 0x7f) return 'a whitespace or control character';
  }
  const colon = raw.indexOf(':');
  const slash = raw.search(/[/\\?#]/);
  // A relative reference (a redirect's `Location`) has no authority unless it starts with two slashes.
  const schemeEnd = colon !== -1 && (slash === -1 || colon < slash) ? colon + 1 : 0;
  // Other schemes are refused by the scheme check, which gives the more useful reason.
  if (schemeEnd !== 0 && !SPECIAL_SCHEMES.has(raw.slice(0, schemeEnd).toLowerCase())) return undefined;
  let start = schemeEnd;
  while (raw[start] === '/' || raw[start] === '\\') start++;
  const separator = raw.slice(schemeEnd, start);
  if (separator.includes('\\')) return 'a backslash';
  if (schemeEnd === 0 && separator.length < 2) return undefined; // a path, not an authority
  if (separator.length !== 2) return `${separator.length} slashes after the scheme`;
  let end = start;
  while (end < raw.length && !'/?#'.includes(raw[end] as string)) end++;
  const authority = raw.slice(start, end);
  if (authority.includes('\\')) return 'a backslash';
  const at = authority.indexOf('@');
  if (at === 0) return 'an "@" with no user name before it';
  if (at !== -1 && authority.indexOf('@', at + 1) !== -1) return 'more than one "@"';
  if (authority.includes('%')) return 'percent-encoding';
  for (const char of authority) {
    if (char.charCodeAt(0) < 0x80) continue;
    if (CONFUSABLE_DOTS.has(char)) return 'a character that IDNA turns into URL punctuation';
    // Fullwidth and compatibility forms of `@ : / \ ? # % [ ]` become the real thing in WHATWG.
    if (/[@:/\\?#%[\]\s]/.test(char.normalize('NFKC'))) {
      return 'a character that IDNA turns into URL punctuation';
    }
  }
  const host = authority.slice(at + 1);
  const bracket = host.search(/[[\]]/);
  if (bracket !== -1 && !/^\[[^[\]]*\](:\d*)?$/.test(host)) return 'a misplaced "[" or "]"';
  if (!roundTrips(host)) return 'a character that IDNA drops or rewrites';
  return undefined;
}

/**
 * True when a host (with any port) is read as it is written. IDNA (UTS #46) drops some code
 * points (soft hyphen, zero-width space, variation selectors, the combining grapheme joiner) and
 * maps compatibility forms (fullwidth or circled letters) to others, so `local\u00ADhost` is
 * `localhost` to WHATWG and something else to every other reader. A non-ASCII host is accepted
 * only when, lowercased, it is exactly what WHATWG makes of it, in Unicode: a real IDN such as
 * `bücher.example` round-trips, and so does any ASCII host (ASCII needs only lowercasing).
 */
function roundTrips(host: string): boolean {
  const colon = host.lastIndexOf(':');
  const name = host.startsWith('[') || colon === -1 ? host : host.slice(0, colon);
  if (!/[^\p{ASCII}]/u.test(name)) return true;
  const written = name.toLowerCase();
  const ascii = domainToASCII(written);
  return ascii !== '' && (written === ascii || written === domainToUnicode(ascii));
}

/** Schemes the guard accepts; their authority is what WHATWG parses specially. */
const SPECIAL_SCHEMES: ReadonlySet<string> = new Set(['http:', 'https:', 'ws:', 'wss:']);

/** Characters IDNA (UTS #46) maps to `.` that NFKC alone does not. */
const CONFUSABLE_DOTS: ReadonlySet<string> = new Set(['\u3002', '\uff0e', '\uff61']);
