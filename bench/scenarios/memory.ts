/**
 * @module bench/scenarios/memory
 * Proxy RSS per idle connection: idle `WS /ws` sockets and idle `/mcp` sessions bridged to a
 * WebSocket upstream, at each count in `SETTINGS.idleCounts`, on a fresh proxy each. The
 * figure is (RSS at N − RSS at a small warm baseline) ÷ (N − baseline): what one more idle
 * connection costs, runtime and module memory excluded.
 */
import { join } from 'node:path';
import { LOAD_CORES, NODE, ORIGIN, PROXY_TOKEN, ROOT, SETTINGS } from '../lib/env.ts';
import { rssBytes, sleep, startPinned } from '../lib/procs.ts';
import { type Server, startProxy } from '../lib/servers.ts';

/** RSS at one count. */
export interface IdleSample {
  readonly count: number;
  readonly opened: number;
  readonly failed: number;
  readonly rssBytes: number;
  /** Bytes per connection over the warm baseline. */
  readonly perConnectionBytes: number;
}

/** One mode's figures. */
export interface IdleResult {
  readonly mode: 'ws' | 'mcp';
  readonly baselineCount: number;
  readonly baselineRssBytes: number;
  readonly freshRssBytes: number;
  readonly samples: IdleSample[];
  readonly error?: string;
}

const BASELINE = 100;
/** Enough for 10k sessions (the defaults cap them at 1,000 total and 100 per token). */
const LIMITS = {
  MAX_SESSIONS: '100000',
  MAX_SESSIONS_PER_TOKEN: '100000',
  SESSION_IDLE_TIMEOUT_MS: '3600000',
};

/** Opens idle connections of one kind on a fresh proxy and samples its RSS. */
export async function measureIdle(
  mode: 'ws' | 'mcp',
  upstream: Server,
  log: (line: string) => void,
): Promise<IdleResult> {
  const proxy = await startProxy({ env: LIMITS, name: `proxy (idle ${mode})` });
  const freshRssBytes = rssBytes(proxy.proc.pid);
  const upstreamWs = `ws://127.0.0.1:${upstream.port}/ws`;
  const options =
    mode === 'ws'
      ? {
          mode,
          url: `ws://127.0.0.1:${proxy.port}/ws?mcp_server_url=${encodeURIComponent(`${upstream.base}/mcp`)}`,
          token: PROXY_TOKEN,
          origin: ORIGIN,
        }
      : { mode, url: `${proxy.base}/mcp`, token: PROXY_TOKEN, origin: ORIGIN, upstream: upstreamWs };
  const client = startPinned(NODE, [join(ROOT, 'bench/clients/idle-clients.ts'), JSON.stringify(options)], {
    name: `idle ${mode} clients`,
    cores: LOAD_CORES,
    captureStdout: true,
    stdin: true,
  });
  const openTo = async (total: number) => {
    client.send(`open ${total}`);
    const line = await client.waitForLine((l) => l.startsWith(`OPENED `) && sum(l) >= total, 300_000);
    const [, opened, failed] = line.split(' ').map(Number);
    return { opened: opened ?? 0, failed: failed ?? 0 };
  };
  const settledRss = async () => {
    await sleep(2_000);
    return rssBytes(proxy.proc.pid);
  };
  try {
    await openTo(BASELINE);
    const baselineRssBytes = await settledRss();
    const samples: IdleSample[] = [];
    for (const count of SETTINGS.idleCounts) {
      const { opened, failed } = await openTo(count);
      const rss = await settledRss();
      const perConnectionBytes = (rss - baselineRssBytes) / Math.max(1, opened - BASELINE);
      samples.push({ count, opened, failed, rssBytes: rss, perConnectionBytes });
      log(
        `  idle ${mode}: ${opened} open (${failed} failed), RSS ${(rss / 2 ** 20).toFixed(1)} MiB, ` +
          `${(perConnectionBytes / 1024).toFixed(1)} KiB each`,
      );
    }
    return { mode, baselineCount: BASELINE, baselineRssBytes, freshRssBytes, samples };
  } catch (error) {
    return {
      mode,
      baselineCount: BASELINE,
      baselineRssBytes: 0,
      freshRssBytes,
      samples: [],
      error: `${(error as Error).message}\n${client.stderrTail()}`.trim(),
    };
  } finally {
    client.send('quit');
    await client.stop();
    await proxy.stop();
  }
}

function sum(line: string): number {
  const [, opened, failed] = line.split(' ').map(Number);
  return (opened ?? 0) + (failed ?? 0);
}
