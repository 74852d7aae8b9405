/**
 * The `/status` page in Debian's Chromium (issue 21): it runs under its strict CSP (no violation
 * reported), takes the token from the URL fragment and forgets it there, or from its form,
 * shows live counters, upstreams, sessions and egress refusals, writes caller-chosen text as
 * text (a refused host that looks like markup stays text), and refuses a wrong token. A second
 * instance shares the first one's store: the page lists both, marking the one that answered.
 * `STATUS_SCREENSHOT=docs/status.png` (from the repository root) saves the screenshot the docs use.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';

/** What functions run in the page read (the tests compile without DOM types). */
type InPage = { document: { querySelector(selector: string): { textContent: string | null } | null } };

import { launchChromium } from '../../client/test/helpers/chromium.ts';
import { SYSTEM_CLOCK } from '../src/clock.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { namespaced } from '../src/store/store.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';
import { type RecordingUpstream, startRecordingUpstream } from './helpers/recording-upstream.ts';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
const ADMIN_TOKEN = 'admin-token-0123456789abcdef012345';

const initialize = (url: string, id = 1) => ({
  mcp_server_url: url,
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'status-page', version: '1' },
  },
});

describe('/status in Chromium', () => {
  let upstream: EverythingServer;
  let stateless: RecordingUpstream;
  let proxy: RunningProxy;
  let second: RunningProxy;
  const store = new MemoryStore(SYSTEM_CLOCK);
  let browser: Browser;
  const cspViolations: string[] = [];

  before(async () => {
    upstream = await startEverything('sse');
    stateless = await startRecordingUpstream(['echo']);
    const config = join(mkdtempSync(join(tmpdir(), 'mcp-proxy-status-')), 'proxy.json');
    writeFileSync(
      config,
      JSON.stringify({
        servers: { everything: { url: upstream.url, transport: 'sse' }, tools: { url: stateless.url } },
      }),
    );
    const env = {
      MCP_PROXY_CONFIG: config,
      HOST: '127.0.0.1',
      METRICS_TOKEN,
      ADMIN_TOKEN,
      EGRESS_DENIED_HOSTS: 'internal.example',
    };
    proxy = await startProxy(env, { store: namespaced(store, '') });
    second = await startProxy(env, { store: namespaced(store, '') });
    // The second instance holds a session of its own.
    assert.equal(
      (
        await postProxy(second, {
          ...initialize(stateless.url),
          mcp_server_url: undefined,
          server: 'everything',
        })
      ).status,
      200,
    );
    // Some traffic: a held session over HTTP+SSE, calls, refusals (one with a markup-like host).
    const { mcp_server_url: _, ...named } = initialize(upstream.url);
    const opened = await postProxy(proxy, { ...named, server: 'everything' });
    assert.equal(opened.status, 200, JSON.stringify(opened.body));
    for (let id = 2; id <= 4; id++) await postProxy(proxy, initialize(stateless.url, id));
    await postProxy(proxy, initialize('http://internal.example/mcp?key=never-shown'));
    await postProxy(proxy, initialize('http://169.254.169.254/latest/meta-data'));
    await postProxy(proxy, initialize('http://<img src=x onerror=alert(1)>/mcp'));
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await proxy?.close();
    await second?.close();
    await store.close();
    await upstream?.stop();
    await stateless?.stop();
  });

  async function open(path: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.on('console', (message) => {
      if (/Content.Security.Policy|Refused to|TrustedHTML/i.test(message.text()))
        cspViolations.push(message.text());
    });
    await page.goto(`${proxy.url}${path}`);
    return page;
  }

  it('shows the live status with the token from the fragment, and forgets it there', async () => {
    const page = await open(`/status#token=${METRICS_TOKEN}`);
    try {
      await page.waitForSelector('#upstreams td:not(.muted)');
      assert.equal(new URL(page.url()).hash, '', 'the token left the address bar');
      const text = await page.textContent('#view');
      assert.match(text ?? '', /held sessions/);
      assert.match((await page.textContent('#sessions')) ?? '', /sse/);
      // Both instances: a header row and one each (the second is heard within a beat).
      await page.locator('#instances tr').nth(2).waitFor({ timeout: 10_000 });
      const instances = (await page.textContent('#instances')) ?? '';
      assert.equal(instances.match(/\(this one\)/g)?.length, 1, instances);
      assert.equal(await page.locator('#instances tr').count(), 3, 'a header and both instances');
      // Sessions by kind and instance: this one's SSE session and sockets, the other's session.
      const sessions = (await page.textContent('#sessions')) ?? '';
      assert.ok((sessions.match(/\(this one\)/g) ?? []).length >= 2, sessions);
      const upstreams = (await page.textContent('#upstreams')) ?? '';
      assert.match(upstreams, new RegExp(`everything${new URL(upstream.url).host}up`));
      const refusals = (await page.textContent('#refusals')) ?? '';
      assert.match(refusals, /internal\.example/);
      assert.match(refusals, /169\.254\.169\.254/);
      assert.ok(!refusals.includes('never-shown') && !refusals.includes('meta-data'), 'hosts only');
      assert.match((await page.textContent('#codes')) ?? '', /target_forbidden/);
      // Caller-chosen text is text: no element was made from it.
      assert.equal(await page.locator('#refusals img').count(), 0);
      // Polling goes on: the request counter moves with traffic.
      const count = async () => Number(await page.locator('.tile b').first().textContent());
      const seen = await count();
      await postProxy(proxy, initialize(stateless.url, 5));
      await page.waitForFunction(
        (previous) =>
          Number((globalThis as unknown as InPage).document.querySelector('.tile b')?.textContent) > previous,
        seen,
        { timeout: 10_000 },
      );
      const shot = process.env.STATUS_SCREENSHOT
        ? resolve(process.cwd(), process.env.STATUS_SCREENSHOT)
        : join(mkdtempSync(join(tmpdir(), 'mcp-proxy-status-')), 'status.png');
      await page.screenshot({ path: shot, fullPage: true });
      assert.deepEqual([...readFileSync(shot).subarray(1, 4)], [...Buffer.from('PNG')]);
      assert.deepEqual(cspViolations, []);
    } finally {
      await page.close();
    }
  });

  it('takes an admin token from its form and refuses a wrong one', async () => {
    const page = await open('/status');
    try {
      await page.waitForSelector('#login:not([hidden])');
      await page.fill('#token', proxy.token);
      await page.click('#login button');
      await page.waitForFunction(
        () =>
          (globalThis as unknown as InPage).document.querySelector('#problem')?.textContent ===
          'That token was refused.',
      );
      assert.equal(await page.isVisible('#view'), false);
      await page.fill('#token', ADMIN_TOKEN);
      await page.click('#login button');
      await page.waitForSelector('#view:not([hidden])');
      assert.match((await page.textContent('#instance')) ?? '', /^instance /);
      assert.deepEqual(cspViolations, []);
    } finally {
      await page.close();
    }
  });
});
