#!/usr/bin/env bash
# Retrieval benchmark (issue 4): FAISS index kinds on synthetic 512-d unit
# vectors (build time, memory, single-query p50/p99 latency at top-10, recall@10
# against exact search), then end-to-end `mmfuse index add` throughput on
# generated images with the random-weight ViT-B/32 model.
#
# DATA=clustered (default) is embedding-like: 1000 clusters in a 64-d subspace
# plus noise. DATA=random is uniform on the sphere, the worst case for HNSW and
# IVF (it needs far wider beams: see docs/retrieval.md for the sweep).
#
#   bench/index_bench.sh                       # 1M clustered vectors, 2 threads
#   DATA=random VECTORS=100000 EF=1024,2048,4096 NPROBE=256,1024 bench/index_bench.sh
#   MMFUSE=build/mmfuse IMAGES=1000 bench/index_bench.sh
#
# Writes bench/out/index_ann_<DATA>_<N>.json and bench/out/index_e2e*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
MMFUSE=${MMFUSE:-build/mmfuse}
VECTORS=${VECTORS:-1000000}
THREADS=${THREADS:-2}
QUERIES=${QUERIES:-300}
DATA=${DATA:-clustered}
KINDS=${KINDS:-flat,hnsw,ivf}
EF=${EF:-16,32,64,128,256}
NPROBE=${NPROBE:-8,32,128}
IMAGES=${IMAGES:-1000}
PY=/usr/bin/python3
OUT=bench/out
mkdir -p "$OUT"
load=$(cut -d' ' -f1 /proc/loadavg)
echo "load average $load (figures swing when other work shares the cores)" >&2

ANN=$OUT/index_ann_${DATA}_$VECTORS
echo "== ANN: $VECTORS x 512 $DATA, kinds $KINDS, $THREADS threads" >&2
EFC_ARG=()
[ -n "${EFC:-}" ] && EFC_ARG=(--ef-construction "$EFC")
/usr/bin/time -v "$MMFUSE" index bench --data "$DATA" --vectors "$VECTORS" --dim 512 --queries "$QUERIES" \
  --kinds "$KINDS" --ef-search "$EF" --nprobe "$NPROBE" --threads "$THREADS" "${EFC_ARG[@]}" \
  >"$ANN.json" 2>"$ANN.err"
grep -E "Maximum resident|Elapsed" "$ANN.err" >&2 || true
$PY - "$ANN.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"{d['vectors']} x {d['dim']} {d['data']}, {d['threads']} threads, {d['queries']} queries, top-{d['top_k']}")
print("| kind | setting | build s | index MB | p50 ms | p99 ms | recall@10 |")
print("|---|---|---|---|---|---|---|")
for r in d["results"]:
    s = f"ef_search={r['ef_search']}" if "ef_search" in r else (f"nprobe={r['nprobe']}/{r['nlist']}" if "nprobe" in r else "-")
    print(f"| {r['kind']} | {s} | {r['build_s']} | {r['index_memory_mb']} | {r['p50_ms']} | {r['p99_ms']} | {r['recall_at_k']} |")
PYEOF

[ "$IMAGES" -gt 0 ] || exit 0
MODEL=$OUT/vit-b-32
[ -f "$MODEL/config.json" ] || $PY scripts/synth_clip_model.py --out "$MODEL" --preset vit-b-32
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
$PY - "$TMP/photos" "$IMAGES" <<'PYEOF'
import os, random, sys
from PIL import Image, ImageDraw
out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)
rng = random.Random(0)
for i in range(n):
    im = Image.new("RGB", (320, 240), tuple(rng.randrange(256) for _ in range(3)))
    d = ImageDraw.Draw(im)
    for _ in range(8):
        x, y = rng.randrange(320), rng.randrange(240)
        d.rectangle([x, y, x + rng.randrange(20, 120), y + rng.randrange(20, 120)], fill=tuple(rng.randrange(256) for _ in range(3)))
    im.save(f"{out}/img{i:05d}.jpg", quality=90)
PYEOF
echo "== end to end: index add of $IMAGES JPEGs (320x240) with ViT-B/32, $THREADS threads" >&2
"$MMFUSE" index add --index "$TMP/idx" --model "$MODEL" --threads "$THREADS" --quiet "$TMP/photos" >"$OUT/index_e2e.json"
"$MMFUSE" index add --index "$TMP/idx" --threads "$THREADS" --quiet "$TMP/photos" >"$OUT/index_e2e_rerun.json"
echo "== peer: the chapter's loop (PyTorch CLIP one image at a time + faiss.IndexFlatIP), $THREADS threads" >&2
$PY bench/index_torch_peer.py --model "$MODEL" --images "$TMP/photos" --out "$TMP/peer.faiss" \
  --threads "$THREADS" >"$OUT/index_e2e_peer.json"
$PY - "$OUT/index_e2e.json" "$OUT/index_e2e_rerun.json" "$OUT/index_e2e_peer.json" <<'PYEOF'
import json, sys
a, b, p = (json.load(open(x)) for x in sys.argv[1:4])
print(f"mmfuse index add: {a['added']} images in {a['seconds']:.1f} s = {a['items_per_second']:.1f} images/s; "
      f"re-run (all skipped by hash): {b['seconds']:.2f} s")
print(f"PyTorch + FAISS one by one: {p['added']} images in {p['seconds']:.1f} s = {p['items_per_second']:.1f} images/s")
print(f"ratio: {a['items_per_second'] / p['items_per_second']:.2f}x")
PYEOF
