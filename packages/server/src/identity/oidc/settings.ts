/**
 * @module identity/oidc/settings
 * The issuers a configuration trusts: `oidc.issuers`, plus `OIDC_ISSUER` + `OIDC_AUDIENCE` (an
 * entry of its own, or the audience of the listed entry with the same issuer).
 */
import type { Config } from '../../config/config.ts';
import type { OidcIssuerSettings, OidcTiming } from './issuer.ts';

/** The configured issuers, each once. */
export function oidcIssuers(config: Config): OidcIssuerSettings[] {
  const { issuer, audience, issuers, requireAtJwt } = config.oidc;
  const list: OidcIssuerSettings[] = issuers.map((entry) => ({
    ...entry,
    requireAtJwt: entry.requireAtJwt ?? requireAtJwt,
  }));
  if (issuer !== undefined) {
    const listed = list.findIndex((entry) => entry.issuer === issuer);
    if (listed === -1) list.push({ issuer, audience, requireAtJwt });
    else list[listed] = { ...(list[listed] as OidcIssuerSettings), audience };
  }
  return list;
}

/** Timing shared by every issuer. */
export function oidcTiming(config: Config): OidcTiming {
  const { clockToleranceSeconds, jwksMaxAgeMs, jwksCooldownMs } = config.oidc;
  return { clockToleranceSeconds, jwksMaxAgeMs, jwksCooldownMs };
}
