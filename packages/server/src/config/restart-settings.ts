/**
 * @module config/restart-settings
 * The settings a reload (SIGHUP) cannot apply: they shape what was built at start-up (the
 * listener, the store, the limits), so a change to one takes effect only after a restart.
 */
import type { Config } from './config.ts';

/** Settings a reload cannot change: they need a restart. */
export const RESTART_SETTINGS = [
  'host',
  'port',
  'bodyLimitBytes',
  'server',
  'upstream',
  'sessions',
  'websocket',
  'trustedProxies',
  'sessionSecret',
  'sessionSecretPrevious',
  'allowQueryToken',
  'corsMaxAgeSeconds',
  'redisUrl',
  'store',
  'dataDir',
  'metricsToken',
  'tracing',
  'logFormat',
  'limits',
  'auditLog',
  'auditLogArguments',
] as const satisfies ReadonlyArray<keyof Config>;

/** The restart-only settings that differ between the running and the next configuration. */
export function restartOnlyChanges(running: Config, next: Config): string[] {
  return RESTART_SETTINGS.filter((key) => JSON.stringify(running[key]) !== JSON.stringify(next[key]));
}
