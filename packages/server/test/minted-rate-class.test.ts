/**
 * Review 10 (minting, issue 17) MINT-6: a minted token carries its admin's rate class by name,
 * and a name the configuration no longer has falls back to the DEFAULT limits
 * (limits/rate-limiter.ts `consumeNow`: `this.#classes[rateClass]?.[name] ?? this.#limits[name]`).
 * A config token cannot name a missing class (the load refuses it), but a minted token can: an
 * operator who renames the admin's strict class (`tight` → `tighter`, the admin moved along)
 * frees every token that admin minted from any class at all, up to the default 1,200 requests a
 * minute, until they expire. An unknown class must not be looser than a known one.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { keyFile, mintRaw } from './helpers/minted.ts';
import { postProxy } from './helpers/proxy.ts';
import { startVirtualProxy, type VirtualProxy } from './helpers/virtual-proxy.ts';

const RATED_ADMIN = 'review10-mint-6-admin-0123456789abc';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');
const INIT = {
  jsonrpc: '2.0',
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'mint-6', version: '1' } },
} as const;

describe('review10 MINT-6: a minted token whose rate class a reload renamed is not freed of limits', () => {
  let world: VirtualProxy;
  let everythingUrl = '';
  const config = (className: string) => ({
    servers: { everything: { url: everythingUrl } },
    rateClasses: { [className]: { requestsPerWindow: 3, windowMs: 600_000 } },
    tokens: [{ sha256: sha256(RATED_ADMIN), admin: true, rateClass: className }],
  });

  before(async () => {
    world = await startVirtualProxy(
      (url) => {
        everythingUrl = url;
        return config('tight');
      },
      { SIGNING_KEYS: keyFile() },
    );
  });
  after(async () => {
    await world?.stop();
  });

  it('the class renamed (the admin moved to the new name): the token is still held to three requests', async () => {
    const minted = await mintRaw(world.proxy.url, { subject: 'mint-6', ttlSeconds: 3_600 }, RATED_ADMIN);
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const caller = { url: world.proxy.url, token: minted.body.token as string };

    world.reload(config('tighter'));
    const statuses: number[] = [];
    for (let id = 1; id <= 6; id++)
      statuses.push((await postProxy(caller, { server: 'everything', ...INIT, id })).status);
    assert.ok(
      statuses.filter((status) => status === 200).length <= 3,
      `six requests answered ${statuses.join(', ')}: the class the admin is held to allows three`,
    );
  });
});
