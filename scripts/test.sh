#!/usr/bin/env bash
# Runs every test of eventline on a fresh machine: installs and starts what the tests need
# (idempotently, on loopback), then formatting, lints and the whole test suite.
#
#   scripts/test.sh            # everything
#   scripts/test.sh -p eventline-log    # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

# In CI, keep compiled dependencies between runs in a directory outside the clone.
if [[ "${CI:-}" == "true" && -z "${CARGO_TARGET_DIR:-}" ]]; then
  export CARGO_TARGET_DIR=/var/tmp/eventline-target
fi
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# A target directory kept between runs grows with every build (incremental caches, test binaries
# of older builds): past 40 GB, drop what the next build can make again.
if [[ -n "${CARGO_TARGET_DIR:-}" && -d "$CARGO_TARGET_DIR" ]]; then
  size_kb="$(du -sk "$CARGO_TARGET_DIR" 2>/dev/null | cut -f1 || echo 0)"
  if (( ${size_kb:-0} > 40 * 1024 * 1024 )); then
    printf '\n==> pruning %s (%d GB)\n' "$CARGO_TARGET_DIR" "$(( size_kb / 1024 / 1024 ))"
    rm -rf "$CARGO_TARGET_DIR"/debug/incremental "$CARGO_TARGET_DIR"/release/incremental
    find "$CARGO_TARGET_DIR"/debug/deps -maxdepth 1 -type f -executable -mtime +1 -delete 2>/dev/null || true
  fi
fi

step() { printf '\n==> %s\n' "$*"; }

# Services the tests need (each script installs if missing, starts if not running, and exports
# the address it serves on into scripts/services/.env).
rm -f scripts/services/.env
for svc in scripts/services/*.sh; do
  [[ -e "$svc" ]] || continue
  step "service: $(basename "$svc" .sh)"
  bash "$svc" start
done
if [[ -f scripts/services/.env ]]; then
  set -a; source scripts/services/.env; set +a
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test"
cargo test --workspace "$@"
