/**
 * @module limits/store-failures
 * What a counter does when the shared store does not answer it (Redis down, slow or refusing; the
 * primary of `WORKERS=N` silent): the one decision, per counter (docs/security.md, "When the
 * shared store fails").
 * - Security counters bound guesses and what a caller can make the proxy do at third parties:
 *   sign-in code tries, sign-in offers and binds, logins to the proxy, client registrations, ends
 *   of virtual sessions. They fail closed ({@link countOrRefuse}: `503 store_unavailable`), since
 *   an outage must not lift the limit an attacker is held by.
 * - Failed authentications per address: counted by this instance alone meanwhile, so a guesser
 *   stays held (per instance). Failing closed would refuse every request, static tokens too: the
 *   gate runs before each one.
 * - The other rate limits (requests, WebSocket messages, new sessions): fail open. They share
 *   capacity, and refusing all traffic would turn a store outage into an outage of the proxy.
 */
import { storeFailure } from '../store/store.ts';
import type { RateLimitName } from './rate-limiter.ts';
import type { RateStore, WindowHit } from './rate-store.ts';

/** What the proxy logs (at most once a minute) while the store does not answer its counters. */
export const COUNTER_FAILURE_WARNING =
  'shared store did not answer a counter: rate limits not enforced, failed authentications counted by this instance alone, sign-ins refused (503) until it answers';

/** `open`: the hit is let through uncounted; `local`: it is counted in this process meanwhile. */
export type OnStoreFailure = 'open' | 'local';

/** What each rate limit does while the store does not answer its counter. */
export const RATE_LIMITS_ON_STORE_FAILURE: Readonly<Record<RateLimitName, OnStoreFailure>> = {
  requestsPerToken: 'open',
  requestsPerIp: 'open',
  wsMessagesPerToken: 'open',
  sessionsPerToken: 'open',
  authFailuresPerIp: 'local',
};

/**
 * Counts one hit of a security counter; a store that cannot count it is the caller's
 * `store_unavailable` (503, retry shortly), never an uncounted hit.
 */
export async function countOrRefuse(
  store: Pick<RateStore, 'hit'>,
  key: string,
  windowMs: number,
): Promise<WindowHit> {
  try {
    return await store.hit(key, windowMs);
  } catch (error) {
    throw storeFailure(error);
  }
}
