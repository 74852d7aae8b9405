/**
 * @module identity/principal
 * Who a request acts for (issue 17). Every authenticated request (HTTP, /mcp, the WebSocket
 * handshake) resolves to one principal; sessions, sealed ids, pooled sessions, rate limits and
 * the audit trail bind to it, never to the token that carried it.
 */

/** How a principal authenticated. */
export type AuthKind = 'static' | 'minted' | 'oidc';

/** What a principal may do. An absent field restricts nothing beyond the proxy's own rules. */
export interface Grants {
  /** Configured server names it may reach; when set, raw `mcp_server_url` targets are refused unless a URL pattern allows them. */
  readonly servers?: readonly string[] | undefined;
  /** URL patterns (`https://*.example.com/mcp`) of raw targets it may reach. */
  readonly urls?: readonly string[] | undefined;
  /** Tool names it may list and call; others look unknown. */
  readonly tools?: readonly string[] | undefined;
  /** A rate class named in the config (`rateClasses`); absent: the default limits. */
  readonly rateClass?: string | undefined;
  /** May mint and revoke tokens. */
  readonly admin?: boolean | undefined;
}

/** A verified caller. */
export interface Principal {
  /**
   * Short, loggable handle (12 hex digits of a hash): logs and metrics only. Too short to key
   * anything by (two principals may share it): rate limits count per `principalKey`.
   */
  readonly id: string;
  /**
   * What sessions bind to (sealed ids, held and pooled sessions, requestState handles, era
   * verdict scoping): `static:<sha256 of the token>`, `minted:<minter>:<subject>` (the
   * minter: a hash of the minting admin's principal key), `oidc:<issuer>#<sub>`.
   * Never logged.
   */
  readonly principalKey: string;
  /** Who: the minted subject, the OIDC `sub`, or a static token's configured name (else `token:<id>`). */
  readonly subject: string;
  readonly auth: AuthKind;
  readonly grants: Grants;
  /** When the credential stops being valid (ms since the epoch); absent: no expiry. */
  readonly expiresAt?: number | undefined;
  /** A minted token's bound origin: requests from another `Origin` are refused. */
  readonly origin?: string | undefined;
  /** A minted token's `minter` claim (identity/minted-tokens.ts `minterId`): whose grants bound it. */
  readonly minter?: string | undefined;
  /** The credential's own id (a minted token's `jti`): revocation ends what it holds. */
  readonly credentialId?: string | undefined;
}
