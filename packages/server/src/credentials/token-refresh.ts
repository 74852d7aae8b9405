/**
 * @module credentials/token-refresh
 * What the broker keeps per (principal, server) and how it is renewed (issue 18): a vault entry
 * built from a token answer (bounded: review F4), whether it is due for refresh, and the
 * single-flight refresh — one per (principal, resource) in a process, a store lock across
 * instances. Every removal is compare-and-delete (review F5), and the refreshed entry is stored
 * compare-and-set (review6 OAUTH-3): only the entry that was read, and found stale, is dropped or
 * replaced, never one a concurrent refresh or sign-in stored since. A client the
 * authorization server forgot (`invalid_client`) is forgotten too, so the next sign-in registers
 * again (review F6).
 */
import { randomBytes } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { ProxyError } from '../errors.ts';
import { TtlCache } from '../ttl-cache.ts';
import type { BrokerMeans } from './broker-means.ts';
import { forgetRegistration, keepDocumentInUse, type OAuthClient } from './registration.ts';
import { requestTokens, type TokenRequester } from './token-endpoint.ts';
import { TokenVault, type VaultEntry } from './vault.ts';

/** Longest `scope` kept or asked for (review F4: a challenge, metadata or token answer chooses it). */
export const MAX_SCOPE = 1024;
/** Longest access or refresh token kept (review F4: the authorization server chooses them). */
const MAX_TOKEN = 16 * 1024;
/**
 * Longest access token life believed (review R4): `expires_in` is the authorization server's
 * choice, and an absurd one (1e300) would be an expiry no date can hold.
 */
const MAX_EXPIRES_IN_S = 365 * 24 * 3600;
/** Refresh this long before expiry at most (a quarter of the token's life when that is shorter). */
const REFRESH_MARGIN_MS = 60_000;
/** How long one instance may hold a refresh lock. */
const REFRESH_LOCK_MS = 15_000;
/** How often an instance waiting for another's refresh looks again. */
const REFRESH_POLL_MS = 100;
/**
 * How long a slot whose refresh failed (the authorization server down, 5xx, a timeout) is not
 * refreshed again (review oauth6 R4): without it every `/ws` frame and every call started a new
 * refresh grant while the token endpoint failed. The token held serves meanwhile.
 */
export const REFRESH_BACKOFF_MS = 30_000;
/** Slots remembered as backing off at once (the oldest is forgotten first: it refreshes early). */
const MAX_BACKOFFS = 10_000;

/** What a stored vault entry carries besides the tokens: enough to refresh without discovery. */
export interface StoredEntry extends VaultEntry {
  readonly as: oauth.AuthorizationServer;
  readonly client: OAuthClient;
  /** Registered dynamically: dropped from the store when the server says `invalid_client`. */
  readonly dynamic?: boolean | undefined;
  readonly redirectUri?: string | undefined;
  readonly issuedAt: number;
}

/** Where a token answer came from: a sign-in, or the entry it refreshes. */
export interface EntrySource extends TokenRequester {
  /** The vault slot's resource: the MCP server's URL as the caller reaches it. */
  readonly target: string;
  /** Whether the client was registered dynamically (its store slot is dropped on invalid_client). */
  readonly dynamic?: boolean | undefined;
  readonly redirectUri?: string | undefined;
}

/** The vault entry of a token answer; refuses oversized tokens (they would be kept for months). */
export function entryFrom(
  source: EntrySource,
  tokens: oauth.TokenEndpointResponse,
  previousRefresh: string | undefined,
  now: number,
): StoredEntry {
  if (tokens.access_token.length > MAX_TOKEN || (tokens.refresh_token?.length ?? 0) > MAX_TOKEN) {
    throw new ProxyError('upstream_auth_failed', 'The authorization server issued an oversized token.');
  }
  return {
    accessToken: tokens.access_token,
    // An AS that does not rotate refresh tokens answers without one: the old one stays good.
    refreshToken: tokens.refresh_token ?? previousRefresh,
    expiresAt:
      typeof tokens.expires_in === 'number' && Number.isFinite(tokens.expires_in)
        ? now + Math.min(Math.max(tokens.expires_in, 0), MAX_EXPIRES_IN_S) * 1000
        : undefined,
    scope: tokens.scope?.slice(0, MAX_SCOPE),
    issuer: source.as.issuer,
    resource: source.target,
    indicator: source.indicator,
    clientId: source.client.client_id,
    as: source.as,
    client: source.client,
    dynamic: source.dynamic,
    redirectUri: source.redirectUri,
    issuedAt: now,
  };
}

/** Whether `entry`'s access token is close enough to expiry to refresh it first. */
export function isDue(entry: StoredEntry, now: number): boolean {
  if (entry.expiresAt === undefined) return false;
  const margin = Math.min(REFRESH_MARGIN_MS, (entry.expiresAt - entry.issuedAt) / 4);
  return now >= entry.expiresAt - margin;
}

/**
 * What of an oauth4webapi failure may be logged: its name, message and OAuth error code, never
 * the response or its body (a token answer the library refused still holds the tokens).
 */
export function plainCause(cause: unknown): Error {
  if (!(cause instanceof Error)) return new Error('oauth flow failure');
  const code = cause instanceof oauth.ResponseBodyError ? ` (${cause.error})` : '';
  const plain = new Error(`${cause.message}${code}`);
  plain.name = cause.name;
  return plain;
}

/**
 * `invalid_client` from the token endpoint: the authorization server forgot the client the proxy
 * registered, so the registration is dropped and the next sign-in registers anew (review F6).
 * True when `cause` was that.
 */
export async function forgetDeadClient(
  deps: Omit<BrokerMeans, 'fetch'>,
  cause: unknown,
  source: EntrySource,
): Promise<boolean> {
  if (!(cause instanceof oauth.ResponseBodyError) || cause.error !== 'invalid_client') return false;
  if (source.dynamic === true && source.redirectUri !== undefined) {
    await forgetRegistration(deps, source.as.issuer, source.redirectUri, source.client.client_id);
  }
  return true;
}

/**
 * `task`, or the caller's abort first: the caller stops waiting, the task goes on. An abort
 * answers `upstream_timeout`, as an exchange past the flow's deadline does.
 */
export function untilAborted<T>(task: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return task;
  const gone = () =>
    new ProxyError('upstream_timeout', "The MCP server's authorization server did not answer in time.");
  if (signal.aborted) return Promise.reject(gone());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(gone());
    signal.addEventListener('abort', onAbort, { once: true });
    task.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Collaborators of {@link TokenRefresher}. */
export interface TokenRefresherDeps extends BrokerMeans {
  readonly vault: TokenVault;
  readonly now: () => number;
  /** The flow's deadline (with no caller signal: refreshes are detached from callers, R6). */
  readonly deadline: (signal: AbortSignal | undefined) => AbortSignal;
}

/** Refreshes vault entries, once per (principal, resource). */
export class TokenRefresher {
  readonly #deps: TokenRefresherDeps;
  readonly #running = new Map<string, Promise<StoredEntry | undefined>>();
  /** Slots whose last refresh failed, with that failure: not refreshed again for a while. */
  readonly #backoff: TtlCache<string, unknown>;

  constructor(deps: TokenRefresherDeps) {
    this.#deps = deps;
    this.#backoff = new TtlCache({ ttlMs: REFRESH_BACKOFF_MS, maxEntries: MAX_BACKOFFS, now: deps.now });
  }

  /**
   * The entry of (principal, resource) after refreshing it when stale; undefined when there is
   * none any more (the user signs in again). One refresh per (principal, resource): in this
   * process a shared promise, across instances a lock. `failed` is an access token the upstream
   * refused: an entry still holding it is stale even before its expiry.
   */
  refreshOnce(
    principalKey: string,
    resource: string,
    failed: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<StoredEntry | undefined> {
    const slot = TokenVault.slot(principalKey, resource);
    let task = this.#running.get(slot);
    if (task === undefined) {
      const failure = this.#backoff.get(slot);
      if (failure !== undefined)
        return untilAborted(this.#held(principalKey, resource, failed, failure), signal);
      // Review R6: detached from every caller's signal, bounded by the flow's deadline only. Once
      // the authorization server rotated the refresh token, only storing its answer keeps the
      // grant: a caller that leaves (and it may be the first of several) must not abort that.
      const started = this.#refresh(
        principalKey,
        resource,
        slot,
        failed,
        this.#deps.deadline(undefined),
      ).catch((error: unknown) => {
        // Review oauth6 R4: not again for a while; the token held serves meanwhile.
        this.#backoff.set(slot, error);
        throw error;
      });
      task = started.finally(() => this.#running.delete(slot));
      // Nobody may be waiting any more when it fails: that is no unhandled rejection.
      task.catch(() => {});
      this.#running.set(slot, task);
    }
    return untilAborted(task, signal);
  }

  /**
   * While a slot backs off: the entry held, unless it is the one the upstream refused (`failed`),
   * which fails as its refresh did (the caller asks for a sign-in, as after any failed refresh).
   */
  async #held(
    principalKey: string,
    resource: string,
    failed: string | undefined,
    failure: unknown,
  ): Promise<StoredEntry | undefined> {
    const entry = (await this.#deps.vault.get(principalKey, resource)) as StoredEntry | undefined;
    if (entry !== undefined && failed !== undefined && entry.accessToken === failed) throw failure;
    return entry;
  }

  async #refresh(
    principalKey: string,
    resource: string,
    slot: string,
    failed: string | undefined,
    signal: AbortSignal,
  ): Promise<StoredEntry | undefined> {
    const { store, vault, now } = this.#deps;
    const stale = (entry: StoredEntry) => isDue(entry, now()) || entry.accessToken === failed;
    const lock = TokenVault.lock(slot);
    const holder = randomBytes(12).toString('base64url');
    const deadline = now() + REFRESH_LOCK_MS;
    while (!(await store.setIfAbsent(lock, holder, REFRESH_LOCK_MS))) {
      // Another instance refreshes: its result lands in the vault.
      await new Promise((resolve) => setTimeout(resolve, REFRESH_POLL_MS));
      const current = (await vault.get(principalKey, resource)) as StoredEntry | undefined;
      if (!current) return undefined;
      if (!stale(current)) return current;
      if (now() > deadline || signal.aborted) return undefined;
    }
    try {
      // Another instance may have refreshed between our read and the lock.
      const read = await vault.read(principalKey, resource);
      const current = read?.entry as StoredEntry | undefined;
      if (!read || !current) return undefined;
      if (!stale(current)) return current;
      // Compare-and-delete from here on (review F5): only the entry read above is dropped.
      if (current.refreshToken === undefined) {
        await vault.deleteIfSealed(principalKey, resource, read.sealed);
        return undefined;
      }
      let tokens: oauth.TokenEndpointResponse;
      try {
        const grant = { kind: 'refresh_token', refreshToken: current.refreshToken } as const;
        tokens = await requestTokens(this.#deps.fetch, current, grant, signal);
      } catch (cause) {
        const source = { ...current, target: resource };
        const deadClient = await forgetDeadClient(this.#deps, cause, source);
        if (deadClient || (cause instanceof oauth.ResponseBodyError && cause.error === 'invalid_grant')) {
          // Revoked or expired grant, or a client the server forgot: the user signs in again.
          await vault.deleteIfSealed(principalKey, resource, read.sealed);
          return undefined;
        }
        if (cause instanceof ProxyError) throw cause;
        throw new ProxyError(
          'upstream_auth_failed',
          'Refreshing the upstream access token failed: try again shortly.',
          { cause: plainCause(cause) },
        );
      }
      const next = entryFrom(
        {
          target: resource,
          indicator: current.indicator,
          as: current.as,
          client: current.client,
          dynamic: current.dynamic,
          redirectUri: current.redirectUri,
        },
        tokens,
        current.refreshToken,
        now(),
      );
      // Compare-and-set (review6 OAUTH-3): a sign-in completed meanwhile (a step-up, a new grant)
      // is newer than this refresh of the old one; the refresh that lost answers what is there.
      if (await vault.putIfSealed(principalKey, next, read.sealed)) {
        await keepDocumentInUse(store, current.as.issuer, current.client);
        return next;
      }
      return (await vault.get(principalKey, resource)) as StoredEntry | undefined;
    } finally {
      await store.deleteIf(lock, holder);
    }
  }
}
