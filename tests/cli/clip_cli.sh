#!/usr/bin/env bash
# CLI contract of tokenize / embed / classify (DESIGN.md §4) and the exit code 2
# + clear message rule for bad model folders and images.
# Usage: clip_cli.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
FIX=$2
PY=/usr/bin/python3
MODEL=$FIX/clip/models/clip-tiny-quickgelu-p32
LAION=$FIX/clip/models/clip-tiny-gelu-p16
IMG=$FIX/images/img0_photo_640x480_rgb.jpg
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"

# --- tokenize: exact reference ids for every case, both folders.
"$MMFUSE" tokenize --model "$MODEL" --text "a photo of a cat" --text "Hello, world!" >"$TMP/tok.json"
check "tokenize runs" $?
$PY - "$TMP/tok.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert set(d) == {"input_ids", "attention_mask"}, d.keys()
assert len(d["input_ids"]) == 2 and all(len(r) == 77 for r in d["input_ids"])
assert d["input_ids"][0][:6] == [49406, 320, 1125, 539, 320, 2368], d["input_ids"][0][:8]
assert d["input_ids"][0][6] == 49407 and d["attention_mask"][0][:8] == [1] * 7 + [0]
PYEOF
check "tokenize output shape and ids" $?

$PY - "$MMFUSE" "$FIX" <<'PYEOF'
import json, subprocess, sys
mmfuse, fix = sys.argv[1], sys.argv[2]
cases = json.load(open(f"{fix}/clip/tokenizer_expected.json"))["cases"]
args = []
cases = [c for c in cases if "\x00" not in c["text"]]  # argv cannot carry NUL
for c in cases:
    args += ["--text", c["text"]]
for folder, key in (("clip-tiny-quickgelu-p32", ""), ("clip-tiny-gelu-p16", "_laion_pad")):
    out = subprocess.run([mmfuse, "tokenize", "--model", f"{fix}/clip/models/{folder}"] + args,
                         capture_output=True, check=True)
    d = json.loads(out.stdout)
    for i, c in enumerate(cases):
        assert d["input_ids"][i] == c["input_ids" + key], (folder, c["text"])
        assert d["attention_mask"][i] == c["attention_mask" + key], (folder, c["text"])
PYEOF
check "tokenize matches all reference cases in both folders" $?

# --- embed: contract shape, unit norm by default, --raw is the projected features.
"$MMFUSE" embed --model "$MODEL" --text "a cat" --text "a dog" --image "$IMG" >"$TMP/emb.json"
check "embed runs" $?
"$MMFUSE" embed --model "$MODEL" --text "a cat" --text "a dog" --image "$IMG" --raw >"$TMP/raw.json"
check "embed --raw runs" $?
$PY - "$TMP/emb.json" "$TMP/raw.json" <<'PYEOF'
import json, math, sys
d, r = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert list(d) == ["model", "dim", "data"], list(d)
assert d["model"] == "clip-tiny-quickgelu-p32" and d["dim"] == 16
assert [x["type"] for x in d["data"]] == ["text", "text", "image"]
assert [x["index"] for x in d["data"]] == [0, 1, 2]
assert d["data"][2]["input"].endswith("img0_photo_640x480_rgb.jpg")
for x, y in zip(d["data"], r["data"]):
    assert len(x["embedding"]) == 16
    n = math.sqrt(sum(v * v for v in x["embedding"]))
    assert abs(n - 1) < 1e-5, n
    rn = math.sqrt(sum(v * v for v in y["embedding"]))
    assert abs(rn - 1) > 1e-3  # raw features are not normalised
    assert max(abs(a - b / rn) for a, b in zip(x["embedding"], y["embedding"])) < 1e-6
PYEOF
check "embed output contract" $?

# --- classify: sorted, sums to 1, template applied.
"$MMFUSE" classify --model "$LAION" --image "$IMG" --label cat --label dog --label "magnetic tile" >"$TMP/cls.json"
check "classify runs" $?
"$MMFUSE" classify --model "$LAION" --image "$IMG" --label cat --label dog --label "magnetic tile" \
  --template "{}" >"$TMP/cls_raw.json"
check "classify --template runs" $?
$PY - "$TMP/cls.json" "$TMP/cls_raw.json" <<'PYEOF'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
for d in (a, b):
    assert list(d) == ["image", "labels"]
    s = [x["score"] for x in d["labels"]]
    assert s == sorted(s, reverse=True) and abs(sum(s) - 1) < 1e-5, s
    assert sorted(x["label"] for x in d["labels"]) == ["cat", "dog", "magnetic tile"]
assert a["labels"] != b["labels"]  # the template changes the prompts
PYEOF
check "classify output contract" $?

# --- bad model folders: each names the file/tensor, exit 2.
bad() { rm -rf "$TMP/bad"; cp -r "$MODEL" "$TMP/bad"; }
bad; rm "$TMP/bad/config.json"
expect_error "missing config" "config.json" "$MMFUSE" embed --model "$TMP/bad" --text a
bad; echo '{"model_type": "clip", ' >"$TMP/bad/config.json"
expect_error "broken config" "config.json" "$MMFUSE" embed --model "$TMP/bad" --text a
bad; $PY -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['model_type']='llama'; json.dump(c,open(p,'w'))" "$TMP/bad/config.json"
expect_error "unsupported model_type" "llama" "$MMFUSE" embed --model "$TMP/bad" --text a
bad; $PY -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['text_config']['hidden_size']=48; json.dump(c,open(p,'w'))" "$TMP/bad/config.json"
expect_error "wrong shape" "expected [" "$MMFUSE" embed --model "$TMP/bad" --text a
bad; $PY -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['text_config']['num_hidden_layers']=3; json.dump(c,open(p,'w'))" "$TMP/bad/config.json"
expect_error "missing tensor" "text_model.encoder.layers.2" "$MMFUSE" embed --model "$TMP/bad" --text a
bad; truncate -s 1000000 "$TMP/bad/model.safetensors"
expect_error "truncated weights" "model.safetensors" "$MMFUSE" embed --model "$TMP/bad" --text a
bad; printf '\xff\xff\xff\xff\xff\xff\xff\x7f' | dd of="$TMP/bad/model.safetensors" conv=notrunc status=none
expect_error "bad header" "header length" "$MMFUSE" embed --model "$TMP/bad" --text a
bad; $PY - "$TMP/bad/model.safetensors" <<'PYEOF'
import json, struct, sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
h = b[8:8 + n].decode().replace('"F32"', '"F8_E5M2"', 1)
h = h.encode()
open(p, "wb").write(struct.pack("<Q", len(h)) + h + b[8 + n:])
PYEOF
expect_error "unknown dtype" "F8_E5M2" "$MMFUSE" embed --model "$TMP/bad" --text a
bad; rm "$TMP/bad/model.safetensors"
expect_error "no weights" "model.safetensors" "$MMFUSE" embed --model "$TMP/bad" --text a
bad; rm "$TMP/bad/vocab.json"
expect_error "no vocab" "vocab.json" "$MMFUSE" embed --model "$TMP/bad" --text a
expect_error "no folder" "$TMP/nope" "$MMFUSE" embed --model "$TMP/nope" --text a

# --- bad images.
head -c 5000 "$IMG" >"$TMP/trunc.jpg"
expect_error "truncated jpeg" "trunc.jpg" "$MMFUSE" embed --model "$MODEL" --image "$TMP/trunc.jpg"
: >"$TMP/empty.png"
expect_error "empty image" "empty.png" "$MMFUSE" classify --model "$MODEL" --image "$TMP/empty.png" --label a
echo "not an image" >"$TMP/text.jpg"
expect_error "not an image" "text.jpg" "$MMFUSE" embed --model "$MODEL" --image "$TMP/text.jpg"
expect_error "missing image" "missing.png" "$MMFUSE" embed --model "$MODEL" --image "$TMP/missing.png"
expect_error "no inputs" "--text or --image" "$MMFUSE" embed --model "$MODEL"
expect_error "template without {}" "template" "$MMFUSE" classify --model "$MODEL" --image "$IMG" --label a --template "x"
expect_error "unknown option" "--bogus" "$MMFUSE" embed --model "$MODEL" --bogus

finish clip_cli
