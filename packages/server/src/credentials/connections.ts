/**
 * @module credentials/connections
 * What a principal connected (issue 18, item 4): the list behind `GET /oauth/connections` and the
 * disconnect behind `DELETE /oauth/connections/{server}`. The vault's slots are hashes that cannot
 * be listed, so each principal has a small index (sealed like the vault, under a hashed key) of
 * the servers it connected; the details (issuer, scopes, expiry) are read from the vault entry
 * itself, and an index line whose entry is gone (refused refresh, expired) is dropped on reading.
 * Disconnecting revokes the tokens at the authorization server where its metadata offers a
 * `revocation_endpoint` (RFC 7009), through the egress guard, then deletes them: a revocation
 * that fails never keeps a token the user asked to forget.
 */
import { randomBytes } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { open, seal } from '../store/sealed-box.ts';
import type { BrokerMeans } from './broker-means.ts';
import { canonical, requestOptions } from './discovery.ts';
import { digest } from './hashed-secrets.ts';
import { clientAuth, type OAuthClient } from './registration.ts';
import { TokenVault, type VaultEntry } from './vault.ts';

/**
 * Connections one principal may have listed. An index is read whole at each call, so it stays
 * small; past the cap the oldest connection is ended (revoked where offered, index and tokens
 * forgotten), never a new one.
 */
export const MAX_CONNECTIONS_PER_PRINCIPAL = 100;
/** How long revoking a connection evicted past the cap may take (it delays the sign-in's page). */
const EVICT_REVOKE_TIMEOUT_MS = 10_000;
/** How long a disconnect may hold a connection's refresh lock: two revocation requests. */
const REVOKE_LOCK_MS = 30_000;
/** How often a disconnect looks for a refresh in flight to end (~16 s: a refresh holds its lock 15 s at most). */
const REFRESH_WAIT_TRIES = 84;
/** An index lives as long as a vault entry with a refresh token does, renewed at each sign-in. */
const INDEX_TTL_MS = 90 * 24 * 3600 * 1000;
/** How long one writer may hold a principal's index; writers are sign-ins, seconds apart. */
const INDEX_LOCK_MS = 5_000;
/** How often a writer looks for the lock (~2 s in all) before writing anyway: a lost line is pruned, not kept. */
const INDEX_LOCK_TRIES = 14;

/** One connection as the principal sees it: never a token. */
export interface Connection {
  /** The configured server's name, or the host of a raw URL. */
  readonly server: string;
  /** The MCP server's URL (the vault's resource). */
  readonly resource: string;
  readonly issuer: string;
  readonly scopes: readonly string[];
  /** When the access token expires (ISO 8601), or null when the server did not say. */
  readonly expiresAt: string | null;
  /** Whether the proxy holds a refresh token (the connection outlives the access token). */
  readonly refreshable: boolean;
}

/** The outcome of disconnecting one connection. */
export interface Disconnected {
  readonly server: string;
  readonly resource: string;
  /**
   * `revoked`: the authorization server confirmed (RFC 7009); `not_offered`: it has no
   * revocation endpoint; `failed`: it could not be reached or refused. The tokens are deleted
   * from the vault in every case.
   */
  readonly revocation: 'revoked' | 'not_offered' | 'failed';
}

/** One line of a principal's index. */
interface IndexLine {
  readonly server: string;
  readonly resource: string;
  /** When it was (last) connected, ms since the epoch: the oldest goes first past the cap. */
  readonly at: number;
}

/** What the broker keeps in a vault entry besides the tokens (see broker.ts `StoredEntry`). */
type EntryWithClient = VaultEntry & {
  readonly as?: oauth.AuthorizationServer;
  readonly client?: OAuthClient;
};

/** Collaborators of {@link OAuthConnections}; `fetch` (revocation requests) goes through the egress guard. */
export interface ConnectionsDeps extends BrokerMeans {
  readonly now: () => number;
}

/** Lists and ends principals' upstream OAuth connections. */
export class OAuthConnections {
  readonly #deps: ConnectionsDeps;
  readonly #vault: TokenVault;

  constructor(deps: ConnectionsDeps) {
    this.#deps = deps;
    this.#vault = new TokenVault(deps.store, deps.keys, deps.now);
  }

  /**
   * Remembers that `principalKey` connected `server` (the vault entry for `resource` exists).
   * Past the cap the oldest connection is ended as a disconnect ends it (revoked where offered,
   * then deleted: review item 7, nothing stays that cannot be listed), and returned so the
   * caller can log it.
   */
  async record(principalKey: string, server: string, resource: string): Promise<Disconnected[]> {
    const evicted: IndexLine[] = [];
    await this.#update(principalKey, async (lines) => {
      const kept = lines.filter((line) => line.resource !== resource);
      kept.push({ server, resource, at: this.#deps.now() });
      while (kept.length > MAX_CONNECTIONS_PER_PRINCIPAL) evicted.push(kept.shift() as IndexLine);
      return kept;
    });
    const ended: Disconnected[] = [];
    for (const line of evicted) {
      // Best effort and bounded: the sign-in that caused it has already succeeded.
      const done = await this.#end(principalKey, line, AbortSignal.timeout(EVICT_REVOKE_TIMEOUT_MS));
      if (done) ended.push(done);
    }
    return ended;
  }

  /** The principal's connections, oldest first; lines whose tokens are gone are dropped. */
  async list(principalKey: string): Promise<Connection[]> {
    const lines = await this.#read(principalKey);
    const connections: Connection[] = [];
    const gone = new Set<string>();
    for (const line of lines) {
      const entry = await this.#vault.get(principalKey, line.resource);
      if (entry === undefined) gone.add(line.resource);
      else connections.push(describe(line, entry));
    }
    if (gone.size > 0) {
      await this.#update(principalKey, async (current) => {
        // Only what is still gone: a sign-in may have come back in between.
        const still = new Set<string>();
        for (const resource of gone) {
          if ((await this.#vault.get(principalKey, resource)) === undefined) still.add(resource);
        }
        return current.filter((line) => !still.has(line.resource));
      });
    }
    return connections;
  }

  /**
   * Ends the principal's connections to `server` (a listed `server` name, or a listed `resource`
   * URL): revokes, then deletes. An empty array when nothing matched.
   */
  async disconnect(principalKey: string, server: string, signal?: AbortSignal): Promise<Disconnected[]> {
    const lines = await this.#read(principalKey);
    const matching = lines.filter((line) => line.server === server || line.resource === server);
    if (matching.length === 0 && URL.canParse(server)) {
      // A connection the index lost (a write that gave up waiting for its lock, or one made before
      // the index existed) can still be ended by its URL: the vault is the truth.
      const resource = canonical(new URL(server));
      if ((await this.#vault.get(principalKey, resource)) !== undefined) {
        matching.push({ server: new URL(resource).host, resource, at: 0 });
      }
    }
    const done: Disconnected[] = [];
    for (const line of matching) {
      const ended = await this.#end(principalKey, line, signal);
      if (ended) done.push(ended);
    }
    if (matching.length > 0) {
      const ended = new Set(matching.map((line) => line.resource));
      await this.#update(principalKey, async (current) =>
        current.filter((line) => !ended.has(line.resource)),
      );
    }
    return done;
  }

  /** Revokes and deletes one connection's tokens; undefined when there were none any more. */
  async #end(
    principalKey: string,
    line: IndexLine,
    signal: AbortSignal | undefined,
  ): Promise<Disconnected | undefined> {
    // Under the refresh lock (broker.ts): a refresh running now, here or on another instance,
    // would put fresh tokens back after the delete, connected yet no longer listed.
    const slot = TokenVault.slot(principalKey, line.resource);
    const release = await this.#lock(TokenVault.lock(slot), REVOKE_LOCK_MS, REFRESH_WAIT_TRIES);
    try {
      const entry = (await this.#vault.get(principalKey, line.resource)) as EntryWithClient | undefined;
      if (entry === undefined) return undefined;
      const revocation = await this.#revoke(entry, signal);
      // Open sockets and WebSocket upstreams still hold the token: the end ends them (R1).
      await this.#vault.end(principalKey, line.resource);
      return { server: line.server, resource: line.resource, revocation };
    } finally {
      await release();
    }
  }

  /** RFC 7009: the refresh token first (ending it ends the grant at most servers), then the access token. */
  async #revoke(
    entry: EntryWithClient,
    signal: AbortSignal | undefined,
  ): Promise<Disconnected['revocation']> {
    const as = entry.as;
    const client = entry.client;
    if (as === undefined || client === undefined || typeof as.revocation_endpoint !== 'string') {
      return 'not_offered';
    }
    const tokens: Array<[string, string]> = [];
    if (entry.refreshToken !== undefined) tokens.push([entry.refreshToken, 'refresh_token']);
    tokens.push([entry.accessToken, 'access_token']);
    let endpoint: URL;
    try {
      endpoint = new URL(as.revocation_endpoint);
    } catch {
      return 'failed';
    }
    let revoked = 0;
    for (const [token, hint] of tokens) {
      try {
        const response = await oauth.revocationRequest(
          as,
          { client_id: client.client_id },
          clientAuth(client),
          token,
          {
            ...requestOptions(this.#deps.fetch, endpoint),
            additionalParameters: { token_type_hint: hint },
            ...(signal ? { signal } : {}),
          },
        );
        await oauth.processRevocationResponse(response);
        revoked++;
      } catch (error) {
        // RFC 7009 §2.2.1: a server may not revoke some types (a JWT access token, which then
        // just expires); once the refresh token is revoked, that is the server's best.
        if (error instanceof oauth.ResponseBodyError && error.error === 'unsupported_token_type') continue;
        // Any other answer (or none) is not the user's problem: the tokens go anyway.
        return 'failed';
      }
    }
    return revoked > 0 ? 'revoked' : 'failed';
  }

  static #slot(principalKey: string): string {
    return `connections:${digest(principalKey)}`;
  }

  async #read(principalKey: string): Promise<IndexLine[]> {
    const slot = OAuthConnections.#slot(principalKey);
    const sealed = await this.#deps.store.get(slot);
    const plain = sealed === undefined ? undefined : open(this.#deps.keys, slot, sealed);
    if (plain === undefined) return [];
    try {
      const parsed = JSON.parse(plain) as unknown;
      return Array.isArray(parsed) ? (parsed as IndexLine[]) : [];
    } catch {
      return [];
    }
  }

  /**
   * Takes a store lock (instances share it), waiting a bounded time for its holder; returns its
   * release. Past the wait it goes on without: a stuck lock must not make a user's request hang.
   */
  async #lock(lock: string, ttlMs = INDEX_LOCK_MS, tries = INDEX_LOCK_TRIES): Promise<() => Promise<void>> {
    const holder = randomBytes(12).toString('base64url');
    let held = await this.#deps.store.setIfAbsent(lock, holder, ttlMs);
    for (let tried = 0, wait = 10; !held && tried < tries; tried++) {
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 200);
      held = await this.#deps.store.setIfAbsent(lock, holder, ttlMs);
    }
    return async () => {
      if (held) await this.#deps.store.deleteIf(lock, holder);
    };
  }

  /** Read-modify-write of a principal's index under its lock. */
  async #update(principalKey: string, change: (lines: IndexLine[]) => Promise<IndexLine[]>): Promise<void> {
    const slot = OAuthConnections.#slot(principalKey);
    const release = await this.#lock(`${slot}:lock`);
    try {
      const next = await change(await this.#read(principalKey));
      if (next.length === 0) await this.#deps.store.delete(slot);
      else await this.#deps.store.set(slot, seal(this.#deps.keys, slot, JSON.stringify(next)), INDEX_TTL_MS);
    } finally {
      await release();
    }
  }
}

function describe(line: IndexLine, entry: VaultEntry): Connection {
  return {
    server: line.server,
    resource: line.resource,
    issuer: entry.issuer,
    scopes: entry.scope === undefined ? [] : entry.scope.split(' ').filter(Boolean),
    expiresAt: isoDate(entry.expiresAt),
    refreshable: entry.refreshToken !== undefined,
  };
}

/**
 * An expiry as ISO 8601, or null when unknown or not a date (review R4: one entry stored before
 * expiries were clamped must not break the whole list).
 */
function isoDate(at: number | undefined): string | null {
  if (at === undefined) return null;
  const date = new Date(at);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}
