/**
 * The POST /proxy envelope: the hand-checked common case (issue #10) accepts exactly what the
 * schema accepts, at every boundary, and anything else still gets the schema's wording.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { envelopeMessage, parseEnvelope } from '../src/surfaces/proxy/envelope.ts';

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
});
