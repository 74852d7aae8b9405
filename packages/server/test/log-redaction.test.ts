import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { redactUrl } from '../src/logger.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

const PROXY_SECRET = 'proxy-secret-ENCODEDLEAK-5c2e9f01ab';
const MCP_SECRET = 'mcp-secret-ENCODEDLEAK-0d4b7a66e2';

/** Every byte percent-encoded: how a caller could hide a token from a literal match. */
function encodeAll(text: string): string {
  return [...Buffer.from(text)].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');
}

/** Spellings of a token-bearing name that the query parsers decode to the real name (or might). */
const SPELLINGS = (name: string) => [
  name.replace('_', '%5F'),
  name.replace('_', '%5f'),
  encodeAll(name),
  name.replace('_', '%255F'),
  name.toUpperCase(),
  name.replace('_', '%5F').toUpperCase(),
];

/** Status of a /ws handshake (101 when it upgraded). */
async function handshake(url: string): Promise<number> {
  const ws = new WebSocket(url, ['mcp']);
  return new Promise((resolve) => {
    ws.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => {
      resolve(101);
      ws.terminate();
    });
    ws.once('error', () => resolve(0));
  });
}

describe('token redaction judges a query name by what the parsers make of it', () => {
  let proxy: RunningProxy;
  before(async () => {
    proxy = await startProxy({
      PROXY_TOKEN: PROXY_SECRET,
      LOG_LEVEL: 'trace',
      ALLOW_QUERY_TOKEN: 'true',
      WS_ALLOW_MISSING_ORIGIN: 'true',
    });
  });
  after(async () => {
    await proxy?.close();
  });

  it('keeps encoded proxy_token and mcp_token values out of the /ws and /mcp logs', async () => {
    const ws = proxy.url.replace('http', 'ws');
    // An encoded name is accepted as the token (so it is a secret): the handshake gets past
    // authentication to the unknown server (404), not 401.
    assert.equal(await handshake(`${ws}/ws?proxy%5Ftoken=${PROXY_SECRET}&server=nope`), 404);
    const mcp = await fetch(`${proxy.url}/mcp?proxy%5Ftoken=${PROXY_SECRET}`, { method: 'DELETE' });
    await mcp.arrayBuffer();
    assert.notEqual(mcp.status, 401, 'the encoded name is accepted as the token on /mcp');

    for (const spelling of SPELLINGS('proxy_token')) {
      for (const value of [PROXY_SECRET, encodeAll(PROXY_SECRET)]) {
        await handshake(`${ws}/ws?${spelling}=${value}&server=nope`);
        await (await fetch(`${proxy.url}/mcp?${spelling}=${value}`, { method: 'DELETE' })).arrayBuffer();
      }
    }
    for (const spelling of SPELLINGS('mcp_token')) {
      for (const value of [MCP_SECRET, encodeAll(MCP_SECRET)]) {
        await handshake(`${ws}/ws?proxy_token=${PROXY_SECRET}&server=nope&${spelling}=${value}`);
        await (
          await fetch(`${proxy.url}/mcp?${spelling}=${value}`, {
            method: 'DELETE',
            headers: { 'x-proxy-token': PROXY_SECRET },
          })
        ).arrayBuffer();
      }
    }

    const text = proxy.logs.join('\n');
    assert.ok(text.includes('websocket refused') && text.includes('"msg":"request"'), 'lines were captured');
    for (const secret of [PROXY_SECRET, MCP_SECRET]) {
      for (const form of [secret, encodeAll(secret), encodeAll(secret).toUpperCase(), 'ENCODEDLEAK']) {
        assert.ok(!text.includes(form), `${form} absent from the logs`);
      }
    }
  });

  it('leaves other parameters alone', () => {
    assert.equal(redactUrl('/ws?server=a&transport=sse'), '/ws?server=a&transport=sse');
    assert.equal(redactUrl('/mcp'), '/mcp');
    assert.equal(redactUrl('/ws?server=a&proxy%5Ftoken=x&b'), '/ws?server=a&proxy%5Ftoken=[REDACTED]&b');
    assert.equal(redactUrl('/ws?my_token_name=x'), '/ws?my_token_name=x');
  });
});
