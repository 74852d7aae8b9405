/**
 * The conformance suite through a virtual server of ONE member (issue 20): with `prefix: none`
 * its tools, prompts and resource URIs keep their own names, so the suite's scenarios call and
 * read them as they would directly, and a 2025-era client gets an `Mcp-Session-Id` at
 * `initialize` as from the server itself. Every scenario gets the same verdict through the
 * virtual server as directly, `server-sse-polling` too: a 2025-11-25 session's `tools/call` is
 * answered with a resumable stream (priming event, `retry`, event ids, Last-Event-ID).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { startConformanceServer } from './fixtures/conformance-server.ts';
import { type ConformanceResult, listServerScenarios, runConformance } from './helpers/conformance.ts';
import { startProxy } from './helpers/proxy.ts';

/** Each scenario's verdict: `passed`, or the failing checks' lines. */
function verdicts(result: ConformanceResult): Record<string, string> {
  return Object.fromEntries([
    ...result.passed.map((scenario) => [scenario, 'passed']),
    ...result.failed.map(({ scenario, detail }) => [scenario, detail]),
  ]);
}

describe('the conformance suite through a virtual server of one member', () => {
  let scenarios: string[] = [];
  before(async () => {
    scenarios = await listServerScenarios();
  });

  test('every scenario fares through the virtual server as it does directly', {
    timeout: 240_000,
  }, async (t) => {
    const upstream = await startConformanceServer();
    t.after(() => upstream.stop());
    const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-conformance-virtual-'));
    const configPath = join(dir, 'proxy.yaml');
    writeFileSync(
      configPath,
      `servers:\n  conformance:\n    url: ${upstream.url}\nvirtualServers:\n  one:\n    servers: [conformance]\n    prefix: none\n`,
    );
    // The suite is a plain MCP client: it cannot set headers, so the token rides in the URL.
    const proxy = await startProxy({
      HOST: '127.0.0.1',
      ALLOW_QUERY_TOKEN: 'true',
      MCP_PROXY_CONFIG: configPath,
      LOG_LEVEL: 'warn',
    });
    t.after(() => proxy.close());

    const direct = await runConformance(upstream.url, { timeoutMs: 100_000, listed: scenarios });
    const virtual = await runConformance(`${proxy.url}/servers/one/mcp?proxy_token=${proxy.token}`, {
      timeoutMs: 100_000,
      listed: scenarios,
    });
    t.diagnostic(
      `${virtual.passed.length}/${scenarios.length} scenarios passed through the virtual server, ${direct.passed.length} directly`,
    );
    const through = verdicts(virtual);
    const expected = verdicts(direct);
    assert.equal(direct.failed.length, 0, 'the fixture passes every scenario directly');
    assert.equal(virtual.passed.length, scenarios.length, 'every scenario passes through the virtual server');
    assert.deepEqual(through, expected);
  });
});
