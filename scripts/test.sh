#!/usr/bin/env bash
# THE test command (named in the README, called by .ci/run): format, lint, generated files,
# unit tests, then the integration tests against the real local stack, which it starts and stops.
#
# Caches live outside the clone, under $TRIBUTARY_CACHE (default ~/.cache/tributary): the cargo
# target directory and everything scripts/stack.sh installs. TRIBUTARY_KEEP_STACK=1 leaves the
# stack running afterwards.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export TRIBUTARY_CACHE=${TRIBUTARY_CACHE:-$HOME/.cache/tributary}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$TRIBUTARY_CACHE/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

started=$(date +%s)
step() { printf '\n==> %s (%ss)\n' "$1" "$(($(date +%s) - started))"; }
results=$(mktemp)
# Run a test command, keeping its "test result:" lines for the summary at the end.
run_tests() { "$@" 2>&1 | tee -a "$results"; }

step "Debian packages for the build"
scripts/deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "shellcheck"
shellcheck -x scripts/*.sh scripts/stack/*.sh bench/*.sh .ci/run

step "clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "generated CRD YAML, chart CRDs and API reference are in sync with the Rust types"
cargo run --quiet --locked -p tributary -- crds --dir crds/yaml
cargo run --quiet --locked -p tributary -- crds --dir charts/tributary/crds
cargo run --quiet --locked -p tributary -- crd-docs --dir docs/reference
if [ -d .git ] && ! git diff --exit-code --stat -- crds/yaml charts/tributary/crds docs/reference; then
  echo "generated files differ from the Rust types: run 'cargo run -p tributary -- crds --dir crds/yaml'," \
    "'... crds --dir charts/tributary/crds' and '... crd-docs --dir docs/reference', and commit" >&2
  exit 1
fi
if [ -d .git ] && [ -n "$(git status --porcelain -- charts/tributary/crds docs/reference)" ]; then
  echo "generated files not committed under charts/tributary/crds or docs/reference:" >&2
  git status --porcelain -- charts/tributary/crds docs/reference >&2
  exit 1
fi

step "unit tests"
run_tests cargo test --workspace --locked --exclude tributary-tests

step "fuzz the gateway's request parsing"
scripts/fuzz.sh "${TRIBUTARY_FUZZ_SECONDS:-30}"

step "start the local stack"
if [ "${TRIBUTARY_KEEP_STACK:-0}" != 1 ]; then
  trap 'scripts/stack.sh down' EXIT
fi
scripts/stack.sh up
eval "$(scripts/stack.sh env)"

step "Helm chart, Dockerfile and kind manifests"
scripts/chart-check.sh

step "integration tests against the local stack"
run_tests cargo test --locked -p tributary-tests

step "done"
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$results"
rm -f "$results"
