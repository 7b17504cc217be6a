#!/usr/bin/env bash
# Sensor streaming throughput: rows/s scored one row at a time through the full
# pipeline (despike, detector, 30-row smoothing, threshold) by
# `mmfuse sensor bench`, for every detector, as one stream and as THREADS
# parallel streams sharing one model (2 cores: 2 streams), next to
# scikit-learn's Isolation Forest scoring the same rows (streamed and batched);
# then the same for one channel alone (a univariate stream).
#
#   bench/sensor_bench.sh            (MMFUSE=./build/mmfuse ROWS=20000 THREADS=2)
#
# Writes bench/out/sensor/ (gitignored): data.csv, mmfuse.json, sklearn.json and
# results.md. Run it on an idle machine (see bench/README.md).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" sensor_bench
ROWS="${ROWS:-20000}"
THREADS="${THREADS:-2}"
OUT=bench/out/sensor
mkdir -p "$OUT"

# 8 correlated channels (a slow shared factor + noise), like a pump's sensors.
"$PYTHON" - "$OUT/data.csv" "$ROWS" <<'PYEOF'
import sys
import numpy as np
path, rows = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
f = np.zeros(rows)
for i in range(1, rows):
    f[i] = 0.95 * f[i - 1] + 0.3 * rng.standard_normal()
x = 10 * np.arange(1, 9) + np.outer(f, np.linspace(0.5, 0.9, 8)) + rng.standard_normal((rows, 8))
np.savetxt(path, x, delimiter=",", header=",".join(f"c{i}" for i in range(8)), comments="", fmt="%.6f")
PYEOF

log "mmfuse sensor bench ($ROWS rows, $THREADS streams)"
"$MMFUSE" sensor bench --input "$OUT/data.csv" --train-rows 400 --method all --threads "$THREADS" \
  --json >"$OUT/mmfuse.json"
# A univariate stream (column c0 alone): the issue's 100k rows/s target is for the
# default detector on one channel at 2 streams (`auto` = the online detector there).
"$PYTHON" -c "import sys; [print(l.split(',')[0]) for l in open(sys.argv[1])]" "$OUT/data.csv" >"$OUT/uni.csv"
log "mmfuse sensor bench, univariate ($ROWS rows, $THREADS streams)"
"$MMFUSE" sensor bench --input "$OUT/uni.csv" --train-rows 400 --method auto,iforest,t2,pca,mset,ensemble,online --threads "$THREADS" \
  --json >"$OUT/mmfuse_uni.json"
log "scikit-learn IsolationForest peer (1 thread)"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$PYTHON" bench/sensor_peer.py "$OUT/data.csv" \
  --train-rows 400 >"$OUT/sklearn.json"

"$PYTHON" - "$OUT" <<'PYEOF'
import json, os, sys
out = sys.argv[1]
m = json.load(open(os.path.join(out, "mmfuse.json")))
s = json.load(open(os.path.join(out, "sklearn.json")))
lines = [
    f"Streaming sensor scoring, {m['rows']} rows x {m['channels']} channels, fit on {m['train_rows']} rows, "
    f"{m['threads']} streams on {os.cpu_count()} cores, load {open('/proc/loadavg').read().split()[0]}",
    "",
    "| method | fit ms | rows/s, 1 stream | rows/s, %d streams |" % m["threads"],
    "|---|---|---|---|",
]
for r in m["results"]:
    lines.append(f"| {r['method']} | {r['fit_ms']:.1f} | {r['rows_per_s_one_stream']:.0f} | {r['rows_per_s_all_streams']:.0f} |")
lines.append(f"| sklearn {s['sklearn_version']} IsolationForest, row by row | {s['fit_ms']:.1f} | {s['rows_per_s_stream']:.0f} | |")
lines.append(f"| sklearn {s['sklearn_version']} IsolationForest, one batch | | {s['rows_per_s_batch']:.0f} | |")
u = json.load(open(os.path.join(out, "mmfuse_uni.json")))
lines += ["", f"Univariate ({u['rows']} rows x 1 channel):", "",
          "| method | fit ms | rows/s, 1 stream | rows/s, %d streams |" % u["threads"], "|---|---|---|---|"]
for r in u["results"]:
    lines.append(f"| {r['method']} | {r['fit_ms']:.1f} | {r['rows_per_s_one_stream']:.0f} | {r['rows_per_s_all_streams']:.0f} |")
iforest = next(r for r in m["results"] if r["method"] == "iforest")
lines.append("")
lines.append(f"mmfuse iforest vs sklearn: {iforest['rows_per_s_one_stream'] / s['rows_per_s_stream']:.0f}x streamed, "
             f"{iforest['rows_per_s_one_stream'] / s['rows_per_s_batch']:.2f}x its batch mode")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "results.md"), "w").write(text)
print(text)
PYEOF
