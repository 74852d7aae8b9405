/**
 * Review 7 (credentials), finding CREDS-5: a `search_tools` page runs under the search's own
 * deadline when that is shorter than the list's (`listTimeoutMs`). A member that had not answered
 * that last page when the search's time ran out was remembered as a slow lister
 * (virtual/member-view.ts), and the next plain `tools/list` of the virtual server left it out for
 * 10 s without asking, though it answers well within its own list deadline.
 * Through VirtualServers with a scripted member session (as virtual-search-bounds.test.ts): the
 * member times its pages from the search's deadline, so the last page is the one cut short.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { JsonRpcRequest } from '../src/jsonrpc.ts';
import { UNAVAILABLE_META } from '../src/virtual/member-view.ts';
import { VirtualServers } from '../src/virtual/virtual-servers.ts';

const LIST_TIMEOUT_MS = 1000;
/** The search's deadline in list deadlines (member-view.ts SEARCH_DEADLINE_LISTS). */
const SEARCH_LISTS = 3;

const logger = { warn() {}, info() {}, error() {}, debug() {} } as never;
const caller = { principalKey: 'p', grants: { servers: ['ws'] } };
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

it('a member cut off by a search deadline is not left out of the next list as slow', async () => {
  let searchDeadline = Number.POSITIVE_INFINITY;
  let pages = 0;
  const v = new VirtualServers({
    settings: () =>
      ({
        ws: { separator: '__', toolSearch: true, listTimeoutMs: LIST_TIMEOUT_MS, servers: ['m'] },
      }) as never,
    resolve: async (member, grants) =>
      ({ kind: 'http', url: `http://127.0.0.1/${member}`, name: member, tools: grants.tools }) as never,
    members: {
      listen() {},
      timeoutMs: 5000,
      session: async () => ({ session: {}, initialized: { capabilities: { tools: {} } } }),
      call: async (_owner: unknown, _target: unknown, request: JsonRpcRequest) => {
        pages++;
        const left = searchDeadline - performance.now();
        if (Number.isFinite(left)) {
          // Well within the list's own deadline each time: pages until less than one list deadline
          // of the search is left, then one that outlasts what is left (still under the list's own).
          await delay(
            left > 0.7 * LIST_TIMEOUT_MS
              ? Math.min(left - 0.6 * LIST_TIMEOUT_MS, 0.5 * LIST_TIMEOUT_MS)
              : left + 200,
          );
          return {
            jsonrpc: '2.0',
            id: request.id,
            result: { tools: [{ name: `t${pages}` }], nextCursor: `c${pages}` },
          };
        }
        return { jsonrpc: '2.0', id: request.id, result: { tools: [{ name: 'plain' }] } };
      },
    } as never,
    logger,
  });

  const search = async (id: number) =>
    (await v.handle('ws', {
      caller,
      message: {
        jsonrpc: '2.0',
        id,
        method: 'tools/call',
        params: { name: 'search_tools', arguments: { query: 'plain t' } },
      },
    })) as
      | { result?: { content?: Array<{ text?: string }>; _meta?: Record<string, Array<{ code?: string }>> } }
      | undefined;

  searchDeadline = performance.now() + SEARCH_LISTS * LIST_TIMEOUT_MS;
  const first = await search(1);
  searchDeadline = Number.POSITIVE_INFINITY;
  const cut = first?.result?._meta?.[UNAVAILABLE_META] ?? [];
  assert.ok(
    cut.some((each) => each.code === 'upstream_timeout'),
    `the search's last page was cut short: ${JSON.stringify(first)}`,
  );

  // The member now answers at once: the next search (its lists keyed as the first's) asks it.
  const asked = pages;
  const second = await search(2);
  assert.equal(pages, asked + 1, `the member was not asked: ${JSON.stringify(second)}`);
  assert.match(second?.result?.content?.[0]?.text ?? '', /m__plain/);
  assert.equal(second?.result?._meta, undefined, JSON.stringify(second?.result?._meta));
});
