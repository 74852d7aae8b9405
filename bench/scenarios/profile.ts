/**
 * @module bench/scenarios/profile
 * Where the proxy's CPU goes: a fresh proxy per path under `node --cpu-prof`, loaded at
 * concurrency 64, stopped gracefully so V8 writes the profile, then summarised.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type ProfileSummary, summariseProfile } from '../lib/cpuprofile.ts';
import { SETTINGS } from '../lib/env.ts';
import { type Server, startProxy } from '../lib/servers.ts';
import { runWrk, writeScript } from '../lib/wrk.ts';
import { bridgedSpec, checkSpec, mcpSpec, proxySpec } from './paths.ts';
import { measureWs } from './ws.ts';

/** One profiled path. */
export interface ProfileResult {
  readonly path: string;
  readonly file: string;
  readonly summary?: ProfileSummary;
  readonly error?: string;
}

/** The paths a profile can be taken of; the bridged one only when BENCH_PATHS names it. */
const PROFILED = ['POST /proxy', '/mcp', 'WS /ws', '/mcp (bridged WS)'] as const;

/**
 * Profiles POST /proxy, /mcp and WS /ws in front of `upstream` (with BENCH_PATHS, those of them
 * it names, and `/mcp (bridged WS)`: `/mcp` to the upstream's WebSocket, a proxy-held session).
 */
export async function profilePaths(
  upstream: Server,
  dir: string,
  outDir: string,
  log: (line: string) => void,
): Promise<ProfileResult[]> {
  const upstreamUrl = `${upstream.base}/mcp`;
  const results: ProfileResult[] = [];
  const named = PROFILED.filter((path) => SETTINGS.paths.includes(path));
  for (const path of named.length > 0 ? named : PROFILED.slice(0, 3)) {
    const profDir = join(outDir, path.replace(/\W+/g, '').toLowerCase());
    mkdirSync(profDir, { recursive: true });
    const spawnedAt = Date.now();
    let loadAt = spawnedAt;
    const proxy = await startProxy({
      name: `proxy (profile ${path})`,
      nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profDir}`],
    });
    try {
      const seconds = Math.max(4, SETTINGS.seconds + 2);
      if (path === 'WS /ws') {
        loadAt = Date.now() + 1_500; // after the load script's start-up and warm-up
        await measureWs(proxy, upstream, upstreamUrl, () => {}, [{ sockets: 64, inflight: 1 }], 1);
      } else {
        const spec =
          path === '/mcp (bridged WS)'
            ? await bridgedSpec(proxy.base, upstreamUrl)
            : path === '/mcp'
              ? mcpSpec(proxy.base, upstreamUrl)
              : proxySpec(proxy.base, upstreamUrl);
        await checkSpec(`profile ${path}`, spec);
        const script = writeScript(dir, `profile-${path.replace(/\W+/g, '')}`, spec);
        await runWrk(script, spec.url, 64, 1);
        loadAt = Date.now();
        await runWrk(script, spec.url, 64, seconds);
      }
    } finally {
      await proxy.proc.stop(15_000);
    }
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) {
      results.push({ path, file: '', error: 'no .cpuprofile written (did the proxy exit gracefully?)' });
      continue;
    }
    // Start-up (module loading, type stripping) and warm-up are not what a request costs.
    const summary = summariseProfile(join(profDir, file), loadAt - spawnedAt);
    results.push({ path, file: join(profDir, file), summary });
    const first = summary.topSelf
      .slice(0, 3)
      .map((e) => `${e.name} ${e.percent.toFixed(1)}%`)
      .join('; ');
    log(`  profile ${path}: ${first}`);
  }
  return results;
}
