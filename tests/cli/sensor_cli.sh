#!/usr/bin/env bash
# CLI contract of `mmfuse sensor` (DESIGN.md §4): detect writes row,score,anomaly
# (one line per valid input row, atomically), bad input exits 2 with the file and
# line named, and eval prints the SKAB table when ../shared/data is present.
# Usage: sensor_cli.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
FIX=$2
PY=/usr/bin/python3
PUMP=$FIX/sensor/pump_semicolon.csv
BAD=$FIX/sensor/bad_rows.csv
SKAB=$(cd "$FIX/../.." && pwd)/../shared/data/sensors/skab
NAB=$(cd "$FIX/../.." && pwd)/../shared/data/sensors/nab
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"

# --- detect: the output contract on a SKAB-like ';' file with a fault at rows 450..529.
"$MMFUSE" sensor detect --input "$PUMP" --train-rows 400 --method ensemble --out "$TMP/pump.csv" \
  >"$TMP/summary.json" 2>"$TMP/err"
rc=$?  # before the message's command substitutions reset $?
check "detect runs ($(head -c 300 "$TMP/err"))" $rc
$PY - "$TMP/pump.csv" "$TMP/summary.json" <<'PYEOF'
import csv, json, sys
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0] == ["row", "score", "anomaly"], rows[0]
body = rows[1:]
assert len(body) == 600, len(body)
assert [int(r[0]) for r in body] == list(range(600))
assert all(r[2] in ("0", "1") for r in body)
flags = [int(r[2]) for r in body]
assert sum(flags[470:530]) >= 50, sum(flags[470:530])     # the fault is found
assert sum(flags[:400]) <= 10, sum(flags[:400])           # training rows mostly quiet
s = json.load(open(sys.argv[2]))
for key in ("input", "out", "rows", "train_rows", "channels", "threshold", "anomalies", "bad_rows", "pipeline"):
    assert key in s, key
assert s["rows"] == 600 and s["train_rows"] == 400
assert "anomaly" not in s["channels"] and "changepoint" not in s["channels"]
assert s["anomalies"] == sum(flags)
PYEOF
check "detect output contract" $?

# Every method runs and writes the same number of lines.
for m in iforest t2 pca mset; do
  "$MMFUSE" sensor detect --input "$PUMP" --train-rows 300 --method $m --smooth 5 --out "$TMP/$m.csv" >/dev/null 2>&1 &&
    [ "$(wc -l <"$TMP/$m.csv")" -eq 601 ]
  check "detect --method $m" $?
done

# Deterministic: the same command twice gives the same bytes.
"$MMFUSE" sensor detect --input "$PUMP" --method iforest --seed 3 --out "$TMP/a.csv" >/dev/null 2>&1
"$MMFUSE" sensor detect --input "$PUMP" --method iforest --seed 3 --out "$TMP/b.csv" >/dev/null 2>&1
cmp -s "$TMP/a.csv" "$TMP/b.csv"
check "detect is deterministic" $?

# --- bad rows: skipped by default (warned by line on stderr, listed in JSON), rejected on request.
"$MMFUSE" sensor detect --input "$BAD" --train-rows 40 --smooth 5 --out "$TMP/bad.csv" \
  >"$TMP/bad.json" 2>"$TMP/bad.err"
check "detect skips bad rows" $?
grep -q "bad_rows.csv:12: column 'b': not a finite number: 'abc' (row skipped)" "$TMP/bad.err" &&
  grep -q "bad_rows.csv:20: expected 4 fields, found 3" "$TMP/bad.err" &&
  grep -q "bad_rows.csv:47:" "$TMP/bad.err"
check "skipped rows are named by line on stderr" $?
$PY - "$TMP/bad.csv" "$TMP/bad.json" <<'PYEOF'
import csv, json, sys
rows = list(csv.reader(open(sys.argv[1])))[1:]
assert len(rows) == 56, len(rows)
nums = [int(r[0]) for r in rows]
assert 10 not in nums and 18 not in nums and 29 not in nums and 45 not in nums, nums
s = json.load(open(sys.argv[2]))
assert s["bad_rows_skipped"] == 4
assert [b["line"] for b in s["bad_rows"]] == [12, 20, 31, 47]
PYEOF
check "skipped rows leave gaps in row numbers and are listed" $?

expect_error "reject mode names file, line and column" "bad_rows.csv:12: column 'b': not a finite number: 'abc'" \
  "$MMFUSE" sensor detect --input "$BAD" --train-rows 40 --reject-bad-rows --out "$TMP/rej.csv"
[ ! -e "$TMP/rej.csv" ]
check "rejected input writes no output file" $?

# --- atomic output: a failing run leaves an existing output untouched, and no temp files.
echo "keep me" >"$TMP/existing.csv"
expect_error "train rows beyond the file" "exceeds the 600 valid rows" \
  "$MMFUSE" sensor detect --input "$PUMP" --train-rows 5000 --out "$TMP/existing.csv"
[ "$(cat "$TMP/existing.csv")" = "keep me" ]
check "failed run leaves the old output" $?
[ -z "$(ls -A "$TMP" | grep '\.tmp-')" ]
check "no temporary files left" $?
expect_error "missing output folder" "output folder does not exist" \
  "$MMFUSE" sensor detect --input "$PUMP" --out "$TMP/nope/out.csv"

# --- other bad input.
expect_error "missing input" "nope.csv: cannot open CSV file" \
  "$MMFUSE" sensor detect --input "$TMP/nope.csv" --out "$TMP/x.csv"
expect_error "unknown method" "unknown detector method 'lstm'" \
  "$MMFUSE" sensor detect --input "$PUMP" --method lstm --out "$TMP/x.csv"
expect_error "unknown ignored channel" "ignored channel 'Nope' is not a column" \
  "$MMFUSE" sensor detect --input "$PUMP" --ignore-channels Nope --out "$TMP/x.csv"
printf 'a,b\n' >"$TMP/header_only.csv"
expect_error "no data rows" "no valid data rows" \
  "$MMFUSE" sensor detect --input "$TMP/header_only.csv" --out "$TMP/x.csv"
printf '' >"$TMP/empty.csv"
expect_error "empty file" "empty file (no header row)" \
  "$MMFUSE" sensor detect --input "$TMP/empty.csv" --out "$TMP/x.csv"
expect_error "too few training rows" "too few training rows" \
  "$MMFUSE" sensor detect --input "$PUMP" --train-rows 30 --out "$TMP/x.csv"
expect_error "missing SKAB folder" "SKAB folder not found" \
  "$MMFUSE" sensor eval --skab "$TMP/no-skab"
expect_error "bad register spec" "register 'temp'" \
  "$MMFUSE" sensor poll --register temp --count 1

# --- a flat line is a normal state: scored, nothing flagged (not refused).
$PY - "$TMP/flat.csv" <<'PYEOF'
import sys
with open(sys.argv[1], "w") as f:
    f.write("timestamp,value\n")
    for i in range(1000):
        f.write("2014-04-01 %02d:%02d:00,18\n" % (i // 60 % 24, i % 60))
PYEOF
for m in ensemble online; do
  "$MMFUSE" sensor detect --input "$TMP/flat.csv" --method $m --out "$TMP/flat_$m.csv" >"$TMP/flat.json" 2>"$TMP/err" &&
    $PY -c "import json,sys; s=json.load(open('$TMP/flat.json')); assert s['anomalies'] == 0, s" &&
    [ "$(wc -l <"$TMP/flat_$m.csv")" -eq 1001 ]
  rc=$?  # before the message's command substitutions reset $?
  check "detect scores a flat line with $m ($(head -c 200 "$TMP/err"))" $rc
done

# --- the default method is the online detector for one channel (the flat line), the ensemble for several.
"$MMFUSE" sensor detect --input "$TMP/flat.csv" --out "$TMP/flat_auto.csv" >"$TMP/flat.json" 2>"$TMP/err" &&
  $PY -c "import json; s=json.load(open('$TMP/flat.json')); assert s['method'] == 'online' and s['pipeline']['method'] == 'auto', s" &&
  $PY -c "import json; s=json.load(open('$TMP/summary.json')); assert s['method'] == 'ensemble', s"
check "detect default: online for one channel, ensemble for several" $?

# --- the default pipeline reports the time-based slow-channel rule; the online method runs.
$PY -c "import json; s=json.load(open('$TMP/summary.json')); p=s['pipeline']; assert p['slow_channel_autocorr'] == 0.7 and p['margin'] == 1.1 and p['slow_channel_lag_s'] == 1 and 'slow_channels' in s and s['sample_interval_s'] == 1.0, s"
check "detect defaults: slow-channel rule on, lag 1 s from the time column" $?
"$MMFUSE" sensor detect --input "$PUMP" --method online --out "$TMP/online.csv" >"$TMP/online.json" 2>"$TMP/err" &&
  [ "$(wc -l <"$TMP/online.csv")" -eq 601 ]
rc=$?  # before the message's command substitutions reset $?
check "detect --method online ($(head -c 200 "$TMP/err"))" $rc
expect_error "missing NAB folder" "not a NAB folder" \
  "$MMFUSE" sensor eval --nab "$TMP/no-nab"
expect_error "eval needs a corpus" "give --skab DIR or --nab DIR" \
  "$MMFUSE" sensor eval

# --- bench: JSON shape on a small synthetic run.
"$MMFUSE" sensor bench --rows 2000 --method t2,iforest --threads 2 --json >"$TMP/bench.json" 2>"$TMP/err"
check "bench runs" $?
$PY - "$TMP/bench.json" <<'PYEOF'
import json, sys
b = json.load(open(sys.argv[1]))
assert [r["method"] for r in b["results"]] == ["t2", "iforest"]
assert all(r["rows_per_s_one_stream"] > 0 and r["rows_per_s_all_streams"] > 0 for r in b["results"])
PYEOF
check "bench JSON" $?

# --- eval on the real SKAB files when present.
if [ -d "$SKAB/valve1" ]; then
  "$MMFUSE" sensor eval --skab "$SKAB" --method iforest,pca,ensemble --json >"$TMP/eval.json" 2>"$TMP/err"
  rc=$?  # before the message's command substitutions reset $?
  check "eval runs ($(head -c 300 "$TMP/err"))" $rc
  $PY - "$TMP/eval.json" <<'PYEOF'
import json, sys
e = json.load(open(sys.argv[1]))
assert e["files"] == 30, e["files"]
r = {x["method"]: x for x in e["results"]}
assert r["iforest"]["f1"] >= 0.29, r["iforest"]
assert any(x["f1"] >= 0.78 and x["far"] <= 20.0 for x in e["results"]), e["results"]
for x in e["results"]:
    tp, fp, fn, tn = x["tp"], x["fp"], x["fn"], x["tn"]
    assert abs(x["f1"] - tp / (tp + (fp + fn) / 2)) < 1e-12
    assert len(x["per_file"]) == 30
PYEOF
  check "eval JSON meets the targets" $?
  "$MMFUSE" sensor eval --skab "$SKAB" --method t2 >"$TMP/table.txt" 2>&1 &&
    grep -q "T-squared" "$TMP/table.txt" && grep -q "^t2 " "$TMP/table.txt"
  check "eval prints the table beside the leaderboard" $?
  # eval with no method scores what detect runs by default.
  "$MMFUSE" sensor eval --skab "$SKAB" --json >"$TMP/default.json" 2>"$TMP/err"
  check "eval default runs" $?
  $PY - "$TMP/default.json" <<'PYEOF'
import json, sys
e = json.load(open(sys.argv[1]))
(r,) = e["results"]
assert r["method"] == "auto", r["method"]  # = ensemble on SKAB's 8 channels
assert r["f1"] >= 0.80 and r["far"] <= 20.0, (r["f1"], r["far"])
PYEOF
  check "eval default (= detect's defaults) meets F1 >= 0.80, FAR <= 20 %" $?
else
  echo "SKIP: SKAB data not found at $SKAB (eval checks skipped)"
fi

# --- NAB: the published scoreboard reproduced from its per-file scores; our detector scored.
if [ -d "$NAB/data" ]; then
  expect_error "unknown NAB profile" "unknown NAB profile 'nope'" \
    "$MMFUSE" sensor eval --nab "$NAB" --profile nope
  "$MMFUSE" sensor eval --nab "$NAB" --results "$NAB/results/numenta" --profile all --json >"$TMP/nabpub.json" 2>"$TMP/err"
  rc=$?  # before the message's command substitutions reset $?
  check "eval --nab --results (scoreboard) runs ($(head -c 300 "$TMP/err"))" $rc
  $PY - "$TMP/nabpub.json" "$NAB/results/final_results.json" <<'PYEOF'
import json, sys
e = json.load(open(sys.argv[1])); pub = json.load(open(sys.argv[2]))
assert len(e["results"]) == 3
for r in e["results"]:
    assert abs(r["normalized"] - pub["numenta"][r["profile"]]) < 1e-9, (r, pub["numenta"])
PYEOF
  check "eval --nab reproduces NAB's published numenta scores" $?
  "$MMFUSE" sensor eval --nab "$NAB" --method online --json >"$TMP/nab.json" 2>"$TMP/err"
  rc=$?  # before the message's command substitutions reset $?
  check "eval --nab --method online runs ($(head -c 300 "$TMP/err"))" $rc
  $PY - "$TMP/nab.json" <<'PYEOF'
import json, sys
e = json.load(open(sys.argv[1]))
assert e["files"] == 19
(r,) = e["results"]
assert r["profile"] == "standard"
s = r["scores"]
assert len(s["per_file"]) == 19 and s["null_score"] < 0 and s["perfect_score"] > 0
assert abs(s["normalized"] - 100 * (s["score"] - s["null_score"]) / (s["perfect_score"] - s["null_score"])) < 1e-9
assert "rows_flagged" in r["flags"]
PYEOF
  check "eval --nab JSON" $?
else
  echo "SKIP: NAB data not found at $NAB (NAB checks skipped)"
fi

finish sensor_cli
