//! The example web app's routes, shared by `main.rs` and the real-client
//! tests (`tests/http_webapp.rs` includes this file), so the tests drive
//! exactly this router.
//!
//! Everything lives in the cookie: the user (critical priority, never
//! dropped), preferences (high), the cart's index (normal) and the cart's
//! lines (low: the first to go when the cookie would exceed its budget).
//! Adding a line previews the save, and a one-time notice (high) tells the
//! page after the redirect which lines the cookie could not keep.
//! The only server-side state is the in-memory revocation list that makes
//! logout final even for a copy of the old cookie.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Form, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use sealed_session::http::{LazySession, SessionLayer, SessionLayerBuilder};
use sealed_session::store::MemoryRevocations;
use sealed_session::{Clock, Error, KeyRing, Priority, MAX_NAME_VALUE_LEN};
use serde::{Deserialize, Serialize};

/// The session cookie's name: `__Host-`, so browsers accept it only from
/// this host, with `Secure`, `Path=/` and no `Domain` (a sibling subdomain
/// cannot plant one).
pub const COOKIE_NAME: &str = "__Host-demo_session";
/// The name with `--insecure` (plain HTTP), where the prefix cannot be used.
pub const INSECURE_COOKIE_NAME: &str = "demo_session";
/// The password every demo user logs in with.
pub const DEMO_PASSWORD: &str = "demo";
/// The absolute lifetime of a session.
pub const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// The idle timeout (a revocation is kept this long, plus the clock skew
/// and a second: no cookie it revokes can open after that).
pub const MAX_IDLE: Duration = Duration::from_secs(24 * 3600);
/// Most lines a cart may have (its index stays small).
pub const MAX_CART_LINES: usize = 50;
/// Longest note on a cart line, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

const USER: &str = "user";
const PREFS: &str = "prefs";
const CART: &str = "cart";
const VISITS: &str = "visits";
/// One-time messages for the next page (`push_flash`).
const NOTICES: &str = "notices";

/// One line of the cart's index: enough to name a line that was dropped.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LineRef {
    id: u32,
    sku: String,
}

/// A cart line, stored under `cart:<id>` at low priority.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CartLine {
    sku: String,
    qty: u32,
    note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Prefs {
    theme: String,
    language: String,
}

impl Default for Prefs {
    fn default() -> Self {
        Prefs {
            theme: "light".to_owned(),
            language: "en".to_owned(),
        }
    }
}

const THEMES: [&str; 2] = ["light", "dark"];
const LANGUAGES: [&str; 3] = ["en", "fr", "de"];

/// Refuses a cross-site form post (403) before its handler runs; every
/// POST handler takes it.
///
/// `SameSite=Lax` keeps the session cookie off a cross-site POST, but
/// browsers still store the `Set-Cookie` of its response: without this
/// check a page elsewhere could post the login form and log the visitor in
/// as the attacker (login CSRF), or log them out. Browsers say where a
/// request comes from in `Sec-Fetch-Site`, and older ones in `Origin`; a
/// request with neither (curl, the tests' client) is not a browser's
/// cross-site one and passes. Browsers send `Sec-Fetch-Site` only to
/// HTTPS (and localhost) origins; over plain HTTP the `Origin` is compared
/// with the `Host` the app receives, so behind a proxy that rewrites `Host`
/// compare with the public host instead.
pub struct SameOrigin;

impl<S: Send + Sync> FromRequestParts<S> for SameOrigin {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let same_origin = match (
            header(header::HeaderName::from_static("sec-fetch-site")),
            header(header::ORIGIN),
        ) {
            (Some(site), _) => site == "same-origin" || site == "none",
            (None, Some(origin)) => {
                // `scheme://host[:port]` against the request's own authority
                // (`null`, sent by sandboxed or privacy-sensitive contexts,
                // never matches). Either web scheme: the app cannot tell
                // whether a proxy in front of it terminates TLS.
                let authority =
                    header(header::HOST).or_else(|| parts.uri.authority().map(|a| a.as_str()));
                let host = ["http://", "https://"]
                    .iter()
                    .find_map(|scheme| origin.strip_prefix(scheme));
                host.is_some() && host == authority
            }
            (None, None) => true,
        };
        if same_origin {
            Ok(SameOrigin)
        } else {
            Err((StatusCode::FORBIDDEN, "cross-site form posts are refused\n"))
        }
    }
}

fn line_key(id: u32) -> String {
    format!("cart:{id}")
}

/// The app: its clock and its revocation list.
pub struct Demo {
    clock: Arc<dyn Clock>,
    revocations: Arc<MemoryRevocations>,
}

impl Demo {
    /// An app timed by `clock` (the system clock in `main`, a fixed one in
    /// tests).
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Demo {
            revocations: Arc::new(MemoryRevocations::with_clock(Arc::clone(&clock))),
            clock,
        }
    }

    /// The session layer with the app's settings; callers may change more
    /// before `build()`.
    pub fn layer(&self, ring: KeyRing) -> SessionLayerBuilder {
        SessionLayer::builder(ring)
            // The `__Host-` prefix in the name forces Secure, Path=/ and
            // no Domain.
            .cookie_name(COOKIE_NAME)
            .max_idle(MAX_IDLE)
            .max_lifetime(MAX_LIFETIME)
            .clock(Arc::clone(&self.clock))
            // `flush` and `cycle_id` revoke the id they replace: a copy of
            // the cookie from before a login or logout no longer opens.
            .revocation_store(self.revocations.clone(), Some(USER))
            // Called only with news: drops, or (ERROR logged already) an
            // old id the store could not revoke.
            .on_save_report(|report, _uri| {
                if !report.dropped.is_empty() {
                    let keys = report.dropped_keys();
                    tracing::info!(
                        ?keys,
                        header_len = report.header_len,
                        "cart lines dropped to fit the cookie"
                    );
                }
                if report.unrevoked.is_some() {
                    tracing::warn!("copies of the replaced cookie stay valid until they expire");
                }
            })
    }

    /// The app's routes behind `layer`.
    pub fn router(&self, layer: SessionLayer) -> Router {
        self.routes().layer(layer)
    }

    /// The same routes without the session layer: `/counter` then serves
    /// the same handler without a session (for the load test's baseline);
    /// every other page answers 500.
    pub fn bare_router(&self) -> Router {
        self.routes()
    }

    fn routes(&self) -> Router {
        Router::new()
            .route("/", get(home))
            .route("/login", get(login_form).post(login))
            .route("/logout", post(logout))
            .route("/logout-others", post(logout_others))
            .route("/cart", get(cart))
            .route("/cart/add", post(cart_add))
            .route("/cart/clear", post(cart_clear))
            .route("/cart/forget-dropped", post(cart_forget_dropped))
            .route("/preferences", get(preferences).post(preferences_save))
            .route("/session", get(session_page))
            .route("/counter", get(counter))
            .route("/health", get(|| async { "ok\n" }))
    }
}

/// A page, or a session error (a 500 page; a bad cookie is not an error:
/// it gives a fresh session).
type Page = Result<Response, Error>;

/// Escapes text for HTML element content and quoted attributes.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

async fn layout(session: &LazySession, title: &str, body: &str) -> Result<Html<String>, Error> {
    let user: Option<String> = session.get(USER).await?;
    let prefs: Prefs = session.get(PREFS).await?.unwrap_or_default();
    let who = match &user {
        Some(user) => format!(
            "Signed in as <strong>{}</strong> \
             <form method=post action=/logout style=display:inline><button>Log out</button></form>",
            esc(user)
        ),
        None => "Not signed in. <a href=/login>Log in</a>".to_owned(),
    };
    let (bg, fg) = if prefs.theme == "dark" {
        ("#222", "#eee")
    } else {
        ("#fff", "#111")
    };
    Ok(Html(format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=utf-8><title>{title}</title>\
         <style>body{{background:{bg};color:{fg};font-family:sans-serif;max-width:50em;margin:2em auto}}\
         td,th{{padding:.2em .6em;text-align:left}}</style></head><body>\
         <nav><a href=/>Home</a> · <a href=/cart>Cart</a> · <a href=/preferences>Preferences</a> · \
         <a href=/session>Session</a> — {who}</nav><h1>{title}</h1>{body}</body></html>",
        lang = esc(&prefs.language),
        title = esc(title),
    )))
}

async fn home(session: LazySession) -> Page {
    let mut body = "<p>A demo of <code>sealed-session</code>: the whole session lives in one \
                    encrypted cookie, nothing is stored on the server.</p>"
        .to_owned();
    if session.contains(USER).await? {
        body.push_str(&logout_others_form(""));
    }
    Ok(layout(&session, "Home", &body).await?.into_response())
}

fn logout_others_form(message: &str) -> String {
    format!(
        "{message}<form method=post action=/logout-others>\
         <p><label>Password <input name=password type=password required></label> \
         <button>Log out my other devices</button></p></form>"
    )
}

#[derive(Deserialize)]
struct Password {
    password: String,
}

/// "Log out my other devices" (after a password change, say): the
/// password is asked again, since anyone holding this cookie could
/// otherwise log the user out everywhere else. This device stays signed
/// in under a new id.
async fn logout_others(_: SameOrigin, session: LazySession, Form(form): Form<Password>) -> Page {
    if form.password != DEMO_PASSWORD {
        let body = logout_others_form("<p><strong>Wrong password.</strong></p>");
        let page = layout(&session, "Home", &body).await?;
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    }
    session.log_out_other_sessions().await?;
    Ok(Redirect::to("/").into_response())
}

fn login_body(message: &str) -> String {
    format!(
        "{message}<form method=post action=/login>\
         <p><label>User name <input name=username required maxlength=64></label></p>\
         <p><label>Password <input name=password type=password required></label> \
         (every user's password is <code>{DEMO_PASSWORD}</code>)</p>\
         <p><button>Log in</button></p></form>"
    )
}

async fn login_form(session: LazySession) -> Page {
    Ok(layout(&session, "Log in", &login_body(""))
        .await?
        .into_response())
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn login(_: SameOrigin, session: LazySession, Form(form): Form<Login>) -> Page {
    let username = form.username.trim();
    let valid = !username.is_empty() && username.chars().count() <= 64;
    if !valid || form.password != DEMO_PASSWORD {
        let body = login_body("<p><strong>Wrong user name or password.</strong></p>");
        let page = layout(&session, "Log in", &body).await?;
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    }
    let previous: Option<String> = session.get(USER).await?;
    // Either call revokes the current id (the layer's revocation store):
    // a copy of this cookie stays out of the new login.
    if previous.is_some_and(|previous| previous != username) {
        // Another user's session on this browser (never logged out):
        // nothing of theirs carries over, as with Django's login().
        session.flush().await?;
    } else {
        // A new id at login, against session fixation; the cart stays.
        session.cycle_id().await?;
    }
    session
        .insert_with_priority(USER, username, Priority::Critical)
        .await?;
    Ok(Redirect::to("/").into_response())
}

async fn logout(_: SameOrigin, session: LazySession) -> Page {
    // Also revokes the old id: a copy of the old cookie stops working.
    session.flush().await?;
    Ok(Redirect::to("/").into_response())
}

async fn cart(session: LazySession) -> Page {
    let notices: Vec<String> = session.take_flashes(NOTICES).await?;
    let notices: String = notices
        .iter()
        .map(|notice| format!("<p class=notice>{}</p>", esc(notice)))
        .collect();
    let index: Vec<LineRef> = session.get(CART).await?.unwrap_or_default();
    let mut rows = String::new();
    let mut dropped = 0;
    for line in &index {
        match session.get::<CartLine>(&line_key(line.id)).await? {
            Some(item) => rows.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} chars</td></tr>",
                line.id,
                esc(&item.sku),
                item.qty,
                item.note.chars().count()
            )),
            None => {
                dropped += 1;
                rows.push_str(&format!(
                    "<tr class=dropped><td>{}</td><td>{}</td><td colspan=2>\
                     <em>dropped to keep the cookie within its budget</em></td></tr>",
                    line.id,
                    esc(&line.sku)
                ));
            }
        }
    }
    let forget = if dropped > 0 {
        "<form method=post action=/cart/forget-dropped><button>Forget dropped lines</button></form>"
    } else {
        ""
    };
    let body = format!(
        "{notices}<p>{} line(s), {dropped} dropped.</p>\
         <table><tr><th>#</th><th>SKU</th><th>Qty</th><th>Note</th></tr>{rows}</table>{forget}\
         <h2>Add a line</h2><form method=post action=/cart/add>\
         <p><label>SKU <input name=sku required maxlength=64></label> \
         <label>Qty <input name=qty type=number min=1 max=99 value=1></label></p>\
         <p><label>Note <textarea name=note maxlength={MAX_NOTE_CHARS}></textarea></label></p>\
         <p><button>Add</button></p></form>\
         <form method=post action=/cart/clear><button>Empty the cart</button></form>",
        index.len()
    );
    Ok(layout(&session, "Cart", &body).await?.into_response())
}

#[derive(Deserialize)]
struct AddLine {
    sku: String,
    #[serde(default = "one")]
    qty: u32,
    #[serde(default)]
    note: String,
}

fn one() -> u32 {
    1
}

async fn cart_add(_: SameOrigin, session: LazySession, Form(form): Form<AddLine>) -> Page {
    let sku = form.sku.trim();
    let valid = !sku.is_empty()
        && sku.chars().count() <= 64
        && (1..=99).contains(&form.qty)
        && form.note.chars().count() <= MAX_NOTE_CHARS;
    if !valid {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, "invalid cart line\n").into_response());
    }
    let mut index: Vec<LineRef> = session.get(CART).await?.unwrap_or_default();
    if index.len() >= MAX_CART_LINES {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, "the cart is full\n").into_response());
    }
    let id = index.iter().map(|l| l.id).max().map_or(1, |m| m + 1);
    let line = CartLine {
        sku: sku.to_owned(),
        qty: form.qty,
        note: form.note,
    };
    session
        .insert_with_priority(&line_key(id), &line, Priority::Low)
        .await?;
    index.push(LineRef {
        id,
        sku: sku.to_owned(),
    });
    session.insert(CART, &index).await?;
    // What the layer's save will drop, known now: the cart page after the
    // redirect says so (the cart's index lists dropped lines from then on).
    // A notice takes room in the cookie too, so ask again until every
    // line the save drops has one (each round names at least one more).
    // At most `Session::MAX_FLASHES` notices wait unread: a client that
    // never shows the cart keeps the newest.
    let mut noticed = Vec::new();
    loop {
        let report = session.preview_save().await?;
        let dropped = report.dropped_keys();
        let unnoticed: Vec<&LineRef> = index
            .iter()
            .filter(|line| !noticed.contains(&line.id))
            .filter(|line| dropped.contains(&line_key(line.id).as_str()))
            .collect();
        if unnoticed.is_empty() {
            break;
        }
        for line in unnoticed {
            let notice = format!(
                "Line {} ({}) does not fit in the cookie: it is dropped.",
                line.id, line.sku
            );
            session.push_flash(NOTICES, &notice).await?;
            noticed.push(line.id);
        }
    }
    Ok(Redirect::to("/cart").into_response())
}

async fn cart_clear(_: SameOrigin, session: LazySession) -> Page {
    let index: Vec<LineRef> = session.take(CART).await?.unwrap_or_default();
    for line in index {
        session.remove(&line_key(line.id)).await?;
    }
    Ok(Redirect::to("/cart").into_response())
}

async fn cart_forget_dropped(_: SameOrigin, session: LazySession) -> Page {
    let index: Vec<LineRef> = session.get(CART).await?.unwrap_or_default();
    let mut kept = Vec::with_capacity(index.len());
    for line in index {
        if session.contains(&line_key(line.id)).await? {
            kept.push(line);
        }
    }
    session.insert(CART, &kept).await?;
    Ok(Redirect::to("/cart").into_response())
}

async fn preferences(session: LazySession) -> Page {
    let prefs: Prefs = session.get(PREFS).await?.unwrap_or_default();
    let options = |all: &[&str], current: &str| {
        all.iter()
            .map(|v| {
                let selected = if *v == current { " selected" } else { "" };
                format!("<option{selected}>{v}</option>")
            })
            .collect::<String>()
    };
    let body = format!(
        "<form method=post action=/preferences>\
         <p><label>Theme <select name=theme>{}</select></label></p>\
         <p><label>Language <select name=language>{}</select></label></p>\
         <p><button>Save</button></p></form>",
        options(&THEMES, &prefs.theme),
        options(&LANGUAGES, &prefs.language)
    );
    Ok(layout(&session, "Preferences", &body)
        .await?
        .into_response())
}

async fn preferences_save(_: SameOrigin, session: LazySession, Form(prefs): Form<Prefs>) -> Page {
    if !THEMES.contains(&prefs.theme.as_str()) || !LANGUAGES.contains(&prefs.language.as_str()) {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown theme or language\n",
        )
            .into_response());
    }
    session
        .insert_with_priority(PREFS, &prefs, Priority::High)
        .await?;
    Ok(Redirect::to("/preferences").into_response())
}

async fn session_page(session: LazySession) -> Page {
    let limits = format!(
        "The whole <code>Set-Cookie</code> header may take at most {} bytes, and the \
         cookie's name and value at most {MAX_NAME_VALUE_LEN} (what browsers keep).",
        session.sealer().budget()
    );
    let size = match session.cookie_len().await? {
        Some(len) => format!(
            "<p>The cookie your browser sent: <strong id=cookie-len>{len}</strong> bytes of \
             value. {limits}</p>"
        ),
        None => format!(
            "<p>Your browser sent no session cookie (<span id=cookie-len>0</span> bytes). \
             {limits}</p>"
        ),
    };
    let rejected = match session.rejected_cookie().await? {
        Some(error @ Error::Expired(_)) => format!(
            "<p>Your session expired ({}): log in again.</p>",
            esc(error.kind())
        ),
        Some(error) => format!("<p>The cookie sent was ignored: {}.</p>", esc(error.kind())),
        None => String::new(),
    };
    let mut entries = String::new();
    for (key, priority) in session.keys_with_priority().await? {
        entries.push_str(&format!(
            "<tr><td>{}</td><td>{priority:?}</td></tr>",
            esc(&key)
        ));
    }
    let index: Vec<LineRef> = session.get(CART).await?.unwrap_or_default();
    let mut dropped = String::new();
    for line in &index {
        if !session.contains(&line_key(line.id)).await? {
            dropped.push_str(&format!(
                "<li class=dropped>cart line {} ({})</li>",
                line.id,
                esc(&line.sku)
            ));
        }
    }
    if dropped.is_empty() {
        dropped.push_str("<li>nothing</li>");
    }
    let body = format!(
        "{size}{rejected}<h2>Entries</h2><table><tr><th>Key</th><th>Priority</th></tr>{entries}</table>\
         <h2>Dropped to fit the budget</h2><ul>{dropped}</ul>"
    );
    Ok(layout(&session, "Session", &body).await?.into_response())
}

/// Reads and writes the session on every request: the load test's handler.
/// Without the layer (`bare_router`) it runs without a session.
async fn counter(session: Option<LazySession>) -> Result<String, Error> {
    let visits = match session {
        Some(session) => {
            let visits = session.get::<u64>(VISITS).await?.unwrap_or(0) + 1;
            session.insert(VISITS, &visits).await?;
            visits
        }
        None => 0,
    };
    Ok(format!("visits: {visits}\n"))
}
