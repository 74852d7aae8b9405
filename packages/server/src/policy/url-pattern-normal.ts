/**
 * @module policy/url-pattern-normal
 * A URL pattern spelt as the URLs it is matched against are (review11 URLPATTERN-3): the matcher
 * reads a target as parsed (policy/url-pattern.ts `matchedForm`: default port dropped, host in
 * punycode, path percent-encoded, `..` resolved), so a pattern written as an operator types a URL
 * (`http://h:80/**`, `/café/**`, `bücher.example`) would match not even the URL it spells. Each
 * pattern is put in that form where it is taken in (the config, a mint request, a minted token
 * when verified), or refused when it has none: a wildcard inside a non-ASCII host label (punycode
 * would scramble it, however the label is written), user info, a port that is no number, a
 * wildcard that a `..` segment would remove, an encoded `/` or `\` (targets with one are refused:
 * dispatch/targets.ts).
 */
import { upperEscapes } from './url-pattern.ts';

/** The port a scheme's URLs leave out. */
const DEFAULT_PORTS: Readonly<Record<string, string>> = {
  'http:': '80',
  'https:': '443',
  'ws:': '80',
  'wss:': '443',
};

/** A pattern in normal form, or why it has none (a phrase: "its host …"). */
export type NormalPattern = { readonly pattern: string } | { readonly refused: string };

/**
 * `pattern` with its literal parts spelt as a parsed URL spells them (what a wildcard stands for
 * is unchanged): the pattern written for a URL then matches that URL.
 */
export function normalPattern(pattern: string): NormalPattern {
  const schemeEnd = pattern.indexOf('//');
  if (schemeEnd === -1) return { refused: 'it is not a URL' };
  const scheme = pattern.slice(0, schemeEnd).toLowerCase();
  const slash = pattern.indexOf('/', schemeEnd + 2);
  const authority = pattern.slice(schemeEnd + 2, slash === -1 ? undefined : slash);
  if (authority.includes('@')) return { refused: 'it names user info, which targets are never matched by' };
  const hostEnd = authority.indexOf(':', authority.startsWith('[') ? authority.indexOf(']') : 0);
  const host = normalHost(scheme, hostEnd === -1 ? authority : authority.slice(0, hostEnd));
  if (host === undefined) return { refused: 'its host is not a host name or address' };
  if (host === false)
    return { refused: 'a wildcard is in a host label with non-ASCII characters or in punycode (xn--)' };
  const port = normalPort(scheme, hostEnd === -1 ? '' : authority.slice(hostEnd + 1));
  if (port === undefined) return { refused: 'its port is not a number up to 65535 (or a wildcard)' };
  const written = slash === -1 ? '/' : pattern.slice(slash);
  if (/[?#]/.test(written))
    return { refused: 'it has a query or fragment, which targets are never matched by' };
  const parsed = URL.parse(`${scheme}//h${written}`)?.pathname;
  if (parsed === undefined || wildcards(parsed) !== wildcards(written))
    return { refused: 'a `..` segment of its path removes a wildcard' };
  const path = upperEscapes(parsed);
  if (/%2F|%5C/.test(path))
    return { refused: 'its path has an encoded `/` or `\\` (%2F, %5C), which no target may have' };
  return { pattern: `${scheme}//${host}${port}${path}` };
}

/** The host as URLs spell it; undefined: no host; false: a wildcard in a non-ASCII label. */
function normalHost(scheme: string, host: string): string | false | undefined {
  if (wildNonAscii(host)) return false;
  const url = URL.parse(`${scheme}//${host}/`);
  // Nothing of it read as a port or path (a `\` ends a host in a URL), no wildcard lost.
  if (url !== null && url.port === '' && url.pathname === '/' && wildcards(url.hostname) === wildcards(host))
    // Checked again as parsed: a label written percent-encoded (`%C3%BC*`) is non-ASCII only once
    // decoded, and then in punycode (`xn--*-dha`: review12 URLPATTERN-2).
    return wildNonAscii(url.hostname) ? false : url.hostname;
  // A wildcard where a URL has a number (`10.0.*.1`, `[::*]`): compared as written, as before.
  return host.includes('*') && /^[\x21-\x7e]+$/.test(host) ? host.toLowerCase() : undefined;
}

/** `:port` as URLs spell it ('' for none or the scheme's default); undefined: not a port. */
function normalPort(scheme: string, port: string): string | undefined {
  if (port === '') return '';
  if (/^\d+$/.test(port)) {
    const number = Number(port);
    if (number > 65_535) return undefined;
    return String(number) === DEFAULT_PORTS[scheme] ? '' : `:${number}`;
  }
  return /^[\d*]+$/.test(port) ? `:${port}` : undefined;
}

/** Whether a label of `host` holds a wildcard and non-ASCII characters, or is punycode (`xn--`). */
function wildNonAscii(host: string): boolean {
  return host
    .split('.')
    .some((label) => label.includes('*') && (/\P{ASCII}/u.test(label) || /^xn--/i.test(label)));
}

function wildcards(text: string): number {
  return text.split('*').length - 1;
}
