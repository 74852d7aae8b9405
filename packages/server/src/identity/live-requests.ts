/**
 * @module identity/live-requests
 * Requests still being answered, by the proxy token that made them: an event stream (a `/mcp`
 * GET stream, a streamed tool call) can run for as long as its upstream keeps it open, so a
 * token revoked by a reload must also end the answers it is still receiving (issue 14 #3), and
 * so must a token whose servers a reload narrowed, or a server a reload removed or re-pointed.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { isRawUrlTarget } from '../dispatch/targets.ts';
import { ProxyError } from '../errors.ts';
import { closeAfterRefusal } from '../limits/connection-deadlines.ts';
import { onResponseClosed } from '../response-closed.ts';
import type { ReachTest } from '../upstream/http.ts';
import type { CredentialHoldings } from './credential-holdings.ts';
import type { Grants } from './principal.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Key of the target the request reaches (TargetResolver.key), once the route knows it. */
    targetKey: string | undefined;
    /** The URL the upstream sent the request on to last (a redirect hop), which answers it. */
    answeredFrom: string | undefined;
  }
}

/** Where a request records the URL its answer comes from: the request itself, on the routes. */
export interface AnswerSource {
  answeredFrom: string | undefined;
}

/**
 * The reach test of a request whose answer a reload judges while it runs, to `target` (its
 * `mayReach`, none when no URL grant limits the caller): for a raw URL target, each URL the
 * upstream sends the request on to and the test lets through is recorded on `source`, the last
 * being the one that answers (review15 URLPATTERN-1). A configured server's hops are not
 * recorded: where it redirects is the operator's choice, not the caller's reach (review16
 * URLPATTERN-1).
 */
export function recordingReach(
  source: AnswerSource | undefined,
  target: { readonly name?: string | undefined; readonly mayReach?: ReachTest | undefined },
): ReachTest | undefined {
  const test = target.mayReach;
  if (source === undefined || !isRawUrlTarget(target)) return test;
  return (url) => {
    if (test !== undefined && !test(url)) return false;
    source.answeredFrom = url.href;
    return true;
  };
}

/**
 * Whether an owner (principal key) may keep what it has open to a target key after a reload;
 * `targetKey` is undefined while a request has not named its target yet.
 */
export type MayKeep = (ownerId: string, targetKey: string | undefined) => boolean;

/** The answers in progress, with the request (its owner, its target) each answers. */
export class LiveRequests {
  readonly #live = new Map<ServerResponse, FastifyRequest>();
  readonly #ownerValid: (ownerId: string) => boolean;
  readonly #holdings: CredentialHoldings | undefined;
  /** One listener for every response (called with the response as `this`): no closure per request. */
  readonly #forget: (this: ServerResponse) => void;
  readonly #reaches: ((grants: Grants, targetKey: string) => boolean) | undefined;

  /**
   * @param ownerValid whether an owner's token is still accepted (the verifier decides).
   * @param holdings where a minted token's answers are registered, so its revocation or expiry
   *   ends them.
   * @param reaches whether grants still reach a target key: a token verified again after a
   *   reload (an OIDC token under a new claim mapping) keeps its answer only while they do.
   */
  constructor(
    ownerValid: (ownerId: string) => boolean,
    holdings?: CredentialHoldings,
    reaches?: (grants: Grants, targetKey: string) => boolean,
  ) {
    this.#ownerValid = ownerValid;
    this.#holdings = holdings;
    this.#reaches = reaches;
    const live = this.#live;
    this.#forget = function forget(this: ServerResponse): void {
      live.delete(this);
    };
  }

  /**
   * An `onRequest` hook, after authentication, that follows the request until it is answered.
   * Callback-style: an async hook costs a promise and a microtask on every request.
   */
  hook() {
    return (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
      const identity = request.identity;
      if (!identity) {
        done();
        return;
      }
      // Authentication may have awaited the rate limiter (a Redis round trip): a reload in between
      // has already ended this owner's answers, so one that starts now must be refused here.
      if (!this.#ownerValid(identity.principalKey)) {
        closeAfterRefusal(request, reply);
        done(new ProxyError('unauthorized', 'The proxy token was revoked by a configuration reload.'));
        return;
      }
      const response = reply.raw;
      this.#live.set(response, request);
      // Authentication may have awaited its store while the caller left: the response may be
      // closed already, and its 'close' is then past.
      onResponseClosed(response, this.#forget);
      if (identity.credentialId !== undefined) {
        const recheck = request.recheckCredential;
        const reaches = this.#reaches;
        const release = this.#holdings?.hold(identity, () => response.destroy(), {
          recheck:
            recheck &&
            (() =>
              recheck((principal) => {
                const { targetKey, answeredFrom } = request;
                return (
                  reaches === undefined ||
                  targetKey === undefined ||
                  (reaches(principal.grants, targetKey) &&
                    (answeredFrom === undefined || reaches(principal.grants, answeredFrom)))
                );
              })),
          stale: recheck?.stale(),
        });
        if (release) onResponseClosed(response, release);
      }
      done();
    };
  }

  /**
   * Ends, by closing its connection, every answer in progress that `mayKeep` refuses: for its
   * target, or for the URL a redirect took it to ({@link recordingReach}).
   */
  endUnreachable(mayKeep: MayKeep): void {
    for (const [response, request] of this.#live) {
      const ownerId = request.identity?.principalKey;
      if (ownerId === undefined) continue;
      const { targetKey, answeredFrom } = request;
      if (!mayKeep(ownerId, targetKey) || (answeredFrom !== undefined && !mayKeep(ownerId, answeredFrom)))
        response.destroy();
    }
  }
}
