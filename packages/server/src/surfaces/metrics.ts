/**
 * @module surfaces/metrics
 * `GET /metrics`: Prometheus text format, behind its own bearer token (METRICS_TOKEN), never
 * the proxy tokens. Without a METRICS_TOKEN the route does not exist.
 */
import type { FastifyInstance } from 'fastify';
import { assertOperatorBearer, type OperatorBearer } from '../http/operator-bearer.ts';
import { TokenVerifier } from '../identity/tokens.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import type { ProxyMetrics } from '../observability/metrics.ts';

/** What the metrics route needs. */
export interface MetricsRouteOptions {
  readonly metrics: ProxyMetrics;
  readonly token: string;
  /** Counts failed attempts per address, as on the proxy routes (guessing the token is brute force too). */
  readonly limiter: RateLimiter;
}

/** Registers `GET /metrics`. */
export async function metricsRoutes(app: FastifyInstance, options: MetricsRouteOptions): Promise<void> {
  const verifier = new TokenVerifier([options.token]);
  const gate: OperatorBearer = {
    limiter: options.limiter,
    accepts: (token) => verifier.verify(token) !== undefined,
    realm: 'metrics',
    hint: 'Send the metrics token as Authorization: Bearer <METRICS_TOKEN>.',
  };
  app.get('/metrics', async (request, reply) => {
    await assertOperatorBearer(gate, request, reply);
    return reply.type(options.metrics.registry.contentType).send(await options.metrics.registry.metrics());
  });
}
