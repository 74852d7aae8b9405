/**
 * @module http/plumbing
 * What every request passes through, registered once on the app (app.ts) before any route: the
 * body parser (JSON only), the request's decorations, CORS, the request id and `nosniff`
 * headers, the refusal while closing, traces, the access log and metrics, the write-idle
 * deadline and the error handlers.
 */
import fastifyCors from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.ts';
import type { LiveStatus } from '../observability/live-status.ts';
import type { ProxyMetrics } from '../observability/metrics.ts';
import type { Tracing } from '../observability/tracing.ts';
import { type CorsAccess, corsOptions } from './cors.ts';
import type { GracefulStop } from './graceful-stop.ts';
import { registerJsonBodyParser } from './json-body.ts';
import { registerErrorHandlers, registerRequestLogging } from './observe.ts';
import { registerTraceHooks, type SpanServers } from './trace-hooks.ts';
import { registerWriteIdleDeadline } from './write-idle.ts';

/** What the plumbing needs of the app. */
export interface PlumbingDeps {
  /** Runs before a body is parsed (the in-flight bounds: limits/in-flight-hooks.ts). */
  readonly beforeParse: (request: FastifyRequest) => void;
  /** The Origin rules CORS applies (a reload updates them in place), and its max age. */
  readonly access: CorsAccess;
  readonly corsMaxAgeSeconds: number;
  /** The shutdown's phases. */
  readonly stop: Pick<GracefulStop, 'closing' | 'closesConnections'>;
  readonly tracing: Tracing;
  /** What a span says of the server a request names (read per request: a reload changes it). */
  readonly spanServers: SpanServers;
  readonly metrics: ProxyMetrics;
  readonly status?: LiveStatus | undefined;
  readonly writeIdleTimeoutMs: number;
}

/** Registers what every request passes through. */
export async function registerPlumbing(app: FastifyInstance, deps: PlumbingDeps): Promise<void> {
  const { stop } = deps;
  // JSON only: a text/plain body is a client mistake (415), not a string envelope.
  app.removeContentTypeParser('text/plain');
  registerJsonBodyParser(app, deps.beforeParse);
  app.decorateRequest('identity', undefined);
  app.decorateRequest('audit', undefined);
  app.decorateRequest('credentialInAuthorization', false);
  app.decorateRequest('recheckCredential', undefined);
  app.decorateRequest('mcpMethod', undefined);
  app.decorateRequest('targetHost', undefined);
  app.decorateRequest('errorCode', undefined);
  app.decorateRequest('targetKey', undefined);
  app.decorateRequest('answeredFrom', undefined);
  app.decorateRequest('inFlightHeld', undefined);

  await app.register(fastifyCors, () => corsOptions(deps.access, deps.corsMaxAgeSeconds));

  // Callback-style hooks: an async one costs a promise and a microtask on every request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    // Issue #14.10: whatever a body holds (relayed upstream content too), never sniff it as HTML.
    reply.header('x-content-type-options', 'nosniff');
    const refused = stop.closing && request.url !== '/health' && request.url !== '/ready';
    done(refused ? new ProxyError('shutting_down') : undefined);
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    // Requests that finish during shutdown must not leave a keep-alive socket holding close() open.
    if (stop.closesConnections) reply.header('connection', 'close');
    done(null, payload);
  });
  if (deps.tracing.enabled) registerTraceHooks(app, deps.tracing, deps.spanServers);
  registerRequestLogging(app, deps.metrics, deps.status);
  registerWriteIdleDeadline(app, deps.writeIdleTimeoutMs);
  registerErrorHandlers(app);
}
