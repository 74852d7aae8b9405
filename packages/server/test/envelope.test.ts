/**
 * The POST /proxy envelope: the hand-checked common case (issue #10) accepts exactly what the
 * schema accepts, at every boundary, and anything else still gets the schema's wording.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ENVELOPE_SCHEMA,
  envelopeMessage,
  parseEnvelope,
  plainEnvelope,
} from '../src/surfaces/proxy/envelope.ts';

const BASE = { mcp_server_url: 'http://127.0.0.1:1/mcp', jsonrpc: '2.0', id: 1, method: 'ping' };

function verdict(body: unknown): string {
  try {
    parseEnvelope(body);
    return 'ok';
  } catch (error) {
    return (error as { code?: string }).code ?? 'thrown';
  }
}

describe('envelope validation', () => {
  const cases: Array<[string, unknown, 'ok' | 'invalid_envelope']> = [
    ['minimal', BASE, 'ok'],
    [
      'every field',
      {
        ...BASE,
        mcp_token: 't',
        mcp_session_id: 's',
        mcp_protocol_version: '2025-06-18',
        transport: 'sse',
        params: { a: 1 },
      },
      'ok',
    ],
    ['a named server', { jsonrpc: '2.0', method: 'ping', server: 'a'.repeat(64) }, 'ok'],
    [
      'a server name too long',
      { jsonrpc: '2.0', method: 'ping', server: 'a'.repeat(65) },
      'invalid_envelope',
    ],
    ['both url and server', { ...BASE, server: 'a' }, 'invalid_envelope'],
    [
      'a notification',
      { mcp_server_url: BASE.mcp_server_url, jsonrpc: '2.0', method: 'notifications/initialized' },
      'ok',
    ],
    ['the longest URL', { ...BASE, mcp_server_url: `http://x/${'a'.repeat(2039)}` }, 'ok'],
    ['a URL too long', { ...BASE, mcp_server_url: `http://x/${'a'.repeat(2040)}` }, 'invalid_envelope'],
    ['an empty URL', { ...BASE, mcp_server_url: '' }, 'invalid_envelope'],
    ['an empty string id', { ...BASE, id: '' }, 'ok'],
    ['the longest string id', { ...BASE, id: 'i'.repeat(256) }, 'ok'],
    ['a string id too long', { ...BASE, id: 'i'.repeat(257) }, 'invalid_envelope'],
    ['a fractional id', { ...BASE, id: 1.5 }, 'ok'],
    ['a null id', { ...BASE, id: null }, 'invalid_envelope'],
    ['an empty method', { ...BASE, method: '' }, 'invalid_envelope'],
    ['a method too long', { ...BASE, method: 'm'.repeat(257) }, 'invalid_envelope'],
    ['an empty token', { ...BASE, mcp_token: '' }, 'invalid_envelope'],
    ['a session id with a space', { ...BASE, mcp_session_id: 'a b' }, 'invalid_envelope'],
    ['a session id of 1024 characters', { ...BASE, mcp_session_id: 's'.repeat(1024) }, 'ok'],
    ['a session id too long', { ...BASE, mcp_session_id: 's'.repeat(1025) }, 'invalid_envelope'],
    ['null params', { ...BASE, params: null }, 'invalid_envelope'],
    ['array params', { ...BASE, params: [1] }, 'invalid_envelope'],
    ['an unknown transport', { ...BASE, transport: 'smoke' }, 'invalid_envelope'],
    ['a null field', { ...BASE, mcp_token: null }, 'invalid_envelope'],
    ['an unknown field', { ...BASE, extra: 1 }, 'invalid_envelope'],
    ['an array body', [BASE], 'invalid_envelope'],
    ['a string body', 'ping', 'invalid_envelope'],
  ];
  for (const [name, body, expected] of cases) {
    it(`${expected === 'ok' ? 'accepts' : 'refuses'} ${name}`, () => {
      assert.equal(verdict(body), expected);
    });
  }

  it('words a refusal after the schema, naming the field', () => {
    assert.throws(() => parseEnvelope({ ...BASE, id: 'i'.repeat(257) }), /Invalid proxy envelope: id /);
  });

  it('yields the same message either way', () => {
    const envelope = parseEnvelope({ ...BASE, params: { name: 'echo' } });
    assert.deepEqual(envelopeMessage(envelope), {
      jsonrpc: '2.0',
      method: 'ping',
      id: 1,
      params: { name: 'echo' },
    });
  });

  it('the fast path and the schema agree on every envelope of a generated table', () => {
    // Each field takes values at and around its bounds, of the wrong type, and absent; the
    // fast path may only accept what the schema accepts (with the same data), and it must
    // accept every plain envelope the schema accepts (or it is no fast path).
    const long = (n: number) => 'a'.repeat(n);
    const values: Record<string, unknown[]> = {
      mcp_server_url: [undefined, '', 'http://x/', long(2048), long(2049), 1, null],
      server: [undefined, '', 's', long(64), long(65), [], null],
      mcp_token: [undefined, '', 't', long(8192), long(8193), 7],
      mcp_session_id: [undefined, '', 'abc', 'a b', 'é', long(1024), long(1025), 3],
      mcp_protocol_version: [undefined, '2025-06-18', '', 'x\ty', long(1025)],
      transport: [undefined, 'auto', 'sse', 'streamable-http', 'websocket', 'stdio', 'smoke', 1],
      jsonrpc: ['2.0', '1.0', 2, undefined],
      id: [
        undefined,
        0,
        -1.5,
        '',
        long(256),
        long(257),
        null,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        {},
        true,
      ],
      method: ['ping', '', long(256), long(257), undefined, 5],
      params: [undefined, {}, { a: 1 }, null, [1], 'p', Object.create(null)],
      extra: [undefined, 1],
    };
    // A deterministic walk: every value of every field once against a baseline, then pairs
    // drawn by a fixed linear congruential sequence (no flaky randomness).
    const baseline = { mcp_server_url: 'http://x/', jsonrpc: '2.0', id: 1, method: 'ping' } as Record<
      string,
      unknown
    >;
    const fields = Object.keys(values);
    const bodies: unknown[] = [];
    for (const field of fields) {
      for (const value of values[field] as unknown[]) bodies.push(withField(baseline, field, value));
    }
    let seed = 15;
    const next = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    for (let i = 0; i < 2_000; i++) {
      let body = baseline;
      for (let j = 0; j < 3; j++) {
        const field = fields[next(fields.length)] as string;
        const choices = values[field] as unknown[];
        body = withField(body, field, choices[next(choices.length)]);
      }
      bodies.push(body);
    }
    bodies.push([baseline], 'ping', null, 42, Object.assign(Object.create(null), baseline));
    for (const body of bodies) {
      const fast = plainEnvelope(body);
      const schema = ENVELOPE_SCHEMA.safeParse(body);
      const plain =
        typeof body === 'object' && body !== null && Object.getPrototypeOf(body) === Object.prototype;
      if (fast) {
        assert.ok(schema.success, `fast path accepted what the schema refuses: ${describeBody(body)}`);
        assert.deepEqual(fast.data, schema.data);
      } else if (plain && schema.success && !hasNullPrototypeParams(body)) {
        assert.fail(`the schema accepts a plain envelope the fast path leaves to it: ${describeBody(body)}`);
      }
    }
  });
});

function withField(body: Record<string, unknown>, field: string, value: unknown): Record<string, unknown> {
  const copy = { ...body };
  if (value === undefined) delete copy[field];
  else copy[field] = value;
  return copy;
}

/** The fast path leaves params without Object's prototype to the schema (stricter is allowed). */
function hasNullPrototypeParams(body: unknown): boolean {
  const params = (body as { params?: unknown }).params;
  return typeof params === 'object' && params !== null && Object.getPrototypeOf(params) === null;
}

function describeBody(body: unknown): string {
  return JSON.stringify(body, (_key, value: unknown) =>
    typeof value === 'string' && value.length > 20 ? `${value.slice(0, 8)}…(${value.length})` : value,
  );
}
