/**
 * @module app-reload
 * What a reload (SIGHUP, `app.reload`) does to the running app (app.ts wires it): the parts that
 * can refuse the new configuration first, so a bad file leaves the running one untouched; then
 * the new configuration is adopted and what it takes away ends with it, in one order. It also
 * declares the app's `reload` and `prepareReload`.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from './config/config.ts';
import { rateClasses, rateLimits } from './config/rate-rules.ts';
import { restartOnlyChanges } from './config/restart-settings.ts';
import type { BrokerHolder } from './credentials/wiring.ts';
import type { TargetResolver } from './dispatch/targets.ts';
import type { ReloadableGuard } from './egress/reloadable-guard.ts';
import type { LiveRequests } from './identity/live-requests.ts';
import { type ReachDeps, reloadVerdicts, retooledPrincipals } from './identity/reload-reach.ts';
import type { Identity } from './identity/wiring.ts';
import type { RateLimiter } from './limits/rate-limiter.ts';
import type { HeldSession } from './sessions/held-session.ts';
import type { SessionStore } from './sessions/store.ts';
import type { VaultKeys } from './store/vault-keys.ts';
import type { WsRegistry } from './surfaces/ws/routes.ts';
import type { VirtualServers } from './virtual/virtual-servers.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Applies a new configuration without dropping sessions (SIGHUP). Returns the changed
     * settings that only take effect after a restart. Throws, changing nothing, if invalid.
     */
    reload(config: Config): string[];
    /**
     * Loads what `config` uses and the running configuration did not (the OAuth broker): main.ts
     * awaits it before {@link reload}, so no request finds a feature on but not yet loaded.
     */
    prepareReload(config: Config): Promise<void>;
  }
}

/** The Origin and Host rules CORS, /mcp and /ws share: a reload updates them in place. */
export interface AccessRules {
  corsOrigins: Config['corsOrigins'];
  corsAllowedHeaders: Config['corsAllowedHeaders'];
  trustedHosts: Config['trustedHosts'];
  allowMissingOrigin: boolean;
}

/** The running parts a reload changes. */
export interface ReloadParts {
  readonly identity: Pick<Identity, 'reload'>;
  readonly vaultKeys: Pick<VaultKeys, 'replace'>;
  readonly guard: Pick<ReloadableGuard, 'replace' | 'describe'>;
  readonly targets: Pick<TargetResolver, 'forgetVetted' | 'replaceServers'>;
  readonly brokers: Pick<BrokerHolder, 'loadFor'>;
  /** What judges whether a holder may keep what it holds (identity/reload-reach.ts). */
  readonly reach: ReachDeps;
  readonly virtual: Pick<VirtualServers, 'follows' | 'refreshStreams'>;
  readonly sockets: Pick<WsRegistry, 'endUnreachable'>;
  readonly live: Pick<LiveRequests, 'endUnreachable'>;
  readonly sessions: Pick<SessionStore<HeldSession>, 'endRevoked'>;
  readonly limiter: Pick<RateLimiter, 'replaceLimits'>;
  readonly access: AccessRules;
  readonly log: FastifyBaseLogger;
  /** The configuration in force, and what makes `next` the one in force. */
  readonly current: () => Config;
  readonly adopt: (next: Config) => void;
}

/**
 * The app's `reload`: applies `next` without dropping sessions, and returns the changed settings
 * that only take effect after a restart (compared with `started`, the configuration the app was
 * built with). Throws, changing nothing, if `next` is invalid.
 */
export function reloader(started: Config, parts: ReloadParts): (next: Config) => string[] {
  const { guard, targets, virtual, access, log } = parts;
  return (next) => {
    // Build everything that can fail first, so a bad file leaves the running config untouched.
    parts.identity.reload(next);
    parts.vaultKeys.replace(next.vaultKeys);
    guard.replace(next.egress);
    targets.forgetVetted();
    const changed = targets.replaceServers(next.servers);
    const retooled = retooledPrincipals(parts.current(), next);
    parts.adopt(next);
    // A caller that did not prepare the reload: the broker comes a moment later.
    parts.brokers
      .loadFor(next)
      .catch((error: unknown) => log.error({ err: error }, 'the OAuth broker did not load'));
    // What a reload takes away ends with it (issue 14 #3 and its review): a revoked token's
    // sockets, streams and sessions, and whatever reaches a server its token may no longer name
    // or that was removed or re-pointed. One decision; new requests meet the same in resolve().
    // A virtual server's sockets and sessions (and its member sessions) take the grants of now
    // per request: a tool grant that changed leaves them open (its requests in flight end).
    const verdicts = reloadVerdicts(parts.reach, changed, retooled, virtual);
    // Sockets first, so they close with 4401 rather than by their session ending.
    parts.sockets.endUnreachable(verdicts.sockets);
    parts.live.endUnreachable(verdicts.requests);
    virtual.refreshStreams();
    void parts.sessions.endRevoked(verdicts.sessions);
    parts.limiter.replaceLimits(rateLimits(next), rateClasses(next));
    access.corsOrigins = next.corsOrigins;
    access.corsAllowedHeaders = next.corsAllowedHeaders;
    access.trustedHosts = next.trustedHosts;
    access.allowMissingOrigin = next.websocket.allowMissingOrigin;
    log.level = next.logLevel;
    log.info(guard.describe());
    return restartOnlyChanges(started, next);
  };
}
