/**
 * @module bench/run
 * `npm run bench`: measures the proxy's start-up memory; the proxy against a fast hand-written
 * upstream answering with JSON and with an event stream (direct, nginx, POST /proxy, /mcp, and
 * WS /ws), the relay between instances (issue 19), a realistic upstream, peer proxies, idle-connection memory and a leak check;
 * profiles it; prints a Markdown report (event-stream and start-up figures set against earlier
 * runs' results files) and writes JSON, Markdown and an SVG chart to bench/results/. It prints
 * figures and asserts nothing timed.
 *
 * Knobs: see lib/env.ts (`BENCH_QUICK=1` for a smoke run, `BENCH_ONLY=http,ws` for sections).
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHART_TITLE, renderChart } from './lib/chart.ts';
import { eventStreamConcurrency, LOAD_CORES, RESULTS, SETTINGS, wanted } from './lib/env.ts';
import { OIDC_AUDIENCE, startBenchIssuer } from './lib/oidc-issuer.ts';
import { findPrevious } from './lib/previous.ts';
import { pinSelf, stopAll } from './lib/procs.ts';
import { renderReport } from './lib/report.ts';
import { type BenchResults, describeMachine } from './lib/results.ts';
import {
  type Server,
  startEverything,
  startFastUpstream,
  startNginx,
  startNodeFloor,
  startProxy,
} from './lib/servers.ts';
import { ensureSystemTools } from './lib/tools.ts';
import { type RequestSpec, runWrk, writeScript } from './lib/wrk.ts';
import { measureEverything } from './scenarios/everything.ts';
import { leakCheck } from './scenarios/leak.ts';
import { leakPaths } from './scenarios/leak-paths.ts';
import { type LoadConfig, measurePoints } from './scenarios/load.ts';
import { measureIdle } from './scenarios/memory.ts';
import {
  bridgedSpec,
  checkSpec,
  directSpec,
  mcpSpec,
  mintToken,
  proxySpec,
  withToken,
} from './scenarios/paths.ts';
import { measurePeers } from './scenarios/peers.ts';
import { profilePaths } from './scenarios/profile.ts';
import { measureRelay } from './scenarios/relay.ts';
import { measureStartup } from './scenarios/startup.ts';
import { measureWs } from './scenarios/ws.ts';

/** The bridged path's name (opt-in through BENCH_PATHS). */
const BRIDGED = '/mcp (bridged WS)';

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
async function section(name: string, body: () => Promise<void>, run = wanted(name)): Promise<void> {
  if (!run) return;
  try {
    await body();
  } catch (error) {
    const message = (error as Error).message.split('\n').slice(0, 4).join(' ');
    results.notes.push(`section ${name} failed: ${message}`);
    log(`section ${name} failed: ${(error as Error).stack ?? message}`);
  }
}

try {
  const upstream = await startFastUpstream(SETTINGS.upstreamAnswers);
  const upstreamUrl = `${upstream.base}/mcp`;
  await section('startup', async () => {
    log('start-up memory (fresh proxies, default configuration)');
    results.startup = await measureStartup(upstreamUrl, SETTINGS.baselineRoot, log);
  });
  const nginx = tools.nginx ? await startNginx(upstream.port, dir) : undefined;
  if (!nginx) results.notes.push('nginx is not installed: the nginx path was skipped.');
  // Issue 17: an OIDC bearer token from a loopback issuer, against the static and minted ones.
  const oidc = await startBenchIssuer();
  const proxy = await startProxy({ env: { OIDC_ISSUER: oidc.issuer, OIDC_AUDIENCE } });
  const floor = await startNodeFloor(upstreamUrl);
  // Issue 17: a minted user token on the same paths, against the static token's cost.
  const minted = await mintToken(proxy.base);
  const baseline = SETTINGS.baselineRoot
    ? await startProxy({ root: SETTINGS.baselineRoot, name: 'proxy (baseline)' })
    : undefined;
  /**
   * Every HTTP path to `target` (an upstream's /mcp URL), through that upstream's nginx and floor;
   * `bridged`: `/mcp` specs in front of the upstream's WebSocket (a proxy-held session), when wanted.
   */
  const pathsTo = (
    target: string,
    via: { nginx: Server | undefined; floor: Server },
    bridged?: { proxy: RequestSpec; baseline: RequestSpec | undefined },
  ): Array<Omit<LoadConfig, 'concurrency' | 'group'>> => [
    { path: 'direct', spec: directSpec(target) },
    ...(via.nginx
      ? [{ path: 'nginx', spec: directSpec(`${via.nginx.base}/mcp`), serverPids: via.nginx.pids }]
      : []),
    { path: 'node floor', spec: directSpec(`${via.floor.base}/mcp`), serverPids: via.floor.pids },
    { path: 'POST /proxy', spec: proxySpec(proxy.base, target), serverPids: proxy.pids },
    ...(baseline
      ? [
          {
            path: 'POST /proxy (baseline)',
            spec: proxySpec(baseline.base, target),
            serverPids: baseline.pids,
          },
        ]
      : []),
    {
      path: 'POST /proxy (minted)',
      spec: withToken(proxySpec(proxy.base, target), minted, 'header'),
      serverPids: proxy.pids,
    },
    { path: '/mcp', spec: mcpSpec(proxy.base, target), serverPids: proxy.pids },
    {
      path: '/mcp (minted bearer)',
      spec: withToken(mcpSpec(proxy.base, target), minted, 'bearer'),
      serverPids: proxy.pids,
    },
    {
      path: '/mcp (OIDC bearer)',
      spec: withToken(mcpSpec(proxy.base, target), oidc.token, 'bearer'),
      serverPids: proxy.pids,
    },
    ...(baseline
      ? [{ path: '/mcp (baseline)', spec: mcpSpec(baseline.base, target), serverPids: baseline.pids }]
      : []),
    ...(bridged ? [{ path: BRIDGED, spec: bridged.proxy, serverPids: proxy.pids }] : []),
    ...(bridged?.baseline && baseline
      ? [{ path: `${BRIDGED} (baseline)`, spec: bridged.baseline, serverPids: baseline.pids }]
      : []),
  ];
  const pathWanted = (p: { path: string }) =>
    SETTINGS.paths.length === 0 || SETTINGS.paths.includes(p.path.replace(' (baseline)', ''));
  // Issue 16: a bridged session's answers as an event stream the proxy writes itself. Opt-in
  // (BENCH_PATHS names it): its sessions idle out after 5 min, too short for a whole run.
  const bridgedTo = async (target: string) =>
    SETTINGS.paths.includes(BRIDGED)
      ? {
          proxy: await bridgedSpec(proxy.base, target),
          baseline: baseline ? await bridgedSpec(baseline.base, target) : undefined,
        }
      : undefined;
  const paths = pathsTo(upstreamUrl, { nginx, floor }, await bridgedTo(upstreamUrl));
  for (const p of paths) await checkSpec(p.path, p.spec);
  // JIT and connection pools warm before the first measured point.
  for (const p of paths)
    await runWrk(writeScript(dir, `warm-${p.path.replace(/\W+/g, '')}`, p.spec), p.spec.url, 64, 2);

  // The same paths to a second fast upstream that answers with an event stream, with its own nginx
  // and floor; measured interleaved with the http section's JSON rows, so that the comparison
  // between the two is not drift.
  const eventStream = await (async () => {
    if (!wanted('event-stream')) return undefined;
    if (SETTINGS.upstreamAnswers === 'event-stream') {
      results.notes.push(
        'section event-stream skipped: BENCH_UPSTREAM_ANSWERS=event-stream already gives the http section event-stream answers.',
      );
      return undefined;
    }
    try {
      const target = await startFastUpstream('event-stream');
      const via = {
        nginx: tools.nginx ? await startNginx(target.port, dir, 'nginx (event-stream)') : undefined,
        floor: await startNodeFloor(`${target.base}/mcp`),
      };
      const streamPaths = pathsTo(`${target.base}/mcp`, via, await bridgedTo(`${target.base}/mcp`));
      for (const p of streamPaths) {
        const type = await checkSpec(`event-stream ${p.path}`, p.spec);
        // The upstream must really answer with a stream; what each path hands on is worth seeing.
        if (p.path === 'direct' && !type.startsWith('text/event-stream'))
          throw new Error(`the event-stream upstream answered with ${type || 'no content type'}`);
        log(`  event-stream ${p.path} answers with ${type || 'no content type'}`);
      }
      for (const p of streamPaths.filter(pathWanted))
        await runWrk(writeScript(dir, `warm-es-${p.path.replace(/\W+/g, '')}`, p.spec), p.spec.url, 64, 2);
      return { upstream: target, ...via, paths: streamPaths };
    } catch (error) {
      const message = (error as Error).message.split('\n').slice(0, 4).join(' ');
      results.notes.push(`section event-stream failed: ${message}`);
      log(`section event-stream failed: ${(error as Error).stack ?? message}`);
      return undefined;
    }
  })();

  // The Node floor is context, not a target: measured at the ends of the range only.
  const httpConfigs = wanted('http')
    ? SETTINGS.concurrency.flatMap((concurrency) =>
        paths
          .filter((p) => p.path !== 'node floor' || concurrency === 1 || concurrency === 64)
          .filter(pathWanted)
          .map((p): LoadConfig => ({ ...p, group: 'http', concurrency, upstreamPids: upstream.pids })),
      )
    : [];
  const streamConfigs = eventStream
    ? eventStreamConcurrency().flatMap((concurrency) =>
        eventStream.paths.filter(pathWanted).map(
          (p): LoadConfig => ({
            ...p,
            group: 'event-stream',
            concurrency,
            upstreamPids: eventStream.upstream.pids,
          }),
        ),
      )
    : [];
  await section(
    httpConfigs.length > 0 ? 'http' : 'event-stream',
    async () => {
      log(
        [
          httpConfigs.length > 0
            ? `HTTP paths against the fast upstream (${SETTINGS.upstreamAnswers} answers)`
            : '',
          streamConfigs.length > 0
            ? 'HTTP paths against the fast upstream answering with an event stream'
            : '',
        ]
          .filter((line) => line !== '')
          .join(', interleaved with '),
      );
      // Same concurrency next to each other: a JSON row and its event-stream row see the same drift.
      const configs = [...httpConfigs, ...streamConfigs].sort((a, b) => a.concurrency - b.concurrency);
      results.points.push(...(await measurePoints(configs, dir, log)));
    },
    httpConfigs.length + streamConfigs.length > 0,
  );
  await section('ws', async () => {
    log('WS /ws');
    results.points.push(...(await measureWs(proxy, upstream, upstreamUrl, log)));
  });
  await section('relay', async () => {
    log('relay: a held session on its owner, and relayed through a second instance (Redis)');
    results.points.push(...(await measureRelay(upstream, [1, 64], dir, log)));
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
  await section('workers', async () => {
    // Issue 19: one port served by WORKERS=2 processes against one process, both on every core
    // (the load generator and the upstream share them: this is the 2-core machine's real figure).
    // Rate limits count (never refuse), so the shared counters' cost is in the figures: in the
    // process for one, through the primary's store over IPC for two.
    const cores = `0-${results.machine.nproc - 1}`;
    log(`WORKERS=1 vs WORKERS=2 (proxy on cores ${cores})`);
    const counting = { RATE_LIMIT_PER_TOKEN: '1000000000', RATE_LIMIT_PER_IP: '1000000000' };
    const one = await startProxy({ name: 'proxy (WORKERS=1)', cores, env: { ...counting, WORKERS: '1' } });
    const two = await startProxy({ name: 'proxy (WORKERS=2)', cores, env: { ...counting, WORKERS: '2' } });
    try {
      const configs = ['POST /proxy', '/mcp'].flatMap((path) =>
        [
          { suffix: ' (WORKERS=1)', server: one },
          { suffix: ' (WORKERS=2)', server: two },
        ].map(
          ({ suffix, server }): LoadConfig => ({
            group: 'workers',
            path: `${path}${suffix}`,
            concurrency: 64,
            spec: path === '/mcp' ? mcpSpec(server.base, upstreamUrl) : proxySpec(server.base, upstreamUrl),
            serverPids: server.pids,
            upstreamPids: upstream.pids,
          }),
        ),
      );
      for (const c of configs) await checkSpec(`workers ${c.path}`, c.spec);
      for (const c of configs)
        await runWrk(writeScript(dir, `warm-w-${c.path.replace(/\W+/g, '')}`, c.spec), c.spec.url, 64, 2);
      results.points.push(...(await measurePoints(configs, dir, log)));
    } finally {
      await one.stop();
      await two.stop();
    }
  });
  await section('everything', async () => {
    log('server-everything');
    const everything = await startEverything();
    try {
      results.points.push(...(await measureEverything(everything, proxy, [64], dir, log, baseline)));
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
  await eventStream?.floor.stop();
  await eventStream?.nginx?.stop();
  await eventStream?.upstream.stop();

  await section('memory', async () => {
    log('idle connections');
    results.idle.push(await measureIdle('ws', upstream, log));
    results.idle.push(await measureIdle('mcp', upstream, log));
  });
  await section('profile', async () => {
    log('CPU profiles');
    const profileDir = join(RESULTS, 'cpuprofiles');
    rmSync(profileDir, { recursive: true, force: true });
    if (SETTINGS.profileUpstream === 'everything') {
      const everything = await startEverything();
      try {
        results.profiles = await profilePaths(everything, dir, profileDir, log, true);
      } finally {
        await everything.stop();
      }
    } else {
      results.profiles = await profilePaths(upstream, dir, profileDir, log);
    }
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

if (results.startup || results.points.some((p) => p.group === 'event-stream')) {
  results.previous = findPrevious(results, RESULTS, SETTINGS.previous);
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
