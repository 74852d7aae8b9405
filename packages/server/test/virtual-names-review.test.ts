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
  assert.equal(virtualServerProblem({ ws: { ...base, servers: ['a_', 'a'] } }, { a: {}, a_: {} })?.[0], 'virtualServers.ws.servers');
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
