/**
 * @module eras/listens
 * The `subscriptions/listen` streams a modern (2026-07-28) client holds open through the era
 * facade in front of a session-era server: which notifications each asked for, as far as the
 * server can honour them, and the session's notifications mapped onto them (stamped with the
 * listen's id, as a modern server stamps them).
 */
import {
  asObject,
  type JsonObject,
  type JsonRpcNotification,
  type RequestId,
  requestKey,
} from '../jsonrpc.ts';
import { META } from './classify.ts';

/** One `subscriptions/listen` being served. */
export interface Listen {
  readonly id: RequestId;
  /** What it asked for and the server can honour (the `notifications` of the acknowledgement). */
  readonly filter: JsonObject;
}

/** The listens open on one facade, by request id. */
export class ListenTable {
  readonly #listens = new Map<string, Listen>();

  /** Number of listens open. */
  get size(): number {
    return this.#listens.size;
  }

  /**
   * What a listen asking for `asked` gets from a server with `capabilities`: only the list
   * changes it announces, resource updates only when it supports subscriptions.
   */
  static filterFor(asked: JsonObject, capabilities: JsonObject): JsonObject {
    const listChanged = (name: string) => asObject(capabilities[name]).listChanged === true;
    const filter: JsonObject = {};
    if (asked.toolsListChanged === true && listChanged('tools')) filter.toolsListChanged = true;
    if (asked.promptsListChanged === true && listChanged('prompts')) filter.promptsListChanged = true;
    if (asked.resourcesListChanged === true && listChanged('resources')) filter.resourcesListChanged = true;
    const uris = Array.isArray(asked.resourceSubscriptions)
      ? asked.resourceSubscriptions.filter((uri): uri is string => typeof uri === 'string')
      : [];
    if (uris.length > 0 && asObject(capabilities.resources).subscribe === true) {
      filter.resourceSubscriptions = uris;
    }
    return filter;
  }

  /** Opens a listen. */
  add(listen: Listen): void {
    this.#listens.set(requestKey(listen.id), listen);
  }

  /** Ends the listen opened by `id`, returning it (undefined when there was none). */
  remove(id: RequestId): Listen | undefined {
    const key = requestKey(id);
    const listen = this.#listens.get(key);
    this.#listens.delete(key);
    return listen;
  }

  /** The resources some open listen still watches. */
  watched(): Set<string> {
    return new Set([...this.#listens.values()].flatMap((listen) => urisOf(listen.filter)));
  }

  /** `message` as each listen that wants it receives it (none: nobody listens for it). */
  stamped(message: JsonRpcNotification): JsonRpcNotification[] {
    return [...this.#listens.values()]
      .filter((listen) => wants(listen.filter, message))
      .map((listen) => ({
        ...message,
        params: {
          ...message.params,
          _meta: { ...asObject(message.params?._meta), [META.subscriptionId]: listen.id },
        },
      }));
  }
}

/** The resources a listen's filter watches. */
export function urisOf(filter: JsonObject): string[] {
  return Array.isArray(filter.resourceSubscriptions) ? (filter.resourceSubscriptions as string[]) : [];
}

function wants(filter: JsonObject, message: JsonRpcNotification): boolean {
  switch (message.method) {
    case 'notifications/tools/list_changed':
      return filter.toolsListChanged === true;
    case 'notifications/prompts/list_changed':
      return filter.promptsListChanged === true;
    case 'notifications/resources/list_changed':
      return filter.resourcesListChanged === true;
    case 'notifications/resources/updated':
      // A uri that is not a string (an object whose toString is not a function throws in
      // String()) matches no subscription.
      return typeof message.params?.uri === 'string' && urisOf(filter).includes(message.params.uri);
    default:
      return false;
  }
}
