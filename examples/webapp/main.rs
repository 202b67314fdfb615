//! A small web app whose whole session lives in one encrypted cookie: a
//! login form, logout, a cart whose lines are low priority, preferences,
//! and a page showing the cookie's size and what was dropped to fit it.
//!
//! ```sh
//! cargo run --example webapp --features axum
//! # then open http://127.0.0.1:3000
//! ```
//!
//! Options (each also read from the environment variable named), and the
//! keys, only from the environment (`KeyRing::from_env("SESSION")`: a
//! command line is visible to other users):
//! - `--addr` (`ADDR`): where to listen, default `127.0.0.1:3000`.
//! - `SESSION_KEY`: the primary master key (base64 as printed by
//!   `sealed-session keygen`, or hex prefixed by `hex:`). Without it a
//!   random key is generated and sessions do not survive a restart.
//! - `SESSION_FALLBACK_KEYS`: older keys, comma-separated, that still open
//!   cookies (which are then re-issued under the primary key).
//! - `SESSION_INCOMING_KEY`: the next primary key, during the first step of
//!   a rotation across several servers: it opens cookies and re-issues
//!   nothing (SECURITY.md, "Keys").
//! - `--budget`: most bytes of the `Set-Cookie` header (default 4096).
//! - `--insecure`: no `Secure` attribute and no `__Host-` prefix on the
//!   cookie's name, for plain HTTP on a host other
//!   than localhost (browsers treat localhost as secure already).
//! - `--bare`: serve the routes without the session layer (the load test's
//!   baseline; only `/counter` and `/health` work then).

mod app;

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use sealed_session::{Error, InvalidKey, KeyRing, MasterKey, SystemClock};

#[derive(Parser)]
#[command(about = "Example web app for sealed-session")]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "ADDR", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Most bytes the whole Set-Cookie header may take.
    #[arg(long, default_value_t = sealed_session::DEFAULT_BUDGET)]
    budget: usize,
    /// Leave out the Secure attribute (plain HTTP on a non-local host).
    #[arg(long)]
    insecure: bool,
    /// Serve without the session layer (load-test baseline).
    #[arg(long)]
    bare: bool,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, env = "LOG", default_value = "info")]
    log: tracing::Level,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    tracing_subscriber::fmt().with_max_level(args.log).init();

    let demo = app::Demo::new(Arc::new(SystemClock));
    let router = if args.bare {
        demo.bare_router()
    } else {
        let ring = match KeyRing::from_env("SESSION") {
            Ok(ring) => ring,
            // A demo's convenience, so that it runs as the README shows it.
            // A real application refuses to start without its key (README,
            // "Quickstart"): a random one logs everyone out at each restart
            // and fails behind a load balancer.
            Err(Error::InvalidKeySetting {
                reason: InvalidKey::Missing,
                ..
            }) => {
                tracing::warn!(
                    "no SESSION_KEY: using a random key; sessions end when the app stops"
                );
                KeyRing::new(MasterKey::generate()?)
            }
            Err(error) => return Err(error.into()),
        };
        let mut layer = demo.layer(ring).budget(args.budget);
        if args.insecure {
            // `__Host-` requires Secure: plain HTTP gets the bare name.
            layer = layer.cookie_name(app::INSECURE_COOKIE_NAME).secure(false);
        }
        let layer = layer.build()?;
        demo.router(layer)
    };

    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let mode = if args.bare {
        " (bare, no session layer)"
    } else {
        ""
    };
    println!("listening on http://{}{mode}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}
