/**
 * @module response-closed
 * Runs cleanup when a response closes, including one that closed already: a hook that ran after
 * an await (authentication waiting on a remote store) may find its caller gone, and a 'close'
 * event that is already past never fires again, so a listener added then would leak what it
 * was to give back (an in-flight slot, a live-request entry, a credential holding).
 *
 * All of a response's cleanups share one 'close' listener (issue 16). With one each, a streamed
 * answer carried eleven (ours, and Fastify's and `end-of-stream`'s for the stream and for the
 * awaited reply): over Node's limit of ten, so every such answer built a
 * MaxListenersExceededWarning, with its stack, and wrote it to stderr.
 */
import type { ServerResponse } from 'node:http';

/** The cleanups waiting for a response's 'close', in the order they were added. */
const CLEANUPS = Symbol('response cleanups');

type Tracked = ServerResponse & { [CLEANUPS]?: Array<(this: ServerResponse) => void> | undefined };

/**
 * Calls `fn` (with the response as `this`) once the response has closed: at once when it already
 * has, else when its 'close' event fires, after the cleanups added before it.
 */
export function onResponseClosed(response: ServerResponse, fn: (this: ServerResponse) => void): void {
  if (response.closed || response.destroyed) {
    fn.call(response);
    return;
  }
  const tracked = response as Tracked;
  const cleanups = tracked[CLEANUPS];
  if (cleanups !== undefined) {
    cleanups.push(fn);
    return;
  }
  tracked[CLEANUPS] = [fn];
  // `on`, not `once`: a response closes once, and `on` spares the wrapper `once` builds.
  response.on('close', runCleanups);
}

function runCleanups(this: ServerResponse): void {
  const tracked = this as Tracked;
  const cleanups = tracked[CLEANUPS] ?? [];
  tracked[CLEANUPS] = undefined;
  for (const fn of cleanups) fn.call(this);
}
