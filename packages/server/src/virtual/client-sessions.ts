/**
 * @module virtual/client-sessions
 * The `Mcp-Session-Id` a virtual server issues its 2025-era clients at `initialize` (issue 20),
 * as the Streamable HTTP transport expects of a server: later requests carry it (400 without),
 * an unknown or ended one gets 404, and a `DELETE` ends it. The proxy keeps nothing per session:
 * the id is sealed like its other session ids (sessions/session-id-sealer.ts) for the principal
 * and the virtual server, so any instance sharing the secret opens it and nobody else can. It
 * holds a random name (what cancellations and GET streams are keyed by) and when it was issued:
 * a session lasts at most {@link SESSION_LIFETIME_MS}, so an ended one is remembered (in the
 * shared store, every instance sees it) only until it would have expired anyway, and a principal
 * leaves at most {@link ENDS_PER_PRINCIPAL} such marks a lifetime (past it a DELETE is refused
 * `rate_limited`): one principal's churn cannot fill the store that also holds revocations.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ProxyError } from '../errors.ts';
import { countOrRefuse } from '../limits/store-failures.ts';
import type { SessionIdSealer } from '../sessions/session-id-sealer.ts';
import { readOrRefuse, type Store, storeFailure } from '../store/store.ts';

/** How long a client's session lasts at most, from its `initialize` (then 404: it initializes again). */
export const SESSION_LIFETIME_MS = 24 * 60 * 60_000;

/**
 * Most sessions one principal ends by DELETE per {@link SESSION_LIFETIME_MS} window, each leaving
 * a mark in the shared store that lives as long; past it a DELETE is refused `rate_limited` (429)
 * and writes nothing (the session then ends by expiring; a client that would not wait initializes
 * anew).
 */
export const ENDS_PER_PRINCIPAL = 100;

/** What {@link ClientSessions} needs. */
export interface ClientSessionsDeps {
  readonly sealer: SessionIdSealer;
  /** A namespaced view of the shared store: where ended sessions are marked. */
  readonly store: Store;
  /** Clock in milliseconds; default `Date.now`. */
  readonly now?: (() => number) | undefined;
}

/** A session id that opened: the name it is known by (never shown: the client has the sealed id). */
export interface ClientSession {
  readonly key: string;
  /** When it expires (its answer events expire with it: virtual/answer-events.ts). */
  readonly expiresAt: number;
  /** The protocol version negotiated at its `initialize`; undefined for an id issued before it was kept. */
  readonly version: string | undefined;
  /**
   * The id to hand back when it differs from the one the client sent (it was sealed under a
   * previous secret and is now sealed under the current one); else `undefined`.
   */
  readonly resealedId?: string | undefined;
}

/** Issues, opens and ends the session ids of virtual servers' clients. */
export class ClientSessions {
  readonly #deps: ClientSessionsDeps;
  readonly #now: () => number;

  constructor(deps: ClientSessionsDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  /** A new session id for `principalKey` on the virtual server `name`, negotiating `version`. */
  issue(principalKey: string, name: string, version: string): string {
    const key = randomBytes(16).toString('base64url');
    return this.#deps.sealer.seal(`${key}.${this.#now()}.${version}`, principalKey, targetOf(name));
  }

  /** The session `sealedId` names, when it was issued to this principal here and is live. */
  async open(sealedId: string, principalKey: string, name: string): Promise<ClientSession | undefined> {
    const opened = this.#unsealed(sealedId, principalKey, name);
    if (opened === undefined) return undefined;
    if ((await readOrRefuse(this.#deps.store, opened.key)) !== undefined) return undefined;
    const { key, expiresAt, version, resealedId } = opened;
    return { key, expiresAt, version, resealedId };
  }

  /** Whether the session keyed `key` (a {@link ClientSession}'s) was ended; throws `store_unavailable`. */
  async isEnded(key: string): Promise<boolean> {
    return (await readOrRefuse(this.#deps.store, key)) !== undefined;
  }

  /**
   * Ends the session `sealedId` names; false when it was not live (unknown, expired or ended).
   * Throws `rate_limited` past {@link ENDS_PER_PRINCIPAL}, `store_unavailable` when the store fails.
   */
  async end(sealedId: string, principalKey: string, name: string): Promise<boolean> {
    const opened = this.#unsealed(sealedId, principalKey, name);
    if (opened === undefined) return false;
    const { store } = this.#deps;
    try {
      const ends = await countOrRefuse(
        store,
        // The principal's key (a subject, for OIDC) is hashed: the store holds no one's name.
        `ends:${createHash('sha256').update(principalKey).digest('base64url')}`,
        SESSION_LIFETIME_MS,
      );
      if (ends.count > ENDS_PER_PRINCIPAL) throw tooManyEnds(ends.resetInMs);
      // Kept until the id would have expired: after that it does not open anyway.
      return await store.setIfAbsent(opened.key, 'ended', Math.max(1, opened.expiresAt - this.#now()));
    } catch (error) {
      throw error instanceof ProxyError ? error : storeFailure(error);
    }
  }

  #unsealed(
    sealedId: string,
    principalKey: string,
    name: string,
  ): (ClientSession & { readonly resealedId: string | undefined }) | undefined {
    const opened = this.#deps.sealer.open(sealedId, principalKey, targetOf(name));
    if (opened === undefined) return undefined;
    // `key.issuedAt.version` (ids issued before the version was kept: `key.issuedAt`).
    const [key, issued, version, ...rest] = opened.upstreamId.split('.');
    const issuedAt = Number(issued);
    const expiresAt = issuedAt + SESSION_LIFETIME_MS;
    if (!key || rest.length > 0 || !Number.isFinite(issuedAt) || expiresAt <= this.#now()) return undefined;
    const resealedId = opened.resealed ? opened.sealedId : undefined;
    return { key, expiresAt, version, resealedId };
  }
}

/** The refusal of a DELETE past {@link ENDS_PER_PRINCIPAL}; the window resets in `resetInMs`. */
function tooManyEnds(resetInMs: number): ProxyError {
  const retryAfter = Math.max(1, Math.ceil(resetInMs / 1000));
  return new ProxyError(
    'rate_limited',
    `Too many sessions ended: at most ${ENDS_PER_PRINCIPAL} a day; retry in ${retryAfter} s or let the session expire.`,
    {
      headers: { 'retry-after': String(retryAfter) },
      data: { limit: 'sessionEnds', retryAfterSeconds: retryAfter },
    },
  );
}

/** What a session id is sealed for besides its principal: no other target's id opens as one. */
function targetOf(name: string): string {
  return `virtual-client:${name}`;
}
