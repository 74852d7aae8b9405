/**
 * @module upstream/scrub
 * The one place that removes upstream secrets (a session id the caller only ever sees sealed, a
 * legacy SSE endpoint's session) from upstream text before it reaches a caller: error messages,
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
 * Decodes JSON escapes once, left to right (deterministic, so linear: no backtracking over
 * ambiguous spellings), keeping where each decoded character came from; then finds the secret in
 * the decoded text and replaces the source spans.
 */
function scrubEscaped(text: string, secret: string): string {
  let decoded = '';
  const starts: number[] = [];
  for (let at = 0; at < text.length; ) {
    starts.push(at);
    const char = text[at] as string;
    if (char === '\\') {
      const next = text[at + 1] ?? '';
      const simple = SIMPLE_ESCAPES[next];
      if (simple !== undefined) {
        decoded += simple;
        at += 2;
        continue;
      }
      const hex = text.slice(at + 2, at + 6);
      if (next === 'u' && /^[0-9a-fA-F]{4}$/.test(hex)) {
        decoded += String.fromCharCode(Number.parseInt(hex, 16));
        at += 6;
        continue;
      }
    }
    decoded += char;
    at += 1;
  }
  starts.push(text.length);
  let out = '';
  let copied = 0;
  for (
    let found = decoded.indexOf(secret);
    found !== -1;
    found = decoded.indexOf(secret, found + secret.length)
  ) {
    out += text.slice(copied, starts[found] as number) + SCRUBBED;
    copied = starts[found + secret.length] as number;
  }
  return copied === 0 ? text : out + text.slice(copied);
}
