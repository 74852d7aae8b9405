/**
 * @module credentials/user-codes
 * The one-time code that binds a sign-in link opened without the app (issue 18, docs/oauth.md
 * "Sign-in links opened without the app"): an MCP client that got the link through URL
 * elicitation shows the code beside it, and the start page asks the user to type it. The code
 * never travels in the link, so the link alone (a browser history, a link preview, a log)
 * binds nothing. Eight characters of Crockford's base32 (40 bits), read case-insensitively,
 * with `O`/`I`/`L` taken as the digits they look like and any separator ignored.
 */
import { createHash, randomInt } from 'node:crypto';

/** How long a code is accepted after the link was made (shorter than the link's 10 minutes). */
export const USER_CODE_TTL_MS = 5 * 60 * 1000;
/** Wrong codes a link survives: the attempt that uses up the last one voids the link. */
export const USER_CODE_ATTEMPTS = 5;

/** Crockford's base32: no I, L, O, U (nothing to misread, no accidental words). */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const LENGTH = 8;

/** A fresh code, shown as `XXXX-XXXX`. */
export function newUserCode(): string {
  let code = '';
  for (let i = 0; i < LENGTH; i++) code += ALPHABET[randomInt(ALPHABET.length)];
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/** The code as typed, in its one comparable form (upper case, look-alikes mapped, separators gone). */
function normalized(typed: string): string {
  return typed
    .slice(0, 64)
    .toUpperCase()
    .replace(/O/g, '0')
    .replace(/[IL]/g, '1')
    .replace(/[^0-9A-Z]/g, '');
}

/** The digest kept in the sealed sign-in, and compared (in constant time) with a typed code's. */
export function userCodeDigest(typed: string): string {
  return createHash('sha256')
    .update(`mcpp-user-code\n${normalized(typed)}`)
    .digest('base64url');
}
