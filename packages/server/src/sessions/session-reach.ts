/**
 * @module sessions/session-reach
 * What a held session to a raw URL target may reach, and has reached (review14 URLPATTERN-1/2):
 * the URL grant it was opened under (a digest: a caller with another grant does not use it),
 * and every URL its upstream sent it on to beyond the first (redirect hops, an SSE endpoint), so
 * that a reload judges them as it judges the session's target.
 */
import type { ReachTest } from '../upstream/http.ts';

/**
 * How many distinct URLs beyond its target a session records: past them, a new one is refused
 * when a URL grant limits the session's caller (a reload could not judge an unbounded list), and
 * otherwise followed unrecorded: such a session has no grant digest, so a reload that gives its
 * owner a URL grant ends it (identity/reload-reach.ts), whatever it reached.
 */
export const MAX_REACHED_URLS = 8;

/** A session's reach: its grant's digest, and the URLs reached so far. */
export class SessionReach {
  /** Digest of the URL grant the session was opened under; absent when no URL grant judged it. */
  readonly grant: string | undefined;
  readonly #urls = new Set<string>();

  constructor(grant: string | undefined) {
    this.grant = grant;
  }

  /** The URLs reached beyond the target, as `href`s. */
  get urls(): ReadonlySet<string> {
    return this.#urls;
  }

  /** The reach test of the session's latest caller; absent when no URL grant limits it. */
  #test: ReachTest | undefined;

  /**
   * The session's reach test: its caller's (`test`, the opener's until {@link SessionReach.judgeBy}),
   * each URL it lets through remembered, up to {@link MAX_REACHED_URLS}; past them a new URL is
   * refused under a URL grant, and without one followed unrecorded (design note of review 15).
   */
  judging(test: ReachTest | undefined): ReachTest {
    this.#test = test;
    return (url) => {
      const now = this.#test;
      if (now !== undefined && !now(url)) return false;
      if (this.#urls.has(url.href)) return true;
      if (this.#urls.size >= MAX_REACHED_URLS) return now === undefined;
      this.#urls.add(url.href);
      return true;
    };
  }

  /**
   * Judges the session's further hops by `test`: the reach test of a request it now serves, made
   * for that request (after any reload) under the same URL grant (dispatch/held-sessions.ts
   * `serveCaller`). An opener's test made before a reload may not know its owner's grants any
   * more (an OIDC token's come with each token: review16 URLPATTERN-2); the caller's of now does.
   */
  judgeBy(test: ReachTest | undefined): void {
    this.#test = test;
  }
}
