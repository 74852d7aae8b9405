/**
 * The status page's counters stay bounded whatever callers name (issue 21): upstream hosts beyond
 * the cap count together (a configured server's host keeps its own entry), the refusal ring keeps
 * the newest 50, and latency percentiles come from the right buckets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProxyError } from '../src/errors.ts';
import { LiveStatus, OTHER_HOSTS } from '../src/observability/live-status.ts';

function live(servers: Array<{ name: string; host: string }> = []) {
  let now = 1_000_000;
  const status = new LiveStatus({
    now: () => now,
    instanceId: () => 'instance-a',
    servers: () => servers,
    sessions: () => ({ byTransport: {}, webSockets: 0 }),
  });
  return { status, advance: (ms: number) => (now += ms) };
}

describe('LiveStatus bounds', () => {
  it('tracks 64 hosts callers named, then counts the rest together; configured hosts keep theirs', () => {
    const { status } = live([{ name: 'late', host: 'configured.example' }]);
    for (let i = 0; i < 200; i++) status.upstream(new URL(`https://h${i}.example/mcp`), 'ok', 0.01);
    status.upstream(new URL('https://configured.example/mcp'), 'ok', 0.01);
    const { upstreams } = status.snapshot();
    const other = upstreams.find((u) => u.host === OTHER_HOSTS);
    assert.equal(other?.calls, 200 - 64);
    assert.equal(upstreams.find((u) => u.host === 'configured.example')?.calls, 1);
    assert.equal(upstreams.length, 64 + 2);
  });

  it('gives a new host the entry of the least recently used one idle beyond the latency window', () => {
    const { status, advance } = live([{ name: 'quiet', host: 'configured.example' }]);
    status.upstream(new URL('https://configured.example/mcp'), 'ok', 0.01);
    // The configured host's entry and 63 junk hosts fill the 64 entries.
    for (let i = 0; i < 63; i++) {
      status.upstream(new URL(`https://junk${i}.attacker.example/`), 'error', 0.01, 502);
      advance(1);
    }
    // While every entry is in recent use, a new host counts with the others.
    status.upstream(new URL('https://early.example/mcp'), 'ok', 0.05);
    assert.ok(status.snapshot().upstreams.some((u) => u.host === OTHER_HOSTS));
    assert.equal(
      status.snapshot().upstreams.some((u) => u.host === 'early.example'),
      false,
    );
    advance(120_000);
    status.upstream(new URL('https://junk62.attacker.example/'), 'error', 0.01, 502);
    status.upstream(new URL('https://real-tool.example.com/mcp'), 'ok', 0.05);
    const { upstreams } = status.snapshot();
    assert.equal(upstreams.find((u) => u.host === 'real-tool.example.com')?.calls, 1);
    assert.equal(
      upstreams.some((u) => u.host === 'junk0.attacker.example'),
      false,
      'the oldest went',
    );
    assert.ok(
      upstreams.some((u) => u.host === 'junk1.attacker.example'),
      'only one went',
    );
    assert.ok(
      upstreams.some((u) => u.host === 'junk62.attacker.example'),
      'one in use stays',
    );
    assert.ok(
      upstreams.some((u) => u.host === 'configured.example'),
      'a configured host stays',
    );
    // The same URL again after its entry went: counted afresh, not into a dropped entry.
    status.upstream(new URL('https://real-tool.example.com/mcp'), 'ok', 0.05);
    assert.equal(status.snapshot().upstreams.find((u) => u.host === 'real-tool.example.com')?.calls, 2);
  });

  it('keeps the newest 50 refusals and counts them all', () => {
    const { status } = live();
    for (let i = 0; i < 500; i++) status.egressRefusal(`r${i}.example`, 'host_forbidden');
    const { egressRefusals } = status.snapshot();
    assert.equal(egressRefusals.total, 500);
    assert.equal(egressRefusals.recent.length, 50);
    assert.equal(egressRefusals.recent[0]?.host, 'r499.example');
    status.egressRefusal('x'.repeat(10_000), 'ambiguous_url');
    assert.equal(status.snapshot().egressRefusals.recent[0]?.host.length, 255);
  });

  it('reads percentiles from log buckets within 19 %', () => {
    const { status } = live();
    const url = new URL('http://up.example/mcp');
    for (let i = 1; i <= 100; i++) status.upstream(url, 'ok', i / 1000);
    const { window } = status.snapshot().upstreams[0] ?? assert.fail('no upstream');
    assert.equal(window.count, 100);
    for (const [value, truth] of [
      [window.p50, 50],
      [window.p90, 90],
      [window.p99, 99],
    ] as const) {
      assert.ok(value !== null && value >= truth && value <= truth * 1.19, `${value} vs ${truth}`);
    }
  });

  it('counts errors by code and health from the latest exchange', () => {
    const { status, advance } = live();
    const url = new URL('http://up.example/mcp');
    status.request('/mcp', undefined);
    status.request('/mcp', 'upstream_timeout');
    status.request('/status.json', undefined);
    status.upstream(url, 'error', 0.5, new ProxyError('upstream_timeout'));
    let snapshot = status.snapshot();
    assert.deepEqual(snapshot.requests, {
      total: 2,
      errors: 1,
      byRoute: { '/mcp': 2 },
      errorsByCode: { upstream_timeout: 1 },
    });
    assert.equal(snapshot.upstreams[0]?.health, 'failing');
    assert.equal(snapshot.upstreams[0]?.lastError, 'upstream_timeout');
    advance(1);
    status.upstream(url, 'ok', 0.01);
    snapshot = status.snapshot();
    assert.equal(snapshot.upstreams[0]?.health, 'up');
  });
});
