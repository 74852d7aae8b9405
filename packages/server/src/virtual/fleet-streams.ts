/**
 * @module virtual/fleet-streams
 * Virtual servers' streams across instances sharing the store (issue 20, several instances). Each
 * instance opens its own member sessions for the principals it serves, and a client's requests
 * may come to any instance, so three things cross between them on the store's pub/sub:
 *
 * - what a member sends outside any request goes to the principal's GET streams on every
 *   instance (a channel per principal, listened to only where that principal has a stream here:
 *   each instance judges which members its streams see, by the principal's grants);
 * - a member's server request that no stream here takes is offered there, already under this
 *   instance's id (member-requests.ts): an instance that wrote it to a stream says so; unsaid
 *   within `FLEET_LIMITS.takenMs`, it is refused for the client as it would be with no
 *   stream at all;
 * - a client's answer to a server request, which names the instance that asked in its id, goes
 *   to that instance's own channel; the end of a client session (DELETE) ends its streams, and
 *   the calls and resumed streams that outlive their connections, on every instance; a client's
 *   `notifications/cancelled` for a call of its session that is not running here is told to
 *   the other instances (review10 RESUME-5, RESUME-8; told again as virtual/fleet-cancels.ts
 *   says). A principal's channel is listened to while it has a GET stream, or a call or stream
 *   that outlives its connection, here (or a cancellation it keeps), and an instance says so
 *   on it each time it starts listening.
 *
 * How messages travel (sealed, named, bounded in bytes) is virtual/fleet-channels.ts's; the
 * offers of server requests virtual/fleet-offers.ts's. An answer that does not fit on its way is
 * refused to the client and answered to the member with an error, never dropped unsaid.
 *
 * The store's subscriber may drop and come back (Redis): what was published meanwhile is lost,
 * so the principal's streams here are ended then (the client opens another; a session ended
 * meanwhile gets 404).
 */
import { ProxyError, toJsonRpcError } from '../errors.ts';
import type { JsonObject, JsonRpcMessage, JsonRpcResponse, RequestId } from '../jsonrpc.ts';
import { isJsonRpcMessage, isRequest } from '../jsonrpc.ts';
import type { ClientStreams } from './client-streams.ts';
import { FleetCancels } from './fleet-cancels.ts';
import { FleetChannels, type FleetDeps } from './fleet-channels.ts';
import { FleetOffers } from './fleet-offers.ts';
import type { MemberReply, MemberRequests } from './member-requests.ts';

/** What a client session's end and cancellations do to the calls running here. */
export interface FleetCalls {
  /** The session ended (on another instance). */
  ended(principalKey: string, session: string): void;
  /**
   * The client cancelled its session's call `id` on the virtual server `name` (on another
   * instance); only a call started by `startedBy` (this instance's clock), when given.
   */
  cancelled(principalKey: string, name: string, session: string, id: RequestId, startedBy?: number): void;
}

/** The GET streams of virtual servers' clients, on this instance and (a shared store) the others. */
export class FleetStreams {
  readonly #here: ClientStreams;
  readonly #requests: MemberRequests;
  readonly #calls: FleetCalls;
  readonly #channels: FleetChannels;
  readonly #offers: FleetOffers;
  readonly #cancels: FleetCancels;

  constructor(
    here: ClientStreams,
    requests: MemberRequests,
    calls: FleetCalls,
    deps?: FleetDeps,
    now: () => number = Date.now,
  ) {
    this.#here = here;
    this.#requests = requests;
    this.#calls = calls;
    this.#channels = new FleetChannels(
      deps,
      requests.tag,
      {
        asks: (body) => this.#hearAsks(body),
        heard: (principalKey, body) => this.#hearStreams(principalKey, body),
        // What was published while the subscriber was away is lost (a session's end, a list
        // change, a server request offered): the streams end, and their clients open them again.
        missed: (principalKey) => this.#here.end(principalKey),
        listened: (principalKey, round) => this.#cancels.listened(principalKey, round),
      },
      now,
    );
    const channels = this.#channels;
    this.#offers = new FleetOffers(requests, (principalKey, body) => channels.publishFor(principalKey, body));
    const channel = {
      tell: (principalKey: string, body: JsonObject) => channels.publishFor(principalKey, body, 'client'),
      watch: (principalKey: string) => channels.watch(principalKey),
    };
    this.#cancels = new FleetCancels(channel, calls, now);
  }

  /**
   * Resolves once this instance hears answers meant for it (or its store failed; bounded: a
   * store that does not answer never holds the start).
   */
  async listening(): Promise<void> {
    await this.#channels.listening();
  }

  /**
   * Opens a stream here ({@link ClientStreams.open}); `ready` resolves once the stream also hears
   * what the principal's member sessions on other instances send (bounded: it opens anyway).
   */
  open(...stream: Parameters<ClientStreams['open']>): {
    readonly close: () => void;
    readonly ready: Promise<void>;
  } {
    const { principalKey } = stream[0];
    const close = this.#here.open(...stream);
    const release = this.watch(principalKey);
    return {
      close: () => {
        close();
        release();
      },
      ready: this.listeningTo(principalKey),
    };
  }

  /**
   * Resolves once the principal's channel, watched here ({@link watch}), is listened to (or its
   * subscription failed; bounded: it resolves after `FLEET_LIMITS.listenMs` anyway).
   */
  async listeningTo(principalKey: string): Promise<void> {
    await this.#channels.listeningTo(principalKey);
  }

  /**
   * Calls `look` once the principal's channel, watched here, is listened to ({@link listeningTo}),
   * once more when a subscription slower than that wait is made, and each time the subscriber
   * comes back: what was told on the channel before is to be looked up then (a session's end
   * mark). Until the returned function is called.
   */
  whenListening(principalKey: string, look: () => void): () => void {
    return this.#channels.whenListening(principalKey, look);
  }

  /**
   * Refcounts the principal's channel: listened to while it has a stream here, or a call or a
   * resumed stream that outlives its connection (until the returned function is called).
   */
  watch(principalKey: string): () => void {
    return this.#channels.watch(principalKey);
  }

  /**
   * Ends the streams of the client session `session` of `principalKey` here, and what the session
   * has on the other instances (its streams, its calls: {@link FleetCalls.ended}).
   */
  end(principalKey: string, session: string): void {
    this.#here.end(principalKey, session);
    this.#channels.publishFor(principalKey, { t: 'end', session }, 'client');
  }

  /**
   * Tells the other instances the client cancelled its session's call `id` (none runs here), and
   * again as an instance starts listening (virtual/fleet-cancels.ts; a DELETE needs no second
   * word: its mark in the store is looked at once listening).
   */
  cancel(principalKey: string, name: string, session: string, id: RequestId): void {
    this.#cancels.pass(principalKey, name, session, id);
  }

  /** After a reload ({@link ClientStreams.refresh}; each instance refreshes its own). */
  refresh(): void {
    this.#here.refresh();
  }

  /**
   * A member's message outside any request (what {@link ClientStreams.deliver} returns): a
   * notification goes to the streams here and is told to the other instances; a server request
   * no stream here takes is offered to them (refused later when none takes it).
   */
  deliver(principalKey: string, member: string, message: JsonRpcMessage, reply: MemberReply): boolean {
    const taken = this.#here.deliver(principalKey, member, message, reply);
    if (!this.#channels.shared) return taken;
    if (!isRequest(message)) {
      this.#channels.publishFor(principalKey, { t: 'member', member, message });
      return true;
    }
    return taken || this.#offers.offer(principalKey, member, message, reply);
  }

  /**
   * A client's answer to a server request that nothing here waits for: sent to the instance
   * whose id it carries. False when the id is this instance's or no instance's. When it cannot
   * be sent (too much of the principal's is on its way), the member is answered with an error
   * instead and the client is refused (`overloaded`, thrown): an accepted answer is never lost.
   */
  answer(principalKey: string, name: string, response: JsonRpcResponse, asker: string | undefined): boolean {
    if (asker === undefined || asker === this.#requests.tag) return false;
    const answer = { t: 'answer', name, response };
    if (this.#channels.publishTo(asker, principalKey, answer, 'client')) return true;
    const refusal = new ProxyError(
      'overloaded',
      'The answer could not be passed on to the proxy instance that asked for it (too much is on its way there): the server that asked was told so.',
      { data: { limit: 'fleetAnswerBytes' } },
    );
    if (response.id !== null) {
      const failed = { t: 'answer', name, response: toJsonRpcError(refusal, response.id) };
      this.#channels.publishTo(asker, principalKey, failed, 'client');
    }
    throw refusal;
  }

  /**
   * Stops listening (the app closes). A subscription still waiting for the store (unreachable)
   * is not waited for: it is undone once made, or fails as the store closes.
   */
  async close(): Promise<void> {
    this.#offers.clear();
    this.#cancels.clear();
    await this.#channels.close();
  }

  /** A principal's channel: its member sessions elsewhere, or the end of one of its sessions. */
  #hearStreams(principalKey: string, body: JsonObject): void {
    // The channel is named by a hash: the principal it carries must be the one listened for.
    if (body.p !== principalKey) return;
    if (body.t === 'end' && typeof body.session === 'string') {
      this.#here.end(principalKey, body.session);
      this.#calls.ended(principalKey, body.session);
    }
    if (body.t === 'cancel')
      this.#cancels.heard(principalKey, body, this.#channels.heardSince(principalKey, body.n));
    if (body.t === 'listening') this.#cancels.retell(principalKey, body.from, body.n);
    if (body.t !== 'member' || typeof body.member !== 'string' || !isJsonRpcMessage(body.message)) return;
    const name = this.#here.heard(principalKey, body.member, body.message);
    if (name !== undefined && isRequest(body.message) && typeof body.from === 'string') {
      const taken = { t: 'taken', id: body.message.id, name };
      this.#channels.publishTo(body.from, principalKey, taken, 'client');
    }
  }

  /** This instance's channel: a client's answer to its server request, or who asked it. */
  #hearAsks(body: JsonObject): void {
    const principalKey = body.p as string;
    if (typeof body.name !== 'string') return;
    if (body.t === 'answer' && isJsonRpcMessage(body.response) && !('method' in body.response))
      this.#requests.answer(principalKey, body.name, body.response);
    if (body.t === 'taken' && (typeof body.id === 'string' || typeof body.id === 'number'))
      this.#offers.took(principalKey, body.id, body.name);
  }
}
