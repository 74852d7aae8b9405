/**
 * Review 10, resumable answers, finding 5: DELETE ends a 2025-era session and forgets its answer
 * log, but a resumable call of that session keeps running (its signal is the proxy's shutdown,
 * not the session's), a resumed stream of it stays open, and when the call goes on logging its
 * events the log is created again (setIfAbsent in virtual/answer-events.ts #write), counted
 * against the principal and kept until the ended session's expiry.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually } from './helpers/eventually.ts';
import { startProxy } from './helpers/proxy.ts';
import { firstEvent, oneMemberConfig, rawClient, startMember } from './helpers/resumable-member.ts';

test("DELETE ends the session's running resumable calls and their resumed streams", async (t) => {
  let started = false;
  let cancelled = false;
  const member = await startMember((mcp) => {
    mcp.registerTool('slow', { description: 'Runs until cancelled (20 s at most).' }, async (extra) => {
      started = true;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 20_000);
        extra.signal.addEventListener('abort', () => {
          cancelled = true;
          clearTimeout(timer);
          resolve();
        });
      });
      return { content: [{ type: 'text', text: 'done' }] };
    });
  });
  t.after(() => member.stop());
  const proxy = await startProxy({
    MCP_PROXY_CONFIG: oneMemberConfig(member.url),
    UPSTREAM_TIMEOUT_MS: '20000',
  });
  t.after(() => proxy.close());
  const raw = rawClient(proxy.url);
  const session = await raw.initialize();
  const leaving = new AbortController();
  t.after(() => leaving.abort());
  const priming = await firstEvent(await raw.call(session, 'slow', 1, leaving.signal));
  await eventually(() => started, { what: 'the call running on the member' });
  leaving.abort();
  const resumed = await raw.resume(session, priming.id as string);
  assert.equal(resumed.status, 200);
  const ended = resumed.text();

  assert.equal((await raw.end(session)).status, 204);
  await eventually(() => cancelled, { what: 'the member call cancelled after DELETE' });
  await ended;
});
