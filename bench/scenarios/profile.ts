/**
 * @module bench/scenarios/profile
 * Where the proxy's CPU goes: a fresh proxy per path under `node --cpu-prof`, loaded at
 * concurrency 64, stopped gracefully so V8 writes the profile, then summarised.
 */
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type ProfileSummary, summariseProfile } from '../lib/cpuprofile.ts';
import { PROXY_TOKEN, SETTINGS } from '../lib/env.ts';
import { openSession } from '../lib/mcp-http.ts';
import { type Server, startProxy } from '../lib/servers.ts';
import { type RequestSpec, runWrk, writeScript } from '../lib/wrk.ts';
import { proxySession } from './everything.ts';
import { bridgedSpec, checkSpec, mcpSpec, proxySpec } from './paths.ts';
import { measureWs } from './ws.ts';

/** One profiled path. */
export interface ProfileResult {
  readonly path: string;
  readonly file: string;
  readonly summary?: ProfileSummary;
  /** Requests answered during the profiled load (HTTP paths). */
  readonly requests?: number;
  readonly error?: string;
}

/** The paths a profile can be taken of; the bridged one only when BENCH_PATHS names it. */
const PROFILED = ['POST /proxy', '/mcp', 'WS /ws', '/mcp (bridged WS)'] as const;

/**
 * Profiles POST /proxy, /mcp and WS /ws in front of `upstream` (with BENCH_PATHS, those of them
 * it names, and `/mcp (bridged WS)`: `/mcp` to the upstream's WebSocket, a proxy-held session).
 * With `stateful` (server-everything as the upstream), POST /proxy and /mcp each on a session of
 * their own, opened through the profiled proxy.
 */
export async function profilePaths(
  upstream: Server,
  dir: string,
  outDir: string,
  log: (line: string) => void,
  stateful = false,
): Promise<ProfileResult[]> {
  const upstreamUrl = `${upstream.base}/mcp`;
  const results: ProfileResult[] = [];
  const named = PROFILED.filter((path) => SETTINGS.paths.includes(path));
  const chosen = named.length > 0 ? named : PROFILED.slice(0, 3);
  const labelled = (path: string) => (stateful ? `${path} (server-everything, on a session)` : path);
  for (const path of stateful ? chosen.filter((p) => p === 'POST /proxy' || p === '/mcp') : chosen) {
    const profDir = join(outDir, path.replace(/\W+/g, '').toLowerCase());
    mkdirSync(profDir, { recursive: true });
    const spawnedAt = Date.now();
    let loadAt = spawnedAt;
    let requests: number | undefined;
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
        const spec = await specFor(path, proxy.base, upstreamUrl, stateful);
        await checkSpec(`profile ${path}`, spec);
        const script = writeScript(dir, `profile-${path.replace(/\W+/g, '')}`, spec);
        await runWrk(script, spec.url, 64, 1);
        loadAt = Date.now();
        requests = (await runWrk(script, spec.url, 64, seconds)).requests;
      }
    } finally {
      await proxy.proc.stop(15_000);
    }
    // The largest: the entry's re-execution for the compile cache can leave a short profile of
    // the image it replaced.
    const file = readdirSync(profDir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => ({ f, size: statSync(join(profDir, f)).size }))
      .sort((a, b) => b.size - a.size)[0]?.f;
    if (file === undefined) {
      results.push({
        path: labelled(path),
        file: '',
        error: 'no .cpuprofile written (did the proxy exit gracefully?)',
      });
      continue;
    }
    // Start-up (module loading, type stripping) and warm-up are not what a request costs.
    const summary = summariseProfile(join(profDir, file), loadAt - spawnedAt);
    results.push({
      path: labelled(path),
      file: join(profDir, file),
      summary,
      ...(requests === undefined ? {} : { requests }),
    });
    const first = summary.topSelf
      .slice(0, 3)
      .map((e) => `${e.name} ${e.percent.toFixed(1)}%`)
      .join('; ');
    log(`  profile ${path}: ${first}`);
  }
  return results;
}

/** The load of one profiled HTTP path; `stateful`: on a session opened through the proxy. */
async function specFor(
  path: string,
  proxyBase: string,
  upstreamUrl: string,
  stateful: boolean,
): Promise<RequestSpec> {
  if (path === '/mcp (bridged WS)') return bridgedSpec(proxyBase, upstreamUrl);
  if (path === '/mcp') {
    const headers = { 'x-proxy-token': PROXY_TOKEN, 'x-mcp-server-url': upstreamUrl };
    return mcpSpec(
      proxyBase,
      upstreamUrl,
      stateful ? await openSession(`${proxyBase}/mcp`, headers) : undefined,
    );
  }
  return proxySpec(proxyBase, upstreamUrl, stateful ? await proxySession(proxyBase, upstreamUrl) : undefined);
}
