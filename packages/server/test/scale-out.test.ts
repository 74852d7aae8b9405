/**
 * Issue 19 with real parts: three proxy processes sharing a real Redis, behind real nginx
 * balancing round robin with no affinity (test/helpers/cluster.ts), driven by the SDK clients.
 * Every proxy-held session (legacy SSE, stdio and WebSocket upstreams through `/mcp`, `POST
 * /proxy` sessions, a modern client's input rounds) works whichever instance each request lands
 * on; when the instance holding sessions is killed, its sessions answer 404 within seconds and the
 * others' lose nothing.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { COUNTER_URI } from './fixtures/feature-server.ts';
import { startWsUpstream, type WsUpstream } from './fixtures/ws-upstream.ts';
import { type Cluster, startCluster } from './helpers/cluster.ts';
import { eventually } from './helpers/eventually.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { connectClient, SAMPLING_MODEL, serverTarget, urlTarget } from './helpers/mcp-client.ts';
import { connectModernClient, SAMPLED_TEXT } from './helpers/modern-client.ts';
import { postProxy } from './helpers/proxy.ts';

const featureServerEntry = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));
const REQUEST = { timeout: 15_000 } as const;
const INITIALIZE = {
  protocolVersion: '2025-06-18',
  capabilities: {},
  clientInfo: { name: 'scale-out-test', version: '1' },
};

/** The text of a tool result's first content item. */
// biome-ignore lint/suspicious/noExplicitAny: tool results are arbitrary JSON.
function textOf(result: any): string {
  return result?.content?.[0]?.text ?? '';
}

/** The parent process of `pid` (a stdio server's parent is the instance holding it). */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 4, after the command in parentheses (which may hold spaces).
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

describe('three instances behind nginx round robin, sharing Redis (issue 19)', () => {
  let dir: string;
  let cluster: Cluster;
  let sse: EverythingServer;
  let ws: WsUpstream;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcpp-scale-out-'));
    const config = join(dir, 'proxy.json');
    await writeFile(
      config,
      JSON.stringify({ servers: { feat: { command: process.execPath, args: [featureServerEntry] } } }),
    );
    [sse, ws, cluster] = await Promise.all([
      startEverything('sse'),
      startWsUpstream(),
      startCluster({ instances: 3, env: { MCP_PROXY_CONFIG: config } }),
    ]);
  });
  after(async () => {
    await cluster?.stop();
    await sse?.stop();
    await ws?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('/mcp to a legacy SSE upstream: connect, calls, progress and sampling', async () => {
    const client = await connectClient(cluster, urlTarget(sse.url, 'sse'));
    try {
      for (let i = 0; i < 6; i++) {
        const echoed = await client.client.callTool(
          { name: 'echo', arguments: { message: `m${i}` } },
          undefined,
          REQUEST,
        );
        assert.match(textOf(echoed), new RegExp(`m${i}`));
      }
      const progress: number[] = [];
      await client.client.callTool(
        { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } },
        undefined,
        { ...REQUEST, onprogress: (p) => progress.push(p.progress) },
      );
      assert.deepEqual(progress, [1, 2, 3]);
      const sampled = await client.client.callTool(
        { name: 'trigger-sampling-request', arguments: { prompt: 'hi', maxTokens: 10 } },
        undefined,
        REQUEST,
      );
      assert.equal(client.samplingRequests.length, 1);
      assert.match(JSON.stringify(sampled), new RegExp(SAMPLING_MODEL));
    } finally {
      await client.close();
    }
  });

  it('/mcp to a stdio server: one upstream process, progress, logs, sampling and the GET stream', async () => {
    const client = await connectClient(cluster, serverTarget('feat'));
    try {
      const pids = new Set<string>();
      for (let i = 0; i < 6; i++)
        pids.add(textOf(await client.client.callTool({ name: 'pid' }, undefined, REQUEST)));
      assert.equal(pids.size, 1, `one upstream process, saw ${[...pids].join(', ')}`);
      const progress: number[] = [];
      await client.client.callTool({ name: 'progress', arguments: { steps: 3, intervalMs: 5 } }, undefined, {
        ...REQUEST,
        onprogress: (p) => progress.push(p.progress),
      });
      assert.deepEqual(progress, [1, 2, 3]);
      await client.client.setLoggingLevel('info', REQUEST);
      await client.client.callTool(
        { name: 'log', arguments: { level: 'warning', data: 'across' } },
        undefined,
        REQUEST,
      );
      const logged = await client.notifications.waitFor('notifications/message', 5_000);
      assert.equal((logged.params as { data?: unknown }).data, 'across');
      const sampled = await client.client.callTool(
        { name: 'sample', arguments: { prompt: 'x' } },
        undefined,
        REQUEST,
      );
      assert.match(textOf(sampled), new RegExp(SAMPLING_MODEL));
      // A notification sent when no request runs travels on the GET stream, relayed too.
      await client.standaloneOpened(5_000);
      await client.client.subscribeResource({ uri: COUNTER_URI }, REQUEST);
      await client.client.callTool({ name: 'touch', arguments: { delayMs: 50 } }, undefined, REQUEST);
      await client.notifications.waitFor('notifications/resources/updated', 5_000);
      assert.deepEqual(client.errors, []);
    } finally {
      await client.close();
    }
  });

  it('/mcp to a WebSocket upstream: one upstream connection serves every hop', async () => {
    const before = ws.connections.length;
    const client = await connectClient(cluster, urlTarget(ws.url, 'websocket'));
    try {
      for (let i = 0; i < 6; i++) {
        const echoed = await client.client.callTool(
          { name: 'echo', arguments: { message: `w${i}` } },
          undefined,
          REQUEST,
        );
        assert.ok(!echoed.isError, JSON.stringify(echoed));
      }
      const sampled = await client.client.callTool(
        { name: 'sample', arguments: { prompt: 'x' } },
        undefined,
        REQUEST,
      );
      assert.match(textOf(sampled), new RegExp(SAMPLING_MODEL));
      assert.equal(ws.connections.length - before, 1, 'one upstream connection');
    } finally {
      await client.close();
    }
  });

  it('POST /proxy sessions: every call succeeds, whichever instance it lands on', async () => {
    let failed = 0;
    for (let session = 0; session < 4; session++) {
      const opened = await postProxy(cluster, {
        server: 'feat',
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: INITIALIZE,
      });
      assert.equal(opened.status, 200, JSON.stringify(opened.body));
      const sessionId = opened.headers.get('mcp-session-id') as string;
      const pids = new Set<string>();
      for (let call = 0; call < 5; call++) {
        const reply = await postProxy(cluster, {
          server: 'feat',
          mcp_session_id: sessionId,
          jsonrpc: '2.0',
          id: call + 2,
          method: 'tools/call',
          params: { name: 'pid' },
        });
        if (reply.status !== 200) failed += 1;
        else pids.add(textOf(reply.body.result));
      }
      assert.equal(pids.size, 1);
    }
    assert.equal(failed, 0);
  });

  it("a modern client's input rounds cross instances", async () => {
    const modern = await connectModernClient(cluster, '', { path: '/servers/feat/mcp' });
    try {
      for (let i = 0; i < 3; i++) {
        const result = await modern.client.callTool({ name: 'sample', arguments: { prompt: `round ${i}` } });
        assert.match(JSON.stringify(result.content), new RegExp(SAMPLED_TEXT));
      }
      assert.equal(modern.samplings.length, 3);
    } finally {
      await modern.close();
    }
  });

  it('kill -9 of the instance relaying a call: the owner cancels it upstream', async () => {
    const [, owner, relaying] = cluster.instances;
    assert.ok(owner && relaying);
    const client = await connectClient({ url: owner.url, token: cluster.token }, serverTarget('feat'));
    try {
      const requestId = 'relayed-then-orphaned';
      const body = JSON.stringify({
        jsonrpc: '2.0',
        id: requestId,
        method: 'tools/call',
        params: { name: 'slow', arguments: { ms: 30_000 }, _meta: { progressToken: requestId } },
      });
      const request = httpRequest(`${relaying.url}/servers/feat/mcp`, {
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          accept: 'application/json, text/event-stream',
          'x-proxy-token': cluster.token,
          'mcp-session-id': client.transport.sessionId as string,
          'mcp-protocol-version': '2025-11-25',
        },
      });
      request.on('error', () => {});
      const response = await new Promise<IncomingMessage>((resolve, reject) => {
        request.once('response', resolve);
        request.once('error', reject);
        request.end(body);
      });
      assert.equal(response.statusCode, 200);
      response.on('error', () => {});
      await new Promise<void>((resolve) => response.once('data', () => resolve()));
      await relaying.kill('SIGKILL');
      const observed = await eventually(
        async () => {
          const result = await client.client.callTool({ name: 'cancellations' }, undefined, REQUEST);
          const list = JSON.parse(textOf(result)) as Array<{ requestId: unknown }>;
          return list.find((entry) => entry.requestId === requestId);
        },
        { timeoutMs: 10_000, intervalMs: 100, what: 'the owner cancelling the orphaned call upstream' },
      );
      assert.ok(observed);
    } finally {
      await client.close();
      await relaying.restart();
    }
  });

  // Last: it kills an instance.
  it('kill -9 of an instance: its sessions answer 404 within seconds, the others lose nothing', async (t) => {
    const byPid = new Map(cluster.instances.map((instance) => [instance.child().pid, instance]));
    const ownerOf = (upstreamPid: string) => byPid.get(parentOf(Number(upstreamPid)));
    // Mid-session: an SDK client with its GET stream open; its owner is the one killed.
    const client = await connectClient(cluster, serverTarget('feat'));
    t.after(() => client.close());
    await client.standaloneOpened(5_000);
    const victim = ownerOf(textOf(await client.client.callTool({ name: 'pid' }, undefined, REQUEST)));
    assert.ok(victim, 'the client session has an owner among the instances');
    // POST /proxy sessions, spread over the instances by round robin.
    const sessions: { id: string; owner: number | undefined }[] = [];
    for (let i = 0; i < 9; i++) {
      const opened = await postProxy(cluster, {
        server: 'feat',
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: INITIALIZE,
      });
      const id = opened.headers.get('mcp-session-id') as string;
      const pid = await postProxy(cluster, {
        server: 'feat',
        mcp_session_id: id,
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'pid' },
      });
      sessions.push({ id, owner: ownerOf(textOf(pid.body.result))?.index });
    }
    const theirs = sessions.filter((s) => s.owner === victim.index);
    const others = sessions.filter((s) => s.owner !== victim.index);
    assert.ok(theirs.length > 0 && others.length > 0, JSON.stringify(sessions));

    await victim.kill('SIGKILL');
    const killed = Date.now();
    // The client's GET stream ends (relayed or not), and its next call fails: nothing hangs.
    await eventually(() => client.standaloneEnded(), {
      timeoutMs: 10_000,
      what: "the client's GET stream ending",
    });
    const streamEndedAfter = Date.now() - killed;
    await assert.rejects(client.client.callTool({ name: 'pid' }, undefined, REQUEST));
    const clientFailedAfter = Date.now() - killed;
    const ping = (id: string) =>
      postProxy(cluster, { server: 'feat', mcp_session_id: id, jsonrpc: '2.0', id: 3, method: 'ping' });
    const waits: number[] = [];
    for (const session of theirs) {
      const started = Date.now();
      const reply = await ping(session.id);
      waits.push(Date.now() - started);
      assert.equal(reply.status, 404, JSON.stringify(reply.body));
      assert.equal(reply.body.error.data.code, 'session_not_found');
    }
    t.diagnostic(
      `after kill -9: GET stream ended in ${streamEndedAfter} ms, client call failed in ${clientFailedAfter} ms; 404s took ${waits.join(', ')} ms`,
    );
    // A relayed stream ends once the owner's heartbeat expires (5 s, checked every 1.5 s); one
    // relay may wait for the acknowledgement (2 s) before that: never a hang.
    assert.ok(clientFailedAfter < 12_000, `client call failed after ${clientFailedAfter} ms`);
    assert.ok(
      waits.every((wait) => wait < 5_000),
      `404s took ${waits.join(', ')} ms`,
    );
    for (const session of others) {
      const reply = await ping(session.id);
      assert.equal(reply.status, 200, `${JSON.stringify(reply.body)}\n${cluster.output()}`);
    }
  });
});
