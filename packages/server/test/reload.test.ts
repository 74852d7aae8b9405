import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { eventually } from './helpers/eventually.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { freePort, waitForPort } from './helpers/net.ts';
import { postProxy } from './helpers/proxy.ts';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const OLD = 'reload-old-token-0123456789abcdef';
const NEW = 'reload-new-token-0123456789abcdef';

async function waitForLog(read: () => string, pattern: RegExp, timeoutMs = 10_000): Promise<void> {
  await eventually(() => pattern.test(read()), {
    timeoutMs,
    intervalMs: 50,
    what: () => `a log line matching ${pattern}:\n${read().slice(-2000)}`,
  });
}

describe('SIGHUP', () => {
  it('reloads tokens, CORS origins and egress without dropping sessions; keeps running on a bad file', async () => {
    const upstream: EverythingServer = await startEverything('sse');
    const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-reload-'));
    const file = join(dir, 'proxy.yaml');
    const write = (tokens: string[], origins: string[], extra = '') =>
      writeFileSync(
        file,
        `proxyTokens: ${JSON.stringify(tokens)}\ncorsOrigins: ${JSON.stringify(origins)}\negress:\n  allowPrivateNetworks: true\n${extra}`,
      );
    write([OLD], ['https://one.example.test']);
    const port = await freePort();
    const child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH ?? '',
        HOST: '127.0.0.1',
        PORT: String(port),
        MCP_PROXY_CONFIG: file,
        DOTENV_PATH: join(dir, 'none.env'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const proxyUrl = `http://127.0.0.1:${port}`;
    try {
      await waitForPort(port);
      const init = await postProxy(
        { url: proxyUrl, token: OLD },
        {
          mcp_server_url: upstream.url,
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: '2024-11-05',
            capabilities: {},
            clientInfo: { name: 't', version: '1' },
          },
        },
      );
      const sessionId = init.headers.get('mcp-session-id') ?? '';
      assert.match(sessionId, /^mcpp-/, `initialize answered ${init.status}: ${JSON.stringify(init.body)}`);
      assert.equal(
        (
          await postProxy(
            { url: proxyUrl, token: NEW },
            { mcp_server_url: upstream.url, jsonrpc: '2.0', id: 2, method: 'ping' },
          )
        ).status,
        401,
      );

      write([OLD, NEW], ['https://two.example.test']);
      child.kill('SIGHUP');
      await waitForLog(() => output, /configuration reloaded/);

      const ping = { mcp_server_url: upstream.url, jsonrpc: '2.0', id: 3, method: 'ping' };
      assert.equal((await postProxy({ url: proxyUrl, token: NEW }, ping)).status, 200, 'the new token works');
      const kept = await postProxy({ url: proxyUrl, token: OLD }, ping, { 'mcp-session-id': sessionId });
      assert.equal(kept.status, 200, 'the open session survived the reload');
      assert.deepEqual(kept.body.result, {});
      const preflight = await fetch(`${proxyUrl}/proxy`, {
        method: 'OPTIONS',
        headers: { origin: 'https://two.example.test', 'access-control-request-method': 'POST' },
      });
      assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://two.example.test');

      // A broken file is reported and changes nothing.
      writeFileSync(file, 'proxyTokens: [short]\n');
      child.kill('SIGHUP');
      await waitForLog(() => output, /configuration reload failed/);
      assert.equal((await postProxy({ url: proxyUrl, token: NEW }, ping)).status, 200);

      // Egress tightened by a reload applies to the next request.
      write([NEW], ['https://two.example.test'], '  deniedHosts: ["127.0.0.1"]\n');
      child.kill('SIGHUP');
      await waitForLog(() => output, /configuration reloaded[\s\S]*configuration reloaded/);
      const denied = await postProxy({ url: proxyUrl, token: NEW }, ping);
      assert.equal(denied.status, 403);
      assert.equal(denied.body.error.data.code, 'target_forbidden');
      assert.ok(!output.includes(OLD) && !output.includes(NEW), 'tokens never logged');
    } finally {
      child.kill('SIGKILL');
      await upstream.stop();
    }
  });

  it('never brings back a revoked start-up token or a generated one once tokens are configured', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-revoke-'));
    const file = join(dir, 'proxy.yaml');
    const grantFor = (token: string) =>
      `tokens:\n  - sha256: "${createHash('sha256').update(token).digest('hex')}"\n`;
    const run = async (initial: string, steps: (ctx: Running) => Promise<void>) => {
      writeFileSync(file, initial);
      const port = await freePort();
      const child = spawn(process.execPath, [MAIN], {
        env: {
          PATH: process.env.PATH ?? '',
          HOST: '127.0.0.1',
          PORT: String(port),
          MCP_PROXY_CONFIG: file,
          DOTENV_PATH: join(dir, 'none.env'),
          LOG_FORMAT: 'json',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.stderr.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      let reloads = 0;
      const ctx: Running = {
        output: () => output,
        // 400 (an empty envelope) once past authentication, 401 before.
        status: async (token) => (await postProxy({ url: `http://127.0.0.1:${port}`, token }, {})).status,
        reload: async (text) => {
          writeFileSync(file, text);
          child.kill('SIGHUP');
          reloads++;
          await waitForLog(() => output, new RegExp(`(configuration reloaded[\\s\\S]*){${reloads}}`));
        },
      };
      try {
        await waitForPort(port);
        await steps(ctx);
      } finally {
        child.kill('SIGKILL');
      }
    };

    await run(`proxyTokens: ${JSON.stringify([OLD, NEW])}\n`, async (proxy) => {
      assert.equal(await proxy.status(OLD), 400);
      await proxy.reload(`proxyTokens: ${JSON.stringify([NEW])}\n`);
      assert.equal(await proxy.status(OLD), 401, 'revoked by the first reload');
      // NEW moves to a grant by digest: no plain token is named any more.
      await proxy.reload(grantFor(NEW));
      assert.equal(await proxy.status(NEW), 400);
      assert.equal(await proxy.status(OLD), 401, 'the start-up token stays revoked');
    });

    await run('{}\n', async (proxy) => {
      const generated = /X-Proxy-Token: (\S+)/.exec(proxy.output())?.[1] ?? '';
      assert.notEqual(generated, '');
      assert.equal(await proxy.status(generated), 400);
      await proxy.reload('corsOrigins: ["https://one.example.test"]\n');
      assert.equal(await proxy.status(generated), 400, 'kept while no token is configured');
      await proxy.reload(grantFor(NEW));
      assert.equal(await proxy.status(NEW), 400);
      assert.equal(await proxy.status(generated), 401, 'a configured token ends the generated one');
      await proxy.reload('{}\n');
      assert.equal(await proxy.status(generated), 401, 'and it does not come back');
    });
  });
});

/** A proxy child under test. */
interface Running {
  output(): string;
  status(token: string): Promise<number>;
  reload(text: string): Promise<void>;
}
