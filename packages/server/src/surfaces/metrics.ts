/**
 * @module surfaces/metrics
 * `GET /metrics`: Prometheus text format, behind its own bearer token (METRICS_TOKEN), never
 * the proxy tokens. Without a METRICS_TOKEN the route does not exist.
 */
import type { FastifyInstance } from 'fastify';
import { ProxyError } from '../errors.ts';
import { TokenVerifier } from '../identity/tokens.ts';
import { rateSubject } from '../limits/client-address.ts';
import { closeAfterRefusal } from '../limits/connection-deadlines.ts';
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
  app.get('/metrics', async (request, reply) => {
    const ip = rateSubject(request.ip);
    try {
      await options.limiter.assertUnder('authFailuresPerIp', ip);
      const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
      if (!verifier.verify(match?.[1])) {
        await options.limiter.consume('authFailuresPerIp', ip);
        throw new ProxyError(
          'unauthorized',
          'Send the metrics token as Authorization: Bearer <METRICS_TOKEN>.',
          { headers: { 'www-authenticate': 'Bearer realm="metrics"' } },
        );
      }
    } catch (error) {
      closeAfterRefusal(request, reply);
      throw error;
    }
    return reply.type(options.metrics.registry.contentType).send(await options.metrics.registry.metrics());
  });
}
