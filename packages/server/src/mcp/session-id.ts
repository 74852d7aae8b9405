/**
 * @module mcp/session-id
 * Sealed session ids for pass-through sessions: the upstream's own `Mcp-Session-Id`, wrapped
 * with an HMAC over the proxy token that opened it and the target, so the proxy holds no state
 * for Streamable HTTP upstreams and yet another token (or another target) cannot use the
 * session. With a shared `SESSION_SECRET`, every instance behind a load balancer accepts it.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Prefix of sealed (pass-through) session ids. */
export const SEALED_SESSION_PREFIX = 'mcpp1.';
const MAC_BYTES = 18;

/** Seals and opens pass-through session ids. */
export class SessionIdSealer {
  readonly #key: Buffer;

  /** @param secret shared across instances; a random per-process key when absent. */
  constructor(secret?: string) {
    this.#key = secret ? createHash('sha256').update(secret).digest() : randomBytes(32);
  }

  /** Wraps an upstream session id for `ownerId` talking to `target`. */
  seal(upstreamId: string, ownerId: string, target: string): string {
    const mac = this.#mac(upstreamId, ownerId, target).toString('base64url');
    return `${SEALED_SESSION_PREFIX}${Buffer.from(upstreamId, 'utf8').toString('base64url')}.${mac}`;
  }

  /** The upstream session id if `sealed` was issued to `ownerId` for `target`; else undefined. */
  open(sealed: string, ownerId: string, target: string): string | undefined {
    if (!sealed.startsWith(SEALED_SESSION_PREFIX)) return undefined;
    const [encoded, mac] = sealed.slice(SEALED_SESSION_PREFIX.length).split('.');
    if (!encoded || !mac) return undefined;
    const upstreamId = Buffer.from(encoded, 'base64url').toString('utf8');
    const expected = this.#mac(upstreamId, ownerId, target);
    const given = Buffer.from(mac, 'base64url');
    return given.length === expected.length && timingSafeEqual(given, expected) ? upstreamId : undefined;
  }

  #mac(upstreamId: string, ownerId: string, target: string): Buffer {
    return createHmac('sha256', this.#key)
      .update(`${ownerId}\0${target}\0${upstreamId}`)
      .digest()
      .subarray(0, MAC_BYTES);
  }
}
