/**
 * @module virtual/member-view
 * One request's view of a virtual server (issue 20, docs/virtual-servers.md): the members and
 * tools its principal may see, the merged lists (pages gathered by list-gather.ts, under the proxy's
 * cursor), a call, `prompts/get` or read routed to the member its name or URI names, tool
 * search mode, and how a member's failure or missing sign-in becomes part of the answer.
 */
import { createHmac } from 'node:crypto';
import type { VirtualServerSettings } from '../config/virtual-servers.ts';
import type { UpstreamTarget } from '../dispatch/connector.ts';
import type { SessionOwner } from '../dispatch/held-sessions.ts';
import { negotiatedSessionVersion } from '../eras/classify.ts';
import { findProxyError, ProxyError, protocolError, toJsonRpcError } from '../errors.ts';
import {
  asObject,
  type JsonObject,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type RequestId,
} from '../jsonrpc.ts';
import { VERSION } from '../version.ts';
import { type Catalog, PROMPTS, RESOURCES, TOOLS, VIRTUAL_CAPABILITIES } from './catalogs.ts';
import { exposedAnswer } from './client-view.ts';
import { gatherPage, type MemberPage, type SlowListKey, type SlowLists } from './list-gather.ts';
import { memberGrants, visibleMembers } from './member-grants.ts';
import { decodeCursor, encodeCursor, type ListPosition } from './member-names.ts';
import { ambiguousMeta, MemberNaming } from './member-naming.ts';
import type { MemberReply } from './member-requests.ts';
import type { NameClaims } from './name-claims.ts';
import { CALL_TOOL, rankTools, SEARCH_TOOL, searchAnswerText } from './tool-search.ts';
import type { RoutedRequest, VirtualServersDeps } from './virtual-servers.ts';

/** How many merged list pages one search reads at most (a member paging forever ends there). */
const MAX_SEARCH_PAGES = 20;
/** How many tools one search reads at most, over all pages. */
const MAX_SEARCH_TOOLS = 5_000;
/**
 * One search's overall deadline, in list deadlines: each page is already bounded by the virtual
 * server's `listTimeoutMs`, the whole search by this many of them (a page ends there too).
 */
const SEARCH_DEADLINE_LISTS = 3;

/** The `_meta` key of a list result naming the members that could not be listed. */
export const UNAVAILABLE_META = 'io.github.mcp-proxy/unavailable';

/** A member that could not serve an answer, as named in `_meta`. */
export interface Unavailable {
  readonly server: string;
  readonly code: string;
}

/** One request's view of a virtual server: the members and tools its caller may see. */
export class MemberView {
  readonly #name: string;
  readonly #settings: VirtualServerSettings;
  readonly #request: RoutedRequest;
  readonly #deps: VirtualServersDeps;
  readonly #owner: SessionOwner;
  /** The members this caller may reach, in configured order. */
  readonly #members: readonly string[];
  /** The key of the cursors' tags (virtual-servers.ts makes one per process). */
  readonly #cursorSecret: Uint8Array;
  /** How entries are named, and which member a client's name or URI belongs to. */
  readonly #naming: MemberNaming;
  /** Members too slow to list lately (virtual-servers.ts holds them). */
  readonly #slowLists: SlowLists;

  constructor(
    name: string,
    settings: VirtualServerSettings,
    request: RoutedRequest,
    deps: VirtualServersDeps,
    cursorSecret: Uint8Array,
    slowLists: SlowLists,
    claims: NameClaims,
  ) {
    this.#name = name;
    this.#cursorSecret = cursorSecret;
    this.#slowLists = slowLists;
    this.#settings = settings;
    this.#request = request;
    this.#deps = deps;
    const { caller } = request;
    this.#owner = { ownerId: caller.principalKey, rateClass: caller.grants.rateClass };
    this.#members = visibleMembers(settings.servers, caller.grants, (server) =>
      Object.hasOwn(deps.settings(), server),
    );
    this.#naming = new MemberNaming({
      settings,
      name,
      principalKey: caller.principalKey,
      members: this.#members,
      claims,
      page: (member, cursor, catalog, id) => this.#claimPage(member, id, cursor, catalog),
    });
  }

  /**
   * The answer to `initialize`: the proxy's own. Capabilities are what the virtual server routes
   * (tools, prompts, resources; no `listChanged` nor `subscribe`: it has no stream to send one on yet). The members are opened in the
   * background, so the first list finds them ready while a slow one does not hold the handshake.
   */
  initialize(message: JsonRpcRequest): JsonRpcResponse {
    const version = negotiatedSessionVersion(message.params?.protocolVersion);
    for (const member of this.#members) {
      this.#target(member)
        .then((target) =>
          // A member whose credential the broker would supply waits for a real request: warming
          // it would open a session without the user's token, or start a sign-in nobody asked for.
          this.#needsBroker(target) ? undefined : this.#deps.members.session(this.#owner, target),
        )
        .catch(() => {});
    }
    return {
      jsonrpc: '2.0',
      id: message.id,
      result: {
        protocolVersion: version,
        // Whether any member has prompts is only known once it answered: an empty list is harmless.
        capabilities: VIRTUAL_CAPABILITIES,
        serverInfo: { name: this.#name, version: VERSION },
      },
    };
  }

  /**
   * One page of a merged list (tools, prompts, resources, resource templates): the members from
   * the cursor's on, asked together under one deadline (list-gather.ts), names prefixed or URIs
   * mapped. Members that fail are skipped and named in `_meta`. `until` (a search's deadline,
   * `performance.now()` time) shortens the page's deadline.
   */
  async list(
    message: JsonRpcRequest,
    catalog: Catalog,
    until = Number.POSITIVE_INFINITY,
  ): Promise<JsonRpcResponse> {
    const cursor = message.params?.cursor;
    const start: ListPosition | undefined =
      cursor === undefined
        ? { member: 0, cursor: undefined }
        : decodeCursor(cursor, this.#members.length, this.#cursorTag(catalog));
    if (start === undefined) return protocolError(message.id, 'invalid_params', 'Invalid cursor');
    const claims = await this.#naming.claimsOf(catalog, message.id);
    const ambiguous = ambiguousMeta(cursor === undefined ? claims?.ambiguous : undefined);
    // Positions count the caller's visible members only: a cursor tells nothing of hidden ones.
    const members = this.#members;
    const member = (index: number) => members[index] as string;
    const opened = new Set<number>();
    const left = until - performance.now();
    // A member cut off by a search's shorter deadline may well answer within the list's own: only
    // the list's own deadline marks it slow (review7 CREDS-5).
    const ownDeadline = this.#settings.listTimeoutMs <= left;
    const page = await gatherPage({
      start,
      count: members.length,
      ask: (index, memberCursor, signal) =>
        this.#listPage(member(index), message.id, memberCursor, catalog, signal, () => opened.add(index)),
      entries: (index, result) => this.#naming.visible(member(index), result[catalog.field], catalog, claims),
      deadlineMs: Math.min(this.#settings.listTimeoutMs, left),
      signal: this.#request.signal,
    });
    const unavailable = page.unavailable.map(({ index, code }) => {
      if (code === 'upstream_timeout' && ownDeadline && opened.has(index))
        this.#slowLists.add(this.#slowKey(member(index), catalog));
      return this.#dropped(member(index), code);
    });
    return this.#listResult(message.id, catalog, page.items, page.next, unavailable, ambiguous);
  }

  /**
   * A `completion/complete`, sent to the member its reference names: a prompt by its prefixed
   * name, a resource template by its mapped URI, rewritten to the member's own.
   */
  async complete(message: JsonRpcRequest): Promise<JsonRpcResponse> {
    const ref = asObject(message.params?.ref);
    const field = ref.type === 'ref/prompt' ? 'name' : ref.type === 'ref/resource' ? 'uri' : undefined;
    const named = field === undefined ? undefined : ref[field];
    const catalog = field === 'name' ? PROMPTS : RESOURCES;
    const target =
      typeof named !== 'string' ? undefined : await this.#naming.target(named, catalog, message.id);
    if (target === undefined || field === undefined) {
      const shown = typeof named === 'string' ? named : typeof named;
      return protocolError(message.id, 'invalid_params', `Unknown reference: ${shown}`);
    }
    const params = { ...message.params, ref: { ...ref, [field]: target.name } };
    return this.#memberCall(target.member, { ...message, params });
  }

  /**
   * A request for every member that declares `capability` (`logging/setLevel`), answered empty
   * once each answered; a member that could not take it is named in `_meta`.
   */
  async fanOut(message: JsonRpcRequest, capability: 'logging'): Promise<JsonRpcResponse> {
    const unavailable: Unavailable[] = [];
    const send = async (target: UpstreamTarget) => {
      const { initialized } = await this.#deps.members.session(this.#owner, target);
      if (asObject(initialized.capabilities)[capability] === undefined) return undefined;
      return this.#deps.members.call(this.#owner, target, message, this.#request.signal);
    };
    const each = this.#members.map(async (member) => {
      const answer = await this.#reach(member, send).catch((error: unknown) => findProxyError(error));
      const code =
        answer instanceof ProxyError ? answer.code : answer && 'error' in answer ? 'member_error' : '';
      if (code !== '') unavailable.push(this.#dropped(member, code));
    });
    await Promise.all(each);
    const result = unavailable.length === 0 ? {} : { _meta: { [UNAVAILABLE_META]: unavailable } };
    return { jsonrpc: '2.0', id: message.id, result };
  }

  /**
   * A notification for the visible members `pick` chooses, on their sessions for this caller (a
   * member that cannot be reached is skipped: a notification has no answer to fail).
   */
  async notify(message: JsonRpcNotification, pick: (visible: readonly string[]) => string[]): Promise<void> {
    const send = async (target: UpstreamTarget) => {
      const { session } = await this.#deps.members.session(this.#owner, target);
      await session.send(message);
    };
    await Promise.all(pick(this.#members).map((member) => this.#reach(member, send).catch(() => {})));
  }

  /**
   * A `tools/call` in tool search mode: `search_tools` ranks the merged list (every page of
   * every member, one page in memory at a time: only the best `limit` are kept between pages),
   * `call_tool` calls one of them, and a member's tool named directly is still called.
   */
  async searchModeCall(message: JsonRpcRequest): Promise<JsonRpcResponse> {
    const params = message.params ?? {};
    const args = asObject(params.arguments);
    if (params.name === CALL_TOOL) {
      if (typeof args.name !== 'string')
        return protocolError(message.id, 'invalid_params', 'call_tool needs the name of a tool (a string)');
      const call = { ...params, name: args.name, arguments: args.arguments ?? {} };
      return this.callNamed({ ...message, params: call }, TOOLS);
    }
    if (params.name !== SEARCH_TOOL) return this.callNamed(message, TOOLS);
    if (typeof args.query !== 'string')
      return protocolError(message.id, 'invalid_params', 'search_tools needs a query (a string)');
    if (this.#request.searches?.take() === false)
      return toJsonRpcError(new ProxyError('search_limit'), message.id);
    let best: JsonObject[] = [];
    const unavailable: Unavailable[] = [];
    let cursor: string | undefined;
    // A member paging forever, or slowly, must not hold the search: pages, tools read and time
    // are all bounded (each page's own deadline ends at the search's); what was read by then is
    // ranked.
    const deadline = performance.now() + SEARCH_DEADLINE_LISTS * this.#settings.listTimeoutMs;
    let read = 0;
    for (let page = 0; page < MAX_SEARCH_PAGES && read < MAX_SEARCH_TOOLS; page++) {
      if ((page > 0 && performance.now() >= deadline) || this.#request.signal?.aborted) break;
      const request: JsonRpcRequest = {
        jsonrpc: '2.0',
        id: message.id,
        method: 'tools/list',
        params: cursor === undefined ? {} : { cursor },
      };
      const answer = await this.list(request, TOOLS, deadline);
      if (!('result' in answer)) break;
      const tools = (answer.result.tools as JsonObject[]).slice(0, MAX_SEARCH_TOOLS - read);
      read += tools.length;
      best = rankTools([...best, ...tools], args.query, args.limit);
      const meta = answer.result._meta as JsonObject | undefined;
      unavailable.push(...((meta?.[UNAVAILABLE_META] as Unavailable[] | undefined) ?? []));
      cursor = typeof answer.result.nextCursor === 'string' ? answer.result.nextCursor : undefined;
      if (cursor === undefined) break;
    }
    return {
      jsonrpc: '2.0',
      id: message.id,
      result: {
        content: [{ type: 'text', text: searchAnswerText(best) }],
        ...(unavailable.length === 0 ? {} : { _meta: { [UNAVAILABLE_META]: unavailable } }),
      },
    };
  }

  /**
   * A `tools/call` or `prompts/get` of a prefixed name, or a `resources/read` of a mapped URI,
   * sent to its member under the member's own name or URI.
   */
  async callNamed(message: JsonRpcRequest, catalog: Catalog): Promise<JsonRpcResponse> {
    const field = catalog.key === 'name' ? 'name' : 'uri';
    const name = message.params?.[field];
    const target =
      typeof name !== 'string' ? undefined : await this.#naming.target(name, catalog, message.id);
    const allow = catalog === TOOLS ? this.#settings.tools : undefined;
    const allowed = allow === undefined || (typeof name === 'string' && allow.includes(name));
    // As the spec answers an unknown tool: a hidden member's tools look like no tool at all.
    const unknown = () =>
      protocolError(
        message.id,
        'invalid_params',
        `Unknown ${catalog.noun}: ${typeof name === 'string' ? name : typeof name}`,
      );
    if (target === undefined || !allowed) return unknown();
    const forwarded = { ...message, params: { ...message.params, [field]: target.name } };
    // A tool the grants hide is refused here, under the name the client used (the member
    // session's own filter would name the member's).
    const hidden = (resolved: UpstreamTarget) =>
      catalog === TOOLS && resolved.tools !== undefined && !resolved.tools.includes(target.name);
    return this.#memberCall(target.member, forwarded, (resolved) =>
      hidden(resolved) ? unknown() : undefined,
    );
  }

  /**
   * A member's list page; why it has none (the proxy's error code, or `member_error` for an
   * error the member answered: never a code of its own, which could be any text); or undefined
   * for a member that declares no such capability (nothing to list, nothing wrong). `opened` is
   * told once the member's session is open (a member still opening is not remembered as slow).
   */
  async #listPage(
    member: string,
    id: RequestId,
    cursor: string | undefined,
    catalog: Catalog,
    signal: AbortSignal,
    opened: () => void,
  ): Promise<MemberPage> {
    if (this.#slowLists.has(this.#slowKey(member, catalog))) return { code: 'upstream_timeout' };
    try {
      return await this.#reach(
        member,
        async (target) => {
          const { initialized } = await this.#deps.members.session(this.#owner, target);
          opened();
          const capabilities = initialized.capabilities as JsonObject | undefined;
          const declared = capabilities?.[catalog.capability];
          if (typeof declared !== 'object' || declared === null) return undefined;
          const request: JsonRpcRequest = {
            jsonrpc: '2.0',
            id,
            method: catalog.method,
            params: cursor === undefined ? {} : { cursor },
          };
          const answer = await this.#deps.members.call(this.#owner, target, request, signal);
          return 'result' in answer ? { result: answer.result } : { code: 'member_error' };
        },
        undefined,
        false,
      );
    } catch (error) {
      return { code: findProxyError(error)?.code ?? 'internal_error' };
    }
  }

  /** A member's page for reading names' claims (name-claims.ts), within the list deadline. */
  #claimPage(
    member: string,
    id: RequestId,
    cursor: string | undefined,
    catalog: Catalog,
  ): Promise<MemberPage> {
    const deadline = AbortSignal.timeout(this.#settings.listTimeoutMs);
    const caller = this.#request.signal;
    const signal = caller ? AbortSignal.any([caller, deadline]) : deadline;
    const late = new Promise<MemberPage>((resolve) =>
      signal.addEventListener('abort', () => resolve({ code: 'upstream_timeout' }), { once: true }),
    );
    return Promise.race([this.#listPage(member, id, cursor, catalog, signal, () => {}), late]);
  }

  #slowKey(member: string, catalog: Catalog): SlowListKey {
    return [this.#request.caller.principalKey, this.#name, member, catalog.method];
  }

  /** A request to a member; its failure becomes the answer (the error's JSON-RPC form). */
  async #memberCall(
    member: string,
    message: JsonRpcRequest,
    refuse?: (target: UpstreamTarget) => JsonRpcResponse | undefined,
  ): Promise<JsonRpcResponse> {
    try {
      // Resource URIs inside the member's result are the virtual server's, as in its lists.
      const answer = await this.#reach(
        member,
        (target) => {
          const { relay, signal } = this.#request;
          const related = relay && ((m: JsonRpcMessage, reply: MemberReply) => relay(member, m, reply));
          return this.#deps.members.call(this.#owner, target, message, signal, related);
        },
        refuse,
      );
      return exposedAnswer(member, answer, this.#naming.mapping);
    } catch (error) {
      return toJsonRpcError(error, message.id);
    }
  }

  /**
   * Runs `use` on the member, vetted for this caller, with the principal's upstream OAuth token
   * when the broker supplies it (as for a named server: only when neither the operator nor the
   * caller gave a credential). A 401 of the member then asks the principal to sign in to that
   * member only: `upstream_auth_required` is thrown, the other members are not affected.
   * `refuse` may answer first, from the vetted target alone. A list (`offers: false`) only looks
   * in the vault: it starts no sign-in, each of which spends the principal's offer cap.
   */
  async #reach<T>(
    member: string,
    use: (target: UpstreamTarget) => Promise<T>,
    refuse?: (target: UpstreamTarget) => T | undefined,
    offers = true,
  ): Promise<T> {
    const resolved = await this.#target(member);
    // Refused before the broker is asked: a hidden tool of a member the principal has not signed
    // in to is an unknown tool, not a sign-in.
    const early = refuse?.(resolved);
    if (early !== undefined) return early;
    const credentials = this.#deps.credentials;
    if (credentials === undefined || !this.#needsBroker(resolved)) return use(resolved);
    const { principalKey } = this.#request.caller;
    const signal = this.#request.signal;
    let target = await credentials.supply(principalKey, resolved, signal, offers).catch(async (error) => {
      // No token now: a session still held with an ended one must not live on (review7 CREDS-1).
      await this.#deps.members.renew(this.#owner, resolved);
      throw error;
    });
    for (let attempt = 0; ; attempt++) {
      try {
        return await use(target);
      } catch (error) {
        const refusal = findProxyError(error);
        if (refusal?.code !== 'upstream_unauthorized' || refusal.status !== 401) throw error;
        // A refused token is refreshed and the request tried once more, as for a named server
        // (review8 CREDS-3); refused again, or no newer token, asks for a sign-in.
        const renewed = attempt === 0 ? await credentials.renewed(target) : undefined;
        if (renewed === undefined)
          throw await credentials.refused(principalKey, resolved, refusal, signal, offers);
        target = renewed;
      }
    }
  }

  /** Whether the broker (when it runs) supplies this member's credential: none came with it. */
  #needsBroker(target: UpstreamTarget): boolean {
    return (
      this.#deps.credentials !== undefined && target.kind !== 'stdio' && target.bearerToken === undefined
    );
  }

  /** The member vetted for this caller, its tool grant read in the member's own names. */
  async #target(member: string): Promise<UpstreamTarget> {
    const { servers, separator } = this.#settings;
    return this.#deps.resolve(member, memberGrants(this.#request.caller.grants, member, servers, separator));
  }

  /**
   * The tag that binds a cursor to this caller, virtual server, list and visible members: a
   * cursor is only good for the principal it was given to (one it forged or took from another
   * principal is an invalid cursor).
   */
  #cursorTag(catalog: Catalog): (payload: string) => string {
    const bound = [this.#request.caller.principalKey, this.#name, catalog.method, this.#members.join(',')];
    return (payload) =>
      createHmac('sha256', this.#cursorSecret)
        .update(JSON.stringify([...bound, payload]))
        .digest('base64url')
        .slice(0, 22);
  }

  #listResult(
    id: RequestId,
    catalog: Catalog,
    items: JsonObject[],
    next: ListPosition | undefined,
    unavailable: readonly Unavailable[],
    meta: JsonObject = {},
  ): JsonRpcResponse {
    return {
      jsonrpc: '2.0',
      id,
      result: {
        [catalog.field]: items,
        ...(next === undefined ? {} : { nextCursor: encodeCursor(next, this.#cursorTag(catalog)) }),
        ...(unavailable.length === 0 && Object.keys(meta).length === 0
          ? {}
          : { _meta: { ...(unavailable.length === 0 ? {} : { [UNAVAILABLE_META]: unavailable }), ...meta } }),
      },
    };
  }

  /** Logs and counts a member left out of an answer. */
  #dropped(member: string, code: string): Unavailable {
    this.#deps.logger.warn({ virtualServer: this.#name, member, code }, 'virtual server member unavailable');
    this.#deps.onMemberDown?.(code);
    return { server: member, code };
  }
}
