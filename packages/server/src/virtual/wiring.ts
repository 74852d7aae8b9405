/**
 * @module virtual/wiring
 * Builds the virtual servers' parts (issue 20) for app.ts: the servers over the member sessions
 * the proxy holds, the sessions of 2026-07-28 clients and `/ws` sockets, the sessions of 2025
 * clients of `/servers/{name}/mcp` and their resumable answers. What comes from the layers above
 * (the broker's credentials, the fleet's sealing box) is passed in.
 */
import type { Config } from '../config/config.ts';
import type { HeldSessions } from '../dispatch/held-sessions.ts';
import type { TargetResolver } from '../dispatch/targets.ts';
import type { HeldSession } from '../sessions/held-session.ts';
import { configuredSecrets } from '../sessions/sealer-key.ts';
import type { SessionIdSealer } from '../sessions/session-id-sealer.ts';
import type { SessionStore } from '../sessions/store.ts';
import { ANSWER_LOGS_NAMESPACE } from '../store/open-store.ts';
import { purposeSeal } from '../store/purpose-seal.ts';
import { namespaced, type Store } from '../store/store.ts';
import { ANSWER_LOGS_PURPOSE, AnswerEvents } from './answer-events.ts';
import { ClientSessions } from './client-sessions.ts';
import type { FleetDeps } from './fleet-channels.ts';
import type { MemberCredentials } from './member-reach.ts';
import { MemberSessions } from './member-sessions.ts';
import { VirtualServers, type VirtualServersDeps } from './virtual-servers.ts';
import { VirtualSessions } from './virtual-session.ts';

/** What the virtual servers' parts need of the rest of the app. */
export interface VirtualWiringDeps {
  readonly store: Store;
  readonly logger: VirtualServersDeps['logger'];
  readonly now: () => number;
  readonly sessions: SessionStore<HeldSession>;
  readonly held: Pick<HeldSessions, 'open'>;
  readonly targets: Pick<TargetResolver, 'resolve'>;
  /** Seals the 2025 clients' session ids (the relay's sealer). */
  readonly sealer: SessionIdSealer;
  /** This instance's tag (in `requestState` handles). */
  readonly instanceId: string;
  /** The configuration in force (a reload replaces it). */
  readonly current: () => Config;
  /** Counts a member dropped from an answer, by the error's code (metrics). */
  readonly onMemberDown: (code: string) => void;
  /** The upstream OAuth broker's part (credentials/member-credentials.ts). */
  readonly credentials: MemberCredentials;
  /** The other instances sharing the store, when there are any (virtual/fleet-channels.ts). */
  readonly fleet: FleetDeps | undefined;
}

/** The virtual servers' parts, built and listening to the other instances. */
export interface VirtualParts {
  readonly virtual: VirtualServers;
  /** Sessions of 2026-07-28 clients of `/servers/{name}/mcp` and of `/ws` sockets. */
  readonly sessions: VirtualSessions;
  /** Sessions of 2025 clients of `/servers/{name}/mcp`. */
  readonly clients: ClientSessions;
  /** Their resumable answers' logs. */
  readonly answers: AnswerEvents;
}

/** Builds the virtual servers' parts; resolves once they hear the other instances (bounded). */
export async function buildVirtual(config: Config, deps: VirtualWiringDeps): Promise<VirtualParts> {
  const { store, sessions, held, now } = deps;
  const virtual = new VirtualServers({
    settings: () => deps.current().virtualServers,
    resolve: (member, grants) => deps.targets.resolve({ server: member }, grants),
    members: new MemberSessions({
      sessions,
      open: held.open.bind(held),
      timeoutMs: config.upstream.timeoutMs,
    }),
    logger: deps.logger,
    onMemberDown: deps.onMemberDown,
    credentials: deps.credentials,
    cursorSecret: config.sessionSecret,
    // Its clients' streams and answers cross to the other instances sharing the store.
    fleet: deps.fleet,
    now,
  });
  await virtual.listening();
  const virtualSessions = new VirtualSessions({
    virtual,
    sessions,
    inputDeadlineMs: config.sessions.idleTimeoutMs,
    timeoutMs: config.upstream.timeoutMs,
    handleTag: deps.instanceId,
  });
  const clients = new ClientSessions({
    sealer: deps.sealer,
    store: namespaced(store, 'virtual-sessions:'),
    now,
  });
  const answers = new AnswerEvents({
    store: namespaced(store, ANSWER_LOGS_NAMESPACE),
    upstreamTimeoutMs: config.upstream.timeoutMs,
    now,
    ended: (key) => clients.isEnded(key),
    name: purposeSeal(configuredSecrets(config), ANSWER_LOGS_PURPOSE)?.name,
  });
  return { virtual, sessions: virtualSessions, clients, answers };
}
