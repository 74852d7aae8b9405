/**
 * A configuration file of named servers in a fresh temporary folder, for tests that start
 * proxies on it, and the 2025-era `initialize` those tests open sessions with.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A 2025-06-18 `initialize` request (id 1). */
export const INITIALIZE_2025 = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};

/** A written configuration: its path (MCP_PROXY_CONFIG) and how to remove its folder. */
export interface ConfigDir {
  readonly path: string;
  remove(): Promise<void>;
}

/** Writes `{ servers }` to proxy.json in a new folder named after `prefix`. */
export async function configDir(prefix: string, servers: Record<string, unknown>): Promise<ConfigDir> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const path = join(dir, 'proxy.json');
  await writeFile(path, JSON.stringify({ servers }));
  return { path, remove: () => rm(dir, { recursive: true, force: true }) };
}
