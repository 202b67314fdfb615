//! The layer's cookie attributes and save rules, driven in process.
#![cfg(feature = "axum")]

mod common;

use common::{FlakyRevocations, Logs, RevocationsDown};

use std::sync::atomic::Ordering;
use std::sync::Arc;

use ::cookie::{Cookie, SameSite};
use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{header, Request, Response, StatusCode};
use sealed_session::http::{LazySession, SessionLayer, SessionLayerBuilder, SessionService};
use sealed_session::{Error, Expiry, FixedClock, KeyRing, MasterKey, Priority, StoreError};
use tower_service::Service as _;

async fn login(session: LazySession) -> Result<&'static str, Error> {
    session
        .insert_with_priority("user", "ada", Priority::Critical)
        .await?;
    Ok("in")
}

/// Logs in with a cart too large for the cookie, and says what the
/// preview foresees for it.
async fn login_with_cart(session: LazySession) -> Result<String, Error> {
    login(session.clone()).await?;
    let cart = "sku,".repeat(2000);
    session
        .insert_with_priority("cart", &cart, Priority::Low)
        .await?;
    Ok(session.preview_save().await?.dropped_keys().join(","))
}

async fn log_out_others(session: LazySession) -> Result<String, Error> {
    Ok(session.log_out_other_sessions().await?.to_string())
}

async fn log_out_everywhere(session: LazySession) -> Result<String, Error> {
    Ok(session.log_out_everywhere().await?.to_string())
}

/// The Django migration under the layer (docs/DJANGO.md): a request
/// whose sealed cookie did not open, with Django's `sessionid`, gets the
/// migrated session; a Django cookie that does not migrate (forged,
/// expired, revoked) leaves it a fresh session, as a bad sealed cookie
/// does. Answers the migrated user.
#[cfg(feature = "django")]
async fn from_django(session: LazySession, headers: http::HeaderMap) -> Result<String, Error> {
    use sealed_session::django::{migrate_session_async, DjangoCodec};
    if session.is_new().await? {
        if let Some(value) = django_cookie(&headers) {
            let codec = DjangoCodec::builder(DJANGO_SECRET).build()?;
            match migrate_session_async(&codec, session.sealer(), &value).await {
                Ok(migrated) => session.with(|s| *s = migrated).await?,
                // The store could not answer: not the cookie's fault.
                Err(error @ Error::Store(_)) => return Err(error),
                Err(_) => {}
            }
        }
    }
    let user = session.get::<String>("django_auth_user_id").await?;
    Ok(user.unwrap_or_default())
}

/// The value of Django's `sessionid` cookie among the request's cookies.
#[cfg(feature = "django")]
fn django_cookie(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == "sessionid")
        .map(|cookie| cookie.value().to_owned())
}

/// Outside the layer: a response that sets or deletes the sealed cookie
/// of a request that carried Django's deletes Django's too, whatever the
/// handler did. Deleted with the migration, a later logout (which deletes
/// only the sealed cookie) cannot be undone by migrating it again; and
/// kept while no sealed cookie goes out (a server error, `skip_save`).
#[cfg(feature = "django")]
async fn forget_django_cookie(
    request: Request<Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let carried = django_cookie(request.headers()).is_some();
    let mut response = next.run(request).await;
    let sets_sealed = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|value| value.as_bytes().starts_with(b"session="));
    if carried && sets_sealed {
        response.headers_mut().append(
            header::SET_COOKIE,
            http::HeaderValue::from_static("sessionid=; Max-Age=0; Path=/"),
        );
    }
    response
}

#[cfg(feature = "django")]
const DJANGO_SECRET: &str = "django-insecure-test-secret";

async fn insert_then_skip(session: LazySession) -> Result<&'static str, Error> {
    session.insert("k", &1u8).await?;
    session.skip_save();
    Ok("ok")
}

async fn logout_login_then_skip(session: LazySession) -> Result<&'static str, Error> {
    session.flush().await?;
    session.insert("user", "mallory").await?;
    session.skip_save();
    Ok("ok")
}

async fn skip(session: LazySession) -> &'static str {
    session.skip_save();
    "ok"
}

async fn browser_session(session: LazySession) -> Result<&'static str, Error> {
    session.set_expiry(Expiry::BrowserSession).await?;
    session.insert("k", &1u8).await?;
    Ok("ok")
}

/// Whether the cookie would end with the browser, before and after the
/// session asks for a browser-session cookie.
async fn ends_with_browser(session: LazySession) -> Result<String, Error> {
    session.insert("k", &1u8).await?;
    let before = session.expires_at_browser_close().await?;
    session.set_expiry(Expiry::BrowserSession).await?;
    let after = session.expires_at_browser_close().await?;
    Ok(format!("{before} {after}"))
}

async fn read(session: LazySession) -> Result<String, Error> {
    Ok(session.get::<String>("user").await?.unwrap_or_default())
}

async fn big(session: LazySession) -> Result<&'static str, Error> {
    session
        .insert_with_priority("blob", &"b".repeat(6000), Priority::Low)
        .await?;
    Ok("ok")
}

/// Logs in and answers with the `Cache-Control` given in the query, one
/// header line for each line of it (`%0A`; `%FF` is that byte).
async fn login_with_cache_control(
    session: LazySession,
    request: Request<Body>,
) -> Result<Response<Body>, Error> {
    session.insert("user", "ada").await?;
    let mut response = Response::new(Body::empty());
    let query = request
        .uri()
        .query()
        .unwrap_or_default()
        .replace("%20", " ")
        .replace("%22", "\"");
    for line in query.split("%0A") {
        let bytes = line.replace("%FF", "\u{ff}");
        let bytes: Vec<u8> = bytes.chars().map(|c| c as u8).collect();
        let value = http::HeaderValue::from_bytes(&bytes).expect("header value");
        response.headers_mut().append(header::CACHE_CONTROL, value);
    }
    Ok(response)
}

/// Appends to the overflowed entry in one locked read-modify-write, while a
/// clone of the handle does the same concurrently.
async fn blob_append_twice(session: LazySession) -> Result<&'static str, Error> {
    let append = |s: &mut sealed_session::Session| {
        let blob = s.get::<String>("blob")?.unwrap_or_default();
        s.insert_with_priority("blob", format!("{blob}++"), Priority::Low)
    };
    let other = session.clone();
    let (a, b) = tokio::join!(session.with_loaded(append), other.with_loaded(append));
    a??;
    b??;
    Ok("ok")
}

/// Logs out, then in as someone else, in one request.
async fn flush_then_login_as_another(session: LazySession) -> Result<&'static str, Error> {
    session.flush().await?;
    session
        .insert_with_priority("user", "bob", Priority::Critical)
        .await?;
    Ok("switched")
}

/// Gives the session a new id, keeping its data (as at a login that
/// raises the user's rights).
async fn cycle_id(session: LazySession) -> Result<&'static str, Error> {
    session.cycle_id().await?;
    Ok("cycled")
}

/// Gives the session a new id, then never answers.
async fn cycle_id_then_hang(session: LazySession) -> Result<&'static str, Error> {
    session.cycle_id().await?;
    std::future::pending().await
}

/// Logs out, then in again with a user too large for any cookie.
async fn flush_then_login_too_large(
    session: LazySession,
) -> Result<(StatusCode, &'static str), Error> {
    session.flush().await?;
    login_too_large(session).await
}

/// Counts visits with `get_or_insert_with`, and re-seals with
/// `mark_modified` when the query says `touch`.
async fn visits(session: LazySession, request: Request<Body>) -> Result<String, Error> {
    let visits = session.get_or_insert_with("visits", || 0u32).await? + 1;
    if request.uri().query() == Some("touch") {
        session.mark_modified().await?;
    } else {
        session.insert("visits", &visits).await?;
    }
    Ok(visits.to_string())
}

async fn login_too_large(session: LazySession) -> Result<(StatusCode, &'static str), Error> {
    session
        .insert_with_priority("user", &"u".repeat(6000), Priority::Critical)
        .await?;
    Ok((StatusCode::SEE_OTHER, "logged in"))
}

async fn blob_len(session: LazySession) -> Result<String, Error> {
    let blob = session.get::<String>("blob").await?.unwrap_or_default();
    Ok(blob.len().to_string())
}

/// `get_or_insert_with` on the overflowed `blob`: loads it, so the
/// default is not taken.
async fn blob_or_default_len(session: LazySession) -> Result<String, Error> {
    let blob = session.get_or_insert_with("blob", String::new).await?;
    Ok(blob.len().to_string())
}

/// `take` on the overflowed `blob`: loads it, then removes it.
async fn blob_take_len(session: LazySession) -> Result<String, Error> {
    let blob = session.take::<String>("blob").await?.unwrap_or_default();
    Ok(blob.len().to_string())
}

async fn login_then_fail(session: LazySession) -> Result<(StatusCode, &'static str), Error> {
    session.insert("user", "ada").await?;
    Ok((StatusCode::SERVICE_UNAVAILABLE, "down"))
}

async fn read_with_vary(
    session: LazySession,
) -> Result<([(header::HeaderName, &'static str); 1], String), Error> {
    let user = session.get::<String>("user").await?.unwrap_or_default();
    Ok(([(header::VARY, "Accept-Encoding, cookie")], user))
}

async fn remove_user(session: LazySession) -> Result<&'static str, Error> {
    session.remove("user").await?;
    Ok("removed")
}

/// Logs in, then asks the sealer to save or seal the session the layer
/// holds, as a dry run might: answers each attempt's error kind.
async fn login_then_save_itself(session: LazySession) -> Result<String, Error> {
    session
        .insert_with_priority("user", "ada", Priority::Critical)
        .await?;
    let sealer = session.sealer();
    let (saved, sealed) = session
        .with(|s| (sealer.save(s).map(drop), sealer.seal(s).map(drop)))
        .await?;
    let mut kinds = vec![saved, sealed];
    // The async save, on the session taken out (still the layer's) and
    // put back.
    let fresh = sealer.new_session()?;
    let mut taken = session.with(|s| core::mem::replace(s, fresh)).await?;
    kinds.push(sealer.save_async(&mut taken).await.map(drop));
    session.with(|s| *s = taken).await?;
    Ok(kinds
        .iter()
        .map(|r| r.as_ref().map_or_else(Error::kind, |()| "saved"))
        .collect::<Vec<_>>()
        .join(" "))
}

/// Whether the session was open before and after the handler read it.
async fn opened_before_and_after(session: LazySession) -> Result<String, Error> {
    let before = session.is_opened().await;
    session.get::<String>("user").await?;
    Ok(format!("{before} {}", session.is_opened().await))
}

/// Logs ada in with the auth hash of her password's version `?N`.
async fn login_hashed(session: LazySession, request: Request<Body>) -> Result<&'static str, Error> {
    let version = request.uri().query().unwrap_or_default().as_bytes();
    session.cycle_id().await?;
    session
        .insert_with_priority("user", "ada", Priority::Critical)
        .await?;
    session.set_auth_hash("auth", version).await?;
    Ok("in")
}

/// The user, if the cookie's auth hash matches the password's version
/// `?N` now; else "anonymous" (and the session is flushed).
async fn whoami_hashed(session: LazySession, request: Request<Body>) -> Result<String, Error> {
    let version = request.uri().query().unwrap_or_default().as_bytes();
    let Some(user) = session.get::<String>("user").await? else {
        return Ok("anonymous".to_owned());
    };
    match session.verify_auth_hash("auth", version).await? {
        true => Ok(user),
        false => Ok("anonymous".to_owned()),
    }
}

/// Checks the auth hash of version `?N` without reading the user first.
async fn verify_hashed(session: LazySession, request: Request<Body>) -> Result<String, Error> {
    let version = request.uri().query().unwrap_or_default().as_bytes();
    Ok(session.verify_auth_hash("auth", version).await?.to_string())
}

async fn insert_then_remove(session: LazySession) -> Result<&'static str, Error> {
    session.insert("k", &1u8).await?;
    session.remove("k").await?;
    Ok("nothing left")
}

async fn logout(session: LazySession) -> Result<&'static str, Error> {
    session.flush().await?;
    Ok("out")
}

/// Reads the user as a number, as a release that changed its type would:
/// leniently with `?lenient`, else with `get`.
async fn user_as_number(session: LazySession, request: Request<Body>) -> Result<String, Error> {
    let user = match request.uri().query() {
        Some("lenient") => session.get_or_remove::<u64>("user").await?,
        _ => session.get::<u64>("user").await?,
    };
    Ok(format!("{user:?}"))
}

/// Empties the session (without a flush), then fails.
async fn remove_user_then_fail(session: LazySession) -> Result<(StatusCode, &'static str), Error> {
    session.remove("user").await?;
    Ok((StatusCode::BAD_GATEWAY, "upstream down"))
}

/// Logs out, stores a message for the next page, then fails.
async fn logout_then_fail(session: LazySession) -> Result<(StatusCode, &'static str), Error> {
    session.flush().await?;
    session.insert("flash", "logged out").await?;
    Ok((StatusCode::INTERNAL_SERVER_ERROR, "audit log down"))
}

/// Reads the session and answers with the `Vary` headers named in the
/// query, each appended as its own header.
async fn read_with_vary_headers(
    session: LazySession,
    request: Request<Body>,
) -> Result<Response<Body>, Error> {
    session.get::<String>("user").await?;
    let mut response = Response::new(Body::empty());
    for field in request.uri().query().unwrap_or_default().split('&') {
        let value = http::HeaderValue::from_str(field).expect("header value");
        response.headers_mut().append(header::VARY, value);
    }
    Ok(response)
}

fn app(layer: SessionLayer) -> Router {
    let routes = Router::new()
        .route("/read-with-vary-headers", get(read_with_vary_headers))
        .route("/logout", get(logout))
        .route("/logout-then-fail", get(logout_then_fail))
        .route("/remove-user-then-fail", get(remove_user_then_fail))
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/user-as-number", get(user_as_number))
        .route("/remove-user", get(remove_user))
        .route("/insert-then-remove", get(insert_then_remove))
        .route("/login-then-save-itself", get(login_then_save_itself))
        .route("/opened", get(opened_before_and_after))
        .route("/login-hashed", get(login_hashed))
        .route("/whoami-hashed", get(whoami_hashed))
        .route("/verify-hashed", get(verify_hashed))
        .route("/login", get(login))
        .route("/login-with-cart", get(login_with_cart))
        .route("/login-too-large", get(login_too_large))
        .route("/log-out-others", get(log_out_others))
        .route("/insert-then-skip", get(insert_then_skip))
        .route("/logout-login-then-skip", get(logout_login_then_skip))
        .route("/skip", get(skip))
        .route("/log-out-everywhere", get(log_out_everywhere))
        .route("/visits", get(visits))
        .route(
            "/flush-then-login-too-large",
            get(flush_then_login_too_large),
        )
        .route("/login-then-fail", get(login_then_fail))
        .route("/flush-then-login", get(flush_then_login_as_another))
        .route("/cycle-id", get(cycle_id))
        .route("/cycle-id-then-hang", get(cycle_id_then_hang))
        .route("/login-cache-control", get(login_with_cache_control))
        .route("/read-with-vary", get(read_with_vary))
        .route("/untouched", get(|| async { "ok" }))
        .route("/browser", get(browser_session))
        .route("/ends-with-browser", get(ends_with_browser))
        .route("/read", get(read))
        .route("/big", get(big))
        .route("/blob-len", get(blob_len))
        .route("/blob-or-default-len", get(blob_or_default_len))
        .route("/blob-take-len", get(blob_take_len))
        .route("/blob-append-twice", get(blob_append_twice));
    #[cfg(feature = "django")]
    let routes = routes.route("/from-django", get(from_django));
    routes.layer(layer)
}

fn builder() -> SessionLayerBuilder {
    SessionLayer::builder(KeyRing::new(MasterKey::generate().expect("key")))
}

async fn call(app: &mut Router, path: &str, cookie: Option<&str>) -> Response<Body> {
    let mut request = Request::builder().uri(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    app.call(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible")
}

/// Every `Set-Cookie` value of `response`, in order.
fn set_cookie_values(response: &Response<Body>) -> Vec<String> {
    let values = response.headers().get_all(header::SET_COOKIE);
    values
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect()
}

fn set_cookie(response: &Response<Body>) -> Option<Cookie<'static>> {
    let value = response.headers().get(header::SET_COOKIE)?;
    Some(Cookie::parse(value.to_str().expect("ascii").to_owned()).expect("cookie"))
}

/// The `name=value` pair the response sets, for the next request's `Cookie`.
fn cookie_pair(response: &Response<Body>) -> String {
    set_cookie(response)
        .expect("Set-Cookie")
        .stripped()
        .to_string()
}

#[tokio::test]
async fn defaults_are_secure() {
    let mut app = app(builder().build().expect("layer"));
    let cookie = set_cookie(&call(&mut app, "/login", None).await).expect("Set-Cookie");
    assert_eq!(cookie.name(), "session");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(cookie.same_site(), Some(SameSite::Lax));
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(cookie.domain(), None);
    assert_eq!(cookie.partitioned(), None);
    assert!(cookie.max_age().is_some(), "persistent by default");
}

/// A handler cannot save or seal the session the layer holds: that would
/// mark it saved, and the layer would send no cookie (the login lost).
/// The layer's own save still goes out.
#[tokio::test]
async fn a_handler_cannot_save_the_session_the_layer_holds() {
    let mut app = app(builder().build().expect("layer"));
    let response = call(&mut app, "/login-then-save-itself", None).await;
    let pair = cookie_pair(&response);
    assert_eq!(
        body_text(response).await,
        "held-by-layer held-by-layer held-by-layer"
    );
    let response = call(&mut app, "/read", Some(&pair)).await;
    assert_eq!(body_text(response).await, "ada");
}

/// `is_opened` says whether the session was opened, without opening it:
/// not before a handler reads it, whether or not a cookie came (and the
/// layer's `open_every_request` opens it after the handler only).
#[tokio::test]
async fn is_opened_tells_without_opening() {
    async fn body(app: &mut Router, cookie: Option<&str>) -> String {
        body_text(call(app, "/opened", cookie).await).await
    }
    let mut lazy = app(builder().build().expect("layer"));
    let pair = cookie_pair(&call(&mut lazy, "/login", None).await);
    assert_eq!(body(&mut lazy, Some(&pair)).await, "false true");
    assert_eq!(body(&mut lazy, None).await, "false true");
    let mut eager = app(builder().open_every_request(true).build().expect("layer"));
    let pair = cookie_pair(&call(&mut eager, "/login", None).await);
    assert_eq!(body(&mut eager, Some(&pair)).await, "false true");
}

/// A password change logs out every copy of the old cookie through the
/// auth hash, with no revocation store: the first request that checks the
/// new hash gets a fresh session and the cookie's deletion.
#[tokio::test]
async fn a_changed_auth_hash_logs_the_old_cookie_out() {
    let text = body_text;
    let mut app = app(builder().build().expect("layer"));
    let pair = cookie_pair(&call(&mut app, "/login-hashed?1", None).await);
    let response = call(&mut app, "/whoami-hashed?1", Some(&pair)).await;
    assert!(set_cookie(&response).is_none(), "a match changes nothing");
    assert_eq!(text(response).await, "ada");
    // The password changed (version 2): the old cookie, or a stolen copy.
    let response = call(&mut app, "/whoami-hashed?2", Some(&pair)).await;
    let deletion = set_cookie(&response).expect("the cookie's deletion");
    assert_eq!(deletion.max_age(), Some(::cookie::time::Duration::ZERO));
    assert_eq!(text(response).await, "anonymous");
    // Logged in again under version 2, the new cookie holds.
    let pair = cookie_pair(&call(&mut app, "/login-hashed?2", None).await);
    let response = call(&mut app, "/whoami-hashed?2", Some(&pair)).await;
    assert_eq!(text(response).await, "ada");
}

/// Turning on the `__Host-` prefix with the old name as the previous one
/// logs no one out: the old cookie opens, and the response carries the
/// session under the new name and deletes the old cookie. Without it the
/// old cookie is not read; and the name stays bound into the token.
#[tokio::test]
async fn a_renamed_cookie_carries_the_session_over_from_its_previous_name() {
    let mut before = app(SessionLayer::builder(fixed_ring()).build().expect("layer"));
    let old_pair = cookie_pair(&call(&mut before, "/login", None).await);
    assert!(old_pair.starts_with("session="), "{old_pair}");
    let renamed = SessionLayer::builder(fixed_ring()).host_prefix(true);
    let mut without = app(renamed.build().expect("layer"));
    let response = call(&mut without, "/read", Some(&old_pair)).await;
    assert_eq!(body_text(response).await, "");
    let migrating = SessionLayer::builder(fixed_ring())
        .host_prefix(true)
        .previous_cookie_name("session");
    let mut app = app(migrating.build().expect("layer"));
    let response = call(&mut app, "/read", Some(&old_pair)).await;
    let values = set_cookie_values(&response);
    assert_eq!(values.len(), 2, "{values:?}");
    let new = Cookie::parse(values[0].clone()).expect("cookie");
    assert_eq!(new.name(), "__Host-session");
    let gone = Cookie::parse(values[1].clone()).expect("cookie");
    assert_eq!(gone.name(), "session");
    assert_eq!(gone.max_age(), Some(::cookie::time::Duration::ZERO));
    assert_eq!(body_text(response).await, "ada");
    // The new cookie opens; beside the old one, it is the one read, and
    // nothing is sent.
    let new_pair = new.stripped().to_string();
    for cookies in [new_pair.clone(), format!("{old_pair}; {new_pair}")] {
        let response = call(&mut app, "/read", Some(&cookies)).await;
        assert!(set_cookie(&response).is_none(), "{cookies}");
        assert_eq!(body_text(response).await, "ada");
    }
    // A logout with both deletes both: the old cookie would otherwise
    // open the next request.
    let both = format!("{old_pair}; {new_pair}");
    let response = call(&mut app, "/logout", Some(&both)).await;
    let deleted: Vec<(String, Option<::cookie::time::Duration>)> = set_cookie_values(&response)
        .into_iter()
        .map(|value| {
            let cookie = Cookie::parse(value).expect("cookie");
            (cookie.name().to_owned(), cookie.max_age())
        })
        .collect();
    let gone = Some(::cookie::time::Duration::ZERO);
    assert_eq!(
        deleted,
        [
            ("__Host-session".to_owned(), gone),
            ("session".to_owned(), gone)
        ]
    );
    // A token sealed for the new name does not open under the old one,
    // and that old-name cookie, which never will, is deleted.
    let swapped = format!("session={}", new.value());
    let response = call(&mut app, "/read", Some(&swapped)).await;
    let gone = set_cookie(&response).expect("the old cookie deleted");
    assert_eq!(gone.name(), "session");
    assert_eq!(gone.max_age(), Some(::cookie::time::Duration::ZERO));
    // The deletion alone keeps the response out of shared caches too.
    let cache_control = response.headers().get(header::CACHE_CONTROL);
    assert_eq!(cache_control.map(|v| v.as_bytes()), Some(&b"private"[..]));
    assert_eq!(body_text(response).await, "");
}

/// While the revocation check cannot answer, the request's session stands
/// in for a cookie it could not check, without the digest: the check
/// refuses (503) rather than flush it, which would delete the real cookie.
#[tokio::test]
async fn an_auth_hash_check_refuses_while_the_revocation_check_is_down() {
    let (builder, revocations) = revoking_builder();
    let mut server = app(builder.build().expect("layer"));
    let pair = cookie_pair(&call(&mut server, "/login-hashed?1", None).await);
    revocations.set_checks_down(true);
    let failed = call(&mut server, "/verify-hashed?1", Some(&pair)).await;
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(set_cookie(&failed).is_none());
    revocations.set_checks_down(false);
    let response = call(&mut server, "/verify-hashed?1", Some(&pair)).await;
    assert_eq!(body_text(response).await, "true");
}

#[tokio::test]
async fn options_set_the_attributes() {
    let layer = builder()
        .cookie_name("sid")
        .domain("example.com")
        .path("/app")
        .same_site(SameSite::Strict)
        .partitioned(true)
        .persistent(false)
        .build()
        .expect("layer");
    let mut app = app(layer);
    let response = call(&mut app, "/login", None).await;
    let cookie = set_cookie(&response).expect("Set-Cookie");
    assert_eq!(cookie.name(), "sid");
    assert_eq!(cookie.domain(), Some("example.com"));
    assert_eq!(cookie.path(), Some("/app"));
    assert_eq!(cookie.same_site(), Some(SameSite::Strict));
    assert_eq!(cookie.partitioned(), Some(true));
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(cookie.max_age(), None, "a browser-session cookie");

    let mut unset = crate::app(builder().without_same_site().build().expect("layer"));
    let response = call(&mut unset, "/login", None).await;
    let header = set_cookie_values(&response).concat();
    assert!(!header.contains("SameSite"), "{header}");

    let insecure = builder()
        .secure(false)
        .http_only(false)
        .build()
        .expect("layer");
    let cookie =
        set_cookie(&call(&mut self::app(insecure), "/login", None).await).expect("Set-Cookie");
    assert_eq!(cookie.secure(), None);
    assert_eq!(cookie.http_only(), None);

    // Browsers refuse Partitioned cookies without Secure.
    let partitioned = builder()
        .secure(false)
        .partitioned(true)
        .build()
        .expect("layer");
    let cookie =
        set_cookie(&call(&mut self::app(partitioned), "/login", None).await).expect("Set-Cookie");
    assert_eq!(cookie.secure(), Some(true));
}

/// `expires(true)` adds `Expires` at the end `Max-Age` gives; a
/// browser-session cookie gets neither.
#[tokio::test]
async fn the_layer_can_send_expires_beside_max_age() {
    const T0: i64 = 1_700_000_000;
    let layer = builder()
        .clock(Arc::new(FixedClock::new(T0 as u64)))
        .expires(true)
        .build()
        .expect("layer");
    assert!(layer.sealer().cookie_settings().sends_expires());
    let mut app = app(layer);
    let cookie = set_cookie(&call(&mut app, "/login", None).await).expect("Set-Cookie");
    let max_age = cookie.max_age().expect("Max-Age").whole_seconds();
    let expires = cookie.expires_datetime().expect("Expires").unix_timestamp();
    assert_eq!(expires, T0 + max_age);
    let cookie = set_cookie(&call(&mut app, "/browser", None).await).expect("Set-Cookie");
    assert_eq!((cookie.max_age(), cookie.expires()), (None, None));
}

#[tokio::test]
async fn the_host_prefix_forces_secure_root_path_and_no_domain() {
    let layer = builder()
        .cookie_name("sid")
        .host_prefix(true)
        .domain("example.com")
        .path("/app")
        .secure(false)
        .build()
        .expect("layer");
    assert_eq!(layer.sealer().cookie_name(), "__Host-sid");
    let mut app = app(layer);
    let response = call(&mut app, "/login", None).await;
    let cookie = set_cookie(&response).expect("Set-Cookie");
    assert_eq!(cookie.name(), "__Host-sid");
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(cookie.domain(), None);

    let pair = format!("__Host-sid={}", cookie.value());
    let response = call(&mut app, "/read", Some(&pair)).await;
    assert!(set_cookie(&response).is_none());
    assert_eq!(body_text(response).await, "ada");

    // A name with the prefix in another case gets it in the exact case,
    // which every browser honours; an existing prefix is not doubled.
    for name in ["__host-sid", "__HOST-sid", "__Host-sid"] {
        let layer = builder().cookie_name(name).host_prefix(true).build();
        assert_eq!(layer.expect("layer").sealer().cookie_name(), "__Host-sid");
    }
}

#[tokio::test]
async fn a_session_can_choose_a_browser_session_cookie() {
    let mut app = app(builder().build().expect("layer"));
    let cookie = set_cookie(&call(&mut app, "/browser", None).await).expect("Set-Cookie");
    assert_eq!(cookie.max_age(), None);
    assert_eq!(cookie.expires(), None);
    let response = call(&mut app, "/ends-with-browser", None).await;
    assert_eq!(body_text(response).await, "false true");
    let mut app = self::app(builder().persistent(false).build().expect("layer"));
    let response = call(&mut app, "/ends-with-browser", None).await;
    assert_eq!(body_text(response).await, "true true");
}

#[tokio::test]
async fn sliding_refresh_reissues_a_cookie_that_was_only_read() {
    let clock = Arc::new(FixedClock::new(1_700_000_000));
    let layer = builder()
        .clock(clock.clone())
        .max_idle(std::time::Duration::from_secs(1000))
        .refresh_fraction(0.5)
        .build()
        .expect("layer");
    let mut app = app(layer);
    let cookie = set_cookie(&call(&mut app, "/login", None).await).expect("Set-Cookie");
    let pair = format!("session={}", cookie.value());
    clock.advance(400);
    assert!(set_cookie(&call(&mut app, "/read", Some(&pair)).await).is_none());
    clock.advance(200);
    let refreshed = set_cookie(&call(&mut app, "/read", Some(&pair)).await).expect("refresh");
    assert_ne!(refreshed.value(), cookie.value());
    assert_eq!(refreshed.max_age().map(|d| d.whole_seconds()), Some(1000));
}

#[tokio::test]
async fn open_every_request_refreshes_on_routes_that_never_touch_the_session() {
    let clock = Arc::new(FixedClock::new(1_700_000_000));
    // One ring for both, so that the lazy layer could read the cookie.
    let layer = |every: bool| {
        SessionLayer::builder(fixed_ring())
            .clock(clock.clone())
            .max_idle(std::time::Duration::from_secs(1000))
            .refresh_fraction(0.5)
            .open_every_request(every)
            .build()
            .expect("layer")
    };
    let (mut lazy, mut eager) = (app(layer(false)), app(layer(true)));
    let pair = cookie_pair(&call(&mut eager, "/login", None).await);
    clock.advance(600);
    let untouched = call(&mut lazy, "/untouched", Some(&pair)).await;
    assert!(set_cookie(&untouched).is_none());
    // The lazy layer does open the cookie, and refreshes it, on a route
    // that reads it.
    let read = call(&mut lazy, "/read", Some(&pair)).await;
    assert!(set_cookie(&read).is_some());
    assert_eq!(body_text(read).await, "ada");
    let refreshed = call(&mut eager, "/untouched", Some(&pair)).await;
    let refreshed = set_cookie(&refreshed).expect("refreshed on an untouched route");
    assert_eq!(refreshed.max_age().map(|d| d.whole_seconds()), Some(1000));
    // Still the same session, now good for another full idle window.
    clock.advance(900);
    let next = format!("session={}", refreshed.value());
    assert_eq!(read_with_header(&mut eager, next.as_bytes()).await, "ada");
    assert_eq!(read_with_header(&mut lazy, pair.as_bytes()).await, "");
    // An error response opens nothing.
    let failed = call(&mut eager, "/fail", Some(&next)).await;
    assert!(set_cookie(&failed).is_none());
    assert!(failed.headers().get(header::VARY).is_none());
    // Nothing to open, nothing sent: no cookie, or only others (one whose
    // name merely starts with the session's among them).
    for cookie in [None, Some("theme=dark"), Some("sessionid=abc")] {
        let response = call(&mut eager, "/untouched", cookie).await;
        assert!(set_cookie(&response).is_none());
        assert!(response.headers().get(header::VARY).is_none());
    }
}

#[tokio::test]
async fn a_value_whose_type_changed_fails_with_get_and_goes_with_get_or_remove() {
    let mut app = app(builder().build().expect("layer"));
    let pair = cookie_pair(&call(&mut app, "/login", None).await);
    // With `get`, every request fails and saves nothing: it never heals.
    let failed = call(&mut app, "/user-as-number", Some(&pair)).await;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(set_cookie(&failed).is_none());
    let lenient = call(&mut app, "/user-as-number?lenient", Some(&pair)).await;
    assert_eq!(lenient.status(), StatusCode::OK);
    // The entry was the only one: its removal deletes the cookie.
    assert_deletes_the_cookie(&lenient);
    assert_eq!(body_text(lenient).await, "None");
}

/// Without a store, a session whose only entry the budget drops is empty:
/// like any empty session it gets no cookie (nor the `Cache-Control` that
/// goes with one), and the report names the drop.
#[tokio::test]
async fn a_session_the_budget_empties_sets_no_cookie() {
    let reports = Arc::new(std::sync::Mutex::new(Vec::new()));
    let heard = Arc::clone(&reports);
    let layer = builder()
        .on_save_report(move |report, _uri| {
            let keys = report.dropped_keys().join(",");
            heard.lock().expect("reports").push(keys);
        })
        .build()
        .expect("layer");
    let mut app = app(layer);
    let response = call(&mut app, "/big", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        set_cookie(&response).is_none(),
        "{:?}",
        set_cookie(&response)
    );
    assert!(!response.headers().contains_key(header::CACHE_CONTROL));
    assert_eq!(*reports.lock().expect("reports"), ["blob"]);
}

/// A handler's preview names what the response's save then drops.
#[tokio::test]
async fn a_handler_previews_what_its_response_will_drop() {
    let reports = Arc::new(std::sync::Mutex::new(Vec::new()));
    let heard = Arc::clone(&reports);
    let layer = builder()
        .on_save_report(move |report, _uri| {
            heard.lock().expect("reports").push(report.clone());
        })
        .build()
        .expect("layer");
    let mut app = app(layer);
    let response = call(&mut app, "/login-with-cart", None).await;
    assert!(set_cookie(&response).is_some());
    assert_eq!(body_text(response).await, "cart");
    let reports = reports.lock().expect("reports");
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].dropped_keys(), ["cart"]);
}

#[tokio::test]
async fn the_overflow_store_keeps_what_does_not_fit() {
    // Its reads yield to the runtime first, as a network store's do:
    // concurrent handles then really interleave at a load.
    let store = Arc::new(common::Instrumented::new(&common::clock()));
    let layer = builder()
        .overflow_store(store.clone())
        .build()
        .expect("layer");
    let mut app = app(layer);
    let response = call(&mut app, "/big", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let header = response.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ascii");
    assert!(
        "Set-Cookie: ".len() + header.len() <= 4096,
        "{}",
        header.len()
    );
    assert_eq!(store.inner.len(), 1);
    // The next request reads the entry back from the store.
    let pair = cookie_pair(&response);
    let response = call(&mut app, "/blob-len", Some(&pair)).await;
    assert_eq!(body_text(response).await, "6000");
    // A read-modify-write of the overflowed entry from two clones at once:
    // with_loaded loads it (`with` alone fails with NotLoaded), and both
    // writes land, although the load yields in between (`get` then
    // `insert` loses one of them here: 6002).
    let response = call(&mut app, "/blob-append-twice", Some(&pair)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let pair = cookie_pair(&response);
    let response = call(&mut app, "/blob-len", Some(&pair)).await;
    assert_eq!(body_text(response).await, "6004");
    // The other accessors that read before they write load it too.
    let response = call(&mut app, "/blob-or-default-len", Some(&pair)).await;
    assert_eq!(body_text(response).await, "6004");
    let response = call(&mut app, "/blob-take-len", Some(&pair)).await;
    let taken = cookie_pair(&response);
    assert_eq!(body_text(response).await, "6004");
    let response = call(&mut app, "/blob-len", Some(&taken)).await;
    assert_eq!(body_text(response).await, "0");

    // The blob is evicted: the entry reads as absent (not a 500 on every
    // request), its key is logged, and the session, left empty, deletes
    // its cookie.
    common::evict_all(&store.inner).await;
    let (logs, _guard) = Logs::capture(tracing::Level::INFO);
    let response = call(&mut app, "/blob-len", Some(&pair)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_deletes_the_cookie(&response);
    assert_eq!(body_text(response).await, "0");
    let text = logs.text();
    // The key itself (`blob`, which the reason's text also contains), at
    // INFO: an old copy of a cookie, which anyone can replay, gets there.
    assert!(
        text.contains(" INFO ")
            && text.contains(r#"cause="blob-missing""#)
            && text.contains(r#"dropped=["blob"]"#),
        "{text}"
    );
}

/// A message pushed before a redirect shows once on the page after it,
/// every message in order, as Django's messages do; one that does not fit
/// the cookie goes to the overflow store and is loaded to push another.
#[tokio::test]
async fn flashes_show_once_after_a_redirect() {
    async fn push(session: LazySession, request: Request<Body>) -> Result<&'static str, Error> {
        let message = match request.uri().query() {
            Some(size) => "x".repeat(size.parse().expect("a size")),
            None => "saved".to_owned(),
        };
        session.push_flash("messages", &message).await?;
        Ok("pushed")
    }
    async fn show(session: LazySession) -> Result<String, Error> {
        let messages: Vec<String> = session.take_flashes("messages").await?;
        let lengths: Vec<String> = messages.iter().map(|m| m.len().to_string()).collect();
        Ok(lengths.join(","))
    }
    let store = Arc::new(common::Instrumented::new(&common::clock()));
    let layer = builder()
        .overflow_store(store.clone())
        .build()
        .expect("layer");
    let mut app = Router::new()
        .route("/push", get(push))
        .route("/show", get(show))
        .layer(layer);

    let pushed = call(&mut app, "/push", None).await;
    let pair = cookie_pair(&pushed);
    let pushed = call(&mut app, "/push", Some(&pair)).await;
    let pair = cookie_pair(&pushed);
    let shown = call(&mut app, "/show", Some(&pair)).await;
    let after = cookie_pair(&shown);
    assert_eq!(body_text(shown).await, "5,5");
    assert_eq!(
        body_text(call(&mut app, "/show", Some(&after)).await).await,
        ""
    );

    // Too large for the cookie: the list moves to the store, and the next
    // push loads it rather than failing (or starting a new list).
    let pushed = call(&mut app, "/push?6000", Some(&pair)).await;
    assert_eq!(pushed.status(), StatusCode::OK);
    assert_eq!(store.inner.len(), 1);
    let pair = cookie_pair(&pushed);
    let pushed = call(&mut app, "/push", Some(&pair)).await;
    assert_eq!(pushed.status(), StatusCode::OK);
    let pair = cookie_pair(&pushed);
    let shown = call(&mut app, "/show", Some(&pair)).await;
    assert_eq!(body_text(shown).await, "5,5,6000,5");
}

#[tokio::test]
async fn a_handler_error_answers_503_only_for_an_unreachable_store() {
    use axum::response::IntoResponse as _;
    let (logs, _guard) = Logs::capture(tracing::Level::INFO);
    let down = Error::Store(StoreError::Unavailable).into_response();
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body_text(down).await, "service unavailable\n");
    for error in [
        Error::Store(StoreError::Rejected),
        Error::Store(StoreError::NotConfigured),
        Error::Value(sealed_session::ValueError::Deserialize),
    ] {
        assert_eq!(
            error.into_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
    assert!(logs.text().contains(r#"kind="store""#), "{}", logs.text());
}

#[test]
fn configure_sealer_cannot_undo_the_host_prefix() {
    let layer = builder()
        .cookie_name("sid")
        .host_prefix(true)
        .configure_sealer(|b| b.cookie_name("plain"))
        .build()
        .expect("layer");
    assert_eq!(layer.sealer().cookie_name(), "__Host-sid");
}

#[tokio::test]
async fn without_the_layer_the_extractor_answers_500() {
    let mut app = Router::new().route("/read", get(read));
    let (logs, _guard) = Logs::capture(tracing::Level::INFO);
    let response = call(&mut app, "/read", None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // The client learns nothing of the setup; the log says what is wrong.
    assert_eq!(body_text(response).await, "internal server error\n");
    let text = logs.text();
    assert!(
        text.contains("ERROR") && text.contains("not installed"),
        "{text}"
    );
}

/// The response's `Set-Cookie` removes the session cookie.
fn assert_deletes_the_cookie(response: &Response<Body>) {
    let removal = set_cookie(response).expect("deletion cookie");
    assert_eq!(removal.name(), "session");
    assert_eq!(removal.value(), "");
    assert_eq!(removal.max_age().map(|d| d.whole_seconds()), Some(0));
}

fn vary(response: &Response<Body>) -> Vec<String> {
    response
        .headers()
        .get_all(header::VARY)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect()
}

#[tokio::test]
async fn responses_that_opened_the_session_vary_on_cookie() {
    let mut app = app(builder().build().expect("layer"));
    // Opened and modified, opened and only read: both depend on the cookie.
    let response = call(&mut app, "/login", None).await;
    assert_eq!(vary(&response), ["cookie"]);
    let pair = cookie_pair(&response);
    let response = call(&mut app, "/read", Some(&pair)).await;
    assert!(set_cookie(&response).is_none(), "only read");
    assert_eq!(vary(&response), ["cookie"]);
    // Never opened: left alone, even with a cookie in the request.
    let response = call(&mut app, "/untouched", Some(&pair)).await;
    assert!(vary(&response).is_empty());
    // Already varies on Cookie: not added twice.
    let response = call(&mut app, "/read-with-vary", Some(&pair)).await;
    assert_eq!(vary(&response), ["Accept-Encoding, cookie"]);
    // Several Vary headers: each one is read; `*` covers Cookie.
    for (query, expected) in [
        (
            "Accept-Encoding&Origin",
            &["Accept-Encoding", "Origin", "cookie"][..],
        ),
        ("Accept-Encoding&COOKIE", &["Accept-Encoding", "COOKIE"][..]),
        ("Origin&*", &["Origin", "*"][..]),
    ] {
        let path = format!("/read-with-vary-headers?{query}");
        let response = call(&mut app, &path, Some(&pair)).await;
        assert_eq!(vary(&response), expected, "{query}");
    }
}

#[tokio::test]
async fn a_server_error_saves_nothing_unless_asked() {
    const NOT_SAVED: &str = "the session's changes are not saved";
    let mut django_like = app(builder().build().expect("layer"));
    let (logs, guard) = Logs::capture(tracing::Level::INFO);
    let response = call(&mut django_like, "/login-then-fail", None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(set_cookie(&response).is_none(), "5xx: not saved");
    assert_eq!(vary(&response), ["cookie"]);
    let text = logs.text();
    assert!(text.contains("INFO") && text.contains(NOT_SAVED), "{text}");
    // The path is the application's to log (in its request span): it can
    // carry a token.
    assert!(!text.contains("login-then-fail"), "{text}");
    drop(guard);

    let mut saving = app(builder().save_on_server_error(true).build().expect("layer"));
    let (logs, _guard) = Logs::capture(tracing::Level::INFO);
    let response = call(&mut saving, "/login-then-fail", None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(set_cookie(&response).is_some(), "saved when asked");
    assert!(!logs.text().contains(NOT_SAVED));
}

#[tokio::test]
async fn an_empty_session_sets_no_cookie_and_deletes_the_one_it_had() {
    let mut app = app(builder().build().expect("layer"));
    // Modified, but nothing stored: no cookie for a new visitor.
    let response = call(&mut app, "/insert-then-remove", None).await;
    assert!(set_cookie(&response).is_none());

    // The last entry removed from a real session: the cookie is deleted.
    let login = set_cookie(&call(&mut app, "/login", None).await).expect("Set-Cookie");
    let pair = login.stripped().to_string();
    assert_deletes_the_cookie(&call(&mut app, "/remove-user", Some(&pair)).await);

    // A cookie that does not open, on a route that reads the session:
    // deleted too, so it is not tried (and logged) on every request.
    let response = call(&mut app, "/read", Some("session=garbage")).await;
    assert_deletes_the_cookie(&response);
    // On a route that never opens the session, nothing is touched.
    let response = call(&mut app, "/untouched", Some("session=garbage")).await;
    assert!(set_cookie(&response).is_none());
    // Logging out without a session: nothing to delete.
    let response = call(&mut app, "/logout", None).await;
    assert!(set_cookie(&response).is_none());
}

/// The same key ring on every call: two layers that share sessions.
fn fixed_ring() -> KeyRing {
    KeyRing::new(common::key(7))
}

/// A layer on `fixed_ring` whose revocation store cannot answer.
fn revocations_down() -> SessionLayerBuilder {
    SessionLayer::builder(fixed_ring())
        .revocation(Arc::new(RevocationsDown::default()), Some("user"))
}

#[tokio::test]
async fn a_cookie_that_may_open_elsewhere_or_later_is_kept() {
    let mut server = app(SessionLayer::builder(fixed_ring()).build().expect("layer"));
    let login = set_cookie(&call(&mut server, "/login", None).await).expect("Set-Cookie");
    let pair = login.stripped().to_string();

    // The revocation store is down: opening fails closed, for now only.
    let mut store_down = app(revocations_down().build().expect("layer"));
    let response = call(&mut store_down, "/read", Some(&pair)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        set_cookie(&response).is_none(),
        "kept for when the store is back"
    );
    assert_eq!(body_text(response).await, "", "a fresh session, not ada's");
    // Several copies: the store is asked once, not once per copy.
    let down = Arc::new(RevocationsDown::default());
    let mut counting = app(SessionLayer::builder(fixed_ring())
        .revocation(down.clone(), Some("user"))
        .build()
        .expect("layer"));
    let copies = [pair.as_str(); 4].join("; ");
    let response = call(&mut counting, "/read", Some(&copies)).await;
    assert!(set_cookie(&response).is_none(), "kept");
    assert_eq!(down.0.load(Ordering::SeqCst), 1);
    // But logging out then still deletes it: the user asked to leave.
    let response = call(&mut store_down, "/logout", Some(&pair)).await;
    assert_deletes_the_cookie(&response);

    // A server whose ring does not know the key yet (a rolling rotation).
    let mut other_ring = app(builder().build().expect("layer"));
    let response = call(&mut other_ring, "/read", Some(&pair)).await;
    assert!(set_cookie(&response).is_none(), "unknown key id: kept");

    // Two cookies of the session's name: which one is ours is unknown.
    let two = "session=garbage; session=rubbish";
    let response = call(&mut server, "/read", Some(two)).await;
    assert!(set_cookie(&response).is_none(), "several candidates: kept");

    // The one cookie, tampered (a character in the middle changed):
    // authentication fails on every server, so it is deleted.
    let mut tampered = pair.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let response = call(&mut server, "/read", Some(&tampered)).await;
    assert_deletes_the_cookie(&response);
}

/// What each report with news said was not revoked, and the path of its
/// request.
type UnrevokedReports = Arc<std::sync::Mutex<Vec<(Option<Error>, String)>>>;

/// A layer builder over the fixed ring and the test clock, with a
/// revocation store that reads the user id from `user`.
fn revoking_builder() -> (SessionLayerBuilder, Arc<FlakyRevocations>) {
    revoking_builder_on(&common::clock())
}

/// [`revoking_builder`] on `clock`.
fn revoking_builder_on(clock: &Arc<FixedClock>) -> (SessionLayerBuilder, Arc<FlakyRevocations>) {
    let revocations = Arc::new(FlakyRevocations::with_clock(clock));
    let builder = SessionLayer::builder(fixed_ring())
        .clock(clock.clone())
        .revocation_store(revocations.clone(), Some("user"));
    (builder, revocations)
}

/// The test app under a layer whose revocation store can be made to fail,
/// with its reports.
fn revoking_app() -> (Router, Arc<FlakyRevocations>, UnrevokedReports) {
    let (builder, revocations) = revoking_builder();
    let reports = UnrevokedReports::default();
    let heard = Arc::clone(&reports);
    let layer = builder
        .on_save_report(move |report, uri| {
            let unrevoked = report.unrevoked.clone();
            heard
                .lock()
                .expect("reports")
                .push((unrevoked, uri.path().to_owned()));
        })
        .build()
        .expect("layer");
    (app(layer), revocations, reports)
}

#[tokio::test]
async fn logout_revokes_the_cookie_or_reports_that_it_could_not() {
    let (mut server, revocations, reports) = revoking_app();
    // The store cannot record the id: the cookie is deleted all the same,
    // the report says a copy stays valid, and it does.
    let copy = cookie_pair(&call(&mut server, "/login", None).await);
    revocations.set_down(true);
    assert_deletes_the_cookie(&call(&mut server, "/logout", Some(&copy)).await);
    revocations.set_down(false);
    assert_eq!(
        *reports.lock().expect("reports"),
        [(
            Some(Error::Store(StoreError::Unavailable)),
            "/logout".to_owned()
        )]
    );
    let response = call(&mut server, "/read", Some(&copy)).await;
    assert_eq!(body_text(response).await, "ada");

    // Recorded: the copy no longer opens, and there is nothing to report.
    assert_deletes_the_cookie(&call(&mut server, "/logout", Some(&copy)).await);
    let response = call(&mut server, "/read", Some(&copy)).await;
    assert_eq!(body_text(response).await, "", "revoked");
    assert_eq!(reports.lock().expect("reports").len(), 1);
}

#[tokio::test]
async fn a_handler_logs_the_user_out_of_other_sessions_or_everywhere() {
    let clock = common::clock();
    let (revoking, revocations) = revoking_builder_on(&clock);
    let mut server = app(revoking.build().expect("layer"));
    let laptop = cookie_pair(&call(&mut server, "/login", None).await);
    let tablet = cookie_pair(&call(&mut server, "/login", None).await);
    let phone = cookie_pair(&call(&mut server, "/login", None).await);
    for pair in [&laptop, &tablet, &phone] {
        assert_eq!(read_user(&mut server, pair).await, "ada");
    }

    // The store cannot take the record: the handler's error (503 for a
    // store that is down), nothing revoked, no new cookie.
    revocations.set_down(true);
    let failed = call(&mut server, "/log-out-others", Some(&phone)).await;
    revocations.set_down(false);
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(set_cookie(&failed).is_none());
    assert_eq!(read_user(&mut server, &laptop).await, "ada");
    // The check cannot answer: the request's session stands in for a
    // cookie it could not check and names no user, so both refuse.
    revocations.set_checks_down(true);
    for path in ["/log-out-others", "/log-out-everywhere"] {
        let failed = call(&mut server, path, Some(&phone)).await;
        assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(set_cookie(&failed).is_none(), "{path}");
    }
    revocations.set_checks_down(false);

    // From the phone: the others are logged out, the phone stays logged in
    // under a new id (a copy of its old cookie goes with the others).
    let response = call(&mut server, "/log-out-others", Some(&phone)).await;
    let kept = cookie_pair(&response);
    assert_eq!(body_text(response).await, "true");
    assert_eq!(read_user(&mut server, &kept).await, "ada");
    for pair in [&laptop, &tablet, &phone] {
        assert_eq!(read_user(&mut server, pair).await, "", "revoked");
    }

    // A login after that is not affected...
    clock.advance(10);
    let later = cookie_pair(&call(&mut server, "/login", None).await);
    assert_eq!(read_user(&mut server, &later).await, "ada");

    // ...until everywhere: this cookie is deleted, and both are revoked.
    let response = call(&mut server, "/log-out-everywhere", Some(&kept)).await;
    assert_deletes_the_cookie(&response);
    assert_eq!(body_text(response).await, "true");
    for pair in [&kept, &later] {
        assert_eq!(read_user(&mut server, pair).await, "", "revoked");
    }

    // A session that names no user revokes nothing.
    let response = call(&mut server, "/log-out-others", None).await;
    assert!(set_cookie(&response).is_none());
    assert_eq!(body_text(response).await, "false");

    // Without a revocation store there is nothing to record it in.
    let mut plain = app(builder().build().expect("layer"));
    let pair = cookie_pair(&call(&mut plain, "/login", None).await);
    for path in ["/log-out-others", "/log-out-everywhere"] {
        let response = call(&mut plain, path, Some(&pair)).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(set_cookie(&response).is_none(), "{path}");
    }
    assert_eq!(read_user(&mut plain, &pair).await, "ada");
}

#[cfg(feature = "django")]
#[tokio::test]
async fn a_django_cookie_migrates_under_the_layer_with_the_revocation_check() {
    use sealed_session::django::DjangoCodec;
    use sealed_session::store::MemoryRevocations;
    let revocations = Arc::new(MemoryRevocations::new());
    let mut server = app(builder()
        .revocation_store(revocations.clone(), Some("django_auth_user_id"))
        .build()
        .expect("layer"))
    .layer(axum::middleware::from_fn(forget_django_cookie));
    let mut entries = serde_json::Map::new();
    entries.insert("_auth_user_id".into(), "42".into());
    let django = DjangoCodec::builder(DJANGO_SECRET)
        .build()
        .expect("codec")
        .seal(&entries)
        .expect("Django cookie");
    let django = format!("sessionid={django}");

    let response = call(&mut server, "/from-django", Some(&django)).await;
    // The layer's new cookie, and the deletion of Django's.
    let set = set_cookie_values(&response);
    assert_eq!(set.len(), 2, "{set:?}");
    assert_eq!(set[1], "sessionid=; Max-Age=0; Path=/");
    let sealed = Cookie::parse(set[0].clone()).expect("cookie");
    let sealed = sealed.stripped().to_string();
    assert_eq!(body_text(response).await, "42");
    // A migration whose page fails saves nothing, and keeps Django's.
    let failed = call(&mut server, "/fail", Some(&django)).await;
    assert!(set_cookie_values(&failed).is_empty());
    // The sealed cookie carries it from now on, and wins over Django's.
    let both = format!("{django}; {sealed}");
    let response = call(&mut server, "/from-django", Some(&both)).await;
    assert!(set_cookie(&response).is_none(), "nothing to re-issue");
    assert_eq!(body_text(response).await, "42");
    // A logout with both cookies (Django's not yet forgotten) deletes
    // both, so the next request cannot migrate the session back (on a
    // second migration's cookie: the logout revokes its id).
    let again = call(&mut server, "/from-django", Some(&django)).await;
    let again = Cookie::parse(set_cookie_values(&again)[0].clone()).expect("cookie");
    let both = format!("{django}; {}", again.stripped());
    let logout = call(&mut server, "/logout", Some(&both)).await;
    let set = set_cookie_values(&logout);
    assert_eq!(set.len(), 2, "{set:?}");
    assert!(set[0].starts_with("session=;"), "{set:?}");
    assert_eq!(set[1], "sessionid=; Max-Age=0; Path=/");

    // A forged Django cookie gives a fresh session.
    let forged = format!("{django}x");
    let response = call(&mut server, "/from-django", Some(&forged)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(set_cookie(&response).is_none());
    assert_eq!(body_text(response).await, "");

    // "Log out everywhere": neither the sealed cookie nor the Django one
    // it came from opens any more.
    revocations
        .revoke_user("42", std::time::Duration::from_secs(3600))
        .expect("revoked");
    for cookie in [&sealed, &django] {
        let response = call(&mut server, "/from-django", Some(cookie)).await;
        assert_eq!(body_text(response).await, "", "{cookie}");
    }
}

/// The user a cookie's session names, or "" (a fresh session).
async fn read_user(server: &mut Router, pair: &str) -> String {
    body_text(call(server, "/read", Some(pair)).await).await
}

#[tokio::test]
async fn every_logout_revokes_error_responses_and_store_outages_included() {
    let (mut server, revocations, reports) = revoking_app();
    let reported = || reports.lock().expect("reports").split_off(0);

    // A logout whose page then fails still logs out, as in Django: the
    // deletion cookie (and nothing stored after the flush), the id revoked.
    let copy = cookie_pair(&call(&mut server, "/login", None).await);
    let failed = call(&mut server, "/logout-then-fail", Some(&copy)).await;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        failed.headers().get_all(header::SET_COOKIE).iter().count(),
        1
    );
    assert_deletes_the_cookie(&failed);
    assert_eq!(read_with_header(&mut server, copy.as_bytes()).await, "");
    // Only a flush: a session merely emptied on an error response is not
    // saved, as any other change there (Django keeps its record too).
    let copy = cookie_pair(&call(&mut server, "/login", None).await);
    let failed = call(&mut server, "/remove-user-then-fail", Some(&copy)).await;
    assert_eq!(failed.status(), StatusCode::BAD_GATEWAY);
    assert!(set_cookie(&failed).is_none());
    assert_eq!(read_with_header(&mut server, copy.as_bytes()).await, "ada");

    // Emptying the session deletes its cookie, and revokes the copies too.
    let copy = cookie_pair(&call(&mut server, "/login", None).await);
    assert_deletes_the_cookie(&call(&mut server, "/remove-user", Some(&copy)).await);
    assert_eq!(read_with_header(&mut server, copy.as_bytes()).await, "");
    // (The hook hears only of reports with news.)
    assert_eq!(reported(), []);

    // The store cannot answer the check: the cookie is held back, and a
    // logout then revokes its id all the same (the store took the write).
    let copy = cookie_pair(&call(&mut server, "/login", None).await);
    revocations.set_checks_down(true);
    assert_deletes_the_cookie(&call(&mut server, "/logout", Some(&copy)).await);
    revocations.set_checks_down(false);
    assert_eq!(read_with_header(&mut server, copy.as_bytes()).await, "");
    // Nor the write: the report says the copy stays valid, and it does.
    let copy = cookie_pair(&call(&mut server, "/login", None).await);
    revocations.set_checks_down(true);
    revocations.set_down(true);
    assert_deletes_the_cookie(&call(&mut server, "/logout", Some(&copy)).await);
    revocations.set_checks_down(false);
    revocations.set_down(false);
    assert_eq!(
        reported(),
        [(
            Some(Error::Store(StoreError::Unavailable)),
            "/logout".to_owned()
        )]
    );
    assert_eq!(read_with_header(&mut server, copy.as_bytes()).await, "ada");
}

#[tokio::test]
async fn non_ascii_neighbour_cookies_do_not_hide_the_session() {
    let mut app = app(builder().build().expect("layer"));
    let cookie = set_cookie(&call(&mut app, "/login", None).await).expect("Set-Cookie");
    let pair = format!("{}={}", cookie.name(), cookie.value());
    // Raw UTF-8 (as browsers send script-set values) and a Latin-1 byte.
    let headers: [Vec<u8>; 3] = [
        format!("theme=café; {pair}").into_bytes(),
        format!("{pair}; note=\"\u{00fc}ber\"").into_bytes(),
        [&b"x=\xe9t\xe9; "[..], pair.as_bytes()].concat(),
    ];
    for (i, bytes) in headers.iter().enumerate() {
        assert_eq!(read_with_header(&mut app, bytes).await, "ada", "header {i}");
    }
}

/// `GET /read` with one `Cookie` header of raw bytes.
async fn read_with_header(app: &mut Router, bytes: &[u8]) -> String {
    let request = Request::builder()
        .uri("/read")
        .header(
            header::COOKIE,
            http::HeaderValue::from_bytes(bytes).expect("header value"),
        )
        .body(Body::empty())
        .expect("request");
    body_text(app.call(request).await.expect("infallible")).await
}

#[tokio::test]
async fn a_name_that_differs_by_unicode_white_space_is_another_cookie() {
    // A sibling subdomain may set `\u{2000}__Host-session` (browsers apply
    // the prefix rules to the name as sent) holding the attacker's own
    // genuine cookie: trimmed as `str::trim` does, it would log the victim
    // in as the attacker.
    let mut app = app(builder().host_prefix(true).build().expect("layer"));
    let cookie = set_cookie(&call(&mut app, "/login", None).await).expect("Set-Cookie");
    assert_eq!(cookie.name(), "__Host-session");
    let value = cookie.value();
    for planted in [
        format!("\u{2000}__Host-session={value}"),
        format!("\u{a0}__Host-session={value}"),
        format!("__Host-session\u{3000}={value}"),
        format!("theme=dark;\u{2028}__Host-session={value}"),
    ] {
        assert_eq!(
            read_with_header(&mut app, planted.as_bytes()).await,
            "",
            "{planted:?}"
        );
    }
    // The separators' own white space is not part of the name.
    for sent in [
        format!(" __Host-session={value}"),
        format!("theme=dark;\t__Host-session \t={value}"),
    ] {
        assert_eq!(
            read_with_header(&mut app, sent.as_bytes()).await,
            "ada",
            "{sent:?}"
        );
    }
}

#[tokio::test]
async fn cookie_lines_a_proxy_joined_with_commas_keep_the_session() {
    // Some proxies join HTTP/2's separate cookie lines with ", ".
    let mut app = app(builder().build().unwrap());
    let pair = cookie_pair(&call(&mut app, "/login", None).await);
    let response = call(&mut app, "/read", Some(&format!("{pair}, lang=en"))).await;
    assert!(set_cookie(&response).is_none(), "nothing to set or delete");
    assert_eq!(body_text(response).await, "ada");
    // Our cookie after a comma is not a candidate (it is not a pair of
    // its own): a fresh session, and nothing deleted.
    let response = call(&mut app, "/read", Some(&format!("lang=en, {pair}"))).await;
    assert!(set_cookie(&response).is_none());
    assert_eq!(body_text(response).await, "");
}

async fn body_text(response: Response<Body>) -> String {
    let body = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .expect("body");
    String::from_utf8(body.to_vec()).expect("utf-8")
}

#[tokio::test]
async fn a_write_does_not_replace_a_cookie_that_fails_only_for_now() {
    let mut server = app(SessionLayer::builder(fixed_ring()).build().expect("layer"));
    let login = set_cookie(&call(&mut server, "/login", None).await).expect("Set-Cookie");
    let pair = login.stripped().to_string();

    // The revocation store is down and the handler stores something: the
    // save is refused and reported, the response says so (503), and the
    // user's cookie stays.
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&failures);
    let mut store_down = app(revocations_down()
        .on_save_error(move |failure| seen.lock().expect("lock").push(failure.error.kind()))
        .build()
        .expect("layer"));
    let response = call(&mut store_down, "/login", Some(&pair)).await;
    assert_bare_error(&response, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        set_cookie(&response).is_none(),
        "the cookie is not replaced"
    );
    assert_eq!(*failures.lock().expect("lock"), ["store"]);
    // A read under the outage gets a fresh, empty session, which saves
    // nothing: no failed save, and the handler's response stands.
    let response = call(&mut store_down, "/read", Some(&pair)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(failures.lock().expect("lock").len(), 1);
    // Once the store answers again, the session is all there.
    assert_eq!(read_with_header(&mut server, pair.as_bytes()).await, "ada");

    // A key id this ring does not know may be a retired key: refusing
    // every write until the cookie expires would lock the user out, so a
    // write replaces it.
    let mut other_ring = app(builder().build().expect("layer"));
    let response = call(&mut other_ring, "/login", Some(&pair)).await;
    let replaced = set_cookie(&response).expect("replaced");
    assert!(!replaced.value().is_empty(), "replaced, not deleted");
    assert_ne!(replaced.value(), login.value());
    let pair = replaced.stripped().to_string();
    let response = call(&mut other_ring, "/read", Some(&pair)).await;
    assert_eq!(body_text(response).await, "ada");
}

#[tokio::test]
async fn a_quoted_value_and_split_cookie_headers_open_the_session() {
    let mut app = app(builder().build().expect("layer"));
    let cookie = set_cookie(&call(&mut app, "/login", None).await).expect("Set-Cookie");
    let quoted = format!("{}=\"{}\"", cookie.name(), cookie.value());
    let response = call(&mut app, "/read", Some(&quoted)).await;
    assert!(set_cookie(&response).is_none(), "opened, not deleted");
    assert_eq!(body_text(response).await, "ada");

    // HTTP/2 sends each cookie in its own header line.
    let pair = cookie.stripped().to_string();
    let request = Request::builder()
        .uri("/read")
        .header(header::COOKIE, "theme=dark")
        .header(header::COOKIE, pair)
        .header(header::COOKIE, "lang=en")
        .body(Body::empty())
        .expect("request");
    let response = app.call(request).await.expect("infallible");
    assert_eq!(body_text(response).await, "ada");
}

#[tokio::test]
async fn a_response_that_sets_the_cookie_is_private_to_caches() {
    let mut app = app(builder().build().expect("layer"));
    let cache_control = |response: &Response<Body>| {
        response
            .headers()
            .get_all(header::CACHE_CONTROL)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect::<Vec<_>>()
    };
    let response = call(&mut app, "/login", None).await;
    assert_eq!(cache_control(&response), ["private"]);
    let pair = cookie_pair(&response);
    // A Cache-Control that already keeps shared caches out is left as it
    // is; any other gets `private` on the same line (a cache that reads
    // only the first line must see it), in place of `public`.
    for (given, expected) in [
        ("no-store", &["no-store"][..]),
        ("private,%20max-age=60", &["private, max-age=60"][..]),
        ("no-cache,%20PRIVATE", &["no-cache, PRIVATE"][..]),
        ("public,%20max-age=300", &["private, max-age=300"][..]),
        ("PUBLIC", &["private"][..]),
        ("max-age=0", &["private, max-age=0"][..]),
        (
            "s-maxage=60,%20must-revalidate",
            &["private, s-maxage=60, must-revalidate"][..],
        ),
        // Only the named field is private: the response, Set-Cookie and
        // all, may still be stored by a shared cache.
        (
            "private=%22X-Foo%22,%20max-age=60",
            &["private, max-age=60"][..],
        ),
        // A field list is one directive, commas and all.
        (
            "private=%22a,%20b%22,%20max-age=60",
            &["private, max-age=60"][..],
        ),
        (
            "no-cache=%22Set-Cookie,%20X-Foo%22,%20public",
            &["private, no-cache=\"Set-Cookie, X-Foo\""][..],
        ),
        // A directive's name inside a field list is not that directive.
        ("private=%22no-store,%20X%22", &["private"][..]),
        // Several lines become one.
        ("public%0Amax-age=60", &["private, max-age=60"][..]),
        ("no-cache%0Aprivate", &["no-cache", "private"][..]),
        // `public` goes, even beside a line that keeps shared caches out.
        (
            "public,%20max-age=300%0Aprivate",
            &["private, max-age=300"][..],
        ),
        ("public%0Ano-store", &["private, no-store"][..]),
        // A quoted string left open may hide a `public`: `private` goes
        // first, where it cannot be swallowed.
        (
            "no-cache=%22a,%20public",
            &["private, no-cache=\"a, public"][..],
        ),
        (
            "private,%20x=%22a,%20public",
            &["private, x=\"a, public"][..],
        ),
    ] {
        let response = call(&mut app, &format!("/login-cache-control?{given}"), None).await;
        assert!(set_cookie(&response).is_some());
        assert_eq!(cache_control(&response), expected, "{given}");
    }
    // A line that is not text is kept as it is, `private` on its own line,
    // even beside a `private` (it might say anything).
    for (given, first) in [("public%0Ax%FF", "public"), ("private%0Ax%FF", "private")] {
        let path = format!("/login-cache-control?{given}");
        let response = call(&mut app, &path, None).await;
        let lines = response.headers().get_all(header::CACHE_CONTROL).iter();
        let lines: Vec<&[u8]> = lines.map(|line| line.as_bytes()).collect();
        assert_eq!(lines, [first.as_bytes(), b"x\xff", b"private"], "{given}");
    }
    // No Set-Cookie, nothing added; a deletion cookie is private too.
    let response = call(&mut app, "/read", Some(&pair)).await;
    assert!(set_cookie(&response).is_none());
    assert!(cache_control(&response).is_empty());
    let response = call(&mut app, "/logout", Some(&pair)).await;
    assert_deletes_the_cookie(&response);
    assert_eq!(cache_control(&response), ["private"]);
}

#[tokio::test]
async fn get_or_insert_with_and_mark_modified_work_through_the_layer() {
    let mut app = app(builder().build().expect("layer"));
    // Only the stored default (0) keeps this session from being empty: the
    // handler stores nothing else.
    let response = call(&mut app, "/visits?touch", None).await;
    let pair = cookie_pair(&response);
    assert_eq!(body_text(response).await, "1");
    let response = call(&mut app, "/visits", Some(&pair)).await;
    let pair = cookie_pair(&response);
    assert_eq!(body_text(response).await, "1", "the default was stored");
    let response = call(&mut app, "/visits", Some(&pair)).await;
    let pair = cookie_pair(&response);
    assert_eq!(body_text(response).await, "2");
    // Nothing changes but the session is marked modified: re-sealed.
    let response = call(&mut app, "/visits?touch", Some(&pair)).await;
    let touched = cookie_pair(&response);
    assert_eq!(body_text(response).await, "3");
    assert_ne!(touched, pair);
    let response = call(&mut app, "/read", Some(&touched)).await;
    assert!(set_cookie(&response).is_none(), "unchanged: no Set-Cookie");
    let response = call(&mut app, "/visits", Some(&touched)).await;
    assert_eq!(body_text(response).await, "3", "the count was not stored");
}

type Held = Arc<std::sync::Mutex<Option<LazySession>>>;

/// What the handler of `app_keeping_the_session` does besides keeping it.
#[derive(Clone, Copy)]
enum Handler {
    /// Answers without touching the session.
    Answers,
    /// Reads the session, then answers.
    Reads,
    /// Stores an entry, then answers with a server error (no save).
    StoresThenFails,
}

/// An app whose handler keeps its session for after the response.
fn app_keeping_the_session(handler: Handler) -> (Router, Held) {
    let held = Held::default();
    let keep = Arc::clone(&held);
    let app = Router::new()
        .route(
            "/",
            get(move |session: LazySession| {
                let keep = Arc::clone(&keep);
                async move {
                    match handler {
                        Handler::Answers => {}
                        Handler::Reads => {
                            session.get::<String>("user").await?;
                        }
                        Handler::StoresThenFails => session.insert("user", "ada").await?,
                    }
                    *keep.lock().expect("lock") = Some(session);
                    match handler {
                        Handler::StoresThenFails => Ok(StatusCode::INTERNAL_SERVER_ERROR),
                        _ => Ok::<_, Error>(StatusCode::OK),
                    }
                }
            }),
        )
        .layer(builder().build().expect("layer"));
    (app, held)
}

/// Fails unless a change to the kept session is logged as lost.
async fn assert_a_late_change_is_logged_as_lost(held: &Held) {
    let session = held.lock().expect("lock").take().expect("kept");
    let (logs, _guard) = Logs::capture(tracing::Level::INFO);
    session.get::<String>("user").await.expect("read");
    assert!(logs.is_empty(), "a read is not a change");
    session.insert("user", "late").await.expect("insert");
    let text = logs.text();
    assert!(text.contains("the change is lost"), "{text}");
    assert!(!text.contains("late"), "no values in the log: {text}");
}

#[tokio::test]
async fn a_change_after_the_response_is_logged_as_lost() {
    let (mut app, held) = app_keeping_the_session(Handler::Reads);
    let response = call(&mut app, "/", None).await;
    assert!(set_cookie(&response).is_none());
    assert_a_late_change_is_logged_as_lost(&held).await;
}

#[tokio::test]
async fn a_change_after_an_unsaved_response_is_logged_as_lost() {
    // The handler's own change is not saved on a server error, so the
    // session is still modified when a late change comes.
    let (mut app, held) = app_keeping_the_session(Handler::StoresThenFails);
    let response = call(&mut app, "/", None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(set_cookie(&response).is_none());
    assert_a_late_change_is_logged_as_lost(&held).await;
}

#[tokio::test]
async fn a_change_after_the_request_was_dropped_is_logged_as_lost() {
    // The client went away: the server drops the request's future while
    // the handler waits, and a task holding the session outlives it.
    let (mut app, held) = failing(&builder().build().expect("layer"), false, true);
    drop_unanswered(&mut app, "/", None).await;
    assert_a_late_change_is_logged_as_lost(&held).await;
}

#[tokio::test]
async fn logging_out_after_the_response_is_logged_as_lost() {
    // Late, "log out my other devices" keeps a new id no cookie carries
    // (so this device is logged out as well), and "everywhere" cannot
    // delete the cookie: neither may go unnoticed.
    use sealed_session::store::MemoryRevocations;
    let held = Held::default();
    let keep = Arc::clone(&held);
    let layer = builder()
        .revocation_store(Arc::new(MemoryRevocations::new()), Some("user"))
        .build()
        .expect("layer");
    let mut app = Router::new()
        .route(
            "/",
            get(move |session: LazySession| {
                let keep = Arc::clone(&keep);
                async move {
                    session.insert("user", "ada").await?;
                    *keep.lock().expect("lock") = Some(session);
                    Ok::<_, Error>(StatusCode::OK)
                }
            }),
        )
        .layer(layer);
    let response = call(&mut app, "/", None).await;
    assert!(set_cookie(&response).is_some());
    let session = held.lock().expect("lock").take().expect("kept");
    let (logs, _guard) = Logs::capture(tracing::Level::INFO);
    assert!(session.log_out_other_sessions().await.expect("recorded"));
    assert_eq!(logs.text().matches("the change is lost").count(), 1);
    assert!(session.log_out_everywhere().await.expect("recorded"));
    assert_eq!(logs.text().matches("the change is lost").count(), 2);
}

#[tokio::test]
async fn opening_after_the_response_is_logged() {
    let (mut app, held) = app_keeping_the_session(Handler::Answers);
    let response = call(&mut app, "/", None).await;
    assert!(response.headers().get(header::VARY).is_none());
    let session = held.lock().expect("lock").take().expect("kept");
    let (logs, _guard) = Logs::capture(tracing::Level::INFO);
    session.get::<String>("user").await.expect("read");
    let text = logs.text();
    assert!(text.contains("first opened after the response"), "{text}");
}

#[tokio::test]
async fn an_inner_service_error_ends_the_request_for_the_session() {
    let (mut service, held) = failing(&builder().build().expect("layer"), false, false);
    let request = Request::get("/").body(Body::empty()).expect("request");
    assert_eq!(service.call(request).await.unwrap_err(), "inner failure");
    let session = held.lock().expect("lock").take().expect("kept");
    let (logs, _guard) = Logs::capture(tracing::Level::INFO);
    session.insert("user", "late").await.expect("insert");
    let text = logs.text();
    assert!(text.contains("the change is lost"), "{text}");
}

#[tokio::test]
async fn an_inner_service_error_still_revokes_a_flushed_session() {
    let (_server, _revocations, layer, pair) = logged_in_with_revocations().await;
    // A logout whose service then fails: no response, so no deletion
    // cookie, but the old id is revoked all the same.
    let (mut service, _held) = failing(&layer, true, false);
    let request = Request::get("/")
        .header(header::COOKIE, &pair)
        .body(Body::empty())
        .expect("request");
    assert_eq!(service.call(request).await.unwrap_err(), "inner failure");
    let error = layer
        .sealer()
        .open_async(value_of(&pair))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "revoked");
}

/// A layer with a revocation store, an app with it, and a login's cookie.
async fn logged_in_with_revocations() -> (Router, Arc<FlakyRevocations>, SessionLayer, String) {
    let (builder, revocations) = revoking_builder();
    let layer = builder.build().expect("layer");
    let mut server = app(layer.clone());
    let pair = cookie_pair(&call(&mut server, "/login", None).await);
    assert_opens_logged_in(&layer, &pair).await;
    (server, revocations, layer, pair)
}

/// Sends `service` a request for `path` (with the cookie `pair`, if any)
/// and drops it unanswered, as a server does when the client goes away.
/// The callers check that the request got as far as they need: nothing
/// it awaits takes time, only polls.
async fn drop_unanswered<S>(service: &mut S, path: &str, pair: Option<&str>)
where
    S: tower_service::Service<Request<Body>>,
{
    let mut request = Request::get(path);
    if let Some(pair) = pair {
        request = request.header(header::COOKIE, pair);
    }
    let request = request.body(Body::empty()).expect("request");
    let answer = tokio::time::timeout(std::time::Duration::from_millis(20), service.call(request));
    assert!(answer.await.is_err(), "the request never gets its answer");
}

/// `layer` around a [`Failing`] service, which reads the session, flushes
/// it if `flush` says so, and then never answers if `hangs` does, or fails;
/// and where it keeps the session once it has.
fn failing(layer: &SessionLayer, flush: bool, hangs: bool) -> (SessionService<Failing>, Held) {
    use tower_layer::Layer as _;
    let held = Held::default();
    let service = layer.layer(Failing {
        held: Arc::clone(&held),
        flush,
        hangs,
    });
    (service, held)
}

/// Logs in with a revocation store, then drops a request to `path` (which
/// gives up the session's id) while its save waits on that store.
async fn dropped_while_revoking(path: &str) -> (Arc<FlakyRevocations>, SessionLayer, String) {
    let (mut server, revocations, layer, pair) = logged_in_with_revocations().await;
    revocations.set_hangs(true);
    drop_unanswered(&mut server, path, Some(&pair)).await;
    assert_eq!(revocations.hung(), 1, "dropped while revoking");
    (revocations, layer, pair)
}

/// The value of a `name=value` cookie pair.
fn value_of(pair: &str) -> &str {
    pair.split_once('=').expect("name=value").1
}

/// Fails unless the cookie of `pair` is revoked within a few seconds: the
/// revocation of a dropped request's logout runs on a task of its own.
async fn assert_revoked_soon(layer: &SessionLayer, pair: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while layer.sealer().open_async(value_of(pair)).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the logout was not recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let error = layer.sealer().open_async(value_of(pair)).await.unwrap_err();
    assert_eq!(error.kind(), "revoked");
}

/// Fails unless the cookie of `pair` still opens, once any task a dropped
/// request spawned has had time to run.
async fn assert_still_valid(layer: &SessionLayer, pair: &str) {
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_opens_logged_in(layer, pair).await;
}

/// Fails unless the cookie of `pair` opens, with the user logged in.
async fn assert_opens_logged_in(layer: &SessionLayer, pair: &str) {
    let session = layer
        .sealer()
        .open_async(value_of(pair))
        .await
        .expect("opens");
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("ada")
    );
}

/// Enters its span to poll, as `tower_http::trace`'s future does, and not
/// to drop (the span, the first field, is gone by then).
struct EnteredToPoll<F> {
    span: tracing::Span,
    inner: std::pin::Pin<Box<F>>,
}

impl<F: std::future::Future> std::future::Future for EnteredToPoll<F> {
    type Output = F::Output;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = &mut *self;
        let _entered = this.span.enter();
        this.inner.as_mut().poll(cx)
    }
}

#[tokio::test]
async fn a_logout_whose_request_is_dropped_still_revokes_the_old_id() {
    let (logs, _guard) = Logs::capture(tracing::Level::INFO);
    let (_server, _revocations, layer, pair) = logged_in_with_revocations().await;
    // The handler logs out, then the request is dropped before it answers.
    let (mut service, held) = failing(&layer, true, true);
    // As `tower_http::trace` does: the request's span is entered to call
    // and to poll the service, not while its future is dropped.
    let span = tracing::info_span!("request", id = 42);
    let request = Request::get("/")
        .header(header::COOKIE, &pair)
        .body(Body::empty())
        .expect("request");
    let future = span.in_scope(|| service.call(request));
    let future = EnteredToPoll {
        span,
        inner: Box::pin(future),
    };
    let answer = tokio::time::timeout(std::time::Duration::from_millis(20), future);
    assert!(answer.await.is_err(), "the request never gets its answer");
    assert!(
        held.lock().expect("lock").is_some(),
        "flushed before the drop"
    );
    assert_revoked_soon(&layer, &pair).await;
    // The task that finished the logout logged inside the request's span.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !logs.text().contains("dropped-logout-revoked") {
        assert!(std::time::Instant::now() < deadline, "{}", logs.text());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let line = line_with(&logs, "dropped-logout-revoked");
    assert!(line.contains("request{id=42}"), "{line}");
}

#[tokio::test]
async fn a_logout_dropped_while_revoking_is_revoked_by_its_own_task() {
    // The layer's save waits on the store when the request is dropped.
    let (revocations, layer, pair) = dropped_while_revoking("/logout").await;
    revocations.set_hangs(false);
    assert_revoked_soon(&layer, &pair).await;
}

#[tokio::test]
async fn a_user_switch_dropped_while_revoking_is_revoked_by_its_own_task() {
    // Its save has set the new user's cookie (which never goes out) and
    // waits on the store to revoke the old one when the request is dropped.
    let (revocations, layer, pair) = dropped_while_revoking("/flush-then-login").await;
    revocations.set_hangs(false);
    assert_revoked_soon(&layer, &pair).await;
}

#[tokio::test]
async fn a_new_id_dropped_while_revoking_keeps_the_old_cookie_valid() {
    // Not a logout: the new cookie never went out, so the client goes on
    // with the old one, which must still open (only a logout is finished
    // by a task of its own).
    let (revocations, layer, pair) = dropped_while_revoking("/cycle-id").await;
    revocations.set_hangs(false);
    assert_still_valid(&layer, &pair).await;
}

#[test]
fn a_runtime_that_drops_the_task_finishing_a_logout_says_so() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let (logs, _guard) = Logs::capture(tracing::Level::WARN);
    runtime.block_on(async {
        dropped_while_revoking("/logout").await;
    });
    assert!(
        !logs.text().contains("may not be revoked"),
        "{}",
        logs.text()
    );
    // Shutting down drops the task that would finish the logout.
    drop(runtime);
    let text = logs.text();
    assert!(text.contains("may not be revoked"), "{text}");
}

#[tokio::test]
async fn a_dropped_request_without_a_logout_revokes_nothing() {
    let (logs, _guard) = Logs::capture(tracing::Level::INFO);
    let (mut server, _revocations, layer, pair) = logged_in_with_revocations().await;
    let (mut service, held) = failing(&layer, false, true);
    drop_unanswered(&mut service, "/", Some(&pair)).await;
    assert!(held.lock().expect("lock").is_some(), "read before the drop");
    assert_still_valid(&layer, &pair).await;
    // Nor one dropped after taking a new id, before its save.
    drop_unanswered(&mut server, "/cycle-id-then-hang", Some(&pair)).await;
    assert_still_valid(&layer, &pair).await;
    // No task finishing a logout ran for either.
    let text = logs.text();
    assert!(!text.contains("dropped-logout"), "{text}");
}

#[tokio::test]
async fn a_flush_whose_save_failed_in_an_answered_request_revokes_nothing() {
    // The layer finished this request itself: its save failed, the client
    // keeps the old cookie, which must stay valid (the task that finishes
    // dropped requests' logouts must not run for it).
    let (mut server, _revocations, layer, pair) = logged_in_with_revocations().await;
    let response = call(&mut server, "/flush-then-login-too-large", Some(&pair)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(set_cookie(&response).is_none());
    assert_still_valid(&layer, &pair).await;
}

/// A service (not axum) that reads the session (and flushes it if `flush`
/// says so), keeps it and fails (or never answers, if `hangs` says so).
#[derive(Clone)]
struct Failing {
    held: Held,
    flush: bool,
    hangs: bool,
}

impl tower_service::Service<Request<Body>> for Failing {
    type Response = Response<Body>;
    type Error = &'static str;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<Body>, &'static str>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let session = request.extensions().get::<LazySession>().cloned();
        let keep = Arc::clone(&self.held);
        let (flush, hangs) = (self.flush, self.hangs);
        Box::pin(async move {
            let session = session.expect("the layer's session");
            session.get::<String>("user").await.expect("read");
            if flush {
                session.flush().await.expect("flush");
            }
            *keep.lock().expect("lock") = Some(session);
            if hangs {
                std::future::pending::<()>().await;
            }
            Err("inner failure")
        })
    }
}

#[tokio::test]
async fn a_second_layer_on_the_same_cookie_name_is_logged() {
    let (logs, _guard) = Logs::capture(tracing::Level::INFO);
    let mut app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(builder().build().expect("inner"))
        .layer(builder().build().expect("outer"));
    call(&mut app, "/", None).await;
    let text = logs.text();
    assert!(text.contains("two session layers"), "{text}");
    let mut app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(builder().cookie_name("admin").build().expect("inner"))
        .layer(builder().build().expect("outer"));
    logs.clear();
    call(&mut app, "/", None).await;
    assert!(!logs.text().contains("two session layers"));
}

#[tokio::test]
async fn an_outer_layer_of_the_same_name_does_not_undo_the_inner_ones_cookie() {
    // One key, one name; the outer layer re-seals every session it opens
    // (a refresh always due), which no handler can reach or change.
    let key = MasterKey::generate().expect("key").to_base64();
    let ring = || KeyRing::new(MasterKey::from_base64(&key).expect("key"));
    let outer = SessionLayer::builder(ring())
        .open_every_request(true)
        .refresh_fraction(0.0)
        .build()
        .expect("outer");
    let inner = SessionLayer::builder(ring()).build().expect("inner");
    let mut app = app(inner).layer(outer);
    let pair = cookie_pair(&call(&mut app, "/login", None).await);
    // The logout's deletion cookie is the only one: the outer layer's
    // re-seal of the old session would follow it and win.
    let response = call(&mut app, "/logout", Some(&pair)).await;
    let set = set_cookie_values(&response);
    assert_eq!(set.len(), 1, "{set:?}");
    assert!(set[0].starts_with("session=;"), "{set:?}");
    // A change goes out alone too, and reads back.
    let response = call(&mut app, "/flush-then-login", Some(&pair)).await;
    let set = set_cookie_values(&response);
    assert_eq!(set.len(), 1, "{set:?}");
    let switched = cookie_pair(&response);
    let session = ring_opens(ring(), &switched);
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("bob")
    );
    // Where the inner layer sets nothing, the outer one's refresh still
    // goes out.
    let response = call(&mut app, "/untouched", Some(&pair)).await;
    assert_eq!(set_cookie_values(&response).len(), 1);
}

/// An outer layer whose previous cookie name is the inner layer's name
/// deletes no cookie of that name the inner layer sets in the same
/// response (a login's, here, beside the outer layer's deletion of its own
/// bad cookie).
#[tokio::test]
async fn an_outer_layer_does_not_delete_the_cookie_it_was_renamed_from_as_an_inner_one_sets_it() {
    let outer = SessionLayer::builder(KeyRing::new(MasterKey::generate().expect("key")))
        .cookie_name("admin")
        .previous_cookie_name("session")
        .open_every_request(true)
        .build()
        .expect("outer");
    let mut app = app(builder().build().expect("inner")).layer(outer);
    let response = call(&mut app, "/login", Some("admin=forged; session=stale")).await;
    let mut names: Vec<(String, bool)> = set_cookie_values(&response)
        .into_iter()
        .map(|value| {
            let cookie = Cookie::parse(value).expect("cookie");
            let deletes = cookie.max_age() == Some(::cookie::time::Duration::ZERO);
            (cookie.name().to_owned(), deletes)
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [("admin".to_owned(), true), ("session".to_owned(), false)]
    );
}

/// Of two nested layers, where one's previous cookie name is the other's
/// current one, neither opens nor deletes the other's cookie: an outer
/// layer refreshing every request left the inner one's login alone, and
/// an inner one left the outer one's cookie alone.
#[tokio::test]
async fn a_layer_leaves_alone_the_cookie_of_a_layer_it_was_renamed_from() {
    let key = MasterKey::generate().expect("key").to_base64();
    let ring = || KeyRing::new(MasterKey::from_base64(&key).expect("key"));
    let renamed = || {
        SessionLayer::builder(ring())
            .cookie_name("admin")
            .previous_cookie_name("session")
            .open_every_request(true)
            .refresh_fraction(0.0)
    };
    let plain = || SessionLayer::builder(ring()).open_every_request(true);
    // The renamed layer outside.
    let inner = plain().build().expect("inner");
    let mut app = app(inner).layer(renamed().build().expect("outer"));
    let pair = cookie_pair(&call(&mut app, "/login", None).await);
    assert!(pair.starts_with("session="), "{pair}");
    for path in ["/untouched", "/read"] {
        let response = call(&mut app, path, Some(&pair)).await;
        assert!(set_cookie_values(&response).is_empty(), "{path}");
    }
    let response = call(&mut app, "/read", Some(&pair)).await;
    assert_eq!(body_text(response).await, "ada");
    // The renamed layer inside: the outer layer's cookie is not its own.
    let outer = plain().refresh_fraction(0.0).build().expect("outer");
    let mut app = Router::new()
        .route("/untouched", get(|| async { "ok" }))
        .route("/read", get(read))
        .layer(renamed().build().expect("inner"))
        .layer(outer);
    for path in ["/untouched", "/read"] {
        let response = call(&mut app, path, Some(&pair)).await;
        let set = set_cookie_values(&response);
        // Only the outer layer's refresh of its own cookie.
        assert_eq!(set.len(), 1, "{path}: {set:?}");
        assert!(set[0].starts_with("session=AQ"), "{path}: {set:?}");
        if path == "/read" {
            assert_eq!(body_text(response).await, "", "the inner session is new");
        }
    }
    // Neither does a login through the renamed inner layer delete the
    // outer one's cookie (an outer layer that does not refresh).
    let outer = plain().build().expect("outer");
    let mut app = self::app(renamed().build().expect("inner")).layer(outer);
    let response = call(&mut app, "/login", Some(&pair)).await;
    let set = set_cookie_values(&response);
    assert_eq!(set.len(), 1, "{set:?}");
    assert!(set[0].starts_with("admin=AQ"), "{set:?}");
    // Nor with a layer between the two.
    let outermost = plain().build().expect("outermost");
    let middle = plain().cookie_name("other").build().expect("middle");
    let mut app = Router::new()
        .route("/read", get(read))
        .layer(renamed().build().expect("inner"))
        .layer(middle)
        .layer(outermost);
    let response = call(&mut app, "/read", Some(&pair)).await;
    let set = set_cookie_values(&response);
    assert!(set.iter().all(|v| !v.starts_with("session=")), "{set:?}");
    assert_eq!(body_text(response).await, "", "the inner session is new");
    // A middleware that opens the outer session before the inner layer
    // runs sees the inner one's cookie as its own; it is still not deleted.
    let peek = |request: Request<Body>, next: axum::middleware::Next| async move {
        if let Some(session) = request.extensions().get::<LazySession>() {
            session.get::<String>("user").await.expect("read");
        }
        next.run(request).await
    };
    let mut app = Router::new()
        .route("/untouched", get(|| async { "ok" }))
        .layer(plain().build().expect("inner"))
        .layer(axum::middleware::from_fn(peek))
        .layer(renamed().build().expect("outer"));
    let response = call(&mut app, "/untouched", Some(&pair)).await;
    let set = set_cookie_values(&response);
    assert!(set.iter().all(|v| !v.starts_with("session=")), "{set:?}");
}

#[tokio::test]
async fn a_handler_can_skip_the_save_except_a_logout() {
    // Every request would re-seal (a refresh always due, opened for it).
    let mut server = app(builder()
        .open_every_request(true)
        .refresh_fraction(0.0)
        .build()
        .expect("layer"));
    let pair = cookie_pair(&call(&mut server, "/login", None).await);
    assert_eq!(
        set_cookie_values(&call(&mut server, "/untouched", Some(&pair)).await).len(),
        1,
        "refreshed"
    );
    // Skipped: no refresh (nor an open for one), no change.
    let response = call(&mut server, "/skip", Some(&pair)).await;
    assert!(set_cookie_values(&response).is_empty());
    assert!(vary(&response).is_empty(), "not opened");
    let response = call(&mut server, "/insert-then-skip", Some(&pair)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(set_cookie_values(&response).is_empty());
    let response = call(&mut server, "/insert-then-skip", None).await;
    assert!(set_cookie_values(&response).is_empty(), "a new session");
    // A logout still ends the session; what was stored after it is not
    // kept.
    let (logs, _guard) = Logs::capture(tracing::Level::DEBUG);
    let response = call(&mut server, "/logout-login-then-skip", Some(&pair)).await;
    assert_deletes_the_cookie(&response);
    assert!(
        logs.text().contains("save-skipped-flush-only"),
        "{}",
        logs.text()
    );
    let response = call(&mut server, "/insert-then-skip", Some(&pair)).await;
    assert!(set_cookie_values(&response).is_empty());
    assert!(
        logs.text().contains("event=\"save-skipped\""),
        "{}",
        logs.text()
    );
}

/// The session in the cookie of `pair`, opened with `ring` under the
/// default name.
fn ring_opens(ring: KeyRing, pair: &str) -> sealed_session::Session {
    sealed_session::Sealer::builder(ring)
        .build()
        .expect("sealer")
        .open(value_of(pair))
        .expect("opens")
}

#[tokio::test]
async fn the_deletion_cookie_carries_the_attributes_of_the_cookie_it_deletes() {
    let configured = [
        builder()
            .cookie_name("sid")
            .domain("example.com")
            .path("/app")
            .partitioned(true)
            .secure(false),
        builder()
            .cookie_name("sid")
            .host_prefix(true)
            .domain("example.com")
            .path("/app"),
    ];
    for layer in configured {
        let mut app = app(layer.build().expect("layer"));
        let set = set_cookie(&call(&mut app, "/login", None).await).expect("Set-Cookie");
        let pair = set.stripped().to_string();
        let removal = set_cookie(&call(&mut app, "/logout", Some(&pair)).await).expect("deletion");
        assert_eq!(removal.name(), set.name());
        assert_eq!(removal.value(), "");
        assert_eq!(removal.max_age().map(|d| d.whole_seconds()), Some(0));
        assert_eq!(removal.path(), set.path(), "{}", set.name());
        assert_eq!(removal.domain(), set.domain(), "{}", set.name());
        assert_eq!(removal.secure(), set.secure(), "{}", set.name());
        assert_eq!(removal.partitioned(), set.partitioned(), "{}", set.name());
        assert_eq!(removal.same_site(), set.same_site(), "{}", set.name());
        // The configured attributes, not the defaults (the `__Host-`
        // prefix forces the root path and no domain).
        let host = set.name().starts_with("__Host-");
        assert_eq!(set.path(), Some(if host { "/" } else { "/app" }));
        assert_eq!(set.domain(), (!host).then_some("example.com"));
        assert_eq!(set.secure(), Some(true));
    }
}

/// A layered app whose handler writes the session and sets `cookie` itself.
fn app_whose_handler_sets(cookie: &'static str) -> Router {
    Router::new()
        .route(
            "/",
            get(move |session: LazySession| async move {
                session.insert("user", "ada").await?;
                Ok::<_, Error>(([(header::SET_COOKIE, cookie)], "ok"))
            }),
        )
        .layer(builder().build().expect("layer"))
}

#[tokio::test]
async fn a_handler_that_sets_the_session_cookie_itself_is_warned_and_overridden() {
    let mut app = app_whose_handler_sets("session=by-hand; Path=/");
    let (logs, _guard) = Logs::capture(tracing::Level::INFO);
    let response = call(&mut app, "/", None).await;
    let values: Vec<_> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .collect();
    assert_eq!(values.len(), 2);
    assert_eq!(values[0], "session=by-hand; Path=/");
    // The layer's comes last: a sealed session, with its attributes.
    let layers = Cookie::parse(values[1].to_str().expect("ascii")).expect("cookie");
    assert_eq!(layers.name(), "session");
    assert_ne!(layers.value(), "by-hand");
    assert_eq!(layers.http_only(), Some(true));
    let text = logs.text();
    assert!(text.contains("already sets the session cookie"), "{text}");
    // Another cookie set by the handler is no concern.
    let mut quiet = app_whose_handler_sets("session_theme=dark");
    let (logs, _guard) = Logs::capture(tracing::Level::INFO);
    let response = call(&mut quiet, "/", None).await;
    assert_eq!(
        response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .count(),
        2
    );
    assert!(logs.is_empty());
}

#[tokio::test]
async fn a_handlers_own_session_cookie_wins_over_a_refresh_alone() {
    // Every read is due for a refresh; this handler only reads, and sets
    // the cookie itself (as code migrating to the layer might).
    let mut app = Router::new()
        .route(
            "/",
            get(|session: LazySession| async move {
                session.get::<String>("user").await?;
                Ok::<_, Error>(([(header::SET_COOKIE, "session=by-hand")], "ok"))
            }),
        )
        .route("/login", get(login))
        .route("/read", get(read))
        .layer(builder().refresh_fraction(0.0).build().expect("layer"));
    let pair = cookie_pair(&call(&mut app, "/login", None).await);
    let (logs, _guard) = Logs::capture(tracing::Level::DEBUG);
    let response = call(&mut app, "/", Some(&pair)).await;
    assert_eq!(set_cookie_values(&response), ["session=by-hand"]);
    let text = logs.text();
    assert!(text.contains("set-cookie-yielded"), "{text}");
    assert!(!text.contains("set-cookie-overridden"), "{text}");
    // Nor does the deletion of a bad cookie follow it.
    let response = call(&mut app, "/", Some("session=AQAtampered")).await;
    assert_eq!(set_cookie_values(&response), ["session=by-hand"]);
    // The same bad cookie on a page that sets none is deleted.
    let response = call(&mut app, "/read", Some("session=AQAtampered")).await;
    let removal = set_cookie(&response).expect("deletion cookie");
    assert_eq!((removal.name(), removal.value()), ("session", ""));
}

fn assert_bare_error(response: &Response<Body>, status: StatusCode) {
    assert_eq!(response.status(), status);
    let headers = response.headers();
    assert!(!headers.contains_key(header::SET_COOKIE));
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(headers[header::VARY], "cookie");
}

#[tokio::test]
async fn a_save_that_loses_the_handlers_changes_fails_the_response() {
    // Turned off, the handler's response goes out, without Set-Cookie.
    let lenient = builder().budget(300).error_on_lost_changes(false);
    let mut lenient = app(lenient.build().expect("layer"));
    let response = call(&mut lenient, "/login-too-large", None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(&response).is_none());

    // By default the layer answers 500 instead: the critical entry does
    // not fit, so the "logged in" response would be untrue.
    let mut app_strict = app(builder().budget(300).build().expect("layer"));
    let response = call(&mut app_strict, "/login-too-large", None).await;
    assert_bare_error(&response, StatusCode::INTERNAL_SERVER_ERROR);
    // Why, for an outer layer to render.
    let lost = response
        .extensions()
        .get::<sealed_session::http::LostChanges>();
    assert!(
        matches!(lost, Some(l) if l.error.kind() == "too-large"),
        "{lost:?}"
    );
    assert_eq!(body_text(response).await, "");
    // A save that succeeds leaves the response alone.
    let response = call(&mut app_strict, "/login", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(set_cookie(&response).is_some());
    // (A write while the revocation store is down, 503: see
    // a_write_does_not_replace_a_cookie_that_fails_only_for_now.)
}

#[tokio::test]
async fn a_failed_save_that_carried_no_change_of_the_handlers_keeps_the_response() {
    use common::key;
    let clock = common::clock();
    let store = Arc::new(common::Instrumented::new(&clock));
    let layer = |ring| {
        SessionLayer::builder(ring)
            .overflow_store(store.clone())
            .clock(clock.clone())
            .max_idle(std::time::Duration::from_secs(1000))
            .build()
            .expect("layer")
    };
    let mut before = app(layer(KeyRing::new(key(3))));
    let pair = cookie_pair(&call(&mut before, "/big", None).await);

    // A sliding refresh is due and renews the blob, which needs the store;
    // it is down, so that save fails, but the request only read.
    clock.advance(600);
    store.set_down(true);
    let (logs, guard) = Logs::capture(tracing::Level::INFO);
    let response = call(&mut before, "/read", Some(&pair)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(set_cookie(&response).is_none());
    assert!(logs.text().contains("session not saved"));
    drop(guard);
    store.set_down(false);

    // After a key rotation the cookie and its blob are re-sealed under the
    // new key, which needs the store; it is down, so that save fails, but
    // the request only read: its response stands. (A cookie sealed now,
    // which no refresh would rewrite: the rotation alone does.)
    let pair = cookie_pair(&call(&mut before, "/big", None).await);
    let ring = KeyRing::with_fallbacks(key(4), [key(3)]).expect("ring");
    let mut after = app(layer(ring));
    let response = call(&mut after, "/read", Some(&pair)).await;
    assert!(
        set_cookie(&response).is_some(),
        "re-sealed under the new key"
    );
    let unrotated = call(&mut before, "/read", Some(&pair)).await;
    assert!(set_cookie(&unrotated).is_none(), "nothing else to save");
    store.set_down(true);
    let (logs, _guard) = Logs::capture(tracing::Level::INFO);
    let response = call(&mut after, "/read", Some(&pair)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(set_cookie(&response).is_none());
    assert!(logs.text().contains("session not saved"));
}

/// Fails if the captured events hold a part of one of `values`.
fn assert_not_logged(logs: &Logs, values: &[&str]) {
    let text = logs.text();
    for value in values {
        assert!(!text.contains(&value[8..40]), "a cookie value was logged");
    }
}

/// The captured line that holds `message`, which must appear once.
fn line_with(logs: &Logs, message: &str) -> String {
    let text = logs.text();
    let mut lines = text.lines().filter(|line| line.contains(message));
    let line = lines
        .next()
        .unwrap_or_else(|| panic!("no {message:?} in {text}"));
    assert!(lines.next().is_none(), "{message:?} twice in {text}");
    line.to_owned()
}

#[test]
fn settings_a_prefix_overrides_are_warned_about_when_the_layer_is_built() {
    let (logs, _guard) = Logs::capture(tracing::Level::DEBUG);
    let overridden = || {
        logs.text()
            .lines()
            .filter(|line| line.contains("event=\"cookie-setting-overridden\""))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    SessionLayer::builder(fixed_ring())
        .cookie_name("__Host-id")
        .build()
        .expect("layer");
    SessionLayer::builder(fixed_ring())
        .secure(false)
        .path("/app")
        .domains(["example.com"])
        .build()
        .expect("layer");
    assert_eq!(
        overridden(),
        Vec::<String>::new(),
        "nothing given is overridden"
    );

    let layer = SessionLayer::builder(fixed_ring())
        .host_prefix(true)
        .secure(false)
        .path("/app")
        .domains(["example.com"])
        .build()
        .expect("layer");
    let lines = overridden();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (line, setting) in lines.iter().zip(["secure", "path", "domains"]) {
        assert!(
            line.contains(" WARN ")
                && line.contains(&format!("setting=\"{setting}\""))
                && line.contains("by=\"the __Host- prefix\""),
            "{line}"
        );
    }
    // What the warnings say holds.
    let sealer = layer.sealer();
    assert_eq!(sealer.cookie_name(), "__Host-session");
    let header = sealer
        .cookie_settings()
        .set_cookie(sealer.cookie_name(), "v", None);
    assert!(header.contains("; Secure; Path=/"), "{header}");
}

#[tokio::test]
async fn a_revocation_store_out_of_reach_is_warned_about_once_per_ten_seconds() {
    let (logs, _guard) = Logs::capture(tracing::Level::DEBUG);
    let clock = common::clock();
    let (builder, revocations) = revoking_builder_on(&clock);
    let mut server = app(builder.build().expect("layer"));
    let pair = cookie_pair(&call(&mut server, "/login", None).await);
    revocations.set_checks_down(true);
    let refusals = |level: &str| {
        logs.text()
            .lines()
            .filter(|line| line.contains("event=\"cookie-refused\"") && line.contains(level))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    logs.clear();
    for _ in 0..3 {
        let response = call(&mut server, "/read", Some(&pair)).await;
        assert!(set_cookie(&response).is_none(), "held back, not deleted");
    }
    let warned = refusals(" WARN ");
    assert_eq!(warned.len(), 1, "{}", logs.text());
    assert!(
        warned[0].contains("kind=\"store\"") && warned[0].contains("since_last_warn=0"),
        "{}",
        warned[0]
    );
    assert_eq!(refusals("DEBUG").len(), 2, "{}", logs.text());

    clock.advance(9);
    call(&mut server, "/read", Some(&pair)).await;
    assert_eq!(refusals(" WARN ").len(), 1, "{}", logs.text());
    clock.advance(1);
    logs.clear();
    call(&mut server, "/read", Some(&pair)).await;
    let warned = refusals(" WARN ");
    assert_eq!(warned.len(), 1, "{}", logs.text());
    assert!(warned[0].contains("since_last_warn=3"), "{}", warned[0]);
    assert_not_logged(&logs, &[value_of(&pair)]);
}

#[tokio::test]
async fn refused_cookies_are_logged_at_their_levels_with_kind_and_length_only() {
    use sealed_session::Limits;
    let (logs, _guard) = Logs::capture(tracing::Level::DEBUG);
    let (mut server, _revocations, _reports) = revoking_app();
    let pair = cookie_pair(&call(&mut server, "/login", None).await);
    let value = value_of(&pair).to_owned();
    let len = format!("len={}", value.len());

    const REFUSED: &str = "event=\"cookie-refused\"";
    // Tampered (anyone can send it): DEBUG, and deleted.
    let mut tampered = value.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'Q' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let response = call(&mut server, "/read", Some(&format!("session={tampered}"))).await;
    assert_deletes_the_cookie(&response);
    let line = line_with(&logs, REFUSED);
    assert!(
        line.contains("DEBUG") && line.contains("authentication-failed"),
        "{line}"
    );
    assert!(line.contains(&len), "{line}");

    // Sealed under a key this server lacks (forgeable, or a server missing
    // a rotation's new key): INFO.
    logs.clear();
    let foreign_layer = SessionLayer::builder(KeyRing::new(common::key(8)))
        .build()
        .expect("layer");
    let foreign = cookie_pair(&call(&mut app(foreign_layer), "/login", None).await);
    logs.clear();
    call(&mut server, "/read", Some(&foreign)).await;
    let line = line_with(&logs, REFUSED);
    assert!(
        line.contains(" INFO ") && line.contains("unknown-key-id"),
        "{line}"
    );

    // Over this server's limits: INFO on each request, and kept (another
    // server's limits may be higher).
    let strict = SessionLayer::builder(fixed_ring())
        .limits(Limits::default().with_max_token_len(value.len() - 1))
        .build()
        .expect("layer");
    let mut strict = app(strict);
    for _ in 0..2 {
        assert_not_logged(&logs, &[&value, &tampered]);
        logs.clear();
        let response = call(&mut strict, "/read", Some(&pair)).await;
        assert!(set_cookie(&response).is_none(), "kept");
        let line = line_with(&logs, REFUSED);
        assert!(
            line.contains(" INFO ") && line.contains("limit-exceeded"),
            "{line}"
        );
    }

    // Revoked (by a logout, whose copy is then sent): INFO.
    assert_deletes_the_cookie(&call(&mut server, "/logout", Some(&pair)).await);
    assert_not_logged(&logs, &[&value]);
    logs.clear();
    let response = call(&mut server, "/read", Some(&pair)).await;
    assert_eq!(body_text(response).await, "");
    let line = line_with(&logs, REFUSED);
    assert_not_logged(&logs, &[&value]);
    assert!(
        line.contains(" INFO ") && line.contains("kind=\"revoked\"") && line.contains(&len),
        "{line}"
    );

    // Expired: DEBUG.
    let clock = common::clock();
    let layer = || {
        SessionLayer::builder(fixed_ring())
            .clock(clock.clone())
            .build()
            .expect("layer")
    };
    let pair = cookie_pair(&call(&mut app(layer()), "/login", None).await);
    clock.advance(layer().sealer().max_idle().expect("idle timeout").as_secs() + 1);
    logs.clear();
    let response = call(&mut app(layer()), "/read", Some(&pair)).await;
    assert_deletes_the_cookie(&response);
    let line = line_with(&logs, REFUSED);
    assert!(
        line.contains("DEBUG") && line.contains("expired-idle"),
        "{line}"
    );
    assert_not_logged(&logs, &[value_of(&pair)]);

    // Issued in this server's future (sealed under its key, by a server
    // whose clock runs ahead beyond the skew): WARN.
    let ahead = common::clock();
    let ahead_layer = SessionLayer::builder(fixed_ring())
        .clock(ahead.clone())
        .build()
        .expect("layer");
    let skew = ahead_layer.sealer().clock_skew().as_secs();
    ahead.advance(layer().sealer().now() - ahead_layer.sealer().now() + skew + 60);
    let from_the_future = cookie_pair(&call(&mut app(ahead_layer), "/login", None).await);
    logs.clear();
    call(&mut app(layer()), "/read", Some(&from_the_future)).await;
    let line = line_with(&logs, REFUSED);
    assert!(
        line.contains(" WARN ") && line.contains("issued-in-future"),
        "{line}"
    );
}

#[tokio::test]
async fn the_layers_max_cookies_tried_reaches_its_sealer() {
    let mut first = app(SessionLayer::builder(fixed_ring()).build().expect("layer"));
    let pair = cookie_pair(&call(&mut first, "/login", None).await);
    let behind_one = format!("session=bad; {pair}");
    for (max, user) in [(1, ""), (2, "ada")] {
        let layer = SessionLayer::builder(fixed_ring())
            .max_cookies_tried(max)
            .build()
            .expect("layer");
        let response = call(&mut app(layer), "/read", Some(&behind_one)).await;
        assert_eq!(body_text(response).await, user, "max {max}");
    }
}

#[tokio::test]
async fn a_browser_session_cookie_idles_out_after_the_layers_window_for_it() {
    use std::time::Duration;
    let clock = Arc::new(FixedClock::new(1_700_000_000));
    let layer = |f: fn(SessionLayerBuilder) -> SessionLayerBuilder| {
        let builder = SessionLayer::builder(fixed_ring())
            .clock(clock.clone())
            .persistent(false);
        app(f(builder).build().expect("layer"))
    };
    let mut short = layer(|b| b.browser_session_max_idle(Duration::from_secs(3600)));
    let mut long = layer(|b| b);
    let pair = cookie_pair(&call(&mut short, "/login", None).await);
    clock.advance(3600);
    assert_eq!(read_with_header(&mut short, pair.as_bytes()).await, "ada");
    clock.advance(1);
    assert_eq!(read_with_header(&mut short, pair.as_bytes()).await, "");
    assert_eq!(read_with_header(&mut long, pair.as_bytes()).await, "ada");
}

#[tokio::test]
async fn the_layer_builder_passes_time_and_randomness_settings_to_the_sealer() {
    use sealed_session::Clock as _;
    use std::time::Duration;
    let clock = Arc::new(FixedClock::new(1_700_000_000));
    let layer = |f: fn(SessionLayerBuilder) -> SessionLayerBuilder| {
        let builder = SessionLayer::builder(fixed_ring()).clock(clock.clone());
        app(f(builder).build().expect("layer"))
    };
    let mut writer = layer(|b| b);
    let pair = cookie_pair(&call(&mut writer, "/login", None).await);

    // A year later: only without both timeouts does the cookie open.
    clock.advance(365 * 24 * 3600);
    let mut timeless = layer(|b| b.no_idle_timeout().no_max_lifetime());
    let mut idle_only = layer(|b| b.no_max_lifetime());
    let mut lifetime_only = layer(|b| b.no_idle_timeout());
    assert_eq!(
        read_with_header(&mut timeless, pair.as_bytes()).await,
        "ada"
    );
    assert_eq!(read_with_header(&mut idle_only, pair.as_bytes()).await, "");
    assert_eq!(
        read_with_header(&mut lifetime_only, pair.as_bytes()).await,
        ""
    );

    // A cookie issued 30 s ahead of this server's clock opens within the
    // default skew (60 s), not with none.
    let pair = cookie_pair(&call(&mut writer, "/login", None).await);
    clock.set(clock.now() - 30);
    let mut no_skew = layer(|b| b.clock_skew(Duration::ZERO));
    assert_eq!(read_with_header(&mut writer, pair.as_bytes()).await, "ada");
    assert_eq!(read_with_header(&mut no_skew, pair.as_bytes()).await, "");
    // Not deleted: it opens on a server whose clock is not behind.
    let response = call(&mut no_skew, "/read", Some(&pair)).await;
    assert!(set_cookie(&response).is_none());

    // The random source draws the session's id and the seal's nonce: one
    // that gives the 16-byte id but no 24-byte nonce fails the login's
    // save, which loses its changes: an empty 500 by default.
    struct NoNonce;
    impl sealed_session::RandomSource for NoNonce {
        fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
            match buf.len() {
                16 => {
                    buf.fill(7);
                    Ok(())
                }
                _ => Err(Error::Random),
            }
        }
    }
    let mut broken = layer(|b| b.random(Arc::new(NoNonce)));
    let response = call(&mut broken, "/login", None).await;
    assert_bare_error(&response, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body_text(response).await, "");
}

/// A name so long that browsers would ignore even an empty session's
/// cookie (name and value over 4096 bytes) is refused when the layer is
/// built; one byte shorter, the empty session's cookie is exactly 4096
/// bytes of name and value. A sealer alone accepts the longer name, for
/// tokens used outside cookies.
#[test]
fn a_cookie_name_that_leaves_no_room_for_a_token_is_refused_by_the_layer() {
    use sealed_session::{CookieAction, InvalidCookie, Sealer, MAX_NAME_VALUE_LEN};
    let clock = common::clock();
    // Measured when a created-at takes its longest form (after 2106), as
    // the rule assumes: a name must leave room at any time.
    clock.set(1 << 32);
    let build = |name_len: usize| {
        SessionLayer::builder(fixed_ring())
            .cookie_name("n".repeat(name_len))
            .configure_sealer({
                let clock = clock.clone();
                move |b| b.clock(clock.clone()).budget(8192)
            })
            .build()
    };
    let empty_cookie = |sealer: &Sealer| {
        let mut session = sealer.new_session().unwrap();
        session.insert("k", 1u8).unwrap();
        session.remove("k");
        let saved = sealer.save(&mut session).unwrap();
        let CookieAction::Set(_) = &saved.action else {
            panic!("an empty session's cookie: {saved:?}");
        };
        saved.action.cookie_value().unwrap().to_owned()
    };
    let token_len = empty_cookie(build(2).unwrap().sealer()).len();
    let longest = build(MAX_NAME_VALUE_LEN - token_len).unwrap();
    let value = empty_cookie(longest.sealer());
    assert_eq!(
        MAX_NAME_VALUE_LEN - token_len + value.len(),
        MAX_NAME_VALUE_LEN
    );
    let too_long = build(MAX_NAME_VALUE_LEN + 1 - token_len).map(|_| ());
    assert_eq!(
        too_long,
        Err(Error::InvalidCookie(InvalidCookie::NameTooLong))
    );
    let sealer = Sealer::builder(fixed_ring())
        .cookie_name("n".repeat(MAX_NAME_VALUE_LEN + 1 - token_len))
        .build();
    assert!(sealer.is_ok());
}

fn unix(time: std::time::SystemTime) -> u64 {
    let since = time.duration_since(std::time::UNIX_EPOCH);
    since.expect("after 1970").as_secs()
}

/// Every read-only accessor of the handle, on one line.
async fn describe(session: &LazySession) -> Result<String, Error> {
    let at = session.expires_at().await?;
    let at_time = at.map(|unix| std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix));
    assert_eq!(session.expires_at_time().await?, at_time);
    // The seconds and the times agree (the line below prints the times).
    assert_eq!(
        session.created_at().await?,
        unix(session.created_at_time().await?)
    );
    assert_eq!(
        session.issued_at().await?,
        session.issued_at_time().await?.map(unix)
    );
    Ok(format!(
        "new={} modified={} len={} empty={} keys={:?} priorities={:?} has_a={} b={:?} \
         expiry={:?} age={:?} at={:?} created={} issued={:?} cookie_len={:?} rejected={:?}",
        session.is_new().await?,
        session.is_modified().await?,
        session.len().await?,
        session.is_empty().await?,
        session.keys().await?,
        session.keys_with_priority().await?,
        session.contains("a").await?,
        session.priority("b").await?,
        session.expiry().await?,
        session.expiry_age().await?.map(|age| age.as_secs()),
        at,
        unix(session.created_at_time().await?),
        session.issued_at_time().await?.map(unix),
        session.cookie_len().await?,
        session.rejected_cookie().await?.map(|e| e.kind()),
    ))
}

/// The handle's accessors pass the session's answers through: the same
/// facts, read through `LazySession`, as `Session` gives them (the
/// `Option` extractor included, which finds the layer's handle).
#[tokio::test]
async fn the_handle_answers_as_the_session_does() {
    const T0: u64 = 1_700_000_000;
    async fn edit(session: Option<LazySession>) -> Result<String, Error> {
        let session = session.expect("the layer wraps this route");
        session.insert("a", &1u8).await?;
        session.insert("b", &2u8).await?;
        let found = session.set_priority("b", Priority::Low).await?;
        let missing = session.set_priority("absent", Priority::Low).await?;
        session
            .set_expiry_in(std::time::Duration::from_secs(100))
            .await?;
        Ok(format!("{found} {missing} {}", describe(&session).await?))
    }
    async fn read(session: LazySession) -> Result<String, Error> {
        describe(&session).await
    }
    async fn clear(session: LazySession) -> Result<String, Error> {
        session.clear().await?;
        describe(&session).await
    }
    let layer = builder()
        .clock(Arc::new(FixedClock::new(T0)))
        .max_idle(std::time::Duration::from_secs(1000))
        .build()
        .expect("layer");
    let mut app = Router::new()
        .route("/edit", get(edit))
        .route("/read", get(read))
        .route("/clear", get(clear))
        .layer(layer);

    let fresh = call(&mut app, "/read", None).await;
    assert_eq!(
        body_text(fresh).await,
        "new=true modified=false len=0 empty=true keys=[] priorities=[] has_a=false b=None \
         expiry=Default age=Some(1000) at=Some(1700001000) created=1700000000 issued=None \
         cookie_len=None rejected=None"
    );

    let edited = call(&mut app, "/edit", None).await;
    let pair = cookie_pair(&edited);
    assert_eq!(
        body_text(edited).await,
        "true false new=true modified=true len=2 empty=false keys=[\"a\", \"b\"] \
         priorities=[(\"a\", Normal), (\"b\", Low)] has_a=true b=Some(Low) \
         expiry=At(1700000100) age=Some(100) at=Some(1700000100) created=1700000000 \
         issued=None cookie_len=None rejected=None"
    );

    let cookie_len = pair.len() - "session=".len();
    let reread = call(&mut app, "/read", Some(&pair)).await;
    assert_eq!(
        body_text(reread).await,
        format!(
            "new=false modified=false len=2 empty=false keys=[\"a\", \"b\"] \
             priorities=[(\"a\", Normal), (\"b\", Low)] has_a=true b=Some(Low) \
             expiry=At(1700000100) age=Some(100) at=Some(1700000100) created=1700000000 \
             issued=Some(1700000000) cookie_len=Some({cookie_len}) rejected=None"
        )
    );

    let bad = call(&mut app, "/read", Some("session=not-a-token")).await;
    assert!(body_text(bad)
        .await
        .ends_with("rejected=Some(\"malformed\")"));

    let cleared = call(&mut app, "/clear", Some(&pair)).await;
    assert_deletes_the_cookie(&cleared);
    assert!(body_text(cleared)
        .await
        .starts_with("new=false modified=true len=0 empty=true keys=[]"));
}

/// The layer's types show their configuration (the key ids, never keys)
/// and no session contents.
#[tokio::test]
async fn debug_shows_the_configuration_and_no_contents() {
    use tower_layer::Layer as _;
    async fn show(session: LazySession) -> Result<String, Error> {
        session.insert("user", "ada-lovelace").await?;
        Ok(format!("{session:?}"))
    }
    let ring = fixed_ring();
    let key_id = format!("{:?}", ring.primary_id());
    let builder = SessionLayer::builder(ring).cookie_name("sid");
    let shown = format!("{builder:?}");
    assert!(shown.starts_with("SessionLayerBuilder {"), "{shown}");
    assert!(
        shown.contains(&key_id) && shown.contains("\"sid\""),
        "{shown}"
    );
    let layer = builder.build().expect("layer");
    let shown = format!("{layer:?}");
    assert!(shown.starts_with("SessionLayer {"), "{shown}");
    assert!(shown.contains(&key_id), "{shown}");
    let service = layer.layer(tower::service_fn(|_: Request<Body>| async {
        Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
    }));
    let shown = format!("{service:?}");
    assert!(shown.starts_with("SessionService { inner: "), "{shown}");

    let mut app = Router::new().route("/show", get(show)).layer(layer);
    let shown = body_text(call(&mut app, "/show", None).await).await;
    assert_eq!(shown, "LazySession { .. }");
}

/// The layer is ready when, and only when, the service it wraps is.
#[tokio::test]
async fn readiness_is_the_inner_services() {
    use std::task::{Context, Poll};
    use tower_layer::Layer as _;
    #[derive(Clone)]
    struct Overloaded;
    impl tower_service::Service<Request<Body>> for Overloaded {
        type Response = Response<Body>;
        type Error = &'static str;
        type Future = std::future::Ready<Result<Response<Body>, &'static str>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Err("overloaded"))
        }
        fn call(&mut self, _: Request<Body>) -> Self::Future {
            std::future::ready(Ok(Response::new(Body::empty())))
        }
    }
    let mut service = builder().build().expect("layer").layer(Overloaded);
    let ready = std::future::poll_fn(|cx| service.poll_ready(cx)).await;
    assert_eq!(ready, Err("overloaded"));
}
