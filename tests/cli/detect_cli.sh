#!/usr/bin/env bash
# CLI contract of `mmfuse detect` on the toy Ultralytics exports
# (tests/fixtures/yolo_toy): --json prints one object per image per line with
# class_id/class/score/box, --save-dir writes annotated JPEGs, and a missing or
# corrupt model or image exits 2 naming the file with nothing on stdout or disk.
# Usage: detect_cli.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
FIX=$2
PY=/usr/bin/python3
V8=$FIX/yolo_toy/v8_toy_op17.onnx
V5=$FIX/yolo_toy/v5_toy_op12.onnx
IMG1=$FIX/images/img0_photo_640x480_rgb.jpg
IMG2=$FIX/images/img3_wide_100x37_rgb.png
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"

for model in "$V8" "$V5"; do
  "$MMFUSE" detect --model "$model" --image "$IMG1" --image "$IMG2" --conf 0.05 --json --threads 1 \
    --save-dir "$TMP/saved" >"$TMP/out.jsonl" 2>"$TMP/err"
  rc=$?  # before the message's command substitutions reset $?
  check "detect runs on $(basename "$model") ($(head -c 300 "$TMP/err"))" $rc
  $PY - "$TMP/out.jsonl" "$IMG1" "$IMG2" <<'PYEOF'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 2, lines
sizes = {sys.argv[2]: (640, 480), sys.argv[3]: (100, 37)}
for line, path in zip(lines, sys.argv[2:]):
    o = json.loads(line)
    assert list(o) == ["image", "detections"], list(o)
    assert o["image"] == path
    w, h = sizes[path]
    for d in o["detections"]:
        assert list(d) == ["class_id", "class", "score", "box"], list(d)
        assert isinstance(d["class_id"], int) and isinstance(d["class"], str)
        assert 0.05 < d["score"] <= 1
        x1, y1, x2, y2 = d["box"]
        assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h, d["box"]
PYEOF
  rc=$?  # before the message's command substitutions reset $?
  check "json contract for $(basename "$model")" $rc
  [ -s "$TMP/saved/img0_photo_640x480_rgb.jpg" ] && [ -s "$TMP/saved/img3_wide_100x37_rgb.jpg" ]
  check "annotated images written" $?
  rm -rf "$TMP/saved"
done

# Class filter by name and by id; plain-text output.
"$MMFUSE" detect --model "$V8" --image "$IMG1" --conf 0.01 --classes dent --json >"$TMP/dent.jsonl" 2>"$TMP/err"
check "--classes by name" $?
$PY -c "import json,sys; o=json.loads(open(sys.argv[1]).read()); assert all(d['class']=='dent' for d in o['detections'])" "$TMP/dent.jsonl"
check "--classes keeps only that class" $?
"$MMFUSE" detect --model "$V8" --image "$IMG1" >"$TMP/plain.txt" 2>"$TMP/err"
grep -q "img0_photo_640x480_rgb.jpg: " "$TMP/plain.txt"
check "plain text output" $?

# Bad input: exit 2, the file named, nothing printed, nothing saved.
printf 'not an onnx file' >"$TMP/corrupt.onnx"
printf 'not a jpeg' >"$TMP/corrupt.jpg"
expect_error "missing model" "missing.onnx" "$MMFUSE" detect --model "$TMP/missing.onnx" --image "$IMG1"
expect_error "corrupt model" "corrupt.onnx" "$MMFUSE" detect --model "$TMP/corrupt.onnx" --image "$IMG1"
expect_error "not an Ultralytics export" "not a recognised Ultralytics export" \
  "$MMFUSE" detect --model "$FIX/yolo_toy/op_transpose.onnx" --image "$IMG1"
expect_error "missing image" "missing.jpg" "$MMFUSE" detect --model "$V8" --image "$TMP/missing.jpg"
expect_error "corrupt image after a good one" "corrupt.jpg" \
  "$MMFUSE" detect --model "$V8" --image "$IMG1" --image "$TMP/corrupt.jpg" --save-dir "$TMP/never"
[ ! -e "$TMP/never" ]
check "nothing saved on error" $?
expect_error "unknown class" "--classes" "$MMFUSE" detect --model "$V8" --image "$IMG1" --classes rust
expect_error "wrong imgsz for a static export" "imgsz" "$MMFUSE" detect --model "$V8" --image "$IMG1" --imgsz 320

# --- In the plant: a camera point judged by the reference export raises an alarm whose type is
# the strongest defect's class mapped through alarm_types, with the boxes drawn on the evidence;
# a point whose thresholds no box reaches stays quiet. A class the model lacks fails at start.
REF="$(cd "$FIX/yolo" && pwd)/yolov8t-photo-640-op12.onnx"
PHOTO="$FIX/photos/coco_000000039769.jpg"
mkdir -p "$TMP/plant/cam"
cp "$PHOTO" "$TMP/plant/cam/shot.jpg"
TOP=$("$MMFUSE" detect --model "$REF" --image "$PHOTO" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["detections"][0]["class"])')
cat >"$TMP/plant/plant.yaml" <<YAML
data_dir: data
evidence: anomaly
devices:
  - id: press-1
    points:
      - id: p1
        camera: {image: cam, detector: yolo, yolo: {model: $REF, threshold: 0.05, alarm_types: {$TOP: surface_flaw}}}
  - id: press-2
    points:
      - id: p1
        camera: {image: cam, detector: yolo, yolo: {model: $REF, threshold: 0.999}}
YAML
"$MMFUSE" inspect --plant "$TMP/plant/plant.yaml" --json --records --threads 2 >"$TMP/round.json"
check "inspect a plant with detector yolo" $?
"$MMFUSE" alarms list --data "$TMP/plant/data" >"$TMP/alarms.json"
check "alarms list" $?
$PY - "$TMP/round.json" "$TMP/alarms.json" <<'PYEOF'
import json, os, sys
r, a = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))["alarms"]
assert r["alarms"] == 1, r["alarms"]
assert [x["device"] for x in a] == ["press-1"] and a[0]["type"] == "surface_flaw", a
recs = {x["device_id"]: x for x in r["records"]}
cam = recs["press-1"]["modalities"]["camera"]
assert cam["status"] == "anomaly" and cam["detail"]["detector"] == "yolo", cam
assert cam["detail"]["defects"] and all("class" in d for d in cam["detail"]["defects"]), cam
assert len(cam["evidence"]) == 2 and os.path.getsize(cam["evidence"][1]) > 0, cam["evidence"]
assert recs["press-2"]["modalities"]["camera"]["status"] == "ok"
assert not recs["press-2"]["alarm"]
PYEOF
check "yolo alarms carry the mapped type and boxed evidence" $?
sed -i "s/$TOP: surface_flaw/rust: surface_flaw/" "$TMP/plant/plant.yaml"
"$MMFUSE" inspect --plant "$TMP/plant/plant.yaml" --json --threads 2 >"$TMP/bad.json" 2>"$TMP/bad.err"
grep -q "alarm_types.rust" "$TMP/bad.json" "$TMP/bad.err"
check "a class the model lacks is reported naming the field" $?

finish detect_cli
