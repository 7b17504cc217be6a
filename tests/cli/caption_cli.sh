#!/usr/bin/env bash
# CLI contract of `mmfuse caption` and captioned indexes (issue 15 item 6): one
# JSON line per image with transformers' tokens for the tiny LLaVA, folders
# expanded, an image that does not decode reported on its own line with exit 2
# at the end, `index add --caption-model` storing captions that `search --text`
# returns and matches, and bad folders refused with exit 2 naming them.
# Usage: caption_cli.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
FIX=$2
PY=/usr/bin/python3
LLAVA=$FIX/llava/models/llava-1.5-tiny
CLIP=$FIX/clip/models/clip-tiny-quickgelu-p32
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"
QUESTION="What is shown in this image?"

# One image, the fixture's question: transformers' 16 greedy tokens.
"$MMFUSE" caption --model "$LLAVA" --prompt "$QUESTION" --max-new-tokens 16 --threads 2 \
  "$FIX/photos/bus.jpg" >"$TMP/one.jsonl"
check "caption one image exit 0" $?
$PY - "$TMP/one.jsonl" "$FIX" <<'PYEOF'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
d = json.loads(lines[0])
assert list(d) == ["image", "caption", "tokens", "ms"], list(d)
want = json.load(open(f"{sys.argv[2]}/llava/outputs/llava-1.5-tiny/outputs.json"))["cases"][0]
assert d["caption"] == want["new_text"].strip(), (d["caption"], want["new_text"])
assert d["tokens"] == 16 and d["ms"] > 0 and d["image"].endswith("/photos/bus.jpg"), d
PYEOF
check "caption: transformers' tokens, JSON fields" $?

# BLIP-2 (OPT): no prompt by default, transformers' captioning tokens.
"$MMFUSE" caption --model "$FIX/blip2/models/blip2-opt-tiny" --max-new-tokens 16 --threads 2 \
  "$FIX/photos/coco_000000039769.jpg" >"$TMP/blip2.jsonl"
check "caption BLIP-2 exit 0" $?
$PY - "$TMP/blip2.jsonl" "$FIX" <<'PYEOF'
import json, sys
d = json.loads(open(sys.argv[1]).read())
want = json.load(open(f"{sys.argv[2]}/blip2/outputs/blip2-opt-tiny/outputs.json"))["cases"][0]
assert want["prompt"] is None
assert d["caption"] == want["generated_text"].strip() and d["tokens"] == 16, (d, want["generated_text"])
PYEOF
check "caption BLIP-2: transformers' no-prompt caption" $?

# A folder: images captioned (default prompt, default 30 tokens), other files
# ignored, a broken image on its own line and exit 2 at the end.
mkdir -p "$TMP/pics/sub"
cp "$FIX/photos/bus.jpg" "$TMP/pics/a_bus.jpg"
cp "$FIX/photos/coco_000000052891.jpg" "$TMP/pics/sub/c_people.jpg"
echo "not an image" >"$TMP/pics/b_broken.jpg"
echo "notes" >"$TMP/pics/notes.txt"
"$MMFUSE" caption --model "$LLAVA" --threads 2 "$TMP/pics" >"$TMP/dir.jsonl" 2>"$TMP/dir.err"
rc=$?
[ $rc -eq 2 ]
check "caption with a broken image exits 2 (got $rc)" $?
grep -qF "1 of 3" "$TMP/dir.err"
rc=$?  # before the message's command substitutions reset $?
check "caption: stderr counts the failure ($(head -c 200 "$TMP/dir.err"))" $rc
$PY - "$TMP/dir.jsonl" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
assert [r["image"].rsplit("/", 1)[1] for r in rows] == ["a_bus.jpg", "b_broken.jpg", "c_people.jpg"], rows
assert list(rows[1]) == ["image", "error"] and "b_broken.jpg" in rows[1]["error"], rows[1]
for r in (rows[0], rows[2]):
    assert list(r) == ["image", "caption", "tokens", "ms"], r
    assert r["caption"] and 1 <= r["tokens"] <= 30, r
PYEOF
check "caption folder: sorted lines, broken one named, others captioned" $?

# Index with captions: the report counts them, search returns them and matches their words.
mkdir -p "$TMP/good"
cp "$TMP/pics/a_bus.jpg" "$TMP/pics/sub/c_people.jpg" "$TMP/good/"
"$MMFUSE" caption --model "$LLAVA" --prompt "$QUESTION" --threads 2 "$TMP/good" >"$TMP/good.jsonl"
check "caption good folder exit 0" $?
"$MMFUSE" index add --index "$TMP/idx" --model "$CLIP" --caption-model "$LLAVA" \
  --caption-prompt "$QUESTION" --quiet --threads 2 "$TMP/good" >"$TMP/add.json"
check "index add --caption-model exit 0" $?
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["added"] == 2 and d["captioned"] == 2 and d["failed"] == 0, d' "$TMP/add.json"
check "index add: two items captioned" $?
"$MMFUSE" search --index "$TMP/idx" --text "Likemaybeene" --top-k 2 >"$TMP/search.json"
check "search --text exit 0" $?
$PY - "$TMP/search.json" "$TMP/good.jsonl" <<'PYEOF'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
want = {json.loads(l)["image"]: json.loads(l)["caption"] for l in open(sys.argv[2])}
assert len(results) == 2, results
for r in results:
    assert r["caption"] == want[r["path"]], (r, want)
    assert r["rrf"] > 0, r
# The item whose caption holds the word comes first.
assert "likemaybeene" in results[0]["caption"].lower(), results
PYEOF
check "search: captions returned (as \`caption\` wrote them), a caption word ranks first" $?
"$MMFUSE" search --index "$TMP/idx" --image "$FIX/photos/bus.jpg" --top-k 1 >"$TMP/isearch.json"
$PY -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; assert r["caption"] and "rrf" not in r, r' "$TMP/isearch.json"
check "image search: caption returned, no fusion" $?

expect_error "caption: not a generative model" "$CLIP" "$MMFUSE" caption --model "$CLIP" \
  "$FIX/photos/bus.jpg"
expect_error "caption: missing image" "none.jpg" "$MMFUSE" caption --model "$LLAVA" "$TMP/none.jpg"
expect_error "index add: --caption-model not generative" "--caption-model" "$MMFUSE" index add \
  --index "$TMP/idx2" --model "$CLIP" --caption-model "$CLIP" --quiet "$TMP/good"
expect_error "index add: --caption-model names the folder" "$CLIP" "$MMFUSE" index add \
  --index "$TMP/idx2" --model "$CLIP" --caption-model "$CLIP" --quiet "$TMP/good"
expect_error "index add: --caption-prompt alone" "--caption-model" "$MMFUSE" index add \
  --index "$TMP/idx2" --model "$CLIP" --caption-prompt "hi" --quiet "$TMP/good"
[ ! -e "$TMP/idx2/catalog.sqlite" ]
check "refused caption model leaves no index behind" $?

finish caption_cli
