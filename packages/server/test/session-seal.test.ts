/**
 * Issue 14, finding 2: session ids a caller sees are sealed (AES-256-GCM, bound to the proxy
 * token and the target), on `/mcp` and on POST /proxy alike. Another token cannot open, decode
 * or drive a session; a raw upstream id is never forwarded; a flipped bit, another target, an
 * old or removed secret are all "not found". Black-box, against the real server-everything,
 * behind a relay that records the upstream's own session ids.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
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
  return answerOf(response);
}

/** Reads a `/mcp` reply: its JSON body, or the data of each event of its stream. */
async function answerOf(response: Response): Promise<Answer> {
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
      // The owner uses it first: the proxy remembers ids it opened (issue 16), for their owner only.
      assertPinged(await viaProxy(proxy, relay.url, { sessionId: sealed }));
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

  it('an id sealed under a previous secret is handed back re-sealed under the newest', async () => {
    let oldOnMcp = '';
    let oldOnProxy = '';
    await withProxy({ SESSION_SECRET: OLD_SECRET }, async (proxy) => {
      oldOnMcp = await openOnMcp(proxy, everything.url);
      oldOnProxy = await openOnProxy(proxy, everything.url);
    });
    const moved: string[] = [];
    await withProxy({ SESSION_SECRET: NEW_SECRET, SESSION_SECRET_PREVIOUS: OLD_SECRET }, async (proxy) => {
      for (const [old, call] of [
        [oldOnMcp, mcp],
        [oldOnProxy, viaProxy],
      ] as const) {
        const answer = await call(proxy, everything.url, { sessionId: old });
        assertPinged(answer);
        const fresh = answer.headers.get('mcp-session-id');
        assert.ok(fresh, 'the answer carries the re-sealed id');
        assert.notEqual(fresh, old);
        assert.match(fresh, /^mcpp2\./);
        // The fresh id is stable: used again, it comes back as it is.
        const again = await call(proxy, everything.url, { sessionId: fresh });
        assertPinged(again);
        assert.equal(again.headers.get('mcp-session-id') ?? fresh, fresh);
        moved.push(fresh);
      }
    });
    // The old secret dropped: the moved sessions live on under the new one.
    await withProxy({ SESSION_SECRET: NEW_SECRET }, async (proxy) => {
      for (const id of moved) {
        assertPinged(await mcp(proxy, everything.url, { sessionId: id }));
        assertPinged(await viaProxy(proxy, everything.url, { sessionId: id }));
      }
    });
  });

  it('takes previous secrets from the config file as a list (a comma in a secret is fine there)', () => {
    const withComma = 'previous,secret-with-a-comma-0123456789abcdef';
    const file = join(mkdtempSync(join(tmpdir(), 'session-seal-')), 'proxy.yaml');
    writeFileSync(
      file,
      `sessionSecret: ${NEW_SECRET}\nsessionSecretPrevious:\n  - "${withComma}"\n  - ${OLD_SECRET}\n`,
    );
    const config = loadConfig({ env: { PROXY_TOKEN: TEST_TOKEN, MCP_PROXY_CONFIG: file } });
    assert.equal(config.sessionSecret, NEW_SECRET);
    assert.deepEqual(config.sessionSecretPrevious, [withComma, OLD_SECRET]);
    // The environment variable is comma-separated: there the same secret splits in two.
    assert.throws(
      () =>
        loadConfig({
          env: { PROXY_TOKEN: TEST_TOKEN, SESSION_SECRET: NEW_SECRET, SESSION_SECRET_PREVIOUS: withComma },
        }),
      /at least 32 characters/,
    );
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

// ---------------------------------------------------------------------------------------------
// Review of finding 2: name vs URL binding, leaks through other error paths, rotation, 48-bit
// owners, and previous secrets with commas.

const OPERATOR_SECRET = 'OPERATOR-SECRET-for-the-named-server';
/** The session id the hostile upstream issues on each path (each quoted back in its errors). */
const SID_BY_PATH: Readonly<Record<string, string>> = {
  '/auth': 'named-upstream-sid-0001',
  '/open': 'open-upstream-sid-0002',
  '/long': `L${'x'.repeat(399)}`, // straddles the 300-character clip of upstream messages
  '/slash': 'abc/def/ghi+jkl=slash-sid', // what a JSON serializer may write as abc\/def\/…
};
/** The legacy SSE endpoint's session id (a capability on that server: never for callers). */
const LEGACY_ID = 'legacy-sse-session-0123456789abcdef';

/** `text` with every character JSON-escaped as `\u00xx`. */
function unicodeEscaped(text: string): string {
  return [...text].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
}

/** A JSON-RPC error answering request `id` that quotes the session id `sid`. */
function answerQuoting(id: unknown, sid: string): string {
  return JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32602, message: `No ${sid}`, data: { sid } } });
}

/**
 * A hostile upstream on loopback. Streamable HTTP on each path of {@link SID_BY_PATH}: `/auth`
 * checks the operator's token at `initialize` only (a common shape); `fail*` methods are refused
 * with a 400 quoting the session id (raw, `\/`-escaped, `\u`-escaped, or as the JSON-RPC error
 * of the request itself). Legacy SSE on `/legacy/sse`, refusing `fail` with its session id.
 */
async function startHostileUpstream(): Promise<{ base: string; server: Server; close(): Promise<void> }> {
  const streams = new Map<string, ServerResponse>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    if (req.method === 'GET' && url.pathname === '/legacy/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(`event: endpoint\ndata: /legacy/messages?sessionId=${LEGACY_ID}\n\n`);
      streams.set(LEGACY_ID, res);
      return;
    }
    let raw = '';
    req.on('data', (chunk: Buffer) => {
      raw += chunk.toString();
    });
    req.on('end', () => {
      const json = (status: number, body: string, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(body);
      };
      if (req.method !== 'POST') return void res.writeHead(405).end();
      const message = JSON.parse(raw);
      if (url.pathname === '/legacy/messages') {
        const stream = streams.get(url.searchParams.get('sessionId') ?? '');
        if (!stream) return json(404, JSON.stringify({ error: 'no such session' }));
        if (message.method === 'fail')
          return json(400, JSON.stringify({ error: `Session ${LEGACY_ID} is busy` }));
        res.writeHead(202).end();
        if (message.id === undefined) return;
        const result =
          message.method === 'initialize'
            ? {
                protocolVersion: '2024-11-05',
                capabilities: {},
                serverInfo: { name: 'legacy', version: '1' },
              }
            : {};
        stream.write(
          `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: message.id, result })}\n\n`,
        );
        return;
      }
      const sid = SID_BY_PATH[url.pathname];
      if (sid === undefined) return json(404, '{}');
      if (message.method === 'initialize') {
        if (url.pathname === '/auth' && req.headers.authorization !== `Bearer ${OPERATOR_SECRET}`)
          return json(401, JSON.stringify({ error: 'unauthorized' }));
        const result = {
          protocolVersion: VERSION,
          capabilities: { tools: {} },
          serverInfo: { name: 'h', version: '1' },
        };
        return json(200, JSON.stringify({ jsonrpc: '2.0', id: message.id, result }), {
          'mcp-session-id': sid,
        });
      }
      if (req.headers['mcp-session-id'] !== sid)
        return json(
          404,
          JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }),
        );
      const error = (text: string) =>
        `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"${text}"}}`;
      switch (message.method) {
        case 'notifications/initialized':
          return void res.writeHead(202).end();
        case 'tools/list': {
          const tools = [
            { name: 'safe', inputSchema: { type: 'object' } },
            { name: 'dangerous', inputSchema: { type: 'object' } },
          ];
          return json(200, JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { tools } }));
        }
        case 'tools/call':
          if (message.params?.name === 'fail-answer') return json(400, answerQuoting(message.id, sid));
          return json(200, JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { content: [] } }));
        case 'fail': // the id quoted raw
          return json(400, error(`Bad request in session ${sid}`));
        case 'fail-slash': // PHP's json_encode style: every / written \/
          return json(400, error(`Bad request in session ${sid.replaceAll('/', '\\/')}`));
        case 'fail-unicode': // every character \u-escaped
          return json(400, error(`Bad request in session ${unicodeEscaped(sid)}`));
        case 'fail-answer': // the JSON-RPC error of the request itself (its answer)
          return json(400, answerQuoting(message.id, sid));
        default:
          return json(200, JSON.stringify({ jsonrpc: '2.0', id: message.id, result: {} }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    close: async () => {
      for (const stream of streams.values()) stream.end();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A POST to any proxy path (`/mcp`, `/servers/{name}/mcp`) with extra headers. */
async function post(
  proxy: RunningProxy,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
  token = TEST_TOKEN,
): Promise<Answer> {
  const response = await fetch(`${proxy.url}${path}`, {
    method: 'POST',
    headers: {
      'x-proxy-token': token,
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      'mcp-protocol-version': VERSION,
      ...headers,
    },
    body: JSON.stringify(body),
  });
  return answerOf(response);
}

/** A POST /proxy envelope naming a configured server, as `token`. */
async function viaServer(
  proxy: RunningProxy,
  server: string,
  message: Record<string, unknown>,
  sessionId?: string,
  token = TEST_TOKEN,
): Promise<Answer> {
  const envelope = { server, ...message, ...(sessionId === undefined ? {} : { mcp_session_id: sessionId }) };
  const reply = await postProxy({ url: proxy.url, token }, envelope);
  const text = reply.body === undefined ? '' : JSON.stringify(reply.body);
  return {
    status: reply.status,
    headers: reply.headers,
    text,
    messages: reply.body === undefined ? [] : [reply.body],
  };
}

/** A proxy configured with the hostile upstream's paths as named servers (and `extra` lines). */
async function startConfigured(
  base: string,
  env: Record<string, string> = {},
  extra: readonly string[] = [],
): Promise<RunningProxy> {
  const file = join(mkdtempSync(join(tmpdir(), 'session-seal-')), 'proxy.yaml');
  writeFileSync(
    file,
    [
      'servers:',
      '  foo:',
      `    url: ${base}/auth`,
      `    token: ${OPERATOR_SECRET}`,
      '    tools: [safe]',
      '  open:',
      `    url: ${base}/open`,
      '    tools: [safe]',
      ...extra,
      '',
    ].join('\n'),
  );
  return startProxy({ HOST: '127.0.0.1', MCP_PROXY_CONFIG: file, ...env });
}

function toolNames(answer: Answer): string[] {
  return (answer.messages.at(-1)?.result?.tools ?? []).map((tool: { name: string }) => tool.name);
}

describe('a configured server binds its sessions to its name, not its URL (review of finding 2)', () => {
  let upstream: Awaited<ReturnType<typeof startHostileUpstream>>;
  let ws: WsUpstream;
  let proxy: RunningProxy;
  const LIST = { jsonrpc: '2.0', id: 'list', method: 'tools/list' };
  const CALL = {
    jsonrpc: '2.0',
    id: 'call',
    method: 'tools/call',
    params: { name: 'dangerous', arguments: {} },
  };

  before(async () => {
    upstream = await startHostileUpstream();
    ws = await startWsUpstream();
    proxy = await startConfigured(upstream.base, {}, ['  wsfoo:', `    url: ${ws.url}`, '    tools: [echo]']);
  });
  after(async () => {
    await proxy?.close();
    await ws?.stop();
    await upstream?.close();
  });

  it('a session opened by name is not found by URL: no allowlist bypass, no operator token', async () => {
    const url = `${upstream.base}/auth`;
    const init = await post(proxy, '/servers/foo/mcp', INITIALIZE);
    assert.equal(init.status, 200, init.text);
    const sealed = init.headers.get('mcp-session-id') as string;
    assert.match(sealed, /^mcpp2\./);
    const byName = await post(proxy, '/servers/foo/mcp', LIST, { 'mcp-session-id': sealed });
    assert.deepEqual(toolNames(byName), ['safe']);
    // The same upstream by URL: the seal does not open, on either surface.
    for (const body of [LIST, CALL]) {
      const byUrl = await post(proxy, '/mcp', body, { 'mcp-session-id': sealed, 'x-mcp-server-url': url });
      assertNotFound(byUrl, `/mcp by URL, ${body.method}`);
      assertNotFound(
        await viaProxy(proxy, url, { sessionId: sealed, message: body }),
        `POST /proxy by URL, ${body.method}`,
      );
    }
    // By name it goes on working on both surfaces (POST /proxy `server` is the same binding).
    assert.deepEqual(toolNames(await viaServer(proxy, 'foo', LIST, sealed)), ['safe']);
    const refused = await viaServer(proxy, 'foo', CALL, sealed);
    assert.equal(refused.messages[0]?.error?.code, -32602, refused.text);
  });

  it('a session opened by URL is not found by name either', async () => {
    const url = `${upstream.base}/open`;
    const sealed = await openOnMcp(proxy, url);
    assertPinged(await mcp(proxy, url, { sessionId: sealed }));
    assertNotFound(
      await post(proxy, '/servers/open/mcp', PING, { 'mcp-session-id': sealed }),
      '/servers/open/mcp',
    );
    assertNotFound(await viaServer(proxy, 'open', PING, sealed), 'POST /proxy server');
  });

  it('proxy-held (mcpp-) sessions: opened by name, not found by URL (and the reverse)', async () => {
    const byName = await viaServer(proxy, 'wsfoo', INITIALIZE);
    assert.equal(byName.status, 200, byName.text);
    const held = byName.headers.get('mcp-session-id') as string;
    assert.match(held, /^mcpp-/);
    assertNotFound(await viaProxy(proxy, ws.url, { sessionId: held }), 'POST /proxy by URL');
    assertNotFound(await mcp(proxy, ws.url, { sessionId: held }), '/mcp by URL');
    assertPinged(await viaServer(proxy, 'wsfoo', PING, held));
    assertPinged(await post(proxy, '/servers/wsfoo/mcp', PING, { 'mcp-session-id': held }));

    const byUrl = await openOnProxy(proxy, ws.url);
    assertNotFound(await viaServer(proxy, 'wsfoo', PING, byUrl), 'POST /proxy by name');
    assertNotFound(
      await post(proxy, '/servers/wsfoo/mcp', PING, { 'mcp-session-id': byUrl }),
      '/servers/wsfoo/mcp',
    );
  });
});

describe('the upstream session id never reaches its owner either (review of finding 2)', () => {
  let upstream: Awaited<ReturnType<typeof startHostileUpstream>>;
  let proxy: RunningProxy;

  before(async () => {
    upstream = await startHostileUpstream();
    proxy = await startProxy({ HOST: '127.0.0.1' });
  });
  after(async () => {
    await proxy?.close();
    await upstream?.close();
  });

  /** Asserts `answer` shows no trace of `sid`, read raw or parsed. */
  function assertScrubbed(answer: Answer, sid: string, what: string): void {
    const parsed = JSON.stringify(answer.messages);
    for (const text of [answer.text, parsed]) {
      assert.ok(!text.includes(sid), `${what} shows the upstream id: ${text}`);
      assert.ok(!text.includes(sid.slice(0, 12)), `${what} shows a prefix of the upstream id: ${text}`);
    }
  }

  it('POST /proxy: a 4xx JSON-RPC error answering the request is scrubbed (one-shot and transport)', async () => {
    const url = `${upstream.base}/open`;
    const sid = SID_BY_PATH['/open'] as string;
    const sealed = await openOnProxy(proxy, url);
    const answer = await viaProxy(proxy, url, {
      sessionId: sealed,
      message: { jsonrpc: '2.0', id: 'fa', method: 'fail-answer' },
    });
    assert.equal(answer.messages[0]?.error?.code, -32602, answer.text);
    assert.equal(answer.messages[0]?.error?.message, 'No [session]');
    assertScrubbed(answer, sid, 'the one-shot answer');
    // A 2026-07-28 tools/call goes through the Streamable HTTP transport (it may look tools up).
    const modern = await viaProxy(proxy, url, {
      sessionId: sealed,
      message: {
        jsonrpc: '2.0',
        id: 'fb',
        method: 'tools/call',
        params: {
          name: 'fail-answer',
          arguments: {},
          _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' },
        },
      },
    });
    assert.equal(modern.messages[0]?.error?.code, -32602, modern.text);
    assertScrubbed(modern, sid, 'the transport answer');
  });

  it('POST /proxy: a long id quoted in an error is scrubbed before the message is clipped', async () => {
    const url = `${upstream.base}/long`;
    const sealed = await openOnProxy(proxy, url);
    const answer = await viaProxy(proxy, url, {
      sessionId: sealed,
      message: { jsonrpc: '2.0', id: 'f', method: 'fail' },
    });
    assert.equal(answer.status, 400, answer.text);
    assert.match(answer.messages[0]?.error?.data?.upstreamMessage ?? '', /\[session\]/);
    assert.doesNotMatch(answer.text, /Lx{8}/, 'no prefix of the 400-character id');
  });

  it('/mcp and POST /proxy: an id quoted JSON-escaped (\\/ or \\u00xx) is scrubbed too', async () => {
    const url = `${upstream.base}/slash`;
    const sid = SID_BY_PATH['/slash'] as string;
    const sealed = await openOnMcp(proxy, url);
    for (const method of ['fail', 'fail-slash', 'fail-unicode']) {
      const body = { jsonrpc: '2.0', id: method, method };
      const relayed = await mcp(proxy, url, { sessionId: sealed, body });
      assert.equal(relayed.status, 400, relayed.text);
      assert.equal(relayed.messages[0]?.error?.message, 'Bad request in session [session]', method);
      assertScrubbed(relayed, sid, `/mcp ${method}`);
      const proxied = await viaProxy(proxy, url, { sessionId: sealed, message: body });
      assert.equal(proxied.status, 400, proxied.text);
      assertScrubbed(proxied, sid, `POST /proxy ${method}`);
    }
  });

  it("a legacy SSE endpoint's session id is scrubbed from its refusals", async () => {
    const url = `${upstream.base}/legacy/sse`;
    const init = await postProxy(
      { url: proxy.url, token: TEST_TOKEN },
      { mcp_server_url: url, transport: 'sse', ...INITIALIZE },
    );
    assert.equal(init.status, 200, JSON.stringify(init.body));
    const held = init.headers.get('mcp-session-id') as string;
    assert.match(held, /^mcpp-/);
    const refused = await viaProxy(proxy, url, {
      sessionId: held,
      message: { jsonrpc: '2.0', id: 'f', method: 'fail' },
    });
    assert.equal(refused.status, 400, refused.text);
    assert.match(refused.messages[0]?.error?.data?.upstreamMessage ?? '', /Session \[session\] is busy/);
    assertScrubbed(refused, LEGACY_ID, 'the legacy refusal');
  });
});

describe('principals are bound by the full token digest (review of finding 2)', () => {
  // Two tokens whose SHA-256 digests share their first 12 hex digits (found by a rho search):
  // the short id that logs show is the same for both, the principal is not.
  const TWIN_A = 'seal-collision-821db5103cca';
  const TWIN_B = 'seal-collision-2982052c3aaf';
  let upstream: Awaited<ReturnType<typeof startHostileUpstream>>;
  let ws: WsUpstream;
  let proxy: RunningProxy;

  before(async () => {
    upstream = await startHostileUpstream();
    ws = await startWsUpstream();
    proxy = await startProxy({ HOST: '127.0.0.1', PROXY_TOKENS: `${TWIN_A},${TWIN_B}` });
  });
  after(async () => {
    await proxy?.close();
    await ws?.stop();
    await upstream?.close();
  });

  it("a token whose digest shares the 48-bit prefix opens none of the other's sessions", async () => {
    const url = `${upstream.base}/open`;
    for (const open of [openOnMcp, openOnProxy]) {
      const sealed = await open(proxy, url, TWIN_A);
      assertNotFound(await mcp(proxy, url, { token: TWIN_B, sessionId: sealed }), '/mcp sealed');
      assertNotFound(await viaProxy(proxy, url, { token: TWIN_B, sessionId: sealed }), 'POST /proxy sealed');
      assertPinged(await mcp(proxy, url, { token: TWIN_A, sessionId: sealed }));
      const held = await open(proxy, ws.url, TWIN_A);
      assertNotFound(await mcp(proxy, ws.url, { token: TWIN_B, sessionId: held }), '/mcp held');
      assertNotFound(await viaProxy(proxy, ws.url, { token: TWIN_B, sessionId: held }), 'POST /proxy held');
      assertPinged(await viaProxy(proxy, ws.url, { token: TWIN_A, sessionId: held }));
    }
  });
});
