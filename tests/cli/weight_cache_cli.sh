#!/usr/bin/env bash
# CLI contract of the packed-weight cache (docs/quantization.md): the first
# embed writes one cache file, a second embed maps it with byte-identical
# output, --no-weight-cache writes none, and a truncated file is rebuilt with
# a warning (same output again).
# Usage: weight_cache_cli.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
FIX=$2
MODEL=$FIX/clip/models/clip-tiny-quickgelu-p32
IMG=$FIX/images/img0_photo_640x480_rgb.jpg
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"

embed() {  # out_file cache_dir [flags...]
  local out=$1 cache=$2
  shift 2
  MMFUSE_CACHE_DIR="$cache" "$MMFUSE" embed --model "$MODEL" --text "a photo of a cat" \
    --image "$IMG" --dtype int8 "$@" >"$out" 2>"$out.err"
}

embed "$TMP/first.json" "$TMP/cache"
check "first embed runs" $?
files=("$TMP"/cache/*.mmpack)
[ "${#files[@]}" -eq 1 ] && [ -s "${files[0]}" ]
check "first embed writes one cache file" $?
embed "$TMP/second.json" "$TMP/cache"
check "second embed runs" $?
cmp -s "$TMP/first.json" "$TMP/second.json"
check "cached load gives byte-identical output" $?

embed "$TMP/off.json" "$TMP/off" --no-weight-cache
check "--no-weight-cache runs" $?
[ ! -e "$TMP/off" ] || [ -z "$(ls -A "$TMP/off")" ]
check "--no-weight-cache writes no cache" $?
cmp -s "$TMP/first.json" "$TMP/off.json"
check "--no-weight-cache output equals the cached one" $?

truncate -s 100 "${files[0]}"
embed "$TMP/rebuilt.json" "$TMP/cache"
check "embed with a truncated cache runs" $?
grep -q "packed-weight cache" "$TMP/rebuilt.json.err"
check "truncated cache is reported" $?
cmp -s "$TMP/first.json" "$TMP/rebuilt.json"
check "output unchanged after rebuild" $?
[ "$(stat -c %s "${files[0]}")" -gt 100 ]
check "truncated cache rewritten" $?

finish weight_cache_cli
