import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { JsonRpcRequest } from '../src/jsonrpc.ts';
import { MAX_SEARCH_ANSWER_CHARS, rankTools } from '../src/virtual/tool-search.ts';
import { VirtualServers } from '../src/virtual/virtual-servers.ts';

// A hostile query (120k distinct words) and a hostile member description (16 KB) must not block
// the event loop: the query and each tool's text are ranked only up to a bounded size.
it('rankTools stays fast for a huge query against a huge description', () => {
  const tools = [
    { name: 'member__big', description: 'q'.repeat(16_384) },
    ...Array.from({ length: 20 }, (_, i) => ({
      name: `member__tool_number_${i}`,
      description: 'Does an ordinary thing with ordinary inputs and returns an ordinary result. '.repeat(4),
    })),
  ];
  const query = Array.from({ length: 120_000 }, (_, i) => `q${i.toString(36)}z`).join(' ');
  const started = performance.now();
  rankTools(tools, query, 10);
  const took = performance.now() - started;
  assert.ok(took < 250, `rankTools took ${Math.round(took)} ms`);
});

it('rankTools still finds a word near the start of the query', () => {
  const tools = [{ name: 'gh__create_issue', description: 'Creates an issue' }];
  const found = rankTools(tools, 'create issue', 5);
  assert.equal(found.length, 1);
});

// Search mode against a hostile member, through VirtualServers with fake member sessions.
const logger = { warn() {}, info() {}, error() {}, debug() {} } as never;
const base = { separator: '__', toolSearch: true, listTimeoutMs: 5000 };
function virtualWith(settings: object, answer: (request: JsonRpcRequest) => Promise<unknown>) {
  return new VirtualServers({
    settings: () => settings as never,
    resolve: async (member, grants) =>
      ({ kind: 'http', url: `http://127.0.0.1/${member}`, name: member, tools: grants.tools }) as never,
    members: {
      listen() {},
      timeoutMs: 5000,
      session: async () => ({ session: {}, initialized: { capabilities: { tools: {} } } }),
      call: async (_owner: unknown, _target: unknown, request: JsonRpcRequest) => answer(request),
    } as never,
    logger,
  });
}
const search = (query: string, limit?: number) => ({
  caller: { principalKey: 'p', grants: { servers: ['ws'] } },
  message: {
    jsonrpc: '2.0' as const,
    id: 1,
    method: 'tools/call',
    params: { name: 'search_tools', arguments: { query, ...(limit === undefined ? {} : { limit }) } },
  },
});

it('search_tools against a member paging forever stops at the overall deadline', async () => {
  let pages = 0;
  const v = virtualWith({ ws: { ...base, listTimeoutMs: 50, servers: ['m'] } }, async () => {
    pages++;
    await new Promise((resolve) => setTimeout(resolve, 30));
    return { jsonrpc: '2.0', id: 1, result: { tools: [{ name: `t${pages}` }], nextCursor: `c${pages}` } };
  });
  const started = performance.now();
  const answer = await v.handle('ws', search('zzz'));
  assert.ok(answer !== undefined && 'result' in answer);
  assert.ok(pages <= 20, `${pages} pages`);
  assert.ok(performance.now() - started < 1000, `took ${performance.now() - started} ms`);
});

it('search_tools answers stay small when a member lists giant tools', async () => {
  let pages = 0;
  const big = 'match '.repeat(40_000);
  const schema = { type: 'object', properties: { a: { type: 'string', description: big } } };
  const v = virtualWith({ ws: { ...base, servers: ['m'] } }, async () => {
    pages++;
    const tools = [{ name: `t${pages}`, description: big, inputSchema: schema }];
    return { jsonrpc: '2.0', id: 1, result: { tools, ...(pages < 60 ? { nextCursor: `c${pages}` } : {}) } };
  });
  const answer = (await v.handle('ws', search('match', 50))) as unknown as {
    result: { content: [{ text: string }] };
  };
  const text = answer.result.content[0].text;
  assert.ok(text.length <= MAX_SEARCH_ANSWER_CHARS, `answer ${text.length} chars`);
  assert.ok((JSON.parse(text) as { tools: unknown[] }).tools.length > 0);
});
