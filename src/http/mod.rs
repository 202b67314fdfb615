//! HTTP integration (feature `axum`): a [`tower`] layer that keeps the whole
//! session in the cookie, and an [`axum`] extractor to use it from handlers.
//!
//! [`tower`]: https://docs.rs/tower-layer
//! [`axum`]: https://docs.rs/axum
//!
//! ```
//! use axum::{routing::get, Router};
//! use sealed_session::http::{LazySession, SessionLayer};
//! use sealed_session::{Error, KeyRing, MasterKey};
//! use tower::ServiceExt as _; // `oneshot`, from `tower` with its `util` feature
//!
//! async fn visit(session: LazySession) -> Result<String, Error> {
//!     let visits = session.get::<u64>("visits").await?.unwrap_or(0) + 1;
//!     session.insert("visits", visits).await?;
//!     Ok(format!("visit {visits}"))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layer = SessionLayer::builder(KeyRing::new(MasterKey::generate()?))
//!     .cookie_name("id")
//!     .build()?;
//! let app = Router::new().route("/", get(visit)).layer(layer);
//!
//! // First request: no cookie, so a new session; the response sets it.
//! let request = axum::http::Request::new(axum::body::Body::empty());
//! let response = app.clone().oneshot(request).await?;
//! let set_cookie = response.headers()["set-cookie"].to_str()?;
//! assert!(set_cookie.starts_with("id="));
//! assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("Secure"));
//! assert!(set_cookie.contains("SameSite=Lax") && set_cookie.contains("Path=/"));
//!
//! // Second request: the browser sends the cookie back.
//! let cookie = set_cookie.split(';').next().unwrap_or_default();
//! let request = axum::http::Request::builder()
//!     .header("cookie", cookie)
//!     .body(axum::body::Body::empty())?;
//! let response = app.oneshot(request).await?;
//! assert!(response.headers().contains_key("set-cookie")); // modified again
//! # Ok(())
//! # }
//! ```
//!
//! ## What the layer does
//!
//! - **Opens lazily.** The request's `Cookie` headers are kept aside; the
//!   cookie is parsed, authenticated and decrypted only when a handler first
//!   touches the [`LazySession`]. Requests that never touch it cost no
//!   cryptography and never get a `Set-Cookie` (unless
//!   [`SessionLayerBuilder::open_every_request`] is on: then every request
//!   that carries the cookie opens it after the handler, for the sliding
//!   refresh).
//! - **Writes back only what changed.** After the handler, a session that
//!   was opened is saved with [`Sealer::save_async`](crate::Sealer::save_async):
//!   a `Set-Cookie` header is appended when the session was modified, its
//!   sliding refresh is due, it was opened with a fallback key (it is then
//!   re-sealed under the primary) or it was flushed (a deletion cookie).
//!   Unchanged sessions add no header. Should the handler (or an inner
//!   layer) set a cookie of the session's name itself, a session that was
//!   changed (a handler's change, a flush) still wins: the layer's
//!   `Set-Cookie` comes after it, so browsers keep the layer's, and a
//!   warning is logged. One that was not changed (only a refresh, a
//!   re-seal under the primary key or a bad cookie's deletion was due)
//!   yields: the layer adds no `Set-Cookie` (a `DEBUG` event,
//!   `set-cookie-yielded`).
//! - **Keeps no empty sessions.** A session without entries is not worth a
//!   cookie (as in Django and tower-sessions): none is set for it, and the
//!   cookie it was opened from is deleted, also when the save empties it
//!   (the budget drops every entry; the report hook hears of the drops). So a session that holds nothing
//!   keeps neither its id nor an expiry set on it across requests.
//! - **Saves nothing on server errors.** When the handler's response is a
//!   server error (5xx) nothing is saved, as in Django: the client keeps
//!   the cookie it had, and an INFO event says so when the session
//!   had changes ([`SessionLayerBuilder::save_on_server_error`] saves
//!   instead). A logout still happens: a session the handler flushed gets
//!   its deletion cookie (and, with a revocation store, its old id
//!   revoked) whatever the status, as in Django, without any entry stored
//!   after the flush. An inner service that fails instead of answering
//!   (an error, not a response) saves nothing either, and no cookie can
//!   be sent, but a flushed session's old id is still revoked. Put a
//!   timeout layer outside the session layer, not
//!   inside: inside, it answers `408` after dropping the handler, and what
//!   the handler had changed by then would be saved; outside, the whole
//!   request is dropped and nothing is saved: a request dropped before its
//!   response (an outer timeout, a client gone) sends no cookie, and the
//!   client keeps the one it had. A logout is still recorded: with a
//!   revocation store, a session the handler flushed gets its old id
//!   revoked on a task of its own, as Django's `flush` and tower-sessions'
//!   `flush` end the stored session whatever becomes of the response. As
//!   on a 5xx response, entries stored after the flush are not kept (a
//!   flush then a login's entries is a logout). The task is spawned on
//!   the current tokio runtime and bounded only by the store (see
//!   [`RevocationStore`](crate::store::RevocationStore)); a warning says
//!   when there is no runtime, or when a runtime shutting down drops the
//!   task before it is done.
//! - **Tells caches.** A response for which a handler opened the session
//!   depends on the cookie, so it gets `Vary: Cookie` (unless it already
//!   varies on `Cookie` or on `*`), as Django does: a shared cache then
//!   keys the page by the visitor's cookie. Responses that did not touch
//!   the session are left alone (with
//!   [`SessionLayerBuilder::open_every_request`], those of requests that
//!   carry no session cookie). `Vary` does not separate visitors who have
//!   no cookie yet, so a response that sets or deletes the cookie is also
//!   made `Cache-Control: private` (unless its `Cache-Control` already says
//!   `no-store` or a bare `private`: `private="X-Foo"` names only some
//!   fields; any other, and any with `public`, gets `private` on the same
//!   line as its other directives, in place of `public` and of a
//!   `private` with a field list, so that a cache reading only the first
//!   line sees it, unless a line is not text: then `private` is a line of
//!   its own; RFC 9111
//!   forbids a shared cache to store a response marked `private`):
//!   otherwise a shared
//!   cache could store the first cookie-less visitor's new session and
//!   hand it to every later visitor without a cookie. Headers meant for a
//!   CDN alone (`CDN-Cache-Control`, `Surrogate-Control`) replace
//!   `Cache-Control` there and are left as the handler set them: a
//!   handler that sets them must not set them on pages that may set the
//!   cookie.
//! - **Ignores bad cookies.** A malformed, tampered, expired or revoked
//!   cookie gives a fresh, empty session and a `tracing` event carrying the
//!   error kind and the cookie's length, never its value; the handler runs
//!   as usual (no error page, whatever it stores). Unless the handler stores something, the
//!   response deletes the bad cookie when it fails for good: it was the
//!   request's only cookie with the session's name and it is tampered,
//!   malformed, expired or revoked. A cookie that may open on another
//!   server or later is kept: the revocation store could not answer, its
//!   key id is not (yet) in this server's ring, it comes from a newer
//!   version, or it was issued in this server's future. When the
//!   revocation store could not answer, the cookie is kept even if the
//!   handler stores something (a logout, a flush with nothing stored
//!   after it, still deletes it and revokes its id): that save is refused and reported as a
//!   failed save (below), so an outage loses one request's changes, not the
//!   user's session; as such a save loses the handler's changes, the
//!   response is an empty 503 unless
//!   [`SessionLayerBuilder::error_on_lost_changes`] is off. The other kept cookies are replaced by what the
//!   handler stores, since their cause can last (a retired key, a
//!   rolled-back release, a server whose clock stays ahead) and refusing
//!   every write until the cookie expired, logging in again included, would
//!   lock the user out. (A deletion cookie
//!   carries the layer's own path and domain (with
//!   [`SessionLayerBuilder::domains`], the request host's, and a host-only
//!   cookie of the same name and path is deleted too): a cookie of the same name
//!   set for another path or a parent domain stays. A server whose clock
//!   runs ahead, or that already has a shorter timeout during a rollout,
//!   deletes a cookie the moment it expires there. A cookie over the
//!   configured limits is not deleted, and is logged on each request.)
//!   Each is logged (event `cookie-refused`) with its error kind: at
//!   `DEBUG` or `INFO` what anyone can send, at `WARN` what needs one of
//!   the ring's keys, or a store out of reach (one `WARN` per 10 seconds,
//!   the rest at `DEBUG`; docs/LOGGING.md). Logging out ([`LazySession::flush`]) deletes whatever
//!   session cookie the request carried, and with a revocation store
//!   ([`SessionLayerBuilder::revocation_store`]) revokes its id, as
//!   [`LazySession::cycle_id`] does at login.
//! - **Fails the response only when the handler's changes are lost.** A
//!   save that fails (the entries that may not be dropped exceed the budget, the
//!   store is down, or the request's cookie did not open because the
//!   revocation store was down)
//!   sends no `Set-Cookie`, so the client keeps its previous
//!   cookie; the failure is logged at `ERROR` (event `save-failed`,
//!   under the target `sealed_session::http::layer`) and passed to the hook set with
//!   [`SessionLayerBuilder::on_save_error`]. If the save carried changes
//!   the handler made, an empty 500 (503 when a store could not be
//!   reached) replaces the handler's response, which would claim what did
//!   not happen; a failed sliding refresh or re-seal leaves the response
//!   alone. [`SessionLayerBuilder::error_on_lost_changes`] turns the
//!   replacement off.
//! - **Logs no request data.** The layer's events carry a stable `event`
//!   name, error kinds and lengths, not the request's path, query or
//!   headers (a path can hold a password-reset or login token); they are
//!   emitted inside whatever span the application opened for the request
//!   (`tower_http::trace`'s, say), the revocation that finishes a dropped
//!   request's logout included, so its own policy decides what identifies
//!   the request. The hooks get the URI. docs/LOGGING.md lists every
//!   event, its level and fields.
//!
//! ## Several cookies with the session's name
//!
//! A request can carry more than one cookie with the session's name (one
//! per path or domain the cookie was set for, or one planted by a sibling
//! subdomain). A cookie has the session's name only if its name as sent
//! equals it, apart from spaces and tabs around it: a name with other
//! white space (`\u{2000}__Host-id`) is another cookie, which any host
//! may set despite the prefix (FORMAT.md §14.4). The rule: candidates are tried **in the order they appear**
//! in the `Cookie` headers (browsers list longer paths first, then older
//! cookies first); the **first one that opens** (authentic, not expired,
//! not revoked) is the session, and the others are ignored. At most
//! [`SessionLayerBuilder::max_cookies_tried`] candidates (default 4) are
//! opened, bounding the work an attacker can cause. If none opens, the
//! request gets a fresh session; with several candidates none is deleted,
//! as which one is this layer's own is unknown. A planted cookie cannot be
//! forged, but a sibling subdomain could plant a genuine cookie of another
//! session, or bad cookies listed before this layer's own: the `__Host-`
//! prefix ([`SessionLayerBuilder::host_prefix`]) stops that, since
//! browsers refuse such cookies from other hosts.
//!
//! ## One session layer per route
//!
//! Handlers find the session by its type in the request's extensions, so
//! a route under two session layers (a router nested under one and layered
//! with another) sees only the inner layer's session; a warning is logged
//! when both use the same cookie name. No handler can change the outer
//! layer's session then, so it never overrides what the inner one sets (a
//! logout's deletion cookie, say): it yields, as above. Give each route one
//! layer: for two cookies (a site session and an admin one), keep the
//! routers apart.
//!
//! ## Among other layers
//!
//! `Router::layer` wraps the routes added before it, and each later
//! `layer` call wraps the earlier ones; in a `tower::ServiceBuilder`, the
//! first layer listed is the outermost.
//!
//! - **`layer`, after the routes.** With `Router::layer`, fallbacks and
//!   axum's own 404 and 405 responses have the session too; with
//!   `route_layer`, only matched routes do (an `Option<LazySession>` is
//!   `None` elsewhere). Routes added after the `layer` call are not under
//!   it: a handler there that asks for the session gets a 500 (event
//!   `session-layer-missing`).
//! - **Outside the session layer:** tracing (`tower_http::trace`), so that
//!   it logs the status actually sent, and since its response body is not
//!   `Default` the session layer cannot wrap it; CORS, since the empty
//!   500 or 503 sent when a save loses the handler's changes replaces the
//!   whole response, headers set inside included; timeouts (above).
//! - **Inside the session layer:** `tower_http::catch_panic`. A handler's
//!   panic then becomes a 500 the layer sees, which saves nothing but still
//!   ends a flushed session (deletion cookie); outside, the panic reaches
//!   the layer as a dropped request, which sends no cookie. Also inside:
//!   layers that replace response headers (`SetResponseHeaderLayer::overriding`
//!   on `Cache-Control` or `Vary`), or use `if_not_present` or `appending`:
//!   outside, they replace the `private` and `Vary: Cookie` the layer adds,
//!   and a shared cache could store a response that sets a session cookie.
//! - **Any status below 500 saves**, whoever produced it: a 401 or 413 from
//!   an inner middleware, a 408 from an inner timeout. Only a 5xx skips
//!   the save (see above).
//!
//! ## Without axum
//!
//! The layer works with any `tower` service over `http` requests whose
//! response body is `Default` (an empty body, for the response that
//! [`SessionLayerBuilder::error_on_lost_changes`] sends) and `Send +
//! 'static`, and whose future and error are `Send + 'static` (axum's `Infallible`, tower's `BoxError`,
//! `hyper::Error` are): it
//! inserts a [`LazySession`] into the request extensions, where a service
//! finds it with `request.extensions().get::<LazySession>()`. Other
//! frameworks, and edge hosts, get the same cookie selection and save
//! rules from the core crate without this feature:
//! [`Sealer::open_request_async`](crate::Sealer::open_request_async) takes
//! the request's `Cookie` header values and
//! [`Sealer::save_request_async`](crate::Sealer::save_request_async) gives
//! the `Set-Cookie` to send (and synchronous forms of both for sealers
//! without a store or revocation check).

mod extractor;
mod layer;
#[cfg(feature = "tower-sessions")]
mod tower_sessions;

/// The status a session error answers with: `503 Service Unavailable` when
/// a store could not be reached (the one condition that may pass, so a
/// retry may succeed), `500 Internal Server Error` otherwise.
fn error_status(error: &crate::Error) -> http::StatusCode {
    if crate::request::fails_for_now(error) {
        http::StatusCode::SERVICE_UNAVAILABLE
    } else {
        http::StatusCode::INTERNAL_SERVER_ERROR
    }
}

pub use extractor::{LazySession, MissingSessionLayer};
pub use layer::{LostChanges, SaveFailure, SessionLayer, SessionLayerBuilder, SessionService};
#[cfg(feature = "tower-sessions")]
pub use tower_sessions::{TowerSessionsLayer, TowerSessionsService};
