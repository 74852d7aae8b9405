/**
 * Review 10, resumable answers, finding 8: a resumable call is cancelled only by
 * notifications/cancelled (leaving is not cancelling), but the calls it can cancel are this
 * instance's alone (virtual/virtual-servers.ts #inFlight): a client that left a call on one
 * instance and, as resumability invites, goes on with another sharing the store cannot cancel
 * it; the call runs on until UPSTREAM_TIMEOUT_MS.
 */
import { test } from 'node:test';
import { eventually } from './helpers/eventually.ts';
import { startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';
import { firstEvent, oneMemberConfig, rawClient, startMember } from './helpers/resumable-member.ts';

const SECRET = 'review10-resume-session-secret-0123456789';

test('a resumable call left on one instance is cancelled by notifications/cancelled sent to another', async (t) => {
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
  const redis = await startRedis();
  const env = {
    MCP_PROXY_CONFIG: oneMemberConfig(member.url),
    REDIS_URL: redis.url,
    SESSION_SECRET: SECRET,
    UPSTREAM_TIMEOUT_MS: '20000',
  };
  const first = await startProxy(env);
  t.after(() => first.close());
  const second = await startProxy(env);
  t.after(() => second.close());
  // After the proxies close (hooks run in the order they were added): their close is then
  // quick (with Redis gone it is bounded, close-store-gone.test.ts, but takes a moment).
  t.after(() => redis.stop());

  const session = await rawClient(first.url).initialize();
  const leaving = new AbortController();
  t.after(() => leaving.abort());
  await firstEvent(await rawClient(first.url).call(session, 'slow', 7, leaving.signal));
  await eventually(() => started, { what: 'the call running on the member' });
  leaving.abort();

  const other = rawClient(second.url);
  const cancel = await fetch(other.url, {
    method: 'POST',
    headers: other.headers(session),
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7 } }),
  });
  await cancel.text();
  await eventually(() => cancelled, { what: 'the member call cancelled from the other instance' });
});
