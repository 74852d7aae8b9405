/**
 * Issue 14, finding 2: session ids a caller sees are sealed (AES-256-GCM, bound to the proxy
 * token and the target), on `/mcp` and on POST /proxy alike. Another token cannot open, decode
 * or drive a session; a raw upstream id is never forwarded; a flipped bit, another target, an
 * old or removed secret are all "not found". Black-box, against the real server-everything,
 * behind a relay that records the upstream's own session ids.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { startWsUpstream, type WsUpstream } from './fixtures/ws-upstream.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { postProxy, type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';
import { type RecordingRelay, startRecordingRelay } from './helpers/recording-relay.ts';

const ATTACKER = 'seal-attacker-token-0123456789abcdef';
const OLD_SECRET = 'old-session-secret-0123456789abcdef0123456789';
const NEW_SECRET = 'new-session-secret-0123456789abcdef0123456789';
const VERSION = '2025-06-18';
const INITIALIZE = {
  jsonrpc: '2.0',
  id: 'init',
  method: 'initialize',
  params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 'seal-test', version: '1' } },
};
const PING = { jsonrpc: '2.0', id: 'ping', method: 'ping' };

/** One reply from the proxy, whichever surface. */
interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The JSON-RPC message(s): the JSON body, or the data of each event of a stream. */
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary JSON bodies.
  readonly messages: any[];
}

/** A request to `/mcp` for `url`, as `token`, with an optional session id. */
async function mcp(
  proxy: RunningProxy,
  url: string,
  options: {
    readonly token?: string;
    readonly sessionId?: string;
    readonly method?: 'POST' | 'DELETE';
    readonly body?: unknown;
  } = {},
): Promise<Answer> {
  const method = options.method ?? 'POST';
  const response = await fetch(`${proxy.url}/mcp`, {
    method,
    headers: {
      'x-proxy-token': options.token ?? TEST_TOKEN,
      'x-mcp-server-url': url,
      accept: 'application/json, text/event-stream',
      ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
      ...(options.sessionId === undefined
        ? {}
        : { 'mcp-session-id': options.sessionId, 'mcp-protocol-version': VERSION }),
    },
    ...(method === 'POST' ? { body: JSON.stringify(options.body ?? PING) } : {}),
  });
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  let messages: unknown[] = [];
  if (type.includes('text/event-stream')) {
    messages = text
      .split('\n')
      .filter((line) => line.startsWith('data:') && line.slice(5).trim() !== '')
      .map((line) => JSON.parse(line.slice(5)));
  } else if (type.includes('application/json') && text !== '') {
    messages = [JSON.parse(text)];
  }
  return { status: response.status, headers: response.headers, text, messages };
}

/** A POST /proxy call for `url`, as `token`, with the session id in the header or the envelope. */
async function viaProxy(
  proxy: RunningProxy,
  url: string,
  options: {
    readonly token?: string;
    readonly sessionId?: string;
    readonly inEnvelope?: boolean;
    readonly message?: Record<string, unknown>;
  } = {},
): Promise<Answer> {
  const envelope = {
    mcp_server_url: url,
    ...(options.message ?? PING),
    ...(options.sessionId !== undefined && options.inEnvelope ? { mcp_session_id: options.sessionId } : {}),
  };
  const headers: Record<string, string> =
    options.sessionId !== undefined && !options.inEnvelope
      ? { 'mcp-session-id': options.sessionId, 'mcp-protocol-version': VERSION }
      : {};
  const reply = await postProxy({ url: proxy.url, token: options.token ?? TEST_TOKEN }, envelope, headers);
  return {
    status: reply.status,
    headers: reply.headers,
    text: reply.body === undefined ? '' : JSON.stringify(reply.body),
    messages: reply.body === undefined ? [] : [reply.body],
  };
}

/** Opens a session on `/mcp`: the sealed id the caller got. */
async function openOnMcp(proxy: RunningProxy, url: string, token = TEST_TOKEN): Promise<string> {
  const init = await mcp(proxy, url, { token, body: INITIALIZE });
  assert.equal(init.status, 200, init.text);
  const sessionId = init.headers.get('mcp-session-id');
  assert.ok(sessionId, 'initialize answers with a session id');
  const done = await mcp(proxy, url, {
    token,
    sessionId,
    body: { jsonrpc: '2.0', method: 'notifications/initialized' },
  });
  assert.equal(done.status, 202, done.text);
  return sessionId;
}

/** Opens a session through POST /proxy: the sealed id the caller got. */
async function openOnProxy(proxy: RunningProxy, url: string, token = TEST_TOKEN): Promise<string> {
  const init = await viaProxy(proxy, url, { token, message: INITIALIZE });
  assert.equal(init.status, 200, init.text);
  const sessionId = init.headers.get('mcp-session-id');
  assert.ok(sessionId, 'initialize answers with a session id');
  const done = await viaProxy(proxy, url, {
    token,
    sessionId,
    message: { jsonrpc: '2.0', method: 'notifications/initialized' },
  });
  assert.equal(done.status, 202, done.text);
  return sessionId;
}

/** Asserts a ping in the session worked (the upstream answered it). */
function assertPinged(answer: Answer): void {
  assert.equal(answer.status, 200, answer.text);
  assert.deepEqual(answer.messages.at(-1), { jsonrpc: '2.0', id: 'ping', result: {} });
}

/** Asserts the proxy answered "no such session" itself. */
function assertNotFound(answer: Answer, what: string): void {
  assert.equal(answer.status, 404, `${what}: ${answer.status} ${answer.text}`);
  assert.equal(answer.messages[0]?.error?.data?.code, 'session_not_found', `${what}: ${answer.text}`);
}

/** Every way the sealed id could be read as bytes, and every way the upstream id could appear. */
function assertNoTrace(sealed: string, upstreamId: string): void {
  assert.match(sealed, /^mcpp2\.[A-Za-z0-9_-]+$/);
  const needles = [Buffer.from(upstreamId, 'utf8')];
  const hex = upstreamId.replaceAll('-', '');
  if (/^[0-9a-f]+$/i.test(hex) && hex.length % 2 === 0) needles.push(Buffer.from(hex, 'hex'));
  const texts = [sealed, sealed.slice('mcpp2.'.length), ...sealed.split('.')];
  for (const text of texts) {
    assert.ok(!text.toLowerCase().includes(upstreamId.toLowerCase()), `"${text}" shows the upstream id`);
    for (const encoding of ['base64', 'base64url', 'hex', 'latin1'] as const) {
      // Decode from every offset too: a base64 string read from the wrong place shifts bits.
      for (let start = 0; start < 4; start++) {
        const decoded = Buffer.from(text.slice(start), encoding);
        for (const needle of needles) {
          assert.equal(decoded.indexOf(needle), -1, `${encoding} of the sealed id holds the upstream id`);
        }
      }
    }
  }
}

/** The sealed id with one bit flipped at byte `index` of its decoded payload. */
function flipBit(sealed: string, index: number): string {
  const bytes = Buffer.from(sealed.slice('mcpp2.'.length), 'base64url');
  const at = index < 0 ? bytes.length + index : index;
  bytes[at] = (bytes[at] as number) ^ 0x01;
  return `mcpp2.${bytes.toString('base64url')}`;
}

describe('sealed session ids (issue 14, finding 2)', () => {
  let everything: EverythingServer;
  let relay: RecordingRelay;
  let ws: WsUpstream;
  let proxy: RunningProxy;

  before(async () => {
    everything = await startEverything('streamableHttp');
    relay = await startRecordingRelay(everything.url);
    ws = await startWsUpstream();
    proxy = await startProxy({ HOST: '127.0.0.1', PROXY_TOKENS: ATTACKER, SESSION_SECRET: NEW_SECRET });
  });
  after(async () => {
    await proxy?.close();
    await ws?.stop();
    await relay?.stop();
    await everything?.stop();
  });

  it('a sealed id shows no trace of the upstream id, on /mcp and POST /proxy', async () => {
    for (const open of [openOnMcp, openOnProxy]) {
      const before = relay.issued.length;
      const sealed = await open(proxy, relay.url);
      const upstreamId = relay.issued[before];
      assert.ok(upstreamId, 'the upstream issued a session id');
      assertNoTrace(sealed, upstreamId);
      // Nor does anything else the caller was sent in that session.
      const pinged = await (open === openOnMcp ? mcp : viaProxy)(proxy, relay.url, { sessionId: sealed });
      assertPinged(pinged);
      assert.ok(!pinged.text.includes(upstreamId));
      for (const [name, value] of pinged.headers) {
        assert.ok(!value.includes(upstreamId), `header ${name} shows the upstream id`);
      }
      // While the upstream keeps its session, the caller keeps its id.
      assert.equal(pinged.headers.get('mcp-session-id') ?? sealed, sealed);
    }
  });

  it('POST /proxy hands out sealed ids and takes them in the header or the envelope', async () => {
    const sealed = await openOnProxy(proxy, relay.url);
    assert.match(sealed, /^mcpp2\./);
    assertPinged(await viaProxy(proxy, relay.url, { sessionId: sealed }));
    assertPinged(await viaProxy(proxy, relay.url, { sessionId: sealed, inEnvelope: true }));
  });

  it('the same token may use a sealed id on either surface for the same target', async () => {
    const fromMcp = await openOnMcp(proxy, relay.url);
    assertPinged(await viaProxy(proxy, relay.url, { sessionId: fromMcp }));
    const fromProxy = await openOnProxy(proxy, relay.url);
    assertPinged(await mcp(proxy, relay.url, { sessionId: fromProxy }));
  });

  it('another token can neither use nor end the session, on either surface', async () => {
    for (const open of [openOnMcp, openOnProxy]) {
      const sealed = await open(proxy, relay.url);
      const forwarded = relay.forwarded.length;
      assertNotFound(await mcp(proxy, relay.url, { token: ATTACKER, sessionId: sealed }), '/mcp');
      assertNotFound(
        await mcp(proxy, relay.url, { token: ATTACKER, sessionId: sealed, method: 'DELETE' }),
        '/mcp DELETE',
      );
      assertNotFound(await viaProxy(proxy, relay.url, { token: ATTACKER, sessionId: sealed }), 'POST /proxy');
      assertNotFound(
        await viaProxy(proxy, relay.url, { token: ATTACKER, sessionId: sealed, inEnvelope: true }),
        'POST /proxy envelope',
      );
      assert.equal(relay.forwarded.length, forwarded, 'nothing reached the upstream');
      assertPinged(await mcp(proxy, relay.url, { sessionId: sealed }));
    }
  });

  it('a raw upstream session id is refused on every surface and never forwarded', async () => {
    const before = relay.issued.length;
    await openOnMcp(proxy, relay.url);
    const upstreamId = relay.issued[before];
    assert.ok(upstreamId);
    const forwarded = relay.forwarded.length;
    for (const token of [ATTACKER, TEST_TOKEN]) {
      assertNotFound(
        await viaProxy(proxy, relay.url, { token, sessionId: upstreamId }),
        'POST /proxy header',
      );
      assertNotFound(
        await viaProxy(proxy, relay.url, { token, sessionId: upstreamId, inEnvelope: true }),
        'POST /proxy envelope',
      );
      assertNotFound(await mcp(proxy, relay.url, { token, sessionId: upstreamId }), '/mcp');
    }
    assert.equal(relay.forwarded.length, forwarded, 'no raw id reached the upstream');
  });

  it('a tampered, truncated, foreign-format or oversized id is not found (never a 500)', async () => {
    const sealed = await openOnMcp(proxy, relay.url);
    const bytes = Buffer.from(sealed.slice('mcpp2.'.length), 'base64url').length;
    const broken = [
      flipBit(sealed, 0), // key id
      flipBit(sealed, 5), // nonce
      flipBit(sealed, 20), // ciphertext
      flipBit(sealed, bytes - 1), // tag
      sealed.slice(0, -2),
      `${sealed}A`,
      sealed.replace('mcpp2.', 'mcpp1.'),
      `mcpp1.${Buffer.from('some-upstream-id').toString('base64url')}.${'A'.repeat(24)}`,
      'mcpp2.',
      'mcpp2.!!!!',
      `mcpp2.${'A'.repeat(4000)}`,
      'mcpp-',
      'x',
    ];
    const forwarded = relay.forwarded.length;
    for (const id of broken) {
      assertNotFound(await mcp(proxy, relay.url, { sessionId: id }), `/mcp ${id.slice(0, 40)}`);
      if (id.length <= 1024) {
        assertNotFound(await viaProxy(proxy, relay.url, { sessionId: id }), `POST /proxy ${id.slice(0, 40)}`);
      }
    }
    assert.equal(relay.forwarded.length, forwarded, 'nothing reached the upstream');
    assertPinged(await mcp(proxy, relay.url, { sessionId: sealed }));
  });

  it('an id sealed for one target is refused for another (the same upstream by another URL)', async () => {
    for (const open of [openOnMcp, openOnProxy]) {
      const sealed = await open(proxy, relay.url);
      // everything.url reaches the very server holding the session: only the seal refuses it.
      assertNotFound(await mcp(proxy, everything.url, { sessionId: sealed }), '/mcp');
      assertNotFound(await viaProxy(proxy, everything.url, { sessionId: sealed }), 'POST /proxy');
      assertPinged(await viaProxy(proxy, relay.url, { sessionId: sealed }));
    }
  });

  it('proxy-held (mcpp-) sessions are bound to their token on every surface', async () => {
    for (const open of [openOnMcp, openOnProxy]) {
      const held = await open(proxy, ws.url);
      assert.match(held, /^mcpp-/);
      assertNotFound(await mcp(proxy, ws.url, { token: ATTACKER, sessionId: held }), '/mcp');
      assertNotFound(
        await mcp(proxy, ws.url, { token: ATTACKER, sessionId: held, method: 'DELETE' }),
        '/mcp DELETE',
      );
      assertNotFound(await viaProxy(proxy, ws.url, { token: ATTACKER, sessionId: held }), 'POST /proxy');
      // The owner still has it, on both surfaces.
      assertPinged(await mcp(proxy, ws.url, { sessionId: held }));
      assertPinged(await viaProxy(proxy, ws.url, { sessionId: held }));
      assert.equal((await mcp(proxy, ws.url, { sessionId: held, method: 'DELETE' })).status, 200);
    }
  });
});

/** The id the hostile upstream issues, and quotes back in every refusal. */
const QUOTED_ID = 'hostile-upstream-session-0123456789';

/** A Streamable HTTP upstream that opens a session, then refuses it naming the id (HTTP 404). */
async function startQuotingUpstream(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => {
      raw += chunk.toString();
    });
    req.on('end', () => {
      const message = raw === '' ? {} : JSON.parse(raw);
      if (message.method === 'initialize') {
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': QUOTED_ID });
        res.end(
          JSON.stringify({
            jsonrpc: '2.0',
            id: message.id,
            result: {
              protocolVersion: VERSION,
              capabilities: {},
              serverInfo: { name: 'quoting', version: '1' },
            },
          }),
        );
      } else if (message.id === undefined && req.method === 'POST') {
        res.writeHead(202).end();
      } else {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            jsonrpc: '2.0',
            id: null,
            error: { code: -32001, message: `Session ${req.headers['mcp-session-id']} not found` },
          }),
        );
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, server };
}

describe('an upstream that quotes its session id (issue 14, finding 2)', () => {
  it('never shows it to the caller, on /mcp or POST /proxy', async () => {
    const upstream = await startQuotingUpstream();
    const proxy = await startProxy({ HOST: '127.0.0.1' });
    try {
      for (const [open, call] of [
        [openOnMcp, mcp],
        [openOnProxy, viaProxy],
      ] as const) {
        const sealed = await open(proxy, upstream.url);
        assertNoTrace(sealed, QUOTED_ID);
        const refused = await call(proxy, upstream.url, { sessionId: sealed });
        assert.equal(refused.status, 404, refused.text);
        assert.ok(!refused.text.includes(QUOTED_ID), refused.text);
        assert.match(refused.text, /\[session\]/);
      }
    } finally {
      await proxy.close();
      upstream.server.closeAllConnections();
      await new Promise((resolve) => upstream.server.close(resolve));
    }
  });
});

describe('session secret rotation (issue 14, finding 2)', () => {
  let everything: EverythingServer;

  before(async () => {
    everything = await startEverything('streamableHttp');
  });
  after(async () => {
    await everything?.stop();
  });

  /** Runs `body` against a proxy started with `env`, closing it afterwards. */
  async function withProxy(env: Record<string, string>, body: (proxy: RunningProxy) => Promise<void>) {
    const proxy = await startProxy({ HOST: '127.0.0.1', ...env });
    try {
      await body(proxy);
    } finally {
      await proxy.close();
    }
  }

  it('ids sealed under a previous secret open while it is listed, and not once it is removed', async () => {
    let oldOnMcp = '';
    let oldOnProxy = '';
    let newId = '';
    await withProxy({ SESSION_SECRET: OLD_SECRET }, async (proxy) => {
      oldOnMcp = await openOnMcp(proxy, everything.url);
      oldOnProxy = await openOnProxy(proxy, everything.url);
    });
    // Restarted with a new secret, the old one kept as previous: old ids still open.
    await withProxy({ SESSION_SECRET: NEW_SECRET, SESSION_SECRET_PREVIOUS: OLD_SECRET }, async (proxy) => {
      for (const id of [oldOnMcp, oldOnProxy]) {
        assertPinged(await mcp(proxy, everything.url, { sessionId: id }));
        assertPinged(await viaProxy(proxy, everything.url, { sessionId: id }));
      }
      newId = await openOnMcp(proxy, everything.url);
    });
    // The old secret removed: its ids are gone; ids of the new one (which sealed) still open.
    await withProxy({ SESSION_SECRET: NEW_SECRET }, async (proxy) => {
      for (const id of [oldOnMcp, oldOnProxy]) {
        assertNotFound(await mcp(proxy, everything.url, { sessionId: id }), '/mcp');
        assertNotFound(await viaProxy(proxy, everything.url, { sessionId: id }), 'POST /proxy');
      }
      assertPinged(await mcp(proxy, everything.url, { sessionId: newId }));
      assertPinged(await viaProxy(proxy, everything.url, { sessionId: newId }));
    });
    // Without a secret the key is random per process: no configured secret's ids open.
    await withProxy({}, async (proxy) => {
      assertNotFound(await mcp(proxy, everything.url, { sessionId: newId }), '/mcp');
    });
  });

  it('refuses previous secrets without a current one, and short ones', () => {
    assert.throws(
      () => loadConfig({ env: { PROXY_TOKEN: TEST_TOKEN, SESSION_SECRET_PREVIOUS: OLD_SECRET } }),
      /SESSION_SECRET_PREVIOUS: needs SESSION_SECRET/,
    );
    assert.throws(
      () =>
        loadConfig({
          env: { PROXY_TOKEN: TEST_TOKEN, SESSION_SECRET: NEW_SECRET, SESSION_SECRET_PREVIOUS: 'short' },
        }),
      /SESSION_SECRET_PREVIOUS: each previous session secret must be at least 32 characters/,
    );
  });
});
