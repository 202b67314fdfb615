//! The load test's peer: the example app's `/counter` handler on
//! `tower-sessions` with its in-memory store, the server-side design this
//! crate replaces. The cookie carries only a session id; the session lives
//! in the process, unencrypted. `benches/load.sh` runs it beside the
//! example app so that the session layer's cost has a reference point.
//!
//! ```sh
//! cargo run --release --example peer --features axum   # 127.0.0.1:3001
//! ```
//!
//! `--addr` (`ADDR`) sets where it listens.

mod router;

use std::net::SocketAddr;

use clap::Parser;

#[derive(Parser)]
#[command(about = "tower-sessions peer of the example app's /counter, for the load test")]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "ADDR", default_value = "127.0.0.1:3001")]
    addr: SocketAddr,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    println!(
        "listening on http://{} (tower-sessions, in-memory store)",
        listener.local_addr()?
    );
    axum::serve(listener, router::router()).await?;
    Ok(())
}
