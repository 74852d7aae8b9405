/**
 * @module store/vault-keys
 * The keys that encrypt the token vault (issue 18): AES-256 keys, configured as `VAULT_KEY`
 * (base64 32-byte keys, comma-separated, newest first: the newest encrypts, every listed key
 * decrypts) or, with none configured, one generated on first use and kept owner-only in
 * `DATA_DIR/vault-key` where every instance on the machine finds it. Each key is named by a short
 * hash, written in front of what it sealed, so a rotation only adds a key in front.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type GeneratedKeyPlace, writeOnce } from './data-dir.ts';

/** The generated key's file name under `DATA_DIR`. */
export const GENERATED_VAULT_KEY_FILE = 'vault-key';

/** One AES-256 key and its id. */
export interface VaultKey {
  readonly kid: string;
  readonly key: Buffer;
}

/** Where the keys come from. */
export interface VaultKeySettings extends GeneratedKeyPlace {
  /** Base64 32-byte keys, newest first. Empty: the generated key. */
  readonly vaultKeys: readonly string[];
}

/** Decodes one configured key; the message never repeats the key. */
export function parseVaultKey(encoded: string, index: number): VaultKey {
  const key = Buffer.from(encoded.trim(), 'base64');
  if (key.length !== 32) {
    throw new Error(`VAULT_KEY entry ${index + 1}: must be 32 bytes in base64 (openssl rand -base64 32)`);
  }
  return { kid: createHash('sha256').update(key).digest('base64url').slice(0, 8), key };
}

/**
 * The vault's keys, loaded lazily so a proxy that never brokers OAuth writes no key file; a
 * reload replaces the configured ones (review8 CREDS-2: a rotation, a leaked key dropped, or a
 * VAULT_KEY given with the broker switched on must take effect, as SIGNING_KEYS do).
 */
export class VaultKeys {
  #settings: VaultKeySettings;
  #keys: readonly VaultKey[] | undefined;

  /** Checks configured keys now (a bad key fails the start, not the first sign-in). */
  constructor(settings: VaultKeySettings) {
    this.#settings = settings;
    if (settings.vaultKeys.length > 0) this.#keys = settings.vaultKeys.map(parseVaultKey);
  }

  /**
   * Takes the next configuration's keys (checked first: a bad key throws and changes nothing).
   * None configured: back to the generated key, read again from DATA_DIR when next needed.
   */
  replace(vaultKeys: readonly string[]): void {
    const keys = vaultKeys.length > 0 ? vaultKeys.map(parseVaultKey) : undefined;
    if (keys === undefined && this.#settings.vaultKeys.length === 0) return;
    this.#settings = { ...this.#settings, vaultKeys };
    this.#keys = keys;
  }

  /** The key that encrypts: the newest. */
  current(): VaultKey {
    const keys = this.#load();
    return keys[0] as VaultKey;
  }

  /** The key named `kid`, if it is one of ours. */
  find(kid: string): VaultKey | undefined {
    return this.#load().find((key) => key.kid === kid);
  }

  #load(): readonly VaultKey[] {
    if (this.#keys === undefined) this.#keys = [this.#generated()];
    return this.#keys;
  }

  #generated(): VaultKey {
    if (this.#settings.ephemeral) return parseVaultKey(randomBytes(32).toString('base64'), 0);
    const fresh = `${randomBytes(32).toString('base64')}\n`;
    const path = writeOnce(this.#settings.dataDir, GENERATED_VAULT_KEY_FILE, fresh);
    return parseVaultKey(readFileSync(path, 'utf8'), 0);
  }
}
