/**
 * The first `initialize` to a server never seen before probes it: an HTTP+SSE (2024-11-05) server
 * refuses the Streamable HTTP POST, and the proxy bridges it over its SSE transport instead. That
 * answer must be the only one: the probe once took the sent reply (a thenable that settles with
 * `undefined`) for "not answered" and relayed the refusal into it as well (issue 14, finding 13).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startEverything } from './helpers/everything.ts';
import { connectClient, urlTarget } from './helpers/mcp-client.ts';
import { startProxy } from './helpers/proxy.ts';

test('a first initialize to an HTTP+SSE server is answered once, with no second reply', async (t) => {
  const upstream = await startEverything('sse');
  t.after(() => upstream.stop());
  const proxy = await startProxy({ HOST: '127.0.0.1' });
  t.after(() => proxy.close());

  // No X-MCP-Transport: the proxy has to find out what the server speaks.
  const connected = await connectClient(proxy, urlTarget(upstream.url));
  t.after(() => connected.close());
  const tools = await connected.client.listTools();
  assert.ok(tools.tools.length > 0, 'the bridged session works');

  const twice = proxy.logs.filter((line) => /already sent/i.test(line));
  assert.deepEqual(twice, [], 'no reply was sent twice');
  const failures = proxy.logs.filter((line) => /"level":(40|50|60)/.test(line));
  assert.deepEqual(failures, [], 'nothing was logged at warn or above');
});
