#!/usr/bin/env bash
# `mmfuse serve` as a process, driven with curl: flags and config file, exit
# code 2 with the field named for bad configuration, /healthz and /readyz,
# API keys, an embeddings round trip, and graceful shutdown on SIGTERM (an
# in-flight request still gets its answer, then the process exits 0).
# Usage: serve_cli.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
FIX=$2
MODEL=$FIX/clip/models/clip-tiny-quickgelu-p32
TMP=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"

# port_in FILE: sets PORT from the `"port":N` line `serve --port 0` prints; fails until then.
# The number must be followed by `,` or `}`: a line read while it is being written
# must not yield a truncated port.
port_in() {
  PORT=$(sed -n 's/.*"port":\([0-9][0-9]*\)[,}].*/\1/p' "$1" 2>/dev/null)
  [ -n "$PORT" ]
}
# port_or_exit: the port is printed, or the server already exited (start() says which).
port_or_exit() { port_in "$TMP/serve.out" || ! kill -0 "$PID" 2>/dev/null; }
# (--max-time: a request stuck in a starved server must not outlast the caller's deadline)
ready() { [ "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")" = 200 ]; }
# metric_has REGEX: the server's /metrics has a line matching REGEX.
metric_has() { curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics" | grep -qE -- "$1"; }

# Starts the server in the background with --port 0; sets PID and PORT. Fails (with the
# reason on stdout) when no port is printed or /readyz is not 200 within the deadline. The
# deadlines only bound a failure (a ready server returns at once); they are generous because
# a heavily loaded CI machine can take tens of seconds to start a process and load a model.
start() {
  # The previous server's output must go first: the background child truncates the file only
  # once it runs, and until then port_in would read the old (dead) server's port.
  rm -f "$TMP/serve.out" "$TMP/serve.err"
  "$MMFUSE" serve "$@" --port 0 >"$TMP/serve.out" 2>"$TMP/serve.err" &
  PID=$!
  PORT=
  wait_for 60 port_or_exit || { echo "no port printed in 60 s: $(head -c 300 "$TMP/serve.err")"; return 1; }
  [ -n "$PORT" ] || { echo "serve exited: $(head -c 300 "$TMP/serve.err")"; return 1; }
  wait_for 120 ready || { echo "/readyz not 200 within 120 s: $(head -c 300 "$TMP/serve.err")"; return 1; }
}
stop() {  # stop: SIGTERM, wait, echo exit code
  kill -TERM "$PID"
  wait "$PID"
  local rc=$?
  PID=
  return $rc
}

# Bad configuration: exit 2, the field named, nothing served.
printf 'models:\n  clip: %s\nbatching:\n  max_batch: 0\n' "$MODEL" >"$TMP/bad.yaml"
expect_error "max_batch out of range" "bad.yaml:4: batching.max_batch" "$MMFUSE" serve --config "$TMP/bad.yaml"
printf 'models:\n  clip: %s\nprot: 80\n' "$MODEL" >"$TMP/typo.yaml"
expect_error "unknown key" "typo.yaml:3: prot: unknown key" "$MMFUSE" serve --config "$TMP/typo.yaml"
expect_error "missing model folder" "is not a folder" "$MMFUSE" serve --model "$TMP/none" --port 0
expect_error "no model" "give --config FILE or --model DIR" "$MMFUSE" serve --port 0
expect_error "short api key" "at least 8 characters" "$MMFUSE" serve --model "$MODEL" --api-key abc --port 0

# A config file with auth; flags override it.
printf 'host: 127.0.0.1\nport: 1\nmodels:\n  tiny: %s\nbatching: {max_batch: 8, max_wait_ms: 2}\napi_keys: [secret-key-123]\n' \
  "$MODEL" >"$TMP/mmfuse.yaml"
start --config "$TMP/mmfuse.yaml" --threads 1
check "serve --config ready" $?
URL=http://127.0.0.1:$PORT
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" = 200 ]
check "healthz 200" $?
[ "$(curl -s -o /dev/null -w '%{http_code}' -d '{"input":"a"}' "$URL/v1/embeddings")" = 401 ]
check "no key 401" $?
[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong-key-000' -d '{"input":"a"}' "$URL/v1/embeddings")" = 403 ]
check "wrong key 403" $?
curl -s -H 'Authorization: Bearer secret-key-123' -d '{"model":"tiny","input":["a cat","a dog"]}' "$URL/v1/embeddings" >"$TMP/emb.json"
/usr/bin/python3 - "$TMP/emb.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["object"] == "list" and d["model"] == "tiny" and len(d["data"]) == 2, d
assert all(len(x["embedding"]) == 16 for x in d["data"]), d
assert d["usage"]["prompt_tokens"] > 0
PYEOF
check "embeddings with key" $?
curl -s "$URL/info" | grep -q '"max_batch":8'
check "info shows the config" $?
# (a request is counted just after its response is written: poll for it)
wait_for 30 metric_has '^mmfuse_http_requests_total\{method="POST",route="/v1/embeddings",status="401"\} 1$'
check "metrics count the 401" $?
stop
check "SIGTERM exits 0" $?
grep -q "shutting down" "$TMP/serve.err"
check "shutdown logged" $?

# Graceful shutdown: a request waiting for its batch is answered after SIGTERM.
start --model "$MODEL" --threads 1 --max-batch 64 --max-wait-ms 6000
check "serve --model ready" $?
URL=http://127.0.0.1:$PORT
curl -s -o "$TMP/late.json" -w '%{http_code}' -d '{"input":"in flight"}' "$URL/v1/embeddings" >"$TMP/late.code" &
CURL=$!
# SIGTERM only once the request waits in the batch queue: it waits there up to 6 s for more
# requests (long enough to see it even on a loaded machine), and the server answers it before
# it exits.
wait_for 6 metric_has '^mmfuse_queue_depth\{model="[^"]*"\} 1$'
check "request waiting in the queue" $?
stop
check "SIGTERM with a request in flight exits 0" $?
wait "$CURL"
[ "$(cat "$TMP/late.code")" = 200 ] && grep -q '"embedding"' "$TMP/late.json"
check "in-flight request answered" $?
curl -s -o /dev/null "$URL/healthz"
[ $? -ne 0 ]
check "no longer listening" $?

# The port is taken: exit 2 naming the address.
"$MMFUSE" serve --model "$MODEL" --port 0 >"$TMP/a.out" 2>/dev/null &
PID=$!
wait_for 60 port_in "$TMP/a.out"
check "first server listening" $?
expect_error "port in use" "cannot listen on 127.0.0.1:$PORT" "$MMFUSE" serve --model "$MODEL" --port "$PORT"
stop

finish serve_cli
