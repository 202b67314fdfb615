//! The session API and the time rules, through the public API.

use sealed_session::{
    Clock, Compression, Error, Expired, Expiry, FixedClock, InvalidEntryKey, InvalidSetting,
    KeyRing, Limit, Limits, Priority, Sealer, SealerBuilder, Session, ValueError,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

mod common;
use common::{key, logged, with_timeouts, T0};

/// This file's usual settings (not common's `builder_with`): `max_idle`
/// 1000 s, `max_lifetime` 5000 s, a 30 s skew, a refresh at a quarter of
/// the window.
fn short_window_builder(ring: KeyRing, clock: &Arc<FixedClock>) -> SealerBuilder {
    Sealer::builder(ring)
        .cookie_name("id")
        .max_idle(Duration::from_secs(1000))
        .max_lifetime(Duration::from_secs(5000))
        .clock_skew(Duration::from_secs(30))
        .refresh_fraction(0.25)
        .clock(clock.clone())
}

fn sealer_with(ring: KeyRing, clock: &Arc<FixedClock>) -> Sealer {
    short_window_builder(ring, clock).build().unwrap()
}

/// A sealer with `limits` and otherwise the defaults, at `T0`.
fn sealer_limited(limits: Limits) -> Sealer {
    Sealer::builder(KeyRing::new(key(1)))
        .limits(limits)
        .clock(Arc::new(FixedClock::new(T0)))
        .build()
        .unwrap()
}

#[test]
fn typed_values_round_trip() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::new(key(1)), &clock);
    let mut s = sealer.new_session().unwrap();
    let mut map = BTreeMap::new();
    map.insert("nested".to_owned(), vec![Some(1.5f64), None]);
    s.insert("map", &map).unwrap();
    s.insert("bytes", serde_bytes_like()).unwrap();
    s.insert("unicode", "añ🍪").unwrap();
    s.insert_with_priority("uid", u64::MAX, Priority::Critical)
        .unwrap();
    let cookie = sealer.seal(&mut s).unwrap();
    let o = sealer.open(&cookie).unwrap();
    assert_eq!(
        o.get::<BTreeMap<String, Vec<Option<f64>>>>("map").unwrap(),
        Some(map)
    );
    assert_eq!(o.get::<Vec<u8>>("bytes").unwrap(), Some(serde_bytes_like()));
    assert_eq!(o.get::<String>("unicode").unwrap().as_deref(), Some("añ🍪"));
    assert_eq!(o.get::<u64>("uid").unwrap(), Some(u64::MAX));
    assert_eq!(o.priority("uid"), Some(Priority::Critical));
    assert_eq!(o.get::<u64>("missing").unwrap(), None);
    assert_eq!(
        o.get::<u64>("unicode").unwrap_err(),
        Error::Value(ValueError::Deserialize)
    );
    assert_eq!(
        o.keys().collect::<Vec<_>>(),
        ["map", "bytes", "unicode", "uid"]
    );
    assert_eq!(o.id(), s.id());
    assert_eq!(o.created_at(), T0);
}

fn serde_bytes_like() -> Vec<u8> {
    (0..=255).collect()
}

#[test]
fn modified_tracking_and_map_operations() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::new(key(1)), &clock);
    let mut s = sealer.new_session().unwrap();
    assert!(!s.needs_save() && s.is_new() && s.is_empty());
    s.insert_with_priority("a", 1, Priority::High).unwrap();
    let cookie = sealer.seal(&mut s).unwrap();
    assert!(!s.needs_save());

    let mut o = sealer.open(&cookie).unwrap();
    assert!(!o.is_new());
    o.insert("a", 1).unwrap();
    assert!(!o.is_modified(), "same value and priority: not modified");
    assert_eq!(
        o.priority("a"),
        Some(Priority::High),
        "insert keeps the priority"
    );
    o.insert("a", 2).unwrap();
    assert!(o.is_modified());
    assert!(o.contains("a") && o.len() == 1);
    assert_eq!(o.take::<i32>("a").unwrap(), Some(2));
    assert!(!o.remove("a"));
    o.insert("b", 3).unwrap();
    assert!(o.set_priority("b", Priority::Low));
    o.clear();
    assert!(o.is_empty() && o.needs_save() && !o.should_delete_cookie());
}

#[test]
fn reserved_and_empty_keys_are_refused() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::new(key(1)), &clock);
    let mut s = sealer.new_session().unwrap();
    assert_eq!(
        s.insert("_auth", 1).unwrap_err(),
        Error::InvalidEntryKey(InvalidEntryKey::Reserved)
    );
    assert_eq!(
        s.insert("", 1).unwrap_err(),
        Error::InvalidEntryKey(InvalidEntryKey::Empty)
    );
}

#[test]
fn depth_limit_applies_on_insert_so_sealed_values_read_back() {
    let sealer = sealer_limited(Limits::default().with_max_depth(8));
    let nested = |levels: usize| {
        (0..levels).fold(serde_json::json!(1), |inner, _| serde_json::json!([inner]))
    };
    let mut s = sealer.new_session().unwrap();
    // The deepest value the reader accepts is accepted on insert.
    let mut deepest = 0;
    for levels in 1..=8 {
        if s.insert("tree", nested(levels)).is_err() {
            break;
        }
        deepest = levels;
    }
    // ciborium's recursion limit counts arrays: 8 of them nest, a 9th not.
    assert_eq!(deepest, 8);
    assert_eq!(
        s.insert("tree", nested(deepest + 1)).unwrap_err(),
        Error::LimitExceeded(Limit::Depth)
    );
    let cookie = sealer.seal(&mut s).unwrap();
    let opened = sealer.open(&cookie).unwrap();
    assert_eq!(
        opened.get::<serde_json::Value>("tree").unwrap(),
        Some(nested(deepest))
    );
}

/// `cookie_expires_at` is when the cookie stops opening, whichever limit
/// ends it (this file's sealer: idle 1000 s, lifetime 5000 s).
#[test]
fn cookie_expires_at_is_the_last_second_the_cookie_opens() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::new(key(1)), &clock);
    let mut s = sealer.new_session().unwrap();
    s.insert("user", "ada").unwrap();
    assert_eq!(s.cookie_expires_at(), None, "not opened from a cookie");
    let mut cookie = sealer.seal(&mut s).unwrap();
    // Re-sealed every 900 s: the idle timeout ends each cookie, until the
    // lifetime ends the last one first.
    let mut ends = Vec::new();
    for _ in 0..5 {
        clock.advance(900);
        let mut opened = sealer.open(&cookie).unwrap();
        ends.push(opened.cookie_expires_at().unwrap() - T0);
        opened.mark_modified();
        cookie = sealer.seal(&mut opened).unwrap();
    }
    assert_eq!(ends, [1000, 1900, 2800, 3700, 4600], "the idle timeout");
    clock.advance(100);
    let end = sealer.open(&cookie).unwrap().cookie_expires_at().unwrap();
    assert_eq!(end, T0 + 5000, "the lifetime");
    clock.set(end);
    assert_eq!(sealer.open(&cookie).err(), None, "opens at its last second");
    clock.set(end + 1);
    assert_eq!(
        sealer.open(&cookie).err(),
        Some(Error::Expired(Expired::Lifetime))
    );

    // Its own expiry, when that comes first.
    clock.set(T0);
    let mut s = sealer.new_session().unwrap();
    s.insert("user", "ada").unwrap();
    s.set_expiry(Expiry::At(T0 + 300));
    let cookie = sealer.seal(&mut s).unwrap();
    clock.set(T0 + 10);
    let opened = sealer.open(&cookie).unwrap();
    assert_eq!(opened.cookie_expires_at(), Some(T0 + 300));
    // Which, as Django's, ends at that instant.
    clock.set(T0 + 299);
    assert_eq!(sealer.open(&cookie).err(), None);
    clock.set(T0 + 300);
    assert_eq!(
        sealer.open(&cookie).err(),
        Some(Error::Expired(Expired::Session))
    );
}

#[test]
fn an_idle_timeout_beyond_the_lifetime_is_warned_about() {
    let day = Duration::from_secs(86_400);
    let build = |idle: Duration, lifetime: Duration| {
        logged(|| {
            Sealer::builder(KeyRing::new(key(1)))
                .max_idle(idle)
                .max_lifetime(lifetime)
                .clock(Arc::new(FixedClock::new(T0)))
                .build()
                .unwrap()
        })
        .1
    };
    let text = build(90 * day, 30 * day);
    assert!(
        text.contains("WARN")
            && text.contains("event=\"idle-timeout-beyond-lifetime\"")
            && text.contains("max_idle_secs=7776000")
            && text.contains("max_lifetime_secs=2592000"),
        "{text}"
    );
    assert_eq!(build(30 * day, 30 * day), "");
    assert_eq!(build(day, 30 * day), "");
}

/// The README's untyped reads: `serde_json::Value` takes any entry JSON
/// can hold, not a CBOR byte string; `ciborium::Value` takes any entry.
#[test]
fn untyped_reads_through_serde_json_value_refuse_byte_strings() {
    let sealer = sealer_limited(Limits::default());
    let mut s = sealer.new_session().unwrap();
    let cart = serde_json::json!({"lines": [{"sku": "a1", "qty": 2}]});
    s.insert("raw", ciborium::Value::Bytes(vec![0, 7, 255]))
        .unwrap();
    s.insert("cart", &cart).unwrap();
    let opened = sealer.open(&sealer.seal(&mut s).unwrap()).unwrap();
    assert_eq!(opened.get::<serde_json::Value>("cart").unwrap(), Some(cart));
    assert_eq!(opened.get::<serde_json::Value>("absent").unwrap(), None);
    assert_eq!(
        opened.get::<serde_json::Value>("raw"),
        Err(Error::Value(ValueError::Deserialize))
    );
    assert_eq!(
        opened.get::<ciborium::Value>("raw").unwrap(),
        Some(ciborium::Value::Bytes(vec![0, 7, 255]))
    );
}

#[test]
fn entry_limit_applies_on_insert_so_sealed_sessions_reopen() {
    let sealer = sealer_limited(Limits::default().with_max_entries(3));
    let mut s = sealer.new_session().unwrap();
    for k in ["a", "b", "c"] {
        s.insert(k, 0).unwrap();
    }
    assert_eq!(
        s.insert("d", 0).unwrap_err(),
        Error::LimitExceeded(Limit::Entries)
    );
    let cookie = sealer.seal(&mut s).unwrap();
    assert_eq!(sealer.open(&cookie).unwrap().len(), 3);
}

#[test]
fn flush_and_cycle_id() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::new(key(1)), &clock);
    let mut s = sealer.new_session().unwrap();
    s.insert("user", "ada").unwrap();
    let cookie = sealer.seal(&mut s).unwrap();

    let mut o = sealer.open(&cookie).unwrap();
    let before = o.id();
    o.cycle_id().unwrap();
    assert_ne!(o.id(), before);
    assert_eq!(o.get::<String>("user").unwrap().as_deref(), Some("ada"));
    assert!(o.needs_save());

    let mut o = sealer.open(&cookie).unwrap();
    o.flush().unwrap();
    assert!(o.is_empty() && o.is_flushed() && o.should_delete_cookie());
    assert_ne!(o.id(), before);
    o.insert("fresh", true).unwrap();
    assert!(
        !o.should_delete_cookie(),
        "data stored after flush makes a new cookie"
    );
}

#[test]
fn a_session_from_a_server_ahead_is_resealed_so_it_opens_everywhere() {
    let ahead = Arc::new(FixedClock::new(T0 + 20));
    let behind = Arc::new(FixedClock::new(T0));
    let a = sealer_with(KeyRing::new(key(1)), &ahead);
    let b = sealer_with(KeyRing::new(key(1)), &behind);
    let mut s = a.new_session().unwrap();
    s.insert("user", "ada").unwrap();
    let from_a = a.seal(&mut s).unwrap();
    // Within the 30-second skew: B opens it and writes it back.
    let mut s = b.open(&from_a).unwrap();
    assert!(s.created_at() <= T0, "created-at not after B's now");
    s.insert("cart", 1u8).unwrap();
    let from_b = b.seal(&mut s).unwrap();
    for sealer in [&a, &b] {
        let s = sealer.open(&from_b).unwrap();
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
    }
}

#[test]
fn a_clock_stepped_back_after_login_still_yields_a_cookie_that_opens() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::new(key(1)), &clock);
    let mut s = sealer.new_session().unwrap();
    s.cycle_id().unwrap();
    s.insert("user", "ada").unwrap();
    // The system clock steps back (NTP, a resumed VM) before the save.
    clock.set(T0 - 2);
    let cookie = sealer.seal(&mut s).unwrap();
    let opened = sealer.open(&cookie).unwrap();
    assert_eq!(
        opened.get::<String>("user").unwrap().as_deref(),
        Some("ada")
    );
    assert_eq!(opened.created_at(), T0 - 2);

    // Across a CBOR length boundary (2^16 takes 5 bytes, 2^16 - 1 three):
    // the payload's precomputed length follows the clamp.
    clock.set(1 << 16);
    let mut s = sealer.new_session().unwrap();
    s.insert("user", "ada").unwrap();
    clock.set((1 << 16) - 1);
    let cookie = sealer.seal(&mut s).unwrap();
    assert_eq!(sealer.open(&cookie).unwrap().created_at(), (1 << 16) - 1);
}

#[test]
fn a_clock_stepped_back_does_not_make_the_cookie_outlive_its_token() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = Sealer::builder(KeyRing::new(key(1)))
        .clock(clock.clone())
        .no_idle_timeout()
        .max_lifetime(Duration::from_secs(3600))
        .build()
        .unwrap();
    let mut s = sealer.new_session().unwrap();
    s.insert("user", "ada").unwrap();
    // Stepped back before the save: the token is created at the earlier
    // time, so its lifetime ends 3600 s from then, and so does the cookie.
    clock.set(T0 - 1000);
    assert_eq!(sealer.cookie_max_age(&s), Some(Duration::from_secs(3600)));
    let saved = sealer.save(&mut s).unwrap();
    let header = saved.action.header_value().unwrap();
    assert!(header.contains("; Max-Age=3600"), "{header}");
    let token = saved.action.cookie_value().unwrap();
    clock.advance(3600);
    assert!(sealer.open(token).is_ok());
    clock.advance(1);
    assert!(matches!(
        sealer.open(token),
        Err(Error::Expired(Expired::Lifetime))
    ));
}

#[test]
fn cycle_id_counts_the_session_as_created_now() {
    let (clock, sealer, cookie) = sealed();
    clock.advance(900);
    let mut s = sealer.open(&cookie).unwrap();
    s.cycle_id().unwrap();
    assert_eq!(s.created_at(), T0 + 900);
    let mut cookie = sealer.seal(&mut s).unwrap();
    // Active past the 5000-second lifetime of the original start (one
    // request every 900 s, inside the idle window), within the new one.
    for _ in 0..5 {
        clock.advance(900);
        let mut s = sealer.open(&cookie).unwrap();
        cookie = sealer.seal(&mut s).unwrap();
    }
    assert!(clock.now() - T0 > 5000);
    assert!(sealer.open(&cookie).is_ok());
}

#[test]
fn an_explicit_expiry_makes_a_persistent_cookie_on_browser_session_defaults() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = Sealer::builder(KeyRing::new(key(1)))
        .cookie_name("id")
        .cookie_settings(sealed_session::CookieSettings::default().with_persistent(false))
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut s = sealer.new_session().unwrap();
    s.insert("user", "ada").unwrap();
    assert_eq!(
        sealer.cookie_max_age(&s),
        None,
        "browser session by default"
    );
    s.set_expiry_in(Duration::from_secs(30 * 86_400));
    assert_eq!(
        sealer.cookie_max_age(&s),
        Some(Duration::from_secs(14 * 86_400)),
        "remember me"
    );
    let saved = sealer.save(&mut s).unwrap();
    let header = saved.action.header_value().unwrap();
    assert!(header.contains("Max-Age="), "{header}");
    s.set_expiry(Expiry::BrowserSession);
    assert_eq!(sealer.cookie_max_age(&s), None);
}

#[test]
fn idle_lifetime_skew_and_own_expiry() {
    let (clock, sealer, cookie) = sealed();

    // Exactly max_idle is still valid.
    assert_idle_ends(&sealer, &clock, &cookie, T0 + 1000);

    // Issued in the future: within the skew it opens, beyond it does not.
    clock.set(T0 - 30);
    assert!(sealer.open(&cookie).is_ok());
    clock.set(T0 - 31);
    assert_eq!(sealer.open(&cookie).unwrap_err(), Error::IssuedInFuture);

    // Absolute lifetime: re-sealed often, still ends 5000 s after creation.
    clock.set(T0);
    let mut cookie = cookie;
    let mut ended = None;
    for _ in 0..10 {
        clock.advance(900);
        match sealer.open(&cookie) {
            Ok(mut o) => {
                o.insert("t", sealer.now()).unwrap();
                cookie = sealer.seal(&mut o).unwrap();
            }
            Err(e) => {
                ended = Some((e, clock.now() - T0));
                break;
            }
        }
    }
    assert_eq!(ended, Some((Error::Expired(Expired::Lifetime), 5400)));

    // The session's own expiry: expired at that instant.
    clock.set(T0);
    let mut s = sealer.new_session().unwrap();
    s.set_expiry_in(Duration::from_secs(100));
    assert_eq!(s.expiry(), Expiry::At(T0 + 100));
    assert_eq!(s.expiry_age(), Some(Duration::from_secs(100)));
    assert_eq!(s.expires_at(), Some(T0 + 100));
    // An expiry past the idle timeout does not extend the session.
    s.set_expiry_in(Duration::from_secs(1_000_000));
    assert_eq!(s.expires_at(), Some(T0 + 1000));
    s.set_expiry_in(Duration::from_secs(100));
    let cookie = sealer.seal(&mut s).unwrap();
    clock.set(T0 + 99);
    assert_eq!(
        sealer.open(&cookie).unwrap().expiry_age(),
        Some(Duration::from_secs(1))
    );
    clock.set(T0 + 100);
    assert_eq!(
        sealer.open(&cookie).unwrap_err(),
        Error::Expired(Expired::Session)
    );
}

#[test]
fn flashes_are_taken_once_in_the_order_pushed() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::new(key(1)), &clock);
    let mut session = sealer.new_session().unwrap();
    assert!(session
        .take_flashes::<String>("messages")
        .unwrap()
        .is_empty());
    assert!(!session.is_modified(), "taking no messages changes nothing");

    session.push_flash("messages", "saved").unwrap();
    assert_eq!(session.priority("messages"), Some(Priority::Normal));
    // A priority the application gave the list is kept.
    session.set_priority("messages", Priority::High);
    session.push_flash("messages", (2u8, "warned")).unwrap();
    assert_eq!(session.priority("messages"), Some(Priority::High));
    let token = sealer.seal(&mut session).unwrap();

    let mut next = sealer.open(&token).unwrap();
    // A peek leaves them.
    let peeked = next.get::<Vec<ciborium::Value>>("messages").unwrap();
    assert_eq!(peeked.map(|list| list.len()), Some(2));
    // Messages of another type than asked for (a deploy changed it, or
    // another handler pushed another type): left out and logged by key,
    // the others returned.
    let mut changed_type = sealer.open(&token).unwrap();
    let (texts, logs) = logged(|| changed_type.take_flashes::<String>("messages"));
    assert_eq!(texts.unwrap(), ["saved"]);
    assert!(
        logs.contains("entry-undecodable") && logs.contains("messages") && !logs.contains("warned"),
        "{logs}"
    );
    assert!(!changed_type.contains("messages"));
    let first: Vec<ciborium::Value> = next.take_flashes("messages").unwrap();
    assert_eq!(first[0], ciborium::Value::Text("saved".into()));
    assert_eq!(
        first[1].deserialized::<(u8, String)>().unwrap(),
        (2, "warned".to_owned())
    );
    assert!(next.take_flashes::<String>("messages").unwrap().is_empty());

    // A list keeps the newest MAX_FLASHES: unread messages cannot grow
    // without bound.
    for i in 0..Session::MAX_FLASHES + 4 {
        next.push_flash("backlog", i).unwrap();
    }
    let backlog: Vec<usize> = next.take_flashes("backlog").unwrap();
    assert_eq!(backlog, (4..Session::MAX_FLASHES + 4).collect::<Vec<_>>());

    // A key that holds something else is not turned into a list.
    next.insert("count", 3u8).unwrap();
    assert_eq!(
        next.push_flash("count", "x"),
        Err(Error::Value(ValueError::Deserialize))
    );
    assert_eq!(next.get::<u8>("count").unwrap(), Some(3));
    assert_eq!(
        next.push_flash("_messages", "x"),
        Err(Error::InvalidEntryKey(InvalidEntryKey::Reserved))
    );
}

#[test]
fn the_times_as_system_times_are_the_unix_seconds() {
    let at = |unix: u64| UNIX_EPOCH + Duration::from_secs(unix);
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::new(key(1)), &clock);
    let mut session = sealer.new_session().unwrap();
    assert_eq!(session.created_at_time(), at(T0));
    assert_eq!(session.issued_at_time(), None);
    assert_eq!(session.expires_at_time(), Some(at(T0 + 1000)));

    // Rounded down: the session may end sooner, never later.
    session.set_expiry(Expiry::at(at(T0 + 500) + Duration::from_millis(700)));
    assert_eq!(session.expiry(), Expiry::At(T0 + 500));
    assert_eq!(session.expires_at_time(), Some(at(T0 + 500)));
    let token = sealer.seal(&mut session).unwrap();

    clock.advance(20);
    let reopened = sealer.open(&token).unwrap();
    assert_eq!(reopened.issued_at_time(), Some(at(T0)));
    assert_eq!(reopened.created_at_time(), at(T0));
    assert_eq!(reopened.expires_at_time(), Some(at(T0 + 500)));

    assert_eq!(
        Expiry::at(UNIX_EPOCH - Duration::from_secs(1)),
        Expiry::At(0)
    );
}

#[test]
fn an_idle_timeout_of_its_own_slides_and_ends_the_session() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::new(key(1)), &clock);
    let mut s = sealer.new_session().unwrap();
    s.insert("admin", true).unwrap();
    // Whole seconds, as the cookie carries it, a fraction rounded up.
    s.set_expiry(Expiry::Idle(Duration::from_millis(99_100)));
    assert_eq!(s.expiry(), Expiry::Idle(Duration::from_secs(100)));
    // The shorter of the two windows bounds the cookie and the session.
    assert_eq!(sealer.cookie_max_age(&s), Some(Duration::from_secs(100)));
    assert_eq!(s.expires_at(), Some(T0 + 100));
    let cookie = sealer.seal(&mut s).unwrap();

    // Refresh at a quarter of the session's window (25 s), not of max_idle.
    clock.set(T0 + 24);
    assert!(!sealer.open(&cookie).unwrap().refresh_due());
    clock.set(T0 + 25);
    assert!(sealer.open(&cookie).unwrap().refresh_due());

    // Used at T0 + 90: re-sealed, the window starts again.
    clock.set(T0 + 90);
    let mut o = sealer.open(&cookie).unwrap();
    assert_eq!(o.expiry(), Expiry::Idle(Duration::from_secs(100)));
    let renewed = sealer.seal(&mut o).unwrap();

    // Exactly the window is still valid.
    assert_idle_ends(&sealer, &clock, &cookie, T0 + 100);
    assert_idle_ends(&sealer, &clock, &renewed, T0 + 190);

    // A window longer than max_idle (1000 s) changes nothing: the sealer's
    // idle timeout still ends the session.
    clock.set(T0);
    let mut long = sealer.new_session().unwrap();
    long.insert("x", 1).unwrap();
    long.set_expiry(Expiry::Idle(Duration::from_secs(1_000_000)));
    assert_eq!(
        sealer.cookie_max_age(&long),
        Some(Duration::from_secs(1000))
    );
    let cookie = sealer.seal(&mut long).unwrap();
    assert_idle_ends(&sealer, &clock, &cookie, T0 + 1000);
}

#[test]
fn a_browser_session_cookie_idles_out_after_its_own_window() {
    let clock = Arc::new(FixedClock::new(T0));
    let window = Duration::from_secs(200);
    let sealer = short_window_builder(KeyRing::new(key(1)), &clock)
        .browser_session_max_idle(window)
        .build()
        .unwrap();
    let mut ordinary = sealer.new_session().unwrap();
    ordinary.insert("user", 7).unwrap();
    ordinary.set_expiry(Expiry::BrowserSession);
    // No Max-Age (the browser drops it), but the server ends it first.
    assert_eq!(sealer.cookie_max_age(&ordinary), None);
    assert_eq!(ordinary.expires_at(), Some(T0 + 200));
    let cookie = sealer.seal(&mut ordinary).unwrap();
    // The refresh follows the shorter window (a quarter of 200 s).
    clock.set(T0 + 49);
    assert!(!sealer.open(&cookie).unwrap().refresh_due());
    clock.set(T0 + 50);
    assert!(sealer.open(&cookie).unwrap().refresh_due());
    assert_idle_ends(&sealer, &clock, &cookie, T0 + 200);

    // A remembered (persistent) session keeps max_idle (1000 s), and a
    // shorter window of its own still wins.
    clock.set(T0);
    let mut remembered = sealer.new_session().unwrap();
    remembered.insert("user", 7).unwrap();
    let cookie = sealer.seal(&mut remembered).unwrap();
    assert_idle_ends(&sealer, &clock, &cookie, T0 + 1000);
    clock.set(T0);
    let mut admin = sealer.new_session().unwrap();
    admin.set_expiry(Expiry::Idle(Duration::from_secs(100)));
    let cookie = sealer.seal(&mut admin).unwrap();
    assert_idle_ends(&sealer, &clock, &cookie, T0 + 100);

    // With browser-session cookies by default, a session of the default
    // expiry gets the window too, and one made persistent does not.
    clock.set(T0);
    let browser_default = short_window_builder(KeyRing::new(key(1)), &clock)
        .cookie_settings(sealed_session::CookieSettings::default().with_persistent(false))
        .browser_session_max_idle(window)
        .build()
        .unwrap();
    let mut by_default = browser_default.new_session().unwrap();
    by_default.insert("user", 7).unwrap();
    let cookie = browser_default.seal(&mut by_default).unwrap();
    assert_idle_ends(&browser_default, &clock, &cookie, T0 + 200);
    clock.set(T0);
    let mut kept = browser_default.new_session().unwrap();
    kept.set_expiry(Expiry::At(T0 + 4000));
    let cookie = browser_default.seal(&mut kept).unwrap();
    assert_idle_ends(&browser_default, &clock, &cookie, T0 + 1000);

    // Zero is refused, as for max_idle.
    let zero = short_window_builder(KeyRing::new(key(1)), &clock)
        .browser_session_max_idle(Duration::ZERO)
        .build();
    assert_eq!(
        zero.unwrap_err(),
        Error::InvalidSetting(InvalidSetting::ZeroIdleTimeout)
    );
}

/// `cookie` still opens at `last_ok` and is idle-expired one second later.
fn assert_idle_ends(sealer: &Sealer, clock: &FixedClock, cookie: &str, last_ok: u64) {
    clock.set(last_ok);
    assert!(sealer.open(cookie).is_ok(), "opens at {last_ok}");
    clock.set(last_ok + 1);
    assert_eq!(
        sealer.open(cookie).unwrap_err(),
        Error::Expired(Expired::Idle)
    );
}

#[test]
fn sliding_refresh_after_the_configured_fraction() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::new(key(1)), &clock);
    let mut s = sealer.new_session().unwrap();
    let cookie = sealer.seal(&mut s).unwrap();
    clock.set(T0 + 249);
    let o = sealer.open(&cookie).unwrap();
    assert!(!o.refresh_due() && !o.needs_save());
    clock.set(T0 + 250);
    let mut o = sealer.open(&cookie).unwrap();
    assert!(o.refresh_due() && o.needs_save());
    let refreshed = sealer.seal(&mut o).unwrap();
    // The refreshed cookie has a new issued-at, so it outlives the old one.
    clock.set(T0 + 1100);
    assert!(sealer.open(&cookie).is_err());
    let reopened = sealer.open(&refreshed).unwrap();
    assert_eq!(reopened.created_at(), T0, "created-at survives re-seals");
}

/// A sealer of the usual settings ([`sealer_with`]), and a cookie of one
/// entry it sealed at `T0`.
fn sealed() -> (Arc<FixedClock>, Sealer, String) {
    sealed_with_fraction(0.25)
}

/// As [`sealed`], under `refresh_fraction(fraction)`.
fn sealed_with_fraction(fraction: f64) -> (Arc<FixedClock>, Sealer, String) {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = short_window_builder(KeyRing::new(key(1)), &clock)
        .refresh_fraction(fraction)
        .build()
        .unwrap();
    let mut s = sealer.new_session().unwrap();
    s.insert("x", 1).unwrap();
    let cookie = sealer.seal(&mut s).unwrap();
    (clock, sealer, cookie)
}

#[test]
fn refresh_fraction_edge_values() {
    // 0 (and below, clamped to 0): due from the first read on.
    for fraction in [0.0, -1.0, f64::NEG_INFINITY] {
        let (_, sealer, cookie) = sealed_with_fraction(fraction);
        assert_eq!(sealer.refresh_fraction(), 0.0, "{fraction}");
        let o = sealer.open(&cookie).unwrap();
        assert!(o.refresh_due() && o.needs_save(), "{fraction}");
    }
    // 1 (and above, clamped to 1; NaN read as 1): never due, up to the
    // last second the cookie opens.
    for fraction in [1.0, f64::NAN, 2.0, f64::INFINITY] {
        let (clock, sealer, cookie) = sealed_with_fraction(fraction);
        assert_eq!(sealer.refresh_fraction(), 1.0, "{fraction}");
        for at in [T0, T0 + 999, T0 + 1000] {
            clock.set(at);
            let o = sealer.open(&cookie).unwrap();
            assert!(!o.refresh_due() && !o.needs_save(), "{fraction} at {at}");
        }
    }
}

#[test]
fn browser_session_cookies_still_expire_on_the_server_after_max_idle() {
    // A session that asks for a browser-session cookie.
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::new(key(1)), &clock);
    let mut s = sealer.new_session().unwrap();
    s.insert("x", 1).unwrap();
    s.set_expiry(Expiry::BrowserSession);
    assert_eq!(sealer.cookie_max_age(&s), None, "a browser-session cookie");
    let cookie = sealer.seal(&mut s).unwrap();
    assert_eq!(
        sealer.open(&cookie).unwrap().expiry(),
        Expiry::BrowserSession
    );
    assert_idle_ends(&sealer, &clock, &cookie, T0 + 1000);

    // Every cookie of a sealer whose cookies are not persistent.
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = short_window_builder(KeyRing::new(key(1)), &clock)
        .cookie_settings(sealed_session::CookieSettings::default().with_persistent(false))
        .build()
        .unwrap();
    let mut s = sealer.new_session().unwrap();
    s.insert("x", 1).unwrap();
    assert_eq!(sealer.cookie_max_age(&s), None, "a browser-session cookie");
    let saved = sealer.save(&mut s).unwrap();
    let header = saved.action.header_value().unwrap();
    assert!(!header.contains("Max-Age"), "{header}");
    let cookie = saved.action.cookie_value().unwrap().to_owned();
    assert_idle_ends(&sealer, &clock, &cookie, T0 + 1000);
}

#[test]
fn key_rotation() {
    let clock = Arc::new(FixedClock::new(T0));
    let old = sealer_with(KeyRing::new(key(1)), &clock);
    let mut s = old.new_session().unwrap();
    s.insert("user", "ada").unwrap();
    let cookie = old.seal(&mut s).unwrap();

    let rotated = sealer_with(KeyRing::with_fallbacks(key(2), [key(1)]).unwrap(), &clock);
    let mut o = rotated.open(&cookie).unwrap();
    assert!(o.opened_with_fallback() && o.needs_save());
    let resealed = rotated.seal(&mut o).unwrap();
    assert!(!rotated.open(&resealed).unwrap().opened_with_fallback());
    assert_eq!(old.open(&resealed).unwrap_err(), Error::UnknownKeyId);
    // Opening under the fallback is logged, with the key's public id, to
    // follow a rotation's progress; opening under the primary is not.
    let (logs, guard) = common::Logs::capture(tracing::Level::DEBUG);
    rotated.open(&cookie).unwrap();
    let under_fallback = logs.text();
    logs.clear();
    rotated.open(&resealed).unwrap();
    let under_primary = logs.text();
    drop(guard);
    assert!(
        under_fallback.contains("opened-with-fallback-key")
            && under_fallback.contains(&key(1).key_id().to_string()),
        "{under_fallback}"
    );
    assert!(
        !under_primary.contains("opened-with-fallback-key"),
        "{under_primary}"
    );
    let dropped_old = sealer_with(KeyRing::new(key(2)), &clock);
    assert_eq!(dropped_old.open(&cookie).unwrap_err(), Error::UnknownKeyId);
}

/// Step 2 of a rotation, rolling out: a client alternates between a server
/// still at step 1 and one already at step 2. With the new key incoming at
/// step 1, an unchanged session is not re-sealed back and forth; a change
/// at step 1 seals under the old key, which step 2 re-seals once.
#[test]
fn rolling_rotation_with_an_incoming_key_does_not_re_seal_back_and_forth() {
    let clock = Arc::new(FixedClock::new(T0));
    let step_one = sealer_with(KeyRing::new(key(1)).with_incoming(key(2)).unwrap(), &clock);
    let step_two = sealer_with(KeyRing::with_fallbacks(key(2), [key(1)]).unwrap(), &clock);
    let mut s = step_one.new_session().unwrap();
    s.insert("user", "ada").unwrap();
    let under_old = step_one.seal(&mut s).unwrap();

    let mut at_two = step_two.open(&under_old).unwrap();
    assert!(at_two.opened_with_fallback() && at_two.needs_save());
    let under_new = step_two.seal(&mut at_two).unwrap();

    for _ in 0..3 {
        let at_one = step_one.open(&under_new).unwrap();
        assert!(!at_one.opened_with_fallback() && !at_one.needs_save());
        assert_eq!(
            at_one.get::<String>("user").unwrap().as_deref(),
            Some("ada")
        );
        assert!(!step_two.open(&under_new).unwrap().needs_save());
    }

    let mut changed = step_one.open(&under_new).unwrap();
    changed.insert("cart", 3u32).unwrap();
    let changed_under_old = step_one.seal(&mut changed).unwrap();
    // A step-1 server seals under its primary, the old key.
    let new_key_only = sealer_with(KeyRing::new(key(2)), &clock);
    assert_eq!(
        new_key_only.open(&changed_under_old).unwrap_err(),
        Error::UnknownKeyId
    );
    let mut back = step_two.open(&changed_under_old).unwrap();
    assert!(back.opened_with_fallback());
    let resealed = step_two.seal(&mut back).unwrap();
    assert!(!step_two.open(&resealed).unwrap().needs_save());
    assert!(!step_one.open(&resealed).unwrap().needs_save());
}

#[test]
fn name_binding_and_tampering() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::new(key(1)), &clock);
    let other_name = Sealer::builder(KeyRing::new(key(1)))
        .cookie_name("admin")
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut s = sealer.new_session().unwrap();
    s.insert("role", "user").unwrap();
    let cookie = sealer.seal(&mut s).unwrap();
    assert_eq!(
        other_name.open(&cookie).unwrap_err(),
        Error::AuthenticationFailed
    );
    // Every character substitution fails with a kind, never a panic, never opens.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for i in 0..cookie.len() {
        let mut bytes = cookie.clone().into_bytes();
        bytes[i] = alphabet[(alphabet.iter().position(|c| *c == bytes[i]).unwrap() + 1) % 64];
        let altered = String::from_utf8(bytes).unwrap();
        assert!(sealer.open(&altered).is_err(), "position {i}");
    }
}

#[test]
fn debug_output_never_shows_values() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::new(key(0x5a)), &clock);
    let mut s = sealer.new_session().unwrap();
    s.insert("password_hint", "hunter2-secret").unwrap();
    let builder = Sealer::builder(KeyRing::new(key(0x5a)));
    let printed = format!("{s:?} {sealer:?} {builder:?}");
    assert!(printed.contains("password_hint"));
    assert!(printed.contains("SealerBuilder"), "{printed}");
    assert!(!printed.contains("hunter2"), "{printed}");
    // The key's bytes in neither hex nor base64 (nor as a byte list).
    for key_form in ["5a5a5a", "WlpaWlpa", "90, 90, 90"] {
        assert!(!printed.contains(key_form), "{printed}");
    }
    // The low-level codec's opened token, whose buffer is the plaintext.
    let ring = sealer.key_ring();
    let sealed = sealed_session::token::seal(
        ring,
        "id",
        T0,
        b"csrf=SECRET",
        Compression::Off,
        &sealed_session::OsRandom,
    )
    .unwrap();
    let opened = sealed_session::token::open(ring, "id", &sealed, &Limits::default()).unwrap();
    let printed = format!("{opened:?}");
    let secret_bytes = format!("{:?}", &b"SECRET"[..]);
    assert!(printed.contains("plaintext_len: 11"), "{printed}");
    assert!(
        !printed.contains(&secret_bytes[1..secret_bytes.len() - 1]),
        "{printed}"
    );
    assert!(!printed.contains("SECRET"), "{printed}");
    // A save's result carries the cookie, a bearer credential: its length
    // shows, the cookie does not.
    let saved = sealer.save(&mut s).unwrap();
    let cookie = saved.action.header_value().unwrap().to_owned();
    let token = saved.action.cookie_value().unwrap();
    let printed = format!("{saved:?}");
    assert!(
        printed.contains(&format!("Set({} bytes)", cookie.len())),
        "{printed}"
    );
    assert!(!printed.contains(&token[..16]), "{printed}");
    s.flush().unwrap();
    let removal = sealer.save(&mut s).unwrap();
    assert!(format!("{removal:?}").contains("Delete("), "{removal:?}");
    assert!(!format!("{removal:?}").contains("Max-Age"), "{removal:?}");
}

#[test]
fn compression_round_trips_and_respects_the_cap() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = Sealer::builder(KeyRing::new(key(1)))
        .compression(Compression::Above(100))
        .limits(Limits::default().with_max_decompressed(2000))
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut s = sealer.new_session().unwrap();
    s.insert("text", "abc".repeat(200)).unwrap();
    let cookie = sealer.seal(&mut s).unwrap();
    assert!(sealed_session::token::inspect(&cookie)
        .unwrap()
        .header
        .is_compressed());
    assert_eq!(
        sealer
            .open(&cookie)
            .unwrap()
            .get::<String>("text")
            .unwrap()
            .unwrap()
            .len(),
        600
    );
    s.insert("text", "abc".repeat(1000)).unwrap();
    // The writer refuses what its own reader could not open…
    assert_eq!(
        sealer.seal(&mut s).unwrap_err(),
        Error::LimitExceeded(Limit::DecompressedSize)
    );
    // …and the reader refuses what inflates past its cap.
    let generous = Sealer::builder(KeyRing::new(key(1)))
        .compression(Compression::Above(100))
        .clock(clock.clone())
        .build()
        .unwrap();
    let cookie = generous.seal(&mut s).unwrap();
    assert_eq!(
        sealer.open(&cookie).unwrap_err(),
        Error::LimitExceeded(Limit::DecompressedSize)
    );
}

#[test]
fn a_zero_idle_timeout_or_lifetime_is_refused_when_the_sealer_is_built() {
    // Every cookie would go out with `Max-Age=0` (a deletion) and every
    // session would end as it is written.
    let built = |b: SealerBuilder| b.clock(Arc::new(FixedClock::new(T0))).build().map(|_| ());
    let ring = || KeyRing::new(key(1));
    assert_eq!(
        built(Sealer::builder(ring()).max_idle(Duration::ZERO)),
        Err(Error::InvalidSetting(InvalidSetting::ZeroIdleTimeout))
    );
    assert_eq!(
        built(Sealer::builder(ring()).max_lifetime(Duration::ZERO)),
        Err(Error::InvalidSetting(InvalidSetting::ZeroLifetime))
    );
    assert_eq!(
        Error::InvalidSetting(InvalidSetting::ZeroLifetime).kind(),
        "invalid-setting"
    );
    // The least that is not zero is kept (rounded up to a second).
    let tiny = Duration::from_nanos(1);
    assert_eq!(built(Sealer::builder(ring()).max_idle(tiny)), Ok(()));
    assert_eq!(built(Sealer::builder(ring()).max_lifetime(tiny)), Ok(()));
}

#[test]
fn sub_second_time_settings_round_up_to_a_whole_second() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = Sealer::builder(KeyRing::new(key(1)))
        .max_idle(Duration::from_millis(500))
        .clock(clock.clone())
        .build()
        .unwrap();
    let cookie = sealer.seal(&mut sealer.new_session().unwrap()).unwrap();
    clock.advance(1);
    // Not zero: one second idle is allowed, as with `from_secs(1)`.
    assert!(sealer.open(&cookie).is_ok());
    clock.advance(1);
    assert_eq!(
        sealer.open(&cookie).unwrap_err(),
        Error::Expired(Expired::Idle)
    );
    // The lifetime of 1.5 s allows two seconds.
    let sealer = Sealer::builder(KeyRing::new(key(1)))
        .no_idle_timeout()
        .max_lifetime(Duration::from_millis(1500))
        .clock(clock.clone())
        .build()
        .unwrap();
    let cookie = sealer.seal(&mut sealer.new_session().unwrap()).unwrap();
    clock.advance(2);
    assert!(sealer.open(&cookie).is_ok());
    clock.advance(1);
    assert_eq!(
        sealer.open(&cookie).unwrap_err(),
        Error::Expired(Expired::Lifetime)
    );

    // A session's own sub-second window or expiry rounds up too, rather
    // than ending the session within the second it is sealed.
    let sealer = Sealer::builder(KeyRing::new(key(1)))
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut idle = sealer.new_session().unwrap();
    idle.set_expiry(Expiry::Idle(Duration::from_millis(900)));
    assert_eq!(idle.expiry(), Expiry::Idle(Duration::from_secs(1)));
    let mut fixed = sealer.new_session().unwrap();
    fixed.set_expiry_in(Duration::from_millis(900));
    assert_eq!(fixed.expires_at(), Some(clock.now() + 1));
    // Both open within the second they were sealed (At ends at its time,
    // an idle window after it).
    let idle = sealer.seal(&mut idle).unwrap();
    let fixed = sealer.seal(&mut fixed).unwrap();
    assert!(sealer.open(&idle).is_ok() && sealer.open(&fixed).is_ok());
    clock.advance(1);
    assert!(sealer.open(&idle).is_ok());
    assert_eq!(
        sealer.open(&fixed).unwrap_err(),
        Error::Expired(Expired::Session)
    );
    clock.advance(1);
    assert_eq!(
        sealer.open(&idle).unwrap_err(),
        Error::Expired(Expired::Idle)
    );
}

#[test]
fn session_ids_parse_from_their_display_only() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::new(key(1)), &clock);
    let id = sealer.new_session().unwrap().id();
    assert_eq!(id.to_string().parse::<sealed_session::SessionId>(), Ok(id));
    // Debug names the type around the same hex (ids are not secret).
    assert_eq!(format!("{id:?}"), format!("SessionId({id})"));
    assert_eq!(id.to_string().len(), 32);
    assert_eq!(
        id.to_string()
            .to_uppercase()
            .parse::<sealed_session::SessionId>(),
        Ok(id)
    );
    let malformed = Err(Error::Malformed(sealed_session::Malformed::SessionId));
    for text in [
        "",
        "000102030405060708090a0b0c0d0e0",
        "000102030405060708090a0b0c0d0e0f0",
        // `u8::from_str_radix` alone would take a sign.
        "+f0102030405060708090a0b0c0d0e0f",
        "000102030405060708090a0b0c0d0eg0",
        " 00102030405060708090a0b0c0d0e0f",
        // 32 bytes, 16 characters.
        "éééééééééééééééé",
    ] {
        assert_eq!(
            text.parse::<sealed_session::SessionId>(),
            malformed,
            "{text:?}"
        );
    }
}

/// A cookie issued up to now by a server whose clock runs ahead by the
/// whole skew still opens one second before `revocation_ttl` runs out, and
/// no longer when it has: the record is kept exactly as long as needed.
#[test]
fn revocation_ttl_outlasts_every_cookie_issued_up_to_now_by_exactly_a_second() {
    for (idle, lifetime) in [
        (Some(600), Some(5000)),
        (Some(5000), Some(600)),
        (None, Some(600)),
    ] {
        let sealer_at = |clock: &Arc<FixedClock>| {
            let b = Sealer::builder(KeyRing::new(key(1)))
                .clock_skew(Duration::from_secs(30))
                .clock(clock.clone());
            with_timeouts(b, idle, lifetime).build().unwrap()
        };
        let here = Arc::new(FixedClock::new(T0));
        let ahead = Arc::new(FixedClock::new(T0 + 30));
        let sealer = sealer_at(&here);
        let ttl = sealer.revocation_ttl().unwrap().as_secs();
        assert_eq!(ttl, 600 + 30 + 1);
        let cookie = {
            let ahead = sealer_at(&ahead);
            ahead.seal(&mut ahead.new_session().unwrap()).unwrap()
        };
        here.advance(ttl - 1);
        assert!(sealer.open(&cookie).is_ok(), "{idle:?} {lifetime:?}");
        here.advance(1);
        assert!(
            matches!(sealer.open(&cookie), Err(Error::Expired(_))),
            "{idle:?} {lifetime:?}"
        );
    }
    let unlimited = Sealer::builder(KeyRing::new(key(1)))
        .no_idle_timeout()
        .no_max_lifetime()
        .build()
        .unwrap();
    assert_eq!(unlimited.revocation_ttl(), None);
}

#[test]
fn a_cookie_setting_that_cannot_be_sent_is_refused_at_build() {
    use sealed_session::{CookieSettings, InvalidCookie};
    let build = |name: &str, settings: CookieSettings| {
        Sealer::builder(KeyRing::new(key(1)))
            .cookie_name(name)
            .cookie_settings(settings)
            .build()
            .map(|_| ())
    };
    let ok = CookieSettings::default();
    for name in ["id", "__Host-id", "app.session_v2", "a!#$%&'*+-.^_`|~z"] {
        assert_eq!(build(name, ok.clone()), Ok(()), "{name:?}");
    }
    for name in [
        "",
        "a b",
        "a=b",
        "a;b",
        "a\tb",
        "a\u{2000}b",
        "ä",
        "(x)",
        "a\"b",
        "a\nb",
    ] {
        assert_eq!(
            build(name, ok.clone()),
            Err(Error::InvalidCookie(InvalidCookie::Name)),
            "{name:?}"
        );
    }
    for path in ["/", "/app", "/my%20app", "/~user/x", "/a:b@c!$&'()*+,=-._"] {
        assert_eq!(build("id", ok.clone().with_path(path)), Ok(()), "{path:?}");
    }
    for path in [
        "/a;b", "/a\nb", "/a\u{7f}", "/é", "", "app", " /app",
        // Kept by browsers, but no request path matches them raw.
        "/my app", "/a\"b", "/x?y", "/a#b", "/a<b>", "/a\\b", "/a^b", "/a`b", "/a{b}", "/a|b",
    ] {
        assert_eq!(
            build("id", ok.clone().with_path(path)),
            Err(Error::InvalidCookie(InvalidCookie::Path)),
            "{path:?}"
        );
        // Not sent under `__Host-`, whose path is `/`.
        let host = build("__Host-id", ok.clone().with_path(path));
        assert_eq!(host, Ok(()), "{path:?}");
    }
    for domain in ["example.com", ".example.com", "xn--bcher-kva.example"] {
        assert_eq!(
            build("id", ok.clone().with_domain(domain)),
            Ok(()),
            "{domain:?}"
        );
    }
    for domain in [
        "exa mple.com",
        "example.com;",
        "bücher.example",
        "a\r\nSet-Cookie: x=y",
        // Browsers drop `Domain=` with nothing after its dot; no host
        // has an empty label.
        "",
        ".",
        "..",
        "example..com",
        "example.com.",
    ] {
        assert_eq!(
            build("id", ok.clone().with_domain(domain)),
            Err(Error::InvalidCookie(InvalidCookie::Domain)),
            "{domain:?}"
        );
    }
    assert_eq!(
        Error::InvalidCookie(InvalidCookie::Name).kind(),
        "invalid-cookie"
    );
}

#[test]
fn get_or_remove_drops_a_value_that_no_longer_decodes_and_saves_without_it() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::new(key(1)), &clock);
    let mut s = sealer.new_session().unwrap();
    s.insert("cart", "3 books").unwrap(); // stored by an older release
    s.insert("user", 42u64).unwrap();
    s.insert("deep", vec![vec![vec![1u8]]]).unwrap();
    let cookie = sealer.seal(&mut s).unwrap();

    let mut o = sealer.open(&cookie).unwrap();
    assert!(!o.needs_save());
    assert_eq!(o.get_or_remove::<u64>("user").unwrap(), Some(42));
    assert_eq!(o.get_or_remove::<u64>("missing").unwrap(), None);
    assert!(!o.needs_save(), "nothing removed yet");
    // The error names neither the key nor the type; the event does, once,
    // without the value.
    let (read, text) = logged(|| o.get::<Vec<u32>>("cart"));
    assert_eq!(read.unwrap_err(), Error::Value(ValueError::Deserialize));
    assert!(
        text.contains("WARN") && text.contains("key=\"cart\""),
        "{text}"
    );
    assert!(
        text.contains("Vec<u32>") && !text.contains("3 books"),
        "{text}"
    );
    let (read, text) = logged(|| o.get_or_remove::<Vec<u32>>("cart"));
    assert_eq!(read.unwrap(), None);
    assert_eq!(text.matches("WARN").count(), 1, "{text}");
    assert!(!o.contains("cart"));
    assert!(o.needs_save());
    let saved = sealer.seal(&mut o).unwrap();
    let reopened = sealer.open(&saved).unwrap();
    assert_eq!(reopened.keys().collect::<Vec<_>>(), ["user", "deep"]);

    // Deeper than this server's limit: removed too.
    let shallow = Sealer::builder(KeyRing::new(key(1)))
        .cookie_name("id")
        .limits(Limits::default().with_max_depth(2))
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut o = shallow.open(&saved).unwrap();
    assert_eq!(
        o.get::<Vec<Vec<Vec<u8>>>>("deep").unwrap_err(),
        Error::LimitExceeded(Limit::Depth)
    );
    assert_eq!(o.get_or_remove::<Vec<Vec<Vec<u8>>>>("deep").unwrap(), None);
    assert!(!o.contains("deep"));
}

#[test]
fn take_removes_a_value_that_no_longer_decodes_and_reads_it_as_absent() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::new(key(1)), &clock);
    let mut s = sealer.new_session().unwrap();
    s.insert("flash", "saved").unwrap(); // a plain string, by an older release
    s.insert("user", 42u64).unwrap();
    let cookie = sealer.seal(&mut s).unwrap();

    let mut o = sealer.open(&cookie).unwrap();
    let (taken, text) = logged(|| o.take::<Vec<u32>>("flash"));
    assert_eq!(taken.unwrap(), None);
    assert!(
        text.contains("WARN") && text.contains("key=\"flash\""),
        "{text}"
    );
    assert!(!text.contains("saved"), "no values in the log: {text}");
    assert!(!o.contains("flash"));
    assert!(o.is_modified(), "the removal is a change");
    assert_eq!(o.take::<u64>("user").unwrap(), Some(42));
    assert_eq!(o.take::<u64>("user").unwrap(), None);
    assert!(o.is_empty() && o.is_modified());
}

#[test]
fn get_or_insert_with_keeps_a_stored_value_and_stores_the_default_otherwise() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::new(key(1)), &clock);
    let mut s = sealer.new_session().unwrap();
    s.insert_with_priority("theme", "dark", Priority::High)
        .unwrap();
    let cookie = sealer.seal(&mut s).unwrap();

    let mut o = sealer.open(&cookie).unwrap();
    let mut called = false;
    let theme = o.get_or_insert_with("theme", || {
        called = true;
        "light".to_owned()
    });
    assert_eq!(theme.unwrap(), "dark");
    assert!(!called, "no default made for a stored value");
    assert!(!o.is_modified());
    assert_eq!(o.get_or_insert_with("visits", || 1u32).unwrap(), 1);
    assert!(o.is_modified());
    assert_eq!(o.get_or_insert_with("visits", || 7u32).unwrap(), 1);
    assert_eq!(o.priority("visits"), Some(Priority::Normal));
    // A value of another type is an error, as with `get`, and stays.
    assert_eq!(
        o.get_or_insert_with("theme", || 0u8).unwrap_err(),
        Error::Value(ValueError::Deserialize)
    );
    assert_eq!(o.get::<String>("theme").unwrap().as_deref(), Some("dark"));
    let reopened = sealer.open(&sealer.seal(&mut o).unwrap()).unwrap();
    assert_eq!(reopened.get::<u32>("visits").unwrap(), Some(1));
}

#[test]
fn mark_modified_re_seals_an_unchanged_session_with_a_new_issued_at() {
    let (clock, sealer, cookie) = sealed();

    clock.advance(10);
    let mut o = sealer.open(&cookie).unwrap();
    assert!(matches!(
        sealer.save(&mut o).unwrap().action,
        sealed_session::CookieAction::Unchanged
    ));
    o.mark_modified();
    assert!(o.is_modified() && o.needs_save());
    let saved = sealer.save(&mut o).unwrap();
    let value = saved.action.cookie_value().expect("a cookie is set");
    assert_ne!(value, cookie);
    assert_eq!(sealer.open(value).unwrap().issued_at(), Some(T0 + 10));
}

/// What the builder set reads back from the sealer, in the builder's types.
#[test]
fn the_sealer_reports_its_configuration() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::new(key(1)), &clock);
    assert_eq!(sealer.max_idle(), Some(Duration::from_secs(1000)));
    assert_eq!(sealer.max_lifetime(), Some(Duration::from_secs(5000)));
    assert_eq!(sealer.clock_skew(), Duration::from_secs(30));
    assert_eq!(sealer.refresh_fraction(), 0.25);
    assert_eq!(sealer.max_cookies_tried(), 4);
    assert_eq!(sealer.compression(), Compression::Off);
    let unbounded = Sealer::builder(KeyRing::new(key(1)))
        .no_idle_timeout()
        .no_max_lifetime()
        .max_cookies_tried(0)
        .build()
        .unwrap();
    assert_eq!(
        (unbounded.max_idle(), unbounded.max_lifetime()),
        (None, None)
    );
    assert_eq!(unbounded.max_cookies_tried(), 1, "at least one");
}

/// The accessors that a default would satisfy, read back from settings
/// that are not the defaults.
#[test]
fn the_sealer_reports_its_cookie_name_limits_compression_and_clock() {
    let clock = Arc::new(FixedClock::new(T0));
    let limits = Limits::default()
        .with_max_token_len(3000)
        .with_max_entries(17);
    let sealer = short_window_builder(KeyRing::new(key(1)), &clock)
        .cookie_name("app-session")
        .limits(limits)
        .compression(Compression::Above(512))
        .build()
        .unwrap();
    assert_eq!(sealer.cookie_name(), "app-session");
    assert_eq!(*sealer.limits(), limits);
    assert_eq!(sealer.compression(), Compression::Above(512));
    assert_eq!(sealer.now(), T0);
    clock.advance(42);
    assert_eq!(sealer.now(), T0 + 42);
}

/// `Debug` shows the settings and the keys' public ids, not nothing.
#[test]
fn sealer_debug_shows_its_cookie_name_key_ids_and_time_policy() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = sealer_with(KeyRing::with_fallbacks(key(2), [key(1)]).unwrap(), &clock);
    let printed = format!("{sealer:?}");
    assert!(printed.starts_with("Sealer {"), "{printed}");
    assert!(printed.contains(r#"cookie_name: "id""#), "{printed}");
    for id in [key(2).key_id(), key(1).key_id()] {
        assert!(printed.contains(&id.to_string()), "{printed}");
    }
    assert!(printed.contains("max_idle: Some(1000)"), "{printed}");
}

/// Without an idle timeout or a lifetime a default cookie ends with the
/// browser; a window for such cookies must not give it a `Max-Age`.
#[test]
fn a_browser_session_window_gives_a_timeless_sealers_cookie_no_max_age() {
    let clock = Arc::new(FixedClock::new(T0));
    let sealer = Sealer::builder(KeyRing::new(key(1)))
        .no_idle_timeout()
        .no_max_lifetime()
        .browser_session_max_idle(Duration::from_secs(7200))
        .clock(clock.clone())
        .build()
        .unwrap();
    assert_eq!(
        sealer.browser_session_max_idle(),
        Some(Duration::from_secs(7200))
    );
    let mut s = sealer.new_session().unwrap();
    s.insert("user", 7).unwrap();
    assert_eq!(sealer.cookie_max_age(&s), None);
    assert_eq!(s.expires_at(), Some(T0 + 7200));
    let cookie = sealer.seal(&mut s).unwrap();
    assert_idle_ends(&sealer, &clock, &cookie, T0 + 7200);
}

/// A priority serializes as its name (a debug page lists
/// `keys_with_priority()` as JSON), and reads back from it.
#[test]
fn priorities_serialize_as_their_names() {
    for priority in Priority::ALL {
        let json = serde_json::to_string(&priority).unwrap();
        assert_eq!(json, format!("\"{}\"", priority.name()));
        assert_eq!(serde_json::from_str::<Priority>(&json).unwrap(), priority);
    }
    assert!(serde_json::from_str::<Priority>("\"urgent\"").is_err());
}

/// The payload errors take `?` both into `Box<dyn Error>` and into the
/// crate's `Error`, as the variant that carries them.
#[test]
fn payload_errors_convert_with_the_question_mark() {
    use sealed_session::{CookieSettings, Error, InvalidCookie, StoreError};
    fn boxed() -> Result<(), Box<dyn std::error::Error>> {
        CookieSettings::default().check("a b")?;
        Ok(())
    }
    fn crate_error() -> Result<(), Error> {
        CookieSettings::default().check("a b")?;
        Ok(())
    }
    fn store() -> Result<(), Error> {
        Err(StoreError::Unavailable)?
    }
    let message = boxed().unwrap_err().to_string();
    assert_eq!(message, InvalidCookie::Name.to_string());
    assert_eq!(
        crate_error(),
        Err(Error::InvalidCookie(InvalidCookie::Name))
    );
    assert_eq!(store(), Err(Error::Store(StoreError::Unavailable)));
    assert!(std::error::Error::source(&Error::Store(StoreError::Unavailable)).is_none());
}
