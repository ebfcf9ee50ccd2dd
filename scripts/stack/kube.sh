# shellcheck shell=bash
# kube: a real Kubernetes control plane on 127.0.0.1 — etcd, kube-apiserver and
# kube-controller-manager, no kubelet (pods stay Pending). See
# docs/decisions/0002-local-kube-control-plane.md. Sourced by scripts/stack.sh after lib.sh;
# defines functions only.
#
# kube-apiserver and kube-controller-manager are built once from Debian's `kubernetes` source
# package (1.20.2, everything vendored) with Debian's Go 1.19; etcd is Debian's etcd-server.
# Nothing is installed system-wide: packages are unpacked under $TRIBUTARY_CACHE/kube and the
# binaries kept in $TRIBUTARY_CACHE/kube/bin. Run state (certificates, tokens, etcd data,
# kubeconfigs) lives in $STACK_RUN/kube; the admin kubeconfig is $STACK_RUN/kubeconfig.

KUBE_HOST=127.0.0.1
KUBE_PORT=6443
KUBE_ETCD_PORT=23790
KUBE_ETCD_PEER_PORT=23800
# Bump when the build recipe changes: kube_install rebuilds when bin/BUILD differs.
KUBE_BUILD_ID="debian-kubernetes+golang-1.19+reflect2-1.0.2 r1"
# Controllers that matter without nodes; the rest (node, volume, cloud ones) stay off.
KUBE_CONTROLLERS=garbagecollector,namespace,serviceaccount,serviceaccount-token,deployment,replicaset,statefulset,daemonset,job,cronjob,endpoint,endpointslice,disruption,resourcequota,podgc

kube_dir() { printf '%s/kube' "$TRIBUTARY_CACHE"; }
kube_bin_dir() { printf '%s/kube/bin' "$TRIBUTARY_CACHE"; }
# Certificates, tokens and etcd data of the running control plane.
kube_run_dir() { printf '%s/kube' "$STACK_RUN"; }
kube_kubeconfig() { printf '%s/kubeconfig' "$STACK_RUN"; }

kube_installed() {
  local bin
  bin=$(kube_bin_dir)
  [ -x "$bin/etcd" ] && [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ] &&
    [ -f "$bin/BUILD" ] && [ "$(head -n 1 "$bin/BUILD")" = "$KUBE_BUILD_ID" ]
}

# kube_install: build kube-apiserver and kube-controller-manager once (about 8 CPU-minutes on
# 2 cores; the Go build cache under $TRIBUTARY_CACHE/kube/gocache makes a retry fast) and keep
# them with etcd in $TRIBUTARY_CACHE/kube/bin. A second call only checks files.
kube_install() {
  local dir lock_fd
  kube_installed && return 0
  dir=$(kube_dir)
  mkdir -p "$dir"
  # One build at a time, even when several `stack.sh up` run at once.
  exec {lock_fd}>"$dir/.install.lock"
  flock "$lock_fd"
  if ! kube_installed; then
    kube_build
  fi
  exec {lock_fd}>&-
}

# kube_codename: this Debian's release name (bookworm on Debian 12).
kube_codename() {
  local codename
  # shellcheck source=/dev/null
  codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
  printf '%s' "${codename:-bookworm}"
}

# kube_debsrc_sources: print deb822 deb-src stanzas for the Debian archive entries of apt's own
# sources (so no archive host is written anywhere: it comes from this machine's apt setup).
kube_debsrc_sources() {
  local codename f
  codename=$(kube_codename)
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v cn="$codename" 'BEGIN { RS = ""; ORS = "\n\n" }
      {
        n = split($0, l, "\n"); types = 0; suite = 0; main = 0; off = 0
        for (i = 1; i <= n; i++) {
          if (l[i] ~ /^Types:/ && l[i] ~ /[ \t]deb([ \t]|$)/) types = 1
          if (l[i] ~ /^Suites:/ && l[i] ~ ("[ \t]" cn "([ \t-]|$)")) suite = 1
          if (l[i] ~ /^Components:/ && l[i] ~ /[ \t]main([ \t]|$)/) main = 1
          if (l[i] ~ /^Enabled:[ \t]*[Nn]o/) off = 1
        }
        if (!types || !suite || !main || off) next
        out = ""
        for (i = 1; i <= n; i++) out = out (l[i] ~ /^Types:/ ? "Types: deb-src" : l[i]) "\n"
        printf "%s\n", out
      }' "$f"
  done
}

# kube_debsrc_list: the same for one-line sources (sources.list and *.list).
kube_debsrc_list() {
  local codename f
  codename=$(kube_codename)
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v cn="$codename" '$1 == "deb" {
        i = 2
        if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if (($(i + 1) == cn || index($(i + 1), cn "-") == 1) && / main( |$)/) { sub(/^deb/, "deb-src"); print }
      }' "$f"
  done
}

# kube_fetch_source DIR: download Debian's kubernetes source package into DIR with a private
# apt configuration (deb-src entries derived from apt's own), leaving the system's apt alone.
kube_fetch_source() {
  local dest=$1 apt
  apt="$(kube_dir)/apt"
  rm -rf "$apt"
  mkdir -p "$apt/sources.list.d" "$apt/lists/partial" "$dest"
  kube_debsrc_list >"$apt/sources.list"
  kube_debsrc_sources >"$apt/sources.list.d/debian-src.sources"
  [ -s "$apt/sources.list" ] || [ -s "$apt/sources.list.d/debian-src.sources" ] ||
    die "no Debian entry in apt's sources to derive a deb-src entry from"
  local opts=(-o "Dir::Etc::SourceList=$apt/sources.list"
    -o "Dir::Etc::SourceParts=$apt/sources.list.d"
    -o "Dir::State::Lists=$apt/lists"
    -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
    -o "APT::Sandbox::User=root")
  log "apt-get update (deb-src, private lists)"
  apt-get "${opts[@]}" update -qq >&2 || log "apt-get update reported errors; trying the download anyway"
  log "apt-get source --download-only kubernetes"
  (cd "$dest" && apt-get "${opts[@]}" source --download-only -qq kubernetes >&2) ||
    die "apt-get source kubernetes failed"
  rm -rf "$apt"
}

# kube_build: unpack Go, etcd, reflect2 and the kubernetes source, generate the OpenAPI
# definitions, build the two commands, keep the binaries and drop the rest (but the Go build
# cache and the downloaded packages).
kube_build() {
  local dir tc src build k8s orig f ver minor deb_ver go_ver etcd_ver r2_ver blog
  dir=$(kube_dir)
  tc="$dir/toolchain"
  src="$dir/src"
  build="$dir/build"
  blog="$dir/build.log"
  log "building kube-apiserver and kube-controller-manager from Debian's kubernetes source (once; several minutes)"
  command -v make >/dev/null || { apt_update_once && apt-get install -y -qq make >&2; } || die "make is missing"
  command -v curl >/dev/null || { apt_update_once && apt-get install -y -qq curl >&2; } || die "curl is missing"

  rm -rf "$tc"
  deb_extract "$tc" golang-1.19-go golang-1.19-src etcd-server golang-github-modern-go-reflect2-dev
  [ -x "$tc/usr/lib/go-1.19/bin/go" ] || die "Go 1.19 not found in $tc"
  [ -x "$tc/usr/bin/etcd" ] || die "etcd not found in $tc"

  orig=
  for f in "$src"/kubernetes_*.orig.tar.*; do [ -f "$f" ] && orig=$f; done
  if [ -z "$orig" ]; then
    rm -rf "$src"
    kube_fetch_source "$src"
    for f in "$src"/kubernetes_*.orig.tar.*; do [ -f "$f" ] && orig=$f; done
    [ -n "$orig" ] || die "kubernetes source tarball not found in $src"
  fi
  deb_ver=${orig##*/kubernetes_}
  deb_ver=${deb_ver%.orig.tar.*}
  for f in "$src"/kubernetes_*.dsc; do
    [ -f "$f" ] || continue
    deb_ver=${f##*/kubernetes_}
    deb_ver=${deb_ver%.dsc}
  done

  log "unpacking $(basename "$orig")"
  rm -rf "$build"
  mkdir -p "$build/gopath/src/k8s.io" "$build/shim"
  tar -xf "$orig" -C "$build/gopath/src/k8s.io"
  k8s=
  for f in "$build/gopath/src/k8s.io"/kubernetes-*; do [ -d "$f" ] && k8s=$f; done
  [ -n "$k8s" ] || die "unexpected layout of $orig"
  ver=${k8s##*/kubernetes-}
  mv "$k8s" "$build/gopath/src/k8s.io/kubernetes"
  k8s="$build/gopath/src/k8s.io/kubernetes"

  # The vendored reflect2 1.0.1 crashes the apiserver under Go 1.18+ (first custom resource
  # create); Debian's 1.0.2 is API-compatible and fixed.
  rm -rf "$k8s/vendor/github.com/modern-go/reflect2"
  cp -r "$tc/usr/share/gocode/src/github.com/modern-go/reflect2" "$k8s/vendor/github.com/modern-go/reflect2"

  # hack/lib/golang.sh places binaries with `rsync -pc SRC DIR`; cp does the same here.
  cat >"$build/shim/rsync" <<'EOF'
#!/bin/sh
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done
exec cp -p "$@"
EOF
  chmod +x "$build/shim/rsync"

  log "generating OpenAPI definitions and building (log: $blog)"
  local vpkg=k8s.io/kubernetes/vendor/k8s.io/component-base/version
  local cpkg=k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version
  local ldflags="-s -w"
  local p
  minor=${ver#*.}
  minor=${minor%%.*}
  for p in "$vpkg" "$cpkg"; do
    ldflags+=" -X $p.gitVersion=v$ver -X $p.gitMajor=${ver%%.*} -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  if ! (
    export GOROOT="$tc/usr/lib/go-1.19"
    export PATH="$build/shim:$GOROOT/bin:$PATH"
    export GOPATH="$build/gopath" GOCACHE="$dir/gocache" GO111MODULE=off GOFLAGS='' GOPROXY=off \
      GOSUMDB=off GOTOOLCHAIN=local CGO_ENABLED=0 KUBE_VERBOSE=0
    cd "$k8s" || exit 1
    make gen_openapi || exit 1
    go build -trimpath -ldflags "$ldflags" -o "$build/out/" ./cmd/kube-apiserver ./cmd/kube-controller-manager || exit 1
  ) >"$blog" 2>&1; then
    tail -n 40 "$blog" >&2
    die "kube build failed (log: $blog)"
  fi

  go_ver=$(sed -n 1p "$tc/usr/lib/go-1.19/VERSION")
  etcd_ver=$("$tc/usr/bin/etcd" --version 2>/dev/null | awk '/^etcd Version/ {print $3}')
  r2_ver=$(zcat "$tc/usr/share/doc/golang-github-modern-go-reflect2-dev/changelog.Debian.gz" |
    sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p')
  rm -rf "$dir/bin.new"
  mkdir -p "$dir/bin.new"
  cp "$build/out/kube-apiserver" "$build/out/kube-controller-manager" "$tc/usr/bin/etcd" "$dir/bin.new/"
  {
    echo "$KUBE_BUILD_ID"
    echo "kubernetes v$ver (Debian source $deb_ver)"
    echo "go $go_ver"
    echo "etcd $etcd_ver"
    echo "reflect2 $r2_ver (Debian golang-github-modern-go-reflect2-dev, replaces the vendored 1.0.1)"
  } >"$dir/bin.new/BUILD"
  rm -rf "${dir:?}/bin"
  mv "$dir/bin.new" "$dir/bin"
  rm -rf "$build" "$tc"
  log "kube binaries ready in $dir/bin ($(sed -n 2p "$dir/bin/BUILD"), $go_ver, etcd $etcd_ver)"
}

# kube_pki DIR: a CA (v3, EC P-256), the apiserver's serving certificate for 127.0.0.1 and
# localhost, a service-account key pair and the static tokens. Made once; kept across restarts
# so a kubeconfig stays valid.
kube_pki() {
  local pki=$1 admin cm
  [ -f "$pki/.complete" ] && return 0
  rm -rf "$pki"
  mkdir -p "$pki"
  chmod 700 "$pki"
  cat >"$pki/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc
EOF
  (
    cd "$pki" || exit 1
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null &&
      openssl req -x509 -new -key ca.key -subj "/CN=tributary-local-ca" -days 3650 -sha256 \
        -config openssl.cnf -extensions ca -set_serial "0x$(openssl rand -hex 16)" -out ca.crt &&
      openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out apiserver.key 2>/dev/null &&
      openssl req -new -key apiserver.key -subj "/CN=kube-apiserver" -config openssl.cnf -out apiserver.csr &&
      openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
        -days 3650 -sha256 -extfile openssl.cnf -extensions server -out apiserver.crt 2>/dev/null &&
      openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null &&
      openssl pkey -in sa.key -pubout -out sa.pub
  ) || die "could not create the kube certificates in $pki"
  admin=$(openssl rand -hex 24)
  cm=$(openssl rand -hex 24)
  printf '%s\n' "$admin" >"$pki/admin.token"
  printf '%s\n' "$cm" >"$pki/controller-manager.token"
  {
    printf '%s,tributary-admin,tributary-admin,"system:masters"\n' "$admin"
    printf '%s,system:kube-controller-manager,kube-controller-manager\n' "$cm"
  } >"$pki/tokens.csv"
  rm -f "$pki/apiserver.csr"
  touch "$pki/.complete"
}

# kube_write_kubeconfig FILE TOKEN USER: a kubeconfig for https://127.0.0.1:6443 with the CA
# embedded and a static bearer token. Written atomically.
kube_write_kubeconfig() {
  local file=$1 token=$2 user=$3 ca
  ca=$(base64 -w0 <"$(kube_run_dir)/pki/ca.crt")
  rm -f "$file.tmp"
  (umask 077 && : >"$file.tmp")
  cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: tributary
  cluster:
    server: https://$KUBE_HOST:$KUBE_PORT
    certificate-authority-data: $ca
users:
- name: $user
  user:
    token: $token
contexts:
- name: tributary
  context:
    cluster: tributary
    user: $user
    namespace: default
current-context: tributary
EOF
  mv "$file.tmp" "$file"
}

# kube_get PATH: GET PATH from the apiserver as the admin; true on a 2xx answer.
kube_get() {
  local pki
  pki="$(kube_run_dir)/pki"
  [ -f "$pki/admin.token" ] || return 1
  curl -fsS --max-time 5 --cacert "$pki/ca.crt" \
    -H "Authorization: Bearer $(cat "$pki/admin.token")" \
    "https://$KUBE_HOST:$KUBE_PORT$1" >/dev/null 2>&1
}

kube_port_free() { ! tcp_open "$KUBE_HOST" "$1"; }

# kube_wait NAME SECS PATH: wait until PATH answers 2xx, failing early if NAME exits.
kube_wait() { wait_until "$1" "$2" "GET $3" kube_get "$3"; }

# kube_start: etcd, then the apiserver (waits for /readyz), then the controller manager (waits
# for the default service account it creates). The etcd data dir is wiped whenever etcd itself
# has to start, so each `up` gives an empty cluster; a start that finds everything running
# does nothing.
kube_start() {
  local bin run pki
  if ! kube_installed; then
    kube_install
  fi
  bin=$(kube_bin_dir)
  run=$(kube_run_dir)
  pki="$run/pki"
  if daemon_alive kube-etcd && daemon_alive kube-apiserver && daemon_alive kube-controller-manager &&
    [ -f "$(kube_kubeconfig)" ] && kube_get /readyz; then
    log "kube already running"
    return 0
  fi
  if [ ! -f "$pki/.complete" ]; then
    # New certificates and tokens: a running apiserver would not know them.
    stop_daemon kube-controller-manager
    stop_daemon kube-apiserver
    kube_pki "$pki"
  fi

  if ! daemon_alive kube-etcd; then
    # An apiserver or controller manager without their etcd is stale: restart them too.
    stop_daemon kube-controller-manager
    stop_daemon kube-apiserver
    kube_port_free "$KUBE_ETCD_PORT" || die "port $KUBE_HOST:$KUBE_ETCD_PORT is already in use by another process"
    kube_port_free "$KUBE_ETCD_PEER_PORT" || die "port $KUBE_HOST:$KUBE_ETCD_PEER_PORT is already in use by another process"
    rm -rf "$run/etcd"
    mkdir -p "$run/etcd"
    chmod 700 "$run/etcd"
    start_daemon kube-etcd "$bin/etcd" --name tributary --data-dir "$run/etcd" \
      --listen-client-urls "http://$KUBE_HOST:$KUBE_ETCD_PORT" \
      --advertise-client-urls "http://$KUBE_HOST:$KUBE_ETCD_PORT" \
      --listen-peer-urls "http://$KUBE_HOST:$KUBE_ETCD_PEER_PORT" \
      --initial-advertise-peer-urls "http://$KUBE_HOST:$KUBE_ETCD_PEER_PORT" \
      --initial-cluster "tributary=http://$KUBE_HOST:$KUBE_ETCD_PEER_PORT" \
      --initial-cluster-state new --logger zap --log-level warn
  fi
  wait_tcp kube-etcd "$KUBE_HOST" "$KUBE_ETCD_PORT" 30

  if ! daemon_alive kube-apiserver; then
    stop_daemon kube-controller-manager
    kube_port_free "$KUBE_PORT" || die "port $KUBE_HOST:$KUBE_PORT is already in use by another process"
    start_daemon kube-apiserver "$bin/kube-apiserver" \
      --etcd-servers "http://$KUBE_HOST:$KUBE_ETCD_PORT" \
      --bind-address "$KUBE_HOST" --secure-port "$KUBE_PORT" --insecure-port 0 \
      --advertise-address "$KUBE_HOST" --endpoint-reconciler-type none \
      --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
      --cert-dir "$pki" \
      --token-auth-file "$pki/tokens.csv" --anonymous-auth=false \
      --authorization-mode AlwaysAllow \
      --service-account-key-file "$pki/sa.pub" \
      --service-account-signing-key-file "$pki/sa.key" \
      --service-account-issuer https://kubernetes.default.svc \
      --service-cluster-ip-range 10.0.0.0/24 \
      --allow-privileged=true --profiling=false
  fi
  wait_tcp kube-apiserver "$KUBE_HOST" "$KUBE_PORT" 60
  kube_wait kube-apiserver 90 /readyz

  kube_write_kubeconfig "$run/controller-manager.kubeconfig" \
    "$(cat "$pki/controller-manager.token")" system:kube-controller-manager
  kube_write_kubeconfig "$(kube_kubeconfig)" "$(cat "$pki/admin.token")" tributary-admin

  if ! daemon_alive kube-controller-manager; then
    start_daemon kube-controller-manager "$bin/kube-controller-manager" \
      --kubeconfig "$run/controller-manager.kubeconfig" \
      --port 0 --address "$KUBE_HOST" --secure-port 0 --bind-address "$KUBE_HOST" \
      --leader-elect=false --controllers "$KUBE_CONTROLLERS" \
      --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
      --profiling=false
  fi
  kube_wait kube-controller-manager 60 /api/v1/namespaces/default/serviceaccounts/default
  log "kube up: https://$KUBE_HOST:$KUBE_PORT (KUBECONFIG=$(kube_kubeconfig))"
}

kube_stop() {
  stop_daemon kube-controller-manager
  stop_daemon kube-apiserver
  stop_daemon kube-etcd
}

kube_status() {
  daemon_alive kube-etcd && daemon_alive kube-apiserver && daemon_alive kube-controller-manager &&
    kube_get /readyz
}

kube_env() { echo "export KUBECONFIG='$(kube_kubeconfig)'"; }
