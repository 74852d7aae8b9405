/**
 * @module auth/live-requests
 * Requests still being answered, by the proxy token that made them: an event stream (a `/mcp`
 * GET stream, a streamed tool call) can run for as long as its upstream keeps it open, so a
 * token revoked by a reload must also end the answers it is still receiving (issue 14 #3).
 */
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** The answers in progress per owner (proxy-token identity). */
export class LiveRequests {
  readonly #byOwner = new Map<string, Set<ServerResponse>>();
  readonly #ownerValid: (ownerId: string) => boolean;

  /** @param ownerValid whether an owner's token is still accepted (the verifier decides). */
  constructor(ownerValid: (ownerId: string) => boolean) {
    this.#ownerValid = ownerValid;
  }

  /** An `onRequest` hook, after authentication, that follows the request until it is answered. */
  hook() {
    return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      if (request.identity) this.#track(request.identity.principalKey, reply.raw);
    };
  }

  /** Ends, by closing its connection, every answer still in progress for a revoked owner. */
  endRevoked(): void {
    for (const [ownerId, responses] of this.#byOwner) {
      if (this.#ownerValid(ownerId)) continue;
      for (const response of responses) response.destroy();
    }
  }

  #track(ownerId: string, response: ServerResponse): void {
    let responses = this.#byOwner.get(ownerId);
    if (!responses) {
      responses = new Set();
      this.#byOwner.set(ownerId, responses);
    }
    const own = responses;
    own.add(response);
    response.once('close', () => {
      own.delete(response);
      if (own.size === 0 && this.#byOwner.get(ownerId) === own) this.#byOwner.delete(ownerId);
    });
  }
}
