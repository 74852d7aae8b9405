/**
 * @module config/oidc-url
 * Which URLs an OIDC issuer and its key set may have: https, or http on loopback only (tests, a
 * provider beside the proxy). Keys fetched in clear text could be swapped on the way, and a
 * plain-http fetch to an arbitrary host is a request the proxy makes for whoever wrote the
 * discovery document. Judged on the parsed URL, so userinfo cannot make a remote host look like
 * loopback (`http://localhost:@evil.example`).
 */

/**
 * Signature algorithms with a public verification key: the only ones an issuer's tokens may use
 * (never `none`, never HS*: an HMAC keyed with the provider's public key is the classic forgery).
 */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

/** Hosts an http:// issuer or key set may name. */
const LOOPBACK_HOSTNAMES: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Whether `value` is a URL an issuer (`query: false`) or a key set (`query: true`) may have:
 * https, or http to a loopback host; no userinfo, no fragment (an issuer's `#` would make
 * `oidc:<issuer>#<sub>` ambiguous), and no query for an issuer (OpenID Connect Discovery 1.0 §2).
 */
export function isOidcUrl(value: string, options: { readonly query: boolean }): boolean {
  const url = URL.parse(value);
  if (url === null || url.username !== '' || url.password !== '' || value.includes('#')) return false;
  if (!options.query && value.includes('?')) return false;
  return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTNAMES.has(url.hostname));
}
