//! The issue-6 ratios for the typical session, measured interleaved: each
//! round runs a batch of every operation in turn, and each operation keeps
//! its best batch mean. Other load on a shared machine then slows every
//! operation alike instead of whichever criterion happened to be measuring,
//! so the ratios hold still from run to run. `benches/sessions.rs` gives the
//! medians (criterion); this gives the ratios BENCHMARKS.md checks.

use cookie::{Cookie, CookieJar, Key};
use sealed_session::token::{self, Compression, OVERHEAD};
use sealed_session::{OsRandom, RandomSource};
use std::hint::black_box;
use std::time::Instant;

mod reference;
use reference::{SessionData, COOKIE_NAME};

const ROUNDS: usize = 150;
const BATCH: usize = 100;

type Op<'a> = (&'static str, Box<dyn FnMut() + 'a>);

fn main() {
    // `cargo test --benches` runs bench targets once as a smoke test.
    let quick = std::env::args().any(|a| a == "--test");
    let rounds = if quick { 2 } else { ROUNDS };

    let data = reference::typical().data;
    let limits = reference::limits();
    let plain = reference::sealer(Compression::Off);
    let deflate = reference::sealer(Compression::Above(1));
    let mut session = reference::session(&plain, &data);
    let mut session_deflate = reference::session(&deflate, &data);
    let token = plain.seal(&mut session).expect("seal");
    let plaintext_len = token::open(plain.key_ring(), COOKIE_NAME, &token, &limits)
        .expect("open")
        .plaintext()
        .len();
    // The measured size: unpadded base64 of the framed plaintext.
    assert_eq!(token.len(), ((OVERHEAD + plaintext_len) * 4).div_ceil(3));

    let peer_key = Key::from(&[0x42; 64]);
    let mut peer_jar = CookieJar::new();
    peer_jar.private_mut(&peer_key).add(Cookie::new(
        COOKIE_NAME,
        serde_json::to_string(&data).expect("json"),
    ));
    let peer_token = peer_jar.get(COOKIE_NAME).expect("added").value().to_owned();
    let mut peer_jar = CookieJar::new();
    peer_jar.add_original(Cookie::new(COOKIE_NAME, peer_token));

    let bare = reference::BareCipher::new(plaintext_len);
    let mut work = vec![0u8; plaintext_len];
    let mut work2 = vec![0u8; plaintext_len];

    let mut ops: Vec<Op> = vec![
        (
            "ours/seal",
            Box::new(|| {
                black_box(plain.seal(black_box(&mut session)).expect("seal"));
            }),
        ),
        (
            "ours/seal_deflate",
            Box::new(|| {
                black_box(deflate.seal(black_box(&mut session_deflate)).expect("seal"));
            }),
        ),
        (
            "ours/open",
            Box::new(|| {
                black_box(plain.open(black_box(&token)).expect("open"));
            }),
        ),
        (
            "ours/open_read_two",
            Box::new(|| {
                black_box(reference::read_two(
                    &plain.open(black_box(&token)).expect("open"),
                ));
            }),
        ),
        (
            "peer/seal",
            Box::new(|| {
                let json = serde_json::to_string(black_box(&data)).expect("json");
                let mut jar = CookieJar::new();
                jar.private_mut(&peer_key)
                    .add(Cookie::new(COOKIE_NAME, json));
                black_box(jar.get(COOKIE_NAME).expect("added").value().to_owned());
            }),
        ),
        (
            "peer/open",
            Box::new(|| {
                let cookie = peer_jar.private(&peer_key).get(COOKIE_NAME).expect("opens");
                black_box(serde_json::from_str::<SessionData>(cookie.value()).expect("json"));
            }),
        ),
        (
            "cipher/seal",
            Box::new(|| {
                black_box(bare.seal(&mut work));
            }),
        ),
        ("cipher/open", Box::new(|| bare.open(&mut work2))),
        (
            "os random, 24 bytes",
            Box::new(|| {
                let mut nonce = [0u8; 24];
                OsRandom.fill(&mut nonce).expect("random");
                black_box(nonce);
            }),
        ),
    ];

    let mut best = vec![f64::INFINITY; ops.len()];
    for _ in 0..rounds {
        for (i, (_, op)) in ops.iter_mut().enumerate() {
            let start = Instant::now();
            for _ in 0..BATCH {
                op();
            }
            let mean = start.elapsed().as_nanos() as f64 / BATCH as f64;
            best[i] = best[i].min(mean);
        }
    }
    let time = |name: &str| {
        let i = ops.iter().position(|(n, _)| *n == name).expect("known op");
        best[i]
    };

    println!("typical session, plaintext {plaintext_len} B: best batch mean of {rounds} interleaved rounds of {BATCH}");
    println!();
    println!("| operation | time |");
    println!("|---|---|");
    for (i, (name, _)) in ops.iter().enumerate() {
        println!("| {name} | {:.2} µs |", best[i] / 1000.0);
    }
    println!();
    println!("| typical session | ratio | target | met |");
    println!("|---|---|---|---|");
    for (name, a, b, target) in [
        ("seal / peer seal", "ours/seal", "peer/seal", 0.8),
        (
            "open + read two / peer open",
            "ours/open_read_two",
            "peer/open",
            0.5,
        ),
        ("seal / bare cipher seal", "ours/seal", "cipher/seal", 1.5),
        ("open / bare cipher open", "ours/open", "cipher/open", 1.5),
        ("deflate seal / seal", "ours/seal_deflate", "ours/seal", 3.0),
    ] {
        let ratio = time(a) / time(b);
        let met = if ratio <= target { "yes" } else { "**no**" };
        println!("| {name} | {ratio:.2} | ≤ {target} | {met} |");
    }
}
