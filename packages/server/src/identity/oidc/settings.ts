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

/**
 * The issuers with the proxy's login client (`oidc.issuers[].login`, or `OIDC_LOGIN_CLIENT_ID`
 * for `OIDC_ISSUER`): users of these sign in to the proxy to bind an upstream sign-in link.
 */
export function loginIssuers(
  config: Config,
): { readonly issuer: string; readonly clientId: string; readonly clientSecret?: string | undefined }[] {
  const { issuer, loginClientId, loginClientSecret, issuers } = config.oidc;
  const listed = issuers.flatMap((entry) =>
    entry.login === undefined || (entry.issuer === issuer && loginClientId !== undefined)
      ? []
      : [{ issuer: entry.issuer, ...entry.login }],
  );
  if (issuer === undefined || loginClientId === undefined) return listed;
  const secret = loginClientSecret === undefined ? {} : { clientSecret: loginClientSecret };
  return [...listed, { issuer, clientId: loginClientId, ...secret }];
}

/** Timing shared by every issuer. */
export function oidcTiming(config: Config): OidcTiming {
  const { clockToleranceSeconds, jwksMaxAgeMs, jwksCooldownMs } = config.oidc;
  return { clockToleranceSeconds, jwksMaxAgeMs, jwksCooldownMs };
}
