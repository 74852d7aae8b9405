/**
 * The set-up the era suites repeat in most describe blocks: start one upstream fixture and a
 * proxy before the block's tests, stop both after them. Call it at the top of a `describe`;
 * read `upstream` and `proxy` inside the tests (they exist once the block's `before` ran).
 */
import { after, before } from 'node:test';
import { type RunningProxy, startProxy } from './proxy.ts';

/** An upstream fixture: anything that can be stopped. */
export interface Stoppable {
  stop(): Promise<void>;
}

/** The running pair of one describe block. */
export interface ProxiedUpstream<U extends Stoppable> {
  readonly upstream: U;
  readonly proxy: RunningProxy;
}

/**
 * Registers the block's `before` (start `startUpstream()`, then a proxy with `env`) and `after`
 * (close the proxy, then stop the upstream). Hooks registered after this call run after the
 * start; `after` hooks registered before it run before the stop (node:test keeps their order).
 */
export function proxiedUpstream<U extends Stoppable>(
  startUpstream: () => Promise<U>,
  env: Record<string, string> = {},
): ProxiedUpstream<U> {
  let running: { upstream: U; proxy?: RunningProxy } | undefined;
  before(async () => {
    running = { upstream: await startUpstream() };
    running.proxy = await startProxy(env);
  });
  after(async () => {
    await running?.proxy?.close();
    await running?.upstream.stop();
  });
  const started = () => {
    if (running?.proxy === undefined) throw new Error('proxiedUpstream: read before the block started');
    return running as Required<typeof running>;
  };
  return {
    get upstream() {
      return started().upstream;
    },
    get proxy() {
      return started().proxy;
    },
  };
}
