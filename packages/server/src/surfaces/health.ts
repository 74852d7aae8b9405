/**
 * @module surfaces/health
 * `GET /health` (liveness: the process answers) and `GET /ready` (readiness: accepting work,
 * 503 once shutdown has begun so load balancers drain this instance first).
 */
import type { FastifyInstance } from 'fastify';

/** What readiness depends on. */
export interface ReadinessProbe {
  /** True once shutdown has begun. */
  readonly shuttingDown: () => boolean;
}

/** Registers `GET /health` and `GET /ready`. */
export async function healthRoutes(app: FastifyInstance, probe: ReadinessProbe): Promise<void> {
  const started = Date.now();
  app.get('/health', async () => ({
    status: 'ok',
    uptimeSeconds: Math.round((Date.now() - started) / 1000),
  }));
  app.get('/ready', async (_request, reply) => {
    if (probe.shuttingDown()) return reply.code(503).send({ status: 'shutting_down' });
    return { status: 'ready' };
  });
}
