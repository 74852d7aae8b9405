/**
 * Review 10 (minting, issues 17 and 20) MINT-4: whether a `servers` grant limits which members of
 * a virtual server it sees depends on which of its names are virtual servers NOW
 * (policy/grants.ts `restrictsMembers`), so a reload changes what a grant means although
 * policy/grant-within.ts says "a reload changes neither side's meaning". An admin token granted
 * `servers: [workspace, extra]`, both virtual servers, sees every member and may mint
 * `servers: [workspace]`. A reload that makes `extra` a configured server instead of a virtual one
 * (the admin's own grant untouched) makes the admin's grant name a server that is not virtual:
 * the admin now sees no member of `workspace`, yet the token it minted still sees them all. (The
 * same the other way: a token's only non-virtual name made a virtual server widens the token.)
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type ConnectedClient, connectClient, serverTarget } from './helpers/mcp-client.ts';
import { keyFile, mintRaw } from './helpers/minted.ts';
import { TEST_TOKEN } from './helpers/proxy.ts';
import { listedTools } from './helpers/virtual-clients.ts';
import { featureStdio, startVirtualProxy, type VirtualProxy } from './helpers/virtual-proxy.ts';

const ADMIN_W = 'review10-mint-4-admin-0123456789abc';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

function configOf(everythingUrl: string, extraVirtual: boolean): object {
  return {
    servers: {
      everything: { url: everythingUrl, transport: 'streamable-http' },
      local: featureStdio(),
      ...(extraVirtual ? {} : { extra: { url: everythingUrl, transport: 'streamable-http' } }),
    },
    virtualServers: {
      workspace: { servers: ['everything', 'local'] },
      ...(extraVirtual ? { extra: { servers: ['local'] } } : {}),
    },
    tokens: [
      { sha256: sha256(TEST_TOKEN) },
      { sha256: sha256(ADMIN_W), admin: true, servers: ['workspace', 'extra'] },
    ],
  };
}

describe('review10 MINT-4: a reload that changes which names are virtual does not widen a minted token past its admin', () => {
  let world: VirtualProxy;
  const clients: ConnectedClient[] = [];

  before(async () => {
    world = await startVirtualProxy((url) => configOf(url, true), { SIGNING_KEYS: keyFile() });
  });
  after(async () => {
    for (const client of clients) await client.close().catch(() => {});
    await world?.stop();
  });

  /** The tools `token` lists on `workspace` (none when it cannot connect). */
  const workspaceTools = async (token: string): Promise<string[]> => {
    const connected = await connectClient(world.proxy, serverTarget('workspace'), {
      token,
      roots: false,
    }).catch(() => undefined);
    if (connected === undefined) return [];
    clients.push(connected);
    return (await listedTools(connected.client)).sort();
  };

  it('the admin’s view narrows with the reload: so does the token it minted', async () => {
    const minted = await mintRaw(world.proxy.url, { subject: 'mint-4', servers: ['workspace'] }, ADMIN_W);
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const token = minted.body.token as string;
    const before = await workspaceTools(token);
    assert.ok(before.includes('local__echo') && before.includes('everything__echo'), before.join());

    world.reload(configOf(world.everything.url, false));
    const admins = await workspaceTools(ADMIN_W);
    const tokens = await workspaceTools(token);
    const beyond = tokens.filter((tool) => !admins.includes(tool));
    assert.deepEqual(beyond, [], `the minted token sees ${beyond.length} tools its admin no longer sees`);
  });
});
