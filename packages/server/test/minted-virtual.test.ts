/**
 * Minted tokens limited to a virtual server (issues 17 and 20): `POST /auth/tokens` and
 * `npm run token` take a virtual server's name in `servers`, and the token gets the per-member
 * and per-tool view a config token's grant gets (virtual/member-grants.ts), through
 * `/servers/{virtual}/mcp` (the SDK client) and `/ws?server=`. A name that is neither a server nor
 * a virtual server is refused as before; an admin token that sees only some members cannot mint
 * one that sees them all; a reload that removes the virtual server leaves the token reaching
 * nothing there (and no member directly), as for a removed server.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { type ConnectedClient, connectClient, postRaw, serverTarget } from './helpers/mcp-client.ts';
import { ADMIN, keyFile, mint, mintRaw } from './helpers/minted.ts';
import type { WsPeer } from './helpers/modern-client.ts';
import { TEST_TOKEN } from './helpers/proxy.ts';
import { listedTools, openVirtualSocket, socketAsker } from './helpers/virtual-clients.ts';
import { featureStdio, startVirtualProxy, textOf, type VirtualProxy } from './helpers/virtual-proxy.ts';

const CLI = fileURLToPath(new URL('../src/token-cli.ts', import.meta.url));
const APP = 'https://app.example';
/** An admin config token that sees `everything` only in `workspace` (and directly). */
const LIMITED_ADMIN = 'minted-virtual-limited-admin-0123456789';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

function configOf(everythingUrl: string, withWorkspace = true): object {
  return {
    servers: { everything: { url: everythingUrl, transport: 'streamable-http' }, local: featureStdio() },
    ...(withWorkspace ? { virtualServers: { workspace: { servers: ['everything', 'local'] } } } : {}),
    tokens: [
      { sha256: sha256(TEST_TOKEN) },
      {
        sha256: sha256(LIMITED_ADMIN),
        admin: true,
        servers: withWorkspace ? ['workspace', 'everything'] : ['everything'],
      },
    ],
  };
}

describe('minted tokens limited to a virtual server', () => {
  let world: VirtualProxy;
  let keyPath = '';
  let cliConfig = '';
  const peers: WsPeer[] = [];
  const clients: ConnectedClient[] = [];
  const { ask, listTools: socketTools } = socketAsker();

  /** A 2025-era client's socket to `workspace` with `token`, initialized. */
  const openSocket = async (token: string) => {
    const peer = await openVirtualSocket(world.proxy.url, token, 'workspace', APP);
    peers.push(peer);
    return peer;
  };
  const echo = (peer: WsPeer, name: string) =>
    ask(peer, 'tools/call', { name, arguments: { message: 'hi' } });
  const reload = (withWorkspace: boolean) => world.reload(configOf(world.everything.url, withWorkspace));
  /** A ping through `/servers/{server}/mcp` with `token`. */
  const ping = (server: string, token: string) =>
    postRaw(world.proxy, serverTarget(server), { jsonrpc: '2.0', id: 1, method: 'ping' }, { token });

  before(async () => {
    keyPath = keyFile();
    world = await startVirtualProxy((url) => configOf(url), {
      ADMIN_TOKEN: ADMIN,
      SIGNING_KEYS: keyPath,
      CORS_ORIGINS: APP,
    });
    // `npm run token` reads the same configuration and key as the proxy.
    cliConfig = join(mkdtempSync(join(tmpdir(), 'mcpp-minted-virtual-')), 'proxy.json');
    writeFileSync(cliConfig, JSON.stringify(configOf(world.everything.url)));
  });
  after(async () => {
    for (const peer of peers) await peer.close().catch(() => {});
    for (const client of clients) await client.close().catch(() => {});
    await world?.stop();
    if (cliConfig !== '') rmSync(join(cliConfig, '..'), { recursive: true, force: true });
  });

  it('mints a token for a virtual server: every member through it, no member directly', async () => {
    const { token } = await mint(world.proxy.url, 'alice', { servers: ['workspace'] });
    const connected = await connectClient(world.proxy, serverTarget('workspace'), { token, roots: false });
    clients.push(connected);
    const listed = await listedTools(connected.client);
    assert.ok(listed.includes('everything__echo') && listed.includes('local__echo'), listed.join());
    const called = await connected.client.callTool({ name: 'local__echo', arguments: { message: 'hi' } });
    assert.match(textOf(called), /hi/);
    for (const member of ['everything', 'local']) {
      const direct = await ping(member, token);
      assert.equal(direct.status, 404, `${member} directly`);
      assert.equal(direct.body.error.data.code, 'unknown_server');
    }
  });

  it('narrows a minted token to the members and tools it names, on /ws?server=', async () => {
    const members = await mint(world.proxy.url, 'bob', { servers: ['workspace', 'everything'] });
    const peer = await openSocket(members.token);
    const seen = await socketTools(peer);
    assert.ok(seen.includes('everything__echo'), seen.join());
    assert.ok(!seen.some((name) => name.startsWith('local__')), seen.join());
    const hidden = await echo(peer, 'local__echo');
    assert.match(hidden.error?.message ?? '', /Unknown tool: local__echo/, JSON.stringify(hidden));
    assert.match(JSON.stringify((await echo(peer, 'everything__echo')).result), /hi/);

    const tools = await mint(world.proxy.url, 'carol', { servers: ['workspace'], tools: ['local__echo'] });
    const narrow = await openSocket(tools.token);
    assert.deepEqual(await socketTools(narrow), ['local__echo']);
    const other = await echo(narrow, 'everything__echo');
    assert.match(other.error?.message ?? '', /Unknown tool: everything__echo/, JSON.stringify(other));
    assert.match(JSON.stringify((await echo(narrow, 'local__echo')).result), /hi/);
  });

  it('refuses a name that is neither a server nor a virtual server, and an admin’s widening', async () => {
    const unknown = await mintRaw(world.proxy.url, { subject: 'dave', servers: ['workspace', 'nope'] });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error.data.code, 'invalid_token_request');
    assert.match(unknown.body.error.message, /no server named "nope"/);
    // The limited admin sees `everything` only in `workspace`: `[workspace]` alone would see `local`.
    const wider = await mintRaw(world.proxy.url, { subject: 'dave', servers: ['workspace'] }, LIMITED_ADMIN);
    assert.equal(wider.status, 400, JSON.stringify(wider.body));
    assert.equal(wider.body.error.data.code, 'invalid_token_request');
    assert.match(wider.body.error.message, /name those members too/);
    const outside = await mintRaw(
      world.proxy.url,
      { subject: 'dave', servers: ['workspace', 'local'] },
      LIMITED_ADMIN,
    );
    assert.equal(outside.status, 400);
    assert.match(outside.body.error.message, /"local" is not one the admin token may reach/);
    const same = await mintRaw(
      world.proxy.url,
      { subject: 'dave', servers: ['workspace', 'everything'] },
      LIMITED_ADMIN,
    );
    assert.equal(same.status, 201, JSON.stringify(same.body));
    const peer = await openSocket(same.body.token);
    const seen = await socketTools(peer);
    assert.ok(seen.length > 0 && seen.every((name) => name.startsWith('everything__')), seen.join());
  });

  it('npm run token mints for a virtual server with the proxy’s key, and refuses an unknown name', async () => {
    const run = (args: string[]) =>
      promisify(execFile)(process.execPath, [CLI, ...args], {
        env: {
          PATH: process.env.PATH ?? '',
          STORE: 'memory',
          SIGNING_KEYS: keyPath,
          MCP_PROXY_CONFIG: cliConfig,
          ALLOW_PRIVATE_NETWORKS: 'true',
          DOTENV_PATH: '/nonexistent/.env',
          ...compileCacheEnv(),
        },
      });
    const { stdout } = await run([
      '--subject',
      'erin',
      '--servers',
      'workspace',
      '--tools',
      'everything__echo',
    ]);
    const { token } = JSON.parse(stdout) as { token: string };
    const peer = await openSocket(token);
    assert.deepEqual(await socketTools(peer), ['everything__echo']);
    const refused = await run(['--subject', 'erin', '--servers', 'workspace,nope']).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(refused.code, 64);
    assert.match(refused.stderr, /no server named "nope"/);
  });

  it('a reload that removes the virtual server leaves its tokens reaching nothing there', async () => {
    reload(true);
    const { token } = await mint(world.proxy.url, 'frank', { servers: ['workspace'] });
    const peer = await openSocket(token);
    assert.ok((await socketTools(peer)).includes('local__echo'));
    reload(false);
    assert.equal((await peer.closed).code, 4401, 'the open socket closes');
    const gone = await ping('workspace', token);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.data.code, 'unknown_server');
    // Its name no longer names a virtual server: the grant is not widened to the former members.
    for (const member of ['everything', 'local'])
      assert.equal((await ping(member, token)).status, 404, member);
    const again = await mintRaw(world.proxy.url, { subject: 'frank', servers: ['workspace'] });
    assert.equal(again.status, 400);
    assert.match(again.body.error.message, /no server named "workspace"/);
    // Configured again, as for a server a reload adds back, the token reaches it.
    reload(true);
    assert.ok((await socketTools(await openSocket(token))).includes('local__echo'));
  });
});
