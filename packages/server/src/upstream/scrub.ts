/**
 * @module upstream/scrub
 * The one place that removes upstream secrets (a session id the caller only ever sees sealed, a
 * HTTP+SSE endpoint's session) from upstream text before it reaches a caller: error messages,
 * relayed error bodies, JSON-RPC error answers. A secret is found as its plain bytes and in any
 * JSON-escaped spelling (`\/`, `\u0041`, `\"`, mixed), since servers serialize differently.
 */

/** What a found secret becomes. */
export const SCRUBBED = '[session]';

/** `text` with every occurrence of each secret, plain or JSON-escaped, replaced by `[session]`. */
export function scrubSecrets(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) {
    if (!secret) continue;
    out = out.replaceAll(secret, SCRUBBED);
    // Only text with an escape can hold an escaped spelling; most error bodies have none.
    if (out.includes('\\')) out = scrubEscaped(out, secret);
  }
  return out;
}

/** {@link scrubSecrets} for a body read as bytes: the same buffer when nothing was found. */
export function scrubBody(body: Buffer, secrets: readonly (string | undefined)[]): Buffer {
  if (!secrets.some((secret) => secret)) return body;
  const text = body.toString('utf8');
  const scrubbed = scrubSecrets(text, secrets);
  return scrubbed === text ? body : Buffer.from(scrubbed, 'utf8');
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};

/**
 * Decodes JSON escapes once, left to right (deterministic: no backtracking over ambiguous
 * spellings), and runs the decoded characters through a KMP matcher for the secret. Time is
 * linear in the text and memory in the secret (a ring of where each of the last characters
 * began), whatever the size of the body.
 */
function scrubEscaped(text: string, secret: string): string {
  const length = secret.length;
  const fallback = failureTable(secret);
  const began = new Int32Array(length);
  let matched = 0;
  let decoded = 0;
  let out = '';
  let copied = 0;
  for (let at = 0; at < text.length; decoded++) {
    began[decoded % length] = at;
    let char = text[at] as string;
    let width = 1;
    if (char === '\\') {
      const next = text[at + 1] ?? '';
      const simple = SIMPLE_ESCAPES[next];
      const hex = text.slice(at + 2, at + 6);
      if (simple !== undefined) {
        char = simple;
        width = 2;
      } else if (next === 'u' && /^[0-9a-fA-F]{4}$/.test(hex)) {
        char = String.fromCharCode(Number.parseInt(hex, 16));
        width = 6;
      }
    }
    at += width;
    while (matched > 0 && secret[matched] !== char) matched = fallback[matched - 1] as number;
    if (secret[matched] === char) matched++;
    if (matched === length) {
      out += text.slice(copied, began[(decoded + 1) % length]) + SCRUBBED;
      copied = at;
      matched = 0;
    }
  }
  return copied === 0 ? text : out + text.slice(copied);
}

/** KMP: for each prefix of `pattern`, the length of its longest proper prefix that is also a suffix. */
function failureTable(pattern: string): Int32Array {
  const table = new Int32Array(pattern.length);
  for (let i = 1, k = 0; i < pattern.length; i++) {
    while (k > 0 && pattern[i] !== pattern[k]) k = table[k - 1] as number;
    if (pattern[i] === pattern[k]) k++;
    table[i] = k;
  }
  return table;
}
