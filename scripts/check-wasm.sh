#!/usr/bin/env bash
# Checks that the library (default features: no Redis store, no HTTP layer)
# builds for wasm32-unknown-unknown, the target of edge and serverless
# WebAssembly runtimes. The clock and the random source come from the host
# there (see the README), so the crate must not need SystemTime or getrandom.
#
# Builds README's Workers-style snippet (wasm-bindgen glue) for that target,
# and runs it under Node.js when the wasm-bindgen CLI is installed.
#
# Then runs, under Node.js, every published test vector inside that build,
# a session sealed, opened, re-sealed and deleted with a clock and a
# generator imported from JavaScript (Date.now, crypto.getRandomValues; a
# missing one refused with Error::NoClock / Error::Random), and a wasm32-wasip1 build
# that uses the crate's defaults (the system clock and generator through
# WASI). The library is linted with clippy, warnings as errors, for both
# targets.
#
# Tries to install each target's standard library with rustup. If that is
# not possible (offline, no rustup, a toolchain without the component), it
# says plainly that the build was NOT checked and exits 0, or fails under
# CI=true: CI must not pass without the check.
set -euo pipefail
cd "$(dirname "$0")/.."

target=wasm32-unknown-unknown

installed() {
    local sysroot
    sysroot=$(rustc --print sysroot)
    [[ -d "$sysroot/lib/rustlib/$1/lib" ]]
}

# Says that a check did not run: a failure under CI=true, else a message
# (the caller then skips it).
not_checked() {
    if [[ "${CI:-}" == "true" ]]; then
        echo "$1, and CI=true" >&2
        exit 1
    fi
    echo "$1"
}

# Installs target $1 if needed; returns 1 (after saying so) if it cannot.
ensure_target() {
    if ! installed "$1" && command -v rustup >/dev/null 2>&1; then
        echo "installing the $1 standard library (rustup target add $1)"
        timeout 300 rustup target add "$1" >/dev/null 2>&1 || true
    fi
    if ! installed "$1"; then
        not_checked "$1 target not installable here: NOT checked"
        return 1
    fi
}

# Writes a throwaway crate at $1 named $2 that depends on this library
# alone (with the features in $3, if any) under this lock file; $4: more
# manifest sections; $5: more dependencies. (An example of this package would pull in its
# dev-dependencies, which are not for WebAssembly.)
scratch_crate() {
    local dir=$1 name=$2 features=${3:-} extra=${4:-} deps=${5:-}
    mkdir -p "$dir/src"
    cp Cargo.lock "$dir/Cargo.lock"
    cat >"$dir/Cargo.toml" <<TOML
[package]
name = "$name"
version = "0.0.0"
edition = "2021"
publish = false
$extra
[dependencies]
sealed-session = { path = "$PWD", features = [$features] }
$deps

[workspace]
TOML
}

ensure_target "$target" || exit 0

# Clippy rather than check, with warnings as errors: code only the other
# targets use (a helper of what this target compiles out) shows here.
echo "cargo clippy --lib --target $target (default features, warnings are errors)"
cargo clippy --quiet --lib --target "$target" -- -D warnings
echo "$target: library builds"
# The same for WASI, before anything below can end the script early (no
# Node.js): its std build compiles other code paths.
wasi_target=wasm32-wasip1
ensure_target "$wasi_target" || exit 0
echo "cargo clippy --lib --target $wasi_target (default features, warnings are errors)"
cargo clippy --quiet --lib --target "$wasi_target" -- -D warnings

# The host-supplied clock and random source as the README shows them:
# examples/edge_host.rs, built as the main file of a throwaway crate.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
scratch_crate "$scratch/edge" edge-host-check
cp examples/edge_host.rs "$scratch/edge/src/main.rs"
echo "cargo check examples/edge_host.rs --target $target"
CARGO_TARGET_DIR="$PWD/target" cargo check --quiet --manifest-path "$scratch/edge/Cargo.toml" --target "$target"
echo "$target: examples/edge_host.rs builds"

# README's Workers-style snippet (wasm-bindgen glue over the runtime's
# crypto.getRandomValues and Date.now), built as a cdylib with the
# versions Cargo.lock pins for it. The block is the one after README's
# marker comment; it must hold the exported function, so that a moved
# marker cannot leave an empty crate that builds.
snippet_crate="$scratch/snippet"
# Its dependencies are those Cargo.toml locks for it, read from there.
snippet_deps=$(awk '/^\[target\..*wasm32.*"unknown".*\.dev-dependencies\]/ { inside = 1; next }
     inside && /^(\[|$)/ { exit }
     inside' Cargo.toml)
if [ -z "$snippet_deps" ]; then
    echo "Cargo.toml: no wasm32-unknown-unknown dev-dependencies for README's edge snippet" >&2
    exit 1
fi
scratch_crate "$snippet_crate" edge-snippet-check "" '
[lib]
crate-type = ["cdylib"]
' "$snippet_deps"
awk '/<!-- scripts\/check-wasm.sh builds the next block -->/ { marked = 1; next }
     marked && /^```rust/ { inside = 1; next }
     inside && /^```/ { exit }
     inside' README.md >"$snippet_crate/src/lib.rs"
if ! grep -q '^pub fn count_visits' "$snippet_crate/src/lib.rs"; then
    echo "README.md: no edge snippet with count_visits after its check-wasm.sh marker" >&2
    exit 1
fi
echo "cargo build README's edge snippet (wasm-bindgen) --target $target"
CARGO_TARGET_DIR="$PWD/target" cargo build --quiet --manifest-path "$snippet_crate/Cargo.toml" --target "$target"
echo "$target: README's edge snippet builds"

# The published test vectors, checked inside WebAssembly: a throwaway
# cdylib with both vector files built in exports `run`, and Node.js runs it
# (the vectors supply their own fixed clock and scripted random bytes).
# The counts must equal the native `verify-vectors` run's. The same cdylib
# exports `host_roundtrip`, which takes the clock and the generator from
# JavaScript imports, as a Workers-style host would, and seals, opens,
# re-seals and deletes a session with them, and `async_store_roundtrip`,
# which keeps a cart in an overflow store whose futures are not `Send` (as
# a store over a JavaScript key-value binding's promises is).
if ! command -v node >/dev/null 2>&1; then
    not_checked "node is missing (Debian: apt-get install nodejs): vectors, host round trip and $target/wasm32-wasip1 programs NOT checked"
    exit 0
fi
vectors_crate="$scratch/vectors"
scratch_crate "$vectors_crate" wasm-vectors-check '"vectors"' '
[lib]
crate-type = ["cdylib"]
'
# Beside the source, so the Rust code names them without this path.
cp test-vectors/format-v1.json test-vectors/budget-v1.json test-vectors/overflow-v1.json "$vectors_crate/src/"
cat >"$vectors_crate/src/lib.rs" <<'RUST'
//! Every published vector, and a session on the host's clock and
//! generator, checked in WebAssembly.
use std::sync::Arc;

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use sealed_session::store::{BoxFuture, OverflowStore};
use sealed_session::vectors::{check_file_text, BUDGET_FILE, FORMAT_FILE, OVERFLOW_FILE};
use sealed_session::{
    Clock, CookieAction, Error, KeyRing, MasterKey, Priority, RandomSource, Sealer, StoreError,
};

const FILES: [(&str, &str); 3] = [
    (FORMAT_FILE, include_str!("format-v1.json")),
    (BUDGET_FILE, include_str!("budget-v1.json")),
    (OVERFLOW_FILE, include_str!("overflow-v1.json")),
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

#[link(wasm_import_module = "host")]
extern "C" {
    /// Unix time in seconds (JavaScript: `Date.now() / 1000`).
    fn now_seconds() -> u64;
    /// Fills `len` bytes at `ptr` (JavaScript: `crypto.getRandomValues`);
    /// 0 on success.
    fn fill_random(ptr: *mut u8, len: usize) -> u32;
}

struct HostClock;
impl Clock for HostClock {
    fn now(&self) -> u64 {
        // SAFETY: an imported function without arguments.
        unsafe { now_seconds() }
    }
}

struct HostRandom;
impl RandomSource for HostRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        // SAFETY: the host writes exactly `buf.len()` bytes at `buf`.
        match unsafe { fill_random(buf.as_mut_ptr(), buf.len()) } {
            0 => Ok(()),
            _ => Err(Error::Random),
        }
    }
}

/// 0 when a session seals, opens, re-seals and is deleted on the host's
/// clock and generator; otherwise the number of the step that failed.
#[no_mangle]
pub extern "C" fn host_roundtrip() -> u32 {
    match roundtrip() {
        Ok(()) => 0,
        Err(step) => step,
    }
}

fn roundtrip() -> Result<(), u32> {
    let ring = || MasterKey::generate_with(&HostRandom).map(KeyRing::new);
    // Without the host's capabilities the builder says which is missing.
    let no_clock = Sealer::builder(ring().map_err(|_| 1u32)?).random(Arc::new(HostRandom)).build();
    if no_clock.err() != Some(Error::NoClock) {
        return Err(2);
    }
    let no_random = Sealer::builder(ring().map_err(|_| 1u32)?).clock(Arc::new(HostClock)).build();
    if no_random.err() != Some(Error::Random) {
        return Err(3);
    }
    let sealer = Sealer::builder(ring().map_err(|_| 1u32)?)
        .cookie_name("__Host-session")
        .clock(Arc::new(HostClock))
        .random(Arc::new(HostRandom))
        .build()
        .map_err(|_| 4u32)?;
    let before = HostClock.now();
    if before < 1_600_000_000 {
        return Err(5); // not a real clock
    }
    let mut session = sealer.new_session().map_err(|_| 6u32)?;
    if session.id() == sealer.new_session().map_err(|_| 6u32)?.id() {
        return Err(7); // two random ids alike: not a real generator
    }
    session.insert("visits", 1u32).map_err(|_| 8u32)?;
    let saved = sealer.save(&mut session).map_err(|_| 9u32)?;
    let CookieAction::Set(header) = saved.action else {
        return Err(10);
    };
    let value = header
        .strip_prefix("__Host-session=")
        .and_then(|rest| rest.split(';').next())
        .ok_or(11u32)?;
    let mut opened = sealer.open(value).map_err(|_| 12u32)?;
    let after = HostClock.now();
    let issued = opened.issued_at().ok_or(13u32)?;
    if opened.get::<u32>("visits") != Ok(Some(1)) || opened.id() != session.id() {
        return Err(14);
    }
    if issued < before || issued > after {
        return Err(15);
    }
    // A fresh nonce for every seal.
    let first = sealer.seal(&mut opened).map_err(|_| 16u32)?;
    let second = sealer.seal(&mut opened).map_err(|_| 16u32)?;
    if first == second || sealer.open(&second).is_err() {
        return Err(17);
    }
    // Logout deletes the cookie (without reading any clock of its own).
    opened.flush().map_err(|_| 18u32)?;
    match sealer.save(&mut opened).map_err(|_| 19u32)?.action {
        CookieAction::Delete(header) if header.contains("Max-Age=0") => Ok(()),
        _ => Err(20),
    }
}

/// A call into the host that completes on the second poll, as a
/// JavaScript promise does; it holds an `Rc`, as
/// `wasm_bindgen_futures::JsFuture` does, so it is not `Send`.
struct HostPromise(Rc<Cell<bool>>);

impl Future for HostPromise {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.replace(true) {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn host_call() -> HostPromise {
    HostPromise(Rc::new(Cell::new(false)))
}

/// An overflow store over a host key-value binding: each call awaits a
/// future that is not `Send`, with no wrapper asserting that it is.
#[derive(Default)]
struct HostKv(Mutex<HashMap<String, Vec<u8>>>);

impl HostKv {
    fn blobs(&self) -> usize {
        self.0.lock().map_or(usize::MAX, |blobs| blobs.len())
    }
}

impl OverflowStore for HostKv {
    fn put<'a>(&'a self, key: &'a str, blob: Vec<u8>, _ttl: Duration) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let pending = host_call();
            pending.await;
            let mut blobs = self.0.lock().map_err(|_| Error::Store(StoreError::Unavailable))?;
            blobs.insert(key.to_owned(), blob);
            Ok(())
        })
    }
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        Box::pin(async move {
            host_call().await;
            let blobs = self.0.lock().map_err(|_| Error::Store(StoreError::Unavailable))?;
            Ok(blobs.get(key).cloned())
        })
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            host_call().await;
            let mut blobs = self.0.lock().map_err(|_| Error::Store(StoreError::Unavailable))?;
            blobs.remove(key);
            Ok(())
        })
    }
}

/// Polls `future` to completion, as the host's event loop would (at most
/// 100 polls: the store's calls each suspend once).
fn block_on<F: Future>(future: F) -> Result<F::Output, u32> {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..100 {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Ok(output);
        }
    }
    Err(40)
}

/// 0 when a session whose cart does not fit in the cookie moves it to the
/// host's key-value store, loads it back on the next request and deletes
/// it at logout, through the async request API; otherwise the number of
/// the step that failed.
#[no_mangle]
pub extern "C" fn async_store_roundtrip() -> u32 {
    match async_store() {
        Ok(()) => 0,
        Err(step) => step,
    }
}

fn async_store() -> Result<(), u32> {
    let kv = Arc::new(HostKv::default());
    let key = MasterKey::generate_with(&HostRandom).map_err(|_| 21u32)?;
    let sealer = Sealer::builder(KeyRing::new(key))
        .cookie_name("__Host-session")
        .clock(Arc::new(HostClock))
        .random(Arc::new(HostRandom))
        .overflow_store(kv.clone())
        .build()
        .map_err(|_| 22u32)?;
    let cart = "line ".repeat(1200);
    let mut request = block_on(sealer.open_request_async(None::<&str>))?.map_err(|_| 23u32)?;
    let session = request.session_mut();
    session.insert_with_priority("user_id", 42u64, Priority::Critical).map_err(|_| 24u32)?;
    session.insert_with_priority("cart", &cart, Priority::Low).map_err(|_| 24u32)?;
    let saved = block_on(sealer.save_request_async(&mut request))?.map_err(|_| 25u32)?;
    let header = saved.action.header_value().ok_or(26u32)?;
    if header.len() > 4096 || kv.blobs() != 1 {
        return Err(27);
    }
    let cookie = header.split(';').next().ok_or(28u32)?;
    let mut next = block_on(sealer.open_request_async([cookie]))?.map_err(|_| 29u32)?;
    block_on(sealer.load_overflow(next.session_mut()))?.map_err(|_| 30u32)?;
    let session = next.session();
    if session.get::<String>("cart") != Ok(Some(cart)) || session.get::<u64>("user_id") != Ok(Some(42)) {
        return Err(31);
    }
    next.session_mut().flush().map_err(|_| 32u32)?;
    let saved = block_on(sealer.save_request_async(&mut next))?.map_err(|_| 33u32)?;
    match saved.action {
        CookieAction::Delete(_) if kv.blobs() == 0 => Ok(()),
        _ => Err(34),
    }
}
RUST
echo "cargo build (vectors cdylib) --target $target"
CARGO_TARGET_DIR="$PWD/target" cargo build --quiet --manifest-path "$vectors_crate/Cargo.toml" --target "$target"
wasm="$PWD/target/$target/debug/wasm_vectors_check.wasm"
# Prints the vectors' counts, then the round trip's step and the async
# store's (0: passed).
node_out=$(node -e '
const bytes = require("fs").readFileSync(process.argv[1]);
const { webcrypto } = require("crypto");
let memory;
const host = {
  now_seconds: () => BigInt(Math.floor(Date.now() / 1000)),
  fill_random: (ptr, len) => {
    webcrypto.getRandomValues(new Uint8Array(memory.buffer, ptr, len));
    return 0;
  },
};
WebAssembly.instantiate(bytes, { host }).then(({ instance }) => {
  memory = instance.exports.memory;
  const r = instance.exports.run();
  console.log(`${r >>> 16} passed, ${r & 0xffff} failed`);
  console.log(instance.exports.host_roundtrip());
  console.log(instance.exports.async_store_roundtrip());
}).catch((e) => {
  console.error(e);
  process.exit(1);
});
' "$wasm")
in_wasm=$(sed -n 1p <<<"$node_out")
roundtrip=$(sed -n 2p <<<"$node_out")
async_store=$(sed -n 3p <<<"$node_out")
# A failing native run must reach the comparison below, not stop the
# script here.
native_run=$(cargo run --quiet -p sealed-session-cli -- verify-vectors test-vectors || true)
native=$(tail -n 1 <<<"$native_run")
echo "$target (Node.js $(node --version)): $in_wasm; natively: $native"
if [[ "$in_wasm" != "$native" || "$native" != *", 0 failed" ]]; then
    echo "the vectors do not all pass in $target" >&2
    exit 1
fi
if [[ "$roundtrip" != "0" ]]; then
    echo "$target: the session on the host's clock and generator failed at step $roundtrip" >&2
    exit 1
fi
echo "$target (Node.js): a session sealed, opened, re-sealed and deleted on Date.now and crypto.getRandomValues"
if [[ "$async_store" != "0" ]]; then
    echo "$target: the overflow store whose futures are not Send failed at step $async_store" >&2
    exit 1
fi
echo "$target (Node.js): an overflow store awaiting futures that are not Send moved a cart out of the cookie, loaded it back and deleted it at logout"

# README's edge snippet run under Node.js through wasm-bindgen's glue, when
# the wasm-bindgen CLI of the version Cargo.lock pins is installed
# (`cargo install wasm-bindgen-cli --version <that version>`, a few minutes
# of build, which CI does not spend): a visit counted, a second visit on
# the returned cookie, and a forged cookie starting over; the CLI opens
# the cookies the snippet set.
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [[ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $bindgen_version" ]]; then
    echo "$target: README's edge snippet built, NOT run (wasm-bindgen CLI $bindgen_version not installed)"
else
    wasm-bindgen --target nodejs --out-dir "$snippet_crate/js" "$PWD/target/$target/debug/edge_snippet_check.wasm"
    cli=(cargo run --quiet -p sealed-session-cli --)
    key=$("${cli[@]}" keygen)
    visits=$(node -e '
const { count_visits } = require(process.argv[1]);
const key = process.argv[2];
const valueOf = (header) => {
  const match = /^__Host-session=([^;]+); HttpOnly; SameSite=Lax; Secure; Path=\/; Max-Age=\d+$/.exec(header);
  if (!match) throw new Error("unexpected Set-Cookie: " + header);
  return match[1];
};
const first = valueOf(count_visits(key, undefined));
const second = valueOf(count_visits(key, "theme=dark; __Host-session=" + first));
const forged = first.slice(0, -2) + (first.endsWith("AA") ? "BA" : "AA");
const fresh = valueOf(count_visits(key, "__Host-session=" + forged));
console.log(second);
console.log(fresh);
' "$snippet_crate/js/edge_snippet_check.js" "$key")
    opened=$(while read -r value; do
        "${cli[@]}" open --key "$key" --name __Host-session "$value"
    done <<<"$visits" | tr -d ' \n')
    if [[ "$opened" != '{"visits":2}{"visits":1}' ]]; then
        echo "$target: README's edge snippet under Node.js: expected visits 2, then 1 after a forged cookie; got $opened" >&2
        exit 1
    fi
    echo "$target (Node.js, wasm-bindgen $bindgen_version): README's edge snippet counted two visits on its own cookie and started over on a forged one"
fi

# WASI (Fastly Compute and other wasm32-wasip1 hosts): the defaults, the
# system clock and the OS generator, come through WASI; no host code.
wasi_crate="$scratch/wasi"
scratch_crate "$wasi_crate" wasi-defaults-check
cat >"$wasi_crate/src/main.rs" <<'RUST'
//! A session on the crate's defaults under WASI: exits 0 if it seals,
//! opens and stamps the real time; otherwise prints the failure.
use sealed_session::{KeyRing, MasterKey, Sealer};
use std::time::{SystemTime, UNIX_EPOCH};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?)).build()?;
    let mut session = sealer.new_session()?;
    session.insert("visits", 1u32)?;
    let token = sealer.seal(&mut session)?;
    let opened = sealer.open(&token)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let issued = opened.issued_at().ok_or("no issued-at")?;
    if opened.get::<u32>("visits")? != Some(1) || now.abs_diff(issued) > 2 || now < 1_600_000_000 {
        return Err("wrong session or time".into());
    }
    println!("sealed and opened at {issued}");
    Ok(())
}
RUST
echo "cargo build (defaults) --target $wasi_target"
CARGO_TARGET_DIR="$PWD/target" cargo build --quiet --manifest-path "$wasi_crate/Cargo.toml" --target "$wasi_target"
# The flag lets Node 18 (Debian 12's) load the wasi module; later ones
# accept it and need it no more. A trap or a thrown error exits 1, and
# the output must be the program's own line.
wasi_out=$(node --no-warnings --experimental-wasi-unstable-preview1 -e '
const { WASI } = require("wasi");
const wasi = new WASI({ version: "preview1", args: ["check"], env: {} });
const bytes = require("fs").readFileSync(process.argv[1]);
WebAssembly.instantiate(bytes, { wasi_snapshot_preview1: wasi.wasiImport }).then(({ instance }) => {
  process.exitCode = wasi.start(instance);
}).catch((e) => {
  console.error(e);
  process.exit(1);
});
' "$PWD/target/$wasi_target/debug/wasi-defaults-check.wasm") || wasi_out="(failed) $wasi_out"
if [[ "$wasi_out" != "sealed and opened at "* ]]; then
    echo "$wasi_target: the session on the defaults failed: $wasi_out" >&2
    exit 1
fi
echo "$wasi_target (Node.js WASI): $wasi_out, with the default clock and generator"
