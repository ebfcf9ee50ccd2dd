#!/usr/bin/env bash
# Checks of the Helm chart, the Dockerfile and the kind end-to-end path (scripts/kind-e2e.sh,
# which needs Docker and so cannot run here). One step of scripts/test.sh; runs alone too:
#
#   1. the chart's CRDs are the generated ones, its appVersion the workspace's version;
#   2. helm lint --strict, and helm template for each value set (defaults and
#      charts/tributary/ci/*-values.yaml), each rendering validated against the Kubernetes
#      1.30 schemas (kubernetes-validate --strict) and by scripts/chart/check_manifests.py
#      (locked-down pods, least-privilege RBAC, the Prometheus Operator kinds);
#   3. every values file of charts/tributary/ci/invalid/ fails helm template with the message
#      its "# expect:" line names (values.schema.json at work);
#   4. hadolint on the Dockerfiles, shellcheck on scripts/kind-e2e.sh;
#   5. every manifest scripts/kind-e2e.sh applies: its own (scripts/kind/) against the schemas,
#      the Tributary objects with `tributary validate`;
#   6. against the local kube-apiserver (KUBECONFIG, from scripts/stack.sh env): the default
#      and the namespaced renderings with kubectl apply --dry-run=server, then a real
#      helm install (namespaces mode, in a scratch namespace, without CRDs) and uninstall.
#
# The RBAC of the namespaced rendering is evaluated offline against scripts/chart/access.txt
# (what the controllers call must be allowed, the rest denied): the local API server runs with
# AlwaysAllow, so `kubectl auth can-i` there would say yes to everything.
#
# Tools come from scripts/chart-tools.sh (cached). TRIBUTARY_BIN: a built `tributary` to use
# instead of `cargo run`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export TRIBUTARY_CACHE=${TRIBUTARY_CACHE:-$HOME/.cache/tributary}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$TRIBUTARY_CACHE/target}

chart=charts/tributary
started=$(date +%s)
passed=0
failed=0
say() { printf '[chart-check] %s\n' "$*"; }
ok() { passed=$((passed + 1)); say "ok: $*"; }
fail() { failed=$((failed + 1)); say "FAILED: $*" >&2; }
# check WHAT CMD...: run CMD, counting it as one passed or failed check.
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}

tools=$(scripts/chart-tools.sh)
helm="$tools/helm"
kubectl="$tools/kubectl"
validate="$tools/kubernetes-validate"
python="$tools/python"
say "tools ready ($(($(date +%s) - started)) s)"

work=$(mktemp -d)
scratch_ns=""
release=""
cleanup() {
  if [ -n "$release" ]; then
    "$helm" uninstall "$release" --namespace "$scratch_ns" --wait --timeout 60s >/dev/null 2>&1 || true
  fi
  if [ -n "$scratch_ns" ]; then
    "$kubectl" delete namespace "$scratch_ns" --wait=false >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

tributary() {
  if [ -n "${TRIBUTARY_BIN:-}" ]; then
    "$TRIBUTARY_BIN" "$@"
  else
    cargo run --quiet --locked -p tributary -- "$@"
  fi
}

# --- 1. generated files and versions -----------------------------------------------------
check "chart CRDs are identical to crds/yaml/" diff -r crds/yaml "$chart/crds"
workspace_version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
app_version=$(sed -n 's/^appVersion: "\(.*\)"/\1/p' "$chart/Chart.yaml")
check "appVersion $app_version is the workspace version $workspace_version" \
  test "$app_version" = "$workspace_version"

# --- 2. lint, render, validate -----------------------------------------------------------
value_sets=(default)
for f in "$chart"/ci/*-values.yaml; do value_sets+=("$(basename "$f" -values.yaml)"); done

render() { # render SET OUT [helm args...]
  local set=$1 out=$2
  shift 2
  local -a values=()
  [ "$set" = default ] || values=(-f "$chart/ci/$set-values.yaml")
  "$helm" template tributary "$chart" --namespace tributary-system "${values[@]}" "$@" >"$out"
}

for set in "${value_sets[@]}"; do
  args=()
  [ "$set" = default ] || args=(-f "$chart/ci/$set-values.yaml")
  check "helm lint --strict ($set)" "$helm" lint --strict --quiet "$chart" "${args[@]}"
  if ! render "$set" "$work/$set.yaml"; then
    fail "helm template ($set)"
    continue
  fi
  ok "helm template ($set): $(grep -c '^kind:' "$work/$set.yaml") objects"
  check "Kubernetes 1.30 schemas ($set)" \
    "$validate" --kubernetes-version 1.30.0 --strict --quiet --no-warn "$work/$set.yaml"
  mode=()
  # The namespaced value set is the one scripts/chart/access.txt is written for.
  [ "$set" = namespaced ] && mode=(--namespaced --access scripts/chart/access.txt)
  check "pod security, RBAC and monitor kinds ($set)" \
    "$python" scripts/chart/check_manifests.py "${mode[@]}" "$work/$set.yaml"
done

# The checker itself catches what it is there for.
cat >"$work/too-much.yaml" <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: too-much}
rules:
  - {apiGroups: [""], resources: [secrets], verbs: [get, list]}
  - {apiGroups: ["*"], resources: ["*"], verbs: ["*"]}
EOF
refuses() { ! "$@" >/dev/null; }
check "check_manifests.py refuses wildcard and Secret-listing RBAC" \
  refuses "$python" scripts/chart/check_manifests.py "$work/too-much.yaml"

# --- 3. bad values fail with the schema's message ----------------------------------------
for f in "$chart"/ci/invalid/*.yaml; do
  expect=$(sed -n 's/^# expect: //p' "$f")
  if "$helm" template tributary "$chart" -f "$f" >"$work/out" 2>"$work/err"; then
    fail "$(basename "$f"): helm template accepted it"
  elif grep -qF -- "$expect" "$work/err"; then
    ok "$(basename "$f") refused: $(grep -F -- "$expect" "$work/err" | head -n 1 | sed 's/^- //')"
  else
    fail "$(basename "$f"): refused without '$expect': $(cat "$work/err")"
  fi
done

# --- 4. Dockerfiles and the e2e script ----------------------------------------------------
check "hadolint Dockerfile" "$tools/hadolint" Dockerfile
check "hadolint scripts/kind/e2e.Dockerfile" "$tools/hadolint" scripts/kind/e2e.Dockerfile
check "shellcheck scripts/kind-e2e.sh" shellcheck -x scripts/kind-e2e.sh

# --- 5. what kind-e2e.sh applies ----------------------------------------------------------
kind_third_party=(scripts/kind/cluster.yaml scripts/kind/kafka.yaml scripts/kind/localstack.yaml)
check "scripts/kind manifests against the Kubernetes 1.30 schemas" \
  "$validate" --kubernetes-version 1.30.0 --strict --quiet --no-warn "${kind_third_party[@]}"
check "scripts/kind kind config and manifests (fields)" \
  "$python" scripts/chart/check_manifests.py --third-party "${kind_third_party[@]}"
check "tributary validate: scripts/kind/pinterest*.yaml and examples/pinterest/" \
  tributary validate scripts/kind/pinterest.yaml scripts/kind/pinterest-show.yaml examples/pinterest

# --- 6. against the local API server ------------------------------------------------------
if [ -z "${KUBECONFIG:-}" ]; then
  eval "$(scripts/stack.sh env kube)"
fi
if ! "$kubectl" get --raw /readyz >/dev/null 2>&1; then
  fail "no API server at KUBECONFIG=$KUBECONFIG (start it: scripts/stack.sh up kube)"
else
  render default "$work/dry-default.yaml" --namespace default
  check "kubectl apply --dry-run=server (defaults)" \
    "$kubectl" apply --dry-run=server -f "$work/dry-default.yaml" -o name
  render namespaced "$work/dry-namespaced.yaml" --namespace default \
    --set 'watch.namespaces={default}' --set 'workers.serviceAccount.namespaces={default}'
  check "kubectl apply --dry-run=server (namespaced, gateway)" \
    "$kubectl" apply --dry-run=server -f "$work/dry-namespaced.yaml" -o name

  scratch_ns="tributary-chart-check-$$"
  release="cc$$"
  if "$helm" install "$release" "$chart" --namespace "$scratch_ns" --create-namespace --skip-crds \
    --set watch.mode=namespaces --set gateway.enabled=true \
    --set gateway.bootstrapServers=kafka.invalid:9092 --set workers.serviceAccount.create=true \
    >"$work/install.log" 2>&1; then
    ok "helm install into $scratch_ns (namespaces mode, no CRDs)"
    # The local API server authorizes everything (no RBAC), so this shows that the objects
    # install, not what they allow: scripts/chart/access.txt checks that, above.
    expected="deployment.apps/$release-tributary-operator deployment.apps/$release-tributary-gateway"
    expected+=" role.rbac.authorization.k8s.io/$release-tributary-operator"
    expected+=" serviceaccount/$release-tributary-worker"
    # shellcheck disable=SC2086 # a list of names
    check "the release's objects exist in $scratch_ns" \
      "$kubectl" get --namespace "$scratch_ns" $expected -o name
    check "helm uninstall" "$helm" uninstall "$release" --namespace "$scratch_ns" --wait --timeout 60s
    release=""
  else
    fail "helm install into $scratch_ns: $(tail -n 5 "$work/install.log")"
  fi
fi

say "$passed passed, $failed failed in $(($(date +%s) - started)) s"
echo "chart-check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
