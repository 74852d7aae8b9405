/**
 * Issue 20: a virtual server with `prefix: none` shows its members' tools and prompts under their
 * own names. Two members (server-everything over Streamable HTTP, the feature fixture over
 * stdio) both list `echo`: it is hidden from both, named in the first page's `_meta` and logged
 * once; every other name reaches its own member. One member alone needs no reading of lists,
 * and its resource URIs are its own too (nothing to route); several members' stay mapped.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type ConnectedClient, connectClient, serverTarget } from './helpers/mcp-client.ts';
import type { RunningProxy } from './helpers/proxy.ts';
import { featureStdio, startVirtualProxy, textOf, type VirtualProxy } from './helpers/virtual-proxy.ts';

const AMBIGUOUS = 'io.github.mcp-proxy/ambiguous';

describe('a virtual server without prefixes', () => {
  let world: VirtualProxy;
  let proxy: RunningProxy;
  const clients: ConnectedClient[] = [];
  const connect = async (name: string) => {
    const connected = await connectClient(proxy, serverTarget(name));
    clients.push(connected);
    return connected.client;
  };

  before(async () => {
    world = await startVirtualProxy((url) => ({
      servers: { everything: { url, transport: 'streamable-http' }, local: featureStdio() },
      virtualServers: {
        flat: { servers: ['everything', 'local'], prefix: 'none' },
        solo: { servers: ['local'], prefix: 'none' },
        whole: { servers: ['everything'], prefix: 'none' },
      },
    }));
    proxy = world.proxy;
  });
  after(async () => {
    for (const client of clients) await client.close().catch(() => {});
    await world?.stop();
  });

  it('lists names as the members do, hides a name two members list, and routes the others', async () => {
    const client = await connect('flat');
    const names: string[] = [];
    const first = await client.listTools();
    assert.deepEqual(first._meta?.[AMBIGUOUS], [{ name: 'echo', servers: ['everything', 'local'] }]);
    let page = first;
    for (let pages = 0; pages < 20; pages++) {
      names.push(...page.tools.map((tool) => tool.name));
      if (page.nextCursor === undefined) break;
      page = await client.listTools({ cursor: page.nextCursor });
    }
    assert.ok(names.includes('get-sum'), names.join());
    assert.ok(names.includes('pid'), names.join());
    assert.ok(!names.includes('echo'), 'hidden from both members');
    assert.ok(!names.some((name) => name.includes('__')), 'no name is prefixed');

    const sum = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
    assert.match(textOf(sum), /5/);
    const pid = await client.callTool({ name: 'pid', arguments: {} });
    assert.match(textOf(pid), /^\d+$/, 'the stdio member’s own tool');
    await assert.rejects(client.callTool({ name: 'echo', arguments: { message: 'hi' } }), /-32602.*echo/s);

    // Prompts are claimed the same way: server-everything's own reach it unprefixed.
    const prompts = await client.listPrompts();
    const prompt = prompts.prompts.find((entry) => entry.name === 'simple-prompt');
    assert.ok(prompt, JSON.stringify(prompts.prompts.map((entry) => entry.name)));
    const got = await client.getPrompt({ name: 'simple-prompt' });
    assert.ok(got.messages.length > 0);

    // Resources keep their reversible mapping: nothing tells two members' URIs apart otherwise.
    const resources = await client.listResources();
    for (const resource of resources.resources) assert.match(resource.uri, /^mcpp:\/\/(everything|local)\//);

    await client.listTools();
    const logged = proxy.logs.filter((line) => line.includes('listed by several members'));
    assert.equal(logged.length, 1, 'the collision is logged once');
    assert.match(logged[0] ?? '', /"name":"echo"/);
  });

  it('sends every name to the one member of a virtual server of one member', async () => {
    const client = await connect('solo');
    const listed = await client.listTools();
    assert.ok(listed.tools.some((tool) => tool.name === 'echo'));
    assert.equal(listed._meta?.[AMBIGUOUS], undefined);
    const echoed = await client.callTool({ name: 'echo', arguments: { message: 'hi' } });
    assert.equal(textOf(echoed), 'Echo: hi');
    // A name the member does not have is the member's to answer (this SDK server: a tool error).
    const unknown = await client.callTool({ name: 'no-such-tool', arguments: {} });
    assert.equal(unknown.isError, true);
    assert.match(textOf(unknown), /no-such-tool/);
  });

  it('shows the resource URIs of the one member as the member does, and reads them', async () => {
    const client = await connect('whole');
    const { resources } = await client.listResources();
    assert.ok(resources.length > 0);
    for (const resource of resources) assert.doesNotMatch(resource.uri, /^mcpp:/, resource.uri);
    const first = resources[0]?.uri as string;
    const read = await client.readResource({ uri: first });
    assert.equal(read.contents[0]?.uri, first, 'the read names the URI as asked');
    const { resourceTemplates } = await client.listResourceTemplates();
    assert.ok(resourceTemplates.length > 0);
    for (const template of resourceTemplates) assert.doesNotMatch(template.uriTemplate, /^mcpp:/);
    // A tool's links are the member's, and read through the virtual server as they are.
    const links = await client.callTool({ name: 'get-resource-links', arguments: { count: 2 } });
    const linked = (links.content as Array<{ type: string; uri?: string }>).filter(
      (part) => part.type === 'resource_link',
    );
    assert.equal(linked.length, 2);
    for (const link of linked) {
      assert.doesNotMatch(link.uri ?? '', /^mcpp:/);
      const again = await client.readResource({ uri: link.uri as string });
      assert.equal(again.contents[0]?.uri, link.uri);
    }
    await assert.rejects(client.readResource({ uri: 'mcpp://everything/x' }), /-32602|Unknown resource/);
  });
});
