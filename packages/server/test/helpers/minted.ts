/**
 * Helpers for minted tokens (issue 17): signing keys on disk, minting through `POST /auth/tokens`,
 * and raw requests carrying a token the way a browser or backend would.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The admin token tests mint with. */
export const ADMIN = 'admin-token-for-minting-0123456789';

/** Writes a fresh Ed25519 PEM key in a temporary directory; returns its path. */
export function keyFile(dir = mkdtempSync(join(tmpdir(), 'mcpp-keys-')), name = 'key.pem'): string {
  const path = join(dir, name);
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return path;
}

/** What POST /auth/tokens answered. */
export interface MintReply {
  readonly status: number;
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary JSON bodies.
  readonly body: any;
}

/** POSTs `request` to `/auth/tokens` with `admin` as the credential. */
export async function mintRaw(proxyUrl: string, request: unknown, admin = ADMIN): Promise<MintReply> {
  const response = await fetch(`${proxyUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-proxy-token': admin },
    body: JSON.stringify(request),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
}

/** Mints a token for `subject` (other fields of the request on top); fails the test otherwise. */
export async function mint(
  proxyUrl: string,
  subject: string,
  extra: Record<string, unknown> = {},
): Promise<{ token: string; id: string; expiresAt: string }> {
  const reply = await mintRaw(proxyUrl, { subject, ttlSeconds: 600, ...extra });
  if (reply.status !== 201)
    throw new Error(`minting answered ${reply.status}: ${JSON.stringify(reply.body)}`);
  return reply.body;
}

/** Revokes a minted token by id; resolves to the status. */
export async function revoke(proxyUrl: string, id: string, admin = ADMIN): Promise<number> {
  const response = await fetch(`${proxyUrl}/auth/tokens/${id}`, {
    method: 'DELETE',
    headers: { 'x-proxy-token': admin },
  });
  await response.arrayBuffer();
  return response.status;
}

/** A token with one character of its payload changed (still three base64url parts). */
export function tampered(token: string): string {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const middle = Math.floor(payload.length / 2);
  const flipped = payload[middle] === 'A' ? 'B' : 'A';
  return `${header}.${payload.slice(0, middle)}${flipped}${payload.slice(middle + 1)}.${signature}`;
}
