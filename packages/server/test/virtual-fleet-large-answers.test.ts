/**
 * Review 10 (virtual fleet), finding 4: a client's answer to a member's server request that
 * must cross to the asking instance is silently dropped when it is larger than the per-principal
 * in-flight bound (virtual/fleet-channels.ts #publish: FLEET_LIMITS.principalBytes, 1 MiB), though
 * the proxy accepted the POST (202, BODY_LIMIT_BYTES allows it) and would have delivered the same
 * answer posted to the asking instance. `VirtualServers.answer` ignores `#publish`'s false, so
 * the client is told nothing and the member waits until its call times out. A sampling result
 * with an image (base64) passes 1 MiB easily.
 *
 * Asserted: an answer the proxy accepts reaches the member through either instance.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { eventually } from './helpers/eventually.ts';
import { type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';
import { type RedisServer, startRedis } from './helpers/redis.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));
const PATH = '/servers/solo/mcp';
const SECRET = 'review10-fleet-4-session-secret-0123456789abcdef';
const sha256hex = (text: string) => createHash('sha256').update(text).digest('hex');

// biome-ignore lint/suspicious/noExplicitAny: JSON-RPC messages are arbitrary JSON.
type Message = any;

const headers = (session?: string) => ({
  authorization: `Bearer ${TEST_TOKEN}`,
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2025-06-18',
  ...(session === undefined ? {} : { 'mcp-session-id': session }),
});

let redis: RedisServer;
let dir: string;
let a: RunningProxy;
let b: RunningProxy;

before(async () => {
  redis = await startRedis();
  dir = await mkdtemp(join(tmpdir(), 'mcpp-review10-fleet-4-'));
  const config = {
    servers: { local: { command: process.execPath, args: [FIXTURE], env: compileCacheEnv() } },
    virtualServers: { solo: { servers: ['local'] } },
    tokens: [{ sha256: sha256hex(TEST_TOKEN) }],
  };
  await writeFile(join(dir, 'proxy.json'), JSON.stringify(config));
  const env = {
    REDIS_URL: redis.url,
    SESSION_SECRET: SECRET,
    MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
    LOG_LEVEL: 'warn',
    UPSTREAM_TIMEOUT_MS: '8000',
    BODY_LIMIT_BYTES: String(4 << 20),
  };
  [a, b] = await Promise.all([startProxy(env), startProxy(env)]);
});
after(async () => {
  await a?.close();
  await b?.close();
  await redis?.stop();
  await rm(dir, { recursive: true, force: true });
});

it('delivers a large accepted answer to the instance that asked', { timeout: 60_000 }, async () => {
  const opened = await fetch(`${a.url}${PATH}`, {
    method: 'POST',
    headers: headers(),
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: { sampling: {} },
        clientInfo: { name: 'r10', version: '1' },
      },
    }),
  });
  await opened.arrayBuffer();
  const session = opened.headers.get('mcp-session-id') as string;
  // A call on B asks for sampling on its answer stream.
  const calling = await fetch(`${b.url}${PATH}`, {
    method: 'POST',
    headers: headers(session),
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 'sample-big',
      method: 'tools/call',
      params: { name: 'local__sample', arguments: { prompt: 'big' } },
    }),
  });
  const messages: Message[] = [];
  const reader = (calling.body as ReadableStream<Uint8Array>)
    .pipeThrough(new TextDecoderStream())
    .getReader();
  const ended = (async () => {
    let buffered = '';
    for (let read = await reader.read(); !read.done; read = await reader.read()) {
      buffered += read.value;
      const cut = buffered.lastIndexOf('\n\n');
      if (cut < 0) continue;
      for (const line of buffered.slice(0, cut).split('\n'))
        if (line.startsWith('data:')) messages.push(JSON.parse(line.slice(5)));
      buffered = buffered.slice(cut + 2);
    }
  })();
  const sampling = await eventually(() => messages.find((m) => m.method === 'sampling/createMessage'), {
    what: 'sampling on the answer stream at B',
    timeoutMs: 15_000,
  });
  // 1.5 MiB of text: under BODY_LIMIT_BYTES, answered through A.
  const big = 'x'.repeat(1_500_000);
  const answered = await fetch(`${a.url}${PATH}`, {
    method: 'POST',
    headers: headers(session),
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: sampling.id,
      result: { role: 'assistant', model: 'big-model', content: { type: 'text', text: big } },
    }),
  });
  await answered.arrayBuffer();
  assert.equal(answered.status, 202, 'the proxy accepted the answer');
  await ended;
  const result = messages.find((m) => m.id === 'sample-big');
  const text = String(result?.result?.content?.[0]?.text ?? JSON.stringify(result));
  assert.ok(text.startsWith('sampled (big-model): xxx'), `the member got the answer: ${text.slice(0, 300)}`);
});
