#!/usr/bin/env bash
# The batch worker against DuckDB: the two Pinterest BatchJobs of examples/pinterest/ (clean the
# raw JSON lines into Parquet, then the eight aggregations) on the emulator's posts, run by
# `tributary worker batch` (DataFusion) and by DuckDB (bench/batch_duckdb.py, the same SQL in
# DuckDB's dialect), and by PySpark in local[2] when it installs and starts. Wall-clock seconds
# and peak RSS of each job, medians of the runs, and the ratio to DuckDB; every run checks that
# the engines wrote the same rows (release build).
#
# usage: bench/batch.sh [posts=1000000] [runs=3]     (needs python3 with venv, GNU time, PyPI)
#        BENCH_SPARK=0 bench/batch.sh ...             (without PySpark: ~2 minutes less a run)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
posts=${1:-1000000}
runs=${2:-3}
seed=1
goal=1.5
scheduled=2026-11-28T01:00:00Z
export TRIBUTARY_CACHE=${TRIBUTARY_CACHE:-$HOME/.cache/tributary}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$TRIBUTARY_CACHE/target}
[ -x /usr/bin/time ] || { echo "bench/batch.sh needs GNU time (apt-get install time)" >&2; exit 1; }

# DuckDB (and PyYAML for the configurations) in a venv of the cache; PySpark is tried below.
venv=$TRIBUTARY_CACHE/bench-venv
py=$venv/bin/python
if ! "$py" -c 'import duckdb, yaml' 2>/dev/null; then
  echo "installing duckdb and pyyaml into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q duckdb pyyaml >&2
fi
cargo build --release --locked -q -p tributary
bin="$CARGO_TARGET_DIR/release/tributary"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The emulator's posts, generated for this invocation (1,000,000 posts take ≈ 2 s and 0.76 GB).
data=$work/data
echo "generating $posts posts (seed $seed)" >&2
"$bin" emulate --out "$data" --count "$posts" --seed "$seed" >&2
records() { cat "$data/$1"/*.json | wc -l; }
pin_records=$(records pin); geo_records=$(records geo); user_records=$(records user)
input_bytes=$(cat "$data"/{pin,geo,user}/*.json | wc -c)
input_files=$(find "$data"/pin "$data"/geo "$data"/user -name '*.json' | wc -l)
fail() { echo "$*" >&2; exit 1; }

# Every summary line of $1 (JSON lines {"step", "rows", "url"}) has rows > 0, and there are $2.
check_rows() {
  "$py" - "$1" "$2" <<'PY' || fail "$3 wrote an empty or missing output: $(cat "$1")"
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
sys.exit(0 if len(lines) == int(sys.argv[2]) and all(s["rows"] > 0 for s in lines) else 1)
PY
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# Each job prints: wall-clock seconds, peak RSS (MiB), CPU seconds (user + system: less
# sensitive than wall clock to other work on the machine), and a fourth number of its own.

# One worker job ($1 run dir, $2 job: clean, aggregate); the fourth number is the run's seconds
# as the worker logs them.
worker_job() {
  local dir=$1 job=$2 outputs started ended
  "$py" bench/batch_duckdb.py config "examples/pinterest/batch-$job.yaml" "$data" "$dir" >"$dir/$job.json"
  outputs=$("$py" -c 'import json, sys; print(sum("output" in s for s in json.load(open(sys.argv[1]))["steps"]))' "$dir/$job.json")
  started=$(now)
  RUST_LOG=info /usr/bin/time -f '%M %U %S' -o "$dir/$job.time" \
    "$bin" worker batch --config-file "$dir/$job.json" --scheduled-time "$scheduled" --log-json \
    >"$dir/$job.out" 2>"$dir/$job.log" || { cat "$dir/$job.log" >&2; fail "the worker's $job job failed"; }
  ended=$(now)
  check_rows "$dir/$job.out" "$outputs" "the worker's $job job"
  # Per-step seconds from the log, for the details below the table.
  "$py" -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        event = json.loads(line)
    except ValueError:
        continue
    fields = event.get("fields", {})
    if fields.get("message") == "output written":
        print(fields["step"], fields["seconds"])
    elif fields.get("message") == "run finished":
        print("run", fields["seconds"])
' "$dir/$job.log" >"$dir/$job.steps"
  grep -v '^run ' "$dir/$job.steps" >>"$work/worker-steps"
  awk -v s="$(elapsed "$started" "$ended")" -v run="$(awk '$1 == "run" { print $2 }' "$dir/$job.steps")" \
    '{ printf "%s %d %.2f %.3f\n", s, $1 / 1024, $2 + $3, run }' "$dir/$job.time"
}

# One DuckDB job in a fresh process (the wall clock and CPU of the process, as for the worker;
# the peak from the process's own getrusage); the fourth number is the job's seconds inside
# the process, without starting Python and importing duckdb.
duckdb_job() {
  local dir=$1 job=$2 started ended inner peak
  shift 2
  started=$(now)
  /usr/bin/time -f '%U %S' -o "$dir/$job.time" \
    "$py" bench/batch_duckdb.py "$job" "$@" >"$dir/$job.result" 2>"$dir/$job.out" ||
    { cat "$dir/$job.out" >&2; fail "DuckDB's $job job failed"; }
  ended=$(now)
  read -r inner peak <"$dir/$job.result"
  check_rows "$dir/$job.out" "$([ "$job" = clean ] && echo 3 || echo 9)" "DuckDB's $job job"
  awk -v s="$(elapsed "$started" "$ended")" -v peak="$peak" -v inner="$inner" \
    '{ printf "%s %d %.2f %s\n", s, peak / 1024, $1 + $2, inner }' "$dir/$job.time"
}

# One PySpark job in a fresh process: the job's seconds and CPU seconds after the session
# started, peak RSS (MiB, Python's and the JVM's); the fourth number is the session start's
# seconds.
spark_job() {
  local dir=$1 job=$2 start seconds peak cpu
  shift 2
  "$py" bench/batch_spark.py "$job" "$@" >"$dir/spark-$job.result" 2>"$dir/spark-$job.out" ||
    { tail -30 "$dir/spark-$job.out" >&2; fail "PySpark's $job job failed"; }
  read -r start seconds peak cpu <"$dir/spark-$job.result"
  grep '^{' "$dir/spark-$job.out" >"$dir/spark-$job.summary" || true
  check_rows "$dir/spark-$job.summary" "$([ "$job" = clean ] && echo 3 || echo 9)" "PySpark's $job job"
  printf '%s %d %s %s\n' "$seconds" "$((peak / 1024))" "$cpu" "$start"
}

# PySpark is optional: it must install (it is large) and start a local session in 3 minutes.
spark_reason=''
if [ "${BENCH_SPARK:-1}" = 0 ]; then
  spark_reason="BENCH_SPARK=0"
elif ! "$py" -c 'import pyspark' 2>/dev/null; then
  echo "installing pyspark into $venv (optional)" >&2
  timeout 900 "$venv/bin/pip" install -q pyspark >&2 || spark_reason="pip install pyspark failed"
fi
if [ -z "$spark_reason" ]; then
  command -v java >/dev/null || spark_reason="no java on PATH"
fi
if [ -z "$spark_reason" ]; then
  echo "starting a local Spark session" >&2
  if ! timeout 180 "$py" bench/batch_spark.py start >"$work/spark-start" 2>"$work/spark-start.log"; then
    spark_reason="a local session did not start in 180 s: $(grep -m1 -iE 'error|exception' "$work/spark-start.log" || tail -1 "$work/spark-start.log")"
  fi
fi

for r in $(seq 1 "$runs"); do
  w="$work/worker-$r" d="$work/duckdb-$r" s="$work/spark-$r"
  mkdir -p "$w" "$d" "$s"
  echo "run $r/$runs: worker clean, aggregate" >&2
  worker_job "$w" clean >>"$work/worker-clean"
  worker_job "$w" aggregate >>"$work/worker-aggregate"
  echo "run $r/$runs: DuckDB clean, aggregate" >&2
  duckdb_job "$d" clean "$data" "$d" >>"$work/duckdb-clean"
  duckdb_job "$d" aggregate "$d" >>"$work/duckdb-aggregate"
  echo "run $r/$runs: comparing the worker's tables with DuckDB's" >&2
  "$py" bench/batch_duckdb.py compare "$d" "$w/lake" || fail "run $r: the worker and DuckDB disagree"
  if [ -z "$spark_reason" ]; then
    echo "run $r/$runs: PySpark clean, aggregate" >&2
    spark_job "$s" clean "$data" "$s" >>"$work/spark-clean"
    spark_job "$s" aggregate "$s" >>"$work/spark-aggregate"
    "$py" bench/batch_duckdb.py compare "$d" "$s" || fail "run $r: PySpark and DuckDB disagree"
  fi
  if [ "$r" = 1 ]; then
    cp "$w/clean.out" "$work/clean-rows"
    cp "$w/aggregate.out" "$work/aggregate-rows"
  fi
  # The input stays; the lakes of a run go (a million posts write ~0.3 GB per engine).
  rm -rf "$w/lake" "$d/clean" "$d/results" "$s/clean" "$s/results"
done

# Totals: a run's clean + aggregate seconds and CPU seconds, the larger of the two peaks.
for engine in worker duckdb spark; do
  [ -s "$work/$engine-clean" ] || continue
  paste -d' ' "$work/$engine-clean" "$work/$engine-aggregate" |
    awk '{ printf "%.3f %d %.2f %.3f\n", $1 + $5, ($2 > $6) ? $2 : $6, $3 + $7, $4 + $8 }' >"$work/$engine-total"
done

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
column() { awk -v c="$2" '{ print $c }' "$work/$1"; }
med() { local -a v; mapfile -t v < <(column "$1" "$2"); median "${v[@]}"; }
row() {
  local engine=$1 job=$2 label=$3 secs peak ratio goal_text='–'
  secs=$(med "$engine-$job" 1)
  peak=$(printf '%.0f' "$(med "$engine-$job" 2)")
  ratio=$(awk -v a="$secs" -v b="$(med "duckdb-$job" 1)" 'BEGIN { printf "%.2f", a / b }')
  if [ "$engine" = worker ] && [ "$job" != clean ]; then
    goal_text="≤ $goal: $(awk -v r="$ratio" -v g="$goal" 'BEGIN { print (r <= g) ? "met" : "**not met**" }')"
  fi
  printf '| %s | %s | %.2f | %s | %.1f | %s | %s | %s |\n' "$label" "$job" "$secs" \
    "$(column "$engine-$job" 1 | paste -sd, | sed 's/,/, /g')" "$(med "$engine-$job" 3)" "$peak" "$ratio" "$goal_text"
}
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
thousands() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }

printf '\n%s posts: %s records (pin %s, geo %s, user %s), %s MB of JSON lines in %d files; median of %d runs (release build; DuckDB %s)\n\n' \
  "$(thousands "$posts")" "$(thousands $((pin_records + geo_records + user_records)))" \
  "$(thousands "$pin_records")" "$(thousands "$geo_records")" "$(thousands "$user_records")" \
  "$(mb "$input_bytes")" "$input_files" "$runs" "$("$py" -c 'import duckdb; print(duckdb.__version__)')"
printf '| engine | job | median s | seconds (runs) | CPU s | peak RSS (MiB) | ratio to DuckDB | goal |\n|---|---|---|---|---|---|---|---|\n'
for job in clean aggregate total; do row worker "$job" "tributary worker batch (DataFusion)"; done
for job in clean aggregate total; do row duckdb "$job" "DuckDB (Python)"; done
if [ -z "$spark_reason" ]; then
  for job in clean aggregate total; do row spark "$job" "PySpark local[2]"; done
fi
echo
printf -- '- rows written by the worker (run 1): %s\n' "$("$py" - "$work/clean-rows" "$work/aggregate-rows" <<'PY'
import json, sys
print(", ".join(f"{s['step']} {s['rows']:,}" for f in sys.argv[1:] for s in map(json.loads, open(f))))
PY
)"
printf -- '- worker seconds per output step (median; a step includes the views it reads): %s\n' \
  "$(awk '{ s[$1] = s[$1] " " $2; if (!($1 in o)) { o[$1] = n++ } } END { for (k in s) print o[k], k, s[k] }' "$work/worker-steps" |
    sort -n | while read -r _ step values; do
      # shellcheck disable=SC2086
      printf '%s %.2f, ' "$step" "$(median $values)"
    done | sed 's/, $//')"
printf -- '- seconds inside the process (median): the worker (its log) clean %.2f, aggregate %.2f; DuckDB (without starting Python and importing duckdb) clean %.2f, aggregate %.2f\n' \
  "$(med worker-clean 4)" "$(med worker-aggregate 4)" "$(med duckdb-clean 4)" "$(med duckdb-aggregate 4)"
if [ -z "$spark_reason" ]; then
  printf -- '- PySpark: seconds are the jobs after the session started; a session start (a fresh JVM per job) took a further %.1f s (median)\n' \
    "$(cat "$work/spark-clean" "$work/spark-aggregate" | awk '{ print $4 }' | sort -g |
      awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')"
else
  printf -- '- PySpark: not run (%s)\n' "$spark_reason"
fi
printf -- "- every run: the worker's%s cleaned and result tables hold the same rows as DuckDB's (medians to 1e-9 relative)\n" \
  "$([ -z "$spark_reason" ] && echo " and PySpark's")"
