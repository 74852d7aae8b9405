/**
 * @module dispatch/targets
 * Turns what a caller names (a URL with a transport choice, or a configured server's name) into
 * a vetted upstream target. Requests can name URLs; only the operator's config can name commands.
 */
import type { Config } from '../config/config.ts';
import type { EgressGuard } from '../egress/types.ts';
import { ProxyError } from '../errors.ts';
import type { UpstreamTarget } from './connector.ts';
import { VET_CACHE_DEFAULTS, VetCache, type VetCacheOptions } from './vet-cache.ts';

/** Transport choices a caller may make for a URL. */
export const TRANSPORT_CHOICES = ['auto', 'streamable-http', 'sse', 'websocket'] as const;

/** A transport choice. */
export type TransportChoice = (typeof TRANSPORT_CHOICES)[number];

/** What a caller asked for. */
export type TargetRequest =
  | { readonly url: string; readonly transport: TransportChoice; readonly bearerToken?: string | undefined }
  | { readonly server: string; readonly bearerToken?: string | undefined };

/** A vetted target; `http-auto` still has to be probed (Streamable HTTP or legacy SSE). */
export type ResolvedTarget = UpstreamTarget;

/** Resolves caller-named targets against the egress guard and the configured servers. */
export class TargetResolver {
  #servers: Config['servers'];
  readonly #guard: EgressGuard;
  readonly #vetted: VetCache;

  constructor(
    servers: Config['servers'],
    guard: EgressGuard,
    vetCache: VetCacheOptions = VET_CACHE_DEFAULTS,
  ) {
    this.#servers = servers;
    this.#guard = guard;
    this.#vetted = new VetCache(vetCache);
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
    return changed;
  }

  /**
   * Whether a token limited to `allowed` servers (undefined: no limit) may name this target:
   * THE decision, for new requests ({@link TargetResolver.resolve}) and, after a reload, for
   * what is already open ({@link TargetResolver.stillReaches}). A limited token reaches no URL.
   */
  static permits(
    allowed: readonly string[] | undefined,
    request: { server: string } | { url: string },
  ): boolean {
    if (allowed === undefined) return true;
    return 'server' in request && allowed.includes(request.server);
  }

  /**
   * After a reload: whether a token now limited to `allowed` may keep a session, socket or
   * stream open to `targetKey` ({@link TargetResolver.key}), given the server names the reload
   * `changed`. A configured server must still exist, mean the same, and be permitted.
   */
  stillReaches(
    targetKey: string,
    allowed: readonly string[] | undefined,
    changed: ReadonlySet<string>,
  ): boolean {
    const name = /^(?:server|stdio):(.*)$/s.exec(targetKey)?.[1];
    if (name === undefined) return TargetResolver.permits(allowed, { url: targetKey });
    return (
      TargetResolver.permits(allowed, { server: name }) &&
      !changed.has(name) &&
      Object.hasOwn(this.#servers, name)
    );
  }

  /**
   * Vets and classifies a target. `allowed` restricts a token to some configured servers: it
   * then reaches no raw URL, and other names look unknown (their existence is not revealed).
   */
  async resolve(request: TargetRequest, allowed?: readonly string[]): Promise<ResolvedTarget> {
    if (!('server' in request) && !TargetResolver.permits(allowed, request)) {
      throw new ProxyError(
        'target_forbidden',
        'This proxy token may only reach the servers configured for it.',
        {
          data: { reason: 'not_in_allowlist' },
        },
      );
    }
    if ('server' in request) {
      const permitted = TargetResolver.permits(allowed, request);
      const server =
        permitted && Object.hasOwn(this.#servers, request.server) ? this.#servers[request.server] : undefined;
      if (!server) throw new ProxyError('unknown_server', undefined, { data: { server: request.server } });
      if ('command' in server)
        return {
          kind: 'stdio',
          name: request.server,
          server,
          tools: server.tools,
          protocol: server.protocol,
        };
      // The operator's token for this server wins; otherwise the caller's (e.g. its OAuth token).
      const target = await this.#classify(server.url, server.transport, server.token ?? request.bearerToken);
      return { ...target, name: request.server, tools: server.tools, protocol: server.protocol };
    }
    return this.#classify(request.url, request.transport, request.bearerToken);
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
  ): Promise<ResolvedTarget> {
    const url = this.#vetted.get(raw) ?? (await this.#vet(raw));
    const isWs = url.protocol === 'ws:' || url.protocol === 'wss:';
    if (isWs !== (transport === 'websocket') && transport !== 'auto') {
      throw new ProxyError(
        'invalid_target',
        `The transport "${transport}" does not fit a ${url.protocol} URL.`,
      );
    }
    if (isWs) return { kind: 'websocket', url, bearerToken };
    return { kind: transport === 'auto' ? 'http-auto' : transport, url, bearerToken } as ResolvedTarget;
  }

  async #vet(raw: string): Promise<URL> {
    const url = await this.#guard.vet(raw);
    this.#vetted.set(raw, url);
    return url;
  }
}
