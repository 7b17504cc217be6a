#!/usr/bin/env bash
# `mmfuse image fit --backbone` with the tiny random-weight timm ResNet fixture
# (model folder records the backbone; detect reopens it; a changed backbone is
# exit 2 naming the file), and `image eval-boxes` on a generated NEU-DET-style
# folder (JSON shape, per-class rows; a broken annotation is exit 2).
# Usage: image_backbone_cli.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
FIXTURES=$2
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"

$PY - "$TMP" <<'PYEOF'
import os, random, struct, sys, zlib
root = sys.argv[1]
def png(path, w, h, px):
    raw = b"".join(b"\x00" + bytes(px[y * w:(y + 1) * w]) for y in range(h))
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
def texture(seed, w, h, blob=None):
    r = random.Random(seed)
    px = []
    for y in range(h):
        for x in range(w):
            v = 120 + 25 * ((x + y) % 9 < 4) + r.gauss(0, 5)
            if blob and blob[0] <= x < blob[2] and blob[1] <= y < blob[3]: v = 20
            px.append(max(0, min(255, int(round(v)))))
    return px
for d in ["good", "test", "neu/cls_a", "neu/cls_b"]: os.makedirs(f"{root}/{d}")
for i in range(4): png(f"{root}/good/g{i}.png", 64, 64, texture(i, 64, 64))
png(f"{root}/test/blob.png", 64, 64, texture(50, 64, 64, (20, 20, 36, 36)))
rows = ["image,annotation,class,num_boxes"]
for cls in ["cls_a", "cls_b"]:
    for i in range(3):
        box = (8 + 8 * i, 16, 40 + 8 * i, 40)
        png(f"{root}/neu/{cls}/{cls}_{i}.png", 64, 64, texture(ord(cls[-1]) * 10 + i, 64, 64, box))
        open(f"{root}/neu/{cls}/{cls}_{i}.xml", "w").write(
            "<annotation><object><bndbox><xmin>%d</xmin><ymin>%d</ymin><xmax>%d</xmax><ymax>%d</ymax>"
            "</bndbox></object></annotation>" % (box[0] + 1, box[1] + 1, box[2], box[3]))
        rows.append(f"{cls}/{cls}_{i}.png,{cls}/{cls}_{i}.xml,{cls},1")
open(f"{root}/neu/manifest.csv", "w").write("\n".join(rows) + "\n")
PYEOF
check "generate photos" $?

cp -r "$FIXTURES/timm_resnet/resnet18-tiny" "$TMP/backbone"
rm -f "$TMP/backbone/reference.safetensors"
"$MMFUSE" image fit --images "$TMP/good" --backbone "$TMP/backbone" --out "$TMP/model" --bank-size 64 --folds 2 --threads 2 >"$TMP/fit.json"
check "image fit --backbone runs" $?
$PY - "$TMP/fit.json" "$TMP/model/config.json" "$TMP/backbone" <<'PYEOF'
import json, os, sys
d = json.load(open(sys.argv[1]))
assert d["features"] == "resnet18" and d["dim"] == 40 and d["images"] == 4, d
f = json.load(open(sys.argv[2]))["settings"]["features"]
assert f["kind"] == "backbone" and f["path"] == os.path.abspath(sys.argv[3]) and len(f["sha256"]) == 64, f
assert f["layers"] == ["layer2", "layer3"], f
PYEOF
check "model records the backbone" $?
"$MMFUSE" image detect --model "$TMP/model" --image "$TMP/test/blob.png" --heatmap-dir "$TMP/heat" --json >"$TMP/det.json"
check "image detect with a backbone model" $?
$PY - "$TMP/det.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
assert len(r) == 1 and r[0]["score"] > 0 and open(r[0]["heatmap"], "rb").read(4) == b"\x89PNG", r
PYEOF
check "detect output" $?
echo " " >>"$TMP/backbone/config.json"
expect_error "changed backbone" "changed since the fit" "$MMFUSE" image detect --model "$TMP/model" --image "$TMP/test/blob.png"
expect_error "missing backbone" "nope" "$MMFUSE" image fit --images "$TMP/good" --backbone "$TMP/nope" --out "$TMP/m2"
[ ! -e "$TMP/m2" ]
check "no model after a failed fit" $?

"$MMFUSE" image eval-boxes --data "$TMP/neu" --threads 2 >"$TMP/boxes.json"
check "image eval-boxes runs" $?
$PY - "$TMP/boxes.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert sorted(d["classes"]) == ["cls_a", "cls_b"] and d["all"]["photos"] == 6 and d["all"]["boxes"] == 6, d
for row in list(d["classes"].values()) + [d["all"]]:
    assert 0 <= row["box_hit_rate"] <= 1 and 0 <= row["peak_in_box_rate"] <= 1 and 0 < row["chance_peak_in_box"] < 1, row
# The dark blobs are far from the surface around them: every box is hit.
assert d["all"]["box_hit_rate"] == 1.0, d
PYEOF
check "eval-boxes output" $?
printf '<annotation><bndbox><xmin>3</xmin></bndbox></annotation>' >"$TMP/neu/cls_a/cls_a_0.xml"
expect_error "broken annotation" "cls_a_0.xml" "$MMFUSE" image eval-boxes --data "$TMP/neu"

echo "image_backbone_cli: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
