# Shared assertions for the CLI contract scripts in tests/cli/ (sourced, not run).
# The sourcing script sets TMP (a scratch folder) before sourcing this file.
failures=0
passes=0

check() {  # check NAME EXIT_CODE: passes when EXIT_CODE is 0
  if [ "$2" -eq 0 ]; then passes=$((passes + 1)); else echo "FAIL: $1"; failures=$((failures + 1)); fi
}

# expect_error NAME WANT_SUBSTRING COMMAND...: exit code 2, a message on stderr
# naming the culprit, and nothing on stdout.
expect_error() {
  local name=$1 want=$2
  shift 2
  "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  if [ $rc -ne 2 ]; then
    echo "FAIL: $name: exit code $rc, want 2 (stderr: $(head -c 300 "$TMP/err"))"
    failures=$((failures + 1))
  elif ! grep -qF -- "$want" "$TMP/err"; then
    echo "FAIL: $name: stderr lacks '$want': $(head -c 300 "$TMP/err")"
    failures=$((failures + 1))
  elif [ -s "$TMP/out" ]; then
    echo "FAIL: $name: wrote to stdout on error"
    failures=$((failures + 1))
  else
    passes=$((passes + 1))
  fi
}

# wait_for SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds; returns 0 when it
# did within SECONDS, 1 when the deadline passed. For synchronisation; pair it with check:
#   wait_for 10 server_ready; check "server ready" $?
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  while :; do
    "$@" && return 0
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.05
  done
}

# finish NAME: prints the closing line and exits non-zero on any failure.
finish() {
  echo "$1: $passes passed, $failures failed"
  [ "$failures" -eq 0 ]
}
