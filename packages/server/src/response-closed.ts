/**
 * @module response-closed
 * Runs cleanup when a response closes, including one that closed already: a hook that ran after
 * an await (authentication waiting on a remote store) may find its caller gone, and a 'close'
 * event that is already past never fires again, so a listener added then would leak what it
 * was to give back (an in-flight slot, a live-request entry, a credential holding).
 */
import type { ServerResponse } from 'node:http';

/**
 * Calls `fn` (with the response as `this`) once the response has closed: at once when it already
 * has, else on its 'close' event. `on`, not `once`: a response closes once, and `on` spares the
 * wrapper `once` builds per request.
 */
export function onResponseClosed(response: ServerResponse, fn: (this: ServerResponse) => void): void {
  if (response.closed || response.destroyed) fn.call(response);
  else response.on('close', fn);
}
