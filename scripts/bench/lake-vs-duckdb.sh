#!/usr/bin/env bash
# The lake against a peer on the same input: N agent executions as JSON lines are
#   (a) appended to an embedded log with `eventline produce`, then written to Parquet (zstd) by
#       `eventline lake sync` (typed columns, exactly-once files, offsets committed), and
#   (b) converted by DuckDB: COPY (SELECT * FROM read_json(...)) TO '….parquet' (zstd).
# Prints both wall times and the ratio. Needs scripts/services/duckdb.sh (the test venv).
#
#   scripts/bench/lake-vs-duckdb.sh target/release/eventline 200000
set -euo pipefail
BIN="${1:?usage: $0 path/to/eventline N}"
N="${2:-200000}"
PY="${EVENTLINE_TEST_DUCKDB_PYTHON:-/var/tmp/eventline-services/duckdb-venv/bin/python}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

"$PY" - "$N" >"$WORK/executions.ndjson" <<'PY'
import json, sys, datetime
n = int(sys.argv[1])
now = datetime.datetime.now(datetime.timezone.utc)
agents = ["card_agent", "loan_agent", "wealth_agent"]
for i in range(n):
    ts = (now - datetime.timedelta(seconds=i % 600)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    print(json.dumps({"execution_id": f"exe-{i}", "agent_id": agents[i % 3], "status": "completed", "duration_ms": i % 2000,
        "input": {"query": "what is my card balance", "user_id": f"u-{i % 1000}", "conversation_id": f"conv-{i % 5000}", "key_id": "elk_1a2b3c4d"},
        "output": {"message": "Your debit card ending 8072 has a balance of $1,234.56.", "cards": [{"card_id": "crd_1", "card_number": "453201******8072", "status": "active"}]},
        "timestamp": ts, "_metadata": {"timestamp": ts, "message_id": f"m-{i}", "producer": "bench"}}))
PY
"$BIN" --data-dir "$WORK/data" produce agent.executions --acks 1 <"$WORK/executions.ndjson" >/dev/null

start=$(date +%s.%N)
"$BIN" --data-dir "$WORK/data" lake sync 2>/dev/null
lake=$(echo "$(date +%s.%N) - $start" | bc)

start=$(date +%s.%N)
"$PY" -c "
import duckdb
duckdb.sql(\"COPY (SELECT * FROM read_json('$WORK/executions.ndjson', format='newline_delimited')) TO '$WORK/duck.parquet' (FORMAT parquet, COMPRESSION zstd)\")
"
duck=$(echo "$(date +%s.%N) - $start" | bc)
rows=$("$PY" -c "import duckdb; print(duckdb.sql(\"select count(*) from read_parquet('$WORK/data/lake/agent.executions/*/*.parquet')\").fetchall()[0][0])")
printf 'records %s in the lake: %s\n' "$N" "$rows"
printf 'eventline lake sync: %.2f s (%.0f records/s, process start included)\n' "$lake" "$(echo "$N / $lake" | bc -l)"
printf 'duckdb COPY to parquet: %.2f s (%.0f records/s, threads=%s)\n' "$duck" "$(echo "$N / $duck" | bc -l)" "$(nproc)"
printf 'ratio eventline/duckdb throughput: %.2f\n' "$(echo "$duck / $lake" | bc -l)"
