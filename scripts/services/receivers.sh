#!/usr/bin/env bash
# The notification receivers the tests deliver to, on loopback, without Docker:
#   - rsyslog (Debian `rsyslog`), a private instance (not the system's) listening on UDP and TCP
#     (octet-counted framing) and writing every message it receives, raw, to one file: the SIEM;
#   - an SMTP server: aiosmtpd (Debian `python3-aiosmtpd`) storing each message in a Maildir;
#   - the `sqlite3` CLI the audit trail's tamper tests edit the database with.
#
#   scripts/services/receivers.sh start   # install if missing, start if not running, write .env
#   scripts/services/receivers.sh stop
#   scripts/services/receivers.sh status
#
# Writes EVENTLINE_TEST_SYSLOG_UDP, EVENTLINE_TEST_SYSLOG_TCP, EVENTLINE_TEST_SYSLOG_FILE,
# EVENTLINE_TEST_SMTP and EVENTLINE_TEST_MAILDIR to scripts/services/.env.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ENV_FILE="$HERE/.env"
BASE="${EVENTLINE_SERVICES_DIR:-/var/tmp/eventline-services}/receivers"
SYSLOG_UDP_PORT="${EVENTLINE_TEST_SYSLOG_UDP_PORT:-15514}"
SYSLOG_TCP_PORT="${EVENTLINE_TEST_SYSLOG_TCP_PORT:-15515}"
SMTP_PORT="${EVENTLINE_TEST_SMTP_PORT:-12525}"
SYSLOG_FILE="$BASE/siem.log"
MAILDIR="$BASE/maildir"
APT_PACKAGES=(rsyslog python3-aiosmtpd sqlite3)
# The system Python that the Debian package installs into (not a pyenv shim).
PYTHON=/usr/bin/python3

log() { printf 'receivers.sh: %s\n' "$*" >&2; }

listening_tcp() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

install_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -ne 0 ]]; then
    log "missing Debian packages: ${missing[*]}; install them as root"
    return 1
  fi
  log "installing Debian packages: ${missing[*]}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_rsyslog() {
  mkdir -p "$BASE/rsyslog-work"
  cat >"$BASE/rsyslog.conf" <<EOF
global(workDirectory="$BASE/rsyslog-work")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="$SYSLOG_UDP_PORT" ruleset="siem")
input(type="imtcp" address="127.0.0.1" port="$SYSLOG_TCP_PORT" ruleset="siem")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="siem") {
  action(type="omfile" file="$SYSLOG_FILE" template="raw" flushOnTXEnd="on" asyncWriting="off")
}
EOF
  if pid_alive "$BASE/rsyslogd.pid" && listening_tcp "$SYSLOG_TCP_PORT"; then return 0; fi
  rm -f "$BASE/rsyslogd.pid"
  log "starting rsyslogd on udp/tcp 127.0.0.1:$SYSLOG_UDP_PORT/$SYSLOG_TCP_PORT → $SYSLOG_FILE"
  rsyslogd -f "$BASE/rsyslog.conf" -i "$BASE/rsyslogd.pid" >"$BASE/rsyslogd.log" 2>&1 \
    || { cat "$BASE/rsyslogd.log" >&2; return 1; }
  for _ in $(seq 1 100); do listening_tcp "$SYSLOG_TCP_PORT" && return 0; sleep 0.1; done
  log "rsyslogd did not listen on $SYSLOG_TCP_PORT within 10 s"; cat "$BASE/rsyslogd.log" >&2; return 1
}

start_smtp() {
  mkdir -p "$MAILDIR/tmp" "$MAILDIR/new" "$MAILDIR/cur"
  if pid_alive "$BASE/smtp.pid" && listening_tcp "$SMTP_PORT"; then return 0; fi
  log "starting aiosmtpd on 127.0.0.1:$SMTP_PORT → $MAILDIR"
  nohup "$PYTHON" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$MAILDIR" \
    >"$BASE/smtp.log" 2>&1 &
  echo $! >"$BASE/smtp.pid"
  for _ in $(seq 1 100); do listening_tcp "$SMTP_PORT" && return 0; sleep 0.1; done
  log "aiosmtpd did not listen on $SMTP_PORT within 10 s"; cat "$BASE/smtp.log" >&2; return 1
}

write_env() {
  touch "$ENV_FILE"
  local tmp
  tmp="$(mktemp)"
  grep -v -e '^EVENTLINE_TEST_SYSLOG_' -e '^EVENTLINE_TEST_SMTP=' -e '^EVENTLINE_TEST_MAILDIR=' "$ENV_FILE" >"$tmp" || true
  {
    cat "$tmp"
    echo "EVENTLINE_TEST_SYSLOG_UDP=127.0.0.1:$SYSLOG_UDP_PORT"
    echo "EVENTLINE_TEST_SYSLOG_TCP=127.0.0.1:$SYSLOG_TCP_PORT"
    echo "EVENTLINE_TEST_SYSLOG_FILE=$SYSLOG_FILE"
    echo "EVENTLINE_TEST_SMTP=127.0.0.1:$SMTP_PORT"
    echo "EVENTLINE_TEST_MAILDIR=$MAILDIR"
  } >"$ENV_FILE"
  rm -f "$tmp"
}

stop() {
  for p in rsyslogd smtp; do
    if pid_alive "$BASE/$p.pid"; then kill "$(cat "$BASE/$p.pid")" && log "stopped $p"; fi
    rm -f "$BASE/$p.pid"
  done
}

case "${1:-}" in
  start)
    install_packages
    mkdir -p "$BASE"
    start_rsyslog
    start_smtp
    write_env
    log "ready: syslog udp/tcp 127.0.0.1:$SYSLOG_UDP_PORT/$SYSLOG_TCP_PORT, smtp 127.0.0.1:$SMTP_PORT"
    ;;
  stop) stop ;;
  status)
    if listening_tcp "$SYSLOG_TCP_PORT" && listening_tcp "$SMTP_PORT"; then echo "running"; else echo "not running"; exit 1; fi
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
