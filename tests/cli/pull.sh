#!/usr/bin/env bash
# CLI contract test for `mmfuse pull`, run against the local fake hub
# (tests/tools/fake_hub.py). Usage: bash pull.sh MMFUSE_BINARY FIXTURES_DIR
set -u

BIN=$1
FIXTURES=$2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HUB_SCRIPT="$HERE/../tools/fake_hub.py"
PY=/usr/bin/python3
MODEL="$FIXTURES/clip/models/clip-tiny-quickgelu-p32"
MODEL_FILES="config.json merges.txt model.safetensors preprocessor_config.json special_tokens_map.json tokenizer_config.json vocab.json"
TOKEN="hf_fake_secret_4711"

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILURES=0
fail() {
  echo "FAIL: $*" >&2
  FAILURES=$((FAILURES + 1))
}
show_output() {
  echo "--- stderr of the last run:" >&2
  cat "$WORK/err.txt" >&2
  echo "--- stdout of the last run:" >&2
  cat "$WORK/out.json" >&2
}

# --- the fake hub ---------------------------------------------------------------------
"$PY" "$HUB_SCRIPT" "$FIXTURES" --port-file "$WORK/port" --token "$TOKEN" --log "$WORK/hub.log" \
  2>"$WORK/hub.err" &
SERVER_PID=$!
for _ in $(seq 100); do
  [ -s "$WORK/port" ] && break
  sleep 0.1
done
if [ ! -s "$WORK/port" ]; then
  echo "FAIL: the fake hub did not start" >&2
  cat "$WORK/hub.err" >&2
  exit 1
fi
ENDPOINT="http://127.0.0.1:$(cat "$WORK/port")"

# pull [ENV=VALUE...] -- ARGS...: runs `mmfuse pull ARGS` with HF_ENDPOINT=$ENDPOINT, no
# HF_TOKEN unless given; sets RC, stdout in out.json, stderr in err.txt.
pull() {
  local envs=()
  while [ "$1" != "--" ]; do
    envs+=("$1")
    shift
  done
  shift
  env -u HF_TOKEN HF_ENDPOINT="$ENDPOINT" "${envs[@]}" "$BIN" pull "$@" \
    >"$WORK/out.json" 2>"$WORK/err.txt" </dev/null
  RC=$?
}

# statuses: "name=status" lines of the last summary, sorted.
statuses() {
  "$PY" -c 'import json,sys
j = json.load(open(sys.argv[1]))
print(" ".join(sorted("%s=%s" % (f["name"], f["status"]) for f in j["files"])))' "$WORK/out.json" 2>&1
}

# expect_statuses "WHAT" "name=status ..." (sorted)
expect_statuses() {
  local got
  got=$(statuses)
  if [ "$got" != "$2" ]; then
    fail "$1: statuses '$got', expected '$2'"
    show_output
  fi
}

expect_rc() {
  if [ "$RC" != "$2" ]; then
    fail "$1: exit code $RC, expected $2"
    show_output
  fi
}

expect_stderr() {
  if ! grep -q -- "$2" "$WORK/err.txt"; then
    fail "$1: stderr does not mention '$2'"
    show_output
  fi
}

# same_files WHAT DIR: the model files in DIR are byte-identical to the fixture folder.
same_files() {
  local f
  for f in $MODEL_FILES; do
    if ! cmp -s "$MODEL/$f" "$2/$f"; then
      fail "$1: $2/$f differs from the fixture (or is missing)"
    fi
  done
  if ls "$2"/*.incomplete >/dev/null 2>&1; then
    fail "$1: .incomplete files left in $2"
  fi
}

all_status() {  # all_status STATUS: the expected statuses of the 7 model files
  local f out=""
  for f in $MODEL_FILES; do out="$out $f=$1"; done
  echo "$out" | tr ' ' '\n' | grep . | sort | tr '\n' ' ' | sed 's/ $//'
}

log_mark() { wc -l <"$WORK/hub.log"; }
log_since() { tail -n +"$(($1 + 1))" "$WORK/hub.log"; }

# --- 1. a fresh download ----------------------------------------------------------------
pull -- test-org/tiny-clip --to "$WORK/a"
expect_rc "fresh download" 0
same_files "fresh download" "$WORK/a"
expect_statuses "fresh download" "$(all_status downloaded)"
for f in README.md .gitattributes pytorch_model.bin onnx; do
  [ -e "$WORK/a/$f" ] && fail "fresh download: $f should not be downloaded by default"
done
"$PY" - "$WORK/out.json" "$WORK/a" "$MODEL" <<'EOF' || fail "fresh download: bad JSON summary"
import json, os, sys
j = json.load(open(sys.argv[1]))
assert j["repo"] == "test-org/tiny-clip", j
assert j["revision"] == "main", j
assert os.path.realpath(j["dir"]) == os.path.realpath(sys.argv[2]), j
for f in j["files"]:
    assert f["size"] == os.path.getsize(os.path.join(sys.argv[3], f["name"])), f
EOF

# --- 2. a second run finds everything present, without downloading -----------------------
mark=$(log_mark)
pull -- test-org/tiny-clip --to "$WORK/a"
expect_rc "re-run" 0
expect_statuses "re-run" "$(all_status present)"
if log_since "$mark" | grep -q -e "/resolve/" -e "/cdn-lfs/"; then
  fail "re-run: files were downloaded again"
  log_since "$mark" >&2
fi

# --- 3. --include, and the default directory ------------------------------------------------
mkdir -p "$WORK/cwd"
(cd "$WORK/cwd" && pull -- test-org/tiny-clip --include config.json --include '*.md' &&
  echo "$RC" >"$WORK/rc")
RC=$(cat "$WORK/rc")
expect_rc "--include" 0
expect_statuses "--include" "README.md=downloaded config.json=downloaded"
cmp -s "$MODEL/config.json" "$WORK/cwd/models/test-org--tiny-clip/config.json" ||
  fail "--include: config.json not in the default directory ./models/test-org--tiny-clip"
[ -e "$WORK/cwd/models/test-org--tiny-clip/vocab.json" ] && fail "--include: vocab.json was downloaded"

pull -- test-org/tiny-clip --include 'onnx/' --to "$WORK/onnx"
expect_rc "--include folder/" 0
expect_statuses "--include folder/" "onnx/model.onnx=downloaded"
[ -f "$WORK/onnx/onnx/model.onnx" ] || fail "--include folder/: onnx/model.onnx missing"

pull -- test-org/tiny-clip --include '*.nothing' --to "$WORK/none"
expect_rc "--include matching nothing" 2
expect_stderr "--include matching nothing" "matches the include patterns \*.nothing (--include)"

# --- 4. resume a truncated .incomplete with a Range request ---------------------------------
mkdir -p "$WORK/b"
head -c 3000000 "$MODEL/model.safetensors" >"$WORK/b/model.safetensors.incomplete"
mark=$(log_mark)
pull -- test-org/tiny-clip --to "$WORK/b"
expect_rc "resume" 0
same_files "resume" "$WORK/b"
expect_statuses "resume" "$(all_status downloaded | sed 's/model.safetensors=downloaded/model.safetensors=resumed/')"
log_since "$mark" | grep -q "model.safetensors.* range=bytes=3000000-" ||
  fail "resume: no Range request for bytes=3000000-"

# --- 5. a complete .incomplete: the server answers 416, the file is verified -----------------
mkdir -p "$WORK/c"
cp "$MODEL/model.safetensors" "$WORK/c/model.safetensors.incomplete"
pull -- test-org/tiny-clip --include model.safetensors --to "$WORK/c"
expect_rc "resume complete partial (416)" 0
expect_statuses "resume complete partial (416)" "model.safetensors=resumed"
cmp -s "$MODEL/model.safetensors" "$WORK/c/model.safetensors" || fail "416: file differs"

# --- 6. a corrupt partial fails verification and is fetched again from the start -------------
mkdir -p "$WORK/d"
head -c 3000000 /dev/zero >"$WORK/d/model.safetensors.incomplete"
pull -- test-org/tiny-clip --include model.safetensors --to "$WORK/d"
expect_rc "corrupt partial" 0
expect_statuses "corrupt partial" "model.safetensors=downloaded"
expect_stderr "corrupt partial" "sha256 mismatch"
cmp -s "$MODEL/model.safetensors" "$WORK/d/model.safetensors" || fail "corrupt partial: file differs"

# --- 7. a server that ignores Range: 200 restarts the file ------------------------------------
mkdir -p "$WORK/e"
head -c 3000000 "$MODEL/model.safetensors" >"$WORK/e/model.safetensors.incomplete"
pull HF_ENDPOINT="$ENDPOINT/norange" -- test-org/tiny-clip --to "$WORK/e"
expect_rc "Range ignored" 0
same_files "Range ignored" "$WORK/e"
expect_statuses "Range ignored" "$(all_status downloaded)"

# --- 8. transient failures: a 503, and a connection dropped half-way (resumed) ----------------
pull -- test-org/flaky-clip --to "$WORK/flaky"
expect_rc "flaky server" 0
same_files "flaky server" "$WORK/flaky"
expect_statuses "flaky server" "$(all_status downloaded | sed 's/model.safetensors=downloaded/model.safetensors=resumed/')"
expect_stderr "flaky server" "retrying"

# --- 9. a wrong sha256: exit 2, nothing left behind -----------------------------------------
pull -- test-org/bad-sha --to "$WORK/f"
expect_rc "bad sha256" 2
expect_stderr "bad sha256" "sha256 mismatch"
[ -e "$WORK/f/model.safetensors" ] && fail "bad sha256: model.safetensors was kept"
[ -e "$WORK/f/model.safetensors.incomplete" ] && fail "bad sha256: the partial file was kept"

# --- 10. missing repository or revision ----------------------------------------------------
pull -- test-org/no-such-model --to "$WORK/g"
expect_rc "missing repo" 2
expect_stderr "missing repo" "repository or revision not found"
pull -- test-org/tiny-clip --revision v9.9 --to "$WORK/g"
expect_rc "missing revision" 2
expect_stderr "missing revision" "repository or revision not found"
pull -- 'bad//repo id' --to "$WORK/g"
expect_rc "invalid repo id" 2
expect_stderr "invalid repo id" "invalid repository id"

# --- 11. no model API: the fixed list of model-folder files -----------------------------------
pull HF_ENDPOINT="$ENDPOINT/noapi" -- test-org/tiny-clip --to "$WORK/h"
expect_rc "no API" 0
same_files "no API" "$WORK/h"
expect_statuses "no API" "$(all_status downloaded)"
expect_stderr "no API" "no model API"
pull HF_ENDPOINT="$ENDPOINT/noapi" -- test-org/tiny-clip --to "$WORK/h"
expect_rc "no API, re-run" 0
expect_statuses "no API, re-run" "$(all_status present)"
pull HF_ENDPOINT="$ENDPOINT/noapi" -- test-org/no-such-model --to "$WORK/h2"
expect_rc "no API, missing repo" 2
expect_stderr "no API, missing repo" "repository or revision not found"

# --- 12. sharded weights: the index and the shards it names, nothing else --------------------
SHARDED="config.json=downloaded model-00001-of-00002.safetensors=downloaded model-00002-of-00002.safetensors=downloaded model.safetensors.index.json=downloaded"
pull -- test-org/sharded --to "$WORK/s"
expect_rc "sharded" 0
expect_statuses "sharded" "$SHARDED"
pull HF_ENDPOINT="$ENDPOINT/noapi" -- test-org/sharded --to "$WORK/s2"
expect_rc "sharded, no API" 0
expect_statuses "sharded, no API" "$SHARDED"
for d in s s2; do
  cmp -s "$WORK/s/model-00001-of-00002.safetensors" "$WORK/$d/model-00001-of-00002.safetensors" ||
    fail "sharded: shard 1 differs in $d"
done

# --- 13. authentication ----------------------------------------------------------------------
pull -- test-org/private-clip --to "$WORK/p"
expect_rc "private repo without HF_TOKEN" 2
expect_stderr "private repo without HF_TOKEN" "HF_TOKEN"
pull HF_TOKEN=hf_wrong_token_1234 -- test-org/private-clip --to "$WORK/p"
expect_rc "private repo with a wrong HF_TOKEN" 2
expect_stderr "private repo with a wrong HF_TOKEN" "HF_TOKEN"
grep -q hf_wrong_token_1234 "$WORK/err.txt" "$WORK/out.json" && fail "the token was printed"
pull HF_TOKEN="$TOKEN" -- test-org/private-clip --to "$WORK/p"
expect_rc "private repo with HF_TOKEN" 0
same_files "private repo with HF_TOKEN" "$WORK/p"
grep -q "$TOKEN" "$WORK/err.txt" "$WORK/out.json" && fail "the token was printed"

# --- 14. progress on a terminal -------------------------------------------------------------
if command -v script >/dev/null 2>&1; then
  env -u HF_TOKEN HF_ENDPOINT="$ENDPOINT" script -qec \
    "'$BIN' pull test-org/tiny-clip --include model.safetensors --to '$WORK/tty' 2>&1 >/dev/null" \
    /dev/null >"$WORK/tty.txt" 2>&1 </dev/null
  grep -q "ETA" "$WORK/tty.txt" || {
    fail "no progress bar on a terminal"
    cat "$WORK/tty.txt" >&2
  }
fi

# --- 15. an unreachable endpoint: a network error naming the URL ----------------------------
pull HF_ENDPOINT="http://127.0.0.1:9" -- test-org/tiny-clip --to "$WORK/n"
expect_rc "unreachable endpoint" 1
expect_stderr "unreachable endpoint" "http://127.0.0.1:9/api/models/test-org/tiny-clip"

if [ "$FAILURES" -ne 0 ]; then
  echo "pull.sh: $FAILURES check(s) failed" >&2
  echo "--- fake hub errors:" >&2
  cat "$WORK/hub.err" >&2
  exit 1
fi
echo "pull.sh: all checks passed"
