//! A `tower_sessions::Session` kept in the sealed cookie: the session type
//! that axum-login and axum-messages work on, over the [`LazySession`] of
//! the [`SessionLayer`](super::SessionLayer) around it.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::collections::HashMap;
use std::sync::Arc;

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;
use tower_sessions_core::session::{Expiry as TowerExpiry, Id, Record};
use tower_sessions_core::{session_store, Session as TowerSession, SessionStore};

use super::LazySession;
use crate::{Error, Expiry, Priority, SessionId};

/// Gives the handlers inside it a `tower_sessions::Session`
/// (tower-sessions 0.14, the version axum-login 0.18 and axum-messages 0.8
/// take) whose data is the sealed session's: it goes inside a
/// [`SessionLayer`](super::SessionLayer), which keeps the cookie, and
/// outside the layers that use the `Session` (axum-login's `AuthManager`,
/// axum-messages' `MessagesManagerLayer`).
/// Handlers of their own take it as `tower_sessions::Session`, the
/// extractor of tower-sessions 0.14 (its default `axum-core` feature), or
/// as `Extension<tower_sessions_core::Session>`.
///
/// ```
/// use axum::{routing::get, Router};
/// use axum_messages::{Messages, MessagesManagerLayer};
/// use sealed_session::http::{SessionLayer, TowerSessionsLayer};
/// use sealed_session::{KeyRing, MasterKey, Priority};
///
/// async fn greet(messages: Messages) -> &'static str {
///     messages.info("Welcome back");
///     "ok"
/// }
///
/// let keys = KeyRing::new(MasterKey::generate()?);
/// let app: Router = Router::new()
///     .route("/", get(greet))
///     .layer(MessagesManagerLayer)
///     // The budget drops `Normal` entries before the login.
///     .layer(TowerSessionsLayer::new().priority("axum-login.data", Priority::Critical))
///     .layer(SessionLayer::builder(keys).build()?);
/// # Ok::<(), sealed_session::Error>(())
/// ```
///
/// # How the two sessions map
///
/// - **Opened on every request it serves**, so that `Session::id()` is
///   real from the start: a sealed session that is new (no cookie, or
///   one that does not open) has no id, as a tower-sessions session
///   without a stored record has none. axum-login and axum-messages read
///   the session on every request anyway; give the layer only the routes
///   that use them. An opened session gets the sliding refresh, so every
///   route under the layer re-seals the cookie when a refresh is due,
///   even one whose handler touches no session: the parallel-request
///   caveat of
///   [`open_every_request`](super::SessionLayerBuilder::open_every_request)
///   applies (keep the layer off polling and API routes, or call
///   [`LazySession::skip_save`] there, and give the session layer a
///   revocation store so that a logout is final).
/// - **Values are JSON.** Each entry is read as a `serde_json::Value`; an
///   entry JSON cannot hold (a CBOR byte string, a map with non-text
///   keys, a tag), written through the [`LazySession`] API, is left out of
///   the `Session` (logged at `DEBUG`, event `tower-sessions-entry-skipped`,
///   with its key) and left as it is. An entry the handler leaves alone
///   is not re-encoded: only changed and removed keys reach the sealed
///   session. The first read also loads the entries kept in the overflow
///   store, if any (one store request).
/// - **Priorities**: a new key gets the priority set with
///   [`TowerSessionsLayer::priority`], or `Normal`; an existing key keeps
///   its own unless this layer sets one.
/// - **Ids**: `Session::id()` is the sealed session's id (the same 16
///   bytes); the `Id` tower-sessions draws itself is replaced by it.
///   `cycle_id` becomes [`LazySession::cycle_id`] (a new id, the entries
///   kept). `flush` becomes [`LazySession::flush`], whatever is stored
///   after it and whether or not a `cycle_id` comes with it (axum-login
///   flushes a stale login, then cycles the id to log in): a new, empty
///   session, without the entries JSON cannot hold, the old id revoked
///   when the layer has a revocation store; the expiry stays the
///   `Session`'s, as tower-sessions' flush keeps it (it can only
///   shorten the session). A `Session::delete` that no save follows is
///   a flush too. As tower-sessions' store deletes the record when
///   `flush` or `cycle_id` is called, the session ends whatever becomes
///   of the request after that, unless the `Session` is saved in
///   between: on a 5xx response or after [`LazySession::skip_save`], when
///   the inner service fails or the request is dropped (the old id
///   revoked with a revocation store), and when the data of a `cycle_id`
///   is refused. So a login (`cycle_id`) whose page fails ends the
///   session it started from (an anonymous cart, say), where
///   [`LazySession::cycle_id`] on a 5xx keeps it. Two sequences
///   tower-sessions' store calls cannot tell apart from others: a
///   `cycle_id`, then a `flush`, then new entries, is a `cycle_id` whose
///   old JSON entries are removed (the others and the expiry stay); and a
///   `flush` of a new session leaves what the handler stored through
///   [`LazySession`].
/// - **Expiry**: the `Session` starts with the sealed session's
///   ([`Expiry::Default`] is `None`, [`Expiry::BrowserSession`]
///   `OnSessionEnd`, [`Expiry::Idle`] `OnInactivity`, [`Expiry::At`]
///   `AtDateTime`); a changed one is set back. `None` is thus the
///   sealer's default (a persistent cookie, unless the cookie settings
///   say otherwise), where tower-sessions' own default is a
///   browser-session cookie: ask for that with `OnSessionEnd` (which the
///   sealer's `browser_session_max_idle`, if set, also ends). As with
///   [`Expiry::At`], the sealer's timeouts still apply: an expiry can
///   shorten a session, never extend it.
/// - **Saving** is the [`SessionLayer`](super::SessionLayer)'s: its
///   budget, `Set-Cookie`, and its rule for 5xx responses (no save, by
///   default: the `Session`'s changes are then not written, and the
///   handler's response stays as it is; likewise after
///   [`LazySession::skip_save`]). The 5xx rule is applied to the status
///   this layer sees: a middleware between the two layers that turns a
///   5xx into another status leaves the `Session`'s changes unwritten. A change the sealed session
///   refuses (the empty key, a key starting with `_`, a value over the
///   limits) answers an empty 500 (503 when a store could not be
///   reached), as tower-sessions answers a failed save, and
///   none of the `Session`'s changes is saved, even with
///   [`save_on_server_error`](super::SessionLayerBuilder::save_on_server_error)
///   (a flush still ends the session). Each save is taken whole or not
///   at all: a handler that calls `save` itself, is refused and repairs
///   the record has the repaired record saved.
/// - **Both APIs in one request**: the `Session` reads the sealed
///   session once, when first used, and writes its changes back after the
///   handler; a key changed through both ends with the `Session`'s value.
///   A change made after the response (through a clone moved into a
///   spawned task) is lost, as with [`LazySession`], and logged at `WARN`
///   (event `changed-after-response`), a late `flush` included.
/// - **While the revocation check cannot answer**, the request's cookie
///   is held back, as under the session layer alone: the `Session` is a
///   new, empty one with an id, so axum-login sees no user and a login
///   answers 503. A logout (a `flush`) still deletes the cookie and
///   revokes its id, on a 5xx response or a skipped save too; what it
///   stores after the flush (axum-messages' message) is dropped, as it
///   would be refused with the cookie. Something stored after the flush
///   by other means (the handler saving the `Session` itself in between,
///   a [`LazySession`] write on the way out) makes the layer refuse the
///   save, with 503 on a 200 (the logout lost), as a login's. A login
///   attempt keeps the cookie, however its request ends: one that logs
///   out first (axum-login's user switch) too, and a login then a
///   logout in one request, whose store calls are a login's alone. A
///   request whose inner service fails, or that is dropped before the
///   bridge answered, keeps it as well (its deletion may be a login's
///   `cycle_id`); a logout dropped after the bridge answered is ended.
/// - **One per request and session layer**: a `TowerSessionsLayer`
///   inside another over the same [`SessionLayer`](super::SessionLayer)
///   leaves the request the outer one's `Session`, and adds its
///   priorities to it (they win); under another session layer, its own
///   `Session` replaces the outer one for the routes it wraps.
#[derive(Debug, Clone, Default)]
pub struct TowerSessionsLayer {
    priorities: Arc<HashMap<String, Priority>>,
}

impl TowerSessionsLayer {
    /// A layer with no key priorities set: every new key is `Normal`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The priority that `key` gets when the `Session` writes it, new or
    /// not: `Priority::Critical` for a login (axum-login's data key is
    /// `"axum-login.data"`), so that the budget never drops it.
    #[must_use]
    pub fn priority(mut self, key: impl Into<String>, priority: Priority) -> Self {
        Arc::make_mut(&mut self.priorities).insert(key.into(), priority);
        self
    }
}

impl<S> Layer<S> for TowerSessionsLayer {
    type Service = TowerSessionsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TowerSessionsService {
            inner,
            priorities: Arc::clone(&self.priorities),
        }
    }
}

/// The service of [`TowerSessionsLayer`].
#[derive(Debug, Clone)]
pub struct TowerSessionsService<S> {
    inner: S,
    priorities: Arc<HashMap<String, Priority>>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for TowerSessionsService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The service polled ready is the one to call (tower's rule).
        let ready = self.inner.clone();
        let mut inner = core::mem::replace(&mut self.inner, ready);
        let priorities = Arc::clone(&self.priorities);
        Box::pin(async move {
            let Some(lazy) = request.extensions().get::<LazySession>().cloned() else {
                tracing::error!(
                    event = "session-layer-missing",
                    error = %super::MissingSessionLayer,
                    "TowerSessionsLayer is not inside a SessionLayer"
                );
                return Ok(empty(http::StatusCode::INTERNAL_SERVER_ERROR));
            };
            // Inside another over the same session layer: its `Session` is
            // the request's already (two would each see half of the
            // changes), and takes this layer's priorities too. Under
            // another session layer, this one's `Session` replaces it, as
            // the inner `LazySession` does.
            if let Some(Bridged(outer)) = request.extensions().get::<Bridged>() {
                if outer.lazy.is(&lazy) {
                    outer.add_priorities(&priorities);
                    return inner.call(request).await;
                }
            }
            // A cookie held back (the revocation check could not answer)
            // gives a new stand-in session, which gets an id all the same:
            // its `flush` (a logout) must reach the sealed session, which
            // then deletes and revokes the held-back cookie.
            let opened = lazy
                .with_request(|r| {
                    let s = r.session();
                    let held_back = r.held_back_by().is_some();
                    let known = !s.is_new() || held_back;
                    (known.then(|| s.id()), s.expiry(), held_back)
                })
                .await;
            let (id, expiry, held_back) = match opened {
                Ok(opened) => opened,
                Err(e) => {
                    // Only a fresh id that could not be drawn: a cookie
                    // that does not open gives a fresh session.
                    tracing::error!(
                        event = "tower-sessions-open-failed",
                        kind = e.kind(),
                        error = %e,
                        "the session could not be opened for the tower-sessions Session"
                    );
                    return Ok(empty(super::error_status(&e)));
                }
            };
            let expiry = tower_expiry(expiry);
            let store = Arc::new(SealedRecords {
                lazy,
                priorities: std::sync::Mutex::new(priorities),
                state: tokio::sync::Mutex::new(State {
                    id: id.map(tower_id),
                    // A new session's record starts empty without a load:
                    // entries stored through `LazySession` are not its.
                    loaded: id.is_none(),
                    held_back,
                    ..State::default()
                }),
            });
            let session = TowerSession::new(id.map(tower_id), Arc::clone(&store), expiry);
            request.extensions_mut().insert(session.clone());
            request.extensions_mut().insert(Bridged(Arc::clone(&store)));
            // A deletion of the record (a logout) is with the
            // SessionLayer already, which ends the session when this
            // request fails, is dropped, or its response is not saved.
            let response = inner.call(request).await?;
            let finished = match store.lazy.saves(response.status()) {
                true => store.finish(&session, expiry).await,
                false => store.end_unsaved(&session).await,
            };
            match finished {
                Ok(()) => Ok(response),
                Err(e) => {
                    tracing::error!(
                        event = "tower-sessions-save-failed",
                        kind = e.kind(),
                        error = %e,
                        "the tower-sessions Session's changes could not be kept"
                    );
                    Ok(empty(e.status()))
                }
            }
        })
    }
}

fn empty<B: Default>(status: http::StatusCode) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    response
}

/// The sealed session's id as tower-sessions' (its `Display` is then the
/// same 16 bytes in base64url).
fn tower_id(id: SessionId) -> Id {
    Id(i128::from_le_bytes(*id.as_bytes()))
}

fn tower_expiry(expiry: Expiry) -> Option<TowerExpiry> {
    match expiry {
        Expiry::Default => None,
        Expiry::BrowserSession => Some(TowerExpiry::OnSessionEnd),
        Expiry::Idle(window) => Some(TowerExpiry::OnInactivity(
            time::Duration::try_from(window).unwrap_or(time::Duration::MAX),
        )),
        Expiry::At(at) => Some(TowerExpiry::AtDateTime(date_time(at))),
    }
}

/// A Unix time as `time`'s, whose dates end with year 9999 (where a
/// session without timeouts can end: those times are its latest).
fn date_time(unix_secs: u64) -> time::OffsetDateTime {
    i64::try_from(unix_secs)
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc())
}

fn sealed_expiry(expiry: Option<TowerExpiry>) -> Expiry {
    match expiry {
        None => Expiry::Default,
        Some(TowerExpiry::OnSessionEnd) => Expiry::BrowserSession,
        // A negative window is past: the session ends now.
        Some(TowerExpiry::OnInactivity(window)) => {
            Expiry::Idle(Duration::try_from(window).unwrap_or(Duration::ZERO))
        }
        Some(TowerExpiry::AtDateTime(at)) => {
            Expiry::At(u64::try_from(at.unix_timestamp()).unwrap_or(0))
        }
    }
}

/// The store behind one request's `Session`: its records are the sealed
/// session's entries.
struct SealedRecords {
    lazy: LazySession,
    /// The layer's, and those of bridges inside it on the request.
    priorities: std::sync::Mutex<Arc<HashMap<String, Priority>>>,
    state: tokio::sync::Mutex<State>,
}

/// A classify-only save under way; ends it when dropped.
struct Classifying<'a>(&'a SealedRecords);

impl Drop for Classifying<'_> {
    fn drop(&mut self) {
        self.0.end_classifying();
    }
}

/// In a request's extensions beside the `Session`: the store behind it,
/// for a bridge inside this one.
#[derive(Clone)]
struct Bridged(Arc<SealedRecords>);

impl SealedRecords {
    fn priorities(&self) -> Arc<HashMap<String, Priority>> {
        let priorities = self.priorities.lock();
        Arc::clone(&priorities.unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Adds an inner bridge's priorities (which win over this one's).
    fn add_priorities(&self, inner: &HashMap<String, Priority>) {
        if inner.is_empty() {
            return;
        }
        let mut priorities = self
            .priorities
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let merged = Arc::make_mut(&mut priorities);
        merged.extend(inner.iter().map(|(key, p)| (key.clone(), *p)));
    }
}

#[derive(Default)]
struct State {
    /// The id the `Session` knows the sealed session by (none while new).
    id: Option<Id>,
    /// The data as last loaded or saved: what a save compares with.
    known: HashMap<String, serde_json::Value>,
    /// Whether `known` holds the sealed session's data yet (a `clear`
    /// saves a record tower-sessions never loaded).
    loaded: bool,
    /// Deleted, and not saved since.
    deleted: bool,
    /// Deletions of the sealed id since the last save: a `flush` then a
    /// `cycle_id` make two.
    deletes: u32,
    /// The sealed session was flushed: its expiry went back to the
    /// default, where tower-sessions' flush keeps the `Session`'s.
    flushed: bool,
    /// The sealed session's error behind the last failed store call
    /// (tower-sessions keeps only its text).
    failure: Option<Error>,
    /// The request's cookie was held back (the revocation check could
    /// not answer): the session is a stand-in.
    held_back: bool,
    /// A save only to learn whether a deletion was a `flush`: the store
    /// records it in `classified_flush` and changes nothing.
    classify_only: bool,
    classified_flush: Option<bool>,
}

impl fmt::Debug for SealedRecords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values stay out of logs.
        f.debug_struct("SealedRecords").finish_non_exhaustive()
    }
}

/// Why the `Session`'s changes could not be kept.
#[derive(Debug)]
enum FinishError {
    Sealed(Error),
    Tower(tower_sessions_core::session::Error),
}

impl FinishError {
    /// A 503 when a store could not be reached, as the session layer
    /// answers.
    fn status(&self) -> http::StatusCode {
        match self {
            FinishError::Sealed(e) => super::error_status(e),
            FinishError::Tower(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            FinishError::Sealed(e) => e.kind(),
            FinishError::Tower(_) => "tower-sessions",
        }
    }
}

impl fmt::Display for FinishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FinishError::Sealed(e) => e.fmt(f),
            FinishError::Tower(e) => e.fmt(f),
        }
    }
}

/// The error as tower-sessions takes it; the sealed one is kept for the
/// log and the status.
fn backend(state: &mut State, error: Error) -> session_store::Error {
    let text = error.to_string();
    state.failure = Some(error);
    session_store::Error::Backend(text)
}

impl SealedRecords {
    /// After a handler whose response the session layer does not save:
    /// a deletion that was a `flush` (with or without a `cycle_id`, and
    /// whatever was stored after it) ends the session, even one whose
    /// cookie an outage held back; the layer drops what was stored after
    /// it. A `cycle_id` alone is left to the layer, which ends the old
    /// session unless the cookie was held back.
    async fn end_unsaved(&self, session: &TowerSession) -> Result<(), FinishError> {
        {
            // Otherwise the layer's pending end does it (it ends any
            // deletion but a held-back cookie's).
            let state = self.state.lock().await;
            if !state.deleted || !state.held_back {
                return Ok(());
            }
        }
        // The `Session` keeps its id only after a bare `delete`: a flush.
        let flushed = match session.id() {
            Some(_) => true,
            None => {
                // tower-sessions tells the store which it was only when
                // saving: its `create` keeps the record's id after a
                // `flush`, not after a `cycle_id`.
                self.state.lock().await.classify_only = true;
                let classifying = Classifying(self);
                let saved = session.save().await;
                drop(classifying);
                let flushed = self.state.lock().await.classified_flush.take();
                saved.is_ok() && flushed == Some(true)
            }
        };
        if flushed {
            self.lazy.flush().await.map_err(FinishError::Sealed)?;
        }
        Ok(())
    }

    /// Ends a classify-only save, even one whose future is dropped.
    fn end_classifying(&self) {
        // The save's own store call has released the lock by now (its
        // future drops first); only a clone's call could hold it, and
        // the flag then outlives a request that is over anyway.
        if let Ok(mut state) = self.state.try_lock() {
            state.classify_only = false;
        }
    }

    /// Whether a save after a deletion is a `flush`'s (not a
    /// `cycle_id`'s): see `create`.
    fn is_flush(state: &State, record: &Record) -> bool {
        let emptied = !state.known.is_empty() && record.data.is_empty();
        let kept_id = Some(record.id) == state.id;
        let flush = kept_id || state.deletes > 1 || emptied;
        // While the cookie is held back, a flush then a `cycle_id` with
        // data after it (axum-login's user switch) is a login, however
        // the request ends: the stand-in cycles, and its data is refused.
        let plain_flush = kept_id && state.deletes == 1;
        let switch = state.held_back && !plain_flush && !record.data.is_empty();
        flush && !switch
    }

    /// After the handler: the `Session`'s changes go to the sealed
    /// session, as tower-sessions' own layer saves them (a modified,
    /// non-empty session); a deletion not followed by a save flushes it.
    async fn finish(
        &self,
        session: &TowerSession,
        expiry: Option<TowerExpiry>,
    ) -> Result<(), FinishError> {
        // A `flush` or `cycle_id` that nothing was stored after: the save
        // tower-sessions skips for an empty session is what tells them
        // apart here.
        let ended = self.state.lock().await.deleted && session.id().is_none();
        if ended || (session.is_modified() && !session.is_empty().await) {
            if let Err(e) = session.save().await {
                // Its changes are in or out as one, but some may have
                // been saved before and the handler's response claims
                // them all: none is saved (a flush still ends).
                self.lazy.skip_save();
                let failure = self.state.lock().await.failure.take();
                return Err(failure.map_or(FinishError::Tower(e), FinishError::Sealed));
            }
        }
        // `Session::delete` alone.
        if self.state.lock().await.deleted {
            self.lazy.flush().await.map_err(FinishError::Sealed)?;
            self.state.lock().await.flushed = true;
        }
        if self.state.lock().await.flushed || session.expiry() != expiry {
            let expiry = sealed_expiry(session.expiry());
            self.lazy
                .set_expiry(expiry)
                .await
                .map_err(FinishError::Sealed)?;
        }
        Ok(())
    }

    /// The sealed session's entries that JSON can hold, now `known`, and
    /// its end; the others' keys are logged.
    async fn read(
        &self,
        state: &mut State,
    ) -> session_store::Result<(HashMap<String, serde_json::Value>, Option<u64>)> {
        let read = self
            .lazy
            .with_loaded(|s| {
                let mut data = HashMap::new();
                let mut skipped = Vec::new();
                for key in s.keys() {
                    // Quietly: a value JSON cannot hold is no type error.
                    match s.read::<serde_json::Value>(key) {
                        Ok(Some(value)) => {
                            data.insert(key.to_owned(), value);
                        }
                        Ok(None) => {}
                        Err(_) => skipped.push(key.to_owned()),
                    }
                }
                (data, skipped, s.expires_at())
            })
            .await;
        let (data, skipped, ends) = read.map_err(|e| backend(state, e))?;
        if !skipped.is_empty() {
            // On every request that reads them (axum-login's, every
            // request): a choice of the application's, not a fault.
            tracing::debug!(
                event = "tower-sessions-entry-skipped",
                keys = ?skipped,
                "session entries JSON cannot hold are left out of the tower-sessions Session"
            );
        }
        state.known.clone_from(&data);
        state.loaded = true;
        Ok((data, ends))
    }

    /// Writes the record's changes since the last load or save. If one is
    /// refused, the layer saves none of them (a logout still ends the
    /// session).
    async fn write(&self, state: &mut State, record: &Record) -> session_store::Result<()> {
        if !state.loaded {
            self.read(state).await?;
        }
        let changed: Vec<(&String, &serde_json::Value)> = record
            .data
            .iter()
            .filter(|(key, value)| state.known.get(*key) != Some(*value))
            .collect();
        let removed: Vec<&String> = state
            .known
            .keys()
            .filter(|key| !record.data.contains_key(*key))
            .collect();
        let priorities = self.priorities();
        let written = self
            .lazy
            .with(|s| {
                // Every change is checked before any is made: a refused
                // one leaves the sealed session as it was, and `known`
                // true for the next save.
                let mut encoded = Vec::with_capacity(changed.len());
                for (key, value) in changed {
                    encoded.push((key, s.encode_entry(key, value)?));
                }
                let gone = removed.iter().filter(|key| s.contains(key)).count();
                let new = encoded.iter().filter(|(key, _)| !s.contains(key)).count();
                if s.len() - gone + new > s.limits.max_entries() {
                    return Err(Error::LimitExceeded(crate::Limit::Entries));
                }
                for key in removed {
                    s.remove(key);
                }
                for (key, value) in encoded {
                    let priority = priorities.get(key).copied();
                    let priority = priority.or_else(|| s.priority(key)).unwrap_or_default();
                    s.insert_raw(key, value, priority)?;
                }
                Ok(())
            })
            .await
            .and_then(|written| written);
        if let Err(e) = written {
            return Err(backend(state, e));
        }
        state.known.clone_from(&record.data);
        // Saved again after a `delete`: the record is back, as in a store.
        state.deleted = false;
        state.deletes = 0;
        self.lazy.set_end_pending(false);
        Ok(())
    }
}

#[async_trait::async_trait]
impl SessionStore for SealedRecords {
    /// A new session's first save, or one after `flush` or `cycle_id`,
    /// which deleted the old record: the sealed session is flushed or
    /// takes a new id.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let mut state = self.state.lock().await;
        if state.classify_only {
            let flushed = state.deleted && Self::is_flush(&state, record);
            state.classified_flush = Some(flushed);
            return Ok(());
        }
        if state.deleted {
            // tower-sessions' `flush` keeps the record's id (it clears the
            // data and deletes the record), its `cycle_id` draws a new one
            // (and deletes the id again after a flush). A `flush` after a
            // `cycle_id` deletes nothing more: an empty record where data
            // was read is taken for one (a login that removed every key
            // read, say an OAuth state, stores its own after the cycle).
            let flushed = Self::is_flush(&state, record);
            let ended = if flushed {
                self.lazy.flush().await
            } else {
                self.lazy.cycle_id().await
            };
            if let Err(e) = ended {
                return Err(backend(&mut state, e));
            }
            // Still pending until the write succeeds: a refused one ends
            // the session, as tower-sessions' deleted record would.
            state.deleted = false;
            state.deletes = 0;
            if flushed {
                state.flushed = true;
                state.known.clear();
                state.loaded = true;
                if state.held_back {
                    // A logout while the revocation check cannot answer:
                    // what it stores after the flush (a flash message)
                    // would be refused with the held-back cookie, and the
                    // logout with it. The session ends without it.
                    state.known.clone_from(&record.data);
                    self.lazy.set_end_pending(false);
                    return Ok(());
                }
            }
        }
        self.write(&mut state, record).await?;
        let id = match self.lazy.id().await {
            Ok(id) => tower_id(id),
            Err(e) => return Err(backend(&mut state, e)),
        };
        record.id = id;
        state.id = Some(id);
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let mut state = self.state.lock().await;
        if state.classify_only {
            // Only `create` can tell (a clone saved in between): unknown.
            return Ok(());
        }
        self.write(&mut state, record).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let mut state = self.state.lock().await;
        if state.id != Some(*id) {
            return Ok(None);
        }
        let (data, ends) = self.read(&mut state).await?;
        Ok(Some(Record {
            id: *id,
            data,
            // tower-sessions sets its own before each save; this one is
            // only read by stores that expire records.
            expiry_date: ends.map_or_else(time::OffsetDateTime::now_utc, date_time),
        }))
    }

    /// Marks the sealed session for a flush, unless a save follows.
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let mut state = self.state.lock().await;
        // tower-sessions deletes the id it drew itself when a new session
        // cycles: not this session's.
        if state.id == Some(*id) {
            if self.lazy.is_finished() {
                // As `LazySession` says of its own late changes.
                tracing::warn!(
                    event = "changed-after-response",
                    "tower-sessions Session deleted after its request ended; the logout is lost"
                );
            }
            state.deleted = true;
            state.deletes = state.deletes.saturating_add(1);
            // Now, not after the handler: a request dropped or failed
            // before then still ends the session.
            self.lazy.set_end_pending(true);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every expiry crosses the bridge and back unchanged, to the second;
    /// what tower-sessions can hold but a sealed session cannot is read
    /// as its nearest end, never later.
    #[test]
    fn expiries_map_both_ways() {
        let end = 1_700_000_000;
        for expiry in [
            Expiry::Default,
            Expiry::BrowserSession,
            Expiry::Idle(Duration::from_secs(60)),
            Expiry::At(end),
        ] {
            assert_eq!(sealed_expiry(tower_expiry(expiry)), expiry, "{expiry:?}");
        }
        let at = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(
            tower_expiry(Expiry::At(end)),
            Some(TowerExpiry::AtDateTime(at))
        );
        // A negative window is past: the session ends now, not never.
        let past = Some(TowerExpiry::OnInactivity(time::Duration::seconds(-1)));
        assert_eq!(sealed_expiry(past), Expiry::Idle(Duration::ZERO));
        // A date before 1970 has ended.
        let before = time::OffsetDateTime::from_unix_timestamp(-1).unwrap();
        assert_eq!(
            sealed_expiry(Some(TowerExpiry::AtDateTime(before))),
            Expiry::At(0)
        );
        // Past year 9999, `time`'s last date stands for it.
        let last = time::PrimitiveDateTime::MAX.assume_utc();
        assert_eq!(
            tower_expiry(Expiry::At(u64::MAX)),
            Some(TowerExpiry::AtDateTime(last))
        );
    }
}
