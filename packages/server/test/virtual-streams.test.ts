/**
 * Issue 20, streams: what members send while they serve a virtual server's client reaches it.
 * One virtual server over server-everything (Streamable HTTP), the conformance fixture (stdio)
 * and an SDK v2 modern-only server, used through the official SDK v1 client: progress under the
 * client's own token, sampling and elicitation asked of the client and answered back to the
 * member, and resource URIs inside results mapped to the virtual server's.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ModernServer, startModernServer } from './fixtures/modern-server.ts';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { eventually } from './helpers/eventually.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import {
  type ConnectedClient,
  connectClient,
  ELICITED_NAME,
  SAMPLING_MODEL,
  serverTarget,
} from './helpers/mcp-client.ts';
import { type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const STDIO_FIXTURE = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));
/** Names `everything`, so sees `workspace` without its `local` member, and nothing of `solo`. */
const NO_LOCAL = 'virtual-streams-no-local-token-0123456789';
/** Names only virtual servers (`pair`, `solo`): sees every member of both. */
const PAIR_AND_SOLO = 'virtual-streams-pair-solo-token-0123456789';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

/** Every tool of every page of the merged list. */
async function allToolNames(client: ConnectedClient['client']): Promise<string[]> {
  const names: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 20; page++) {
    const result = await client.listTools(cursor === undefined ? {} : { cursor });
    names.push(...result.tools.map((tool) => tool.name));
    cursor = result.nextCursor;
    if (cursor === undefined) break;
  }
  return names;
}

function textOf(result: unknown): string {
  const content = (result as { content?: Array<{ text?: string }> }).content;
  return content?.map((part) => part.text ?? '').join('') ?? '';
}

describe('virtual server streams', () => {
  let everything: EverythingServer;
  let modern: ModernServer;
  let proxy: RunningProxy;
  let dir: string;
  const clients: ConnectedClient[] = [];
  const connect = async (name = 'workspace', token = TEST_TOKEN, roots = false) => {
    const connected = await connectClient(proxy, serverTarget(name), { roots, token });
    clients.push(connected);
    return connected;
  };

  before(async () => {
    [everything, modern] = await Promise.all([startEverything('streamableHttp'), startModernServer()]);
    dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-virtual-streams-'));
    const config = {
      servers: {
        everything: { url: everything.url, transport: 'streamable-http' },
        modern: { url: modern.url, transport: 'streamable-http' },
        local: {
          command: process.execPath,
          args: [STDIO_FIXTURE],
          env: compileCacheEnv(),
        },
      },
      virtualServers: {
        workspace: { servers: ['everything', 'local', 'modern'] },
        solo: { servers: ['local'] },
        pair: { servers: ['everything', 'modern'] },
      },
      tokens: [
        { sha256: sha256(TEST_TOKEN) },
        { sha256: sha256(NO_LOCAL), servers: ['workspace', 'everything', 'solo'] },
        { sha256: sha256(PAIR_AND_SOLO), servers: ['pair', 'solo'] },
      ],
    };
    writeFileSync(join(dir, 'proxy.json'), JSON.stringify(config));
    proxy = await startProxy({ MCP_PROXY_CONFIG: join(dir, 'proxy.json'), UPSTREAM_TIMEOUT_MS: '15000' });
  });
  after(async () => {
    for (const client of clients) await client.close().catch(() => {});
    await proxy?.close();
    await everything?.stop();
    await modern?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('maps the resource links and embedded resources of a tool result to virtual URIs', async () => {
    const { client } = await connect();
    const links = await client.callTool({ name: 'everything__get-resource-links', arguments: { count: 2 } });
    const linked = (links.content as Array<{ type: string; uri?: string }>).filter(
      (part) => part.type === 'resource_link',
    );
    assert.equal(linked.length, 2, JSON.stringify(links.content));
    for (const link of linked) assert.match(link.uri ?? '', /^mcpp:\/\/everything\/demo:\/\//);
    // What a tool linked is read through the same endpoint, and the read names the same URI.
    const read = await client.readResource({ uri: linked[0]?.uri as string });
    assert.equal(read.contents[0]?.uri, linked[0]?.uri);
    const embedded = await client.callTool({
      name: 'everything__get-resource-reference',
      arguments: { resourceType: 'Text', resourceId: 1 },
    });
    const resource = (embedded.content as Array<{ type: string; resource?: { uri: string } }>).find(
      (part) => part.type === 'resource',
    );
    assert.match(resource?.resource?.uri ?? '', /^mcpp:\/\/everything\/demo:\/\//);
  });

  it('relays a member’s progress under the client’s own progress token', async () => {
    const { client } = await connect();
    const seen: number[] = [];
    const result = await client.callTool(
      { name: 'everything__trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
      undefined,
      { onprogress: (progress) => seen.push(progress.progress) },
    );
    assert.match(textOf(result), /Long running operation completed/);
    assert.deepEqual(seen, [1, 2, 3], 'every step reached the caller, under its own token');
    const modernSeen: number[] = [];
    await client.callTool({ name: 'modern__slow', arguments: { steps: 2, intervalMs: 20 } }, undefined, {
      onprogress: (progress) => modernSeen.push(progress.progress),
    });
    assert.deepEqual(modernSeen, [1, 2], 'a modern member’s progress too');
  });

  it('asks the client a member’s sampling, elicitation and roots, and answers the member', async () => {
    const connected = await connect('workspace', TEST_TOKEN, true);
    const sampled = await connected.client.callTool({
      name: 'everything__trigger-sampling-request',
      arguments: { prompt: 'the weather', maxTokens: 20 },
    });
    assert.match(textOf(sampled), new RegExp(SAMPLING_MODEL), 'the client’s answer reached the member');
    assert.equal(connected.samplingRequests.length, 1);
    const elicited = await connected.client.callTool({
      name: 'everything__trigger-elicitation-request',
      arguments: {},
    });
    assert.match(textOf(elicited), new RegExp(ELICITED_NAME));
    // A modern member asks through an input round: the era bridge makes it a server request.
    const summary = await connected.client.callTool({
      name: 'modern__summarize',
      arguments: { topic: 'MCP' },
    });
    assert.match(textOf(summary), /Summary: answer to: Summarize MCP/);
    assert.equal(connected.samplingRequests.length, 2);
    const roots = await connected.client.callTool({ name: 'everything__get-roots-list', arguments: {} });
    assert.match(textOf(roots), /matrix-root/, 'the client’s roots reached the member');
  });

  it('streams a member’s list changes, log messages and resource updates on the GET stream', async () => {
    const connected = await connect();
    const { client, notifications } = connected;
    await connected.standaloneOpened(10_000);
    // (server-everything may tell of its own changes too: the `solo` test below tells them apart.)
    await client.callTool({ name: 'local__grow', arguments: { delayMs: 50 } });
    await notifications.waitFor('notifications/tools/list_changed', 10_000);
    await eventually(async () => (await allToolNames(client)).includes('local__grown_1'), {
      what: 'local__grown_1 listed',
    });
    // logging/setLevel reaches every member that logs; the member filters by it.
    await client.setLoggingLevel('warning');
    await client.callTool({ name: 'local__log', arguments: { level: 'info', data: 'quiet' } });
    await client.callTool({ name: 'local__log', arguments: { level: 'error', data: 'loud' } });
    const logged = await notifications.waitFor('notifications/message', 10_000);
    assert.deepEqual(logged.params, { level: 'error', logger: 'local/fixture', data: 'loud' });
    assert.equal(notifications.all('notifications/message').length, 1, 'the info message was filtered');
    // A subscription goes to the member by the mapped URI; its update comes back mapped.
    const counter = 'mcpp://local/fixture://counter';
    await client.subscribeResource({ uri: counter });
    await client.callTool({ name: 'local__touch', arguments: { delayMs: 50 } });
    const updated = await notifications.waitFor('notifications/resources/updated', 10_000);
    assert.equal(updated.params?.uri, counter);
    await client.unsubscribeResource({ uri: counter });
  });

  it('never streams a member to a principal on a virtual server that does not have it', async () => {
    const pair = await connect('pair', PAIR_AND_SOLO);
    const solo = await connect('solo', PAIR_AND_SOLO);
    await Promise.all([pair.standaloneOpened(10_000), solo.standaloneOpened(10_000)]);
    // The principal's session with `local` (reached through `solo`) tells of a new tool.
    await solo.client.callTool({ name: 'local__grow', arguments: { delayMs: 50 } });
    await solo.notifications.waitFor('notifications/tools/list_changed', 10_000);
    // Both streams were open when it came; the `pair` one (no `local` there) got nothing.
    await solo.client.ping();
    assert.equal(pair.notifications.all('notifications/tools/list_changed').length, 0);
    const listed = await allToolNames(pair.client);
    assert.ok(listed.length > 0 && listed.every((name) => !name.startsWith('local__')), listed.join(', '));
  });

  it('shows a member its grants do not name on no virtual server', async () => {
    const hidden = await connect('workspace', NO_LOCAL);
    const listed = await allToolNames(hidden.client);
    assert.ok(listed.length > 0 && listed.every((name) => !name.startsWith('local__')), listed.join(', '));
    const solo = await connect('solo', NO_LOCAL);
    assert.deepEqual(await allToolNames(solo.client), []);
  });
});
