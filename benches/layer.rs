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
#[path = "../examples/peer/router.rs"]
mod peer;

use sealed_session::{KeyRing, MasterKey, SystemClock};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_service::Service;

const ROUNDS: usize = 20;
const BATCH: u32 = 5_000;

fn request(path: &str, cookie: Option<&str>) -> http::Request<axum::body::Body> {
    let mut builder = http::Request::get(path);
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    builder
        .body(axum::body::Body::empty())
        .expect("valid request")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let rounds = if quick { 1 } else { ROUNDS };
    let batch = if quick { 10 } else { BATCH };
    let demo = app::Demo::new(Arc::new(SystemClock));
    let layer = demo
        .layer(KeyRing::new(MasterKey::generate().expect("key")))
        .build()
        .expect("layer");
    let handle = layer.clone();
    let sealer = handle.sealer();
    let mut layered = demo.router(layer);
    let mut bare = demo.bare_router();
    let first = layered
        .call(request("/counter", None))
        .await
        .expect("response");
    let set_cookie = first.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let pair = set_cookie.split(';').next().expect("pair").to_owned();
    let value = pair.split_once('=').expect("name=value").1.to_owned();

    let mut peer = peer::router();
    let first = peer
        .call(request("/counter", None))
        .await
        .expect("peer response");
    let peer_pair = first.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();

    let mut best = [Duration::MAX; 5];
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..batch {
            black_box(bare.call(request("/counter", None)).await.expect("bare"));
        }
        best[0] = best[0].min(t.elapsed() / batch);
        let t = Instant::now();
        for _ in 0..batch {
            let response = layered
                .call(request("/counter", Some(&pair)))
                .await
                .expect("layered");
            assert!(response.headers().contains_key("set-cookie"));
            black_box(response);
        }
        best[1] = best[1].min(t.elapsed() / batch);
        let t = Instant::now();
        for _ in 0..batch {
            black_box(
                layered
                    .call(request("/health", Some(&pair)))
                    .await
                    .expect("health"),
            );
        }
        best[2] = best[2].min(t.elapsed() / batch);
        let t = Instant::now();
        for _ in 0..batch {
            let mut session = sealer.open_async(&value).await.expect("open");
            let visits: u64 = session.get("visits").expect("get").unwrap_or(0);
            session.insert("visits", &(visits + 1)).expect("insert");
            black_box(sealer.save_async(&mut session).await.expect("save"));
        }
        best[3] = best[3].min(t.elapsed() / batch);
        let t = Instant::now();
        for _ in 0..batch {
            let response = peer
                .call(request("/counter", Some(&peer_pair)))
                .await
                .expect("peer");
            assert!(response.headers().contains_key("set-cookie"));
            black_box(response);
        }
        best[4] = best[4].min(t.elapsed() / batch);
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
