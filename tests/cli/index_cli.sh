#!/usr/bin/env bash
# CLI contract of `mmfuse index ...` and `mmfuse search` (DESIGN.md §4): JSON shapes,
# counts, idempotent re-runs, sync/remove, image->text, and exit code 2 with a
# message naming the culprit for bad input.
# Usage: index_cli.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
FIX=$2
PY=/usr/bin/python3
MODEL=$FIX/clip/models/clip-tiny-quickgelu-p32
OTHER=$FIX/clip/models/clip-tiny-gelu-p16
TMP=$(mktemp -d)
trap 'chmod -R u+rw "$TMP"; rm -rf "$TMP"' EXIT
IDX=$TMP/idx
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"

# A photo folder: the fixture images, generated PNGs in a sub-folder, a corrupt file.
mkdir -p "$TMP/photos/more"
cp "$FIX"/images/*.jpg "$FIX"/images/*.png "$TMP/photos/"
$PY - "$TMP/photos/more" <<'PYEOF'
import sys
from PIL import Image
for i in range(6):
    Image.new("RGB", (64 + i, 48), (40 * i, 255 - 30 * i, (90 * i) % 256)).save(f"{sys.argv[1]}/gen{i}.png")
PYEOF
check "generate images" $?
echo "this is not an image" >"$TMP/photos/corrupt.jpg"

"$MMFUSE" index add --index "$IDX" --model "$MODEL" --quiet "$TMP/photos" >"$TMP/add.json" 2>"$TMP/add.err"
check "index add exit 0" $?
$PY - "$TMP/add.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["added"] == 14 and d["failed"] == 1 and d["skipped"] == 0, d
assert d["failures"][0]["path"].endswith("corrupt.jpg") and "corrupt.jpg" in d["failures"][0]["error"], d
assert d["count"] == 14 and d["dim"] == 16 and d["kind"] == "flat", d
PYEOF
check "index add report" $?

"$MMFUSE" index add --index "$IDX" --quiet "$TMP/photos" >"$TMP/add2.json"
check "index add again exit 0" $?
$PY -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['added']==0 and d['skipped']==14 and d['count']==14, d" "$TMP/add2.json"
check "index add is idempotent" $?

"$MMFUSE" search --index "$IDX" --text "a photo of a cat" --top-k 5 >"$TMP/s1.json"
check "search text exit 0" $?
$PY - "$TMP/s1.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert list(d) == ["results"], d.keys()
r = d["results"]
assert len(r) == 5 and all({"path", "score"} <= set(x) for x in r), r
assert all(isinstance(x["score"], float) and -1.001 <= x["score"] <= 1.001 for x in r)
assert [x["score"] for x in r] == sorted((x["score"] for x in r), reverse=True)
PYEOF
check "search text JSON" $?

"$MMFUSE" search --index "$IDX" --image "$TMP/photos/more/gen3.png" --top-k 1 >"$TMP/s2.json"
$PY -c "import json,sys; r=json.load(open(sys.argv[1]))['results']; assert r[0]['path'].endswith('more/gen3.png') and r[0]['score']>0.9999, r" "$TMP/s2.json"
check "search image finds itself" $?

printf '{"id": "sku-1", "text": "a red sports car"}\n{"id": "sku-2", "text": "a photo of a cat"}\n' >"$TMP/caps.jsonl"
"$MMFUSE" index add-text --index "$IDX" "$TMP/caps.jsonl" >"$TMP/t.json"
check "add-text exit 0" $?
"$MMFUSE" search --index "$IDX" --image "$TMP/photos/more/gen3.png" --type text >"$TMP/s3.json"
$PY -c "
import json,sys; r=json.load(open(sys.argv[1]))['results']
assert len(r)==2 and {x['path'] for x in r}=={'sku-1','sku-2'} and all(x['type']=='text' and 'text' in x for x in r), r" "$TMP/s3.json"
check "image->text search" $?

rm "$TMP/photos/more/gen0.png"
"$MMFUSE" index sync --index "$IDX" --quiet >"$TMP/sync.json"
$PY -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['removed']==1 and d['count']==15, d" "$TMP/sync.json"
check "sync drops deleted file" $?
"$MMFUSE" index remove --index "$IDX" "$TMP/photos/more" >"$TMP/rm.json"
$PY -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['removed']==5 and d['count']==10, d" "$TMP/rm.json"
check "remove folder" $?

"$MMFUSE" index stats --index "$IDX" >"$TMP/stats.json"
$PY - "$TMP/stats.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["count"] == 10 and d["images"] == 8 and d["texts"] == 2, d
assert d["kind"] == "flat" and d["dim"] == 16 and d["model"] == "clip-tiny-quickgelu-p32" and d["size_bytes"] > 0, d
PYEOF
check "stats" $?

# Bad input: exit 2, message naming the culprit, nothing on stdout.
expect_error "search other model" "differs from the model" "$MMFUSE" search --index "$IDX" --text cat --model "$OTHER"
expect_error "add other model" "differs from the model" "$MMFUSE" index add --index "$IDX" --model "$OTHER" --quiet "$TMP/photos"
expect_error "search missing index" "$TMP/nope" "$MMFUSE" search --index "$TMP/nope" --text cat
expect_error "search missing image" "$TMP/none.jpg" "$MMFUSE" search --index "$IDX" --image "$TMP/none.jpg"
expect_error "search corrupt image" "corrupt.jpg" "$MMFUSE" search --index "$IDX" --image "$TMP/photos/corrupt.jpg"
expect_error "search no query" "exactly one" "$MMFUSE" search --index "$IDX"
expect_error "search both queries" "excludes" "$MMFUSE" search --index "$IDX" --text a --image "$TMP/photos/corrupt.jpg"
expect_error "search bad type" "--type" "$MMFUSE" search --index "$IDX" --text a --type video
expect_error "add missing path" "$TMP/missing" "$MMFUSE" index add --index "$IDX" --quiet "$TMP/missing"
expect_error "add new index without model" "--model" "$MMFUSE" index add --index "$TMP/idx2" --quiet "$TMP/photos"
expect_error "add bad kind" "--kind" "$MMFUSE" index add --index "$TMP/idx3" --model "$MODEL" --kind lsh "$TMP/photos"
expect_error "remove unknown" "nothing indexed" "$MMFUSE" index remove --index "$IDX" "$TMP/photos/zzz.png"
expect_error "stats missing" "$TMP/nope" "$MMFUSE" index stats --index "$TMP/nope"
echo "garbage" >"$TMP/notdb"
mkdir -p "$TMP/badidx" && cp "$TMP/notdb" "$TMP/badidx/catalog.sqlite"
expect_error "stats corrupt catalogue" "catalog.sqlite" "$MMFUSE" index stats --index "$TMP/badidx"

# HNSW index selectable, recorded, searchable.
"$MMFUSE" index add --index "$TMP/hnsw" --model "$MODEL" --kind hnsw --quiet "$TMP/photos" >/dev/null
"$MMFUSE" index stats --index "$TMP/hnsw" | $PY -c "import json,sys; d=json.load(sys.stdin); assert d['kind']=='hnsw' and d['kind_requested']=='hnsw' and d['params']['hnsw_m']==32 and d['tombstones']==0, d"
check "hnsw kind recorded" $?
"$MMFUSE" search --index "$TMP/hnsw" --image "$TMP/photos/more/gen3.png" --top-k 1 --ef-search 8 >"$TMP/s_ef.json"
$PY -c "import json,sys; r=json.load(open(sys.argv[1]))['results']; assert r[0]['path'].endswith('more/gen3.png'), r" "$TMP/s_ef.json"
check "search with --ef-search" $?
expect_error "search ef 0" "--ef-search" "$MMFUSE" search --index "$TMP/hnsw" --text cat --ef-search 0

# Publishing for read replicas: the committed generation under published/, later adds follow;
# a store given, the writer lease is taken and released (a second run is not refused).
"$MMFUSE" index publish --index "$TMP/hnsw" --store "sqlite://$TMP/store.db" >"$TMP/pub.json"
$PY -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['published']=='catalog.%d.sqlite' % d['generation'], d" "$TMP/pub.json"
check "index publish" $?
"$MMFUSE" index remove --index "$TMP/hnsw" --store "sqlite://$TMP/store.db" --quiet "$TMP/photos/more/gen3.png" >/dev/null
$PY -c "import json,sys; g=json.load(open(sys.argv[1]))['generation']; assert open(sys.argv[2]).read().strip()=='catalog.%d.sqlite' % (g+1)" "$TMP/pub.json" "$TMP/hnsw/published/CURRENT"
check "a write after publish publishes" $?
mkdir -p "$TMP/emptyidx"
expect_error "publish no index" "nothing to publish" "$MMFUSE" index publish --index "$TMP/emptyidx"

finish index_cli
