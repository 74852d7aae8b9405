/**
 * @module auth-required
 * What happens when a call needs the user to sign in to the MCP server (`upstream_auth_required`):
 * the `onAuthRequired` hook's types, the check that a sign-in page is the proxy's before a
 * window opens on it, and the gate that lets every call waiting for the same sign-in share one.
 */
import { InvalidInputError, NotSupportedError, UpstreamAuthRequiredError } from './errors.ts';
import { checkTimeout, type ResolvedOptions } from './options.ts';
import { type SignInResult, signIn } from './sign-in.ts';
import { callSignal } from './signals.ts';

/** Options of `client.authorize()`. */
export interface AuthorizeOptions {
  /** Abandons the sign-in (the popup closes); it rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
  /** How long the user has to sign in, in ms (default: the client's `signInTimeoutMs`; 0 = no limit). */
  timeoutMs?: number | undefined;
}

/** What the `onAuthRequired` hook gets besides the error. */
export interface AuthRequiredContext {
  /** Aborts when the client closes. */
  readonly signal: AbortSignal;
  /**
   * `client.authorize(error, options)` for this error: opens the sign-in popup. Call it from a
   * user gesture (a click handler), or the browser blocks the popup.
   */
  authorize(options?: AuthorizeOptions): Promise<SignInResult>;
}

/**
 * Called when a request fails with {@link UpstreamAuthRequiredError}. Once it settles the request
 * is sent again, once: resolve when the user has signed in (typically after `authorize()`),
 * return or resolve `false` to give up (the request rejects with the error), throw to reject the
 * request with what you threw. Requests that need the same server's sign-in while one is under
 * way wait for it instead of calling the hook again.
 */
export type AuthRequiredHandler = (error: UpstreamAuthRequiredError, context: AuthRequiredContext) => unknown;

/**
 * The URL of the sign-in page `error` names, refused unless it is under `proxyOrigin`: an MCP
 * server's own in-band error can carry any `data` (on `/mcp` it reaches the client as the
 * proxy's would), and no window should open on a page it chose.
 */
export function signInUrl(error: unknown, proxyOrigin: string): string {
  if (!(error instanceof UpstreamAuthRequiredError)) {
    throw new InvalidInputError('invalid_input', 'Invalid error: must be an UpstreamAuthRequiredError.', {
      data: { field: 'error' },
    });
  }
  const raw = error.authorizeUrl;
  let url: URL | undefined;
  try {
    url = raw === undefined ? undefined : new URL(raw);
  } catch {
    url = undefined;
  }
  if (url === undefined || url.origin !== proxyOrigin) {
    throw new InvalidInputError(
      'invalid_input',
      `Invalid authorizeUrl: the sign-in page must be under the proxy's origin ${proxyOrigin} ` +
        '(the proxy’s PUBLIC_URL and the client’s proxyUrl must name the same origin).',
      { data: { field: 'authorizeUrl' } },
    );
  }
  return url.href;
}

/** One sign-in per MCP server at a time: calls that need the same one share its outcome. */
export class SignInGate {
  readonly #pending = new Map<string, Promise<boolean>>();

  /**
   * The outcome of the sign-in `error` asks for (true: send the request again): the one under
   * way for the same server, else `start()`'s.
   */
  join(error: UpstreamAuthRequiredError, start: () => Promise<boolean>): Promise<boolean> {
    const key = error.server ?? error.authorizeUrl ?? '';
    const pending = this.#pending.get(key);
    if (pending !== undefined) return pending;
    const outcome = start();
    this.#pending.set(key, outcome);
    const forget = () => {
      if (this.#pending.get(key) === outcome) this.#pending.delete(key);
    };
    outcome.then(forget, forget);
    return outcome;
  }
}

/**
 * `client.authorize()`: opens the sign-in page `error` names in a popup (synchronously, so it
 * stays within the caller's user gesture) and resolves once the user signed in. `lifetime` is the
 * client's: closing the client ends the sign-in.
 */
export function openSignIn(
  error: UpstreamAuthRequiredError,
  options: AuthorizeOptions,
  client: Pick<ResolvedOptions, 'proxyUrl' | 'window' | 'signInTimeoutMs' | 'proxyToken'>,
  lifetime: AbortSignal,
): Promise<SignInResult> {
  const proxyOrigin = new URL(client.proxyUrl).origin;
  const window = client.window;
  try {
    const url = signInUrl(error, proxyOrigin);
    if (window === undefined) {
      throw new NotSupportedError(
        'not_supported',
        'authorize() needs a browser window (or the window option): the sign-in page asks the ' +
          'app that opened it for the proxy credential, so it must be opened from this app.',
        { data: { field: 'window' } },
      );
    }
    const timeoutMs = options.timeoutMs ?? client.signInTimeoutMs;
    checkTimeout(timeoutMs, 'timeoutMs');
    const call = callSignal([options.signal, lifetime], 0);
    return signIn({
      url,
      proxyOrigin,
      server: error.server,
      credential: client.proxyToken,
      window,
      timeoutMs,
      signal: call.signal,
    }).finally(() => call.dispose());
  } catch (failure) {
    return Promise.reject(failure);
  }
}
