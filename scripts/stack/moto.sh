# shellcheck shell=bash
# moto: the MSK (Amazon "kafka" control-plane) API on http://127.0.0.1:5055 — moto from PyPI
# in a Python 3.11 virtualenv, started through moto_msk.py, which patches what MSK clients need
# into moto's Kafka backend (see docs/decisions/0005-msk-emulator.md). Sourced by
# scripts/stack.sh after lib.sh; defines functions only.
#
# moto_msk.py reads, when the service starts: TRIBUTARY_MSK_BOOTSTRAP (127.0.0.1:9092),
# TRIBUTARY_MSK_ACTIVE_AFTER_SECONDS (3), TRIBUTARY_MSK_DELETE_AFTER_SECONDS (1).

MOTO_HOST=127.0.0.1
MOTO_PORT=5055

moto_src() { cd "$(dirname "${BASH_SOURCE[0]}")" && pwd; }
moto_venv() { printf '%s/moto/venv' "$TRIBUTARY_CACHE"; }

moto_python() {
  if command -v python3.11 >/dev/null 2>&1; then
    echo python3.11
  elif python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    echo python3
  else
    die "moto needs Python 3.11 (python3.11 or python3)"
  fi
}

# moto_install: a virtualenv with the pinned packages of moto-requirements.txt. The stamp
# holds the requirements' checksum, so a changed pin rebuilds it and a second call is instant.
moto_install() {
  local venv req sum py
  venv=$(moto_venv)
  req="$(moto_src)/moto-requirements.txt"
  sum=$(sha256sum "$req" | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.tributary-stamp" 2>/dev/null)" = "$sum" ]; then
    return 0
  fi
  py=$(moto_python)
  log "installing moto (MSK API emulator) into $venv"
  rm -rf "$venv"
  "$py" -m venv "$venv" || die "could not create a virtualenv with $py"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: \
    -r "$req" >&2 || die "pip install -r $req failed"
  echo "$sum" >"$venv/.tributary-stamp"
}

# moto_probe: a ListClustersV2 call (moto ignores the signature but needs its scope to route).
moto_probe() {
  curl -fsS -o /dev/null --max-time 3 \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=tributary/20200101/us-east-1/kafka/aws4_request, SignedHeaders=host, Signature=0' \
    "http://$MOTO_HOST:$MOTO_PORT/api/v2/clusters"
}

moto_start() {
  if ! daemon_alive moto; then
    if tcp_open "$MOTO_HOST" "$MOTO_PORT"; then
      die "port $MOTO_HOST:$MOTO_PORT is already in use by another process"
    fi
    start_daemon moto "$(moto_venv)/bin/python" "$(moto_src)/moto_msk.py" \
      --host "$MOTO_HOST" --port "$MOTO_PORT"
  fi
  wait_tcp moto "$MOTO_HOST" "$MOTO_PORT" 60
  wait_until moto 10 "an answer from the Kafka API" moto_probe
}

moto_stop() { stop_daemon moto; }

moto_status() { daemon_alive moto && moto_probe; }

moto_env() { echo "export AWS_ENDPOINT_URL_KAFKA=http://$MOTO_HOST:$MOTO_PORT"; }
