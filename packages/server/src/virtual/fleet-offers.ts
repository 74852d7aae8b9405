/**
 * @module virtual/fleet-offers
 * A member's server request that no stream on this instance takes is offered to the other
 * instances (virtual/fleet-streams.ts), already under this instance's id (member-requests.ts):
 * an instance that wrote it to a stream says so; unsaid within {@link FLEET_LIMITS}.takenMs, it
 * is refused for the client as it would be with no stream at all. At most
 * {@link FLEET_LIMITS}.principalOffers of one principal's are offered at once.
 */
import { protocolError } from '../errors.ts';
import type { JsonObject, JsonRpcRequest, RequestId } from '../jsonrpc.ts';
import { FLEET_LIMITS } from './fleet-channels.ts';
import { type MemberReply, type MemberRequests, waitingKey } from './member-requests.ts';

/** Server requests offered to other instances, until one says it took them. */
export class FleetOffers {
  readonly #requests: MemberRequests;
  /** Publishes an offer on the principal's channel; false when it cannot. */
  readonly #tell: (principalKey: string, body: JsonObject) => boolean;
  /** By waiting key: what refuses the offer when no instance took it in time. */
  readonly #offered = new Map<string, NodeJS.Timeout>();
  /** By principal: how many of {@link #offered} are its members'. */
  readonly #offers = new Map<string, number>();

  constructor(requests: MemberRequests, tell: (principalKey: string, body: JsonObject) => boolean) {
    this.#requests = requests;
    this.#tell = tell;
  }

  /** Offers the member's server request to the other instances; false when it was not offered. */
  offer(principalKey: string, member: string, message: JsonRpcRequest, reply: MemberReply): boolean {
    const offers = this.#offers.get(principalKey) ?? 0;
    if (offers >= FLEET_LIMITS.principalOffers) return false;
    const asked = this.#requests.askElsewhere(principalKey, message, reply);
    if (asked === undefined) return false;
    if (!this.#tell(principalKey, { t: 'member', member, message: asked })) {
      this.#requests.untaken(principalKey, asked.id);
      return false;
    }
    const key = waitingKey(principalKey, asked.id);
    const timer = setTimeout(() => {
      this.#settled(principalKey, key);
      const waiting = this.#requests.untaken(principalKey, asked.id);
      // As a held session with no stream open refuses it (MCP: a request gets a response).
      const refusal = `No connected client can answer "${message.method}" right now.`;
      waiting?.reply(protocolError(waiting.id, 'method_not_found', refusal)).catch(() => {});
    }, FLEET_LIMITS.takenMs);
    timer.unref();
    this.#offered.set(key, timer);
    this.#offers.set(principalKey, offers + 1);
    return true;
  }

  /** Another instance says it wrote the request `id` to a stream of the virtual server `name`. */
  took(principalKey: string, id: RequestId, name: string): void {
    if (!this.#requests.taken(principalKey, id, name)) return;
    this.#settled(principalKey, waitingKey(principalKey, id));
  }

  /** Forgets every offer (the app closes): none is refused later. */
  clear(): void {
    for (const timer of this.#offered.values()) clearTimeout(timer);
    this.#offered.clear();
    this.#offers.clear();
  }

  /** An offered request was taken, or its time to be taken ran out. */
  #settled(principalKey: string, key: string): void {
    const timer = this.#offered.get(key);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#offered.delete(key);
    const left = (this.#offers.get(principalKey) ?? 1) - 1;
    if (left > 0) this.#offers.set(principalKey, left);
    else this.#offers.delete(principalKey);
  }
}
