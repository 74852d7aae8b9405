/**
 * Resumable answer streams of a virtual server (issue 20; MCP 2025-11-25 "Resumability and
 * Redelivery", SSE polling): a 2025-11-25 session's `tools/call` is answered with a primed event
 * stream whose events are kept per client session in the store, and a GET with `Last-Event-ID`
 * resumes it: through the SDK client after the proxy closed the stream (`ANSWER_POLL_MS`), on
 * another instance sharing Redis, and refused for an id of another session or principal or an
 * id whose events were dropped. The member is the conformance fixture: its `test_reconnection`
 * itself closes its stream mid-call, answering at least its `retry` (500 ms) later.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { type ConformanceServer, startConformanceServer } from './fixtures/conformance-server.ts';
import { eventually } from './helpers/eventually.ts';
import { startProxy, TEST_TOKEN } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';
import { eventsOf, firstEvent, rawClient } from './helpers/resumable-member.ts';
import { textOf } from './helpers/virtual-proxy.ts';

const OTHER_TOKEN = 'other-proxy-token-0123456789abcdef';
const SECRET = 'virtual-resume-session-secret-0123456789';

/** The config file of a proxy with the virtual server `one` over `member`. */
function configFile(member: ConformanceServer): string {
  const path = join(mkdtempSync(join(tmpdir(), 'mcp-proxy-virtual-resume-')), 'proxy.yaml');
  writeFileSync(
    path,
    `servers:\n  conformance:\n    url: ${member.url}\nvirtualServers:\n  one:\n    servers: [conformance]\n    prefix: none\n`,
  );
  return path;
}

describe('resumable answer streams of a virtual server', () => {
  let member: ConformanceServer;
  before(async () => {
    member = await startConformanceServer();
  });
  after(() => member.stop());

  test('the SDK client resumes with Last-Event-ID a stream the proxy closed before the answer', async (t) => {
    // The proxy closes the stream 200 ms after it opened; the member answers ≥ 500 ms after
    // its own stream closed (its retry), and both waits are timers of this one process.
    const proxy = await startProxy({ MCP_PROXY_CONFIG: configFile(member), ANSWER_POLL_MS: '200' });
    t.after(() => proxy.close());
    const requests: Array<{ method: string; lastEventId: string | null }> = [];
    const transport = new StreamableHTTPClientTransport(new URL(`${proxy.url}/servers/one/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${TEST_TOKEN}` } },
      fetch: (input, init) => {
        const headers = new Headers(init?.headers);
        requests.push({ method: init?.method ?? 'GET', lastEventId: headers.get('last-event-id') });
        return fetch(input, init);
      },
    });
    const client = new Client({ name: 'resume-test', version: '1.0.0' });
    await client.connect(transport);
    t.after(() => client.close());

    const result = await client.callTool({ name: 'test_reconnection', arguments: {} });
    assert.match(textOf(result), /Reconnection test completed/);
    const resumes = requests.filter((request) => request.method === 'GET' && request.lastEventId !== null);
    assert.ok(resumes.length >= 1, `the client resumed the answer stream: ${JSON.stringify(requests)}`);
    assert.match(resumes[0]?.lastEventId ?? '', /^[\w-]+\.\d+\.[\w-]{22}$/);
  });

  test('the SDK client resumes again a resumed stream the proxy closed before anything new', async (t) => {
    const proxy = await startProxy({ MCP_PROXY_CONFIG: configFile(member), ANSWER_POLL_MS: '200' });
    t.after(() => proxy.close());
    const resumes: string[] = [];
    const transport = new StreamableHTTPClientTransport(new URL(`${proxy.url}/servers/one/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${TEST_TOKEN}` } },
      fetch: (input, init) => {
        const lastEventId = new Headers(init?.headers).get('last-event-id');
        if ((init?.method ?? 'GET') === 'GET' && lastEventId !== null) resumes.push(lastEventId);
        return fetch(input, init);
      },
    });
    const client = new Client(
      { name: 'resume-test', version: '1.0.0' },
      { capabilities: { elicitation: {} } },
    );
    // The member's call waits for this answer, which waits for a second resumption: the first
    // resumed stream is closed with nothing new on it, and the client must still know its cursor.
    client.setRequestHandler(ElicitRequestSchema, async () => {
      await eventually(() => resumes.length >= 2, { timeoutMs: 20_000, what: 'a second resumption' });
      return { action: 'accept', content: { username: 'ada', email: 'ada@example.com' } };
    });
    await client.connect(transport);
    t.after(() => client.close());

    const result = await client.callTool({ name: 'test_elicitation', arguments: { message: 'Who?' } });
    assert.match(textOf(result), /accept/);
    assert.equal(resumes[0], resumes[1], 'both resumed from the event before the wait');
  });

  test('a stream starts primed, its events carry ids, and a resumption replays what followed an id', async (t) => {
    const proxy = await startProxy({ MCP_PROXY_CONFIG: configFile(member) });
    t.after(() => proxy.close());
    const raw = rawClient(proxy.url);
    const session = await raw.initialize();
    const response = await raw.call(session, 'test_simple_text');
    assert.equal(response.headers.get('content-type'), 'text/event-stream');
    const events = eventsOf(await response.text());
    const [priming, answer] = events;
    assert.equal(events.length, 2);
    assert.deepEqual({ data: priming?.data, retry: priming?.retry }, { data: '', retry: '500' });
    assert.ok(priming?.id && answer?.id && priming.id !== answer.id);
    assert.equal(JSON.parse(answer.data).id, 1);

    const resumed = await raw.resume(session, priming.id);
    assert.equal(resumed.status, 200);
    // Primed again with the id resumed from, the answer again under its own id, and the end.
    const reprimed = { id: priming.id, retry: '500', data: '' };
    assert.deepEqual(eventsOf(await resumed.text()), [reprimed, answer]);
    const after = await raw.resume(session, answer.id);
    assert.deepEqual(eventsOf(await after.text()), [{ ...reprimed, id: answer.id }]);
  });

  test('an id of another session, of another principal, or made up is refused; one whose events were dropped is unknown', async (t) => {
    const proxy = await startProxy({
      MCP_PROXY_CONFIG: configFile(member),
      PROXY_TOKENS: `${TEST_TOKEN},${OTHER_TOKEN}`,
    });
    t.after(() => proxy.close());
    const raw = rawClient(proxy.url);
    const session = await raw.initialize();
    const [priming] = eventsOf(await (await raw.call(session, 'test_simple_text')).text());
    const id = priming?.id as string;

    const refusal = async (response: Response, status: number, code: string) => {
      assert.equal(response.status, status);
      const body = (await response.json()) as { error: { data: { code: string } } };
      assert.equal(body.error.data.code, code);
    };
    await refusal(await raw.resume(await raw.initialize(), id), 403, 'stream_event_foreign');
    const other = rawClient(proxy.url, OTHER_TOKEN);
    await refusal(await other.resume(await other.initialize(), id), 403, 'stream_event_foreign');
    const [stream, seq] = id.split('.');
    await refusal(
      await raw.resume(session, `${stream}.${seq}.${'A'.repeat(22)}`),
      403,
      'stream_event_foreign',
    );
    await refusal(await raw.resume(session, `${stream}.${Number(seq) + 1}`), 403, 'stream_event_foreign');

    // Each call keeps three events (priming, answer, end): past 256 the first call's are dropped.
    for (let call = 0; call < 86; call++) await (await raw.call(session, 'test_simple_text')).text();
    await refusal(await raw.resume(session, id), 400, 'stream_event_unknown');
  });

  test('a stream left on one instance is resumed on another sharing Redis', async (t) => {
    const redis = await startRedis();
    const env = { MCP_PROXY_CONFIG: configFile(member), REDIS_URL: redis.url, SESSION_SECRET: SECRET };
    const first = await startProxy(env).catch(async (error: unknown) => {
      await redis.stop();
      throw error;
    });
    const second = await startProxy(env).catch(async (error: unknown) => {
      await first.close();
      await redis.stop();
      throw error;
    });
    // The proxies close while their Redis still answers: quicker than with it gone (bounded:
    // close-store-gone.test.ts).
    t.after(async () => {
      await Promise.all([first.close(), second.close()]);
      await redis.stop();
    });

    const session = await rawClient(first.url).initialize();
    const leaving = new AbortController();
    const response = await rawClient(first.url).call(session, 'test_reconnection', 1, leaving.signal);
    // The client reads the priming event and leaves: the call goes on (leaving is no cancel).
    const priming = await firstEvent(response);
    leaving.abort();
    assert.equal(priming.data, '');

    // The second instance replays what the first logged, or waits for it: the answer, then the end.
    const resumed = await rawClient(second.url).resume(session, priming.id as string);
    assert.equal(resumed.status, 200);
    const events = eventsOf(await resumed.text());
    assert.deepEqual(events[0], { id: priming.id, retry: '500', data: '' });
    assert.equal(events.length, 2);
    assert.match(JSON.parse(events[1]?.data ?? '{}').result.content[0].text, /Reconnection test completed/);
  });

  test('resumed streams open at once in one session are bounded', async (t) => {
    const proxy = await startProxy({ MCP_PROXY_CONFIG: configFile(member) });
    t.after(() => proxy.close());
    const raw = rawClient(proxy.url);
    const session = await raw.initialize();
    // The member's elicitation waits for the client's answer: the stream stays unfinished.
    const leaving = new AbortController();
    t.after(() => leaving.abort());
    const { id } = await firstEvent(
      await raw.call(session, 'test_elicitation', 1, leaving.signal, { message: 'Hold on' }),
    );
    const open: Response[] = [];
    t.after(() => Promise.all(open.map((response) => response.body?.cancel())));
    for (let n = 0; n < 8; n++) {
      const resumed = await raw.resume(session, id as string);
      assert.equal(resumed.status, 200);
      open.push(resumed);
    }
    const refused = await raw.resume(session, id as string);
    assert.equal(refused.status, 409);
    const body = (await refused.json()) as { error: { data: { code: string } } };
    assert.equal(body.error.data.code, 'stream_conflict');
    // One closed by its client makes room for another.
    await open.shift()?.body?.cancel();
    const again = await eventually(async () => {
      const response = await raw.resume(session, id as string);
      if (response.status === 200) return response;
      await response.text();
      return undefined;
    });
    open.push(again);
  });

  test('a principal keeps the events of at most 32 sessions a day; past it streams are served, not resumable', async (t) => {
    const proxy = await startProxy({ MCP_PROXY_CONFIG: configFile(member) });
    t.after(() => proxy.close());
    const raw = rawClient(proxy.url);
    for (let n = 0; n < 32; n++) {
      const events = eventsOf(await (await raw.call(await raw.initialize(), 'test_simple_text')).text());
      assert.ok(events.every((event) => event.id !== undefined));
    }
    const session = await raw.initialize();
    const events = eventsOf(await (await raw.call(session, 'test_simple_text')).text());
    assert.equal(events.length, 1, 'no priming event: nothing to resume from');
    assert.equal(events[0]?.id, undefined);
    assert.equal(JSON.parse(events[0]?.data ?? '{}').id, 1);
  });
});
