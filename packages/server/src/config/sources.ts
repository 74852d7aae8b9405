/**
 * @module config/sources
 * Where configuration comes from and how raw values become typed ones: the environment
 * variable table, `.env` and config-file reading, and the merge helpers `loadConfig` uses.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, resolve } from 'node:path';

/**
 * The YAML and .env parsers are loaded only when there is a file to parse (issue #16: a proxy
 * configured by its environment alone never holds them), synchronously since `loadConfig` is.
 */
const requireParser = createRequire(import.meta.url);

/** Raised for any invalid setting; its message is the one line printed at start-up. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** How an environment variable's text is read. */
export type Kind = 'string' | 'int' | 'bool' | 'list' | 'intList';

/** Environment variables and where each lands in the config tree. */
export const ENV_VARS: ReadonlyArray<readonly [name: string, path: readonly string[], kind: Kind]> = [
  ['HOST', ['host'], 'string'],
  ['PORT', ['port'], 'int'],
  ['PROXY_TOKEN', ['proxyTokens'], 'list'],
  ['PROXY_TOKENS', ['proxyTokens'], 'list'],
  ['ADMIN_TOKEN', ['adminToken'], 'string'],
  ['SIGNING_KEYS', ['signingKeys'], 'list'],
  ['VAULT_KEY', ['vaultKeys'], 'list'],
  ['CORS_ORIGINS', ['corsOrigins'], 'list'],
  ['CORS_ALLOWED_HEADERS', ['corsAllowedHeaders'], 'list'],
  ['CORS_MAX_AGE_SECONDS', ['corsMaxAgeSeconds'], 'int'],
  ['LOG_LEVEL', ['logLevel'], 'string'],
  ['LOG_FORMAT', ['logFormat'], 'string'],
  ['BODY_LIMIT_BYTES', ['bodyLimitBytes'], 'int'],
  ['SHUTDOWN_TIMEOUT_MS', ['shutdownTimeoutMs'], 'int'],
  ['DRAIN_DELAY_MS', ['drainDelayMs'], 'int'],
  ['DRAIN_IDLE_MS', ['drainIdleMs'], 'int'],
  ['WORKERS', ['workers'], 'string'],
  ['HEADERS_TIMEOUT_MS', ['server', 'headersTimeoutMs'], 'int'],
  ['REQUEST_TIMEOUT_MS', ['server', 'requestTimeoutMs'], 'int'],
  ['KEEP_ALIVE_TIMEOUT_MS', ['server', 'keepAliveTimeoutMs'], 'int'],
  ['WRITE_IDLE_TIMEOUT_MS', ['server', 'writeIdleTimeoutMs'], 'int'],
  ['MAX_CONNECTIONS', ['server', 'maxConnections'], 'int'],
  ['ANSWER_POLL_MS', ['server', 'answerPollMs'], 'int'],
  ['UPSTREAM_TIMEOUT_MS', ['upstream', 'timeoutMs'], 'int'],
  ['UPSTREAM_CONNECT_TIMEOUT_MS', ['upstream', 'connectTimeoutMs'], 'int'],
  ['UPSTREAM_RESPONSE_LIMIT_BYTES', ['upstream', 'responseLimitBytes'], 'int'],
  ['UPSTREAM_MAX_CONNECTIONS_PER_ORIGIN', ['upstream', 'maxConnectionsPerOrigin'], 'int'],
  ['SESSION_IDLE_TIMEOUT_MS', ['sessions', 'idleTimeoutMs'], 'int'],
  ['MAX_SESSIONS', ['sessions', 'maxTotal'], 'int'],
  ['MAX_SESSIONS_PER_TOKEN', ['sessions', 'maxPerToken'], 'int'],
  ['TRUSTED_HOSTS', ['trustedHosts'], 'list'],
  ['ALLOW_QUERY_TOKEN', ['allowQueryToken'], 'bool'],
  ['SESSION_SECRET', ['sessionSecret'], 'string'],
  ['SESSION_SECRET_PREVIOUS', ['sessionSecretPrevious'], 'list'],
  ['TRUSTED_PROXIES', ['trustedProxies'], 'list'],
  ['PUBLIC_URL', ['publicUrl'], 'string'],
  ['OAUTH_BROKER', ['oauthBroker'], 'bool'],
  ['OAUTH_USER_CODES', ['oauthUserCodes'], 'bool'],
  ['OIDC_ISSUER', ['oidc', 'issuer'], 'string'],
  ['OIDC_AUDIENCE', ['oidc', 'audience'], 'list'],
  ['OIDC_REQUIRE_AT_JWT', ['oidc', 'requireAtJwt'], 'bool'],
  ['OIDC_LOGIN_CLIENT_ID', ['oidc', 'loginClientId'], 'string'],
  ['OIDC_LOGIN_CLIENT_SECRET', ['oidc', 'loginClientSecret'], 'string'],
  ['REDIS_URL', ['redisUrl'], 'string'],
  ['STORE', ['store'], 'string'],
  ['DATA_DIR', ['dataDir'], 'string'],
  ['METRICS_TOKEN', ['metricsToken'], 'string'],
  ['OTEL_EXPORTER_OTLP_ENDPOINT', ['tracing', 'endpoint'], 'string'],
  ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', ['tracing', 'tracesEndpoint'], 'string'],
  ['OTEL_TRACES_EXPORTER', ['tracing', 'exporter'], 'string'],
  ['OTEL_SERVICE_NAME', ['tracing', 'serviceName'], 'string'],
  ['OTEL_RECORD_SUBJECT', ['tracing', 'recordSubject'], 'bool'],
  ['RATE_LIMIT_WINDOW_MS', ['rateLimits', 'windowMs'], 'int'],
  ['RATE_LIMIT_PER_TOKEN', ['rateLimits', 'requestsPerToken'], 'int'],
  ['RATE_LIMIT_PER_IP', ['rateLimits', 'requestsPerIp'], 'int'],
  ['RATE_LIMIT_WS_MESSAGES_PER_TOKEN', ['rateLimits', 'wsMessagesPerToken'], 'int'],
  ['RATE_LIMIT_SESSIONS_PER_TOKEN', ['rateLimits', 'sessionsPerToken'], 'int'],
  ['RATE_LIMIT_AUTH_FAILURES_PER_IP', ['rateLimits', 'authFailuresPerIp'], 'int'],
  ['WS_ALLOW_MISSING_ORIGIN', ['websocket', 'allowMissingOrigin'], 'bool'],
  ['WS_MAX_MESSAGE_BYTES', ['websocket', 'maxMessageBytes'], 'int'],
  ['WS_HEARTBEAT_MS', ['websocket', 'heartbeatMs'], 'int'],
  ['WS_MAX_QUEUED_BYTES', ['websocket', 'maxQueuedBytes'], 'int'],
  ['IN_FLIGHT_PER_TOKEN', ['limits', 'inFlightPerToken'], 'int'],
  ['IN_FLIGHT_TOTAL', ['limits', 'inFlightTotal'], 'int'],
  ['IN_FLIGHT_PER_SOCKET', ['limits', 'inFlightPerSocket'], 'int'],
  ['MAX_BATCH_MESSAGES', ['limits', 'maxBatchMessages'], 'int'],
  ['SHED_HEAP_PERCENT', ['limits', 'shedHeapPercent'], 'int'],
  ['ALLOW_PRIVATE_NETWORKS', ['egress', 'allowPrivateNetworks'], 'bool'],
  ['EGRESS_ALLOWED_HOSTS', ['egress', 'allowedHosts'], 'list'],
  ['EGRESS_DENIED_HOSTS', ['egress', 'deniedHosts'], 'list'],
  ['EGRESS_ALLOWED_PORTS', ['egress', 'allowedPorts'], 'intList'],
  ['EGRESS_FOLLOW_REDIRECTS', ['egress', 'followRedirects'], 'int'],
  ['AUDIT_LOG', ['auditLog'], 'string'],
  ['AUDIT_LOG_ARGUMENTS', ['auditLogArguments'], 'bool'],
];

/** Parses one environment value; throws ConfigError naming `source`. */
export function parseEnvValue(raw: string, kind: Kind, source: string): unknown {
  const text = raw.trim();
  switch (kind) {
    case 'string':
      return text;
    case 'int':
      return parseInteger(text, source);
    case 'bool': {
      const lower = text.toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(lower)) return true;
      if (['0', 'false', 'no', 'off'].includes(lower)) return false;
      throw new ConfigError(`Invalid configuration: ${source}: expected true or false, got "${text}"`);
    }
    case 'list':
      return splitList(text);
    case 'intList':
      return splitList(text).map((part) => parseInteger(part, source));
  }
}

function parseInteger(text: string, source: string): number {
  if (!/^\d+$/.test(text)) {
    throw new ConfigError(`Invalid configuration: ${source}: expected a whole number, got "${text}"`);
  }
  return Number(text);
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

export function readDotenv(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`Invalid configuration: cannot read ${path}: ${(error as Error).message}`);
  }
  return (requireParser('dotenv') as typeof import('dotenv')).parse(text);
}

/** Line and column (1-based) of a character offset in a text. */
function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `at line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
}

/**
 * Where JSON.parse fails, found without its message (V8 quotes the text near the fault): the
 * shortest prefix that fails for a reason other than ending too soon ends at the fault.
 */
function jsonFaultAt(text: string): string {
  const failsInside = (length: number): boolean => {
    try {
      JSON.parse(text.slice(0, length));
      return false;
    } catch (error) {
      const message = (error as Error).message;
      const at = /at position (\d+)/.exec(message);
      return (
        !/end of JSON input|Unterminated string/.test(message) && (at === null || Number(at[1]) < length)
      );
    }
  };
  if (!failsInside(text.length)) return '(the file ends too soon)';
  let low = 0;
  let high = text.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (failsInside(middle)) high = middle;
    else low = middle + 1;
  }
  return lineAndColumn(text, Math.max(0, low - 1));
}

/** Line and column of a YAML parse error, from its structured position. */
function yamlFaultAt(error: unknown): string {
  const position = (error as { linePos?: Array<{ line: number; col: number }> }).linePos?.[0];
  return position ? `at line ${position.line}, column ${position.col}` : '';
}

export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(resolve(path), 'utf8');
  } catch (error) {
    throw new ConfigError(
      `Invalid configuration: MCP_PROXY_CONFIG: cannot read ${path} (${(error as Error).message})`,
    );
  }
  let data: unknown;
  const json = extname(path).toLowerCase() === '.json';
  try {
    data = json ? JSON.parse(text) : (requireParser('yaml') as typeof import('yaml')).parse(text);
  } catch (error) {
    // Only where, never what: the parsers quote the text around the fault, which may be a secret.
    throw new ConfigError(
      `Invalid configuration: config file ${path} does not parse as ${json ? 'JSON' : 'YAML'} ${
        json ? jsonFaultAt(text) : yamlFaultAt(error)
      }`,
    );
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`Invalid configuration: config file ${path} must hold an object at the top level`);
  }
  return data as Record<string, unknown>;
}

export function deepMerge(
  target: Record<string, unknown>,
  source: Record<string, unknown>,
  path: string[],
  origin: Map<string, string>,
  label: string,
): void {
  for (const [key, value] of Object.entries(source)) {
    const here = [...path, key];
    const existing = target[key];
    if (isPlainObject(value) && isPlainObject(existing)) {
      deepMerge(existing, value, here, origin, label);
    } else {
      target[key] = value;
      origin.set(here.join('.'), label);
    }
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function getPath(root: Record<string, unknown>, path: readonly string[]): unknown {
  let node: unknown = root;
  for (const key of path) node = (node as Record<string, unknown>)[key];
  return node;
}

export function setPath(root: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = root;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[path.at(-1) as string] = value;
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
