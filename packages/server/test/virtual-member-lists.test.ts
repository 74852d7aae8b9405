/**
 * Listing a virtual server's members: lists spend no sign-in offers, slow members are asked
 * together (one list deadline, not one each), and a member cut off by a search's own deadline is
 * not taken for slow.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { JsonRpcRequest } from '../src/jsonrpc.ts';
import { UNAVAILABLE_META } from '../src/virtual/merged-lists.ts';
import { VirtualServers } from '../src/virtual/virtual-servers.ts';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { eventually } from './helpers/eventually.ts';
import { everythingStdio } from './helpers/everything.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { freePort } from './helpers/net.ts';
import { type OAuthWorld, startOAuthWorld } from './helpers/oauth-world.ts';
import { postProxy, type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

/**
 * Review 6 (virtual servers), finding 1: listing a virtual server spends the principal's
 * sign-in offers. Every `tools/list` (and every page of every search) that meets a member the
 * user has not signed in to yet starts a new upstream sign-in (`broker.required`), and each one
 * counts against the per-principal, per-server offer cap (30 per 10 minutes). A client that
 * merely lists a few dozen times (reconnects, list refreshes) is then refused the sign-in it
 * needs: the member's tool call answers `rate_limited` instead of `upstream_auth_required` with
 * an `authorizeUrl`, for up to 10 minutes.
 */
describe('review6 virtual 1: listing does not use up the sign-in offers', () => {
  const ALICE = 'alice-review6-virtual-token-0123456789';
  const APP = 'http://app.example';
  /** More lists than the per-server offer cap (SIGN_INS_PER_PRINCIPAL = 30). */
  const LISTS = 35;

  let world: OAuthWorld;
  let proxy: RunningProxy;
  let dir: string;
  let id = 1;
  const call = (method: string, params: Record<string, unknown>) =>
    postProxy(
      { url: proxy.url, token: ALICE },
      { server: 'workspace', jsonrpc: '2.0', id: id++, method, params },
      { origin: APP },
    );

  before(async () => {
    const clock = new ManualClock();
    const port = await freePort();
    world = await startOAuthWorld({ clock, accessTokenTtl: 600 });
    dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-review6-virtual-1-'));
    writeFileSync(
      join(dir, 'proxy.json'),
      JSON.stringify({
        servers: {
          files: { url: world.upstream.url, transport: 'streamable-http' },
          everything: everythingStdio(),
        },
        virtualServers: { workspace: { servers: ['files', 'everything'] } },
      }),
    );
    proxy = await startProxy(
      {
        PORT: String(port),
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        OAUTH_BROKER: 'true',
        PROXY_TOKENS: ALICE,
        CORS_ORIGINS: APP,
        MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
      },
      { clock },
    );
  });
  after(async () => {
    await proxy?.close();
    await world?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('still offers the sign-in on a call after many lists', async () => {
    const codes: string[] = [];
    for (let n = 0; n < LISTS; n++) {
      const list = await call('tools/list', {});
      assert.equal(list.status, 200, JSON.stringify(list.body));
      const meta = list.body.result._meta?.['io.github.mcp-proxy/unavailable'] as
        | Array<{ server: string; code: string }>
        | undefined;
      codes.push(meta?.find((each) => each.server === 'files')?.code ?? 'listed');
    }
    // The member is not signed in to: it is left out of every list as needing a sign-in.
    assert.deepEqual(new Set(codes), new Set(['upstream_auth_required']), codes.join(','));
    const refused = await call('tools/call', { name: 'files__whoami', arguments: {} });
    assert.equal(refused.body.error?.data?.code, 'upstream_auth_required', JSON.stringify(refused.body));
    assert.ok(String(refused.body.error.data.authorizeUrl).includes('/oauth/start/'));
  });
});

/**
 * Review 6 (virtual servers), finding 2: slow members stall a list one after the other. A list
 * page asks its members in turn and waits up to `listTimeoutMs` for each before it moves on, so
 * with k members that do not answer `tools/list` the first page (with the healthy member's
 * tools) takes k x `listTimeoutMs`, and a `search_tools` — documented to start no page after
 * 3 x `listTimeoutMs` — takes as long, since one "page" walks every slow member. Twelve slow
 * members at the default 5 s hold every list past a client's 60 s request timeout: the healthy
 * members can no longer be listed at all.
 */
describe('review6 virtual 2: slow members do not add up', () => {
  /** Answers initialize, holds tools/list for ever. */
  const HELD_STDIO = fileURLToPath(new URL('./fixtures/held-stdio.ts', import.meta.url));
  const SLOW = ['slow1', 'slow2', 'slow3', 'slow4', 'slow5', 'slow6'];
  const LIST_TIMEOUT_MS = 1_000;

  let proxy: RunningProxy;
  let dir: string;
  let id = 1;
  const call = (server: string, method: string, params: Record<string, unknown>) =>
    postProxy({ url: proxy.url, token: TEST_TOKEN }, { server, jsonrpc: '2.0', id: id++, method, params });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-review6-virtual-2-'));
    const held = { command: process.execPath, args: [HELD_STDIO, dir], env: compileCacheEnv() };
    const members = [...SLOW, 'everything'];
    writeFileSync(
      join(dir, 'proxy.json'),
      JSON.stringify({
        servers: {
          ...Object.fromEntries(SLOW.map((name) => [name, held])),
          everything: everythingStdio(),
        },
        virtualServers: {
          workspace: { servers: members, listTimeoutMs: LIST_TIMEOUT_MS },
          searchable: { servers: members, listTimeoutMs: LIST_TIMEOUT_MS, toolSearch: true },
        },
      }),
    );
    proxy = await startProxy({ MCP_PROXY_CONFIG: join(dir, 'proxy.json') });
    // Every member opened (held-stdio answers initialize at once, everything once it has
    // started): what is timed below is the lists. The slow members are then remembered as slow
    // for this principal in `workspace` (the first test), not yet in `searchable` (the second:
    // they are asked again, together).
    await eventually(
      async () => {
        const list = await call('workspace', 'tools/list', {});
        const tools = (list.body.result?.tools ?? []) as Array<{ name: string }>;
        return tools.some((tool) => tool.name.startsWith('everything__'));
      },
      { timeoutMs: 60_000, what: 'the everything member to be listed' },
    );
  });
  after(async () => {
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives the healthy member’s page within about one list deadline, not one per slow member', async () => {
    const started = performance.now();
    const list = await call('workspace', 'tools/list', {});
    const took = performance.now() - started;
    assert.equal(list.status, 200, JSON.stringify(list.body));
    const names = (list.body.result.tools as Array<{ name: string }>).map((tool) => tool.name);
    assert.ok(
      names.some((name) => name.startsWith('everything__')),
      names.join(','),
    );
    // Six slow members asked in turn cost >= 6 s; asked together, about 1 s.
    assert.ok(took < 3 * LIST_TIMEOUT_MS, `the first page took ${Math.round(took)} ms`);
  });

  it('search_tools keeps its documented bound of 3 list deadlines', async () => {
    const started = performance.now();
    const found = await call('searchable', 'tools/call', {
      name: 'search_tools',
      arguments: { query: 'echo' },
    });
    const took = performance.now() - started;
    assert.equal(found.status, 200, JSON.stringify(found.body));
    assert.match(found.body.result.content[0].text, /everything__echo/);
    assert.ok(took < 3 * LIST_TIMEOUT_MS + 1_000, `the search took ${Math.round(took)} ms`);
  });
});

/**
 * Review 7 (credentials), finding CREDS-5: a `search_tools` page runs under the search's own
 * deadline when that is shorter than the list's (`listTimeoutMs`). A member that had not answered
 * that last page when the search's time ran out was remembered as a slow lister
 * (virtual/member-view.ts), and the next plain `tools/list` of the virtual server left it out for
 * 10 s without asking, though it answers well within its own list deadline.
 * Through VirtualServers with a scripted member session (as virtual-search-bounds.test.ts): the
 * member times its pages from the search's deadline, so the last page is the one cut short.
 */
describe('a search deadline and the members it cuts off', () => {
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
        | {
            result?: { content?: Array<{ text?: string }>; _meta?: Record<string, Array<{ code?: string }>> };
          }
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
});
