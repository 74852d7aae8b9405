/**
 * Issue 20, several instances: two proxy instances sharing a real redis-server (and
 * SESSION_SECRET, so what crosses between them is sealed), one virtual server over the stdio
 * feature fixture, and a 2025-era client whose requests go to one instance while its GET stream
 * is open on the other. What a member session on one instance sends outside any request reaches
 * the stream on the other, a server request among it is answered through whichever instance the
 * client posts to, a DELETE on one ends the stream on the other, and nothing of it reaches
 * another principal (nor an answer of its, nor one written into Redis by someone else).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { eventually } from './helpers/eventually.ts';
import { type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';
import { type RedisServer, startRedis } from './helpers/redis.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));
const OTHER_TOKEN = 'virtual-fleet-other-token-0123456789abcdef';
/** A principal with no GET stream open anywhere. */
const LONE_TOKEN = 'virtual-fleet-lone-token-0123456789abcdef';
const SECRET = 'virtual-fleet-session-secret-0123456789abcdef';
const PATH = '/servers/solo/mcp';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

// biome-ignore lint/suspicious/noExplicitAny: JSON-RPC messages are arbitrary JSON.
type Message = any;

/** The JSON-RPC messages of an event stream's text. */
function eventsOf(text: string): Message[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('data:'))
    .map((line) => JSON.parse(line.slice('data:'.length)));
}

/**
 * A client's session on the virtual server, opened on `proxy`; its requests go where asked.
 * `accept`: what its POSTs accept (JSON alone: a member's server request never rides on them).
 */
async function openSession(proxy: RunningProxy, token: string, accept?: string): Promise<string> {
  const answer = await fetch(`${proxy.url}${PATH}`, {
    method: 'POST',
    headers: headersOf(token, undefined, accept),
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: { roots: { listChanged: true } },
        clientInfo: { name: 'fleet-test', version: '1' },
      },
    }),
  });
  await answer.arrayBuffer();
  assert.equal(answer.status, 200);
  const session = answer.headers.get('mcp-session-id') ?? '';
  assert.ok(session.length > 0);
  await post(proxy, token, session, { jsonrpc: '2.0', method: 'notifications/initialized' }, accept);
  return session;
}

function headersOf(
  token: string,
  session?: string,
  accept = 'application/json, text/event-stream',
): Record<string, string> {
  return {
    authorization: `Bearer ${token}`,
    'content-type': 'application/json',
    accept,
    'mcp-protocol-version': '2025-06-18',
    ...(session === undefined ? {} : { 'mcp-session-id': session }),
  };
}

/** POSTs one message; the answer's last JSON-RPC message (undefined for 202). */
async function post(
  proxy: RunningProxy,
  token: string,
  session: string,
  body: Message,
  accept?: string,
): Promise<Message> {
  const answer = await fetch(`${proxy.url}${PATH}`, {
    method: 'POST',
    headers: headersOf(token, session, accept),
    body: JSON.stringify(body),
  });
  const text = await answer.text();
  if (answer.status === 202) return undefined;
  assert.equal(answer.status, 200, text);
  return answer.headers.get('content-type')?.includes('text/event-stream')
    ? eventsOf(text).at(-1)
    : JSON.parse(text);
}

/** Calls a tool of the fixture (`local__<name>`); the text of its result. */
async function call(
  proxy: RunningProxy,
  token: string,
  session: string,
  name: string,
  args = {},
  accept?: string,
) {
  const message = {
    jsonrpc: '2.0',
    id: `call-${name}-${Math.random()}`,
    method: 'tools/call',
    params: { name: `local__${name}`, arguments: args },
  };
  const answer = await post(proxy, token, session, message, accept);
  return (answer?.result?.content?.[0]?.text as string | undefined) ?? JSON.stringify(answer);
}

/** The messages an event stream carried so far, and its end. */
function readEvents(response: Response) {
  const messages: Message[] = [];
  const reader = (response.body as ReadableStream<Uint8Array>)
    .pipeThrough(new TextDecoderStream())
    .getReader();
  const ended = (async () => {
    let buffered = '';
    try {
      for (let read = await reader.read(); !read.done; read = await reader.read()) {
        buffered += read.value;
        const cut = buffered.lastIndexOf('\n\n');
        if (cut < 0) continue;
        messages.push(...eventsOf(buffered.slice(0, cut)));
        buffered = buffered.slice(cut + 2);
      }
    } catch {
      // A destroyed connection is an end too.
    }
  })();
  return { messages, ended, cancel: () => reader.cancel().catch(() => {}) };
}

/**
 * Calls the fixture's `sample` tool on `proxy` (as TEST_TOKEN's client): its answer stream, and
 * the member's sampling request once it came on it.
 */
async function sampleOn(proxy: RunningProxy, session: string, id: string, prompt: string) {
  const calling = await fetch(`${proxy.url}${PATH}`, {
    method: 'POST',
    headers: headersOf(TEST_TOKEN, session),
    body: JSON.stringify({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name: 'local__sample', arguments: { prompt } },
    }),
  });
  const answerStream = readEvents(calling);
  const sampling = await eventually(
    () => answerStream.messages.find((m) => m.method === 'sampling/createMessage'),
    { what: `sampling on the answer stream of ${id}`, timeoutMs: 10_000 },
  );
  return { answerStream, sampling };
}

/** A GET stream of the session on `proxy`. */
async function openStream(proxy: RunningProxy, token: string, session: string) {
  const response = await fetch(`${proxy.url}${PATH}`, {
    method: 'GET',
    headers: { ...headersOf(token, session), accept: 'text/event-stream' },
  });
  assert.equal(response.status, 200);
  return readEvents(response);
}

/** The tag of the instance that asked a server request (its id: `mcpp-ask-<tag>-<n>`). */
function askerOf(message: Message): string | undefined {
  return /^mcpp-ask-(.{8})-\d+$/.exec(String(message?.id))?.[1];
}

describe('a virtual server across two instances sharing Redis', { timeout: 60_000 }, () => {
  let redis: RedisServer;
  let dir: string;
  let a: RunningProxy;
  let b: RunningProxy;
  const streams: Array<{ cancel: () => Promise<unknown> }> = [];

  before(async () => {
    redis = await startRedis();
    dir = await mkdtemp(join(tmpdir(), 'mcpp-virtual-fleet-'));
    const config = {
      servers: { local: { command: process.execPath, args: [FIXTURE], env: compileCacheEnv() } },
      virtualServers: { solo: { servers: ['local'] } },
      tokens: [
        { sha256: sha256(TEST_TOKEN) },
        { sha256: sha256(OTHER_TOKEN) },
        { sha256: sha256(LONE_TOKEN) },
      ],
    };
    await writeFile(join(dir, 'proxy.json'), JSON.stringify(config));
    const env = {
      REDIS_URL: redis.url,
      SESSION_SECRET: SECRET,
      MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
      LOG_LEVEL: 'warn',
      UPSTREAM_TIMEOUT_MS: '15000',
    };
    [a, b] = await Promise.all([startProxy(env), startProxy(env)]);
  });
  after(async () => {
    for (const stream of streams) await stream.cancel();
    await a?.close();
    await b?.close();
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers a member’s server request through either instance, for its own principal only', async () => {
    const session = await openSession(a, TEST_TOKEN);
    const other = await openSession(a, OTHER_TOKEN);
    const stream = await openStream(a, TEST_TOKEN, session);
    const otherStream = await openStream(a, OTHER_TOKEN, other);
    streams.push(stream, otherStream);
    // A call on B (which opens the principal's member session there) asks for sampling on its
    // answer stream; the client answers through A.
    const { answerStream, sampling } = await sampleOn(b, session, 'sample-1', 'fleet');
    const tagOfB = askerOf(sampling) as string;
    const sampled = (text: string) => ({
      result: { role: 'assistant', model: 'fleet-model', content: { type: 'text', text } },
    });
    // Someone who can write to Redis but has no SESSION_SECRET forges the answer: not heard.
    const forged = JSON.stringify({
      t: 'answer',
      from: 'forger00',
      p: `static:${sha256(TEST_TOKEN)}`,
      name: 'solo',
      response: { jsonrpc: '2.0', id: sampling.id, ...sampled('forged') },
    });
    await promisify(execFile)('redis-cli', [
      '-u',
      redis.url,
      'PUBLISH',
      `virtual-fleet:asks:${tagOfB}`,
      forged,
    ]);
    // Another principal answers with the same id, on both instances: not its request.
    for (const instance of [a, b])
      await post(instance, OTHER_TOKEN, other, { jsonrpc: '2.0', id: sampling.id, ...sampled('intruder') });
    await post(a, TEST_TOKEN, session, { jsonrpc: '2.0', id: sampling.id, ...sampled('through A') });
    await answerStream.ended;
    const result = answerStream.messages.find((m) => m.id === 'sample-1');
    assert.equal(
      result?.result?.content?.[0]?.text,
      'sampled (fleet-model): through A',
      JSON.stringify(result),
    );

    // The member session on B asks for roots outside any request, while the client sends
    // nothing: only A has a stream of the principal, so A asks it, under B's id.
    const before = stream.messages.length;
    await call(b, TEST_TOKEN, session, 'ask-roots', { delayMs: 100 });
    const roots = await eventually(
      () => stream.messages.slice(before).find((m) => m.method === 'roots/list' && askerOf(m) === tagOfB),
      { what: 'B’s roots/list on the stream at A', timeoutMs: 10_000 },
    );
    await post(a, TEST_TOKEN, session, {
      jsonrpc: '2.0',
      id: roots.id,
      result: { roots: [{ uri: 'file:///fleet' }] },
    });
    const rootsOfB = () => call(b, TEST_TOKEN, session, 'roots');
    await eventually(async () => (await rootsOfB()).includes('file:///fleet'), {
      what: 'the roots B’s member got',
      timeoutMs: 10_000,
    });
    // A list change from B's member session reaches the stream at A (and nobody else's).
    await call(b, TEST_TOKEN, session, 'grow', { delayMs: 50 });
    await eventually(() => stream.messages.some((m) => m.method === 'notifications/tools/list_changed'), {
      what: 'list_changed on the stream at A',
      timeoutMs: 10_000,
    });
    await post(a, OTHER_TOKEN, other, { jsonrpc: '2.0', id: 'ping-other', method: 'ping' });
    // (Its own member session on A may have asked it for roots, under A's ids.)
    assert.deepEqual(
      otherStream.messages.filter((m) => m.method !== 'roots/list' || askerOf(m) === tagOfB),
      [],
      'another principal’s stream carried nothing of the first one’s member',
    );
  });

  it('refuses an answer that cannot cross to the asking instance, and tells the member', async () => {
    const session = await openSession(a, TEST_TOKEN);
    const { answerStream, sampling } = await sampleOn(b, session, 'sample-inflated', 'inflated');
    // Under BODY_LIMIT_BYTES (1 MiB) as posted; written out again (each 1e9 as 1000000000) on
    // its way to B, more than an answer's bound there.
    const numbers = Array.from({ length: 180_000 }, () => '1e9').join(',');
    const inflated = `{"jsonrpc":"2.0","id":${JSON.stringify(sampling.id)},"result":{"role":"assistant","model":"m","content":{"type":"text","text":"x"},"_meta":{"n":[${numbers}]}}}`;
    const answered = await fetch(`${a.url}${PATH}`, {
      method: 'POST',
      headers: headersOf(TEST_TOKEN, session),
      body: inflated,
    });
    const refusal = await answered.text();
    assert.equal(answered.status, 503, refusal);
    assert.equal(JSON.parse(refusal).error?.data?.code, 'overloaded');
    // The member is answered with the error at once (not after UPSTREAM_TIMEOUT_MS).
    await answerStream.ended;
    const result = answerStream.messages.find((m) => m.id === 'sample-inflated');
    assert.match(JSON.stringify(result), /-33036/);
  });

  it('ends the GET stream on one instance when the session is deleted on the other', async () => {
    const session = await openSession(b, TEST_TOKEN);
    const stream = await openStream(a, TEST_TOKEN, session);
    streams.push(stream);
    const other = await openSession(a, OTHER_TOKEN);
    const otherStream = await openStream(a, OTHER_TOKEN, other);
    streams.push(otherStream);
    const deleted = await fetch(`${b.url}${PATH}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TEST_TOKEN}`, 'mcp-session-id': session },
    });
    assert.equal(deleted.status, 204, await deleted.text());
    let ended = false;
    void stream.ended.then(() => {
      ended = true;
    });
    await eventually(() => ended, { what: 'the stream at A ended', timeoutMs: 10_000 });
    // Another principal's stream on the same instance stays open.
    const still = await post(a, OTHER_TOKEN, other, { jsonrpc: '2.0', id: 'ping', method: 'ping' });
    assert.deepEqual(still.result, {});
    let otherEnded = false;
    void otherStream.ended.then(() => {
      otherEnded = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(otherEnded, false);
  });

  it('refuses a member’s server request for the client when no instance has a stream to ask it on', async () => {
    // JSON alone: the member's roots/list must not ride on an answer stream of these POSTs (it
    // would be asked there, not refused).
    const session = await openSession(b, LONE_TOKEN, 'application/json');
    // The member session on B asks for roots 100 ms after it initialized; no instance takes it,
    // so the member is answered MCP's "method not found", as on one instance with no stream.
    const refused = await eventually(
      async () => {
        const roots = await call(b, LONE_TOKEN, session, 'roots', {}, 'application/json');
        return roots.includes('error') && roots;
      },
      { what: 'the member’s roots/list refused', timeoutMs: 10_000 },
    );
    assert.match(refused, /-32601/);
  });
});
