/**
 * @module events
 * The client's typed listeners: `notification` for every server notification, or one
 * notification method by name (its params only).
 */
import type { NotificationMap, ServerNotification } from './types.ts';

/** Event name → what its listeners receive. */
export type ClientEventMap = { notification: ServerNotification } & {
  [M in keyof NotificationMap]: NotificationMap[M];
};

/** A listener for event `E`. */
export type Listener<E extends keyof ClientEventMap> = (payload: ClientEventMap[E]) => void;

type AnyListener = (payload: unknown) => void;

/** A small typed emitter; one per client, no shared state. */
export class Emitter {
  readonly #listeners = new Map<string, Set<AnyListener>>();

  /** Adds `listener` for `event`; returns a function that removes it. */
  on<E extends keyof ClientEventMap>(event: E, listener: Listener<E>): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener as AnyListener);
    return () => this.off(event, listener);
  }

  /** Removes `listener` from `event`. */
  off<E extends keyof ClientEventMap>(event: E, listener: Listener<E>): void {
    this.#listeners.get(event)?.delete(listener as AnyListener);
  }

  /** Delivers a notification to `notification` listeners, then to its method's listeners. */
  emit(notification: ServerNotification): void {
    this.#call('notification', notification);
    this.#call(notification.method, notification.params);
  }

  /** Drops every listener. */
  clear(): void {
    this.#listeners.clear();
  }

  /** Calls `listener`; a throw is reported asynchronously (like EventTarget) instead of breaking the caller. */
  static safely<T>(listener: (payload: T) => void, payload: T): void {
    try {
      listener(payload);
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  #call(event: string, payload: unknown): void {
    // A failing listener must not break delivery to the others.
    for (const listener of [...(this.#listeners.get(event) ?? [])]) Emitter.safely(listener, payload);
  }
}
