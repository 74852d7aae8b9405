/**
 * Review 11 (minting, issue 17) finding 3: a minted token's `minter` claim was 16 hex digits of
 * SHA-256("static:" + SHA-256(admin token)): a function of the admin token alone, in a JWT payload
 * any browser holding the token can read, so guesses at a weak ADMIN_TOKEN could be checked
 * offline against it. The claim must depend on the proxy's signing key too.
 */
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ADMIN, keyFile, mint } from './helpers/minted.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const sha256hex = (text: string) => createHash('sha256').update(text).digest('hex');

function claimOf(token: string): unknown {
  const payload = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString('utf8'));
  return (payload as { minter?: unknown }).minter;
}

describe('review11 (3): the minter claim is no offline check of the admin token', () => {
  it('names the minter by an HMAC under the signing key, and the token still works', async () => {
    const claims: unknown[] = [];
    for (const keys of [keyFile(), keyFile()]) {
      const proxy = await startProxy({ ADMIN_TOKEN: ADMIN, SIGNING_KEYS: keys });
      try {
        const { token } = await mint(proxy.url, 'alice');
        const claim = claimOf(token);
        assert.match(String(claim), /^[0-9a-f]{16}$/);
        assert.notEqual(claim, sha256hex(`static:${sha256hex(ADMIN)}`).slice(0, 16));
        claims.push(claim);
        // Accepted (refused only for naming no target, after authentication).
        const reply = await postProxy({ url: proxy.url, token }, { jsonrpc: '2.0', id: 1, method: 'ping' });
        assert.equal(reply.status, 400, JSON.stringify(reply.body));
        assert.equal(reply.body.error.data.code, 'invalid_envelope');
      } finally {
        await proxy.close();
      }
    }
    assert.notEqual(claims[0], claims[1], 'the same admin under two signing keys: two claims');
  });

  it('a token whose claim is in the form before this (the hash) is told it was minted by an earlier version', async () => {
    const keys = keyFile();
    const proxy = await startProxy({ ADMIN_TOKEN: ADMIN, SIGNING_KEYS: keys });
    try {
      const { token } = await mint(proxy.url, 'alice');
      // The same token as an earlier proxy minted it, signed with the same key: only its claim differs.
      const [header, payload] = token.split('.') as [string, string];
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      claims.minter = sha256hex(`static:${sha256hex(ADMIN)}`).slice(0, 16);
      const signed = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
      const signature = sign(null, Buffer.from(signed), createPrivateKey(readFileSync(keys)));
      const earlier = `${signed}.${signature.toString('base64url')}`;

      const reply = await postProxy(
        { url: proxy.url, token: earlier },
        { jsonrpc: '2.0', id: 1, method: 'ping' },
      );
      assert.equal(reply.status, 401, JSON.stringify(reply.body));
      assert.equal(reply.body.error.data.code, 'token_invalid');
      assert.match(reply.body.error.message, /earlier version of the proxy/);
    } finally {
      await proxy.close();
    }
  });
});
