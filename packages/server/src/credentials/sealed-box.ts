/**
 * @module credentials/sealed-box
 * AES-256-GCM around the vault's values: `v1.<kid>.<iv>.<ciphertext+tag>` (base64url). The store
 * key the value lives under is the additional data, so a sealed value moved to another slot (one
 * principal's tokens copied under another's key) no longer opens.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { VaultKeys } from './vault-keys.ts';

const TAG_BYTES = 16;

/** Encrypts `plain` for the slot `slot` under the newest key. */
export function seal(keys: VaultKeys, slot: string, plain: string): string {
  return sealBytes(keys, slot, Buffer.from(plain, 'utf8'));
}

/** Decrypts a value sealed for `slot`; undefined when it is not ours, tampered with, or moved. */
export function open(keys: VaultKeys, slot: string, sealed: string): string | undefined {
  return openBytes(keys, slot, sealed)?.toString('utf8');
}

/** {@link seal} for bytes (relay messages carry answer bytes: encoded once, by the seal). */
export function sealBytes(keys: VaultKeys, slot: string, plain: Uint8Array): string {
  const { kid, key } = keys.current();
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(slot, 'utf8'));
  const body = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  return `v1.${kid}.${iv.toString('base64url')}.${body.toString('base64url')}`;
}

/** {@link open} for bytes. */
export function openBytes(keys: VaultKeys, slot: string, sealed: string): Buffer | undefined {
  const [version, kid, iv, body] = sealed.split('.');
  if (version !== 'v1' || kid === undefined || iv === undefined || body === undefined) return undefined;
  const key = keys.find(kid);
  if (!key) return undefined;
  try {
    const bytes = Buffer.from(body, 'base64url');
    if (bytes.length < TAG_BYTES) return undefined;
    const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(slot, 'utf8'));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - TAG_BYTES)), decipher.final()]);
  } catch {
    return undefined;
  }
}
