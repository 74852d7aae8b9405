/**
 * Review 11 (second review of 4822b5c) VERDICTS-1: the authenticator remembers a minted token's
 * verdict against its minter per `jti` until the next reload (identity/authenticator.ts
 * `#beyondMinter`), but unlike its cache of verified tokens it does not look at the reload
 * generation the verification began under. `authenticate` reads the token's minter
 * (identity/minted-tokens.ts `#minterOf`, against the admin tokens configured *then*), awaits the
 * store (`isRevoked`), and only then judges and remembers. A reload that lands in that await
 * (here: the one that configures the admin token again) clears the verdicts first; the request
 * in flight then stores the verdict of its stale minter (none: `token_revoked`) under the new
 * reload, and the token stays refused until the next reload (and what it holds open is ended by
 * the reload's recheck). The store's await is held open by a loopback relay in front of a real
 * redis-server, which holds the revocation read of that token (its `jti` on the wire) until the
 * reload is done. Fixed: a verdict is remembered only when the minter it was judged with was read
 * under the reload in force (identity/authenticator.ts `#beyondMinter`'s `current`).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import { keyFile, mintRaw } from './helpers/minted.ts';
import { freePort, waitForPort } from './helpers/net.ts';
import { postProxy, type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const ADMIN = 'review11-verdicts-1-admin-0123456789ab';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');
const PING = { jsonrpc: '2.0', id: 1, method: 'ping' };

/**
 * A loopback relay to Redis that, once armed with a text, holds what the proxy sends from the
 * first chunk carrying it on (that connection's only), until released.
 */
function holdingRelay(redisPort: number) {
  let armed: { text: string; reached: () => void } | undefined;
  let release: (() => void) | undefined;
  const server: Server = createServer((client) => {
    const upstream = createConnection(redisPort, '127.0.0.1');
    const held: Buffer[] = [];
    let holding = false;
    upstream.on('data', (chunk) => client.write(chunk));
    client.on('data', (chunk: Buffer) => {
      if (!holding && armed !== undefined && chunk.includes(armed.text)) {
        holding = true;
        armed.reached();
        armed = undefined;
        release = () => {
          holding = false;
          for (const part of held.splice(0)) upstream.write(part);
        };
      }
      if (holding) held.push(chunk);
      else upstream.write(chunk);
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return {
    server,
    /** Resolves once a chunk carrying `text` is held. */
    hold: (text: string) => new Promise<void>((reached) => (armed = { text, reached })),
    release: () => release?.(),
  };
}

describe('review11 VERDICTS-1: a verdict judged across a reload is not kept under the new one', () => {
  let redis: ChildProcess;
  let relay: ReturnType<typeof holdingRelay>;
  let redisUrl = '';
  let proxy: RunningProxy;
  const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-review11-verdicts-1-')), 'proxy.json');
  const keyPath = keyFile();
  const env = () => ({
    HOST: '127.0.0.1',
    SIGNING_KEYS: keyPath,
    MCP_PROXY_CONFIG: configPath,
    REDIS_URL: redisUrl,
    RATE_LIMIT_AUTH_FAILURES_PER_IP: '0',
  });
  const configure = (withAdmin: boolean) =>
    writeFileSync(
      configPath,
      JSON.stringify({ tokens: withAdmin ? [{ sha256: sha256(ADMIN), admin: true }] : [] }),
    );
  const reload = () =>
    proxy.app.reload(
      loadConfig({ env: { PROXY_TOKEN: TEST_TOKEN, ALLOW_PRIVATE_NETWORKS: 'true', ...env() } }),
    );

  before(async () => {
    const port = await freePort();
    redis = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    await waitForPort(port);
    relay = holdingRelay(port);
    await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
    redisUrl = `redis://127.0.0.1:${(relay.server.address() as { port: number }).port}`;
    configure(true);
    proxy = await startProxy(env());
  });
  after(async () => {
    relay?.release();
    await proxy?.close();
    relay?.server.close();
    if (redis && redis.exitCode === null) {
      const exited = new Promise((resolve) => redis.once('exit', resolve));
      redis.kill('SIGTERM');
      await exited;
    }
  });

  it('a token whose admin is configured again is accepted after that reload', async () => {
    const minted = await mintRaw(proxy.url, { subject: 'verdicts-1', ttlSeconds: 600 }, ADMIN);
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const caller = { url: proxy.url, token: minted.body.token as string };
    // Accepted (400: no target named), then refused once its admin token is dropped.
    assert.equal((await postProxy(caller, PING)).status, 400);
    configure(false);
    reload();
    const dropped = await postProxy(caller, PING);
    assert.equal(dropped.status, 401, JSON.stringify(dropped.body));
    assert.equal(dropped.body.error.data.code, 'token_revoked');

    // A request read under "no such admin" waits on the store (isRevoked) while the admin comes back.
    const reached = relay.hold(minted.body.id as string);
    const inFlight = postProxy(caller, PING);
    await reached;
    configure(true);
    reload();
    relay.release();
    await inFlight;

    const restored = await postProxy(caller, PING);
    assert.equal(restored.status, 400, `refused after the admin came back: ${JSON.stringify(restored.body)}`);
  });
});
