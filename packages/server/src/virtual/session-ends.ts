/**
 * @module virtual/session-ends
 * What ends with a 2025-era client session of a virtual server (DELETE) on this instance: the
 * calls that outlive their connection (resumable answers) and the streams resumed from them
 * (review10 RESUME-5). Each holds a signal that is aborted when its session ends, here or on
 * another instance (heard through virtual/fleet-streams.ts); nothing is kept for a session that
 * nothing holds.
 */

import { setTimeout as delay } from 'node:timers/promises';

/** How a failed look-up of a session's end mark is tried again: at most this often, doubling apart. */
export const END_LOOKUP = { retries: 3, firstRetryMs: 500 } as const;

/** What a look at a session's end mark said first: ended, live, or that the store could not say. */
export type EndLook = 'ended' | 'live' | 'unknown';

/**
 * Asks `ended` whether the session was ended (its mark in the store) while `live()` holds, and
 * calls `end` when it was. A store that cannot say is asked again ({@link END_LOOKUP}), not
 * taken for "not ended". `first` hears the first answer: 'unknown' when the first ask failed
 * (the retries go on), 'live' when nothing holds the session any more. Resolves once done.
 */
export async function lookUpEnd(
  ended: () => Promise<boolean>,
  live: () => boolean,
  end: () => void,
  first: (outcome: EndLook) => void,
): Promise<void> {
  for (let attempt = 0; ; attempt += 1) {
    if (!live()) return first('live');
    try {
      const was = await ended();
      if (was) end();
      return first(was ? 'ended' : 'live');
    } catch {
      first('unknown');
      if (attempt >= END_LOOKUP.retries) return;
      await delay(END_LOOKUP.firstRetryMs * 2 ** attempt, undefined, { ref: false });
    }
  }
}

/**
 * What looks a held session's end up each time it is asked to ({@link lookUpEnd}), one look
 * (with its retries) at a time: asked meanwhile, it looks once more when that one is done.
 */
export function endLooker(
  ended: () => Promise<boolean>,
  live: () => boolean,
  end: () => void,
  first: (outcome: EndLook) => void,
): () => void {
  let looking = false;
  let again = false;
  const look = (): void => {
    if (looking) {
      again = true;
      return;
    }
    looking = true;
    void lookUpEnd(ended, live, end, first).finally(() => {
      looking = false;
      if (!again) return;
      again = false;
      look();
    });
  };
  return look;
}

/** A hold on a session's end: its signal, and what gives the hold back. */
export interface SessionHold {
  /** Aborted when the session ends. */
  readonly signal: AbortSignal;
  /** Gives the hold back (once; later calls do nothing). */
  release(): void;
}

/** One held session: aborted at its end, kept while anything holds it. */
interface Held {
  readonly controller: AbortController;
  holders: number;
}

/** The sessions held on this instance, by principal and session. */
export class SessionEnds {
  readonly #held = new Map<string, Held>();

  /** Holds the end of `principalKey`'s session `session`. */
  hold(principalKey: string, session: string): SessionHold {
    const key = heldKey(principalKey, session);
    let entry = this.#held.get(key);
    if (entry === undefined) {
      entry = { controller: new AbortController(), holders: 0 };
      this.#held.set(key, entry);
    }
    const held = entry;
    held.holders += 1;
    let released = false;
    return {
      signal: held.controller.signal,
      release: () => {
        if (released) return;
        released = true;
        held.holders -= 1;
        if (held.holders === 0 && this.#held.get(key) === held) this.#held.delete(key);
      },
    };
  }

  /** The session ended: what holds it here is aborted. */
  end(principalKey: string, session: string): void {
    const key = heldKey(principalKey, session);
    const held = this.#held.get(key);
    if (held === undefined) return;
    this.#held.delete(key);
    held.controller.abort();
  }
}

function heldKey(principalKey: string, session: string): string {
  return `${principalKey}\n${session}`;
}
