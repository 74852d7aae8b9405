/**
 * @module bench/lib/report
 * The Markdown report printed at the end of a run (and saved next to the JSON): every table
 * shows medians with min–max over the repetitions.
 */

import { RELAY_GROUP, RELAY_PATHS } from '../scenarios/relay.ts';
import type { AnswerMode } from './env.ts';
import { previousPoint } from './previous.ts';
import type { BenchResults } from './results.ts';
import { med, type Point, spread } from './stats.ts';
import { findPoint, judgeTargets } from './targets.ts';

const ms = (us: number) => (Number.isFinite(us) ? (us / 1000).toFixed(us < 10_000 ? 2 : 1) : 'n/a');
const int = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en') : 'n/a');
const signed = (v: number) => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${Math.round(v)}` : 'n/a');
const ratio = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : 'n/a');
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

function rate(point: Point): string {
  const s = spread(point.runs.map((r) => r.rps));
  return `${int(s.median)} (${int(s.min)}–${int(s.max)})`;
}

function cpu(point: Point | undefined): string {
  if (!point || point.runs[0]?.cpuUs === undefined) return '—';
  return `${int(med(point, 'cpuUs'))} (${int(med(point, 'cpuSysUs'))} sys)`;
}

function errors(point: Point): string {
  const total = point.runs.reduce((sum, r) => sum + r.errors, 0);
  return total > 0 ? ` ⚠ ${total} errors` : '';
}

function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** Renders the whole report. */
export function renderReport(results: BenchResults): string {
  const { points, machine, settings } = results;
  const out: string[] = [];
  out.push(
    `Machine: ${machine.nproc} cores, ${machine.cpuModel}, ${machine.memoryGiB} GiB RAM, Node ${machine.node}, ` +
      `${machine.os}, Linux ${machine.kernel}; ${machine.wrk}; nginx ${machine.nginx}.`,
    `Run: ${settings.repeats} repetitions × ${settings.seconds} s per point (after ${settings.warmupSeconds} s warm-up), ` +
      `interleaved; proxy + upstream pinned to core 0, load generator to core 1. ` +
      `Started ${results.startedAt}, took ${Math.round(results.durationSeconds)} s.`,
  );
  const foreign = spread(points.flatMap((p) => p.runs.map((r) => r.foreignPct)));
  if (Number.isFinite(foreign.median)) {
    out.push(
      `Other load on the server core during measured runs (busy time not ours, e.g. other tenants): ` +
        `median ${foreign.median.toFixed(1)}%, max ${foreign.max.toFixed(1)}%.`,
    );
  }
  out.push('');

  if (results.startup && results.startup.length > 0) out.push(...startupSection(results), '');

  const answers = results.settings.upstreamAnswers ?? 'json';
  const http = points.filter((p) => p.group === 'http');
  if (http.length > 0) {
    out.push(`### HTTP, fast upstream (tools/call echo, ${ANSWERS[answers]})`, '');
    out.push(httpTable(points, 'http'), '');
  }

  const eventStream = points.filter((p) => p.group === 'event-stream');
  if (eventStream.length > 0) {
    out.push(
      `### HTTP, fast upstream answering with an event stream (tools/call echo, ${ANSWERS['event-stream']})`,
      '',
    );
    out.push(httpTable(points, 'event-stream'), '');
    out.push(...comparisonSection(results, eventStream), '');
  }

  const ws = points.filter((p) => p.group === 'ws');
  if (ws.length > 0) {
    out.push('### WS /ws (tools/call echo over one socket and many)', '');
    out.push(
      table(
        ['shape', 'msg/s median (min–max)', 'p50 ms', 'p99 ms', 'p99.9 ms', 'proxy CPU µs/msg'],
        ws.map((p) => [
          p.path,
          rate(p) + errors(p),
          ms(med(p, 'p50')),
          ms(med(p, 'p99')),
          ms(med(p, 'p999')),
          int(med(p, 'cpuUs')),
        ]),
      ),
      '',
    );
  }

  const relay = points.filter((p) => p.group === RELAY_GROUP);
  if (relay.length > 0) {
    out.push(
      '### Relay between instances (issue 19): a held `/mcp` session (bridged WebSocket) on its owner vs through a second instance and Redis',
      '',
      'CPU counts both proxies and redis-server; "added" is the relayed row minus the owner row.',
      '',
    );
    out.push(
      table(
        [
          'path',
          'conc.',
          'req/s median (min–max)',
          'p50 ms',
          'p99 ms',
          'CPU µs/req',
          'added µs p50 / p99',
          'added CPU µs/req',
        ],
        relay.map((p) => {
          const own = findPoint(points, RELAY_GROUP, RELAY_PATHS.owner, p.concurrency);
          const isOwner = p.path === RELAY_PATHS.owner;
          return [
            p.path,
            String(p.concurrency),
            rate(p) + errors(p),
            ms(med(p, 'p50')),
            ms(med(p, 'p99')),
            cpu(p),
            isOwner
              ? '—'
              : `${signed(med(p, 'p50') - med(own, 'p50'))} / ${signed(med(p, 'p99') - med(own, 'p99'))}`,
            isOwner ? '—' : int(med(p, 'cpuUs') - med(own, 'cpuUs')),
          ];
        }),
      ),
      '',
    );
  }

  const info = points.filter((p) => p.group === 'info');
  if (info.length > 0) {
    out.push('### LOG_LEVEL=info (one access-log line per request, to /dev/null) vs warn', '');
    out.push(
      table(
        ['path', 'conc.', 'warn req/s', 'info req/s', 'warn CPU µs/req', 'info CPU µs/req'],
        info.map((p) => {
          const warn = findPoint(points, 'http', p.path, p.concurrency);
          return [
            p.path,
            String(p.concurrency),
            int(med(warn, 'rps')),
            rate(p) + errors(p),
            int(med(warn, 'cpuUs')),
            int(med(p, 'cpuUs')),
          ];
        }),
      ),
      '',
    );
  }

  const workers = points.filter((p) => p.group === 'workers');
  if (workers.length > 0) {
    out.push('### WORKERS=2 vs one process (issue 19; proxy on every core, c=64, rate limits counting)', '');
    out.push(
      table(
        ['path', 'req/s', 'CPU µs/req', 'p50 ms', 'p99 ms', '× WORKERS=1 req/s'],
        workers.map((p) => {
          const single = findPoint(
            points,
            'workers',
            p.path.replace('WORKERS=2', 'WORKERS=1'),
            p.concurrency,
          );
          return [
            p.path,
            rate(p) + errors(p),
            int(med(p, 'cpuUs')),
            (med(p, 'p50') / 1000).toFixed(2),
            (med(p, 'p99') / 1000).toFixed(2),
            (med(p, 'rps') / med(single, 'rps')).toFixed(2),
          ];
        }),
      ),
      '',
    );
  }

  const everything = points.filter((p) => p.group === 'everything');
  if (everything.length > 0) {
    out.push('### Realistic upstream: @modelcontextprotocol/server-everything (stateful, SSE answers)', '');
    out.push(
      table(
        [
          'path',
          'conc.',
          'req/s median (min–max)',
          'p50 ms',
          'p99 ms',
          'added µs p50 / p99',
          'proxy (or floor) CPU µs/req (kernel part)',
          'upstream CPU µs/req',
        ],
        everything.map((p) => {
          const direct = findPoint(points, 'everything', 'direct', p.concurrency);
          return [
            p.path,
            String(p.concurrency),
            rate(p) + errors(p),
            ms(med(p, 'p50')),
            ms(med(p, 'p99')),
            p.path === 'direct'
              ? '—'
              : `${signed(med(p, 'p50') - med(direct, 'p50'))} / ${signed(med(p, 'p99') - med(direct, 'p99'))}`,
            p.path === 'direct' ? '—' : cpu(p),
            int(med(p, 'upstreamCpuUs')),
          ];
        }),
      ),
      '',
    );
  }

  const peers = points.filter((p) => p.group.startsWith('peers-'));
  if (peers.length > 0 || results.peerNotes.length > 0) {
    out.push('### Peer proxies', '');
    out.push(
      table(
        [
          'upstream',
          'proxy',
          'conc.',
          'req/s median (min–max)',
          'p50 ms',
          'p99 ms',
          'proxy CPU µs/req',
          'ours ÷ this',
        ],
        peers.map((p) => {
          const ours = points.find(
            (o) =>
              o.group === p.group && o.concurrency === p.concurrency && o.path.startsWith('mcp-proxy (ours)'),
          );
          return [
            p.group === 'peers-stdio' ? 'stdio echo' : 'fast HTTP',
            p.path,
            String(p.concurrency),
            rate(p) + errors(p),
            ms(med(p, 'p50')),
            ms(med(p, 'p99')),
            int(med(p, 'cpuUs')),
            p === ours ? '—' : ratio(med(ours, 'rps') / med(p, 'rps')),
          ];
        }),
      ),
      '',
    );
    for (const note of results.peerNotes) out.push(`- ${note.peer}: ${note.note}`);
    if (results.peerNotes.length > 0) out.push('');
  }

  if (results.idle.length > 0) {
    out.push('### Memory: proxy RSS per idle connection', '');
    const rows: string[][] = [];
    for (const r of results.idle) {
      const kind = r.mode === 'ws' ? 'idle WS /ws socket' : 'idle /mcp session (bridged to a WS upstream)';
      if (r.error) rows.push([kind, '—', '—', '—', `failed: ${r.error.split('\n')[0]}`]);
      for (const s of r.samples) {
        rows.push([
          kind,
          s.count.toLocaleString('en'),
          `${s.opened}${s.failed > 0 ? ` (${s.failed} failed)` : ''}`,
          mib(s.rssBytes),
          `${(s.perConnectionBytes / 1024).toFixed(1)} KiB`,
        ]);
      }
    }
    out.push(
      table(['kind', 'N', 'opened', 'proxy RSS', 'per connection (over a 100-connection baseline)'], rows),
      '',
    );
  }

  if (results.leak) {
    const leak = results.leak;
    out.push(
      '### Leak check (fresh proxy, POST /proxy and /mcp alternating, c=64)',
      '',
      table(
        ['requests', 'proxy RSS', 'live heap after a full GC'],
        leak.samples.map((s) => [
          s.requests.toLocaleString('en'),
          mib(s.rssBytes),
          s.heapBytes === undefined ? '—' : mib(s.heapBytes),
        ]),
      ),
      '',
      `${leak.requests.toLocaleString('en')} requests in ${Math.round(leak.seconds)} s, ${leak.errors} errors; ` +
        `growth after the baseline: ${mib(leak.growthBytes)}.${leak.scaledNote ? ` ${leak.scaledNote}` : ''}`,
      '',
    );
  }

  if (results.leakPaths) {
    out.push('### RSS growth per path (fresh proxy each: 30 s load at c=64, then 35 s idle)', '');
    const seconds =
      results.leakPaths[0]?.samples.map((s, i) =>
        i === 0 ? 'start' : `${i * 5}s${s.idle ? ' idle' : ''}`,
      ) ?? [];
    out.push(
      table(
        ['path', ...seconds],
        results.leakPaths.map((g) => [g.path, ...g.samples.map((s) => mib(s.rssBytes).replace(' MiB', ''))]),
      ),
      '',
      'RSS in MiB; requests served per path: ' +
        results.leakPaths
          .map((g) => `${g.path} ${(g.samples.at(-1)?.requests ?? 0).toLocaleString('en')}`)
          .join(', ') +
        '.',
      '',
    );
  }

  const verdicts = judgeTargets(results);
  out.push('### Targets (reported, not asserted)', '');
  out.push(
    table(
      ['target', 'figure', 'met?'],
      verdicts.map((v) => [v.target, v.figure, v.met === undefined ? 'n/a' : v.met ? 'met' : '**missed**']),
    ),
    '',
  );

  for (const profile of results.profiles) {
    out.push(`### CPU profile: ${profile.path} (c=64, fresh proxy)`, '');
    if (!profile.summary) {
      out.push(`no profile: ${profile.error ?? 'unknown'}`, '');
      continue;
    }
    const s = profile.summary;
    out.push(
      `Busy ${Math.round(s.busyMs)} ms sampled${perRequest(s.busyMs, profile.requests)}. Self time by origin: ` +
        s.byOrigin.map((e) => `${e.name} ${e.percent.toFixed(1)}%`).join(', '),
      '',
      `By group: ${s.byGroup.map((e) => `${e.name} ${e.percent.toFixed(1)}%`).join(', ')}.`,
      '',
      table(
        ['top self time', '%', 'nearest of our functions on the stack'],
        s.topSelf
          .slice(0, 12)
          .map((e) => [
            `\`${e.name}\``,
            e.percent.toFixed(1),
            (e.ourCallers ?? []).map((c) => `\`${c.name}\` ${Math.round(c.percent)}%`).join(', '),
          ]),
      ),
      '',
      table(
        ['our functions, inclusive', '%'],
        s.topOursInclusive.slice(0, 12).map((e) => [`\`${e.name}\``, e.percent.toFixed(1)]),
      ),
      '',
    );
  }
  for (const note of results.notes) out.push(`- ${note}`);
  return `${out.join('\n')}\n`;
}

/** ", N requests (M µs of sampled CPU each, the profiler's own cost included)", when counted. */
function perRequest(busyMs: number, requests: number | undefined): string {
  if (!requests) return '';
  return ` over ${requests.toLocaleString('en')} requests (${Math.round((busyMs * 1000) / requests)} µs each, the profiler's own cost included)`;
}

/** How the fast upstream answered, as the report names it. */
const ANSWERS: Record<AnswerMode, string> = {
  json: 'JSON answers',
  'event-stream': 'one `event: message` per answer in a `text/event-stream`, as the SDK servers send',
};

/** The table of one HTTP group (`http` or `event-stream`), "added" and "×" against that group's direct and nginx. */
function httpTable(points: readonly Point[], group: string): string {
  const rows = points
    .filter((p) => p.group === group)
    .map((p) => {
      const direct = findPoint(points, group, 'direct', p.concurrency);
      const nginx = findPoint(points, group, 'nginx', p.concurrency);
      const isDirect = p.path === 'direct';
      return [
        p.path,
        String(p.concurrency),
        rate(p) + errors(p),
        ms(med(p, 'p50')),
        ms(med(p, 'p99')),
        ms(med(p, 'p999')),
        isDirect
          ? '—'
          : `${signed(med(p, 'p50') - med(direct, 'p50'))} / ${signed(med(p, 'p99') - med(direct, 'p99'))}`,
        isDirect ? '—' : ratio(med(p, 'rps') / med(direct, 'rps')),
        p.path === 'nginx' || isDirect ? '—' : ratio(med(p, 'rps') / med(nginx, 'rps')),
        cpu(p),
        int(med(p, 'upstreamCpuUs')),
      ];
    });
  return table(
    [
      'path',
      'conc.',
      'req/s median (min–max)',
      'p50 ms',
      'p99 ms',
      'p99.9 ms',
      'added µs p50 / p99',
      '× direct',
      '× nginx',
      'server CPU µs/req (kernel part)',
      'upstream CPU µs/req',
    ],
    rows,
  );
}

/**
 * One line per event-stream row against the JSON figures of the same path and concurrency: this
 * run's when it measured them (interleaved with the event-stream rows), else the previous run's;
 * and against the previous run's figures for the same event-stream row.
 */
function comparisonSection(results: BenchResults, eventStream: readonly Point[]): string[] {
  const { points, previous } = results;
  const jsonHere = (results.settings.upstreamAnswers ?? 'json') === 'json';
  const from = new Set<string>();
  const cpuVs = (now: number, then: number) =>
    `${int(now)} vs ${int(then)} (${signed(now - then)}, ${ratio(now / then)})`;
  const msVs = (now: number, then: number) =>
    `${ms(now)} vs ${ms(then)} (${Number.isFinite(now - then) ? `${now >= then ? '+' : '-'}${ms(Math.abs(now - then))}` : 'n/a'})`;
  const rows = eventStream.map((p) => {
    const here = jsonHere ? findPoint(points, 'http', p.path, p.concurrency) : undefined;
    const before = previousPoint(previous, 'event-stream', p.path, p.concurrency);
    const beforeJson = previousPoint(previous, 'json', p.path, p.concurrency);
    for (const figure of [before, beforeJson]) if (figure) from.add(figure.from);
    const json =
      here && here.runs.length > 0
        ? {
            cpuUs: med(here, 'cpuUs'),
            upstreamCpuUs: med(here, 'upstreamCpuUs'),
            p50: med(here, 'p50'),
            p99: med(here, 'p99'),
            rps: med(here, 'rps'),
            source: 'this run',
          }
        : beforeJson && { ...beforeJson, source: 'previous run' };
    const hasCpu = p.runs[0]?.cpuUs !== undefined;
    const cpuNow = med(p, 'cpuUs');
    return [
      p.path,
      String(p.concurrency),
      json ? json.source : 'none',
      !hasCpu ? '—' : json ? cpuVs(cpuNow, json.cpuUs) : 'n/a',
      json ? msVs(med(p, 'p50'), json.p50) : 'n/a',
      json ? msVs(med(p, 'p99'), json.p99) : 'n/a',
      json ? ratio(med(p, 'rps') / json.rps) : 'n/a',
      json ? cpuVs(med(p, 'upstreamCpuUs'), json.upstreamCpuUs) : 'n/a',
      before
        ? `${hasCpu ? `CPU ${int(before.cpuUs)} → ${int(cpuNow)} (${ratio(cpuNow / before.cpuUs)}), ` : ''}` +
          `p50 ${ms(before.p50)} → ${ms(med(p, 'p50'))}`
        : 'n/a',
      beforeJson ? (hasCpu ? int(beforeJson.cpuUs) : '—') : 'n/a',
    ];
  });
  return [
    '#### Event-stream rows against JSON answers',
    '',
    table(
      [
        'path',
        'conc.',
        'JSON figures of',
        'server CPU µs/req: event stream vs JSON',
        'p50 ms: event stream vs JSON',
        'p99 ms: event stream vs JSON',
        'req/s: event stream ÷ JSON',
        'upstream CPU µs/req: event stream vs JSON',
        'previous run, event stream',
        'previous run, JSON: server CPU µs/req',
      ],
      rows,
    ),
    '',
    jsonHere
      ? "JSON figures are this run's http rows at the same path and concurrency, measured interleaved with " +
        "these; where this run did not measure them, the previous run's."
      : "The http section ran with event-stream answers too: the JSON figures are the previous run's.",
    from.size > 0
      ? `Previous figures from the run(s) started ${[...from].sort().join(', ')} (bench/results/; BENCH_PREVIOUS to choose a file).`
      : 'No earlier results file in bench/results/ had these rows.',
  ];
}

/** Start-up RSS of a fresh proxy, default configuration, with the previous run's figures. */
function startupSection(results: BenchResults): string[] {
  const startup = results.startup ?? [];
  const range = (values: readonly number[], format: (v: number) => string) => {
    const s = spread(values);
    return values.length > 1 ? `${format(s.median)} (${format(s.min)}–${format(s.max)})` : format(s.median);
  };
  const mibs = (v: number) => (v / 2 ** 20).toFixed(1);
  const msInt = (v: number) => String(Math.round(v));
  const rows = startup.map((s) => {
    if (s.error && s.runs.length === 0) return [s.proxy, `failed: ${s.error}`, '', '', '', '', ''];
    const before = results.previous?.startup.find((p) => p.proxy === s.proxy);
    const now = (field: 'startRssBytes' | 'afterProxyRssBytes') => spread(s.runs.map((r) => r[field])).median;
    return [
      s.proxy,
      range(
        s.runs.map((r) => r.listenMs),
        msInt,
      ),
      range(
        s.runs.map((r) => r.startRssBytes),
        mibs,
      ),
      `${range(
        s.runs.map((r) => r.afterProxyRssBytes),
        mibs,
      )}; ${range(
        s.runs.map((r) => r.firstProxyMs),
        msInt,
      )} ms`,
      `${range(
        s.runs.map((r) => r.afterMcpRssBytes),
        mibs,
      )}; ${range(
        s.runs.map((r) => r.firstMcpMs),
        msInt,
      )} ms`,
      range(
        s.runs.map((r) => r.peakRssBytes),
        mibs,
      ),
      before
        ? `${mibs(before.startRssBytes)} → ${mibs(now('startRssBytes'))} / ` +
          `${mibs(before.afterProxyRssBytes)} → ${mibs(now('afterProxyRssBytes'))} (run of ${before.from})`
        : 'n/a',
    ];
  });
  const node = results.machine.nodeBinary ? ` (${results.machine.nodeBinary})` : '';
  return [
    '### Start-up memory: a fresh proxy, default configuration',
    '',
    table(
      [
        'proxy',
        'listening after ms',
        'RSS MiB after start',
        'RSS MiB after a first POST /proxy; its answer',
        'RSS MiB after a first /mcp too; its answer',
        'peak RSS MiB',
        'previous run: after start / after a first POST /proxy',
      ],
      rows,
    ),
    '',
    `Node ${results.machine.node}${node}; only HOST, PORT, PROXY_TOKEN and ALLOW_PRIVATE_NETWORKS set. ` +
      'RSS read 1 s after the port first accepted a connection (no request served), then 1 s after each ' +
      `first answer; median (min–max) over fresh processes (${Math.max(...startup.map((s) => s.runs.length))} per proxy).`,
  ];
}
