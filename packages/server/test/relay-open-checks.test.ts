/**
 * Issue 19, what a relayed `open` carries besides the request (the review of relay-fix7): the
 * principal the relaying instance authenticated is checked for its shape before the owner runs
 * anything with it, and the caller's address travels with it, so the owner's access log (and
 * anything keyed by address) names the caller, never the loopback of `inject` — and never an
 * address a caller wrote in a header.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, afterEach, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SYSTEM_CLOCK } from '../src/clock.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { namespaced } from '../src/store/store.ts';
import { type ConfigDir, configDir, INITIALIZE_2025 } from './helpers/config-dir.ts';
import { eventually } from './helpers/eventually.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const featureServerEntry = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));
let config: ConfigDir;
let store: MemoryStore;
const running: RunningProxy[] = [];

before(async () => {
  config = await configDir('mcpp-relay-open-', {
    feat: { command: process.execPath, args: [featureServerEntry] },
  });
});
afterEach(async () => {
  await Promise.allSettled(running.splice(0).map((proxy) => proxy.close()));
  await store?.close();
});
after(() => config.remove());

/** The owner `a` and `b`, sharing one store (unsealed: a test can publish opens itself). */
async function pair(): Promise<{ a: RunningProxy; b: RunningProxy }> {
  store = new MemoryStore(SYSTEM_CLOCK);
  const env = { HOST: '127.0.0.1', LOG_LEVEL: 'info', MCP_PROXY_CONFIG: config.path };
  const a = await startProxy(env, { store: namespaced(store, '') });
  running.push(a);
  const b = await startProxy(env, { store: namespaced(store, '') });
  running.push(b);
  return { a, b };
}

/** A POST /proxy session of `feat` held by `owner`: its id. */
async function openSession(owner: RunningProxy): Promise<string> {
  const opened = await postProxy(owner, { server: 'feat', ...INITIALIZE_2025 });
  assert.equal(opened.status, 200, JSON.stringify(opened.body));
  return opened.headers.get('mcp-session-id') as string;
}

it('an open whose principal is not shaped as one is refused (fail), never run', {
  timeout: 20_000,
}, async () => {
  const { a } = await pair();
  const sid = await openSession(a);
  const owner = (await store.get(`instances:session:${sid}`)) as string;
  assert.ok(owner);
  const heard: Array<{ k: string; x: string }> = [];
  const stop = await store.subscribe('relay:to:elsewhere', (text) =>
    heard.push(JSON.parse(text.split('\n')[0] as string)),
  );
  const open = (x: string, principal: unknown) =>
    store.publish(
      `relay:to:${owner}`,
      JSON.stringify({
        k: 'open',
        x,
        n: 0,
        from: 'elsewhere',
        method: 'POST',
        url: '/proxy',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ server: 'feat', mcp_session_id: sid, jsonrpc: '2.0', id: 9, method: 'ping' }),
        principal,
      }),
    );
  const principal = { id: 'x', principalKey: 'static:x', subject: 'token:x', auth: 'static', grants: {} };
  const malformed = {
    'grants not an object': { ...principal, grants: 'admin' },
    'a grant of the wrong type': { ...principal, grants: { servers: 'feat' } },
    'no subject': { ...principal, subject: undefined },
    'an unknown kind': { ...principal, auth: 'root' },
    'an expiry not a number': { ...principal, expiresAt: 'never' },
  };
  try {
    for (const [what, shape] of Object.entries(malformed)) await open(what, shape);
    // A well-shaped one (a principal the session is not bound to) is run: its answer comes back.
    await open('well-formed', principal);
    await eventually(() => heard.some((m) => m.x === 'well-formed' && m.k !== 'fail'), {
      what: 'the well-formed open run',
    });
    await eventually(() => Object.keys(malformed).every((x) => heard.some((m) => m.x === x)), {
      what: 'an answer to every malformed open',
    });
    for (const what of Object.keys(malformed))
      assert.deepEqual(
        heard.filter((m) => m.x === what).map((m) => m.k),
        ['fail'],
        `${what}: refused with fail alone`,
      );
  } finally {
    await stop();
  }
});

it("the owner's access log names the caller's address for a relayed request, not a header's", {
  timeout: 20_000,
}, async () => {
  const { a, b } = await pair();
  const sid = await openSession(a);
  // The caller comes from 127.0.0.2 (all of 127/8 is loopback) and writes another address in
  // X-Forwarded-For, which neither instance trusts.
  const body = JSON.stringify({ server: 'feat', mcp_session_id: sid, jsonrpc: '2.0', id: 2, method: 'ping' });
  const requestId = 'relayed-address-check';
  const status = await new Promise<number>((resolve, reject) => {
    const call = httpRequest(
      `${b.url}/proxy`,
      {
        method: 'POST',
        localAddress: '127.0.0.2',
        headers: {
          'content-type': 'application/json',
          'x-proxy-token': b.token,
          'x-forwarded-for': '198.51.100.9',
          'x-request-id': requestId,
        },
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      },
    );
    call.on('error', reject);
    call.end(body);
  });
  assert.equal(status, 200);
  const line = await eventually(
    () =>
      a.logs
        .map((text) => JSON.parse(text) as { msg?: string; reqId?: string; remoteAddress?: string })
        .find((entry) => entry.msg === 'request' && entry.reqId === requestId),
    { what: "the owner's access log line" },
  );
  assert.equal(line.remoteAddress, '127.0.0.2', JSON.stringify(line));
});
