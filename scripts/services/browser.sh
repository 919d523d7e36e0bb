#!/usr/bin/env bash
# A real browser for the dashboard test: Debian's Chromium (and ChromeDriver) and playwright-core
# from npm (scripts/browser/package-lock.json), installed outside the clone and linked in as
# scripts/browser/node_modules. Not a server: `start` installs what is missing and exports where.
#
#   scripts/services/browser.sh start    # install if missing, write .env
#   scripts/services/browser.sh status
#
# Writes EVENTLINE_TEST_BROWSER (the folder holding dashboard.mjs) to scripts/services/.env.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ENV_FILE="$HERE/.env"
SRC="$ROOT/scripts/browser"
BASE="${EVENTLINE_SERVICES_DIR:-/var/tmp/eventline-services}"
MODULES="$BASE/browser"

log() { printf 'browser.sh: %s\n' "$*" >&2; }

install() {
  if [[ ! -x /usr/bin/chromium ]]; then
    log "installing Debian packages chromium chromium-driver"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
  if ! command -v node >/dev/null 2>&1; then
    log "installing Debian packages nodejs npm"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  mkdir -p "$MODULES"
  # npm ci again only when the lock file changed.
  if ! cmp -s "$SRC/package-lock.json" "$MODULES/package-lock.json" || [[ ! -d "$MODULES/node_modules/playwright-core" ]]; then
    cp "$SRC/package.json" "$SRC/package-lock.json" "$MODULES/"
    log "npm ci in $MODULES"
    (cd "$MODULES" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  # The driver resolves playwright-core from its own folder.
  if [[ -d "$SRC/node_modules" && ! -L "$SRC/node_modules" ]]; then rm -rf "$SRC/node_modules"; fi
  ln -sfn "$MODULES/node_modules" "$SRC/node_modules"
}

write_env() {
  touch "$ENV_FILE"
  local tmp
  tmp="$(mktemp)"
  grep -v -e '^EVENTLINE_TEST_BROWSER=' "$ENV_FILE" >"$tmp" || true
  { cat "$tmp"; echo "EVENTLINE_TEST_BROWSER=$SRC"; } >"$ENV_FILE"
  rm -f "$tmp"
}

case "${1:-}" in
  start) install; write_env; log "ready: chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'), EVENTLINE_TEST_BROWSER=$SRC" ;;
  stop) ;;
  status) if [[ -x /usr/bin/chromium && -d "$MODULES/node_modules/playwright-core" ]]; then echo "chromium and playwright-core ready"; else echo "not installed"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
