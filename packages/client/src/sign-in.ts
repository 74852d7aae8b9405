/**
 * @module sign-in
 * The opener's side of the proxy's sign-in popup (the proxy's docs/oauth.md, "The browser
 * side"): open the one-time start page, hand it the client's proxy credential when — and only
 * when — it asks from the proxy's origin and from that very popup, then wait for the callback
 * page's result. Browser-only in practice; the window is passed in so it can be any window (an
 * iframe's, a test double's).
 */
import { SignInError } from './errors.ts';
import { isObject } from './json.ts';

/** What the start page posts to its opener to ask for the caller's proxy credential. */
export const BIND_REQUEST_TYPE = 'mcp-proxy:oauth-bind';
/** What the opener answers the start page with (to the proxy's origin only). */
export const BIND_REPLY_TYPE = 'mcp-proxy:oauth-credential';
/** What the callback page posts to its opener when the sign-in ended. */
export const RESULT_TYPE = 'mcp-proxy:oauth';

/** How often a closed popup is looked for: browsers fire no event when a cross-origin popup closes. */
const CLOSED_POLL_MS = 300;
/**
 * The callback page posts its result, then closes itself: the closed flag may be seen before the
 * message is dispatched (different task sources), so a close waits this long for a late result.
 */
const CLOSED_GRACE_MS = 1000;

/** The popup `window.open` returned (a `WindowProxy` fits). */
export interface SignInPopup {
  readonly closed: boolean;
  postMessage(message: unknown, targetOrigin: string): void;
  close(): void;
}

/** A `message` event as far as the client reads it. */
export interface SignInMessageEvent {
  readonly origin: string;
  readonly source: unknown;
  readonly data: unknown;
}

/** The window that opens sign-in popups and receives their messages (the page's `window` fits). */
export interface SignInWindow {
  open(url: string, target: string, features: string): SignInPopup | null;
  addEventListener(type: 'message', listener: (event: SignInMessageEvent) => void): void;
  removeEventListener(type: 'message', listener: (event: SignInMessageEvent) => void): void;
}

/** What a finished sign-in tells. */
export interface SignInResult {
  /** The MCP server the user signed in to, as the proxy names it. */
  readonly server: string | undefined;
}

/** One sign-in to run. */
export interface SignInRequest {
  /** The proxy's start page (`error.data.authorizeUrl`), already checked to be under `proxyOrigin`. */
  readonly url: string;
  /** The only origin the credential goes to and results are accepted from. */
  readonly proxyOrigin: string;
  /** The server the sign-in is for (`error.server`), when known: results for others are ignored. */
  readonly server: string | undefined;
  /** The client's proxy credential, handed to the start page on request. */
  readonly credential: string;
  readonly window: SignInWindow;
  /** 0 = no deadline. */
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

/** Features of the popup: its own small window, not a tab. */
const POPUP_FEATURES = 'popup,width=600,height=720';

/**
 * Opens the sign-in popup at once (synchronously: browsers only allow popups while the user
 * gesture that called this is current) and settles when the sign-in ends: resolves on the
 * callback page's success, rejects with a {@link SignInError} (blocked, closed, timed out,
 * failed) or the signal's reason, closing the popup if it is still open.
 */
export function signIn(request: SignInRequest): Promise<SignInResult> {
  const { proxyOrigin, credential, signal } = request;
  return new Promise<SignInResult>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    // A window of its own (`_blank`): a named one would be reused, and a second sign-in would
    // navigate the first one's popup away under it.
    const opened = request.window.open(request.url, '_blank', POPUP_FEATURES);
    if (opened === null || opened === undefined) {
      reject(
        new SignInError(
          'popup_blocked',
          'The browser blocked the sign-in popup: call authorize() from a click (or other user gesture) handler.',
        ),
      );
      return;
    }
    const popup: SignInPopup = opened;
    let grace: ReturnType<typeof setTimeout> | undefined;
    const poll = setInterval(() => {
      if (popup.closed && grace === undefined) {
        grace = setTimeout(
          () =>
            fail(
              new SignInError('popup_closed', 'The sign-in popup was closed before the sign-in finished.'),
            ),
          CLOSED_GRACE_MS,
        );
      }
    }, CLOSED_POLL_MS);
    const deadline =
      request.timeoutMs > 0
        ? setTimeout(
            () =>
              fail(
                new SignInError(
                  'sign_in_timeout',
                  `The sign-in did not finish within ${request.timeoutMs} ms.`,
                  {
                    data: { timeoutMs: request.timeoutMs },
                  },
                ),
              ),
            request.timeoutMs,
          )
        : undefined;
    const onAbort = () => fail(signal.reason);
    const onMessage = (event: SignInMessageEvent) => {
      // Only the popup this call opened, showing a page of the proxy: another window (a frame of
      // the authorization server, another tab, a page the popup was navigated to) gets nothing.
      if (event.origin !== proxyOrigin || event.source !== popup || !isObject(event.data)) return;
      const { type } = event.data;
      if (type === BIND_REQUEST_TYPE) {
        // targetOrigin: should the popup have left the proxy since, the browser drops the message.
        popup.postMessage({ type: BIND_REPLY_TYPE, credential }, proxyOrigin);
        return;
      }
      if (type !== RESULT_TYPE) return;
      const { ok, server, code, message } = event.data;
      // Another sign-in's result (the proxy names the server in both) is not this one's.
      if (request.server !== undefined && typeof server === 'string' && server !== request.server) return;
      if (ok === true) {
        finish();
        resolve({ server: typeof server === 'string' ? server : undefined });
        return;
      }
      fail(
        new SignInError(
          'sign_in_failed',
          typeof message === 'string' ? message : 'The proxy could not complete the sign-in.',
          { data: typeof code === 'string' ? { code } : {} },
        ),
      );
    };
    function finish(): void {
      clearInterval(poll);
      clearTimeout(grace);
      clearTimeout(deadline);
      signal.removeEventListener('abort', onAbort);
      request.window.removeEventListener('message', onMessage);
    }
    function fail(error: unknown): void {
      finish();
      try {
        if (!popup.closed) popup.close();
      } catch {
        // A popup the browser no longer lets us touch is gone anyway.
      }
      reject(error);
    }
    request.window.addEventListener('message', onMessage);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
