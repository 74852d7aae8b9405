/**
 * Minted user tokens (issue 17) through the public interfaces: POST /auth/tokens with an admin
 * token, the token on every surface (POST /proxy, /mcp, /servers/{name}/mcp, /ws) in every place
 * a proxy token goes (X-Proxy-Token, Authorization: Bearer, the WebSocket subprotocol), and the
 * refusals with their stable codes: expired, revoked, tampered, unknown kid, alg none, HS256 keyed
 * with the public key, another origin.
 */
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/config.ts';
import { minterClaim } from '../src/identity/minted-tokens.ts';
import { keyId, signingKey } from '../src/identity/signing-keys.ts';
import { type MisbehavingUpstream, startMisbehaving } from './fixtures/misbehaving-upstream.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { ADMIN, keyFile, mint, mintRaw, revoke, tampered } from './helpers/minted.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const PING = { jsonrpc: '2.0', id: 1, method: 'ping' } as const;
const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'minted', version: '1' } },
} as const;

/** The close of a socket, or a failure if it stays open `ms` (a regression fails fast, not at the file timeout). */
function closeOf(closed: Promise<{ code: number; reason: string }>, ms = 5_000) {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    closed,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the socket stayed open ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** POST /proxy to `url` with `token` in X-Proxy-Token (and `headers`). */
function pingWith(proxy: RunningProxy, token: string, url: string, headers: Record<string, string> = {}) {
  return postProxy({ url: proxy.url, token }, { ...PING, mcp_server_url: url }, headers);
}

/** Opens /ws with `token` in the subprotocol; resolves to the first frame after `initialize`. */
async function wsWith(proxy: RunningProxy, token: string, query: Record<string, string>, origin?: string) {
  const ws = new WebSocket(
    `${proxy.url.replace('http', 'ws')}/ws?${new URLSearchParams(query)}`,
    ['mcp', `proxy-token.${token}`],
    origin === undefined ? {} : { origin },
  );
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const refused = new Promise<number>((resolve) =>
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)),
  );
  const opened = new Promise<void>((resolve) => ws.once('open', () => resolve()));
  ws.on('error', () => {});
  const outcome = await Promise.race([opened.then(() => 'open' as const), refused]);
  if (outcome !== 'open') return { status: outcome, ws, closed, first: undefined };
  const first = new Promise<unknown>((resolve) =>
    ws.once('message', (data) => resolve(JSON.parse(String(data)))),
  );
  ws.send(JSON.stringify(INIT));
  return { status: 101, ws, closed, first: await first };
}

describe('minted tokens', () => {
  let upstream: MisbehavingUpstream;
  let everything: EverythingServer;
  let keyPath = '';
  let configPath = '';
  let proxy: RunningProxy;
  let clock: ManualClock;
  before(async () => {
    [upstream, everything] = await Promise.all([startMisbehaving(), startEverything('sse')]);
    keyPath = keyFile();
    configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-minted-')), 'proxy.yaml');
    writeFileSync(
      configPath,
      [
        'servers:',
        '  echo:',
        `    url: ${upstream.origin}/echo-auth`,
        '  other:',
        `    url: ${upstream.origin}/echo-auth`,
        '',
      ].join('\n'),
    );
  });
  after(async () => {
    await Promise.all([upstream.stop(), everything.stop()]);
  });
  const start = async (env: Record<string, string> = {}) => {
    clock = new ManualClock();
    proxy = await startProxy(
      {
        ADMIN_TOKEN: ADMIN,
        SIGNING_KEYS: keyPath,
        MCP_PROXY_CONFIG: configPath,
        WS_ALLOW_MISSING_ORIGIN: 'true',
        CORS_ORIGINS: 'https://app.example.test',
        ...env,
      },
      { clock },
    );
    return proxy;
  };

  it('mints only for an admin token, caps the TTL, and validates the request', async () => {
    await start();
    try {
      const minted = await mintRaw(proxy.url, { subject: 'alice', ttlSeconds: 999_999, servers: ['echo'] });
      assert.equal(minted.status, 201);
      assert.deepEqual(Object.keys(minted.body).sort(), ['expiresAt', 'id', 'token']);
      const header = decodeProtectedHeader(minted.body.token);
      assert.equal(header.alg, 'EdDSA');
      assert.equal(header.kid, keyId(createPublicKey(createPrivateKey(readFileSync(keyPath)))));
      const claims = decodeJwt(minted.body.token);
      assert.equal(claims.sub, 'alice');
      assert.equal(claims.jti, minted.body.id);
      assert.equal((claims.exp as number) - (claims.iat as number), 86_400, 'TTL capped at 24 h');
      assert.equal(Date.parse(minted.body.expiresAt), (claims.exp as number) * 1000);

      const plain = await mintRaw(proxy.url, { subject: 'alice' }, proxy.token);
      assert.equal(plain.status, 403);
      assert.equal(plain.body.error.data.code, 'admin_required');
      const byMinted = await mintRaw(proxy.url, { subject: 'mallory' }, minted.body.token);
      assert.equal(byMinted.status, 403, 'a minted token never mints');
      const noToken = await mintRaw(proxy.url, { subject: 'alice' }, '');
      assert.equal(noToken.status, 401);
      for (const bad of [
        {},
        { subject: '' },
        { subject: 'a\nb' },
        { subject: 'a', servers: ['nope'] },
        { subject: 'a', origin: 'https://x.test/path' },
        { subject: 'a', ttlSeconds: 0 },
        { subject: 'a', extra: 1 },
      ]) {
        const reply = await mintRaw(proxy.url, bad);
        assert.equal(reply.status, 400, JSON.stringify(bad));
        assert.equal(reply.body.error.data.code, 'invalid_token_request');
      }
      assert.ok(!proxy.logs.join('\n').includes(minted.body.token), 'no token in the log');
    } finally {
      await proxy.close();
    }
  });

  it('is accepted on every surface, in every place a proxy token goes, and never sent upstream', async () => {
    await start();
    try {
      const { token } = await mint(proxy.url, 'alice');
      // POST /proxy, X-Proxy-Token.
      const viaProxy = await pingWith(proxy, token, `${upstream.origin}/echo-auth`);
      assert.equal(viaProxy.status, 200, JSON.stringify(viaProxy.body));
      assert.deepEqual(viaProxy.body.result, { authorization: null });
      // POST /proxy, Authorization: Bearer.
      const viaBearer = await postProxy(
        { url: proxy.url, token: '' },
        { ...PING, server: 'echo' },
        {
          'x-proxy-token': '',
          authorization: `Bearer ${token}`,
        },
      );
      assert.equal(viaBearer.status, 200, JSON.stringify(viaBearer.body));
      // /mcp and /servers/{name}/mcp with Authorization: Bearer: the credential is the proxy's,
      // not the upstream's (MCP forbids passing it through).
      for (const [path, extra] of [
        ['/mcp', { 'x-mcp-server-url': `${upstream.origin}/echo-auth` }],
        ['/servers/echo/mcp', {}],
      ] as const) {
        const response = await fetch(`${proxy.url}${path}`, {
          method: 'POST',
          headers: {
            accept: 'application/json, text/event-stream',
            'content-type': 'application/json',
            authorization: `Bearer ${token}`,
            ...extra,
          },
          body: JSON.stringify(PING),
        });
        const body = (await response.json()) as { result?: unknown };
        assert.equal(response.status, 200, `${path}: ${JSON.stringify(body)}`);
        assert.deepEqual(body.result, { authorization: null }, `${path}: the token went upstream`);
      }
      // /mcp with X-Proxy-Token keeps Authorization as the caller's upstream token.
      const upstreamToken = await fetch(`${proxy.url}/mcp`, {
        method: 'POST',
        headers: {
          accept: 'application/json, text/event-stream',
          'content-type': 'application/json',
          'x-proxy-token': token,
          'x-mcp-server-url': `${upstream.origin}/echo-auth`,
          authorization: 'Bearer upstream-credential',
        },
        body: JSON.stringify(PING),
      });
      assert.deepEqual(((await upstreamToken.json()) as { result?: unknown }).result, {
        authorization: 'Bearer upstream-credential',
      });
      // The proxy credential given again as the upstream token (a client whose HTTP layer adds
      // it everywhere) is not passed through either: Authorization beside X-Proxy-Token,
      // X-MCP-Token, and the envelope's mcp_token.
      for (const extra of [{ authorization: `Bearer ${token}` }, { 'x-mcp-token': token }]) {
        const echoed = await fetch(`${proxy.url}/servers/echo/mcp`, {
          method: 'POST',
          headers: {
            accept: 'application/json, text/event-stream',
            'content-type': 'application/json',
            'x-proxy-token': token,
            ...extra,
          },
          body: JSON.stringify(PING),
        });
        assert.deepEqual(
          ((await echoed.json()) as { result?: unknown }).result,
          { authorization: null },
          `${Object.keys(extra)[0]}: the proxy credential went upstream`,
        );
      }
      const viaEnvelope = await postProxy(
        { url: proxy.url, token },
        { ...PING, server: 'echo', mcp_token: token },
      );
      assert.deepEqual(
        viaEnvelope.body.result,
        { authorization: null },
        'mcp_token: the proxy credential went upstream',
      );
      const viaWs = await wsWith(proxy, token, { server: 'echo', mcp_token: token });
      assert.deepEqual(
        (viaWs.first as { result?: unknown }).result,
        { authorization: null },
        '/ws mcp_token: the proxy credential went upstream',
      );
      viaWs.ws.close();
      // /ws, the subprotocol.
      const socket = await wsWith(proxy, token, { mcp_server_url: everything.url });
      assert.equal(socket.status, 101);
      assert.ok((socket.first as { result?: unknown }).result, JSON.stringify(socket.first));
      socket.ws.close();
    } finally {
      await proxy.close();
    }
  });

  it('keeps a token to its grants: other servers look unknown, raw URLs are refused', async () => {
    await start();
    try {
      const { token } = await mint(proxy.url, 'alice', { servers: ['echo'] });
      assert.equal((await postProxy({ url: proxy.url, token }, { ...PING, server: 'echo' })).status, 200);
      const other = await postProxy({ url: proxy.url, token }, { ...PING, server: 'other' });
      assert.equal(other.status, 404);
      const raw = await pingWith(proxy, token, `${upstream.origin}/echo-auth`);
      assert.equal(raw.status, 403);
      assert.equal(raw.body.error.data.code, 'forbidden_server');
    } finally {
      await proxy.close();
    }
  });

  it('refuses expired, revoked, tampered, unknown-kid, alg none and HS256-confused tokens with stable codes', async () => {
    await start();
    try {
      const url = `${upstream.origin}/echo-auth`;
      const codeOf = async (token: string) => {
        const reply = await pingWith(proxy, token, url);
        return `${reply.status} ${reply.body?.error?.data?.code}`;
      };
      const shortLived = await mint(proxy.url, 'alice', { ttlSeconds: 60 });
      assert.equal(await codeOf(shortLived.token), '200 undefined', 'valid (and now cached)');
      clock.advance(61_000);
      assert.equal(await codeOf(shortLived.token), '401 token_expired');

      const revoked = await mint(proxy.url, 'alice');
      assert.equal(await codeOf(revoked.token), '200 undefined');
      assert.equal(await revoke(proxy.url, revoked.id), 204);
      assert.equal(await codeOf(revoked.token), '401 token_revoked');
      assert.equal(await revoke(proxy.url, revoked.id, proxy.token), 403, 'only an admin revokes');
      // Something that cannot be a minted token's id (a principal id, the token's subject, a
      // typo) is a clear 404, and revokes nothing.
      for (const notAnId of ['alice', 'abcdef012345', `${revoked.id}x`, 'a.b.c']) {
        const response = await fetch(`${proxy.url}/auth/tokens/${notAnId}`, {
          method: 'DELETE',
          headers: { 'x-proxy-token': ADMIN },
        });
        // biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary JSON bodies.
        const body = (await response.json()) as any;
        assert.equal(response.status, 404, notAnId);
        assert.equal(body.error.data.code, 'token_not_found', notAnId);
      }

      const good = await mint(proxy.url, 'alice');
      assert.equal(await codeOf(tampered(good.token)), '401 token_invalid');

      const claims = { iss: 'mcp-proxy', aud: 'mcp-proxy', sub: 'alice', jti: 'AAAAAAAAAAAAAAAAAAAAAA' };
      const now = Math.floor(clock.now() / 1000);
      // Signed by a key the proxy does not list, under its own kid and under ours.
      const stranger = createPrivateKey(readFileSync(keyFile()));
      const ourKid = decodeProtectedHeader(good.token).kid as string;
      for (const kid of [keyId(createPublicKey(stranger)), ourKid]) {
        const forged = await new SignJWT(claims)
          .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'mcp-proxy+jwt' })
          .setIssuedAt(now)
          .setExpirationTime(now + 600)
          .sign(stranger);
        assert.equal(await codeOf(forged), '401 token_invalid', `kid ${kid === ourKid ? 'ours' : 'unknown'}`);
      }
      // alg none.
      const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const unsigned = `${b64({ alg: 'none', kid: ourKid, typ: 'mcp-proxy+jwt' })}.${b64({ ...claims, iat: now, exp: now + 600 })}.`;
      assert.equal(await codeOf(unsigned), '401 token_invalid');
      // HS256 keyed with the public key (PEM and raw), the classic algorithm confusion.
      const publicKey = createPublicKey(createPrivateKey(readFileSync(keyPath)));
      const secrets = [
        Buffer.from(publicKey.export({ type: 'spki', format: 'pem' }) as string),
        Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url'),
      ];
      for (const secret of secrets) {
        const confused = await new SignJWT(claims)
          .setProtectedHeader({ alg: 'HS256', kid: ourKid, typ: 'mcp-proxy+jwt' })
          .setIssuedAt(now)
          .setExpirationTime(now + 600)
          .sign(new Uint8Array(secret));
        assert.equal(await codeOf(confused), '401 token_invalid');
      }
      // Each refusal is also a refusal on /ws (the handshake) and on /mcp.
      const socket = await wsWith(proxy, tampered(good.token), { mcp_server_url: everything.url });
      assert.equal(socket.status, 401);
      const viaMcp = await fetch(`${proxy.url}/servers/echo/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          authorization: `Bearer ${revoked.token}`,
        },
        body: JSON.stringify(PING),
      });
      assert.equal(viaMcp.status, 401);
      assert.equal(
        ((await viaMcp.json()) as { error: { data: { code: string } } }).error.data.code,
        'token_revoked',
      );
      assert.ok(
        !proxy.logs.join('\n').includes(good.token.split('.')[2] as string),
        'no signature in the log',
      );
    } finally {
      await proxy.close();
    }
  });

  it('refuses a token from its exp on, every time, cached or not (issue 17 review)', async () => {
    await start({ RATE_LIMIT_AUTH_FAILURES_PER_IP: '0' });
    try {
      const url = `${upstream.origin}/echo-auth`;
      const codesOf = async (token: string) => {
        const codes: string[] = [];
        for (let i = 0; i < 4; i++) {
          const reply = await pingWith(proxy, token, url);
          codes.push(`${reply.status} ${reply.body?.error?.data?.code}`);
        }
        return codes;
      };
      const cached = await mint(proxy.url, 'alice', { ttlSeconds: 60 });
      assert.equal((await pingWith(proxy, cached.token, url)).status, 200, 'verified and cached');
      const fresh = await mint(proxy.url, 'bob', { ttlSeconds: 60 });
      const expired = Array(4).fill('401 token_expired');
      for (const pastExp of [1_000, 3_000, 6_000]) {
        clock.advance(Date.parse(cached.expiresAt) + pastExp - clock.now());
        assert.deepEqual(await codesOf(cached.token), expired, `${pastExp} ms past exp, cached`);
        assert.deepEqual(await codesOf(fresh.token), expired, `${pastExp} ms past exp, never seen`);
      }
    } finally {
      await proxy.close();
    }
  });

  it('refuses what minting never produces, even signed by its key: non-string sub or jti, a jti of another shape, a lifetime past 24 h', async () => {
    await start({ RATE_LIMIT_AUTH_FAILURES_PER_IP: '0' });
    try {
      const url = `${upstream.origin}/echo-auth`;
      const codeOf = async (token: string) => {
        const reply = await pingWith(proxy, token, url);
        return `${reply.status} ${reply.body?.error?.data?.code}`;
      };
      const key = createPrivateKey(readFileSync(keyPath));
      const kid = keyId(createPublicKey(key));
      const now = Math.floor(clock.now() / 1000);
      const sign = (claims: Record<string, unknown>, iat = now, exp = now + 600) =>
        new SignJWT({
          iss: 'mcp-proxy',
          aud: 'mcp-proxy',
          sub: 'alice',
          jti: 'AAAAAAAAAAAAAAAAAAAAAA',
          // `npm run token`'s minter: its principal key `cli`, HMAC'd under the signing key.
          minter: minterClaim('cli', signingKey(key).minterSecret),
          ...claims,
        })
          .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'mcp-proxy+jwt' })
          .setIssuedAt(iat)
          .setExpirationTime(exp)
          .sign(key);
      assert.equal(await codeOf(await sign({})), '200 undefined', 'the shape minting makes');
      assert.equal(
        await codeOf(await sign({ sub: ['alice'], jti: 'BBBBBBBBBBBBBBBBBBBBBB' })),
        '401 token_invalid',
      );
      assert.equal(await codeOf(await sign({ jti: { a: 1 } })), '401 token_invalid');
      assert.equal(await codeOf(await sign({ jti: 'not-a-minted-id' })), '401 token_invalid');
      // No minter (minted before tokens were scoped by it), or one of another shape (review10 MINT-5).
      assert.equal(
        await codeOf(await sign({ minter: undefined, jti: 'EEEEEEEEEEEEEEEEEEEEEE' })),
        '401 token_invalid',
      );
      assert.equal(
        await codeOf(await sign({ minter: 'cli', jti: 'FFFFFFFFFFFFFFFFFFFFFF' })),
        '401 token_invalid',
      );
      // Issued just under 24 h ago, expiring in ten years: fresh verification must not take it,
      // nor may a cache keep it past iat + 24 h.
      const longLived = await sign(
        { jti: 'CCCCCCCCCCCCCCCCCCCCCC' },
        now - 86_400 + 60,
        now + 10 * 365 * 86_400,
      );
      assert.equal(await codeOf(longLived), '401 token_invalid');
      const tenYears = await sign({ jti: 'DDDDDDDDDDDDDDDDDDDDDD' }, now, now + 10 * 365 * 86_400);
      assert.equal(await codeOf(tenYears), '401 token_invalid');
    } finally {
      await proxy.close();
    }
  });

  it('refuses subjects with control, format or separator characters or surrounding spaces, and normalises them (NFC)', async () => {
    await start();
    try {
      for (const subject of [
        '\u202Eevil',
        'a\u2028b',
        'a\u2029b',
        'a\u200Bb',
        'a\uFEFFb',
        ' alice',
        'alice ',
        'a\tb',
        'carol\uD800',
      ]) {
        const reply = await mintRaw(proxy.url, { subject });
        assert.equal(reply.status, 400, JSON.stringify(subject));
        assert.equal(reply.body.error.data.code, 'invalid_token_request');
      }
      const decomposed = await mint(proxy.url, 'Jose\u0301');
      assert.equal(
        decodeJwt(decomposed.token).sub,
        'Jos\u00e9',
        'one subject, one principal, however it was spelled',
      );
      assert.equal((await mint(proxy.url, 'alice smith')).id.length, 22, 'inner spaces are fine');
    } finally {
      await proxy.close();
    }
  });

  it('refuses to mint a token too large for a header (~8 KB), naming the cause', async () => {
    await start();
    try {
      const tools = Array.from({ length: 200 }, (_, i) => `tool_${i}_${'x'.repeat(60)}`);
      const reply = await mintRaw(proxy.url, { subject: 'alice', tools });
      assert.equal(reply.status, 400);
      assert.equal(reply.body.error.data.code, 'invalid_token_request');
      assert.match(reply.body.error.message, /too large.*tools/);
      assert.equal((await mintRaw(proxy.url, { subject: 'alice', tools: tools.slice(0, 20) })).status, 201);
    } finally {
      await proxy.close();
    }
  });

  it('refuses a token bound to an origin from any other origin', async () => {
    await start();
    try {
      const { token } = await mint(proxy.url, 'alice', { origin: 'https://app.example.test' });
      const url = `${upstream.origin}/echo-auth`;
      assert.equal((await pingWith(proxy, token, url, { origin: 'https://app.example.test' })).status, 200);
      const elsewhere = await pingWith(proxy, token, url, { origin: 'https://evil.example.test' });
      assert.equal(elsewhere.status, 403);
      assert.equal(elsewhere.body.error.data.code, 'origin_mismatch');
      assert.equal((await pingWith(proxy, token, url)).status, 403, 'no Origin: refused too');
      assert.equal(
        (await wsWith(proxy, token, { mcp_server_url: everything.url }, 'https://app.example.test')).status,
        101,
      );
      assert.equal((await wsWith(proxy, token, { mcp_server_url: everything.url })).status, 403);
    } finally {
      await proxy.close();
    }
  });

  it('ends a /ws socket when its token is revoked, and when it expires', async () => {
    await start();
    try {
      const revoked = await mint(proxy.url, 'alice');
      const first = await wsWith(proxy, revoked.token, { mcp_server_url: everything.url });
      assert.equal(first.status, 101);
      const expiring = await mint(proxy.url, 'alice', { ttlSeconds: 30 });
      const second = await wsWith(proxy, expiring.token, { mcp_server_url: everything.url });
      assert.equal(second.status, 101);
      const other = await wsWith(proxy, (await mint(proxy.url, 'alice')).token, {
        mcp_server_url: everything.url,
      });

      assert.equal(await revoke(proxy.url, revoked.id), 204);
      assert.equal((await closeOf(first.closed)).code, 4401);
      clock.advance(31_000);
      assert.equal((await closeOf(second.closed)).code, 4401);
      assert.equal(
        other.ws.readyState,
        WebSocket.OPEN,
        'the same subject with another token keeps its socket',
      );
      other.ws.close();
    } finally {
      await proxy.close();
    }
  });

  it('refuses everywhere a token revoked on another instance sharing the store', async () => {
    const redis = await (await import('./helpers/redis.ts')).startRedis();
    const one = await start({ REDIS_URL: redis.url });
    const two = await start({ REDIS_URL: redis.url });
    try {
      const { token, id } = await mint(one.url, 'alice');
      const url = `${upstream.origin}/echo-auth`;
      assert.equal((await pingWith(two, token, url)).status, 200, 'cached on the second instance');
      const socket = await wsWith(two, token, { mcp_server_url: everything.url });
      assert.equal(await revoke(one.url, id), 204);
      assert.equal(
        (await closeOf(socket.closed)).code,
        4401,
        'the other instance heard it and closed the socket',
      );
      const refused = await pingWith(two, token, url);
      assert.equal(refused.body.error.data.code, 'token_revoked');
    } finally {
      await Promise.all([one.close(), two.close()]);
      await redis.stop();
    }
  });

  it('refuses a token it has not seen (503 store_unavailable) while the shared store cannot say whether it was revoked', async () => {
    const { freePort } = await import('./helpers/net.ts');
    const healthy = await start();
    const proxy = await start({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    try {
      // Minted where the store answers (same key): minting needs the store, to record the minter.
      const { token } = await mint(healthy.url, 'alice');
      const refusedMint = await mintRaw(proxy.url, { subject: 'alice' });
      assert.equal(refusedMint.status, 503);
      assert.equal(refusedMint.body.error.data.code, 'store_unavailable');
      const reply = await pingWith(proxy, token, `${upstream.origin}/echo-auth`);
      assert.equal(reply.status, 503);
      assert.equal(reply.body.error.data.code, 'store_unavailable');
      assert.equal(
        (await pingWith(proxy, proxy.token, `${upstream.origin}/echo-auth`)).status,
        200,
        'static tokens work',
      );
    } finally {
      await Promise.all([proxy.close(), healthy.close()]);
    }
  });

  it('a reload that drops a signing key ends the sockets its tokens hold', async () => {
    await start();
    try {
      const old = await mint(proxy.url, 'alice');
      const socket = await wsWith(proxy, old.token, { mcp_server_url: everything.url });
      assert.equal(socket.status, 101);
      const next = keyFile();
      const env = {
        ADMIN_TOKEN: ADMIN,
        PROXY_TOKEN: proxy.token,
        MCP_PROXY_CONFIG: configPath,
        ALLOW_PRIVATE_NETWORKS: 'true',
        WS_ALLOW_MISSING_ORIGIN: 'true',
        CORS_ORIGINS: 'https://app.example.test',
        STORE: 'memory',
      };
      proxy.app.reload(loadConfig({ env: { ...env, SIGNING_KEYS: `${next},${keyPath}` } }));
      assert.equal(socket.ws.readyState, WebSocket.OPEN, 'a key kept for verifying keeps its sockets');
      assert.equal((await pingWith(proxy, old.token, `${upstream.origin}/echo-auth`)).status, 200);
      proxy.app.reload(loadConfig({ env: { ...env, SIGNING_KEYS: next } }));
      assert.equal((await closeOf(socket.closed)).code, 4401);
      const refused = await pingWith(proxy, old.token, `${upstream.origin}/echo-auth`);
      assert.equal(refused.body.error.data.code, 'token_invalid');
    } finally {
      await proxy.close();
    }
  });
});
