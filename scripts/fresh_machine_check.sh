#!/usr/bin/env bash
# Checks that the README's Quick start works on a fresh machine: debootstraps a minimal
# Debian 12 root (--variant=minbase), copies this machine's apt sources, CA certificates and
# npm configuration into it (so it reaches the same mirrors and registries), puts the current
# commit of this repository in /root/mmfuse, and runs the Quick start commands there as root
# through chroot, exactly as written:
#     scripts/demo.sh
#     .ci/run
# Usage (as root): scripts/fresh_machine_check.sh [--demo-only] [--dir DIR] [--clean]
#   --demo-only  run only scripts/demo.sh (setup + build + demo; much quicker than .ci/run)
#   --dir DIR    where to build the root (default: a new /var/tmp/mmfuse-fresh.XXXXXX); an
#                existing root there is reused (packages and ccache kept: a quick rerun of the
#                tests, no longer a fresh machine; the repository copy is always replaced)
#   --clean      delete the root afterwards (only when nothing is still mounted in it)
# Needs debootstrap (installed with apt-get when missing) and network access to the mirror.
# Takes long: a debootstrap, about 650 MB of packages (the root grows to about 4 GB) and a
# cold build (plus, without --demo-only, the ASan build and every test). Not part of .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

DEMO_ONLY=0
CLEAN=0
ROOT=""
while (($#)); do
  case "$1" in
    --demo-only) DEMO_ONLY=1 ;;
    --clean) CLEAN=1 ;;
    --dir)
      ROOT=${2:?--dir needs a directory}
      shift
      ;;
    -h | --help)
      sed -n '2,17p' "$0"
      exit 0
      ;;
    *)
      echo "fresh_machine_check: unknown argument $1" >&2
      exit 2
      ;;
  esac
  shift
done

if [ "$(id -u)" -ne 0 ]; then
  echo "fresh_machine_check: needs root (debootstrap, chroot, mount)" >&2
  exit 2
fi
log() { echo "[fresh $(date -u +%H:%M:%S)] $*"; }
START=$(date +%s)

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

# The Debian mirror this machine uses: the first URI of a deb822 .sources stanza or a
# one-line `deb` entry that serves bookworm (not bookworm-security / -updates).
find_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      /^[[:space:]]*$/ { if (uri != "" && suite ~ /(^| )bookworm( |$)/ && types ~ /(^| )deb( |$)/) { print uri; exit } uri = ""; suite = ""; types = ""; next }
      /^Types:/ { sub(/^Types:[[:space:]]*/, ""); types = $0 }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suite = $0 }
      END { if (uri != "" && suite ~ /(^| )bookworm( |$)/ && types ~ /(^| )deb( |$)/) print uri }
    ' "$f" | head -n 1
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -E 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }'
  done
}
MIRROR=$(find_mirror | head -n 1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}

if [ -z "$ROOT" ]; then
  ROOT=$(mktemp -d /var/tmp/mmfuse-fresh.XXXXXX)
else
  mkdir -p "$ROOT"
fi
ROOT=$(cd "$ROOT" && pwd)
if [ "$ROOT" = / ]; then
  echo "fresh_machine_check: refusing to use / as the root" >&2
  exit 2
fi

still_mounted() { findmnt -rn -o TARGET | awk -v r="$ROOT" 'index($0, r "/") == 1' | grep -q .; }
cleanup() {
  local rc=$?
  # Lazy, recursive unmounts, innermost first; /dev was bind-mounted recursively.
  local m
  for m in "$ROOT/dev/pts" "$ROOT/dev" "$ROOT/sys" "$ROOT/proc"; do
    mountpoint -q "$m" 2>/dev/null && umount -R -l "$m" 2>/dev/null || true
  done
  if still_mounted; then
    echo "fresh_machine_check: something is still mounted under $ROOT; not deleting it" >&2
  elif ((CLEAN)); then
    rm -rf --one-file-system "$ROOT"
  else
    log "root kept at $ROOT (delete with: rm -rf --one-file-system $ROOT)"
  fi
  log "finished with status $rc after $(($(date +%s) - START)) s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
  log "debootstrap --variant=minbase bookworm $ROOT $MIRROR"
  debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 || {
    tail -n 30 "$ROOT.debootstrap.log" >&2
    exit 1
  }
else
  log "reusing the root already at $ROOT"
fi

log "copying apt sources, keyrings, CA certificates and npm configuration"
rm -f "$ROOT/etc/apt/sources.list"
mkdir -p "$ROOT/etc/apt/sources.list.d" "$ROOT/etc/apt/apt.conf.d" "$ROOT/etc/apt/trusted.gpg.d" "$ROOT/usr/share/keyrings"
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$ROOT/etc/apt/"
cp -a /etc/apt/sources.list.d/. "$ROOT/etc/apt/sources.list.d/"
cp -a /etc/apt/apt.conf.d/. "$ROOT/etc/apt/apt.conf.d/"   # proxies, snapshot date checks
cp -a /etc/apt/trusted.gpg.d/. "$ROOT/etc/apt/trusted.gpg.d/"
cp -a /usr/share/keyrings/. "$ROOT/usr/share/keyrings/"   # the Signed-By keyrings
# CA certificates: the bundle and hashed links as they are here (an HTTPS proxy's CA included),
# and the local CAs so that update-ca-certificates in the root (ca-certificates) keeps them.
mkdir -p "$ROOT/etc/ssl" "$ROOT/usr/local/share/ca-certificates"
cp -aL /etc/ssl/certs "$ROOT/etc/ssl/" 2>/dev/null || cp -a /etc/ssl/certs "$ROOT/etc/ssl/"
[ -d /usr/local/share/ca-certificates ] && cp -a /usr/local/share/ca-certificates/. "$ROOT/usr/local/share/ca-certificates/"
[ -f /etc/npmrc ] && cp /etc/npmrc "$ROOT/etc/npmrc"
[ -f "$HOME/.npmrc" ] && mkdir -p "$ROOT/root" && cp "$HOME/.npmrc" "$ROOT/root/.npmrc"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
cp /etc/hosts "$ROOT/etc/hosts" 2>/dev/null || true

log "copying commit $(git rev-parse --short HEAD) of the repository to $ROOT/root/mmfuse"
rm -rf "$ROOT/root/mmfuse"
mkdir -p "$ROOT/root/mmfuse"
git -C "$REPO" archive --format=tar HEAD | tar -x -C "$ROOT/root/mmfuse"
if ! git -C "$REPO" diff --quiet HEAD 2>/dev/null; then
  log "note: uncommitted changes here are not part of the check (it uses HEAD)"
fi

# No init runs in a chroot: keep package scripts from starting daemons (mosquitto) in it,
# as Debian's container images do.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"

mount -t proc proc "$ROOT/proc"
mount -t sysfs sys "$ROOT/sys"
mount --rbind /dev "$ROOT/dev"
mount --make-rslave "$ROOT/dev"

in_root() {
  # A clean environment, as a root login on a fresh machine would have, plus any proxy settings.
  local env=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    TERM=dumb LANG=C.UTF-8)
  local v
  for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -n "${!v:-}" ] && env+=("$v=${!v}")
  done
  chroot "$ROOT" /usr/bin/env -i "${env[@]}" /bin/bash -c "cd /root/mmfuse && $1"
}

status=0
log "in the root: scripts/demo.sh"
t0=$(date +%s)
in_root scripts/demo.sh || status=$?
log "scripts/demo.sh: exit $status after $(($(date +%s) - t0)) s"
if ((status == 0 && !DEMO_ONLY)); then
  log "in the root: .ci/run"
  t0=$(date +%s)
  in_root .ci/run || status=$?
  log ".ci/run: exit $status after $(($(date +%s) - t0)) s"
fi
if ((status == 0)); then
  log "PASS: the Quick start works on a minimal Debian 12"
else
  log "FAIL (exit $status)"
fi
exit "$status"
