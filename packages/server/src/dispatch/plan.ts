/**
 * @module dispatch/plan
 * THE routing decision: which way one inbound message goes, made once for every surface
 * (POST /proxy, `/mcp`, `/servers/{name}/mcp`, `/ws`), and the rules for what an upstream's first
 * answer may change. The plan is data: {@link decide} turns a {@link Caller} and what is
 * {@link Known} of its target into a {@link Route}; the surfaces only execute routes. The
 * fallback rules exist here only, as functions of the route ({@link DispatchPlanner.fallbackAfter},
 * built on dispatch/answer-rules.ts, which a held connection's transport probe shares), so a fix
 * reaches every surface at once.
 *
 * Routes:
 * - `pass-through`: stateless, to a Streamable HTTP upstream; the caller carries the upstream's
 *   session id sealed (or none). `/mcp` relays the answer as it comes, POST /proxy reads it.
 * - `one-shot`: a connection held for one message and closed after its answer (POST /proxy
 *   without a session to an upstream the proxy must hold).
 * - `open-held`: open a proxy-held session (`initialize` to a held upstream; every `/ws` socket).
 * - `held`: a message of a session the proxy already holds (an `mcpp-` id).
 * - `pooled`: a modern (2026-07-28) caller of a session-era upstream, through a session the
 *   proxy pools per principal, target and client envelope.
 * - `refused`: nothing to forward (a sealed id for an upstream that has no such sessions).
 *
 * The features to come each add an input or a route, not a copy: per-user upstream credentials
 * are an input of {@link Caller} (whose credential the target carries); virtual servers, a route
 * whose members are routes; sessions owned by another instance, a route that relays to the owner.
 */
import type { Era } from '../eras/classify.ts';
import { PROXY_SESSION_PREFIX } from '../sessions/store.ts';
import type { HttpTransportKind } from '../upstream/transport.ts';
import {
  type Answer,
  invitesSse,
  learnModernOnly,
  refusedAsModernOnly,
  SSE_STATUSES,
} from './answer-rules.ts';
import { UpstreamConnector, type UpstreamTarget } from './connector.ts';
import type { EraDetector, EraProbeTarget, EraVerdict } from './era-detector.ts';
import { TargetResolver } from './targets.ts';
import type { TransportVerdicts } from './transport-verdicts.ts';

/** The public surface a message came in through. */
export type Surface = 'proxy' | 'mcp' | 'ws';

/** The session id a message carries, by who issued it. */
export type SessionRef =
  | { readonly kind: 'none' }
  /** `mcpp-…`: a session the proxy holds (store id). */
  | { readonly kind: 'held'; readonly id: string }
  /** Anything else, normally `mcpp2.…`: an upstream's own id, sealed; it must open for the caller. */
  | { readonly kind: 'sealed'; readonly id: string };

/** Who sends the message, and what the message says of itself. */
export interface Caller {
  /** The principal the message is sent for: what sessions and sealed ids bind to. */
  readonly principalKey: string;
  /** The rate class its grants name: sessions opened on its route are admitted under it. */
  readonly rateClass?: string | undefined;
  readonly surface: Surface;
  /** The protocol era of the message; undefined when there is none (GET, DELETE, a socket). */
  readonly era: Era | undefined;
  /** The message (or batch) carries an `initialize` request: it can open a session. */
  readonly opens: boolean;
  readonly session: SessionRef;
}

/** What is known of the target before anything is sent. */
export interface Known {
  /** An `http-auto` target's transport verdict (undefined: not known yet). */
  readonly transport: HttpTransportKind | undefined;
  /** Which protocol eras it is known to speak. */
  readonly era: EraVerdict;
}

/** A resolved HTTP target, reachable over Streamable HTTP. */
export type HttpTarget = Exclude<UpstreamTarget, { kind: 'stdio' }> & {
  readonly kind: 'http-auto' | 'streamable-http';
};

/** What every route knows: whose message it is and where it goes. */
interface RouteBase {
  readonly ownerId: string;
  /** The caller's rate class, for the sessions the route opens. */
  readonly rateClass?: string | undefined;
  /** The target's session key ({@link TargetResolver.key}): sessions and sealed ids bind to it. */
  readonly targetKey: string;
}

/** Which way a message goes; see the module comment. */
export type Route =
  | (RouteBase & {
      readonly kind: 'pass-through';
      readonly target: HttpTarget;
      /** The caller's sealed session id, still to be opened for this owner and target. */
      readonly sealedId: string | undefined;
      /** What the first answer may still teach or change (see {@link DispatchPlanner.fallbackAfter}). */
      readonly probe: Probe;
    })
  | (RouteBase & { readonly kind: 'one-shot'; readonly target: UpstreamTarget })
  | (RouteBase & { readonly kind: 'open-held'; readonly target: UpstreamTarget })
  | (RouteBase & { readonly kind: 'held'; readonly sessionId: string; readonly target: UpstreamTarget })
  | (RouteBase & { readonly kind: 'pooled'; readonly target: UpstreamTarget })
  | (RouteBase & { readonly kind: 'refused'; readonly code: 'session_not_found' });

/** A pass-through route. */
export type PassThroughRoute = Extract<Route, { kind: 'pass-through' }>;

/** What a pass-through's first answer may change: fixed when the route is planned. */
export interface Probe {
  /** The upstream's transport is not known yet (an `http-auto` target without a verdict). */
  readonly transportUnknown: boolean;
  /**
   * A success to this message proves Streamable HTTP: a POST of a JSON-RPC message (an
   * `initialize` on `/mcp`, any message on `POST /proxy`). Never a GET or DELETE: an HTTP+SSE
   * server answers a GET with 200 `text/event-stream` too, and one caller's GET must not steer
   * every caller of that URL away from the SSE fallback.
   */
  readonly teachesTransport: boolean;
  /** A session client's initialize: a success says the upstream speaks the session era. */
  readonly initializes: boolean;
  /** Where the message goes if the upstream speaks the 2024-11-05 HTTP+SSE transport. */
  readonly sse: Route | undefined;
  /** Where it goes if the upstream refuses it as a modern-only server does (the proxy bridges). */
  readonly bridge: Route | undefined;
}

/** A route to take instead of a pass-through's first answer. */
export interface Fallback {
  readonly route: Route;
  /** If the fallback fails too, the caller gets the original answer (else the fallback's error). */
  readonly keepOriginalOnFailure: boolean;
  /** The transport verdict to record once the fallback has served the message. */
  readonly verdictIfServed: HttpTransportKind | undefined;
}

/** The session reference a raw session id is. */
export function sessionRefOf(sessionId: string | undefined): SessionRef {
  if (sessionId === undefined) return { kind: 'none' };
  return sessionId.startsWith(PROXY_SESSION_PREFIX)
    ? { kind: 'held', id: sessionId }
    : { kind: 'sealed', id: sessionId };
}

/** Whether the target is reached over HTTP (Streamable HTTP, or not decided yet). */
function isHttp(target: UpstreamTarget): target is HttpTarget {
  return target.kind === 'http-auto' || target.kind === 'streamable-http';
}

/**
 * Where a message goes, from what is known now. A modern caller of an HTTP upstream whose
 * modern support is unknown gets `undefined`: the era must be probed first (see
 * {@link DispatchPlanner.plan}), then this is asked again with the answer.
 */
export function decide(caller: Caller, target: UpstreamTarget, known: Known): Route | undefined {
  const base = {
    ownerId: caller.principalKey,
    ...(caller.rateClass === undefined ? {} : { rateClass: caller.rateClass }),
    targetKey: TargetResolver.key(target),
  };
  const { session } = caller;
  if (caller.surface === 'ws') return { ...base, kind: 'open-held', target };
  if (session.kind === 'held') return { ...base, kind: 'held', sessionId: session.id, target };
  // An `http-auto` upstream found to speak legacy SSE is held as such.
  const held: UpstreamTarget =
    target.kind === 'http-auto' && known.transport === 'sse' ? { ...target, kind: 'sse' } : target;
  const mustHold = !isHttp(held);
  if (session.kind === 'sealed') {
    // Only a Streamable HTTP upstream issues ids the proxy seals.
    if (mustHold) return { ...base, kind: 'refused', code: 'session_not_found' };
    return passThrough(caller, held as HttpTarget, known, base, session.id);
  }
  if (caller.era === 'modern') {
    // A modern caller needs no session, unless the upstream speaks only the session era: then
    // the proxy holds one for it, pooled.
    if (mustHold || known.era.modern === false) return { ...base, kind: 'pooled', target: held };
    if (known.era.modern === undefined) return undefined;
  } else if (known.era.session === false) {
    // A session client of an upstream that speaks only 2026-07-28: the proxy holds the session.
    return heldRoute(caller, target, base);
  }
  if (mustHold) return heldRoute(caller, held, base);
  return passThrough(caller, held as HttpTarget, known, base, undefined);
}

/** A message without a session to an upstream the proxy holds: a held session, or one-shot. */
function heldRoute(caller: Caller, target: UpstreamTarget, base: RouteBase): Route {
  // POST /proxy answers a lone message over a connection of its own; elsewhere a held session
  // starts with initialize (the surface refuses anything else as `session_required`).
  if (caller.surface === 'proxy' && !caller.opens) return { ...base, kind: 'one-shot', target };
  return { ...base, kind: 'open-held', target };
}

/** Whether a route serves a message that has no session yet (a fallback must). */
function servesSessionless(caller: Caller, route: Route): boolean {
  return route.kind === 'one-shot' || (route.kind === 'open-held' && caller.opens);
}

function passThrough(
  caller: Caller,
  target: HttpTarget,
  known: Known,
  base: RouteBase,
  sealedId: string | undefined,
): PassThroughRoute {
  const sessionless = sealedId === undefined;
  const transportUnknown = target.kind === 'http-auto' && known.transport === undefined;
  const sse =
    sessionless && transportUnknown ? heldRoute(caller, { ...target, kind: 'sse' }, base) : undefined;
  const bridge = sessionless && caller.era !== 'modern' ? heldRoute(caller, target, base) : undefined;
  return {
    ...base,
    kind: 'pass-through',
    target,
    sealedId,
    probe: {
      transportUnknown,
      teachesTransport: transportUnknown && (caller.opens || caller.surface === 'proxy'),
      initializes: sessionless && caller.opens && caller.era !== 'modern',
      sse: sse && servesSessionless(caller, sse) ? sse : undefined,
      bridge: bridge && servesSessionless(caller, bridge) ? bridge : undefined,
    },
  };
}

/**
 * Whether a pass-through's answer with this status can change the route: only then must a
 * surface that relays answers as they come read this one first.
 */
export function mayFallBack(route: PassThroughRoute, status: number): boolean {
  const { probe } = route;
  return (probe.sse !== undefined || probe.bridge !== undefined) && SSE_STATUSES.has(status);
}

/** Decides routes, probing what must be known first, and learns from first answers. */
export class DispatchPlanner {
  readonly #verdicts: TransportVerdicts;
  readonly #eras: EraDetector;

  constructor(deps: { readonly verdicts: TransportVerdicts; readonly eras: EraDetector }) {
    this.#verdicts = deps.verdicts;
    this.#eras = deps.eras;
  }

  /**
   * What is known of `target` now, without probing. The era is looked up only for a message
   * without a session: nothing else is routed by it (and its key costs a hash of the credential).
   */
  known(target: UpstreamTarget, caller?: Caller): Known {
    const era = eraMatters(caller) ? UpstreamConnector.eraTarget(target) : undefined;
    return this.#known(target, era);
  }

  /**
   * The route of one message. A message without a session whose route hangs on what this
   * instance does not know yet first asks the shared store what another instance learnt (issue
   * 19; only on a local miss, so never on the hot path). A modern caller of an HTTP upstream of
   * unknown era then waits for the era probe (`server/discover`, shared by concurrent callers);
   * an inconclusive probe leaves the message on its stateless way. `signal` (the caller
   * leaving) is asked for only then.
   */
  async plan(caller: Caller, target: UpstreamTarget, signal?: () => AbortSignal): Promise<Route> {
    const eraTarget = eraMatters(caller) ? UpstreamConnector.eraTarget(target) : undefined;
    let known = this.#known(target, eraTarget);
    if (
      caller.session.kind === 'none' &&
      caller.surface !== 'ws' &&
      this.#mayRecall(target, eraTarget, known)
    )
      known = await this.#recall(target, eraTarget, known);
    const route = decide(caller, target, known);
    if (route) return route;
    const modern = await this.#eras.supportsModern(
      eraTarget ?? UpstreamConnector.eraTarget(target),
      signal?.(),
    );
    // `true` or unknown: stateless; only a known `false` pools.
    const era = { ...known.era, modern: modern ?? true };
    return decide(caller, target, { ...known, era }) as Route;
  }

  #known(target: UpstreamTarget, eraTarget: EraProbeTarget | undefined): Known {
    return {
      transport: target.kind === 'http-auto' ? this.#verdicts.get(target.url) : undefined,
      era: eraTarget ? this.#eras.known(eraTarget) : {},
    };
  }

  /** Whether the shared store may know what this instance does not, of what routes the message. */
  #mayRecall(target: UpstreamTarget, eraTarget: EraProbeTarget | undefined, known: Known): boolean {
    const transport = target.kind === 'http-auto' && known.transport === undefined;
    const era = eraTarget !== undefined && known.era.modern === undefined && known.era.session === undefined;
    return (
      (transport && this.#verdicts.mayRecall(target.url)) ||
      (era && this.#eras.mayRecall(eraTarget as EraProbeTarget))
    );
  }

  async #recall(target: UpstreamTarget, eraTarget: EraProbeTarget | undefined, known: Known): Promise<Known> {
    const [transport, era] = await Promise.all([
      target.kind === 'http-auto' && known.transport === undefined
        ? this.#verdicts.recall(target.url)
        : known.transport,
      eraTarget ? this.#eras.recall(eraTarget) : known.era,
    ]);
    return { transport, era };
  }

  /**
   * The rules after a pass-through's first answer, once for every surface: they record what the
   * answer taught, and return the route to take instead, if any.
   * 1. A session client refused the way a modern-only server refuses it → the proxy bridges.
   * 2. A modern server's protocol error → no fallback: the caller needs that answer.
   * 3. A 4xx (400/404/405) to an upstream of unknown transport → try HTTP+SSE.
   * 4. A success teaches the transport (Streamable HTTP) and, for a session client's
   *    initialize, that the upstream speaks the session era.
   */
  fallbackAfter(route: PassThroughRoute, answer: Answer): Fallback | undefined {
    const { probe } = route;
    if (answer.status >= 200 && answer.status < 300) {
      if (probe.teachesTransport) this.#verdicts.set(route.target.url, 'streamable-http');
      if (probe.initializes && !isError(answer.body))
        this.#eras.learn(UpstreamConnector.eraTarget(route.target), 'session', true);
    }
    if (probe.bridge !== undefined && refusedAsModernOnly(answer)) {
      learnModernOnly(this.#eras, UpstreamConnector.eraTarget(route.target));
      return { route: probe.bridge, keepOriginalOnFailure: false, verdictIfServed: undefined };
    }
    if (probe.sse !== undefined && invitesSse(answer)) {
      return { route: probe.sse, keepOriginalOnFailure: true, verdictIfServed: 'sse' };
    }
    return undefined;
  }

  /** A fallback served the message: record what that proved. */
  served(route: PassThroughRoute, fallback: Fallback): void {
    if (fallback.verdictIfServed) this.#verdicts.set(route.target.url, fallback.verdictIfServed);
  }
}

/** Whether a message is routed by its target's era: only one without a session (not a socket). */
function eraMatters(caller: Caller | undefined): boolean {
  return caller === undefined || (caller.session.kind === 'none' && caller.surface !== 'ws');
}

function isError(body: unknown): boolean {
  return typeof body === 'object' && body !== null && 'error' in body;
}

export type { Answer } from './answer-rules.ts';
