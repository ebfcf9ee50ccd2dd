#!/usr/bin/env bash
# Scale check of the Topic controller: N Topics applied at once to the local stack's API server
# and broker; time until every one is Ready, and the operator's resident memory (peak while
# converging, and idle afterwards). Release build. Prints a table with the goal beside each
# number and the ratio to it.
#
# usage: bench/topics.sh [N=1000] [runs=3]     (needs scripts/stack.sh up kube kafka)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
count=${1:-1000}
runs=${2:-3}
export TRIBUTARY_CACHE=${TRIBUTARY_CACHE:-$HOME/.cache/tributary}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$TRIBUTARY_CACHE/target}
scripts/stack.sh up kube kafka >&2
eval "$(scripts/stack.sh env kube kafka)"
command -v kubectl >/dev/null || { echo "bench/topics.sh needs kubectl" >&2; exit 1; }
cargo build --release --locked -q -p tributary
bin="$CARGO_TARGET_DIR/release/tributary"
work=$(mktemp -d)
trap 'kill "$(cat "$work/pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT

rss_kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }

one_run() {
  local run=$1 ns="bench-topics-$$-$1" started ready=0 elapsed pid peak idle
  kubectl create namespace "$ns" >/dev/null
  "$bin" operator --namespace "$ns" --http-addr 127.0.0.1:0 --install-crds --lease-namespace "$ns" \
    >"$work/operator-$run.log" 2>&1 &
  pid=$!
  echo "$pid" >"$work/pid"
  kubectl -n "$ns" create --validate=false -f - >/dev/null <<YAML
apiVersion: tributary.dev/v1alpha1
kind: KafkaCluster
metadata: {name: local}
spec:
  external: {bootstrapServers: ["$TRIBUTARY_KAFKA_BOOTSTRAP"]}
YAML
  until [ "$(kubectl -n "$ns" get kc local -o jsonpath='{.status.conditions[0].status}' 2>/dev/null)" = True ]; do sleep 0.2; done
  for i in $(seq 1 "$count"); do
    printf 'apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata: {name: t%05d}\n' "$i"
    printf 'spec: {clusterRef: {name: local}, topicName: %s-t%05d, partitions: 1, deletionPolicy: Delete}\n---\n' "$ns" "$i"
  done >"$work/topics.yaml"
  started=$(date +%s.%N)
  kubectl -n "$ns" create --validate=false -f "$work/topics.yaml" >/dev/null
  while [ "$ready" -lt "$count" ]; do
    sleep 0.5
    ready=$(kubectl -n "$ns" get tt -o jsonpath='{range .items[*]}{.status.conditions[0].status}{"\n"}{end}' | grep -c True || true)
  done
  elapsed=$(echo "$(date +%s.%N) - $started" | bc)
  peak=$(rss_kib "$pid" VmHWM)
  sleep 10
  idle=$(rss_kib "$pid" VmRSS)
  printf '%s %s %s\n' "$elapsed" "$((peak / 1024))" "$((idle / 1024))"
  kubectl delete namespace "$ns" --wait=false >/dev/null
  # Let the operator delete the Kafka topics (deletionPolicy: Delete) before it stops.
  until ! kubectl get namespace "$ns" >/dev/null 2>&1; do sleep 1; done
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

results=()
for r in $(seq 1 "$runs"); do
  echo "run $r/$runs: $count Topics" >&2
  results+=("$(one_run "$r")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
mapfile -t s < <(printf '%s\n' "${results[@]}" | awk '{print $1}')
mapfile -t p < <(printf '%s\n' "${results[@]}" | awk '{print $2}')
mapfile -t i < <(printf '%s\n' "${results[@]}" | awk '{print $3}')
secs=$(median "${s[@]}"); peak=$(median "${p[@]}"); idle=$(median "${i[@]}")
printf '\n%d Topics applied at once, median of %d runs (release build)\n\n' "$count" "$runs"
printf '| metric | median | runs | goal | ratio to goal |\n|---|---|---|---|---|\n'
printf '| seconds until all Ready | %.1f | %s | 60 | %.2f |\n' "$secs" "${s[*]}" "$(echo "$secs / 60" | bc -l)"
printf '| peak RSS while converging (MiB) | %s | %s | – | – |\n' "$peak" "${p[*]}"
printf '| idle RSS after (MiB) | %s | %s | 40 | %.2f |\n' "$idle" "${i[*]}" "$(echo "$idle / 40" | bc -l)"
