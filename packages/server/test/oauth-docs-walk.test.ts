/**
 * docs/oauth.md, "Set it up: a browser app, step by step", run as written (issue 18's "done
 * when": a person can follow it). The section's `.env` block starts the proxy as `npm start`
 * would (its own process, nothing added but the ports, a data directory and no `.env` file), its
 * app page (the one `html` block) is served from another loopback origin and loaded in Chromium
 * with the popup blocker on, and the section's promises are checked: the button, the popup's
 * words, Continue, the authorization server's login and consent (oidc-provider, the OAuth test
 * world), the call going on. Then the connections page of "Connections" lists the sign-in and
 * ends it. Only the try-out's ports and placeholder URLs are replaced: a setting renamed, a
 * default changed or a client API renamed breaks this test, not a reader's afternoon.
 * (What the bind protocol itself guarantees is oauth-bind-browser.test.ts's.)
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../../client/test/helpers/chromium.ts';
import { type StaticServer, serveStatic } from '../../client/test/helpers/static.ts';
import { type ChildProxy, startChildProxy } from './helpers/child-proxy.ts';
import { freePort } from './helpers/net.ts';
import { type OAuthWorld, startOAuthWorld } from './helpers/oauth-world.ts';

const doc = await readFile(new URL('../../../docs/oauth.md', import.meta.url), 'utf8');

/** The text of the `## title…` section, up to the next `## `. */
function section(title: string): string {
  const start = doc.indexOf(`\n## ${title}`);
  assert.ok(start >= 0, `docs/oauth.md has no section "${title}"`);
  const end = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, end < 0 ? undefined : end);
}

/** The one fenced block of `lang` in `text`, its list indentation removed. */
function block(text: string, lang: string): string {
  const blocks = [...text.matchAll(new RegExp(`^( *)\`\`\`${lang}\\n([\\s\\S]*?)^\\1\`\`\`$`, 'gm'))];
  assert.equal(blocks.length, 1, `expected one \`\`\`${lang} block`);
  const [, indent = '', body = ''] = blocks[0] ?? [];
  return body
    .split('\n')
    .map((line) => line.slice(indent.length))
    .join('\n');
}

/** `text` with each [from, to] replaced; every `from` must occur (the docs changed otherwise). */
function replaced(text: string, pairs: readonly (readonly [string, string])[]): string {
  let out = text;
  for (const [from, to] of pairs) {
    assert.ok(out.includes(from), `the snippet no longer contains ${from}`);
    out = out.replaceAll(from, to);
  }
  return out;
}

const setup = section('Set it up');
const envBlock = block(setup, 'env');
const appBlock = block(setup, 'html');
const connectionsBlock = block(section('Connections'), 'html');

describe('docs/oauth.md, followed step by step', () => {
  let world: OAuthWorld;
  let app: StaticServer;
  let proxy: ChildProxy;
  let browser: Browser;
  let dataDir: string;
  let env: Record<string, string>;
  let proxyOrigin: string;

  before(async () => {
    world = await startOAuthWorld();
    dataDir = await mkdtemp(join(tmpdir(), 'oauth-docs-walk-'));
    const proxyPort = await freePort();
    proxyOrigin = `http://127.0.0.1:${proxyPort}`;
    const page = replaced(appBlock, [
      ['http://127.0.0.1:8000', proxyOrigin],
      ['https://mcp.example.com/mcp', world.upstream.url],
    ]);
    // The app's origin is known once it listens: the env block's is filled in then.
    env = Object.fromEntries(
      replaced(envBlock, [
        ['127.0.0.1:8000', `127.0.0.1:${proxyPort}`],
        ['127.0.0.1:5173', '127.0.0.1:APP_PORT'],
      ])
        .split('\n')
        .filter((line) => /^[A-Z_]+=/.test(line))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    const connections = replaced(connectionsBlock, [
      ['https://proxy.example.com', proxyOrigin],
      ['await getUserToken()', JSON.stringify(env.PROXY_TOKEN)],
      ['https://mcp.linear.app/mcp', world.upstream.url],
    ]);
    app = await serveStatic({ '/': ['text/html', page], '/connections': ['text/html', connections] });
    for (const key of Object.keys(env))
      env[key] = (env[key] ?? '').replace('http://127.0.0.1:APP_PORT', app.origin);
    proxy = await startChildProxy(
      // Nothing but what the docs say: no loopback egress unless the env block allows it.
      { ALLOW_PRIVATE_NETWORKS: 'false', DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env },
      256,
      proxyPort,
    );
    browser = await launchChromium({ ignoreDefaultArgs: ['--disable-popup-blocking'] });
  });
  after(async () => {
    await browser?.close();
    await proxy?.stop();
    await app?.stop();
    await world?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('the env block and the app page bind the token they name and run the broker on PUBLIC_URL', () => {
    assert.ok(env.PROXY_TOKEN && appBlock.includes(`proxyToken: '${env.PROXY_TOKEN}'`), 'one token in both');
    assert.equal(env.PUBLIC_URL, proxyOrigin);
    assert.equal(env.CORS_ORIGINS, app.origin);
    assert.equal(env.OAUTH_BROKER, undefined, 'the broker is on by PUBLIC_URL alone');
  });

  it('a user signs in from the app page, the call goes on, the connections page ends it', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${app.origin}/`);
      const host = new URL(world.upstream.url).host;
      // Step 4: the first call shows the button; its click opens the popup.
      const button = await page.waitForSelector(`text=Sign in to ${host} to continue`);
      const popupOpened = page.waitForEvent('popup');
      await button.click();
      const popup = await popupOpened;
      assert.ok(popup.url().startsWith(`${proxyOrigin}/oauth/start/`), popup.url());
      // The button arms half a second after it shows.
      const go = await popup.waitForSelector('#go:visible:not([disabled])');
      const words = (await popup.textContent('body')) ?? '';
      assert.ok(
        words.includes(`Sign in to ${host} with your account at ${new URL(world.issuer).host}.`),
        words,
      );
      assert.ok(words.includes(`The app at ${app.origin} asks to connect your account.`), words);
      await go.click();
      await popup.waitForSelector('input[name=login]');
      await popup.fill('input[name=login]', 'alice');
      await popup.click('button');
      await popup.waitForSelector('button[value=approve]');
      const closed = popup.waitForEvent('close');
      await popup.click('button[value=approve]');
      await closed;
      await page.waitForSelector('text=Tools: echo, whoami, admin');
      assert.ok(world.upstream.authorizations().some((h) => h.startsWith('Bearer ')));

      // "Connections": the app's page lists the sign-in and its button ends it.
      await page.goto(`${app.origin}/connections`);
      const item = await page.waitForSelector('#connections li');
      const listed = (await item.textContent()) ?? '';
      assert.match(
        listed,
        new RegExp(`^${host.replaceAll('.', '\\.')} \\(mcp:read\\), token until `),
        listed,
      );
      await page.click('#connections li button');
      await page.waitForSelector('#connections li', { state: 'detached' });
      const left = await fetch(`${proxyOrigin}/oauth/connections`, {
        headers: { 'x-proxy-token': env.PROXY_TOKEN ?? '' },
      });
      assert.deepEqual(await left.json(), { connections: [] });
      assert.ok(world.as.events.includes('revoke'), world.as.events.join());
    } finally {
      await page.close();
    }
    assert.ok(proxy.alive(), proxy.output());
  });
});
