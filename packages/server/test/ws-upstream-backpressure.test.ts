/**
 * Issue 14 review, F1: what a `/ws` caller sends upstream is bounded too. Notifications (and
 * answers to server requests) used to go upstream fire-and-forget: an upstream that stopped
 * reading let them pile up in the proxy until its heap was gone. Now the caller's socket stops
 * being read (its own send buffer fills) and, if it keeps going, is closed 1013. The proxy runs
 * in a child process with a small heap, so a regression fails fast.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { type AmplifyUpstream, startAmplifyUpstream } from './fixtures/amplify-hostile.ts';
import { type ChildProxy, startChildProxy } from './helpers/child-proxy.ts';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { eventually } from './helpers/eventually.ts';

const HEAP_MB = 96;
const DEAF_STDIO = fileURLToPath(new URL('./fixtures/deaf-stdio.ts', import.meta.url));

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

async function setUp(): Promise<{ proxy: ChildProxy; upstream: AmplifyUpstream }> {
  const upstream = await startAmplifyUpstream();
  cleanup.push(() => upstream.stop());
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-deaf-'));
  const config = join(dir, 'proxy.yaml');
  writeFileSync(
    config,
    `servers:\n  deaf:\n    command: ${JSON.stringify(process.execPath)}\n    args: [${JSON.stringify(DEAF_STDIO)}]\n    env: ${JSON.stringify(compileCacheEnv())}\n`,
  );
  const proxy = await startChildProxy(
    { WS_ALLOW_MISSING_ORIGIN: 'true', LOG_LEVEL: 'error', MCP_PROXY_CONFIG: config },
    HEAP_MB,
  );
  cleanup.push(() => proxy.stop());
  return { proxy, upstream };
}

/** Polls `check` every 20 ms until it holds or `ms` pass. */
/** Whether `check` holds within `ms` (polled; false, not a failure, when it does not). */
async function until(check: () => boolean, ms: number): Promise<boolean> {
  return eventually(check, { timeoutMs: ms }).catch(() => check());
}

describe('/ws → an upstream that stops reading (F1)', { timeout: 60_000 }, () => {
  for (const kind of ['websocket', 'stdio'] as const) {
    it(`stops reading the caller instead of buffering its notifications without bound (${kind} upstream)`, async () => {
      const { proxy, upstream } = await setUp();
      const target =
        kind === 'websocket'
          ? `mcp_server_url=${encodeURIComponent(`${upstream.wsOrigin}/deaf`)}`
          : 'server=deaf';
      const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/ws?${target}`, [
        'mcp',
        `proxy-token.${proxy.token}`,
      ]);
      cleanup.push(async () => ws.terminate());
      const frames: Array<{ id?: unknown; error?: { data?: { code?: string } } }> = [];
      let closed: number | undefined;
      ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
      ws.on('close', (code) => {
        closed = code;
      });
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const params = {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 't', version: '1' },
      };
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params }));
      assert.ok(await until(() => frames.some((f) => f.id === 1), 10_000), 'initialize is answered');
      ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));

      // 1 MiB frames of 64 notifications, as fast as the proxy takes them: without flow control
      // 100 frames (100 MiB) outgrow the child's heap; with it, our own send buffer fills.
      const pad = 'x'.repeat(16_000);
      const frame = JSON.stringify(
        Array.from({ length: 64 }, () => ({
          jsonrpc: '2.0',
          method: 'notifications/message',
          params: { pad },
        })),
      );
      let sent = 0;
      let stalled = false;
      const heldByUs = 16 * 1_048_576;
      while (sent < 200 && closed === undefined && proxy.alive()) {
        if (ws.bufferedAmount > heldByUs) {
          // A proxy that is only busy catches up; one that stopped reading us does not.
          if (
            !(await until(
              () => ws.bufferedAmount < heldByUs || closed !== undefined || !proxy.alive(),
              3_000,
            ))
          ) {
            stalled = true;
            break;
          }
          continue;
        }
        ws.send(frame);
        sent++;
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.ok(proxy.alive(), `the proxy died after ${sent} frames:\n${proxy.output()}`);
      assert.ok(
        stalled || closed === 1013,
        `the proxy stopped reading or closed 1013 (sent ${sent} frames, buffered ${ws.bufferedAmount}, close ${closed})`,
      );
      // The child keeps serving others.
      await until(() => !proxy.alive(), 500);
      assert.ok(proxy.alive(), `the proxy died:\n${proxy.output()}`);
      assert.equal((await fetch(`${proxy.url}/health`)).status, 200);
    });
  }
});
