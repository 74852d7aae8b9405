/**
 * @module config/config
 * Builds the one validated, frozen {@link Config} from, in rising precedence: built-in defaults,
 * the optional config file (`MCP_PROXY_CONFIG=path`, JSON or YAML), a `.env` file, and the
 * process environment. A bad value fails with one line naming where it came from.
 */
import { z } from 'zod';
import { checkAcrossSettings } from './cross-checks.ts';
import {
  grantsSchema,
  issuerUrl,
  oidcIssuerSchema,
  positiveInt,
  rateClassName,
  serverName,
  stdioServerSchema,
  tokenSchema,
  urlServerSchema,
} from './schemas.ts';
import {
  ConfigError,
  deepFreeze,
  deepMerge,
  ENV_VARS,
  getPath,
  parseEnvValue,
  readConfigFile,
  readDotenv,
  setPath,
} from './sources.ts';
import { virtualServerSchema } from './virtual-servers.ts';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Every default in one place (documented in docs/configuration.md). */
export const DEFAULTS = {
  host: '0.0.0.0',
  port: 8000,
  proxyTokens: [] as string[],
  tokens: [] as Array<{
    sha256: string;
    name?: string;
    servers?: string[];
    urls?: string[];
    tools?: string[];
    rateClass?: string;
    admin?: boolean;
  }>,
  /** Named rate limits a principal's grant may pick (`rateClass`); unset fields: `rateLimits`. */
  rateClasses: {} as Record<string, never>,
  /** The audit trail (issue 17): `off`, `stdout` or a file path. */
  auditLog: 'off',
  /** Whether audit lines carry a call's arguments (off: they may hold personal data). */
  auditLogArguments: false,
  /** A static token that may mint user tokens (issue 17); also `admin: true` on a config token. */
  adminToken: undefined as string | undefined,
  /** PEM files of Ed25519 keys that sign minted tokens, newest first (empty: one is generated). */
  signingKeys: [] as string[],
  /** Keys of the upstream OAuth token vault (base64, 32 bytes, newest first); empty: generated. */
  vaultKeys: [] as string[],
  corsOrigins: [] as string[],
  corsAllowedHeaders: [] as string[],
  corsMaxAgeSeconds: 600,
  logLevel: 'info',
  /** `auto`: readable lines when stdout is a terminal, JSON otherwise. */
  logFormat: 'auto',
  bodyLimitBytes: 1_048_576,
  shutdownTimeoutMs: 10_000,
  /** On SIGTERM, how long `/ready` answers 503 while requests are still served (issue 19). */
  drainDelayMs: 0,
  /**
   * While draining, how long a keep-alive connection must have been idle before it is closed:
   * set it above the load balancer's idle timeout, which then closes it first (issue 19).
   */
  drainIdleMs: 250,
  /** Processes serving the port (issue 19): `auto` is one per available core; 1 is no cluster. */
  workers: 1 as number | 'auto',
  // Deadlines on inbound connections, authenticated or not (issue 14 #4; docs/security.md).
  server: {
    headersTimeoutMs: 20_000,
    requestTimeoutMs: 60_000,
    keepAliveTimeoutMs: 72_000,
    // An answer none of whose waiting bytes went out this long (its caller stopped reading).
    writeIdleTimeoutMs: 60_000,
    // Open connections of every kind (/ws sockets and event streams too): past it, new ones are
    // dropped, so a flood cannot take the file descriptors upstream connections need.
    maxConnections: 10_000,
    // How long a resumable answer stream (a virtual server's, MCP 2025-11-25) waits open for its
    // answer before the proxy closes it and the client resumes it with Last-Event-ID; 0: never.
    answerPollMs: 0,
  },
  upstream: {
    timeoutMs: 30_000,
    connectTimeoutMs: 10_000,
    responseLimitBytes: 10_485_760,
    // Sockets to one upstream origin at once (issue 14 review, F2): more requests queue. Each open
    // event stream (a GET stream, an HTTP+SSE session) holds one, so it is generous.
    maxConnectionsPerOrigin: 1_024,
  },
  sessions: { idleTimeoutMs: 300_000, maxTotal: 1_000, maxPerToken: 100 },
  trustedProxies: [] as string[],
  redisUrl: undefined as string | undefined,
  /** Where shared state lives (issue 17): `auto` is Redis with REDIS_URL, else SQLite in dataDir. */
  store: 'auto' as 'auto' | 'memory' | 'sqlite' | 'redis',
  /** The embedded store's file and a generated signing key live here. */
  dataDir: './data',
  metricsToken: undefined as string | undefined,
  /** OpenTelemetry traces (issue 21, docs/observability.md): off unless an OTLP endpoint is set. */
  tracing: {
    endpoint: undefined as string | undefined,
    tracesEndpoint: undefined as string | undefined,
    exporter: undefined as 'otlp' | 'none' | undefined,
    serviceName: 'mcp-proxy',
    recordSubject: false,
  },
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
  limits: {
    inFlightPerToken: 100,
    inFlightTotal: 1_000,
    inFlightPerSocket: 64,
    maxBatchMessages: 64,
    shedHeapPercent: 85,
  },
  trustedHosts: [] as string[],
  allowQueryToken: false,
  sessionSecret: undefined as string | undefined,
  sessionSecretPrevious: [] as string[],
  /** The proxy's external base URL (protected resource metadata; default: from each request). */
  publicUrl: undefined as string | undefined,
  /**
   * The upstream OAuth broker (docs/oauth.md): unset, it runs when PUBLIC_URL is set (its links
   * and callback live there, issue 18); `false` keeps it off, `true` asks for it (it still needs
   * PUBLIC_URL). The one reading: config/broker-switch.ts `brokerSwitchedOn`.
   */
  oauthBroker: undefined as boolean | undefined,
  /**
   * A sign-in link opened without its app may be bound with a one-time code (docs/oauth.md).
   * Opt-in (review6 links): codes can be phished, so a proxy offers them only when asked.
   */
  oauthUserCodes: false,
  /** Clients pre-registered per authorization server (issuer), used for any server it serves. */
  oauthClients: [] as { issuer: string; clientId: string; clientSecret?: string; scopes?: string[] }[],
  // OIDC bearer tokens (issue 17; docs/identity.md#oidc). `issuer` + `audience` is the one from
  // the environment; `issuers` lists several, each with its own claim → grant mapping.
  oidc: {
    issuer: undefined as string | undefined,
    audience: [] as string[],
    issuers: [] as Array<Record<string, unknown>>,
    /** The proxy's login client at `issuer` (binds sign-in links to the user, docs/oauth.md). */
    loginClientId: undefined as string | undefined,
    loginClientSecret: undefined as string | undefined,
    clockToleranceSeconds: 30,
    jwksMaxAgeMs: 600_000,
    jwksCooldownMs: 30_000,
    /** Accept only RFC 9068 access tokens (`typ: at+jwt`), not plain JWTs (ID tokens). */
    requireAtJwt: false,
  },
  servers: {} as Record<string, never>,
  /** Several servers behind one endpoint (issue 20; docs/virtual-servers.md). Config file only. */
  virtualServers: {} as Record<string, never>,
  egress: {
    allowPrivateNetworks: false,
    allowedHosts: [] as string[],
    deniedHosts: [] as string[],
    allowedPorts: [] as number[],
    followRedirects: 0,
  },
} as const;

const configSchema = z
  .object({
    host: z.string().min(1),
    port: z.number().int().min(0).max(65_535),
    proxyTokens: z.array(tokenSchema),
    tokens: z.array(
      grantsSchema.extend({
        sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'sha256 must be the 64 hex digits of SHA-256(token)'),
        name: z.string().min(1).max(64).optional(),
      }),
    ),
    rateClasses: z.record(
      rateClassName,
      z.strictObject({
        windowMs: positiveInt.optional(),
        requestsPerWindow: z.number().int().min(0).optional(),
        wsMessagesPerWindow: z.number().int().min(0).optional(),
        sessionsPerWindow: z.number().int().min(0).optional(),
      }),
    ),
    auditLog: z.string().min(1),
    auditLogArguments: z.boolean(),
    adminToken: tokenSchema.optional(),
    signingKeys: z.array(z.string().min(1)),
    vaultKeys: z.array(
      z
        .string()
        .refine((k) => Buffer.from(k, 'base64').length === 32, 'each VAULT_KEY must be 32 bytes in base64'),
    ),
    corsOrigins: z.array(
      z
        .string()
        .refine((o) => o === '*' || isOrigin(o), 'each origin must look like https://app.example.com'),
    ),
    // RFC 9110 field names (token characters). `*` is refused: it would allow any header but
    // never Authorization, which surprises more than it helps; list the names instead.
    corsAllowedHeaders: z.array(
      z
        .string()
        .regex(
          /^[!#$%&'+\-.^_`|~0-9A-Za-z]+$/,
          'each entry must be an HTTP header name, e.g. X-Custom-Auth-Headers',
        ),
    ),
    corsMaxAgeSeconds: z.number().int().min(0),
    logLevel: z.enum(LOG_LEVELS),
    logFormat: z.enum(['auto', 'json', 'pretty']),
    bodyLimitBytes: positiveInt,
    shutdownTimeoutMs: positiveInt,
    drainDelayMs: z.number().int().min(0),
    drainIdleMs: z.number().int().min(0),
    workers: z.preprocess(
      (value) => (typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value),
      z.union([z.literal('auto'), z.number().int().min(1).max(256)], {
        error: 'must be a whole number of processes (1 or more) or "auto"',
      }),
    ),
    server: z
      .strictObject({
        headersTimeoutMs: positiveInt,
        requestTimeoutMs: positiveInt,
        keepAliveTimeoutMs: positiveInt,
        writeIdleTimeoutMs: positiveInt,
        maxConnections: positiveInt,
        answerPollMs: z.number().int().min(0),
      })
      // Node refuses a header deadline later than the whole-request one.
      .refine((s) => s.headersTimeoutMs <= s.requestTimeoutMs, {
        message: 'headersTimeoutMs must not exceed requestTimeoutMs',
        path: ['headersTimeoutMs'],
      }),
    upstream: z.strictObject({
      timeoutMs: positiveInt,
      connectTimeoutMs: positiveInt,
      responseLimitBytes: positiveInt,
      maxConnectionsPerOrigin: positiveInt,
    }),
    sessions: z.strictObject({ idleTimeoutMs: positiveInt, maxTotal: positiveInt, maxPerToken: positiveInt }),
    trustedProxies: z.array(z.string().min(1)),
    store: z.enum(['auto', 'memory', 'sqlite', 'redis']),
    dataDir: z.string().min(1),
    redisUrl: z
      .string()
      .refine((u) => /^rediss?:\/\//.test(u), 'must be a redis:// or rediss:// URL')
      .optional(),
    metricsToken: tokenSchema.optional(),
    tracing: z.strictObject({
      endpoint: z.url().optional(),
      tracesEndpoint: z.url().optional(),
      exporter: z.enum(['otlp', 'none']).optional(),
      serviceName: z.string().min(1),
      recordSubject: z.boolean(),
    }),
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
    limits: z.strictObject({
      inFlightPerToken: positiveInt,
      inFlightTotal: positiveInt,
      inFlightPerSocket: positiveInt,
      maxBatchMessages: positiveInt,
      shedHeapPercent: z.number().int().min(1).max(100),
    }),
    trustedHosts: z.array(z.string().min(1)),
    allowQueryToken: z.boolean(),
    sessionSecret: z.string().min(32, 'SESSION_SECRET must be at least 32 characters').optional(),
    sessionSecretPrevious: z.array(
      z.string().min(32, 'each previous session secret must be at least 32 characters'),
    ),
    oauthBroker: z.boolean().optional(),
    oauthUserCodes: z.boolean(),
    oauthClients: z.array(
      z.strictObject({
        issuer: z.url(),
        clientId: z.string().min(1),
        clientSecret: z.string().min(1).optional(),
        scopes: z.array(z.string().min(1)).optional(),
      }),
    ),
    publicUrl: z
      .string()
      .refine(
        (u) => /^https?:\/\/[^/?#]+\/?$/.test(u) && URL.canParse(u),
        'must be an http(s) origin, e.g. https://proxy.example.com',
      )
      .transform((u) => u.replace(/\/$/, ''))
      .optional(),
    oidc: z.strictObject({
      issuer: issuerUrl.optional(),
      audience: z.array(z.string().min(1)),
      issuers: z.array(oidcIssuerSchema),
      loginClientId: z.string().min(1).optional(),
      loginClientSecret: z.string().min(1).optional(),
      clockToleranceSeconds: z.number().int().min(0).max(300),
      jwksMaxAgeMs: positiveInt,
      jwksCooldownMs: z.number().int().min(0),
      requireAtJwt: z.boolean(),
    }),
    servers: z.record(serverName, z.union([urlServerSchema, stdioServerSchema])),
    virtualServers: z.record(serverName, virtualServerSchema),
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
  checkAcrossSettings(config, (path) => `Invalid configuration: ${describeSource(path, origin)}`);
  config.proxyTokens = [...new Set(config.proxyTokens)];
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

/** Whether `value` is a browser origin: http(s) scheme, host, optional port (a trailing `/` allowed). */
export function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value.replace(/\/$/, '');
  } catch {
    return false;
  }
}

export { ConfigError };
