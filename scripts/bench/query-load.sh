#!/usr/bin/env bash
# POST /v1/query under load, as a new user would try it: a fresh data directory, `eventline up`
# on the embedded default, `hey` (Debian package) sending card-balance questions.
#
#   scripts/bench/query-load.sh [BINARY] [REQUESTS] [CONCURRENCY]
#
# Prints hey's summary (requests/s, latency distribution) and the CPU time `up` spent per request
# (user + system, from /proc, over the measured run: it includes the services consuming the
# events). Run two binaries or settings in the same minutes to compare them; absolute figures on
# a shared machine are noisy, CPU per request much less so.
set -euo pipefail
BIN="${1:-target/release/eventline}"
N="${2:-4000}"
C="${3:-32}"
command -v hey >/dev/null || { echo "query-load.sh: needs hey (apt-get install hey)" >&2; exit 2; }
DATA="$(mktemp -d)"
PORT="$((20000 + RANDOM % 20000))"
LOG="$DATA/up.log"
EVENTLINE_GATEWAY__LISTEN="127.0.0.1:$PORT" "$BIN" --data-dir "$DATA" up 2>"$LOG" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 300); do
  curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
KEY="$(cat "$DATA/admin.key")"
BODY='{"user_id":"u-1001","query":"what is my card balance"}'
# warm-up
hey -n 200 -c 8 -m POST -T application/json -H "Authorization: Bearer $KEY" -d "$BODY" \
  "http://127.0.0.1:$PORT/v1/query" >/dev/null
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
BEFORE="$(cpu_ticks)"
hey -n "$N" -c "$C" -m POST -T application/json -H "Authorization: Bearer $KEY" -d "$BODY" \
  "http://127.0.0.1:$PORT/v1/query"
# Let the services finish with the last events before reading the clock.
sleep 2
AFTER="$(cpu_ticks)"
HZ="$(getconf CLK_TCK)"
awk -v a="$AFTER" -v b="$BEFORE" -v hz="$HZ" -v n="$N" \
  'BEGIN { printf "  eventline CPU per request: %.3f ms (%.2f s for %d requests)\n", (a - b) / hz * 1000 / n, (a - b) / hz, n }'
