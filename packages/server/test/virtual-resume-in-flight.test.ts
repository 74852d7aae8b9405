/**
 * Review 10, resumable answers, finding 3: a resumable call goes on after its client left, but
 * its in-flight slot (IN_FLIGHT_PER_TOKEN, IN_FLIGHT_TOTAL) is given back when the response
 * closes (limits/in-flight-hooks.ts), so a client that POSTs a tools/call and drops the
 * connection at once keeps any number of member calls running: the in-flight caps no longer
 * bound what one principal makes the proxy and its members do.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually } from './helpers/eventually.ts';
import { startProxy } from './helpers/proxy.ts';
import { firstEvent, oneMemberConfig, rawClient, startMember } from './helpers/resumable-member.ts';

test('calls that outlive their connection still count against the in-flight cap', async (t) => {
  let running = 0;
  let most = 0;
  const member = await startMember((mcp) => {
    mcp.registerTool('slow', { description: 'Runs until cancelled (20 s at most).' }, async (extra) => {
      running++;
      most = Math.max(most, running);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 20_000);
        extra.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      running--;
      return { content: [{ type: 'text', text: 'done' }] };
    });
  });
  t.after(() => member.stop());
  const proxy = await startProxy({
    MCP_PROXY_CONFIG: oneMemberConfig(member.url),
    IN_FLIGHT_PER_TOKEN: '2',
    UPSTREAM_TIMEOUT_MS: '20000',
  });
  t.after(() => proxy.close());
  const raw = rawClient(proxy.url);
  const session = await raw.initialize();
  let admitted = 0;
  for (let n = 1; n <= 5; n++) {
    const leaving = new AbortController();
    const response = await raw.call(session, 'slow', n, leaving.signal);
    if (response.status !== 200) {
      await response.text();
      continue;
    }
    admitted++;
    await firstEvent(response);
    // Wait for the member to run it, then leave (leaving is not cancelling).
    await eventually(() => running >= admitted, { what: `call ${n} running on the member` });
    leaving.abort();
  }
  assert.ok(most <= 2, `one principal had ${most} calls running with IN_FLIGHT_PER_TOKEN=2`);
});
