#!/usr/bin/env bash
# PostgreSQL for eventline's change data capture tests, configured for logical replication.
#
#   scripts/services/postgres.sh start     # install if missing, init + configure + start if not running, write .env
#   scripts/services/postgres.sh stop      # stop the cluster this script runs
#   scripts/services/postgres.sh restart   # stop then start (the CDC tests use it for "PostgreSQL restarted")
#   scripts/services/postgres.sh status
#
# A private cluster (initdb) in $EVENTLINE_SERVICES_DIR/pg (default /var/tmp/eventline-services/pg),
# owned and run by the `postgres` user, listening on 127.0.0.1:15432 only (port from
# EVENTLINE_TEST_PG_PORT), unix socket in $BASE/pg-run. The Debian `postgresql` package is
# installed when no server binaries are found (`apt-get update` runs once, only then).
#
# Settings live in conf.d/eventline.conf (no pg_conftool quoting): wal_level=logical (needs a
# restart, done when the running server reports another level), replication slots and WAL
# senders for parallel tests, and a small max_slot_wal_keep_size so a lost slot can be exercised.
#
# A role `eventline` (password `eventline`, LOGIN REPLICATION CREATEDB; each CDC test creates and
# drops its own database) and a database `eventline` are created. Password authentication is
# SCRAM-SHA-256 over TCP.
#
# Test leftovers (inactive evl_* slots, evl_* and eventline_bench_* databases) are dropped on
# `start` (not on `restart`).
#
# TLS: a private test CA and a server certificate for 127.0.0.1 (made once with openssl in
# $BASE/pg-tls); the server takes TLS and plain connections alike, so tests can ask for
# sslmode=require or verify-full (with sslrootcert=$BASE/pg-tls/ca.pem).
#
# Writes EVENTLINE_TEST_PG_URL=postgres://eventline:eventline@127.0.0.1:15432/eventline and
# EVENTLINE_TEST_PG_CA (the CA's PEM) to scripts/services/.env.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ENV_FILE="$HERE/.env"
BASE="${EVENTLINE_SERVICES_DIR:-/var/tmp/eventline-services}"
DATA="$BASE/pg"
RUN="$BASE/pg-run"
PORT="${EVENTLINE_TEST_PG_PORT:-15432}"
ROLE=eventline
PASSWORD=eventline
DB=eventline
URL="postgres://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"

log() { printf 'postgres.sh: %s\n' "$*" >&2; }

bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  [[ -n "$d" && -x "$d/initdb" ]] && echo "$d"
}

as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    # runuser keeps no root privileges; cd so postgres does not complain about an unreadable cwd
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

install_server() {
  if [[ -n "$(bindir)" ]]; then return 0; fi
  if [[ $(id -u) -ne 0 ]]; then
    log "PostgreSQL server binaries are missing; install them as root (apt-get install postgresql)"
    return 1
  fi
  log "installing Debian package postgresql"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  # The package starts its own cluster on 5432; this script does not use it.
  [[ -n "$(bindir)" ]] || { log "no initdb after installing postgresql"; return 1; }
}

TLS="$BASE/pg-tls"

make_tls() {
  command -v openssl >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
  mkdir -p "$TLS"
  if [[ ! -f "$TLS/server.key" || ! -f "$TLS/server.pem" || ! -f "$TLS/ca.pem" ]]; then
    log "making a test CA and a server certificate for 127.0.0.1 in $TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=eventline-test-ca \
      -keyout "$TLS/ca.key" -out "$TLS/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$TLS/ext.cnf"
    openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -CAcreateserial \
      -days 3650 -extfile "$TLS/ext.cnf" -out "$TLS/server.pem" 2>/dev/null
  fi
  chown postgres:postgres "$TLS/server.key" "$TLS/server.pem" 2>/dev/null || true
  chmod 600 "$TLS/server.key"
}

psql_admin() {
  as_pg "$(bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h "$RUN" -p "$PORT" -U postgres -d "${PGDB:-postgres}" "$@"
}

running() { [[ -f "$DATA/postmaster.pid" ]] && as_pg "$(bindir)/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

ready() { "$(bindir)/pg_isready" -q -h 127.0.0.1 -p "$PORT" >/dev/null 2>&1; }

init_cluster() {
  mkdir -p "$BASE" "$RUN"
  chown postgres:postgres "$RUN" 2>/dev/null || true
  if [[ ! -f "$DATA/PG_VERSION" ]]; then
    log "initdb $DATA"
    mkdir -p "$DATA"
    chown postgres:postgres "$DATA" 2>/dev/null || true
    chmod 700 "$DATA"
    as_pg "$(bindir)/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$BASE/pg-initdb.log" 2>&1 \
      || { tail -20 "$BASE/pg-initdb.log" >&2; return 1; }
  fi
  mkdir -p "$DATA/conf.d"
  make_tls
  grep -q "^include_dir = 'conf.d'" "$DATA/postgresql.conf" || echo "include_dir = 'conf.d'" >>"$DATA/postgresql.conf"
  cat >"$DATA/conf.d/eventline.conf" <<EOF
# Written by scripts/services/postgres.sh; rewritten on every start.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$RUN'
wal_level = logical
max_replication_slots = 40
max_wal_senders = 40
max_connections = 200
max_slot_wal_keep_size = 4GB
wal_sender_timeout = 60s
fsync = on
synchronous_commit = on
shared_buffers = 256MB
log_min_messages = warning
ssl = on
ssl_cert_file = '$TLS/server.pem'
ssl_key_file = '$TLS/server.key'
EOF
  cat >"$DATA/pg_hba.conf" <<EOF
# Written by scripts/services/postgres.sh.
local   all             postgres                                trust
local   all             all                                     scram-sha-256
host    all             all             127.0.0.1/32            scram-sha-256
host    replication     all             127.0.0.1/32            scram-sha-256
EOF
  chown -R postgres:postgres "$DATA" 2>/dev/null || true
}

start_server() {
  if running; then
    local level
    level="$(psql_admin -tAc 'SHOW wal_level' 2>/dev/null || true)"
    if [[ "$level" != "logical" ]]; then
      log "wal_level is '$level'; restarting for wal_level=logical"
      as_pg "$(bindir)/pg_ctl" -D "$DATA" -w -t 60 -m fast restart -l "$RUN/postgres.log" >/dev/null
    else
      as_pg "$(bindir)/pg_ctl" -D "$DATA" reload >/dev/null
    fi
  else
    rm -f "$DATA/postmaster.pid"
    log "starting PostgreSQL on 127.0.0.1:$PORT (log: $RUN/postgres.log)"
    as_pg "$(bindir)/pg_ctl" -D "$DATA" -w -t 60 -l "$RUN/postgres.log" start >/dev/null \
      || { tail -20 "$RUN/postgres.log" >&2; return 1; }
  fi
  for _ in $(seq 1 300); do ready && break; sleep 0.1; done
  ready || { log "PostgreSQL did not accept connections within 30 s; log: $RUN/postgres.log"; return 1; }
}

create_role_and_db() {
  psql_admin <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN REPLICATION CREATEDB PASSWORD '$PASSWORD';
  ELSE
    ALTER ROLE $ROLE LOGIN REPLICATION CREATEDB PASSWORD '$PASSWORD';
  END IF;
END \$\$;
SQL
  if [[ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]]; then
    psql_admin -c "CREATE DATABASE $DB OWNER $ROLE"
  fi
}

# Slots and databases left by CDC tests that failed before their clean-up (each test names them
# evl_*): an inactive slot would keep WAL forever.
drop_test_leftovers() {
  psql_admin -tAc "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'evl\_%' AND NOT active" >/dev/null || true
  local db
  for db in $(psql_admin -tAc "SELECT datname FROM pg_database WHERE datname LIKE 'evl\_%' OR datname LIKE 'eventline\_bench\_%'"); do
    psql_admin -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
}

write_env() {
  touch "$ENV_FILE"
  local tmp
  tmp="$(mktemp)"
  grep -v -e '^EVENTLINE_TEST_PG_URL=' -e '^EVENTLINE_TEST_PG_CA=' "$ENV_FILE" >"$tmp" || true
  { cat "$tmp"; echo "EVENTLINE_TEST_PG_URL=$URL"; echo "EVENTLINE_TEST_PG_CA=$TLS/ca.pem"; } >"$ENV_FILE"
  rm -f "$tmp"
}

start() {
  install_server
  id postgres >/dev/null 2>&1 || { log "no postgres user (the postgresql package creates it)"; return 1; }
  init_cluster
  start_server
  create_role_and_db
  # Not on `restart`: the CDC restart test is running then, with its own database and slot.
  [[ "${1:-}" == "fresh" ]] && drop_test_leftovers
  write_env
  log "ready: EVENTLINE_TEST_PG_URL=$URL"
}

stop() {
  if [[ -n "$(bindir)" ]] && running; then
    as_pg "$(bindir)/pg_ctl" -D "$DATA" -w -t 60 -m fast stop >/dev/null
    log "stopped PostgreSQL on port $PORT"
  else
    log "no cluster started by this script is running"
  fi
}

case "${1:-}" in
  start) start fresh ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if [[ -n "$(bindir)" ]] && ready; then echo "accepting connections on 127.0.0.1:$PORT"; else echo "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
