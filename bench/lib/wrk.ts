/**
 * @module bench/lib/wrk
 * Load from a second process: `wrk` pinned to the load core, driven by a generated Lua script
 * (fixed POST body and headers, or a body with a fresh JSON-RPC id per request for session
 * traffic), reporting requests, errors and latency percentiles as one JSON line.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LOAD_CORES } from './env.ts';

/** What every request of a load run looks like. */
export interface RequestSpec {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /**
   * The POST body. With `uniqueIds`, the first `"__ID__"` is replaced by a fresh string id per
   * request (sessions refuse two in-flight requests with the same id).
   */
  readonly body: string;
  readonly uniqueIds?: boolean;
}

/** One load run's outcome. */
export interface WrkResult {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  /** Connect/read/write/timeout errors and HTTP statuses ≥ 400. */
  readonly errors: number;
  /** Latency percentiles in microseconds. */
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
}

const ID_MARK = '"__ID__"';

/** Writes the Lua script for a request spec; returns its path. */
export function writeScript(dir: string, name: string, spec: RequestSpec): string {
  const lua: string[] = ['wrk.method = "POST"'];
  for (const [key, value] of Object.entries(spec.headers)) {
    lua.push(`wrk.headers[${luaString(key)}] = ${luaString(value)}`);
  }
  if (spec.uniqueIds) {
    const at = spec.body.indexOf(ID_MARK);
    if (at === -1) throw new Error(`${name}: uniqueIds needs ${ID_MARK} in the body`);
    lua.push(
      `local before = ${luaString(spec.body.slice(0, at))}`,
      `local after = ${luaString(spec.body.slice(at + ID_MARK.length))}`,
      'local counter = 0',
      'tid = tid or 0',
      'request = function()',
      '  counter = counter + 1',
      '  return wrk.format(nil, nil, nil, before .. \'"t\' .. tid .. "-" .. counter .. \'"\' .. after)',
      'end',
    );
  } else {
    lua.push(`wrk.body = ${luaString(spec.body)}`);
  }
  lua.push(
    'local threads = 0',
    'setup = function(thread)',
    '  threads = threads + 1',
    '  thread:set("tid", threads)',
    'end',
  );
  lua.push(
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format(\'WRKJSON {"requests":%d,"duration_us":%d,"errors":%d,"p50":%.1f,"p99":%.1f,"p999":%.1f}\\n\',',
    '    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,',
    '    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))',
    'end',
  );
  const path = join(dir, `${name}.lua`);
  writeFileSync(path, `${lua.join('\n')}\n`);
  return path;
}

/** Runs wrk with one thread and `connections` connections for `seconds`. */
export function runWrk(
  script: string,
  url: string,
  connections: number,
  seconds: number,
  threads = 1,
): Promise<WrkResult> {
  const nice = process.env.BENCH_NICE ? ['nice', '-n', process.env.BENCH_NICE] : [];
  const args = [
    '-c',
    LOAD_CORES,
    ...nice,
    'wrk',
    `-t${threads}`,
    `-c${Math.max(connections, threads)}`,
    `-d${Math.max(1, Math.round(seconds))}s`,
    '--timeout',
    '10s',
    '-s',
    script,
    url,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('WRKJSON '));
      if (code !== 0 || line === undefined) {
        reject(new Error(`wrk failed (${code}) for ${url}: ${err || out}`));
        return;
      }
      const raw = JSON.parse(line.slice('WRKJSON '.length)) as {
        requests: number;
        duration_us: number;
        errors: number;
        p50: number;
        p99: number;
        p999: number;
      };
      const secondsRun = raw.duration_us / 1e6;
      resolve({
        requests: raw.requests,
        seconds: secondsRun,
        rps: raw.requests / secondsRun,
        errors: raw.errors,
        p50: raw.p50,
        p99: raw.p99,
        p999: raw.p999,
      });
    });
  });
}

function luaString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;
}
