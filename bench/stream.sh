#!/usr/bin/env bash
# The sink worker's Kinesis source on LocalStack Kinesis and S3 (release build), two ways:
#  1. throughput: a stream of S shards pre-loaded with N Pinterest pins (the emulator's, seed 1),
#     read from TRIM_HORIZON by a raw GetRecords loop (the baseline; as fast as the service
#     answers, and paced to Kinesis's per-shard read limits) and by `tributary worker sink`
#     running the pin cleaning transform of examples/pinterest/sinks-stream-clean.yaml into
#     Parquet (Zstd) on S3. Records/s in total and per shard, the ratio to the raw loop, and
#     real Kinesis's per-shard read limit (2 MiB/s, 5 GetRecords calls/s of up to 10,000
#     records) in records/s for the pins' average size. LocalStack enforces none of those
#     limits.
#  2. latency at batch.maxAge 1s: while the worker runs, RATE pins/s are put for SECONDS; each
#     record is timed from the sending of its PutRecords call to the first listing of the
#     destination (every 50 ms) that shows the object holding it. p50 and p99.
# Medians of the runs. Helper: workers/examples/stream_bench.rs.
#
# usage: bench/stream.sh [N=20000] [runs=3] [shards="1 4"] [rate=200] [seconds=30]
#        (needs scripts/stack.sh up localstack, curl, python3 with PyYAML)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
count=${1:-20000}
runs=${2:-3}
read -r -a shard_counts <<<"${3:-1 4}"
rate=${4:-200}
seconds=${5:-30}
manifest=examples/pinterest/sinks-stream-clean.yaml
sink_name=pin-stream-clean
export TRIBUTARY_CACHE=${TRIBUTARY_CACHE:-$HOME/.cache/tributary}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$TRIBUTARY_CACHE/target}
for tool in curl python3 awk cargo; do
  command -v "$tool" >/dev/null || { echo "bench/stream.sh needs $tool" >&2; exit 1; }
done
python3 -c 'import yaml' 2>/dev/null ||
  { echo "bench/stream.sh needs PyYAML for python3 (pip install pyyaml) to read $manifest" >&2; exit 1; }
for s in "${shard_counts[@]}"; do
  [ "$s" -ge 1 ] 2>/dev/null || { echo "shard counts must be positive integers, not '$s'" >&2; exit 2; }
  [ $((count % s)) -eq 0 ] || { echo "N ($count) must be a multiple of every shard count ($s)" >&2; exit 2; }
done
scripts/stack.sh up localstack >&2
eval "$(scripts/stack.sh env localstack)"
cargo build --release --locked -q -p tributary
cargo build --release --locked -q -p tributary-workers --example stream_bench
bin="$CARGO_TARGET_DIR/release/tributary"
helper="$CARGO_TARGET_DIR/release/examples/stream_bench"
work=$(mktemp -d)
tag="$$-$(date +%s)"
cleanup() {
  local pid name
  pid=$(cat "$work/pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  while read -r name; do "$helper" drop-stream "$name" 2>/dev/null || true; done < <(cat "$work/streams" 2>/dev/null)
  while read -r name; do "$helper" drop-bucket "$name" 2>/dev/null || true; done < <(cat "$work/buckets" 2>/dev/null)
  rm -rf "$work"
}
trap cleanup EXIT

# The pin Sink's format (with its schema) and transform, as the operator copies them into the
# worker's configuration.
python3 - "$manifest" "$sink_name" >"$work/sink.json" <<'PY'
import json, sys, yaml
with open(sys.argv[1]) as f:
    docs = [d for d in yaml.safe_load_all(f) if d and d.get("metadata", {}).get("name") == sys.argv[2]]
if len(docs) != 1:
    sys.exit(f"{sys.argv[1]}: no single Sink named {sys.argv[2]}")
spec = docs[0]["spec"]
print(json.dumps(spec["format"]))
print(json.dumps(spec["transform"]))
PY
format=$(sed -n 1p "$work/sink.json")
transform=$(sed -n 2p "$work/sink.json")

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# The value of the sample named exactly $1 in the metrics text on stdin, as written (0 if
# absent).
metric() { awk -v n="$1" '$1 == n { v = $2 } END { print (v == "") ? 0 : v }'; }
new_stream() { echo "$1" >>"$work/streams"; "$helper" create "$1" "$2"; }
drop_stream() { "$helper" drop-stream "$1"; sed -i "/^$1\$/d" "$work/streams"; }
new_bucket() { echo "$1" >>"$work/buckets"; "$helper" bucket "$1"; }
drop_bucket() { "$helper" drop-bucket "$1"; sed -i "/^$1\$/d" "$work/buckets"; }

# Start a worker on stream $1 into bucket $2 with batch limits $3; its pid goes to $work/pid,
# its port to $port, its start (epoch seconds) to $started.
start_worker() {
  local stream=$1 bucket=$2 batch=$3 log=$4 config
  port=$(free_port)
  config=$(cat <<JSON
{
  "sink": "bench/$stream",
  "kinesis": {"streamName": "$stream"},
  "destination": {"url": "s3://$bucket/pins"},
  "format": $format,
  "transform": $transform,
  "batch": $batch,
  "deadLetterPrefix": "pins/_dead_letter"
}
JSON
  )
  started=$(date +%s.%N)
  TRIBUTARY_SINK_CONFIG=$config RUST_LOG=warn "$bin" worker sink --http-addr "127.0.0.1:$port" >"$log" 2>&1 &
  echo $! >"$work/pid"
}

stop_worker() {
  local pid log=$1
  pid=$(cat "$work/pid")
  kill -TERM "$pid"
  wait "$pid" || { echo "the worker did not stop cleanly:" >&2; cat "$log" >&2; exit 1; }
  rm -f "$work/pid"
}

# Raw GetRecords loop over stream $1 ($2: paced or unpaced): prints seconds, GetRecords calls,
# throttled calls and the mean seconds a call.
raw_run() {
  local stream=$1 mode=$2 records bytes secs calls throttled call
  read -r records bytes secs calls throttled call < <("$helper" read "$stream" "$count" "$mode" 2>>"$work/raw.log") || true
  if [ "${records:-0}" -ne "$count" ] || [ "${bytes:-0}" -ne "$payload_bytes" ]; then
    echo "raw $mode read ${records:-no} records, ${bytes:-no} bytes; expected $count, $payload_bytes" >&2
    cat "$work/raw.log" >&2
    exit 1
  fi
  echo "$secs $calls $throttled $call"
}

# One worker from process start until every record is in S3 (the last flush's upload as the
# worker stamps it): prints seconds, peak RSS (MiB), objects, rows, object bytes.
worker_run() {
  local stream=$1 shards=$2 run=$3 bucket per_shard parts max_records log pid metrics='' out=0 peak
  local last in dead objects rows bytes other
  bucket="bench-stream-$tag-$shards-$run"
  log="$work/worker-$shards-$run.log"
  new_bucket "$bucket"
  # Every flush is by count (maxRecords divides each shard's share and is at most the
  # manifest's 10,000), so no run waits for maxAge on a shard's last, short batch.
  per_shard=$((count / shards))
  parts=$(((per_shard + 9999) / 10000))
  while [ $((per_shard % parts)) -ne 0 ]; do parts=$((parts + 1)); done
  max_records=$((per_shard / parts))
  start_worker "$stream" "$bucket" "{\"maxRecords\": $max_records, \"maxAge\": \"60s\"}" "$log"
  pid=$(cat "$work/pid")
  while [ "$out" -lt "$count" ]; do
    sleep 0.2
    kill -0 "$pid" 2>/dev/null || { echo "the worker stopped:" >&2; cat "$log" >&2; exit 1; }
    if awk -v s="$started" -v now="$(date +%s.%N)" 'BEGIN { exit !(now - s > 600) }'; then
      echo "the worker wrote $out of $count records in 600 s" >&2; cat "$log" >&2; exit 1
    fi
    metrics=$(curl -sf "http://127.0.0.1:$port/metrics" || true)
    out=$(metric tributary_sink_records_out_total <<<"$metrics")
  done
  peak=$(awk '$1 == "VmHWM:" { print int($2 / 1024) }' "/proc/$pid/status")
  stop_worker "$log"
  last=$(metric tributary_sink_last_flush_timestamp_seconds <<<"$metrics")
  in=$(metric tributary_sink_records_in_total <<<"$metrics")
  dead=$(metric tributary_sink_dead_letters_total <<<"$metrics")
  read -r objects rows bytes other < <("$helper" check "$bucket" pins/ "$work/seq-$shards") || true
  if [ "$in" -ne "$count" ] || [ "$out" -ne "$count" ] || [ "$dead" -ne 0 ] || [ -z "${rows:-}" ] || [ "$other" -ne 0 ]; then
    echo "worker run $run ($shards shards): records in $in, out $out, dead letters $dead, other objects ${other:-?}; expected $count" >&2
    exit 1
  fi
  drop_bucket "$bucket"
  awk -v last="$last" -v s="$started" -v peak="$peak" -v o="$objects" -v r="$rows" -v b="$bytes" \
    'BEGIN { printf "%.3f %d %d %d %d\n", last - s, peak, o, r, b }'
}

# One latency run on a fresh stream of $1 shards: prints the helper's line
# (records p50 p99 max put_p50 put_p99 objects rate).
latency_run() {
  local shards=$1 run=$2 stream bucket log pid metrics line records in out dead
  stream="bench-stream-$tag-lat-$shards-$run"
  bucket="bench-stream-$tag-lat-$shards-$run"
  log="$work/latency-$shards-$run.log"
  new_stream "$stream" "$shards"
  new_bucket "$bucket"
  start_worker "$stream" "$bucket" '{"maxRecords": 10000, "maxAge": "1s"}' "$log"
  pid=$(cat "$work/pid")
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.1
  done
  # The worker lists the shards and takes an iterator for each right after it starts.
  sleep 2
  kill -0 "$pid" 2>/dev/null || { echo "the worker stopped:" >&2; cat "$log" >&2; exit 1; }
  line=$("$helper" latency "$stream" "$bucket" pins/ "$rate" "$seconds" 2>>"$work/latency.log") ||
    { cat "$work/latency.log" "$log" >&2; exit 1; }
  metrics=$(curl -sf "http://127.0.0.1:$port/metrics")
  stop_worker "$log"
  read -r records _ <<<"$line"
  in=$(metric tributary_sink_records_in_total <<<"$metrics")
  out=$(metric tributary_sink_records_out_total <<<"$metrics")
  dead=$(metric tributary_sink_dead_letters_total <<<"$metrics")
  if [ "$in" -ne "$records" ] || [ "$out" -ne "$records" ] || [ "$dead" -ne 0 ]; then
    echo "latency run $run ($shards shards): $records put, worker records in $in, out $out, dead letters $dead" >&2
    exit 1
  fi
  drop_bucket "$bucket"
  drop_stream "$stream"
  echo "$line"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col() { awk -v c="$2" '{ print $c }' "$work/$1"; }
med() { local -a v; mapfile -t v < <(col "$1" "$2"); median "${v[@]}"; }
runs_of() { col "$1" "$2" | paste -sd, | sed 's/,/, /g'; }

# 1. Throughput: one stream at a time (LocalStack's Kinesis writes its whole state to disk
# every 5 s, so a stream left loaded would slow the next one down).
for s in "${shard_counts[@]}"; do
  stream="bench-stream-$tag-$s"
  echo "loading $count pins into $stream ($s shards)" >&2
  new_stream "$stream" "$s"
  read -r _ payload_bytes < <("$helper" load "$stream" "$count" "$work/seq-$s")
  echo "$payload_bytes" >"$work/bytes-$s"
  for r in $(seq 1 "$runs"); do
    echo "run $r/$runs, $s shards: raw unpaced, raw paced, worker" >&2
    raw_run "$stream" unpaced >>"$work/raw-$s"
    raw_run "$stream" paced >>"$work/paced-$s"
    worker_run "$stream" "$s" "$r" >>"$work/worker-$s"
  done
  drop_stream "$stream"
done

# 2. Latency, each run on a fresh, empty stream.
for s in "${shard_counts[@]}"; do
  for r in $(seq 1 "$runs"); do
    echo "latency run $r/$runs, $s shards: $rate records/s for $seconds s at maxAge 1s" >&2
    latency_run "$s" "$r" >>"$work/latency-$s"
  done
done

payload_bytes=$(cat "$work/bytes-${shard_counts[0]}")
size=$(awk -v b="$payload_bytes" -v n="$count" 'BEGIN { printf "%.0f", b / n }')
# Real Kinesis per shard: 2 MiB/s, and 5 GetRecords calls/s of at most 10,000 records.
limit=$(awk -v s="$size" 'BEGIN { r = 2 * 1048576 / s; if (r > 50000) r = 50000; printf "%.0f", r }')
printf '\n%d Pinterest pins (%d bytes each on average, %.1f MB), median of %d runs (release build)\n\n' \
  "$count" "$size" "$(awk -v b="$payload_bytes" 'BEGIN { print b / 1e6 }')" "$runs"
printf '| shards | reader | records/s | records/s per shard | MB/s per shard | ratio to raw | Kinesis read limit per shard (records/s) | per shard ÷ limit | seconds (runs) |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for s in "${shard_counts[@]}"; do
  raw_rate=$(awk -v n="$count" -v t="$(med "raw-$s" 1)" 'BEGIN { print n / t }')
  for mode in raw paced worker; do
    case $mode in
      raw) label="raw GetRecords loop, as fast as answered" ;;
      paced) label="raw GetRecords loop, paced to the limits" ;;
      worker) label="worker: SQL transform → Parquet (Zstd) → S3" ;;
    esac
    awk -v s="$s" -v label="$label" -v n="$count" -v t="$(med "$mode-$s" 1)" -v raw="$raw_rate" \
      -v b="$payload_bytes" -v limit="$limit" -v runs="$(runs_of "$mode-$s" 1)" \
      'BEGIN { r = n / t; printf "| %d | %s | %.0f | %.0f | %.2f | %.2f | %d | %.2f | %s |\n",
        s, label, r, r / s, r / s * b / n / 1e6, r / raw, limit, r / s / limit, runs }'
  done
done
echo
for s in "${shard_counts[@]}"; do
  printf -- '- %d shards: raw loop %s GetRecords calls a run, %s s a call (paced: %s calls, %s s), %s throttled; worker: %s objects, %s rows after the transform, %.1f MB of Parquet, peak RSS %s MiB\n' \
    "$s" "$(med "raw-$s" 2)" "$(med "raw-$s" 4)" "$(med "paced-$s" 2)" "$(med "paced-$s" 4)" \
    "$(cat "$work/raw-$s" "$work/paced-$s" | awk '{ t += $3 } END { print t + 0 }')" \
    "$(med "worker-$s" 3)" "$(med "worker-$s" 4)" \
    "$(awk -v b="$(med "worker-$s" 5)" 'BEGIN { print b / 1e6 }')" "$(med "worker-$s" 2)"
done

printf '\nLatency at batch.maxAge 1s: %s records/s for %s s; put → object visible, ms (median of %d runs)\n\n' "$rate" "$seconds" "$runs"
printf '| shards | records/s put | records | p50 | p99 | max | PutRecords p50 / p99 | objects | p50, p99 (runs) |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for s in "${shard_counts[@]}"; do
  printf '| %d | %.0f | %s | %.0f | %.0f | %.0f | %.0f / %.0f | %s | %s |\n' "$s" "$(med "latency-$s" 8)" \
    "$(med "latency-$s" 1)" "$(med "latency-$s" 2)" "$(med "latency-$s" 3)" "$(med "latency-$s" 4)" \
    "$(med "latency-$s" 5)" "$(med "latency-$s" 6)" "$(med "latency-$s" 7)" \
    "$(awk '{ printf "%s%.0f/%.0f", sep, $2, $3; sep = ", " }' "$work/latency-$s")"
done
