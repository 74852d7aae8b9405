/**
 * Signing in to an OAuth-protected MCP server from a real browser (issue 18): Debian's Chromium
 * loads the client bundle from a page on one loopback origin; the proxy (with its OAuth broker)
 * is on another, the authorization server (oidc-provider) and the upstream on two more. The
 * page's first call raises the typed `UpstreamAuthRequiredError`; its `onAuthRequired` shows a
 * button whose click calls `authorize()`; the popup goes through the proxy's start page (which
 * gets the proxy credential from the page), the authorization server's login and consent
 * (scripted with Playwright) and the proxy's callback page; the call then succeeds. Everything
 * any document of the browser received — every response body and every message — is recorded:
 * no upstream token may appear in it, and the proxy credential reaches only proxy pages.
 *
 * The popup blocker stays on (Playwright turns it off by default): `authorize()` outside a user
 * gesture is blocked, as in a user's browser.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { bundleForBrowser, EVERYTHING_ENTRY } from '../scripts/bundle.ts';
import { launchChromium } from './helpers/chromium.ts';
import { type OAuthStack, startOAuthStack, tokenOf } from './helpers/oauth-stack.ts';
import { type StaticServer, serveStatic } from './helpers/static.ts';

type ClientModule = typeof import('../src/index.ts');
type PageGlobals = { mcp: ClientModule };

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>loading</title>
<body>
<script type="module">
  import * as mcp from '/client.js';
  window.mcp = mcp;
  document.title = 'ready';
</script>`;

/** Something a document of the browser received. */
interface Received {
  readonly kind: 'response' | 'message' | 'frame';
  /** The receiving document's origin (for a response: the URL's). */
  readonly at: string;
  readonly text: string;
}

/** The connection facts the page needs. */
interface Target {
  readonly proxyUrl: string;
  readonly proxyToken: string;
  readonly mcpServerUrl: string;
  readonly transport: 'http' | 'streamable' | 'ws';
}

/**
 * A page that calls `authorize()` as soon as it loads, with no user gesture (Playwright's own
 * `evaluate` counts as one): the proxy URL comes in the query.
 */
const NO_GESTURE_PAGE = `<!doctype html>
<meta charset="utf-8">
<title>loading</title>
<script type="module">
  import { MCPProxyClient, UpstreamAuthRequiredError, SignInError } from '/client.js';
  const proxyUrl = new URLSearchParams(location.search).get('proxy');
  const client = new MCPProxyClient({ proxyUrl, proxyToken: 'unused-token-0123456789', mcpServerUrl: proxyUrl + '/mcp' });
  const error = new UpstreamAuthRequiredError('upstream_auth_required', 'Sign in.', {
    data: { authorizeUrl: proxyUrl + '/oauth/start/never-opened', server: 'x' },
  });
  client.authorize(error, { timeoutMs: 5000 }).then(
    () => { document.title = 'opened'; },
    (e) => { document.title = (e instanceof SignInError ? 'SignInError ' : 'other ') + e.code; },
  );
</script>`;

const FLOWS = [
  ['http', 'alice'],
  ['streamable', 'bob'],
  ['ws', 'carol'],
] as const;

describe('signing in to an OAuth-protected MCP server from Chromium', () => {
  let stack: OAuthStack;
  let site: StaticServer;
  let browser: Browser;

  before(async () => {
    const { code } = await bundleForBrowser(EVERYTHING_ENTRY);
    site = await serveStatic({
      '/': ['text/html; charset=utf-8', PAGE],
      '/client.js': ['text/javascript', code],
      '/no-gesture': ['text/html; charset=utf-8', NO_GESTURE_PAGE],
    });
    stack = await startOAuthStack({ CORS_ORIGINS: site.origin });
    browser = await launchChromium({ ignoreDefaultArgs: ['--disable-popup-blocking'] });
  });

  after(async () => {
    await browser?.close();
    await stack?.close();
    await site?.stop();
  });

  /** A fresh browser context (its own cookies) recording everything its documents receive. */
  async function recordingContext(): Promise<{
    context: BrowserContext;
    received: Received[];
    /** Waits for every body still being read, then closes the context. */
    finish(): Promise<void>;
  }> {
    const context = await browser.newContext();
    const received: Received[] = [];
    const reading: Promise<unknown>[] = [];
    await context.exposeBinding('__recordMessage', ({ frame }, origin: string, text: string) => {
      received.push({ kind: 'message', at: origin || new URL(frame.url()).origin, text });
    });
    await context.addInitScript(() => {
      const record = (window as unknown as { __recordMessage(origin: string, text: string): void })
        .__recordMessage;
      addEventListener('message', (event) => {
        let text: string;
        try {
          text = JSON.stringify(event.data);
        } catch {
          text = String(event.data);
        }
        void record(location.origin, text);
      });
    });
    context.on('response', (response) => {
      const at = new URL(response.url()).origin;
      const headers = JSON.stringify(response.headers());
      reading.push(
        response.text().then(
          (body) => received.push({ kind: 'response', at, text: `${headers}\n${body}` }),
          // Redirects and aborted loads have no body; their headers still count.
          () => received.push({ kind: 'response', at, text: headers }),
        ),
      );
    });
    context.on('page', (page) => {
      page.on('websocket', (socket) => {
        socket.on('framereceived', ({ payload }) =>
          received.push({ kind: 'frame', at: new URL(socket.url()).origin, text: String(payload) }),
        );
      });
    });
    return {
      context,
      received,
      async finish() {
        // A body is readable only while its context lives: every read ends first.
        for (let seen = 0; seen < reading.length; ) {
          const batch = reading.slice(seen);
          seen = reading.length;
          await Promise.all(batch);
        }
        await context.close();
      },
    };
  }

  async function open(context: BrowserContext): Promise<Page> {
    const page = await context.newPage();
    const failures: string[] = [];
    page.on('pageerror', (error) => failures.push(error.message));
    await page.goto(`${site.origin}/`);
    await page
      .waitForFunction(() => document.title === 'ready', undefined, { timeout: 10_000 })
      .catch(() => {
        throw new Error(`the client bundle did not load: ${failures.join('; ')}`);
      });
    return page;
  }

  for (const [transport, name] of FLOWS) {
    it(`${transport}: typed error, sign-in popup through login and consent, then the call succeeds; no token reaches the browser`, async () => {
      const { context, received, finish } = await recordingContext();
      const page = await open(context);
      const target: Target = {
        proxyUrl: stack.proxy.url,
        proxyToken: tokenOf(name),
        mcpServerUrl: stack.world.upstream.url,
        transport,
      };
      const popupOpened = context.waitForEvent('page');
      const run = page.evaluate(async (t: Target) => {
        const { MCPProxyClient, UpstreamAuthRequiredError, UpstreamAuthError, MCPProxyError } = (
          window as unknown as PageGlobals
        ).mcp;
        const common = { ...t, upstreamTransport: 'streamable-http' as const };
        // 1. Without a hook: the typed error reaches the caller.
        const plain = new MCPProxyClient(common);
        const first = await plain.callTool('whoami', {}).then(
          () => undefined,
          (error: unknown) => error,
        );
        await plain.close();
        const typed = {
          isAuthRequired: first instanceof UpstreamAuthRequiredError,
          isUpstreamAuth: first instanceof UpstreamAuthError,
          isRoot: first instanceof MCPProxyError,
          name: (first as Error).name,
          code: (first as { code?: unknown }).code,
          server: (first as { server?: unknown }).server,
          authorizeUrl: (first as { authorizeUrl?: unknown }).authorizeUrl,
        };
        // 2. With a hook: a button the user clicks opens the sign-in popup; the call goes on.
        let hooks = 0;
        const client = new MCPProxyClient({
          ...common,
          onAuthRequired: (_error, { authorize }) =>
            new Promise<void>((resolve, reject) => {
              hooks++;
              const button = document.createElement('button');
              button.id = 'sign-in';
              button.textContent = 'Sign in';
              button.onclick = () => {
                button.remove();
                authorize().then(() => resolve(), reject);
              };
              document.body.append(button);
            }),
        });
        const result = await client.callTool('whoami', {});
        const text = result.content[0]?.type === 'text' ? result.content[0].text : '';
        await client.close();
        return { typed, hooks, whoami: JSON.parse(text) as { sub?: string } };
      }, target);

      await page.click('#sign-in');
      const popup = await popupOpened;
      // The start page names what is connected and binds only on the user's click.
      await popup.click('#go', { timeout: 20_000 });
      await popup.waitForSelector('input[name=login]', { timeout: 20_000 });
      await popup.fill('input[name=login]', name);
      await popup.click('button');
      await popup.click('button[value=approve]', { timeout: 20_000 });
      const outcome = await run;

      assert.deepEqual(outcome.typed, {
        isAuthRequired: true,
        isUpstreamAuth: true,
        isRoot: true,
        name: 'UpstreamAuthRequiredError',
        code: 'upstream_auth_required',
        server: new URL(stack.world.upstream.url).host,
        authorizeUrl: outcome.typed.authorizeUrl,
      });
      assert.ok(String(outcome.typed.authorizeUrl).startsWith(`${stack.publicUrl}/oauth/start/`));
      assert.equal(outcome.hooks, 1);
      assert.equal(outcome.whoami.sub, name, 'the upstream saw the token of the user who signed in');
      if (!popup.isClosed()) await popup.waitForEvent('close', { timeout: 10_000 });
      assert.equal(popup.isClosed(), true, 'the callback page closes its popup');

      // Every upstream token the proxy used: none of it may be in anything the browser received.
      const tokens = stack.world.upstream
        .authorizations()
        .filter((header) => header.startsWith('Bearer '))
        .map((header) => header.slice('Bearer '.length));
      assert.ok(tokens.length > 0);
      await finish();
      assert.ok(received.some((r) => r.kind === 'response' && r.at === stack.publicUrl));
      assert.ok(
        received.some((r) => r.kind !== 'message' && r.text.includes('client_id')),
        'the recording holds the answers the page read (whoami names its client_id)',
      );
      assert.ok(
        received.some((r) => r.kind === 'message' && r.text.includes('"mcp-proxy:oauth"')),
        'the page got the callback page’s result',
      );
      for (const token of tokens) {
        for (const each of received) {
          assert.ok(!each.text.includes(token), `an upstream token in a ${each.kind} at ${each.at}`);
          // A JWT's signature alone would betray it too.
          assert.ok(!each.text.includes(token.split('.')[2] ?? token), `a token signature at ${each.at}`);
        }
      }
      // The bind: the start page got the credential from the page, and nothing else ever did.
      const credential = tokenOf(name);
      const posted = received.filter((r) => r.kind === 'message' && r.text.includes(credential));
      assert.ok(posted.length > 0, 'the start page received the proxy credential from its opener');
      for (const each of posted) {
        assert.equal(each.at, stack.publicUrl, 'the proxy credential is only ever posted to a proxy page');
        assert.match(each.text, /"type":"mcp-proxy:oauth-credential"/);
      }
    });
  }

  it('closing the popup before signing in rejects the call with SignInError popup_closed', async () => {
    const { context, finish } = await recordingContext();
    const page = await open(context);
    const popupOpened = context.waitForEvent('page');
    const run = page.evaluate(
      async (t: Omit<Target, 'transport'>) => {
        const { MCPProxyClient, SignInError } = (window as unknown as PageGlobals).mcp;
        const client = new MCPProxyClient({
          ...t,
          upstreamTransport: 'streamable-http',
          onAuthRequired: (_error, { authorize }) =>
            new Promise<void>((resolve, reject) => {
              const button = document.createElement('button');
              button.id = 'sign-in';
              button.onclick = () => authorize().then(() => resolve(), reject);
              document.body.append(button);
            }),
        });
        const failure = await client.callTool('whoami', {}).then(
          () => undefined,
          (e: unknown) => e,
        );
        await client.close();
        return { isSignInError: failure instanceof SignInError, code: (failure as { code?: unknown }).code };
      },
      { proxyUrl: stack.proxy.url, proxyToken: tokenOf('dave'), mcpServerUrl: stack.world.upstream.url },
    );
    await page.click('#sign-in');
    const popup = await popupOpened;
    await popup.click('#go', { timeout: 20_000 });
    await popup.waitForSelector('input[name=login]', { timeout: 20_000 });
    await popup.close();
    assert.deepEqual(await run, { isSignInError: true, code: 'popup_closed' });
    await finish();
  });

  it('authorize() outside a user gesture is refused by the popup blocker: SignInError popup_blocked', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${site.origin}/no-gesture?proxy=${encodeURIComponent(stack.proxy.url)}`);
    await page.waitForFunction(() => document.title !== 'loading', undefined, { timeout: 10_000 });
    assert.equal(await page.title(), 'SignInError popup_blocked');
    assert.equal(context.pages().length, 1, 'no popup opened');
    await context.close();
  });
});
