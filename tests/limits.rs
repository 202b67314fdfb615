//! Each resource limit holding against hostile input, with the heap memory
//! it takes to refuse it measured by a counting allocator.
//!
//! The allocator counts per thread (tests run in parallel), live bytes and
//! their peak; a reallocation counts old and new blocks together, as both
//! may be live at once. `peak_during` reports the highest number of heap
//! bytes live above where the closure started.
//!
//! Run `cargo test --test limits -- --nocapture memory` to print the
//! figures (SECURITY.md quotes them).

use sealed_session::token::{self, Compression};
use sealed_session::{
    Error, FixedClock, KeyRing, Limit, Limits, Malformed, MasterKey, Priority, Sealer, Session,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    // `try_with`: allocations during thread teardown are not counted.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters are plain thread-local cells that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            track(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() {
            track(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        track(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = System.realloc(ptr, layout, new_size);
        if !new.is_null() {
            track(new_size as isize);
            track(-(layout.size() as isize));
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the peak of heap bytes live above
/// the starting point while it ran (on this thread).
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LIVE.with(|live| live.set(0));
    PEAK.with(|peak| peak.set(0));
    let result = f();
    let peak = PEAK.with(Cell::get);
    (result, peak.max(0) as usize)
}

const NOW: u64 = 1_700_000_000;
const KIB: usize = 1024;

fn ring() -> KeyRing {
    KeyRing::new(MasterKey::from_bytes(&[6; 32]).unwrap())
}

fn sealer_with(limits: Limits) -> Sealer {
    Sealer::builder(ring())
        .cookie_name("id")
        .limits(limits)
        .clock(Arc::new(FixedClock::new(NOW)))
        .build()
        .unwrap()
}

fn sealer() -> Sealer {
    sealer_with(Limits::default())
}

/// A CBOR head: major type and argument, shortest form.
fn head(major: u8, n: u64) -> Vec<u8> {
    let m = major << 5;
    match n {
        0..=23 => vec![m | n as u8],
        24..=0xff => vec![m | 24, n as u8],
        0x100..=0xffff => [&[m | 25][..], &(n as u16).to_be_bytes()].concat(),
        0x1_0000..=0xffff_ffff => [&[m | 26][..], &(n as u32).to_be_bytes()].concat(),
        _ => [&[m | 27][..], &n.to_be_bytes()].concat(),
    }
}

/// The fixed fields of a v1 payload, up to and including the head of the
/// entry array, which declares `count` entries.
fn payload_start(count: u64) -> Vec<u8> {
    let mut out = vec![0x85];
    out.extend(head(0, NOW));
    out.push(0xf6); // no expiry
    out.extend(head(2, 16));
    out.extend([0x11; 16]);
    out.push(0x00); // flags
    out.extend(head(4, count));
    out
}

/// One `[key, priority, value]` entry; `value` is one CBOR item.
fn entry(key: &str, value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x83];
    out.extend(head(3, key.len() as u64));
    out.extend(key.as_bytes());
    out.push(Priority::Normal.as_u8());
    out.extend(head(2, value.len() as u64));
    out.extend(value);
    out
}

/// Seals a hand-made payload as the sealer would (same key, name and
/// time), compressed when that is smaller.
fn seal_payload(payload: &[u8]) -> String {
    seal_payload_with(payload, Compression::Above(0))
}

fn seal_payload_with(payload: &[u8], compression: Compression) -> String {
    let random = sealed_session::OsRandom;
    token::seal(&ring(), "id", NOW, payload, compression, &random).unwrap()
}

// ---------------------------------------------------------------------
// Token length: refused before any decoding.
// ---------------------------------------------------------------------

/// Opens `token` on a fresh thread, so that the inflater's per-thread
/// state is counted: the result and the peak heap use.
fn open_on_a_fresh_thread(sealer: &Sealer, token: &str) -> (Result<Session, Error>, usize) {
    std::thread::scope(|s| {
        s.spawn(|| peak_during(|| sealer.open(token)))
            .join()
            .unwrap()
    })
}

#[test]
fn a_one_megabyte_cookie_is_refused_before_decoding() {
    let sealer = sealer();
    let valid_alphabet = "A".repeat(1 << 20);
    let not_even_base64 = "!".repeat(1 << 20);
    for cookie in [&valid_alphabet, &not_even_base64] {
        let (result, peak) = peak_during(|| sealer.open(cookie));
        // Not a base64 error for the second: the length is checked first.
        assert_eq!(
            result.unwrap_err(),
            Error::LimitExceeded(Limit::TokenLength)
        );
        // Nothing was decoded: no buffer of the cookie's size.
        println!("memory: 1 MiB cookie refused, peak heap {peak} bytes");
        assert!(peak < KIB, "{peak} bytes allocated to refuse a 1 MB cookie");
    }
    // One over the limit is refused; at the limit it gets to base64.
    let limit = sealer.limits().max_token_len();
    assert_eq!(
        sealer.open(&"A".repeat(limit + 1)).unwrap_err(),
        Error::LimitExceeded(Limit::TokenLength)
    );
    assert_eq!(
        sealer.open(&"A".repeat(limit - 3)).unwrap_err(),
        Error::Malformed(Malformed::Base64)
    );
    // The limit is inclusive: a real token exactly as long opens.
    let mut session = sealer.new_session().unwrap();
    session.insert("k", 1u8).unwrap();
    let real = sealer.seal(&mut session).unwrap();
    let at = |max: usize| sealer_with(Limits::default().with_max_token_len(max)).open(&real);
    assert!(at(real.len()).is_ok());
    assert_eq!(
        at(real.len() - 1).unwrap_err(),
        Error::LimitExceeded(Limit::TokenLength)
    );
    assert!(matches!(
        token::inspect(&valid_alphabet),
        Err(Error::LimitExceeded(Limit::TokenLength))
    ));
}

/// Sealing holds to the token-length limit as inclusively as opening does:
/// a session whose token is exactly the limit seals (and opens), and one
/// byte less of limit refuses it, whether the length is known before
/// sealing (uncompressed) or only after (compressed).
#[test]
fn a_token_exactly_at_the_length_limit_is_sealed_and_one_byte_over_is_refused() {
    let sealer_for = |compression: Compression, max_token_len: usize| {
        Sealer::builder(ring())
            .cookie_name("id")
            .limits(Limits::default().with_max_token_len(max_token_len))
            .compression(compression)
            .clock(Arc::new(FixedClock::new(NOW)))
            .build()
            .unwrap()
    };
    // One session, sealed by each sealer: its random id is in the payload,
    // so another session would compress to another length.
    let mut session = sealer_for(Compression::Off, 4096).new_session().unwrap();
    session.insert("note", "x".repeat(600)).unwrap();
    let mut lengths = Vec::new();
    for compression in [Compression::Off, Compression::Above(0)] {
        let len = sealer_for(compression, 4096)
            .seal(&mut session)
            .unwrap()
            .len();
        lengths.push(len);
        let at_limit = sealer_for(compression, len);
        let token = at_limit.seal(&mut session).unwrap();
        assert_eq!(token.len(), len, "{compression:?}");
        assert!(at_limit.open(&token).is_ok(), "{compression:?}");
        assert_eq!(
            sealer_for(compression, len - 1)
                .seal(&mut session)
                .unwrap_err(),
            Error::LimitExceeded(Limit::TokenLength),
            "{compression:?}"
        );
    }
    assert!(lengths[1] < lengths[0], "compressed: {lengths:?}");
}

#[cfg(feature = "django")]
#[test]
fn a_one_megabyte_django_cookie_is_refused_before_decoding() {
    let codec = sealed_session::django::DjangoCodec::builder("secret")
        .clock(Arc::new(FixedClock::new(NOW)))
        .build()
        .unwrap();
    let cookie = format!("{}:1r31eq:{}", "e".repeat(1 << 20), "A".repeat(43));
    let (result, peak) = peak_during(|| codec.open(&cookie));
    assert_eq!(
        result.unwrap_err(),
        Error::LimitExceeded(Limit::TokenLength)
    );
    assert!(peak < KIB, "{peak} bytes");
}

// ---------------------------------------------------------------------
// Decompression: refused at the cap, with memory bounded by the cap.
// ---------------------------------------------------------------------

/// A real payload whose one value is `len` zero bytes: the session
/// inflates to about `len` bytes.
fn zeros_payload(len: usize) -> Vec<u8> {
    zeros_payload_keyed("bomb", len)
}

fn zeros_payload_keyed(key: &str, len: usize) -> Vec<u8> {
    let mut payload = payload_start(1);
    let mut value = head(2, len as u64);
    value.resize(value.len() + len, 0);
    payload.extend(entry(key, &value));
    payload
}

/// Heap bytes that opening may take besides the inflated output: the
/// decoded token, the inflater's state, the session index.
const OPEN_OVERHEAD: usize = 64 * KIB;

/// The largest all-zeros bomb (halving from 8 MiB) whose token still fits
/// in `max_len` characters, with its inflated size: the ratio depends on
/// the library's compression level.
fn largest_bomb_within(max_len: usize) -> (String, usize) {
    let mut size = 8 << 20;
    loop {
        let token = seal_payload(&zeros_payload(size));
        if token.len() <= max_len {
            return (token, size);
        }
        size /= 2;
    }
}

#[test]
fn a_compression_bomb_within_the_cookie_size_is_refused_with_bounded_memory() {
    let sealer = sealer();
    let cap = sealer.limits().max_decompressed();
    // Zeros deflate about 1000 to 1: megabytes still fit a legal cookie.
    let (token, size) = largest_bomb_within(sealer.limits().max_token_len());
    assert!(size >= 8 * cap, "only {size} bytes fit in a cookie");
    assert!(token::inspect(&token).unwrap().header.is_compressed());

    let (result, peak) = open_on_a_fresh_thread(&sealer, &token);
    assert_eq!(
        result.unwrap_err(),
        Error::LimitExceeded(Limit::DecompressedSize)
    );
    println!(
        "memory: {size} byte compression bomb ({} byte token) refused, peak heap {peak} bytes (cap {cap})",
        token.len()
    );
    assert!(
        peak <= 2 * cap + OPEN_OVERHEAD,
        "peak {peak} bytes for a cap of {cap}"
    );
}

#[test]
fn the_memory_to_refuse_a_bomb_does_not_grow_with_the_bomb() {
    // With the cookie length limit lifted, a 64 MiB bomb (64 KiB deflated)
    // costs what a 3 MiB one does: the cap, not the bomb, sets the bound.
    let sealer = sealer_with(Limits::default().with_max_token_len(1 << 20));
    let cap = sealer.limits().max_decompressed();
    let token = seal_payload(&zeros_payload(64 << 20));
    let (result, peak) = open_on_a_fresh_thread(&sealer, &token);
    assert_eq!(
        result.unwrap_err(),
        Error::LimitExceeded(Limit::DecompressedSize)
    );
    let token_bytes = token.len() * 3 / 4;
    println!(
        "memory: 64 MiB compression bomb ({} byte token) refused, peak heap {peak} bytes (cap {cap})",
        token.len()
    );
    assert!(
        peak <= token_bytes + 2 * cap + OPEN_OVERHEAD,
        "peak {peak} bytes for a cap of {cap}"
    );
}

#[test]
fn a_payload_at_the_cap_opens_and_one_byte_over_does_not() {
    let sealer = sealer();
    let cap = sealer.limits().max_decompressed();
    // Find the value length that makes the payload exactly `cap` bytes.
    let fixed = zeros_payload(0).len();
    let mut len = cap - fixed;
    while zeros_payload(len).len() > cap {
        len -= 1;
    }
    let at_cap = zeros_payload(len);
    assert_eq!(at_cap.len(), cap);
    let session = sealer.open(&seal_payload(&at_cap)).unwrap();
    assert_eq!(
        session
            .get::<serde_bytes_len::Len>("bomb")
            .unwrap()
            .unwrap()
            .0,
        len
    );

    // One byte longer key, same value: one byte over.
    let over = zeros_payload_keyed("bombs", len);
    assert_eq!(over.len(), cap + 1);
    assert_eq!(
        sealer.open(&seal_payload(&over)).unwrap_err(),
        Error::LimitExceeded(Limit::DecompressedSize)
    );
}

/// Regression: the inflater gave up as soon as it had read all of its input,
/// though it may still hold output for the next call. Valid compressed
/// payloads just over its 32 KiB window then failed to open as
/// `Malformed::Compression`, and payloads just over the cap failed with that
/// error instead of the limit.
#[test]
fn compressed_payloads_across_the_window_and_the_cap_open_or_hit_the_limit() {
    let sealer = sealer();
    let cap = sealer.limits().max_decompressed();
    let fixed = zeros_payload(0).len();
    let sizes = (32_700..33_100)
        .step_by(7)
        .chain(cap - fixed - 8..cap - fixed + 8);
    for len in sizes {
        for fill in [0u8, b'a'] {
            let mut payload = zeros_payload(len);
            let n = payload.len();
            payload[n - len..].fill(fill);
            let token = seal_payload(&payload);
            assert!(token::inspect(&token).unwrap().header.is_compressed());
            match sealer.open(&token) {
                Ok(session) => {
                    assert!(payload.len() <= cap, "{} bytes opened", payload.len());
                    let value = session.get::<serde_bytes_len::Len>("bomb").unwrap();
                    assert_eq!(value.unwrap().0, len);
                }
                Err(err) => {
                    assert!(payload.len() > cap, "{} bytes: {err:?}", payload.len());
                    assert_eq!(err, Error::LimitExceeded(Limit::DecompressedSize));
                }
            }
        }
    }
}

/// Deserializes a CBOR byte string to its length.
mod serde_bytes_len {
    pub struct Len(pub usize);

    impl<'de> serde::Deserialize<'de> for Len {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visitor;
            impl serde::de::Visitor<'_> for Visitor {
                type Value = Len;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a byte string")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Len, E> {
                    Ok(Len(v.len()))
                }
                fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Len, E> {
                    Ok(Len(v.len()))
                }
            }
            d.deserialize_byte_buf(Visitor)
        }
    }
}

// ---------------------------------------------------------------------
// Nesting depth: refused when the value is read, at any depth, without
// overflowing the stack.
// ---------------------------------------------------------------------

/// `depth` nested containers of one kind around a null.
fn nested(depth: usize, open: &[u8], close: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(depth * (open.len() + close.len()) + 1);
    for _ in 0..depth {
        value.extend(open);
    }
    value.push(0xf6);
    for _ in 0..depth {
        value.extend(close);
    }
    value
}

/// Every way to nest CBOR: definite and indefinite arrays, maps (in the
/// value position) and tags.
const NESTINGS: [(&str, &[u8], &[u8]); 4] = [
    ("array", &[0x81], &[]),
    ("indefinite array", &[0x9f], &[0xff]),
    ("map", &[0xa1, 0x60], &[]),
    ("tag", &[0xc6], &[]),
];

fn read_all_ways(session: &sealed_session::Session, key: &str) -> [Result<(), Error>; 3] {
    [
        session.get::<ciborium::Value>(key).map(drop),
        session.get::<serde_json::Value>(key).map(drop),
        session.get::<serde::de::IgnoredAny>(key).map(drop),
    ]
}

#[test]
fn nesting_beyond_the_limit_is_refused_when_read() {
    let sealer = sealer();
    let limit = sealer.limits().max_depth();
    for (kind, open, close) in NESTINGS {
        for depth in 0..=limit + 8 {
            let mut payload = payload_start(1);
            payload.extend(entry("v", &nested(depth, open, close)));
            // Opening indexes the payload without decoding values.
            let session = sealer.open(&seal_payload(&payload)).unwrap();
            for (way, result) in read_all_ways(&session, "v").into_iter().enumerate() {
                match result {
                    // serde_json has no tags: a tagged null is not JSON.
                    Err(Error::Value(_)) if kind == "tag" && way == 1 && depth > 0 => {}
                    Ok(()) => assert!(depth <= limit, "{kind} depth {depth} read {way}"),
                    Err(Error::LimitExceeded(Limit::Depth)) => {
                        assert!(depth > limit, "{kind} depth {depth} refused {way}")
                    }
                    Err(err) => panic!("{kind} depth {depth} read {way}: {err:?}"),
                }
            }
        }
    }
}

#[test]
fn no_depth_overflows_the_stack() {
    // From one past the limit up to what the decompression cap lets in
    // (~64 K levels), every depth is read on one small stack (a quarter of
    // a default thread's): the decoder stops at the limit, so the stack it
    // needs does not grow with the input. (Unoptimized, the 32 allowed
    // levels of the three decoders below take about 300 KiB; without the
    // limit 64 K levels would need some 2000 times that.)
    let sealer = sealer();
    let cap = sealer.limits().max_decompressed();
    let limit = sealer.limits().max_depth();
    let fixed = payload_start(1).len() + entry("v", &[]).len() + 8;
    std::thread::Builder::new()
        .stack_size(512 * KIB)
        .spawn(move || {
            for (kind, open, close) in NESTINGS {
                let per_level = open.len() + close.len();
                for depth in [limit + 1, 100, 1_000, 10_000, (cap - fixed) / per_level] {
                    let mut payload = payload_start(1);
                    payload.extend(entry("v", &nested(depth, open, close)));
                    let token = seal_payload(&payload);
                    assert!(token.len() <= sealer.limits().max_token_len());
                    let session = sealer.open(&token).unwrap();
                    for result in read_all_ways(&session, "v") {
                        assert!(
                            matches!(
                                result,
                                Err(Error::LimitExceeded(Limit::Depth) | Error::Value(_))
                            ),
                            "{kind} depth {depth}: {result:?}"
                        );
                    }
                    assert_eq!(
                        session.get::<ciborium::Value>("v").unwrap_err(),
                        Error::LimitExceeded(Limit::Depth)
                    );
                }
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

/// A tag 2 or 3 on at most 16 bytes is a bignum, read as an integer: no
/// level (FORMAT.md §11.5), unlike any other tag.
#[test]
fn a_bignum_tag_is_no_level() {
    let sealer = sealer();
    let limit = sealer.limits().max_depth();
    let within = |arrays: usize, inner: &[u8]| {
        let mut value = vec![0x81; arrays];
        value.extend(inner);
        let mut payload = payload_start(1);
        payload.extend(entry("v", &value));
        let session = sealer.open(&seal_payload(&payload)).unwrap();
        session.get::<ciborium::Value>("v").map(drop)
    };
    assert_eq!(within(limit, &[0xc2, 0x41, 0x01]), Ok(()));
    assert_eq!(
        within(
            limit,
            &[0xc3, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        ),
        Ok(())
    );
    let refused = Err(Error::LimitExceeded(Limit::Depth));
    assert_eq!(within(limit + 1, &[0xc2, 0x41, 0x01]), refused);
    // Another tag on the same bytes, or a bignum tag on 17 bytes, is one.
    assert_eq!(within(limit, &[0xc6, 0x41, 0x01]), refused);
    let mut long = vec![0xc2, 0x51];
    long.extend([0; 17]);
    assert_eq!(within(limit, &long), refused);

    // The writer counts the same way on insert (a u128 over 2^64 encodes
    // as a bignum), so what it stores reads back under the rule.
    let at_limit = vec![vec![u128::MAX]];
    let sealer = sealer_with(Limits::default().with_max_depth(2));
    let mut session_at_two = sealer.new_session().unwrap();
    assert_eq!(session_at_two.insert("v", &at_limit), Ok(()));
    let token = sealer.seal(&mut session_at_two).unwrap();
    let read: Vec<Vec<u128>> = sealer.open(&token).unwrap().get("v").unwrap().unwrap();
    assert_eq!(read, at_limit);
    let one_level = sealer_with(Limits::default().with_max_depth(1));
    let mut session_at_one = one_level.new_session().unwrap();
    assert_eq!(
        session_at_one.insert("v", &at_limit),
        Err(Error::LimitExceeded(Limit::Depth))
    );
}

#[test]
fn a_lower_depth_limit_applies() {
    let sealer = sealer_with(Limits::default().with_max_depth(4));
    let mut payload = payload_start(2);
    payload.extend(entry("ok", &nested(4, &[0x81], &[])));
    payload.extend(entry("deep", &nested(5, &[0x81], &[])));
    let session = sealer.open(&seal_payload(&payload)).unwrap();
    assert!(session.get::<ciborium::Value>("ok").is_ok());
    assert_eq!(
        session.get::<ciborium::Value>("deep").unwrap_err(),
        Error::LimitExceeded(Limit::Depth)
    );
}

// ---------------------------------------------------------------------
// Entry count: refused while indexing, before allocating for it.
// ---------------------------------------------------------------------

#[test]
fn a_huge_declared_entry_count_is_refused_without_allocating_for_it() {
    let sealer = sealer();
    for count in [u64::MAX, 1 << 40, 1_000_000, 257] {
        let mut payload = payload_start(count);
        payload.extend(entry("a", &[0x01]));
        // Uncompressed: only the indexing is measured.
        let token = seal_payload_with(&payload, Compression::Off);
        let (result, peak) = peak_during(|| sealer.open(&token));
        assert_eq!(
            result.unwrap_err(),
            Error::LimitExceeded(Limit::Entries),
            "count {count}"
        );
        println!("memory: {count} declared entries refused, peak heap {peak} bytes");
        // The decoded token (about 100 bytes) and nothing sized by the count.
        assert!(peak < KIB, "count {count}: {peak} bytes");
    }
}

#[test]
fn an_entry_count_beyond_the_bytes_left_is_refused_before_allocating_for_it() {
    // The entry limit out of the way: only the bytes left bound the count.
    let sealer = sealer_with(Limits::default().with_max_entries(1 << 20));
    let padding = entry("a", &[0; 2000]);
    // Every entry takes at least one byte: one more than the bytes left
    // cannot be, whatever they hold (counts of 256 and more: one head size).
    let count = padding.len() as u64 + 1;
    let mut payload = payload_start(count);
    payload.extend(&padding);
    let token = seal_payload_with(&payload, Compression::Off);
    let (result, peak) = peak_during(|| sealer.open(&token));
    assert_eq!(result.unwrap_err(), Error::Malformed(Malformed::Payload));
    println!(
        "memory: {count} declared entries in {} bytes refused, peak heap {peak} bytes",
        payload.len()
    );
    // The decoded token and the plaintext, not a table sized by the count.
    assert!(peak < 3 * payload.len(), "{peak} bytes");
}

fn entries_payload(count: usize) -> Vec<u8> {
    let mut payload = payload_start(count as u64);
    for i in 0..count {
        payload.extend(entry(&format!("k{i}"), &[0x01]));
    }
    payload
}

#[test]
fn the_entry_limit_is_exact() {
    let sealer = sealer();
    let limit = sealer.limits().max_entries();
    let session = sealer.open(&seal_payload(&entries_payload(limit))).unwrap();
    assert_eq!(session.len(), limit);
    assert_eq!(
        sealer
            .open(&seal_payload(&entries_payload(limit + 1)))
            .unwrap_err(),
        Error::LimitExceeded(Limit::Entries)
    );

    // A count within the limit that the bytes cannot hold is malformed.
    let mut short = payload_start(200);
    short.extend(entry("a", &[0x01]));
    assert_eq!(
        sealer.open(&seal_payload(&short)).unwrap_err(),
        Error::Malformed(Malformed::Payload)
    );

    // Inserting past the limit fails too.
    let mut session = session;
    assert_eq!(
        session.insert("one-more", 1).unwrap_err(),
        Error::LimitExceeded(Limit::Entries)
    );
}

#[test]
fn overflowed_keys_count_towards_the_entry_limit() {
    let sealer = sealer_with(Limits::default().with_max_entries(4));
    // 3 resident entries and an overflow list of 2 keys: 5 > 4.
    let mut payload = entries_payload(3);
    payload[0] = 0x86; // six fields: with the overflow part
    payload.push(0x82);
    payload.extend(head(2, 16));
    payload.extend([0x22; 16]);
    payload.push(0x82);
    for key in ["o1", "o2"] {
        payload.push(0x82);
        payload.extend(head(3, 2));
        payload.extend(key.as_bytes());
        payload.push(0x01);
    }
    assert_eq!(
        sealer.open(&seal_payload(&payload)).unwrap_err(),
        Error::LimitExceeded(Limit::Entries)
    );
    // With a limit of 5 the same payload opens.
    let roomier = sealer_with(Limits::default().with_max_entries(5));
    assert_eq!(roomier.open(&seal_payload(&payload)).unwrap().len(), 5);
}

#[test]
fn revocation_records_stop_at_the_cap_with_bounded_memory() {
    use sealed_session::store::{MemoryRevocations, DEFAULT_MAX_REVOCATION_RECORDS};
    use sealed_session::{SessionId, StoreError};
    use std::time::Duration;

    let clock = Arc::new(FixedClock::new(NOW));
    let id = |n: usize| {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&(n as u64).to_le_bytes());
        SessionId::from_bytes(bytes)
    };
    let hour = Duration::from_secs(3600);
    let (revocations, peak) = peak_during(|| {
        let revocations = MemoryRevocations::with_clock(clock.clone());
        for n in 0..DEFAULT_MAX_REVOCATION_RECORDS {
            revocations.revoke_session(id(n), hour).unwrap();
        }
        revocations
    });
    println!(
        "memory of {DEFAULT_MAX_REVOCATION_RECORDS} revocation records (the default cap): {peak} bytes at the peak"
    );
    assert!(peak <= 40 * KIB * KIB, "{peak} bytes");
    let full = Err(Error::Store(StoreError::OverCapacity));
    let last = DEFAULT_MAX_REVOCATION_RECORDS;
    assert_eq!(revocations.revoke_session(id(last), hour), full);
    assert_eq!(revocations.revoke_user("ada", hour), full);
    // A record already held may be renewed at the cap.
    assert_eq!(revocations.revoke_session(id(0), hour), Ok(()));
    assert_eq!(revocations.len(), DEFAULT_MAX_REVOCATION_RECORDS);
    // Once records end, a write at the cap purges them and goes in.
    clock.advance(3600);
    assert_eq!(revocations.revoke_session(id(last), hour), Ok(()));
    assert_eq!(revocations.len(), 1);

    // A lower cap counts users too.
    let small = MemoryRevocations::with_clock(clock.clone()).max_records(2);
    small.revoke_user("ada", hour).unwrap();
    small.revoke_session(id(1), hour).unwrap();
    assert_eq!(small.revoke_user("bob", hour), full);
    assert_eq!(small.revoke_user("ada", hour), Ok(()));
}
