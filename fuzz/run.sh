#!/usr/bin/env bash
# Runs every fuzz target for a budget of seconds each (default 60), one after the other, from the
# committed seeds (corpus/<target>/seed-*) plus a scratch corpus that is thrown away; fails on
# the first crash, leak, timeout or out-of-memory, whose input libFuzzer leaves in
# fuzz/artifacts/<target>/. Needs the nightly toolchain and cargo-fuzz (see README.md).
#
#   bash fuzz/run.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")"

budget=${1:-60}
targets=(frame transaction event trailers wire_client wire_server handshake)

# Shared by the other engineers on this machine: nice, one build job at a time unless told.
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
export CARGO_TERM_COLOR=never

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# Every target at once (the default build: optimized, debug assertions and overflow checks on,
# AddressSanitizer). FUZZ_SANITIZER=none builds without the sanitizer (CI's short pass: the
# targets are safe Rust over a memory-safe decoder, where panics, overflows and debug
# assertions are what a short run finds; the sanitizer build takes several times longer to
# compile the network stack).
sanitizer=${FUZZ_SANITIZER:-address}
nice cargo +nightly fuzz build --sanitizer "$sanitizer"

for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t"
    log="$scratch/$t.log"
    echo "== fuzz $t (${budget}s)"
    # New inputs go to the first folder (scratch), so the committed seeds stay as they are.
    # A single input slower than 10 s is a hang; 2 GiB is far above what any input may cost.
    if ! nice cargo +nightly fuzz run --sanitizer "$sanitizer" "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$budget" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz target $t FAILED (input in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    corpus=$(ls "$scratch/$t" | wc -l)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
    echo "   $runs executions, 0 crashes, $corpus new corpus entries, peak RSS ${rss} MB"
done
echo "== fuzz passed"
