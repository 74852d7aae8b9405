/**
 * @module call-options
 * What each call of the client accepts besides its params: a signal, a deadline, a progress
 * listener, a page cursor; and the listings `iterate()` walks, page by page.
 */
import { MCPProxyError } from './errors.ts';
import { invalid } from './options.ts';
import type {
  CompleteParams,
  Cursor,
  NotificationMap,
  ParamsOf,
  Prompt,
  Resource,
  ResourceTemplate,
  Tool,
} from './types.ts';

/** Options every call accepts. */
export interface RequestOptions {
  /** Cancels the call; it then rejects with the signal's `reason` (like `fetch`). */
  signal?: AbortSignal | undefined;
  /** Deadline for this call in ms (default: the client's `timeoutMs`; 0 = none). */
  timeoutMs?: number | undefined;
  /**
   * Receives this call's progress notifications: the client sends a `_meta.progressToken` and
   * routes the matching `notifications/progress` here. Streaming transports only.
   */
  onprogress?: ((progress: NotificationMap['notifications/progress']) => void) | undefined;
}

/** Options of the list methods: a call's options plus the page to fetch. */
export interface ListOptions extends RequestOptions {
  /** The `nextCursor` of the previous page. */
  cursor?: Cursor | undefined;
}

/** Options of `MCPProxyClient.complete`. */
export interface CompleteOptions extends RequestOptions {
  /** Values of other, already chosen arguments. */
  context?: CompleteParams['context'] | undefined;
}

/** Arguments of `request(method, …)`: params are required exactly when the spec requires them. */
export type RequestArgs<M extends string> =
  undefined extends ParamsOf<M>
    ? [params?: ParamsOf<M>, options?: RequestOptions | undefined]
    : [params: ParamsOf<M>, options?: RequestOptions | undefined];

/** What `MCPProxyClient.iterate` can walk, and the item type of each. */
export interface Listings {
  tools: Tool;
  resources: Resource;
  resourceTemplates: ResourceTemplate;
  prompts: Prompt;
}

/** The list method of each listing. */
export const LIST_METHODS = Object.freeze({
  tools: 'tools/list',
  resources: 'resources/list',
  resourceTemplates: 'resources/templates/list',
  prompts: 'prompts/list',
} as const);

/** The params of a list request for the page at `cursor` (none for the first page). */
export function page(options: { cursor?: Cursor | undefined } | undefined): { cursor: Cursor } | undefined {
  return options?.cursor === undefined ? undefined : { cursor: options.cursor };
}

/** Asks for one page of a listing: the client's `request()`, with its sign-in retry. */
export type PageRequest = (
  method: (typeof LIST_METHODS)[keyof Listings],
  params: { cursor: Cursor } | undefined,
) => Promise<Record<string, unknown>>;

/**
 * Every item of the `kind` listing, one page at a time through `list`. A page without the
 * listing's array, or a cursor the server already gave, fails with `invalid_response`.
 */
export async function* walkListing<K extends keyof Listings>(
  kind: K,
  list: PageRequest,
): AsyncGenerator<Listings[K], void> {
  const method: (typeof LIST_METHODS)[keyof Listings] = LIST_METHODS[kind];
  if (method === undefined) throw invalid('kind', `must be one of ${Object.keys(LIST_METHODS).join(', ')}`);
  const seen = new Set<string>();
  let cursor: string | undefined;
  do {
    const result = await list(method, page({ cursor }));
    const items = result[kind];
    if (!Array.isArray(items)) {
      throw new MCPProxyError('invalid_response', `The ${method} result has no "${kind}" array.`);
    }
    yield* items as Listings[K][];
    cursor = typeof result.nextCursor === 'string' ? result.nextCursor : undefined;
    // A server repeating a cursor would loop forever; stop it (every loop bounded).
    if (cursor !== undefined && seen.has(cursor)) {
      throw new MCPProxyError('invalid_response', `${method} returned the cursor ${cursor} twice.`);
    }
    if (cursor !== undefined) seen.add(cursor);
  } while (cursor !== undefined);
}
