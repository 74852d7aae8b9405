/**
 * Signing keys of minted tokens (issue 17), against the real entry points: `main.ts` rotating its
 * keys on SIGHUP (the newest signs, older ones verify until dropped; a bad key file changes
 * nothing), the key generated under DATA_DIR and kept across restarts with the revocations
 * (node:sqlite), and `npm run token` minting with the same key the proxy verifies with.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { decodeProtectedHeader } from 'jose';
import { keyId } from '../src/identity/signing-keys.ts';
import { type MisbehavingUpstream, startMisbehaving } from './fixtures/misbehaving-upstream.ts';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { eventually } from './helpers/eventually.ts';
import { ADMIN, keyFile, mint, revoke } from './helpers/minted.ts';
import { freePort, waitForPort } from './helpers/net.ts';
import { postProxy } from './helpers/proxy.ts';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const CLI = fileURLToPath(new URL('../src/token-cli.ts', import.meta.url));

/** A proxy child process and its output. */
interface Child {
  readonly url: string;
  readonly process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

async function startMain(env: Record<string, string>): Promise<Child> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: String(port),
      ADMIN_TOKEN: ADMIN,
      ALLOW_PRIVATE_NETWORKS: 'true',
      DOTENV_PATH: '/nonexistent/.env',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  await waitForPort(port);
  return {
    url: `http://127.0.0.1:${port}`,
    process: child,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const kidOf = (path: string) => keyId(createPublicKey(createPrivateKey(readFileSync(path))));

describe('signing keys', () => {
  let upstream: MisbehavingUpstream;

  const ping = async (proxyUrl: string, token: string) => {
    const reply = await postProxy(
      { url: proxyUrl, token },
      { mcp_server_url: `${upstream.origin}/echo-auth`, jsonrpc: '2.0', id: 1, method: 'ping' },
    );
    return reply.status === 200 ? 'ok' : `${reply.status} ${reply.body?.error?.data?.code}`;
  };

  it('rotate through SIGHUP: the newest key signs, older ones verify until dropped', async () => {
    upstream = await startMisbehaving();
    const dir = mkdtempSync(join(tmpdir(), 'mcpp-rotate-'));
    const [k1, k2] = [keyFile(dir, 'k1.pem'), keyFile(dir, 'k2.pem')];
    const file = join(dir, 'proxy.yaml');
    const write = (keys: string[]) => writeFileSync(file, `signingKeys: ${JSON.stringify(keys)}\n`);
    write([k1]);
    const proxy = await startMain({ MCP_PROXY_CONFIG: file, STORE: 'memory' });
    const reloaded = async (count: number, pattern = /configuration reloaded/g) =>
      eventually(() => (proxy.output().match(pattern)?.length ?? 0) >= count, {
        what: () => `reload #${count}:\n${proxy.output().slice(-2000)}`,
      });
    try {
      const first = await mint(proxy.url, 'alice');
      assert.equal(decodeProtectedHeader(first.token).kid, kidOf(k1));

      write([k2, k1]);
      proxy.process.kill('SIGHUP');
      await reloaded(1);
      const second = await mint(proxy.url, 'alice');
      assert.equal(decodeProtectedHeader(second.token).kid, kidOf(k2), 'the newest key signs');
      assert.equal(await ping(proxy.url, first.token), 'ok', 'the old key still verifies');
      assert.equal(await ping(proxy.url, second.token), 'ok');

      // A key file that cannot be read is refused and the running keys stay.
      write([join(dir, 'missing.pem')]);
      proxy.process.kill('SIGHUP');
      await reloaded(1, /configuration reload failed/g);
      assert.equal(await ping(proxy.url, first.token), 'ok');

      write([k2]);
      proxy.process.kill('SIGHUP');
      await reloaded(2);
      assert.equal(await ping(proxy.url, first.token), '401 token_invalid', 'a dropped key verifies nothing');
      assert.equal(await ping(proxy.url, second.token), 'ok');
      assert.ok(!proxy.output().includes(second.token), 'no token in the log');
    } finally {
      await proxy.stop();
      await upstream.stop();
    }
  });

  it('generates one key under DATA_DIR, shared with npm run token, kept with revocations across a restart', async () => {
    upstream = await startMisbehaving();
    const dataDir = join(mkdtempSync(join(tmpdir(), 'mcpp-data-')), 'data');
    let proxy = await startMain({ DATA_DIR: dataDir });
    try {
      assert.equal(existsSync(dataDir), false, 'nothing written before it is needed');
      const minted = await mint(proxy.url, 'alice');
      assert.equal(statSync(join(dataDir, 'signing-key.pem')).mode & 0o777, 0o600);
      const revoked = await mint(proxy.url, 'mallory');
      assert.equal(await revoke(proxy.url, revoked.id), 204);

      // The operator's command signs with the same key.
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [CLI, '--subject', 'bob', '--ttl', '10m'],
        {
          env: {
            PATH: process.env.PATH ?? '',
            DATA_DIR: dataDir,
            DOTENV_PATH: '/nonexistent/.env',
            ...compileCacheEnv(),
          },
        },
      );
      const fromCli = JSON.parse(stdout) as { token: string; expiresAt: string; id: string };
      const lifetime = Date.parse(fromCli.expiresAt) - Date.now();
      assert.ok(lifetime > 590_000 && lifetime <= 600_000, `--ttl 10m gave ${lifetime} ms`);
      assert.equal(await ping(proxy.url, fromCli.token), 'ok');
      assert.equal(
        await revoke(proxy.url, fromCli.id),
        204,
        'the CLI recorded it: an unrestricted admin revokes it',
      );
      assert.equal(await ping(proxy.url, fromCli.token), '401 token_revoked');

      await proxy.stop();
      proxy = await startMain({ DATA_DIR: dataDir });
      assert.equal(await ping(proxy.url, minted.token), 'ok', 'the key survived the restart');
      assert.equal(await ping(proxy.url, revoked.token), '401 token_revoked', 'so did the revocation');
    } finally {
      await proxy.stop();
      await upstream.stop();
    }
  });

  it('npm run token refuses what the proxy would', async () => {
    const run = (args: string[]) =>
      promisify(execFile)(process.execPath, [CLI, ...args], {
        env: {
          PATH: process.env.PATH ?? '',
          STORE: 'memory',
          DOTENV_PATH: '/nonexistent/.env',
          ...compileCacheEnv(),
        },
      }).then(
        () => 0,
        (error: { code: number; stderr: string }) => error.code,
      );
    assert.equal(await run(['--subject', 'alice']), 78, 'STORE=memory without SIGNING_KEYS: no shared key');
    const key = ['--subject', 'alice'];
    const env = {
      PATH: process.env.PATH ?? '',
      SIGNING_KEYS: keyFile(),
      DOTENV_PATH: '/nonexistent/.env',
      ...compileCacheEnv(),
    };
    const withKey = (args: string[]) =>
      promisify(execFile)(process.execPath, [CLI, ...args], { env }).then(
        () => 0,
        (error: { code: number }) => error.code,
      );
    assert.equal(await withKey(key), 0);
    assert.equal(await withKey([...key, '--servers', 'nope']), 64);
    assert.equal(await withKey([...key, '--ttl', 'soon']), 64);
    assert.equal(await withKey(['--bogus']), 64);
  });

  it('an unreadable key file stops start-up with one line naming it and why (exit 78), not a stack trace', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'mcpp-unreadable-'));
    // A directory where the key file should be: unreadable as a file (EISDIR), even for root.
    mkdirSync(join(dataDir, 'signing-key.pem'));
    const configured = mkdtempSync(join(tmpdir(), 'mcpp-unreadable-'));
    for (const env of [{ DATA_DIR: dataDir }, { SIGNING_KEYS: configured, STORE: 'memory' }]) {
      const outcome = await promisify(execFile)(process.execPath, [MAIN], {
        env: {
          PATH: process.env.PATH ?? '',
          HOST: '127.0.0.1',
          PORT: String(await freePort()),
          ADMIN_TOKEN: ADMIN,
          DOTENV_PATH: '/nonexistent/.env',
          ...env,
        },
      }).then(
        () => ({ code: 0, stderr: '' }),
        (error: { code: number; stderr: string }) => error,
      );
      assert.equal(outcome.code, 78, outcome.stderr);
      const lines = outcome.stderr.trim().split('\n');
      assert.equal(lines.length, 1, outcome.stderr);
      assert.match(lines[0] as string, /signing key .*(signing-key\.pem|mcpp-unreadable-\w+).*EISDIR/);
    }
  });

  it('minting with an unwritable DATA_DIR is a 503 saying what to fix, not an internal error', async () => {
    const { startProxy } = await import('./helpers/proxy.ts');
    const { MemoryStore } = await import('../src/store/memory-store.ts');
    // Nothing can be created under /sys, whoever runs the test (root included: EPERM).
    const dataDir = '/sys/mcp-proxy-test-data';
    const proxy = await startProxy(
      { ADMIN_TOKEN: ADMIN, STORE: 'sqlite', DATA_DIR: dataDir },
      { store: new MemoryStore() },
    );
    try {
      const response = await fetch(`${proxy.url}/auth/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-proxy-token': ADMIN },
        body: JSON.stringify({ subject: 'alice' }),
      });
      const body = (await response.json()) as { error: { message: string; data: { code: string } } };
      assert.equal(response.status, 503);
      assert.equal(body.error.data.code, 'signing_key_unavailable');
      assert.match(body.error.message, /DATA_DIR|SIGNING_KEYS/);
      assert.ok(!body.error.message.includes(dataDir), 'no server path in the reply');
    } finally {
      await proxy.close();
    }
  });

  it('several npm run token at once on a fresh DATA_DIR all mint, with one key, and all record their tokens', async () => {
    for (let round = 0; round < 2; round++) {
      const dataDir = join(mkdtempSync(join(tmpdir(), 'mcpp-cli-race-')), 'data');
      const runs = await Promise.all(
        Array.from({ length: 6 }, () =>
          promisify(execFile)(process.execPath, [CLI, '--subject', 'alice'], {
            env: {
              PATH: process.env.PATH ?? '',
              DATA_DIR: dataDir,
              DOTENV_PATH: '/nonexistent/.env',
              ...compileCacheEnv(),
            },
          }).then(
            ({ stdout }) => ({ code: 0, stdout, stderr: '' }),
            (error: { code: number; stdout: string; stderr: string }) => error,
          ),
        ),
      );
      for (const run of runs) assert.equal(run.code, 0, run.stderr);
      const kids = new Set(runs.map((run) => decodeProtectedHeader(JSON.parse(run.stdout).token).kid));
      assert.equal(kids.size, 1);
    }
  });
});
