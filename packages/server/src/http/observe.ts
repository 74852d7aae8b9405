/**
 * @module http/observe
 * What every request passes through on its way out: the one access-log line and the metrics,
 * and the one place errors (ours and Fastify's own) become HTTP status + JSON-RPC body.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { type ErrorCode, findProxyError, type JsonRpcId, ProxyError, toErrorReply } from '../errors.ts';
import type { LiveStatus } from '../observability/live-status.ts';
import { createPlainLogger, logsAt, redactUrl } from '../observability/logger.ts';
import type { ProxyMetrics } from '../observability/metrics.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** MCP method of the forwarded message, for the access log. */
    mcpMethod: string | undefined;
    /** Upstream host, for the access log. */
    targetHost: string | undefined;
    /** Stable error code of a failed request, for the access log. */
    errorCode: ErrorCode | undefined;
  }
}

/**
 * Logs one line and records metrics for every answered request, and counts it for the status
 * page when there is one (`status` undefined: nothing).
 */
export function registerRequestLogging(
  app: FastifyInstance,
  metrics: ProxyMetrics,
  status?: LiveStatus,
): void {
  const access = createPlainLogger(app.log);
  app.addHook('onResponse', (request, reply, done) => {
    // Fastify builds a new object on every read of `routeOptions`: read it once, and only when used.
    const route = status !== undefined || metrics.enabled ? request.routeOptions.url : undefined;
    status?.request(route, request.errorCode);
    if (metrics.enabled) {
      metrics.request(route, request.method, reply.statusCode, request.mcpMethod, reply.elapsedTime / 1000);
      metrics.bytes('in', Number(request.headers['content-length'] ?? 0));
      metrics.bytes('out', Number(reply.getHeader('content-length') ?? 0));
      if (request.errorCode) metrics.refusal(request.errorCode);
    }
    // One line per request; headers and bodies are never logged, URLs have token params redacted.
    // Built only when the level writes it: at warn and above this is most requests' only log call.
    if (logsAt(request.log, 'info')) {
      access.info(
        {
          reqId: request.id,
          method: request.method,
          url: redactUrl(request.url),
          mcpMethod: request.mcpMethod,
          target: request.targetHost,
          status: reply.statusCode,
          durationMs: Math.round(reply.elapsedTime * 10) / 10,
          ...(request.errorCode ? { error: request.errorCode } : {}),
        },
        'request',
      );
    }
    done();
  });
}

/** Turns every error, and unknown routes, into the proxy's error replies. */
export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const reply_ = toErrorReply(fromFastifyError(error), bodyId(request.body));
    request.errorCode = reply_.error.code;
    if (reply_.status >= 500 && reply_.error.code === 'internal_error') {
      request.log.error({ err: error }, 'internal error');
    } else if (reply_.error.cause !== undefined) {
      request.log.debug({ err: reply_.error.cause, code: reply_.error.code }, 'request failed');
    }
    return reply.code(reply_.status).headers(reply_.headers).send(reply_.body);
  });
  app.setNotFoundHandler((request, reply) => {
    const reply_ = toErrorReply(
      new ProxyError('not_found', `No endpoint ${request.method} ${request.url.split('?')[0]}.`),
    );
    request.errorCode = reply_.error.code;
    return reply.code(reply_.status).send(reply_.body);
  });
}
/** Maps Fastify's own errors (body parsing, limits) onto the registry; others pass through. */
function fromFastifyError(error: FastifyError): unknown {
  if (findProxyError(error)) return error;
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ProxyError('parse_error', 'The request body is not valid JSON.', { cause: error });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ProxyError('invalid_envelope', 'The request body is empty: send a JSON envelope.', {
        cause: error,
      });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ProxyError('payload_too_large', undefined, { cause: error });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ProxyError('unsupported_media_type', undefined, { cause: error });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ProxyError('invalid_envelope', 'The Content-Length does not match the body.', {
        cause: error,
      });
  }
  if (error instanceof SyntaxError || error.statusCode === 400) {
    return new ProxyError('parse_error', undefined, { cause: error });
  }
  return error;
}

/**
 * The id to echo in an error reply, read leniently from a body that may be invalid (any
 * surface's: a POST /proxy envelope and a JSON-RPC message both keep it in `id`).
 */
function bodyId(body: unknown): JsonRpcId {
  if (typeof body !== 'object' || body === null) return null;
  const id = (body as { id?: unknown }).id;
  return typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)) ? id : null;
}
