/**
 * Issue #16 (start-up memory): a proxy with the default configuration does not load what that
 * configuration does not use (Redis client, Prometheus client, YAML and .env parsers, Fastify's
 * schema compilers, jose (until a JWT is verified), the held-session transports and era bridge
 * (until a session is held), undici's index and, through it or an ES import of `node:http`, Node's own
 * bundled undici). Each case builds the app in a fresh child process and lists the packages
 * its module caches hold; turning a feature on must load its package, so the check can see what
 * it looks for. `node bench/startup-rss.ts` measures what this saves.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { startRedis } from './helpers/redis.ts';

const APP = new URL('../src/app.ts', import.meta.url).href;
const CONFIG = new URL('../src/config/config.ts', import.meta.url).href;
const WATCHED = [
  'ioredis',
  'prom-client',
  'yaml',
  'dotenv',
  'ajv',
  '@fastify/ajv-compiler',
  '@opentelemetry/api',
  '@opentelemetry/sdk-trace',
  'undici/index.js',
  'jose',
  'oauth4webapi',
];
/**
 * Our own modules a proxy that only passes requests through never needs: held-session
 * transports, the era bridge, the status page (no token could read it), the relay to other
 * instances, their registry and the seal of what they send each other (no store another
 * process shares), the upstream OAuth broker and its OAuth library (no PUBLIC_URL).
 */
const OWN_WATCHED = [
  'upstream/stdio.ts',
  'upstream/sse.ts',
  'upstream/websocket.ts',
  'dispatch/auto-http.ts',
  'eras/era-switch.ts',
  'observability/live-status.ts',
  'observability/latency-window.ts',
  'surfaces/status-page.ts',
  'http/relay.ts',
  'sessions/ownership.ts',
  'http/relay-box.ts',
  'credentials/broker.ts',
];
/** Node's bundled undici (its fetch, WebSocket, MessageEvent), as `process.moduleLoadList` names it. */
const NODE_UNDICI = 'NativeModule internal/deps/undici/undici';

const dir = mkdtempSync(join(tmpdir(), 'startup-modules-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The watched packages a fresh process holds after building and readying the app (and then
 * importing `andThen`, when named).
 */
async function loadedPackages(env: Record<string, string>, dotenv = '', andThen = ''): Promise<string[]> {
  const dotenvPath = join(dir, `${Object.keys(env).join('-') || 'default'}.env`);
  if (dotenv !== '') writeFileSync(dotenvPath, dotenv);
  // ES modules (OpenTelemetry's) are not in require.cache: a resolve hook lists them.
  const script = `
    import { createRequire, registerHooks } from 'node:module';
    const esm = [];
    registerHooks({ resolve(specifier, context, next) { const found = next(specifier, context); esm.push(found.url); return found; } });
    const { buildApp } = await import(${JSON.stringify(APP)});
    const { loadConfig } = await import(${JSON.stringify(CONFIG)});
    const config = loadConfig({ env: ${JSON.stringify({ PROXY_TOKEN: 'startup-modules-token-0123456789abcdef', ...env })}, dotenvPath: ${JSON.stringify(dotenvPath)} });
    const app = await buildApp(config, { logDestination: { write() {} } });
    await app.ready();
    if (${JSON.stringify(andThen)} !== '') await import(${JSON.stringify(andThen)});
    const cached = [...Object.keys(createRequire(import.meta.url).cache), ...esm];
    const watched = ${JSON.stringify(WATCHED)};
    const loaded = watched.filter((name) => cached.some((path) => path.includes('/node_modules/' + name + (name.endsWith('.js') ? '' : '/'))));
    for (const file of ${JSON.stringify(OWN_WATCHED)}) if (esm.some((url) => url.endsWith('/packages/server/src/' + file))) loaded.push(file);
    if (process.moduleLoadList.includes(${JSON.stringify(NODE_UNDICI)})) loaded.push('node:internal/deps/undici');
    process.stdout.write(JSON.stringify(loaded));
    await app.close();
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    // The run's compile cache (as every proxy child has): it changes how fast modules load, not which.
    env: { PATH: process.env.PATH ?? '', ...compileCacheEnv() },
    timeout: 60_000,
  });
  return JSON.parse(stdout) as string[];
}

describe('start-up modules', () => {
  it('loads none of the optional packages with the default configuration', async () => {
    assert.deepEqual(await loadedPackages({}), []);
  });

  it("sees undici's index and Node's bundled undici once they are loaded", async () => {
    assert.deepEqual(await loadedPackages({}, '', 'undici'), [
      'undici/index.js',
      'node:internal/deps/undici',
    ]);
  });

  it('sees the era bridge once it is loaded (the first held session)', async () => {
    const bridge = new URL('../src/eras/era-switch.ts', import.meta.url).href;
    assert.deepEqual(await loadedPackages({}, '', bridge), ['eras/era-switch.ts']);
  });

  it('sees jose once it is loaded (the first JWT minted or verified)', async () => {
    assert.deepEqual(await loadedPackages({}, '', 'jose'), ['jose']);
  });

  it('loads prom-client once METRICS_TOKEN is set, and dotenv once a .env file exists', async () => {
    const loaded = await loadedPackages(
      { METRICS_TOKEN: 'startup-modules-metrics-0123456789' },
      'LOG_LEVEL=info\n',
    );
    assert.ok(loaded.includes('prom-client'), `loaded: ${loaded.join(', ')}`);
    assert.ok(loaded.includes('dotenv'), `loaded: ${loaded.join(', ')}`);
    assert.ok(!loaded.includes('ioredis'), `loaded: ${loaded.join(', ')}`);
  });

  it('loads the status page once a token could read it (an admin token)', async () => {
    const loaded = await loadedPackages({ ADMIN_TOKEN: 'startup-modules-admin-0123456789abcdef' });
    for (const file of [
      'observability/live-status.ts',
      'observability/latency-window.ts',
      'surfaces/status-page.ts',
    ])
      assert.ok(loaded.includes(file), `loaded: ${loaded.join(', ')}`);
  });

  it('loads the relay once the store is shared (REDIS_URL)', async (t) => {
    const redis = await startRedis();
    t.after(() => redis.stop());
    const loaded = await loadedPackages({ REDIS_URL: redis.url });
    for (const file of ['http/relay.ts', 'sessions/ownership.ts', 'http/relay-box.ts', 'ioredis'])
      assert.ok(loaded.includes(file), `loaded: ${loaded.join(', ')}`);
  });

  it('loads the OAuth broker once PUBLIC_URL runs it', async () => {
    const loaded = await loadedPackages({ PUBLIC_URL: 'http://127.0.0.1:8000' });
    for (const file of ['credentials/broker.ts', 'oauth4webapi'])
      assert.ok(loaded.includes(file), `loaded: ${loaded.join(', ')}`);
  });

  it('loads the OpenTelemetry SDK once an OTLP endpoint is set (issue 21)', async () => {
    const loaded = await loadedPackages({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' });
    assert.ok(loaded.includes('@opentelemetry/sdk-trace'), `loaded: ${loaded.join(', ')}`);
  });

  it('loads the YAML parser for a YAML config file', async () => {
    const file = join(dir, 'proxy.yaml');
    writeFileSync(file, 'logLevel: info\n');
    const loaded = await loadedPackages({ MCP_PROXY_CONFIG: file });
    assert.ok(loaded.includes('yaml'), `loaded: ${loaded.join(', ')}`);
  });
});
