/**
 * @module virtual/member-view
 * One request's view of a virtual server (issue 20, docs/virtual-servers.md): the members and
 * tools its principal may see, the merged lists (merged-lists.ts), a call, `prompts/get` or read
 * routed to the member its name or URI names (reached as member-reach.ts says), tool search mode,
 * and how a member's failure or missing sign-in becomes part of the answer.
 */
import type { VirtualServerSettings } from '../config/virtual-servers.ts';
import type { UpstreamTarget } from '../dispatch/connector.ts';
import type { SessionOwner } from '../dispatch/held-sessions.ts';
import { negotiatedSessionVersion } from '../eras/classify.ts';
import { findProxyError, ProxyError, protocolError, toJsonRpcError } from '../errors.ts';
import type {
  JsonObject,
  JsonRpcMessage,
  JsonRpcNotification,
  JsonRpcRequest,
  JsonRpcResponse,
} from '../jsonrpc.ts';
import { asObject } from '../jsonrpc.ts';
import { VERSION } from '../version.ts';
import { type Catalog, PROMPTS, RESOURCES, TOOLS, VIRTUAL_CAPABILITIES } from './catalogs.ts';
import { exposedAnswer } from './client-view.ts';
import type { SlowLists } from './list-gather.ts';
import { visibleMembers } from './member-grants.ts';
import { MemberNaming } from './member-naming.ts';
import { MemberReach } from './member-reach.ts';
import type { MemberReply } from './member-requests.ts';
import { MergedLists, UNAVAILABLE_META, type Unavailable } from './merged-lists.ts';
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

/** One request's view of a virtual server: the members and tools its caller may see. */
export class MemberView {
  readonly #name: string;
  readonly #settings: VirtualServerSettings;
  readonly #request: RoutedRequest;
  readonly #deps: VirtualServersDeps;
  readonly #owner: SessionOwner;
  /** The members this caller may reach, in configured order. */
  readonly #members: readonly string[];
  /** How entries are named, and which member a client's name or URI belongs to. */
  readonly #naming: MemberNaming;
  readonly #reach: MemberReach;
  readonly #lists: MergedLists;

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
    this.#settings = settings;
    this.#request = request;
    this.#deps = deps;
    const { caller } = request;
    const owner = { ownerId: caller.principalKey, rateClass: caller.grants.rateClass };
    this.#owner = owner;
    const members = visibleMembers(settings.servers, caller.grants, (server) =>
      Object.hasOwn(deps.settings(), server),
    );
    this.#members = members;
    this.#reach = new MemberReach({ settings, request, deps, owner });
    const naming = new MemberNaming({
      settings,
      name,
      principalKey: caller.principalKey,
      members,
      claims,
      page: (member, cursor, catalog, id) => this.#lists.claimPage(member, id, cursor, catalog),
    });
    this.#naming = naming;
    const reach = this.#reach;
    const context = { name, settings, request, deps, owner, members, cursorSecret, slowLists, naming, reach };
    this.#lists = new MergedLists(context);
  }

  /**
   * The answer to `initialize`: the proxy's own. Capabilities are what the virtual server routes
   * (tools, prompts, resources; no `listChanged` nor `subscribe`: it has no stream to send one on yet). The members are opened in the
   * background, so the first list finds them ready while a slow one does not hold the handshake.
   */
  initialize(message: JsonRpcRequest): JsonRpcResponse {
    const version = negotiatedSessionVersion(message.params?.protocolVersion);
    for (const member of this.#members) {
      this.#reach
        .target(member)
        .then((target) =>
          // A member whose credential the broker would supply waits for a real request: warming
          // it would open a session without the user's token, or start a sign-in nobody asked for.
          this.#reach.needsBroker(target) ? undefined : this.#deps.members.session(this.#owner, target),
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

  /** One page of a merged list ({@link MergedLists.list}; `until`: a search's deadline). */
  list(message: JsonRpcRequest, catalog: Catalog, until?: number): Promise<JsonRpcResponse> {
    return this.#lists.list(message, catalog, until);
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
      const answer = await this.#reach.reach(member, send).catch((error: unknown) => findProxyError(error));
      const code =
        answer instanceof ProxyError ? answer.code : answer && 'error' in answer ? 'member_error' : '';
      if (code !== '') unavailable.push(this.#lists.dropped(member, code));
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
    await Promise.all(pick(this.#members).map((member) => this.#reach.reach(member, send).catch(() => {})));
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

  /** A request to a member; its failure becomes the answer (the error's JSON-RPC form). */
  async #memberCall(
    member: string,
    message: JsonRpcRequest,
    refuse?: (target: UpstreamTarget) => JsonRpcResponse | undefined,
  ): Promise<JsonRpcResponse> {
    try {
      // Resource URIs inside the member's result are the virtual server's, as in its lists.
      const answer = await this.#reach.reach(
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
}
