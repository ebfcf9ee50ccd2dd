#!/usr/bin/env bash
# THE demo command (the README's first): the Pinterest pipeline end to end on this machine.
# Starts the local broker and LocalStack (unless they run already), builds the binary, runs
# `tributary local` on examples/pinterest/ (topics and streams, raw and cleaning Sinks into the
# S3 lake, the gateway, the two BatchJobs), sends posts from the emulator through the gateway
# to the topics and the streams, waits until every record is in the lake (raw from the topics,
# cleaned from the streams), runs the cleaning and aggregation BatchJobs, prints the result
# tables, then stops what it started. A second run reuses the caches in ~/.cache/tributary.
#
# usage: scripts/demo.sh [posts=2000] [seed=1]
# TRIBUTARY_DEMO_OUT=DIR also writes each result table there as JSON lines (the demo test reads
# them); TRIBUTARY_BIN=PATH runs that tributary binary instead of building one;
# TRIBUTARY_DEMO_LAKE=DIR keeps the lake in that directory instead of LocalStack's S3
# (LocalStack still runs: its Kinesis holds the manifests' Streams).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
posts=${1:-2000}
seed=${2:-1}
export TRIBUTARY_CACHE=${TRIBUTARY_CACHE:-$HOME/.cache/tributary}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$TRIBUTARY_CACHE/target}
say() { printf '\n==> %s\n' "$*" >&2; }

say "Debian packages and the local services (broker, LocalStack)"
scripts/deps.sh
services=(kafka localstack)
lake=(--lake s3)
if [ -n "${TRIBUTARY_DEMO_LAKE:-}" ]; then
  lake=(--lake "$TRIBUTARY_DEMO_LAKE")
fi
started=()
for svc in "${services[@]}"; do
  scripts/stack.sh status "$svc" >/dev/null 2>&1 || started+=("$svc")
done
scripts/stack.sh up "${services[@]}" >&2
eval "$(scripts/stack.sh env "${services[@]}")"

if [ -n "${TRIBUTARY_BIN:-}" ]; then
  bin=$TRIBUTARY_BIN
else
  say "building tributary"
  cargo build --locked -q -p tributary
  bin="$CARGO_TARGET_DIR/debug/tributary"
fi

work=$(mktemp -d)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
gateway_port=$(free_port)
status_addr="127.0.0.1:$(free_port)"
cleanup() {
  local pid
  pid=$(cat "$work/pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if [ ${#started[@]} -gt 0 ]; then scripts/stack.sh down "${started[@]}" >&2 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

say "tributary local -f examples/pinterest/ (fresh topics and lake)"
RUST_LOG=warn "$bin" local -f examples/pinterest/ --fresh "${lake[@]}" \
  --kafka-bootstrap "$TRIBUTARY_KAFKA_BOOTSTRAP" \
  --gateway-listen "127.0.0.1:$gateway_port" --status-addr "$status_addr" 2>"$work/local.log" &
echo $! >"$work/pid"
for _ in $(seq 1 300); do
  curl -sf "http://$status_addr/status" >/dev/null 2>&1 &&
    curl -sf "http://127.0.0.1:$gateway_port/readyz" >/dev/null 2>&1 && break
  kill -0 "$(cat "$work/pid")" 2>/dev/null || { cat "$work/local.log" >&2; exit 1; }
  sleep 0.2
done
"$bin" local status --status-addr "$status_addr" >&2

say "the emulator: $posts posts (pin, geo and user records) through the gateway, to the Topics and the Streams"
"$bin" emulate --gateway "http://127.0.0.1:$gateway_port" --count "$posts" --seed "$seed" \
  --topics pin,geo,user --streams pin,geo,user

# A Topic Sink has caught up when its consumer group's lag is 0. A Stream Sink has no consumer
# group: it has caught up when it has written (as objects or dead letters) as many records as
# the Topic Sinks of the same table, which got the same records (duplicates included).
say "waiting until every record is in the lake (every Topic Sink's lag 0, every Stream Sink as many records written)"
caught_up() {
  "$bin" local status --status-addr "$status_addr" --json | python3 -c '
import json, sys
sinks = [r for r in json.load(sys.stdin) if r["kind"] == "Sink"]
topics = [r for r in sinks if r.get("source", "").startswith("topic/")]
streams = [r for r in sinks if r.get("source", "").startswith("stream/")]
if not topics or not all(r["lag"] == 0 and r["last"] for r in topics):
    sys.exit(1)
sent = {}
for r in topics:
    table = r["source"].split("/", 1)[1]
    sent[table] = max(sent.get(table, 0), r.get("written", 0))
sys.exit(0 if all(r.get("written", 0) >= sent.get(r["source"].split("/", 1)[1], 1) for r in streams) else 1)'
}
for i in $(seq 1 180); do
  kill -0 "$(cat "$work/pid")" 2>/dev/null || { echo "tributary local stopped:" >&2; cat "$work/local.log" >&2; exit 1; }
  caught_up 2>/dev/null && break
  [ "$i" -lt 180 ] || { echo "the Sinks did not catch up in 180 s" >&2; "$bin" local status --status-addr "$status_addr" >&2; exit 1; }
  sleep 1
done
"$bin" local status --status-addr "$status_addr" >&2

say "BatchJob pinterest-clean, then pinterest-aggregate"
"$bin" local run-batch pinterest-clean --status-addr "$status_addr" >&2
"$bin" local run-batch pinterest-aggregate --status-addr "$status_addr" >"$work/outputs"
cat "$work/outputs" >&2

say "the result tables"
while read -r url; do
  table=$(basename "$url")
  printf '\n%s\n' "$table"
  "$bin" local show "$url" --limit 100
  if [ -n "${TRIBUTARY_DEMO_OUT:-}" ]; then
    mkdir -p "$TRIBUTARY_DEMO_OUT"
    "$bin" local show "$url" --json --limit 1000000 >"$TRIBUTARY_DEMO_OUT/$table.json"
  fi
done < <(python3 -c 'import json, sys; [print(json.loads(l)["url"]) for l in sys.stdin if l.strip()]' <"$work/outputs")
say "done: stopping tributary local${started[*]:+ and ${started[*]}}"
