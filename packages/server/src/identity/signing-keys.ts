/**
 * @module identity/signing-keys
 * The keys that sign and verify minted tokens (issue 17): Ed25519 (JWS `EdDSA`), each named by its
 * RFC 7638 thumbprint as the `kid`. Configured as PEM files (`SIGNING_KEYS`, newest first): the
 * newest signs, every listed key verifies, so a rotation adds a key in front, waits for the old
 * tokens to expire (24 h at most), then drops the old key — each step a SIGHUP reload. With none
 * configured, one is generated the first time a token is minted and kept in
 * `DATA_DIR/signing-key.pem` (owner-only), where the proxy and `npm run token` both find it.
 */
import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../config/sources.ts';
import { type GeneratedKeyPlace, writeOnce } from '../store/data-dir.ts';

/** The generated key's file name under `DATA_DIR`. */
export const GENERATED_KEY_FILE = 'signing-key.pem';
/** How often an unknown `kid` may send the ring back to `DATA_DIR` for a key made elsewhere. */
const REREAD_EVERY_MS = 10_000;

/** One key pair and its id. */
export interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /**
   * The key minted tokens' `minter` claims are HMACs under (identity/minted-tokens.ts
   * `minterClaim`): derived from the private key, so no claim can be recomputed without it.
   */
  readonly minterSecret: Buffer;
}

/** The key pair of an Ed25519 private key, named by its `kid`. */
export function signingKey(privateKey: KeyObject): SigningKey {
  const publicKey = createPublicKey(privateKey);
  const minterSecret = createHmac('sha256', 'mcp-proxy minter claim')
    .update(privateKey.export({ type: 'pkcs8', format: 'der' }))
    .digest();
  return { kid: keyId(publicKey), privateKey, publicKey, minterSecret };
}

/** Where the keys come from. */
export interface SigningKeySettings extends GeneratedKeyPlace {
  /** PEM files of Ed25519 private keys (PKCS#8), newest first. Empty: the generated key. */
  readonly signingKeys: readonly string[];
}

/** The RFC 7638 thumbprint of an Ed25519 public key: its `kid`. */
export function keyId(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' });
  // Members in lexicographic order, no spaces: the canonical form the RFC hashes.
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x });
  return createHash('sha256').update(canonical).digest('base64url');
}

/**
 * A key file that cannot be used: names the file and why (an errno), never its content. A
 * configuration error: at start-up the proxy prints it and exits 78.
 */
export class SigningKeyError extends ConfigError {
  /** The errno of a file that could not be read (`ENOENT`, `EACCES`, `EISDIR`…); absent: not a key. */
  readonly errno: string | undefined;

  constructor(message: string, errno?: string) {
    super(message);
    this.name = 'SigningKeyError';
    this.errno = errno;
  }
}

/** Reads one PEM private key; throws a {@link SigningKeyError}. */
function readKey(path: string): SigningKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new SigningKeyError(
      `signing key ${path}: ${errno === 'ENOENT' ? 'no such file' : `cannot be read (${errno})`}`,
      errno,
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(text);
  } catch {
    throw new SigningKeyError(`signing key ${path}: not a PEM private key`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new SigningKeyError(
      `signing key ${path}: must be Ed25519 (openssl genpkey -algorithm ed25519), not ${privateKey.asymmetricKeyType}`,
    );
  }
  return signingKey(privateKey);
}

/** The current keys; {@link SigningKeys.replace} swaps them on a reload. */
export class SigningKeys {
  #settings: SigningKeySettings;
  #keys: readonly SigningKey[] = [];
  #lastReread = 0;
  readonly #now: () => number;

  /** Loads the configured keys (or an existing generated one); throws on an unreadable file. */
  constructor(settings: SigningKeySettings, now: () => number = Date.now) {
    this.#settings = settings;
    this.#now = now;
    this.replace(settings);
  }

  /** Loads another set of keys (a reload). Throws, changing nothing, if any file is bad. */
  replace(settings: SigningKeySettings): void {
    const generated = this.#settings.signingKeys.length === 0 ? this.#keys : [];
    const keys =
      settings.signingKeys.length > 0
        ? settings.signingKeys.map(readKey)
        : settings.ephemeral
          ? generated
          : this.#generatedIfAny(settings.dataDir);
    this.#settings = settings;
    this.#keys = keys;
  }

  /**
   * The key that signs: the newest; generated (and kept under DATA_DIR) when there is none.
   * Throws a {@link SigningKeyError} when the generated key cannot be kept.
   */
  signer(): SigningKey {
    const newest = this.#keys[0];
    if (newest) return newest;
    const generated = this.#generate(this.#settings.dataDir);
    this.#keys = [generated];
    return generated;
  }

  /** The {@link SigningKey.minterSecret} of the key named `kid` (one {@link verifier} found). */
  minterSecret(kid: string | undefined): Buffer | undefined {
    return this.#keys.find((key) => key.kid === kid)?.minterSecret;
  }

  /** The public key named `kid`, if it is one of ours. */
  verifier(kid: string | undefined): KeyObject | undefined {
    if (kid === undefined) return undefined;
    const found = this.#keys.find((key) => key.kid === kid);
    if (found) return found.publicKey;
    // With no configured keys, `npm run token` may have generated the key after we started.
    const fromDisk = this.#settings.signingKeys.length === 0 && !this.#settings.ephemeral;
    if (fromDisk && this.#now() - this.#lastReread > REREAD_EVERY_MS) {
      this.#lastReread = this.#now();
      this.#keys = this.#generatedIfAny(this.#settings.dataDir);
      return this.#keys.find((key) => key.kid === kid)?.publicKey;
    }
    return undefined;
  }

  /** The kids of every key that verifies, newest first. */
  get kids(): readonly string[] {
    return this.#keys.map((key) => key.kid);
  }

  #generatedIfAny(dataDir: string): SigningKey[] {
    try {
      return [readKey(join(dataDir, GENERATED_KEY_FILE))];
    } catch (error) {
      if ((error as SigningKeyError).errno === 'ENOENT') return [];
      throw error;
    }
  }

  #generate(dataDir: string): SigningKey {
    if (this.#settings.ephemeral) {
      return signingKey(generateKeyPairSync('ed25519').privateKey);
    }
    const path = join(dataDir, GENERATED_KEY_FILE);
    const { privateKey } = generateKeyPairSync('ed25519');
    try {
      // When another process (the proxy, `npm run token`) got there first, its key is used.
      writeOnce(dataDir, GENERATED_KEY_FILE, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    } catch (error) {
      const errno = (error as NodeJS.ErrnoException).code ?? 'EIO';
      throw new SigningKeyError(`signing key ${path}: cannot be written (${errno})`, errno);
    }
    return readKey(path);
  }
}
