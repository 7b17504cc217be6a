#!/usr/bin/env bash
# Installs the build into a scratch prefix, then builds tests/install/consumer.cpp
# against it as an outside program would — with find_package(mmfuse) (MODE=cmake)
# or pkg-config (MODE=pkg-config) — and runs it on the fixture models.
# Usage: check_install.sh BUILD_DIR FIXTURES MODE
set -euo pipefail
BUILD=$1 FIXTURES=$2 MODE=$3
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PREFIX=$TMP/prefix
cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
# Nothing internal is installed: only the public headers.
if find "$PREFIX/include" -name '*.h' | xargs grep -n '#include "' | grep -v '#include "mmfuse/'; then
  echo "FAIL: an installed header includes a non-public header (above)"; exit 1
fi
LIBDIR=$(dirname "$(find "$PREFIX" -name 'libmmfuse.so' | head -n1)")
case "$MODE" in
  cmake)
    cmake -S "$HERE" -B "$TMP/build" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$TMP/build" >/dev/null
    BIN=$TMP/build/consumer
    ;;
  pkg-config)
    export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
    # shellcheck disable=SC2046
    c++ -std=c++17 -O1 "$HERE/consumer.cpp" -o "$TMP/consumer" $(pkg-config --cflags --libs mmfuse) -pthread
    BIN=$TMP/consumer
    ;;
  *) echo "unknown mode $MODE"; exit 2 ;;
esac
# The exported symbols are the public API only (hidden visibility): every
# mmfuse name libmmfuse.so exports is declared in an installed header.
# (std:: template instantiations over mmfuse types are weak symbols of libstdc++'s, not ours.)
for name in $(nm -DC --defined-only "$LIBDIR/libmmfuse.so" | cut -d' ' -f3- |
              grep -E '^((typeinfo|typeinfo name|vtable|VTT) for )?mmfuse::' |
              sed -E 's/^((typeinfo|typeinfo name|vtable|VTT) for )?//' |
              grep -o '^mmfuse::[A-Za-z_][A-Za-z_0-9]*' | sort -u); do
  if ! grep -rqw "${name#mmfuse::}" "$PREFIX/include/mmfuse"; then
    echo "FAIL: libmmfuse.so exports $name, which no public header declares"; exit 1
  fi
done
LD_LIBRARY_PATH=$LIBDIR "$BIN" "$FIXTURES/clip/models/clip-tiny-gelu-p16" \
  "$FIXTURES/chinese_clip/models/chinese-clip-tiny-p16" "$FIXTURES/bert/models/bert-tiny-chinese" \
  "$FIXTURES/wav2vec2/models/w2v2-tiny-base-style" "$FIXTURES/wav2vec2/audio/a4_espeak.wav" \
  "$FIXTURES/images/img0_photo_640x480_rgb.jpg" "$FIXTURES/images/img2_square_224x224_rgb.png"
echo "install ($MODE): ok"
