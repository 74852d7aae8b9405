/**
 * The dispatch plan (issue 15, part 1) as data: which route each kind of caller takes to each
 * kind of target, and what a pass-through's first answer changes. The surfaces' suites
 * (mcp-matrix, proxy-*, era-bridge-*, modern-*, ws) drive the same decisions end to end; this
 * table says them in one place, so a change to a rule shows here first.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { UpstreamTarget } from '../src/dispatch/connector.ts';
import { EraDetector, EraVerdicts } from '../src/dispatch/era-detector.ts';
import {
  type Caller,
  DispatchPlanner,
  decide,
  type Known,
  type PassThroughRoute,
  type Route,
  sessionRefOf,
} from '../src/dispatch/plan.ts';
import { TransportVerdicts } from '../src/dispatch/transport-verdicts.ts';
import type { UpstreamHttp } from '../src/upstream/http.ts';

const url = new URL('http://127.0.0.1:9/mcp');
const auto: UpstreamTarget = { kind: 'http-auto', url };
const streamable: UpstreamTarget = { kind: 'streamable-http', url };
const stdio: UpstreamTarget = {
  kind: 'stdio',
  name: 'files',
  server: { command: 'node', args: [], env: {}, protocol: 'auto' },
};

const nothingKnown: Known = { transport: undefined, era: {} };

function caller(overrides: Partial<Caller> = {}): Caller {
  return {
    principalKey: 'alice',
    surface: 'mcp',
    era: 'session',
    opens: true,
    session: { kind: 'none' },
    ...overrides,
  };
}

/** The kind of a route and, where it has one, its target's kind. */
function shape(route: Route | undefined): string | undefined {
  if (route === undefined) return undefined;
  return 'target' in route ? `${route.kind}:${route.target.kind}` : route.kind;
}

function passThrough(route: Route | undefined): PassThroughRoute {
  assert.equal(route?.kind, 'pass-through');
  return route as PassThroughRoute;
}

describe('the dispatch plan decides', () => {
  it('reads a session id by who issued it', () => {
    assert.deepEqual(sessionRefOf(undefined), { kind: 'none' });
    assert.deepEqual(sessionRefOf('mcpp-abc'), { kind: 'held', id: 'mcpp-abc' });
    assert.deepEqual(sessionRefOf('mcpp2.xyz'), { kind: 'sealed', id: 'mcpp2.xyz' });
  });

  it('holds a session for every /ws socket', () => {
    const ws = caller({ surface: 'ws', era: undefined, opens: false });
    assert.equal(shape(decide(ws, auto, nothingKnown)), 'open-held:http-auto');
    assert.equal(shape(decide(ws, stdio, nothingKnown)), 'open-held:stdio');
  });

  it('sends a proxy-held id to its session, and refuses a sealed id where no upstream issues one', () => {
    const held = { kind: 'held', id: 'mcpp-1' } as const;
    const sealed = { kind: 'sealed', id: 'mcpp2.x' } as const;
    assert.equal(shape(decide(caller({ session: held }), streamable, nothingKnown)), 'held:streamable-http');
    assert.equal(shape(decide(caller({ session: sealed }), stdio, nothingKnown)), 'refused');
    assert.equal(
      shape(decide(caller({ session: sealed }), auto, { ...nothingKnown, transport: 'sse' })),
      'refused',
    );
    const route = passThrough(decide(caller({ session: sealed }), auto, nothingKnown));
    assert.equal(route.sealedId, 'mcpp2.x');
    // A message of a session already open never falls back.
    assert.equal(route.probe.sse, undefined);
    assert.equal(route.probe.bridge, undefined);
  });

  it('pools a modern caller of a session-era upstream, and probes the era first when unknown', () => {
    const modern = caller({ era: 'modern', opens: false });
    assert.equal(shape(decide(modern, stdio, nothingKnown)), 'pooled:stdio');
    assert.equal(shape(decide(modern, auto, { ...nothingKnown, transport: 'sse' })), 'pooled:sse');
    assert.equal(
      shape(decide(modern, streamable, { transport: undefined, era: { modern: false } })),
      'pooled:streamable-http',
    );
    assert.equal(decide(modern, streamable, nothingKnown), undefined, 'the era must be probed');
    const route = passThrough(decide(modern, streamable, { transport: undefined, era: { modern: true } }));
    assert.equal(route.probe.bridge, undefined, 'a modern caller is never bridged to the session era');
  });

  it('holds a session for a session client of a modern-only upstream', () => {
    const modernOnly: Known = { transport: undefined, era: { session: false, modern: true } };
    assert.equal(shape(decide(caller(), streamable, modernOnly)), 'open-held:streamable-http');
    assert.equal(shape(decide(caller({ surface: 'proxy' }), auto, modernOnly)), 'open-held:http-auto');
    assert.equal(
      shape(decide(caller({ surface: 'proxy', opens: false }), auto, modernOnly)),
      'one-shot:http-auto',
    );
  });

  it('holds what only a held connection reaches: a session on /mcp, one-shot for a lone POST /proxy message', () => {
    assert.equal(shape(decide(caller(), stdio, nothingKnown)), 'open-held:stdio');
    assert.equal(shape(decide(caller({ opens: false }), stdio, nothingKnown)), 'open-held:stdio');
    assert.equal(
      shape(decide(caller({ surface: 'proxy', opens: false }), stdio, nothingKnown)),
      'one-shot:stdio',
    );
    assert.equal(
      shape(decide(caller({ surface: 'proxy' }), auto, { ...nothingKnown, transport: 'sse' })),
      'open-held:sse',
    );
  });

  it('passes Streamable HTTP through, with the fallbacks the message can take', () => {
    const initialize = passThrough(decide(caller(), auto, nothingKnown));
    assert.equal(shape(initialize.probe.sse), 'open-held:sse');
    assert.equal(shape(initialize.probe.bridge), 'open-held:http-auto');
    // /mcp: a message without a session that is no initialize cannot open one: no fallback.
    const call = passThrough(decide(caller({ opens: false }), auto, nothingKnown));
    assert.equal(call.probe.sse, undefined);
    assert.equal(call.probe.bridge, undefined);
    // POST /proxy answers it over a one-shot connection instead.
    const proxyCall = passThrough(decide(caller({ surface: 'proxy', opens: false }), auto, nothingKnown));
    assert.equal(shape(proxyCall.probe.sse), 'one-shot:sse');
    assert.equal(shape(proxyCall.probe.bridge), 'one-shot:http-auto');
    // A known transport is not probed again.
    const known = passThrough(decide(caller(), auto, { ...nothingKnown, transport: 'streamable-http' }));
    assert.equal(known.probe.sse, undefined);
  });
});

describe('after a pass-through answer, the plan', () => {
  function planner() {
    const verdicts = new TransportVerdicts({ ttlMs: 60_000, maxEntries: 10 });
    const eras = new EraDetector({
      // Never called: no probe runs for what these cases ask.
      http: {} as UpstreamHttp,
      verdicts: new EraVerdicts({ ttlMs: 60_000, maxEntries: 10 }),
      timeoutMs: 1_000,
    });
    return { verdicts, eras, plan: new DispatchPlanner({ verdicts, eras }) };
  }

  it('bridges a session client refused as a modern-only server refuses it, and remembers', () => {
    const { plan, eras } = planner();
    const route = passThrough(decide(caller(), streamable, nothingKnown));
    const refusal = {
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32022, message: 'Unsupported', data: { supported: ['2026-07-28'] } },
    };
    const fallback = plan.fallbackAfter(route, { status: 400, body: refusal });
    assert.equal(shape(fallback?.route), 'open-held:streamable-http');
    assert.equal(fallback?.keepOriginalOnFailure, false);
    assert.deepEqual(eras.known({ key: url.href }), { session: false, modern: true });
  });

  it('never falls back after a modern protocol error: the caller needs that answer', () => {
    const { plan } = planner();
    const route = passThrough(decide(caller(), auto, nothingKnown));
    const mismatch = { jsonrpc: '2.0', id: 1, error: { code: -32020, message: 'Header mismatch' } };
    assert.equal(plan.fallbackAfter(route, { status: 400, body: mismatch }), undefined);
  });

  it('tries HTTP+SSE after a 4xx from an upstream of unknown transport, keeping the answer if that fails', () => {
    const { plan, verdicts } = planner();
    const route = passThrough(decide(caller(), auto, nothingKnown));
    assert.equal(plan.fallbackAfter(route, { status: 401 }), undefined);
    const fallback = plan.fallbackAfter(route, { status: 405 });
    assert.equal(shape(fallback?.route), 'open-held:sse');
    assert.equal(fallback?.keepOriginalOnFailure, true);
    assert.equal(verdicts.get(url), undefined, 'nothing is learnt before the fallback served');
    if (fallback) plan.served(route, fallback);
    assert.equal(verdicts.get(url), 'sse');
  });

  it('learns the transport and the session era from a success', () => {
    const { plan, verdicts, eras } = planner();
    const route = passThrough(decide(caller(), auto, nothingKnown));
    assert.equal(
      plan.fallbackAfter(route, { status: 200, body: { jsonrpc: '2.0', id: 1, result: {} } }),
      undefined,
    );
    assert.equal(verdicts.get(url), 'streamable-http');
    assert.equal(eras.known({ key: url.href }).session, true);
  });
});
