#!/usr/bin/env bash
# Installs the Debian 12 packages mmfuse needs and builds it into build/.
# Usage: scripts/setup.sh            (as root, or with sudo available)
set -euo pipefail
cd "$(dirname "$0")/.."

# Every tool the build, the tests (tests/unit, tests/cli, tests/browser, tests/tools) and the
# scripts call is listed here, so `scripts/demo.sh` and `.ci/run` work on a minimal Debian 12
# (debootstrap --variant=minbase; scripts/fresh_machine_check.sh checks exactly that):
#   curl             tests/cli/serve_cli.sh (HTTP requests against `mmfuse serve`)
#   python3-yaml     tests/cli/deploy_files.sh (parses deploy/*.yml and deploy/k8s/*.yaml)
#   python3          /usr/bin/python3 in tests/cli/*.sh and tests/unit (JSON checks; sqlite3 module)
#   python3-numpy    tests/cli/speech_cli.sh, tests/tools/iforest_sklearn.py
#   python3-pil      tests/cli/index_cli.sh (writes test images)
#   python3-sklearn  test_sensor_iforest.cpp (scikit-learn reference scores)
#   python3-scipy    scikit-learn's dependency; tests/tools/make_sound_fixtures.py
#   mosquitto        /usr/sbin/mosquitto, the broker test_alarm_mqtt.cpp starts
#   sqlite3          the sqlite3 shell, for looking into stores by hand (docs/store.md)
#   ca-certificates  HTTPS for `npm ci` (scripts/build_web.sh) and `mmfuse pull`
#   nodejs npm chromium  dashboard build and browser tests (tests/browser)
#   clang libclang-rt-14-dev  the ASan+UBSan and libFuzzer build of scripts/test.sh
#   libomp-dev       clang's omp.h, which FAISS's headers include (that same clang build;
#                    gcc brings its own)
PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  libopenblas-dev libdnnl-dev libfaiss-dev libsqlite3-dev sqlite3 nlohmann-json3-dev libcli11-dev libcurl4-openssl-dev libssl-dev libxxhash-dev
  libjpeg-dev libpng-dev libwebp-dev libutf8proc-dev
  libmodbus-dev libsndfile1-dev libsoxr-dev libfftw3-dev
  libyaml-cpp-dev libmosquitto-dev mosquitto libcpp-httplib-dev libopencv-dev ccache
  # PostgreSQL back-end of the store (libpq) and the server its tests start (initdb, postgres)
  libpq-dev postgresql
  libsentencepiece-dev
  libgtest-dev libgmock-dev clang libclang-rt-14-dev libomp-dev clang-format
  python3 python3-numpy python3-pil python3-sklearn python3-scipy python3-yaml
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

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMMFUSE_BATCH_BUILD=ON >/dev/null
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
