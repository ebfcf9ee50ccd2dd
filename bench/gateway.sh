#!/usr/bin/env bash
# Throughput and latency of the gateway's produce API against a raw rdkafka producer: wrk
# POSTs one REST proxy request of 100 Pinterest pins over and over, on C connections, to a
# `tributary gateway` (release build) in front of the local broker; the baseline produces the
# same pins with the gateway's own producer settings (idempotent, acks=all, lz4, 5 ms linger)
# as fast as librdkafka takes them. Records/s come from the gateway's own counter of records
# written (not from wrk), so a request with failed records cannot inflate them. Medians of the
# runs; everything on this machine's cores (wrk, gateway, broker).
#
# usage: bench/gateway.sh [seconds=10] [runs=3] [connections=32]   (starts kube and kafka)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
seconds=${1:-10}
runs=${2:-3}
connections=${3:-32}
batch=100
goal=50000
raw_count=1000000
export TRIBUTARY_CACHE=${TRIBUTARY_CACHE:-$HOME/.cache/tributary}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$TRIBUTARY_CACHE/target}
command -v curl >/dev/null || { echo "bench/gateway.sh needs curl" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
  echo "[bench] installing wrk" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >&2
fi
scripts/stack.sh up kube kafka >&2
eval "$(scripts/stack.sh env kube kafka)"
cargo build --release --locked -q -p tributary
cargo build --release --locked -q -p tributary --example gateway_bench
bin="$CARGO_TARGET_DIR/release/tributary"
helper="$CARGO_TARGET_DIR/release/examples/gateway_bench"

work=$(mktemp -d)
tag="$$-$(date +%s)"
namespace=default
name="bench-gateway-$tag"
topic="bench-gateway-$tag"
label="tributary.dev/bench=gateway-$tag"
cleanup() {
  local pid
  pid=$(cat "$work/pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  if [ -e "$work/setup" ]; then "$helper" teardown "$namespace" "$name" "$topic" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

touch "$work/setup"
"$helper" setup "$namespace" "$name" "$topic" 4 "$label"
"$helper" body "$work/body.json" "$batch"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
TRIBUTARY_GATEWAY_API_KEYS=bench-key RUST_LOG=warn "$bin" gateway --listen "127.0.0.1:$port" \
  --namespace "$namespace" --selector "$label" --bootstrap-servers "$TRIBUTARY_KAFKA_BOOTSTRAP" \
  >"$work/gateway.log" 2>&1 &
echo $! >"$work/pid"
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.2
done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$work/gateway.log" >&2; exit 1; }

cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/vnd.kafka.json.v2+json"
wrk.headers["X-API-Key"] = "bench-key"
local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %.6f %.3f %.3f %.3f\n", summary.requests,
    e.connect + e.read + e.write + e.status + e.timeout, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
LUA

# The value of the sample named exactly $1 in the metrics text on stdin (0 if absent).
metric() { awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'; }
written() { curl -sf "http://127.0.0.1:$port/metrics" | metric "tributary_gateway_records_total{topic=\"$topic\"}"; }
errors() { curl -sf "http://127.0.0.1:$port/metrics" | awk '$1 ~ /^tributary_gateway_errors_total/ { s += $2 } END { print s + 0 }'; }

# One wrk run: prints records/s, p50 ms, p99 ms, max ms.
gateway_run() {
  local run=$1 before after errors_before errors_after line requests failures duration p50 p99 max
  before=$(written)
  errors_before=$(errors)
  BENCH_BODY="$work/body.json" wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/post.lua" \
    "http://127.0.0.1:$port/topics/$topic" >"$work/wrk-$run.txt"
  # Let the last acknowledgements land in the counter.
  sleep 1
  after=$(written)
  errors_after=$(errors)
  line=$(grep '^RESULT ' "$work/wrk-$run.txt")
  read -r _ requests failures duration p50 p99 max <<<"$line"
  if [ "$failures" -ne 0 ] || [ "$errors_after" != "$errors_before" ]; then
    echo "gateway run $run: $failures failed requests, $((errors_after - errors_before)) gateway errors" >&2
    cat "$work/wrk-$run.txt" >&2
    exit 1
  fi
  if [ $((after - before)) -lt $((requests * batch)) ]; then
    echo "gateway run $run: $((after - before)) records written for $requests requests of $batch" >&2
    exit 1
  fi
  awk -v n="$((after - before))" -v d="$duration" -v p50="$p50" -v p99="$p99" -v max="$max" \
    'BEGIN { printf "%.0f %.2f %.2f %.2f\n", n / d, p50, p99, max }'
}

raw_run() {
  local records secs
  read -r records secs < <("$helper" raw "$topic" "$raw_count")
  awk -v n="$records" -v s="$secs" 'BEGIN { printf "%.0f\n", n / s }'
}

for r in $(seq 1 "$runs"); do
  echo "run $r/$runs: raw producer ($raw_count records), gateway (${seconds} s, $connections connections)" >&2
  raw_run >>"$work/raw"
  gateway_run "$r" >>"$work/gateway"
done
peak=$(awk '$1 == "VmHWM:" { print int($2 / 1024) }' "/proc/$(cat "$work/pid")/status")

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col() { awk -v c="$2" '{ print $c }' "$work/$1"; }
mapfile -t raws < <(col raw 1)
mapfile -t rates < <(col gateway 1)
mapfile -t p50s < <(col gateway 2)
mapfile -t p99s < <(col gateway 3)
raw_rate=$(median "${raws[@]}")
rate=$(median "${rates[@]}")
printf '\n%d-record requests of Pinterest pins (%d bytes each), %d connections, %d s per run; median of %d runs (release build)\n\n' \
  "$batch" "$(wc -c <"$work/body.json")" "$connections" "$seconds" "$runs"
printf '| mode | records/s | p50 (ms) | p99 (ms) | ratio to raw | goal | records/s (runs) |\n|---|---|---|---|---|---|---|\n'
printf '| raw rdkafka producer | %.0f | – | – | 1.00 | – | %s |\n' "$raw_rate" "$(paste -sd, "$work/raw" | sed 's/,/, /g')"
printf '| gateway, POST /topics | %.0f | %s | %s | %.2f | ≥ %d records/s: %s | %s |\n' "$rate" \
  "$(median "${p50s[@]}")" "$(median "${p99s[@]}")" "$(awk -v a="$rate" -v b="$raw_rate" 'BEGIN { print a / b }')" \
  "$goal" "$(awk -v r="$rate" -v g="$goal" 'BEGIN { print (r >= g) ? "met" : "NOT met" }')" \
  "$(col gateway 1 | paste -sd, | sed 's/,/, /g')"
printf '\nGateway peak RSS: %s MiB\n' "$peak"
