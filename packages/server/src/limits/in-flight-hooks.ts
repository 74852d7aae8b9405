/**
 * @module limits/in-flight-hooks
 * The Fastify hooks that apply {@link InFlightLimits} and the batch cap to the authenticated
 * HTTP surfaces (`POST /proxy`, `/mcp`, `/servers/{name}/mcp`).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.ts';
import type { InFlightLimits } from './in-flight.ts';

/** Hooks to add to an authenticated scope, after the token hook. */
export interface InFlightHooks {
  /** Takes an in-flight slot for each POST before its body is read; gives it back when the response closes. */
  readonly onRequest: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  /** Refuses a JSON-RPC batch with more than the allowed number of messages, and sheds on a full heap. */
  readonly preHandler: (request: FastifyRequest) => Promise<void>;
}

/** Builds the hooks for `limits`, refusing batches longer than `maxBatchMessages`. */
export function inFlightHooks(limits: InFlightLimits, maxBatchMessages: number): InFlightHooks {
  return {
    async onRequest(request, reply) {
      // Only POSTs carry a body worth holding. A GET event stream may stay open for hours and
      // holds next to nothing; it is bounded by the session caps instead.
      if (request.method !== 'POST' || !request.identity) return;
      // Refused here, the body is never parsed: refusing costs next to nothing.
      const release = limits.acquire(request.identity.principalKey);
      // 'close' follows both a finished response and a connection lost midway.
      reply.raw.once('close', release);
    },
    async preHandler(request) {
      // A batch's parsed size grows with its element count (`[{},{},…]` costs ~20 bytes of heap
      // per byte of body) and each element may become an upstream exchange: the count is known
      // without walking the body, so it is what is capped.
      const body = request.body;
      if (Array.isArray(body) && body.length > maxBatchMessages) {
        throw new ProxyError('batch_too_large', undefined, { data: { limit: maxBatchMessages } });
      }
      // Requests admitted together parse their bodies later, one after the other: look at the
      // heap again now that this one is parsed, before it is held for the upstream's answer.
      if (request.method === 'POST') limits.assertHeapRoom();
    },
  };
}
