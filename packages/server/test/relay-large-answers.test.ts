/**
 * Large relayed answers and everything else the store carries (review 6, relay finding 2). The
 * owner used to publish a whole JSON answer as one message (up to UPSTREAM_RESPONSE_LIMIT_BYTES,
 * 10 MiB by default, base64'd and, with SESSION_SECRET, sealed and base64'd again: ~17 MB), on
 * the one command connection every store call of the instance uses; a few large answers in
 * flight at once (here eight, within the defaults) held up heartbeats, look-ups and publishes
 * past ioredis' command timeout, and another principal's call relayed at the same time was
 * answered relay_interrupted. Answers now travel in paced parts on their own connection: every
 * call is answered.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { eventually } from './helpers/eventually.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';
import { type RedisServer, startRedis } from './helpers/redis.ts';

const featureServerEntry = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));
const wideEntry = fileURLToPath(new URL('./fixtures/wide-stdio.ts', import.meta.url));
const SECOND_TOKEN = 'review6-relay-2-second-token-0123456789';
const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};

let dir: string;
let redis: RedisServer;
const running: RunningProxy[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcpp-relay-large-'));
  await writeFile(
    join(dir, 'proxy.json'),
    JSON.stringify({
      servers: {
        feat: { command: process.execPath, args: [featureServerEntry] },
        wide: { command: process.execPath, args: [wideEntry] },
      },
    }),
  );
  redis = await startRedis();
});
after(async () => {
  await Promise.allSettled(running.map((proxy) => proxy.close()));
  await redis?.stop();
  await rm(dir, { recursive: true, force: true });
});

it("large relayed answers do not interrupt another principal's relayed call", {
  timeout: 60_000,
}, async () => {
  const env = {
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    REDIS_URL: redis.url,
    PROXY_TOKENS: SECOND_TOKEN,
    SESSION_SECRET: 'review6-relay-2-session-secret-0123456789abcdef',
    MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
  };
  const a = await startProxy(env);
  running.push(a);
  const b = await startProxy(env);
  running.push(b);
  const second = { url: b.url, token: SECOND_TOKEN };
  // Both sessions are held by a; both principals reach them through b.
  const wide = await postProxy(a, { server: 'wide', ...INIT });
  assert.equal(wide.status, 200, JSON.stringify(wide.body));
  const wideSid = wide.headers.get('mcp-session-id') as string;
  const feat = await postProxy({ url: a.url, token: SECOND_TOKEN }, { server: 'feat', ...INIT });
  assert.equal(feat.status, 200, JSON.stringify(feat.body));
  const featSid = feat.headers.get('mcp-session-id') as string;
  await eventually(
    async () =>
      (
        await postProxy(second, {
          server: 'feat',
          mcp_session_id: featSid,
          jsonrpc: '2.0',
          id: 2,
          method: 'ping',
        })
      ).status === 200,
    { what: 'the relay to a' },
  );
  // The second principal's call, relayed through b while the large answers cross.
  const slow = postProxy(second, {
    server: 'feat',
    mcp_session_id: featSid,
    jsonrpc: '2.0',
    id: 3,
    method: 'tools/call',
    params: { name: 'slow', arguments: { ms: 6_000 } },
  });
  // Eight answers of 9 MB each (3 million three-byte characters), within the 10 MiB default.
  const large = await Promise.all(
    [4, 5, 6, 7, 8, 9, 10, 11].map((id) =>
      postProxy(b, {
        server: 'wide',
        mcp_session_id: wideSid,
        jsonrpc: '2.0',
        id,
        method: 'tools/call',
        params: { name: 'wide', arguments: { chars: 3_000_000 } },
      }),
    ),
  );
  const slowReply = await slow;
  assert.equal(slowReply.status, 200, `the other principal's call: ${JSON.stringify(slowReply.body)}`);
  for (const reply of large)
    assert.equal(reply.status, 200, `a large answer: ${JSON.stringify(reply.body).slice(0, 300)}`);
});
