//! Heap allocations per seal and per open of the typical reference session,
//! and per request through the session layer, counted by a global allocator
//! that wraps the system one.
//!
//! Budget: at most 4 allocations per open and per seal (issue 6), and at
//! most `LAYER_BUDGET` more per request with the layer than without it.
//! Run with `cargo test --all-features --test allocations -- --nocapture`
//! to see the figures.

use sealed_session::{Compression, Session};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

#[cfg(feature = "axum")]
#[path = "../examples/webapp/app.rs"]
#[allow(dead_code)]
mod app;
#[cfg(feature = "axum")]
#[path = "../benches/counter/mod.rs"]
mod counter;
#[path = "../benches/reference/mod.rs"]
mod reference;

/// Most heap allocations allowed per open and per seal of the typical session.
const BUDGET: usize = 4;

/// Counts allocations made by the current thread while counting is on, so
/// the test harness's other threads do not disturb the figures.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the thread-locals may be gone while a thread shuts down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; the only addition is a
// thread-local counter, which never allocates (const-initialised `Cell`s).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A reallocation is an allocation for this budget.
        note_allocation();
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the allocations it made on this
/// thread (the result's own drop is not counted: it happens later).
fn count<T>(f: impl FnOnce() -> T) -> (T, usize) {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    let out = f();
    COUNTING.with(|on| on.set(false));
    (out, ALLOCATIONS.with(Cell::get))
}

struct Figures {
    seal: usize,
    open: usize,
    open_read_two: usize,
    /// A save under the budget: the seal plus the `Set-Cookie` string.
    save: usize,
}

fn measure(compression: Compression) -> Figures {
    let typical = reference::typical();
    let sealer = reference::sealer(compression);
    let mut session: Session = reference::session(&sealer, &typical.data);
    // Warm up: thread-local compressor state, lazily initialised statics.
    let token = sealer.seal(&mut session).expect("seal");
    let _ = reference::read_two(&sealer.open(&token).expect("open"));

    let (token, seal) = count(|| sealer.seal(&mut session).expect("seal"));
    let (opened, open) = count(|| sealer.open(&token).expect("open"));
    assert_eq!(reference::read_all(&opened), typical.data);
    let (_, open_read_two) = count(|| reference::read_two(&sealer.open(&token).expect("open")));
    session.insert("touched", 1u8).expect("insert");
    let (saved, save) = count(|| sealer.save(&mut session).expect("save"));
    assert!(saved.action.header_value().is_some());
    Figures {
        seal,
        open,
        open_read_two,
        save,
    }
}

#[test]
fn typical_session_allocations_within_budget() {
    for (name, compression) in [
        ("uncompressed", Compression::Off),
        ("deflate", Compression::Above(1)),
    ] {
        let f = measure(compression);
        println!(
            "typical session, {name}: seal {} allocations, open {}, open + read two keys {}, \
             save with its Set-Cookie string {} (budget {BUDGET} for each)",
            f.seal, f.open, f.open_read_two, f.save
        );
        assert!(f.seal <= BUDGET, "{name} seal: {} allocations", f.seal);
        assert!(f.save <= BUDGET, "{name} save: {} allocations", f.save);
        assert!(f.open <= BUDGET, "{name} open: {} allocations", f.open);
        assert!(
            f.open_read_two <= BUDGET,
            "{name} open + read two: {} allocations",
            f.open_read_two
        );
    }
}

/// Most heap allocations one request that opens, reads, writes and saves the
/// session may make beyond the same request without the layer.
#[cfg(feature = "axum")]
const LAYER_BUDGET: usize = 20;

/// The example app's `GET /counter` (reads and writes the session) with the
/// layer, against the same handler and request without it: the difference
/// is the session's share (layer, extractor, sealer, `Set-Cookie`), of
/// which the sealer's own open, read, write and save are counted apart.
#[cfg(feature = "axum")]
#[test]
fn layered_request_allocations_within_budget() {
    use tower_service::Service;

    // One thread: the counter is per thread, and the runtime polls every
    // future on the thread that calls `block_on`.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let (layer, mut layered, mut bare) = counter::app_routers();
    let sealer = layer.sealer();
    let pair = runtime.block_on(counter::first_cookie_pair(&mut layered));
    let value = pair.split_once('=').expect("name=value").1.to_owned();

    let run = |router: &mut axum::Router| {
        let request = counter::request("/counter", Some(&pair));
        let (response, allocations) = count(|| runtime.block_on(router.call(request)));
        (response.expect("response"), allocations)
    };
    // Warm up both (lazily initialised statics, thread-locals).
    run(&mut bare);
    run(&mut layered);
    let (response, without) = run(&mut bare);
    assert!(!response.headers().contains_key("set-cookie"));
    let (response, with) = run(&mut layered);
    assert!(response.headers().contains_key("set-cookie"));
    let (_, sealer_only) = count(|| runtime.block_on(counter::counter_via_sealer(sealer, &value)));
    let extra = with.saturating_sub(without);
    println!(
        "GET /counter: {with} allocations with the session layer, {without} without \
         (+{extra}, budget {LAYER_BUDGET}); the sealer's open, get, insert and save alone: {sealer_only}"
    );
    assert!(extra <= LAYER_BUDGET, "the layer added {extra} allocations");
    assert!(sealer_only <= extra, "the sealer alone made {sealer_only}");
}
