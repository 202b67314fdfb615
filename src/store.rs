//! Optional server-side hooks: the overflow store (entries that do not fit
//! in the cookie) and the revocation check (ending sessions before they
//! expire).
//!
//! Both traits are object-safe (methods return boxed futures) so a sealer
//! holds them as `Arc<dyn …>`. A working in-memory overflow store (without
//! the TTLs and the cap of [`MemoryStore`]) fits in
//! a few lines:
//!
//! ```
//! use sealed_session::store::{BoxFuture, OverflowStore};
//! use sealed_session::{Error, StoreError};
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use std::time::Duration;
//!
//! #[derive(Default)]
//! struct Tiny(Mutex<HashMap<String, Vec<u8>>>);
//!
//! impl OverflowStore for Tiny {
//!     fn put<'a>(&'a self, key: &'a str, blob: Vec<u8>, _ttl: Duration) -> BoxFuture<'a, Result<(), Error>> {
//!         Box::pin(async move {
//!             let mut map = self.0.lock().map_err(|_| Error::Store(StoreError::Unavailable))?;
//!             map.insert(key.to_owned(), blob);
//!             Ok(())
//!         })
//!     }
//!     fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
//!         Box::pin(async move {
//!             let map = self.0.lock().map_err(|_| Error::Store(StoreError::Unavailable))?;
//!             Ok(map.get(key).cloned())
//!         })
//!     }
//!     fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
//!         Box::pin(async move {
//!             let mut map = self.0.lock().map_err(|_| Error::Store(StoreError::Unavailable))?;
//!             map.remove(key);
//!             Ok(())
//!         })
//!     }
//! }
//! let store: std::sync::Arc<dyn OverflowStore> = std::sync::Arc::new(Tiny::default());
//! ```
//!
//! With the `test-util` feature, `store::testing` checks a store of your
//! own against the suites this crate's stores pass (`Tiny` above would
//! fail its TTL checks).

use core::future::Future;
use core::pin::Pin;
use core::time::Duration;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::clock::Clock;
use crate::error::StoreError;
use crate::session::SessionId;
use crate::Error;

mod memory;
#[cfg(feature = "test-util")]
pub mod testing;
// The Redis store and revocations, also at the crate's root.
#[cfg(feature = "redis")]
pub use crate::redis_store::{RedisRevocations, RedisStore};
pub use memory::{MemoryStore, DEFAULT_MAX_BYTES};

/// A boxed future: what the store traits return.
///
/// `Send` on every target but one: WebAssembly without threads (a
/// `wasm32` target without the `atomics` target feature) when the `axum`
/// feature is off. There nothing runs on another thread, and the future
/// of a JavaScript promise (`wasm_bindgen_futures::JsFuture`, which an
/// edge runtime's key-value binding returns) is not `Send`, so a store
/// over such a binding awaits it directly, without a wrapper that asserts
/// `Send`. With the `axum` feature the bound stays everywhere, because
/// axum's router requires `Send` futures.
#[cfg(not(all(
    target_family = "wasm",
    not(target_feature = "atomics"),
    not(feature = "axum")
)))]
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A boxed future: what the store traits return.
///
/// Not `Send` here (WebAssembly without threads and without the `axum`
/// feature): the future of a JavaScript promise is not `Send`, and
/// nothing runs on another thread.
#[cfg(all(
    target_family = "wasm",
    not(target_feature = "atomics"),
    not(feature = "axum")
))]
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Server-side storage for entries that do not fit in the cookie.
///
/// Blobs are sealed by the crate (the store sees only ciphertext bound to
/// one session and one reference) and keyed by
/// [`overflow_key`]. Implementations map failures to
/// [`StoreError::Unavailable`], and bound every call with a timeout of
/// their own (as the connections `RedisStore::connect` makes do): the
/// crate sets none, and a request waits for its store calls, the HTTP
/// layer's session lock held. `put`, `get` and `delete` are required;
/// implement [`OverflowStore::touch`] too where the store can set a TTL,
/// or every save of a session with overflowed entries rewrites its blob.
///
/// Every server must read a `put` at once (read-your-writes across the
/// fleet): a blob that `get` does not find is taken as gone, and its
/// entries are dropped from the session (reported, and logged as
/// `entries-dropped`, cause `blob-missing`). An eventually consistent store, whose writes reach
/// other locations a while later, loses entries of a visitor whose next
/// request lands elsewhere.
pub trait OverflowStore: Send + Sync + 'static {
    /// Stores `blob` under `key` for `ttl`, replacing any previous value.
    fn put<'a>(
        &'a self,
        key: &'a str,
        blob: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// The blob under `key`, or `None` if absent or expired.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>>;
    /// Removes `key` (no error if absent).
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>>;
    /// Sets the blob under `key` to expire `ttl` from now (later or sooner
    /// than before), without reading it: `Ok(true)` if it was there,
    /// `Ok(false)` if it is absent or expired.
    ///
    /// Used to renew a blob on every save that keeps it (a session kept
    /// alive by its idle timeout keeps its blob, and a blob retired by a
    /// concurrent request comes back to life), and to give a replaced blob
    /// a short grace period for requests still running from the previous
    /// cookie. The default returns `Ok(false)`: the
    /// crate then reads and rewrites the blob instead of renewing it, and
    /// deletes a replaced blob at once.
    fn touch<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, Error>> {
        let _ = (key, ttl);
        Box::pin(async { Ok(false) })
    }

    /// The blob under `key` if it is at most `max_len` bytes; `None` if
    /// absent or expired, and [`StoreError::Rejected`] if longer (this
    /// sealer never writes such a blob: the store was altered, or a server
    /// with larger limits wrote it). The sealer reads blobs through this,
    /// with the longest blob its limits accept.
    ///
    /// The default reads the whole value with [`Self::get`] and then
    /// checks. A store that can bound the read itself should override it,
    /// so that a store whose content was altered cannot make each request
    /// for a session buffer a value of any size (`RedisStore` asks Redis
    /// for at most `max_len + 1` bytes). A server that ignores the range it
    /// is asked for (a compromised one, or one impersonated on a link
    /// without TLS) is not bounded: the client reads its whole answer
    /// before the check.
    fn get_bounded<'a>(
        &'a self,
        key: &'a str,
        max_len: usize,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        Box::pin(async move { at_most(self.get(key).await?, max_len) })
    }

    /// Stores `blob` under `key` as [`Self::put`] does, as a blob of
    /// `session_id`, then deletes that session's blobs beyond the `keep`
    /// written last (reads and renewals do not count).
    /// The sealer writes every blob through this, with
    /// [`MAX_BLOBS_PER_SESSION`].
    ///
    /// Every rewrite of a session's overflowed entries writes a new blob
    /// and leaves the one its cookie referenced a short grace; a client
    /// that replays one old cookie leaves a new blob a request, each kept
    /// for the whole idle window, which no cookie it keeps references.
    /// Capped per session, that costs at most `keep` blobs a session, so
    /// a client can grow the store only as fast as it can get new
    /// sessions (logins, which an application rate-limits). The store's
    /// record of a session's blobs must live as long as any of them, a
    /// blob renewed by [`Self::touch`] included: a blob that outlives the
    /// record escapes the cap, and a client renewing several cookies of
    /// one session would keep ever more.
    ///
    /// The default calls [`Self::put`] and deletes nothing: each blob then
    /// lasts its TTL.
    fn put_for_session<'a>(
        &'a self,
        session_id: &'a SessionId,
        key: &'a str,
        blob: Vec<u8>,
        ttl: Duration,
        keep: usize,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let _ = (session_id, keep);
        self.put(key, blob, ttl)
    }
}

/// How many blobs of one session the sealer asks a store to keep
/// ([`OverflowStore::put_for_session`]): the newest, which the session's
/// live cookie references, and those of requests still running from
/// recent copies of it. A cookie older than that many rewrites opens
/// without its overflowed entries (dropped, and reported, as for any
/// missing blob).
pub const MAX_BLOBS_PER_SESSION: usize = 8;

/// `blob`, unless it is longer than `max_len`: this sealer never writes
/// such a blob (`Rejected`: the store was altered, or a server with larger
/// limits wrote it). For `get_bounded`.
pub(crate) fn at_most(blob: Option<Vec<u8>>, max_len: usize) -> Result<Option<Vec<u8>>, Error> {
    match blob {
        Some(blob) if blob.len() > max_len => Err(Error::Store(StoreError::Rejected)),
        blob => Ok(blob),
    }
}

/// The store key of an overflow blob: `sealed-session:overflow:{<session
/// id>}:<reference>`, hex. The braces are a Redis Cluster hash tag: under a
/// cluster client every key of one session would land in one slot.
pub fn overflow_key(session_id: &SessionId, reference: &[u8; 16]) -> String {
    const PREFIX: &str = "sealed-session:overflow:{";
    let mut key = String::with_capacity(PREFIX.len() + 2 * (crate::SESSION_ID_LEN + 16) + 2);
    key.push_str(PREFIX);
    crate::key::push_hex(&mut key, session_id.as_bytes());
    key.push_str("}:");
    crate::key::push_hex(&mut key, reference);
    key
}

/// What a revocation check is asked about an opened session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RevocationQuery<'a> {
    /// The session id.
    pub session_id: SessionId,
    /// When the session started.
    pub created_at: u64,
    /// The user id entry named by the sealer's configuration, as text
    /// (strings as they are, integers in decimal, a 16-byte byte string as
    /// a hyphenated lower-case UUID, another byte string in lower-case
    /// hex), if present and not null.
    pub user: Option<&'a str>,
}

impl<'a> RevocationQuery<'a> {
    /// A query as an open asks it: for testing a [`RevocationCheck`] of
    /// your own (the struct is non-exhaustive, so it has no literal form
    /// outside this crate).
    ///
    /// ```
    /// use sealed_session::{store::RevocationQuery, SessionId};
    /// let query = RevocationQuery::new(SessionId::from_bytes([7; 16]), 1_700_000_000, Some("42"));
    /// assert_eq!((query.created_at, query.user), (1_700_000_000, Some("42")));
    /// ```
    pub const fn new(session_id: SessionId, created_at: u64, user: Option<&'a str>) -> Self {
        RevocationQuery {
            session_id,
            created_at,
            user,
        }
    }
}

/// Decides whether an otherwise valid session has been revoked: one
/// session (logout elsewhere), or every session of a user started before
/// some time ("log out everywhere").
///
/// Every open waits for the check: an implementation that asks another
/// service bounds the call with a timeout of its own (the crate sets
/// none) and answers [`StoreError::Unavailable`] when it runs out. It
/// must see a revocation as soon as it is recorded, on every server: on
/// an eventually consistent store a revoked cookie opens elsewhere until
/// the record arrives there.
pub trait RevocationCheck: Send + Sync + 'static {
    /// Whether the session is revoked.
    fn is_revoked<'a>(&'a self, query: RevocationQuery<'a>) -> BoxFuture<'a, Result<bool, Error>>;
}

/// Writes revocation records: what "log out elsewhere" and "log out
/// everywhere" call. [`MemoryRevocations`] and `RedisRevocations` implement
/// it, so an application can hold either as an `Arc<dyn RevocationStore>`
/// (in memory for tests and single servers, on Redis for a fleet) and
/// pass it to
/// [`SealerBuilder::revocation_store`](crate::SealerBuilder::revocation_store)
/// as well, which also revokes the ids that `flush` and `cycle_id` give
/// up.
///
/// Each record lives `keep_for`: as long as a cookie it revokes could still
/// open on the server that writes it, which
/// [`Sealer::revocation_ttl`](crate::Sealer::revocation_ttl) computes
/// (servers with longer timeouts accept such a cookie for longer: see
/// SECURITY.md, "Raising a timeout in a running fleet"), plus a minute (a request that opened such a cookie before the
/// revocation re-seals it when it ends, dated at most a minute after it
/// last saw the check pass, or began; the crate's own records add that
/// minute);
/// after that such
/// cookies are expired anyway.
/// Round it up to the store's resolution, accept `Duration::MAX` (keep the
/// record a very long time), and never drop a live record to make room (that would
/// bring a revoked cookie back): refuse a new one with
/// [`StoreError::OverCapacity`] instead. A session's record and its
/// user's are independent (either revokes; the exception of
/// [`Self::revoke_user_except`] spares its session the user's record
/// only), and user ids compare byte for byte.
/// `store::testing::check_revocation_store` (feature `test-util`) checks
/// these.
pub trait RevocationStore: RevocationCheck {
    /// Ends one session (by its id).
    fn revoke_session<'a>(
        &'a self,
        id: SessionId,
        keep_for: Duration,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// Ends every session of `user` created at or before now, in whole
    /// seconds ("log out everywhere"): sessions created later, or whose id
    /// was cycled later ([`Session::cycle_id`](crate::Session::cycle_id),
    /// at login), are unaffected; one created in the same second is
    /// revoked too. `user` is the user entry as the check reads it (see
    /// [`SealerBuilder::revocation`](crate::SealerBuilder::revocation)).
    ///
    /// "Now" is this store's clock, and a session's creation time that of
    /// the server that created it: a login on a server whose clock runs
    /// `d` seconds ahead, less than `d` seconds before the revocation,
    /// counts as later and survives it. Keep the servers' clocks
    /// synchronised (`clock_skew` is a tolerance, not a target); the
    /// store does not widen the window by the skew, because a user who
    /// logs in again right after a revocation (the password-reset flow)
    /// would then be logged out again for that long.
    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        keep_for: Duration,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// As [`Self::revoke_user`], except the session with id `keep`: the one
    /// making the request ("log out my other devices", after a password
    /// change). Call [`Session::cycle_id`](crate::Session::cycle_id) first
    /// and pass the new id: a copy of the current cookie (the reason for
    /// logging the others out) carries the old id, and is revoked with
    /// them only if the kept session no longer has it. It replaces any
    /// earlier record of the user's, exception included.
    fn revoke_user_except<'a>(
        &'a self,
        user: &'a str,
        keep: SessionId,
        keep_for: Duration,
    ) -> BoxFuture<'a, Result<(), Error>>;
}

/// The longest a record or blob is kept: a century. No cookie lives longer,
/// and Redis refuses expiry times whose absolute value overflows its signed
/// 64-bit milliseconds, which a setting like `max_lifetime(Duration::MAX)`
/// would otherwise reach.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How long a record or blob lives, in whole seconds: `ttl` rounded up (a
/// record must not end before a cookie it serves can), at least one second
/// and at most [`MAX_TTL`]. The revocation stores and `MemoryStore` use it.
pub(crate) fn ttl_secs(ttl: Duration) -> u64 {
    crate::sealer::whole_seconds(ttl.min(MAX_TTL)).max(1)
}

fn poisoned() -> Error {
    Error::Store(StoreError::Unavailable)
}

/// In-process revocation records: revoked session ids and per-user "not
/// before" times, each kept for the `keep_for` it was written with (see
/// [`RevocationStore`]) and purged after.
pub struct MemoryRevocations {
    records: Mutex<Records>,
    clock: Arc<dyn Clock>,
    max_records: usize,
}

/// [`MemoryRevocations`]' default cap on its records: 900,000, whose
/// table peaks at 39,321,632 bytes of heap while growing to the cap
/// (`cargo test --test limits -- --nocapture memory` prints it).
pub const DEFAULT_MAX_REVOCATION_RECORDS: usize = 900_000;

/// Both kinds of record, under one lock: a check that names a user reads
/// both at once.
#[derive(Default)]
struct Records {
    /// Revoked session ids, with when their record ends.
    sessions: HashMap<SessionId, u64>,
    users: HashMap<String, UserRecord>,
    /// The record count at which the next write purges ended records.
    purge_at: usize,
    /// When a write at the cap last purged ended records, so that writes
    /// at the cap scan the records at most once a second.
    purged_at_cap: Option<u64>,
}

/// Writes purge ended records once the count reaches twice what the last
/// purge left (and at least this many): a purge on every write would scan
/// every record under the lock that each revocation check takes, so that
/// a burst of logouts cost the square of its length.
const MIN_PURGE_AT: usize = 64;

impl Records {
    fn len(&self) -> usize {
        self.sessions.len() + self.users.len()
    }

    /// Purges the ended records if enough were written since the last
    /// purge; ended records are ignored by the check until then.
    fn purge_if_due(&mut self, now: u64) {
        if self.len() >= self.purge_at {
            self.purge(now);
        }
    }

    /// Drops the records that have ended.
    fn purge(&mut self, now: u64) {
        self.sessions.retain(|_, until| *until > now);
        self.users.retain(|_, record| record.until > now);
        self.purge_at = self.len().saturating_mul(2).max(MIN_PURGE_AT);
    }

    /// Refuses a new record at the cap (after purging ended ones, at most
    /// once a second); replacing a record is always allowed.
    fn make_room(&mut self, now: u64, max: usize, replaces: bool) -> Result<(), Error> {
        if replaces || self.len() < max {
            return Ok(());
        }
        if self.purged_at_cap != Some(now) {
            self.purged_at_cap = Some(now);
            self.purge(now);
        }
        match self.len() < max {
            true => Ok(()),
            false => Err(Error::Store(StoreError::OverCapacity)),
        }
    }
}

/// Sessions of the user created at or before `not_before` are revoked,
/// except the one with the kept id, until `until`.
struct UserRecord {
    not_before: u64,
    keep: Option<SessionId>,
    until: u64,
}

impl core::fmt::Debug for MemoryRevocations {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemoryRevocations").finish_non_exhaustive()
    }
}

impl MemoryRevocations {
    /// No revocations, timed by `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        MemoryRevocations {
            records: Mutex::new(Records::default()),
            clock,
            max_records: DEFAULT_MAX_REVOCATION_RECORDS,
        }
    }

    /// Caps the records held (sessions and users; default
    /// [`DEFAULT_MAX_REVOCATION_RECORDS`]). At the cap, once ended records
    /// are purged, a new record is refused with
    /// [`StoreError::OverCapacity`]: the save that wrote it reports it as
    /// [`SaveReport::unrevoked`](crate::SaveReport::unrevoked) (logged at
    /// `ERROR`), and copies of that cookie stay valid until they expire.
    /// Records are never evicted early, since a missing record reads as
    /// "not revoked"; a replaced one is always written.
    #[must_use]
    pub fn max_records(mut self, records: usize) -> Self {
        self.max_records = records;
        self
    }

    /// No revocations, timed by the system clock.
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    pub fn new() -> Self {
        Self::with_clock(Arc::new(crate::clock::SystemClock))
    }

    /// [`RevocationStore::revoke_session`], without the future.
    ///
    /// # Errors
    ///
    /// [`StoreError::OverCapacity`] for a new record at
    /// [`Self::max_records`] (after purging ended ones);
    /// [`StoreError::Unavailable`] if the lock was poisoned by a panic.
    pub fn revoke_session(&self, id: SessionId, keep_for: Duration) -> Result<(), Error> {
        let now = self.clock.now();
        let mut records = self.records.lock().map_err(|_| poisoned())?;
        records.purge_if_due(now);
        let replaces = records.sessions.contains_key(&id);
        records.make_room(now, self.max_records, replaces)?;
        records
            .sessions
            .insert(id, now.saturating_add(ttl_secs(keep_for)));
        Ok(())
    }

    /// [`RevocationStore::revoke_user`], without the future.
    ///
    /// # Errors
    ///
    /// As [`Self::revoke_session`].
    pub fn revoke_user(&self, user: &str, keep_for: Duration) -> Result<(), Error> {
        self.record_user(user, None, keep_for)
    }

    /// [`RevocationStore::revoke_user_except`], without the future.
    ///
    /// # Errors
    ///
    /// As [`Self::revoke_session`].
    pub fn revoke_user_except(
        &self,
        user: &str,
        keep: SessionId,
        keep_for: Duration,
    ) -> Result<(), Error> {
        self.record_user(user, Some(keep), keep_for)
    }

    fn record_user(
        &self,
        user: &str,
        keep: Option<SessionId>,
        keep_for: Duration,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let mut records = self.records.lock().map_err(|_| poisoned())?;
        records.purge_if_due(now);
        let replaces = records.users.contains_key(user);
        records.make_room(now, self.max_records, replaces)?;
        let record = UserRecord {
            not_before: now,
            keep,
            until: now.saturating_add(ttl_secs(keep_for)),
        };
        records.users.insert(user.to_owned(), record);
        Ok(())
    }

    /// How many records (sessions and users) are held, expired ones not
    /// yet purged included.
    pub fn len(&self) -> usize {
        self.records.lock().map_or(0, |r| r.len())
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RevocationStore for MemoryRevocations {
    // The inherent methods of the same names are synchronous: were one
    // renamed, the path below would resolve to the trait's method, whose
    // future does not fit here, and fail to compile rather than recurse.
    fn revoke_session<'a>(
        &'a self,
        id: SessionId,
        keep_for: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { MemoryRevocations::revoke_session(self, id, keep_for) })
    }

    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        keep_for: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { MemoryRevocations::revoke_user(self, user, keep_for) })
    }

    fn revoke_user_except<'a>(
        &'a self,
        user: &'a str,
        keep: SessionId,
        keep_for: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { MemoryRevocations::revoke_user_except(self, user, keep, keep_for) })
    }
}

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
impl Default for MemoryRevocations {
    fn default() -> Self {
        Self::new()
    }
}

impl RevocationCheck for MemoryRevocations {
    fn is_revoked<'a>(&'a self, query: RevocationQuery<'a>) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let now = self.clock.now();
            let records = self.records.lock().map_err(|_| poisoned())?;
            let session = records
                .sessions
                .get(&query.session_id)
                .is_some_and(|until| *until > now);
            let user = query.user.and_then(|user| records.users.get(user));
            let user = user.is_some_and(|record| {
                record.until > now
                    && query.created_at <= record.not_before
                    && record.keep != Some(query.session_id)
            });
            Ok(session || user)
        })
    }
}
