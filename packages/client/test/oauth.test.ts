/**
 * The client against the proxy's OAuth broker (issue 18), in Node: a real authorization server
 * (oidc-provider) and an upstream that accepts only its tokens, over every transport. The first
 * call raises the typed `UpstreamAuthRequiredError`; `onAuthRequired` opens the sign-in "popup"
 * (a fake window whose popup a scripted user drives through the proxy's pages, login and
 * consent, as a browser would) and the call is retried once. Chromium runs the real popup in
 * browser-oauth.test.ts. Each test signs in a principal of its own, so none finds another's token.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  MCPProxyClient,
  type MCPProxyClientOptions,
  type TransportKind,
  UpstreamAuthRequiredError,
} from '../src/index.ts';
import { type FakePopup, FakeWindow } from './helpers/fake-window.ts';
import { type OAuthStack, startOAuthStack, tokenOf } from './helpers/oauth-stack.ts';

/** The app's origin: the opener of the sign-in popups (listed in CORS_ORIGINS, as the bind needs). */
const APP = 'http://app.example';

const TRANSPORTS: ReadonlyArray<readonly [TransportKind, string]> = [
  ['http', 'alice'],
  ['streamable', 'bob'],
  ['ws', 'carol'],
];

describe('mcp-proxy-client and the OAuth broker', () => {
  let stack: OAuthStack;
  const clients: MCPProxyClient[] = [];

  before(async () => {
    stack = await startOAuthStack({ CORS_ORIGINS: APP });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await stack?.close();
  });

  /** A client of principal `name`, closed after the tests. */
  function client(name: string, options: Partial<MCPProxyClientOptions> = {}): MCPProxyClient {
    const c = new MCPProxyClient({
      proxyUrl: stack.proxy.url,
      proxyToken: tokenOf(name),
      mcpServerUrl: stack.world.upstream.url,
      upstreamTransport: 'streamable-http',
      timeoutMs: 20_000,
      ...options,
    } as MCPProxyClientOptions);
    clients.push(c);
    return c;
  }

  /**
   * A window whose popups the scripted user `name` drives as a browser would. The proxy's start
   * page asks its opener for the credential (posted from the proxy's origin, by the popup), and
   * goes on with what the client answered, as the page's script does (docs/oauth.md, the bind
   * protocol); then the authorization server's login and consent, and the proxy's callback page
   * (its POST), whose result the popup posts back to the opener.
   */
  function browserWindow(name: string): FakeWindow {
    const window = new FakeWindow();
    const post = (popup: FakePopup, data: unknown) =>
      window.dispatch({ origin: stack.publicUrl, source: popup, data });
    window.onopen = (popup) => {
      popup.onmessage = (message, targetOrigin) => {
        const { type, credential } = message as { type?: unknown; credential?: unknown };
        if (type !== 'mcp-proxy:oauth-credential' || targetOrigin !== stack.publicUrl) return;
        void (async () => {
          const done = await stack.world
            .user(name)
            .authorize(popup.url, { follow: true, bind: { credential: String(credential), origin: APP } });
          // What the callback page's script posts, and to whom (the browser drops it for any
          // other origin): built from the proxy's answer to its POST.
          const answer = JSON.parse(done.callback?.body ?? '{}') as {
            ok?: boolean;
            server?: string;
            openerOrigin?: string;
            error?: { message: string; data?: { code?: string } };
          };
          assert.ok(answer.ok === true || answer.error, `the callback answers: ${done.callback?.body}`);
          const message = answer.ok
            ? { type: 'mcp-proxy:oauth', ok: true, server: answer.server }
            : {
                type: 'mcp-proxy:oauth',
                ok: false,
                code: answer.error?.data?.code,
                message: answer.error?.message,
              };
          if (answer.openerOrigin === APP) post(popup, message);
          popup.closed = true;
        })().catch((error: unknown) =>
          post(popup, { type: 'mcp-proxy:oauth', ok: false, message: String(error) }),
        );
      };
      // The start page's first act: ask the opener (after the window.open call returned).
      queueMicrotask(() => post(popup, { type: 'mcp-proxy:oauth-bind' }));
    };
    return window;
  }

  const whoami = async (c: MCPProxyClient) => {
    const result = await c.callTool('whoami', {});
    const first = result.content[0];
    return JSON.parse(first?.type === 'text' ? first.text : '{}') as { sub?: string };
  };

  for (const [transport, name] of TRANSPORTS) {
    it(`${transport}: the first call raises UpstreamAuthRequiredError; with onAuthRequired it signs in and the call is retried`, async () => {
      const error = await client(name, { transport })
        .initialize()
        .catch((e: unknown) => e);
      assert.ok(error instanceof UpstreamAuthRequiredError, String(error));
      assert.equal(error.code, 'upstream_auth_required');
      assert.ok(error.authorizeUrl?.startsWith(`${stack.publicUrl}/oauth/start/`), error.authorizeUrl);
      assert.equal(error.server, new URL(stack.world.upstream.url).host);
      assert.equal(error.userCode, undefined, 'codes are opt-in');

      const window = browserWindow(name);
      const seen: unknown[] = [];
      const c = client(name, {
        transport,
        window,
        onAuthRequired: async (e, { authorize }) => {
          seen.push(e);
          await authorize();
        },
      });
      const init = await c.initialize();
      assert.equal(init.serverInfo.name, 'oauth-world-upstream');
      assert.equal((await whoami(c)).sub, name);
      assert.equal(seen.length, 1, 'one sign-in');
      assert.ok(seen[0] instanceof UpstreamAuthRequiredError);
      assert.equal(window.opened.length, 1);
      assert.ok(
        !stack.world.upstream.authorizations().some((h) => h.includes(tokenOf(name))),
        'the proxy credential never went upstream',
      );
    });
  }

  it('ws: a call other than initialize is retried on a new socket (the old one keeps its upstream credential)', async () => {
    const c = client('frank', {
      transport: 'ws',
      window: browserWindow('frank'),
      onAuthRequired: (_e, { authorize }) => authorize(),
    });
    assert.equal((await whoami(c)).sub, 'frank');
  });

  it('calls that need the same sign-in share one: one hook call, one popup, both retried', async () => {
    const window = browserWindow('dave');
    let hooks = 0;
    const c = client('dave', {
      window,
      onAuthRequired: async (_e, { authorize }) => {
        hooks++;
        await authorize();
      },
    });
    const [first, second] = await Promise.all([whoami(c), whoami(c)]);
    assert.deepEqual([first.sub, second.sub], ['dave', 'dave']);
    assert.equal(hooks, 1);
    assert.equal(window.opened.length, 1);
  });

  it('a hook that gives up (false) or throws rejects the call; one that signs nobody in gets one retry only', async () => {
    let calls = 0;
    const giveUp = client('erin', {
      onAuthRequired: () => {
        calls++;
        return false;
      },
    });
    const refused = await whoami(giveUp).catch((e: unknown) => e);
    assert.ok(refused instanceof UpstreamAuthRequiredError, String(refused));
    assert.equal(calls, 1);

    calls = 0;
    const noSignIn = client('erin', {
      onAuthRequired: async () => {
        calls++;
      },
    });
    const again = await whoami(noSignIn).catch((e: unknown) => e);
    assert.ok(again instanceof UpstreamAuthRequiredError, String(again));
    assert.equal(calls, 1, 'retried once, then the error');

    const thrown = client('erin', {
      onAuthRequired: () => {
        throw new Error('the user said no');
      },
    });
    await assert.rejects(whoami(thrown), /the user said no/);
  });

  it('userCode: the one-time code to show beside the link, when the proxy offers codes', async () => {
    const withCodes = await startOAuthStack({ CORS_ORIGINS: APP, OAUTH_USER_CODES: 'true' });
    try {
      const c = new MCPProxyClient({
        proxyUrl: withCodes.proxy.url,
        proxyToken: tokenOf('dave'),
        mcpServerUrl: withCodes.world.upstream.url,
        upstreamTransport: 'streamable-http',
        timeoutMs: 20_000,
      });
      clients.push(c);
      const error = await c.initialize().catch((e: unknown) => e);
      assert.ok(error instanceof UpstreamAuthRequiredError, String(error));
      assert.match(error.userCode ?? '', /^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
      assert.ok(!error.authorizeUrl?.includes(error.userCode ?? '-'), 'the code is not in the link');
    } finally {
      await withCodes.close();
    }
  });

  it('the call’s signal and close() end the wait for a sign-in', async () => {
    let hookSignal: AbortSignal | undefined;
    let hookCalled: () => void = () => {};
    const called = new Promise<void>((resolve) => {
      hookCalled = resolve;
    });
    const c = client('erin', {
      onAuthRequired: (_e, { signal }) => {
        hookSignal = signal;
        hookCalled();
        return new Promise(() => {}); // the user never comes back
      },
    });
    const controller = new AbortController();
    const aborted = c.callTool('whoami', {}, { signal: controller.signal }).catch((e: unknown) => e);
    await called; // this call now waits for the sign-in
    controller.abort(new Error('navigated away'));
    assert.match(String(await aborted), /navigated away/);
    const call = whoami(c).catch((e: unknown) => e);
    await c.close();
    assert.equal(((await call) as { code?: unknown }).code, 'closed');
    assert.equal(hookSignal?.aborted, true, 'the hook learns the client closed');
  });
});
