#!/usr/bin/env bash
# Throughput of the sink worker against a raw rdkafka consume loop: one topic of N Pinterest
# "pin" records (4 partitions) on the local broker, read by a raw consumer (the baseline) and
# by the `tributary worker sink` binary writing JSON lines and Parquet to LocalStack S3, and by
# the floor: the raw loop that also uploads the bytes as they are, the least any sink does.
# Records/s, payload MB/s, peak RSS, CPU seconds and the ratios to raw and to the floor,
# medians of the runs (release build).
#
# usage: bench/sink.sh [N=600000] [runs=5]     (needs scripts/stack.sh up kafka localstack)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
count=${1:-600000}
runs=${2:-5}
# The local broker ignores a fetch's size limits and answers with the whole unread tail of
# every partition at once; librdkafka refuses a response above receive.message.max.bytes
# (100 MB by default) as "Bad message format". Both consumers raise it to 1 GB — the sink
# through its Sink's spec.source.consumerProperties — so a topic of up to ~1.5 M pins
# (0.9 GB) is read; the default 600,000 pins are 356 MB.
receive_max=1000000000
partitions=4
if [ "$count" -gt 1500000 ]; then
  echo "warning: the local broker sends the whole backlog in one response; above ~1,500,000 pins" \
    "(0.9 GB) librdkafka refuses it even at receive.message.max.bytes $receive_max" >&2
fi
goal=0.85
export TRIBUTARY_CACHE=${TRIBUTARY_CACHE:-$HOME/.cache/tributary}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$TRIBUTARY_CACHE/target}
[ $((count % partitions)) -eq 0 ] || { echo "N must be a multiple of $partitions" >&2; exit 2; }
command -v curl >/dev/null || { echo "bench/sink.sh needs curl" >&2; exit 1; }
scripts/stack.sh up kafka localstack >&2
eval "$(scripts/stack.sh env kafka localstack)"
cargo build --release --locked -q -p tributary
cargo build --release --locked -q -p tributary-workers --example sink_bench
bin="$CARGO_TARGET_DIR/release/tributary"
helper="$CARGO_TARGET_DIR/release/examples/sink_bench"
work=$(mktemp -d)
topic="bench-sink-$$-$(date +%s)"
cleanup() {
  local pid
  pid=$(cat "$work/pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  if [ -s "$work/topic" ]; then "$helper" drop-topic "$topic" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Every flush is by count: maxRecords divides each partition's share (and is at most the
# default 100,000), so no run waits for maxAge on a partition's last, short batch.
per_partition=$((count / partitions))
parts=$(((per_partition + 99999) / 100000))
while [ $((per_partition % parts)) -ne 0 ]; do parts=$((parts + 1)); done
max_records=$((per_partition / parts))
# BENCH_MAX_RECORDS=K sets maxRecords instead (smaller objects: more flushes, overlapping the
# reading, and a shorter last upload).
max_records=${BENCH_MAX_RECORDS:-$max_records}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# The value of the sample named exactly $1 in the metrics text on stdin.
metric() { awk -v n="$1" '$1 == n { print $2 }'; }

ticks=$(getconf CLK_TCK)
# The local broker rewrites its whole state to disk (a JSON file of every record) for several
# seconds of a core after each change, a group join or a commit among them; LocalStack settles
# after a run's deletes. Every run starts once both have used < 5 % of a core for a second
# (at most 60 s), so no run pays for the one before.
stack_pids() {
  local pid
  cat "$TRIBUTARY_CACHE/run/kafka.pid" "$TRIBUTARY_CACHE/run/localstack.pid" 2>/dev/null |
    while read -r pid; do
      echo "$pid"; pgrep -P "$pid" || true
    done
}
stack_ticks() { local pid sum=0; for pid in $(stack_pids); do sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0))); done; echo "$sum"; }
quiet() {
  local before
  for _ in $(seq 60); do
    before=$(stack_ticks); sleep 1
    [ $(($(stack_ticks) - before)) -lt $((ticks / 20)) ] && return 0
  done
  echo "warning: the broker and LocalStack did not settle within 60 s" >&2
}

# Raw baseline ($1 = consume) and the floor ($1 = floor: the raw loop that also uploads every
# maxRecords records of a partition, as they are, to S3): prints seconds, peak RSS (MiB) and
# CPU seconds.
helper_run() {
  local what=$1 run=$2 records bytes seconds peak cpu bucket='' extra=()
  if [ "$what" = floor ]; then
    bucket="bench-floor-$$-$run"
    "$helper" bucket "$bucket"
    extra=("s3://$bucket/pins" "$max_records")
  fi
  quiet
  read -r records bytes seconds peak cpu < <(BENCH_RECEIVE_MAX=$receive_max "$helper" "$what" "$topic" "bench-$what-$$-$run" "$count" "${extra[@]}" 2>>"$work/$what.log") || true
  if [ "${records:-0}" -ne "$count" ] || [ "${bytes:-0}" -ne "$payload_bytes" ]; then
    echo "$what run $run read ${records:-no} records, ${bytes:-no} bytes; expected $count, $payload_bytes" >&2
    cat "$work/$what.log" >&2
    exit 1
  fi
  if [ -n "$bucket" ]; then "$helper" drop-bucket "$bucket"; fi
  awk -v s="$seconds" -v p="$peak" -v c="$cpu" -v t="$ticks" 'BEGIN { printf "%s %d %.2f\n", s, p / 1024, c / t }'
}

# One sink worker from process start until every record is in S3: prints seconds, peak RSS
# (MiB), CPU seconds, objects, object bytes, mean flush seconds and flushes by trigger. $2 is
# the spec.format document.
sink_run() {
  local mode=$1 format=$2 run=$3 bucket port config pid started metrics='' out=0 peak cpu last
  local in dead bytes_in bytes_out flushes flush_sum triggers objects written
  bucket="bench-sink-$$-$mode-$run"
  "$helper" bucket "$bucket"
  quiet
  port=$(free_port)
  config=$(cat <<JSON
{
  "sink": "bench/$mode",
  "topic": "$topic",
  "consumerGroup": "bench-sink-$$-$mode-$run",
  "kafka": {"bootstrapServers": "$TRIBUTARY_KAFKA_BOOTSTRAP"},
  "consumerProperties": {"receive.message.max.bytes": "$receive_max"},
  "destination": {"url": "s3://$bucket/pins"},
  "format": $format,
  "batch": {"maxRecords": $max_records, "maxAge": "5s"},
  "deadLetterPrefix": "pins/_dead_letter"
}
JSON
  )
  started=$(date +%s.%N)
  TRIBUTARY_SINK_CONFIG=$config RUST_LOG=warn "$bin" worker sink --http-addr "127.0.0.1:$port" >"$work/$mode-$run.log" 2>&1 &
  pid=$!
  echo "$pid" >"$work/pid"
  while [ "${out:-0}" -lt "$count" ]; do
    sleep 0.2
    kill -0 "$pid" 2>/dev/null || { echo "the $mode worker stopped:" >&2; cat "$work/$mode-$run.log" >&2; exit 1; }
    if [ "$(echo "$(date +%s.%N) - $started > 600" | bc)" = 1 ]; then
      echo "the $mode worker wrote $out of $count records in 600 s" >&2; exit 1
    fi
    metrics=$(curl -sf "http://127.0.0.1:$port/metrics" || true)
    out=$(metric tributary_sink_records_out_total <<<"$metrics")
  done
  # The last poll saw every record out, so its numbers are final; the end of the run is the
  # last flush's commit as the worker stamped it (ms), not the poll that noticed it.
  peak=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status")
  cpu=$(awk -v t="$ticks" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$pid/stat")
  kill -TERM "$pid"
  wait "$pid" || { echo "the $mode worker did not stop cleanly:" >&2; cat "$work/$mode-$run.log" >&2; exit 1; }
  rm -f "$work/pid"
  last=$(metric tributary_sink_last_flush_timestamp_seconds <<<"$metrics")
  in=$(metric tributary_sink_records_in_total <<<"$metrics")
  dead=$(metric tributary_sink_dead_letters_total <<<"$metrics")
  bytes_in=$(metric tributary_sink_bytes_in_total <<<"$metrics")
  bytes_out=$(metric tributary_sink_bytes_out_total <<<"$metrics")
  flushes=$(metric tributary_sink_flush_duration_seconds_count <<<"$metrics")
  flush_sum=$(metric tributary_sink_flush_duration_seconds_sum <<<"$metrics")
  triggers=$(awk -F'[{}"]' '$1 == "tributary_sink_flushes_total" { split($5, v, " "); printf "%s%s:%s", sep, $3, v[1]; sep = "," }' <<<"$metrics")
  read -r objects written < <("$helper" count "$bucket" pins/) || true
  if [ "${in:-0}" -ne "$count" ] || [ "$out" -ne "$count" ] || [ "${dead:-0}" -ne 0 ] ||
    [ "${bytes_in:-0}" -ne "$payload_bytes" ] || [ "${written:-0}" -ne "$count" ]; then
    echo "$mode run $run: records in $in, out $out, dead letters $dead, bytes in $bytes_in, in S3 $written; expected $count" >&2
    exit 1
  fi
  "$helper" drop-bucket "$bucket"
  awk -v last="$last" -v started="$started" -v peak="$peak" -v cpu="$cpu" -v objects="$objects" \
    -v bytes="$bytes_out" -v flushes="$flushes" -v sum="$flush_sum" -v triggers="$triggers" \
    'BEGIN { printf "%.3f %d %s %d %d %.3f %s\n", last - started, peak / 1024, cpu, objects, bytes, sum / flushes, triggers }'
}

echo "producing $count records into $topic ($partitions partitions)" >&2
echo "$topic" >"$work/topic"
payload_bytes=$("$helper" produce "$topic" "$partitions" "$count")

json='{"type": "JsonLines"}'
zstd='{"type": "JsonLines", "compression": "Zstd"}'
parquet='{"type": "Parquet"}'
for r in $(seq 1 "$runs"); do
  echo "run $r/$runs: raw, floor, JSON lines, JSON lines (Zstd), Parquet" >&2
  helper_run consume "$r" >>"$work/raw"
  helper_run floor "$r" >>"$work/floor"
  sink_run json "$json" "$r" >>"$work/json"
  sink_run zstd "$zstd" "$r" >>"$work/zstd"
  sink_run parquet "$parquet" "$r" >>"$work/parquet"
done

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
column() { awk -v c="$2" '{ print $c }' "$work/$1"; }
# Median records/s of a mode.
rate() { mapfile -t s < <(column "$1" 1); awk -v n="$count" -v s="$(median "${s[@]}")" 'BEGIN { print n / s }'; }
raw_rate=$(rate raw)
floor_rate=$(rate floor)
row() {
  local mode=$1 label=$2 goal_text=$3 rec mb peak cpu ratio floor_ratio secs
  rec=$(rate "$mode")
  mb=$(awk -v r="$rec" -v b="$payload_bytes" -v n="$count" 'BEGIN { printf "%.1f", r * b / n / 1e6 }')
  mapfile -t p < <(column "$mode" 2)
  peak=$(median "${p[@]}")
  mapfile -t c < <(column "$mode" 3)
  cpu=$(median "${c[@]}")
  floor_ratio=$(awk -v r="$rec" -v f="$floor_rate" 'BEGIN { printf "%.2f", r / f }')
  ratio=$(awk -v r="$rec" -v raw="$raw_rate" 'BEGIN { printf "%.2f", r / raw }')
  secs=$(column "$mode" 1 | paste -sd, | sed 's/,/, /g')
  if [ "$goal_text" = goal ]; then
    goal_text="≥ $goal: $(awk -v r="$ratio" -v g="$goal" 'BEGIN { print (r >= g) ? "met" : "NOT met" }')"
  fi
  printf '| %s | %.0f | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$rec" "$mb" "$peak" "$cpu" "$ratio" "$floor_ratio" "$goal_text" "$secs"
}
details() {
  local mode=$1 label=$2 objects bytes flush
  mapfile -t o < <(column "$mode" 4); objects=$(median "${o[@]}")
  mapfile -t b < <(column "$mode" 5); bytes=$(median "${b[@]}")
  mapfile -t f < <(column "$mode" 6); flush=$(median "${f[@]}")
  printf -- '- %s: %s objects, %.1f MB of objects, mean flush (encode + upload + commit) %.2f s, flushes by trigger %s\n' \
    "$label" "$objects" "$(awk -v b="$bytes" 'BEGIN { print b / 1e6 }')" "$flush" "$(column "$mode" 7 | sort -u | paste -sd' ')"
}
printf '\n%d pin records (%.0f bytes each, %.1f MB), %d partitions, maxRecords %d; median of %d runs (release build)\n\n' \
  "$count" "$(awk -v b="$payload_bytes" -v n="$count" 'BEGIN { print b / n }')" \
  "$(awk -v b="$payload_bytes" 'BEGIN { print b / 1e6 }')" "$partitions" "$max_records" "$runs"
printf '| mode | records/s | MB/s | peak RSS (MiB) | CPU s | ratio to raw | ratio to floor | goal | seconds (runs) |\n|---|---|---|---|---|---|---|---|---|\n'
row raw "raw rdkafka consume" "–"
row floor "floor: raw consume + upload as is" "–"
row json "sink → S3, JSON lines" goal
row zstd "sink → S3, JSON lines (Zstd)" "–"
row parquet "sink → S3, Parquet (Snappy)" "–"
echo
details json "JSON lines"
details zstd "JSON lines (Zstd)"
details parquet "Parquet"
