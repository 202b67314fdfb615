//! # sealed-session
//!
//! A web application's whole session in one encrypted cookie: no server-side
//! session storage for microservices and edge functions.
//!
//! - **Format v1** (specified byte by byte in `docs/FORMAT.md`): the session
//!   as CBOR (values decoded only when read), optionally raw-deflate
//!   compressed, sealed with XChaCha20-Poly1305 under keys derived by
//!   HKDF-SHA256, bound to the cookie name, in unpadded base64url.
//! - **Key rotation**: a primary key seals; fallback keys open, selected by
//!   key id, and flag the session for re-sealing under the primary.
//! - **Time**: idle timeout, absolute lifetime, per-session expiry,
//!   clock-skew limit and sliding refresh, all against an injectable
//!   [`Clock`].
//!
//! ```
//! use sealed_session::{Error, KeyRing, MasterKey, Priority, Sealer};
//!
//! let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?))
//!     .cookie_name("id")
//!     .build()?;
//!
//! // Request 1: log in. `save` fits the session into the `Set-Cookie`
//! // budget (dropping low-priority entries, reported in `saved.report`).
//! let mut session = sealer.new_session()?;
//! session.insert_with_priority("user_id", 7u32, Priority::Critical)?;
//! let saved = sealer.save(&mut session)?;
//! let set_cookie = saved.action.header_value().expect("a cookie to set");
//! assert!(set_cookie.starts_with("id=") && set_cookie.contains("HttpOnly"));
//!
//! // Request 2: the browser sends the cookie back.
//! let cookie = saved.action.cookie_value().expect("a cookie to set");
//! let session = sealer.open(cookie)?;
//! assert_eq!(session.get::<u32>("user_id")?, Some(7));
//!
//! // Anything else fails with a kind, never a panic.
//! assert_eq!(sealer.open("garbage!").unwrap_err().kind(), "malformed");
//! # Ok::<(), Error>(())
//! ```
//!
//! With axum or tower, `http::SessionLayer` does the opening and saving
//! (feature `axum`), and handlers take the extractor `http::LazySession`
//! (the crate-root [`Session`] is not an extractor); other frameworks pass
//! the `Cookie` header to [`Sealer::open_request_async`] and save with
//! [`Sealer::save_request_async`].
//! The repository's README covers defaults, login and logout, the size
//! budget and key rotation; SECURITY.md what is and is not guaranteed.
//!
//! ## Features
//! None is on by default.
//! - `vectors`: the deterministic generator and checker of the published
//!   test vectors (used by the CLI and the tests; its Rust types are outside
//!   the version promises, the JSON files are not).
//! - `django`: read and write Django `signed_cookies` session cookies. It
//!   turns on `serde_json`'s `float_roundtrip` feature, which then applies
//!   to every crate of the build that uses `serde_json`.
//! - `axum`: `http::SessionLayer`, a `tower` layer, and
//!   `http::LazySession`, an axum extractor (the `http` module), for
//!   axum 0.8 (`axum-core` 0.5) and `http` 1.
//! - `tower-sessions`: `axum` and `http::TowerSessionsLayer`, which gives
//!   the handlers inside it a tower-sessions 0.14 `Session` over the
//!   sealed session, for axum-login 0.18 and axum-messages 0.8.
//! - `redis`: `RedisStore` (overflow store) and `RedisRevocations`
//!   (revocation check) on Redis, over a `redis` 1.8 or later 1.x `ConnectionManager`.
//! - `redis-tls`: `redis` with TLS (`rediss://`), on rustls with ring; the
//!   server's certificate is checked against the system's roots (or
//!   `SSL_CERT_FILE`'s), or those of a client the application builds
//!   (`RedisStore::connect_client`). It turns on rustls' ring provider:
//!   when another crate also turns on aws-lc-rs, rustls needs a provider
//!   installed for the process (`CryptoProvider::install_default`, at the
//!   start of `main`) before any default configuration is built. If none
//!   is installed when the store first connects over TLS through
//!   `connect`, `connect_client` or `connect_cluster`, it installs ring's,
//!   for the whole process.
//! - `redis-cluster`: `redis` on a Redis Cluster (`RedisStore::connect_cluster`,
//!   `RedisRevocations::connect_cluster`, and `connect_cluster_with` for a
//!   client builder the application configures).
//! - `test-util`: `store::testing`, conformance checks for implementers of
//!   the store traits (they panic at the first failure: for tests).
//!
//! Types of other crates in this one's API, so that a new major version of
//! one of them is a new major version of this crate: `cookie` 0.18
//! ([`SameSite`]), `zeroize` ([`MasterKey::to_base64`]'s `Zeroizing`),
//! `serde` 1 (the `Serialize` and `DeserializeOwned` bounds of
//! [`Session::get`], [`Session::insert`] and the like), and with their features `http` 1, `axum-core` 0.5's extractor traits
//! and the `tower-layer`/`tower-service` 0.3 traits (`axum`), `redis` 1 (`redis`), `serde_json` 1 and `time` 0.3's `UtcOffset` (`django`), and `tower-sessions-core` 0.14, whose `Session`
//! the layer inserts (`tower-sessions`).
//!
//! This crate has not been audited.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::missing_errors_doc)]

mod auth_hash;
mod budget;
mod cache_control;
mod clock;
mod cookie;
#[cfg(feature = "django")]
pub mod django;
mod error;
mod flash;
#[cfg(feature = "axum")]
pub mod http;
mod inflate;
mod key;
mod limits;
mod nesting;
mod overflow;
mod payload;
mod random;
#[cfg(feature = "redis")]
mod redis_store;
mod request;
mod revocation;
mod save;
mod sealer;
mod session;
pub mod store;
pub mod token;
#[cfg(feature = "vectors")]
pub mod vectors;

#[cfg(feature = "axum")]
pub use crate::http::{
    LazySession, MissingSessionLayer, SaveFailure, SessionLayer, SessionLayerBuilder,
};
pub use ::cookie::SameSite;
pub use budget::{drop_order, CookieAction, RemovedEntry, SaveReport, Saved};
pub use cache_control::private_cache_control;
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub use clock::SystemClock;
pub use clock::{Clock, FixedClock};
pub use cookie::{
    header_len, CookieSettings, DEFAULT_BUDGET, MAX_NAME_VALUE_LEN, SET_COOKIE_PREFIX_LEN,
};
pub use error::{
    Error, Expired, InvalidCookie, InvalidEntryKey, InvalidKey, InvalidSetting, Limit, Malformed,
    StoreError, ValueError,
};
pub use key::{KeyId, KeyRing, MasterKey, KEY_ID_LEN, MIN_MASTER_KEY_LEN};
pub use limits::Limits;
pub use payload::{ParsePriorityError, Priority, SESSION_ID_LEN};
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub use random::OsRandom;
pub use random::RandomSource;
#[cfg(feature = "redis")]
pub use redis_store::{RedisRevocations, RedisStore};
pub use request::{cookie_values, RequestSession, DEFAULT_MAX_COOKIES_TRIED};
pub use sealer::{
    Sealer, SealerBuilder, DEFAULT_CLOCK_SKEW, DEFAULT_COOKIE_NAME, DEFAULT_MAX_IDLE,
    DEFAULT_MAX_LIFETIME,
};
pub use session::{Expiry, Session, SessionId};
// Beside the Redis types, so that either pair is named the same way.
pub use store::{MemoryRevocations, MemoryStore};
pub use token::Compression;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
