/**
 * Review 10 (minting, issue 17) MINT-2: a minted token stays within its admin's grants at mint
 * time only. A reload that narrows the admin token (an operator taking `get-sum` away from an
 * app's backend, or dropping a leaked admin token altogether) leaves every token it minted with
 * the old, wider grants until they expire (up to 24 h): the token is verified from its own claims
 * (identity/minted-tokens.ts `verify`), and nothing holds it to what its minter may do now
 * (the mint record keeps who minted it, identity/mint-records.ts, but nothing reads it then).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { keyFile, mintRaw } from './helpers/minted.ts';
import { postProxy } from './helpers/proxy.ts';
import { startVirtualProxy, type VirtualProxy } from './helpers/virtual-proxy.ts';

const ADMIN_B = 'review10-mint-2-admin-0123456789abc';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');
const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'mint-2', version: '1' } },
} as const;

describe('review10 MINT-2: a reload that narrows or drops the minting admin narrows its minted tokens', () => {
  let world: VirtualProxy;
  let everythingUrl = '';
  const config = (tokens: object[]) => ({ servers: { everything: { url: everythingUrl } }, tokens });

  before(async () => {
    world = await startVirtualProxy(
      (url) => {
        everythingUrl = url;
        return config([{ sha256: sha256(ADMIN_B), admin: true, tools: ['echo', 'get-sum'] }]);
      },
      { SIGNING_KEYS: keyFile() },
    );
  });
  after(async () => {
    await world?.stop();
  });

  /** What `token` gets for tools/list on the configured server: the names, or the refusal's status. */
  const toolsSeen = async (token: string): Promise<string[] | number> => {
    const caller = { url: world.proxy.url, token };
    const init = await postProxy(caller, { server: 'everything', ...INIT });
    if (init.status !== 200) return init.status;
    const list = await postProxy(
      caller,
      { server: 'everything', jsonrpc: '2.0', id: 2, method: 'tools/list' },
      { 'mcp-session-id': init.headers.get('mcp-session-id') ?? '' },
    );
    if (list.status !== 200) return list.status;
    return (list.body.result.tools as { name: string }[]).map((tool) => tool.name).sort();
  };
  const mintToken = async (subject: string) => {
    const reply = await mintRaw(world.proxy.url, { subject, ttlSeconds: 3_600 }, ADMIN_B);
    assert.equal(reply.status, 201, JSON.stringify(reply.body));
    return reply.body.token as string;
  };

  it('the admin narrowed to echo: its earlier token no longer calls get-sum', async () => {
    const token = await mintToken('mint-2-narrowed');
    assert.deepEqual(await toolsSeen(token), ['echo', 'get-sum']);

    world.reload(config([{ sha256: sha256(ADMIN_B), admin: true, tools: ['echo'] }]));
    // A token minted now gets echo only; the one minted before must not keep more.
    assert.deepEqual(await toolsSeen(await mintToken('mint-2-after')), ['echo']);
    const seen = await toolsSeen(token);
    assert.ok(
      typeof seen === 'number' || seen.every((tool) => tool === 'echo'),
      `the token minted before the reload still sees ${JSON.stringify(seen)}`,
    );
  });

  it('the admin dropped from the configuration: its earlier token is refused', async () => {
    world.reload(config([{ sha256: sha256(ADMIN_B), admin: true, tools: ['echo', 'get-sum'] }]));
    const token = await mintToken('mint-2-dropped');
    assert.deepEqual(await toolsSeen(token), ['echo', 'get-sum']);

    world.reload(config([]));
    // The admin token itself is refused now...
    assert.equal((await mintRaw(world.proxy.url, { subject: 'x' }, ADMIN_B)).status, 401);
    // ...and what it minted must not outlive it.
    assert.equal(await toolsSeen(token), 401, 'a token minted by a dropped admin still works');
  });
});
