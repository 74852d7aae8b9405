/**
 * A proxy with virtual servers for the virtual-server tests (issue 20): server-everything over
 * Streamable HTTP, the feature fixture as a stdio server, and the config file the proxy reads
 * (rewritten by a test that reloads), torn down together.
 *
 * @module
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/config.ts';
import { compileCacheEnv } from './compile-cache.ts';
import { type EverythingServer, startEverything } from './everything.ts';
import { type RunningProxy, startProxy, TEST_TOKEN } from './proxy.ts';

const FEATURE_FIXTURE = fileURLToPath(new URL('../fixtures/feature-server.ts', import.meta.url));

/** The feature fixture (feature-server.ts) as a configured stdio server. */
export function featureStdio(): { command: string; args: string[]; env: Record<string, string> } {
  return { command: process.execPath, args: [FEATURE_FIXTURE], env: compileCacheEnv() };
}

/** The text of a tool result's content. */
export function textOf(result: unknown): string {
  const content = (result as { content?: Array<{ text?: string }> }).content;
  return content?.map((part) => part.text ?? '').join('') ?? '';
}

/** A running proxy over server-everything, with its config file. */
export interface VirtualProxy {
  readonly proxy: RunningProxy;
  readonly everything: EverythingServer;
  /** Writes `config` to the proxy's file and reloads it, as a SIGHUP would. */
  reload(config: object): void;
  stop(): Promise<void>;
}

/**
 * Starts server-everything and a proxy whose config file holds what `configure` gives for
 * server-everything's URL, with `env` over the test defaults.
 */
export async function startVirtualProxy(
  configure: (everythingUrl: string) => object,
  env: Record<string, string> = {},
): Promise<VirtualProxy> {
  const everything = await startEverything('streamableHttp');
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-virtual-'));
  const file = join(dir, 'proxy.json');
  writeFileSync(file, JSON.stringify(configure(everything.url)));
  const proxyEnv = { MCP_PROXY_CONFIG: file, UPSTREAM_TIMEOUT_MS: '15000', ...env };
  let proxy: RunningProxy;
  try {
    proxy = await startProxy(proxyEnv);
  } catch (error) {
    await everything.stop();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    proxy,
    everything,
    reload(config) {
      writeFileSync(file, JSON.stringify(config));
      const base = { PROXY_TOKEN: TEST_TOKEN, ALLOW_PRIVATE_NETWORKS: 'true', STORE: 'memory' };
      proxy.app.reload(loadConfig({ env: { ...base, ...proxyEnv } }));
    },
    async stop() {
      await proxy.close();
      await everything.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
