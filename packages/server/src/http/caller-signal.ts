/**
 * @module http/caller-signal
 * An AbortSignal that fires when the caller disconnects before its response was sent, so
 * upstream work for a caller that left is cancelled rather than left running.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { onResponseClosed } from '../response-closed.ts';

/**
 * Signal aborted when the caller's connection closes before the reply finished. Already
 * aborted when that happened before the call: a handler asks for it after awaiting other work
 * (resolving the target, a batch's notifications going upstream), and a 'close' event that is
 * already past never fires again (issue 15).
 */
export function callerSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  onResponseClosed(reply.raw, function (this: ServerResponse) {
    if (!this.writableFinished) controller.abort();
  });
  return controller.signal;
}
