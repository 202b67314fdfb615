//! `/counter` on `tower-sessions` (shared by the peer app and `benches/layer.rs`).

use axum::routing::get;
use axum::Router;
use tower_sessions::cookie::time;
use tower_sessions::{Expiry, MemoryStore, Session, SessionManagerLayer};

/// Key of the visit count, as in the example app.
const VISITS: &str = "visits";

/// Reads and writes the session on every request, like the example app's
/// `/counter`: a `Set-Cookie` on every response (tower-sessions sets it
/// whenever the session was modified).
async fn counter(session: Session) -> Result<String, (http::StatusCode, String)> {
    let failed = |error: tower_sessions::session::Error| {
        (http::StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    };
    let visits = session
        .get::<u64>(VISITS)
        .await
        .map_err(failed)?
        .unwrap_or(0)
        + 1;
    session.insert(VISITS, visits).await.map_err(failed)?;
    Ok(format!("visits: {visits}\n"))
}

/// `/counter` and `/health` behind a session manager with the example
/// app's cookie attributes (`Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`)
/// and its idle timeout (a persistent cookie whose `Max-Age` is one day,
/// renewed on every request), over a fresh in-memory store. Unlike the
/// app, it has no absolute lifetime, no revocation check and no
/// `Vary: Cookie`.
pub fn router() -> Router {
    let layer = SessionManagerLayer::new(MemoryStore::default())
        .with_secure(true)
        .with_http_only(true)
        .with_same_site(tower_sessions::cookie::SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(time::Duration::days(1)));
    Router::new()
        .route("/counter", get(counter))
        .route("/health", get(|| async { "ok\n" }))
        .layer(layer)
}
