/**
 * @module http/write-idle
 * A deadline on *sending* an answer (review 7, RELAY-4): Node's deadlines bound receiving a
 * request only, so a caller that stops reading would keep its answer (a gathered JSON body, an
 * event stream's queue, a relayed exchange's bytes and quota) held for as long as it keeps the
 * connection. An answer with bytes waiting to go out, none of which went out for
 * `WRITE_IDLE_TIMEOUT_MS`, has its connection closed. A caller that reads slowly keeps its
 * answer; one that waits quietly for it (nothing to send yet) is never cut.
 *
 * Progress is what the socket has finished writing, and a single write finishes only when all of
 * it has gone out: a large body handed over in one write would show none while a slow caller
 * reads it steadily (review 9). So a body over {@link SLICE_BYTES} is sent as a stream of slices
 * of that size, each written when the last has drained: each one out is progress.
 */
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { onResponseClosed } from '../response-closed.ts';

/** Where an answer's sending stood when last looked at. */
interface Progress {
  /** Bytes its connection has written out in all. */
  sent: number;
  /** When that last changed, or its connection last had nothing waiting (performance.now()). */
  since: number;
}

/** The largest single write of a body: a slow reader finishes one well within any deadline. */
export const SLICE_BYTES = 64 * 1024;

/** `body` as a stream of {@link SLICE_BYTES} slices (a Buffer's views: nothing is copied). */
function sliced(body: Buffer): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= body.length) {
        this.push(null);
        return;
      }
      const end = Math.min(body.length, offset + SLICE_BYTES);
      this.push(body.subarray(offset, end));
      offset = end;
    },
  });
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
  app.addHook('onSend', (request, reply, payload, done) => {
    // Most answers are small: a string is measured (let alone copied) only when it may be large.
    const large =
      typeof payload === 'string'
        ? payload.length * 3 > SLICE_BYTES && Buffer.byteLength(payload) > SLICE_BYTES
        : Buffer.isBuffer(payload) && payload.length > SLICE_BYTES;
    if (!large || request.method === 'HEAD') {
      done(null, payload);
      return;
    }
    const body = typeof payload === 'string' ? Buffer.from(payload) : (payload as Buffer);
    // A stream gets no Content-Length from Fastify: the body's own length still goes with it.
    reply.header('content-length', body.length);
    done(null, sliced(body));
  });
  app.addHook('onClose', (_app, done) => {
    clearInterval(sweep);
    done();
  });
}
