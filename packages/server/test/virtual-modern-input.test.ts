/**
 * Issue 20: a 2026-07-28 client (SDK v2) of a virtual server. A member's sampling or elicitation
 * request while a call runs becomes an input round (`InputRequiredResult`, answered by the
 * client's retry, the answer sent to the member), as for one session-era server; and a
 * `subscriptions/listen` stream carries the members' list changes and resource updates.
 * Members: server-everything (Streamable HTTP) and the feature fixture (stdio).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { COUNTER_URI } from './fixtures/feature-server.ts';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { connectModernClient, type ModernClient, SAMPLED_TEXT } from './helpers/modern-client.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

const STDIO_FIXTURE = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));

function textOf(result: unknown): string {
  const content = (result as { content?: Array<{ text?: string }> }).content;
  return content?.map((part) => part.text ?? '').join('') ?? '';
}

/** Resolves when `notified` is, or fails after 5 s naming what did not come. */
async function within5s(notified: Promise<void>, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within 5 s`)), 5_000);
  });
  try {
    await Promise.race([notified, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('a virtual server’s 2026-07-28 clients', () => {
  let everything: EverythingServer;
  let proxy: RunningProxy;
  let dir: string;
  const clients: ModernClient[] = [];
  const connect = async () => {
    const modern = await connectModernClient(proxy, '', { path: '/servers/workspace/mcp' });
    clients.push(modern);
    return modern;
  };

  before(async () => {
    everything = await startEverything('streamableHttp');
    dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-virtual-modern-input-'));
    const config = {
      servers: {
        everything: { url: everything.url, transport: 'streamable-http' },
        local: { command: process.execPath, args: [STDIO_FIXTURE], env: compileCacheEnv() },
      },
      virtualServers: { workspace: { servers: ['everything', 'local'] } },
    };
    writeFileSync(join(dir, 'proxy.json'), JSON.stringify(config));
    proxy = await startProxy({ MCP_PROXY_CONFIG: join(dir, 'proxy.json'), UPSTREAM_TIMEOUT_MS: '15000' });
  });
  after(async () => {
    for (const client of clients) await client.close().catch(() => {});
    await proxy?.close();
    await everything?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('asks a member’s sampling and elicitation in input rounds and answers the member', async () => {
    const modern = await connect();
    const sampled = await modern.client.callTool({
      name: 'everything__trigger-sampling-request',
      arguments: { prompt: 'the weather', maxTokens: 20 },
    });
    assert.match(textOf(sampled), new RegExp(SAMPLED_TEXT), 'the client’s answer reached the member');
    assert.equal(modern.samplings.length, 1);
    const elicited = await modern.client.callTool({ name: 'local__elicit', arguments: {} });
    assert.equal(textOf(elicited), 'elicited accept: {"ok":true}');
    assert.equal(modern.elicitations.length, 1);
  });

  it('carries list changes and resource updates on a subscriptions/listen stream', async () => {
    const modern = await connect();
    const changed = Promise.withResolvers<void>();
    const updated = Promise.withResolvers<void>();
    const uri = `mcpp://local/${COUNTER_URI}`;
    modern.client.setNotificationHandler('notifications/tools/list_changed', () => changed.resolve());
    modern.client.setNotificationHandler('notifications/resources/updated', (notification) => {
      if (notification.params.uri === uri) updated.resolve();
    });
    const subscription = await modern.client.listen({ toolsListChanged: true, resourceSubscriptions: [uri] });
    assert.deepEqual(subscription.honoredFilter, { toolsListChanged: true, resourceSubscriptions: [uri] });
    const grown = await modern.client.callTool({ name: 'local__grow', arguments: { delayMs: 20 } });
    assert.match(textOf(grown), /will be added/);
    await within5s(changed.promise, 'tools list_changed');
    // Bumped after the call answered: the update travels outside any request.
    await modern.client.callTool({ name: 'local__touch', arguments: { delayMs: 50 } });
    await within5s(updated.promise, `resources/updated of ${uri}`);
    await subscription.close();
  });
});
