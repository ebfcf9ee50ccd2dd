#!/usr/bin/env bash
# The local stack of real services the tests and the binary use:
#   kube        etcd + kube-apiserver + kube-controller-manager (built from Debian's source)
#   kafka       a Kafka-protocol broker (noida-db from PyPI)
#   localstack  S3 and Kinesis (LocalStack from PyPI, no Docker)
#   moto        the MSK (Kafka control-plane) API (moto from PyPI, with our extension)
#
# usage: scripts/stack.sh up|down|status|env [service...]
# Every service binds to 127.0.0.1 only, is cached under ~/.cache/tributary (override with
# TRIBUTARY_CACHE), starts idempotently and is stopped by PID.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/stack/lib.sh
. "$here/stack/lib.sh"

ALL_SERVICES=(kube kafka localstack moto)
for svc in "${ALL_SERVICES[@]}"; do
  # shellcheck source=/dev/null
  . "$here/stack/$svc.sh"
done

usage() {
  echo "usage: $0 up|down|status|env [${ALL_SERVICES[*]}]" >&2
  exit 2
}

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
services=("$@")
[ ${#services[@]} -gt 0 ] || services=("${ALL_SERVICES[@]}")
for svc in "${services[@]}"; do
  case " ${ALL_SERVICES[*]} " in *" $svc "*) ;; *) echo "unknown service: $svc" >&2; usage ;; esac
done

case "$cmd" in
  up)
    for svc in "${services[@]}"; do
      "${svc}_install"
      "${svc}_start"
    done
    for svc in "${services[@]}"; do "${svc}_status" >/dev/null || die "$svc is not healthy after start"; done
    log "up: ${services[*]} (eval \"\$($0 env)\" to use them)"
    ;;
  down)
    # Reverse order: the controller manager and apiserver stop before etcd, and so on.
    for ((i = ${#services[@]} - 1; i >= 0; i--)); do "${services[$i]}_stop"; done
    ;;
  status)
    rc=0
    for svc in "${services[@]}"; do
      if "${svc}_status"; then echo "$svc: up"; else echo "$svc: down"; rc=1; fi
    done
    exit $rc
    ;;
  env)
    echo "export TRIBUTARY_CACHE='$TRIBUTARY_CACHE'"
    for svc in "${services[@]}"; do "${svc}_env"; done
    ;;
  *) usage ;;
esac
