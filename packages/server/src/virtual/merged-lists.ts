/**
 * @module virtual/merged-lists
 * One request's pages of a virtual server's merged lists (tools, prompts, resources, resource
 * templates; docs/virtual-servers.md): the caller's visible members asked together from the
 * cursor's on (list-gather.ts), their entries named as the client sees them (member-naming.ts),
 * under a cursor bound to the caller; a member that fails is left out and named in `_meta`, and
 * one too slow is remembered as such a while.
 */
import { createHmac } from 'node:crypto';
import { findProxyError, protocolError } from '../errors.ts';
import type { JsonObject, JsonRpcRequest, JsonRpcResponse, RequestId } from '../jsonrpc.ts';
import type { Catalog } from './catalogs.ts';
import { gatherPage, type MemberPage, type SlowListKey, type SlowLists } from './list-gather.ts';
import { decodeCursor, encodeCursor, type ListPosition } from './member-names.ts';
import { ambiguousMeta, type MemberNaming } from './member-naming.ts';
import type { MemberReach, ReachContext } from './member-reach.ts';

/** The `_meta` key of a list result naming the members that could not be listed. */
export const UNAVAILABLE_META = 'io.github.mcp-proxy/unavailable';

/** A member that could not serve an answer, as named in `_meta`. */
export interface Unavailable {
  readonly server: string;
  readonly code: string;
}

/** What one request's lists need of its view (member-view.ts). */
export interface ListsContext extends ReachContext {
  /** The virtual server's name. */
  readonly name: string;
  /** The members this caller may reach, in configured order. */
  readonly members: readonly string[];
  /** The key of the cursors' tags (virtual-servers.ts makes one per process). */
  readonly cursorSecret: Uint8Array;
  /** Members too slow to list lately (virtual-servers.ts holds them). */
  readonly slowLists: SlowLists;
  readonly naming: MemberNaming;
  readonly reach: MemberReach;
}

/** One request's merged lists of a virtual server. */
export class MergedLists {
  readonly #context: ListsContext;

  constructor(context: ListsContext) {
    this.#context = context;
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
    const { members, naming, settings, request } = this.#context;
    const cursor = message.params?.cursor;
    const start: ListPosition | undefined =
      cursor === undefined
        ? { member: 0, cursor: undefined }
        : decodeCursor(cursor, members.length, this.#cursorTag(catalog));
    if (start === undefined) return protocolError(message.id, 'invalid_params', 'Invalid cursor');
    const claims = await naming.claimsOf(catalog, message.id);
    const ambiguous = ambiguousMeta(cursor === undefined ? claims?.ambiguous : undefined);
    // Positions count the caller's visible members only: a cursor tells nothing of hidden ones.
    const member = (index: number) => members[index] as string;
    const opened = new Set<number>();
    const left = until - performance.now();
    // A member cut off by a search's shorter deadline may well answer within the list's own: only
    // the list's own deadline marks it slow (review7 CREDS-5).
    const ownDeadline = settings.listTimeoutMs <= left;
    const page = await gatherPage({
      start,
      count: members.length,
      ask: (index, memberCursor, signal) =>
        this.#listPage(member(index), message.id, memberCursor, catalog, signal, () => opened.add(index)),
      entries: (index, result) => naming.visible(member(index), result[catalog.field], catalog, claims),
      deadlineMs: Math.min(settings.listTimeoutMs, left),
      signal: request.signal,
    });
    const unavailable = page.unavailable.map(({ index, code }) => {
      if (code === 'upstream_timeout' && ownDeadline && opened.has(index))
        this.#context.slowLists.add(this.#slowKey(member(index), catalog));
      return this.dropped(member(index), code);
    });
    return this.#listResult(message.id, catalog, page.items, page.next, unavailable, ambiguous);
  }

  /** A member's page for reading names' claims (name-claims.ts), within the list deadline. */
  claimPage(
    member: string,
    id: RequestId,
    cursor: string | undefined,
    catalog: Catalog,
  ): Promise<MemberPage> {
    const deadline = AbortSignal.timeout(this.#context.settings.listTimeoutMs);
    const caller = this.#context.request.signal;
    const signal = caller ? AbortSignal.any([caller, deadline]) : deadline;
    const late = new Promise<MemberPage>((resolve) =>
      signal.addEventListener('abort', () => resolve({ code: 'upstream_timeout' }), { once: true }),
    );
    return Promise.race([this.#listPage(member, id, cursor, catalog, signal, () => {}), late]);
  }

  /** Logs and counts a member left out of an answer. */
  dropped(member: string, code: string): Unavailable {
    const { deps, name } = this.#context;
    deps.logger.warn({ virtualServer: name, member, code }, 'virtual server member unavailable');
    deps.onMemberDown?.(code);
    return { server: member, code };
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
    const { deps, owner, reach } = this.#context;
    if (this.#context.slowLists.has(this.#slowKey(member, catalog))) return { code: 'upstream_timeout' };
    try {
      return await reach.reach(
        member,
        async (target) => {
          const { initialized } = await deps.members.session(owner, target);
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
          const answer = await deps.members.call(owner, target, request, signal);
          return 'result' in answer ? { result: answer.result } : { code: 'member_error' };
        },
        undefined,
        false,
      );
    } catch (error) {
      return { code: findProxyError(error)?.code ?? 'internal_error' };
    }
  }

  #slowKey(member: string, catalog: Catalog): SlowListKey {
    return [this.#context.request.caller.principalKey, this.#context.name, member, catalog.method];
  }

  /**
   * The tag that binds a cursor to this caller, virtual server, list and visible members: a
   * cursor is only good for the principal it was given to (one it forged or took from another
   * principal is an invalid cursor).
   */
  #cursorTag(catalog: Catalog): (payload: string) => string {
    const { request, name, members, cursorSecret } = this.#context;
    const bound = [request.caller.principalKey, name, catalog.method, members.join(',')];
    return (payload) =>
      createHmac('sha256', cursorSecret)
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
}
