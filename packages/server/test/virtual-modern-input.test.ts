/**
 * Issue 20: a 2026-07-28 client (SDK v2) of a virtual server. A member's sampling or elicitation
 * request while a call runs becomes an input round (`InputRequiredResult`, answered by the
 * client's retry, the answer sent to the member), as for one session-era server; and a
 * `subscriptions/listen` stream carries the members' list changes and resource updates.
 * Members: server-everything (Streamable HTTP) and the feature fixture (stdio).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { COUNTER_URI } from './fixtures/feature-server.ts';
import { connectModernClient, type ModernClient, SAMPLED_TEXT } from './helpers/modern-client.ts';
import { featureStdio, startVirtualProxy, textOf, type VirtualProxy } from './helpers/virtual-proxy.ts';

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
  let world: VirtualProxy;
  const clients: ModernClient[] = [];
  const connect = async () => {
    const modern = await connectModernClient(world.proxy, '', { path: '/servers/workspace/mcp' });
    clients.push(modern);
    return modern;
  };

  before(async () => {
    world = await startVirtualProxy((url) => ({
      servers: { everything: { url, transport: 'streamable-http' }, local: featureStdio() },
      virtualServers: { workspace: { servers: ['everything', 'local'] } },
    }));
  });
  after(async () => {
    for (const client of clients) await client.close().catch(() => {});
    await world?.stop();
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
