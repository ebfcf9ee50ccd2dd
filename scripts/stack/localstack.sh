# shellcheck shell=bash
# LocalStack (S3 and Kinesis) without Docker, for scripts/stack.sh (which sources lib.sh first).
#
# LocalStack runs on the host from the PyPI package localstack-core, in a Python 3.13 venv under
# $TRIBUTARY_CACHE/localstack/venv, pinned by localstack-requirements.txt beside this file. Its
# Kinesis engine, the npm package kinesis-local, is installed ahead of time by LocalStack's own
# package manager into $TRIBUTARY_CACHE/localstack/root (LocalStack's FILESYSTEM_ROOT), so nothing
# is fetched at run time (npm and pip are even told to stay offline while it runs).
# State is not persisted: every start begins empty (LocalStack clears root/tmp on start and stop).
# See docs/decisions/0003-localstack-without-docker.md.
#
# Clients: endpoint http://127.0.0.1:4566 for both services, region us-east-1, any credentials
# (test/test), S3 with path-style addressing. `localstack_env` prints the variables.
#
# This file only defines functions.

# Where everything lives; computed on use so that TRIBUTARY_CACHE can change between calls.
_localstack_dir() { printf '%s/localstack' "${TRIBUTARY_CACHE:?}"; }
_localstack_venv() { printf '%s/venv' "$(_localstack_dir)"; }
_localstack_root() { printf '%s/root' "$(_localstack_dir)"; }
_localstack_stamp() { printf '%s/installed.stamp' "$(_localstack_dir)"; }
_localstack_launcher() { printf '%s/launch.py' "$(_localstack_dir)"; }
_localstack_requirements() {
  printf '%s/localstack-requirements.txt' "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
}
_localstack_port() { printf '4566'; }
_localstack_url() { printf 'http://127.0.0.1:%s' "$(_localstack_port)"; }

# _localstack_python: print a Python 3.13 interpreter (LocalStack's code does not parse on 3.11).
# LOCALSTACK_PYTHON overrides; otherwise pyenv's newest 3.13.x, then python3.13 on PATH.
_localstack_python() {
  local p root
  if [ -n "${LOCALSTACK_PYTHON:-}" ]; then
    printf '%s' "$LOCALSTACK_PYTHON"
    return 0
  fi
  if command -v pyenv >/dev/null 2>&1 && root=$(pyenv root 2>/dev/null); then
    p=$(find "$root/versions" -maxdepth 3 -path '*/versions/3.13*/bin/python3.13' 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$p" ] && [ -x "$p" ]; then
      printf '%s' "$p"
      return 0
    fi
  fi
  if p=$(command -v python3.13 2>/dev/null); then
    printf '%s' "$p"
    return 0
  fi
  return 1
}

# _localstack_runtime_env: the environment LocalStack runs (and installs its packages) with, one
# VAR=value a line.
_localstack_runtime_env() {
  local port
  port=$(_localstack_port)
  cat <<EOF
OVERRIDE_IN_DOCKER=0
FILESYSTEM_ROOT=$(_localstack_root)
SERVICES=s3,kinesis
EAGER_SERVICE_LOADING=1
GATEWAY_LISTEN=127.0.0.1:$port
GATEWAY_SERVER=hypercorn
LOCALSTACK_HOST=127.0.0.1:$port
KINESIS_MOCK_PROVIDER_ENGINE=node
PERSISTENCE=0
CLEAR_TMP_FOLDER=1
DNS_ADDRESS=0
SKIP_SSL_CERT_DOWNLOAD=1
DISABLE_EVENTS=1
API_ENDPOINT=http://127.0.0.1:9/v1
EOF
}

# _localstack_kinesis_main: print the kinesis-local entry point LocalStack will run, if installed.
_localstack_kinesis_main() {
  local -a vars
  mapfile -t vars < <(_localstack_runtime_env)
  env "${vars[@]}" "$(_localstack_venv)/bin/python" -c '
import os, sys
from localstack.services.kinesis.packages import kinesismock_package as p
d = p.get_installed_dir()
if not d:
    sys.exit(1)
print(os.path.join(d, "node_modules", "kinesis-local", "main.js"))
' 2>/dev/null
}

# _localstack_write_launcher: the script the daemon runs, rewritten on every start. It is
# LocalStack's own entry point (localstack.runtime.main) with one change: S3 keeps its
# multipart-upload folders in a fixed /tmp/localstack-s3-storage, which this moves into
# LocalStack's temp folder under FILESYSTEM_ROOT (cleared on every start and stop), so that
# nothing lands outside the cache.
_localstack_write_launcher() {
  cat >"$(_localstack_launcher)" <<'EOF'
# Written by scripts/stack/localstack.sh: LocalStack's entry point, with S3's scratch folder
# moved under FILESYSTEM_ROOT.
import os

from localstack import config
from localstack.services.s3 import provider as s3_provider

if hasattr(s3_provider, "DEFAULT_S3_TMP_DIR"):
    s3_provider.DEFAULT_S3_TMP_DIR = os.path.join(config.dirs.tmp, "s3-storage")

from localstack.runtime.main import main

main()
EOF
}

localstack_install() {
  local dir venv req key stamp py main
  local -a vars
  dir=$(_localstack_dir)
  venv=$(_localstack_venv)
  req=$(_localstack_requirements)
  stamp=$(_localstack_stamp)
  [ -f "$req" ] || die "missing $req"
  key="recipe=1 $(sha256sum <"$req" | cut -d' ' -f1)"

  # Fast path: same requirements, venv interpreter still there, kinesis-local still in place.
  if [ -f "$stamp" ] && [ "$(sed -n 1p "$stamp")" = "$key" ] && [ -x "$venv/bin/python" ]; then
    main=$(sed -n 2p "$stamp")
    if [ -n "$main" ] && [ -f "$main" ]; then
      return 0
    fi
  fi

  py=$(_localstack_python) || die "LocalStack needs Python 3.13 (pyenv's 3.13.x or python3.13 on PATH, or set LOCALSTACK_PYTHON)"
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    die "LocalStack's Kinesis engine needs node and npm"
  fi
  if daemon_alive localstack; then
    log "stopping the running LocalStack to reinstall it"
    localstack_stop
  fi
  log "installing LocalStack into $venv (python: $py)"
  mkdir -p "$dir"
  rm -f "$stamp"
  rm -rf "$venv"
  "$py" -m venv "$venv" || die "could not create $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >&2 ||
    die "pip install -r $req failed"

  # Kinesis engine: LocalStack's package manager runs `npm install kinesis-local@<its version>`
  # into its static libs folder under FILESYSTEM_ROOT, where it looks for it at run time.
  log "installing kinesis-local (npm) for LocalStack"
  mapfile -t vars < <(_localstack_runtime_env)
  mkdir -p "$(_localstack_root)"
  env "${vars[@]}" "$venv/bin/python" -m localstack.cli.lpm install kinesis-mock >&2 ||
    die "installing kinesis-local failed"
  main=$(_localstack_kinesis_main) || die "kinesis-local is not where LocalStack looks for it"
  [ -f "$main" ] || die "kinesis-local entry point $main missing"

  printf '%s\n%s\n' "$key" "$main" >"$stamp"
  log "LocalStack installed (kinesis-local: $main)"
}

# _localstack_health: true when the health endpoint reports both s3 and kinesis available/running.
_localstack_health() {
  local py
  py="$(_localstack_venv)/bin/python"
  [ -x "$py" ] || return 1
  "$py" - "$(_localstack_url)/_localstack/health" <<'EOF' 2>/dev/null
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=3) as r:
        services = json.load(r).get("services", {})
except Exception:
    sys.exit(1)
ok = all(services.get(s) in ("available", "running") for s in ("s3", "kinesis"))
sys.exit(0 if ok else 1)
EOF
}

# _localstack_warm_kinesis: one Kinesis call, so LocalStack starts its kinesis-local process now
# rather than on a test's first request (and so a broken engine shows at start).
_localstack_warm_kinesis() {
  "$(_localstack_venv)/bin/python" - "$(_localstack_url)" <<'EOF'
import sys
import boto3
from botocore.config import Config
k = boto3.client(
    "kinesis", endpoint_url=sys.argv[1], region_name="us-east-1",
    aws_access_key_id="test", aws_secret_access_key="test",
    config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=60),
)
k.list_streams()
EOF
}

# _localstack_descendants PID: print PID's descendants (LocalStack starts kinesis-local in a
# session of its own, so stop_daemon's process-group kill does not reach it).
_localstack_descendants() {
  local c
  for c in $(pgrep -P "$1" 2>/dev/null || true); do
    printf '%s\n' "$c"
    _localstack_descendants "$c"
  done
}

# _localstack_strays: print processes running this cache's kinesis-local (left by a LocalStack
# that died without cleaning up). Matches the full path under $TRIBUTARY_CACHE, nothing broader.
_localstack_strays() {
  local root d cmd
  [ -n "${TRIBUTARY_CACHE:-}" ] || return 1
  root="$(_localstack_root)/"
  for d in /proc/[0-9]*; do
    { cmd=$(tr '\0' ' ' <"$d/cmdline"); } 2>/dev/null || continue
    case "$cmd" in
      *"$root"*kinesis-local*) printf '%s\n' "${d#/proc/}" ;;
    esac
  done
}

localstack_start() {
  local port t0 root
  local -a vars strays
  port=$(_localstack_port)
  localstack_install

  if daemon_alive localstack; then
    if _localstack_health; then
      log "localstack already running ($(_localstack_url))"
      return 0
    fi
    # Hung, or killed and not yet reaped: start afresh.
    log "localstack's process is there but not healthy; restarting it"
    localstack_stop
  fi
  # A previous LocalStack of this cache may have died and left its Kinesis engine behind.
  mapfile -t strays < <(_localstack_strays)
  if [ ${#strays[@]} -gt 0 ]; then
    log "ending stray kinesis-local processes: ${strays[*]}"
    kill_pids "${strays[@]}"
  fi
  if tcp_open 127.0.0.1 "$port"; then
    die "port $port is already in use by a process this cache did not start (another LocalStack?)"
  fi

  t0=$(date +%s)
  root=$(_localstack_root)
  mkdir -p "$root"
  _localstack_write_launcher
  mapfile -t vars < <(_localstack_runtime_env)
  # npm and pip stay offline while LocalStack runs: everything it needs was installed above.
  start_daemon localstack env "${vars[@]}" npm_config_offline=true PIP_NO_INDEX=1 \
    "$(_localstack_venv)/bin/python" "$(_localstack_launcher)"
  wait_tcp localstack 127.0.0.1 "$port" 120
  wait_until localstack 120 "reporting s3 and kinesis healthy" _localstack_health

  if ! _localstack_warm_kinesis >/dev/null 2>>"$STACK_RUN/localstack.log"; then
    tail -n 40 "$STACK_RUN/localstack.log" >&2 || true
    die "localstack's Kinesis engine did not answer (log: $STACK_RUN/localstack.log)"
  fi
  log "localstack ready at $(_localstack_url) in $(($(date +%s) - t0)) s"
}

localstack_stop() {
  local pid=""
  local -a kids=() strays=()
  [ -f "$(pid_file localstack)" ] && pid=$(cat "$(pid_file localstack)")
  if [ -n "$pid" ] && pid_running "$pid"; then
    mapfile -t kids < <(_localstack_descendants "$pid")
  fi
  stop_daemon localstack
  # LocalStack ends kinesis-local (in a session of its own) on SIGTERM; these catch what a
  # SIGKILL or a crash left behind.
  mapfile -t strays < <(_localstack_strays)
  if [ $((${#kids[@]} + ${#strays[@]})) -gt 0 ]; then
    kill_pids "${kids[@]}" "${strays[@]}"
  fi
}

localstack_status() {
  daemon_alive localstack && _localstack_health
}

localstack_env() {
  local url
  url=$(_localstack_url)
  cat <<EOF
export AWS_ENDPOINT_URL=$url
export AWS_ENDPOINT_URL_S3=$url
export AWS_ENDPOINT_URL_KINESIS=$url
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
EOF
}
