/**
 * @module identity/audit-hooks
 * Fastify hooks that give each authenticated HTTP request an audit recorder
 * (`request.audit`) and write its lines when the exchange ends. Registered only when the audit
 * trail is on, so with `AUDIT_LOG=off` requests carry `undefined` and nothing else.
 */
import type { FastifyInstance } from 'fastify';
import { onResponseClosed } from '../response-closed.ts';
import type { AuditSurface, AuditTrail, RequestAudit } from './audit-trail.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's audit recorder, when the audit trail is on. */
    audit: RequestAudit | undefined;
  }
}

/** Adds the audit hooks to an authenticated scope (after the token hook). */
export function registerAuditHooks(scope: FastifyInstance, trail: AuditTrail, surface: AuditSurface): void {
  scope.addHook('onRequest', async (request, reply) => {
    if (!request.identity) return;
    const audit = trail.begin(request.id, request.identity, surface);
    request.audit = audit;
    // A caller that leaves before its answer ends gets no 'finish' (so no onResponse): its
    // requests are written when the connection closes (or at once, when it left while
    // authentication awaited its store).
    onResponseClosed(reply.raw, () =>
      audit.finish(reply.statusCode, reply.raw.writableFinished ? undefined : 'client_closed'),
    );
  });
  scope.addHook('onError', async (request, _reply, error) => {
    request.audit?.fail(error);
  });
  scope.addHook('onResponse', async (request, reply) => {
    request.audit?.finish(reply.statusCode);
  });
}
