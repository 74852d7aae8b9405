# mcp-proxy server image.
#
#   docker build -t mcp-proxy:0.1.0 .
#   docker run --rm -p 127.0.0.1:8000:8000 -e PROXY_TOKEN="$(openssl rand -hex 32)" \
#     --read-only --cap-drop ALL --security-opt no-new-privileges:true mcp-proxy:0.1.0
#
# The server is TypeScript run directly by Node 24 (type stripping): there is no build step, so
# the image holds only the server's sources, its package.json and its production dependencies.
# It writes nothing to disk at run time (logs are JSON on stdout), so a read-only root file
# system works; Node's compile cache is made while the image is built (below).
# Deployment guide: docs/deployment.md.

# One pinned base for every stage: the same Node as the workspace's `node` devDependency, so the
# image runs what the tests ran. Pin the digest too (node:24.21.0-bookworm-slim@sha256:…) if your
# registry policy asks for it.
FROM node:24.21.0-bookworm-slim AS base
WORKDIR /app

# Production dependencies of the server workspace only: no dev dependencies, no client package,
# no workspace root devDependencies (the `node` binary package, TypeScript, Biome). Install
# scripts are disabled: no runtime dependency needs one.
FROM base AS deps
COPY package.json package-lock.json ./
COPY packages/server/package.json packages/server/
RUN npm ci --omit=dev --workspace mcp-proxy-server --include-workspace-root=false \
      --ignore-scripts --no-audit --no-fund \
    && npm cache clean --force

FROM base AS runtime
# tini as PID 1 forwards SIGTERM to node and reaps orphans (stdio MCP servers may leave some),
# so the image behaves the same under `docker run`, compose and Kubernetes (which has no --init).
# Debian's package is not version-pinned on purpose: security updates must not break the build.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

ENV NODE_ENV=production

# Only what runs: dependencies, the server's package.json (read for its version) and its sources.
# Files stay owned by root, so the unprivileged user cannot modify the code it runs.
COPY --from=deps /app/node_modules ./node_modules
COPY packages/server/package.json packages/server/
COPY packages/server/src packages/server/src


# DATA_DIR (./data: the embedded store, the generated vault and signing keys) is the one place
# the proxy writes. Created for its user, so a volume mounted there (docker-compose.yml) starts
# owned by it: a new named volume takes the owner of the image's directory.
RUN mkdir -p /app/data node_modules/.cache/mcp-proxy/compile \
    && chown 1000:1000 /app/data node_modules/.cache/mcp-proxy/compile

# Node's compile cache (issue #16, packages/server/src/compile-cache.ts): without it every start
# strips the types of each module with a WebAssembly compiler it then keeps (a fresh proxy holds
# ~105 MiB of RSS instead of ~78). The proxy keeps the cache with its code (node_modules/.cache),
# which its user could not write at run time (nor anything under --read-only): so the image
# carries it. Node files a cache under a tag of its version, V8's flags and the *user id*, so it
# is made by the user that runs, by starting the entry once as it runs in a container (the same
# Node, flags and files), until it answers /health: the entry writes the cache once its modules
# are loaded. Root then owns it, readable by all: the proxy reads it and cannot change what it
# loads (new entries are not written, silently). An operator's NODE_OPTIONS that changes V8's
# flags, or another user id (`--user`, OpenShift's), misses it: that proxy starts cold, as before.
USER 1000:1000
RUN PROXY_TOKEN="$(node -e "process.stdout.write(require('node:crypto').randomBytes(32).toString('hex'))")" \
       HOST=127.0.0.1 PORT=8999 STORE=memory LOG_LEVEL=warn DOTENV_PATH=/nonexistent \
       node -e " \
         const child = require('node:child_process').spawn(process.execPath, ['packages/server/src/main.ts'], { stdio: 'inherit' }); \
         const until = Date.now() + 60000; \
         const poll = () => fetch('http://127.0.0.1:8999/health').then((r) => r.ok, () => false).then((ok) => { \
           if (ok) { child.kill('SIGTERM'); return; } \
           if (Date.now() > until) { child.kill('SIGKILL'); process.exit(1); } \
           setTimeout(poll, 200); \
         }); \
         child.on('exit', (code, signal) => process.exit(signal === 'SIGTERM' || code === 0 ? 0 : 1)); \
         poll();" \
    && test -n "$(ls -A node_modules/.cache/mcp-proxy/compile)"
USER root
RUN chown -R root:root node_modules/.cache/mcp-proxy/compile \
    && chmod -R a+rX,go-w node_modules/.cache/mcp-proxy/compile

# The base image's unprivileged `node` user, by number so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000

EXPOSE 8000
STOPSIGNAL SIGTERM

# Liveness through Node's own fetch (slim images have no curl or wget). Uses PORT from the
# environment, so set PORT as an environment variable (not only in a mounted .env) if you change it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/health',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "packages/server/src/main.ts"]
