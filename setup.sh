#!/usr/bin/env bash
# Sets up mcp-proxy in this checkout: installs dependencies (npm ci) and creates .env with a
# strong random PROXY_TOKEN. Safe to run again: an existing .env is never overwritten.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: ./setup.sh [--skip-install] [--help]

Sets up mcp-proxy in the directory this script lives in (it works from any current directory):

  1. installs the dependencies with `npm ci` (skipped with --skip-install, e.g. for Docker);
  2. creates .env from .env.example with a strong random PROXY_TOKEN (64 hex characters),
     readable only by you. An existing .env is never overwritten or changed;
  3. prints how to start the proxy.

Running it again is safe: it reinstalls the dependencies and keeps your .env.

Options:
  --skip-install   do not run npm ci
  -h, --help       show this help and exit
EOF
}

die() {
  printf 'setup.sh: %s\n' "$1" >&2
  exit "${2:-1}"
}

install=true
while (($# > 0)); do
  case "$1" in
    --skip-install) install=false ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown option: $1 (see ./setup.sh --help)" 2 ;;
  esac
  shift
done

root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
cd -- "$root"

# 64 hex characters (256 bits): hex needs no quoting in .env, shells, URLs or the WebSocket
# subprotocol `proxy-token.<token>`, where base64's / and = are not allowed.
generate_token() {
  local token
  token="$(openssl rand -hex 32 2>/dev/null)" ||
    token="$(node -e "process.stdout.write(require('node:crypto').randomBytes(32).toString('hex'))" 2>/dev/null)" ||
    token="$(od -An -N32 -tx1 /dev/urandom 2>/dev/null | tr -d ' \n')" ||
    token=''
  [[ "$token" =~ ^[0-9a-f]{64}$ ]] || die 'could not generate a random token (tried openssl, node and /dev/urandom)'
  printf '%s' "$token"
}

if [[ "$install" == true ]]; then
  command -v npm >/dev/null 2>&1 || die 'npm not found: install Node.js (which brings npm), then run ./setup.sh again'
  echo 'Installing dependencies (npm ci)…'
  npm ci
else
  echo 'Skipping npm ci (--skip-install).'
fi

if [[ -e .env ]]; then
  echo 'Kept the existing .env: setup.sh never overwrites it.'
  if ! grep -Eq '^[[:space:]]*(export[[:space:]]+)?PROXY_TOKEN[[:space:]]*=[[:space:]]*[^[:space:]#]' .env; then
    echo 'Note: it sets no PROXY_TOKEN. Add one with:'
    # shellcheck disable=SC2016 # printed for the user to run, not expanded here
    echo '  echo "PROXY_TOKEN=$(openssl rand -hex 32)" >> .env'
  fi
else
  token="$(generate_token)"
  tmp="$(mktemp)" # mode 600
  trap 'rm -f -- "$tmp"' EXIT
  if [[ -f .env.example ]]; then
    awk -v token="$token" '
      !done && /^PROXY_TOKEN=/ { print "PROXY_TOKEN=" token; done = 1; next }
      { print }
      END { if (!done) print "PROXY_TOKEN=" token }
    ' .env.example >"$tmp"
  else
    printf '# mcp-proxy settings: see docs/configuration.md\nPROXY_TOKEN=%s\n' "$token" >"$tmp"
  fi
  # noclobber creates .env exclusively (O_EXCL): even a concurrent run cannot overwrite one.
  if (umask 077 && set -o noclobber && cat -- "$tmp" >.env) 2>/dev/null; then
    echo 'Created .env with a new random PROXY_TOKEN (mode 600; the token is not printed here).'
  elif [[ -e .env ]]; then
    echo 'Kept the existing .env: setup.sh never overwrites it.'
  else
    die "could not create $root/.env"
  fi
fi

cat <<'EOF'

Next steps:
  npm start                          # the proxy on http://0.0.0.0:8000
  docker compose up -d --build       # or in Docker, with the same .env
  curl -fsS http://127.0.0.1:8000/health

Callers send the token from .env in the X-Proxy-Token header:
  grep '^PROXY_TOKEN=' .env
Before exposing the proxy, read docs/deployment.md (TLS, CORS_ORIGINS, EGRESS_ALLOWED_HOSTS).
EOF
