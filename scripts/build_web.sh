#!/usr/bin/env bash
# Builds the dashboard into web/dist: `npm ci` (exact versions from web/package-lock.json), then
# the esbuild bundle. Works with Debian's nodejs/npm or a newer Node; skips cleanly without node.
# Usage: scripts/build_web.sh [--offline]   (--offline: reuse web/node_modules, no npm ci)
# Exit status: 0 built (or no node), 3 npm ci failed (registry unreachable), other: build error.
set -euo pipefail
cd "$(dirname "$0")/../web"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "build_web: node/npm not found; dashboard not built (apt-get install nodejs npm)" >&2
  exit 0
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "build_web: node $(node --version) is too old (need >= 18)" >&2
  exit 1
fi

if [ "${1:-}" != "--offline" ] || [ ! -d node_modules ]; then
  # npm >= 11 holds back install scripts unless allowed; esbuild's is an optional check and its
  # platform binary comes as an optional dependency either way, so no scripts are needed.
  if ! npm ci --no-audit --no-fund --ignore-scripts --loglevel=error; then
    echo "build_web: npm ci failed (is the npm registry reachable?); dashboard not built" >&2
    exit 3
  fi
fi
node node_modules/typescript/bin/tsc --noEmit -p .   # type check; esbuild only strips types
node build.mjs
