//! Per-request cost of the session layer in process (no network): the
//! example app's `/counter` (reads and writes the session) with and
//! without the layer, the sealer's own share of it, and the same handler
//! on the peer, `tower-sessions` with its in-memory store. Complements
//! `benches/load.sh`, whose figures include the kernel's TCP work.
//!
//! `cargo bench --bench layer --features axum`

#[path = "../examples/webapp/app.rs"]
#[allow(dead_code)]
mod app;
#[path = "counter/mod.rs"]
mod counter;
#[path = "../examples/peer/router.rs"]
mod peer;

use counter::{counter_via_sealer, first_cookie_pair, request};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tower_service::Service;

const ROUNDS: usize = 20;
const BATCH: u32 = 5_000;

/// Mean time of `batch` requests `GET path` with `cookie`, each expected
/// to set a cookie or not.
async fn time_requests(
    router: &mut axum::Router,
    path: &str,
    cookie: &str,
    sets_cookie: bool,
    batch: u32,
) -> Duration {
    let start = Instant::now();
    for _ in 0..batch {
        let response = router
            .call(request(path, Some(cookie)))
            .await
            .expect("response");
        assert_eq!(response.headers().contains_key("set-cookie"), sets_cookie);
        black_box(response);
    }
    start.elapsed() / batch
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let rounds = if quick { 1 } else { ROUNDS };
    let batch = if quick { 10 } else { BATCH };
    let (layer, mut layered, mut bare) = counter::app_routers();
    let sealer = layer.sealer();
    let mut peer = peer::router();
    // The bare router gets the same cookie as the layered one, so both
    // read requests of the same size (as in benches/load.sh).
    let pair = first_cookie_pair(&mut layered).await;
    let value = pair.split_once('=').expect("name=value").1.to_owned();
    let peer_pair = first_cookie_pair(&mut peer).await;

    let mut best = [Duration::MAX; 5];
    for _ in 0..rounds {
        let times = [
            time_requests(&mut bare, "/counter", &pair, false, batch).await,
            time_requests(&mut layered, "/counter", &pair, true, batch).await,
            time_requests(&mut layered, "/health", &pair, false, batch).await,
            {
                let start = Instant::now();
                for _ in 0..batch {
                    let _ = black_box(counter_via_sealer(sealer, &value).await);
                }
                start.elapsed() / batch
            },
            time_requests(&mut peer, "/counter", &peer_pair, true, batch).await,
        ];
        for (best, time) in best.iter_mut().zip(times) {
            *best = (*best).min(time);
        }
    }
    println!("best batch mean of {rounds} rounds of {batch} requests, in process");
    println!("| what | per request |");
    println!("|---|---|");
    println!("| bare router, GET /counter | {:.2?} |", best[0]);
    println!(
        "| session layer, GET /counter (open, read, write, save) | {:.2?} |",
        best[1]
    );
    println!(
        "| session layer, GET /health (session untouched) | {:.2?} |",
        best[2]
    );
    println!(
        "| the sealer alone: open_async + get + insert + save_async | {:.2?} |",
        best[3]
    );
    println!(
        "| layer and framework beyond the sealer | {:.2?} |",
        best[1].saturating_sub(best[0]).saturating_sub(best[3])
    );
    println!(
        "| peer: tower-sessions + MemoryStore, GET /counter | {:.2?} |",
        best[4]
    );
}
