//! Sealing and opening the reference sessions, against the Rust peer (the
//! `cookie` crate's private jar: AES-256-GCM over `serde_json`) and against
//! the bare XChaCha20-Poly1305 cipher on a plaintext of our length.
//!
//! One group per reference session; every function in a group has the same
//! `Throughput::Bytes` (our plaintext length), so criterion's times compare
//! directly. `benches/run.sh` runs this and prints the ratios of BENCHMARKS.md.

use cookie::{Cookie, CookieJar, Key};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sealed_session::token::{self, Compression, OVERHEAD};
use sealed_session::KeyRing;
use std::hint::black_box;
use std::time::Duration;

mod reference;
use reference::{Reference, SessionData, COOKIE_NAME, KEY, OLD_KEY};

/// Compress everything worth compressing, so the small session is tried too.
const DEFLATE: Compression = Compression::Above(1);

/// Base64 length, unpadded, of `n` bytes.
fn base64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

fn bench_reference(c: &mut Criterion, reference: &Reference) {
    let data = &reference.data;
    let limits = reference::limits();

    // Ours, uncompressed and compressed, and under a retired key.
    let plain = reference::sealer(Compression::Off);
    let deflate = reference::sealer(DEFLATE);
    let old = reference::sealer_with(KeyRing::new(reference::master(&OLD_KEY)), Compression::Off);
    let rotated = reference::sealer_with(
        KeyRing::with_fallbacks(reference::master(&KEY), [reference::master(&OLD_KEY)])
            .expect("distinct keys"),
        Compression::Off,
    );
    let mut session = reference::session(&plain, data);
    let mut old_session = reference::session(&old, data);
    let token = plain.seal(&mut session).expect("seal");
    let compressed = deflate.seal(&mut session).expect("seal");
    let old_token = old.seal(&mut old_session).expect("seal");
    let plaintext_len = token::open(plain.key_ring(), COOKIE_NAME, &token, &limits)
        .expect("open")
        .plaintext()
        .len();
    assert_eq!(token.len(), base64_len(OVERHEAD + plaintext_len));
    let info = token::inspect(&compressed).expect("inspect");
    let compressed_len = info.ciphertext_len;
    assert_eq!(
        info.header.is_compressed(),
        compressed_len < plaintext_len,
        "compressed only when smaller"
    );
    assert_eq!(
        reference::read_all(&plain.open(&token).expect("open")),
        *data
    );
    assert_eq!(
        reference::read_all(&deflate.open(&compressed).expect("open")),
        *data
    );
    assert!(rotated
        .open(&old_token)
        .expect("open")
        .opened_with_fallback());
    eprintln!(
        "{}: plaintext {plaintext_len} B, token {} chars, deflated {compressed_len} B \
         (token {} chars)",
        reference.name,
        token.len(),
        compressed.len()
    );

    // The peer: the same entries as JSON in a private (AES-256-GCM) jar.
    let peer_key = Key::from(&[0x42; 64]);
    let peer_json = serde_json::to_string(data).expect("json");
    let peer_token = {
        let mut jar = CookieJar::new();
        jar.private_mut(&peer_key)
            .add(Cookie::new(COOKIE_NAME, peer_json.clone()));
        jar.get(COOKIE_NAME).expect("added").value().to_owned()
    };
    let mut peer_jar = CookieJar::new();
    peer_jar.add_original(Cookie::new(COOKIE_NAME, peer_token.clone()));
    let peer_open = |jar: &CookieJar| -> SessionData {
        let cookie = jar.private(&peer_key).get(COOKIE_NAME).expect("opens");
        serde_json::from_str(cookie.value()).expect("json")
    };
    assert_eq!(peer_open(&peer_jar), *data);
    eprintln!(
        "{}: peer JSON {} B, peer cookie {} chars",
        reference.name,
        peer_json.len(),
        peer_token.len()
    );

    // The limit: the bare cipher on a plaintext of our length.
    let bare = reference::BareCipher::new(plaintext_len);
    let mut work = vec![0u8; plaintext_len];

    let mut group = c.benchmark_group(reference.name);
    group.throughput(Throughput::Bytes(plaintext_len as u64));

    group.bench_function("ours/seal", |b| {
        b.iter(|| plain.seal(black_box(&mut session)).expect("seal"))
    });
    group.bench_function("ours/seal_deflate", |b| {
        b.iter(|| deflate.seal(black_box(&mut session)).expect("seal"))
    });
    group.bench_function("ours/build_seal", |b| {
        b.iter(|| {
            let mut session = reference::session(&plain, black_box(data));
            plain.seal(&mut session).expect("seal")
        })
    });
    group.bench_function("ours/open", |b| {
        b.iter(|| plain.open(black_box(&token)).expect("open"))
    });
    group.bench_function("ours/open_read_two", |b| {
        b.iter(|| reference::read_two(&plain.open(black_box(&token)).expect("open")))
    });
    group.bench_function("ours/open_read_all", |b| {
        b.iter(|| reference::read_all(&plain.open(black_box(&token)).expect("open")))
    });
    group.bench_function("ours/open_deflate", |b| {
        b.iter(|| deflate.open(black_box(&compressed)).expect("open"))
    });
    group.bench_function("ours/open_deflate_read_two", |b| {
        b.iter(|| reference::read_two(&deflate.open(black_box(&compressed)).expect("open")))
    });
    group.bench_function("ours/open_deflate_read_all", |b| {
        b.iter(|| reference::read_all(&deflate.open(black_box(&compressed)).expect("open")))
    });
    group.bench_function("ours/open_fallback", |b| {
        b.iter(|| rotated.open(black_box(&old_token)).expect("open"))
    });

    group.bench_function("peer/seal", |b| {
        b.iter(|| {
            let json = serde_json::to_string(black_box(data)).expect("json");
            let mut jar = CookieJar::new();
            jar.private_mut(&peer_key)
                .add(Cookie::new(COOKIE_NAME, json));
            jar.get(COOKIE_NAME).expect("added").value().to_owned()
        })
    });
    group.bench_function("peer/open", |b| b.iter(|| peer_open(black_box(&peer_jar))));

    group.bench_function("cipher/seal", |b| b.iter(|| bare.seal(&mut work)));
    group.bench_function("cipher/open", |b| b.iter(|| bare.open(&mut work)));
    group.finish();
}

fn sessions(c: &mut Criterion) {
    for reference in reference::all() {
        bench_reference(c, &reference);
    }
}

criterion_group! {
    name = benches;
    // Short runs: the machine is small and shared. Override on the command
    // line (`-- --measurement-time 10`) for tighter intervals.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = sessions
}
criterion_main!(benches);
