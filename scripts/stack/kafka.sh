# shellcheck shell=bash
# kafka: a Kafka-protocol broker on 127.0.0.1:9092 — noida-db, a single MIT-licensed binary
# shipped in a PyPI wheel (see docs/decisions/0004-kafka-protocol-broker.md). Sourced by
# scripts/stack.sh after lib.sh; defines functions only.

KAFKA_NOIDA_VERSION=0.2.3
KAFKA_HOST=127.0.0.1
KAFKA_PORT=9092

kafka_dir() { printf '%s/kafka/noida-db-%s' "$TRIBUTARY_CACHE" "$KAFKA_NOIDA_VERSION"; }
kafka_bin() { printf '%s/noida_db/noida-db' "$(kafka_dir)"; }
# Broker data (topics, offsets, groups as JSON). Wiped on every fresh start: each `up` gives
# an empty broker. A start that finds the broker already running keeps it as it is.
kafka_data_dir() { printf '%s/kafka-data' "$STACK_RUN"; }

# kafka_install: download the noida-db wheel (no dependencies: it is just a binary) with pip
# and unpack it. Cached under $TRIBUTARY_CACHE/kafka; a second call only checks a file.
kafka_install() {
  local dir dl whl=
  dir=$(kafka_dir)
  [ -x "$(kafka_bin)" ] && [ -f "$dir/.installed" ] && return 0
  log "installing noida-db $KAFKA_NOIDA_VERSION (Kafka-protocol broker)"
  dl="$TRIBUTARY_CACHE/kafka/dl"
  mkdir -p "$dl"
  python3 -m pip download -q --disable-pip-version-check --no-deps \
    --only-binary=:all: -d "$dl" "noida-db==$KAFKA_NOIDA_VERSION" >&2 ||
    die "pip download noida-db==$KAFKA_NOIDA_VERSION failed"
  for whl in "$dl"/noida_db-"$KAFKA_NOIDA_VERSION"-*.whl; do break; done
  [ -f "$whl" ] || die "noida-db wheel not found in $dl"
  rm -rf "$dir"
  mkdir -p "$dir"
  python3 -m zipfile -e "$whl" "$dir" || die "could not unpack $whl"
  chmod +x "$(kafka_bin)"
  touch "$dir/.installed"
}

# kafka_probe: send a Kafka Metadata request and check that the broker answers with at least
# one broker. Plain bash: api_key 3 (Metadata), version 1, correlation id 7, client id
# "tributary-health", topics null (= all); the reply starts with size, correlation id, brokers.
kafka_probe() {
  local reply
  reply=$(
    exec 3<>"/dev/tcp/$KAFKA_HOST/$KAFKA_PORT" || exit 1
    printf '\x00\x00\x00\x1e\x00\x03\x00\x01\x00\x00\x00\x07\x00\x10tributary-health\xff\xff\xff\xff' >&3
    timeout 3 head -c 12 <&3 | od -An -tx1 | tr -d ' \n'
  ) || return 1
  if [ "${#reply}" -eq 24 ] && [ "${reply:8:8}" = 00000007 ] && [ "$((16#${reply:16:8}))" -ge 1 ]; then
    return 0
  fi
  echo "kafka: no valid metadata answer from $KAFKA_HOST:$KAFKA_PORT (got '$reply')" >&2
  return 1
}

kafka_start() {
  if ! daemon_alive kafka; then
    if tcp_open "$KAFKA_HOST" "$KAFKA_PORT"; then
      die "port $KAFKA_HOST:$KAFKA_PORT is already in use by another process"
    fi
    rm -rf "$(kafka_data_dir)"
    mkdir -p "$(kafka_data_dir)"
    start_daemon kafka "$(kafka_bin)" start --only kafka --host "$KAFKA_HOST" \
      --kafka-port "$KAFKA_PORT" --data-dir "$(kafka_data_dir)"
  fi
  wait_tcp kafka "$KAFKA_HOST" "$KAFKA_PORT" 30
  wait_until kafka 10 "a metadata answer" kafka_probe
}

kafka_stop() { stop_daemon kafka; }

kafka_status() { daemon_alive kafka && kafka_probe; }

kafka_env() { echo "export TRIBUTARY_KAFKA_BOOTSTRAP=$KAFKA_HOST:$KAFKA_PORT"; }
