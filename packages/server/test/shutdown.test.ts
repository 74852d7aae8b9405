import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startMisbehaving } from './fixtures/misbehaving-upstream.ts';
import { freePort, waitForPort } from './helpers/net.ts';
import { postProxy } from './helpers/proxy.ts';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

describe('the proxy process', () => {
  it('serves with a generated token shown once, then shuts down gracefully on SIGTERM', async () => {
    const upstream = await startMisbehaving();
    const port = await freePort();
    const child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH ?? '',
        HOST: '127.0.0.1',
        PORT: String(port),
        ALLOW_PRIVATE_NETWORKS: 'true',
        DOTENV_PATH: '/nonexistent/.env',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitForPort(port);
      const token = /X-Proxy-Token: (\S+)/.exec(stdout)?.[1];
      assert.ok(token && token.length >= 40, 'a strong generated token is printed');
      const proxy = { url: `http://127.0.0.1:${port}`, token };

      const slow = postProxy(proxy, {
        mcp_server_url: `${upstream.origin}/slow`,
        jsonrpc: '2.0',
        id: 'long',
        method: 'tools/call',
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      child.kill('SIGTERM');

      const reply = await slow;
      assert.equal(reply.status, 200, 'the in-flight call finished');
      assert.deepEqual(reply.body.result, { slow: true });
      assert.equal(await exited, 0);
      assert.equal(stdout.split(token).length - 1, 1, 'the token appears exactly once in all output');
      assert.match(stdout, /shut down cleanly/);
    } finally {
      child.kill('SIGKILL');
      await upstream.stop();
    }
  });

  it('refuses to start on a bad setting, with one line naming it', async () => {
    const child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH ?? '', PORT: 'abc', DOTENV_PATH: '/nonexistent/.env' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 78);
    assert.equal(stderr.trim(), 'Invalid configuration: PORT: expected a whole number, got "abc"');
  });
});
