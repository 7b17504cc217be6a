#!/usr/bin/env bash
# CLI contract for GPT-2 byte-level BPE folders (DESIGN.md §4): `tokenize` on
# the BLIP-2 OPT folder gives the slow HF GPT2Tokenizer's ids for every
# reference string (with `</s>` in front), --max-length pads with <pad> (1) on
# the right, and a folder with a missing merges.txt or a corrupt line exits 2
# naming the file. CLIP folders (same two files) stay CLIP's.
# Usage: byte_level_bpe_cli.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
FIX=$2
PY=/usr/bin/python3
OPT=$FIX/blip2/models/blip2-opt-tiny
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"

$PY - "$MMFUSE" "$FIX" <<'PYEOF'
import json, subprocess, sys
mmfuse, fix = sys.argv[1], sys.argv[2]
def tokenize(folder, texts, extra=()):
    args = []
    for t in texts:  # "--text=-x" keeps a leading '-' from reading as an option
        args += [f"--text={t}"] if t.startswith("-") else ["--text", t]
    out = subprocess.run([mmfuse, "tokenize", "--model", folder, *extra] + args,
                         capture_output=True, check=True)
    d = json.loads(out.stdout)
    assert list(d) == ["input_ids", "attention_mask"], list(d)
    return d
cases = json.load(open(f"{fix}/blip2/tokenizer_expected_opt.json"))["cases"]
d = tokenize(f"{fix}/blip2/models/blip2-opt-tiny", [c["text"] for c in cases])
assert len(d["input_ids"]) == len(cases) == 30
for c, ids, mask in zip(cases, d["input_ids"], d["attention_mask"]):
    assert ids == c["ids"], (c["text"], ids, c["ids"])
    assert mask == [1] * len(ids)
d = tokenize(f"{fix}/blip2/models/blip2-opt-tiny", ["a photo of a cat", "a"], ["--max-length", "4"])
assert d["input_ids"] == [[2, 102, 1345, 9], [2, 102, 1, 1]], d
assert d["attention_mask"] == [[1] * 4, [1, 1, 0, 0]], d
# A CLIP folder is still tokenized by CLIP (bos 49406 ... eos 49407, padded to 77).
d = tokenize(f"{fix}/clip/models/clip-tiny-gelu-p16", ["a photo of a cat"])
assert d["input_ids"][0][0] == 49406 and len(d["input_ids"][0]) == 77, d
PYEOF
check "tokenize matches the GPT2Tokenizer reference ids, --max-length, CLIP unchanged" $?

mkdir -p "$TMP/bad"
cp "$OPT/vocab.json" "$OPT/tokenizer_config.json" "$OPT/special_tokens_map.json" "$TMP/bad/"
expect_error "missing merges.txt" "merges.txt" "$MMFUSE" tokenize --model "$TMP/bad" --text a
printf '#version: 0.2\n\xc4\xa0 t\nabc\n' >"$TMP/bad/merges.txt"
expect_error "merges.txt line with one field" "line 3" "$MMFUSE" tokenize --model "$TMP/bad" --text a
printf '#version: 0.2\n\xc4\xa0 t\n' >"$TMP/bad/merges.txt"
printf '{"a": 0,' >"$TMP/bad/vocab.json"
expect_error "malformed vocab.json" "vocab.json" "$MMFUSE" tokenize --model "$TMP/bad" --text a

finish byte_level_bpe_cli
