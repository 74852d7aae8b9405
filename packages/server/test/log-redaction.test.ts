import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { redactUrl } from '../src/observability/logger.ts';
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

  it('redacts a token after # as the router reads it: as the start of the query', async () => {
    const port = Number(new URL(proxy.url).port);
    const raw = (path: string) =>
      new Promise<string>((resolve) => {
        const socket = connect(port, '127.0.0.1', () =>
          socket.write(`DELETE ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`),
        );
        let answer = '';
        socket.on('data', (chunk) => {
          answer += String(chunk);
        });
        socket.on('close', () => resolve(answer.split('\r\n')[0] ?? ''));
        socket.on('error', () => resolve(answer));
      });
    const before = proxy.logs.length;
    // Authenticated (not 401): the part after # is read as the query, so it holds a secret.
    assert.doesNotMatch(await raw(`/mcp#proxy_token=${PROXY_SECRET}`), / 401 /);
    await raw(`/mcp?x=1#&proxy_token=${PROXY_SECRET}`);
    await raw(`/mcp#a=1&mcp_token=${MCP_SECRET}`);
    const lines = proxy.logs.slice(before).filter((line) => line.includes('"msg":"request"'));
    assert.equal(lines.length, 3);
    for (const line of lines) {
      assert.ok(!line.includes('ENCODEDLEAK'), line);
      assert.match(line, /\[REDACTED\]/);
    }
  });

  it('leaves other parameters alone', () => {
    assert.equal(redactUrl('/ws?server=a&transport=sse'), '/ws?server=a&transport=sse');
    assert.equal(redactUrl('/mcp'), '/mcp');
    assert.equal(redactUrl('/ws?server=a&proxy%5Ftoken=x&b'), '/ws?server=a&proxy%5Ftoken=[REDACTED]&b');
    assert.equal(redactUrl('/ws?my_token_name=x'), '/ws?my_token_name=x');
    assert.equal(redactUrl('/mcp#proxy_token=x'), '/mcp#proxy_token=[REDACTED]');
  });
});
