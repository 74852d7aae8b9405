/**
 * Checks the deployment files at the repository root: Dockerfile, .dockerignore,
 * docker-compose.yml, .env.example and setup.sh. No Docker engine is needed: the Dockerfile and
 * the compose file are parsed and held to the promises docs/deployment.md makes, the image's
 * healthcheck command and entry point are run against the real server, and setup.sh runs in a
 * temporary copy of the repository with `npm` stubbed, so the test stays fast and offline.
 */
import assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseDotenv } from 'dotenv';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../src/config/config.ts';
import { ENV_VARS } from '../src/config/sources.ts';
import { freePort, waitForPort } from './helpers/net.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

const scratch = mkdtempSync(join(tmpdir(), 'mcp-proxy-deploy-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// Dockerfile parsing: just enough of the format (comments, line continuations, stages).

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly instructions: readonly Instruction[];
}

function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    const continued = line.endsWith('\\');
    pending += `${continued ? line.slice(0, -1) : line} `;
    if (continued) continue;
    const match = /^(\S+)\s*(.*)$/.exec(pending.trim());
    if (match) instructions.push({ keyword: (match[1] ?? '').toUpperCase(), args: (match[2] ?? '').trim() });
    pending = '';
  }
  return instructions;
}

function stagesOf(instructions: readonly Instruction[]): Stage[] {
  const stages: { image: string; name: string | undefined; instructions: Instruction[] }[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const words = instruction.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      const as = words.findIndex((w) => w.toUpperCase() === 'AS');
      stages.push({ image: words[0] ?? '', name: as > 0 ? words[as + 1] : undefined, instructions: [] });
    } else {
      const stage = stages.at(-1);
      assert.ok(stage, `${instruction.keyword} before the first FROM`);
      stage.instructions.push(instruction);
    }
  }
  return stages;
}

/** `COPY [--flags] src... dest` (shell form) as flags, sources and destination. */
function copyParts(args: string): { flags: Map<string, string>; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  const flags = new Map<string, string>();
  while (words[0]?.startsWith('--')) {
    const [flag, value = ''] = (words.shift() ?? '').slice(2).split('=');
    flags.set(flag ?? '', value);
  }
  const dest = words.pop() ?? '';
  return { flags, sources: words, dest };
}

/** The JSON array of an exec-form instruction (`CMD [...]`). */
function execForm(args: string): string[] {
  const value: unknown = JSON.parse(args);
  assert.ok(Array.isArray(value) && value.every((v) => typeof v === 'string'), `not exec form: ${args}`);
  return value as string[];
}

const dockerfile = parseDockerfile(read('Dockerfile'));
const stages = stagesOf(dockerfile);
const finalStage = stages.at(-1) as Stage;
const finalOf = (keyword: string) => finalStage.instructions.filter((i) => i.keyword === keyword);
const hostCopies = stages.flatMap((stage) =>
  stage.instructions
    .filter((i) => i.keyword === 'COPY')
    .map((i) => copyParts(i.args))
    .filter((c) => !c.flags.has('from')),
);

/** The healthcheck's `node -e` script, from the Dockerfile. */
function imageHealthcheck(): string[] {
  const [healthcheck] = finalOf('HEALTHCHECK');
  assert.ok(healthcheck, 'the final stage has a HEALTHCHECK');
  const cmd = /\bCMD\s+(\[.*\])$/.exec(healthcheck.args)?.[1];
  assert.ok(cmd, 'HEALTHCHECK uses CMD in exec form');
  return execForm(cmd);
}

const rootPackage = JSON.parse(read('package.json')) as { devDependencies: Record<string, string> };
const serverPackage = JSON.parse(read('packages/server/package.json')) as {
  name: string;
  dependencies: Record<string, string>;
};

describe('Dockerfile', () => {
  it('builds in stages from one Node 24 slim base pinned to the version the tests run on', () => {
    assert.ok(stages.length >= 2, 'a multi-stage build');
    const names = new Set<string>();
    const nodeVersion = rootPackage.devDependencies.node;
    for (const stage of stages) {
      if (!names.has(stage.image)) {
        const match = /^node:(\d+\.\d+\.\d+)-bookworm-slim(@sha256:[0-9a-f]{64})?$/.exec(stage.image);
        assert.ok(match, `base image ${stage.image} is node:<x.y.z>-bookworm-slim, pinned by full tag`);
        assert.equal(
          match[1],
          nodeVersion,
          `the image's Node (${match[1]}) is the workspace's "node" devDependency (${nodeVersion}): change both`,
        );
        assert.match(match[1] ?? '', /^24\./);
      }
      if (stage.name) names.add(stage.name);
    }
    assert.doesNotMatch(read('Dockerfile'), /:latest\b/);
    assert.equal(finalStage.name, 'runtime');
  });

  it('installs production dependencies only, with npm ci and no install scripts', () => {
    const runs = dockerfile.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    const install = runs.find((r) => /\bnpm ci\b/.test(r));
    assert.ok(install, 'dependencies are installed with npm ci (from the lock file)');
    assert.match(install, /--omit=dev\b/);
    assert.match(install, new RegExp(`--workspace[= ]${serverPackage.name}\\b`));
    assert.match(install, /--include-workspace-root=false\b/);
    assert.match(install, /--ignore-scripts\b/);
    for (const run of runs) assert.doesNotMatch(run, /\bnpm (install|i|add)\b/, run);
    assert.ok(!dockerfile.some((i) => i.keyword === 'ADD'), 'COPY, never ADD');
  });

  it('copies only what runs into the final stage, at the paths the CMD expects', () => {
    const copies = finalOf('COPY').map((i) => copyParts(i.args));
    const fromStages = copies.filter((c) => c.flags.has('from'));
    assert.deepEqual(
      fromStages.map((c) => [c.flags.get('from'), c.sources, c.dest]),
      [['deps', ['/app/node_modules'], './node_modules']],
      'only node_modules comes from the deps stage',
    );
    assert.deepEqual(
      copies.filter((c) => !c.flags.has('from')).flatMap((c) => c.sources),
      ['packages/server/package.json', 'packages/server/src'],
      'the final stage copies the server package.json and sources, nothing else',
    );
    for (const copy of hostCopies) {
      for (const source of copy.sources) {
        assert.doesNotMatch(
          source,
          /[*?]|^\.$|^\.\/?$|\.env/,
          `no wildcard, whole-context or .env copies: ${source}`,
        );
        assert.ok(existsSync(join(ROOT, source)), `${source} exists`);
        // Same layout as the repository, so relative paths (CMD, ../package.json) resolve. A
        // directory's contents land in dest; a file lands in dest/ or as dest.
        const isDir = statSync(join(ROOT, source)).isDirectory();
        const landsAt =
          isDir || !copy.dest.endsWith('/') ? copy.dest : `${copy.dest}${source.split('/').at(-1)}`;
        assert.equal(landsAt.replace(/^\.\//, '').replace(/\/$/, ''), source, `${source} keeps its path`);
      }
    }
    const [cmd] = finalOf('CMD');
    assert.ok(cmd);
    const argv = execForm(cmd.args);
    assert.equal(argv[0], 'node');
    assert.equal(argv[1], 'packages/server/src/main.ts');
    assert.ok(existsSync(join(ROOT, argv[1])));
  });

  it('runs as an unprivileged user behind an init, with a healthcheck, port and stop signal', () => {
    const order = finalStage.instructions.map((i) => i.keyword);
    const lastUser = finalOf('USER').at(-1);
    assert.ok(lastUser, 'the final stage sets USER');
    assert.doesNotMatch(lastUser.args, /^(root|0)(:|$)/, 'not root');
    assert.ok(order.lastIndexOf('USER') < order.indexOf('CMD'), 'USER comes before CMD');
    assert.ok(order.lastIndexOf('USER') < order.indexOf('ENTRYPOINT'), 'USER comes before ENTRYPOINT');
    assert.ok(
      order.lastIndexOf('USER') > order.lastIndexOf('RUN'),
      'nothing RUNs after dropping to the user',
    );

    const [entrypoint] = finalOf('ENTRYPOINT');
    assert.ok(entrypoint);
    assert.deepEqual(execForm(entrypoint.args), ['/usr/bin/tini', '--'], 'tini forwards signals and reaps');
    assert.ok(finalOf('RUN').some((r) => /apt-get install .*\btini\b/.test(r.args)));

    assert.deepEqual(
      finalOf('EXPOSE').map((i) => i.args),
      ['8000'],
    );
    assert.deepEqual(
      finalOf('STOPSIGNAL').map((i) => i.args),
      ['SIGTERM'],
    );
    assert.ok(finalOf('ENV').some((i) => /^NODE_ENV=production$/.test(i.args)));

    const healthcheck = imageHealthcheck();
    assert.equal(healthcheck[0], 'node', 'Node fetch: the slim image has no curl or wget');
    assert.match(healthcheck.join(' '), /\/health\b/);
    assert.match(finalOf('HEALTHCHECK')[0]?.args ?? '', /--interval=\S+ --timeout=\S+/);
  });

  it('bakes in no secrets', () => {
    for (const instruction of dockerfile.filter((i) => i.keyword === 'ENV' || i.keyword === 'ARG')) {
      assert.doesNotMatch(instruction.args, /TOKEN|SECRET|PASSW|KEY|CREDENTIAL/i, instruction.args);
    }
  });
});

describe('.dockerignore', () => {
  const patterns = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));

  /** A .dockerignore glob (`*`, `?`, `**` across directories) as an anchored regular expression. */
  function globToRegex(glob: string): RegExp {
    let source = '';
    for (let i = 0; i < glob.length; i++) {
      const char = glob[i] ?? '';
      if (glob.startsWith('**/', i)) {
        source += '(?:.*/)?';
        i += 2;
      } else if (glob.startsWith('**', i)) {
        source += '.*';
        i += 1;
      } else if (char === '*') source += '[^/]*';
      else if (char === '?') source += '[^/]';
      else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
    return new RegExp(`^${source}$`);
  }

  /** Docker's rule: the last matching pattern wins; a pattern matching a parent matches too. */
  function excluded(path: string): boolean {
    let result = false;
    for (const pattern of patterns) {
      const negated = pattern.startsWith('!');
      const glob = negated ? pattern.slice(1) : pattern;
      const regex = globToRegex(glob);
      const parts = path.split('/');
      const candidates = parts.map((_, n) => parts.slice(0, n + 1).join('/'));
      if (candidates.some((c) => regex.test(c))) result = !negated;
    }
    return result;
  }

  it('denies everything by default and lets in exactly what the Dockerfile copies', () => {
    assert.equal(patterns[0], '*');
    const allowed = patterns.filter((p) => p.startsWith('!')).map((p) => p.slice(1));
    assert.deepEqual(allowed.sort(), [...new Set(hostCopies.flatMap((c) => c.sources))].sort());
  });

  it('keeps secrets, VCS data, dependencies, tests and other packages out of the build context', () => {
    for (const path of [
      '.env',
      '.env.production',
      'packages/server/src/.env',
      '.git/config',
      'node_modules/fastify/package.json',
      'packages/server/node_modules/x/index.js',
      'packages/server/test/deploy-files.test.ts',
      'packages/client/src/client.ts',
      'bench/run.ts',
      'docker-compose.yml',
      'setup.sh',
    ]) {
      assert.ok(excluded(path), `${path} is excluded`);
    }
    for (const path of [
      'package.json',
      'package-lock.json',
      'packages/server/package.json',
      'packages/server/src/main.ts',
      'packages/server/src/egress/guard.ts',
    ]) {
      assert.ok(!excluded(path), `${path} is in the build context`);
    }
  });
});

describe('the image at run time', () => {
  it('needs only production dependencies: every package the server imports is one', () => {
    const missing: string[] = [];
    const walk = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
        entry.isDirectory()
          ? walk(join(dir, entry.name))
          : entry.name.endsWith('.ts')
            ? [join(dir, entry.name)]
            : [],
      );
    for (const file of walk(join(ROOT, 'packages/server/src'))) {
      const source = readFileSync(file, 'utf8');
      // `import type` is erased by type stripping; every other import is loaded.
      const specifiers = [
        ...source.matchAll(/^\s*(?:import(?!\s+type\s)|export)\b[^'"]*?\bfrom\s+'([^']+)'/gm),
        ...source.matchAll(/^\s*import\s+'([^']+)'/gm),
        ...source.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
      ].map((m) => m[1] ?? '');
      for (const specifier of specifiers) {
        if (specifier.startsWith('.') || specifier.startsWith('node:')) continue;
        const name = specifier.startsWith('@')
          ? specifier.split('/').slice(0, 2).join('/')
          : (specifier.split('/')[0] ?? '');
        if (!(name in serverPackage.dependencies)) missing.push(`${name} (${file.slice(ROOT.length)})`);
      }
    }
    assert.deepEqual(missing, [], 'imported at run time but not in packages/server dependencies');
  });

  it('starts with the CMD, passes the HEALTHCHECK, and stops cleanly on the STOPSIGNAL', async () => {
    const [cmd] = finalOf('CMD');
    const argv = execForm(cmd?.args ?? '[]');
    const port = await freePort();
    const env = {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      PROXY_TOKEN: 'd'.repeat(64),
      DOTENV_PATH: '/nonexistent/.env',
    };
    const child = spawn(process.execPath, argv.slice(1), {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await Promise.race([
        waitForPort(port),
        exited.then((code) => assert.fail(`the server exited (${code}) before listening:\n${output}`)),
      ]);
      const healthcheck = imageHealthcheck();
      const probe = (probePort: number) =>
        spawnSync(process.execPath, healthcheck.slice(1), {
          env: { PATH: env.PATH, PORT: String(probePort) },
          timeout: 10_000,
        }).status;
      assert.equal(probe(port), 0, 'healthy while serving');
      assert.equal(probe(await freePort()), 1, 'unhealthy when nothing answers');

      assert.equal(finalOf('STOPSIGNAL')[0]?.args, 'SIGTERM');
      child.kill('SIGTERM');
      assert.equal(await exited, 0, 'graceful shutdown on SIGTERM');
      assert.match(output, /shut down cleanly/);
      assert.doesNotMatch(output, /ExperimentalWarning|Unknown file extension/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

// ---------------------------------------------------------------------------------------------

interface ComposeService {
  build?: { context?: string } | string;
  image?: string;
  restart?: string;
  read_only?: boolean;
  cap_drop?: string[];
  security_opt?: string[];
  environment?: Record<string, string>;
  env_file?: { path: string; required?: boolean }[];
  ports?: string[];
  tmpfs?: string[];
  healthcheck?: { test?: string[] | string };
  stop_grace_period?: string;
  depends_on?: Record<string, { condition?: string }>;
  networks?: string[];
  user?: string;
  volumes?: string[];
}

const composeText = read('docker-compose.yml');
const compose = parseYaml(composeText) as {
  services: Record<string, ComposeService>;
  networks?: Record<string, { internal?: boolean } | null>;
  volumes?: Record<string, unknown>;
};

/** Seconds in a Compose duration such as `20s` or `1m30s`. */
function seconds(duration: string): number {
  let total = 0;
  for (const [, n, unit] of duration.matchAll(/(\d+)(h|ms|m|s)/g)) {
    total += Number(n) * ({ h: 3600, m: 60, s: 1, ms: 0.001 }[unit ?? 's'] ?? 1);
  }
  return total;
}

/** Names of the environment variables the server reads (the ENV_VARS table, config and main). */
function serverEnvVars(): { table: string[]; all: string[] } {
  const table = ENV_VARS.map(([name]) => name);
  assert.ok(table.length >= 20, 'the ENV_VARS table is there');
  const sources = ['config/config.ts', 'config/sources.ts', 'main.ts'].map((file) =>
    read(`packages/server/src/${file}`),
  );
  const direct = sources.flatMap((text) =>
    [...text.matchAll(/\benv\.([A-Z][A-Z0-9_]*)\b/g)].map((m) => m[1] ?? ''),
  );
  return { table, all: [...new Set([...table, ...direct])] };
}

describe('docker-compose.yml', () => {
  const proxy = compose.services.proxy as ComposeService;
  const redis = compose.services.redis as ComposeService;

  it('has the proxy and a redis', () => {
    assert.ok(compose.services.proxy && compose.services.redis);
    assert.deepEqual(proxy.build, { context: '.' });
  });

  it('requires PROXY_TOKEN, with a message saying how to set it', () => {
    const value = proxy.environment?.PROXY_TOKEN ?? '';
    assert.match(value, /^\$\{PROXY_TOKEN:\?[^}]*set PROXY_TOKEN[^}]*\}$/);
    assert.deepEqual(proxy.env_file, [{ path: '.env', required: false }], 'the whole .env reaches the proxy');
    assert.equal(proxy.environment?.HOST, '0.0.0.0');
    assert.equal(proxy.environment?.PORT, '8000');
  });

  it('runs the proxy hardened: read-only, no capabilities, no privilege gain, restarted, healthy', () => {
    assert.equal(proxy.read_only, true);
    assert.deepEqual(proxy.cap_drop, ['ALL']);
    assert.ok(proxy.security_opt?.includes('no-new-privileges:true'));
    assert.ok(['unless-stopped', 'always', 'on-failure'].includes(proxy.restart ?? ''), 'a restart policy');
    assert.ok(proxy.tmpfs?.some((t) => t.startsWith('/tmp:')));
    assert.deepEqual(proxy.healthcheck?.test, ['CMD', ...imageHealthcheck()], 'the same check as the image');
    const shutdownMs = loadConfig({}).shutdownTimeoutMs;
    assert.ok(seconds(proxy.stop_grace_period ?? '10s') * 1000 > shutdownMs, 'stop_grace_period > shutdown');
    assert.equal(proxy.ports?.length, 1);
    assert.match(
      proxy.ports?.[0] ?? '',
      /^\$\{MCP_PROXY_PUBLISH:-127\.0\.0\.1:8000\}:8000$/,
      'loopback unless told',
    );
    assert.equal(proxy.depends_on?.redis?.condition, 'service_healthy');
  });

  it('gives DATA_DIR a named volume the unprivileged user can write (the root file system is read-only)', () => {
    // The vault key, the signing key and the embedded store live there (FIX-OAUTH5 item 9): on a
    // read-only root they need a volume, and a named one keeps them across restarts.
    const workdir =
      finalOf('WORKDIR').at(-1)?.args ?? stages[0]?.instructions.find((i) => i.keyword === 'WORKDIR')?.args;
    assert.ok(workdir, 'the image sets a WORKDIR');
    const dataDir = proxy.environment?.DATA_DIR ?? loadConfig({}).dataDir;
    const path = posix.resolve(workdir, dataDir);
    const mount = proxy.volumes?.map((v) => v.split(':')).find(([, target]) => target === path);
    assert.ok(mount, `a volume is mounted at ${path}: ${JSON.stringify(proxy.volumes)}`);
    const [source, , mode] = mount;
    assert.match(source ?? '', /^[A-Za-z0-9][\w.-]*$/, 'a named volume, not a host path');
    assert.notEqual(mode, 'ro');
    assert.ok(compose.volumes && Object.hasOwn(compose.volumes, source ?? ''), 'declared under volumes:');
    // A new named volume takes the owner of the image's directory: the image creates it for the
    // user it runs as (else Docker creates it root-owned, and the proxy cannot write).
    const user = finalOf('USER').at(-1)?.args ?? '';
    const made = finalOf('RUN').some(
      (r) => r.args.includes(`mkdir -p ${path}`) && r.args.includes(`chown ${user} ${path}`),
    );
    assert.ok(made, `the image creates ${path} owned by ${user}`);
  });

  it('runs redis unpublished on an internal network, read-only, with a healthcheck', () => {
    assert.match(redis.image ?? '', /^redis:7(\.\d+)*-alpine$/);
    assert.equal(redis.ports, undefined, 'redis is never published');
    assert.equal(redis.read_only, true);
    assert.deepEqual(redis.cap_drop, ['ALL']);
    assert.ok(redis.security_opt?.includes('no-new-privileges:true'));
    assert.ok(redis.restart);
    assert.deepEqual(redis.healthcheck?.test, ['CMD', 'redis-cli', 'ping']);
    assert.deepEqual(redis.networks, ['backend']);
    assert.equal(compose.networks?.backend?.internal, true);
    assert.ok(proxy.networks?.includes('backend'));
    assert.equal(proxy.environment?.REDIS_URL, 'redis://redis:6379');
  });

  it('says truthfully whether the proxy reads REDIS_URL', () => {
    const reads = serverEnvVars().all.includes('REDIS_URL');
    for (const [file, text] of [
      ['docker-compose.yml', composeText],
      ['.env.example', read('.env.example')],
    ] as const) {
      assert.equal(
        /does not read (REDIS_URL|it) yet/.test(text),
        !reads,
        `${file}: update the REDIS_URL note now that the proxy ${reads ? 'reads' : 'does not read'} it`,
      );
    }
  });

  it('uses $ only for interpolation', () => {
    for (const match of composeText.matchAll(/\$(?!\{[A-Z_][A-Z0-9_]*(:?[-?][^}]*)?\}|\$)/g)) {
      assert.fail(`stray $ at offset ${match.index}: escape it as $$`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Several instances (issue 19): nginx round robin, three replicas, one Redis: the shape the
// rolling-restart and relay tests run (test/helpers/cluster.ts).

interface ReplicasService extends ComposeService {
  deploy?: { replicas?: number };
  volumes?: string[];
}

const replicasText = read('docker-compose.replicas.yml');
const replicas = parseYaml(replicasText, { merge: true }) as {
  services: Record<string, ReplicasService>;
  networks?: Record<string, { internal?: boolean } | null>;
};
const nginxConf = read('deploy/nginx.conf');

/** The directives inside the first `location / { … }` of an nginx configuration text. */
function rootLocation(text: string): string[] {
  const match = /location \/ \{([^}]*)\}/.exec(text);
  assert.ok(match, 'a location / block');
  return (match[1] ?? '')
    .split(';')
    .map((line) => line.replace(/\s+/g, ' ').trim())
    .filter((line) => line !== '');
}

describe('docker-compose.replicas.yml and deploy/nginx.conf', () => {
  const nginx = replicas.services.nginx as ReplicasService;
  const proxy = replicas.services.proxy as ReplicasService;
  const redis = replicas.services.redis as ReplicasService;

  it('runs nginx in front of three proxy replicas sharing one Redis', () => {
    assert.deepEqual(Object.keys(replicas.services).sort(), ['nginx', 'proxy', 'redis']);
    assert.equal(proxy.deploy?.replicas, 3);
    assert.deepEqual(proxy.build, { context: '.' });
    assert.equal(proxy.environment?.REDIS_URL, 'redis://redis:6379');
    assert.match(proxy.environment?.PROXY_TOKEN ?? '', /^\$\{PROXY_TOKEN:\?[^}]*set PROXY_TOKEN[^}]*\}$/);
    assert.equal(proxy.ports, undefined, 'replicas are reached through nginx only');
    assert.ok(nginx.volumes?.includes('./deploy/nginx.conf:/etc/nginx/nginx.conf:ro'));
    assert.match(nginx.ports?.[0] ?? '', /^\$\{MCP_PROXY_PUBLISH:-127\.0\.0\.1:8000\}:8080$/);
    assert.equal(redis.ports, undefined);
    assert.deepEqual(redis.networks, ['backend']);
    assert.equal(replicas.networks?.backend?.internal, true);
  });

  it('hardens every service and lets a replica drain before it is killed', () => {
    for (const [name, service] of Object.entries(replicas.services)) {
      assert.equal(service.read_only, true, `${name} read-only`);
      assert.deepEqual(service.cap_drop, ['ALL'], `${name} drops capabilities`);
      assert.ok(service.security_opt?.includes('no-new-privileges:true'), `${name} no-new-privileges`);
      assert.ok(service.restart, `${name} restarts`);
    }
    assert.equal(nginx.user, '101:101', 'nginx runs unprivileged');
    assert.deepEqual(proxy.healthcheck?.test, ['CMD', ...imageHealthcheck()]);
    const drainMs = Number(/\$\{DRAIN_DELAY_MS:-(\d+)\}/.exec(proxy.environment?.DRAIN_DELAY_MS ?? '')?.[1]);
    assert.ok(drainMs > 0, 'a drain delay by default');
    const shutdownMs = loadConfig({}).shutdownTimeoutMs;
    assert.ok(
      seconds(proxy.stop_grace_period ?? '10s') * 1000 > drainMs + shutdownMs,
      'grace > drain + shutdown',
    );
  });

  it('balances round robin with no affinity, as the tests’ nginx does', () => {
    assert.doesNotMatch(nginxConf, /^\s*(ip_hash|hash|sticky)\b/m, 'no affinity');
    const harness = read('packages/server/test/helpers/cluster.ts');
    assert.deepEqual(rootLocation(nginxConf), rootLocation(harness), 'the same location / as the tests');
    assert.match(nginxConf, /server proxy:8000 max_fails=1 fail_timeout=2s;/);
    assert.match(harness, /max_fails=1 fail_timeout=2s;/);
    for (const directive of ['keepalive 32;', 'proxy_set_header Upgrade $http_upgrade;'])
      assert.ok(nginxConf.includes(directive), directive);
    assert.match(
      harness,
      /keepalive_timeout \$\{NGINX_IDLE_S\}s;/,
      'the tests’ nginx sets its idle timeout too',
    );
  });

  it('lets a draining replica leave idle connections to nginx until nginx has closed them', () => {
    const nginxIdleMs = seconds(/^\s*keepalive_timeout (\d+s);/m.exec(nginxConf)?.[1] ?? '60s') * 1000;
    const drainIdleMs = Number(
      /\$\{DRAIN_IDLE_MS:-(\d+)\}/.exec(proxy.environment?.DRAIN_IDLE_MS ?? '')?.[1],
    );
    const defaults = loadConfig({});
    assert.ok(drainIdleMs > nginxIdleMs, 'DRAIN_IDLE_MS above nginx’s upstream keepalive_timeout');
    assert.ok(drainIdleMs < defaults.shutdownTimeoutMs / 2, 'DRAIN_IDLE_MS within the drain’s bound');
    assert.ok(defaults.server.keepAliveTimeoutMs > nginxIdleMs, 'KEEP_ALIVE_TIMEOUT_MS above nginx’s too');
  });

  it('is a configuration nginx accepts', () => {
    const dir = mkdtempSync(join(scratch, 'nginx-'));
    const conf = join(dir, 'nginx.conf');
    // Compose's `proxy` name and the container's paths, made local.
    writeFileSync(
      conf,
      nginxConf
        .replaceAll('/tmp/', `${dir}/`)
        .replace('server proxy:8000', 'server 127.0.0.1:9')
        .replace('error_log /dev/stderr', `error_log ${dir}/error.log`),
    );
    const binary = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
    const result = spawnSync(binary, ['-t', '-p', dir, '-e', join(dir, 'error.log'), '-c', conf], {
      encoding: 'utf8',
    });
    assert.equal(result.status, 0, `${result.error?.message ?? ''}${result.stderr}`);
  });

  it('uses $ only for interpolation', () => {
    for (const match of replicasText.matchAll(/\$(?!\{[A-Z_][A-Z0-9_]*(:?[-?][^}]*)?\}|\$)/g)) {
      assert.fail(`stray $ at offset ${match.index}: escape it as $$`);
    }
  });
});

describe('.env.example', () => {
  const example = read('.env.example');

  it('lists every environment variable the server reads, and every documented one', () => {
    const documented = [...read('docs/configuration.md').matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map(
      (m) => m[1] ?? '',
    );
    for (const name of new Set([...serverEnvVars().all, ...documented])) {
      assert.ok(new RegExp(`^(# )?${name}=`, 'm').test(example), `.env.example lists ${name}`);
    }
  });

  it('shows the built-in defaults: uncommented, it configures exactly the defaults', () => {
    const uncommented = example.replace(/^# ([A-Z][A-Z0-9_]*=)/gm, '$1');
    const names = [...uncommented.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]);
    assert.ok(names.length >= serverEnvVars().table.length);
    const path = join(scratch, 'uncommented.env');
    writeFileSync(path, uncommented);
    assert.deepEqual(loadConfig({ dotenvPath: path }), loadConfig({}));
  });

  it('holds no secret', () => {
    const values = parseDotenv(example);
    assert.deepEqual(
      Object.keys(values),
      ['PROXY_TOKEN'],
      'only PROXY_TOKEN is set, for setup.sh to fill in',
    );
    assert.equal(values.PROXY_TOKEN, '');
  });
});

// ---------------------------------------------------------------------------------------------

describe('setup.sh', () => {
  const script = read('setup.sh');
  let copies = 0;

  /** A copy of the files setup.sh works on, and a bin directory of stubs first in PATH. */
  function sandbox(): { repo: string; bin: string; npmLog: string } {
    const base = join(scratch, `setup-${++copies}`);
    const repo = join(base, 'repo');
    const bin = join(base, 'bin');
    mkdirSync(repo, { recursive: true });
    mkdirSync(bin);
    for (const file of ['setup.sh', '.env.example', 'package.json', 'package-lock.json']) {
      copyFileSync(join(ROOT, file), join(repo, file));
    }
    chmodSync(join(repo, 'setup.sh'), 0o755);
    const npmLog = join(base, 'npm.log');
    stub(bin, 'npm', `printf '%s %s\\n' "$PWD" "$*" >> '${npmLog}'`);
    return { repo, bin, npmLog };
  }

  function stub(bin: string, name: string, body: string): void {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  }

  /** Runs the copy's setup.sh from another directory. */
  function run(box: { repo: string; bin: string }, ...args: string[]): SpawnSyncReturns<string> {
    return spawnSync(join(box.repo, 'setup.sh'), args, {
      cwd: scratch,
      env: { PATH: `${box.bin}:${process.env.PATH ?? ''}`, HOME: scratch },
      encoding: 'utf8',
      timeout: 30_000,
    });
  }

  const tokenOf = (repo: string) => parseDotenv(readFileSync(join(repo, '.env'), 'utf8')).PROXY_TOKEN ?? '';

  it('is strict, executable bash', () => {
    assert.match(script, /^#!\/usr\/bin\/env bash\n/);
    assert.match(script, /^set -euo pipefail$/m);
    assert.ok((statSync(join(ROOT, 'setup.sh')).mode & 0o111) === 0o111, 'setup.sh is executable');
    const syntax = spawnSync('bash', ['-n', join(ROOT, 'setup.sh')], { encoding: 'utf8' });
    assert.equal(syntax.status, 0, syntax.stderr);
  });

  it('--help explains itself and changes nothing', () => {
    const box = sandbox();
    const result = run(box, '--help');
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^Usage: \.\/setup\.sh/);
    assert.match(result.stdout, /never overwritten/);
    assert.ok(!existsSync(join(box.repo, '.env')));
    assert.ok(!existsSync(box.npmLog), 'npm was not run');

    const bad = run(box, '--frobnicate');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown option: --frobnicate/);
  });

  it('installs with npm ci and creates .env with a strong token, from any directory', () => {
    const box = sandbox();
    const result = run(box);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(readFileSync(box.npmLog, 'utf8'), `${box.repo} ci\n`, 'npm ci ran once, in the repository');

    const envPath = join(box.repo, '.env');
    const token = tokenOf(box.repo);
    assert.ok(token.length >= 32, 'a 32+ character token');
    assert.match(token, /^[0-9a-f]{64}$/, '256 bits of hex: safe in URLs and the WebSocket subprotocol');
    assert.equal(statSync(envPath).mode & 0o777, 0o600, '.env is readable by its owner only');
    assert.ok(!result.stdout.includes(token), 'the token is not printed');
    assert.match(result.stdout, /Created \.env/);
    assert.match(result.stdout, /npm start/);
    assert.match(result.stdout, /docker compose up/);
    assert.equal(
      readFileSync(envPath, 'utf8'),
      read('.env.example').replace(/^PROXY_TOKEN=$/m, `PROXY_TOKEN=${token}`),
      '.env is .env.example with the token filled in',
    );
    assert.deepEqual(loadConfig({ dotenvPath: envPath }).proxyTokens, [token], 'the proxy accepts it');
    assert.deepEqual(readdirSync(box.repo).sort(), [
      '.env',
      '.env.example',
      'package-lock.json',
      'package.json',
      'setup.sh',
    ]);

    const other = sandbox();
    assert.equal(run(other, '--skip-install').status, 0);
    assert.notEqual(tokenOf(other.repo), token, 'tokens are random');
    assert.ok(!existsSync(other.npmLog), '--skip-install skips npm');
  });

  it('is idempotent and never overwrites an existing .env', () => {
    const box = sandbox();
    assert.equal(run(box).status, 0);
    const envPath = join(box.repo, '.env');
    const first = readFileSync(envPath, 'utf8');

    const again = run(box);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(readFileSync(envPath, 'utf8'), first, 'the second run keeps .env byte for byte');
    assert.match(again.stdout, /Kept the existing \.env: setup\.sh never overwrites it\./);
    assert.equal(readFileSync(box.npmLog, 'utf8'), `${box.repo} ci\n${box.repo} ci\n`);

    writeFileSync(envPath, 'LOG_LEVEL=debug\n');
    const custom = run(box, '--skip-install');
    assert.equal(custom.status, 0, custom.stderr);
    assert.equal(readFileSync(envPath, 'utf8'), 'LOG_LEVEL=debug\n', 'an operator-written .env is untouched');
    assert.match(custom.stdout, /never overwrites/);
    assert.match(custom.stdout, /sets no PROXY_TOKEN/);
  });

  it('still generates a strong token without openssl, and without node', () => {
    const box = sandbox();
    stub(box.bin, 'openssl', 'exit 1');
    assert.equal(run(box, '--skip-install').status, 0);
    assert.match(tokenOf(box.repo), /^[0-9a-f]{64}$/, 'from node');

    const bare = sandbox();
    stub(bare.bin, 'openssl', 'exit 1');
    stub(bare.bin, 'node', 'exit 1');
    assert.equal(run(bare, '--skip-install').status, 0);
    assert.match(tokenOf(bare.repo), /^[0-9a-f]{64}$/, 'from /dev/urandom');
  });

  it('fails clearly when npm is needed but missing', () => {
    const box = sandbox();
    rmSync(join(box.bin, 'npm'));
    // A PATH with only the tools setup.sh uses, so no system npm can be found either.
    const tools = join(box.bin, '..', 'tools');
    mkdirSync(tools);
    for (const tool of ['bash', 'dirname', 'cat', 'grep', 'mktemp', 'awk', 'od', 'tr', 'rm', 'openssl']) {
      const found = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      if (found) symlinkSync(found, join(tools, tool));
    }
    const result = spawnSync(join(box.repo, 'setup.sh'), [], {
      cwd: scratch,
      env: { PATH: `${box.bin}:${tools}`, HOME: scratch },
      encoding: 'utf8',
    });
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, /npm not found: install Node\.js/);
    assert.ok(!existsSync(join(box.repo, '.env')), 'nothing half done');
    assert.equal(run(box, '--skip-install').status, 0, 'but --skip-install needs no npm');
  });
});
