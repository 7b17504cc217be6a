#!/usr/bin/env bash
# CLI contract of `mmfuse image fit/detect` on small generated photos (streaked
# textures; one with a scratch), and the exit code 2 + clear message rule for
# no photos, a corrupt photo and a model folder of another format version.
# Usage: image_anomaly_cli.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"

# Generated photos: 8 good (different sizes and exposures), 2 good test photos,
# 1 with a dark scratch. Written as binary PGM->PNG by a tiny PNG writer.
$PY - "$TMP" <<'PYEOF'
import os, random, struct, sys, zlib
root = sys.argv[1]
def png(path, w, h, px):
    raw = b"".join(b"\x00" + bytes(px[y * w:(y + 1) * w]) for y in range(h))
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
def texture(seed, w, h, gain, scratch=False):
    r = random.Random(seed)
    col = [r.gauss(0, 8) for _ in range(w)]
    px = []
    for y in range(h):
        for x in range(w):
            v = (100 + 20 * x / w + col[x] + r.gauss(0, 4)) * gain
            if scratch and 40 <= y < 80 and abs(x - (30 + (y - 40) // 2)) <= 1: v = 30 * gain
            px.append(max(0, min(255, int(round(v)))))
    return px
os.makedirs(f"{root}/good")
os.makedirs(f"{root}/test")
for i in range(8):
    w, h = 96 + 8 * (i % 3), 128 + 8 * (i % 2)
    png(f"{root}/good/g{i}.png", w, h, texture(i, w, h, 0.7 + 0.1 * (i % 4)))
for i in range(2):
    png(f"{root}/test/clean{i}.png", 96, 128, texture(100 + i, 96, 128, 1.0))
png(f"{root}/test/scratch.png", 96, 128, texture(200, 96, 128, 0.8, scratch=True))
PYEOF
check "generate photos" $?

"$MMFUSE" image fit --images "$TMP/good" --out "$TMP/model" --stride 4 --bank-size 512 --threads 2 >"$TMP/fit.json"
check "image fit runs" $?
$PY - "$TMP/fit.json" "$TMP/model" <<'PYEOF'
import json, os, sys
d = json.load(open(sys.argv[1]))
assert d["model_type"] == "image_patchcore" and d["images"] == 8 and d["bank_rows"] == 0, d
assert d["threshold"] > 0 and d["calibration"]["folds"] == 5, d
c = json.load(open(os.path.join(sys.argv[2], "config.json")))
assert c["model_type"] == "image_patchcore" and c["format_version"] == 5 and c["settings"]["top_k"] == 3 and c["settings"]["photo_statistics"] is False and c["settings"]["structure_statistics"] is True and c["threshold"] == d["threshold"]
assert c["settings"]["position_gaussian"] is True and c["settings"]["patch_knn"] is False and c["settings"]["features"]["position_grid"] == 40, c["settings"]
assert "model.safetensors" in c["manifest"]
assert sorted(os.listdir(sys.argv[2])) == ["config.json", "model.safetensors"]
assert not os.path.exists(sys.argv[2] + ".tmp-write")
PYEOF
check "image fit output and model folder" $?

"$MMFUSE" image detect --model "$TMP/model" --image "$TMP/test" --heatmap-dir "$TMP/heat" --threads 2 --json >"$TMP/det.json"
check "image detect runs" $?
# The scratch alone, in another call: the same score (no dependence on the batch).
"$MMFUSE" image detect --model "$TMP/model" --image "$TMP/test/scratch.png" --json >"$TMP/one.json"
check "image detect one photo" $?
$PY - "$TMP/det.json" "$TMP/one.json" <<'PYEOF'
import json, os, sys
d = json.load(open(sys.argv[1]))
r = {os.path.basename(x["path"]): x for x in d["results"]}
assert sorted(r) == ["clean0.png", "clean1.png", "scratch.png"], r
for x in d["results"]:
    assert list(x) == ["path", "score", "anomaly", "heatmap"], list(x)
    assert isinstance(x["anomaly"], bool) and os.path.exists(x["heatmap"]), x
    assert open(x["heatmap"], "rb").read(4) == b"\x89PNG"
assert r["scratch.png"]["anomaly"] and r["scratch.png"]["score"] > max(r["clean0.png"]["score"], r["clean1.png"]["score"]), r
one = json.load(open(sys.argv[2]))["results"]
assert len(one) == 1 and one[0]["heatmap"] is None and one[0]["score"] == r["scratch.png"]["score"], one
PYEOF
check "image detect results" $?

# --- errors: exit 2, the culprit named, nothing on stdout, nothing half-written.
mkdir -p "$TMP/empty"
expect_error "no good photos" "no image files" "$MMFUSE" image fit --images "$TMP/empty" --out "$TMP/m2"
[ ! -e "$TMP/m2" ]
check "no model folder after a failed fit" $?
printf 'not a png' >"$TMP/good/corrupt.png"
expect_error "corrupt good photo" "corrupt.png" "$MMFUSE" image fit --images "$TMP/good" --out "$TMP/m3"
[ ! -e "$TMP/m3" ] && [ ! -e "$TMP/m3.tmp-write" ]
check "nothing written after a corrupt photo" $?
expect_error "corrupt photo to score" "corrupt.png" "$MMFUSE" image detect --model "$TMP/model" --image "$TMP/test/scratch.png" "$TMP/good/corrupt.png"
expect_error "missing photo" "nope.png" "$MMFUSE" image detect --model "$TMP/model" --image "$TMP/nope.png"
$PY - "$TMP/model/config.json" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1])); c["format_version"] = 6; json.dump(c, open(sys.argv[1], "w"))
PYEOF
expect_error "model of another version" "config.json" "$MMFUSE" image detect --model "$TMP/model" --image "$TMP/test/scratch.png"
expect_error "not a model folder" "config.json" "$MMFUSE" image detect --model "$TMP/empty" --image "$TMP/test/scratch.png"

echo "image_anomaly_cli: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
