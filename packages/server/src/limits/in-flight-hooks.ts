/**
 * @module limits/in-flight-hooks
 * The Fastify hooks that apply {@link InFlightLimits} and the batch cap to the authenticated
 * HTTP surfaces (`POST /proxy`, `/mcp`, `/servers/{name}/mcp`).
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { ProxyError } from '../errors.ts';
import { onResponseClosed } from '../response-closed.ts';
import { closeAfterRefusal } from './connection-deadlines.ts';
import type { InFlightLimits } from './in-flight.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Work that outlives the response and holds the request's in-flight slot until it settles. */
    inFlightHeld: Promise<unknown> | undefined;
  }
}

/**
 * Keeps `request`'s in-flight slot (if it took one) until `work` settles, past the response's
 * close: a call that goes on after its caller left (a resumable answer) still counts against
 * IN_FLIGHT_PER_TOKEN and IN_FLIGHT_TOTAL (review10 RESUME-3).
 */
export function holdInFlightSlot(request: FastifyRequest, work: Promise<unknown>): void {
  request.inFlightHeld = work;
}

/** Hooks to add to an authenticated scope, after the token hook. */
export interface InFlightHooks {
  /**
   * Takes an in-flight slot for each POST before its body is read; gives it back when the response
   * closes, or once the work {@link holdInFlightSlot} names settles, if later. Callback-style hooks, not async ones: Fastify then goes on at once instead of a
   * promise and a microtask later, on every request.
   */
  readonly onRequest: (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;
  /**
   * For the JSON body parser: sheds on a full heap before a body is parsed. Requests admitted
   * together (before any body had arrived) would otherwise all parse theirs: 40 bodies of
   * 256 KiB of `[{},…]` parse into ~200 MB.
   */
  readonly beforeParse: (request: FastifyRequest) => void;
  /** Refuses a JSON-RPC batch with more than the allowed number of messages, and sheds on a full heap. */
  readonly preHandler: (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;
}

/** Builds the hooks for `limits`, refusing batches longer than `maxBatchMessages`. */
export function inFlightHooks(limits: InFlightLimits, maxBatchMessages: number): InFlightHooks {
  return {
    onRequest(request, reply, done) {
      // Only POSTs carry a body worth holding. A GET event stream may stay open for hours and
      // holds next to nothing; it is bounded by the session caps instead.
      if (request.method !== 'POST' || !request.identity) {
        done();
        return;
      }
      // Refused here, the body is never parsed: refusing costs next to nothing.
      let release: () => void;
      try {
        release = limits.acquire(request.identity.principalKey);
      } catch (error) {
        // The caller is still sending its body: answered now, the connection closes under that
        // upload and many clients report the reset instead of reading the 503. The rest of the
        // body is read and dropped (not kept, not parsed; the request deadline bounds it) first.
        void discardBody(request.raw).then(() => {
          // If the body is still arriving after that, the connection closes once the 503 is out.
          closeAfterRefusal(request, reply);
          done(error as Error);
        });
        return;
      }
      // 'close' follows both a finished response and a connection lost midway, once; a caller
      // that left while authentication awaited its store has closed already.
      onResponseClosed(reply.raw, () => {
        const held = request.inFlightHeld;
        if (held === undefined) release();
        else void held.then(release, release);
      });
      done();
    },
    beforeParse(request) {
      // Only requests that took a slot in onRequest (the surfaces these hooks guard).
      if (request.method === 'POST' && request.identity) limits.assertHeapRoom(true);
    },
    preHandler(request, _reply, done) {
      // A batch's parsed size grows with its element count (`[{},{},…]` costs ~20 bytes of heap
      // per byte of body) and each element may become an upstream exchange: the count is known
      // without walking the body, so it is what is capped.
      const body = request.body;
      if (Array.isArray(body) && body.length > maxBatchMessages) {
        done(new ProxyError('batch_too_large', undefined, { data: { limit: maxBatchMessages } }));
        return;
      }
      // Requests admitted together parse their bodies later, one after the other: look at the
      // heap again now that this one is parsed, before it is held for the upstream's answer.
      try {
        if (request.method === 'POST') limits.assertHeapRoom(true);
      } catch (error) {
        done(error as Error);
        return;
      }
      done();
    },
  };
}

/** How long a refused request's remaining body is read and dropped before the refusal goes out anyway. */
const DISCARD_BODY_MS = 5_000;

/** Reads and drops what is left of a request body, within {@link DISCARD_BODY_MS}. */
function discardBody(raw: IncomingMessage): Promise<void> {
  if (raw.complete || raw.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, DISCARD_BODY_MS);
    function done(): void {
      clearTimeout(timer);
      raw.off('end', done);
      raw.off('close', done);
      resolve();
    }
    raw.once('end', done);
    raw.once('close', done);
    raw.resume();
  });
}
