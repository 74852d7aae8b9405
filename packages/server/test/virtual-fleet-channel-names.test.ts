/**
 * Review 10 (virtual fleet), finding 3: with SESSION_SECRET set, a principal's pub/sub channel
 * is still named by a keyless SHA-256 of its principal key (virtual/fleet-channels.ts
 * streamsChannel). Principal keys are guessable (`oidc:<issuer>#<sub>`, `minted:<subject>`,
 * `static:<sha256 of the token>` as written in the configuration), so whoever can read the
 * store (`PUBSUB CHANNELS`, `MONITOR`) learns which principals have a virtual server's GET stream
 * open, when, and how much their members send — what sealing was meant to hide. The project's
 * own precedent (dispatch/shared-verdicts.ts) names what it shares by an HMAC under a key derived
 * from SESSION_SECRET when it is set. Asserted: the channel is not the keyless hash.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';
import { type RedisServer, startRedis } from './helpers/redis.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));
const PATH = '/servers/solo/mcp';
const SECRET = 'review10-fleet-3-session-secret-0123456789abcdef';
const sha256hex = (text: string) => createHash('sha256').update(text).digest('hex');

let redis: RedisServer;
let dir: string;
let proxy: RunningProxy;

before(async () => {
  redis = await startRedis();
  dir = await mkdtemp(join(tmpdir(), 'mcpp-review10-fleet-3-'));
  const config = {
    servers: { local: { command: process.execPath, args: [FIXTURE], env: compileCacheEnv() } },
    virtualServers: { solo: { servers: ['local'] } },
    tokens: [{ sha256: sha256hex(TEST_TOKEN) }],
  };
  await writeFile(join(dir, 'proxy.json'), JSON.stringify(config));
  proxy = await startProxy({
    REDIS_URL: redis.url,
    SESSION_SECRET: SECRET,
    MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
    LOG_LEVEL: 'warn',
  });
});
after(async () => {
  await proxy?.close();
  await redis?.stop();
  await rm(dir, { recursive: true, force: true });
});

it('names a principal’s channel so that a store reader cannot tell whose it is', async () => {
  const headers = {
    authorization: `Bearer ${TEST_TOKEN}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2025-06-18',
  };
  const opened = await fetch(`${proxy.url}${PATH}`, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'r10', version: '1' } },
    }),
  });
  await opened.arrayBuffer();
  const session = opened.headers.get('mcp-session-id') as string;
  const controller = new AbortController();
  const stream = await fetch(`${proxy.url}${PATH}`, {
    method: 'GET',
    headers: { ...headers, accept: 'text/event-stream', 'mcp-session-id': session },
    signal: controller.signal,
  });
  assert.equal(stream.status, 200);
  try {
    // The headers came once the instance listens on the principal's channel.
    const { stdout } = await promisify(execFile)('redis-cli', [
      '-u',
      redis.url,
      'PUBSUB',
      'CHANNELS',
      '*streams:*',
    ]);
    const channels = stdout.split('\n').filter(Boolean);
    assert.equal(channels.length, 1, stdout);
    // What a store reader computes from a principal key it guesses.
    const guessed = createHash('sha256')
      .update(`static:${sha256hex(TEST_TOKEN)}`)
      .digest('base64url');
    assert.ok(
      !(channels[0] as string).endsWith(guessed),
      `the channel ${channels[0]} is the keyless hash of the principal key`,
    );
  } finally {
    controller.abort();
    await stream.body?.cancel().catch(() => {});
  }
});
