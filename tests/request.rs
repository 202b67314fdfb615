//! The framework-neutral request API: which of a request's cookies is the
//! session (FORMAT.md §14.4), and what the response sends back.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{builder, builder_with, clock, key, RevocationsDown};
use sealed_session::store::{MemoryRevocations, MemoryStore};
use sealed_session::{
    CookieAction, CookieSettings, Error, FixedClock, KeyRing, Limit, Limits, Malformed, Priority,
    RequestSession, Saved, Sealer, StoreError,
};

/// A cookie value holding `marker`.
fn cookie_with(sealer: &Sealer, marker: &str) -> String {
    let mut session = sealer.new_session().unwrap();
    session.insert("marker", marker).unwrap();
    sealer.seal(&mut session).unwrap()
}

fn marker(request: &RequestSession) -> Option<String> {
    request.session().get("marker").unwrap()
}

fn action(sealer: &Sealer, request: &mut RequestSession) -> CookieAction {
    sealer.save_request(request).unwrap().action
}

#[test]
fn the_first_cookie_that_opens_is_the_session_in_header_order() {
    let sealer = builder(&clock()).build().unwrap();
    let (one, two) = (cookie_with(&sealer, "one"), cookie_with(&sealer, "two"));
    let headers = [
        "id=forged; other=1".to_owned(),
        format!("idx={one}; id=\"{two}\"; id={one}"),
    ];
    let request = sealer.open_request(&headers).unwrap();
    assert_eq!(marker(&request).as_deref(), Some("two"));
    assert_eq!(request.cookie_len(), Some(two.len()));
    assert_eq!(request.rejected_cookie(), None);

    // A neighbour that is not UTF-8 does not hide the session cookie.
    let raw = [b"a=\xff\xfe; id=".as_slice(), one.as_bytes()].concat();
    let request = sealer.open_request([raw]).unwrap();
    assert_eq!(marker(&request).as_deref(), Some("one"));
}

/// With a previous cookie name, a request without a cookie of the current
/// name has its cookies of the previous name tried: one that opens is
/// re-sealed under the current name; one that fails is reported, and is
/// to be deleted only when it was the only one and can never open. A
/// current cookie that does not open (it may be newer) keeps the old ones
/// out.
#[test]
fn cookies_of_the_previous_name_open_after_the_current_ones() {
    let clock = clock();
    let old = builder(&clock).cookie_name("old").build().unwrap();
    let sealer = builder(&clock).previous_cookie_name("old").build().unwrap();
    let (was, is) = (cookie_with(&old, "was"), cookie_with(&sealer, "is"));
    let mut request = sealer.open_request([format!("old={was}")]).unwrap();
    assert!(request.opened_from_previous_name());
    assert!(!request.previous_cookie_rejected_for_good());
    assert_eq!(marker(&request).as_deref(), Some("was"));
    let CookieAction::Set(cookie) = action(&sealer, &mut request) else {
        panic!("re-sealed under the current name");
    };
    assert!(cookie.starts_with("id="), "{cookie}");
    let removal = sealer.previous_cookie_removal().unwrap();
    assert!(removal.starts_with("old=;"), "{removal}");
    // Both names, the old one first: the current one is the session.
    let request = sealer
        .open_request([format!("old={was}; id={is}")])
        .unwrap();
    assert!(!request.opened_from_previous_name());
    assert_eq!(marker(&request).as_deref(), Some("is"));
    // A current cookie that fails keeps an old one out.
    let request = sealer
        .open_request([format!("id=forged; old={was}")])
        .unwrap();
    assert!(request.session().is_new());
    assert_eq!(
        request.rejected_cookie().map(Error::kind),
        Some("malformed")
    );
    assert!(!request.previous_cookie_rejected_for_good());
    // An old cookie that fails for good (a token bound to the current
    // name, here): a fresh session, the failure reported, no session
    // cookie to set or delete, and the old cookie to delete.
    let mut request = sealer.open_request([format!("old={is}")]).unwrap();
    assert!(request.session().is_new());
    let rejected = request.rejected_cookie().map(Error::kind);
    assert_eq!(rejected, Some("authentication-failed"));
    assert!(request.previous_cookie_rejected_for_good());
    assert_eq!(action(&sealer, &mut request), CookieAction::Unchanged);
    // Not one that only this server cannot open (a key it lacks), nor
    // one of two: which failed for good is not known.
    let stranger = builder_with(KeyRing::new(key(7)), &clock)
        .cookie_name("old")
        .build()
        .unwrap();
    let unknown = cookie_with(&stranger, "elsewhere");
    let request = sealer.open_request([format!("old={unknown}")]).unwrap();
    assert_eq!(
        request.rejected_cookie().map(Error::kind),
        Some("unknown-key-id")
    );
    assert!(!request.previous_cookie_rejected_for_good());
    let request = sealer
        .open_request([format!("old={is}; old={is}")])
        .unwrap();
    assert!(!request.previous_cookie_rejected_for_good());
    // Without the setting the old name is not read; the same name twice
    // is refused.
    let plain = builder(&clock).build().unwrap();
    let request = plain.open_request([format!("old={was}")]).unwrap();
    assert!(request.session().is_new());
    let twice = builder(&clock).previous_cookie_name("id").build();
    assert_eq!(
        twice.unwrap_err(),
        Error::InvalidSetting(sealed_session::InvalidSetting::PreviousNameIsCurrent)
    );
    // Also with other settings: a move of the path alone needs a new name.
    let moved = builder(&clock)
        .previous_cookie("id", CookieSettings::default().with_path("/x"))
        .build();
    assert_eq!(
        moved.unwrap_err(),
        Error::InvalidSetting(sealed_session::InvalidSetting::PreviousNameIsCurrent)
    );
}

/// The previous name's deletion reaches the old cookie: with the sealer's
/// path and domain by default, with the old cookie's own when given; the
/// old settings are checked as the current ones are.
#[test]
fn the_previous_cookie_is_deleted_where_it_was_set() {
    let clock = clock();
    let at_x = CookieSettings::default().with_path("/x");
    let sealer = builder(&clock)
        .cookie_settings(at_x.clone())
        .previous_cookie_name("old")
        .build()
        .unwrap();
    let removal = sealer.previous_cookie_removal().unwrap();
    assert!(
        removal.starts_with("old=;") && removal.contains("Path=/x"),
        "{removal}"
    );

    let old_settings = CookieSettings::default()
        .with_path("/app")
        .with_domain("example.com");
    let sealer = builder(&clock)
        .cookie_settings(at_x)
        .previous_cookie("old", old_settings)
        .build()
        .unwrap();
    let removal = sealer.previous_cookie_removal().unwrap();
    assert!(
        removal.starts_with("old=;")
            && removal.contains("Path=/app")
            && removal.contains("Domain=example.com")
            && !removal.contains("Path=/x"),
        "{removal}"
    );
    // Its cookies still open, and the session moves to the current name.
    let old = builder(&clock).cookie_name("old").build().unwrap();
    let mut request = sealer
        .open_request([format!("old={}", cookie_with(&old, "was"))])
        .unwrap();
    assert_eq!(marker(&request).as_deref(), Some("was"));
    let CookieAction::Set(cookie) = action(&sealer, &mut request) else {
        panic!("re-sealed under the current name");
    };
    assert!(
        cookie.starts_with("id=") && cookie.contains("Path=/x"),
        "{cookie}"
    );

    let bad_domain = CookieSettings::default().with_domain("a..b");
    let refused = builder(&clock).previous_cookie("old", bad_domain).build();
    assert_eq!(
        refused.unwrap_err(),
        Error::InvalidCookie(sealed_session::InvalidCookie::Domain)
    );
}

#[test]
fn at_most_max_cookies_tried_are_opened() {
    let header = |good: &str| format!("id=bad1; id=bad2; id={good}");
    let sealer = builder(&clock()).max_cookies_tried(2).build().unwrap();
    let good = cookie_with(&sealer, "good");
    let mut request = sealer.open_request([header(&good)]).unwrap();
    assert!(request.session().is_new());
    assert_eq!(
        request.rejected_cookie().map(Error::kind),
        Some("malformed")
    );
    // None is deleted: which of them is this server's own is unknown.
    assert_eq!(action(&sealer, &mut request), CookieAction::Unchanged);

    let sealer = builder(&clock()).max_cookies_tried(3).build().unwrap();
    let request = sealer.open_request([header(&good)]).unwrap();
    assert_eq!(marker(&request).as_deref(), Some("good"));

    // One tried of two: the one left untried may be this server's own.
    let sealer = builder(&clock()).max_cookies_tried(1).build().unwrap();
    let mut request = sealer.open_request(["id=bad1", "id=bad2"]).unwrap();
    assert_eq!(action(&sealer, &mut request), CookieAction::Unchanged);

    // Zero means one: a request's own cookie is always tried.
    let sealer = builder(&clock()).max_cookies_tried(0).build().unwrap();
    let one = format!("id={good}");
    assert!(!sealer.open_request([&one]).unwrap().session().is_new());
    let two = format!("id=bad; id={good}");
    assert!(sealer.open_request([&two]).unwrap().session().is_new());
}

#[test]
fn an_empty_session_gets_no_cookie_and_loses_the_one_it_had() {
    let sealer = builder(&clock()).build().unwrap();
    // New and empty, even with a change: nothing is sent.
    let mut request = sealer.open_request(None::<&str>).unwrap();
    request.session_mut().set_expiry_in(Duration::from_secs(60));
    assert_eq!(action(&sealer, &mut request), CookieAction::Unchanged);

    // Opened, then emptied: its cookie is deleted. `Sealer::save` alone
    // would have sealed the empty session.
    let cookie = format!("id={}", cookie_with(&sealer, "x"));
    let mut request = sealer.open_request([&cookie]).unwrap();
    request.session_mut().clear();
    let CookieAction::Delete(deletion) = action(&sealer, &mut request) else {
        panic!("an emptied session deletes its cookie");
    };
    assert!(deletion.starts_with("id=;") && deletion.contains("Max-Age=0"));

    // Opened and changed: saved as usual.
    let mut request = sealer.open_request([&cookie]).unwrap();
    request.session_mut().insert("more", 1).unwrap();
    assert!(matches!(
        action(&sealer, &mut request),
        CookieAction::Set(_)
    ));
}

/// A session whose every entry the budget drops is as empty as a cleared
/// one: no cookie for it, and the one it came from is deleted; the report
/// still names the drops.
#[tokio::test]
async fn a_session_the_budget_empties_gets_no_cookie_either() {
    for with_store in [false, true] {
        let mut built = builder(&clock());
        if with_store {
            // The blob is capped at max_decompressed: the entry cannot
            // move there either.
            built = built
                .overflow_store(Arc::new(MemoryStore::new()))
                .limits(Limits::default().with_max_decompressed(4096));
        }
        let sealer = built.build().unwrap();
        let save = async |request: &mut RequestSession| {
            let saved = save_either(&sealer, request, with_store).await;
            assert_eq!(
                saved.report.dropped_keys(),
                ["history"],
                "store: {with_store}"
            );
            (saved.action, saved.report.header_len)
        };

        // New: nothing is sent.
        let mut request = sealer.open_request_async(None::<&str>).await.unwrap();
        store_oversized_history(&mut request);
        assert_eq!(
            save(&mut request).await,
            (CookieAction::Unchanged, 0),
            "store: {with_store}"
        );
        assert!(request.session().is_new(), "no cookie carries it");

        // Opened from a cookie whose entry the oversized value replaces:
        // the cookie goes, or the old value would come back.
        let (_, mut request) = history_replaced_by_oversized(&sealer).await;
        let (action, _) = save(&mut request).await;
        let CookieAction::Delete(deletion) = action else {
            panic!("store: {with_store}: the emptied session's cookie is deleted, not {action:?}");
        };
        assert!(deletion.starts_with("id=;"), "{deletion}");

        // A logout whose one new entry the budget drops still deletes
        // whatever the request carried: here two candidates, which a save
        // that is no logout would keep.
        let mut request = sealer
            .open_request_async(["id=bad1; id=bad2"])
            .await
            .unwrap();
        request.session_mut().flush().unwrap();
        store_oversized_history(&mut request);
        let (action, _) = save(&mut request).await;
        assert!(
            matches!(action, CookieAction::Delete(_)),
            "store: {with_store}: {action:?}"
        );
    }
}

/// The deletion of a session the budget empties gives up its id, as any
/// deletion by a request save does: a revocation store revokes it, unless
/// a user entry is configured and the cookie had none.
#[tokio::test]
async fn the_budget_emptying_a_session_revokes_its_cookie() {
    let clock = clock();
    for user_key in [None, Some("user")] {
        let revocations = Arc::new(MemoryRevocations::with_clock(clock.clone()));
        let sealer = builder(&clock)
            .revocation_store(revocations.clone(), user_key)
            .build()
            .unwrap();
        let (cookie, mut request) = history_replaced_by_oversized(&sealer).await;
        let saved = sealer.save_request_async(&mut request).await.unwrap();
        assert!(matches!(saved.action, CookieAction::Delete(_)));
        assert_eq!(saved.report.unrevoked, None);
        let replayed = sealer.open_request_async([&cookie]).await.unwrap();
        match user_key {
            None => assert_eq!(replayed.rejected_cookie(), Some(&Error::Revoked)),
            Some(_) => {
                assert_eq!(replayed.rejected_cookie(), None);
                assert!(revocations.is_empty());
            }
        }
    }
}

/// A request that opened the session before a logout on another tab
/// revoked its id, and saves after, re-seals that id with a fresh
/// issued-at (revocation checks only opening). The logout's record must
/// outlast that cookie too: here the request runs 50 s against a clock
/// skew of 0, beyond what `revocation_ttl` alone covers.
#[tokio::test]
async fn a_logout_stays_revoked_past_a_request_that_re_sealed_its_id() {
    let clock = clock();
    let revocations = Arc::new(MemoryRevocations::with_clock(clock.clone()));
    let sealer = builder(&clock)
        .clock_skew(Duration::ZERO)
        .revocation_store(revocations, None)
        .build()
        .unwrap();
    let cookie = format!("id={}", cookie_with(&sealer, "cart"));
    let mut slow = sealer.open_request_async([&cookie]).await.unwrap();
    let mut logout = sealer.open_request_async([&cookie]).await.unwrap();
    logout.session_mut().flush().unwrap();
    let saved = sealer.save_request_async(&mut logout).await.unwrap();
    assert!(matches!(saved.action, CookieAction::Delete(_)));
    assert_eq!(saved.report.unrevoked, None);

    clock.advance(50);
    slow.session_mut().insert("seen", true).unwrap();
    let CookieAction::Set(header) = sealer.save_request_async(&mut slow).await.unwrap().action
    else {
        panic!("the slow request's change is not saved");
    };
    let re_sealed = format!("id={}", common::cookie_value(&header));
    let ttl = sealer.revocation_ttl().unwrap().as_secs();
    // Past the record `revocation_ttl` alone would keep, while the
    // re-sealed cookie is still within its idle timeout.
    clock.advance(ttl - 50 + 1);
    let replayed = sealer.open_request_async([&re_sealed]).await.unwrap();
    assert_eq!(replayed.rejected_cookie(), Some(&Error::Revoked));
}

/// Stores a low-priority `history` too large for any cookie budget.
fn store_oversized_history(request: &mut RequestSession) {
    request
        .session_mut()
        .insert_with_priority("history", "h".repeat(6000), Priority::Low)
        .unwrap();
}

/// A cookie holding a short `history`, and its request whose handler
/// replaced it with one too large for the budget.
async fn history_replaced_by_oversized(sealer: &Sealer) -> (String, RequestSession) {
    let mut first = sealer.new_session().unwrap();
    first
        .insert_with_priority("history", "/p/1", Priority::Low)
        .unwrap();
    let cookie = format!("id={}", sealer.seal(&mut first).unwrap());
    let mut request = sealer.open_request_async([&cookie]).await.unwrap();
    store_oversized_history(&mut request);
    (cookie, request)
}

/// Saves with the synchronous form, or with the asynchronous one (the
/// sealer has a store).
async fn save_either(sealer: &Sealer, request: &mut RequestSession, asynchronous: bool) -> Saved {
    match asynchronous {
        false => sealer.save_request(request).unwrap(),
        true => sealer.save_request_async(request).await.unwrap(),
    }
}

#[test]
fn a_lone_cookie_every_server_refuses_is_deleted_and_others_are_kept() {
    let clock = clock();
    let sealer = builder(&clock).build().unwrap();
    let stranger = builder_with(KeyRing::new(key(9)), &clock).build().unwrap();
    let expired = cookie_with(&sealer, "old");
    clock.advance(3601);
    let deleted = |header: String| {
        let mut request = sealer.open_request([&header]).unwrap();
        assert!(request.session().is_new(), "{header}");
        matches!(action(&sealer, &mut request), CookieAction::Delete(_))
    };
    assert!(deleted("id=forged".to_owned()));
    assert!(deleted(format!("id={expired}")));
    // Another server may know this key, and with two candidates which one
    // is this server's is unknown.
    assert!(!deleted(format!("id={}", cookie_with(&stranger, "s"))));
    assert!(!deleted("id=forged; id=forged-too".to_owned()));

    // Logging out deletes whatever session cookie the request carried.
    let header = format!("id={}", cookie_with(&stranger, "s"));
    let mut request = sealer.open_request([&header]).unwrap();
    request.session_mut().flush().unwrap();
    assert!(matches!(
        action(&sealer, &mut request),
        CookieAction::Delete(_)
    ));
}

/// `cookie` with its decoded bytes changed by `edit` (FORMAT.md §3: byte
/// 0 the version, byte 1 the flags).
fn edited(cookie: &str, edit: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut bytes = URL_SAFE_NO_PAD.decode(cookie).unwrap();
    edit(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Opens `cookie`, the request's only session cookie, with `sealer` and
/// saves the fresh session it gets without storing anything: the error it
/// was rejected with, and the action.
fn refused_then_saved(sealer: &Sealer, cookie: &str) -> (Option<Error>, CookieAction) {
    let mut request = sealer.open_request([format!("id={cookie}")]).unwrap();
    assert!(request.session().is_new(), "{cookie}");
    let rejected = request.rejected_cookie().cloned();
    (rejected, action(sealer, &mut request))
}

#[test]
fn a_lone_cookie_from_a_newer_release_a_clock_ahead_or_over_the_limits_is_kept() {
    let clock = clock();
    let sealer = builder(&clock).build().unwrap();
    let cookie = cookie_with(&sealer, "kept");
    assert!(sealer.open(&cookie).is_ok(), "the unaltered cookie opens");
    let kept = |sealer: &Sealer, cookie: &str, why: Error| {
        assert_eq!(
            refused_then_saved(sealer, cookie),
            (Some(why), CookieAction::Unchanged),
            "{cookie}"
        );
    };

    // A newer version (the version byte is checked first, FORMAT.md §8).
    kept(
        &sealer,
        &edited(&cookie, |b| b[0] = 2),
        Error::Malformed(Malformed::UnknownVersion(2)),
    );
    // A header flag v1 does not define (only bit 0, compression, is).
    let flagged = edited(&cookie, |b| {
        assert_eq!(b[1], 0, "a small session is sealed uncompressed");
        b[1] = 0x02;
    });
    kept(
        &sealer,
        &flagged,
        Error::Malformed(Malformed::UnknownFlags(0x02)),
    );

    // Sealed by a server whose clock runs ahead by more than the skew.
    let ahead = Arc::new(FixedClock::new(common::T0 + 61));
    assert_eq!(sealer.clock_skew(), Duration::from_secs(60));
    let from_the_future = cookie_with(&builder(&ahead).build().unwrap(), "ahead");
    kept(&sealer, &from_the_future, Error::IssuedInFuture);
    // Ahead by exactly the skew, it opens.
    ahead.set(common::T0 + 60);
    let within = cookie_with(&builder(&ahead).build().unwrap(), "ahead");
    assert!(sealer.open(&within).is_ok());

    // Over this server's limits, which another server may set higher: the
    // token's length (checked before decoding) and the entry count (after
    // authentication).
    let short = builder(&clock)
        .limits(Limits::default().with_max_token_len(cookie.len() - 1))
        .build()
        .unwrap();
    kept(&short, &cookie, Error::LimitExceeded(Limit::TokenLength));
    let mut two = sealer.new_session().unwrap();
    two.insert("a", 1).unwrap();
    two.insert("b", 2).unwrap();
    let two = sealer.seal(&mut two).unwrap();
    let fewer = builder(&clock)
        .limits(Limits::default().with_max_entries(1))
        .build()
        .unwrap();
    kept(&fewer, &two, Error::LimitExceeded(Limit::Entries));
    // Within the limits, both open.
    let exact = Limits::default().with_max_token_len(cookie.len());
    let exact = builder(&clock).limits(exact).build().unwrap();
    assert!(exact.open(&cookie).is_ok());
    let two_entries = Limits::default().with_max_entries(2);
    let two_entries = builder(&clock).limits(two_entries).build().unwrap();
    assert!(two_entries.open(&two).is_ok());

    // The control: a tampered cookie (one ciphertext byte changed) fails
    // everywhere, and is deleted.
    let tampered = edited(&cookie, |b| {
        let last = b.len() - 1;
        b[last - 20] ^= 1;
    });
    let (why, action) = refused_then_saved(&sealer, &tampered);
    assert_eq!(why, Some(Error::AuthenticationFailed));
    let CookieAction::Delete(deletion) = action else {
        panic!("a tampered cookie is deleted: {action:?}");
    };
    assert!(deletion.starts_with("id=;") && deletion.contains("Max-Age=0"));
}

#[tokio::test]
async fn a_cookie_the_revocation_store_could_not_check_is_not_replaced() {
    let clock = clock();
    let cookie = format!(
        "id={}",
        cookie_with(&builder(&clock).build().unwrap(), "kept")
    );
    let down = Arc::new(RevocationsDown::default());
    let sealer = builder(&clock)
        .revocation(down.clone(), None)
        .build()
        .unwrap();
    assert_eq!(
        sealer.open_request([&cookie]).unwrap_err(),
        Error::Store(StoreError::NeedsAsync)
    );

    // The first candidate's outage ends the search: every other candidate
    // would wait for the same store, to the same end.
    let two = format!("{cookie}; {cookie}");
    let mut request = sealer.open_request_async([&two]).await.unwrap();
    assert_eq!(down.0.load(Ordering::SeqCst), 1);
    assert!(request.session().is_new());
    assert_eq!(
        request.held_back_by(),
        Some(&Error::Store(StoreError::Unavailable))
    );
    // Doing nothing keeps the cookie; a write is refused rather than saved
    // over it; logging out deletes it.
    let saved = sealer.save_request_async(&mut request).await.unwrap();
    assert_eq!(saved.action, CookieAction::Unchanged);
    request.session_mut().insert("user", "ada").unwrap();
    assert_eq!(
        sealer.save_request_async(&mut request).await.unwrap_err(),
        Error::Store(StoreError::Unavailable)
    );
    request.session_mut().flush().unwrap();
    let saved = sealer.save_request_async(&mut request).await.unwrap();
    assert!(matches!(saved.action, CookieAction::Delete(_)));
    // A flush followed by new entries is refused like any write: it may
    // be a login, which must not turn into a silent logout.
    let mut request = sealer.open_request_async([&cookie]).await.unwrap();
    request.session_mut().flush().unwrap();
    request.session_mut().insert("user", "ada").unwrap();
    assert_eq!(
        sealer.save_request_async(&mut request).await.unwrap_err(),
        Error::Store(StoreError::Unavailable)
    );
}

#[tokio::test]
async fn only_a_logout_revokes_the_cookie_held_back() {
    let clock = clock();
    let revocations = Arc::new(common::FlakyRevocations::with_clock(&clock));
    let sealer = builder(&clock)
        .revocation_store(revocations.clone(), None)
        .build()
        .unwrap();
    let cookie = cookie_with(&sealer, "kept");
    let header = format!("id={cookie}");
    let held_back = || async {
        revocations.set_checks_down(true);
        let request = sealer.open_request_async([&header]).await.unwrap();
        revocations.set_checks_down(false);
        assert!(request.held_back_by().is_some());
        request
    };
    // The fresh session taken out and saved as a new one (a cart of an
    // anonymous visitor): the cookie held back is not its to revoke.
    let mut session = held_back().await.into_session();
    session.insert("cart", "1 book").unwrap();
    let saved = sealer.save_async(&mut session).await.unwrap();
    assert!(matches!(saved.action, CookieAction::Set(_)));
    assert!(sealer.open_async(&cookie).await.is_ok());
    // Nor is an untouched request's.
    let mut request = held_back().await;
    let _ = sealer.save_request_async(&mut request).await.unwrap();
    assert!(sealer.open_async(&cookie).await.is_ok());
    // A logout's is.
    let mut request = held_back().await;
    request.session_mut().flush().unwrap();
    let saved = sealer.save_request_async(&mut request).await.unwrap();
    assert!(matches!(saved.action, CookieAction::Delete(_)));
    assert_eq!(saved.report.unrevoked, None);
    assert_eq!(
        sealer.open_async(&cookie).await.unwrap_err(),
        Error::Revoked
    );
}

#[tokio::test]
async fn the_synchronous_forms_refuse_a_sealer_with_an_overflow_store() {
    let clock = clock();
    let sealer = builder(&clock)
        .overflow_store(Arc::new(MemoryStore::with_clock(clock.clone())))
        .build()
        .unwrap();
    let needs_async = Error::Store(StoreError::NeedsAsync);
    assert_eq!(sealer.open_request(None::<&str>).unwrap_err(), needs_async);
    // `save_request` would drop every overflowed entry: refused too.
    let mut request = sealer.open_request_async(None::<&str>).await.unwrap();
    request.session_mut().insert("k", 1).unwrap();
    assert_eq!(sealer.save_request(&mut request).unwrap_err(), needs_async);
    let saved = sealer.save_request_async(&mut request).await.unwrap();
    assert!(matches!(saved.action, CookieAction::Set(_)));
}

/// Deleting an emptied session's cookie needs no new session id: a
/// generator failure does not turn the deletion into an error.
#[test]
fn deleting_an_emptied_sessions_cookie_draws_no_randomness() {
    struct NoEntropy;
    impl sealed_session::RandomSource for NoEntropy {
        fn fill(&self, _: &mut [u8]) -> Result<(), Error> {
            Err(Error::Random)
        }
    }
    let clock = clock();
    let cookie = format!("id={}", cookie_with(&builder(&clock).build().unwrap(), "x"));
    let sealer = builder(&clock).random(Arc::new(NoEntropy)).build().unwrap();
    let mut request = sealer.open_request([&cookie]).unwrap();
    request.session_mut().clear();
    assert!(matches!(
        action(&sealer, &mut request),
        CookieAction::Delete(_)
    ));
}

/// "Log out my other devices" gives the session a new id but not a new
/// life: repeating it cannot keep a cookie open past its absolute
/// lifetime. Without a user it changes nothing; without a user key it
/// refuses.
#[tokio::test]
async fn logging_out_other_sessions_keeps_the_sessions_age() {
    let clock = clock();
    let revocations = Arc::new(MemoryRevocations::with_clock(clock.clone()));
    let sealer = builder(&clock)
        .revocation_store(revocations.clone(), Some("user"))
        .build()
        .unwrap();
    let mut session = sealer.new_session().unwrap();
    session.insert("user", "ada").unwrap();
    let created = session.created_at();
    let mut laptop = sealer.new_session().unwrap();
    laptop.insert("user", "ada").unwrap();
    let other = sealer.seal(&mut laptop).unwrap();
    clock.advance(100);
    let old_id = session.id();
    assert!(sealer.log_out_other_sessions(&mut session).await.unwrap());
    assert_ne!(session.id(), old_id);
    assert_eq!(session.created_at(), created);
    let kept = sealer.seal(&mut session).unwrap();
    assert_eq!(
        sealer.open_async(&kept).await.unwrap().created_at(),
        created
    );
    assert_eq!(sealer.open_async(&other).await.unwrap_err(), Error::Revoked);

    let mut anonymous = sealer.new_session().unwrap();
    let id = anonymous.id();
    assert!(!sealer.log_out_other_sessions(&mut anonymous).await.unwrap());
    assert_eq!(anonymous.id(), id);

    let unkeyed = builder(&clock)
        .revocation_store(revocations, None)
        .build()
        .unwrap();
    let mut session = unkeyed.new_session().unwrap();
    session.insert("user", "ada").unwrap();
    for refused in [
        unkeyed.log_out_other_sessions(&mut session).await,
        unkeyed.log_out_everywhere(&mut session).await,
    ] {
        assert_eq!(
            refused.unwrap_err(),
            Error::InvalidSetting(sealed_session::InvalidSetting::NoUserRevocation)
        );
    }
    assert!(!session.is_flushed(), "nothing done");
}

/// `builder` with in-memory revocations on `clock` and the user key
/// "user": those revocations, the sealer, and the cookie of a session of
/// user "ada".
fn ada_signed_in(
    clock: &Arc<FixedClock>,
    builder: sealed_session::SealerBuilder,
) -> (Arc<MemoryRevocations>, Sealer, String) {
    let revocations = Arc::new(MemoryRevocations::with_clock(clock.clone()));
    let sealer = builder
        .revocation_store(revocations.clone(), Some("user"))
        .build()
        .unwrap();
    let mut session = sealer.new_session().unwrap();
    session.insert("user", "ada").unwrap();
    let cookie = sealer.seal(&mut session).unwrap();
    (revocations, sealer, cookie)
}

/// Signs `session` in as "ada" (a new id, as at login) and saves it:
/// the new cookie.
async fn sign_in(sealer: &Sealer, session: &mut sealed_session::Session) -> String {
    session.insert("user", "ada").unwrap();
    session.cycle_id().unwrap();
    let saved = sealer.save_async(session).await.unwrap();
    saved.action.cookie_value().expect("a cookie").to_owned()
}

/// A login in the request that logged the user out everywhere (a
/// password reset: check, log out everywhere, sign in again) or in one
/// that opened before an administrator did: `cycle_id` dates the session
/// from its save, so the new cookie is not covered by a revocation
/// recorded in an earlier second, however long ago the request opened.
/// One recorded in the save's own second still covers it.
#[tokio::test]
async fn a_login_after_a_log_out_everywhere_in_the_same_request_stays_in() {
    let clock = clock();
    let (revocations, sealer, cookie) = ada_signed_in(&clock, builder(&clock));

    clock.set(common::T0 + 100);
    let mut reset = sealer.open_async(&cookie).await.unwrap();
    clock.set(common::T0 + 102); // after a slow password hash
    assert!(sealer.log_out_everywhere(&mut reset).await.unwrap());
    clock.set(common::T0 + 105);
    let signed_in = sign_in(&sealer, &mut reset).await;
    assert_eq!(reset.created_at(), common::T0 + 105);
    // Dated once: a second save in the same request keeps that time.
    clock.set(common::T0 + 107);
    reset.insert("seen", true).unwrap();
    let saved = sealer.save_async(&mut reset).await.unwrap();
    assert_eq!(reset.created_at(), common::T0 + 105);
    let resaved = saved.action.cookie_value().expect("a cookie").to_owned();
    assert_eq!(
        sealer.open_async(&resaved).await.unwrap().created_at(),
        common::T0 + 105
    );
    clock.set(common::T0 + 110);
    let reopened = sealer.open_async(&signed_in).await.unwrap();
    assert_eq!(reopened.created_at(), common::T0 + 105);
    assert_eq!(
        sealer.open_async(&cookie).await.unwrap_err(),
        Error::Revoked
    );

    // An anonymous request that began before the administrator's record.
    let mut anonymous = sealer.new_session().unwrap();
    clock.set(common::T0 + 111);
    let keep_for = Duration::from_secs(4000);
    revocations.revoke_user("ada", keep_for).unwrap();
    clock.set(common::T0 + 113);
    let signed_in = sign_in(&sealer, &mut anonymous).await;
    assert!(sealer.open_async(&signed_in).await.is_ok());

    // Within the record's second: still revoked (times are whole seconds).
    let mut same_second = sealer.new_session().unwrap();
    revocations.revoke_user("ada", keep_for).unwrap();
    let signed_in = sign_in(&sealer, &mut same_second).await;
    assert_eq!(
        sealer.open_async(&signed_in).await.unwrap_err(),
        Error::Revoked
    );
}

/// A request running longer than a minute (a slow upload) that opened
/// before a logout re-seals the revoked id dated a minute after its open,
/// not at its save: the cookie ends, by its idle timeout, before the
/// logout's record does, instead of opening again once the record is
/// gone. Without a revocation check the save is dated as usual.
#[tokio::test]
async fn a_request_running_for_minutes_cannot_outlast_a_logout() {
    let clock = clock();
    let revocations = Arc::new(MemoryRevocations::with_clock(clock.clone()));
    let sealer = builder(&clock)
        .revocation_store(revocations, None)
        .build()
        .unwrap();
    let cookie = cookie_with(&sealer, "cart");
    let mut slow = sealer.open_async(&cookie).await.unwrap();
    clock.advance(1);
    let mut logout = sealer.open_async(&cookie).await.unwrap();
    logout.flush().unwrap();
    let saved = sealer.save_async(&mut logout).await.unwrap();
    assert!(matches!(saved.action, CookieAction::Delete(_)));

    clock.set(common::T0 + 300);
    slow.insert("seen", true).unwrap();
    let saved = sealer.save_async(&mut slow).await.unwrap();
    assert_eq!(slow.issued_at(), Some(common::T0 + 60));
    let re_sealed = saved.action.cookie_value().expect("a cookie").to_owned();
    assert_eq!(
        sealer.open_async(&re_sealed).await.unwrap_err(),
        Error::Revoked
    );
    // Saved again, later: still dated from the open, not from the save.
    clock.set(common::T0 + 400);
    slow.insert("seen", false).unwrap();
    let again = sealer.save_async(&mut slow).await.unwrap();
    assert!(again.action.cookie_value().is_some());
    assert_eq!(slow.issued_at(), Some(common::T0 + 60));
    // The record ends `revocation_ttl` plus a minute after the logout.
    clock.set(common::T0 + 1 + sealer.revocation_ttl().unwrap().as_secs() + 60 + 1);
    assert_eq!(
        sealer.open_async(&re_sealed).await.unwrap_err(),
        Error::Expired(sealed_session::Expired::Idle)
    );

    // A new session, or one given a new id, has no revoked id to carry.
    let mut fresh = sealer.new_session().unwrap();
    let mut cycled = sealer
        .open_async(&cookie_with(&sealer, "cart"))
        .await
        .unwrap();
    clock.advance(300);
    fresh.insert("seen", true).unwrap();
    cycled.cycle_id().unwrap();
    for session in [&mut fresh, &mut cycled] {
        assert!(sealer
            .save_async(session)
            .await
            .unwrap()
            .action
            .cookie_value()
            .is_some());
        assert_eq!(session.issued_at(), Some(session.now() + 300));
    }

    let unchecked = builder(&clock).build().unwrap();
    let mut slow = unchecked.open(&cookie_with(&unchecked, "cart")).unwrap();
    clock.advance(300);
    slow.insert("seen", true).unwrap();
    unchecked.seal(&mut slow).unwrap();
    assert_eq!(slow.issued_at(), Some(slow.now() + 300));
}

/// A slow request whose session was not revoked meanwhile is saved at the
/// real time: the asynchronous save asks the check again once the
/// request has run past the minute, instead of dating the cookie back
/// (dated back, a slow upload's cookie would arrive as old as the upload
/// less a minute: due for a refresh, or near a short idle timeout,
/// expired). The synchronous save cannot
/// ask, and dates it back. A session created in the request and logged
/// in, whose user is revoked while the request runs, is dated back too.
#[tokio::test]
async fn a_slow_request_is_checked_again_rather_than_dated_back() {
    let clock = clock();
    let idle_300 = builder(&clock).max_idle(Duration::from_secs(300));
    let (revocations, sealer, cookie) = ada_signed_in(&clock, idle_300);

    let mut upload = sealer.open_async(&cookie).await.unwrap();
    let mut synchronous = sealer.open_async(&cookie).await.unwrap();
    clock.advance(350);
    for session in [&mut upload, &mut synchronous] {
        session.insert("upload", 1u8).unwrap();
    }
    let saved = sealer.save_async(&mut upload).await.unwrap();
    assert_eq!(upload.issued_at(), Some(common::T0 + 350));
    let after_upload = saved.action.cookie_value().expect("a cookie").to_owned();
    clock.advance(1);
    assert!(sealer.open_async(&after_upload).await.is_ok());
    sealer.seal(&mut synchronous).unwrap();
    assert_eq!(synchronous.issued_at(), Some(common::T0 + 60));

    // Saved again later in the same request, within a minute of the
    // recheck: at the real time.
    clock.advance(29);
    upload.insert("upload", 2u8).unwrap();
    let saved = sealer.save_async(&mut upload).await.unwrap();
    assert!(saved.action.cookie_value().is_some());
    assert_eq!(upload.issued_at(), Some(common::T0 + 380));

    // A record is kept `revocation_ttl` plus a minute: 421 s here.
    let keep_for = sealer.revocation_ttl().unwrap() + Duration::from_secs(60);
    let mut signing_up = sealer.new_session().unwrap();
    signing_up.insert("user", "bob").unwrap();
    clock.advance(10);
    revocations.revoke_user("bob", keep_for).unwrap();
    clock.advance(200);
    let saved = sealer.save_async(&mut signing_up).await.unwrap();
    assert_eq!(signing_up.issued_at(), Some(signing_up.now() + 60));
    let revoked = saved.action.cookie_value().expect("a cookie").to_owned();
    assert_eq!(
        sealer.open_async(&revoked).await.unwrap_err(),
        Error::Revoked
    );

    // As long as a record is kept (less the clock skew, 60 s by default:
    // this clock may have been stepped back meanwhile), a check could miss
    // one written while the request ran: dated back, though nothing was
    // revoked.
    let mut longer = sealer.open_async(&after_upload).await.unwrap();
    clock.advance(keep_for.as_secs() - 60);
    longer.insert("upload", 3u8).unwrap();
    let saved = sealer.save_async(&mut longer).await.unwrap();
    assert!(saved.action.cookie_value().is_some());
    assert_eq!(longer.issued_at(), Some(longer.now() + 60));
}

/// "Log out my other devices" from a request that opened before another
/// device logged the user out everywhere: refused as revoked, rather than
/// replacing that record with one that spares this session.
#[tokio::test]
async fn logging_out_other_sessions_after_being_logged_out_is_refused() {
    let clock = clock();
    let (_, sealer, cookie) = ada_signed_in(&clock, builder(&clock));
    let mut in_flight = sealer.open_async(&cookie).await.unwrap();
    let id = in_flight.id();
    clock.advance(1);
    // A login request that began in the second of the log out below.
    let mut signing_in = sealer.new_session().unwrap();
    let mut elsewhere = sealer.open_async(&cookie).await.unwrap();
    assert!(sealer.log_out_everywhere(&mut elsewhere).await.unwrap());
    clock.advance(1);
    assert_eq!(
        sealer
            .log_out_other_sessions(&mut in_flight)
            .await
            .unwrap_err(),
        Error::Revoked
    );
    assert_eq!(in_flight.id(), id);
    assert_eq!(
        sealer.open_async(&cookie).await.unwrap_err(),
        Error::Revoked
    );

    // A login after the record (a new id, dated by its save) has no
    // earlier record to escape.
    signing_in.insert("user", "ada").unwrap();
    signing_in.cycle_id().unwrap();
    assert!(sealer
        .log_out_other_sessions(&mut signing_in)
        .await
        .unwrap());
    let saved = sealer.save_async(&mut signing_in).await.unwrap();
    let signed_in = saved.action.cookie_value().expect("a cookie").to_owned();
    assert!(sealer.open_async(&signed_in).await.is_ok());
}

/// `Cookie` lines joined with `", "` hide a session cookie that starts a
/// later line (FORMAT.md §14.4 does not split at commas): the visitor
/// gets a fresh session, and the log says why, without the value.
#[tokio::test]
async fn a_session_cookie_after_a_comma_is_not_taken_but_logged() {
    let sealer = builder(&clock()).build().unwrap();
    let cookie = cookie_with(&sealer, "one");
    let (logs, _guard) = common::Logs::capture(tracing::Level::INFO);
    let joined = sealer
        .open_request([format!("theme=dark, id={cookie}")])
        .unwrap();
    assert!(joined.session().is_new());
    assert_eq!(joined.rejected_cookie(), None);
    let joined = sealer
        .open_request_async([format!("theme=dark, id={cookie}")])
        .await
        .unwrap();
    assert!(joined.session().is_new());
    let text = logs.text();
    assert_eq!(text.matches("cookie-after-comma").count(), 2, "{text}");
    assert!(!text.contains(&cookie), "no value in the log: {text}");

    // Separate lines, or the session cookie first: taken, and no event.
    let (logs, _guard) = common::Logs::capture(tracing::Level::INFO);
    for headers in [
        vec!["theme=dark".to_owned(), format!("id={cookie}")],
        vec![format!("id={cookie}, theme=dark")],
    ] {
        let request = sealer.open_request(&headers).unwrap();
        assert_eq!(marker(&request).as_deref(), Some("one"));
    }
    // A comma without the session's name after it, or no cookie at all.
    for header in ["theme=dark, ids=1", "theme=a,b", ""] {
        assert!(sealer.open_request([header]).unwrap().session().is_new());
    }
    assert!(logs.is_empty(), "{}", logs.text());
}

/// Counts the revocation checks asked of the memory store it wraps.
struct CountedChecks(MemoryRevocations, std::sync::atomic::AtomicUsize);

impl sealed_session::store::RevocationCheck for CountedChecks {
    fn is_revoked<'a>(
        &'a self,
        query: sealed_session::store::RevocationQuery<'a>,
    ) -> sealed_session::store::BoxFuture<'a, Result<bool, Error>> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.is_revoked(query)
    }
}

/// Every save runs past the late-save test, so it must stay a test: a
/// save within the minute after the check asks nothing more, and neither
/// does a late save that seals nothing (a session unchanged, or emptied
/// and deleted); a late save that seals asks once.
#[tokio::test]
async fn only_a_late_save_that_seals_asks_the_check_again() {
    let clock = clock();
    let checks = Arc::new(CountedChecks(
        MemoryRevocations::with_clock(clock.clone()),
        Default::default(),
    ));
    let sealer = builder(&clock)
        .revocation(checks.clone(), Some("user"))
        .build()
        .unwrap();
    let asked = || checks.1.load(Ordering::SeqCst);
    let cookie = cookie_with(&sealer, "cart");
    let mut session = sealer.open_async(&cookie).await.unwrap();
    assert_eq!(asked(), 1, "the open's check");
    clock.advance(60);
    session.insert("seen", 1u8).unwrap();
    let saved = sealer.save_async(&mut session).await.unwrap();
    assert!(saved.action.cookie_value().is_some());
    assert_eq!(asked(), 1);

    let mut unchanged = sealer.open_async(&cookie).await.unwrap();
    let header = format!("id={cookie}");
    let mut emptied = sealer.open_request_async([&header]).await.unwrap();
    assert_eq!(asked(), 3, "their opens' checks");
    clock.advance(100);
    let saved = sealer.save_async(&mut unchanged).await.unwrap();
    assert!(matches!(saved.action, CookieAction::Unchanged));
    emptied.session_mut().clear();
    let saved = sealer.save_request_async(&mut emptied).await.unwrap();
    assert!(matches!(saved.action, CookieAction::Delete(_)));
    assert_eq!(asked(), 3);

    session.insert("seen", 2u8).unwrap();
    let saved = sealer.save_async(&mut session).await.unwrap();
    assert!(saved.action.cookie_value().is_some());
    assert_eq!(asked(), 4, "the late save's check");
}

/// Whether the cookie `pair` is refused as revoked.
async fn is_revoked(sealer: &Sealer, pair: &str) -> bool {
    let request = sealer.open_request_async([pair]).await.unwrap();
    request.rejected_cookie() == Some(&Error::Revoked)
}

/// Without the layer, a host whose request is dropped before or while a
/// logout saves finishes it with `finish_dropped_logout`: the old cookie
/// is revoked. A request without a logout has nothing to finish.
#[tokio::test]
async fn a_host_finishes_a_logout_whose_save_was_dropped() {
    let clock = clock();
    let revocations = Arc::new(common::FlakyRevocations::with_clock(&clock));
    let sealer = builder(&clock)
        .revocation_store(revocations.clone(), Some("user"))
        .build()
        .unwrap();
    let signed_in = || {
        let mut session = sealer.new_session().unwrap();
        session.insert("user", "ada").unwrap();
        format!("id={}", sealer.seal(&mut session).unwrap())
    };

    // No logout: a change, then a new id (a login whose cookie never went
    // out: the client keeps the old one, which must stay valid).
    let cookie = signed_in();
    let mut request = sealer.open_request_async([&cookie]).await.unwrap();
    request.session_mut().insert("cart", 1).unwrap();
    assert!(!request.logout_unrecorded());
    request.session_mut().cycle_id().unwrap();
    assert!(!request.logout_unrecorded());
    assert_eq!(sealer.finish_dropped_logout(&mut request).await, Ok(None));
    assert!(!is_revoked(&sealer, &cookie).await);

    for case in [
        "dropped before its save",
        "dropped while revoking",
        "a new user",
    ] {
        let cookie = signed_in();
        let mut request = sealer.open_request_async([&cookie]).await.unwrap();
        request.session_mut().flush().unwrap();
        if case == "a new user" {
            // Its save seals the new user's cookie, then revokes the old id.
            request.session_mut().insert("user", "bob").unwrap();
        }
        if case != "dropped before its save" {
            revocations.set_hangs(true);
            let save = sealer.save_request_async(&mut request);
            let answer = tokio::time::timeout(Duration::from_millis(20), save).await;
            assert!(answer.is_err(), "{case}: the save never returns");
            revocations.set_hangs(false);
        }
        assert!(request.logout_unrecorded(), "{case}");
        assert!(!is_revoked(&sealer, &cookie).await, "{case}");
        let report = sealer.finish_dropped_logout(&mut request).await.unwrap();
        assert_eq!(
            report.expect("a logout to finish").unrevoked,
            None,
            "{case}"
        );
        assert!(is_revoked(&sealer, &cookie).await, "{case}");
        assert!(!request.logout_unrecorded(), "{case}");
        assert_eq!(
            sealer.finish_dropped_logout(&mut request).await,
            Ok(None),
            "{case}"
        );
    }
}

/// A cookie in a request's `Cookie` headers, for the selection property.
#[derive(Debug, Clone)]
enum Candidate {
    /// This server's cookie holding marker `n`, named `id`, ` id` (spaces
    /// around a name are not part of it) or quoted.
    Valid { n: u8, spaced: bool, quoted: bool },
    /// This server's cookie, past its idle timeout.
    Expired,
    /// Not a token at all.
    Forged,
    /// Sealed under a key this server does not have: another server may
    /// open it.
    Stranger,
    /// Another cookie: `idx`, `ID`, or `id` behind a space that is not a
    /// space or a tab.
    OtherName { n: u8, name: u8 },
}

fn candidate() -> impl proptest::strategy::Strategy<Value = Candidate> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (0u8..4, any::<bool>(), any::<bool>())
            .prop_map(|(n, spaced, quoted)| Candidate::Valid { n, spaced, quoted }),
        1 => Just(Candidate::Expired),
        1 => Just(Candidate::Forged),
        1 => Just(Candidate::Stranger),
        2 => (0u8..4, 0u8..3).prop_map(|(n, name)| Candidate::OtherName { n, name }),
    ]
}

proptest::proptest! {
    /// FORMAT.md §14.4 over any mix of cookies, however the browser splits
    /// them into `Cookie` lines: the first of the session's name that
    /// opens, among the first `max_cookies_tried`, is the session; if none
    /// does, the session is new, and the save deletes the cookie only when
    /// it was the request's one cookie of that name and no server can open
    /// it.
    #[test]
    fn the_session_is_the_first_cookie_of_its_name_that_opens(
        candidates in proptest::collection::vec(candidate(), 0..7),
        breaks in proptest::collection::vec(proptest::prelude::any::<bool>(), 7),
        max_tried in 0usize..6,
    ) {
        let clock = clock();
        let earlier = Arc::new(FixedClock::new(common::T0 - 3601));
        let sealer = builder(&clock).max_cookies_tried(max_tried).build().unwrap();
        let expired = cookie_with(&builder(&earlier).build().unwrap(), "expired");
        let stranger = cookie_with(&builder_with(KeyRing::new(key(9)), &clock).build().unwrap(), "s");
        let valid: Vec<String> = (0..4).map(|n| cookie_with(&sealer, &format!("m{n}"))).collect();

        // The pairs as the browser sends them, and the model's view: the
        // session cookies in order, each with the marker it opens to.
        let mut pairs = Vec::new();
        let mut named: Vec<(Option<String>, bool)> = Vec::new();
        for candidate in &candidates {
            let (pair, is_named, opens, for_good) = match candidate {
                Candidate::Valid { n, spaced, quoted } => {
                    let value = &valid[usize::from(*n)];
                    let value = if *quoted { format!("\"{value}\"") } else { value.clone() };
                    let name = if *spaced { " id " } else { "id" };
                    (format!("{name}={value}"), true, Some(format!("m{n}")), false)
                }
                Candidate::Expired => (format!("id={expired}"), true, None, true),
                Candidate::Forged => ("id=forged".to_owned(), true, None, true),
                Candidate::Stranger => (format!("id={stranger}"), true, None, false),
                Candidate::OtherName { n, name } => {
                    let name = ["idx", "ID", "\u{2000}id"][usize::from(*name)];
                    (format!("{name}={}", valid[usize::from(*n)]), false, None, false)
                }
            };
            pairs.push(pair);
            if is_named {
                named.push((opens, for_good));
            }
        }
        let mut headers = vec![String::new()];
        for (i, pair) in pairs.iter().enumerate() {
            let line = headers.last_mut().unwrap();
            if !line.is_empty() {
                line.push_str("; ");
            }
            line.push_str(pair);
            if breaks[i] {
                headers.push(String::new());
            }
        }

        let mut request = sealer.open_request(&headers).unwrap();
        let tried = max_tried.max(1);
        let want = named.iter().take(tried).find_map(|(opens, _)| opens.clone());
        proptest::prop_assert_eq!(marker(&request), want.clone(), "{:?}", headers);
        if want.is_none() {
            proptest::prop_assert!(request.session().is_new());
            let deleted = matches!(action(&sealer, &mut request), CookieAction::Delete(_));
            let lone_for_good = named.len() == 1 && named[0].1;
            proptest::prop_assert_eq!(deleted, lone_for_good, "{:?}", headers);
        }
    }
}

/// `set_cookie_headers` adds the old name's deletion to what the save sends
/// whenever the request carried such a cookie (wherever in its headers),
/// as the HTTP layer does: a logout then holds for a browser that still
/// has the old cookie.
#[test]
fn set_cookie_headers_delete_a_cookie_of_the_previous_name_the_request_carried() {
    let clock = clock();
    let old = builder(&clock).cookie_name("old").build().unwrap();
    let sealer = builder(&clock).previous_cookie_name("old").build().unwrap();
    let removal = sealer.previous_cookie_removal().unwrap();
    let (was, is) = (cookie_with(&old, "was"), cookie_with(&sealer, "is"));
    let headers_of = |request: &mut RequestSession| {
        let saved = sealer.save_request(request).unwrap();
        let headers: Vec<String> = sealer
            .set_cookie_headers(request, &saved.action)
            .into_iter()
            .map(str::to_owned)
            .collect();
        headers
    };

    // Opened from the old cookie and logged out: both cookies deleted.
    let mut request = sealer.open_request([format!("old={was}")]).unwrap();
    assert!(request.carried_previous_name());
    request.session_mut().flush().unwrap();
    let headers = headers_of(&mut request);
    assert_eq!(headers.len(), 2, "{headers:?}");
    assert!(headers[0].starts_with("id=;"), "{headers:?}");
    assert_eq!(headers[1], removal);
    // ...and the old cookie would otherwise still open.
    assert!(sealer
        .open_request([format!("old={was}")])
        .unwrap()
        .opened_from_previous_name());

    // The current cookie opened, the old one in a later header: a write
    // deletes it too (it opened on no request, but would after a logout).
    let lines = [format!("id={is}"), format!("theme=dark; old={was}")];
    let mut request = sealer.open_request(&lines).unwrap();
    assert!(!request.opened_from_previous_name());
    assert!(request.carried_previous_name());
    request.session_mut().insert("n", 1).unwrap();
    let headers = headers_of(&mut request);
    assert_eq!(headers.len(), 2, "{headers:?}");
    assert!(headers[0].starts_with("id="));
    assert_eq!(headers[1], removal);
    // Unchanged, nothing is sent, the old cookie's deletion neither.
    let mut request = sealer.open_request(&lines).unwrap();
    assert_eq!(headers_of(&mut request), Vec::<String>::new());

    // An old cookie that failed for good goes even with nothing else.
    let mut request = sealer.open_request([format!("old={is}")]).unwrap();
    assert!(request.previous_cookie_rejected_for_good());
    assert_eq!(headers_of(&mut request), [removal]);

    // No old cookie: only the session cookie.
    let mut request = sealer.open_request([format!("id={is}")]).unwrap();
    assert!(!request.carried_previous_name());
    request.session_mut().flush().unwrap();
    let headers = headers_of(&mut request);
    assert_eq!(headers.len(), 1, "{headers:?}");
    assert!(headers[0].starts_with("id=;"));
}

/// The same through the asynchronous forms, on a sealer with a store.
#[tokio::test]
async fn set_cookie_headers_apply_to_the_asynchronous_request_api() {
    let clock = clock();
    let old = builder(&clock).cookie_name("old").build().unwrap();
    let sealer = builder(&clock)
        .previous_cookie_name("old")
        .overflow_store(Arc::new(MemoryStore::with_clock(clock.clone())))
        .build()
        .unwrap();
    let was = cookie_with(&old, "was");
    let lines = ["theme=dark".to_owned(), format!("old={was}")];
    let mut request = sealer.open_request_async(&lines).await.unwrap();
    assert!(request.opened_from_previous_name() && request.carried_previous_name());
    request.session_mut().flush().unwrap();
    let saved = sealer.save_request_async(&mut request).await.unwrap();
    let headers = sealer.set_cookie_headers(&request, &saved.action);
    assert_eq!(headers.len(), 2, "{headers:?}");
    assert_eq!(Some(headers[1]), sealer.previous_cookie_removal());
}
