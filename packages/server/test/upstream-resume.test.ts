/**
 * Review 10 RESUME-2 and RESUME-9: how the proxy resumes a member's answer stream. It waits
 * 100 ms at least, whatever `retry:` the member asks for; and it sends the last event id in a
 * `Last-Event-ID` header, which carries Latin-1 alone: an id beyond it fails the call as the
 * member's protocol error (upstream_protocol_error), not as the HTTP client's exception.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startPollingMember } from './helpers/polling-member.ts';
import { startProxy } from './helpers/proxy.ts';
import { oneMemberConfig, rawClient } from './helpers/resumable-member.ts';

/** The answer of a call to `spin` through a virtual server over `memberUrl`. */
async function callSpin(memberUrl: string, t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const proxy = await startProxy({
    MCP_PROXY_CONFIG: oneMemberConfig(memberUrl),
    UPSTREAM_TIMEOUT_MS: '10000',
  });
  t.after(() => proxy.close());
  const raw = rawClient(proxy.url);
  const session = await raw.initialize();
  return (await raw.call(session, 'spin')).text();
}

test('an event id no header can carry fails the call as the member protocol error', async (t) => {
  const member = await startPollingMember((res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end('id: \u2603-1\nretry: 0\ndata: \n\n');
  });
  t.after(() => member.stop());
  const answer = await callSpin(member.url, t);
  assert.match(answer, /"code":-33012/, answer);
  assert.deepEqual(member.resumedFrom, []);
});

test('an event id in Latin-1 is resumed from', async (t) => {
  const member = await startPollingMember((res, lastEventId, callId) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    if (lastEventId === undefined) res.end('id: \u00e9-1\nretry: 0\ndata: \n\n');
    else {
      const result = { content: [{ type: 'text', text: `resumed from ${lastEventId}` }] };
      res.end(`id: \u00e9-2\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: callId, result })}\n\n`);
    }
  });
  t.after(() => member.stop());
  const answer = await callSpin(member.url, t);
  assert.deepEqual(member.resumedFrom, ['\u00e9-1']);
  assert.match(answer, /resumed from \u00e9-1/, answer);
});

test('a member asking for retry: 0 is resumed after 100 ms at least, while it delivers messages', async (t) => {
  const member = await startPollingMember((res, _lastEventId, callId) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const n = member.resumedFrom.length;
    const log = { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: n } };
    const result = { content: [{ type: 'text', text: 'done' }] };
    const last = n === 5 ? `data: ${JSON.stringify({ jsonrpc: '2.0', id: callId, result })}\n\n` : '';
    res.end(`id: e${n}\nretry: 0\ndata: ${JSON.stringify(log)}\n\n${last}`);
  });
  t.after(() => member.stop());
  const answer = await callSpin(member.url, t);
  assert.match(answer, /"text":"done"/, answer);
  assert.equal(member.resumedAt.length, 5);
  const gaps = member.resumedAt.slice(1).map((at, i) => at - (member.resumedAt[i] as number));
  // Timers fire no earlier than asked, give or take the millisecond they are rounded to.
  for (const gap of gaps) assert.ok(gap >= 99, `resumed ${gap} ms after the previous resumption`);
});
