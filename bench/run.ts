/**
 * @module bench/run
 * `npm run bench`: measures the proxy against a fast hand-written upstream (direct, nginx,
 * POST /proxy, /mcp, WS /ws), a realistic upstream, peer proxies, idle-connection memory and a
 * leak check; profiles it; prints a Markdown report and writes JSON, Markdown and an SVG chart
 * to bench/results/. It prints figures and asserts nothing timed.
 *
 * Knobs: see lib/env.ts (`BENCH_QUICK=1` for a smoke run, `BENCH_ONLY=http,ws` for sections).
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHART_TITLE, renderChart } from './lib/chart.ts';
import { LOAD_CORES, RESULTS, SETTINGS, wanted } from './lib/env.ts';
import { pinSelf, stopAll } from './lib/procs.ts';
import { renderReport } from './lib/report.ts';
import { type BenchResults, describeMachine } from './lib/results.ts';
import { startEverything, startFastUpstream, startNginx, startNodeFloor, startProxy } from './lib/servers.ts';
import { ensureSystemTools } from './lib/tools.ts';
import { runWrk, writeScript } from './lib/wrk.ts';
import { measureEverything } from './scenarios/everything.ts';
import { leakCheck } from './scenarios/leak.ts';
import { leakPaths } from './scenarios/leak-paths.ts';
import { type LoadConfig, measurePoints } from './scenarios/load.ts';
import { measureIdle } from './scenarios/memory.ts';
import { checkSpec, directSpec, mcpSpec, mintToken, proxySpec, withToken } from './scenarios/paths.ts';
import { measurePeers } from './scenarios/peers.ts';
import { profilePaths } from './scenarios/profile.ts';
import { measureWs } from './scenarios/ws.ts';

const started = Date.now();
const elapsed = () => (Date.now() - started) / 1000;
const log = (line: string) => process.stderr.write(`[${elapsed().toFixed(0).padStart(3)}s] ${line}\n`);

if (process.platform !== 'linux')
  throw new Error('the bench reads /proc and uses taskset: it runs on Linux only');
if (Number(process.versions.node.split('.')[0]) < 24)
  throw new Error('run the bench with Node 24 (npm run bench)');
const machine = describeMachine();
pinSelf(LOAD_CORES);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping every process the bench started`);
    void stopAll().finally(() => process.exit(130));
  });
}

const tools = ensureSystemTools(log);
const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-bench-'));
const results: BenchResults = {
  startedAt: new Date(started).toISOString(),
  durationSeconds: 0,
  machine,
  settings: SETTINGS,
  points: [],
  idle: [],
  profiles: [],
  peerNotes: [],
  notes: [],
};
log(`machine: ${results.machine.nproc} cores, ${results.machine.cpuModel}, Node ${results.machine.node}`);

/** Runs one section; a failure becomes a note in the report instead of ending the run. */
async function section(name: string, body: () => Promise<void>): Promise<void> {
  if (!wanted(name)) return;
  try {
    await body();
  } catch (error) {
    const message = (error as Error).message.split('\n').slice(0, 4).join(' ');
    results.notes.push(`section ${name} failed: ${message}`);
    log(`section ${name} failed: ${(error as Error).stack ?? message}`);
  }
}

try {
  const upstream = await startFastUpstream();
  const upstreamUrl = `${upstream.base}/mcp`;
  const nginx = tools.nginx ? await startNginx(upstream.port, dir) : undefined;
  if (!nginx) results.notes.push('nginx is not installed: the nginx path was skipped.');
  const proxy = await startProxy();
  const floor = await startNodeFloor(upstreamUrl);
  // Issue 17: a minted user token on the same paths, against the static token's cost.
  const minted = await mintToken(proxy.base);
  const baseline = SETTINGS.baselineRoot
    ? await startProxy({ root: SETTINGS.baselineRoot, name: 'proxy (baseline)' })
    : undefined;
  const paths: Array<Omit<LoadConfig, 'concurrency' | 'group'>> = [
    { path: 'direct', spec: directSpec(upstreamUrl) },
    ...(nginx ? [{ path: 'nginx', spec: directSpec(`${nginx.base}/mcp`), serverPids: nginx.pids }] : []),
    { path: 'node floor', spec: directSpec(`${floor.base}/mcp`), serverPids: floor.pids },
    { path: 'POST /proxy', spec: proxySpec(proxy.base, upstreamUrl), serverPids: proxy.pids },
    ...(baseline
      ? [
          {
            path: 'POST /proxy (baseline)',
            spec: proxySpec(baseline.base, upstreamUrl),
            serverPids: baseline.pids,
          },
        ]
      : []),
    {
      path: 'POST /proxy (minted)',
      spec: withToken(proxySpec(proxy.base, upstreamUrl), minted, 'header'),
      serverPids: proxy.pids,
    },
    { path: '/mcp', spec: mcpSpec(proxy.base, upstreamUrl), serverPids: proxy.pids },
    {
      path: '/mcp (minted bearer)',
      spec: withToken(mcpSpec(proxy.base, upstreamUrl), minted, 'bearer'),
      serverPids: proxy.pids,
    },
    ...(baseline
      ? [{ path: '/mcp (baseline)', spec: mcpSpec(baseline.base, upstreamUrl), serverPids: baseline.pids }]
      : []),
  ];
  for (const p of paths) await checkSpec(p.path, p.spec);
  // JIT and connection pools warm before the first measured point.
  for (const p of paths)
    await runWrk(writeScript(dir, `warm-${p.path.replace(/\W+/g, '')}`, p.spec), p.spec.url, 64, 2);

  await section('http', async () => {
    log('HTTP paths against the fast upstream');
    // The Node floor is context, not a target: measured at the ends of the range only.
    const configs = SETTINGS.concurrency.flatMap((concurrency) =>
      paths
        .filter((p) => p.path !== 'node floor' || concurrency === 1 || concurrency === 64)
        .filter(
          (p) => SETTINGS.paths.length === 0 || SETTINGS.paths.includes(p.path.replace(' (baseline)', '')),
        )
        .map((p): LoadConfig => ({ ...p, group: 'http', concurrency, upstreamPids: upstream.pids })),
    );
    results.points.push(...(await measurePoints(configs, dir, log)));
  });
  await section('ws', async () => {
    log('WS /ws');
    results.points.push(...(await measureWs(proxy, upstream, upstreamUrl, log)));
  });
  await section('info', async () => {
    log('LOG_LEVEL=info');
    const infoProxy = await startProxy({ logLevel: 'info', name: 'proxy (info)' });
    const infoBaseline = SETTINGS.baselineRoot
      ? await startProxy({ logLevel: 'info', name: 'proxy (info, baseline)', root: SETTINGS.baselineRoot })
      : undefined;
    const proxies = [
      { suffix: '', server: infoProxy },
      ...(infoBaseline ? [{ suffix: ' (baseline)', server: infoBaseline }] : []),
    ];
    const configs = ['POST /proxy', '/mcp'].flatMap((path) =>
      proxies.map(
        ({ suffix, server }): LoadConfig => ({
          group: 'info',
          path: `${path}${suffix}`,
          concurrency: 64,
          spec: path === '/mcp' ? mcpSpec(server.base, upstreamUrl) : proxySpec(server.base, upstreamUrl),
          serverPids: server.pids,
          upstreamPids: upstream.pids,
        }),
      ),
    );
    for (const c of configs) await checkSpec(`info ${c.path}`, c.spec);
    results.points.push(...(await measurePoints(configs, dir, log)));
    await infoProxy.stop();
    await infoBaseline?.stop();
  });
  await section('everything', async () => {
    log('server-everything');
    const everything = await startEverything();
    try {
      results.points.push(...(await measureEverything(everything, proxy, [64], dir, log)));
    } catch (error) {
      results.notes.push(`server-everything run failed: ${(error as Error).message}`);
      log(`  failed: ${(error as Error).message}`);
    } finally {
      await everything.stop();
    }
  });
  await section('peers', async () => {
    log('peer proxies');
    const peers = await measurePeers(upstream, [64], dir, log);
    results.points.push(...peers.points);
    results.peerNotes.push(...peers.notes);
  });
  await proxy.stop();
  await baseline?.stop();
  await floor.stop();
  await nginx?.stop();

  await section('memory', async () => {
    log('idle connections');
    results.idle.push(await measureIdle('ws', upstream, log));
    results.idle.push(await measureIdle('mcp', upstream, log));
  });
  await section('profile', async () => {
    log('CPU profiles');
    const profileDir = join(RESULTS, 'cpuprofiles');
    rmSync(profileDir, { recursive: true, force: true });
    results.profiles = await profilePaths(upstream, dir, profileDir, log);
  });
  await section('leakpaths', async () => {
    log('RSS growth per path');
    results.leakPaths = await leakPaths(upstream, dir, log);
  });
  await section('leak', async () => {
    log(`leak check: up to ${SETTINGS.leakRequests.toLocaleString('en')} requests, within the time budget`);
    results.leak = await leakCheck(
      upstream,
      SETTINGS.leakRequests,
      started + SETTINGS.budgetSeconds * 1000,
      dir,
      log,
    );
  });
} finally {
  await stopAll();
  results.durationSeconds = elapsed();
}

mkdirSync(RESULTS, { recursive: true });
const stamp = results.startedAt.replace(/[:.]/g, '-');
const report = renderReport(results);
const http = results.points.filter((p) => p.group === 'http');
const outputs: Array<[string, string]> = [
  [`${stamp}.json`, `${JSON.stringify(results, null, 2)}\n`],
  [`${stamp}.md`, report],
  ...(http.length > 0 ? [[`${stamp}.svg`, renderChart(http, CHART_TITLE)] as [string, string]] : []),
];
for (const [name, text] of outputs) {
  writeFileSync(join(RESULTS, name), text);
  copyFileSync(join(RESULTS, name), join(RESULTS, `latest${name.slice(name.indexOf('.'))}`));
}
rmSync(dir, { recursive: true, force: true });
process.stdout.write(report);
log(
  `done in ${Math.round(results.durationSeconds)} s; results in ${RESULTS}${stamp}.{json,md${http.length > 0 ? ',svg' : ''}}`,
);
