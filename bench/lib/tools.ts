/**
 * @module bench/lib/tools
 * Installs what the bench needs and the repository does not carry: Debian's `wrk` and
 * `nginx` (when missing, with apt-get as root) and the peer proxies from npm, at pinned
 * versions, into the git-ignored `bench/.cache/` (never into the workspace's node_modules).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE } from './env.ts';

/** A peer proxy installed from npm for the comparison. */
export interface Peer {
  readonly name: string;
  readonly version: string;
  /** Path of the file to run with node, inside the package. */
  readonly entry: string;
}

/** The peers, pinned. */
export const PEERS = {
  supergateway: { name: 'supergateway', version: '4.0.0', entry: 'dist/index.js' },
  mcpProxy: { name: 'mcp-proxy', version: '6.7.19', entry: 'dist/bin/mcp-proxy.mjs' },
  inspector: {
    name: '@modelcontextprotocol/inspector',
    version: '2.12.0',
    entry: 'clients/web/build/index.js',
  },
} as const satisfies Record<string, Peer>;

function has(command: string): boolean {
  return spawnSync('bash', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Makes sure `wrk` and `nginx` exist; installs the Debian packages when root. */
export function ensureSystemTools(log: (line: string) => void): { nginx: boolean } {
  const missing = [has('wrk') ? undefined : 'wrk', hasNginx() ? undefined : 'nginx-light'].filter(
    (p): p is string => p !== undefined,
  );
  if (missing.length > 0) {
    if (process.getuid?.() !== 0 || !has('apt-get')) {
      throw new Error(
        `missing ${missing.join(', ')}: install them (Debian: apt-get install ${missing.join(' ')})`,
      );
    }
    log(`installing ${missing.join(', ')} with apt-get`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const lock = ['-o', 'DPkg::Lock::Timeout=300'];
    spawnSync('apt-get', [...lock, 'update', '-qq'], { stdio: 'ignore', env });
    const install = spawnSync('apt-get', [...lock, 'install', '-y', '-qq', ...missing], {
      encoding: 'utf8',
      env,
    });
    if (install.status !== 0)
      throw new Error(`apt-get install ${missing.join(' ')} failed: ${install.stderr}`);
  }
  if (!has('wrk')) throw new Error('wrk is not available');
  return { nginx: hasNginx() };
}

function hasNginx(): boolean {
  return has('nginx') || existsSync('/usr/sbin/nginx');
}

/** The nginx binary. */
export function nginxBinary(): string {
  return existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
}

/**
 * Installs the peers (once, all in one `npm install` so shared dependencies are fetched once)
 * into the cache; returns the path of each one's entry file.
 */
export function ensurePeers<K extends string>(
  peers: Record<K, Peer>,
  log: (line: string) => void,
): Record<K, string> {
  const prefix = join(CACHE, 'peers');
  const entryOf = (peer: Peer) => join(prefix, 'node_modules', peer.name, peer.entry);
  const list = Object.values<Peer>(peers);
  const missing = list.filter(
    (peer) =>
      !existsSync(entryOf(peer)) ||
      installedVersion(join(prefix, 'node_modules', peer.name)) !== peer.version,
  );
  if (missing.length > 0) {
    mkdirSync(prefix, { recursive: true });
    const specs = list.map((peer) => `${peer.name}@${peer.version}`);
    log(`installing ${specs.join(', ')} into ${prefix}`);
    const result = spawnSync(
      'npm',
      ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--loglevel=error', ...specs],
      { encoding: 'utf8' },
    );
    if (result.status !== 0)
      throw new Error(`npm install ${specs.join(' ')} failed: ${result.stderr.slice(-2000)}`);
  }
  const entries = {} as Record<K, string>;
  for (const key of Object.keys(peers) as K[]) entries[key] = entryOf(peers[key]);
  return entries;
}

function installedVersion(packageDir: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { version?: string })
      .version;
  } catch {
    return undefined;
  }
}
