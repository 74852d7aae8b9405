/**
 * @module bench/lib/cpuprofile
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): the functions with the most self
 * time, the proxy's own functions with the most inclusive time, and self time by origin
 * (our files, each npm package, Node internals, GC, native).
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: number[];
}

interface CpuProfile {
  readonly nodes: ProfileNode[];
  readonly samples: number[];
  readonly timeDeltas: number[];
}

/** One line of a summary: a function or an origin and its share of the busy time. */
export interface ProfileEntry {
  readonly name: string;
  readonly ms: number;
  readonly percent: number;
  /** For self-time entries: the nearest of our functions on the stack, and its share of this entry. */
  readonly ourCallers?: Array<{ readonly name: string; readonly percent: number }>;
}

/** A profile's summary. */
export interface ProfileSummary {
  /** Busy (non-idle) milliseconds sampled. */
  readonly busyMs: number;
  readonly topSelf: ProfileEntry[];
  /** Inclusive time of functions in packages/server/src (what each of our steps costs in all). */
  readonly topOursInclusive: ProfileEntry[];
  readonly byOrigin: ProfileEntry[];
  /** Self time by group: ours (all our files), Node (its JS), undici, Fastify, other npm, GC,
   * native (socket writes, crypto, ...), V8 outside JS. */
  readonly byGroup: ProfileEntry[];
}

/** The group of an origin (see {@link originOf}) in {@link ProfileSummary.byGroup}. */
export function groupOf(origin: string): string {
  if (origin.startsWith('ours: ')) return 'ours';
  if (origin === 'node internals') return 'Node (JS)';
  if (origin === 'npm: undici') return 'undici';
  if (origin === 'npm: fastify' || origin.startsWith('npm: @fastify/') || origin === 'npm: find-my-way')
    return 'Fastify';
  if (origin.startsWith('npm: ')) return 'other npm';
  if (origin === 'GC') return 'GC';
  if (origin === 'native') return 'native';
  if (origin.startsWith('(program')) return 'V8 outside JS';
  return 'other';
}

/** Where a script URL comes from: our file, an npm package, Node itself, or native code. */
export function originOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(program)') return '(program: V8/native, outside JS)';
    return 'native';
  }
  const ours = /\/packages\/server\/src\/(.+)$/.exec(url);
  if (ours) return `ours: ${ours[1]}`;
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return `npm: ${pkg[1]}`;
  if (url.startsWith('node:')) return 'node internals';
  return url;
}

function label(frame: CallFrame): string {
  const name = frame.functionName || '(anonymous)';
  if (frame.url === '') return name;
  const short = frame.url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/node_modules\//, '')
    .replace(/^.*\/packages\/server\/src\//, 'server/src/');
  return `${name} ${short}:${frame.lineNumber + 1}`;
}

/** Reads and summarises one profile file, ignoring the first `skipMs` (start-up, warm-up). */
export function summariseProfile(path: string, skipMs = 0, top = 20): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const origins = new Map<string, number>();
  /** self-time label -> nearest-of-ours label -> ms */
  const callers = new Map<string, Map<string, number>>();
  let busy = 0;
  let clock = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    clock += (profile.timeDeltas[i] ?? 0) / 1000;
    const node = byId.get(profile.samples[i] as number);
    const dt = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000;
    if (clock < skipMs || !node || node.callFrame.functionName === '(idle)') continue;
    busy += dt;
    const selfKey = label(node.callFrame);
    add(self, selfKey, dt);
    add(origins, originOf(node.callFrame.url, node.callFrame.functionName), dt);
    const seen = new Set<string>();
    let nearest: string | undefined;
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = (byId.get(id) as ProfileNode).callFrame;
      if (!frame.url.includes('/packages/server/src/')) continue;
      const key = label(frame);
      nearest ??= key;
      if (seen.has(key)) continue;
      seen.add(key);
      add(inclusive, key, dt);
    }
    let perCaller = callers.get(selfKey);
    if (!perCaller) {
      perCaller = new Map();
      callers.set(selfKey, perCaller);
    }
    add(perCaller, nearest ?? '(not under our code)', dt);
  }
  const rank = (map: Map<string, number>, n: number): ProfileEntry[] =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, ms]) => ({ name, ms, percent: busy > 0 ? (100 * ms) / busy : 0 }));
  const topSelf = rank(self, top).map((entry) => ({
    ...entry,
    ourCallers: [...(callers.get(entry.name) ?? new Map<string, number>()).entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 2)
      .map(([name, ms]) => ({ name, percent: (100 * ms) / entry.ms })),
  }));
  const groups = new Map<string, number>();
  for (const [origin, ms] of origins) add(groups, groupOf(origin), ms);
  return {
    busyMs: busy,
    topSelf,
    topOursInclusive: rank(inclusive, top),
    byOrigin: rank(origins, 15),
    byGroup: rank(groups, groups.size),
  };
}

function add(map: Map<string, number>, key: string, value: number): void {
  map.set(key, (map.get(key) ?? 0) + value);
}
