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
import { checkSpec, mcpSpec, proxySpec } from './paths.ts';
import { measureWs } from './ws.ts';

/** One profiled path. */
export interface ProfileResult {
  readonly path: string;
  readonly file: string;
  readonly summary?: ProfileSummary;
  readonly error?: string;
}

/** Profiles POST /proxy, /mcp and WS /ws in front of `upstream`. */
export async function profilePaths(
  upstream: Server,
  dir: string,
  outDir: string,
  log: (line: string) => void,
): Promise<ProfileResult[]> {
  const upstreamUrl = `${upstream.base}/mcp`;
  const results: ProfileResult[] = [];
  for (const path of ['POST /proxy', '/mcp', 'WS /ws'] as const) {
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
        const spec = path === '/mcp' ? mcpSpec(proxy.base, upstreamUrl) : proxySpec(proxy.base, upstreamUrl);
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
