#!/usr/bin/env bash
# DuckDB (PyPI `duckdb`) in a virtualenv of its own, for the tests that read the Parquet lake as
# another tool would. Not a server: `start` installs it if missing and exports where it is.
#
#   scripts/services/duckdb.sh start    # install if missing, write .env
#   scripts/services/duckdb.sh status
#
# Writes EVENTLINE_TEST_DUCKDB_PYTHON to scripts/services/.env.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ENV_FILE="$HERE/.env"
BASE="${EVENTLINE_SERVICES_DIR:-/var/tmp/eventline-services}"
VENV="$BASE/duckdb-venv"
DUCKDB_VERSION="2.0.0"

log() { printf 'duckdb.sh: %s\n' "$*" >&2; }

python_bin() {
  for p in /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import venv' >/dev/null 2>&1; then echo "$p"; return; fi
  done
  return 1
}

installed() { [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; }

install() {
  installed && return 0
  local py
  if ! py="$(python_bin)"; then
    log "installing Debian package python3-venv"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    py="$(python_bin)"
  fi
  mkdir -p "$BASE"
  [[ -x "$VENV/bin/python" ]] || "$py" -m venv "$VENV" 2>/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; "$py" -m venv "$VENV"; }
  log "installing duckdb==$DUCKDB_VERSION into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "duckdb==$DUCKDB_VERSION"
  installed || { log "duckdb $DUCKDB_VERSION did not install"; return 1; }
}

write_env() {
  touch "$ENV_FILE"
  local tmp
  tmp="$(mktemp)"
  grep -v -e '^EVENTLINE_TEST_DUCKDB_PYTHON=' "$ENV_FILE" >"$tmp" || true
  { cat "$tmp"; echo "EVENTLINE_TEST_DUCKDB_PYTHON=$VENV/bin/python"; } >"$ENV_FILE"
  rm -f "$tmp"
}

case "${1:-}" in
  start) install; write_env; log "ready: EVENTLINE_TEST_DUCKDB_PYTHON=$VENV/bin/python" ;;
  stop) ;;
  status) if installed; then echo "duckdb $DUCKDB_VERSION in $VENV"; else echo "not installed"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
