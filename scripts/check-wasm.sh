#!/usr/bin/env bash
# Checks that the library (default features: no Redis store, no HTTP layer)
# builds for wasm32-unknown-unknown, the target of edge and serverless
# WebAssembly runtimes. The clock and the random source come from the host
# there (see the README), so the crate must not need SystemTime or getrandom.
#
# Tries to install the target's standard library with rustup. If that is
# not possible (offline, no rustup, a toolchain without the component), it
# says plainly that the build was NOT checked and exits 0: CI then reports
# the gap instead of claiming the check.
set -euo pipefail
cd "$(dirname "$0")/.."

target=wasm32-unknown-unknown

installed() {
    local sysroot
    sysroot=$(rustc --print sysroot)
    [[ -d "$sysroot/lib/rustlib/$target/lib" ]]
}

if ! installed && command -v rustup >/dev/null 2>&1; then
    echo "installing the $target standard library (rustup target add $target)"
    timeout 300 rustup target add "$target" >/dev/null 2>&1 || true
fi

if ! installed; then
    echo "$target target not installable here: wasm build NOT checked"
    exit 0
fi

echo "cargo check --lib --target $target (default features)"
cargo check --lib --target "$target"
echo "$target: library builds"

# The host-supplied clock and random source as the README shows them:
# examples/edge_host.rs, built as the main file of a throwaway crate that
# depends on the library alone (an example of this package would pull in
# its dev-dependencies, which are not for WebAssembly).
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/src"
cp examples/edge_host.rs "$scratch/src/main.rs"
cp Cargo.lock "$scratch/Cargo.lock"
cat >"$scratch/Cargo.toml" <<TOML
[package]
name = "edge-host-check"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
sealed-session = { path = "$PWD" }

[workspace]
TOML
echo "cargo check examples/edge_host.rs --target $target"
CARGO_TARGET_DIR="$PWD/target" cargo check --quiet --manifest-path "$scratch/Cargo.toml" --target "$target"
echo "$target: examples/edge_host.rs builds"
