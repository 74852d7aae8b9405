import assert from 'node:assert/strict';
import { it } from 'node:test';
import { virtualServerProblem } from '../src/config/virtual-servers.ts';
import type { JsonRpcRequest } from '../src/jsonrpc.ts';
import { visibleTools } from '../src/policy/grants.ts';
import { memberName } from '../src/virtual/member-names.ts';
import { VirtualServers } from '../src/virtual/virtual-servers.ts';

const logger = { warn() {}, info() {}, error() {}, debug() {} } as never;
const base = { separator: '__', toolSearch: false, listTimeoutMs: 5000 };
type Answer = (request: JsonRpcRequest) => unknown;

/** A virtual server over fake members: `answers[member](request)` is the member's answer. */
function virtualWith(
  settings: object,
  answers: Record<string, Answer>,
  calls: Array<{ member: string; request: JsonRpcRequest }> = [],
) {
  return new VirtualServers({
    settings: () => settings as never,
    resolve: async (member, grants) =>
      ({
        kind: 'http',
        url: `http://127.0.0.1/${member}`,
        name: member,
        tools: visibleTools(undefined, grants.tools),
      }) as never,
    members: {
      listen() {},
      timeoutMs: 5000,
      session: async () => ({
        session: {},
        initialized: { capabilities: { tools: {}, prompts: {}, resources: {} } },
      }),
      call: async (_owner: unknown, target: { name: string }, request: JsonRpcRequest) => {
        calls.push({ member: target.name, request });
        return (answers[target.name] as Answer)(request);
      },
    } as never,
    logger,
  });
}

it('refuses members "a" and "a_" with separator "__" (both would list a___x)', () => {
  const problem = virtualServerProblem({ ws: { ...base, servers: ['a', 'a_'] } }, { a: {}, a_: {} });
  assert.match(problem?.[1] ?? '', /tool names of "a" and "a_" could collide/);
  assert.equal(
    virtualServerProblem({ ws: { ...base, servers: ['a_', 'a'] } }, { a: {}, a_: {} })?.[0],
    'virtualServers.ws.servers',
  );
});

it('a name two members could claim resolves to neither', () => {
  assert.equal(memberName('a___x', ['a', 'a_'], '__'), undefined);
  assert.deepEqual(memberName('a___x', ['a'], '__'), { member: 'a', name: '_x' });
});

it("a prefixed tool grant for github does not grant slack's tool literally named github__create_issue", async () => {
  const calls: Array<{ member: string; request: JsonRpcRequest }> = [];
  const ok = () => ({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'ran' }] } });
  const v = virtualWith({ ws: { ...base, servers: ['github', 'slack'] } }, { github: ok, slack: ok }, calls);
  const caller = { principalKey: 'p', grants: { servers: ['ws'], tools: ['github__create_issue'] } };
  const call = (name: string) =>
    v.handle('ws', { caller, message: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name } } });
  const refused = await call('slack__github__create_issue');
  assert.ok(refused !== undefined && 'error' in refused);
  assert.equal(calls.length, 0);
  const granted = await call('github__create_issue');
  assert.ok(granted !== undefined && 'result' in granted);
  assert.deepEqual(
    calls.map(({ member, request }) => [member, request.params?.name]),
    [['github', 'create_issue']],
  );
});

it('a cursor tells nothing of hidden members and is good only for the principal it was given to', async () => {
  const page = (name: string) => () => ({
    jsonrpc: '2.0',
    id: 1,
    result: { tools: [{ name, inputSchema: { type: 'object' } }] },
  });
  // b answers only once the first page is given, so that page holds a's tools alone (a page
  // holds every member that answered before the first one still running).
  let answerB = () => {};
  const bMayAnswer = new Promise<void>((resolve) => {
    answerB = resolve;
  });
  const v = virtualWith(
    { ws: { ...base, servers: ['a', 'secret', 'b', 'secret2'] } },
    { a: page('x'), secret: page('s'), b: () => bMayAnswer.then(page('y')), secret2: page('z') },
  );
  const caller = { principalKey: 'p', grants: { servers: ['ws', 'a', 'b'] } };
  const list = (who: typeof caller, cursor?: string) =>
    v.handle('ws', {
      caller: who,
      message: {
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/list',
        ...(cursor === undefined ? {} : { params: { cursor } }),
      },
    }) as Promise<{ result?: { tools: Array<{ name: string }>; nextCursor?: string }; error?: unknown }>;
  const first = await list(caller);
  answerB();
  assert.deepEqual(
    first.result?.tools.map((tool) => tool.name),
    ['a__x'],
  );
  const cursor = first.result?.nextCursor as string;
  const payload = cursor.slice('mcpp-v1.'.length, cursor.lastIndexOf('.'));
  assert.deepEqual(JSON.parse(Buffer.from(payload, 'base64url').toString()), [1]);
  const second = await list(caller, cursor);
  assert.deepEqual(
    second.result?.tools.map((tool) => tool.name),
    ['b__y'],
  );
  assert.equal(second.result?.nextCursor, undefined);
  // Forged positions, and another principal's cursor, are invalid cursors.
  const forged = `mcpp-v1.${Buffer.from(JSON.stringify([3])).toString('base64url')}`;
  assert.ok('error' in (await list(caller, forged)));
  assert.ok('error' in (await list(caller, `${forged}.${cursor.slice(cursor.lastIndexOf('.') + 1)}`)));
  assert.ok('error' in (await list({ ...caller, principalKey: 'q' }, cursor)));
});

it('a hidden tool of a member the principal has not signed in to is unknown, not a sign-in', async () => {
  const asked: string[] = [];
  const v = new VirtualServers({
    settings: () => ({ ws: { ...base, servers: ['files'] } }) as never,
    resolve: async (member, grants) =>
      ({
        kind: 'http',
        url: 'http://127.0.0.1/files',
        name: member,
        tools: visibleTools(undefined, grants.tools),
      }) as never,
    members: {
      listen() {},
      timeoutMs: 5000,
      session: async () => assert.fail('no session'),
      call: async () => assert.fail('no call'),
    } as never,
    logger,
    credentials: {
      enabled: true,
      supply: async () => {
        asked.push('supply');
        throw new Error('the broker was asked');
      },
      renewed: async () => undefined,
      refused: async (_p, _t, refusal) => refusal,
    },
  });
  const caller = { principalKey: 'p', grants: { servers: ['ws'], tools: ['files__read'] } };
  const answer = await v.handle('ws', {
    caller,
    message: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'files__delete' } },
  });
  assert.ok(answer !== undefined && 'error' in answer);
  assert.match(answer.error.message, /Unknown tool: files__delete/);
  assert.deepEqual(asked, []);
});
