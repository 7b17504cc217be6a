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

"$MMFUSE" bench --model "$MODEL" --dtype int8 --accuracy --eval-synthetic 24 --json >"$TMP/acc.json"
check "bench --accuracy runs" $?
$PY - "$TMP/acc.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
for k in ("dtype", "isa", "image_cosine", "text_cosine", "zero_shot_top1_agreement",
          "zero_shot_agreement_by_gap", "zero_shot_flips"):
    assert k in r, k
assert r["dtype"] == "int8" and r["images"] == 24 and r["texts"] == 16
assert r["image_cosine"]["min"] >= 0.995 and r["text_cosine"]["min"] >= 0.995, r
assert len(r["zero_shot_flips"]) == round((1 - r["zero_shot_top1_agreement"]) * r["images"]), r
assert [g["min_f32_logit_gap"] for g in r["zero_shot_agreement_by_gap"]] == [0.05, 0.1, 0.5], r
# Agreement beyond twice the measured logit error: near-ties counted apart;
# beyond twice the largest error no image can flip.
err = r["zero_shot_logit_error"]
assert 0 <= err["median"] <= err["p95"] <= err["max"], r
rows = r["zero_shot_agreement_beyond_error"]
assert [g["f32_margin_over"] for g in rows] == ["2x median logit error", "2x max logit error"], r
for g in rows:
    assert g["images"] + g["near_ties"] == r["images"], r
assert rows[1]["images"] == 0 or rows[1]["agreement"] == 1.0, r
PYEOF
check "bench --accuracy fields" $?

expect_error "unknown dtype" "unknown dtype \"int4\"" "$MMFUSE" embed --model "$MODEL" --text a --dtype int4
expect_error "unknown dtype on bench" "--dtype" "$MMFUSE" bench --model "$MODEL" --dtype fp8

# Decoders: --dtype int8 = q8_0 weights (the tiny LLaVA's layers are too narrow
# for 32-input blocks, so its tokens stay those of its stored weights); bf16 is refused.
LLAVA=$FIX/llava/models/llava-1.5-tiny
"$MMFUSE" generate --model "$LLAVA" --prompt hello --max-new-tokens 3 --json >"$TMP/g32.json"
check "generate runs (stored weights)" $?
"$MMFUSE" generate --model "$LLAVA" --prompt hello --max-new-tokens 3 --dtype int8 --json >"$TMP/g8.json"
check "generate --dtype int8 runs" $?
cmp -s "$TMP/g32.json" "$TMP/g8.json"
check "generate --dtype int8 on a model too narrow for q8_0 blocks is unchanged" $?
expect_error "bf16 on a decoder" "--dtype f32 or int8" "$MMFUSE" generate --model "$LLAVA" --prompt hello --dtype bf16

finish dtype_cli
