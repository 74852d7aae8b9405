/**
 * Review 10 (virtual fleet), finding 1: the cause of virtual-fleet.test.ts's flake "refuses a
 * member's server request for the client when no instance has a stream to ask it on".
 *
 * A member's server request outside any call (the fixture asks `roots/list` 100 ms after it
 * initialized) goes, by the held session's routing, to the most recent request still open on
 * that member session (held-session.ts #route: "the most recent open request stream first").
 * When the client has a POST in flight at that moment that accepts `text/event-stream`, the
 * POST's answer becomes an event stream carrying the `roots/list` under a `mcpp-ask-…` id
 * (member-requests.ts relay → #ask). A client that reads the POST to its end without answering
 * (the test's `post()` helper) leaves it unanswered: the proxy forgets it after
 * UPSTREAM_TIMEOUT_MS (a TtlCache expiry), but never answers the member, which waits for its own
 * timeout (the SDK's 60 s). The flaky test polls with such POSTs every 20 ms; under load one of
 * them is in flight at +100 ms, and the member's roots stay `{}` past the test's 10 s.
 *
 * Here the overlap is made certain (a `slow` call in flight when the member asks). Correct
 * behaviour asserted: once the proxy gives up on the client's answer (UPSTREAM_TIMEOUT_MS), the
 * member is answered with an error, as MCP asks (a request gets a response) and as
 * docs/virtual-servers.md promises ("the member's call times out then too"), rather than waiting
 * for its own timeout.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { eventually } from './helpers/eventually.ts';
import { type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));
const PATH = '/servers/solo/mcp';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

// biome-ignore lint/suspicious/noExplicitAny: JSON-RPC messages are arbitrary JSON.
type Message = any;

function headersOf(session?: string, accept = 'application/json, text/event-stream'): Record<string, string> {
  return {
    authorization: `Bearer ${TEST_TOKEN}`,
    'content-type': 'application/json',
    accept,
    'mcp-protocol-version': '2025-06-18',
    ...(session === undefined ? {} : { 'mcp-session-id': session }),
  };
}

function eventsOf(text: string): Message[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('data:'))
    .map((line) => JSON.parse(line.slice('data:'.length)));
}

describe('a member’s server request caught by a POST in flight', { timeout: 60_000 }, () => {
  let dir: string;
  let proxy: RunningProxy;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcpp-review10-fleet-1-'));
    const config = {
      servers: { local: { command: process.execPath, args: [FIXTURE], env: compileCacheEnv() } },
      virtualServers: { solo: { servers: ['local'] } },
      tokens: [{ sha256: sha256(TEST_TOKEN) }],
    };
    await writeFile(join(dir, 'proxy.json'), JSON.stringify(config));
    proxy = await startProxy({
      MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
      LOG_LEVEL: 'warn',
      UPSTREAM_TIMEOUT_MS: '3000',
    });
  });
  after(async () => {
    await proxy?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers the member once the client’s answer is given up on (not the member’s own 60 s)', async () => {
    const post = async (body: Message, session?: string, accept?: string) => {
      const answer = await fetch(`${proxy.url}${PATH}`, {
        method: 'POST',
        headers: headersOf(session, accept),
        body: JSON.stringify(body),
      });
      return { answer, text: await answer.text() };
    };
    const opened = await post({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: { roots: { listChanged: true } },
        clientInfo: { name: 'review10', version: '1' },
      },
    });
    const session = opened.answer.headers.get('mcp-session-id') as string;
    assert.ok(session);
    await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, session);
    // A call in flight while the member (warmed at initialize) asks for roots 100 ms after it
    // initialized: the request lands on this call's answer stream, as on the flaky test's polls.
    const slow = await post(
      {
        jsonrpc: '2.0',
        id: 'slow',
        method: 'tools/call',
        params: { name: 'local__slow', arguments: { ms: 1500 } },
      },
      session,
    );
    const carried = eventsOf(slow.text);
    assert.ok(
      carried.some((m) => m.method === 'roots/list' && String(m.id).startsWith('mcpp-ask-')),
      `the roots/list rode on the call's answer stream: ${slow.text}`,
    );
    // The client read the stream to its end and never answered (as the test's post() does).
    // JSON-only polls: nothing can ride on them.
    const roots = async () => {
      const { text } = await post(
        {
          jsonrpc: '2.0',
          id: `roots-${Math.random()}`,
          method: 'tools/call',
          params: { name: 'local__roots', arguments: {} },
        },
        session,
        'application/json',
      );
      return JSON.parse(text)?.result?.content?.[0]?.text as string;
    };
    assert.equal(await roots(), '{}', 'the member still waits for its roots');
    // UPSTREAM_TIMEOUT_MS is 3 s: the proxy forgets the request then; the member must hear so.
    const settled = await eventually(async () => (await roots()).includes('error') && (await roots()), {
      what: 'the member’s roots/list answered with an error after UPSTREAM_TIMEOUT_MS',
      timeoutMs: 15_000,
    });
    assert.match(settled, /error/);
  });
});
