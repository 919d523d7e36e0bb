#!/usr/bin/env bash
# Prometheus (Debian `prometheus`) for the test that scrapes `eventline up` with the real thing.
# Not started here: the test runs its own instance with its own configuration and port.
#
#   scripts/services/prometheus.sh start    # install if missing, write .env
#   scripts/services/prometheus.sh status
#
# Writes EVENTLINE_TEST_PROMETHEUS to scripts/services/.env.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ENV_FILE="$HERE/.env"

log() { printf 'prometheus.sh: %s\n' "$*" >&2; }

install() {
  command -v prometheus >/dev/null 2>&1 && return 0
  if [[ $(id -u) -ne 0 ]]; then
    log "prometheus is missing; install it as root (apt-get install prometheus)"
    return 1
  fi
  log "installing Debian package prometheus"
  # The package's own service is not needed (and there is no init system to start it here).
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
  command -v prometheus >/dev/null 2>&1 || { log "no prometheus binary after installing"; return 1; }
}

write_env() {
  touch "$ENV_FILE"
  local tmp
  tmp="$(mktemp)"
  grep -v -e '^EVENTLINE_TEST_PROMETHEUS=' "$ENV_FILE" >"$tmp" || true
  { cat "$tmp"; echo "EVENTLINE_TEST_PROMETHEUS=$(command -v prometheus)"; } >"$ENV_FILE"
  rm -f "$tmp"
}

case "${1:-}" in
  start) install; write_env; log "ready: EVENTLINE_TEST_PROMETHEUS=$(command -v prometheus)" ;;
  stop) ;;
  status) if command -v prometheus >/dev/null; then prometheus --version 2>&1 | head -1; else echo "not installed"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
