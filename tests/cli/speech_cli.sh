#!/usr/bin/env bash
# CLI contract of `mmfuse transcribe / align / speech-score` on the tiny
# wav2vec2 reference folders: JSON shapes, the reference greedy transcripts,
# timestamps, SRT/WebVTT/txt output, and exit code 2 + a clear message for bad
# audio (empty, truncated, not audio, 0 Hz header, too short) and bad options.
# Usage: speech_cli.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
FIX=$2
PY=/usr/bin/python3
W=$FIX/wav2vec2
BASE=$W/models/w2v2-tiny-base-style
LV60=$W/models/w2v2-tiny-lv60-style
AUDIO=$W/audio
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"

# --- transcribe: JSON with the reference text, words, chars, logits.
for model in base lv60; do
  dir=$BASE
  [ $model = lv60 ] && dir=$LV60
  "$MMFUSE" transcribe --model "$dir" "$AUDIO/a4_espeak.wav" --logits --threads 2 >"$TMP/$model.json"
  check "transcribe $model runs" $?
  $PY - "$TMP/$model.json" "$W/outputs/$(basename "$dir")/outputs.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
ref = json.load(open(sys.argv[2]))["per_audio"][4]
assert list(d)[:3] == ["text", "words", "chars"], list(d)
assert d["text"] == ref["text"], (d["text"], ref["text"])
assert [w["word"] for w in d["words"]] == [w["word"] for w in ref["word_offsets"]]
for w, r in zip(d["words"], ref["word_offsets"]):
    assert abs(w["start"] - r["start_offset"] * 0.02) < 1e-9 and abs(w["end"] - r["end_offset"] * 0.02) < 1e-9, (w, r)
assert len(d["chars"]) == len(ref["char_offsets"])
prev = 0.0
for c in d["chars"]:
    assert set(c) == {"char", "start", "end"}
    assert prev <= c["start"] < c["end"] <= d["duration"], c
    prev = c["end"]
assert len(d["logits"]) == d["frames"] == 173 and all(len(r) == 32 for r in d["logits"])
ids = [max(range(32), key=lambda k: r[k]) for r in d["logits"]]
assert ids == ref["predicted_ids"]
PYEOF
  check "transcribe $model JSON matches the reference" $?
done

"$MMFUSE" transcribe --model "$BASE" "$AUDIO/a0_chirp_1s.wav" --timestamps word >"$TMP/w.json"
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "words" in d and "chars" not in d and "logits" not in d' "$TMP/w.json"
check "--timestamps word leaves chars out" $?
"$MMFUSE" transcribe --model "$BASE" "$AUDIO/a0_chirp_1s.wav" --timestamps char >"$TMP/c.json"
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "chars" in d and "words" not in d' "$TMP/c.json"
check "--timestamps char leaves words out" $?

# --- txt / srt / vtt.
"$MMFUSE" transcribe --model "$BASE" "$AUDIO/a4_espeak.wav" --format txt >"$TMP/t.txt"
$PY -c 'import json,sys; assert open(sys.argv[1]).read() == json.load(open(sys.argv[2]))["text"] + "\n"' "$TMP/t.txt" "$TMP/base.json"
check "txt is the text" $?
for fmt in srt vtt; do
  "$MMFUSE" transcribe --model "$LV60" "$AUDIO/a1_formant_2s.wav" --format $fmt >"$TMP/s.$fmt"
  check "transcribe --format $fmt runs" $?
  $PY - "$TMP/s.$fmt" $fmt <<'PYEOF'
import re, sys
text, fmt = open(sys.argv[1]).read(), sys.argv[2]
sep = "," if fmt == "srt" else "."
if fmt == "vtt":
    assert text.startswith("WEBVTT\n\n"), text[:20]
    text = text[len("WEBVTT\n\n"):]
assert text.endswith("\n\n")
blocks = text[:-2].split("\n\n")
assert blocks and all(blocks)
ts = re.compile(r"^(\d\d):(\d\d):(\d\d)%s(\d\d\d) --> (\d\d):(\d\d):(\d\d)%s(\d\d\d)$" % (re.escape(sep), re.escape(sep)))
sec = lambda g: int(g[0]) * 3600 + int(g[1]) * 60 + int(g[2]) + int(g[3]) / 1000
prev = 0
for i, b in enumerate(blocks):
    lines = b.split("\n")
    if fmt == "srt":
        assert lines[0] == str(i + 1), lines
        lines = lines[1:]
    m = ts.match(lines[0])
    assert m, lines[0]
    g = m.groups()
    start, end = sec(g[:4]), sec(g[4:])
    assert prev <= start < end <= 2.0, (prev, start, end)
    prev = end
    assert len(lines) == 2 and lines[1].strip(), lines
PYEOF
  check "$fmt follows the format rules" $?
done

# --- beam search and chunking options.
"$MMFUSE" transcribe --model "$LV60" "$AUDIO/a4_espeak.wav" --beam 8 >"$TMP/beam.json"
$PY -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["text"] and d["words"]
prev = 0
for c in d["chars"]:
    assert prev <= c["start"] < c["end"] <= d["duration"]; prev = c["end"]
' "$TMP/beam.json"
check "beam search gives timed text" $?
"$MMFUSE" transcribe --model "$LV60" "$AUDIO/a4_espeak.wav" --chunk-length 1.5 --stride-length 0.25 --logits >"$TMP/chunk.json"
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["frames"] == 173 == len(d["logits"])' "$TMP/chunk.json"
check "chunked transcription keeps every frame once" $?

# --- any rate and channel count: a 32 kHz stereo copy is down-mixed and resampled to 16 kHz.
$PY - "$AUDIO/a4_espeak.wav" "$TMP/stereo32k.wav" <<'PYEOF'
import sys, wave
import numpy as np
with wave.open(sys.argv[1]) as f:
    x = np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16)
up = np.repeat(x, 2)
with wave.open(sys.argv[2], "wb") as f:
    f.setnchannels(2); f.setsampwidth(2); f.setframerate(32000)
    f.writeframes(np.stack([up, up], axis=1).tobytes())
PYEOF
"$MMFUSE" transcribe --model "$BASE" "$TMP/stereo32k.wav" --timestamps word >"$TMP/s32.json"
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["frames"] == 173 and abs(d["duration"] - 55577 / 16000) < 1e-9, d' "$TMP/s32.json"
check "32 kHz stereo input is resampled to the model rate" $?

# --- align: the reference sentence, words as written, times in order.
"$MMFUSE" align --model "$LV60" "$AUDIO/a4_espeak.wav" \
  --text "hello world, this is a test of the speech recognizer." >"$TMP/align.json"
check "align runs" $?
$PY - "$TMP/align.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
words = [w["word"] for w in d["words"]]
assert words == "hello world, this is a test of the speech recognizer.".split(), words
prev = 0
for w in d["words"]:
    assert prev <= w["start"] < w["end"] <= d["duration"] and w["score"] <= 0, w
    prev = w["end"]
assert "".join(c["char"] for c in d["chars"]) == "HELLO WORLD THIS IS A TEST OF THE SPEECH RECOGNIZER"
PYEOF
check "align JSON" $?
"$MMFUSE" align --model "$LV60" "$AUDIO/a4_espeak.wav" --text "hello world" --format srt >"$TMP/a.srt"
grep -qE '^00:00:[0-9]{2},[0-9]{3} --> 00:00:[0-9]{2},[0-9]{3}$' "$TMP/a.srt" && grep -qx "hello world" "$TMP/a.srt"
check "align --format srt" $?

# --- speech-score: its own transcript scores perfectly; changed words are marked.
hyp=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["text"])' "$TMP/base.json")
"$MMFUSE" speech-score --model "$BASE" "$AUDIO/a4_espeak.wav" --reference "$hyp" >"$TMP/self.json"
$PY -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["wer"] == 0 and d["cer"] == 0 and d["accuracy"] == 1, d
assert all(w["status"] == "correct" and w["start"] < w["end"] for w in d["words"])
' "$TMP/self.json"
check "speech-score of its own transcript is perfect" $?
first=${hyp%% *}
rest=${hyp#* }
"$MMFUSE" speech-score --model "$BASE" "$AUDIO/a4_espeak.wav" --reference "$rest EXTRAWORD" >"$TMP/edit.json"
$PY - "$TMP/edit.json" "$first" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert list(d)[:6] == ["reference", "transcript", "wer", "cer", "accuracy", "counts"], list(d)
st = [w["status"] for w in d["words"]]
assert st[0] == "extra" and d["words"][0]["spoken"] == sys.argv[2] and d["words"][0]["reference"] is None, d["words"][0]
assert st[-1] == "missing" and d["words"][-1]["reference"] == "EXTRAWORD" and d["words"][-1]["spoken"] is None
assert d["counts"]["extra"] == 1 and d["counts"]["missing"] == 1
n = d["counts"]["reference_words"]
assert abs(d["wer"] - 2 / n) < 1e-12, d["wer"]
PYEOF
check "speech-score marks extra and missing words" $?

# --- real speech (../shared/data/speech, when present): a real recording,
# resampled from any rate, chunked, aligned to its transcript.
DATA=$(cd "$FIX/../.." && pwd)/../shared/data/speech
if [ -f "$DATA/en/jfk.wav" ]; then
  "$MMFUSE" align --model "$LV60" "$DATA/en/jfk.wav" --chunk-length 4 --stride-length 1 \
    --text "And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your country." >"$TMP/jfk.json"
  check "align a real recording" $?
  $PY -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["words"]) == 22 and d["words"][0]["word"] == "And" and d["words"][-1]["word"] == "country."
prev = 0
for w in d["words"]:
    assert prev <= w["start"] < w["end"] <= d["duration"], w; prev = w["end"]
' "$TMP/jfk.json"
  check "real recording: 22 timed words in order" $?
else
  echo "skip: $DATA not present (real speech checks)"
fi

# --- bad input: exit 2, a message naming the culprit, nothing on stdout.
: >"$TMP/empty.wav"
head -c 100 "$AUDIO/a4_espeak.wav" >"$TMP/trunc.wav"
echo "this is not audio" >"$TMP/text.wav"
$PY - "$AUDIO/a0_chirp_1s.wav" "$TMP/zero_hz.wav" <<'PYEOF'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
b[24:28] = struct.pack("<I", 0)   # sample rate
b[28:32] = struct.pack("<I", 0)   # byte rate
open(sys.argv[2], "wb").write(b)
PYEOF
expect_error "empty audio" "empty.wav" "$MMFUSE" transcribe --model "$BASE" "$TMP/empty.wav"
expect_error "truncated audio" "trunc.wav: audio too short" "$MMFUSE" transcribe --model "$BASE" "$TMP/trunc.wav"
expect_error "not audio" "text.wav: cannot decode audio" "$MMFUSE" transcribe --model "$BASE" "$TMP/text.wav"
expect_error "0 Hz header" "zero_hz.wav" "$MMFUSE" transcribe --model "$BASE" "$TMP/zero_hz.wav"
expect_error "missing audio" "nope.wav" "$MMFUSE" transcribe --model "$BASE" "$TMP/nope.wav"
expect_error "missing model" "model folder not found" "$MMFUSE" transcribe --model "$TMP/none" "$AUDIO/a0_chirp_1s.wav"
expect_error "not a wav2vec2 folder" "model_type" "$MMFUSE" transcribe --model "$FIX/clip/models/clip-tiny-gelu-p16" "$AUDIO/a0_chirp_1s.wav"
expect_error "bad format" "--format" "$MMFUSE" transcribe --model "$BASE" "$AUDIO/a0_chirp_1s.wav" --format doc
expect_error "bad chunking" "--chunk-length" "$MMFUSE" transcribe --model "$BASE" "$AUDIO/a0_chirp_1s.wav" --chunk-length 0.5 --stride-length 0.25
expect_error "text too long to align" "frames" "$MMFUSE" align --model "$BASE" "$AUDIO/a3_min_400samples.wav" --text "hello"
expect_error "nothing to align" "--text" "$MMFUSE" align --model "$BASE" "$AUDIO/a0_chirp_1s.wav" --text "?!"
expect_error "empty reference" "--reference" "$MMFUSE" speech-score --model "$BASE" "$AUDIO/a0_chirp_1s.wav" --reference " ,"

finish speech_cli
