/**
 * Issue 20: `virtualServers` in the config file, and what is refused at load time.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../src/config/config.ts';

function load(config: unknown) {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-virtual-config-'));
  const path = join(dir, 'proxy.json');
  writeFileSync(path, JSON.stringify(config));
  return loadConfig({ env: { MCP_PROXY_CONFIG: path } });
}

const SERVERS = {
  github: { url: 'https://github.example/mcp' },
  linear: { url: 'https://linear.example/mcp' },
  lin: { command: '/bin/true' },
};

function refusal(config: unknown): string {
  try {
    load(config);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.message;
  }
  assert.fail('the configuration was accepted');
}

describe('virtualServers configuration', () => {
  it('accepts members that exist, with the default separator', () => {
    const config = load({
      servers: SERVERS,
      virtualServers: { workspace: { servers: ['github', 'linear'] } },
    });
    assert.deepEqual(config.virtualServers.workspace?.servers, ['github', 'linear']);
    assert.equal(config.virtualServers.workspace?.separator, '__');
  });

  it('lets a grant name a virtual server', () => {
    const config = load({
      servers: SERVERS,
      virtualServers: { workspace: { servers: ['github'] } },
      tokens: [{ sha256: 'a'.repeat(64), servers: ['workspace', 'github'] }],
    });
    assert.deepEqual(config.tokens[0]?.servers, ['workspace', 'github']);
  });

  it('refuses a member that is not a configured server', () => {
    assert.match(
      refusal({ servers: SERVERS, virtualServers: { workspace: { servers: ['github', 'jira'] } } }),
      /virtualServers\.workspace\.servers.*no server named "jira"/,
    );
  });

  it('refuses a virtual server named like a server, or one inside another', () => {
    assert.match(
      refusal({ servers: SERVERS, virtualServers: { github: { servers: ['linear'] } } }),
      /"github" is both a server and a virtual server/,
    );
    assert.match(
      refusal({
        servers: SERVERS,
        virtualServers: { a: { servers: ['github'] }, b: { servers: ['a'] } },
      }),
      /"a" is a virtual server/,
    );
  });

  it('refuses members whose prefixed tool names could collide', () => {
    const message = refusal({
      servers: { ...SERVERS, lin__ear: { url: 'https://x.example/mcp' } },
      virtualServers: { workspace: { servers: ['lin', 'lin__ear'] } },
    });
    assert.match(message, /tool names of "lin" and "lin__ear" could collide/);
    // Another separator settles it.
    const config = load({
      servers: { ...SERVERS, lin__ear: { url: 'https://x.example/mcp' } },
      virtualServers: { workspace: { servers: ['lin', 'lin__ear'], separator: '.' } },
    });
    assert.equal(config.virtualServers.workspace?.separator, '.');
  });

  it('takes prefix none (names as members give them, no prefix to collide) and refuses another mode', () => {
    const config = load({
      servers: { ...SERVERS, lin__ear: { url: 'https://x.example/mcp' } },
      virtualServers: { workspace: { servers: ['lin', 'lin__ear'], prefix: 'none' } },
    });
    assert.equal(config.virtualServers.workspace?.prefix, 'none');
    assert.equal(
      load({ servers: SERVERS, virtualServers: { w: { servers: ['github'] } } }).virtualServers.w?.prefix,
      'member',
    );
    assert.match(
      refusal({ servers: SERVERS, virtualServers: { w: { servers: ['github'], prefix: 'server' } } }),
      /prefix/,
    );
  });

  it('refuses a separator with characters tool names cannot hold, and an empty member list', () => {
    assert.match(
      refusal({ servers: SERVERS, virtualServers: { w: { servers: ['github'], separator: '/ ' } } }),
      /separator/,
    );
    assert.match(
      refusal({ servers: SERVERS, virtualServers: { w: { servers: [] } } }),
      /at least one member/,
    );
  });
});
