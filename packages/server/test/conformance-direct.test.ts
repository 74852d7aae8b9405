/**
 * The conformance fixture passes every server scenario of `@modelcontextprotocol/conformance` when
 * the suite talks to it directly, in both of its modes (server requests on the tool call's stream,
 * or on the GET stream as the suite's own example server sends them). This is the baseline
 * `conformance-proxy.test.ts` compares against: a scenario that fails through the proxy but
 * passes here is the proxy's fault.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { startConformanceServer } from './fixtures/conformance-server.ts';
import { listServerScenarios, runConformance } from './helpers/conformance.ts';

// Each mode has its own fixture and CLI run, mostly waiting on the scenarios' timers: side by side.
describe('the conformance fixture, directly', { concurrency: true }, () => {
  // Listed once for both runs: each listing is a CLI start.
  let scenarios: string[] = [];
  before(async () => {
    scenarios = await listServerScenarios();
  });
  for (const serverRequests of ['call', 'standalone'] as const) {
    test(`the fixture passes every conformance server scenario directly (server requests: ${serverRequests})`, {
      timeout: 180_000,
    }, async (t) => {
      const server = await startConformanceServer({ serverRequests });
      t.after(() => server.stop());

      const result = await runConformance(server.url, { timeoutMs: 150_000, listed: scenarios });

      const failures = result.failed.map(({ scenario, detail }) => `- ${scenario}: ${detail}`).join('\n');
      assert.equal(
        result.failed.length,
        0,
        `${result.failed.length}/${scenarios.length} scenarios failed:\n${failures}\n\n${result.raw.slice(-4000)}`,
      );
      assert.deepEqual([...result.passed].sort(), [...scenarios].sort());
      t.diagnostic(`${result.passed.length}/${scenarios.length} scenarios passed`);
    });
  }
});
