#!/usr/bin/env bash
# CLI contract for SentencePiece folders (DESIGN.md §4): `tokenize` on a LLaVA
# folder (Llama tokenizer.model) and a T5 spiece.model folder gives the slow HF
# tokenizer's ids for every reference string, the LLaVA prompts' input_ids,
# truncation + padding on the folder's padding_side with --max-length, and
# exit code 2 + a message naming the file for a corrupt model.
# Usage: sentencepiece_cli.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
FIX=$2
PY=/usr/bin/python3
LLAVA=$FIX/llava/models/llava-1.5-tiny
T5=$FIX/t5_tokenizer
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"

$PY - "$MMFUSE" "$FIX" <<'PYEOF'
import json, subprocess, sys
mmfuse, fix = sys.argv[1], sys.argv[2]
def text_args(texts):
    args = []
    for t in texts:  # "--text=-x" keeps a leading '-' from reading as an option
        args += [f"--text={t}"] if t.startswith("-") else ["--text", t]
    return args
def tokenize(folder, texts, extra=()):
    out = subprocess.run([mmfuse, "tokenize", "--model", folder, *extra] + text_args(texts),
                         capture_output=True, check=True)
    d = json.loads(out.stdout)
    assert list(d) == ["input_ids", "attention_mask"], list(d)
    return d
for folder, expected in (("llava/models/llava-1.5-tiny", "llava/tokenizer_expected_llama.json"),
                         ("t5_tokenizer", "t5_tokenizer/tokenizer_expected_t5.json")):
    cases = json.load(open(f"{fix}/{expected}"))["cases"]
    d = tokenize(f"{fix}/{folder}", [c["text"] for c in cases])
    assert len(d["input_ids"]) == len(cases) == 30
    for c, ids, mask in zip(cases, d["input_ids"], d["attention_mask"]):
        assert ids == c["ids"], (folder, c["text"], ids, c["ids"])
        assert mask == [1] * len(ids)
for model in ("llava-1.5-tiny", "llava-1.5-tiny-gqa", "llava-1.5-tiny-lora"):
    cases = json.load(open(f"{fix}/llava/outputs/{model}/outputs.json"))["cases"]
    d = tokenize(f"{fix}/llava/models/llava-1.5-tiny", [c["text"] for c in cases])
    for c, ids in zip(cases, d["input_ids"]):
        assert ids == c["input_ids"], (model, c["text"], ids)
# --max-length: LLaVA pads on the left with <pad> (32001), T5 on the right with <pad> (0);
# truncation keeps BOS / EOS.
d = tokenize(f"{fix}/llava/models/llava-1.5-tiny", ["a photo of a cat", "Question: how many cats are there? Answer:"],
             ["--max-length", "8"])
assert d["input_ids"] == [[32001, 32001, 1, 263, 15373, 310, 263, 6635],
                          [1, 894, 29901, 920, 1784, 274, 1446, 526]], d
assert d["attention_mask"] == [[0, 0, 1, 1, 1, 1, 1, 1], [1] * 8], d
d = tokenize(f"{fix}/t5_tokenizer", ["a photo of a cat", ""], ["--max-length", "5"])
assert d["input_ids"] == [[3, 9, 1202, 13, 1], [1, 0, 0, 0, 0]], d
assert d["attention_mask"] == [[1] * 5, [1, 0, 0, 0, 0]], d
PYEOF
check "tokenize matches the Llama / T5 reference ids, LLaVA prompts and --max-length" $?

mkdir -p "$TMP/bad"
printf 'not a sentencepiece model' >"$TMP/bad/tokenizer.model"
expect_error "corrupt tokenizer.model" "tokenizer.model" "$MMFUSE" tokenize --model "$TMP/bad" --text a
cp "$T5/spiece.model" "$TMP/bad/spiece.model"
rm "$TMP/bad/tokenizer.model"
printf '{"legacy": "maybe"}' >"$TMP/bad/tokenizer_config.json"
expect_error "non-boolean legacy" "legacy" "$MMFUSE" tokenize --model "$TMP/bad" --text a
expect_error "text pair on a SentencePiece model" "text-pair" "$MMFUSE" tokenize --model "$LLAVA" --text a --text-pair b
mkdir -p "$TMP/eos"
cp "$LLAVA/tokenizer.model" "$TMP/eos/"
$PY -c 'import json,sys; c=json.load(open(sys.argv[1])); c["add_eos_token"]=True; json.dump(c, open(sys.argv[2], "w"))' \
  "$LLAVA/tokenizer_config.json" "$TMP/eos/tokenizer_config.json"
"$MMFUSE" tokenize --model "$TMP/eos" --text "a photo" --max-length 3 >"$TMP/eos.json"
check "add_eos_token folder tokenizes" $?
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["input_ids"] == [[1, 263, 2]], d' "$TMP/eos.json"
check "truncation keeps BOS and EOS" $?
expect_error "max length below the special tokens" "special tokens" "$MMFUSE" tokenize --model "$TMP/eos" --text a --max-length 1

finish sentencepiece_cli
