/**
 * @module virtual/virtual-servers
 * A virtual server (issue 20, docs/virtual-servers.md): the proxy answers as one MCP server whose
 * tools, prompts and resources are its members', names listed as `<member><separator><name>`
 * and URIs as `mcpp://<member>/<uri>` (member-names.ts). This file takes each message: who may
 * reach the virtual server, cancellations, streams and what holds a client session's end; which
 * method goes where is virtual-routes.ts's, and one request's view of the members
 * (member-view.ts) answers it, through the member sessions the proxy holds as their MCP client
 * (member-sessions.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { VirtualServerSettings } from '../config/virtual-servers.ts';
import type { UpstreamTarget } from '../dispatch/connector.ts';
import { clientEraOf } from '../eras/classify.ts';
import { ProxyError } from '../errors.ts';
import type { JsonRpcNotification, JsonRpcRequest, JsonRpcResponse, RequestId } from '../jsonrpc.ts';
import { cancelledRequestId } from '../jsonrpc.ts';
import { permitsTarget, type TargetGrants } from '../policy/grants.ts';
import type { HeldSession } from '../sessions/held-session.ts';
import { ClientStreams } from './client-streams.ts';
import type { FleetDeps } from './fleet-channels.ts';
import { FleetStreams } from './fleet-streams.ts';
import { SlowLists } from './list-gather.ts';
import { membersSeen } from './member-grants.ts';
import { memberMapping } from './member-names.ts';
import type { MemberCredentials } from './member-reach.ts';
import {
  askerOf,
  type MemberRelay,
  MemberRequests,
  scopeOf,
  type VirtualChannel,
} from './member-requests.ts';
import type { MemberSessions } from './member-sessions.ts';
import { MemberView } from './member-view.ts';
import { NameClaims } from './name-claims.ts';
import { callKey, RunningCalls } from './running-calls.ts';
import { type EndLook, endLooker, SessionEnds, type SessionHold } from './session-ends.ts';
import type { SearchBudget } from './tool-search.ts';
import { virtualNameOf } from './virtual-key.ts';
import { answerRouted } from './virtual-routes.ts';

/** A client's notification that its roots changed. */
const ROOTS_CHANGED = 'notifications/roots/list_changed';

/** Who is asking: the principal's key and its grants (identity/principal.ts, structurally). */
export interface VirtualCaller {
  readonly principalKey: string;
  readonly grants: TargetGrants & { readonly rateClass?: string | undefined };
}

/**
 * The caller of something held open on a virtual server (a `/ws` socket's session, a GET stream,
 * a 2026-07-28 client's pooled session): its grants follow reloads (identity/followed-principal.ts).
 */
export interface OpenCaller extends VirtualCaller {
  /** Itself with its grants of now (its credential verified again after a reload); rejects when refused. */
  current(): Promise<VirtualCaller>;
  /**
   * What `seen` gives it at once, while {@link current} may still be verifying it again: never
   * more than its grants of now allow (fail closed), none when they cannot be known without I/O.
   */
  seenNow<T>(seen: (grants: TargetGrants) => readonly T[]): readonly T[];
}

/** One message for a virtual server. */
export interface VirtualRequest {
  readonly caller: VirtualCaller;
  readonly message: JsonRpcRequest | JsonRpcNotification;
  /**
   * The client's session (virtual/client-sessions.ts, a 2025-era client of /servers/{name}/mcp):
   * its requests' ids are its own, so a cancellation names one by session and id.
   */
  readonly session?: string | undefined;
  /** The caller's `MCP-Protocol-Version` header, if any (it marks a 2026-07-28 caller). */
  readonly protocolVersion?: string | undefined;
  /** Aborted when the caller goes away. */
  readonly signal?: AbortSignal | undefined;
  /** Where what members send for the request goes (an answer stream); none: it is dropped. */
  readonly channel?: VirtualChannel | undefined;
  /** The searches the request this message came in (a batch) may still run; none: one. */
  readonly searches?: SearchBudget | undefined;
}

/** A request on its way to the members: what they send for it goes to `relay`. */
export interface RoutedRequest extends VirtualRequest {
  readonly relay?: MemberRelay | undefined;
}

/** What virtual servers need. */
export interface VirtualServersDeps {
  /** The configured virtual servers, as of now (a reload replaces them). */
  readonly settings: () => Readonly<Record<string, VirtualServerSettings>>;
  /** A member vetted for a principal with these grants (dispatch/targets.ts `TargetResolver.resolve`). */
  readonly resolve: (member: string, grants: TargetGrants) => Promise<UpstreamTarget>;
  readonly members: MemberSessions;
  readonly logger: Logger;
  /** The upstream OAuth broker's part, when it runs. */
  readonly credentials?: MemberCredentials | undefined;
  /** Counts a member dropped from an answer, by the error's code (metrics). */
  readonly onMemberDown?: (code: string) => void;
  /**
   * Keys the list cursors' tags: derived from SESSION_SECRET when set, so every instance
   * accepts the others' cursors; else random per process (a restart makes a client list again).
   */
  readonly cursorSecret?: string | undefined;
  /** The other instances sharing the store, when there are any (virtual/fleet-streams.ts). */
  readonly fleet?: FleetDeps | undefined;
  /** Clock in milliseconds (tests inject one); default `Date.now`. */
  readonly now?: (() => number) | undefined;
}

/** Serves every configured virtual server. */
export class VirtualServers {
  readonly #deps: VirtualServersDeps;
  /** Requests being answered here, so that a client's cancellation reaches them. */
  readonly #running: RunningCalls;
  /** Keys the list cursors' tags (never the secret itself: a key of its own is derived). */
  readonly #cursorSecret: Uint8Array;
  /** Members' server requests waiting for their clients' answers. */
  readonly #requests: MemberRequests;
  /** The clients' GET streams, here and on the other instances. */
  readonly #streams: FleetStreams;
  /** What ends with a client session here: calls and streams that outlive their connections. */
  readonly #sessionEnds = new SessionEnds();
  /** Which member an unprefixed name belongs to (`prefix: none`). */
  readonly #claims: NameClaims;
  /** Members that gave no list page in time lately, per principal. */
  readonly #slowLists: SlowLists;

  constructor(deps: VirtualServersDeps) {
    this.#deps = deps;
    this.#slowLists = new SlowLists(deps.now);
    const now = deps.now ?? Date.now;
    this.#running = new RunningCalls(now);
    this.#requests = new MemberRequests(deps.members.timeoutMs);
    // A virtual server a reload took away maps as one of several members would (its streams
    // take no member any more: refreshStreams).
    const here = new ClientStreams(
      this.#requests,
      (name) => memberMapping(deps.settings()[name] ?? { servers: [] }),
      (name, grants) => membersSeen(name, deps.settings()[name], grants, (server) => this.has(server)),
    );
    const calls = {
      ended: (principalKey: string, session: string) => this.#sessionEnds.end(principalKey, session),
      cancelled: (principalKey: string, name: string, session: string, id: RequestId, startedBy?: number) =>
        this.#running.cancel(callKey({ caller: { principalKey }, session }, name, id), startedBy),
    };
    this.#streams = new FleetStreams(here, this.#requests, calls, deps.fleet, now);
    this.#claims = new NameClaims(deps.logger);
    deps.members.listen((owner, member, message, reply) => {
      if ('method' in message && message.method.endsWith('/list_changed')) this.#claims.forget(owner);
      return this.#streams.deliver(owner, member, message, reply);
    });
    this.#cursorSecret =
      deps.cursorSecret === undefined
        ? randomBytes(32)
        : createHash('sha256').update(`mcp-proxy virtual list cursor\n${deps.cursorSecret}`).digest();
  }

  /** Whether `name` is a virtual server (else it is a server, or unknown). */
  has(name: string): boolean {
    return Object.hasOwn(this.#deps.settings(), name);
  }

  /**
   * After a reload, whether a principal with these grants may keep what it opened to a virtual
   * server (`targetKey` from virtual-key.ts) running; false once that virtual server is gone,
   * undefined when the key names none (what was opened to a configured server or a URL: the
   * target resolver judges it). Its members are judged per request, as they are used.
   */
  stillReaches(targetKey: string, grants: TargetGrants | undefined): boolean | undefined {
    const name = virtualNameOf(targetKey);
    if (name === undefined) return undefined;
    return this.has(name) && permitsTarget(grants, { server: name });
  }

  /**
   * Whether what is open under `targetKey` takes its caller's grants of now at each request, so
   * that a changed tool grant need not end it: what was opened to a virtual server (a socket, a
   * session), and a member session (`session`: it applies each request's tool grant).
   */
  follows(targetKey: string | undefined, session?: HeldSession): boolean {
    if (session !== undefined && this.#deps.members.holds(session)) return true;
    return targetKey !== undefined && virtualNameOf(targetKey) !== undefined;
  }

  /**
   * After a reload, whether a principal with these grants reaches the configured server of
   * `targetKey` through a virtual server (a member session it holds may stay, when the member is
   * unchanged: the target resolver judges that part).
   */
  reachesMember(targetKey: string, grants: TargetGrants | undefined): boolean {
    const name = /^(?:server|stdio):(.*)$/s.exec(targetKey)?.[1];
    if (name === undefined) return false;
    return Object.entries(this.#deps.settings()).some(([virtualName, settings]) =>
      membersSeen(virtualName, settings, grants, (server) => this.has(server)).includes(name),
    );
  }

  /**
   * Refuses a principal whose grants do not reach the virtual server `name` as a named server
   * is refused: it looks unknown (the audit trail reads the refusal from the cause).
   */
  checkReach(name: string, grants: TargetGrants | undefined): void {
    if (this.has(name) && permitsTarget(grants, { server: name })) return;
    throw new ProxyError('unknown_server', undefined, {
      data: { server: name },
      ...(this.has(name) ? { cause: new ProxyError('forbidden_server') } : {}),
    });
  }

  /**
   * Answers one message sent to the virtual server `name` (which {@link has} names); undefined
   * for a notification. A principal its grants keep out gets `unknown_server` (thrown). Whatever
   * a member does, the answer is a JSON-RPC response: a member's failure on a call is that
   * call's error, never a thrown one.
   */
  async handle(name: string, request: VirtualRequest): Promise<JsonRpcResponse | undefined> {
    this.checkReach(name, request.caller.grants);
    const settings = this.#deps.settings()[name];
    const { message, channel } = request;
    const scope = scopeOf(request.caller.principalKey, name);
    if (settings === undefined) return undefined;
    if (!('id' in message)) {
      const cancelled = cancelledRequestId(message);
      // A call of the session may run on another instance (one that outlives its connection: a
      // resumable answer); the session's calls there hear the cancellation (review10 RESUME-8).
      if (
        cancelled !== undefined &&
        !this.#running.cancel(callKey(request, name, cancelled)) &&
        request.session
      )
        this.#streams.cancel(request.caller.principalKey, name, request.session, cancelled);
      // The client's roots changed: the members that asked for them are told (they ask again).
      if (message.method === ROOTS_CHANGED) {
        await this.#view(name, settings, request).notify(message, (visible) =>
          this.#requests.askedRoots(scope, visible),
        );
      }
      return undefined;
    }
    // The member's exchange ends when the caller leaves or cancels: the member is told (MCP's
    // cancellation, sent by the held session).
    const { controller, done } = this.#running.start(callKey(request, name, message.id));
    const signal = request.signal ? AbortSignal.any([request.signal, controller.signal]) : controller.signal;
    const era = clientEraOf(message, request.protocolVersion);
    const relay =
      channel &&
      this.#requests.relay(request.caller.principalKey, name, channel, era, memberMapping(settings));
    try {
      const routed = { ...request, signal, relay };
      const { protocolVersion } = request;
      const view = () => this.#view(name, settings, routed);
      return await answerRouted({ name, settings, protocolVersion, view }, message);
    } finally {
      done();
    }
  }

  /**
   * A client's answer to a member's server request (sampling, elicitation, roots), which it got
   * on a stream: sent to the member that asked, here or on the instance its id names. Ignored
   * when nothing waits for it from this principal; `overloaded` (thrown) when it cannot be sent
   * on to that instance now (the member is answered with an error then).
   */
  answer(name: string, caller: VirtualCaller, response: JsonRpcResponse): void {
    this.checkReach(name, caller.grants);
    if (!this.#requests.answer(caller.principalKey, name, response))
      this.#streams.answer(caller.principalKey, name, response, askerOf(response.id));
  }

  /**
   * Opens a client's GET stream on the virtual server `name`: what the members it sees send
   * outside its requests (list changes, log messages, resource updates, server requests) goes to
   * `channel`, from this instance's member sessions and (once `ready`) the other instances'; the
   * members judged again after each reload by the caller's grants of then.
   * Returns what closes it, and when it hears the other instances.
   */
  openStream(
    name: string,
    caller: OpenCaller,
    channel: VirtualChannel,
    session?: string,
  ): { readonly close: () => void; readonly ready: Promise<void> } {
    this.checkReach(name, caller.grants);
    return this.#streams.open(caller, name, channel, session);
  }

  /**
   * Ends what a client session that was ended has, on every instance: its GET streams, and what
   * holds its end ({@link holdSession}).
   */
  endSession(principalKey: string, session: string): void {
    this.#sessionEnds.end(principalKey, session);
    this.#streams.end(principalKey, session);
  }

  /**
   * Holds a client session's end for what outlives its connection (a resumable call, a stream
   * resumed from one): the hold's signal is aborted when the session ends, here or on another
   * instance (which this one listens to meanwhile), until the hold is released. An end told
   * before this instance listened went unheard: once listening (and again when a subscription
   * slower than that wait is made, and each time the store's subscriber comes back:
   * {@link FleetStreams.whenListening}), `ended` (the session's mark in the store) is asked while
   * the hold is held (a store that cannot say is asked again, bounded, one look at a time: `endLooker`), and a session
   * ended meanwhile ends here too. `looked` resolves with the first look's outcome: 'ended',
   * 'live', or 'unknown' when the store could not say (the release before any answer: 'unknown').
   */
  holdSession(
    principalKey: string,
    session: string,
    ended: () => Promise<boolean>,
  ): SessionHold & { readonly looked: Promise<EndLook> } {
    const hold = this.#sessionEnds.hold(principalKey, session);
    const unwatch = this.#streams.watch(principalKey);
    let released = false;
    const live = () => !released && !hold.signal.aborted;
    const end = () => this.#sessionEnds.end(principalKey, session);
    let firstLooked: ((outcome: EndLook) => void) | undefined;
    const looked = new Promise<EndLook>((resolve) => {
      firstLooked = resolve;
    });
    const look = endLooker(ended, live, end, (outcome) => firstLooked?.(outcome));
    const stopLooking = this.#streams.whenListening(principalKey, look);
    return {
      signal: hold.signal,
      looked,
      release: () => {
        released = true;
        stopLooking();
        firstLooked?.('unknown');
        hold.release();
        unwatch();
      },
    };
  }

  /** Resolves once answers meant for this instance's server requests reach it from the others. */
  listening(): Promise<void> {
    return this.#streams.listening();
  }

  /** Stops hearing the other instances (the app closes). */
  close(): Promise<void> {
    return this.#streams.close();
  }

  /**
   * After a reload: every open stream takes only the members its caller sees now, under the
   * grants its credential stands for now (none on a virtual server that is gone).
   */
  refreshStreams(): void {
    this.#streams.refresh();
  }

  #view(name: string, settings: VirtualServerSettings, request: RoutedRequest): MemberView {
    return new MemberView(
      name,
      settings,
      request,
      this.#deps,
      this.#cursorSecret,
      this.#slowLists,
      this.#claims,
    );
  }
}
