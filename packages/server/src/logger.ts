/**
 * @module logger
 * The pino logger, with every place a secret could appear redacted: token headers, envelope
 * token fields, and token query parameters in URLs.
 */
import { type DestinationStream, type Logger, pino } from 'pino';

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

const SECRET_QUERY = /([?&](?:proxy_token|mcp_token|token|access_token)=)[^&#]*/gi;

/** Replaces the values of token-bearing query parameters in a URL or path. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, '$1[REDACTED]');
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
