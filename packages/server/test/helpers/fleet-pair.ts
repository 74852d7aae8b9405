/**
 * @module test/helpers/fleet-pair
 * Two proxy instances sharing a real redis-server, over a member whose tool `wait` answers once
 * cancelled (virtual server `one`): `running` (optionally reaching Redis through a forwarder
 * that can hold its next SUBSCRIBE) and `elsewhere`. Everything stops when the test ends.
 */
import type { TestContext } from 'node:test';
import { startHoldingForwarder } from './holding-forwarder.ts';
import { type RunningProxy, startProxy } from './proxy.ts';
import { startRedis } from './redis.ts';
import { oneMemberConfig, startWaitingMember, type WaitCalls } from './resumable-member.ts';

/** Two instances, what their member's `wait` saw, and a signal the test's streams leave with. */
export interface FleetPair {
  readonly calls: WaitCalls;
  readonly running: RunningProxy;
  readonly elsewhere: RunningProxy;
  /** Present when `running` reaches Redis through it (`holding`). */
  readonly forwarder?: Awaited<ReturnType<typeof startHoldingForwarder>>;
  readonly leaving: AbortSignal;
}

/** Starts a {@link FleetPair}; `env` is added to both instances' environment. */
export async function startFleetPair(
  t: TestContext,
  options: { readonly holding?: boolean; readonly env?: Record<string, string> } = {},
): Promise<FleetPair> {
  const member = await startWaitingMember();
  t.after(() => member.stop());
  const redis = await startRedis();
  const forwarder = options.holding === true ? await startHoldingForwarder(redis.url) : undefined;
  const env = {
    MCP_PROXY_CONFIG: oneMemberConfig(member.url),
    SESSION_SECRET: 'fleet-pair-test-session-secret-0123456789',
    UPSTREAM_TIMEOUT_MS: '20000',
    ...options.env,
  };
  const running = await startProxy({ ...env, REDIS_URL: forwarder?.url ?? redis.url });
  const elsewhere = await startProxy({ ...env, REDIS_URL: redis.url });
  const leaving = new AbortController();
  t.after(async () => {
    leaving.abort();
    forwarder?.release();
    await Promise.all([running.close(), elsewhere.close()]);
    await forwarder?.stop();
    await redis.stop();
  });
  return {
    calls: member.calls,
    running,
    elsewhere,
    ...(forwarder === undefined ? {} : { forwarder }),
    leaving: leaving.signal,
  };
}
