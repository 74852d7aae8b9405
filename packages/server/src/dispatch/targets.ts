/**
 * @module dispatch/targets
 * Turns what a caller names (a URL with a transport choice, or a configured server's name) into
 * a vetted upstream target. Requests can name URLs; only the operator's config can name commands.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config/config.ts';
import type { EgressGuard } from '../egress/types.ts';
import { ProxyError } from '../errors.ts';
import { CompiledPatterns } from '../policy/compiled-patterns.ts';
import { permitsTarget, type TargetGrants, visibleTools } from '../policy/grants.ts';
import { matchedForm } from '../policy/url-pattern.ts';
import type { ReachTest } from '../upstream/http.ts';
import type { UpstreamTarget } from './connector.ts';
import { VET_CACHE_DEFAULTS, VetCache, type VetCacheOptions } from './vet-cache.ts';

/** Transport choices a caller may make for a URL. */
export const TRANSPORT_CHOICES = ['auto', 'streamable-http', 'sse', 'websocket'] as const;

/**
 * The longest upstream URL a caller may name, in characters, on every surface (POST /proxy's
 * envelope, /mcp's X-MCP-Server-URL, /ws's query): raw, and as matched against a grant's URL
 * patterns (its parsed form, non-ASCII characters percent-encoded: review11 URLPATTERN-1), which
 * costs its length times theirs (review 11).
 */
export const MAX_TARGET_URL_LENGTH = 2048;

/** A transport choice. */
export type TransportChoice = (typeof TRANSPORT_CHOICES)[number];

/** What a caller asked for. */
export type TargetRequest =
  | { readonly url: string; readonly transport: TransportChoice; readonly bearerToken?: string | undefined }
  | { readonly server: string; readonly bearerToken?: string | undefined };

/** A vetted target; `http-auto` still has to be probed (Streamable HTTP or legacy SSE). */
export type ResolvedTarget = UpstreamTarget;

/** A vetted target reached by URL. */
type UrlTarget = Exclude<ResolvedTarget, { readonly kind: 'stdio' }>;

/**
 * An owner's grants after a reload, as the configuration now says them (identity/reload-reach.ts
 * `grantsAfterReload`), given those it had (`before`): `undefined` when they are not known (then
 * what its reach test is asked is refused) or the owner is gone.
 */
export type GrantsNow = (ownerId: string, before: TargetGrants) => TargetGrants | undefined;

/**
 * Whether a target is a URL its caller named rather than a configured server: only such a
 * target's redirect hops, SSE endpoint and sessions are judged by (and recorded for) the caller's
 * URL grant; a configured server's are the operator's choice (docs/security.md "Redirects").
 */
export function isRawUrlTarget(target: { readonly name?: string | undefined }): boolean {
  return target.name === undefined;
}

/** Resolves caller-named targets against the egress guard and the configured servers. */
export class TargetResolver {
  #servers: Config['servers'];
  readonly #guard: EgressGuard;
  readonly #vetted: VetCache;
  readonly #patterns = new CompiledPatterns();
  readonly #grantsNow: GrantsNow;
  /** How many reloads have replaced the servers: a reach test made before one judges anew. */
  #generation = 0;

  constructor(
    servers: Config['servers'],
    guard: EgressGuard,
    vetCache: VetCacheOptions = VET_CACHE_DEFAULTS,
    grantsNow: GrantsNow = () => undefined,
  ) {
    this.#servers = servers;
    this.#guard = guard;
    this.#vetted = new VetCache(vetCache);
    this.#grantsNow = grantsNow;
  }

  /** Forgets the URLs the guard accepted earlier: call it whenever the egress policy changes. */
  forgetVetted(): void {
    this.#vetted.clear();
  }

  /**
   * Replaces the configured servers (configuration reload). Returns the names that were removed
   * or now mean something else (another URL, command, token, tool list…): what is open to them
   * must end, see {@link TargetResolver.stillReaches}.
   */
  replaceServers(servers: Config['servers']): ReadonlySet<string> {
    const changed = new Set<string>();
    for (const [name, server] of Object.entries(this.#servers)) {
      const next = Object.hasOwn(servers, name) ? servers[name] : undefined;
      if (JSON.stringify(next) !== JSON.stringify(server)) changed.add(name);
    }
    this.#servers = servers;
    this.#generation++;
    return changed;
  }

  /**
   * Whether a principal with these grants may name this target: for new requests
   * ({@link TargetResolver.resolve}) and, after a reload, for what is already open
   * ({@link TargetResolver.stillReaches}). The rule itself is policy/grants.ts's.
   */
  #permits(grants: TargetGrants | undefined, request: { server: string } | { url: string }): boolean {
    return permitsTarget(grants, request, this.#patterns);
  }

  /**
   * Whether a principal with these grants may reach the URL `raw`: the one rule for the URL a
   * caller names ({@link TargetResolver.resolve}), every URL an upstream then sends the proxy on
   * to (redirect hops, an SSE endpoint: the target's `mayReach`), and what stays open after a
   * reload. Judged by URL patterns, a URL must also be one whose path the patterns read as the
   * upstream will ({@link unjudgeable}).
   */
  #reaches(grants: TargetGrants | undefined, raw: string): boolean {
    if (grants?.urls !== undefined && unjudgeable(raw, true) !== undefined) return false;
    return this.#permits(grants, { url: raw });
  }

  /**
   * The reach test a raw URL target carries for `ownerId` with these grants (see
   * upstream/http.ts `ReachTest`), or none when no URL grant limits where it may go: then the
   * egress guard alone vets redirects and SSE endpoints, as for configured servers. Asked after
   * a reload (a hop answered later), it judges by the owner's grants of now, and refuses when
   * they are not known (review15 URLPATTERN-2).
   */
  #reachTest(grants: TargetGrants | undefined, ownerId: string | undefined): ReachTest | undefined {
    if (grants?.urls === undefined) return undefined;
    const made = this.#generation;
    return (url) => {
      if (made === this.#generation) return this.#reaches(grants, url.href);
      const now = ownerId === undefined ? undefined : this.#grantsNow(ownerId, grants);
      return now !== undefined && this.#reaches(now, url.href);
    };
  }

  /**
   * After a reload: whether a principal with these grants may keep a session, socket or
   * stream open to `targetKey` ({@link TargetResolver.key}), given the server names the reload
   * `changed`. A configured server must still exist, mean the same, and be permitted.
   */
  stillReaches(targetKey: string, grants: TargetGrants | undefined, changed: ReadonlySet<string>): boolean {
    const name = /^(?:server|stdio):(.*)$/s.exec(targetKey)?.[1];
    if (name === undefined) return this.#reaches(grants, targetKey);
    return (
      this.#permits(grants, { server: name }) && !changed.has(name) && Object.hasOwn(this.#servers, name)
    );
  }

  /**
   * Vets and classifies a target for a principal (`ownerId`) with these grants: a configured server they do
   * not name looks unknown (its existence is not revealed), a raw URL they do not allow is
   * `forbidden_server`. The target's tool allowlist is its server's narrowed by the grants. A
   * raw URL target carries its reach test (`mayReach`, {@link TargetResolver.#reachTest}) and
   * its grant's digest (`urlGrant`); a configured server none: where its redirects and SSE endpoint lead is the operator's choice,
   * within the egress policy.
   */
  async resolve(request: TargetRequest, grants?: TargetGrants, ownerId?: string): Promise<ResolvedTarget> {
    if ('url' in request) refuseUnjudgeable(request.url, grants?.urls !== undefined);
    if (!('server' in request) && !this.#permits(grants, request)) {
      throw new ProxyError('forbidden_server', undefined, { data: { reason: 'not_in_allowlist' } });
    }
    const tools = grants?.tools;
    if ('server' in request) {
      const exists = Object.hasOwn(this.#servers, request.server);
      const server = exists ? this.#servers[request.server] : undefined;
      if (!server) throw new ProxyError('unknown_server', undefined, { data: { server: request.server } });
      if (!this.#permits(grants, request)) {
        // Answered as unknown; the audit trail reads the refusal from the cause.
        throw new ProxyError('unknown_server', undefined, {
          data: { server: request.server },
          cause: new ProxyError('forbidden_server'),
        });
      }
      if ('command' in server)
        return {
          kind: 'stdio',
          name: request.server,
          server,
          tools: visibleTools(server.tools, tools),
          protocol: server.protocol,
        };
      // The operator's token for this server wins; otherwise the caller's (e.g. its OAuth token).
      const target = await this.#classify(server.url, server.transport, server.token ?? request.bearerToken);
      return {
        ...target,
        name: request.server,
        tools: visibleTools(server.tools, tools),
        protocol: server.protocol,
      };
    }
    const target = await this.#classify(request.url, request.transport, request.bearerToken);
    const mayReach = this.#reachTest(grants, ownerId);
    if (mayReach === undefined) return tools === undefined ? target : { ...target, tools };
    return { ...target, tools, mayReach, urlGrant: digestOfUrls(grants?.urls) };
  }

  /**
   * What sessions bind to (sealed ids, held and pooled sessions): never contains a token. A
   * configured server is keyed by its name, not its URL: the route decides the operator's token
   * and tool allowlist per request, so a session opened by name must not be driven by URL (issue
   * 14, review of finding 2), nor the reverse.
   */
  static key(target: ResolvedTarget): string {
    // The reload check (stillReaches) reads a configured server's name back out of these keys.
    if (target.kind === 'stdio') return `stdio:${target.name}`;
    return target.name === undefined ? target.url.href : `server:${target.name}`;
  }

  /**
   * The key a request's target will have, before it is vetted, for the reload check only: a
   * configured server's key names it as {@link TargetResolver.key} does; a URL stays as given.
   */
  static requestKey(request: TargetRequest): string {
    return 'server' in request ? `server:${request.server}` : request.url;
  }

  async #classify(
    raw: string,
    transport: TransportChoice,
    bearerToken: string | undefined,
  ): Promise<UrlTarget> {
    const url = this.#vetted.get(raw) ?? (await this.#vet(raw));
    const isWs = url.protocol === 'ws:' || url.protocol === 'wss:';
    if (isWs !== (transport === 'websocket') && transport !== 'auto') {
      throw new ProxyError(
        'invalid_target',
        `The transport "${transport}" does not fit a ${url.protocol} URL.`,
      );
    }
    if (isWs) return { kind: 'websocket', url, bearerToken };
    return { kind: transport === 'auto' ? 'http-auto' : transport, url, bearerToken } as UrlTarget;
  }

  async #vet(raw: string): Promise<URL> {
    const url = await this.#guard.vet(raw);
    this.#vetted.set(raw, url);
    return url;
  }
}

/**
 * The digest of a URL grant (its patterns, in order), which a held or pooled session records:
 * sessions are a principal's, and its tokens may carry different grants (review14 URLPATTERN-2).
 */
export function digestOfUrls(urls: readonly string[] | undefined): string | undefined {
  return urls === undefined
    ? undefined
    : createHash('sha256').update(JSON.stringify(urls)).digest('base64url');
}

/**
 * Why a raw target URL cannot be judged, if it cannot: over {@link MAX_TARGET_URL_LENGTH}, as
 * given or as patterns read it (any caller); or, when URL patterns judge it (`byPatterns`), with
 * a path an upstream may read as another path than the one matched (review12 URLPATTERN-1): a
 * `/` or `\` percent-encoded (`/public/..%2Fadmin`: nginx decodes it, then resolves the `..`), or a
 * segment `..;` / `.;` (servlet containers drop what follows `;` and resolve what is left), dots
 * or `;` encoded or not. A caller no pattern limits may name such a path (`/group%2Fproject`).
 */
function unjudgeable(raw: string, byPatterns: boolean): 'too_long' | 'unclear_path' | undefined {
  const form = matchedForm(raw);
  if (raw.length > MAX_TARGET_URL_LENGTH || (form?.length ?? 0) > MAX_TARGET_URL_LENGTH) return 'too_long';
  if (!byPatterns) return undefined;
  const path = form?.slice(form.indexOf('/', form.indexOf('//') + 2)) ?? '';
  if (/%2F|%5C/.test(path) || /\/(?:\.|%2E){1,2}(?:;|%3B)/.test(path)) return 'unclear_path';
  return undefined;
}

/** Refuses a raw target URL that {@link unjudgeable} says cannot be judged, before any matching. */
function refuseUnjudgeable(raw: string, byPatterns: boolean): void {
  const why = unjudgeable(raw, byPatterns);
  if (why === 'too_long') {
    // Worded as POST /proxy's envelope words it.
    throw new ProxyError(
      'invalid_envelope',
      `Invalid proxy envelope: mcp_server_url is longer than ${MAX_TARGET_URL_LENGTH} characters (counted with its non-ASCII characters percent-encoded).`,
      { data: { field: 'mcp_server_url' } },
    );
  }
  if (why === 'unclear_path') {
    throw new ProxyError(
      'invalid_target',
      'The MCP server URL has an encoded "/" or "\\" (%2F, %5C) or a segment starting "..;" or ".;" in its path, which a server may read as another path than the one your URL grant matched: name the path plainly.',
    );
  }
}
