#!/usr/bin/env bash
# CLI contract for WordPiece models (DESIGN.md §4): tokenize on vocab.txt folders,
# embed with text-only BERT (--pooling, --raw), Chinese-CLIP embed / classify /
# index + search with Chinese text, and exit code 2 + a clear message on misuse.
# Usage: wordpiece_cli.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
FIX=$2
PY=/usr/bin/python3
BERT=$FIX/bert/models/bert-tiny-chinese
CC=$FIX/chinese_clip/models/chinese-clip-tiny-p16
IMG=$FIX/images/img0_photo_640x480_rgb.jpg
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"

# --- tokenize: every reference case (max_length 52), token_type_ids, pairs.
$PY - "$MMFUSE" "$FIX" <<'PYEOF'
import json, subprocess, sys
mmfuse, fix = sys.argv[1], sys.argv[2]
cases = [c for c in json.load(open(f"{fix}/bert/tokenizer_expected.json"))["cases"] if "\x00" not in c["text"]]
args = []
for c in cases:
    args += ["--text", c["text"]]
for folder in ("bert/models/bert-tiny-chinese", "chinese_clip/models/chinese-clip-tiny-p16"):
    extra = ["--max-length", "52"] if folder.startswith("bert") else []  # chinese_clip: 52 by default
    out = subprocess.run([mmfuse, "tokenize", "--model", f"{fix}/{folder}"] + extra + args,
                         capture_output=True, check=True)
    d = json.loads(out.stdout)
    assert list(d) == ["input_ids", "attention_mask", "token_type_ids"], list(d)
    for i, c in enumerate(cases):
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            assert d[key][i] == c[key], (folder, c["text"], key)
o = json.load(open(f"{fix}/bert/outputs/bert-tiny-chinese/outputs.json"))
args = []
for a, b in o["pairs"]:
    args += ["--text", a, "--text-pair", b]
out = subprocess.run([mmfuse, "tokenize", "--model", f"{fix}/bert/models/bert-tiny-chinese", "--max-length", "52"]
                     + args, capture_output=True, check=True)
d = json.loads(out.stdout)
assert d["token_type_ids"][0][:10] == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1], d["token_type_ids"][0][:10]
assert d["input_ids"][0][:11] == [101, 671, 1372, 4344, 102, 1777, 1762, 3763, 1355, 677, 102], d["input_ids"][0]
PYEOF
check "tokenize matches the WordPiece reference cases and pairs" $?

# --- randomized: 400 random mixed strings against an independent Python port
# of BertTokenizer (tests/tools/wordpiece_port.py, Python's own Unicode tables).
$PY - "$MMFUSE" "$FIX" "$(dirname "${BASH_SOURCE[0]}")/../tools/wordpiece_port.py" <<'PYEOF'
import json, subprocess, sys
mmfuse, fix, port = sys.argv[1:4]
folder = f"{fix}/bert/models/bert-tiny-chinese"
cases = json.loads(subprocess.run([sys.executable, port, f"{folder}/vocab.txt", "--random", "400", "--seed", "7"],
                                  capture_output=True, check=True).stdout)
args = []
for c in cases:  # "--text=-x" keeps a leading '-' from reading as an option; "--text=" would drop ""
    args += [f"--text={c['text']}"] if c["text"].startswith("-") else ["--text", c["text"]]
d = json.loads(subprocess.run([mmfuse, "tokenize", "--model", folder, "--max-length", "512"] + args,
                              capture_output=True, check=True).stdout)
bad = 0
for c, ids, mask in zip(cases, d["input_ids"], d["attention_mask"]):
    got = ids[:sum(mask)]
    if got != c["ids"]:
        bad += 1
        if bad <= 3:
            print("mismatch:", repr(c["text"]), got, c["ids"])
assert len(d["input_ids"]) == len(cases) and bad == 0, f"{bad} of {len(cases)} differ"
PYEOF
check "randomized strings match the Python port" $?

# --- embed with a text-only encoder: --pooling cls --raw is last_hidden_state[:, 0].
"$MMFUSE" embed --model "$BERT" --text "一只黑色的猫坐在沙发上" --text "一只猫" --pooling cls --raw >"$TMP/cls.json"
check "embed bert --pooling cls --raw runs" $?
"$MMFUSE" embed --model "$BERT" --text "一只猫" --pooling mean >"$TMP/mean.json"
check "embed bert --pooling mean runs" $?
"$MMFUSE" embed --model "$BERT" --text "一只猫" --pooling pooler --raw >"$TMP/pooler.json"
check "embed bert --pooling pooler runs" $?
$PY - "$TMP" "$FIX" <<'PYEOF'
import json, math, struct, sys
tmp, fix = sys.argv[1], sys.argv[2]
def tensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    def get(name):
        meta = head[name]
        a, b = meta["data_offsets"]
        data = raw[8 + n + a:8 + n + b]
        return list(struct.unpack(f"<{len(data) // 4}f", data))
    return get
ref = tensors(f"{fix}/bert/outputs/bert-tiny-chinese/outputs.safetensors")
last, pooler = ref("last_hidden_state"), ref("pooler_output")
cls = json.load(open(f"{tmp}/cls.json"))
assert cls["model"] == "bert-tiny-chinese" and cls["dim"] == 32, cls["model"]
for row, text in ((0, 0), (1, 1)):  # texts 0 and 1 of the reference
    want = last[text * 52 * 32: text * 52 * 32 + 32]
    got = cls["data"][row]["embedding"]
    assert max(abs(a - b) for a, b in zip(got, want)) < 1e-4, (row, got[:4], want[:4])
mean = json.load(open(f"{tmp}/mean.json"))["data"][0]["embedding"]
assert abs(math.sqrt(sum(v * v for v in mean)) - 1) < 1e-5
p = json.load(open(f"{tmp}/pooler.json"))["data"][0]["embedding"]
assert max(abs(a - b) for a, b in zip(p, pooler[32:64])) < 1e-4
PYEOF
check "bert embeddings equal the reference last_hidden_state / pooler_output" $?

expect_error "bert cannot embed images" "text-only" "$MMFUSE" embed --model "$BERT" --image "$IMG"
expect_error "bert cannot classify" "text-only" "$MMFUSE" classify --model "$BERT" --image "$IMG" --label a
expect_error "unknown pooling" "pooling" "$MMFUSE" embed --model "$BERT" --text a --pooling max
expect_error "pooling on a text-image model" "pooling" "$MMFUSE" embed --model "$CC" --text a --pooling mean
expect_error "text pair without WordPiece" "text-pair" "$MMFUSE" tokenize --model "$FIX/clip/models/clip-tiny-quickgelu-p32" --text a --text-pair b
expect_error "pair count mismatch" "pairs" "$MMFUSE" tokenize --model "$BERT" --text a --text b --text-pair c

# --- Chinese-CLIP: embed, classify with Chinese labels, index + Chinese search.
"$MMFUSE" embed --model "$CC" --text "一只猫" --image "$IMG" >"$TMP/cc.json"
check "chinese-clip embed runs" $?
$PY - "$TMP/cc.json" <<'PYEOF'
import json, math, sys
d = json.load(open(sys.argv[1]))
assert d["model"] == "chinese-clip-tiny-p16" and d["dim"] == 16
assert [x["type"] for x in d["data"]] == ["text", "image"]
for x in d["data"]:
    assert abs(math.sqrt(sum(v * v for v in x["embedding"])) - 1) < 1e-5
PYEOF
check "chinese-clip embed output" $?
"$MMFUSE" classify --model "$CC" --image "$IMG" --label 猫 --label 狗 >"$TMP/cls_cc.json"
check "chinese-clip classify 猫/狗 runs" $?
$PY - "$TMP/cls_cc.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
labels = d["labels"]
assert sorted(l["label"] for l in labels) == ["狗", "猫"], labels
assert labels[0]["score"] >= labels[1]["score"] and abs(sum(l["score"] for l in labels) - 1) < 1e-5, labels
PYEOF
check "chinese-clip classify output" $?

mkdir -p "$TMP/photos"
cp "$FIX"/images/img0_photo_640x480_rgb.jpg "$FIX"/images/img1_portrait_480x640_rgb.png "$FIX"/images/img3_wide_100x37_rgb.png "$TMP/photos/"
"$MMFUSE" index add --index "$TMP/idx" --model "$CC" --quiet "$TMP/photos" >"$TMP/add.json"
check "index add with chinese-clip" $?
"$MMFUSE" search --index "$TMP/idx" --text "一只猫" --top-k 3 >"$TMP/search.json"
check "search --text 一只猫" $?
$PY - "$TMP/search.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
assert len(r) == 3 and all(-1.0001 <= x["score"] <= 1.0001 for x in r), r
assert r[0]["score"] >= r[1]["score"] >= r[2]["score"], r
PYEOF
check "search results" $?
expect_error "index with a text-only model" "text-only" "$MMFUSE" index add --index "$TMP/idx2" --model "$BERT" --quiet "$TMP/photos"

# --- bench runs on both kinds of WordPiece model.
"$MMFUSE" bench --model "$BERT" --seq-len 16 --iterations 2 --warmup 0 --json >"$TMP/bench_bert.json" &&
  "$MMFUSE" bench --model "$CC" --iterations 1 --warmup 0 --json >"$TMP/bench_cc.json"
check "bench bert / chinese-clip runs" $?
$PY - "$TMP/bench_bert.json" "$TMP/bench_cc.json" <<'PYEOF'
import json, sys
b, c = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert b["seq_len"] == 16 and b["text_ms_per_item"] > 0 and b["sequences_per_s"] > 0, b
assert c["image_ms_per_item"] > 0 and c["text_ms_per_item"] > 0, c
PYEOF
check "bench output" $?

finish wordpiece_cli
