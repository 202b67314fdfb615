//! The example web app's router on a free loopback port, driven by a real
//! HTTP client that keeps cookies, and by headless Chromium
//! (`tests/browser/drive.mjs`).
#![cfg(feature = "axum")]

#[allow(dead_code)]
#[path = "../examples/webapp/app.rs"]
mod app;
mod common;

use common::Logs;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ::cookie::{Cookie, SameSite};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{redirect, Client, StatusCode, Url};
use sealed_session::{Clock, FixedClock, KeyRing, MasterKey, SystemClock};

/// The example app serving on 127.0.0.1 and a free port; stopped on drop.
struct Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(router: axum::Router) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        Server { addr, task }
    }

    /// The example app with `ring` and the app's own settings.
    async fn app(demo: &app::Demo, ring: KeyRing) -> Server {
        let layer = demo.layer(ring).build().expect("layer");
        Server::start(demo.router(layer)).await
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{path}", self.addr)).expect("url")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A client with a cookie jar that does not follow redirects (so each
/// response's `Set-Cookie` can be inspected).
fn client() -> (Client, Arc<Jar>) {
    let jar = Arc::new(Jar::default());
    let client = Client::builder()
        .cookie_provider(Arc::clone(&jar))
        .redirect(redirect::Policy::none())
        .build()
        .expect("client");
    (client, jar)
}

/// A client without cookies, for hand-made `Cookie` headers.
fn bare_client() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .expect("client")
}

struct Page {
    status: StatusCode,
    set_cookie: Vec<String>,
    body: String,
}

async fn read(response: reqwest::Response) -> Page {
    let status = response.status();
    let set_cookie = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii Set-Cookie").to_owned())
        .collect();
    let body = response.text().await.expect("body");
    Page {
        status,
        set_cookie,
        body,
    }
}

async fn get(client: &Client, server: &Server, path: &str) -> Page {
    read(client.get(server.url(path)).send().await.expect("GET")).await
}

async fn post(client: &Client, server: &Server, path: &str, form: &[(&str, &str)]) -> Page {
    read(
        client
            .post(server.url(path))
            .form(form)
            .send()
            .await
            .expect("POST"),
    )
    .await
}

async fn login(client: &Client, server: &Server, user: &str) -> Page {
    let page = post(
        client,
        server,
        "/login",
        &[("username", user), ("password", app::DEMO_PASSWORD)],
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    page
}

/// A client with its own cookie jar, signed in as `user`.
async fn logged_in(server: &Server, user: &str) -> (Client, Arc<Jar>) {
    let (client, jar) = client();
    login(&client, server, user).await;
    (client, jar)
}

/// Adds a cart line; the app answers with a redirect.
async fn add_to_cart(client: &Client, server: &Server, sku: &str, qty: &str, note: &str) -> Page {
    let form = [("sku", sku), ("qty", qty), ("note", note)];
    let page = post(client, server, "/cart/add", &form).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    page
}

/// Chooses the dark theme and French; the app answers with a redirect.
async fn set_dark_french(client: &Client, server: &Server) -> Page {
    let form = [("theme", "dark"), ("language", "fr")];
    let page = post(client, server, "/preferences", &form).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    page
}

/// `GET path` with a hand-made `Cookie` header and no jar.
async fn get_with_cookie(server: &Server, path: &str, cookie: &str) -> Page {
    let request = bare_client().get(server.url(path)).header(COOKIE, cookie);
    read(request.send().await.expect("GET")).await
}

fn signed_in_as(page: &Page, user: &str) -> bool {
    page.body
        .contains(&format!("Signed in as <strong>{user}</strong>"))
}

/// The session cookie's value in the jar.
fn jar_cookie(jar: &Jar, server: &Server) -> Option<String> {
    let header = jar.cookies(&server.url("/"))?;
    Cookie::split_parse(header.to_str().ok()?.to_owned())
        .flatten()
        .find(|c| c.name() == app::COOKIE_NAME)
        .map(|c| c.value().to_owned())
}

fn set_jar_cookie(jar: &Jar, server: &Server, value: &str) {
    jar.add_cookie_str(
        &format!("{}={value}; Path=/", app::COOKIE_NAME),
        &server.url("/"),
    );
    assert_eq!(jar_cookie(jar, server).as_deref(), Some(value));
}

fn new_ring() -> KeyRing {
    KeyRing::new(MasterKey::generate().expect("key"))
}

fn system_demo() -> app::Demo {
    app::Demo::new(Arc::new(SystemClock))
}

/// Changes one character in the middle of a token (the ciphertext).
fn tamper(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[tokio::test]
async fn login_sets_the_cookie_with_secure_attributes() {
    let demo = system_demo();
    let server = Server::app(&demo, new_ring()).await;
    let (client, jar) = client();

    let page = get(&client, &server, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Not signed in"));
    assert!(
        page.set_cookie.is_empty(),
        "an untouched new session sets no cookie"
    );

    let wrong = post(
        &client,
        &server,
        "/login",
        &[("username", "ada"), ("password", "nope")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.set_cookie.is_empty());

    let page = login(&client, &server, "ada").await;
    assert_eq!(page.set_cookie.len(), 1);
    let cookie = Cookie::parse(page.set_cookie[0].clone()).expect("valid Set-Cookie");
    assert_eq!(cookie.name(), app::COOKIE_NAME);
    assert!(!cookie.value().is_empty());
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(cookie.same_site(), Some(SameSite::Lax));
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(cookie.domain(), None);
    assert_eq!(cookie.partitioned(), None);
    // Persistent: Max-Age is the idle timeout (shorter than the lifetime).
    let max_age = cookie.max_age().expect("Max-Age").whole_seconds();
    assert_eq!(max_age, app::MAX_IDLE.as_secs() as i64);

    // The client stored it (Secure cookies are kept on loopback) and sends it.
    assert_eq!(jar_cookie(&jar, &server).as_deref(), Some(cookie.value()));
    let page = get(&client, &server, "/").await;
    assert!(signed_in_as(&page, "ada"), "{}", page.body);
    assert!(
        page.set_cookie.is_empty(),
        "an unchanged session adds no header"
    );
}

#[tokio::test]
async fn the_cart_survives_requests() {
    let demo = system_demo();
    let server = Server::app(&demo, new_ring()).await;
    let (client, _jar) = client();

    // A cart needs no login.
    for (sku, qty) in [("apple", "3"), ("pear", "1")] {
        let page = add_to_cart(&client, &server, sku, qty, "").await;
        assert_eq!(page.set_cookie.len(), 1);
    }
    for _ in 0..3 {
        let page = get(&client, &server, "/cart").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("2 line(s), 0 dropped."), "{}", page.body);
        assert!(page.body.contains("<td>apple</td><td>3</td>"));
        assert!(page.body.contains("<td>pear</td><td>1</td>"));
        assert!(page.set_cookie.is_empty());
    }
    // Logging in keeps the cart (new id, same data).
    login(&client, &server, "bo").await;
    let page = get(&client, &server, "/cart").await;
    assert!(page.body.contains("2 line(s), 0 dropped."));

    // Another client has its own, empty cart.
    let (other, _) = self::client();
    let page = get(&other, &server, "/cart").await;
    assert!(page.body.contains("0 line(s), 0 dropped."));

    let page = post(&client, &server, "/cart/clear", &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = get(&client, &server, "/cart").await;
    assert!(page.body.contains("0 line(s), 0 dropped."));
    assert!(signed_in_as(&page, "bo"));
}

#[tokio::test]
async fn logging_in_as_another_user_keeps_nothing_of_the_previous_one() {
    let demo = system_demo();
    let server = Server::app(&demo, new_ring()).await;
    let (client, jar) = logged_in(&server, "ada").await;
    add_to_cart(&client, &server, "apple", "3", "").await;
    let first_cookie = jar_cookie(&jar, &server).expect("cookie");

    // The same user again keeps the cart (only the id changes), and a copy
    // of the cookie from before no longer opens.
    login(&client, &server, "ada").await;
    let page = get(&client, &server, "/cart").await;
    assert!(signed_in_as(&page, "ada"));
    assert!(page.body.contains("1 line(s), 0 dropped."), "{}", page.body);
    let second_cookie = jar_cookie(&jar, &server).expect("cookie");
    assert!(!opens_as(&server, &first_cookie, "ada").await);
    assert!(opens_as(&server, &second_cookie, "ada").await);

    // Someone else on the same browser, without logging out first.
    login(&client, &server, "bo").await;
    let page = get(&client, &server, "/cart").await;
    assert!(signed_in_as(&page, "bo"));
    assert!(page.body.contains("0 line(s), 0 dropped."), "{}", page.body);
    assert!(!opens_as(&server, &second_cookie, "ada").await);
}

#[tokio::test]
async fn logging_out_the_other_devices_keeps_this_one() {
    let demo = system_demo();
    let server = Server::app(&demo, new_ring()).await;
    let (laptop, _) = logged_in(&server, "ada").await;
    let (phone, phone_jar) = logged_in(&server, "ada").await;
    let (other_user, _) = logged_in(&server, "bo").await;
    let before = jar_cookie(&phone_jar, &server).expect("cookie");
    let home = get(&phone, &server, "/").await;
    assert!(home.body.contains("action=/logout-others"), "{}", home.body);

    // The password is asked again: a wrong one changes nothing.
    let wrong = post(&phone, &server, "/logout-others", &[("password", "guess")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(signed_in_as(&get(&laptop, &server, "/").await, "ada"));

    let done = post(
        &phone,
        &server,
        "/logout-others",
        &[("password", app::DEMO_PASSWORD)],
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    // The phone stays in under a new cookie; the laptop, and a copy of the
    // phone's old cookie, are out; another user is not touched.
    assert!(signed_in_as(&get(&phone, &server, "/").await, "ada"));
    assert_ne!(jar_cookie(&phone_jar, &server).as_deref(), Some(&*before));
    assert!(!signed_in_as(&get(&laptop, &server, "/").await, "ada"));
    assert!(!opens_as(&server, &before, "ada").await);
    assert!(signed_in_as(&get(&other_user, &server, "/").await, "bo"));
}

/// Whether a request carrying only `cookie` is signed in as `user` (the
/// page loads either way).
async fn opens_as(server: &Server, cookie: &str, user: &str) -> bool {
    let page = get_with_cookie(server, "/", &format!("{}={cookie}", app::COOKIE_NAME)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    signed_in_as(&page, user)
}

#[tokio::test]
async fn cross_site_form_posts_are_refused() {
    let demo = system_demo();
    let server = Server::app(&demo, new_ring()).await;
    let (client, jar) = client();
    let form = [("username", "mallory"), ("password", app::DEMO_PASSWORD)];
    let own_origin = format!("http://{}", server.addr);
    let other_scheme = format!("evil://{}", server.addr);
    for (header, value, allowed) in [
        ("sec-fetch-site", "cross-site", false),
        ("sec-fetch-site", "same-site", false),
        ("origin", "http://attacker.invalid", false),
        ("origin", "null", false),
        ("origin", other_scheme.as_str(), false),
        ("sec-fetch-site", "same-origin", true),
        ("origin", own_origin.as_str(), true),
    ] {
        let response = client
            .post(server.url("/login"))
            .header(header, value)
            .form(&form)
            .send()
            .await
            .expect("POST");
        let page = read(response).await;
        if allowed {
            assert_eq!(page.status, StatusCode::SEE_OTHER, "{header}: {value}");
            assert_eq!(page.set_cookie.len(), 1, "{header}: {value}");
        } else {
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{header}: {value}");
            assert!(page.set_cookie.is_empty(), "{header}: {value}");
            assert!(jar_cookie(&jar, &server).is_none(), "{header}: {value}");
        }
    }
}

#[tokio::test]
async fn logout_ends_the_session_for_that_client() {
    let (logs, _guard) = Logs::capture(tracing::Level::TRACE);
    let demo = system_demo();
    let server = Server::app(&demo, new_ring()).await;
    let (client, jar) = logged_in(&server, "cy").await;
    let before = jar_cookie(&jar, &server).expect("session cookie");

    let page = post(&client, &server, "/logout", &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.set_cookie.len(), 1);
    let removal = Cookie::parse(page.set_cookie[0].clone()).expect("valid Set-Cookie");
    assert_eq!(removal.name(), app::COOKIE_NAME);
    assert_eq!(removal.value(), "");
    assert_eq!(removal.max_age().map(|d| d.whole_seconds()), Some(0));
    assert_eq!(removal.path(), Some("/"));

    assert_eq!(
        jar_cookie(&jar, &server),
        None,
        "the client dropped the cookie"
    );
    let page = get(&client, &server, "/").await;
    assert!(page.body.contains("Not signed in"));

    // A copy of the old cookie was revoked at logout.
    let page = get_with_cookie(&server, "/", &format!("{}={before}", app::COOKIE_NAME)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Not signed in"));
    let logs = logs.text();
    assert!(
        logs.contains("event=\"cookie-refused\"") && logs.contains("kind=\"revoked\""),
        "{logs}"
    );
    assert!(!logs.contains(&before));
}

/// The response's one `Set-Cookie` removes the session cookie.
fn assert_deletes_the_cookie(page: &Page) {
    assert_eq!(page.set_cookie.len(), 1, "{:?}", page.set_cookie);
    let removal = Cookie::parse(page.set_cookie[0].clone()).expect("Set-Cookie");
    assert_eq!(removal.name(), app::COOKIE_NAME);
    assert_eq!(removal.value(), "");
    assert_eq!(removal.max_age().map(|d| d.whole_seconds()), Some(0));
}

#[tokio::test]
async fn a_tampered_cookie_is_ignored_and_never_logged() {
    let (logs, _guard) = Logs::capture(tracing::Level::TRACE);
    let demo = system_demo();
    let server = Server::app(&demo, new_ring()).await;
    let (client, jar) = logged_in(&server, "di").await;
    let original = jar_cookie(&jar, &server).expect("session cookie");
    let tampered = tamper(&original);
    set_jar_cookie(&jar, &server, &tampered);

    let page = get(&client, &server, "/session").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("ignored: authentication-failed"),
        "{}",
        page.body
    );
    // The fresh session stayed empty, so the bad cookie is deleted (as
    // Django does) and is not tried again.
    assert_deletes_the_cookie(&page);
    assert_eq!(jar_cookie(&jar, &server), None);
    let page = get(&client, &server, "/").await;
    assert!(page.body.contains("Not signed in"), "{}", page.body);
    assert!(page.set_cookie.is_empty(), "no cookie, nothing to delete");

    // Garbage that is not even base64: the same, as "malformed".
    set_jar_cookie(&jar, &server, "%%not-a-token%%");
    let page = get(&client, &server, "/session").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ignored: malformed"), "{}", page.body);
    assert_deletes_the_cookie(&page);

    let logs = logs.text();
    assert!(logs.contains("session cookie not opened"), "{logs}");
    assert!(logs.contains("authentication-failed"), "{logs}");
    for value in [&original, &tampered] {
        assert!(!logs.contains(&value[10..40]), "a cookie value was logged");
    }
    assert!(!logs.contains("not-a-token"), "a cookie value was logged");
}

#[tokio::test]
async fn an_expired_cookie_is_ignored() {
    let (logs, _guard) = Logs::capture(tracing::Level::TRACE);
    let clock = Arc::new(FixedClock::new(SystemClock.now()));
    let demo = app::Demo::new(clock.clone());
    let server = Server::app(&demo, new_ring()).await;
    let (client, jar) = logged_in(&server, "eve").await;
    // Late in the idle window a read re-seals the cookie (sliding refresh).
    clock.advance(app::MAX_IDLE.as_secs() - 60);
    let page = get(&client, &server, "/").await;
    assert!(signed_in_as(&page, "eve"));
    assert_eq!(page.set_cookie.len(), 1, "sliding refresh");

    // Past the idle timeout by the server's clock (the client still has
    // the cookie: its Max-Age counts from when it was received).
    clock.advance(app::MAX_IDLE.as_secs() + 1);
    assert!(jar_cookie(&jar, &server).is_some());
    let page = get(&client, &server, "/session").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Your session expired (expired-idle)"),
        "{}",
        page.body
    );
    assert_deletes_the_cookie(&page);
    let page = get(&client, &server, "/").await;
    assert!(page.body.contains("Not signed in"));
    let logs = logs.text();
    assert!(
        logs.contains("event=\"cookie-refused\"") && logs.contains("kind=\"expired-idle\""),
        "{logs}"
    );

    // Logging in again works.
    login(&client, &server, "eve").await;
    assert!(signed_in_as(&get(&client, &server, "/").await, "eve"));
}

#[tokio::test]
async fn a_restart_with_a_new_primary_key_keeps_the_user_logged_in() {
    let old = MasterKey::generate().expect("key");
    let old_text = old.to_base64();
    let old_id = old.key_id();
    let new = MasterKey::generate().expect("key");
    let new_text = new.to_base64();
    let new_id = new.key_id();
    let (client, jar) = client();

    let first = Server::app(&system_demo(), KeyRing::new(old)).await;
    login(&client, &first, "flo").await;
    let sealed_old = jar_cookie(&jar, &first).expect("session cookie");
    let header = sealed_session::token::inspect(&sealed_old)
        .expect("token")
        .header;
    assert_eq!(header.key_id, old_id);
    drop(first);

    // Restarted with a new primary key and the old one as fallback.
    let ring = KeyRing::with_fallbacks(
        MasterKey::from_base64(&new_text).expect("key"),
        [MasterKey::from_base64(&old_text).expect("key")],
    )
    .expect("ring");
    let second = Server::app(&system_demo(), ring).await;
    let page = get(&client, &second, "/").await;
    assert!(signed_in_as(&page, "flo"), "{}", page.body);
    assert_eq!(page.set_cookie.len(), 1, "re-issued under the new key");
    let sealed_new = jar_cookie(&jar, &second).expect("session cookie");
    assert_ne!(sealed_new, sealed_old);
    let header = sealed_session::token::inspect(&sealed_new)
        .expect("token")
        .header;
    assert_eq!(header.key_id, new_id);
    let page = get(&client, &second, "/").await;
    assert!(signed_in_as(&page, "flo"));
    assert!(
        page.set_cookie.is_empty(),
        "no re-issue once under the primary"
    );
    drop(second);

    // Without the old key the re-issued cookie still opens.
    let third = Server::app(
        &system_demo(),
        KeyRing::new(MasterKey::from_base64(&new_text).expect("key")),
    )
    .await;
    assert!(signed_in_as(&get(&client, &third, "/").await, "flo"));
}

/// Text that does not compress: hex of a simple generator.
fn noise(seed: u64, chars: usize) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = String::with_capacity(chars);
    while out.len() < chars {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push_str(&format!("{x:016x}"));
    }
    out.truncate(chars);
    out
}

#[tokio::test]
async fn an_oversized_cart_degrades_instead_of_failing() {
    let (logs, _guard) = Logs::capture(tracing::Level::TRACE);
    let demo = system_demo();
    let server = Server::app(&demo, new_ring()).await;
    let (client, _jar) = logged_in(&server, "gus").await;
    set_dark_french(&client, &server).await;

    let lines = 12;
    for i in 0..lines {
        let sku = format!("sku-{i}");
        let note = noise(i, 600);
        let page = add_to_cart(&client, &server, &sku, "1", &note).await;
        assert_eq!(page.set_cookie.len(), 1, "line {i}");
        let header_len = "Set-Cookie: ".len() + page.set_cookie[0].len();
        assert!(header_len <= sealed_session::DEFAULT_BUDGET, "{header_len}");
    }

    // 12 lines of 600 bytes cannot fit in 4096: some were dropped, the
    // user, preferences and the cart's index were not.
    let page = get(&client, &server, "/cart").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(signed_in_as(&page, "gus"));
    assert!(
        page.body.contains(&format!("{lines} line(s)")),
        "{}",
        page.body
    );
    let dropped = page.body.matches("<tr class=dropped>").count();
    assert!(dropped > 0 && dropped < lines as usize, "{dropped} dropped");
    assert!(page.body.contains("<html lang=\"fr\">"), "preferences kept");
    // The adds that dropped a line said so (`preview_save`), once per
    // line: the lines the notices name are exactly those the cart shows
    // as dropped, the room the notices themselves take included.
    let line_ids = |marker: &str, end: char| {
        let mut ids: Vec<&str> = (page.body.split(marker).skip(1))
            .map(|rest| rest.split(end).next().expect("a line id"))
            .collect();
        ids.sort_unstable();
        ids
    };
    let noticed = line_ids("<p class=notice>Line ", ' ');
    let shown_dropped = line_ids("<tr class=dropped><td>", '<');
    assert_eq!(noticed, shown_dropped, "{}", page.body);
    let again = get(&client, &server, "/cart").await;
    assert!(!again.body.contains("class=notice"), "{}", again.body);

    let page = get(&client, &server, "/session").await;
    assert_eq!(
        page.body.matches("<li class=dropped>cart line").count(),
        dropped
    );
    let len: usize = page
        .body
        .split("<strong id=cookie-len>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .and_then(|n| n.parse().ok())
        .expect("cookie size shown");
    assert!(len > 2000 && len < sealed_session::DEFAULT_BUDGET, "{len}");

    // The app's report hook saw the drops (and logs the keys, not the
    // path, which the request's span carries if the app wants it).
    let reported = logs
        .text()
        .lines()
        .find(|line| line.contains("cart lines dropped to fit the cookie"))
        .map(str::to_owned)
        .expect("the report hook logged");
    assert!(reported.contains("keys=[\"cart:"), "{reported}");
    assert!(!reported.contains("/cart/add"), "{reported}");
}

#[tokio::test]
async fn of_several_session_cookies_the_first_that_opens_wins() {
    let demo = system_demo();
    let server = Server::app(&demo, new_ring()).await;
    let mut tokens = Vec::new();
    for user in ["hal", "ivy"] {
        let (_client, jar) = logged_in(&server, user).await;
        tokens.push(jar_cookie(&jar, &server).expect("session cookie"));
    }
    let name = app::COOKIE_NAME;
    let send = |cookie: String| {
        let server = &server;
        async move { get_with_cookie(server, "/", &cookie).await }
    };

    let page = send(format!("{name}={}; {name}={}", tokens[0], tokens[1])).await;
    assert!(signed_in_as(&page, "hal"));
    let page = send(format!("{name}={}; {name}={}", tokens[1], tokens[0])).await;
    assert!(signed_in_as(&page, "ivy"));
    // A planted or stale cookie before the real one does not log out.
    let page = send(format!(
        "{name}={}; other=1; {name}={}",
        tamper(&tokens[0]),
        tokens[1]
    ))
    .await;
    assert!(signed_in_as(&page, "ivy"));
    // At most four candidates are opened.
    let junk = format!("{name}=x; ").repeat(4);
    let page = send(format!("{junk}{name}={}", tokens[0])).await;
    assert!(page.body.contains("Not signed in"));
    let junk = format!("{name}=x; ").repeat(3);
    let page = send(format!("{junk}{name}={}", tokens[0])).await;
    assert!(signed_in_as(&page, "hal"));
}

#[tokio::test]
async fn a_failed_save_is_reported_and_keeps_the_previous_cookie() {
    let (logs, _guard) = Logs::capture(tracing::Level::TRACE);
    let demo = system_demo();
    let failures = Arc::new(AtomicUsize::new(0));
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let layer = {
        let failures = Arc::clone(&failures);
        let kinds = Arc::clone(&kinds);
        demo.layer(new_ring())
            .budget(250)
            .on_save_error(move |failure| {
                failures.fetch_add(1, Ordering::SeqCst);
                kinds.lock().expect("kinds").push(failure.error.kind());
                assert_eq!(failure.uri.path(), "/login");
            })
            .build()
            .expect("layer")
    };
    let server = Server::start(demo.router(layer)).await;
    let (client, jar) = client();

    // Fits: preferences (high priority, small).
    let page = set_dark_french(&client, &server).await;
    assert_eq!(page.set_cookie.len(), 1);
    let kept = jar_cookie(&jar, &server).expect("session cookie");

    // A user name too long for the budget: critical, so never dropped. The
    // login's redirect would claim a sign-in that did not happen: 500.
    let long = "j".repeat(64);
    let form = [
        ("username", long.as_str()),
        ("password", app::DEMO_PASSWORD),
    ];
    let page = post(&client, &server, "/login", &form).await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(page.body, "");
    assert!(
        page.set_cookie.is_empty(),
        "no Set-Cookie after a failed save"
    );
    assert_eq!(failures.load(Ordering::SeqCst), 1);
    assert_eq!(*kinds.lock().expect("kinds"), ["too-large"]);
    assert_eq!(jar_cookie(&jar, &server).as_deref(), Some(kept.as_str()));
    let page = get(&client, &server, "/preferences").await;
    assert!(page.body.contains("Not signed in"), "{}", page.body);
    assert!(
        page.body.contains("<option selected>dark</option>"),
        "{}",
        page.body
    );
    assert!(logs.text().contains("session not saved"));
}

#[tokio::test]
async fn the_cookie_is_opened_only_when_a_handler_touches_the_session() {
    let (logs, _guard) = Logs::capture(tracing::Level::TRACE);
    let demo = system_demo();
    let server = Server::app(&demo, new_ring()).await;
    let cookie = format!("{}=garbage", app::COOKIE_NAME);

    let page = get_with_cookie(&server, "/health", &cookie).await;
    assert_eq!(page.body, "ok\n");
    assert!(page.set_cookie.is_empty());
    assert!(!logs.text().contains("session cookie"), "not opened");

    let page = get_with_cookie(&server, "/", &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(logs.text().contains("session cookie not opened"), "opened");
}

#[tokio::test]
async fn the_counter_reads_and_writes_on_every_request() {
    let demo = system_demo();
    let server = Server::app(&demo, new_ring()).await;
    let (client, _jar) = client();
    for n in 1..=3 {
        let page = get(&client, &server, "/counter").await;
        assert_eq!(page.body, format!("visits: {n}\n"));
        assert_eq!(page.set_cookie.len(), 1);
    }

    // The same handler without the layer (the load test's baseline).
    let bare = Server::start(demo.bare_router()).await;
    let page = get(&client, &bare, "/counter").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body, "visits: 0\n");
    assert!(page.set_cookie.is_empty());
    // Pages that need a session say the layer is missing.
    let page = get(&client, &bare, "/cart").await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
}

/// A headless browser that `tests/browser/drive.mjs` drives through
/// puppeteer-core.
#[derive(Clone, Copy)]
enum Browser {
    Chromium,
    Firefox,
}

impl Browser {
    /// Puppeteer's name for it, the variable that overrides its executable,
    /// and where Debian's package installs it.
    fn launch(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Browser::Chromium => ("chrome", "CHROMIUM", "/usr/bin/chromium"),
            Browser::Firefox => ("firefox", "FIREFOX", "/usr/bin/firefox-esr"),
        }
    }
}

/// Runs `tests/browser/drive.mjs` in `browser` against `server`, whose
/// cookie is named `cookie_name`: log in, add `lines` cart lines with notes
/// of `note_len` random characters, log out. Skips (saying so) when the
/// browser or the driver is not installed outside CI.
async fn drive_browser(
    browser: Browser,
    server: Server,
    cookie_name: String,
    lines: u32,
    note_len: u32,
) {
    let (puppeteer_name, variable, debian_path) = browser.launch();
    let executable = std::env::var(variable).unwrap_or_else(|_| debian_path.to_owned());
    let driver = std::path::Path::new("tests/browser/node_modules/puppeteer-core");
    // puppeteer-core 24 needs Node.js 18 or later.
    let installed = std::path::Path::new(&executable).exists()
        && driver.exists()
        && common::node_major().is_some_and(|major| major >= 18);
    if !common::service_available(
        installed,
        &format!("{executable}, Node.js 18 or later and puppeteer-core"),
        "apt-get install chromium firefox-esr; npm ci --prefix tests/browser",
    ) {
        return;
    }
    let mut command = std::process::Command::new("node");
    command
        .arg("tests/browser/drive.mjs")
        .arg(puppeteer_name)
        .arg(&executable)
        .arg(format!("http://{}", server.addr))
        .arg(cookie_name)
        .arg(lines.to_string())
        .arg(note_len.to_string());
    // Waited for off the runtime's workers, which serve the app meanwhile.
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("driver")
        .expect("run node");
    drop(server);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("session cookies the app set was kept"),
        "{stdout}"
    );
}

/// A real browser, not only reqwest's cookie store: over plain HTTP on
/// 127.0.0.1 the browser keeps the app's `__Host-` cookie with `Secure`,
/// sends it back, keeps every cookie the app sets through a cart filled
/// past the budget, and deletes it at logout.
async fn keeps_the_cookie_through_login_a_full_cart_and_logout(browser: Browser) {
    let demo = system_demo();
    let server = Server::app(&demo, new_ring()).await;
    drive_browser(browser, server, app::COOKIE_NAME.to_owned(), 7, 1000).await;
}

/// Browsers ignore a cookie whose name and value pass 4096 bytes: with a
/// 300-character name and an 8192-byte budget, each of the cart's small
/// steps must still give a cookie the browser keeps (with the budget alone
/// one of them lands between 4096 bytes of name and value and the
/// 4096-byte token limit).
async fn keeps_every_cookie_under_a_budget_above_4096_with_a_long_name(browser: Browser) {
    let demo = system_demo();
    let name = format!("__Host-{}", "n".repeat(293));
    let layer = demo
        .layer(new_ring())
        .cookie_name(&name)
        .budget(8192)
        .build()
        .expect("layer");
    let server = Server::start(demo.router(layer)).await;
    drive_browser(browser, server, name, 30, 100).await;
}

#[tokio::test]
async fn chromium_keeps_the_cookie_through_login_a_full_cart_and_logout() {
    keeps_the_cookie_through_login_a_full_cart_and_logout(Browser::Chromium).await;
}

#[tokio::test]
async fn firefox_keeps_the_cookie_through_login_a_full_cart_and_logout() {
    keeps_the_cookie_through_login_a_full_cart_and_logout(Browser::Firefox).await;
}

#[tokio::test]
async fn chromium_keeps_every_cookie_under_a_budget_above_4096_with_a_long_name() {
    keeps_every_cookie_under_a_budget_above_4096_with_a_long_name(Browser::Chromium).await;
}

#[tokio::test]
async fn firefox_keeps_every_cookie_under_a_budget_above_4096_with_a_long_name() {
    keeps_every_cookie_under_a_budget_above_4096_with_a_long_name(Browser::Firefox).await;
}
