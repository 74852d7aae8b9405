/**
 * @module routes/caller-signal
 * An AbortSignal that fires when the caller disconnects before its response was sent, so
 * upstream work for a caller that left is cancelled rather than left running.
 */
import type { FastifyReply } from 'fastify';

/** Signal aborted when the caller's connection closes before the reply finished. */
export function callerSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}
