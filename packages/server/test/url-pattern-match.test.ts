/**
 * The URL pattern matcher (policy/url-pattern.ts `urlMatches`, bit-parallel since review11
 * URLPATTERN-2) against the rule docs/identity.md states, decided here by brute force: memoised
 * recursion over (URL position, pattern position), a wildcard either ending or taking one more
 * character it may span. Random patterns and URLs, most URLs spelt from their pattern (so that
 * matches are common), some altered by a character; patterns long enough to cross 32-unit words.
 * Review 12: a URL's percent-escapes are read in uppercase (URLPATTERN-3), and a pattern whose
 * host is digits, dots and wildcards matches IPv4 hosts only (URLPATTERN-4).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { urlMatches } from '../src/policy/url-pattern.ts';

type Token = { readonly char: string } | { readonly stops: string };

/** The rule by brute force: `*` stops at `stops`' characters, `**` in the path at none. */
function reference(pattern: string, raw: string): boolean {
  const url = URL.parse(raw);
  if (url === null) return false;
  const path = url.pathname.replace(/%[0-9a-f]{2}/gi, (octet) => octet.toUpperCase());
  const text = [...`${url.protocol}//${url.host}${path}`];
  const cut = pattern.indexOf('/', pattern.indexOf('//') + 2);
  const patternHost = (cut === -1 ? pattern : pattern.slice(0, cut))
    .replace(/^.*?\/\//, '')
    .replace(/:[^:]*$/, '');
  const address = /^[0-9*.]*$/.test(patternHost) && /[0-9]/.test(patternHost);
  if (address && !/^[0-9.]+$/.test(url.hostname)) return false;
  const tokens: Token[] = [];
  const read = (part: string, one: string, many: string) => {
    for (let at = 0; at < part.length; ) {
      if (part.startsWith('**', at)) {
        tokens.push({ stops: many });
        at += 2;
      } else if (part[at] === '*') {
        tokens.push({ stops: one });
        at += 1;
      } else {
        const char = String.fromCodePoint(part.codePointAt(at) as number);
        tokens.push({ char });
        at += char.length;
      }
    }
  };
  read((cut === -1 ? pattern : pattern.slice(0, cut)).toLowerCase(), '/.:', '/');
  read(cut === -1 ? '/' : pattern.slice(cut), '/', '');
  const memo = new Map<number, boolean>();
  const from = (i: number, j: number): boolean => {
    const key = i * 4096 + j;
    const known = memo.get(key);
    if (known !== undefined) return known;
    const token = tokens[j];
    let result: boolean;
    if (token === undefined) result = i === text.length;
    else if ('char' in token) result = text[i] === token.char && from(i + 1, j + 1);
    else
      result =
        from(i, j + 1) || (i < text.length && !token.stops.includes(text[i] as string) && from(i + 1, j));
    memo.set(key, result);
    return result;
  };
  return from(0, 0);
}

/** A seeded generator (xorshift32): the same cases on every run. */
function random(seed: number) {
  let state = seed;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  return { next, pick, count: (most: number) => Math.floor(next() * (most + 1)) };
}

const HOST_PIECES = ['a', 'b', 'ab', '-', '.', '*', '**', 'x1', '1', '27', '1.2'] as const;
const PATH_PIECES = ['a', 'b', 'ab', '/', '.', '-', '*', '**', '%41', '%4A', 'é', ':', '..'] as const;
/** What a wildcard may become when a URL is spelt from a pattern. */
const FILLS = ['', 'a', 'ab', 'b.a', 'a/b', '/', 'x:y', 'é', '7', '1.2', '%4a'] as const;

describe('URL patterns: the bit-parallel matcher decides as the rule does', () => {
  it('agrees with a brute-force matcher on 20 000 random pattern/URL pairs', () => {
    const rng = random(0x9e3779b9);
    let matches = 0;
    for (let n = 0; n < 20_000; n++) {
      const long = n % 10 === 0;
      const host = Array.from({ length: 1 + rng.count(long ? 12 : 4) }, () => rng.pick(HOST_PIECES)).join('');
      const port = rng.pick(['', ':1', ':*', ':8*', ':80']);
      const path = Array.from({ length: rng.count(long ? 40 : 8) }, () => rng.pick(PATH_PIECES)).join('');
      const pattern = `${rng.pick(['http', 'https', 'ws', '*', '**', 'h*p'])}://${host}${port}${path === '' ? '' : `/${path}`}`;
      // A URL spelt from the pattern: each wildcard filled in, sometimes a character changed.
      let spelt = pattern.replace(/\*\*|\*/g, () => rng.pick(FILLS));
      if (rng.next() < 0.3) {
        const at = rng.count(spelt.length - 1);
        spelt = `${spelt.slice(0, at)}${rng.pick(['a', '/', '.', '*', 'z', '3'])}${spelt.slice(at + 1)}`;
      }
      if (rng.next() < 0.3) spelt = spelt.replace(/%[0-9A-F]{2}/g, (octet) => octet.toLowerCase());
      const expected = reference(pattern, spelt);
      if (expected) matches++;
      assert.equal(urlMatches(pattern, spelt), expected, `${pattern} against ${spelt}`);
    }
    // Both answers are common, or the comparison says little.
    assert.ok(matches > 2_000 && matches < 18_000, `${matches} of 20 000 pairs match`);
  });

  it('agrees on patterns longer than one machine word, wildcards at the word edges', () => {
    for (let length = 28; length <= 70; length++) {
      const pattern = `http://h/${'a'.repeat(length - 9)}**b`;
      for (const url of [
        `http://h/${'a'.repeat(length - 9)}b`,
        `http://h/${'a'.repeat(length - 9)}xyz/b`,
        `http://h/${'a'.repeat(length - 10)}b`,
        `http://h/${'a'.repeat(length)}`,
      ]) {
        assert.equal(urlMatches(pattern, url), reference(pattern, url), `${pattern} against ${url}`);
      }
    }
  });
});
