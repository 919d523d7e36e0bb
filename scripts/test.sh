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
