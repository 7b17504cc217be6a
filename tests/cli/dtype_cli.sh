#!/usr/bin/env bash
# CLI contract of --dtype (docs/quantization.md): f32 is the default and exact,
# bf16 / int8 embeddings stay within cosine 0.995 of f32, bench --accuracy
# prints its fields, and an unknown dtype is exit 2 naming the flag.
# Usage: dtype_cli.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
FIX=$2
PY=/usr/bin/python3
MODEL=$FIX/clip/models/clip-tiny-quickgelu-p32
IMG=$FIX/images/img0_photo_640x480_rgb.jpg
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"

for d in default f32 bf16 int8; do
  args=()
  [ "$d" != default ] && args=(--dtype "$d")
  "$MMFUSE" embed --model "$MODEL" --text "a photo of a cat" --image "$IMG" "${args[@]}" >"$TMP/$d.json"
  check "embed --dtype $d runs" $?
done
cmp -s "$TMP/default.json" "$TMP/f32.json"
check "--dtype f32 is the default, byte for byte" $?
$PY - "$TMP" <<'PYEOF'
import json, math, sys
d = sys.argv[1]
ref = json.load(open(f"{d}/f32.json"))["data"]
for dt in ("bf16", "int8"):
    got = json.load(open(f"{d}/{dt}.json"))["data"]
    for a, b in zip(ref, got):
        x, y = a["embedding"], b["embedding"]
        c = sum(p * q for p, q in zip(x, y)) / math.sqrt(sum(p * p for p in x) * sum(q * q for q in y))
        assert c >= 0.995, (dt, a["type"], c)
PYEOF
check "bf16 / int8 embeddings within cosine 0.995 of f32" $?

"$MMFUSE" bench --model "$MODEL" --dtype int8 --accuracy --json >"$TMP/acc.json"
check "bench --accuracy runs" $?
$PY - "$TMP/acc.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
for k in ("dtype", "isa", "image_cosine", "text_cosine", "zero_shot_top1_agreement",
          "zero_shot_agreement_by_gap", "zero_shot_flips"):
    assert k in r, k
assert r["dtype"] == "int8" and r["images"] == 32 and r["texts"] == 16
assert r["image_cosine"]["min"] >= 0.995 and r["text_cosine"]["min"] >= 0.995, r
assert len(r["zero_shot_flips"]) == round((1 - r["zero_shot_top1_agreement"]) * r["images"]), r
assert [g["min_f32_logit_gap"] for g in r["zero_shot_agreement_by_gap"]] == [0.05, 0.1, 0.5], r
PYEOF
check "bench --accuracy fields" $?

expect_error "unknown dtype" "unknown dtype \"int4\"" "$MMFUSE" embed --model "$MODEL" --text a --dtype int4
expect_error "unknown dtype on bench" "--dtype" "$MMFUSE" bench --model "$MODEL" --dtype fp8

finish dtype_cli
