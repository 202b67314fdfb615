//! The session layer over many requests from one browser, against a model
//! of what the application stored. Each request reaches a route that
//! writes, removes or reads an entry, logs out, takes a new id, fails with
//! a 500 after a write, or never touches the session; between requests
//! time passes, the servers' key rotates (the old key kept as fallback,
//! the one before dropped), the cookie is tampered with, someone
//! replays a cookie that a logout or a new id gave up, or the overflow
//! store, the revocation store or both go out of reach or come back. The
//! browser keeps cookies as a browser does (`Max-Age`, deletion; a
//! browser-session cookie it sends past its end). Each case draws the
//! layer's `__Host-` prefix, `open_every_request` and persistent or
//! browser-session cookies. After every response:
//!
//! - `Set-Cookie` is sent exactly when the issue says: the session was
//!   modified, its refresh was due, a fallback key opened it, or there is a
//!   cookie to delete (a logout, a session left empty, a bad cookie no
//!   handler replaced); never for a route that did not touch the session,
//!   never after a server error (but to delete a bad cookie), and never
//!   for a cookie the server's ring
//!   cannot open (it may open elsewhere) unless the handler stored
//!   something;
//! - every `Set-Cookie` has the secure defaults (`HttpOnly`, `Secure`,
//!   `SameSite=Lax`, `Path=/`) and a `Max-Age` that runs to the cookie's
//!   end (0 to delete); a response that sets one is `Cache-Control:
//!   private`, and one whose handler touched the session varies on
//!   `Cookie`;
//! - the browser's cookie holds what the model holds (overflowed entries
//!   included), and each read answers with the model's value;
//! - a replayed cookie whose id was given up reads as a fresh session (the
//!   layer's revocation store), and is deleted at most;
//! - a store out of reach costs at most the request's changes, with an
//!   empty 503 and no `Set-Cookie`: a 503 only when a store is down and
//!   the handler touched the session (for a read, exactly when its entry
//!   is overflowed); a cookie the revocation store cannot vouch for is kept,
//!   its handler gets a fresh session and what it stores there is refused
//!   (a logout still deletes it, reporting the id it could not revoke); a
//!   refresh that cannot renew the blob leaves the cookie as it was; and
//!   no entry is ever dropped as gone from the store.
#![cfg(feature = "axum")]

mod common;

use axum::body::Body;
use axum::extract::Query;
use axum::http::{header, Request, Response, StatusCode};
use axum::routing::get;
use axum::Router;
use common::model::*;
use common::*;
use proptest::prelude::*;
use sealed_session::http::{LazySession, SessionLayer};
use sealed_session::{Clock, Error, FixedClock, KeyRing, Priority};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt as _;

#[derive(Debug, Clone)]
enum Step {
    Insert {
        key: u8,
        len: usize,
        priority: u8,
    },
    Remove {
        key: u8,
    },
    Read {
        key: u8,
    },
    /// A route that never touches the session.
    Untouched,
    Logout,
    CycleId,
    /// A handler that writes, then answers 500.
    WriteThenFail {
        key: u8,
    },
    Wait {
        secs: u64,
    },
    /// The servers' primary key changes; the old one is the fallback.
    Rotate,
    /// The browser's cookie is altered.
    Tamper,
    /// Someone replays the cookie a logout or a new id gave up (a copy
    /// taken before), reading an entry it held.
    Replay,
    /// From now on the overflow store, the revocation store, both or
    /// neither cannot be reached.
    Outage {
        overflow: bool,
        revocation: bool,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let key = 0u8..5;
    prop_oneof![
        6 => (key.clone(), 0usize..600, 0u8..4)
            .prop_map(|(key, len, priority)| Step::Insert { key, len, priority }),
        2 => key.clone().prop_map(|key| Step::Remove { key }),
        3 => key.clone().prop_map(|key| Step::Read { key }),
        1 => Just(Step::Untouched),
        1 => Just(Step::Logout),
        1 => Just(Step::CycleId),
        1 => key.prop_map(|key| Step::WriteThenFail { key }),
        2 => (0u64..2000).prop_map(|secs| Step::Wait { secs }),
        1 => Just(Step::Rotate),
        1 => Just(Step::Tamper),
        1 => Just(Step::Replay),
        2 => (any::<bool>(), any::<bool>())
            .prop_map(|(overflow, revocation)| Step::Outage { overflow, revocation }),
    ]
}

fn priority(index: u8) -> Priority {
    [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Critical,
    ][usize::from(index) % 4]
}

#[derive(serde::Deserialize)]
struct Params {
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    priority: u8,
}

async fn insert(session: LazySession, Query(p): Query<Params>) -> Result<&'static str, Error> {
    session
        .insert_with_priority(&p.key, &p.value, priority(p.priority))
        .await?;
    Ok("ok")
}

async fn remove(session: LazySession, Query(p): Query<Params>) -> Result<String, Error> {
    Ok(session.remove(&p.key).await?.to_string())
}

async fn read(session: LazySession, Query(p): Query<Params>) -> Result<String, Error> {
    Ok(session.get::<String>(&p.key).await?.unwrap_or_default())
}

async fn logout(session: LazySession) -> Result<&'static str, Error> {
    session.flush().await?;
    Ok("ok")
}

async fn cycle_id(session: LazySession) -> Result<&'static str, Error> {
    session.cycle_id().await?;
    Ok("ok")
}

async fn write_then_fail(session: LazySession, Query(p): Query<Params>) -> StatusCode {
    match session.insert(&p.key, "lost").await {
        Ok(()) => StatusCode::INTERNAL_SERVER_ERROR,
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

fn app(layer: SessionLayer) -> Router {
    Router::new()
        .route("/insert", get(insert))
        .route("/remove", get(remove))
        .route("/read", get(read))
        .route("/untouched", get(|| async { "ok" }))
        .route("/logout", get(logout))
        .route("/cycle-id", get(cycle_id))
        .route("/write-then-fail", get(write_then_fail))
        .layer(layer)
}

/// What the browser holds.
struct Browser {
    cookie: Option<String>,
    /// When it drops the cookie (its Max-Age).
    drops_at: u64,
    /// The cookie's last second on the servers.
    last_live: u64,
    /// The primary key it was sealed under (its header names it), and
    /// whether it was tampered with since.
    sealed_under: Option<u8>,
    tampered: bool,
}

/// The layer's settings that change what a response carries.
#[derive(Debug, Clone, Copy)]
struct Options {
    /// The cookie is `__Host-id`, not `id`.
    host_prefix: bool,
    /// The cookie is opened on every request that carries it.
    open_every_request: bool,
    /// `Max-Age` (else a browser-session cookie, which a browser sends
    /// until it closes, expired or not).
    persistent: bool,
}

impl Options {
    fn cookie_name(self) -> &'static str {
        if self.host_prefix {
            "__Host-id"
        } else {
            "id"
        }
    }
}

async fn send(
    app: &Router,
    path: &str,
    name: &str,
    cookie: Option<&str>,
) -> (Response<Body>, String) {
    let mut request = Request::builder().uri(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, format!("theme=dark; {name}={cookie}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    (
        Response::from_parts(parts, Body::empty()),
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

fn header_items(response: &Response<Body>, name: header::HeaderName) -> Vec<String> {
    response
        .headers()
        .get_all(name)
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|item| item.trim().to_ascii_lowercase())
        .collect()
}

async fn live(steps: Vec<Step>, budget: usize, options: Options) -> Result<(), TestCaseError> {
    let name = options.cookie_name();
    let clock = clock();
    let store = Arc::new(Instrumented::new(&clock));
    // The keys each save reported dropped (the report hook), and whether
    // one reported an id it could not revoke.
    let dropped: Arc<Mutex<Vec<(String, Priority, usize)>>> = Arc::default();
    let unrevoked: Arc<Mutex<bool>> = Arc::default();
    let revocations = Arc::new(FlakyRevocations::with_clock(&clock));
    let (mut overflow_down, mut revocation_down) = (false, false);
    let outage = |overflow: bool, revocation: bool| {
        store.set_down(overflow);
        revocations.set_down(revocation);
        revocations.set_checks_down(revocation);
    };
    // Cookies whose id a logout or a new id gave up, with a key each held.
    let mut given_up: Vec<(String, String)> = Vec::new();
    let layer_for = |primary: u8, clock: &Arc<FixedClock>| {
        let reports = dropped.clone();
        let unrevoked = unrevoked.clone();
        let fallbacks = (primary > 1).then(|| key(primary - 1));
        SessionLayer::builder(KeyRing::with_fallbacks(key(primary), fallbacks).unwrap())
            .cookie_name("id")
            .host_prefix(options.host_prefix)
            .open_every_request(options.open_every_request)
            .persistent(options.persistent)
            .max_idle(Duration::from_secs(MAX_IDLE))
            .max_lifetime(Duration::from_secs(MAX_LIFETIME))
            .clock(clock.clone())
            .budget(budget)
            .overflow_store(store.clone())
            .revocation_store(revocations.clone(), None)
            .on_save_report(move |report, _| {
                let mut dropped = reports.lock().unwrap();
                dropped.extend(
                    report
                        .dropped
                        .iter()
                        .map(|e| (e.key.clone(), e.priority, e.size)),
                );
                *unrevoked.lock().unwrap() |= report.unrevoked.is_some();
            })
            .build()
            .unwrap()
    };
    let mut primary = 1u8;
    let mut layer = layer_for(primary, &clock);
    let mut router = app(layer.clone());
    let mut browser = Browser {
        cookie: None,
        drops_at: 0,
        last_live: 0,
        sealed_under: None,
        tampered: false,
    };
    let mut expected = Expected::new(0);

    for (n, step) in steps.into_iter().enumerate() {
        outage(overflow_down, revocation_down);
        match step {
            Step::Wait { secs } => {
                clock.advance(secs);
                continue;
            }
            Step::Rotate => {
                primary += 1;
                layer = layer_for(primary, &clock);
                router = app(layer.clone());
                continue;
            }
            Step::Replay => {
                // Another client: the browser and the model stay as they
                // are. Revoked (or expired), the cookie gives a fresh
                // session, and is deleted at most.
                if let Some((cookie, key)) = given_up.last() {
                    let (response, body) =
                        send(&router, &format!("/read?key={key}"), name, Some(cookie)).await;
                    prop_assert_eq!(response.status(), StatusCode::OK);
                    prop_assert_eq!(body, "", "a given-up cookie still reads {}", key);
                    for set in response.headers().get_all(header::SET_COOKIE) {
                        let set = cookie::Cookie::parse(set.to_str().unwrap().to_owned()).unwrap();
                        prop_assert_eq!(set.max_age().map(|age| age.whole_seconds()), Some(0));
                    }
                }
                continue;
            }
            Step::Outage {
                overflow,
                revocation,
            } => {
                (overflow_down, revocation_down) = (overflow, revocation);
                continue;
            }
            Step::Tamper => {
                // (Once: a second change could restore the first.)
                if let (Some(cookie), false) = (&mut browser.cookie, browser.tampered) {
                    // A character in the ciphertext, changed to another
                    // of the alphabet.
                    let at = cookie.len() / 2;
                    let swapped = if &cookie[at..=at] == "A" { "B" } else { "A" };
                    cookie.replace_range(at..=at, swapped);
                    browser.tampered = true;
                }
                continue;
            }
            _ => {}
        }
        let now = clock.now();
        if browser.cookie.is_some() && now >= browser.drops_at {
            browser.cookie = None;
        }
        let sent = browser.cookie.clone();
        // How the server takes the cookie: opened (with its fallback key
        // or not), refused for good (tampered: then deleted unless
        // replaced), or kept for a server whose ring has its key.
        let known_key = browser
            .sealed_under
            .is_some_and(|k| k == primary || k + 1 == primary);
        // (A browser-session cookie is sent after its end.)
        let live = now <= browser.last_live;
        let opens = sent.is_some() && known_key && !browser.tampered && live;
        // The revocation store cannot vouch for the cookie: the handler
        // gets a fresh session, and the cookie is kept (but a logout
        // deletes it).
        let blocked = opens && revocation_down;
        let opened = opens && !revocation_down;
        let refused_for_good = sent.is_some() && known_key && (browser.tampered || !live);
        let fallback = opened && browser.sealed_under.map(|k| k + 1) == Some(primary);
        let refresh_due = opened && expected.refresh_due_at(now);
        // The cookie's entries that only the overflow store holds.
        let overflowed = match (&sent, opened) {
            (Some(cookie), true) => match layer.sealer().open_async(cookie).await {
                Ok(session) => overflowed_keys(&session),
                Err(e) => return Err(TestCaseError::fail(format!("step {n}: {e:?}"))),
            },
            _ => Vec::new(),
        };
        if !opens {
            expected = Expected::new(now);
        }
        // What the browser's cookie holds; `expected` is what the handler
        // sees.
        let before = expected.clone();
        if blocked {
            expected = Expected::new(now);
        }

        let (path, touches, changes) = match &step {
            Step::Insert {
                key,
                len,
                priority: p,
            } => {
                let value = format!("{n}:{}", "v".repeat(*len));
                expected
                    .entries
                    .insert(format!("k{key}"), (value.clone(), priority(*p)));
                (
                    format!("/insert?key=k{key}&value={value}&priority={p}"),
                    true,
                    true,
                )
            }
            Step::Remove { key } => {
                let removed = expected.entries.remove(&format!("k{key}")).is_some();
                (format!("/remove?key=k{key}"), true, removed)
            }
            Step::Read { key } => (format!("/read?key=k{key}"), true, false),
            // (Opened all the same when every request opens its cookie.)
            Step::Untouched => (
                "/untouched".to_owned(),
                options.open_every_request && sent.is_some(),
                false,
            ),
            Step::Logout => {
                expected.entries.clear();
                ("/logout".to_owned(), true, true)
            }
            Step::CycleId => {
                expected.created_at = now;
                ("/cycle-id".to_owned(), true, !expected.entries.is_empty())
            }
            Step::WriteThenFail { key } => (format!("/write-then-fail?key=k{key}"), true, false),
            Step::Wait { .. }
            | Step::Rotate
            | Step::Tamper
            | Step::Replay
            | Step::Outage { .. } => unreachable!(),
        };
        let (response, body) = send(&router, &path, name, sent.as_deref()).await;
        // A logout or a new id that went through gives up the cookie's id.
        let gives_up = matches!(step, Step::Logout | Step::CycleId);
        if let (true, true, Some(cookie)) = (gives_up, opened, &sent) {
            if response.status() == StatusCode::OK {
                if let Some(key) = before.entries.keys().next() {
                    given_up.push((cookie.clone(), key.clone()));
                }
            }
        }
        let unrevoked = std::mem::take(&mut *unrevoked.lock().unwrap());
        if matches!(step, Step::Logout) && opens {
            prop_assert_eq!(unrevoked, revocation_down, "step {}: unrevoked", n);
        }
        let failed = matches!(step, Step::WriteThenFail { .. });
        // A save that fails (the critical entries exceed the budget) loses
        // the handler's changes: an empty 500.
        let save_failed = !failed && response.status() == StatusCode::INTERNAL_SERVER_ERROR;
        // A store out of reach: an empty 503, nothing saved.
        let unavailable = response.status() == StatusCode::SERVICE_UNAVAILABLE;
        if unavailable {
            prop_assert!(
                touches && (overflow_down || blocked),
                "step {} {:?}",
                n,
                step
            );
        } else if save_failed {
            prop_assert!(expected
                .entries
                .values()
                .any(|(_, p)| *p == Priority::Critical));
        } else if failed {
            prop_assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        } else {
            prop_assert_eq!(response.status(), StatusCode::OK, "{}", body);
        }
        // A read needs the store exactly when its entry is overflowed.
        if let Step::Read { key } = &step {
            let needs_store = overflowed.contains(&format!("k{key}"));
            prop_assert_eq!(unavailable, overflow_down && needs_store, "step {}", n);
        }
        // What a handler stores in the fresh session it got instead of a
        // cookie the revocation store could not vouch for is refused.
        if blocked && changes && !matches!(step, Step::Logout) {
            prop_assert!(unavailable || failed, "step {} {:?}", n, step);
        }
        if failed || save_failed || unavailable {
            // Nothing saved: the changes are lost.
            expected = before.clone();
        }
        // What the save dropped to fit the budget (with the store, only
        // when even the list of moved keys does not fit).
        for (key, priority, size) in dropped.lock().unwrap().drain(..) {
            prop_assert!(priority != Priority::Critical);
            // Not found gone from the store (size 0): nothing evicts
            // blobs here, and a store out of reach is not one that lost them.
            prop_assert!(size > 0, "step {}: {} dropped as gone", n, key);
            let held = expected.entries.remove(&key);
            prop_assert_eq!(held.map(|(_, p)| p), Some(priority));
        }
        if let (Step::Read { key }, false) = (&step, save_failed || unavailable) {
            let held = expected.entries.get(&format!("k{key}"));
            prop_assert_eq!(&body, held.map_or("", |(v, _)| v.as_str()));
        }

        let set_cookies: Vec<_> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| cookie::Cookie::parse(v.to_str().unwrap().to_owned()).unwrap())
            .collect();
        prop_assert!(set_cookies.len() <= 1);
        let set_cookie = set_cookies.into_iter().next();
        // Caches.
        let varies = header_items(&response, header::VARY).contains(&"cookie".to_owned());
        prop_assert_eq!(varies, touches, "Vary: Cookie");
        if set_cookie.is_some() {
            prop_assert!(
                header_items(&response, header::CACHE_CONTROL).contains(&"private".to_owned())
            );
        }

        // Whether a cookie should be set, deleted, or neither.
        let empty = expected.entries.is_empty();
        let got = set_cookie.as_ref().map(|c| {
            if c.max_age().map(|age| age.whole_seconds()) == Some(0) {
                "delete"
            } else {
                "set"
            }
        });
        let want = if !touches || failed || save_failed || unavailable {
            // (After a server error a bad cookie may also be deleted.)
            if failed && refused_for_good && got == Some("delete") {
                got
            } else {
                None
            }
        } else if empty {
            // A cookie this ring cannot open is left for another server,
            // but a logout deletes whatever session cookie was sent.
            let logout = matches!(step, Step::Logout) && sent.is_some();
            (opened || refused_for_good || logout).then_some("delete")
        } else if changes || refresh_due || fallback {
            // (A fresh session has entries only if the handler stored
            // them: a change.) A refresh or a re-seal that cannot renew
            // the blob leaves the cookie as it was.
            let renewal_failed = !changes && overflow_down && !overflowed.is_empty();
            (!renewal_failed).then_some("set")
        } else {
            None
        };
        prop_assert_eq!(got, want, "step {} {:?}", n, step);

        if let Some(c) = &set_cookie {
            prop_assert_eq!(c.name(), name);
            prop_assert_eq!(c.http_only(), Some(true));
            prop_assert_eq!(c.secure(), Some(true));
            prop_assert_eq!(c.same_site(), Some(cookie::SameSite::Lax));
            prop_assert_eq!(c.path(), Some("/"));
            prop_assert_eq!(c.domain(), None);
            if got == Some("delete") {
                browser.cookie = None;
                expected.entries.clear();
            } else {
                expected.issued_at = now;
                browser.last_live = expected.last_live_second();
                browser.drops_at = if options.persistent {
                    expected.browser_drops_at(now, c)?
                } else {
                    prop_assert_eq!(c.max_age(), None);
                    u64::MAX
                };
                browser.cookie = Some(c.value().to_owned());
                browser.sealed_under = Some(primary);
                browser.tampered = false;
            }
        }

        // A cookie the revocation store could not vouch for is kept.
        if blocked && got != Some("delete") {
            expected = before.clone();
        }

        // The browser's cookie holds the model (read with the stores back).
        outage(false, false);
        if let (Some(cookie), false) = (&browser.cookie, browser.tampered) {
            let sealer = layer.sealer();
            let mut session = match sealer.open_async(cookie).await {
                Ok(session) => session,
                Err(Error::UnknownKeyId) => continue,
                Err(Error::Expired(_)) if now > browser.last_live => continue,
                Err(e) => return Err(TestCaseError::fail(format!("step {n}: {e:?}"))),
            };
            let keys: BTreeMap<String, Priority> = session
                .keys_with_priority()
                .map(|(k, p)| (k.to_owned(), p))
                .collect();
            let want: BTreeMap<String, Priority> = expected
                .entries
                .iter()
                .map(|(k, (_, p))| (k.clone(), *p))
                .collect();
            prop_assert_eq!(keys, want, "step {} {:?}", n, step);
            prop_assert_eq!(
                sealer.load_overflow(&mut session).await,
                Ok::<(), Error>(())
            );
            for (key, (value, _)) in &expected.entries {
                let read: Option<String> = session.get(key).unwrap();
                prop_assert_eq!(read.as_ref(), Some(value));
            }
        }
    }
    Ok(())
}

proptest! {

    #[test]
    fn the_layer_sets_the_cookie_exactly_when_it_must_and_it_holds_the_model(
        steps in proptest::collection::vec(step(), 1..40),
        budget in 400usize..2500,
        host_prefix: bool,
        open_every_request: bool,
        persistent: bool,
    ) {
        let options = Options { host_prefix, open_every_request, persistent };
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(live(steps, budget, options))?;
    }
}
