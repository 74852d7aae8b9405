/**
 * The MCP conversation every upstream transport must carry through POST /proxy.
 */
import assert from 'node:assert/strict';
import { postProxy, type Reply, type RunningProxy } from './proxy.ts';

/** Runs initialize → initialized → tools, resources, prompts, completion, ping; returns the session id. */
export async function runFullFlow(
  proxy: RunningProxy,
  target: Record<string, string>,
): Promise<{ sessionId: string; replies: Reply[] }> {
  const replies: Reply[] = [];
  let sessionId = '';
  let protocolVersion = '';
  let nextId = 1;
  const call = async (method: string, params?: Record<string, unknown>, notification = false) => {
    const headers: Record<string, string> = {};
    if (sessionId) headers['mcp-session-id'] = sessionId;
    if (protocolVersion) headers['mcp-protocol-version'] = protocolVersion;
    const reply = await postProxy(
      proxy,
      {
        ...target,
        jsonrpc: '2.0',
        method,
        ...(params ? { params } : {}),
        ...(notification ? {} : { id: nextId++ }),
      },
      headers,
    );
    replies.push(reply);
    return reply;
  };

  const init = await call('initialize', {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'proxy-test', version: '1.0.0' },
  });
  assert.equal(init.status, 200, JSON.stringify(init.body));
  assert.equal(init.body.id, 1);
  assert.equal(typeof init.body.result.serverInfo.name, 'string');
  sessionId = init.headers.get('mcp-session-id') ?? '';
  assert.ok(sessionId, 'initialize returns a session id header');
  protocolVersion = init.headers.get('mcp-protocol-version') ?? '';
  assert.equal(protocolVersion, init.body.result.protocolVersion);

  const initialized = await call('notifications/initialized', undefined, true);
  assert.equal(initialized.status, 202);
  assert.equal(initialized.body, undefined);

  const tools = await call('tools/list', {});
  assert.equal(tools.status, 200);
  const names = tools.body.result.tools.map((t: { name: string }) => t.name);
  assert.ok(names.includes('echo') && names.includes('get-sum'), names.join(','));

  const echo = await call('tools/call', { name: 'echo', arguments: { message: 'héllo through the proxy' } });
  assert.equal(echo.status, 200);
  assert.match(echo.body.result.content[0].text, /héllo through the proxy/);

  const sum = await call('tools/call', { name: 'get-sum', arguments: { a: 19, b: 23 } });
  assert.match(sum.body.result.content[0].text, /42/);

  const resources = await call('resources/list', {});
  assert.equal(resources.status, 200);
  const first = resources.body.result.resources[0];
  assert.ok(first?.uri, 'at least one resource');

  const read = await call('resources/read', { uri: first.uri });
  assert.equal(read.status, 200);
  assert.equal(read.body.result.contents[0].uri, first.uri);

  const prompts = await call('prompts/list', {});
  const promptNames = prompts.body.result.prompts.map((p: { name: string }) => p.name);
  assert.ok(promptNames.includes('simple-prompt'), promptNames.join(','));

  const prompt = await call('prompts/get', { name: 'simple-prompt' });
  assert.equal(prompt.status, 200);
  assert.ok(prompt.body.result.messages.length > 0);

  const completion = await call('completion/complete', {
    ref: { type: 'ref/prompt', name: 'completable-prompt' },
    argument: { name: 'department', value: 'Eng' },
  });
  assert.equal(completion.status, 200, JSON.stringify(completion.body));
  assert.deepEqual(completion.body.result.completion.values, ['Engineering']);

  const ping = await call('ping');
  assert.equal(ping.status, 200);
  assert.deepEqual(ping.body.result, {});

  // An upstream JSON-RPC error passes through unchanged with HTTP 200.
  const unknown = await call('no/such-method', {});
  assert.equal(unknown.status, 200);
  assert.equal(unknown.body.error.code, -32601);

  return { sessionId, replies };
}
