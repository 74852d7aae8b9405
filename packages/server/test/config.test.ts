import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, DEFAULTS, loadConfig } from '../src/config/config.ts';

const TOKEN = 'a-token-of-sufficient-length-1234';

function tempFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-config-'));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('config', () => {
  it('has documented defaults', () => {
    const config = loadConfig({ env: {} });
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.port, 8000);
    assert.deepEqual(config.proxyTokens, []);
    assert.deepEqual(config.corsOrigins, []);
    assert.equal(config.egress.allowPrivateNetworks, false);
    assert.equal(config.upstream.timeoutMs, DEFAULTS.upstream.timeoutMs);
    // One-time codes of sign-in links are opt-in (consent phishing, docs/oauth.md).
    assert.equal(config.oauthUserCodes, false);
  });

  it('merges config file < .env < environment', () => {
    const file = tempFile(
      'proxy.yaml',
      'port: 9001\nhost: 127.0.0.1\nlogLevel: warn\nupstream:\n  timeoutMs: 1234\n',
    );
    const dotenv = tempFile('.env', `PORT=9002\nPROXY_TOKEN=${TOKEN}\nLOG_LEVEL=debug\n`);
    const config = loadConfig({ env: { PORT: '9003', MCP_PROXY_CONFIG: file }, dotenvPath: dotenv });
    assert.equal(config.port, 9003, 'environment wins');
    assert.equal(config.logLevel, 'debug', '.env beats the file');
    assert.equal(config.host, '127.0.0.1', 'file beats defaults');
    assert.equal(config.upstream.timeoutMs, 1234);
    assert.equal(
      config.upstream.responseLimitBytes,
      DEFAULTS.upstream.responseLimitBytes,
      'nested defaults kept',
    );
    assert.deepEqual(config.proxyTokens, [TOKEN]);
  });

  it('reads a JSON config file', () => {
    const file = tempFile(
      'proxy.json',
      JSON.stringify({ corsOrigins: ['https://app.example.com'], egress: { followRedirects: 2 } }),
    );
    const config = loadConfig({ env: {}, configPath: file });
    assert.deepEqual(config.corsOrigins, ['https://app.example.com']);
    assert.equal(config.egress.followRedirects, 2);
  });

  it('adds PROXY_TOKEN and PROXY_TOKENS together for rotation', () => {
    const config = loadConfig({ env: { PROXY_TOKEN: TOKEN, PROXY_TOKENS: `${TOKEN}-new, ${TOKEN}-next` } });
    assert.deepEqual(config.proxyTokens, [TOKEN, `${TOKEN}-new`, `${TOKEN}-next`]);
  });

  it('is frozen', () => {
    const config = loadConfig({ env: { CORS_ORIGINS: 'https://a.example.com' } });
    assert.ok(
      Object.isFrozen(config) && Object.isFrozen(config.upstream) && Object.isFrozen(config.corsOrigins),
    );
    assert.throws(() => {
      (config as { port: number }).port = 1;
    }, TypeError);
  });

  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /^Invalid configuration: PORT: expected a whole number, got "eighty"$/],
    [{ PORT: '70000' }, /^Invalid configuration: PORT: /],
    [
      { PROXY_TOKEN: 'short' },
      /^Invalid configuration: PROXY_TOKEN: a proxy token must be at least 16 characters/,
    ],
    [{ LOG_LEVEL: 'loud' }, /^Invalid configuration: LOG_LEVEL: /],
    [
      { ALLOW_PRIVATE_NETWORKS: 'maybe' },
      /^Invalid configuration: ALLOW_PRIVATE_NETWORKS: expected true or false/,
    ],
    [{ CORS_ORIGINS: 'app.example.com' }, /^Invalid configuration: CORS_ORIGINS: each origin must look like/],
    [{ UPSTREAM_TIMEOUT_MS: '0' }, /^Invalid configuration: UPSTREAM_TIMEOUT_MS: /],
    [
      { EGRESS_ALLOWED_PORTS: '443,http' },
      /^Invalid configuration: EGRESS_ALLOWED_PORTS: expected a whole number/,
    ],
  ];
  for (const [env, message] of bad) {
    it(`stops on a bad value with one line naming it (${Object.keys(env)[0]})`, () => {
      assert.throws(
        () => loadConfig({ env }),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.match(error.message, message);
          assert.ok(!error.message.includes('\n'), 'one line');
          return true;
        },
      );
    });
  }

  it('names the config file key for a bad file value', () => {
    const file = tempFile('bad.yaml', 'sessions:\n  maxTotal: -1\n');
    assert.throws(
      () => loadConfig({ env: { MCP_PROXY_CONFIG: file } }),
      /config file .*bad\.yaml key "sessions\.maxTotal"/,
    );
  });

  it('refuses unknown keys in the config file', () => {
    const file = tempFile('typo.yaml', 'prot: 1\n');
    assert.throws(() => loadConfig({ env: {}, configPath: file }), /Invalid configuration: .*prot/);
  });

  it('says when the config file is missing or does not parse', () => {
    assert.throws(
      () => loadConfig({ env: { MCP_PROXY_CONFIG: '/nonexistent/proxy.yaml' } }),
      /MCP_PROXY_CONFIG: cannot read/,
    );
    const broken = tempFile('broken.json', '{ nope');
    assert.throws(() => loadConfig({ env: {}, configPath: broken }), /does not parse/);
  });

  it('says where a config file does not parse, never what the text there is', () => {
    const cases: Array<[string, string, RegExp]> = [
      [
        'bad.json',
        '{"servers":{"gh":{"token":"ghp_SECRET123","url":https://a/mcp}}}',
        /JSON at line 1, column 49/,
      ],
      ['bad2.json', '{"a":"ghp_SECRET123",\n "b": ghp_SECRET123}', /JSON at line 2, column 7/],
      ['cut.json', '{"a":"ghp_SECRET123"', /JSON \(the file ends too soon\)/],
      ['bad.yaml', 'servers:\n  gh: {token: ghp_SECRET123\n', /YAML at line \d+, column \d+/],
    ];
    for (const [name, text, where] of cases) {
      assert.throws(
        () => loadConfig({ env: {}, configPath: tempFile(name, text) }),
        (error: unknown) => {
          const message = (error as Error).message;
          assert.match(message, where);
          assert.ok(!message.includes('SECRET'), message);
          return true;
        },
      );
    }
  });

  it('refuses the OAuth broker on a shared Redis without VAULT_KEY, naming it', () => {
    const shared = { PUBLIC_URL: 'https://proxy.example', REDIS_URL: 'redis://127.0.0.1:6379' };
    assert.throws(
      () => loadConfig({ env: shared }),
      (error: unknown) =>
        error instanceof ConfigError && /^Invalid configuration: REDIS_URL: .*VAULT_KEY/.test(error.message),
    );
    // Each way out: the key, the broker off, or no shared store.
    const key = Buffer.alloc(32, 1).toString('base64');
    assert.deepEqual(loadConfig({ env: { ...shared, VAULT_KEY: key } }).vaultKeys, [key]);
    assert.equal(loadConfig({ env: { ...shared, OAUTH_BROKER: 'false' } }).oauthBroker, false);
    assert.equal(loadConfig({ env: { ...shared, STORE: 'sqlite' } }).store, 'sqlite');
    assert.equal(loadConfig({ env: { REDIS_URL: shared.REDIS_URL } }).publicUrl, undefined);
  });

  it('does not echo a bad token value', () => {
    assert.throws(
      () => loadConfig({ env: { PROXY_TOKEN: 'has white space in it!' } }),
      (error: unknown) => !(error as Error).message.includes('white space in it'),
    );
  });

  it('takes a server era as `session`, and `legacy` as its former name', () => {
    const file = tempFile(
      'eras.yaml',
      [
        'servers:',
        '  a: {url: "https://a.example/mcp", protocol: session}',
        '  b: {url: "https://b.example/mcp", protocol: legacy}',
        '  c: {command: node, protocol: modern}',
        '  d: {url: "https://d.example/mcp"}',
      ].join('\n'),
    );
    const { servers } = loadConfig({ env: {}, configPath: file });
    const eras = Object.fromEntries(Object.entries(servers).map(([name, server]) => [name, server.protocol]));
    assert.deepEqual(eras, { a: 'session', b: 'session', c: 'modern', d: 'auto' });
    assert.throws(
      () =>
        loadConfig({
          env: {},
          configPath: tempFile('bad-era.yaml', 'servers:\n  a: {command: node, protocol: 2025}\n'),
        }),
      /servers\.a/,
    );
  });
});
