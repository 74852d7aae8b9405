/**
 * Per-principal rate limits count per principal, not per its short loggable `id` (issue 17
 * review): the `id` is 48 bits of a hash, so two principals could share it and each other's
 * limits. Counters are keyed on the full principal key, hashed when it is long.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { MemoryRateStore, type RateStore, type WindowHit } from '../src/limits/rate-store.ts';
import { ADMIN, keyFile, mint } from './helpers/minted.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const sha256hex = (text: string) => createHash('sha256').update(text).digest('hex');

/** A rate store that records the keys it is asked to count. */
class RecordingStore implements RateStore {
  readonly #inner = new MemoryRateStore();
  readonly keys: string[] = [];

  hit(key: string, windowMs: number): Promise<WindowHit> {
    this.keys.push(key);
    return this.#inner.hit(key, windowMs);
  }

  peek(key: string): Promise<WindowHit | undefined> {
    return this.#inner.peek(key);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

describe('per-principal rate limits', () => {
  it('count on the full principal key (hashed when long), never on the 12-digit id', async () => {
    const store = new RecordingStore();
    const proxy = await startProxy({ ADMIN_TOKEN: ADMIN, SIGNING_KEYS: keyFile() }, { rateStore: store });
    try {
      const long = 'x'.repeat(256);
      for (const subject of ['alice', long]) {
        const { token } = await mint(proxy.url, subject);
        store.keys.length = 0;
        const reply = await postProxy({ url: proxy.url, token }, { jsonrpc: '2.0', id: 1, method: 'ping' });
        assert.equal(reply.status, 400, 'refused after authentication (no target), counted all the same');
        const perToken = store.keys.filter((key) => key.startsWith('requestsPerToken:'));
        assert.equal(perToken.length, 1);
        // The principal is scoped by its minter: 16 hex digits of the admin's principal key's hash.
        const minter = sha256hex(`static:${sha256hex(ADMIN)}`).slice(0, 16);
        const shortId = sha256hex(`minted:${minter}:${subject}`).slice(0, 12);
        assert.notEqual(perToken[0], `requestsPerToken:${shortId}`);
        if (subject === 'alice') assert.equal(perToken[0], `requestsPerToken:minted:${minter}:alice`);
        else assert.ok((perToken[0] as string).length < 100, 'a long key is hashed');
      }
    } finally {
      await proxy.close();
    }
  });
});
