# shellcheck shell=bash
# Shared helpers for scripts/stack.sh and the per-service scripts beside this file.
# Everything lives under $TRIBUTARY_CACHE (default ~/.cache/tributary): downloaded packages,
# built binaries and virtualenvs persist there between runs; $STACK_RUN holds the pid files,
# logs and data of the running services.

TRIBUTARY_CACHE=${TRIBUTARY_CACHE:-$HOME/.cache/tributary}
STACK_RUN=${STACK_RUN:-$TRIBUTARY_CACHE/run}
export TRIBUTARY_CACHE STACK_RUN
mkdir -p "$TRIBUTARY_CACHE" "$STACK_RUN"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

pid_file() { printf '%s/%s.pid' "$STACK_RUN" "$1"; }
log_file() { printf '%s/%s.log' "$STACK_RUN" "$1"; }

# pid_running PID: true when PID is a live process (a zombie waiting for its reaper is not).
pid_running() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "${state:0:1}" != Z ]
}

# daemon_alive NAME: true when NAME's recorded process is running.
daemon_alive() {
  local pf pid
  pf=$(pid_file "$1")
  [ -f "$pf" ] || return 1
  pid=$(cat "$pf")
  [ -n "$pid" ] && pid_running "$pid"
}

# start_daemon NAME CMD...: start CMD in its own session (so stop_daemon can end the whole
# process group), logging to $STACK_RUN/NAME.log. Does nothing when NAME already runs.
start_daemon() {
  local name=$1
  shift
  if daemon_alive "$name"; then
    log "$name already running (pid $(cat "$(pid_file "$name")"))"
    return 0
  fi
  log "starting $name"
  setsid nohup "$@" >>"$(log_file "$name")" 2>&1 </dev/null &
  echo $! >"$(pid_file "$name")"
}

# stop_daemon NAME: SIGTERM the process group, SIGKILL after 20 s, remove the pid file.
stop_daemon() {
  local name=$1 pf pid
  pf=$(pid_file "$name")
  [ -f "$pf" ] || return 0
  pid=$(cat "$pf")
  if [ -n "$pid" ] && pid_running "$pid"; then
    log "stopping $name (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do
      pid_running "$pid" || break
      sleep 0.1
    done
    if pid_running "$pid"; then
      log "$name did not stop in 20 s; killing"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    # Children that left the group (rare) still die with the session.
    pkill -KILL -s "$pid" 2>/dev/null || true
  fi
  rm -f "$pf"
}

# wait_until NAME SECONDS WHAT CMD...: run CMD every half second until it succeeds; fail early
# if NAME's process exits, and on timeout, showing the tail of NAME's log either way.
wait_until() {
  local name=$1 secs=$2 what=$3
  shift 3
  for _ in $(seq 1 $((secs * 2))); do
    "$@" 2>/dev/null && return 0
    if ! daemon_alive "$name"; then
      tail -n 40 "$(log_file "$name")" >&2 || true
      die "$name exited during start-up (log: $(log_file "$name"))"
    fi
    sleep 0.5
  done
  tail -n 40 "$(log_file "$name")" >&2 || true
  die "$name: $what within ${secs}s failed (log: $(log_file "$name"))"
}

# tcp_open HOST PORT: true when HOST:PORT accepts a connection.
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_tcp NAME HOST PORT SECONDS: wait until HOST:PORT accepts connections.
wait_tcp() { wait_until "$1" "$4" "listening on $2:$3" tcp_open "$2" "$3"; }

# kill_pids PID...: SIGTERM, up to 10 s to exit, then SIGKILL what is left.
kill_pids() {
  local p left
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for _ in $(seq 1 100); do
    left=0
    for p in "$@"; do
      if pid_running "$p"; then left=1; fi
    done
    [ "$left" = 1 ] || return 0
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null || true
}

# apt_update_once: refresh apt's lists at most once per run of the scripts.
apt_update_once() {
  if [ -z "${TRIBUTARY_APT_UPDATED:-}" ]; then
    log "apt-get update"
    apt-get update -qq >&2 || die "apt-get update failed"
    TRIBUTARY_APT_UPDATED=1
    export TRIBUTARY_APT_UPDATED
  fi
}

# deb_extract DEST PKG...: download Debian packages (no install) and unpack them into DEST.
deb_extract() {
  local dest=$1 dl
  shift
  apt_update_once
  dl="$TRIBUTARY_CACHE/debs"
  mkdir -p "$dl" "$dest"
  (cd "$dl" && apt-get download -qq "$@" >&2) || die "apt-get download $* failed"
  local p f
  for p in "$@"; do
    f=$(find "$dl" -maxdepth 1 -name "${p}_*.deb" -printf '%T@ %p\n' | sort -rn | head -n 1 | cut -d' ' -f2-)
    [ -n "$f" ] || die "downloaded package $p not found in $dl"
    dpkg-deb -x "$f" "$dest"
  done
}
