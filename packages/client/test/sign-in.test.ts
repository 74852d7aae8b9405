/**
 * `client.authorize(error)`, the opener's side of the proxy's sign-in popup, against a fake
 * window (test/helpers/fake-window.ts): who gets the proxy credential (only the popup it opened,
 * only at the proxy's origin), which result messages count, and how it ends when the popup is
 * blocked, closed, too slow or abandoned. Timers are node:test's mock timers, not waits. The
 * whole flow against the real proxy is oauth.test.ts (Node) and browser-oauth.test.ts (Chromium).
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import {
  InvalidInputError,
  MCPProxyClient,
  type MCPProxyClientOptions,
  NotSupportedError,
  SignInError,
  UpstreamAuthError,
  UpstreamAuthRequiredError,
} from '../src/index.ts';
import { FakeWindow } from './helpers/fake-window.ts';

const PROXY = 'http://127.0.0.1:9';
const TOKEN = 'alice-proxy-token-0123456789abcdef';
const START = `${PROXY}/oauth/start/abc123`;

function required(authorizeUrl: string = START, server = 'linear'): UpstreamAuthRequiredError {
  return new UpstreamAuthRequiredError('upstream_auth_required', 'Sign in.', {
    status: 401,
    data: { authorizeUrl, server },
  });
}

function client(window: FakeWindow | undefined, extra: Partial<MCPProxyClientOptions> = {}): MCPProxyClient {
  return new MCPProxyClient({
    proxyUrl: PROXY,
    proxyToken: TOKEN,
    mcpServerUrl: 'http://127.0.0.1:9/mcp',
    ...(window ? { window } : {}),
    ...extra,
  } as MCPProxyClientOptions);
}

const BIND = { type: 'mcp-proxy:oauth-bind' };
const DONE = { type: 'mcp-proxy:oauth', ok: true, server: 'linear' };

/** Lets queued promise callbacks run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('authorize(): the sign-in popup', () => {
  it('UpstreamAuthRequiredError is an UpstreamAuthError with authorizeUrl and server', () => {
    const error = required();
    assert.ok(error instanceof UpstreamAuthError);
    assert.equal(error.name, 'UpstreamAuthRequiredError');
    assert.equal(error.authorizeUrl, START);
    assert.equal(error.server, 'linear');
  });

  it('opens the start page, hands the credential to that popup at the proxy origin only, resolves on its result', async () => {
    const window = new FakeWindow();
    const signingIn = client(window).authorize(required());
    assert.equal(window.opened.length, 1, 'the popup opens synchronously, inside the user gesture');
    const popup = window.opened[0];
    assert.ok(popup);
    assert.equal(popup.url, START);
    assert.match(popup.features, /popup/);
    assert.equal(popup.target, '_blank', 'a window of its own, never one another sign-in reuses');

    // Asked by someone else: a page of another origin in the popup, or a proxy page in another window.
    window.dispatch({ origin: 'https://evil.example', source: popup, data: BIND });
    window.dispatch({ origin: PROXY, source: {}, data: BIND });
    window.dispatch({ origin: PROXY, source: null, data: BIND });
    assert.deepEqual(popup.posted, [], 'nobody but the popup at the proxy origin gets the credential');

    window.dispatch({ origin: PROXY, source: popup, data: BIND });
    assert.deepEqual(popup.posted, [
      { message: { type: 'mcp-proxy:oauth-credential', credential: TOKEN }, targetOrigin: PROXY },
    ]);

    // A result from elsewhere does not end the sign-in.
    window.dispatch({ origin: 'https://evil.example', source: popup, data: DONE });
    window.dispatch({ origin: PROXY, source: {}, data: DONE });
    window.dispatch({ origin: PROXY, source: popup, data: 'mcp-proxy:oauth' });
    window.dispatch({ origin: PROXY, source: popup, data: { ...DONE, server: 'another-server' } });
    let settled = false;
    void signingIn.finally(() => {
      settled = true;
    });
    await settle();
    assert.equal(settled, false);

    window.dispatch({ origin: PROXY, source: popup, data: DONE });
    assert.deepEqual(await signingIn, { server: 'linear' });
    assert.equal(window.listeners, 0, 'the message listener is removed');
    window.dispatch({ origin: PROXY, source: popup, data: BIND });
    assert.equal(popup.posted.length, 1, 'after the sign-in, the popup gets nothing more');
  });

  it("refuses a sign-in page outside the proxy's origin without opening anything (an MCP server's forged error)", async () => {
    const window = new FakeWindow();
    const c = client(window);
    for (const url of [
      'https://evil.example/oauth/start/x',
      'http://127.0.0.1:10/oauth/start/x',
      'not a url',
    ]) {
      const error = await c.authorize(required(url)).catch((e: unknown) => e);
      assert.ok(error instanceof InvalidInputError, String(error));
      assert.equal(error.field, 'authorizeUrl');
    }
    const none = await c
      .authorize(new UpstreamAuthRequiredError('upstream_auth_required', 'x', {}))
      .catch((e: unknown) => e);
    assert.ok(none instanceof InvalidInputError);
    const wrongClass = await c.authorize(new Error('x') as never).catch((e: unknown) => e);
    assert.ok(wrongClass instanceof InvalidInputError);
    assert.equal(window.opened.length, 0);
  });

  it('a blocked popup rejects with SignInError popup_blocked', async () => {
    const window = new FakeWindow();
    window.blocked = true;
    const error = await client(window)
      .authorize(required())
      .catch((e: unknown) => e);
    assert.ok(error instanceof SignInError, String(error));
    assert.equal(error.code, 'popup_blocked');
    assert.equal(window.listeners, 0);
  });

  it('outside a browser (no window) authorize() is not supported', async () => {
    const error = await client(undefined)
      .authorize(required())
      .catch((e: unknown) => e);
    assert.ok(error instanceof NotSupportedError, String(error));
  });

  it('a result with ok: false rejects with sign_in_failed and the code the page gave', async () => {
    const window = new FakeWindow();
    const signingIn = client(window).authorize(required());
    const popup = window.opened[0];
    window.dispatch({
      origin: PROXY,
      source: popup,
      data: { type: 'mcp-proxy:oauth', ok: false, code: 'oauth_state_invalid', message: 'Link used.' },
    });
    const error = await signingIn.catch((e: unknown) => e);
    assert.ok(error instanceof SignInError, String(error));
    assert.equal(error.code, 'sign_in_failed');
    assert.equal(error.message, 'Link used.');
    assert.deepEqual(error.data, { code: 'oauth_state_invalid' });
  });

  it('the caller’s signal and close() abandon the sign-in and close the popup', async () => {
    const window = new FakeWindow();
    const c = client(window);
    const controller = new AbortController();
    const aborted = c.authorize(required(), { signal: controller.signal });
    controller.abort(new Error('user went away'));
    await assert.rejects(aborted, /user went away/);
    assert.equal(window.opened[0]?.closed, true);

    const closing = c.authorize(required());
    await c.close();
    const error = await closing.catch((e: unknown) => e);
    assert.equal((error as { code?: unknown }).code, 'closed');
    assert.equal(window.opened[1]?.closed, true);
    assert.equal(window.listeners, 0);
  });

  describe('with mock timers', () => {
    beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval'] }));
    afterEach(() => mock.timers.reset());

    it('a popup the user closed rejects with popup_closed (after a grace for a late result)', async () => {
      const window = new FakeWindow();
      const signingIn = client(window).authorize(required());
      let settledWith: unknown;
      signingIn.catch((e: unknown) => {
        settledWith = e;
      });
      // Read through a call: an assertion about the value must not narrow what a callback sets later.
      const outcome = (): unknown => settledWith;
      const popup = window.opened[0];
      assert.ok(popup);
      mock.timers.tick(5_000);
      await settle();
      assert.equal(outcome(), undefined, 'an open popup is waited for');
      popup.closed = true;
      mock.timers.tick(400);
      await settle();
      assert.equal(outcome(), undefined, 'the result may still be on its way');
      mock.timers.tick(1_000);
      await settle();
      const error = outcome();
      assert.ok(error instanceof SignInError, String(error));
      assert.equal(error.code, 'popup_closed');
      assert.equal(window.listeners, 0);
    });

    it('a result that arrives just after the popup closed still counts', async () => {
      const window = new FakeWindow();
      const signingIn = client(window).authorize(required());
      const popup = window.opened[0];
      assert.ok(popup);
      popup.closed = true;
      mock.timers.tick(400);
      window.dispatch({ origin: PROXY, source: popup, data: DONE });
      mock.timers.tick(5_000);
      assert.deepEqual(await signingIn, { server: 'linear' });
    });

    it('a sign-in longer than its timeoutMs rejects with sign_in_timeout and closes the popup', async () => {
      const window = new FakeWindow();
      const c = client(window, { signInTimeoutMs: 60_000 });
      const signingIn = c.authorize(required());
      let settledWith: unknown;
      signingIn.catch((e: unknown) => {
        settledWith = e;
      });
      // Read through a call: an assertion about the value must not narrow what a callback sets later.
      const outcome = (): unknown => settledWith;
      mock.timers.tick(59_000);
      await settle();
      assert.equal(outcome(), undefined);
      mock.timers.tick(1_000);
      await settle();
      const error = outcome();
      assert.ok(error instanceof SignInError, String(error));
      assert.equal(error.code, 'sign_in_timeout');
      assert.equal(window.opened[0]?.closed, true);

      const short = c.authorize(required(), { timeoutMs: 10 });
      mock.timers.tick(10);
      const shortError = await short.catch((e: unknown) => e);
      assert.equal((shortError as { code?: unknown }).code, 'sign_in_timeout', 'a per-call timeoutMs wins');
    });
  });
});
