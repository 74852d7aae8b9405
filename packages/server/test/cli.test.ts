import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ENV_VARS } from '../src/config/sources.ts';
import { USAGE_SETTINGS } from '../src/config/usage.ts';
import { eventually } from './helpers/eventually.ts';
import { freePort } from './helpers/net.ts';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const TOKEN = 'cli-test-token-0123456789abcdef';

const children = new Set<ReturnType<typeof spawn>>();

/** A child running main.ts, its output collected. */
function start(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '', DOTENV_PATH: join(tmpdir(), 'mcp-proxy-no.env'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (chunk: Buffer) => {
    out.stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    out.stderr += chunk.toString();
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, out, exited };
}

/** Resolves once `read()` matches, or fails after `timeoutMs`. */
async function waitFor(read: () => string, pattern: RegExp, timeoutMs = 15_000): Promise<void> {
  await eventually(() => pattern.test(read()), {
    timeoutMs,
    intervalMs: 50,
    what: () => `output matching ${pattern}:\n${read().slice(-2000)}`,
  });
}

describe('the command line', { timeout: 60_000 }, () => {
  after(() => {
    for (const child of children) child.kill('SIGKILL');
  });

  it('--help prints the usage and the most used settings, and exits 0 without listening', {
    timeout: 20_000,
  }, async () => {
    const port = await freePort();
    const run = start(['--help'], { PORT: String(port), HOST: '127.0.0.1' });
    assert.equal(await run.exited, 0);
    assert.match(run.out.stdout, /^Usage: /m);
    const known = new Set(ENV_VARS.map(([name]) => name));
    for (const [name] of USAGE_SETTINGS) {
      assert.ok(known.has(name), `${name} is a real setting`);
      assert.ok(run.out.stdout.includes(name), `${name} is listed`);
    }
    for (const name of ['PORT', 'HOST', 'PROXY_TOKEN', 'CORS_ORIGINS', 'MCP_PROXY_CONFIG', 'REDIS_URL']) {
      assert.ok(run.out.stdout.includes(name), `${name} is listed`);
    }
    assert.doesNotMatch(run.out.stdout, /X-Proxy-Token: /, 'no token was generated: nothing started');
  });

  it('refuses an unknown argument with a pointer to --help', { timeout: 20_000 }, async () => {
    const run = start(['--port=8080'], {});
    assert.equal(await run.exited, 64);
    assert.match(run.out.stderr, /--port=8080.*--help/);
  });

  it('a busy port is one line naming PORT and HOST, and a non-zero exit', { timeout: 20_000 }, async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as { port: number };
    try {
      const run = start([], {
        PORT: String(port),
        HOST: '127.0.0.1',
        PROXY_TOKEN: TOKEN,
        LOG_FORMAT: 'json',
      });
      const code = await run.exited;
      assert.notEqual(code, 0);
      const lines = run.out.stderr.trim().split('\n');
      assert.equal(lines.length, 1, run.out.stderr);
      assert.match(lines[0] ?? '', new RegExp(`127\\.0\\.0\\.1:${port}.*in use.*PORT.*HOST`));
      assert.doesNotMatch(run.out.stderr + run.out.stdout, /\n\s+at /, 'no stack trace');
    } finally {
      holder.close();
    }
  });

  // Three start-ups in a row: on a loaded machine one can take several seconds.
  it('LOG_FORMAT=pretty writes readable lines; JSON otherwise when stdout is not a terminal', {
    timeout: 60_000,
  }, async () => {
    for (const [format, pretty] of [
      ['pretty', true],
      ['auto', false],
      ['json', false],
    ] as const) {
      const port = await freePort();
      const run = start([], {
        PORT: String(port),
        HOST: '127.0.0.1',
        PROXY_TOKEN: TOKEN,
        LOG_FORMAT: format,
      });
      try {
        await waitFor(() => run.out.stdout, /listening/i);
        const line = run.out.stdout.split('\n').find((l) => /listening/i.test(l)) ?? '';
        if (pretty) {
          assert.doesNotMatch(line, /^\{/, line);
          assert.match(line, /INFO/, line);
        } else {
          assert.equal((JSON.parse(line) as { level: number }).level, 30);
        }
        assert.ok(!run.out.stdout.includes(TOKEN), 'no token in the logs');
      } finally {
        run.child.kill('SIGTERM');
        await run.exited;
      }
    }
  });

  it('generates no shared token when callers authenticate with OIDC or minted tokens; a warning says how they do', {
    timeout: 30_000,
  }, async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ OIDC_ISSUER: 'https://login.example.com', OIDC_AUDIENCE: 'https://proxy.example.com' }, /OIDC/],
      [{ ADMIN_TOKEN: TOKEN, STORE: 'memory' }, /ADMIN_TOKEN/],
    ];
    for (const [env, how] of cases) {
      const port = await freePort();
      const run = start([], { PORT: String(port), HOST: '127.0.0.1', LOG_FORMAT: 'json', ...env });
      try {
        await waitFor(() => run.out.stdout, /listening/i);
        assert.doesNotMatch(run.out.stdout, /X-Proxy-Token: /, 'no token was generated');
        const warning = run.out.stdout
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as { level: number; msg: string })
          .find((line) => line.level === 40 && /no PROXY_TOKEN/.test(line.msg));
        assert.ok(warning, run.out.stdout);
        assert.match(warning.msg, how);
        assert.ok(!run.out.stdout.includes(TOKEN), 'no token in the logs');
      } finally {
        run.child.kill('SIGTERM');
        await run.exited;
      }
    }
  });
});
