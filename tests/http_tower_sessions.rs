//! `TowerSessionsLayer`: axum-login and axum-messages on the sealed cookie,
//! driven in process; each sealed cookie is opened to check what it holds.
#![cfg(feature = "tower-sessions")]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::{Extension, Router};
use axum_login::{AuthManager, AuthSession, AuthUser, AuthnBackend, UserId};
use axum_messages::{Messages, MessagesManagerLayer};
use http::{header, Request, Response, StatusCode};
use sealed_session::http::{LazySession, SessionLayer, SessionLayerBuilder, TowerSessionsLayer};
use sealed_session::{
    Error, Expiry, KeyRing, MasterKey, MemoryRevocations, MemoryStore, Priority, Session,
};
use tower::ServiceExt as _;
use tower_sessions_core::session::Expiry as TowerExpiry;
use tower_sessions_core::Session as TowerSession;

const LOGIN_KEY: &str = "axum-login.data";

#[derive(Debug, Clone)]
struct User {
    id: u64,
    password_hash: Vec<u8>,
}

impl AuthUser for User {
    type Id = u64;
    fn id(&self) -> u64 {
        self.id
    }
    fn session_auth_hash(&self) -> &[u8] {
        &self.password_hash
    }
}

/// One user, 7, whose password hash a test can change (a password reset).
#[derive(Debug, Clone)]
struct Users {
    password_hash: Arc<Mutex<Vec<u8>>>,
}

impl Users {
    fn user(&self) -> User {
        User {
            id: 7,
            password_hash: self.password_hash.lock().expect("lock").clone(),
        }
    }
}

impl AuthnBackend for Users {
    type User = User;
    type Credentials = ();
    type Error = std::convert::Infallible;

    async fn authenticate(&self, (): ()) -> Result<Option<User>, Self::Error> {
        Ok(Some(self.user()))
    }

    async fn get_user(&self, id: &UserId<Self>) -> Result<Option<User>, Self::Error> {
        Ok((*id == 7).then(|| self.user()))
    }
}

type Auth = AuthSession<Users>;

async fn log_in(mut auth: Auth) -> StatusCode {
    let user = auth.authenticate(()).await.expect("infallible");
    status(auth.login(&user.expect("user")).await)
}

async fn who(auth: Auth) -> String {
    auth.user.map(|u| u.id.to_string()).unwrap_or_default()
}

async fn log_out(mut auth: Auth) -> StatusCode {
    status(auth.logout().await.map(drop))
}

/// Logs out, then never answers (a slow page cut by a timeout, a client
/// gone).
async fn log_out_then_hang(mut auth: Auth) -> StatusCode {
    auth.logout().await.expect("logout");
    std::future::pending::<StatusCode>().await
}

/// Logs in, then the page fails.
async fn log_in_then_fail(mut auth: Auth) -> StatusCode {
    let user = auth.authenticate(()).await.expect("infallible");
    auth.login(&user.expect("user")).await.expect("login");
    StatusCode::INTERNAL_SERVER_ERROR
}

/// Switches user: logs whoever is in out, then logs in.
async fn switch_user(mut auth: Auth) -> StatusCode {
    auth.logout().await.expect("logout");
    let user = auth.authenticate(()).await.expect("infallible");
    status(auth.login(&user.expect("user")).await)
}

/// Deletes the record, then the page fails.
async fn delete_then_fail(Extension(session): Extension<TowerSession>) -> StatusCode {
    session.delete().await.expect("delete");
    StatusCode::INTERNAL_SERVER_ERROR
}

/// Logs out, then the page fails.
async fn log_out_then_fail(mut auth: Auth) -> StatusCode {
    auth.logout().await.expect("logout");
    StatusCode::INTERNAL_SERVER_ERROR
}

/// A refused change on a route that skips the save.
async fn skipped_and_refused(
    lazy: LazySession,
    Extension(session): Extension<TowerSession>,
) -> &'static str {
    lazy.skip_save();
    session.insert("_reserved", 1).await.expect("insert");
    "skipped"
}

/// Flushes from a task that outlives the response.
async fn log_out_late(Extension(session): Extension<TowerSession>) -> StatusCode {
    session.get_value("note").await.expect("load");
    let late = session.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        late.flush().await.expect("flush");
    });
    StatusCode::OK
}

/// A refused change on a page that fails anyway: the page's own 503.
async fn refused_on_a_503(Extension(session): Extension<TowerSession>) -> Response<Body> {
    session.insert("_reserved", 1).await.expect("insert");
    let mut response = Response::new(Body::from("busy"));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let retry = http::HeaderValue::from_static("5");
    response.headers_mut().insert(header::RETRY_AFTER, retry);
    response
}

/// A handler's answer: 500 when the session failed it.
fn status<E>(result: Result<(), E>) -> StatusCode {
    match result {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn flash(messages: Messages) -> &'static str {
    messages.info("saved");
    "ok"
}

async fn read_flashes(messages: Messages) -> String {
    messages.map(|m| m.message).collect::<Vec<_>>().join(",")
}

/// The `Session`'s id, as tower-sessions prints it.
async fn tower_id(Extension(session): Extension<TowerSession>) -> String {
    session.id().map(|id| id.to_string()).unwrap_or_default()
}

async fn set_note(Extension(session): Extension<TowerSession>) -> StatusCode {
    status(session.insert("note", "from tower").await)
}

async fn forget_note(Extension(session): Extension<TowerSession>) -> StatusCode {
    status(session.remove_value("note").await.map(drop))
}

/// A key the sealed session refuses (reserved), set the tower way.
async fn set_reserved(Extension(session): Extension<TowerSession>) -> StatusCode {
    status(session.insert("_reserved", 1).await)
}

/// Keys the `Session` sees, sorted.
async fn tower_keys(Extension(session): Extension<TowerSession>) -> String {
    let mut keys = Vec::new();
    for key in ["blob", "cart", "note", "ratio", LOGIN_KEY] {
        if session.get_value(key).await.expect("load").is_some() {
            keys.push(key);
        }
    }
    keys.join(",")
}

/// Answers the `Session`'s expiry as it starts, then sets a 60-second
/// inactivity window.
async fn expire(Extension(session): Extension<TowerSession>) -> String {
    let before = format!("{:?}", session.expiry());
    session.set_expiry(Some(TowerExpiry::OnInactivity(time::Duration::seconds(60))));
    before
}

/// The sealed API: a byte string (which JSON cannot hold) and a cart.
async fn sealed_entries(session: LazySession) -> Result<&'static str, Error> {
    session
        .insert("blob", &ciborium::Value::Bytes(vec![1, 2, 3]))
        .await?;
    session
        .insert_with_priority("cart", &["apple"], Priority::Low)
        .await?;
    // JSON has no NaN: serde_json reads it as null.
    session.insert("ratio", &f64::NAN).await?;
    Ok("ok")
}

async fn browser_session(session: LazySession) -> Result<&'static str, Error> {
    session.set_expiry(Expiry::BrowserSession).await?;
    session.insert("cart", &["pear"]).await?;
    Ok("ok")
}

/// "You have been logged out", answering `STATUS` (a 500: an audit
/// write that failed after the logout, say).
async fn log_out_with_a_message<const STATUS: u16>(
    mut auth: Auth,
    messages: Messages,
) -> StatusCode {
    if auth.logout().await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    messages.info("bye");
    StatusCode::from_u16(STATUS).expect("status")
}

/// A "remember me" window, set through the sealed API.
async fn remember(session: LazySession) -> Result<&'static str, Error> {
    session
        .set_expiry(Expiry::Idle(std::time::Duration::from_secs(3600)))
        .await?;
    Ok("ok")
}

async fn seed(Extension(session): Extension<TowerSession>) -> StatusCode {
    let seeded = async {
        session.insert("secret", "s3cr3t").await?;
        session.insert("note", "n").await
    };
    status(seeded.await)
}

/// A flush and a new entry, the session never read before.
async fn flush_then_insert(Extension(session): Extension<TowerSession>) -> StatusCode {
    let done = async {
        session.flush().await?;
        session.insert("flash", "bye").await
    };
    status(done.await)
}

/// A read, a flush, then the entry read put back unchanged, and a new one.
async fn read_flush_then_insert(Extension(session): Extension<TowerSession>) -> StatusCode {
    let done = async {
        let note = session.get_value("note").await?.unwrap_or_default();
        session.flush().await?;
        session.insert("note", note).await?;
        session.insert("flash", "bye").await
    };
    status(done.await)
}

/// `clear`, the session never read before.
async fn clear(Extension(session): Extension<TowerSession>) -> StatusCode {
    session.clear().await;
    StatusCode::OK
}

/// An entry through each API, on what may be a new session.
async fn both_apis(lazy: LazySession, Extension(session): Extension<TowerSession>) -> StatusCode {
    if lazy.insert("csrf", "token").await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    status(session.insert("note", "n").await)
}

async fn both_apis_and_a_message(lazy: LazySession, messages: Messages) -> StatusCode {
    if lazy.insert("csrf", "token").await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    messages.info("hi");
    StatusCode::OK
}

/// A read, `flush` and `cycle_id` (in that order when `FLUSH_FIRST`),
/// then a new entry, answering `STATUS`.
async fn flush_cycle_insert<const FLUSH_FIRST: bool, const STATUS: u16>(
    Extension(session): Extension<TowerSession>,
) -> StatusCode {
    let done = async {
        session.get_value("note").await?;
        if FLUSH_FIRST {
            session.flush().await?;
            session.cycle_id().await?;
        } else {
            session.cycle_id().await?;
            session.flush().await?;
        }
        session.insert("user", "bob").await
    };
    match done.await {
        Ok(()) => StatusCode::from_u16(STATUS).expect("status"),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Only an entry JSON cannot hold: the `Session` reads an empty record.
async fn blob_only(session: LazySession) -> Result<&'static str, Error> {
    session
        .insert("blob", &ciborium::Value::Bytes(vec![1, 2, 3]))
        .await?;
    Ok("ok")
}

/// A login and a logout in one request, nothing stored after.
async fn cycle_then_flush(Extension(session): Extension<TowerSession>) -> StatusCode {
    let done = async {
        session.get_value("note").await?;
        session.cycle_id().await?;
        session.flush().await
    };
    status(done.await)
}

/// Two entries too large for one cookie, through the sealed API.
async fn big_entries(session: LazySession) -> Result<&'static str, Error> {
    session.insert("first", &"a".repeat(2500)).await?;
    session.insert("second", &"b".repeat(2500)).await?;
    Ok("ok")
}

/// Reads both big entries through the `Session` and changes one.
async fn append_to_first(
    Extension(session): Extension<TowerSession>,
) -> Result<String, StatusCode> {
    let read = async {
        let first: String = session.get("first").await?.unwrap_or_default();
        let second: String = session.get("second").await?.unwrap_or_default();
        session.insert("first", format!("{first}!")).await?;
        Ok::<_, tower_sessions_core::session::Error>(format!("{} {}", first.len(), second.len()))
    };
    read.await.map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}
async fn forever(session: LazySession) -> Result<&'static str, Error> {
    session.set_expiry(Expiry::At(u64::MAX)).await?;
    session.insert("cart", &["pear"]).await?;
    Ok("ok")
}

/// An OAuth callback's login: the state read and removed (every key the
/// `Session` had), then a new id and the user.
async fn pop_every_key_then_cycle(Extension(session): Extension<TowerSession>) -> StatusCode {
    let done = async {
        for key in ["secret", "note", "cart", "ratio"] {
            session.remove_value(key).await?;
        }
        session.cycle_id().await?;
        session.insert("user", "bob").await
    };
    status(done.await)
}

/// A login whose data the sealed session refuses.
async fn cycle_then_refused(Extension(session): Extension<TowerSession>) -> StatusCode {
    let done = async {
        session.get_value("note").await?;
        session.cycle_id().await?;
        session.insert("_reserved", 1).await
    };
    status(done.await)
}

/// A new id, nothing stored after it.
async fn cycle(Extension(session): Extension<TowerSession>) -> StatusCode {
    let done = async {
        session.get_value("note").await?;
        session.cycle_id().await
    };
    status(done.await)
}

/// A save the sealed session refuses (a removal and a reserved key),
/// which the handler then undoes and follows with a new entry.
async fn recover_from_a_refusal(Extension(session): Extension<TowerSession>) -> StatusCode {
    let done = async {
        let note = session.remove_value("note").await?.unwrap_or_default();
        session.insert("_reserved", 1).await?;
        if session.save().await.is_ok() {
            return Ok(StatusCode::INTERNAL_SERVER_ERROR);
        }
        session.remove_value("_reserved").await?;
        session.insert("note", note).await?;
        session.insert("fixed", 1).await?;
        Ok::<_, tower_sessions_core::session::Error>(StatusCode::OK)
    };
    done.await.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A removal the sealed session takes, then an insert it refuses.
async fn remove_then_refused(Extension(session): Extension<TowerSession>) -> StatusCode {
    let done = async {
        session.remove_value("note").await?;
        session.insert("_reserved", 1).await
    };
    status(done.await)
}

struct App {
    router: Router,
    bare: Router,
    /// Its sealer opens the cookies the app sets.
    session_layer: SessionLayer,
    users: Users,
}

fn app() -> App {
    app_with(|builder| builder)
}

/// The app, its session layer configured by `configure`.
fn app_with(configure: impl FnOnce(SessionLayerBuilder) -> SessionLayerBuilder) -> App {
    let users = Users {
        password_hash: Arc::new(Mutex::new(b"hash-1".to_vec())),
    };
    let builder = SessionLayer::builder(KeyRing::new(MasterKey::generate().expect("key")));
    let session_layer = configure(builder).build().expect("layer");
    let backend = users.clone();
    let router = Router::new()
        .route("/login", get(log_in))
        .route("/who", get(who))
        .route("/logout", get(log_out))
        .route("/logout-hang", get(log_out_then_hang))
        .route("/login-500", get(log_in_then_fail))
        .route("/logout-500", get(log_out_then_fail))
        .route("/delete-500", get(delete_then_fail))
        .route("/switch", get(switch_user))
        .route("/flash", get(flash))
        .route("/read", get(read_flashes))
        .route("/id", get(tower_id))
        .route("/note", get(set_note))
        .route("/forget", get(forget_note))
        .route("/reserved", get(set_reserved))
        .route("/keys", get(tower_keys))
        .route("/expire", get(expire))
        .route("/sealed", get(sealed_entries))
        .route("/browser-session", get(browser_session))
        .route("/both-apis", get(both_apis_and_a_message))
        .route("/remember", get(remember))
        .route("/logout-flash", get(log_out_with_a_message::<200>))
        .route("/logout-flash-500", get(log_out_with_a_message::<500>))
        .layer(MessagesManagerLayer)
        .layer(tower::layer::layer_fn(move |inner| {
            AuthManager::new(inner, backend.clone(), LOGIN_KEY)
        }))
        .layer(TowerSessionsLayer::new().priority(LOGIN_KEY, Priority::Critical))
        .layer(session_layer.clone());
    // Without axum-login and axum-messages, which read the session on
    // every request: here a handler can be the first to touch it.
    let bare = Router::new()
        .route("/seed", get(seed))
        .route("/flush-insert", get(flush_then_insert))
        .route("/read-flush-insert", get(read_flush_then_insert))
        .route("/clear", get(clear))
        .route("/partial", get(remove_then_refused))
        .route("/sealed", get(sealed_entries))
        .route("/browser-session", get(browser_session))
        .route("/both-apis", get(both_apis))
        .route("/flush-cycle", get(flush_cycle_insert::<true, 200>))
        .route("/flush-cycle-500", get(flush_cycle_insert::<true, 500>))
        .route("/cycle-flush", get(flush_cycle_insert::<false, 200>))
        .route("/cycle", get(cycle))
        .route("/blob", get(blob_only))
        .route("/recover", get(recover_from_a_refusal))
        .route("/forever", get(forever))
        .route("/log-in-and-out", get(cycle_then_flush))
        .route("/big", get(big_entries))
        .route("/append", get(append_to_first))
        .route("/pop-and-log-in", get(pop_every_key_then_cycle))
        .route("/log-out-late", get(log_out_late))
        .route("/refused-503", get(refused_on_a_503))
        .route("/cycle-refused", get(cycle_then_refused))
        .route("/skipped-refused", get(skipped_and_refused))
        .layer(TowerSessionsLayer::new())
        .layer(session_layer.clone());
    App {
        router,
        bare,
        session_layer,
        users,
    }
}

impl App {
    async fn call(&self, path: &str, cookie: Option<&str>) -> Response<Body> {
        send(&self.router, path, cookie).await
    }

    async fn call_bare(&self, path: &str, cookie: Option<&str>) -> Response<Body> {
        send(&self.bare, path, cookie).await
    }

    /// Calls `path` and opens the session its response sets.
    async fn saved(&self, path: &str, cookie: Option<&str>) -> (Session, String) {
        self.sealed(&self.call(path, cookie).await).expect("cookie")
    }

    async fn saved_bare(&self, path: &str, cookie: Option<&str>) -> (Session, String) {
        self.sealed(&self.call_bare(path, cookie).await)
            .expect("cookie")
    }

    /// The response's sealed session, opened, and the cookie pair to send
    /// next; `None` when it sets no cookie.
    fn sealed(&self, response: &Response<Body>) -> Option<(Session, String)> {
        let set = response.headers().get(header::SET_COOKIE)?;
        let cookie =
            cookie::Cookie::parse(set.to_str().expect("ascii").to_owned()).expect("cookie");
        if cookie.value().is_empty() {
            return None;
        }
        let session = self
            .session_layer
            .sealer()
            .open(cookie.value())
            .expect("opens");
        Some((session, cookie.stripped().to_string()))
    }
}

async fn send(router: &Router, path: &str, cookie: Option<&str>) -> Response<Body> {
    let mut request = Request::builder().uri(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    router
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible")
}

async fn body(response: Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

fn is_removal(response: &Response<Body>) -> bool {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.to_str().expect("ascii").contains("Max-Age=0"))
}

/// axum-login's login is kept in the sealed cookie, at the priority the
/// layer gives its key, under a new session id (fixation); the user is
/// known on the next request, and the data the session had survives.
#[tokio::test]
async fn axum_login_logs_in_and_out_through_the_sealed_cookie() {
    let app = app();
    let anonymous = app.call("/sealed", None).await;
    let (before, cookie) = app.sealed(&anonymous).expect("cookie");

    let logged_in = app.call("/login", Some(&cookie)).await;
    assert_eq!(logged_in.status(), StatusCode::OK);
    let (session, cookie) = app.sealed(&logged_in).expect("cookie");
    assert_ne!(session.id(), before.id(), "login cycles the id");
    assert_eq!(session.priority(LOGIN_KEY), Some(Priority::Critical));
    // The entries it did not touch keep their priority and raw bytes.
    assert_eq!(session.priority("cart"), Some(Priority::Low));
    assert_eq!(session.get_raw("blob"), before.get_raw("blob"));

    assert_eq!(body(app.call("/who", Some(&cookie)).await).await, "7");
    assert_eq!(body(app.call("/who", None).await).await, "");

    let logged_out = app.call("/logout", Some(&cookie)).await;
    assert_eq!(logged_out.status(), StatusCode::OK);
    assert!(is_removal(&logged_out), "logout deletes the cookie");
    assert!(app.sealed(&logged_out).is_none());
}

/// A password change makes axum-login flush the session (its auth hash no
/// longer matches): the sealed cookie is deleted.
#[tokio::test]
async fn a_changed_password_ends_the_sealed_session() {
    let app = app();
    let (_, cookie) = app.saved("/login", None).await;
    *app.users.password_hash.lock().expect("lock") = b"hash-2".to_vec();
    let response = app.call("/who", Some(&cookie)).await;
    assert!(is_removal(&response));
    assert_eq!(body(response).await, "");
}

/// axum-messages' flash survives one redirect in the sealed cookie and is
/// gone once read.
#[tokio::test]
async fn axum_messages_flash_round_trips() {
    let app = app();
    let (session, cookie) = app.saved("/flash", None).await;
    assert!(session.contains("axum-messages.data"));
    let read = app.call("/read", Some(&cookie)).await;
    let (_, cookie) = app.sealed(&read).expect("the read is saved");
    assert_eq!(body(read).await, "saved");
    assert_eq!(body(app.call("/read", Some(&cookie)).await).await, "");
}

/// `Session::id()` is the sealed session's id (none while it is new).
#[tokio::test]
async fn the_tower_id_is_the_sealed_id() {
    let app = app();
    assert_eq!(body(app.call("/id", None).await).await, "");
    let (session, cookie) = app.saved("/note", None).await;
    assert_eq!(
        session.get::<String>("note").unwrap().as_deref(),
        Some("from tower")
    );
    assert_eq!(session.priority("note"), Some(Priority::Normal));
    let printed = body(app.call("/id", Some(&cookie)).await).await;
    let expected = tower_sessions_core::session::Id(i128::from_le_bytes(*session.id().as_bytes()));
    assert_eq!(printed, expected.to_string());
}

/// An entry JSON cannot hold is not in the `Session` and stays as it is
/// when the `Session` changes others.
#[tokio::test]
async fn entries_json_cannot_hold_are_skipped_and_kept() {
    let app = app();
    let (before, cookie) = app.saved("/sealed", None).await;
    assert_eq!(
        body(app.call("/keys", Some(&cookie)).await).await,
        "cart,ratio"
    );
    let (after, _) = app.saved("/note", Some(&cookie)).await;
    assert_eq!(after.get_raw("blob"), before.get_raw("blob"));
    assert_eq!(after.get_raw("cart"), before.get_raw("cart"));
    // Read as JSON's null, unchanged: not written back as null.
    assert_eq!(after.get_raw("ratio"), before.get_raw("ratio"));
    assert!(after.contains("note"));
}

/// A key the `Session` removes is removed from the sealed session.
#[tokio::test]
async fn a_removed_key_leaves_the_sealed_session() {
    let app = app();
    let (_, cookie) = app.saved("/sealed", None).await;
    let (noted, cookie) = app.saved("/note", Some(&cookie)).await;
    assert!(noted.contains("note"));
    let (session, _) = app.saved("/forget", Some(&cookie)).await;
    assert!(!session.contains("note"));
    assert!(session.contains("cart"));
}

/// A change the sealed session refuses answers 500 and saves nothing.
#[tokio::test]
async fn a_refused_change_answers_500() {
    let app = app();
    let response = app.call("/reserved", None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
}

/// Even with `save_on_server_error`, none of a refused write's changes is
/// saved: not the removal made before the refused insert.
#[tokio::test]
async fn a_refused_write_saves_none_of_its_changes() {
    let app = app_with(|builder| builder.save_on_server_error(true));
    let (_, cookie) = app.saved_bare("/seed", None).await;
    let response = app.call_bare("/partial", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
}

/// A logout that also leaves a message ends the session, even when the
/// response is a 500: the old cookie is deleted and, with a revocation
/// store, no longer opens.
#[tokio::test]
async fn a_logout_with_a_message_ends_the_session_even_on_a_500() {
    let app =
        app_with(|builder| builder.revocation_store(Arc::new(MemoryRevocations::new()), None));
    // Not opened here: a sealer with a revocation store opens
    // asynchronously.
    let login = app.call("/login", None).await;
    let set = login.headers().get(header::SET_COOKIE).expect("cookie");
    let cookie = set
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair");
    assert_eq!(body(app.call("/who", Some(cookie)).await).await, "7");
    let response = app.call("/logout-flash-500", Some(cookie)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(is_removal(&response));
    assert_eq!(body(app.call("/who", Some(cookie)).await).await, "");
}

/// After a logout that leaves a message, the cookie holds that message
/// alone: no entry of the old session (not even one JSON cannot hold),
/// under a new id. The expiry is the `Session`'s, which tower-sessions'
/// flush keeps (it can only shorten the session).
#[tokio::test]
async fn a_logout_with_a_message_keeps_nothing_else() {
    let app = app();
    let (_, cookie) = app.saved("/sealed", None).await;
    let (_, cookie) = app.saved("/remember", Some(&cookie)).await;
    let (before, cookie) = app.saved("/login", Some(&cookie)).await;
    let (after, _) = app.saved("/logout-flash", Some(&cookie)).await;
    assert_eq!(after.keys().collect::<Vec<_>>(), ["axum-messages.data"]);
    assert_eq!(
        after.expiry(),
        Expiry::Idle(std::time::Duration::from_secs(3600))
    );
    assert_ne!(after.id(), before.id());
}

/// `flush` and `clear` drop every entry, even when nothing read the
/// session before them.
#[tokio::test]
async fn flush_and_clear_drop_what_was_never_read() {
    let app = app();
    let (_, cookie) = app.saved_bare("/seed", None).await;
    let (flushed, _) = app.saved_bare("/flush-insert", Some(&cookie)).await;
    assert_eq!(flushed.keys().collect::<Vec<_>>(), ["flash"]);
    // A value put back as it was read is written again after the flush.
    let (refilled, _) = app.saved_bare("/read-flush-insert", Some(&cookie)).await;
    let mut keys: Vec<_> = refilled.keys().collect();
    keys.sort_unstable();
    assert_eq!(keys, ["flash", "note"]);
    let cleared = app.call_bare("/clear", Some(&cookie)).await;
    assert!(
        is_removal(&cleared),
        "an emptied session's cookie is deleted"
    );
}

/// The `Session` starts with the sealed expiry, and a new one is set back.
#[tokio::test]
async fn expiry_maps_both_ways() {
    let app = app();
    let (_, cookie) = app.saved("/browser-session", None).await;
    let response = app.call("/expire", Some(&cookie)).await;
    let (session, _) = app.sealed(&response).expect("cookie");
    assert_eq!(body(response).await, "Some(OnSessionEnd)");
    assert_eq!(
        session.expiry(),
        Expiry::Idle(std::time::Duration::from_secs(60))
    );
}

/// Outside a `SessionLayer` the layer answers 500.
#[tokio::test]
async fn without_a_session_layer_it_answers_500() {
    let router = Router::new()
        .route("/id", get(tower_id))
        .layer(TowerSessionsLayer::new());
    let response = router
        .oneshot(Request::get("/id").body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

/// On a new session, what the handler stores through `LazySession` stays
/// beside what the `Session` stores (a CSRF token set on a first visit).
#[tokio::test]
async fn a_new_session_keeps_the_entries_of_both_apis() {
    let app = app();
    let (session, _) = app.saved_bare("/both-apis", None).await;
    let mut keys: Vec<_> = session.keys().collect();
    keys.sort_unstable();
    assert_eq!(keys, ["csrf", "note"]);
    let (session, _) = app.saved("/both-apis", None).await;
    let mut keys: Vec<_> = session.keys().collect();
    keys.sort_unstable();
    assert_eq!(keys, ["axum-messages.data", "csrf"]);
}

/// A `flush` then a `cycle_id` in one request flush: nothing of the old
/// session is kept (not an entry JSON cannot hold), and on a 500 the old
/// cookie is deleted. The other order, followed by new entries, is what
/// the docs say: a `cycle_id` whose JSON entries are removed.
#[tokio::test]
async fn a_flush_then_a_cycle_is_a_flush() {
    let app = app();
    let (_, cookie) = app.saved_bare("/seed", None).await;
    let (before, cookie) = app.saved_bare("/sealed", Some(&cookie)).await;
    assert!(before.contains("blob"));
    let (after, _) = app.saved_bare("/flush-cycle", Some(&cookie)).await;
    assert_eq!(after.keys().collect::<Vec<_>>(), ["user"]);
    assert_ne!(after.id(), before.id());
    let failed = app.call_bare("/flush-cycle-500", Some(&cookie)).await;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(is_removal(&failed));

    let (after, _) = app.saved_bare("/cycle-flush", Some(&cookie)).await;
    let mut keys: Vec<_> = after.keys().collect();
    keys.sort_unstable();
    assert_eq!(keys, ["blob", "user"]);
    assert_ne!(after.id(), before.id());
    // Nothing stored after them: a flush, whose cookie is deleted.
    let ended = app.call_bare("/log-in-and-out", Some(&cookie)).await;
    assert!(is_removal(&ended));
}

/// axum-login's path to the same: a stale password hash flushes, and the
/// login that follows cycles the id. The new login keeps nothing of the
/// old session.
#[tokio::test]
async fn a_login_over_a_stale_login_keeps_nothing_old() {
    let app = app();
    let (_, cookie) = app.saved("/sealed", None).await;
    let (_, cookie) = app.saved("/login", Some(&cookie)).await;
    *app.users.password_hash.lock().expect("lock") = b"hash-2".to_vec();
    let (after, _) = app.saved("/login", Some(&cookie)).await;
    assert_eq!(after.keys().collect::<Vec<_>>(), [LOGIN_KEY]);
}

/// A `cycle_id` that nothing is stored after keeps the session, entries
/// JSON cannot hold included, under a new id: also when the `Session`
/// sees no entry at all.
#[tokio::test]
async fn a_cycle_alone_keeps_the_session() {
    let app = app();
    for path in ["/sealed", "/blob"] {
        let (before, cookie) = app.saved_bare(path, None).await;
        let (after, _) = app.saved_bare("/cycle", Some(&cookie)).await;
        assert_ne!(after.id(), before.id(), "{path}");
        assert_eq!(after.get_raw("blob"), before.get_raw("blob"), "{path}");
    }
}

/// A refused save changes nothing, and the handler that repairs it has
/// the rest saved: the entry it removed and put back is still there.
#[tokio::test]
async fn a_repaired_refusal_is_saved() {
    let app = app();
    let (_, cookie) = app.saved_bare("/seed", None).await;
    let response = app.call_bare("/recover", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (session, _) = app.sealed(&response).expect("cookie");
    let mut keys: Vec<_> = session.keys().collect();
    keys.sort_unstable();
    assert_eq!(keys, ["fixed", "note", "secret"]);
}

/// A flush keeps the `Session`'s expiry, as tower-sessions' does: a
/// browser-session cookie stays one.
#[tokio::test]
async fn a_flush_keeps_the_expiry() {
    let app = app();
    let (_, cookie) = app.saved_bare("/browser-session", None).await;
    let (after, _) = app.saved_bare("/flush-insert", Some(&cookie)).await;
    assert_eq!(after.expiry(), Expiry::BrowserSession);
}

/// A login that removed every key the `Session` read cycles the id: the
/// entries it cannot see stay.
#[tokio::test]
async fn a_login_that_removed_every_key_keeps_the_rest() {
    let app = app();
    let (before, cookie) = app.saved_bare("/sealed", None).await;
    let (after, _) = app.saved_bare("/pop-and-log-in", Some(&cookie)).await;
    let mut keys: Vec<_> = after.keys().collect();
    keys.sort_unstable();
    assert_eq!(keys, ["blob", "user"]);
    assert_ne!(after.id(), before.id());
}

/// A session whose end `time` cannot hold (no timeouts, an end past year
/// 9999) is read without a panic.
#[tokio::test]
async fn an_end_past_year_9999_is_read() {
    let app = app_with(|builder| builder.no_idle_timeout().no_max_lifetime());
    let (_, cookie) = app.saved_bare("/forever", None).await;
    let response = app.call_bare("/cycle", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// Entries the cookie moved to the overflow store are read through the
/// `Session` like the others, and a change to one is kept.
#[tokio::test]
async fn overflowed_entries_are_read_and_written() {
    let app = app_with(|builder| builder.overflow_store(Arc::new(MemoryStore::new())));
    let stored = app.call_bare("/big", None).await;
    let (session, cookie) = app.sealed(&stored).expect("cookie");
    assert!(session.is_overflowed("first") || session.is_overflowed("second"));
    let changed = app.call_bare("/append", Some(&cookie)).await;
    let (_, cookie) = app.sealed(&changed).expect("cookie");
    assert_eq!(body(changed).await, "2500 2500");
    let read = app.call_bare("/append", Some(&cookie)).await;
    assert_eq!(body(read).await, "2501 2500");
}

/// The cookie pair a response sets (for a sealer that opens only
/// asynchronously, with a revocation store).
fn pair(response: &Response<Body>) -> String {
    let set = response.headers().get(header::SET_COOKIE).expect("cookie");
    let set = set.to_str().expect("ascii");
    set.split(';').next().expect("pair").to_owned()
}

/// Whether the cookie `pair` was revoked (after the tasks that revoke a
/// dropped request's logout had time to run).
async fn revoked(app: &App, pair: &str) -> bool {
    tokio::time::sleep(Duration::from_millis(50)).await;
    let value = pair.split_once('=').expect("pair").1;
    match app.session_layer.sealer().open_async(value).await {
        Ok(_) => false,
        Err(e) => e.kind() == "revoked",
    }
}

/// The app with a revocation store whose checks a test can take down.
fn outage_app() -> (App, Arc<common::FlakyRevocations>) {
    let clock = common::clock();
    let revocations = Arc::new(common::FlakyRevocations::with_clock(&clock));
    let store = Arc::clone(&revocations);
    let app = app_with(|builder| builder.clock(clock).revocation_store(store, None));
    (app, revocations)
}

/// axum-login's logout in a request dropped before its response (an
/// outer timeout) revokes the old id, as tower-sessions' store deletes
/// the record when `flush` is called; so does one whose inner service
/// then fails.
#[tokio::test]
async fn a_logout_holds_when_its_request_is_dropped_or_fails() {
    let app =
        app_with(|builder| builder.revocation_store(Arc::new(MemoryRevocations::new()), None));
    let cookie = pair(&app.call("/login", None).await);
    let dropped = tokio::time::timeout(
        Duration::from_millis(50),
        app.call("/logout-hang", Some(&cookie)),
    );
    assert!(dropped.await.is_err(), "dropped");
    assert!(revoked(&app, &cookie).await, "a dropped logout");

    let cookie = pair(&app.call("/login", None).await);
    let failing = tower::ServiceBuilder::new()
        .layer(app.session_layer.clone())
        .layer(TowerSessionsLayer::new())
        .service_fn(|request: Request<Body>| async move {
            let session = request.extensions().get::<TowerSession>().cloned();
            session.expect("session").flush().await.expect("flush");
            Err::<Response<Body>, std::io::Error>(std::io::Error::other("failed"))
        });
    let request = Request::get("/").header(header::COOKIE, &cookie);
    let answer = failing.oneshot(request.body(Body::empty()).expect("request"));
    assert!(answer.await.is_err());
    assert!(revoked(&app, &cookie).await, "a failed logout");

    // A login (a cycle) that completes leaves nothing pending.
    let cookie = pair(&app.call_bare("/seed", None).await);
    let response = app.call_bare("/cycle", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!is_removal(&response));
    assert!(!revoked(&app, &pair(&response)).await);
}

/// While the revocation check cannot answer, the request's cookie is held
/// back and axum-login sees no user; its logout still ends the session:
/// the cookie is deleted and, once checks answer again, revoked.
#[tokio::test]
async fn a_logout_during_a_revocation_outage_ends_the_session() {
    let (app, revocations) = outage_app();
    let cookie = pair(&app.call("/login", None).await);
    revocations.set_checks_down(true);
    assert_eq!(body(app.call("/who", Some(&cookie)).await).await, "");
    let response = app.call("/logout", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(is_removal(&response), "the held-back cookie is deleted");
    revocations.set_checks_down(false);
    assert!(revoked(&app, &cookie).await);
}

/// An entry JSON cannot hold is left out without a warning on each
/// request (axum-login reads the session on every one): only DEBUG says
/// so, and `Session::get`'s "does not decode" warning stays out.
#[tokio::test]
async fn a_skipped_entry_is_not_a_warning() {
    let app = app();
    let (_, cookie) = app.saved_bare("/blob", None).await;
    let (logs, _guard) = common::Logs::capture(tracing::Level::DEBUG);
    assert_eq!(body(app.call("/who", Some(&cookie)).await).await, "");
    let text = logs.text();
    assert!(!text.contains("entry-undecodable"), "{text}");
    let skipped = text
        .lines()
        .find(|line| line.contains("tower-sessions-entry-skipped"));
    assert!(skipped.expect("logged").contains("DEBUG"), "{text}");
}

/// A login (a cycle) whose save is refused ends the old session, as
/// tower-sessions' cycle deletes the old record: an empty 500 that
/// deletes the cookie.
#[tokio::test]
async fn a_refused_login_ends_the_old_session() {
    let app = app();
    let (_, cookie) = app.saved_bare("/seed", None).await;
    let response = app.call_bare("/cycle-refused", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(is_removal(&response));
}

/// A change refused on a response the session layer does not save (a
/// 5xx) leaves that response alone: nothing would be saved anyway.
#[tokio::test]
async fn a_server_error_keeps_its_own_response() {
    let app = app();
    let response = app.call_bare("/refused-503", None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(body(response).await, "busy");
}

/// A logout from a task that outlives the response is lost, and said so.
#[tokio::test]
async fn a_late_logout_is_logged() {
    let app = app();
    let (logs, _guard) = common::Logs::capture(tracing::Level::WARN);
    let (_, cookie) = app.saved_bare("/seed", None).await;
    let response = app.call_bare("/log-out-late", Some(&cookie)).await;
    assert!(!is_removal(&response));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let text = logs.text();
    assert!(text.contains("event=\"changed-after-response\""), "{text}");
}

/// During an outage of the revocation check, a login whose page fails
/// keeps the held-back cookie (its `cycle_id` is no logout), while a
/// logout whose page fails still ends it.
#[tokio::test]
async fn a_failed_login_during_an_outage_keeps_the_cookie() {
    let (app, revocations) = outage_app();
    let cookie = pair(&app.call("/login", None).await);
    revocations.set_checks_down(true);
    let response = app.call("/login-500", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!is_removal(&response), "a failed login keeps the cookie");
    // A login that logs out first is a login: refused, the cookie kept.
    let response = app.call("/switch", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(!is_removal(&response), "a user switch keeps the cookie");
    let response = app.call("/logout-500", Some(&cookie)).await;
    assert!(is_removal(&response), "a failed logout ends it");
    let response = app.call("/delete-500", Some(&cookie)).await;
    assert!(is_removal(&response), "so does a failed Session::delete");
    revocations.set_checks_down(false);
    assert!(revoked(&app, &cookie).await);
}

/// A refused change on a route that skips the save keeps its response:
/// nothing would be saved anyway.
#[tokio::test]
async fn a_skipped_save_keeps_its_own_response() {
    let response = app().call_bare("/skipped-refused", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, "skipped");
}

/// A bridge inside another leaves the request its `Session`: a logout
/// made through the outer one (axum-login's, of a stale login) and a
/// change through the inner one are one session's, and the logout holds
/// when the request is then dropped.
#[tokio::test]
async fn a_bridge_inside_another_leaves_it_the_session() {
    let app =
        app_with(|builder| builder.revocation_store(Arc::new(MemoryRevocations::new()), None));
    let cookie = pair(&app.call("/login", None).await);
    let inner = Router::new()
        .route("/note", get(set_note))
        .layer(TowerSessionsLayer::new());
    let router = inner
        .layer(axum::middleware::from_fn(
            |request: Request<Body>, next: axum::middleware::Next| async move {
                let outer = request.extensions().get::<TowerSession>().cloned();
                outer.expect("outer").flush().await.expect("flush");
                let response = next.run(request).await;
                // Slow post-processing, cut by a timeout.
                std::future::pending::<()>().await;
                response
            },
        ))
        .layer(TowerSessionsLayer::new())
        .layer(app.session_layer.clone());
    let dropped = tokio::time::timeout(
        Duration::from_millis(50),
        send(&router, "/note", Some(&cookie)),
    );
    assert!(dropped.await.is_err(), "dropped");
    assert!(revoked(&app, &cookie).await);
}

/// During an outage of the revocation check, a logout that leaves a
/// message ends the held-back session, on a 200 and on a 500: the
/// message is dropped (it would be refused with the cookie).
#[tokio::test]
async fn a_logout_with_a_message_during_an_outage_ends_the_session() {
    let (app, revocations) = outage_app();
    for path in ["/logout-flash", "/logout-flash-500"] {
        let cookie = pair(&app.call("/login", None).await);
        revocations.set_checks_down(true);
        let response = app.call(path, Some(&cookie)).await;
        assert_ne!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(is_removal(&response), "{path}: the cookie is deleted");
        revocations.set_checks_down(false);
        assert!(revoked(&app, &cookie).await, "{path}: and revoked");
    }
}

/// Under two session layers, each with its bridge, the inner routes'
/// `Session` is the inner layer's, as their `LazySession` is.
#[tokio::test]
async fn a_bridge_under_another_session_layer_has_its_own_session() {
    let layer = |name: &str| {
        SessionLayer::builder(KeyRing::new(MasterKey::generate().expect("key")))
            .cookie_name(name)
            .build()
            .expect("layer")
    };
    let admin = Router::new()
        .route("/note", get(set_note))
        .layer(TowerSessionsLayer::new())
        .layer(layer("admin"));
    let router = Router::new()
        .merge(admin)
        .layer(TowerSessionsLayer::new())
        .layer(layer("site"));
    let response = send(&router, "/note", None).await;
    let names: Vec<_> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| {
            v.to_str()
                .expect("ascii")
                .split('=')
                .next()
                .expect("name")
                .to_owned()
        })
        .collect();
    assert_eq!(names, ["admin"]);
}

/// A bridge inside another over the same session layer adds its
/// priorities to the outer one's.
#[tokio::test]
async fn an_inner_bridge_keeps_its_priorities() {
    let app = app();
    async fn note_and_cart(Extension(session): Extension<TowerSession>) -> StatusCode {
        let note = session.insert("note", "from tower").await;
        status(note.and(session.insert("cart", [1, 2]).await))
    }
    let auth = Router::new()
        .route("/note", get(note_and_cart))
        .layer(TowerSessionsLayer::new().priority("note", Priority::Critical));
    let router = Router::new()
        .merge(auth)
        .layer(
            TowerSessionsLayer::new()
                .priority("note", Priority::Low)
                .priority("cart", Priority::Low),
        )
        .layer(app.session_layer.clone());
    let (session, _) = app
        .sealed(&send(&router, "/note", None).await)
        .expect("cookie");
    // The inner bridge's wins; the outer one's other priorities stay.
    assert_eq!(session.priority("note"), Some(Priority::Critical));
    assert_eq!(session.priority("cart"), Some(Priority::Low));
}

/// What a request does to the tower `Session`, as axum-login would.
#[derive(Clone, Copy, Debug)]
enum Seq {
    /// `logout`: flush.
    Logout,
    /// `logout` + axum-messages: flush, then an entry.
    LogoutMessage,
    /// `Session::delete` alone.
    Delete,
    /// `login` over the stand-in (no auth hash): cycle_id, then data.
    Login,
    /// The user switch: flush, cycle_id, data.
    Switch,
    /// A login, then a logout in the same request (a 2FA or "account
    /// disabled" check after `login`): cycle_id, flush, nothing after.
    LogInAndOut,
}

impl Seq {
    /// Kept as a login: a login then a logout makes the store calls of a
    /// login alone (the flush of a session whose id the cycle cleared
    /// reaches no store), so it cannot be told from one.
    fn is_login(self) -> bool {
        matches!(self, Seq::Login | Seq::Switch | Seq::LogInAndOut)
    }
}

/// How the request ends.
#[derive(Clone, Copy, Debug)]
enum End {
    Ok200,
    Err500,
    SkipSave,
    /// The inner service returns `Err`.
    InnerErr,
    /// Dropped while the handler hangs (before the bridge's finish).
    DropInHandler,
    /// Dropped after the bridge answered, in a middleware between the
    /// session layer and the bridge (post-processing cut by a timeout).
    DropAfterBridge,
}

async fn run_seq(session: &TowerSession, seq: Seq) {
    match seq {
        Seq::Logout => session.flush().await.expect("flush"),
        Seq::LogoutMessage => {
            session.flush().await.expect("flush");
            session
                .insert("axum-messages.data", "bye")
                .await
                .expect("insert");
        }
        Seq::Delete => session.delete().await.expect("delete"),
        Seq::Login => {
            session.get_value(LOGIN_KEY).await.expect("load");
            session.cycle_id().await.expect("cycle");
            session.insert(LOGIN_KEY, 7).await.expect("insert");
        }
        Seq::Switch => {
            session.get_value(LOGIN_KEY).await.expect("load");
            session.flush().await.expect("flush");
            session.cycle_id().await.expect("cycle");
            session.insert(LOGIN_KEY, 7).await.expect("insert");
        }
        Seq::LogInAndOut => {
            session.get_value(LOGIN_KEY).await.expect("load");
            session.cycle_id().await.expect("cycle");
            session.insert(LOGIN_KEY, 7).await.expect("insert");
            session.flush().await.expect("flush");
        }
    }
}

/// A middleware that hangs after its inner service answered.
#[derive(Clone)]
struct HangAfter<S>(S);

impl<S> tower::Service<Request<Body>> for HangAfter<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = std::io::Error>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<Body>, std::io::Error>> + Send>,
    >;
    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let hang = request.headers().contains_key("x-hang-after");
        let future = self.0.call(request);
        Box::pin(async move {
            let response = future.await?;
            if hang {
                std::future::pending::<()>().await;
            }
            Ok(response)
        })
    }
}

/// One request of `seq` ending as `end`, over a held-back cookie: the
/// status (None: error or dropped), whether the response deletes the
/// cookie, and whether the cookie is revoked once checks answer again.
async fn outage_case(seq: Seq, end: End) -> (Option<StatusCode>, bool, bool) {
    let (app, revocations) = outage_app();
    let cookie = pair(&app.call("/login", None).await);
    let service = tower::ServiceBuilder::new()
        .layer(app.session_layer.clone())
        .layer(tower::layer::layer_fn(HangAfter))
        .layer(TowerSessionsLayer::new())
        .service_fn(move |request: Request<Body>| async move {
            let session = request
                .extensions()
                .get::<TowerSession>()
                .cloned()
                .expect("session");
            let lazy = request
                .extensions()
                .get::<LazySession>()
                .cloned()
                .expect("lazy");
            run_seq(&session, seq).await;
            let status = match end {
                End::Ok200 | End::DropAfterBridge => StatusCode::OK,
                End::Err500 => StatusCode::INTERNAL_SERVER_ERROR,
                End::SkipSave => {
                    lazy.skip_save();
                    StatusCode::OK
                }
                End::InnerErr => return Err(std::io::Error::other("failed")),
                End::DropInHandler => std::future::pending().await,
            };
            let mut response = Response::new(Body::empty());
            *response.status_mut() = status;
            Ok::<_, std::io::Error>(response)
        });
    revocations.set_checks_down(true);
    let mut request = Request::get("/").header(header::COOKIE, &cookie);
    if matches!(end, End::DropAfterBridge) {
        request = request.header("x-hang-after", "1");
    }
    let call = service.oneshot(request.body(Body::empty()).expect("request"));
    let (status, deleted) = match tokio::time::timeout(Duration::from_millis(100), call).await {
        Ok(Ok(response)) => (Some(response.status()), is_removal(&response)),
        Ok(Err(_)) | Err(_) => (None, false),
    };
    revocations.set_checks_down(false);
    (status, deleted, revoked(&app, &cookie).await)
}

/// During an outage of the revocation check, every way a request can use
/// the `Session` against every way it can end: a login (or a user switch)
/// never ends the held-back session, and a logout ends it whenever a
/// response is sent (a 200, a 5xx, a skipped save).
#[tokio::test]
async fn the_outage_rules_hold_however_a_request_ends() {
    let seqs = [
        Seq::Logout,
        Seq::LogoutMessage,
        Seq::Delete,
        Seq::Login,
        Seq::Switch,
        Seq::LogInAndOut,
    ];
    let ends = [
        End::Ok200,
        End::Err500,
        End::SkipSave,
        End::InnerErr,
        End::DropInHandler,
        End::DropAfterBridge,
    ];
    let mut wrong = Vec::new();
    for seq in seqs {
        for end in ends {
            let (status, deleted, revoked) = outage_case(seq, end).await;
            let ended = deleted || revoked;
            println!(
                "{seq:?} / {end:?}: status {status:?}, deleted = {deleted}, revoked = {revoked}"
            );
            let answered = matches!(end, End::Ok200 | End::Err500 | End::SkipSave);
            if seq.is_login() && ended {
                wrong.push(format!(
                    "{seq:?}/{end:?}: a login ended the held-back session"
                ));
            }
            if !seq.is_login() && answered && !(deleted && revoked) {
                wrong.push(format!(
                    "{seq:?}/{end:?}: a logout did not end it (status {status:?})"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// A logout on a 500 leaves the `Session` without an id, as
/// tower-sessions' `flush` does (a clone kept by a task sees it so).
#[tokio::test]
async fn a_logout_on_a_500_leaves_the_session_without_an_id() {
    let kept: Arc<Mutex<Option<TowerSession>>> = Arc::default();
    let slot = Arc::clone(&kept);
    let app = app();
    let router = Router::new()
        .route(
            "/out-500",
            get(move |Extension(session): Extension<TowerSession>| {
                let slot = Arc::clone(&slot);
                async move {
                    session.get_value("note").await.expect("load");
                    session.flush().await.expect("flush");
                    *slot.lock().expect("lock") = Some(session.clone());
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            }),
        )
        .layer(TowerSessionsLayer::new())
        .layer(app.session_layer.clone());
    let (_, cookie) = app.saved_bare("/seed", None).await;
    let response = send(&router, "/out-500", Some(&cookie)).await;
    assert!(is_removal(&response), "the logout holds");
    let session = kept.lock().expect("lock").take().expect("kept");
    assert_eq!(session.id(), None, "tower-sessions: no id after flush");
}
