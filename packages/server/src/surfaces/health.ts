/**
 * @module surfaces/health
 * `GET /health` (liveness: the process answers) and `GET /ready` (readiness: accepting work,
 * 503 once shutdown has begun so load balancers drain this instance first, and while the
 * instance does not know the session-sealing key it must share with the others).
 */
import type { FastifyInstance } from 'fastify';

/** What readiness depends on. */
export interface ReadinessProbe {
  /** True once shutdown has begun. */
  readonly shuttingDown: () => boolean;
  /** True while something the instance must share with the others is not known yet (issue 19). */
  readonly starting?: () => boolean;
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
    if (probe.starting?.() === true) return reply.code(503).send({ status: 'starting' });
    return { status: 'ready' };
  });
}
