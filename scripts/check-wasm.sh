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

# The published test vectors, checked inside WebAssembly: a throwaway
# cdylib with both vector files built in exports `run`, and Node.js runs it
# (no host imports: the vectors supply their own clock and random bytes).
# The counts must equal the native `verify-vectors` run's.
if ! command -v node >/dev/null 2>&1; then
    if [[ "${CI:-}" == "true" ]]; then
        echo "node is missing (Debian: apt-get install nodejs): vectors NOT checked in $target" >&2
        exit 1
    fi
    echo "node is missing (Debian: apt-get install nodejs): vectors NOT checked in $target"
    exit 0
fi
vectors_crate="$scratch/vectors"
mkdir -p "$vectors_crate/src"
cp Cargo.lock "$vectors_crate/Cargo.lock"
# Beside the source, so the Rust code names them without this path.
cp test-vectors/format-v1.json test-vectors/budget-v1.json "$vectors_crate/src/"
cat >"$vectors_crate/Cargo.toml" <<TOML
[package]
name = "wasm-vectors-check"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
sealed-session = { path = "$PWD", features = ["vectors"] }

[workspace]
TOML
cat >"$vectors_crate/src/lib.rs" <<'RUST'
//! Every published vector, checked in WebAssembly.
use sealed_session::vectors::{check_file_text, BUDGET_FILE, FORMAT_FILE};

const FILES: [(&str, &str); 2] = [
    (FORMAT_FILE, include_str!("format-v1.json")),
    (BUDGET_FILE, include_str!("budget-v1.json")),
];

/// Vectors passed, times 65536, plus vectors failed (a file that does not
/// parse counts as one failure).
#[no_mangle]
pub extern "C" fn run() -> u32 {
    let (mut passed, mut failed) = (0u32, 0u32);
    for (name, text) in FILES {
        match check_file_text(name, text) {
            Ok(outcomes) => {
                for outcome in outcomes {
                    if outcome.failure.is_none() {
                        passed += 1;
                    } else {
                        failed += 1;
                    }
                }
            }
            Err(_) => failed += 1,
        }
    }
    passed << 16 | failed
}
RUST
echo "cargo build (vectors cdylib) --target $target"
CARGO_TARGET_DIR="$PWD/target" cargo build --quiet --manifest-path "$vectors_crate/Cargo.toml" --target "$target"
wasm="$PWD/target/$target/debug/wasm_vectors_check.wasm"
in_wasm=$(node -e '
const bytes = require("fs").readFileSync(process.argv[1]);
WebAssembly.instantiate(bytes, {}).then(({ instance }) => {
  const r = instance.exports.run();
  console.log(`${r >>> 16} passed, ${r & 0xffff} failed`);
});
' "$wasm")
# A failing native run must reach the comparison below, not stop the
# script here.
native_run=$(cargo run --quiet -p sealed-session-cli -- verify-vectors test-vectors || true)
native=$(tail -n 1 <<<"$native_run")
echo "$target (Node.js $(node --version)): $in_wasm; natively: $native"
if [[ "$in_wasm" != "$native" || "$native" != *", 0 failed" ]]; then
    echo "the vectors do not all pass in $target" >&2
    exit 1
fi
