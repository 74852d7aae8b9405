/**
 * Review finding on issue 17: a minted token's grants never exceed those of the admin token that
 * mints it, in every dimension (servers, URL patterns, tools), through `POST /auth/tokens`. An
 * admin limited by tools or by URL patterns (or both) mints tokens limited the same way: a field
 * left out takes the admin's limit, a wider one is refused with `400 invalid_token_request`
 * naming the dimension and what to name, a narrower one is minted. An unrestricted admin still
 * mints anything. `npm run token` mints with the proxy's own configuration and keys, unrestricted
 * (it has no minting credential to stay within), and takes `--urls` as the body takes `urls`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { ADMIN, keyFile, type MintReply, mintRaw } from './helpers/minted.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const CLI = fileURLToPath(new URL('../src/token-cli.ts', import.meta.url));
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');
/** An admin config token limited to two tools. */
const TOOLS_ADMIN = 'mint-within-tools-admin-0123456789';
/** An admin config token limited to raw URLs ending in `/mcp` on loopback. */
const URLS_ADMIN = 'mint-within-urls-admin-0123456789';
/** An admin config token limited to those URLs and one tool. */
const BOTH_ADMIN = 'mint-within-both-admin-0123456789';
/** An admin config token held to a rate class of three requests a window. */
const RATED_ADMIN = 'mint-within-rated-admin-0123456789';
/** An admin config token limited to the configured server (so to no raw URL). */
const SERVERS_ADMIN = 'mint-within-servers-admin-0123456789';
const LOOPBACK_MCP = 'http://127.0.0.1:*/mcp';
const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'within', version: '1' } },
} as const;

/** Asserts a refusal: 400 `invalid_token_request` whose message matches `message`. */
function assertRefused(reply: MintReply, message: RegExp): void {
  assert.equal(reply.status, 400, JSON.stringify(reply.body));
  assert.equal(reply.body.error.data.code, 'invalid_token_request');
  assert.match(reply.body.error.message, message);
}

/** The token of a successful mint. */
function tokenOf(reply: MintReply): string {
  assert.equal(reply.status, 201, JSON.stringify(reply.body));
  return reply.body.token as string;
}

describe('a minted token stays within its minter’s grants', () => {
  let everything: EverythingServer;
  let proxy: RunningProxy;
  let configPath = '';
  let keyPath = '';
  /** A loopback `/mcp` URL nothing listens on: refused by the grant, or unreachable. */
  let elsewhere = '';

  before(async () => {
    everything = await startEverything('streamableHttp');
    elsewhere = everything.url.replace(/:\d+\//, ':1/').replace(/\/mcp$/, '/other');
    keyPath = keyFile();
    configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-mint-within-')), 'proxy.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        servers: { everything: { url: everything.url } },
        rateClasses: { tight: { requestsPerWindow: 3 } },
        tokens: [
          { sha256: sha256(RATED_ADMIN), admin: true, rateClass: 'tight' },
          { sha256: sha256(TOOLS_ADMIN), admin: true, tools: ['echo', 'get-sum'] },
          { sha256: sha256(URLS_ADMIN), admin: true, urls: [LOOPBACK_MCP] },
          { sha256: sha256(BOTH_ADMIN), admin: true, urls: [LOOPBACK_MCP], tools: ['echo'] },
          { sha256: sha256(SERVERS_ADMIN), admin: true, servers: ['everything'] },
        ],
      }),
    );
    proxy = await startProxy({
      HOST: '127.0.0.1',
      ADMIN_TOKEN: ADMIN,
      SIGNING_KEYS: keyPath,
      MCP_PROXY_CONFIG: configPath,
    });
  });
  after(async () => {
    await proxy?.close();
    await everything?.stop();
  });

  const mintBy = (admin: string, request: Record<string, unknown>) =>
    mintRaw(proxy.url, { subject: 'within', ttlSeconds: 600, ...request }, admin);
  /** The tools `token` lists, on the configured server or at a raw URL. */
  const toolsSeen = async (token: string, target: Record<string, string> = { server: 'everything' }) => {
    const caller = { url: proxy.url, token };
    const init = await postProxy(caller, { ...target, ...INIT });
    assert.equal(init.status, 200, JSON.stringify(init.body));
    const list = await postProxy(
      caller,
      { ...target, jsonrpc: '2.0', id: 2, method: 'tools/list' },
      { 'mcp-session-id': init.headers.get('mcp-session-id') ?? '' },
    );
    return (list.body.result.tools as { name: string }[]).map((tool) => tool.name).sort();
  };
  /** Whether `token`'s grant lets it reach the raw `url` (403 `forbidden_server` when not). */
  const reaches = async (token: string, url: string) => {
    const reply = await postProxy(
      { url: proxy.url, token },
      { mcp_server_url: url, jsonrpc: '2.0', id: 1, method: 'ping' },
    );
    return !(reply.status === 403 && reply.body.error.data.code === 'forbidden_server');
  };

  it('an admin limited by tools: no tools takes its limit, a wider list is refused, a subset is minted', async () => {
    const inherited = tokenOf(await mintBy(TOOLS_ADMIN, {}));
    assert.deepEqual(await toolsSeen(inherited), ['echo', 'get-sum']);

    assertRefused(
      await mintBy(TOOLS_ADMIN, { tools: ['echo', 'get-env'] }),
      /tools: "get-env" is not one the admin token may use/,
    );
    const subset = tokenOf(await mintBy(TOOLS_ADMIN, { tools: ['echo'] }));
    assert.deepEqual(await toolsSeen(subset), ['echo']);
  });

  it('an admin limited by URL patterns: no urls takes its limit, a wider pattern is refused, a narrower one is minted', async () => {
    const inherited = tokenOf(await mintBy(URLS_ADMIN, {}));
    assert.equal(await reaches(inherited, everything.url), true);
    assert.equal(await reaches(inherited, elsewhere), false);

    for (const wider of [
      'http://127.0.0.1:*/**',
      'http://127.0.0.1:*/*',
      'http://**/mcp',
      'https://127.0.0.1:*/mcp',
    ]) {
      assertRefused(
        await mintBy(URLS_ADMIN, { urls: [LOOPBACK_MCP, wider] }),
        new RegExp(`urls: "${wider.replaceAll('*', '\\*')}" reaches URLs the admin token may not`),
      );
    }
    // Its own pattern, and the same with the scheme and host spelled in capitals, are within it.
    assert.equal((await mintBy(URLS_ADMIN, { urls: [LOOPBACK_MCP, 'HTTP://127.0.0.1:*/mcp'] })).status, 201);
    const narrower = tokenOf(await mintBy(URLS_ADMIN, { urls: [everything.url] }));
    assert.equal(await reaches(narrower, everything.url), true);
    assert.equal(await reaches(narrower, everything.url.replace(/\/mcp$/, '/x/mcp')), false);
    // The configured servers stay within (this admin is not limited by servers): no URL then.
    const serversOnly = tokenOf(await mintBy(URLS_ADMIN, { servers: ['everything'], urls: [] }));
    assert.ok((await toolsSeen(serversOnly)).length > 2);
    assert.equal(await reaches(serversOnly, everything.url), false);
  });

  it('an admin limited by servers reaches no raw URL, and cannot mint one that does', async () => {
    assertRefused(
      await mintBy(SERVERS_ADMIN, { urls: [everything.url] }),
      /urls: the admin token reaches no raw URL: leave out urls/,
    );
    const inherited = tokenOf(await mintBy(SERVERS_ADMIN, {}));
    assert.equal(await reaches(inherited, everything.url), false);
  });

  it('an admin limited by URLs and tools: each dimension is judged, and left out takes the admin’s', async () => {
    assertRefused(
      await mintBy(BOTH_ADMIN, { tools: ['echo'], urls: ['http://**/**'] }),
      /urls: "http:\/\/\*\*\/\*\*" reaches URLs the admin token may not/,
    );
    assertRefused(
      await mintBy(BOTH_ADMIN, { tools: ['get-sum'], urls: [everything.url] }),
      /tools: "get-sum" is not one the admin token may use/,
    );
    const inherited = tokenOf(await mintBy(BOTH_ADMIN, { urls: [everything.url] }));
    assert.deepEqual(await toolsSeen(inherited, { mcp_server_url: everything.url }), ['echo']);
    assert.equal(await reaches(inherited, elsewhere), false);
    const unlimited = tokenOf(await mintBy(BOTH_ADMIN, {}));
    assert.deepEqual(await toolsSeen(unlimited, { mcp_server_url: everything.url }), ['echo']);
  });

  it('an admin held to a rate class mints tokens held to it', async () => {
    const reply = await mintRaw(proxy.url, { subject: 'within-rated', ttlSeconds: 600 }, RATED_ADMIN);
    const caller = { url: proxy.url, token: tokenOf(reply) };
    const statuses: number[] = [];
    for (let id = 1; id <= 4; id++)
      statuses.push((await postProxy(caller, { server: 'everything', ...INIT, id })).status);
    assert.deepEqual(statuses, [200, 200, 200, 429]);
  });

  it('an unrestricted admin mints anything, URL patterns included', async () => {
    const wide = tokenOf(await mintBy(ADMIN, { urls: ['http://**/**'], tools: ['get-env'] }));
    assert.equal(await reaches(wide, everything.url), true);
    assert.deepEqual(await toolsSeen(wide, { mcp_server_url: everything.url }), ['get-env']);
  });

  it('npm run token takes --urls with the proxy’s own configuration', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [CLI, '--subject', 'cli-within', '--urls', everything.url],
      {
        env: {
          PATH: process.env.PATH ?? '',
          STORE: 'memory',
          SIGNING_KEYS: keyPath,
          MCP_PROXY_CONFIG: configPath,
          ALLOW_PRIVATE_NETWORKS: 'true',
          DOTENV_PATH: '/nonexistent/.env',
          ...compileCacheEnv(),
        },
      },
    );
    const { token } = JSON.parse(stdout) as { token: string };
    assert.equal(await reaches(token, everything.url), true);
    assert.equal(await reaches(token, elsewhere), false);
  });
});
