/**
 * Issue #14.7: a POST /proxy call to a configured stdio server without a session runs a one-off
 * child; those children count against the session caps (per token and in total) and the
 * new-session rate limit, so N concurrent calls cannot start more than the caps allow.
 * Issue #14.10: a forced exit at the shutdown timeout kills stdio children still running.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { eventually } from './helpers/eventually.ts';
import { freePort, waitForPort } from './helpers/net.ts';
import { postProxy, type Reply, type RunningProxy, startProxy } from './helpers/proxy.ts';

const HELD_STDIO = fileURLToPath(new URL('./fixtures/held-stdio.ts', import.meta.url));
const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

/** A config file naming the held stdio server, and the directory its children write pids to. */
function heldServerConfig(): { readonly configPath: string; readonly pidDir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-children-'));
  const pidDir = mkdtempSync(join(dir, 'pids-'));
  const configPath = join(dir, 'proxy.yaml');
  writeFileSync(
    configPath,
    [
      'servers:',
      '  held:',
      `    command: ${JSON.stringify(process.execPath)}`,
      `    args: [${JSON.stringify(HELD_STDIO)}, ${JSON.stringify(pidDir)}]`,
      `    env: ${JSON.stringify(compileCacheEnv())}`,
      '',
    ].join('\n'),
  );
  return { configPath, pidDir };
}

function pidsIn(dir: string): number[] {
  return readdirSync(dir).map(Number);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits until `check` holds (at most `timeoutMs`). */
async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  await eventually(check, { timeoutMs, what });
}

const call = (id: number) => ({
  server: 'held',
  mcp_protocol_version: '2025-06-18',
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name: 'wait', arguments: {} },
});

/** Starts a held call that only ends when aborted. */
function heldCall(proxy: RunningProxy, id: number, controller: AbortController): Promise<unknown> {
  return fetch(`${proxy.url}/proxy`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-proxy-token': proxy.token },
    body: JSON.stringify(call(id)),
    signal: controller.signal,
  }).then(
    (response) => response.text(),
    () => undefined,
  );
}

describe('one-off stdio children of POST /proxy', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function holdCalls(proxy: RunningProxy, pidDir: string, count: number) {
    const controller = new AbortController();
    const calls = Array.from({ length: count }, (_, i) => heldCall(proxy, i + 1, controller));
    await until(`${count} children started`, () => pidsIn(pidDir).length === count);
    const release = async () => {
      controller.abort();
      await Promise.all(calls);
      await until('every child exited', () => pidsIn(pidDir).every((pid) => !alive(pid)));
    };
    return release;
  }

  it('count against MAX_SESSIONS_PER_TOKEN: call N+1 is refused and no child is started for it', async () => {
    const { configPath, pidDir } = heldServerConfig();
    const proxy = await startProxy({ MCP_PROXY_CONFIG: configPath, MAX_SESSIONS_PER_TOKEN: '2' });
    cleanup.push(() => proxy.close());
    const release = await holdCalls(proxy, pidDir, 2);
    cleanup.push(release);

    const refused: Reply = await postProxy(proxy, call(3));
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.data.code, 'session_limit');
    assert.equal(pidsIn(pidDir).length, 2, 'no third child was started');
    assert.equal(pidsIn(pidDir).filter(alive).length, 2);

    // Once the held calls end, their slots are free again.
    await release();
    cleanup.pop();
    const ping = await postProxy(proxy, { ...call(4), method: 'ping', params: undefined });
    assert.equal(ping.status, 200, JSON.stringify(ping.body));
  });

  it('count against MAX_SESSIONS across tokens', async () => {
    const { configPath, pidDir } = heldServerConfig();
    const other = 'second-proxy-token-0123456789abcdef';
    const proxy = await startProxy({
      MCP_PROXY_CONFIG: configPath,
      MAX_SESSIONS: '2',
      PROXY_TOKEN: `test-proxy-token-0123456789abcdef,${other}`,
    });
    cleanup.push(() => proxy.close());
    cleanup.push(await holdCalls(proxy, pidDir, 2));
    const refused = await postProxy({ url: proxy.url, token: other }, call(3));
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error.data.code, 'session_limit');
    assert.equal(pidsIn(pidDir).length, 2);
  });

  it('count against the new-session rate limit', async () => {
    const { configPath, pidDir } = heldServerConfig();
    const proxy = await startProxy({ MCP_PROXY_CONFIG: configPath, RATE_LIMIT_SESSIONS_PER_TOKEN: '2' });
    cleanup.push(() => proxy.close());
    const ping = (id: number) => postProxy(proxy, { ...call(id), method: 'ping', params: undefined });
    assert.equal((await ping(1)).status, 200);
    assert.equal((await ping(2)).status, 200);
    const limited = await ping(3);
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.data.code, 'rate_limited');
    assert.equal(pidsIn(pidDir).length, 2);
  });
});

describe('a forced exit at the shutdown timeout', () => {
  it('kills the stdio children still running', async () => {
    const { configPath, pidDir } = heldServerConfig();
    const port = await freePort();
    const token = 'shutdown-proxy-token-0123456789abcdef';
    const child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH ?? '',
        HOST: '127.0.0.1',
        PORT: String(port),
        PROXY_TOKEN: token,
        MCP_PROXY_CONFIG: configPath,
        SHUTDOWN_TIMEOUT_MS: '300',
        DOTENV_PATH: '/nonexistent/.env',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const controller = new AbortController();
    try {
      await waitForPort(port);
      const proxy = { url: `http://127.0.0.1:${port}`, token } as RunningProxy;
      const held = heldCall(proxy, 1, controller);
      await until('the stdio child started', () => pidsIn(pidDir).length === 1);
      const [pid] = pidsIn(pidDir) as [number];
      assert.ok(alive(pid));
      child.kill('SIGTERM');
      assert.equal(await exited, 1, 'the shutdown was forced');
      assert.match(output, /shutdown timed out/);
      await until('the stdio child is gone', () => !alive(pid), 5_000);
      controller.abort();
      await held;
    } finally {
      controller.abort();
      child.kill('SIGKILL');
      for (const pid of pidsIn(pidDir)) if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });
});

describe('a DELETEd stdio session (review F5)', () => {
  it('keeps its slot until its child has exited, so the caps bound running children', async () => {
    const { configPath, pidDir } = heldServerConfig();
    const termDir = mkdtempSync(join(tmpdir(), 'mcp-proxy-sigterm-'));
    // The same server, but its child ignores SIGTERM: it lives on for the proxy's kill grace.
    writeFileSync(configPath, readFileSync(configPath, 'utf8').replace(']', `, ${JSON.stringify(termDir)}]`));
    const proxy = await startProxy({ MCP_PROXY_CONFIG: configPath, MAX_SESSIONS_PER_TOKEN: '1' });
    const initialize = () =>
      fetch(`${proxy.url}/servers/held/mcp`, {
        method: 'POST',
        headers: {
          'x-proxy-token': proxy.token,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: '2025-06-18',
            capabilities: {},
            clientInfo: { name: 'f5', version: '1.0.0' },
          },
        }),
      });
    try {
      const opened = await initialize();
      await opened.text();
      assert.equal(opened.status, 200);
      const sessionId = opened.headers.get('mcp-session-id');
      assert.ok(sessionId);
      const [first] = pidsIn(pidDir) as [number];
      const deleted = fetch(`${proxy.url}/servers/held/mcp`, {
        method: 'DELETE',
        headers: { 'x-proxy-token': proxy.token, 'mcp-session-id': sessionId },
      });
      await until('the child was sent SIGTERM', () => pidsIn(termDir).includes(first));
      assert.ok(alive(first), 'the child outlives its SIGTERM');

      // While the first child still runs, its slot is still taken.
      const early = await initialize();
      const text = await early.text();
      assert.equal(early.status, 429, `a second session opened while the first child ran: ${text}`);
      const refusal = JSON.parse(text) as { error: { data: { code: string } } };
      assert.equal(refusal.error.data.code, 'session_limit');
      assert.equal(pidsIn(pidDir).length, 1, 'no second child was started');

      // Once DELETE answers, the child is gone and the slot is free again.
      assert.equal((await deleted).status, 200);
      assert.ok(!alive(first));
      const again = await initialize();
      await again.text();
      assert.equal(again.status, 200);
    } finally {
      await proxy.close();
      for (const pid of pidsIn(pidDir)) if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });
});
