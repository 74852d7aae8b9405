/**
 * @module policy/url-pattern
 * THE URL pattern matcher (issue 17): what a `urls` grant's patterns match, and whether one
 * pattern matches every URL another does. Both run one dynamic programme over the pattern read a
 * character (or a wildcard) at a time, in time linear in the product of the two lengths: never a
 * backtracking regular expression, which a pattern with many `**` makes exponential (review10
 * MINT-1).
 */

/** What a wildcard of a URL pattern may span: one host label or port, no `/`, or anything. */
export type PatternSpan = 'label' | 'segment' | 'any';

/** A piece of a URL pattern: literal text, or a wildcard. */
export type PatternPart = { readonly text: string } | { readonly span: PatternSpan };

/**
 * Whether `raw` matches a URL pattern: `*` stands for any run of characters within one host
 * label, port or path segment, `**` for any run within the host and port, or any run at all in
 * the path. The URL is compared as scheme, host, port and normalised path (`..` resolved, default
 * port dropped); its query, fragment and any user info never decide. A `*` in the URL itself is
 * a character like any other.
 */
export function urlMatches(pattern: string, raw: string): boolean {
  const url = URL.parse(raw);
  if (url === null) return false;
  return unitsWithin([...`${url.protocol}//${url.host}${url.pathname}`], units(patternParts(pattern)));
}

/**
 * Whether every URL `inner` matches, `outer` matches too: each of `inner`'s characters and
 * wildcards must be matched by `outer`'s in order, a wildcard only by one at least as wide. Sound
 * (never says yes wrongly); it may say no to an exotic pair that is in fact within (then name the
 * outer pattern itself).
 */
export function patternWithin(inner: string, outer: string): boolean {
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
