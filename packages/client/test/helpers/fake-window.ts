/**
 * A stand-in for the page's `window` in Node: records the popups `authorize()` opens and what
 * the client posts to them, and delivers `message` events as a browser would (with the origin
 * and source the test says). The real browser runs in browser-oauth.test.ts.
 */
import type { SignInMessageEvent, SignInPopup, SignInWindow } from '../../src/index.ts';

/** A popup the fake window opened. */
export class FakePopup implements SignInPopup {
  readonly url: string;
  readonly target: string;
  readonly features: string;
  /** What the client posted to it, in order. */
  readonly posted: Array<{ readonly message: unknown; readonly targetOrigin: string }> = [];
  closed = false;
  /** Called on each postMessage (after recording it). */
  onmessage: ((message: unknown, targetOrigin: string) => void) | undefined;

  constructor(url: string, target: string, features: string) {
    this.url = url;
    this.target = target;
    this.features = features;
  }

  postMessage(message: unknown, targetOrigin: string): void {
    this.posted.push({ message, targetOrigin });
    this.onmessage?.(message, targetOrigin);
  }

  close(): void {
    this.closed = true;
  }
}

/** The fake window. */
export class FakeWindow implements SignInWindow {
  readonly #listeners = new Set<(event: SignInMessageEvent) => void>();
  /** Every popup opened, oldest first. */
  readonly opened: FakePopup[] = [];
  /** When true, `open` returns null as a popup blocker does. */
  blocked = false;
  /** Called with each popup just opened. */
  onopen: ((popup: FakePopup) => void) | undefined;

  open(url: string, target: string, features: string): FakePopup | null {
    if (this.blocked) return null;
    const popup = new FakePopup(url, target, features);
    this.opened.push(popup);
    this.onopen?.(popup);
    return popup;
  }

  addEventListener(_type: 'message', listener: (event: SignInMessageEvent) => void): void {
    this.#listeners.add(listener);
  }

  removeEventListener(_type: 'message', listener: (event: SignInMessageEvent) => void): void {
    this.#listeners.delete(listener);
  }

  /** How many message listeners are registered (0 once every sign-in settled). */
  get listeners(): number {
    return this.#listeners.size;
  }

  /** Delivers a `message` event to every listener. */
  dispatch(event: SignInMessageEvent): void {
    for (const listener of [...this.#listeners]) listener(event);
  }
}
