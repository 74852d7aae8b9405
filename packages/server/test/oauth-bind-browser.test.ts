/**
 * The sign-in bind protocol (docs/oauth.md) in a real browser: Debian's Chromium loads an app
 * page from another loopback origin, which opens the `authorizeUrl` in a popup and answers the
 * start page's `mcp-proxy:oauth-bind` with its proxy token, as docs/oauth.md's minimal opener
 * does; the page names the server, the authorization server and the app, and binds on the
 * user's click; the popup goes through the OAuth test world's login and consent (scripted), the callback
 * page tells the app and closes, and the call then succeeds. An app whose origin is not listed
 * in CORS_ORIGINS gets nothing bound.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../../client/test/helpers/chromium.ts';
import { type StaticServer, serveStatic } from '../../client/test/helpers/static.ts';
import { CONTINUE_ARM_MS } from '../src/surfaces/oauth/pages.ts';
import { eventually } from './helpers/eventually.ts';
import { freePort } from './helpers/net.ts';
import { type OAuthWorld, startOAuthWorld } from './helpers/oauth-world.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const ALICE = 'alice-proxy-token-0123456789abcdef';

// biome-ignore lint/suspicious/noExplicitAny: page results are arbitrary JSON.
type Json = any;

/** The app: docs/oauth.md's minimal opener, recording every message it receives. */
const APP_PAGE = `<!doctype html><meta charset="utf-8"><title>app</title><script>
window.signIn = (link, token) => new Promise((resolve) => {
  const proxyOrigin = new URL(link).origin;
  const seen = [];
  const popup = window.open(link, 'mcp-sign-in', 'popup,width=600,height=700');
  window.addEventListener('message', (event) => {
    seen.push({ origin: event.origin, fromPopup: event.source === popup, data: event.data });
    if (event.origin !== proxyOrigin || event.source !== popup) return;
    if (event.data && event.data.type === 'mcp-proxy:oauth-bind') {
      popup.postMessage({ type: 'mcp-proxy:oauth-credential', credential: token }, proxyOrigin);
    } else if (event.data && event.data.type === 'mcp-proxy:oauth') {
      resolve({ result: event.data, seen });
    }
  });
  setTimeout(() => resolve({ timedOut: true, seen }), 20000);
});
</script>`;

describe('the sign-in bind protocol in Chromium', () => {
  let world: OAuthWorld;
  let proxy: RunningProxy;
  let app: StaticServer;
  let foreign: StaticServer;
  let browser: Browser;

  before(async () => {
    world = await startOAuthWorld();
    app = await serveStatic({ '/': ['text/html', APP_PAGE] });
    foreign = await serveStatic({ '/': ['text/html', APP_PAGE] });
    const port = await freePort();
    proxy = await startProxy({
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      OAUTH_BROKER: 'true',
      PROXY_TOKENS: ALICE,
      CORS_ORIGINS: app.origin,
    });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await proxy?.close();
    await app?.stop();
    await foreign?.stop();
    await world?.stop();
  });

  const whoami = () =>
    postProxy(
      { url: proxy.url, token: ALICE },
      {
        mcp_server_url: world.upstream.url,
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'whoami', arguments: {} },
      },
    );

  /** Opens the app at `origin`, starts its sign-in on `link`, and hands back the popup. */
  async function start(
    origin: string,
    link: string,
    pauseClock = false,
  ): Promise<{ page: Page; popup: Page; done: Promise<Json> }> {
    const page = await browser.newPage();
    await page.goto(`${origin}/`);
    // The page's timers (the button's arming) then run only when the test moves the clock.
    if (pauseClock) {
      await page.clock.install();
      await page.clock.pauseAt(Date.now() + 1000);
    }
    const popupOpened = page.waitForEvent('popup');
    const done = page.evaluate(
      ([l, t]) =>
        (globalThis as unknown as { signIn: (l?: string, t?: string) => Promise<Json> }).signIn(l, t),
      [link, ALICE],
    );
    // Closing the page ends the evaluation: that rejection is expected, not a failure.
    done.catch(() => {});
    return { page, popup: await popupOpened, done };
  }

  it('binds the sign-in to the app that made the call, then the call succeeds', async () => {
    const first = await whoami();
    assert.equal(first.body.error.data.code, 'upstream_auth_required');
    const link = first.body.error.data.authorizeUrl;
    const { page, popup, done } = await start(app.origin, link, true);
    try {
      // Review item 6: the popup says what is connected, where the user signs in and for which
      // app, and binds nothing until the user clicks.
      const button = await popup.waitForSelector('#go:visible');
      // Review oauth6 item 5: shown, the button is not armed yet (a double-click's second click
      // landing on it does nothing); it arms half a second later (the page's clock is paused).
      assert.equal(await button.isDisabled(), true);
      await popup.evaluate("document.getElementById('go').click()");
      await popup.clock.runFor(CONTINUE_ARM_MS - 1);
      assert.equal(await button.isDisabled(), true);
      await popup.clock.runFor(1);
      assert.equal(await button.isDisabled(), false);
      assert.equal(await popup.textContent('#m'), '', 'the early click did nothing');
      const text = await popup.textContent('body');
      assert.ok(text?.includes(`Sign in to ${new URL(world.upstream.url).host}`), text ?? '');
      assert.ok(text?.includes(`your account at ${new URL(world.issuer).host}`), text ?? '');
      assert.ok(text?.includes(`The app at ${app.origin} asks`), text ?? '');
      assert.equal(popup.url(), link);
      assert.ok(!world.as.events.some((e) => e.startsWith('login')), world.as.events.join());
      // The link is not used up yet (nothing was bound): its page still answers.
      assert.equal((await fetch(link)).status, 200);
      // Review6 D2: losing focus disarms it; focused again it stays disarmed, and arms again
      // only half a second later (another window brought to the front under a click).
      const disabledAfter = await popup.evaluate<boolean[]>(`(() => {
        const go = document.getElementById('go');
        window.dispatchEvent(new Event('blur'));
        const blurred = go.disabled;
        window.dispatchEvent(new Event('focus'));
        return [blurred, go.disabled];
      })()`);
      assert.deepEqual(disabledAfter, [true, true], 'disarmed on blur, still on focus');
      await popup.clock.runFor(CONTINUE_ARM_MS - 1);
      assert.equal(await button.isDisabled(), true);
      await popup.clock.runFor(1);
      assert.equal(await button.isDisabled(), false);
      // Once clicked it never arms again, whatever focus does: the bind's POST is held here
      // until that is checked.
      let release = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      await popup.route(link, async (route) => {
        if (route.request().method() === 'POST') await held;
        await route.continue();
      });
      await button.click();
      await popup.evaluate(
        "window.dispatchEvent(new Event('blur'));window.dispatchEvent(new Event('focus'))",
      );
      await popup.clock.runFor(CONTINUE_ARM_MS * 2);
      assert.equal(await button.isDisabled(), true, 'the button armed again after its click');
      release();
      await popup.clock.resume();
      await popup.waitForSelector('input[name=login]');
      await popup.fill('input[name=login]', 'alice');
      await popup.click('button');
      await popup.waitForSelector('button[value=approve]');
      await popup.click('button[value=approve]');
      const outcome = await done;
      assert.equal(outcome.timedOut, undefined, JSON.stringify(outcome));
      assert.equal(outcome.result.ok, true);
      const proxyOrigin = new URL(proxy.url).origin;
      // The start page asked (no secret), the callback page answered; nothing else reached the app.
      assert.deepEqual(
        outcome.seen.map((m: Json) => [m.origin, m.fromPopup, m.data.type]),
        [
          [proxyOrigin, true, 'mcp-proxy:oauth-bind'],
          [proxyOrigin, true, 'mcp-proxy:oauth'],
        ],
      );
      await eventually(() => popup.isClosed(), { what: 'the popup to close' });
      const second = await whoami();
      assert.equal(JSON.parse(second.body.result.content[0].text).sub, 'alice');
      const [token] = world.upstream
        .authorizations()
        .filter((h) => h.startsWith('Bearer '))
        .map((h) => h.slice(7));
      assert.ok(token && !JSON.stringify(outcome).includes(token));
    } finally {
      await page.close();
    }
  });

  it('binds nothing for an app whose origin is not listed, and says so in the popup', async () => {
    // Alice is connected to the first upstream: another one asks her to sign in again.
    const other = await world.startUpstream();
    const first = await postProxy(
      { url: proxy.url, token: ALICE },
      { mcp_server_url: other.url, jsonrpc: '2.0', id: 1, method: 'tools/list' },
    );
    assert.equal(first.body.error.data.code, 'upstream_auth_required', JSON.stringify(first.body));
    const { page, popup } = await start(foreign.origin, first.body.error.data.authorizeUrl);
    try {
      await popup.click('#go');
      await popup.waitForSelector('text=not opened by the app');
      assert.ok(!popup.url().startsWith(world.issuer), popup.url());
      // The link was not consumed, and nothing was connected.
      const again = await postProxy(
        { url: proxy.url, token: ALICE },
        { mcp_server_url: other.url, jsonrpc: '2.0', id: 2, method: 'tools/list' },
      );
      assert.equal(again.body.error.data.code, 'upstream_auth_required');
    } finally {
      await popup.close().catch(() => {});
      await page.close();
      await other.stop();
    }
  });
});
