/**
 * @module observability/logger
 * The pino logger, with every place a secret could appear redacted: token headers, envelope
 * token fields, and token query parameters in URLs. Also what keeps logging cheap on the hot
 * paths: request loggers created only when used, and level checks before building a line.
 */
import type { FastifyBaseLogger } from 'fastify';
import { type Bindings, type ChildLoggerOptions, type DestinationStream, type Logger, pino } from 'pino';

/** Paths pino censors wherever they appear in a log object. */
const REDACT_PATHS = [
  'headers["x-proxy-token"]',
  'headers["x-mcp-token"]',
  'headers.authorization',
  'headers.cookie',
  '*.headers["x-proxy-token"]',
  '*.headers["x-mcp-token"]',
  '*.headers.authorization',
  '*.headers.cookie',
  'mcp_token',
  'proxy_token',
  '*.mcp_token',
  '*.proxy_token',
];

/** Query parameters whose value is a credential (compared after decoding, case-insensitively). */
// `code` and `state`: the OAuth callback's authorization code and sign-in state
// (/oauth/callback/{key}?code=…&state=…) are credentials too.
const SECRET_NAMES = new Set(['proxy_token', 'mcp_token', 'token', 'access_token', 'code', 'state']);
/** A sign-in link's one-time id (`/oauth/start/{id}`) is a secret path segment. */
const START_LINK = /^\/oauth\/start\/[^/?#]+/;
/** Rounds of percent-decoding tried on a name: more than any parser applies, so none slips by. */
const DECODE_ROUNDS = 4;

/**
 * Replaces the values of token-bearing query parameters in a URL or path. A name is judged by
 * what the query parsers make of it, not by its spelling (issue 14 #9): `proxy%5Ftoken` is
 * decoded to `proxy_token` by Fastify's parser and by URLSearchParams, so it is redacted too;
 * names are decoded leniently and repeatedly, so double-encoded and malformed forms are as well.
 * The query starts where the router's starts: at the first `?` or `#` (Fastify reads
 * `/mcp#proxy_token=…` as a query, so it must be redacted as one).
 */
export function redactUrl(url: string): string {
  if (url.startsWith('/oauth/start/')) url = url.replace(START_LINK, '/oauth/start/[REDACTED]');
  const mark = url.search(/[?#]/);
  if (mark === -1) return url;
  const pairs = url.slice(mark + 1).split('&');
  let changed = false;
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i] as string;
    const equals = pair.indexOf('=');
    if (equals === -1 || !SECRET_NAMES.has(decodedName(pair.slice(0, equals)))) continue;
    pairs[i] = `${pair.slice(0, equals)}=[REDACTED]`;
    changed = true;
  }
  return changed ? `${url.slice(0, mark + 1)}${pairs.join('&')}` : url;
}

/** Most parameter names {@link describeUrl} lists, and their longest kept length. */
const MAX_PARAMS = 16;
const MAX_PARAM_NAME = 40;

/**
 * The shape of a URL for a log line: its path and the names of its query parameters, never
 * their values. For URLs whose values may hold any credential, such as `/ws?mcp_server_url=`
 * naming an upstream URL with an API key in it (issue 14 review).
 */
export function describeUrl(url: string): { path: string; params: string[] } {
  const mark = url.search(/[?#]/);
  if (mark === -1) return { path: url, params: [] };
  const names = new Set<string>();
  for (const pair of url.slice(mark + 1).split('&')) {
    // A part without `=` is not a name a parser pairs with a value: it could be a value itself.
    const equals = pair.indexOf('=');
    if (equals <= 0) continue;
    names.add(decodedName(pair.slice(0, equals)).slice(0, MAX_PARAM_NAME));
    if (names.size >= MAX_PARAMS) break;
  }
  return { path: url.slice(0, mark), params: [...names] };
}

/** A query name as any parser could read it: `+` as space, %XX decoded until stable, lower case. */
function decodedName(raw: string): string {
  let name = raw.replaceAll('+', ' ');
  for (let round = 0; round < DECODE_ROUNDS && name.includes('%'); round++) {
    const next = name.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    );
    if (next === name) break;
    name = next;
  }
  return name.toLowerCase();
}

/** Builds the proxy's logger; `destination` lets tests capture lines. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    base: { service: 'mcp-proxy' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * A logger for lines built only from fields the proxy chose, which hold no secret by
 * construction (the access line: its URL goes through {@link redactUrl}): the same output,
 * without running redaction over every line. It writes whatever it is given; callers check the
 * level of the logger the line belongs to ({@link logsAt}), which follows reloads.
 */
export function createPlainLogger(logger: FastifyBaseLogger): FastifyBaseLogger {
  return logger.child({}, { level: 'trace', redact: { paths: [] } });
}

/** A level a line can be written at. */
export type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/** Numeric pino levels (the standard set; the proxy defines no custom levels). */
const LEVEL_VALUES: Readonly<Record<string, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Number.POSITIVE_INFINITY,
};

/** True when `logger` writes lines at `level` (build a log object only then). */
export function logsAt(logger: FastifyBaseLogger, level: Level): boolean {
  return (LEVEL_VALUES[level] ?? 0) >= (LEVEL_VALUES[logger.level] ?? 0);
}

type LogArgs = unknown[];

/**
 * Fastify's per-request child logger, created only when the request writes a line (issue #10):
 * a pino child with the request id costs a few microseconds (bindings are serialised and run
 * through redaction), and most requests log nothing at the default levels.
 */
class LazyChildLogger implements FastifyBaseLogger {
  readonly #parent: FastifyBaseLogger;
  readonly #bindings: Bindings;
  readonly #options: ChildLoggerOptions | undefined;
  #child: FastifyBaseLogger | undefined;

  constructor(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions | undefined) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  get level(): string {
    return this.#child?.level ?? this.#options?.level ?? this.#parent.level;
  }

  set level(level: string) {
    this.#real().level = level;
  }

  fatal(...args: LogArgs): void {
    this.#log('fatal', args);
  }
  error(...args: LogArgs): void {
    this.#log('error', args);
  }
  warn(...args: LogArgs): void {
    this.#log('warn', args);
  }
  info(...args: LogArgs): void {
    this.#log('info', args);
  }
  debug(...args: LogArgs): void {
    this.#log('debug', args);
  }
  trace(...args: LogArgs): void {
    this.#log('trace', args);
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#real().child(bindings, options);
  }

  #log(level: Level, args: LogArgs): void {
    if (!logsAt(this, level)) return;
    (this.#real()[level] as (...args: LogArgs) => void).apply(this.#child, args);
  }

  #real(): FastifyBaseLogger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options);
    return this.#child;
  }
}

/** Fastify `childLoggerFactory`: request loggers that cost nothing until used. */
export function lazyChildLoggerFactory(
  logger: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildLoggerOptions,
): FastifyBaseLogger {
  // Fastify passes {} when a route sets no log options; pino's child() is cheaper without it.
  return new LazyChildLogger(logger, bindings, Object.keys(options).length === 0 ? undefined : options);
}
