/**
 * Review 8 (creds) finding 2: config/broker-switch.ts `sharedVaultKeyProblem` refuses a start
 * (and a reload) with REDIS_URL and the broker on but no VAULT_KEY, since each instance would
 * seal the shared vault with a key of its own. The check reads the NEXT configuration's
 * `vaultKeys`, but the running app never takes them: app.ts builds `vaultKeysFor(config)` once
 * at start, and `vaultKeys` is not in config/restart-settings.ts (so no "restart needed" either).
 * Instances started with the broker off and no VAULT_KEY, reloaded with OAUTH_BROKER=true and a
 * VAULT_KEY (the check passes), run the broker on keys each generated under its own DATA_DIR:
 * exactly the split the check exists to prevent. A user signed in through one instance is asked
 * to sign in again by the other, again and again. (The same reload gap makes a VAULT_KEY
 * rotation or the removal of a leaked key by SIGHUP silently do nothing.)
 * Real parts: redis-server, the OAuth test world (oidc-provider, SDK upstream), two proxies.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { freePort } from './helpers/net.ts';
import { ALICE, APP, authorizeUrlOf, bindAs, callTool, subjectOf } from './helpers/oauth-proxy.ts';
import { startOAuthWorld } from './helpers/oauth-world.ts';
import { startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

describe('review8 creds 2: VAULT_KEY with the broker switched on by reload', () => {
  it('two instances sharing Redis then seal with the same key: one serves what the other signed in', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const clock = new ManualClock();
    const world = await startOAuthWorld({ clock, accessTokenTtl: 60 });
    cleanup.push(() => world.stop());
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'review8-creds-2-')));
    cleanup.push(() => {
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });
    const base = {
      PUBLIC_URL: publicUrl,
      PROXY_TOKENS: ALICE,
      CORS_ORIGINS: APP,
      ALLOW_PRIVATE_NETWORKS: 'true',
      REDIS_URL: redis.url,
    };
    // Started with the broker off and no VAULT_KEY: the start-up check has nothing to refuse.
    const a = await startProxy(
      { ...base, OAUTH_BROKER: 'false', PORT: String(port), DATA_DIR: dirs[0] as string },
      { clock },
    );
    cleanup.push(() => a.close());
    const b = await startProxy({ ...base, OAUTH_BROKER: 'false', DATA_DIR: dirs[1] as string }, { clock });
    cleanup.push(() => b.close());
    // The operator switches the broker on and gives both the same VAULT_KEY, by reload: the
    // check (the next configuration has a VAULT_KEY) passes.
    const vaultKey = Buffer.alloc(32, 7).toString('base64');
    const restartNeeded = [a, b].map((proxy, index) =>
      proxy.app.reload(
        loadConfig({
          env: {
            ...base,
            OAUTH_BROKER: 'true',
            VAULT_KEY: vaultKey,
            DATA_DIR: dirs[index] as string,
            ...(index === 0 ? { PORT: String(port) } : {}),
          },
        }),
      ),
    );
    const viaA = { world, proxy: a, clock, publicUrl };
    const viaB = { world, proxy: b, clock, publicUrl };
    const url = authorizeUrlOf(viaA, await callTool(viaA, ALICE, 'whoami'));
    const done = await world.user('alice').authorize(url, { follow: true, bind: bindAs(ALICE) });
    assert.equal(done.callback?.status, 200, done.callback?.body);
    assert.equal(subjectOf(await callTool(viaA, ALICE, 'whoami')), 'alice');
    // Signed in through A, served by B: both should seal and open with VAULT_KEY now.
    const reply = await callTool(viaB, ALICE, 'whoami');
    assert.equal(
      reply.status,
      200,
      `B cannot open what A sealed after the reload (restart needed said: ${JSON.stringify(restartNeeded)}): ${JSON.stringify(reply.body)}`,
    );
    assert.equal(subjectOf(reply), 'alice');
  });
});
