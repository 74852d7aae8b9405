/**
 * @module sessions/session-id-sealer
 * Sealed session ids for pass-through sessions (issue 14, finding 2). A Streamable HTTP
 * upstream's own `Mcp-Session-Id` never reaches a caller: the caller gets it encrypted with
 * AES-256-GCM under a key derived from `SESSION_SECRET`, with the owner (the principal that
 * opened it) and the target key as additional authenticated data. So the proxy keeps no state for
 * these sessions, every instance sharing the secret accepts them, and an id opens only for the
 * owner and target it was sealed for. Anything else (another owner or target, a flipped bit, a
 * raw upstream id, an `mcpp1.` id of the old HMAC format, garbage) is simply not found.
 *
 * Wire form: `mcpp2.` + base64url(keyId[1] ‖ nonce[12] ‖ ciphertext ‖ tag[16]), where the
 * plaintext is the upstream id behind a 2-byte length, zero-padded to a multiple of 32 bytes so
 * the sealed id does not even tell the upstream id's exact length.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { ProxyError } from '../errors.ts';
import { TtlCache } from '../ttl-cache.ts';

/** Prefix of sealed (pass-through) session ids; the version of the format. */
export const SEALED_SESSION_PREFIX = 'mcpp2.';
/**
 * Longest sealed id accepted. It is also the `mcp_session_id` limit of the POST /proxy envelope,
 * so whatever the proxy issues fits every surface.
 */
export const MAX_SEALED_LENGTH = 1024;
/** Longest upstream session id the proxy seals (its sealed form stays well under the limit). */
export const MAX_UPSTREAM_ID_BYTES = 512;

const KEY_INFO = 'mcp-proxy session-id aes-256-gcm v2';
const KEY_ID_INFO = 'mcp-proxy session-id key-id v2';
const KEY_ID_BYTES = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const LENGTH_BYTES = 2;
const PAD_TO = 32;
const HEADER_BYTES = KEY_ID_BYTES + NONCE_BYTES;
/** Session ids are visible ASCII (MCP Streamable HTTP, session management). */
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

/** Most keys a sealer opens with (configured previous secrets, or keys adopted over time). */
const MAX_KEYS = 8;

interface SealingKey {
  readonly id: number;
  readonly key: Buffer;
}

/**
 * Ids opened lately, kept so a session's every request does not decrypt its id again (issue 16):
 * Node builds an OpenSSL cipher context per `createDecipheriv`, ~40 µs of CPU, more than the rest
 * of a pass-through request's own work. What {@link SessionIdSealer.open} answers depends only on
 * the id, its owner, its target and the keys, which never change for a sealer, so a remembered
 * answer is the answer. Bounded in count (each key is at most ~2 KiB: the id is capped, owners
 * and targets are short) and in time.
 */
const OPENED_CACHE = { ttlMs: 10 * 60_000, maxEntries: 1024 } as const;

/** Seals and opens pass-through session ids. */
export class SessionIdSealer {
  /** Newest first: the first seals, all open. */
  #keys: readonly SealingKey[];
  /** Ids that opened under the newest key, by owner, target and id (see {@link OPENED_CACHE}). */
  readonly #opened = new TtlCache<string, OpenedSessionId>(OPENED_CACHE);

  /**
   * @param secrets newest first: the first seals, every one opens (rotation). Empty: a random
   *   per-process key, so ids last as long as the process and no other instance accepts them.
   */
  constructor(secrets: readonly string[]) {
    const inputs = secrets.length > 0 ? secrets.map((s) => Buffer.from(s, 'utf8')) : [randomBytes(32)];
    this.#keys = inputs.map(sealingKey);
  }

  /**
   * Seals with `secret` from now on (the key the instances share, known late: issue 19); the
   * keys used so far still open what they sealed, up to {@link MAX_KEYS} in all.
   */
  adopt(secret: string): void {
    const adopted = sealingKey(Buffer.from(secret, 'utf8'));
    const kept = this.#keys.filter((old) => !old.key.equals(adopted.key));
    this.#keys = [adopted, ...kept].slice(0, MAX_KEYS);
    // Remembered answers were under the previous newest key: they would skip the re-seal.
    this.#opened.clear();
  }

  /**
   * Seals an upstream session id for `ownerId` (the principal) talking to `targetKey`. Throws
   * `upstream_protocol_error` for an id no MCP server may issue (not visible ASCII, or too long).
   */
  seal(upstreamId: string, ownerId: string, targetKey: string): string {
    const id = Buffer.from(upstreamId, 'utf8');
    if (!VISIBLE_ASCII.test(upstreamId) || id.length > MAX_UPSTREAM_ID_BYTES) {
      throw new ProxyError(
        'upstream_protocol_error',
        `The MCP server issued an invalid session id (visible ASCII, at most ${MAX_UPSTREAM_ID_BYTES} characters).`,
      );
    }
    const { id: keyId, key } = this.#keys[0] as SealingKey;
    const padded = Buffer.alloc(Math.ceil((LENGTH_BYTES + id.length) / PAD_TO) * PAD_TO);
    padded.writeUInt16BE(id.length, 0);
    id.copy(padded, LENGTH_BYTES);
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(associatedData(keyId, ownerId, targetKey));
    const sealed = Buffer.concat([
      Buffer.of(keyId),
      nonce,
      cipher.update(padded),
      cipher.final(),
      cipher.getAuthTag(),
    ]);
    return `${SEALED_SESSION_PREFIX}${sealed.toString('base64url')}`;
  }

  /**
   * Opens `sealed` if it was sealed for `ownerId` and `targetKey` under one of the configured
   * secrets; undefined for anything else. Never throws. The tag check is OpenSSL's constant-time
   * comparison; nothing before it depends on the key. An id sealed under an older secret comes
   * back re-sealed under the newest, so rotation moves live sessions to the new key as they are
   * used and the old secret can be dropped without ending them.
   */
  open(sealed: string, ownerId: string, targetKey: string): OpenedSessionId | undefined {
    if (sealed.length > MAX_SEALED_LENGTH || !sealed.startsWith(SEALED_SESSION_PREFIX)) return undefined;
    // Lengths first, so no two (owner, target, id) triples share a key.
    const cacheKey = `${ownerId.length}:${ownerId}${targetKey.length}:${targetKey}${sealed}`;
    const known = this.#opened.get(cacheKey);
    if (known !== undefined) return known;
    const opened = this.#open(sealed, ownerId, targetKey);
    // Only answers under the newest key: an older key's answer is a fresh seal each time.
    if (opened !== undefined && !opened.resealed) this.#opened.set(cacheKey, opened);
    return opened;
  }

  #open(sealed: string, ownerId: string, targetKey: string): OpenedSessionId | undefined {
    const encoded = sealed.slice(SEALED_SESSION_PREFIX.length);
    const bytes = Buffer.from(encoded, 'base64url');
    // Only the canonical encoding: trailing bits the decoder drops must not yield a second spelling.
    if (bytes.toString('base64url') !== encoded) return undefined;
    const bodyBytes = bytes.length - HEADER_BYTES - TAG_BYTES;
    if (bodyBytes < PAD_TO || bodyBytes % PAD_TO !== 0) return undefined;
    const keyId = bytes[0] as number;
    const nonce = bytes.subarray(KEY_ID_BYTES, HEADER_BYTES);
    const body = bytes.subarray(HEADER_BYTES, HEADER_BYTES + bodyBytes);
    const tag = bytes.subarray(HEADER_BYTES + bodyBytes);
    // Key ids are one byte: two secrets may share one, so every key with that id is tried.
    for (const [index, { id, key }] of this.#keys.entries()) {
      if (id !== keyId) continue;
      const plain = decrypt(key, nonce, body, tag, associatedData(keyId, ownerId, targetKey));
      if (plain === undefined) continue;
      const length = plain.readUInt16BE(0);
      if (length === 0 || length > plain.length - LENGTH_BYTES) return undefined;
      const upstreamId = plain.subarray(LENGTH_BYTES, LENGTH_BYTES + length).toString('utf8');
      if (index === 0) return { upstreamId, sealedId: sealed, resealed: false };
      return { upstreamId, sealedId: this.seal(upstreamId, ownerId, targetKey), resealed: true };
    }
    return undefined;
  }
}

/** A sealed id that opened. */
export interface OpenedSessionId {
  /** The upstream's own session id: never shown to a caller. */
  readonly upstreamId: string;
  /** The id the caller should use from now on: its own, or a re-seal under the newest secret. */
  readonly sealedId: string;
  /** True when `sealedId` is a fresh seal the caller must be given (it came under an older secret). */
  readonly resealed: boolean;
}

function derive(input: Buffer, info: string, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', input, Buffer.alloc(0), info, length));
}

/** Owner and target, each behind its byte length so no two pairs encode alike. */
function associatedData(keyId: number, ownerId: string, targetKey: string): Buffer {
  const owner = Buffer.from(ownerId, 'utf8');
  const target = Buffer.from(targetKey, 'utf8');
  const out = Buffer.alloc(SEALED_SESSION_PREFIX.length + 1 + 8 + owner.length + target.length);
  let at = out.write(SEALED_SESSION_PREFIX, 0, 'latin1');
  at = out.writeUInt8(keyId, at);
  at = out.writeUInt32BE(owner.length, at);
  at += owner.copy(out, at);
  at = out.writeUInt32BE(target.length, at);
  target.copy(out, at);
  return out;
}

function decrypt(key: Buffer, nonce: Buffer, body: Buffer, tag: Buffer, aad: Buffer): Buffer | undefined {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    return undefined; // a wrong key, owner, target or any flipped bit: just not this key
  }
}

function sealingKey(input: Buffer): SealingKey {
  return { id: derive(input, KEY_ID_INFO, KEY_ID_BYTES)[0] as number, key: derive(input, KEY_INFO, 32) };
}
