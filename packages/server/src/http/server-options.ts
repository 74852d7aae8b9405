/**
 * @module http/server-options
 * The Fastify options of the proxy's one server: the logger, body limit, connection deadlines,
 * whose X-Forwarded-For to believe, and where request ids come from.
 */
import { randomUUID } from 'node:crypto';
import { type FastifyBaseLogger, type FastifyServerOptions, LogController } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { serverDeadlines } from '../limits/connection-deadlines.ts';
import { lazyChildLoggerFactory } from '../observability/logger.ts';
import { lazySchemaCompilers } from './schema-compilers.ts';

/** An inbound X-Request-Id the proxy keeps: printable ASCII, bounded (else a fresh UUID). */
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/** The options `Fastify()` is built with for a configuration. */
export function serverOptions(config: Config, logger: Logger): FastifyServerOptions {
  return {
    loggerInstance: logger as FastifyBaseLogger,
    // Our own onResponse hook writes the one line per request; Fastify's own lines are off.
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: lazyChildLoggerFactory,
    bodyLimit: config.bodyLimitBytes,
    ...serverDeadlines(config.server),
    forceCloseConnections: 'idle',
    // X-Forwarded-For is believed only from the operator's own reverse proxies.
    trustProxy: config.trustedProxies.length > 0 ? [...config.trustedProxies] : false,
    return503OnClosing: false,
    schemaController: { compilersFactory: lazySchemaCompilers() },
    requestIdHeader: false,
    genReqId: (raw) => {
      const incoming = raw.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
  };
}
