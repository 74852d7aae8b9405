/**
 * @module http/write-idle
 * A deadline on *sending* an answer (review 7, RELAY-4): Node's deadlines bound receiving a
 * request only, so a caller that stops reading would keep its answer (a gathered JSON body, an
 * event stream's queue, a relayed exchange's bytes and quota) held for as long as it keeps the
 * connection. An answer with bytes waiting to go out, none of which went out for
 * `WRITE_IDLE_TIMEOUT_MS`, has its connection closed. A caller that reads slowly keeps its
 * answer; one that waits quietly for it (nothing to send yet) is never cut.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { onResponseClosed } from '../response-closed.ts';

/** Where an answer's sending stood when last looked at. */
interface Progress {
  /** Bytes its connection has written out in all. */
  sent: number;
  /** When that last changed, or its connection last had nothing waiting (performance.now()). */
  since: number;
}

/** Looks at the answers under way at most this often (a quarter of the deadline, within bounds). */
function sweepInterval(timeoutMs: number): number {
  return Math.max(25, Math.min(5_000, Math.floor(timeoutMs / 4)));
}

/** Closes the connections of answers that made no sending progress for `timeoutMs`. */
export function registerWriteIdleDeadline(app: FastifyInstance, timeoutMs: number): void {
  const answers = new Map<ServerResponse, Progress>();
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const [response, progress] of answers) {
      const socket = response.socket;
      if (socket === null || socket.destroyed) continue;
      const waiting = socket.writableLength;
      // What the socket took minus what still waits: the bytes that have gone out.
      const sent = socket.bytesWritten - waiting;
      if (waiting === 0 || sent !== progress.sent) {
        progress.sent = sent;
        progress.since = now;
      } else if (now - progress.since >= timeoutMs) socket.destroy();
    }
  }, sweepInterval(timeoutMs));
  sweep.unref();
  app.addHook('onRequest', (request, reply, done) => {
    // An upgraded socket (/ws) is no HTTP answer: its own writer bounds what it queues.
    if (request.headers.upgrade === undefined) {
      const response = reply.raw;
      answers.set(response, { sent: -1, since: performance.now() });
      onResponseClosed(response, () => answers.delete(response));
    }
    done();
  });
  app.addHook('onClose', (_app, done) => {
    clearInterval(sweep);
    done();
  });
}
