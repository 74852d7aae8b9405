/**
 * @module config
 * Builds the one validated, frozen {@link Config} from, in rising precedence: built-in defaults,
 * the optional config file (`MCP_PROXY_CONFIG=path`, JSON or YAML), a `.env` file, and the
 * process environment. A bad value fails with one line naming where it came from.
 */
import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { HostList } from './egress/host-list.ts';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Every default in one place (documented in docs/configuration.md). */
export const DEFAULTS = {
  host: '0.0.0.0',
  port: 8000,
  proxyTokens: [] as string[],
  tokens: [] as Array<{ sha256: string; name?: string; servers?: string[] }>,
  corsOrigins: [] as string[],
  corsMaxAgeSeconds: 600,
  logLevel: 'info',
  bodyLimitBytes: 1_048_576,
  shutdownTimeoutMs: 10_000,
  upstream: { timeoutMs: 30_000, connectTimeoutMs: 10_000, responseLimitBytes: 10_485_760 },
  sessions: { idleTimeoutMs: 300_000, maxTotal: 1_000, maxPerToken: 100 },
  trustedProxies: [] as string[],
  redisUrl: undefined as string | undefined,
  metricsToken: undefined as string | undefined,
  rateLimits: {
    windowMs: 60_000,
    requestsPerToken: 1_200,
    requestsPerIp: 2_400,
    wsMessagesPerToken: 6_000,
    sessionsPerToken: 120,
    authFailuresPerIp: 30,
  },
  websocket: {
    allowMissingOrigin: false,
    maxMessageBytes: 1_048_576,
    heartbeatMs: 30_000,
    maxQueuedBytes: 4_194_304,
  },
  trustedHosts: [] as string[],
  allowQueryToken: false,
  sessionSecret: undefined as string | undefined,
  servers: {} as Record<string, never>,
  egress: {
    allowPrivateNetworks: false,
    allowedHosts: [] as string[],
    deniedHosts: [] as string[],
    allowedPorts: [] as number[],
    followRedirects: 0,
  },
} as const;

const positiveInt = z.number().int().positive();
const tokenSchema = z
  .string()
  .min(16, 'a proxy token must be at least 16 characters (32+ random characters recommended)')
  // Letters, digits and - _ . ~ only: the token must also fit a WebSocket subprotocol name.
  .refine((t) => /^[A-Za-z0-9._~-]+$/.test(t), 'a proxy token may contain only letters, digits and - _ . ~');

/** Name of a configured server: used in `/servers/{name}/mcp`, so URL-safe. */
const serverName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'server names use letters, digits, . _ -');

/** An operator-configured MCP server reached over the network. */
const urlServerSchema = z.strictObject({
  url: z.string().url('must be an http(s) or ws(s) URL'),
  transport: z.enum(['auto', 'streamable-http', 'sse', 'websocket']).default('auto'),
  /** Bearer token the proxy sends upstream for this server (callers never see it). */
  token: z.string().min(1).optional(),
  /** Only these tools are listed and callable (others look unknown). */
  tools: z.array(z.string().min(1)).optional(),
});

/** An operator-configured MCP server run as a child process speaking stdio. */
const stdioServerSchema = z.strictObject({
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: z.record(z.string(), z.string()).default({}),
  cwd: z.string().min(1).optional(),
  /** Only these tools are listed and callable (others look unknown). */
  tools: z.array(z.string().min(1)).optional(),
});

const configSchema = z
  .object({
    host: z.string().min(1),
    port: z.number().int().min(0).max(65_535),
    proxyTokens: z.array(tokenSchema),
    tokens: z.array(
      z.strictObject({
        sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'sha256 must be the 64 hex digits of SHA-256(token)'),
        name: z.string().min(1).max(64).optional(),
        servers: z.array(serverName).optional(),
      }),
    ),
    corsOrigins: z.array(
      z
        .string()
        .refine((o) => o === '*' || isOrigin(o), 'each origin must look like https://app.example.com'),
    ),
    corsMaxAgeSeconds: z.number().int().min(0),
    logLevel: z.enum(LOG_LEVELS),
    bodyLimitBytes: positiveInt,
    shutdownTimeoutMs: positiveInt,
    upstream: z.strictObject({
      timeoutMs: positiveInt,
      connectTimeoutMs: positiveInt,
      responseLimitBytes: positiveInt,
    }),
    sessions: z.strictObject({ idleTimeoutMs: positiveInt, maxTotal: positiveInt, maxPerToken: positiveInt }),
    trustedProxies: z.array(z.string().min(1)),
    redisUrl: z
      .string()
      .refine((u) => /^rediss?:\/\//.test(u), 'must be a redis:// or rediss:// URL')
      .optional(),
    metricsToken: tokenSchema.optional(),
    rateLimits: z.strictObject({
      windowMs: positiveInt,
      requestsPerToken: z.number().int().min(0),
      requestsPerIp: z.number().int().min(0),
      wsMessagesPerToken: z.number().int().min(0),
      sessionsPerToken: z.number().int().min(0),
      authFailuresPerIp: z.number().int().min(0),
    }),
    websocket: z.strictObject({
      allowMissingOrigin: z.boolean(),
      maxMessageBytes: positiveInt,
      heartbeatMs: positiveInt,
      maxQueuedBytes: positiveInt,
    }),
    trustedHosts: z.array(z.string().min(1)),
    allowQueryToken: z.boolean(),
    sessionSecret: z.string().min(32, 'SESSION_SECRET must be at least 32 characters').optional(),
    servers: z.record(serverName, z.union([urlServerSchema, stdioServerSchema])),
    egress: z.strictObject({
      allowPrivateNetworks: z.boolean(),
      allowedHosts: z.array(z.string().min(1)),
      deniedHosts: z.array(z.string().min(1)),
      allowedPorts: z.array(z.number().int().min(1).max(65_535)),
      followRedirects: z.number().int().min(0).max(10),
    }),
  })
  .strict();

/** A configured upstream reached by URL. */
export type UrlServerConfig = DeepReadonly<z.infer<typeof urlServerSchema>>;
/** A configured upstream run as a stdio child process. */
export type StdioServerConfig = DeepReadonly<z.infer<typeof stdioServerSchema>>;

/** The proxy's whole configuration, validated and deeply frozen. */
export type Config = DeepReadonly<z.infer<typeof configSchema>>;

type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** Raised for any invalid setting; its message is the one line printed at start-up. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Kind = 'string' | 'int' | 'bool' | 'list' | 'intList';

/** Environment variables and where each lands in the config tree. */
const ENV_VARS: ReadonlyArray<readonly [name: string, path: readonly string[], kind: Kind]> = [
  ['HOST', ['host'], 'string'],
  ['PORT', ['port'], 'int'],
  ['PROXY_TOKEN', ['proxyTokens'], 'list'],
  ['PROXY_TOKENS', ['proxyTokens'], 'list'],
  ['CORS_ORIGINS', ['corsOrigins'], 'list'],
  ['CORS_MAX_AGE_SECONDS', ['corsMaxAgeSeconds'], 'int'],
  ['LOG_LEVEL', ['logLevel'], 'string'],
  ['BODY_LIMIT_BYTES', ['bodyLimitBytes'], 'int'],
  ['SHUTDOWN_TIMEOUT_MS', ['shutdownTimeoutMs'], 'int'],
  ['UPSTREAM_TIMEOUT_MS', ['upstream', 'timeoutMs'], 'int'],
  ['UPSTREAM_CONNECT_TIMEOUT_MS', ['upstream', 'connectTimeoutMs'], 'int'],
  ['UPSTREAM_RESPONSE_LIMIT_BYTES', ['upstream', 'responseLimitBytes'], 'int'],
  ['SESSION_IDLE_TIMEOUT_MS', ['sessions', 'idleTimeoutMs'], 'int'],
  ['MAX_SESSIONS', ['sessions', 'maxTotal'], 'int'],
  ['MAX_SESSIONS_PER_TOKEN', ['sessions', 'maxPerToken'], 'int'],
  ['TRUSTED_HOSTS', ['trustedHosts'], 'list'],
  ['ALLOW_QUERY_TOKEN', ['allowQueryToken'], 'bool'],
  ['SESSION_SECRET', ['sessionSecret'], 'string'],
  ['TRUSTED_PROXIES', ['trustedProxies'], 'list'],
  ['REDIS_URL', ['redisUrl'], 'string'],
  ['METRICS_TOKEN', ['metricsToken'], 'string'],
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
  ['ALLOW_PRIVATE_NETWORKS', ['egress', 'allowPrivateNetworks'], 'bool'],
  ['EGRESS_ALLOWED_HOSTS', ['egress', 'allowedHosts'], 'list'],
  ['EGRESS_DENIED_HOSTS', ['egress', 'deniedHosts'], 'list'],
  ['EGRESS_ALLOWED_PORTS', ['egress', 'allowedPorts'], 'intList'],
  ['EGRESS_FOLLOW_REDIRECTS', ['egress', 'followRedirects'], 'int'],
];

/** Where the inputs come from; all optional so tests can pass exactly what they mean. */
export interface ConfigSources {
  /** Process environment (default: none). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Path of a `.env` file to read if it exists (variables already in `env` win). */
  readonly dotenvPath?: string;
  /** Explicit config-file path; otherwise `MCP_PROXY_CONFIG` from the environment. */
  readonly configPath?: string;
}

/** Loads, merges and validates the configuration. Throws {@link ConfigError}. */
export function loadConfig(sources: ConfigSources = {}): Config {
  const dotenv = sources.dotenvPath ? readDotenv(sources.dotenvPath) : {};
  const env: Record<string, string | undefined> = { ...dotenv, ...sources.env };
  const origin = new Map<string, string>();

  const merged: Record<string, unknown> = structuredClone(DEFAULTS) as Record<string, unknown>;
  const configPath = sources.configPath ?? env.MCP_PROXY_CONFIG;
  if (configPath) {
    const file = readConfigFile(configPath);
    deepMerge(merged, file, [], origin, `config file ${configPath}`);
  }

  const tokenVars: string[] = [];
  for (const [name, path, kind] of ENV_VARS) {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') continue;
    const source = name in (sources.env ?? {}) ? name : `${name} (from .env)`;
    let value = parseEnvValue(raw, kind, source);
    if (path[0] === 'proxyTokens') {
      // PROXY_TOKEN and PROXY_TOKENS add up: rotation keeps the old token while adding a new one.
      tokenVars.push(source);
      const previous = tokenVars.length > 1 ? (getPath(merged, path) as string[]) : [];
      value = [...previous, ...(value as string[])];
    }
    setPath(merged, path, value);
    origin.set(
      path.join('.'),
      tokenVars.length > 1 && path[0] === 'proxyTokens' ? tokenVars.join('/') : source,
    );
  }

  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = (issue?.path ?? []).map(String);
    throw new ConfigError(
      `Invalid configuration: ${describeSource(path, origin)}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const config = parsed.data;
  for (const key of ['allowedHosts', 'deniedHosts'] as const) {
    try {
      HostList.parse(config.egress[key], key);
    } catch (error) {
      const detail = (error as Error).message.slice(key.length + 2);
      throw new ConfigError(`Invalid configuration: ${describeSource(['egress', key], origin)}: ${detail}`);
    }
  }
  config.proxyTokens = [...new Set(config.proxyTokens)];
  for (const [index, grant] of config.tokens.entries()) {
    const unknown = grant.servers?.find((name) => !Object.hasOwn(config.servers, name));
    if (unknown !== undefined) {
      throw new ConfigError(
        `Invalid configuration: ${describeSource(['tokens'], origin)} key "tokens.${index}.servers": no server named "${unknown}"`,
      );
    }
  }
  return deepFreeze(config) as Config;
}

function describeSource(path: readonly string[], origin: ReadonlyMap<string, string>): string {
  for (let n = path.length; n > 0; n--) {
    const key = path.slice(0, n).join('.');
    const source = origin.get(key);
    if (source) return source.startsWith('config file') ? `${source} key "${path.join('.')}"` : source;
  }
  return `setting "${path.join('.') || '(root)'}"`;
}

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value.replace(/\/$/, '');
  } catch {
    return false;
  }
}

function parseEnvValue(raw: string, kind: Kind, source: string): unknown {
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

function readDotenv(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`Invalid configuration: cannot read ${path}: ${(error as Error).message}`);
  }
  return parseDotenv(text);
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(resolve(path), 'utf8');
  } catch (error) {
    throw new ConfigError(
      `Invalid configuration: MCP_PROXY_CONFIG: cannot read ${path} (${(error as Error).message})`,
    );
  }
  let data: unknown;
  try {
    data = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    const first = (error as Error).message.split('\n')[0];
    throw new ConfigError(`Invalid configuration: config file ${path} does not parse: ${first}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`Invalid configuration: config file ${path} must hold an object at the top level`);
  }
  return data as Record<string, unknown>;
}

function deepMerge(
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

function getPath(root: Record<string, unknown>, path: readonly string[]): unknown {
  let node: unknown = root;
  for (const key of path) node = (node as Record<string, unknown>)[key];
  return node;
}

function setPath(root: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = root;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[path.at(-1) as string] = value;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
