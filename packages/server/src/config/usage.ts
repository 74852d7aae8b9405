/**
 * @module config/usage
 * What `mcp-proxy --help` prints: how to start it and the settings most deployments touch.
 * Every setting lives in the environment (or `.env`, or the config file); the command line
 * takes only `--help` and `--version`.
 */
import { PRODUCT_NAME, VERSION } from '../version.ts';

/** The settings worth showing first, by environment variable name (all in ENV_VARS). */
export const USAGE_SETTINGS: ReadonlyArray<readonly [name: string, meaning: string]> = [
  ['PORT', 'port to listen on (default 8000)'],
  ['HOST', 'interface to listen on (default 0.0.0.0; 127.0.0.1 for this machine only)'],
  ['PROXY_TOKEN', 'the token callers send as X-Proxy-Token (none: one is generated and printed)'],
  ['PROXY_TOKENS', 'more valid tokens, comma-separated (rotation)'],
  ['CORS_ORIGINS', 'browser origins allowed to call the proxy, comma-separated'],
  ['ALLOW_PRIVATE_NETWORKS', 'allow MCP servers on loopback and private addresses (development)'],
  ['EGRESS_ALLOWED_HOSTS', 'only these MCP servers are reachable (names, *.suffix, CIDRs)'],
  ['PUBLIC_URL', "the proxy's external origin; turns on sign-ins to OAuth MCP servers (docs/oauth.md)"],
  ['LOG_LEVEL', 'fatal, error, warn, info (default), debug, trace or silent'],
  ['LOG_FORMAT', 'auto (default: readable on a terminal, JSON otherwise), json or pretty'],
  ['SESSION_SECRET', 'key sealing session ids; the same on every instance behind a load balancer'],
  ['REDIS_URL', 'Redis for the state several instances share (limits, sessions, the OAuth vault)'],
  ['WORKERS', 'processes serving the port: a number, or auto (one per core); default 1'],
  ['METRICS_TOKEN', 'enables GET /metrics behind Authorization: Bearer <METRICS_TOKEN>'],
];

/** Where else settings come from (not ENV_VARS entries: read before the configuration). */
const SOURCES: ReadonlyArray<readonly [name: string, meaning: string]> = [
  ['MCP_PROXY_CONFIG', 'path of a JSON or YAML config file (named servers, token grants, ...)'],
  ['DOTENV_PATH', 'path of the .env file (default ./.env)'],
];

/** The text `--help` prints. */
export function usage(): string {
  const width = Math.max(...[...USAGE_SETTINGS, ...SOURCES].map(([name]) => name.length)) + 2;
  const rows = (list: typeof SOURCES) => list.map(([name, meaning]) => `  ${name.padEnd(width)}${meaning}`);
  return [
    `${PRODUCT_NAME} ${VERSION}: lets browsers and other frontends reach MCP servers.`,
    '',
    'Usage: npm start [-- --help | --version]',
    '       PORT=8080 PROXY_TOKEN=... npm start',
    '',
    'Settings come from the environment, a .env file or a config file (later ones win:',
    'config file, .env, environment). The most used:',
    '',
    ...rows(USAGE_SETTINGS),
    '',
    ...rows(SOURCES),
    '',
    'Every setting, and the config file: docs/configuration.md. Reload with kill -HUP <pid>.',
    '',
  ].join('\n');
}

/** What the command line asks for. */
export type Command =
  | { readonly kind: 'run' | 'help' | 'version' }
  | { readonly kind: 'unknown'; readonly arg: string };

/** Reads the command line (arguments after the script). */
export function parseArgs(args: readonly string[]): Command {
  for (const arg of args) {
    if (arg === '--help' || arg === '-h') return { kind: 'help' };
    if (arg === '--version' || arg === '-v') return { kind: 'version' };
    return { kind: 'unknown', arg };
  }
  return { kind: 'run' };
}
