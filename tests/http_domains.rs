//! `SessionLayerBuilder::domains`: the cookie's `Domain` chosen by the
//! request's host, driven in process.
#![cfg(feature = "axum")]

use ::cookie::Cookie;
use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{header, Request, Response};
use sealed_session::http::{LazySession, SessionLayer, SessionLayerBuilder};
use sealed_session::{CookieSettings, Error, InvalidCookie, InvalidSetting, KeyRing, MasterKey};
use tower_service::Service as _;

async fn login(session: LazySession) -> Result<&'static str, Error> {
    session.insert("user", "ada").await?;
    Ok("ok")
}

async fn whoami(session: LazySession) -> Result<String, Error> {
    Ok(session.get::<String>("user").await?.unwrap_or_default())
}

async fn rename(session: LazySession) -> Result<&'static str, Error> {
    session.insert("user", "grace").await?;
    Ok("ok")
}

async fn logout(session: LazySession) -> Result<&'static str, Error> {
    session.flush().await?;
    Ok("bye")
}

fn app(layer: SessionLayer) -> Router {
    Router::new()
        .route("/login", get(login))
        .route("/whoami", get(whoami))
        .route("/logout", get(logout))
        .route("/rename", get(rename))
        .layer(layer)
}

fn builder() -> SessionLayerBuilder {
    SessionLayer::builder(KeyRing::new(MasterKey::generate().expect("key")))
}

/// `uri` is a path (the host then from `host`) or an absolute URI, as
/// HTTP/2 requests carry theirs.
async fn call(
    app: &mut Router,
    uri: &str,
    host: Option<&str>,
    cookie: Option<&str>,
) -> Response<Body> {
    let mut request = Request::builder().uri(uri);
    if let Some(host) = host {
        request = request.header(header::HOST, host);
    }
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    app.call(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible")
}

fn set_cookies(response: &Response<Body>) -> Vec<Cookie<'static>> {
    let values = response.headers().get_all(header::SET_COOKIE);
    values
        .iter()
        .map(|v| Cookie::parse(v.to_str().expect("ascii").to_owned()).expect("cookie"))
        .collect()
}

/// The `Domain` of the one cookie `response` sets.
fn domain(response: &Response<Body>) -> Option<String> {
    let cookies = set_cookies(response);
    assert_eq!(cookies.len(), 1, "one Set-Cookie");
    cookies[0].domain().map(str::to_owned)
}

/// A host that is a listed domain or under one gets that domain (in any
/// case, with or without port or final dot); others, including a name
/// that only ends with the same letters, get a host-only cookie.
#[tokio::test]
async fn the_domain_follows_the_request_host() {
    let layer = builder()
        .domains(["example.com", ".Example.ORG", "example.org"])
        .build()
        .expect("layer");
    let mut app = app(layer);
    for (host, expected) in [
        ("example.com", Some("example.com")),
        ("www.example.com", Some("example.com")),
        ("WWW.EXAMPLE.COM:8443", Some("example.com")),
        ("www.example.com.", Some("example.com")),
        ("eu.shop.example.com", Some("example.com")),
        ("a.b.example.org:80", Some("Example.ORG")),
        ("notexample.com", None),
        ("example.com.evil", None),
        ("com", None),
        ("127.0.0.1:3000", None),
        ("[::1]:3000", None),
        ("", None),
    ] {
        let response = call(&mut app, "/login", Some(host), None).await;
        assert_eq!(domain(&response).as_deref(), expected, "Host: {host}");
    }
    let response = call(&mut app, "/login", None, None).await;
    assert_eq!(domain(&response), None, "no Host");
}

/// An HTTP/2 request's authority is in its URI, which wins over a `Host`
/// header.
#[tokio::test]
async fn the_uri_host_comes_before_the_host_header() {
    let mut app = app(builder().domains(["example.org"]).build().expect("layer"));
    let uri = "https://www.example.org/login";
    let response = call(&mut app, uri, Some("example.net"), None).await;
    assert_eq!(domain(&response).as_deref(), Some("example.org"));
    let uri = "https://example.net/login";
    let response = call(&mut app, uri, Some("www.example.org"), None).await;
    assert_eq!(domain(&response), None);
}

/// Hosts under none of the domains get `domain`'s, when one is set.
#[tokio::test]
async fn other_hosts_get_the_layer_domain() {
    let layer = builder()
        .domain("example.net")
        .domains(["example.org"])
        .build()
        .expect("layer");
    let mut app = app(layer);
    let response = call(&mut app, "/login", Some("a.example.net"), None).await;
    assert_eq!(domain(&response).as_deref(), Some("example.net"));
    let response = call(&mut app, "/login", Some("a.example.org"), None).await;
    assert_eq!(domain(&response).as_deref(), Some("example.org"));
}

/// A session opens on every domain; a logout's deletion carries the
/// request host's domain, as does the deletion of a previous name's
/// cookie that had the layer's settings (one with settings of its own
/// keeps those).
#[tokio::test]
async fn sessions_and_deletions_follow_the_domain() {
    let key = MasterKey::generate().expect("key").to_base64();
    let ring = || KeyRing::new(MasterKey::from_base64(&key).expect("key"));
    let layer = SessionLayer::builder(ring())
        .domains(["example.com", "example.org"])
        .previous_cookie_name("old")
        .build()
        .expect("layer");
    let mut new_app = app(layer.clone());
    let response = call(&mut new_app, "/login", Some("www.example.com"), None).await;
    let pair = set_cookies(&response)[0].stripped().to_string();
    let response = call(&mut new_app, "/whoami", Some("example.org"), Some(&pair)).await;
    let body = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .expect("body");
    assert_eq!(&body[..], b"ada");

    let response = call(
        &mut new_app,
        "/logout",
        Some("shop.example.org"),
        Some(&pair),
    )
    .await;
    let deletion = &set_cookies(&response)[1];
    assert_eq!(deletion.value(), "");
    assert_eq!(deletion.domain(), Some("example.org"));

    let old_layer = SessionLayer::builder(ring()).cookie_name("old");
    let mut old_app = app(old_layer.build().expect("old layer"));
    let response = call(&mut old_app, "/login", None, None).await;
    let old = set_cookies(&response)[0].stripped().to_string();
    let response = call(&mut new_app, "/whoami", Some("www.example.com"), Some(&old)).await;
    let cookies = set_cookies(&response);
    assert_eq!(
        cookies.len(),
        2,
        "the session under the new name and the old one's deletion"
    );
    assert_eq!(cookies[1].name(), "old");
    assert_eq!(cookies[1].value(), "");
    assert_eq!(cookies[1].domain(), Some("example.com"));
    let removal = layer
        .sealer_for_host("example.org")
        .previous_cookie_removal();
    assert!(removal.expect("removal").contains("Domain=example.org"));

    let own = CookieSettings::default().with_path("/old");
    let layer = builder()
        .domains(["example.com"])
        .previous_cookie("old", own)
        .build()
        .expect("layer");
    let removal = layer
        .sealer_for_host("example.com")
        .previous_cookie_removal();
    let removal = Cookie::parse(removal.expect("removal")).expect("cookie");
    assert_eq!((removal.path(), removal.domain()), (Some("/old"), None));
}

/// The `__Host-` prefix forbids `Domain`: the list is ignored, as
/// `domain` is.
#[tokio::test]
async fn the_host_prefix_ignores_the_domains() {
    let layer = builder()
        .host_prefix(true)
        .domains(["example.com"])
        .build()
        .expect("layer");
    let mut app = app(layer);
    let response = call(&mut app, "/login", Some("www.example.com"), None).await;
    assert_eq!(domain(&response), None);
}

/// Each domain is checked as `domain`'s is; a budget too small for a
/// cookie under the longest domain is refused at build.
#[test]
fn each_domain_is_checked() {
    let result = builder().domains(["example.com", "bad domain"]).build();
    assert_eq!(
        result.err(),
        Some(Error::InvalidCookie(InvalidCookie::Domain))
    );
    let long = format!("{}.example.com", "a".repeat(1100));
    let result = builder().domains([long.as_str()]).build();
    assert_eq!(
        result.err(),
        Some(Error::InvalidCookie(InvalidCookie::Domain))
    );
    let fits = builder().budget(400).build();
    assert!(fits.is_ok(), "{fits:?}");
    let long = format!("{}.example.com", "a".repeat(200));
    let result = builder().budget(400).domains([long.as_str()]).build();
    assert!(matches!(result, Err(Error::TooLarge { .. })), "{result:?}");
}

/// A listed domain under another, or under the layer's own domain, is
/// refused: the browser would send the older of the two cookies first.
#[test]
fn nested_domains_are_refused() {
    let nested = Some(Error::InvalidSetting(InvalidSetting::NestedDomains));
    let result = builder()
        .domains(["example.com", "shop.Example.com"])
        .build();
    assert_eq!(result.err(), nested);
    let result = builder()
        .domains(["shop.example.com", ".example.com"])
        .build();
    assert_eq!(result.err(), nested);
    let result = builder()
        .domain("example.com")
        .domains(["a.example.com"])
        .build();
    assert_eq!(result.err(), nested);
    let result = builder()
        .domain("a.example.com")
        .domains(["example.com"])
        .build();
    assert_eq!(result.err(), nested);
    let result = builder()
        .domain("example.com")
        .domains(["example.com"])
        .build();
    assert_eq!(result.err(), nested);
    let apart = builder()
        .domain("example.net")
        .domains(["example.com", "notexample.com", ".EXAMPLE.com"])
        .build();
    assert!(apart.is_ok(), "{apart:?}");
}

/// Turning `domains` on for a deployed host-only cookie: the browser
/// sends the old cookie first, so a response that sets or deletes the
/// domain's cookie for a request with a cookie of the session's name also
/// deletes a host-only one; the next request finds the change.
#[tokio::test]
async fn a_host_only_cookie_from_before_is_deleted() {
    let key = MasterKey::generate().expect("key").to_base64();
    let ring = || KeyRing::new(MasterKey::from_base64(&key).expect("key"));
    let mut before = app(SessionLayer::builder(ring()).build().expect("layer"));
    let mut after = app(SessionLayer::builder(ring())
        .domains(["example.com"])
        .build()
        .expect("layer"));
    let host = Some("www.example.com");
    let old = set_cookies(&call(&mut before, "/login", host, None).await)[0]
        .stripped()
        .to_string();

    // Read only: nothing is set, so nothing is deleted.
    let response = call(&mut after, "/whoami", host, Some(&old)).await;
    assert!(set_cookies(&response).is_empty());

    let response = call(&mut after, "/rename", host, Some(&old)).await;
    let cookies = set_cookies(&response);
    assert_eq!(
        cookies.len(),
        2,
        "the old cookie's deletion and the session"
    );
    // The deletion first: a jar that keys cookies by name, domain and
    // path alone must not apply it to the new cookie.
    assert_eq!((cookies[0].name(), cookies[0].value()), ("session", ""));
    assert_eq!((cookies[0].domain(), cookies[0].path()), (None, Some("/")));
    assert_eq!(cookies[1].domain(), Some("example.com"));
    let removal = response.headers().get(header::SET_COOKIE);
    let removal_len = removal.expect("removal").len();
    assert!(removal_len <= 100, "{removal_len} bytes");
    let new = cookies[1].stripped().to_string();
    let response = call(&mut after, "/whoami", host, Some(&new)).await;
    assert_eq!(body(response).await, "grace");

    // A logout deletes both; a request without a cookie deletes nothing
    // it did not see.
    let both = format!("{old}; {new}");
    let cookies = set_cookies(&call(&mut after, "/logout", host, Some(&both)).await);
    let deleted: Vec<_> = cookies.iter().map(|c| (c.value(), c.domain())).collect();
    assert_eq!(deleted, [("", None), ("", Some("example.com"))]);
    let cookies = set_cookies(&call(&mut after, "/login", host, None).await);
    assert_eq!(cookies.len(), 1);
    // A host under no listed domain has host-only cookies of its own.
    let other = Some("example.net");
    let cookies = set_cookies(&call(&mut after, "/rename", other, Some(&old)).await);
    assert_eq!(cookies.len(), 1);
    assert_eq!(cookies[0].domain(), None);
}

async fn body(response: Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .expect("body");
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

/// A `__Host-` name given as it is (without `host_prefix`) ignores the
/// domains too: its cookie is host-only, and no host-only deletion
/// follows it.
#[tokio::test]
async fn a_host_prefixed_name_ignores_the_domains() {
    let layer = builder()
        .cookie_name("__Host-session")
        .domains(["example.com"])
        .build()
        .expect("layer");
    let mut app = app(layer);
    let host = Some("www.example.com");
    let response = call(&mut app, "/login", host, None).await;
    let pair = set_cookies(&response)[0].stripped().to_string();
    let response = call(&mut app, "/rename", host, Some(&pair)).await;
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 1, "the session alone");
    assert_eq!(
        (cookies[0].domain(), cookies[0].value().is_empty()),
        (None, false)
    );
}
