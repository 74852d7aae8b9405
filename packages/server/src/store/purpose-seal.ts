/**
 * @module store/purpose-seal
 * Keys derived from `SESSION_SECRET` for one purpose each (relay messages, shared verdicts, the
 * instance roster): HKDF-SHA-256 with the purpose as its label, so no use's key is another's.
 * Whoever can write to the shared store is not trusted when `SESSION_SECRET` is set: what the
 * instances leave there for each other is sealed (AES-256-GCM, the vault's sealed box, bound to
 * the slot it is written to) and named by an HMAC of what it is about, so a name says nothing
 * to a reader without the secret (a URL's secret query, a low-entropy token cannot be guessed
 * offline from it). The first secret seals and names; every one opens (a rotation, as for
 * session ids).
 */
import { createHmac, hkdfSync } from 'node:crypto';
import { openBytes, sealBytes } from './sealed-box.ts';
import { VaultKeys } from './vault-keys.ts';

/** Seals, opens and names for one purpose. */
export interface PurposeSeal {
  /** `plain` sealed for `slot` (the store key or channel it travels under). */
  seal(slot: string, plain: Uint8Array): string;
  /** The bytes sealed for `slot`; undefined when not sealed by an instance, or for another slot. */
  open(slot: string, sealed: string): Buffer | undefined;
  /** A keyed name for `text` (HMAC-SHA-256, base64url, 43 characters). */
  name(text: string): string;
}

/** What follows the purpose in the naming key's label (the sealing key's label is the purpose). */
const NAME_LABEL = ' hmac-sha-256 names';

/** A 32-byte key for the HKDF label `label`, derived from `secret`. */
function derive(secret: string, label: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), label, 32));
}

/**
 * The seal for `purpose` (the sealing key's HKDF label, naming its cipher and version) under
 * `secrets` (newest first); undefined without any (`SESSION_SECRET` unset: the store is trusted,
 * docs/security.md).
 */
export function purposeSeal(secrets: readonly string[], purpose: string): PurposeSeal | undefined {
  const [newest] = secrets;
  if (newest === undefined) return undefined;
  const keys = new VaultKeys({
    vaultKeys: secrets.map((secret) => derive(secret, purpose).toString('base64')),
    dataDir: '',
    ephemeral: true,
  });
  const nameKey = derive(newest, `${purpose}${NAME_LABEL}`);
  return {
    seal: (slot, plain) => sealBytes(keys, slot, plain),
    open: (slot, sealed) => openBytes(keys, slot, sealed),
    name: (text) => createHmac('sha256', nameKey).update(text).digest('base64url'),
  };
}
