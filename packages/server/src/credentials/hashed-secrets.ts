/**
 * @module credentials/hashed-secrets
 * How the broker keeps secrets and ids out of the store: it keys slots and counters by their
 * SHA-256, and keeps a nonce's or code's hash to check what a tab later presents against it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** SHA-256 of `text`, base64url. */
export function digest(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

/** Constant-time equality of two strings (a kept hash and a presented one's, two keys). */
export function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
