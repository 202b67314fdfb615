#!/usr/bin/env bash
# Runs every cargo-fuzz target (or the ones named) for SECONDS each, one
# after the other, on the nightly toolchain.
#
#   scripts/fuzz.sh SECONDS [TARGET...]
#
# Needs `cargo install cargo-fuzz`. Each target starts from its working
# corpus (fuzz/corpus/<target>, git-ignored) plus the committed regression
# inputs (tests/fuzz-regressions/<target>, read only); its log goes to
# fuzz/logs/<target>.log and its last status line (executions, coverage,
# features) is printed at the end. Stops at the first crash (libFuzzer
# saves the input under fuzz/artifacts/<target>/).
set -euo pipefail

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
fi
seconds=$1
shift

cd "$(dirname "$0")/.."
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 1
fi

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi

mkdir -p fuzz/logs
cd fuzz
# Build once, then run the binaries: every target runs the same build even
# if the tree changes meanwhile.
cargo +nightly fuzz build
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    seeds=()
    [[ -d "../tests/fuzz-regressions/$target" ]] && seeds=("../tests/fuzz-regressions/$target")
    echo "== $target: ${seconds}s (log: fuzz/logs/$target.log)"
    mkdir -p "artifacts/$target"
    if ! ASAN_OPTIONS=detect_odr_violation=0 "target/$triple/release/$target" \
        -artifact_prefix="artifacts/$target/" -max_total_time="$seconds" -print_final_stats=1 \
        "corpus/$target" "${seeds[@]}" >"logs/$target.log" 2>&1; then
        tail -n 40 "logs/$target.log" >&2
        echo "== $target FAILED: see fuzz/logs/$target.log and fuzz/artifacts/$target/" >&2
        exit 1
    fi
done

echo "== summary (last status line of each run)"
for target in "${targets[@]}"; do
    printf '%-14s %s\n' "$target" "$(grep -E '^#[0-9]+' "logs/$target.log" | tail -n 1)"
done
