/**
 * Issue 20, streams: what members send while they serve a virtual server's client reaches it.
 * One virtual server over server-everything (Streamable HTTP), the conformance fixture (stdio)
 * and an SDK v2 modern-only server, used through the official SDK v1 client: progress under the
 * client's own token, sampling and elicitation asked of the client and answered back to the
 * member, and resource URIs inside results mapped to the virtual server's.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ModernServer, startModernServer } from './fixtures/modern-server.ts';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import {
  type ConnectedClient,
  connectClient,
  ELICITED_NAME,
  SAMPLING_MODEL,
  serverTarget,
} from './helpers/mcp-client.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

const STDIO_FIXTURE = fileURLToPath(new URL('./fixtures/conformance-stdio.ts', import.meta.url));

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
  const connect = async (name = 'workspace') => {
    const connected = await connectClient(proxy, serverTarget(name), { roots: false });
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
          args: ['--experimental-strip-types', '--no-warnings', STDIO_FIXTURE],
          env: compileCacheEnv(),
        },
      },
      virtualServers: { workspace: { servers: ['everything', 'local', 'modern'] } },
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

  it('asks the client a member’s sampling and elicitation, and answers the member', async () => {
    const connected = await connect();
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
  });
});
