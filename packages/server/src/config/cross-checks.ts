/**
 * @module config/cross-checks
 * The checks a schema of one field cannot make, run on the parsed configuration: a setting that
 * needs another (SESSION_SECRET_PREVIOUS, OIDC_ISSUER, STORE=redis), names that must exist
 * elsewhere (a grant's servers and rate class, a virtual server's members), host lists that
 * must parse, issuers listed once. Each failure names where the setting came from.
 */
import { HostList } from '../egress/host-list.ts';
import type { Config } from './config.ts';
import { ConfigError } from './sources.ts';
import { virtualServerProblem } from './virtual-servers.ts';

/** Opens a failure's message: `Invalid configuration: <where the setting at path came from>`. */
export type Describe = (path: readonly string[]) => string;

/** A grant's names, as a config token and an OIDC mapping or fallback carry them. */
interface GrantNames {
  readonly servers?: readonly string[] | undefined;
  readonly rateClass?: string | undefined;
}

/** Throws {@link ConfigError} at the first setting that contradicts another. */
export function checkAcrossSettings(config: Config, describe: Describe): void {
  for (const key of ['allowedHosts', 'deniedHosts'] as const) {
    try {
      HostList.parse(config.egress[key], key);
    } catch (error) {
      const detail = (error as Error).message.slice(key.length + 2);
      throw new ConfigError(`${describe(['egress', key])}: ${detail}`);
    }
  }
  if (config.sessionSecretPrevious.length > 0 && config.sessionSecret === undefined) {
    // Previous secrets only open ids; something must seal the new ones (issue 14, finding 2).
    throw new ConfigError(
      `${describe(['sessionSecretPrevious'])}: needs SESSION_SECRET (the secret that seals new session ids)`,
    );
  }
  if (config.oidc.issuer !== undefined && config.oidc.audience.length === 0) {
    throw new ConfigError(
      `${describe(['oidc', 'issuer'])}: needs OIDC_AUDIENCE (the audience its tokens carry for this proxy)`,
    );
  }
  for (const [index, entry] of config.oidc.issuers.entries()) {
    if (config.oidc.issuers.findIndex((other) => other.issuer === entry.issuer) !== index) {
      throw new ConfigError(
        `${describe(['oidc', 'issuers'])} key "oidc.issuers.${index}": issuer ${entry.issuer} is listed twice`,
      );
    }
    const where = (key: string) => `${describe(['oidc', 'issuers'])} key "oidc.issuers.${index}.${key}"`;
    if (entry.grants !== undefined) checkGrantNames(config, entry.grants, where('grants'));
    for (const [claim, byValue] of Object.entries(entry.claims ?? {})) {
      for (const [value, grants] of Object.entries(byValue)) {
        checkGrantNames(config, grants, where(`claims.${claim}.${value}`));
      }
    }
  }
  if (config.store === 'redis' && config.redisUrl === undefined) {
    throw new ConfigError(`${describe(['store'])}: STORE=redis needs REDIS_URL`);
  }
  const virtualProblem = virtualServerProblem(config.virtualServers, config.servers);
  if (virtualProblem !== undefined) {
    const [key, message] = virtualProblem;
    throw new ConfigError(`${describe(key.split('.'))}: ${message}`);
  }
  for (const [index, grant] of config.tokens.entries()) {
    checkGrantNames(config, grant, `${describe(['tokens'])} key "tokens.${index}`);
  }
}

/**
 * Checks that a grant's server and rate-class names exist in the configuration: the same check
 * for a config token and for an OIDC mapping or fallback. `where` opens the message, up to and
 * without the closing quote of the key (the field is appended).
 */
function checkGrantNames(config: Config, grants: GrantNames, where: string): void {
  const unknown = grants.servers?.find(
    (name) => !Object.hasOwn(config.servers, name) && !Object.hasOwn(config.virtualServers, name),
  );
  if (unknown !== undefined) throw new ConfigError(`${where}.servers": no server named "${unknown}"`);
  if (grants.rateClass !== undefined && !Object.hasOwn(config.rateClasses, grants.rateClass)) {
    throw new ConfigError(`${where}.rateClass": no rate class named "${grants.rateClass}" in rateClasses`);
  }
}
