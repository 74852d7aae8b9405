/**
 * @module json-depth
 * The one nesting cap on JSON the proxy accepts, from callers and from upstreams alike. V8
 * parses any depth, but `JSON.stringify` (and every other recursive walk) overflows the stack
 * somewhere past a few thousand levels: a message nested that deep would fail far from where
 * it came in, as an uncaught RangeError or an `internal_error`. Checking the raw text before
 * parsing refuses it where it enters, with the right code, at the cost of one scan of the text.
 */

/**
 * The deepest nesting of arrays and objects accepted (issue 14, finding 10): far beyond any
 * real MCP message (JSON Schemas and structured results nest a few dozen levels at most), far
 * below where a recursive walk runs out of stack.
 */
export const MAX_JSON_DEPTH = 128;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * True when `text` nests arrays and objects deeper than `max`. Counts brackets outside strings
 * (string contents are skipped with `indexOf`, so long strings cost little); it does not
 * validate JSON, which the parser does next. Texts too short to nest that deep are not scanned.
 */
export function exceedsJsonDepth(text: string, max: number = MAX_JSON_DEPTH): boolean {
  const length = text.length;
  // Nesting deeper than max needs more than max opening brackets.
  if (length <= max) return false;
  let depth = 0;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = endOfString(text, i);
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

/** Index of the quote closing the string opened at `start` (or the end of the text). */
function endOfString(text: string, start: number): number {
  let at = start;
  for (;;) {
    at = text.indexOf('"', at + 1);
    if (at === -1) return text.length;
    // The quote is escaped when an odd number of backslashes precede it.
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
}
