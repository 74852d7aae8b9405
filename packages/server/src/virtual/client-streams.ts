/**
 * @module virtual/client-streams
 * The GET event streams of a virtual server's clients (issue 20): what a member sends outside
 * any request of a client (a list change, a log message, a resource update, a server request)
 * goes to the open streams of the principal whose member session sent it, on each virtual
 * server that has that member among the ones the principal sees. Member sessions are the
 * principal's (member-sessions.ts), so one principal's streams never carry another's members.
 */
import { ProxyError } from '../errors.ts';
import { isRequest, type JsonRpcMessage } from '../jsonrpc.ts';
import type { TargetGrants } from '../policy/grants.ts';
import type { MemberMapping } from './member-names.ts';
import type { MemberReply, MemberRequests, VirtualChannel } from './member-requests.ts';
import type { OpenCaller } from './virtual-servers.ts';

/** GET streams one principal may hold open on one virtual server (several tabs, not thousands). */
const MAX_STREAMS_PER_SCOPE = 16;

/** One open stream: its virtual server, the members its principal sees there, where it writes. */
interface OpenStream {
  readonly name: string;
  /** Whose stream it is: its grants of now decide the members it takes. */
  readonly caller: OpenCaller;
  /** The client session it belongs to (client-sessions.ts), if any: its end ends the stream. */
  readonly session: string | undefined;
  /** Replaced after a reload: the members the caller sees under its grants of now ({@link ClientStreams.refresh}). */
  members: readonly string[];
  readonly channel: VirtualChannel;
}

/** The open GET streams, by principal. */
export class ClientStreams {
  readonly #byPrincipal = new Map<string, Set<OpenStream>>();
  readonly #requests: MemberRequests;
  /** How a virtual server (by name, as configured now) shows its members' URIs and loggers. */
  readonly #mappingOf: (name: string) => MemberMapping;
  /** The members grants see on a virtual server (by name, as configured now). */
  readonly #membersOf: (name: string, grants: TargetGrants) => readonly string[];

  constructor(
    requests: MemberRequests,
    mappingOf: (name: string) => MemberMapping,
    membersOf: (name: string, grants: TargetGrants) => readonly string[],
  ) {
    this.#requests = requests;
    this.#mappingOf = mappingOf;
    this.#membersOf = membersOf;
  }

  /**
   * Opens a stream of `caller` on the virtual server `name`, taking the members it sees there;
   * returns what closes it. Too many on one virtual server: `stream_conflict`.
   */
  open(caller: OpenCaller, name: string, channel: VirtualChannel, session?: string): () => void {
    const { principalKey } = caller;
    let streams = this.#byPrincipal.get(principalKey);
    const same = streams ? [...streams].filter((stream) => stream.name === name).length : 0;
    if (same >= MAX_STREAMS_PER_SCOPE) {
      throw new ProxyError('stream_conflict', 'Too many GET event streams are open on this virtual server.');
    }
    if (streams === undefined) {
      streams = new Set();
      this.#byPrincipal.set(principalKey, streams);
    }
    // Its members are given at once by #follow: its grants may be older than a reload that ran
    // since the caller was verified.
    const stream: OpenStream = { name, caller, session, members: [], channel };
    streams.add(stream);
    this.#follow(stream);
    return () => {
      streams.delete(stream);
      if (streams.size === 0 && this.#byPrincipal.get(principalKey) === streams) {
        this.#byPrincipal.delete(principalKey);
      }
    };
  }

  /**
   * Ends the streams of the client session `session` of `principalKey` (it was ended); without
   * `session`, every stream of `principalKey` that can end (what it heard may be incomplete).
   */
  end(principalKey: string, session?: string): void {
    for (const stream of [...(this.#byPrincipal.get(principalKey) ?? [])])
      if (session === undefined || stream.session === session) stream.channel.close?.();
  }

  /** After a reload: each open stream takes the members its caller sees under its grants of now. */
  refresh(): void {
    for (const streams of this.#byPrincipal.values()) for (const stream of streams) this.#follow(stream);
  }

  /**
   * Gives `stream` at once the members its caller may see while its credential is verified again
   * after a reload (fail closed, review10 GRANTS-4: never one its grants of now hide), and those it
   * sees under its grants of now once they are known; a caller refused now keeps none (what it
   * holds is being ended for it).
   */
  #follow(stream: OpenStream): void {
    const { caller, name } = stream;
    const seen = () => caller.seenNow((grants) => this.#membersOf(name, grants));
    stream.members = seen();
    caller.current().then(
      // Read again: a later reload may have run since this verification began.
      () => {
        stream.members = seen();
      },
      () => {
        stream.members = [];
      },
    );
  }

  /**
   * A member's message outside any request, from the session it holds for `principalKey`: a
   * notification goes to every stream here that sees the member (true even when none does:
   * there is nobody to keep it for), a server request to the first that takes it (false when
   * none: another instance's stream may, virtual/fleet-streams.ts).
   */
  deliver(principalKey: string, member: string, message: JsonRpcMessage, reply: MemberReply): boolean {
    const relays = this.#seeing(principalKey, member).map((stream) =>
      this.#requests.relay(
        principalKey,
        stream.name,
        stream.channel,
        'session',
        this.#mappingOf(stream.name),
      ),
    );
    if (isRequest(message)) return relays.some((relay) => relay(member, message, reply));
    for (const relay of relays) relay(member, message, reply);
    return true;
  }

  /**
   * A member's message outside any request that another instance's member session sent (a
   * server request already under the asking instance's id, waiting there): a notification goes
   * to every stream here that sees the member; a request to the first that can ask, whose
   * virtual server is returned (undefined when none took it).
   */
  heard(principalKey: string, member: string, message: JsonRpcMessage): string | undefined {
    const streams = this.#seeing(principalKey, member);
    if (isRequest(message))
      return streams.find((stream) => stream.channel.asks && stream.channel.send(message))?.name;
    // A notification is never answered: the reply is never called.
    this.deliver(principalKey, member, message, async () => {});
    return undefined;
  }

  #seeing(principalKey: string, member: string): OpenStream[] {
    return [...(this.#byPrincipal.get(principalKey) ?? [])].filter((stream) =>
      stream.members.includes(member),
    );
  }
}
