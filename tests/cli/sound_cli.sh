#!/usr/bin/env bash
# CLI contract of `mmfuse sound fit/detect/features/eval/bench` and the exit
# code 2 + clear message rule for bad audio, bad model folders and bad options.
# Usage: sound_cli.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
FIX=$2
PY=/usr/bin/python3
CLIPS=$FIX/sound/clips
CNN=$FIX/sound/cnn_lstm/chapter_small
DATA=$(cd "$FIX/../.." && pwd)/../shared/data/audio/dcase2023_task2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"

# --- fit on the normal clips, then detect: the anomalies score above the threshold.
mkdir -p "$TMP/normal"
cp "$CLIPS"/normal_*.wav "$TMP/normal/"
"$MMFUSE" sound fit --normal "$TMP/normal" --out "$TMP/model" --threads 2 >"$TMP/fit.json"
check "sound fit runs" $?
$PY - "$TMP/fit.json" "$TMP/model" <<'PYEOF'
import json, os, sys
d = json.load(open(sys.argv[1]))
assert list(d)[:6] == ["model", "model_type", "clips", "frames", "dim", "threshold"], list(d)
assert d["model_type"] == "sound_gaussian" and d["clips"] == 4 and d["dim"] == 40, d
assert d["threshold"] > 0 and d["calibration"]["folds"] == 4, d
c = json.load(open(os.path.join(sys.argv[2], "config.json")))
assert c["model_type"] == "sound_gaussian" and c["threshold"] == d["threshold"]
assert os.path.exists(os.path.join(sys.argv[2], "model.safetensors"))
PYEOF
check "sound fit output and model folder" $?

"$MMFUSE" sound fit --normal "$TMP/normal" --out "$TMP/model05" --false-alarm-rate 0.05 >"$TMP/fit05.json"
$PY -c "import json,sys; d=json.load(open(sys.argv[1])); c=d['calibration']; assert abs(c['sigma']-1.6448536269514729)<1e-6 and abs(c['false_alarm_rate']-0.05)<1e-12 and abs(d['threshold']-(c['mean']+c['sigma']*c['std']))<1e-9, d" "$TMP/fit05.json"
check "sound fit --false-alarm-rate sets sigma" $?
"$MMFUSE" sound fit --normal "$TMP/normal" --out "$TMP/bad" --false-alarm-rate 0.05 --sigma 2 >/dev/null 2>&1
[ $? -eq 2 ]
check "sound fit: --false-alarm-rate and --sigma exclude each other" $?

"$MMFUSE" sound detect --model "$TMP/model" "$CLIPS/normal_0.wav" "$CLIPS/anomaly_clicks.wav" \
  "$CLIPS/anomaly_whine.wav" >"$TMP/det.json"
check "sound detect runs" $?
$PY - "$TMP/det.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert list(d) == ["model", "model_type", "threshold", "decision", "results"], list(d)
r = d["results"]
assert [x["file"].rsplit("/", 1)[1] for x in r] == ["normal_0.wav", "anomaly_clicks.wav", "anomaly_whine.wav"]
for x in r:
    assert list(x)[:4] == ["file", "score", "anomaly", "threshold"], list(x)
    assert x["anomaly"] in (0, 1) and x["threshold"] == d["threshold"]
    assert x["anomaly"] == int(x["score"] >= d["threshold"])
    # The probability is the held-out normal scores' Gaussian CDF: >= 1 - 0.00135
    # (3 sigma, the default false-alarm rate) exactly when score >= threshold.
    assert 0 <= x["probability"] <= 1 and x["anomaly"] == int(x["probability"] >= 1 - 0.0013498980316300933), x
assert r[0]["anomaly"] == 0, r[0]
assert r[2]["anomaly"] == 1, r  # the whine is far outside the normal clips
assert r[1]["score"] > r[0]["score"] and r[2]["score"] > 2 * r[0]["score"], r
PYEOF
check "sound detect contract and decisions" $?

"$MMFUSE" sound detect --model "$TMP/model" --threshold 1e9 "$CLIPS/anomaly_clicks.wav" >"$TMP/thr.json"
$PY -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['threshold']==1e9 and d['results'][0]['anomaly']==0" "$TMP/thr.json"
check "sound detect --threshold overrides" $?

# Folder input, a 44.1 kHz stereo clip and a float WAV go through the same path.
"$MMFUSE" sound detect --model "$TMP/model" "$TMP/normal" "$CLIPS/stereo_44k_tone.wav" "$CLIPS/float_8k.wav" >"$TMP/many.json"
$PY -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d['results'])==6, len(d['results'])" "$TMP/many.json"
check "sound detect folders and other rates" $?

# --- the CNN+LSTM classifier through the same command.
"$MMFUSE" sound detect --model "$CNN" "$CLIPS/anomaly_clicks.wav" >"$TMP/cnn.json"
check "sound detect with a CNN+LSTM model runs" $?
$PY - "$TMP/cnn.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["model_type"] == "sound_cnn_lstm" and d["threshold"] is None, d
x = d["results"][0]
assert set(x["probabilities"]) == {"normal", "abnormal_noise", "alarm", "impact", "friction"}
assert abs(sum(x["probabilities"].values()) - 1) < 1e-5
assert x["label"] == max(x["probabilities"], key=x["probabilities"].get)
assert x["anomaly"] == int(x["label"] != "normal")
assert abs(x["score"] - (1 - x["probabilities"]["normal"])) < 1e-6
PYEOF
check "sound detect classifier contract" $?

# --- features: shapes follow the documented definition.
"$MMFUSE" sound features "$CLIPS/normal_0.wav" --raw >"$TMP/mfcc.json"
check "sound features runs" $?
"$MMFUSE" sound fit --normal "$TMP/normal" --out "$TMP/model_mel" --feature log_mel >/dev/null
"$MMFUSE" sound features "$CLIPS/normal_0.wav" --kind log_mel --model "$TMP/model_mel" >"$TMP/mel.json"
check "sound features --model runs" $?
$PY - "$TMP/mfcc.json" "$TMP/mel.json" <<'PYEOF'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert a["kind"] == "mfcc" and a["dim"] == 40 and a["frames"] == 1 + 8000 // 160, (a["dim"], a["frames"])
assert len(a["data"]) == a["frames"] and all(len(r) == 40 for r in a["data"])
assert a["features"]["mel_scale"] == "slaney" and a["features"]["n_mfcc"] == 40
assert b["kind"] == "log_mel" and b["dim"] == 128 and b["features"]["hop_length"] == 512
PYEOF
check "sound features contract" $?

# --- eval on a DCASE-shaped folder built from the fixtures.
mkdir -p "$TMP/dcase/pump"
for i in 0 1 2; do cp "$CLIPS/normal_$i.wav" "$TMP/dcase/pump/pump_train_section_00_source_train_normal_000$i.wav"; done
cp "$CLIPS/normal_3.wav" "$TMP/dcase/pump/pump_test_section_00_source_test_normal_0000.wav"
cp "$CLIPS/anomaly_clicks.wav" "$TMP/dcase/pump/pump_test_section_00_source_test_anomaly_0000.wav"
cp "$CLIPS/anomaly_whine.wav" "$TMP/dcase/pump/pump_test_section_00_source_test_anomaly_0001.wav"
"$MMFUSE" sound eval --dcase "$TMP/dcase" --json >"$TMP/eval.json"
check "sound eval runs" $?
$PY - "$TMP/eval.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
m = d["machines"][0]
assert m["machine"] == "pump" and m["train_clips"] == 3 and m["test_normal"] == 1 and m["test_anomaly"] == 2, m
assert m["auc"] == 1.0 and m["pauc"] == 1.0 and m["f1"] > 0 and m["fp"] == 0, m
assert m["auc_source"] == 1.0 and m["auc_target"] is None, m
assert d["hmean_auc"] == 1.0 and d["dcase_score"] == 1.0 and d["pauc_max_fpr"] == 0.1, d
assert [s["file"] for s in m["test_scores"]][0].endswith("anomaly_0000.wav")
PYEOF
check "sound eval contract" $?
"$MMFUSE" sound eval --dcase "$TMP/dcase" >"$TMP/eval.txt"
grep -q "^pump" "$TMP/eval.txt"
check "sound eval table" $?

# --- real DCASE sample, when ../shared/data is present.
if [ -d "$DATA" ]; then
  "$MMFUSE" sound eval --dcase "$DATA" --json >"$TMP/real.json"
  check "sound eval on the shared DCASE sample" $?
  $PY -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d['machines'])==7" "$TMP/real.json"
  check "sound eval covers 7 machine types" $?
else
  echo "skip: $DATA not present (shared DCASE sample)"
fi

# --- bench (tiny run: contract only, no timing assertions).
"$MMFUSE" sound bench --seconds 1 --clips 4 --threads 1 --json >"$TMP/bench.json"
check "sound bench runs" $?
$PY -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['clips']==4 and d['clips_per_s']>0" "$TMP/bench.json"
check "sound bench contract" $?

# --- bad input: exit 2, a message naming the culprit, nothing on stdout.
expect_error "not audio" "not_audio.wav" "$MMFUSE" sound detect --model "$TMP/model" "$CLIPS/not_audio.wav"
expect_error "empty audio" "empty.wav" "$MMFUSE" sound detect --model "$TMP/model" "$CLIPS/empty.wav"
expect_error "missing audio" "missing.wav" "$MMFUSE" sound detect --model "$TMP/model" "$CLIPS/missing.wav"
head -c 30 "$CLIPS/normal_0.wav" >"$TMP/trunc.wav"
expect_error "truncated header" "trunc.wav" "$MMFUSE" sound detect --model "$TMP/model" "$TMP/trunc.wav"
expect_error "features of garbage" "not_audio.wav" "$MMFUSE" sound features "$CLIPS/not_audio.wav"
expect_error "missing model" "$TMP/nope" "$MMFUSE" sound detect --model "$TMP/nope" "$CLIPS/normal_0.wav"
cp -r "$TMP/model" "$TMP/bad"; echo '{"model_type": ' >"$TMP/bad/config.json"
expect_error "broken model config" "config.json" "$MMFUSE" sound detect --model "$TMP/bad" "$CLIPS/normal_0.wav"
rm -rf "$TMP/bad"; cp -r "$TMP/model" "$TMP/bad"
$PY -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['model_type']='bert'; json.dump(c,open(p,'w'))" "$TMP/bad/config.json"
expect_error "unsupported model_type" "bert" "$MMFUSE" sound detect --model "$TMP/bad" "$CLIPS/normal_0.wav"
rm -rf "$TMP/bad"; cp -r "$TMP/model" "$TMP/bad"
$PY -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['features']['n_mfcc']=20; json.dump(c,open(p,'w'))" "$TMP/bad/config.json"
expect_error "weights disagree with config" "dim" "$MMFUSE" sound detect --model "$TMP/bad" "$CLIPS/normal_0.wav"
rm -rf "$TMP/bad"; cp -r "$TMP/model" "$TMP/bad"; truncate -s 100 "$TMP/bad/model.safetensors"
expect_error "truncated weights" "model.safetensors" "$MMFUSE" sound detect --model "$TMP/bad" "$CLIPS/normal_0.wav"
mkdir -p "$TMP/nothing"
expect_error "fit on an empty folder" "no audio" "$MMFUSE" sound fit --normal "$TMP/nothing" --out "$TMP/m2"
[ ! -e "$TMP/m2" ]
check "failed fit writes no model" $?
expect_error "fit on garbage" "not_audio.wav" "$MMFUSE" sound fit --normal "$CLIPS/not_audio.wav" --out "$TMP/m3"
expect_error "eval on a missing folder" "$TMP/nope" "$MMFUSE" sound eval --dcase "$TMP/nope"
mkdir -p "$TMP/dcase2/fan"; cp "$CLIPS/normal_0.wav" "$TMP/dcase2/fan/mystery.wav"
expect_error "eval on unlabelled names" "mystery.wav" "$MMFUSE" sound eval --dcase "$TMP/dcase2"
expect_error "bad option value" "--normalize" "$MMFUSE" sound fit --normal "$TMP/normal" --out "$TMP/m4" --normalize loud
expect_error "no subcommand" "subcommand" "$MMFUSE" sound

finish sound_cli
