/**
 * Review 10 (virtual fleet), finding 2: the app never finishes closing when the shared Redis was
 * unreachable while it ran. FleetStreams.close() (virtual/fleet-streams.ts, close) awaits each
 * channel's subscription promise before undoing it; the Redis store's subscriber queues its
 * SUBSCRIBE until connected (store/redis-store.ts: maxRetriesPerRequest null), so with Redis down
 * since the start (the instance's own `asks:` channel) — or since a GET stream opened — that
 * promise never settles and `app.close()` hangs in the onClose hook: SIGTERM ends only by
 * main.ts's forced exit (exit 1, stdio children killed, sessions and the store never closed).
 * Without the fleet (the same check with the loop in close() skipped) it closes in ms.
 *
 * The proxy runs in a child so a hung close cannot hold this test's process.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { eventually } from './helpers/eventually.ts';
import { freePort } from './helpers/net.ts';

const PROXY_HELPER = new URL('./helpers/proxy.ts', import.meta.url).href;

it('closes the app while the shared Redis is unreachable', { timeout: 90_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcpp-review10-fleet-2-'));
  const port = await freePort();
  const script = join(dir, 'child.ts');
  await writeFile(
    script,
    [
      `import { startProxy } from ${JSON.stringify(PROXY_HELPER)};`,
      `const proxy = await startProxy({ REDIS_URL: 'redis://127.0.0.1:${port}', LOG_LEVEL: 'fatal' });`,
      `process.stdout.write('started\\n');`,
      `await proxy.close();`,
      `process.stdout.write('closed\\n');`,
      `process.exit(0);`,
    ].join('\n'),
  );
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    // Started (each bounded wait for Redis passed), then closing gets 10 s: it needs milliseconds.
    await eventually(() => out.includes('started'), {
      what: 'the proxy started with Redis unreachable',
      timeoutMs: 60_000,
    });
    await eventually(() => out.includes('closed'), {
      what: () => `app.close() to finish with Redis unreachable (child wrote ${JSON.stringify(out)})`,
      timeoutMs: 10_000,
    });
  } finally {
    child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
  }
});
