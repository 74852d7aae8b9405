/**
 * @module dispatch/answer-rules
 * What an upstream's answer to a first message means for the route, as pure rules: shared by
 * the dispatch plan (dispatch/plan.ts, for stateless exchanges) and by the connections the
 * proxy holds (the transport probe of dispatch/auto-http.ts, the era switch the connector
 * builds), so each rule exists once.
 */

import { isModernOnlyRefusal } from '../eras/classify.ts';
import { ProxyError } from '../errors.ts';
import { isModernProtocolError } from '../upstream/request-metadata.ts';
import type { EraDetector, EraProbeTarget } from './era-detector.ts';

/** The first answer of a pass-through, as far as the rules look at it. */
export interface Answer {
  /** The upstream's HTTP status (200 for a JSON-RPC answer the exchange returned). */
  readonly status: number;
  /** Its body, parsed, when it was read (a relayed stream is not). */
  readonly body?: unknown;
}

/** The statuses after which the spec's back-compat section says to try HTTP+SSE. */
export const SSE_STATUSES: ReadonlySet<number> = new Set([400, 404, 405]);

/**
 * MCP back-compat: a 4xx (400, 404, 405) to a first POST may mean the server speaks the
 * 2024-11-05 HTTP+SSE transport; a modern server's protocol error (an unsupported version with
 * the versions it supports, say) does not: it is the answer the client needs to negotiate.
 */
export function invitesSse(answer: Answer): boolean {
  return SSE_STATUSES.has(answer.status) && !isModernProtocolError(answer.body);
}

/**
 * The first answer of a failed exchange, when the failure was the upstream's refusal: its
 * status (the body is not kept). Undefined for any other failure (those never fall back).
 */
export function answerOfFailure(error: unknown): Answer | undefined {
  if (!ProxyError.is(error) || error.code !== 'upstream_rejected') return undefined;
  return { status: Number(error.data.upstreamStatus) };
}

/**
 * A session client's first message refused the way a modern-only server refuses it (an
 * UnsupportedProtocolVersionError listing only modern versions): the proxy then holds a
 * session-era session for the caller and bridges it.
 */
export function refusedAsModernOnly(answer: Answer): boolean {
  return isModernOnlyRefusal(answer.body);
}

/** What a session client's answer teaches when it is a modern-only server's refusal. */
export function learnModernOnly(eras: EraDetector, target: EraProbeTarget): void {
  eras.learn(target, 'session', false);
  eras.learn(target, 'modern', true);
}
