//! The request's session handle: opened on first use, saved by the layer.

use core::fmt;
use core::time::Duration;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Mutex;

use super::layer::Shared;
use crate::{CookieAction, Error, Expiry, Priority, RequestSession, Sealer, Session, SessionId};

/// The session of the current request, as an axum extractor.
///
/// The cookie is opened when a method is first called (each method is
/// `async` for that reason, and because reading an entry that lives in the
/// overflow store loads it). Clones share one session. The layer saves it
/// after the handler returns; changes made after that (from a spawned task
/// holding a clone, say) are lost, and logged at `WARN`; so are changes
/// made after the inner service failed or the request was dropped (the
/// client went away).
///
/// Methods fail as the core [`Session`] methods do, with the error of a new
/// session's random id, or, for those that read entries living in the
/// overflow store ([`LazySession::get`], [`LazySession::get_or_remove`],
/// [`LazySession::get_or_insert_with`], [`LazySession::take`],
/// [`LazySession::with_loaded`]), when the store is unavailable, or this
/// server has no overflow store
/// ([`StoreError::NotConfigured`](crate::StoreError::NotConfigured): a
/// setup mistake; a save on such a server drops those entries instead).
/// A blob gone from the store, or one that cannot be read here
/// ([`StoreError::Rejected`](crate::StoreError::Rejected)), is not an error: its
/// entries read as absent and are dropped, logged with their
/// keys (see [`Sealer::get_loading`](crate::Sealer::get_loading)). A bad cookie is not an error either
/// (the request gets a fresh session, see [`LazySession::rejected_cookie`]).
#[derive(Clone)]
#[doc(alias = "Session")]
pub struct LazySession {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    state: Mutex<State>,
    /// The layer has saved the session (or decided not to), or the inner
    /// service failed, or the request was dropped: changes made from now on
    /// are lost. Outside the lock, so that the drop path can set it without
    /// waiting.
    finished: AtomicBool,
    /// The handler asked for no save ([`LazySession::skip_save`]).
    skip_save: AtomicBool,
    /// The sealer's previous cookie name is another layer's current one on
    /// this request: its cookies are that layer's, not to open or delete.
    previous_name_taken: AtomicBool,
    /// The session of the layer around this one on the request, if any.
    enclosing: std::sync::OnceLock<LazySession>,
    /// A tower-sessions `Session` deleted the session's record (its
    /// `flush` or `cycle_id`) and the bridge has yet to apply that: a
    /// request that ends without it (the inner service failed, the
    /// request was dropped) ends the session as a logout, as
    /// tower-sessions' store deletion would have.
    end_pending: AtomicBool,
}

/// The request's `Cookie` header values (reference-counted, not copied),
/// kept until the session is opened. HTTP/1.1 clients send one header, which
/// needs no allocation; HTTP/2 ones may split cookies over several.
pub(crate) enum CookieHeaders {
    One(Option<HeaderValue>),
    Many(Vec<HeaderValue>),
}

impl CookieHeaders {
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(header::COOKIE).iter();
        match (values.next(), values.next()) {
            (Some(first), Some(second)) => {
                CookieHeaders::Many([first, second].into_iter().chain(values).cloned().collect())
            }
            (first, _) => CookieHeaders::One(first.cloned()),
        }
    }

    fn as_slice(&self) -> &[HeaderValue] {
        match self {
            CookieHeaders::One(value) => value.as_slice(),
            CookieHeaders::Many(values) => values,
        }
    }
}

struct State {
    /// The request's `Cookie` header values, until the session is opened.
    cookies: CookieHeaders,
    opened: Option<RequestSession>,
    /// The request carried a cookie of the sealer's previous name: a
    /// response that sets or deletes the session cookie deletes it.
    carried_previous: bool,
}

impl fmt::Debug for LazySession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No session contents and no cookie values.
        f.debug_struct("LazySession").finish_non_exhaustive()
    }
}

impl LazySession {
    pub(crate) fn new(shared: Arc<Shared>, cookies: CookieHeaders) -> Self {
        LazySession {
            inner: Arc::new(Inner {
                shared,
                state: Mutex::new(State {
                    cookies,
                    opened: None,
                    carried_previous: false,
                }),
                finished: AtomicBool::new(false),
                skip_save: AtomicBool::new(false),
                previous_name_taken: AtomicBool::new(false),
                enclosing: std::sync::OnceLock::new(),
                end_pending: AtomicBool::new(false),
            }),
        }
    }

    /// Opens the session if it is not open yet.
    async fn ensure_open<'s>(&self, state: &'s mut State) -> Result<&'s mut RequestSession, Error> {
        let opened = match state.opened.take() {
            Some(opened) => opened,
            None => {
                if self.inner.finished.load(Ordering::Relaxed) {
                    // From a streaming body or a spawned task: the response
                    // has gone without `Vary: Cookie`, and a bad cookie
                    // found now is not deleted.
                    tracing::warn!(
                        event = "opened-after-response",
                        "session first opened after the response headers were sent; open it in the handler"
                    );
                }
                let sealer = &self.inner.shared.sealer;
                let cookies = state.cookies.as_slice();
                let opened = sealer.open_request_async_by(cookies, self.uses_previous_name());
                let opened = opened.await?;
                // Found while opening, in every header (none when the
                // previous name is another layer's).
                state.carried_previous = opened.carried_previous_name();
                state.cookies = CookieHeaders::One(None);
                opened
            }
        };
        let opened = state.opened.insert(opened);
        // Every time: a handler may have put another session in its place.
        opened.session_mut().held_by_layer = true;
        Ok(opened)
    }

    /// Runs `f` on the opened session: the whole core [`Session`] API.
    ///
    /// Entries that live in the overflow store are not loaded here: read
    /// them with [`LazySession::get`], or use [`LazySession::with_loaded`].
    ///
    /// The layer saves the session when the response goes out: the
    /// sealer's `save`, `save_async` and `seal` refuse it here
    /// ([`Error::HeldByLayer`]), as they would mark it saved and the layer
    /// would then send nothing.
    ///
    /// The session is not rolled back if `f` panics: what it changed
    /// before the panic stays, and is saved if the response still goes out
    /// (from a task the handler spawned, say; a panic in the handler
    /// itself unwinds through the layer: no response, no cookie).
    ///
    /// # Errors
    ///
    /// Only when this call opens the session: [`Error::Random`] if the
    /// request gets a fresh session and its id cannot be drawn. A cookie
    /// that does not open is no error (see [`LazySession::rejected_cookie`]).
    pub async fn with<R>(&self, f: impl FnOnce(&mut Session) -> R) -> Result<R, Error> {
        self.locked(|_| false, f).await
    }

    /// Runs `f` on the opened session under the lock, after loading the
    /// overflowed entries if `load` says so, and warns of a change made
    /// after the request ended (the response was built, the inner service
    /// failed, or the request was dropped): from a task that outlived the
    /// handler, say. It is lost, which must not go unnoticed.
    async fn locked<R>(
        &self,
        load: impl FnOnce(&Session) -> bool,
        f: impl FnOnce(&mut Session) -> R,
    ) -> Result<R, Error> {
        let mut state = self.inner.state.lock().await;
        let session = self.ensure_open(&mut state).await?.session_mut();
        if load(session) {
            let sealer = &self.inner.shared.sealer;
            sealer.load_or_drop_unreadable(session).await?;
        }
        let changes = session.changes;
        let result = f(session);
        self.warn_if_changed_late(session.changes != changes);
        Ok(result)
    }

    /// Warns of a change made after the request ended: it is lost.
    fn warn_if_changed_late(&self, changed: bool) {
        if changed && self.inner.finished.load(Ordering::Relaxed) {
            tracing::warn!(
                event = "changed-after-response",
                "session changed after the request ended; the change is lost"
            );
        }
    }

    /// As [`Self::with`], after loading every entry that lives in the
    /// overflow store (one store read, and only if the cookie lists such
    /// entries): a read-modify-write of any entry under one lock, so that
    /// clones of this handle used concurrently (`join!`) cannot interleave
    /// between the read and the write.
    ///
    /// # Errors
    ///
    /// Those of [`LazySession::with`], and, if the cookie lists entries in
    /// the overflow store, those of
    /// [`Sealer::load_overflow`](crate::Sealer::load_overflow) except
    /// [`StoreError::Missing`](crate::StoreError::Missing) and
    /// [`StoreError::Rejected`](crate::StoreError::Rejected) (either drops
    /// its entries).
    ///
    /// ```
    /// # async fn handler(session: sealed_session::http::LazySession) -> Result<(), sealed_session::Error> {
    /// let visits = session
    ///     .with_loaded(|s| {
    ///         let visits = s.get::<u64>("visits")?.unwrap_or(0) + 1;
    ///         s.insert("visits", visits)?;
    ///         Ok::<_, sealed_session::Error>(visits)
    ///     })
    ///     .await??;
    /// # let _ = visits; Ok(()) }
    /// ```
    pub async fn with_loaded<R>(&self, f: impl FnOnce(&mut Session) -> R) -> Result<R, Error> {
        self.locked(|_| true, f).await
    }

    /// Runs `f` on the opened request session (whether its cookie was
    /// held back, say).
    #[cfg(feature = "tower-sessions")]
    pub(crate) async fn with_request<R>(
        &self,
        f: impl FnOnce(&RequestSession) -> R,
    ) -> Result<R, Error> {
        let mut state = self.inner.state.lock().await;
        Ok(f(self.ensure_open(&mut state).await?))
    }

    /// Whether the layer saves the session with a response of `status`
    /// (not on a 5xx, unless configured to).
    #[cfg(feature = "tower-sessions")]
    pub(crate) fn saves(&self, status: StatusCode) -> bool {
        !self.inner.skip_save.load(Ordering::Relaxed)
            && (self.inner.shared.save_on_server_error || !status.is_server_error())
    }

    /// Records that a tower-sessions `Session` deleted the session's
    /// record (`true`), or that the bridge applied that (`false`).
    #[cfg(feature = "tower-sessions")]
    pub(crate) fn set_end_pending(&self, pending: bool) {
        self.inner.end_pending.store(pending, Ordering::Relaxed);
    }

    /// A deletion by a tower-sessions `Session` that the bridge did not
    /// apply ends the session now; `Err` if its new id cannot be drawn.
    fn end_if_pending(&self, opened: &mut RequestSession) -> Result<(), Error> {
        if self.ends_pending(opened) {
            opened.session_mut().flush()?;
        }
        Ok(())
    }

    /// Whether a deletion by a tower-sessions `Session` is left to end
    /// the session. Not a held-back cookie's: the deletion may be a
    /// login's `cycle_id`, which must not delete and revoke the cookie
    /// the outage held back (the bridge itself ends it after a known
    /// logout).
    fn ends_pending(&self, opened: &RequestSession) -> bool {
        self.inner.end_pending.load(Ordering::Relaxed)
            && !opened.session().is_flushed()
            && opened.held_back_by().is_none()
    }

    /// Whether the request has ended for the session (see
    /// [`LazySession::finish`]): later changes are lost.
    #[cfg(feature = "tower-sessions")]
    pub(crate) fn is_finished(&self) -> bool {
        self.inner.finished.load(Ordering::Relaxed)
    }

    /// "Log out my other devices" (after a password change, say): revokes
    /// every other session of the user this session names and keeps this
    /// one under a new id; `false` when it names no user
    /// ([`Sealer::log_out_other_sessions`]). Needs the layer's
    /// [`revocation_store`](super::SessionLayerBuilder::revocation_store)
    /// with a user key.
    ///
    /// # Errors
    ///
    /// Those of [`Sealer::log_out_other_sessions`], and of
    /// [`LazySession::with`] when this call opens the session; the
    /// revocation check's error
    /// ([`StoreError::Unavailable`](crate::StoreError::Unavailable)) when
    /// it could not check the request's cookie.
    pub async fn log_out_other_sessions(&self) -> Result<bool, Error> {
        // Late, the new id reaches no cookie: this device is logged out too.
        self.on_user(async |sealer, session| sealer.log_out_other_sessions(session).await)
            .await
    }

    /// "Log out everywhere": revokes every session of the user this
    /// session names, and flushes this one, whose cookie the response then
    /// deletes ([`Sealer::log_out_everywhere`]).
    ///
    /// # Errors
    ///
    /// As [`LazySession::log_out_other_sessions`].
    pub async fn log_out_everywhere(&self) -> Result<bool, Error> {
        self.on_user(async |sealer, session| sealer.log_out_everywhere(session).await)
            .await
    }

    /// Runs an action of the sealer on the user the opened session names
    /// ([`Self::user_session`]), under the lock, warning of a change made
    /// after the request ended as [`Self::locked`] does.
    async fn on_user(
        &self,
        action: impl AsyncFnOnce(&Sealer, &mut Session) -> Result<bool, Error>,
    ) -> Result<bool, Error> {
        let mut state = self.inner.state.lock().await;
        let session = self.user_session(&mut state).await?;
        let changes = session.changes;
        let result = action(self.sealer(), session).await;
        self.warn_if_changed_late(session.changes != changes);
        result
    }

    /// The opened session, for an action on its user: while the revocation
    /// check is down, the request's session is a fresh one standing in for
    /// the cookie it could not check, which names no user, so the action
    /// fails with the check's error instead of doing nothing.
    async fn user_session<'s>(&self, state: &'s mut State) -> Result<&'s mut Session, Error> {
        let opened = self.ensure_open(state).await?;
        if let Some(error) = opened.held_back_by() {
            return Err(error.clone());
        }
        Ok(opened.session_mut())
    }

    /// [`Session::set_auth_hash`]: stores a digest of the user's auth hash
    /// (whatever changes with their credentials) under `key`, at login
    /// and after a password change in this session.
    ///
    /// # Errors
    ///
    /// Those of [`Session::set_auth_hash`], and of [`LazySession::with`]
    /// when this call opens the session.
    pub async fn set_auth_hash(&self, key: &str, auth_hash: &[u8]) -> Result<(), Error> {
        self.with(|s| s.set_auth_hash(key, auth_hash)).await?
    }

    /// [`Session::verify_auth_hash`]: whether the digest under `key`
    /// matches the user's auth hash now. When it does not (the password
    /// changed since this cookie was sealed), the session is flushed: the
    /// response deletes the cookie (and a revocation store revokes its
    /// id). Call it on each request that loads the user, as Django's
    /// `get_user` does; it ends the copies of the user's other cookies
    /// without a revocation store.
    ///
    /// # Errors
    ///
    /// Those of [`Session::verify_auth_hash`], and of
    /// [`LazySession::with`] when this call opens the session; the
    /// revocation check's error
    /// ([`StoreError::Unavailable`](crate::StoreError::Unavailable)) when
    /// it could not check the request's cookie: the request's session is
    /// then a stand-in without the digest, and flushing it would delete
    /// the user's real cookie.
    pub async fn verify_auth_hash(&self, key: &str, current: &[u8]) -> Result<bool, Error> {
        let mut state = self.inner.state.lock().await;
        let session = self.user_session(&mut state).await?;
        let changes = session.changes;
        let result = session.verify_auth_hash(key, current);
        self.warn_if_changed_late(session.changes != changes);
        result
    }

    /// This response saves nothing, as Rails'
    /// `request.session_options[:skip] = true`: no `Set-Cookie` for the
    /// session, whatever the handler changed, and no sliding refresh (nor,
    /// with [`open_every_request`](super::SessionLayerBuilder::open_every_request),
    /// an open for one). A logout still ends the session, as on a server
    /// error: a flushed session's cookie is deleted (and its id revoked,
    /// with a revocation store), without what was stored after the flush.
    ///
    /// For responses that must not overwrite a cookie another request may
    /// be setting at the same time: a polling endpoint, or an asset served
    /// under the layer. Cannot be undone for the request. Not after
    /// [`LazySession::log_out_other_sessions`]: its record is written at
    /// once, and without the new cookie this device is logged out with
    /// the others.
    pub fn skip_save(&self) {
        self.inner.skip_save.store(true, Ordering::Relaxed);
    }

    /// Whether this request's session has been opened (by this handle or
    /// a clone of it: any read or write opens it), as Django's
    /// `request.session.accessed`. It does not open the session, so a
    /// cache or a conditional-GET layer inside the session layer can tell
    /// a response that depends on the cookie without paying for the open.
    /// (With [`open_every_request`](super::SessionLayerBuilder::open_every_request),
    /// the layer opens an untouched session after the handler, to refresh
    /// it.)
    pub async fn is_opened(&self) -> bool {
        self.inner.state.lock().await.opened.is_some()
    }

    /// The sealer of the layer for this request (with
    /// [`SessionLayerBuilder::domains`](super::SessionLayerBuilder::domains),
    /// the request host's).
    pub fn sealer(&self) -> &Sealer {
        &self.inner.shared.sealer
    }

    /// Reads and decodes a value; `Ok(None)` if the key is absent. An entry
    /// in the overflow store is loaded first (the only store call).
    ///
    /// # Errors
    ///
    /// [`Error::Random`] if this call opens the session and a fresh one's
    /// id cannot be drawn (as [`LazySession::with`]); if the entry lives in
    /// the overflow store, those of
    /// [`Sealer::load_overflow`](crate::Sealer::load_overflow) except
    /// [`StoreError::Missing`](crate::StoreError::Missing) and
    /// [`StoreError::Rejected`](crate::StoreError::Rejected) (the entry then
    /// reads as absent); then [`Error::Value`] or [`Error::LimitExceeded`]
    /// for a value that is not a `T`, as [`Session::get`].
    #[doc(alias = "get_value")]
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.locked(|s| s.is_overflowed(key), |s| s.get(key))
            .await?
    }

    /// As [`LazySession::get`], but a value that does not decode as `T` is
    /// removed and reads as absent (see [`Session::get_or_remove`]).
    ///
    /// # Errors
    ///
    /// As [`LazySession::get`], except that a value that is not a `T` is no
    /// error.
    pub async fn get_or_remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.locked(|s| s.is_overflowed(key), |s| s.get_or_remove(key))
            .await?
    }

    /// The value at `key`, or `default()` stored there and returned
    /// (Django's `setdefault`; see [`Session::get_or_insert_with`]). An
    /// entry that lives in the overflow store is loaded first.
    ///
    /// # Errors
    ///
    /// Those of [`LazySession::get`], then, storing the default, those of
    /// [`Session::insert_with_priority`].
    #[doc(alias = "setdefault")]
    pub async fn get_or_insert_with<T: Serialize + DeserializeOwned>(
        &self,
        key: &str,
        default: impl FnOnce() -> T,
    ) -> Result<T, Error> {
        self.locked(
            |s| s.is_overflowed(key),
            |s| s.get_or_insert_with(key, default),
        )
        .await?
    }

    /// Marks the session changed, so that the response re-seals it
    /// (Django's `request.session.modified = True`; see
    /// [`Session::mark_modified`]).
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn mark_modified(&self) -> Result<(), Error> {
        self.with(Session::mark_modified).await
    }

    /// Stores a value at normal priority (or the priority the key has).
    /// Over the size budget, [`Priority::Normal`](crate::Priority::Normal)
    /// entries are dropped after the `Low` ones, and reported (the save
    /// succeeds; see [`Session::insert`]); store what must never be
    /// dropped with [`LazySession::insert_with_priority`] and
    /// [`Priority::Critical`](crate::Priority::Critical).
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`] (opening), then those of [`Session::insert`].
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), Error> {
        self.with(|s| s.insert(key, value)).await?
    }

    /// Stores a value with an explicit priority for the size budget.
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`] (opening), then those of
    /// [`Session::insert_with_priority`].
    pub async fn insert_with_priority<T: Serialize>(
        &self,
        key: &str,
        value: T,
        priority: Priority,
    ) -> Result<(), Error> {
        self.with(|s| s.insert_with_priority(key, value, priority))
            .await?
    }

    /// Removes an entry; returns whether it was there. (tower-sessions'
    /// `remove::<T>` returns the value: that is [`LazySession::take`].)
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn remove(&self, key: &str) -> Result<bool, Error> {
        self.with(|s| s.remove(key)).await
    }

    /// Removes an entry and returns its value (loading it from the overflow
    /// store if it lives there): Django's `pop`, tower-sessions' `remove`.
    /// A value that does not decode as `T` is removed all the same and
    /// reads as absent (see [`Session::take`]).
    ///
    /// # Errors
    ///
    /// As [`LazySession::get`], except that a value that is not a `T` is no
    /// error.
    #[doc(alias = "pop")]
    pub async fn take<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.locked(|s| s.is_overflowed(key), |s| s.take(key))
            .await?
    }

    /// Appends a one-time message under `key` (see
    /// [`Session::push_flash`]), loading the list first if it lives in the
    /// overflow store.
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`] (opening), loading from the store as
    /// [`LazySession::get`], then those of [`Session::push_flash`].
    pub async fn push_flash<T: Serialize>(&self, key: &str, message: T) -> Result<(), Error> {
        self.locked(|s| s.is_overflowed(key), |s| s.push_flash(key, message))
            .await?
    }

    /// Removes and returns the one-time messages under `key` (see
    /// [`Session::take_flashes`]), loading them first if they live in the
    /// overflow store.
    ///
    /// # Errors
    ///
    /// As [`LazySession::take`].
    pub async fn take_flashes<T: DeserializeOwned>(&self, key: &str) -> Result<Vec<T>, Error> {
        self.locked(|s| s.is_overflowed(key), |s| s.take_flashes(key))
            .await?
    }

    /// Whether the session has this key.
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn contains(&self, key: &str) -> Result<bool, Error> {
        self.with(|s| s.contains(key)).await
    }

    /// The keys, in insertion order.
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn keys(&self) -> Result<Vec<String>, Error> {
        self.with(|s| s.keys().map(str::to_owned).collect()).await
    }

    /// Keys with their priorities, in insertion order.
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn keys_with_priority(&self) -> Result<Vec<(String, Priority)>, Error> {
        self.with(|s| {
            s.keys_with_priority()
                .map(|(k, p)| (k.to_owned(), p))
                .collect()
        })
        .await
    }

    /// The priority of an entry.
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn priority(&self, key: &str) -> Result<Option<Priority>, Error> {
        self.with(|s| s.priority(key)).await
    }

    /// Changes the priority of an entry; returns whether it exists.
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn set_priority(&self, key: &str, priority: Priority) -> Result<bool, Error> {
        self.with(|s| s.set_priority(key, priority)).await
    }

    /// Number of entries.
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn len(&self) -> Result<usize, Error> {
        self.with(|s| s.len()).await
    }

    /// Whether there are no entries.
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn is_empty(&self) -> Result<bool, Error> {
        self.with(|s| s.is_empty()).await
    }

    /// Removes every entry. Under the layer an empty session is not kept:
    /// unless something is stored again, the response deletes the cookie,
    /// so the id and expiry do not survive (see [`Session::clear`] for the
    /// session on its own).
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn clear(&self) -> Result<(), Error> {
        self.with(Session::clear).await
    }

    /// Ends the session (logout): removes every entry, takes a new id and
    /// sets the expiry back to [`Expiry::Default`] ([`Session::flush`]).
    /// Unless something is stored again, the response deletes the cookie.
    /// With a revocation store
    /// ([`SessionLayerBuilder::revocation_store`](super::SessionLayerBuilder::revocation_store)),
    /// the save also revokes the old id, so that a copy of the cookie no
    /// longer opens (with a user key, only if that cookie carried the
    /// user entry: an anonymous cookie's copies act as nobody). Without one, a copy taken before the logout (from a
    /// stolen or backed-up cookie jar) still opens, with its entries,
    /// until it expires: the server keeps nothing to forget, unlike
    /// server-side session stores, where deleting the record ends every
    /// copy.
    ///
    /// # Errors
    ///
    /// [`Error::Random`] if an id cannot be drawn: a fresh session's, when
    /// this call opens the session, or the new one (the session is then left
    /// unchanged).
    #[doc(alias = "delete")]
    pub async fn flush(&self) -> Result<(), Error> {
        self.with(Session::flush).await?
    }

    /// Takes a new id and keeps the data: call it at login. The session
    /// counts as created when it is saved (see [`Session::cycle_id`]).
    /// With a revocation store the save revokes the old id, as after
    /// [`Self::flush`]. When the session already names another user, call
    /// [`Self::flush`] instead, as Django's `login()` does: this keeps the
    /// previous user's data for the new one.
    ///
    /// # Errors
    ///
    /// As [`LazySession::flush`].
    pub async fn cycle_id(&self) -> Result<(), Error> {
        self.with(Session::cycle_id).await?
    }

    /// Sets when the session ends.
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn set_expiry(&self, expiry: Expiry) -> Result<(), Error> {
        self.with(|s| s.set_expiry(expiry)).await
    }

    /// Ends the session `after` this request's time, at a fixed time (see
    /// [`Session::set_expiry_in`]). For Django's `set_expiry(seconds)`, an
    /// inactivity window, use [`Expiry::Idle`].
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn set_expiry_in(&self, after: Duration) -> Result<(), Error> {
        self.with(|s| s.set_expiry_in(after)).await
    }

    /// The expiry setting.
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn expiry(&self) -> Result<Expiry, Error> {
        self.with(|s| s.expiry()).await
    }

    /// How long the session stays valid if saved now (see
    /// [`Session::expiry_age`]).
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn expiry_age(&self) -> Result<Option<Duration>, Error> {
        self.with(|s| s.expiry_age()).await
    }

    /// The Unix time (seconds) the session ends if saved now (see
    /// [`Session::expires_at`]).
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn expires_at(&self) -> Result<Option<u64>, Error> {
        self.with(|s| s.expires_at()).await
    }

    /// [`LazySession::expires_at`] as a `SystemTime`.
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn expires_at_time(&self) -> Result<Option<std::time::SystemTime>, Error> {
        self.with(|s| s.expires_at_time()).await
    }

    /// Whether the cookie, if saved now, carries no `Max-Age` and so ends
    /// when the browser closes (Django's `get_expire_at_browser_close`).
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn expires_at_browser_close(&self) -> Result<bool, Error> {
        let sealer = &self.inner.shared.sealer;
        self.with(|s| sealer.cookie_max_age(s).is_none()).await
    }

    /// The session id. A new session (see [`Self::is_new`]) has a random id
    /// that reaches a cookie only if the session is saved with at least one
    /// entry: do not key server-side data by it before then.
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn id(&self) -> Result<SessionId, Error> {
        self.with(|s| s.id()).await
    }

    /// When the session started or last took a new id, in Unix seconds
    /// ([`Session::created_at`]).
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn created_at(&self) -> Result<u64, Error> {
        self.with(|s| s.created_at()).await
    }

    /// When the cookie the session came from was sealed, in Unix seconds
    /// ([`Session::issued_at`]); `None` for a new session.
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn issued_at(&self) -> Result<Option<u64>, Error> {
        self.with(|s| s.issued_at()).await
    }

    /// When the session started or last took a new id, as
    /// [`Session::created_at_time`] says: the age a "confirm your password
    /// for this" check compares against.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use sealed_session::http::LazySession;
    ///
    /// async fn recently_signed_in(session: LazySession) -> Result<bool, sealed_session::Error> {
    ///     let started = session.created_at_time().await?;
    ///     // The sealer's clock, which tests may fix, not the system's.
    ///     let now = SystemTime::UNIX_EPOCH + Duration::from_secs(session.sealer().now());
    ///     let age = now.duration_since(started).unwrap_or_default();
    ///     Ok(age < Duration::from_secs(15 * 60))
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn created_at_time(&self) -> Result<std::time::SystemTime, Error> {
        self.with(|s| s.created_at_time()).await
    }

    /// When the cookie the session came from was sealed
    /// ([`Session::issued_at_time`]); `None` for a new session.
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn issued_at_time(&self) -> Result<Option<std::time::SystemTime>, Error> {
        self.with(|s| s.issued_at_time()).await
    }

    /// Whether the session was created in this request (no cookie opened).
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn is_new(&self) -> Result<bool, Error> {
        self.with(|s| s.is_new()).await
    }

    /// Whether an entry, the expiry or the id changed in this request.
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn is_modified(&self) -> Result<bool, Error> {
        self.with(|s| s.is_modified()).await
    }

    /// What the response's save would report if the handler stopped now:
    /// the entries it would drop or move to the overflow store, and the
    /// `Set-Cookie` header's length ([`Sealer::preview_save`], which says
    /// what it foresees with a store, and that it holds only until the
    /// next change). Nothing is saved or changed. A
    /// session left empty gets no cookie from the layer, whatever this
    /// says of its header.
    ///
    /// Over the budget the largest entry of the lowest priority goes first,
    /// which need not be the one just added: to refuse a new cart line
    /// rather than lose an older one, take it back when the preview drops
    /// anything.
    ///
    /// ```
    /// use sealed_session::http::LazySession;
    /// use sealed_session::Priority;
    ///
    /// async fn add_to_cart(session: LazySession, sku: &str) -> Result<&'static str, sealed_session::Error> {
    ///     let line = format!("cart:{sku}");
    ///     session.insert_with_priority(&line, 1u32, Priority::Low).await?;
    ///     if !session.preview_save().await?.dropped_keys().is_empty() {
    ///         session.remove(&line).await?;
    ///         return Ok("your cart is full");
    ///     }
    ///     Ok("added")
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Random`] on opening, and those of [`Sealer::preview_save`].
    pub async fn preview_save(&self) -> Result<crate::SaveReport, Error> {
        let sealer = &self.inner.shared.sealer;
        self.with(|session| sealer.preview_save(session)).await?
    }

    /// Length in characters of the cookie value the session was opened
    /// from; `None` for a new session.
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn cookie_len(&self) -> Result<Option<usize>, Error> {
        let mut state = self.inner.state.lock().await;
        Ok(self.ensure_open(&mut state).await?.cookie_len())
    }

    /// When the request carried session cookies and none opened: why the
    /// last one tried did not (see [`RequestSession::rejected_cookie`]).
    /// `None` otherwise.
    ///
    /// # Errors
    ///
    /// As [`LazySession::with`]: only [`Error::Random`], on opening.
    pub async fn rejected_cookie(&self) -> Result<Option<Error>, Error> {
        let mut state = self.inner.state.lock().await;
        Ok(self
            .ensure_open(&mut state)
            .await?
            .rejected_cookie()
            .cloned())
    }

    /// Marks the request over when the layer's future is dropped before
    /// its `finish` returned (the request was dropped before its response:
    /// an outer timeout, a client gone). Later changes are reported as
    /// lost.
    ///
    /// A logout the request did not finish (dropped before `finish`, or
    /// during its save) is finished on a task of its own, with a
    /// revocation store: the old id is revoked, as Django's `flush` and
    /// tower-sessions' `flush` delete the stored session whatever becomes of the
    /// response. The deletion cookie cannot be sent any more.
    pub(crate) fn end_dropped(&self, uri: &mut Uri) {
        self.inner.finished.store(true, Ordering::Relaxed);
        if self.inner.shared.sealer.revocation_store.is_none() {
            return;
        }
        // Free unless a task the handler spawned holds it (or a future
        // dropped midway has yet to release it): then the spawned task
        // checks under the lock instead.
        if let Ok(state) = self.inner.state.try_lock() {
            let ends =
                |opened: &RequestSession| opened.logout_unrecorded() || self.ends_pending(opened);
            if !state.opened.as_ref().is_some_and(ends) {
                return;
            }
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                event = "dropped-logout-not-revoked",
                "a request was dropped outside a tokio runtime; a logout it made, if any, is not revoked"
            );
            return;
        };
        let session = self.clone();
        let uri = core::mem::take(uri);
        // A runtime shutting down drops the task unfinished, possibly
        // before its first poll: that must be said too, so the guard is
        // moved in, not made in the task.
        let unfinished = UnfinishedLogout;
        // In the request's span (the layer enters it to drop the request),
        // as every other event of the layer.
        let task = async move {
            session.finish_dropped_logout(&uri).await;
            core::mem::forget(unfinished);
        };
        runtime.spawn(tracing::Instrument::in_current_span(task));
    }

    /// The rest of a logout whose request was dropped: the save that
    /// revokes the old id (and deletes its overflow blob). What was stored
    /// after the flush cannot reach the client and is not kept.
    async fn finish_dropped_logout(&self, uri: &Uri) {
        let mut state = self.inner.state.lock().await;
        let Some(opened) = state.opened.as_mut() else {
            return;
        };
        let shared = &self.inner.shared;
        if let Err(error) = self.end_if_pending(opened) {
            return shared.save_failed(&error, uri);
        }
        let report = match shared.sealer.finish_dropped_logout(opened).await {
            Ok(Some(report)) => report,
            Ok(None) => return,
            Err(error) => return shared.save_failed(&error, uri),
        };
        shared.saved(&report, uri);
        if report.unrevoked.is_none() {
            tracing::info!(
                event = "dropped-logout-revoked",
                "request dropped after a logout; the old session id is revoked"
            );
        }
    }

    /// Marks the sealer's previous cookie name as another layer's current
    /// one on this request: its cookies are neither opened nor deleted.
    pub(crate) fn leave_previous_name(&self) {
        self.inner
            .previous_name_taken
            .store(true, Ordering::Relaxed);
        // Opened already (by a middleware between the layers): at least
        // the other layer's cookie is not deleted.
        if let Ok(mut state) = self.inner.state.try_lock() {
            state.carried_previous = false;
        }
    }

    /// Whether `other` is this request's session of the same layer.
    #[cfg(feature = "tower-sessions")]
    pub(crate) fn is(&self, other: &LazySession) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Records the session of the layer around this one.
    pub(crate) fn set_enclosing(&self, outer: LazySession) {
        let _ = self.inner.enclosing.set(outer);
    }

    /// The session of the layer around this one, if any.
    pub(crate) fn enclosing(&self) -> Option<&LazySession> {
        self.inner.enclosing.get()
    }

    fn uses_previous_name(&self) -> bool {
        !self.inner.previous_name_taken.load(Ordering::Relaxed)
    }

    /// The previous cookie name whose cookies this request may open.
    fn previous_name(&self) -> Option<&str> {
        let name = self.inner.shared.sealer.previous_cookie_name();
        name.filter(|_| self.uses_previous_name())
    }

    /// Whether the `Cookie` headers hold a cookie of the session's name
    /// (or of its previous name).
    fn carries_cookie(&self, state: &State) -> bool {
        let sealer = &self.inner.shared.sealer;
        let names = [Some(sealer.cookie_name()), self.previous_name()];
        state.cookies.as_slice().iter().any(|value| {
            names
                .iter()
                .flatten()
                .any(|name| crate::request::carries_cookie(value.as_bytes(), name))
        })
    }

    /// What the layer does with the response: whether the session was
    /// opened, and the `Set-Cookie` value to send, if any (when `save` is
    /// true, or when `save` is false and the handler flushed the session:
    /// a logout ends it on an error response too). Failures are reported
    /// (and returned in `lost` when they lose the handler's changes), never
    /// raised.
    pub(crate) async fn finish(&self, uri: &Uri, save: bool) -> Finished {
        let mut state = self.inner.state.lock().await;
        let skipped = self.inner.skip_save.load(Ordering::Relaxed);
        // A skipped save is a server error's: nothing but a logout.
        let error = !save;
        let save = save && !skipped;
        if save
            && self.inner.shared.open_every_request
            && state.opened.is_none()
            && self.carries_cookie(&state)
        {
            // Fails only when a fresh session's id cannot be drawn; the
            // request then goes on as one that never touched the session.
            if let Err(error) = self.ensure_open(&mut state).await {
                tracing::warn!(
                    event = "refresh-not-opened",
                    kind = error.kind(),
                    error = %error,
                    "could not open the session for its refresh"
                );
            }
        }
        self.inner.finished.store(true, Ordering::Relaxed);
        let carried_previous = state.carried_previous;
        let Some(opened) = state.opened.as_mut() else {
            return Finished {
                opened: false,
                changed: false,
                set_cookie: None,
                previous_removal: None,
                lost: None,
            };
        };
        let mut lost = None;
        if let Err(error) = self.end_if_pending(opened) {
            self.inner.shared.save_failed(&error, uri);
        }
        // As in Django, an error response still ends a session that the
        // handler flushed (logout): the deletion cookie goes out, and a
        // revocation store records the old id. What was stored after the
        // flush is not kept, like any change on an error response.
        let changed = opened.session().is_modified();
        let ends = !save && opened.session().is_flushed();
        if ends && !opened.session().is_empty() {
            if error {
                tracing::info!(
                    event = "server-error-flush-only",
                    "server error: the flushed session ends; entries stored after the flush are not saved (save_on_server_error saves them on a 5xx response)"
                );
            } else {
                tracing::debug!(
                    event = "save-skipped-flush-only",
                    "save skipped by the handler: the flushed session ends; entries stored after the flush are not saved"
                );
            }
            opened.session_mut().clear();
        }
        let set_cookie = if save || ends {
            let had_changes = opened.session().is_modified();
            match self.save(opened, uri).await {
                Ok(set_cookie) => set_cookie,
                Err(error) => {
                    lost = had_changes.then_some(error);
                    None
                }
            }
        } else {
            // As in Django, but said: a handler's changes vanishing without
            // a trace is hard to debug.
            if opened.session().is_modified() {
                if error {
                    tracing::info!(
                        event = "server-error-not-saved",
                        "server error: the session's changes are not saved (save_on_server_error saves them on a 5xx response)"
                    );
                } else {
                    tracing::debug!(
                        event = "save-skipped",
                        "save skipped by the handler: the session's changes are not saved"
                    );
                }
            }
            None
        };
        let previous_removal = match carried_previous {
            true => self
                .sealer()
                .previous_cookie_removal()
                .and_then(|removal| HeaderValue::from_str(removal).ok())
                .map(|header| PreviousRemoval {
                    header,
                    without_session_cookie: opened.previous_cookie_rejected_for_good(),
                }),
            false => None,
        };
        Finished {
            opened: true,
            changed,
            set_cookie,
            previous_removal,
            lost,
        }
    }

    /// Saves the session: the `Set-Cookie` value to send, if any, or the
    /// failure (already reported).
    async fn save(
        &self,
        opened: &mut RequestSession,
        uri: &Uri,
    ) -> Result<Option<HeaderValue>, Error> {
        let shared = &self.inner.shared;
        let saved = match shared.sealer.save_request_async(opened).await {
            Ok(saved) => saved,
            Err(error) => {
                shared.save_failed(&error, uri);
                return Err(error);
            }
        };
        shared.saved(&saved.report, uri);
        let value = match saved.action {
            CookieAction::Unchanged => return Ok(None),
            CookieAction::Set(value) | CookieAction::Delete(value) => value,
        };
        // From the `String` itself: no copy.
        match HeaderValue::try_from(value) {
            Ok(value) => Ok(Some(value)),
            Err(_) => {
                // The sealer refuses such names, paths and domains when
                // built, so this is a defence only, not request input.
                tracing::error!(
                    event = "invalid-set-cookie",
                    "session cookie is not a valid header value; check the cookie name, path and domain"
                );
                Ok(None)
            }
        }
    }
}

/// The end of a request, for the layer.
pub(crate) struct Finished {
    /// The session was opened, by a handler or by `open_every_request` (the
    /// response depends on the cookie).
    pub(crate) opened: bool,
    /// The session was changed (a handler's change, a flush), not only
    /// due for a refresh, a re-seal under the primary key or the deletion
    /// of the bad cookie it came from.
    pub(crate) changed: bool,
    pub(crate) set_cookie: Option<HeaderValue>,
    /// The deletion of the cookie of the previous name the request carried.
    pub(crate) previous_removal: Option<PreviousRemoval>,
    /// The save failed and the handler's changes are lost.
    pub(crate) lost: Option<Error>,
}

/// The deletion of a request's cookie of the previous name. It goes with
/// the session cookie, set or deleted (left, it would open the next
/// request after a logout), and alone when it can never open.
pub(crate) struct PreviousRemoval {
    pub(crate) header: HeaderValue,
    /// It was the request's only candidate and failed for good
    /// ([`RequestSession::previous_cookie_rejected_for_good`]).
    pub(crate) without_session_cookie: bool,
}

/// The rejection when a handler asks for a [`LazySession`] on a route
/// without the [`SessionLayer`](super::SessionLayer): a 500 response, as it
/// is a mistake in the application's setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MissingSessionLayer;

impl fmt::Display for MissingSessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the session layer is not installed on this route \
             (or runs inside the middleware that asked)",
        )
    }
}

impl std::error::Error for MissingSessionLayer {}

impl IntoResponse for MissingSessionLayer {
    /// Logs the mistake at `ERROR` and sends a 500 whose body says only
    /// "internal server error": the client learns nothing about the
    /// application's setup.
    fn into_response(self) -> Response {
        tracing::error!(
            event = "session-layer-missing",
            error = %self,
            "a handler asked for the session"
        );
        (StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n").into_response()
    }
}

/// Lets handlers return `Result<_, sealed_session::Error>`: a session
/// error becomes a `500 Internal Server Error`, or `503 Service
/// Unavailable` when the overflow store cannot be reached, with a body
/// that names only the status (the details are
/// logged at `ERROR`, not sent to the client). A bad cookie is not an error
/// (the request gets a fresh session), so this is for the rare rest: a
/// value of the wrong type, a reserved key, the overflow store down.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        tracing::error!(
            event = "handler-error",
            kind = self.kind(),
            error = %self,
            "session error in a handler"
        );
        let status = super::error_status(&self);
        let body = match status {
            StatusCode::SERVICE_UNAVAILABLE => "service unavailable\n",
            _ => "internal server error\n",
        };
        (status, body).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for LazySession {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<LazySession>()
            .cloned()
            .ok_or(MissingSessionLayer)
    }
}

/// `Option<LazySession>`: `None` on routes without the layer.
impl<S: Send + Sync> OptionalFromRequestParts<S> for LazySession {
    type Rejection = core::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<LazySession>().cloned())
    }
}

/// Warns when dropped: held by the task that finishes a dropped request's
/// logout, and forgotten when it returns, so that only a runtime shutting
/// down (which drops its tasks unfinished) sets it off.
struct UnfinishedLogout;

impl Drop for UnfinishedLogout {
    fn drop(&mut self) {
        tracing::warn!(
            event = "dropped-logout-unfinished",
            "the runtime dropped the task finishing a dropped request's logout; its old session id may not be revoked"
        );
    }
}
