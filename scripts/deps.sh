#!/usr/bin/env bash
# Debian packages the build and the tests need. rdkafka builds librdkafka from its bundled
# source with cmake (which needs curl's headers even with the curl feature off) and links OpenSSL
# for TLS and SASL/SCRAM; shellcheck checks the scripts. Installs only what is missing; a second
# run does nothing.
set -euo pipefail
packages=(cmake libcurl4-openssl-dev libssl-dev pkg-config zlib1g-dev build-essential shellcheck)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[deps] installing ${missing[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
