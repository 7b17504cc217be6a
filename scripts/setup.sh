#!/usr/bin/env bash
# Installs the Debian 12 packages mmfuse needs and builds it into build/.
# Usage: scripts/setup.sh            (as root, or with sudo available)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libopenblas-dev libdnnl-dev libfaiss-dev libsqlite3-dev sqlite3 nlohmann-json3-dev libcli11-dev libcurl4-openssl-dev libssl-dev
  libjpeg-dev libpng-dev libwebp-dev libutf8proc-dev
  libmodbus-dev libsndfile1-dev libsoxr-dev libfftw3-dev
  libyaml-cpp-dev libmosquitto-dev mosquitto libcpp-httplib-dev libopencv-dev ccache
  libgtest-dev libgmock-dev clang libclang-rt-14-dev clang-format
  python3 python3-numpy python3-pil python3-sklearn python3-scipy
  nodejs npm chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  # A Node from another source (e.g. nodesource's nodejs, which bundles npm) satisfies nodejs/npm.
  if [[ "$p" == nodejs || "$p" == npm ]] && command -v "${p/nodejs/node}" >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build

# The dashboard (web/dist), served by `mmfuse serve`; needs node/npm (skipped without them).
# Without the npm registry it is left unbuilt (the browser tests then report "skipped");
# a type or bundle error fails the setup.
rc=0
scripts/build_web.sh || rc=$?
if [ "$rc" -eq 3 ]; then
  echo "setup: dashboard not built (npm ci failed); browser tests will be skipped" >&2
elif [ "$rc" -ne 0 ]; then
  exit "$rc"
fi
