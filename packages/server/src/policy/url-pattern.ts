/**
 * @module policy/url-pattern
 * THE URL pattern matcher (issue 17): what a `urls` grant's patterns match, and whether one
 * pattern matches every URL another does. Both read the pattern a character (or a wildcard) at a
 * time, in time linear in the product of the two lengths: never a backtracking regular
 * expression, which a pattern with many `**` makes exponential (review10 MINT-1). A URL is
 * matched with one bit per pattern unit, 32 units a machine word (review11 URLPATTERN-2: a 2 KB
 * URL against 5 000 characters of patterns is a few hundred thousand word operations, not ten
 * million steps). A pattern whose host is an address with wildcards (`127.0.0.*`, `10.**`)
 * matches IPv4 addresses only: its wildcards stand for digits, never for a domain name's letters
 * (review12 URLPATTERN-4: `127.0.0.*` reached `127.0.0.com`).
 */

/** What a wildcard of a URL pattern may span: one host label or port, no `/`, or anything. */
export type PatternSpan = 'label' | 'segment' | 'any';

/** A piece of a URL pattern: literal text, or a wildcard. */
export type PatternPart = { readonly text: string } | { readonly span: PatternSpan };

/**
 * Whether `raw` matches a URL pattern: `*` stands for any run of characters within one host
 * label, port or path segment, `**` for any run within the host and port, or any run at all in
 * the path. The URL is compared as scheme, host, port and normalised path (`..` resolved, default
 * port dropped, percent-escapes in uppercase); its query, fragment and any user info never decide.
 * A `*` in the URL itself is a character like any other. A host of digits and wildcards matches
 * IPv4 addresses only.
 */
export function urlMatches(pattern: string, raw: string): boolean {
  const form = matchedForm(raw);
  return form !== undefined && formMatches(compilePattern(pattern), form);
}

/**
 * The text of `raw` that patterns are matched against: scheme, `//`, host and port (the default
 * port dropped, an IDN host in punycode), and the path (`..` resolved, non-ASCII characters
 * percent-encoded); undefined when `raw` is no URL. Its length, not `raw`'s, is what matching
 * costs (review11 URLPATTERN-1: a raw `€` is nine characters here).
 */
export function matchedForm(raw: string): string | undefined {
  const url = URL.parse(raw);
  return url === null ? undefined : `${url.protocol}//${url.host}${upperEscapes(url.pathname)}`;
}

/**
 * `text` with the hex digits of its percent-escapes uppercased: `%c3%a9` and `%C3%A9` are the same
 * octets (RFC 3986 §6.2.2.1), so targets and patterns are both read in this one spelling (review12
 * URLPATTERN-3).
 */
export function upperEscapes(text: string): string {
  return text.replace(/%[\da-f]{2}/gi, (octet) => octet.toUpperCase());
}

/**
 * Whether a pattern's host is an address with wildcards (digits, `*` and dots only, a digit among
 * them): its wildcards then stand for an IPv4 address's digits, so it matches addresses only.
 */
function addressPattern(pattern: string): boolean {
  const host = authorityOf(pattern).replace(/:[^:\]]*$/, '');
  return /^[\d*.]+$/.test(host) && /\d/.test(host);
}

/** Whether a matched form's host is an IPv4 address (a parsed host of digits and dots is one). */
function ipv4Form(form: string): boolean {
  return /^[\d.]+(?::\d+)?$/.test(authorityOf(form));
}

/** The host and port of a pattern or matched form (`scheme://` then up to the path). */
function authorityOf(text: string): string {
  const start = text.indexOf('//') + 2;
  const slash = text.indexOf('/', start);
  return text.slice(start, slash === -1 ? undefined : slash).toLowerCase();
}

/**
 * Whether every URL `inner` matches, `outer` matches too: each of `inner`'s characters and
 * wildcards must be matched by `outer`'s in order, a wildcard only by one at least as wide. Sound
 * (never says yes wrongly); it may say no to an exotic pair that is in fact within (then name the
 * outer pattern itself).
 */
export function patternWithin(inner: string, outer: string): boolean {
  // An address pattern reaches no domain name: what is within it must be one too.
  if (addressPattern(outer) && !addressPattern(inner)) return false;
  return unitsWithin(units(patternParts(inner)), units(patternParts(outer)));
}

/** The work {@link patternWithin} does for a pair: the product of the patterns' lengths. */
export function withinCost(inner: string, outer: string): number {
  return (inner.length + 1) * (outer.length + 1);
}

/** A URL pattern as the pieces it matches, in order (scheme and authority lowercased). */
function patternParts(pattern: string): PatternPart[] {
  // URL.parse lowercases scheme and host, so the pattern's are too; paths keep their case.
  const slash = pattern.indexOf('/', pattern.indexOf('//') + 2);
  const authority = slash === -1 ? pattern : pattern.slice(0, slash);
  const path = slash === -1 ? '/' : pattern.slice(slash);
  // Nothing in the authority spans a `/`: `https://**.example.com` must not match
  // `https://evil.test/x.example.com`.
  return [...split(authority.toLowerCase(), 'label', 'segment'), ...split(path, 'segment', 'any')];
}

/** A pattern part's pieces: `one` is what a single `*` may span there, `many` what `**` may. */
function split(part: string, one: PatternSpan, many: PatternSpan): PatternPart[] {
  return part
    .split(/(\*\*|\*)/)
    .filter((piece) => piece !== '')
    .map((piece) => (piece === '**' ? { span: many } : piece === '*' ? { span: one } : { text: piece }));
}

/** What a wildcard may span, narrowest first: a wider one takes in a narrower one. */
const SPAN_WIDTH: Readonly<Record<PatternSpan, number>> = { label: 0, segment: 1, any: 2 };

/** A pattern (or a URL) read one character (or one wildcard) at a time. */
type Unit = string | { readonly span: PatternSpan };

function units(parts: readonly PatternPart[]): Unit[] {
  return parts.flatMap((part): Unit[] => ('text' in part ? [...part.text] : [part]));
}

/** Whether a wildcard spanning `span` may stand for `unit` (a character, or a narrower wildcard). */
function spans(span: PatternSpan, unit: Unit): boolean {
  if (typeof unit !== 'string') return SPAN_WIDTH[unit.span] <= SPAN_WIDTH[span];
  if (span === 'any') return true;
  return unit !== '/' && (span === 'segment' || (unit !== '.' && unit !== ':'));
}

/**
 * Whether `held` matches all of `asked`, in O(|asked|·|held|) time and O(|held|) memory; it stops
 * at the first unit of `asked` no prefix of `held` can take.
 */
function unitsWithin(asked: readonly Unit[], held: readonly Unit[]): boolean {
  // row[j]: the units of `asked` read so far are matched by the first j units of `held`.
  let row = held.map(() => false);
  row.unshift(true);
  for (let j = 1; j <= held.length; j++) row[j] = row[j - 1] === true && typeof held[j - 1] !== 'string';
  for (const unit of asked) {
    const next = [false];
    let live = false;
    for (let j = 1; j <= held.length; j++) {
      const mine = held[j - 1] as Unit;
      next[j] =
        typeof mine === 'string'
          ? row[j - 1] === true && unit === mine
          : next[j - 1] === true || (row[j] === true && spans(mine.span, unit));
      live ||= next[j] === true;
    }
    // No prefix of `held` matches what was read: nothing read later can revive one (review 11).
    if (!live) return false;
    row = next;
  }
  return row[held.length] === true;
}

/**
 * A URL pattern ready to match URLs ({@link compilePattern}, {@link formMatches}): one bit per
 * unit (bit 0: nothing read), in 32-bit words.
 */
export interface CompiledPattern {
  /** Matches IPv4 hosts only ({@link addressPattern}). */
  readonly addressOnly: boolean;
  /** Its literal runs, in order: a URL that lacks one (in that order) is no match, at no DP cost. */
  readonly runs: readonly string[];
  readonly words: number;
  /** The bit of the whole pattern read. */
  readonly last: number;
  /** Per character (code point): the units that are it. */
  readonly literal: ReadonlyMap<number, Uint32Array>;
  /** The same for the ASCII characters, by code: a matched form is all ASCII. */
  readonly ascii: readonly (Uint32Array | undefined)[];
  /** Per {@link CLASSES} entry: the wildcard units that may span a character of that class. */
  readonly wild: readonly Uint32Array[];
  /** Every wildcard unit. */
  readonly wildcards: Uint32Array;
  /** What matches the empty string: bit 0, and a leading wildcard's. */
  readonly start: Uint32Array;
}

/** The characters wildcards tell apart, one of each class: `/`, `.` and `:`, any other. */
const CLASSES = ['/', '.', 'a'] as const;

/** The {@link CLASSES} index of the character `code`. */
function classOf(code: number): number {
  return code === 0x2f ? 0 : code === 0x2e || code === 0x3a ? 1 : 2;
}

/** `pattern` compiled: match it against many URLs with {@link formMatches} (its cost is its length). */
export function compilePattern(pattern: string): CompiledPattern {
  const merged: Unit[] = [];
  for (const unit of units(patternParts(pattern))) {
    const previous = merged.at(-1);
    if (typeof unit === 'string' || previous === undefined || typeof previous === 'string') merged.push(unit);
    // Two wildcards in a row match what the wider alone does: its runs take in the narrower's.
    else if (SPAN_WIDTH[unit.span] > SPAN_WIDTH[previous.span]) merged[merged.length - 1] = unit;
  }
  const words = (merged.length >>> 5) + 1;
  const set = (bits: Uint32Array, index: number) => {
    bits[index >>> 5] = ((bits[index >>> 5] as number) | (1 << (index & 31))) >>> 0;
  };
  const literal = new Map<number, Uint32Array>();
  const wild = CLASSES.map(() => new Uint32Array(words));
  const wildcards = new Uint32Array(words);
  const start = new Uint32Array(words);
  set(start, 0);
  merged.forEach((unit, at) => {
    const bit = at + 1;
    if (typeof unit === 'string') {
      const code = unit.codePointAt(0) as number;
      const bits = literal.get(code) ?? new Uint32Array(words);
      literal.set(code, bits);
      set(bits, bit);
      return;
    }
    set(wildcards, bit);
    CLASSES.forEach((sample, index) => {
      if (spans(unit.span, sample)) set(wild[index] as Uint32Array, bit);
    });
    if (bit === 1) set(start, bit);
  });
  const ascii = Array.from({ length: 128 }, (_, code) => literal.get(code));
  const runs = [''];
  for (const unit of merged) {
    if (typeof unit !== 'string') runs.push('');
    else runs[runs.length - 1] += unit;
  }
  return {
    addressOnly: addressPattern(pattern),
    runs: runs.filter((run) => run !== ''),
    words,
    last: merged.length,
    literal,
    ascii,
    wild,
    wildcards,
    start,
  };
}

/** Whether a compiled pattern matches a URL in its {@link matchedForm}. */
export function formMatches(pattern: CompiledPattern, form: string): boolean {
  return (
    (!pattern.addressOnly || ipv4Form(form)) &&
    runsInOrder(pattern.runs, form) &&
    compiledMatches(pattern, form)
  );
}

/** Whether `runs` occur in `form` in order, without overlapping: what any match needs. */
function runsInOrder(runs: readonly string[], form: string): boolean {
  let from = 0;
  for (const run of runs) {
    const at = form.indexOf(run, from);
    if (at === -1) return false;
    from = at + run.length;
  }
  return true;
}

/**
 * Whether a compiled pattern matches all of `form`: {@link unitsWithin}'s table, a row at a time
 * as bits. A literal unit is reached from the unit before it on its character; a wildcard stays
 * reached on a character it spans, or is reached with the literal before it (no two wildcards
 * are adjacent once compiled). Stops at the first row with no unit reached.
 */
function compiledMatches(pattern: CompiledPattern, form: string): boolean {
  const { words, wildcards } = pattern;
  const none = new Uint32Array(words);
  let row = pattern.start.slice();
  let next = new Uint32Array(words);
  for (let at = 0; at < form.length; at++) {
    const code = form.charCodeAt(at);
    const literal = (code < 128 ? pattern.ascii[code] : pattern.literal.get(code)) ?? none;
    const wild = pattern.wild[classOf(code)] as Uint32Array;
    let rowCarry = 0;
    let literalCarry = 0;
    let live = 0;
    for (let word = 0; word < words; word++) {
      const reached = row[word] as number;
      const byLiteral = ((reached << 1) | rowCarry) & (literal[word] as number);
      rowCarry = reached >>> 31;
      const now =
        byLiteral |
        (reached & (wild[word] as number)) |
        (((byLiteral << 1) | literalCarry) & (wildcards[word] as number));
      literalCarry = byLiteral >>> 31;
      next[word] = now;
      live |= now;
    }
    if (live === 0) return false;
    const read = row;
    row = next;
    next = read;
  }
  return (((row[pattern.last >>> 5] as number) >>> (pattern.last & 31)) & 1) === 1;
}
