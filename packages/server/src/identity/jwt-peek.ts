/**
 * @module identity/jwt-peek
 * Reads a compact JWT's header or claims WITHOUT verifying anything, to route a bearer token to
 * the verifier that can judge it (minted, or an OIDC issuer by its `iss`). Nothing read here is
 * trusted. It exists so that routing does not load jose, which only verification needs (issue
 * #16: the default configuration verifies no JWT until one arrives).
 */

/** The JSON object in part `index` (0: protected header, 1: claims) of a compact JWT, if it is one. */
export function peekJwt(token: string, index: 0 | 1): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const part = parts[index] as string;
  if (!/^[A-Za-z0-9_-]+$/.test(part)) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
