#!/usr/bin/env bash
# YOLO detection speed (issue 16 item 5): `mmfuse detect` vs ONNX Runtime (onnxruntime-node on the same
# .onnx file) vs Ultralytics' PyTorch predictor (the .pt it was exported from), ms per image, 2 threads,
# interleaved round by round in one run. Models: random-weight yolov8n / yolov8s at 640 from
# bench/make_yolo_bench_models.py (BatchNorm calibrated on real photos, so boxes depend on the image).
#
# Usage: bench/run_yolo_bench.sh --ultralytics SRC --ort-modules DIR [--models DIR] [--rounds N] [--save]
#   --ultralytics SRC   Ultralytics v8.2.x source tree (the folder holding ultralytics/); see bench/README.md
#   --ort-modules DIR   a node_modules folder holding onnxruntime-node (npm install --ignore-scripts)
#   --models DIR        holds yolov8{n,s}.{onnx,pt} (default /tmp/mmfuse-yolo-bench; made when absent)
#   --rounds N          timed passes over the images per engine and round (default 3); 3 rounds
#   --save              also write bench/yolo_results.md
# Images: the 640x480-class COCO photos and bus/zidane of ../shared/data/photos (IMAGES=... overrides).
# What each figure covers: mmfuse and Ultralytics from the JPEG file to boxes; ONNX Runtime from a
# decoded PPM (Node has no JPEG decoder), so mmfuse is also given without its decode.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" run_yolo_bench

ULTRA=""; ORT_MODULES=""; MODELS_DIR="/tmp/mmfuse-yolo-bench"; ROUNDS=3; SAVE=0
THREADS="${THREADS:-2}"
while (($#)); do
  case "$1" in
    --ultralytics) ULTRA=${2:?}; shift ;;
    --ort-modules) ORT_MODULES=${2:?}; shift ;;
    --models) MODELS_DIR=${2:?}; shift ;;
    --rounds) ROUNDS=${2:?}; shift ;;
    --save) SAVE=1 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$ULTRA" ] && [ -n "$ORT_MODULES" ] || { sed -n '2,16p' "$0" >&2; exit 2; }
if [ ! -f "$MODELS_DIR/yolov8n.onnx" ] || [ ! -f "$MODELS_DIR/yolov8s.onnx" ]; then
  log "making the bench models in $MODELS_DIR"
  "$PYTHON" bench/make_yolo_bench_models.py --ultralytics "$ULTRA" --out "$MODELS_DIR" >&2
fi
PHOTOS="$ROOT/../shared/data/photos"
if [ -z "${IMAGES:-}" ]; then
  IMAGES=$(ls "$PHOTOS"/coco_*.jpg "$PHOTOS"/bus.jpg "$PHOTOS"/zidane.jpg)
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PPMS=()
for img in $IMAGES; do
  ppm="$WORK/$(basename "$img").ppm"
  "$PYTHON" -c 'import cv2, sys; cv2.imwrite(sys.argv[2], cv2.imread(sys.argv[1]))' "$img" "$ppm"
  PPMS+=("$ppm")
done
n_images=$(echo $IMAGES | wc -w)
log "$n_images images, $THREADS threads, $ROUNDS passes x 3 rounds per engine"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -A RES
for model in yolov8n yolov8s; do
  for round in 1 2 3; do
    j=$("$MMFUSE" detect --model "$MODELS_DIR/$model.onnx" --threads "$THREADS" --bench "$ROUNDS" \
          $(for i in $IMAGES; do printf -- '--image %s ' "$i"; done))
    RES[$model,mm_total]+="$(echo "$j" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["ms_per_image"]["total"])') "
    RES[$model,mm_nodecode]+="$(echo "$j" | "$PYTHON" -c 'import json,sys; m=json.load(sys.stdin)["ms_per_image"]; print(m["total"]-m["decode"])') "
    j=$(ORT_NODE_MODULES="$ORT_MODULES" node bench/ort_yolo.mjs "$MODELS_DIR/$model.onnx" "$THREADS" "$ROUNDS" "${PPMS[@]}")
    RES[$model,ort]+="$(echo "$j" | "$PYTHON" -c 'import json,sys; d=json.load(sys.stdin); print(d["ms_per_image"]["total"] if isinstance(d["ms_per_image"], dict) else d["ms_per_image"])') "
    j=$("$PYTHON" bench/torch_yolo_predict.py --ultralytics "$ULTRA" --model "$MODELS_DIR/$model.pt" \
          --threads "$THREADS" --rounds "$ROUNDS" $IMAGES 2>/dev/null)
    RES[$model,torch]+="$(echo "$j" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["ms_per_image"])') "
    last() { echo $1 | awk '{print $NF}'; }
    log "$model round $round: mmfuse $(last "${RES[$model,mm_total]}") ort $(last "${RES[$model,ort]}") torch $(last "${RES[$model,torch]}") ms/image"
  done
done

cpu=$(lscpu | sed -n 's/^Model name: *//p')
isa=$(grep -o -w -E 'avx2|avx512f|avx512_vnni|avx512_bf16|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')
{
  echo "# YOLO detection speed: mmfuse vs ONNX Runtime vs Ultralytics (PyTorch)"
  echo
  echo "$(date -u +%F), $cpu ($(nproc) vCPU; $isa), load average at start $load, $THREADS threads,"
  echo "$n_images photos (../shared/data/photos), $ROUNDS passes per engine in each of 3 interleaved rounds;"
  echo "median of the 3 rounds. ms per image; random-weight models at 640, nc=80 (bench/make_yolo_bench_models.py)."
  echo
  echo "| model | mmfuse (JPEG → boxes) | mmfuse without decode | ONNX Runtime (decoded → boxes) | Ultralytics .pt (JPEG → boxes) | vs ONNX Runtime | vs Ultralytics |"
  echo "|---|---|---|---|---|---|---|"
  for model in yolov8n yolov8s; do
    a=$(echo ${RES[$model,mm_total]} | tr ' ' '\n' | median)
    b=$(echo ${RES[$model,mm_nodecode]} | tr ' ' '\n' | median)
    c=$(echo ${RES[$model,ort]} | tr ' ' '\n' | median)
    d=$(echo ${RES[$model,torch]} | tr ' ' '\n' | median)
    printf '| %s | %.1f | %.1f | %.1f | %.1f | %.2fx | %.2fx |\n' "$model" "$a" "$b" "$c" "$d" \
      "$(awk -v x="$c" -v y="$b" 'BEGIN{print x/y}')" "$(awk -v x="$d" -v y="$a" 'BEGIN{print x/y}')"
  done
  echo
  echo "Ratios are peer ms / mmfuse ms (> 1: mmfuse faster); against ONNX Runtime both sides start from decoded pixels."
  echo "Ultralytics letterboxes a .pt model to the smallest stride rectangle (480x640 for a 640x480 photo), the ONNX paths to 640x640."
} | tee "$WORK/report.md"
[ "$SAVE" = 1 ] && cp "$WORK/report.md" bench/yolo_results.md && log "wrote bench/yolo_results.md"
exit 0
