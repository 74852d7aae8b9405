/**
 * @module config/broker-switch
 * When the upstream OAuth broker (issue 18, docs/oauth.md) runs, and the settings that must go
 * with it (review6 links, DESIGN): the vault key a shared Redis needs, and the warning about
 * one-time codes. Read by the configuration's cross-checks, the broker's wiring and the start.
 */
import { storeKind } from '../store/open-store.ts';
import type { Config } from './config.ts';

/**
 * Whether the operator wants the broker (issue 18's default): OAUTH_BROKER when set, else on
 * exactly when PUBLIC_URL is set, since without it no sign-in link or callback can exist.
 */
export function brokerSwitchedOn(config: Pick<Config, 'oauthBroker' | 'publicUrl'>): boolean {
  return config.oauthBroker ?? config.publicUrl !== undefined;
}

/** Switched on and with PUBLIC_URL: the broker may seal tokens and offer links. */
export function brokerMayRun(config: Config): boolean {
  return brokerSwitchedOn(config) && config.publicUrl !== undefined;
}

/**
 * Why the configuration cannot start: the broker keeps its vault in Redis (REDIS_URL), where
 * every instance reads what the others sealed, but without VAULT_KEY each instance would seal
 * with a key of its own generated under its DATA_DIR (the others could not open it: sign-ins
 * lost, asked again and again). Undefined when the settings fit.
 */
export function sharedVaultKeyProblem(config: Config): string | undefined {
  if (!brokerMayRun(config) || storeKind(config) !== 'redis' || config.vaultKeys.length > 0) return undefined;
  return (
    'the OAuth broker (on with PUBLIC_URL) keeps its token vault in this shared Redis, so every ' +
    'instance needs the same VAULT_KEY (openssl rand -base64 32); set it, or OAUTH_BROKER=false'
  );
}

/** What the start says of the broker: a level, its message, and the `PUBLIC_URL` origin it names. */
export interface BrokerStartLine {
  readonly level: 'info' | 'warn';
  readonly message: string;
  readonly origin: string;
}

/**
 * The start's line about the broker, from its own `enabled` decision (https, or http on
 * loopback): on, with the `PUBLIC_URL` origin its links and callbacks use; switched on but kept
 * off by a plain-http `PUBLIC_URL` elsewhere, a warning. Only the origin is named (no userinfo,
 * no path). Undefined when the operator did not switch it on.
 */
export function brokerStartLine(config: Config, enabled: boolean): BrokerStartLine | undefined {
  if (!brokerMayRun(config) || config.publicUrl === undefined) return undefined;
  const origin = new URL(config.publicUrl).origin;
  if (enabled)
    return {
      level: 'info',
      message: `OAuth broker on: upstream sign-in links and callbacks at PUBLIC_URL ${origin}`,
      origin,
    };
  return {
    level: 'warn',
    message: `PUBLIC_URL ${origin} is plain http on a host that is not loopback: the OAuth broker stays off (it needs https there); set an https PUBLIC_URL, or OAUTH_BROKER=false to silence this`,
    origin,
  };
}

/**
 * The start-up warning of one-time codes (docs/security.md, "consent phishing"): switched on
 * (OAUTH_USER_CODES=true) while the broker runs and no OIDC issuer has the proxy's login client,
 * so every link opened without its app is bound by a code alone. Undefined otherwise.
 */
export function userCodesWarning(config: Config): string | undefined {
  if (!brokerMayRun(config) || !config.oauthUserCodes || loginIssuers(config).length > 0) return undefined;
  return (
    'OAUTH_USER_CODES=true with no OIDC login client (OIDC_LOGIN_CLIENT_ID): sign-in links opened ' +
    'without their app bind by a one-time code, which a principal of this proxy can phish a user ' +
    'into typing (docs/oauth.md, "The trade-off of codes")'
  );
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
