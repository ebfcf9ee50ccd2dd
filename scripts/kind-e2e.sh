#!/usr/bin/env bash
# End to end on kind, for machines with a Docker engine (not the CI machines: see
# docs/install.md, which also says what CI checks of this script instead):
#
#   1. a kind cluster, with LocalStack (S3, Kinesis) and a single-node Apache Kafka in it;
#   2. the image built from the Dockerfile and loaded into the cluster;
#   3. `helm install` of charts/tributary with charts/tributary/ci/localstack-values.yaml;
#   4. the Pinterest pipeline: examples/pinterest/ (KafkaCluster, Topics, Streams, Sinks into
#      s3://pinterest-lake/, BatchJobs), with scripts/kind/pinterest.yaml pointing the
#      KafkaCluster at the in-cluster broker (the Sinks of the Streams stay idle and report no
#      lag: sinks_caught_up reads the lag of the Topic Sinks);
#   5. the emulator's posts through the gateway, the Sinks' objects in S3, one run of each
#      BatchJob (a backfill of yesterday), and the result tables printed;
#   6. the cluster deleted, also on failure (TRIBUTARY_KEEP_CLUSTER=1 keeps it).
#
# Needs docker, kind, kubectl and helm on PATH. usage: scripts/kind-e2e.sh [POSTS] (default 2000)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

cluster=${TRIBUTARY_KIND_CLUSTER:-tributary-e2e}
posts=${1:-2000}
system_ns=tributary-system
demo_ns=pinterest
image=tributary:e2e
context="kind-$cluster"

log() { printf '\n[kind-e2e] %s\n' "$*" >&2; }
die() { printf '[kind-e2e] error: %s\n' "$*" >&2; exit 1; }
k() { kubectl --context "$context" "$@"; }

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not on PATH (this script needs a Docker engine, kind, kubectl and helm)"
done
docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed)"

cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    log "failed; what the operator said last:"
    k -n "$system_ns" logs deployment/tributary-operator --tail=40 2>/dev/null || true
    k -n "$demo_ns" get kafkaclusters,topics,sinks,batchjobs 2>/dev/null || true
  fi
  if [ "${TRIBUTARY_KEEP_CLUSTER:-0}" = 1 ]; then
    log "keeping the cluster: kind delete cluster --name $cluster"
  else
    log "deleting the kind cluster $cluster"
    kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
  fi
}

# poll SECONDS WHAT CMD...: run CMD every 5 s until it succeeds, for at most SECONDS.
poll() {
  local secs=$1 what=$2 waited=0
  shift 2
  until "$@"; do
    [ "$waited" -lt "$secs" ] || die "$what: not within ${secs}s"
    sleep 5
    waited=$((waited + 5))
  done
}

# s3 ARGS...: the AWS CLI against LocalStack, from the pod in the cluster.
s3() { k -n localstack exec aws-cli -- aws s3 "$@"; }

# has_objects PREFIX: true when s3://pinterest-lake/PREFIX holds at least one object.
has_objects() { [ -n "$(s3 ls --recursive "s3://pinterest-lake/$1" 2>/dev/null)" ]; }

# sinks_caught_up: every Sink that reports a lag (a Topic Sink; a Stream Sink has none) is at 0.
sinks_caught_up() {
  local lags
  lags=$(k -n "$demo_ns" get sinks -o jsonpath='{range .items[*]}{.status.lag}{" "}{end}')
  [ -n "${lags// /}" ] && [ -z "$(printf '%s' "$lags" | tr -d ' 0')" ]
}

# backfill_done NAME: true once the BatchJob's backfill finished; fails the script if a run failed.
backfill_done() {
  local progress total completed failed
  progress=$(k -n "$demo_ns" get batchjob "$1" \
    -o jsonpath='{.status.backfill.total} {.status.backfill.completed} {.status.backfill.failed}')
  read -r total completed failed <<<"$progress"
  [ -n "${total:-}" ] && [ "${total:-0}" -gt 0 ] && [ "${completed:-0}" -ge "$total" ] || return 1
  if [ "${failed:-0}" -gt 0 ]; then
    k -n "$demo_ns" get batchjob "$1" -o jsonpath='{.status.history[0].message}{"\n"}' >&2
    die "BatchJob $1: $failed run(s) failed"
  fi
}

# run_once NAME DAY: one run of BatchJob NAME, for DAY's scheduled time, by a backfill request.
run_once() {
  local patch
  patch=$(printf '{"spec":{"backfill":{"from":"%s","to":"%s","id":"kind-e2e-%s"}}}' "$2" "$2" "$(date +%s)")
  k -n "$demo_ns" patch batchjob "$1" --type merge -p "$patch" >/dev/null
  poll 600 "a run of BatchJob $1" backfill_done "$1"
  k -n "$demo_ns" get batchjob "$1" \
    -o jsonpath='{range .status.history[0].outputs[*]}{"  "}{.step}{": "}{.rows}{" rows\n"}{end}'
}

trap cleanup EXIT

log "creating the kind cluster $cluster"
kind create cluster --name "$cluster" --config scripts/kind/cluster.yaml --wait 180s

log "building the image (Dockerfile) and loading it into the cluster"
docker build -t tributary:dev .
docker build -t "$image" --build-arg BASE=tributary:dev -f scripts/kind/e2e.Dockerfile scripts/kind
kind load docker-image "$image" --name "$cluster"

log "starting Kafka and LocalStack in the cluster"
k apply -f scripts/kind/kafka.yaml -f scripts/kind/localstack.yaml
k -n kafka rollout status deployment/kafka --timeout=300s
k -n localstack rollout status deployment/localstack --timeout=300s
k -n localstack wait --for=condition=Ready pod/aws-cli --timeout=300s

log "installing the chart"
k create namespace "$demo_ns"
helm --kube-context "$context" install tributary charts/tributary \
  --namespace "$system_ns" --create-namespace \
  -f charts/tributary/ci/localstack-values.yaml --wait --timeout 5m

log "applying the Pinterest pipeline"
k -n "$demo_ns" apply -f examples/pinterest/ -f scripts/kind/pinterest-show.yaml
k -n "$demo_ns" apply -f scripts/kind/pinterest.yaml
k -n "$demo_ns" wait --for=condition=Ready kafkacluster/pinterest topic --all --timeout=180s
k -n "$demo_ns" wait --for=condition=Ready sink --all --timeout=300s
k -n "$system_ns" rollout status deployment/tributary-gateway --timeout=180s

log "sending $posts posts through the gateway (the emulator, in the cluster)"
k -n "$system_ns" run emulate --image="$image" --image-pull-policy=Never --restart=Never -- \
  emulate --gateway "http://tributary-gateway.$system_ns.svc:8080" --count "$posts"
k -n "$system_ns" wait --for=jsonpath='{.status.phase}'=Succeeded pod/emulate --timeout=600s
k -n "$system_ns" logs pod/emulate | tail -n 3

log "waiting for the Sinks' objects in S3"
for table in pin geo user; do
  poll 300 "objects under raw/$table/" has_objects "raw/$table/"
done
poll 300 "the Sinks to catch up (lag 0)" sinks_caught_up
s3 ls --recursive --summarize s3://pinterest-lake/raw/ | tail -n 2

# Yesterday's scheduled times have all passed, whatever the time of day: one run each.
day=$(date -u -d yesterday +%F 2>/dev/null || date -u -v-1d +%F)
log "running the BatchJobs for $day"
for job in pinterest-clean pinterest-aggregate pinterest-show; do
  echo "$job:"
  run_once "$job" "$day"
done

log "the pipeline's objects"
k -n "$demo_ns" get kafkaclusters,topics,sinks,batchjobs

log "the result tables"
for prefix in $(s3 ls s3://pinterest-lake/show/ | awk '{print $2}'); do
  printf '\n== %s\n' "${prefix%/}"
  for key in $(s3 ls --recursive "s3://pinterest-lake/show/$prefix" | awk '{print $4}'); do
    s3 cp "s3://pinterest-lake/$key" -
  done
done
log "passed"
