#!/usr/bin/env bash
# Fuzz the gateway's request parsing (the fuzz/ targets over the tributary-gateway-wire crate)
# for a bounded time: scripts/fuzz.sh [seconds-per-target], 30 by default. scripts/test.sh
# calls it; run it with a larger number locally to search longer.
#
# cargo fuzz's default sanitizer, AddressSanitizer, needs rustc's `-Zsanitizer`, which only a
# nightly compiler accepts, and the machines have only the stable toolchain. With
# `--sanitizer none` cargo fuzz passes stable flags only (the coverage instrumentation is
# `-Cpasses=sancov-module` plus LLVM arguments, and libFuzzer comes from the libfuzzer-sys
# crate), so neither nightly nor RUSTC_BOOTSTRAP is needed. The fuzzed code is safe Rust: a
# bug shows as a panic, which libFuzzer catches without a sanitizer.
#
# cargo-fuzz is installed once under $TRIBUTARY_CACHE/tools, the build lives in
# $TRIBUTARY_CACHE/fuzz-target and the corpus libFuzzer grows in $TRIBUTARY_CACHE/fuzz-corpus,
# so a warm run builds nothing and starts from what earlier runs found; fuzz/corpus/ holds the
# checked-in seeds. A failing input is written to fuzz/artifacts/<target>/ and printed in
# base64, so a CI log is enough to reproduce it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root/fuzz"
seconds=${1:-30}
cache=${TRIBUTARY_CACHE:-$HOME/.cache/tributary}
target_dir=$cache/fuzz-target
cargo_fuzz_version=0.13.2
export PATH=$cache/tools/bin:$PATH
fuzz=(--sanitizer none --target-dir "$target_dir")

if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $cargo_fuzz_version" ]; then
  cargo install --locked --root "$cache/tools" cargo-fuzz --version "$cargo_fuzz_version"
fi

started=$(date +%s)
cargo fuzz build "${fuzz[@]}"
echo "fuzz targets built in $(($(date +%s) - started)) s"

for target in $(cargo fuzz list); do
  corpus=$cache/fuzz-corpus/$target
  mkdir -p "$corpus"
  log=$(mktemp)
  # -timeout: an input that takes 10 s is a hang, reported as a failure like a panic.
  if cargo fuzz run "${fuzz[@]}" "$target" "$corpus" "corpus/$target" -- \
      -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "$target: ${runs:-?} inputs in $seconds s, no failure; corpus $(find "$corpus" -type f | wc -l) inputs"
    rm -f "$log"
    continue
  fi
  # libFuzzer's account of the failure (the panic message, the signal), without backtraces.
  grep -Ev '^ *[0-9]+: |^ +at ' "$log" | tail -n 40 >&2
  artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
  rm -f "$log"
  if [ -n "$artifact" ] && [ -f "$artifact" ]; then
    {
      echo "fuzz target $target failed on the input saved in $artifact"
      if [ "$(wc -c <"$artifact")" -le 8192 ]; then
        echo "the input, base64: $(base64 -w0 "$artifact")"
      fi
      echo "reproduce: cd fuzz && PATH=$cache/tools/bin:\$PATH cargo fuzz run ${fuzz[*]} $target $artifact"
    } >&2
  else
    echo "fuzz target $target failed without saving an input; its output is above" >&2
  fi
  exit 1
done
