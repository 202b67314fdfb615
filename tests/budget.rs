//! The size budget, priority dropping, the in-memory overflow store and the
//! revocation hook.

mod common;

use common::*;
use proptest::prelude::*;
#[cfg(feature = "test-util")]
use sealed_session::store::testing::{check_overflow_store, check_revocation_store};
use sealed_session::store::{BoxFuture, MemoryRevocations, MemoryStore, OverflowStore};
use sealed_session::{
    Compression, CookieAction, Error, FixedClock, InvalidSetting, KeyRing, Limit, Limits, Priority,
    Sealer, SealerBuilder, StoreError,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A sealer with the tests' policy, configured further by `configure`,
/// over a memory store timed by `clock`.
fn with_memory_store(
    clock: &Arc<FixedClock>,
    configure: impl FnOnce(SealerBuilder) -> SealerBuilder,
) -> (Arc<MemoryStore>, Sealer) {
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let sealer = configure(builder(clock))
        .overflow_store(store.clone())
        .build()
        .unwrap();
    (store, sealer)
}

#[test]
fn ten_kb_session_drops_lowest_priority_first() {
    let clock = clock();
    let sealer = builder(&clock).build().unwrap();
    let mut session = ten_kb_session(&sealer);
    let before = session.len();
    let saved = sealer.save(&mut session).unwrap();
    let CookieAction::Set(header) = &saved.action else {
        panic!("no cookie")
    };
    assert!(saved.report.header_len <= 4096);
    assert_eq!(saved.report.header_len, "Set-Cookie: ".len() + header.len());
    let dropped = &saved.report.dropped;
    assert!(!dropped.is_empty());
    // Every low entry goes before any normal one; nothing critical or high.
    let first_normal = dropped
        .iter()
        .position(|d| d.priority == Priority::Normal)
        .unwrap_or(dropped.len());
    assert!(dropped[..first_normal]
        .iter()
        .all(|d| d.priority == Priority::Low));
    assert!(dropped[first_normal..]
        .iter()
        .all(|d| d.priority == Priority::Normal));
    assert_eq!(
        dropped
            .iter()
            .filter(|d| d.priority == Priority::Low)
            .count(),
        40
    );
    // The session now matches the cookie.
    assert_eq!(session.len(), before - dropped.len());
    let reopened = sealer.open(&cookie_value(header)).unwrap();
    assert_eq!(reopened.len(), session.len());
    assert_eq!(reopened.get::<u64>("user_id").unwrap(), Some(4217));
    assert!(reopened.contains("prefs"));
    for d in dropped {
        assert!(!reopened.contains(&d.key));
    }
    // Dropping stopped as soon as it fitted: putting back the last dropped
    // entry would not fit.
    let last = dropped.last().unwrap();
    let mut with_last = sealer.open(&cookie_value(header)).unwrap();
    with_last
        .insert_with_priority(&last.key, "y".repeat(150), last.priority)
        .unwrap();
    // Here the token alone is already over the sealer's 4096-character
    // limit (so the header is over the budget too).
    assert_eq!(
        sealer.seal(&mut with_last).unwrap_err(),
        Error::LimitExceeded(sealed_session::Limit::TokenLength)
    );
}

#[test]
fn critical_entries_alone_over_budget_fail_with_sizes() {
    let clock = clock();
    let sealer = builder(&clock).budget(300).build().unwrap();
    let mut session = sealer.new_session().unwrap();
    session
        .insert_with_priority("user", "u".repeat(400), Priority::Critical)
        .unwrap();
    session
        .insert_with_priority("junk", "j".repeat(50), Priority::Low)
        .unwrap();
    match sealer.save(&mut session).unwrap_err() {
        Error::TooLarge { needed, budget } => {
            assert_eq!(budget, 300);
            assert!(needed > 300 + 400, "{needed}");
        }
        other => panic!("{other:?}"),
    }
    // Nothing was lost on failure.
    assert!(session.contains("junk"));
}

/// Browsers ignore a cookie whose name and value together pass 4096 bytes,
/// whatever the header's budget: with a long name that limit binds first,
/// when entries go to the store and when critical ones alone pass it.
#[tokio::test]
async fn name_and_value_stay_within_what_browsers_keep_under_a_larger_budget() {
    let clock = clock();
    let name = "n".repeat(200);
    let (_store, sealer) = with_memory_store(&clock, |b| b.cookie_name(&name).budget(8192));
    let session_of = |entries: &[(&str, usize, Priority)]| {
        let mut session = sealer.new_session().unwrap();
        for (key, len, priority) in entries {
            session
                .insert_with_priority(key, "a".repeat(*len), *priority)
                .unwrap();
        }
        session
    };
    let mixed = [
        ("user", 10, Priority::Critical),
        ("notes", 2500, Priority::Low),
        ("more", 400, Priority::Normal),
    ];
    // The whole session's token alone is within the 4096-byte token limit.
    let whole = sealer.seal(&mut session_of(&mixed)).unwrap();
    assert!(whole.len() <= 4096 && name.len() + whole.len() > 4096);
    let mut session = session_of(&mixed);
    let saved = sealer.save_async(&mut session).await.unwrap();
    let CookieAction::Set(header) = &saved.action else {
        panic!("no cookie")
    };
    let (sent_name, value) = header.split(';').next().unwrap().split_once('=').unwrap();
    assert!(sent_name.len() + value.len() <= 4096);
    // The report gives the budget that bound: the header without its
    // value, plus the 4096 bytes of name and value less the name.
    let around_value = saved.report.header_len - value.len();
    assert_eq!(saved.report.budget, around_value + 4096 - name.len());
    let moved: Vec<&str> = saved
        .report
        .overflowed
        .iter()
        .map(|e| e.key.as_str())
        .collect();
    assert_eq!((moved, saved.report.dropped.len()), (vec!["notes"], 0));

    let critical = [("user", 2950, Priority::Critical)];
    let whole = sealer.seal(&mut session_of(&critical)).unwrap();
    assert!(whole.len() <= 4096 && name.len() + whole.len() > 4096);
    match sealer.save_async(&mut session_of(&critical)).await {
        Err(Error::TooLarge { needed, budget }) => {
            assert_eq!(budget, around_value + 4096 - name.len());
            assert!(needed > budget, "{needed} {budget}");
        }
        other => panic!("{other:?}"),
    }
}

/// Saves a new session of a critical user entry and `notes` bytes of
/// low-priority notes.
fn save_user_and_notes(sealer: &Sealer, notes: usize) -> sealed_session::Saved {
    let mut session = sealer.new_session().unwrap();
    session
        .insert_with_priority("user", "ada", Priority::Critical)
        .unwrap();
    session
        .insert_with_priority("notes", "a".repeat(notes), Priority::Low)
        .unwrap();
    sealer.save(&mut session).unwrap()
}

/// The browsers' limit is inclusive: a name and value of exactly 4096
/// bytes are kept whole, one byte more drops the low entry.
#[test]
fn a_name_and_value_of_exactly_4096_bytes_fit() {
    let clock = clock();
    let sealer_named = |name_len: usize| {
        builder(&clock)
            .cookie_name("n".repeat(name_len))
            .compression(Compression::Off)
            .budget(8192)
            .build()
            .unwrap()
    };
    let save = |sealer: &Sealer| save_user_and_notes(sealer, 2900);
    // Uncompressed, the token's length does not depend on the name.
    let token_len = save(&sealer_named(2)).action.cookie_value().unwrap().len();
    let exact = save(&sealer_named(4096 - token_len));
    assert!(exact.report.dropped.is_empty());
    let value = exact.action.cookie_value().unwrap();
    assert_eq!(4096 - token_len + value.len(), 4096);
    // Held to exactly its effective budget, which the report gives.
    assert_eq!(exact.report.header_len, exact.report.budget);
    let over = save(&sealer_named(4097 - token_len));
    let dropped: Vec<&str> = over.report.dropped.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(dropped, ["notes"]);
}

/// `Expires`, when asked for, names the end `Max-Age` gives, and the
/// budget counts its bytes as it counts the rest of the header.
#[test]
fn an_expires_attribute_counts_against_the_budget() {
    let clock = clock();
    let sealer_with = |expires: bool, budget: usize| {
        builder(&clock)
            .cookie_settings(sealed_session::CookieSettings::default().with_expires(expires))
            .compression(Compression::Off)
            .budget(budget)
            .build()
            .unwrap()
    };
    let save = |sealer: &Sealer| save_user_and_notes(sealer, 900);
    let with = save(&sealer_with(true, 8192));
    let header = with.action.header_value().unwrap();
    let cookie = cookie::Cookie::parse(header).unwrap();
    let max_age = cookie.max_age().unwrap().whole_seconds();
    let expires = cookie.expires_datetime().unwrap().unix_timestamp();
    let now = sealed_session::Clock::now(&*clock);
    assert_eq!(expires, i64::try_from(now).unwrap() + max_age);
    assert_eq!(with.report.header_len, "Set-Cookie: ".len() + header.len());
    let without = save(&sealer_with(false, 8192));
    let plain = without.action.header_value().unwrap();
    assert!(!plain.contains("Expires"), "{plain}");
    assert_eq!(
        header.len(),
        plain.len() + "; Expires=Tue, 14 Nov 2023 22:14:20 GMT".len()
    );
    // Held to its budget with the attribute's bytes counted.
    let exact = save(&sealer_with(true, with.report.header_len));
    assert!(exact.report.dropped.is_empty());
    let over = save(&sealer_with(true, with.report.header_len - 1));
    let dropped: Vec<&str> = over.report.dropped.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(dropped, ["notes"]);
}

#[test]
fn unchanged_sessions_send_nothing_and_flush_deletes() {
    let clock = clock();
    let sealer = builder(&clock).build().unwrap();
    let mut session = sealer.new_session().unwrap();
    assert_eq!(
        sealer.save(&mut session).unwrap().action,
        CookieAction::Unchanged
    );
    session.insert("a", 1).unwrap();
    let CookieAction::Set(header) = sealer.save(&mut session).unwrap().action else {
        panic!()
    };
    assert!(header.contains("Max-Age=3600"), "{header}");
    assert!(
        header.contains("HttpOnly") && header.contains("Secure") && header.contains("SameSite=Lax")
    );
    let mut opened = sealer.open(&cookie_value(&header)).unwrap();
    assert_eq!(
        sealer.save(&mut opened).unwrap().action,
        CookieAction::Unchanged
    );
    opened.flush().unwrap();
    let CookieAction::Delete(removal) = sealer.save(&mut opened).unwrap().action else {
        panic!()
    };
    assert!(
        removal.starts_with("id=;") && removal.contains("Max-Age=0"),
        "{removal}"
    );
}

#[cfg(feature = "test-util")]
#[tokio::test]
async fn memory_store_conformance() {
    let clock = clock();
    let store = MemoryStore::with_clock(clock.clone());
    check_overflow_store(&store, |s| {
        clock.advance(s);
        async {}
    })
    .await;
}

/// A store that keeps at most 4000 bytes of a value (as a proxy or a
/// column too short might): the conformance suite says so, since every
/// long blob would be rejected when read back and its entries dropped.
#[cfg(feature = "test-util")]
#[tokio::test]
#[should_panic(expected = "a long blob changed")]
async fn the_conformance_suite_refuses_a_store_that_cuts_values() {
    struct Cutting(MemoryStore);
    impl OverflowStore for Cutting {
        fn put<'a>(
            &'a self,
            key: &'a str,
            mut blob: Vec<u8>,
            ttl: Duration,
        ) -> BoxFuture<'a, Result<(), Error>> {
            blob.truncate(4000);
            self.0.put(key, blob, ttl)
        }
        fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
            self.0.get(key)
        }
        fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
            self.0.delete(key)
        }
        fn touch<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, Error>> {
            self.0.touch(key, ttl)
        }
    }
    let clock = clock();
    let store = Cutting(MemoryStore::with_clock(clock.clone()));
    check_overflow_store(&store, |s| {
        clock.advance(s);
        async {}
    })
    .await;
}

#[tokio::test]
async fn ten_kb_session_round_trips_through_the_memory_store() {
    let clock = clock();
    let (store, sealer) = with_memory_store(&clock, |b| b);
    assert_eq!(
        format!("{store:?}"),
        "MemoryStore { len: 0, bytes: 0, max_bytes: 67108864 }",
        "empty, and 64 MiB by default (DEFAULT_MAX_BYTES)"
    );
    overflow_round_trip(&sealer).await;
    assert_eq!(store.len(), 1);
    // Sizes only: no key (a session id) and no blob.
    let shown = format!("{store:?}");
    let bytes = store.bytes();
    assert!(bytes > 1000, "{bytes}");
    assert_eq!(
        shown,
        format!("MemoryStore {{ len: 1, bytes: {bytes}, max_bytes: 67108864 }}")
    );
}

#[tokio::test]
async fn a_capped_memory_store_evicts_idle_sessions_blobs_before_an_active_ones() {
    let clock = clock();
    // One blob's size, measured on a store of its own.
    let (probe, sealer) = with_memory_store(&clock, |b| b);
    save_token(&sealer, &mut ten_kb_session(&sealer)).await;
    let blob = probe.bytes();
    assert!(blob > 1000, "{blob}");

    let cap = 3 * blob + blob / 2;
    let store = Arc::new(MemoryStore::with_clock(clock.clone()).max_bytes(cap));
    let sealer = builder(&clock)
        .overflow_store(store.clone())
        .build()
        .unwrap();
    let mut active = save_token(&sealer, &mut ten_kb_session(&sealer)).await;
    let mut flood = Vec::new();
    for round in 0..10u32 {
        flood.push(save_token(&sealer, &mut ten_kb_session(&sealer)).await);
        // The active client's request renews its blob without reading it.
        let mut s = sealer.open_async(&active).await.unwrap();
        s.insert("counter", round).unwrap();
        active = save_token(&sealer, &mut s).await;
        assert!(store.bytes() <= cap, "{} > {cap}", store.bytes());
    }
    assert_eq!(store.len(), 3);
    assert_eq!(store.evictions(), 11 - 3);
    assert_eq!(overflow_loads(&sealer, &active).await, Ok(true));
    assert_eq!(overflow_loads(&sealer, &flood[9]).await, Ok(true));
    // The first visitor's blob is gone: its cookie still opens, and the
    // next save reports what was lost.
    let mut s = sealer.open_async(&flood[0]).await.unwrap();
    let lost = overflowed_keys(&s);
    assert!(!lost.is_empty());
    s.insert("counter", 1u32).unwrap();
    let saved = sealer.save_async(&mut s).await.unwrap();
    assert_eq!(saved.report.dropped.len(), lost.len());
}

/// A store with only the required methods: `touch` is the trait's default.
struct WithoutTouch(Instrumented);

impl OverflowStore for WithoutTouch {
    fn put<'a>(
        &'a self,
        key: &'a str,
        blob: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.0.put(key, blob, ttl)
    }
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        self.0.get(key)
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.0.delete(key)
    }
}

/// A clock at `T0`, an instrumented memory store, and a sealer on both,
/// configured further by `configure`.
fn instrumented_sealer(
    configure: impl FnOnce(SealerBuilder) -> SealerBuilder,
) -> (Arc<FixedClock>, Arc<Instrumented>, Sealer) {
    let clock = clock();
    let store = instrumented(&clock);
    let sealer = configure(builder(&clock).overflow_store(store.clone()))
        .build()
        .unwrap();
    (clock, store, sealer)
}

/// A blob lives for the shorter of the idle window and the session's
/// remaining lifetime, plus the clock skew and a second.
#[tokio::test]
async fn a_blob_lives_for_the_shorter_timeout() {
    let (clock, store, sealer) = instrumented_sealer(|b| b);
    let t0 = sealed_session::Clock::now(&*clock);
    let mut s = ten_kb_session(&sealer);
    save_token(&sealer, &mut s).await;
    let blob = store.inner.keys().pop().unwrap();
    assert_eq!(store.expiries_of(&blob), [t0 + 3600 + 60 + 1]);
    // Near the end of its lifetime, the remaining lifetime is the shorter.
    clock.advance(86_400 - 100);
    s.insert("counter", 1u32).unwrap();
    save_token(&sealer, &mut s).await;
    let blob = store.inner.keys().pop().unwrap();
    assert_eq!(
        store.expiries_of(&blob).last(),
        Some(&(t0 + 86_400 + 60 + 1))
    );
}

/// Opens `token` and reads one of its overflowed entries: `Ok(true)` when
/// the blob is there and holds it.
async fn overflow_loads(sealer: &Sealer, token: &str) -> Result<bool, Error> {
    let mut s = sealer.open_async(token).await?;
    let key = saved_overflowed_key(&s);
    Ok(sealer
        .get_loading::<serde_json::Value>(&mut s, &key)
        .await?
        .is_some())
}

fn instrumented(clock: &Arc<FixedClock>) -> Arc<Instrumented> {
    Arc::new(Instrumented::new(clock))
}

#[tokio::test]
async fn store_is_read_lazily_and_written_only_when_needed() {
    let (_, store, sealer) = instrumented_sealer(|b| b);
    let mut session = ten_kb_session(&sealer);
    let saved = sealer.save_async(&mut session).await.unwrap();
    assert_eq!(store.calls.swap(0, Ordering::SeqCst), 1, "one put");
    let token = saved.action.cookie_value().unwrap().to_owned();

    // A request that reads and writes only cookie-resident keys.
    let mut s = sealer.open_async(&token).await.unwrap();
    assert_eq!(s.get::<u64>("user_id").unwrap(), Some(4217));
    s.insert_with_priority(
        "csrf",
        "rotated-token-0001",
        sealed_session::Priority::Critical,
    )
    .unwrap();
    let saved = sealer.save_async(&mut s).await.unwrap();
    assert!(matches!(saved.action, CookieAction::Set(_)));
    assert_eq!(
        store.calls.swap(0, Ordering::SeqCst),
        1,
        "one call, to renew the blob; no read, no write"
    );

    // Reading an overflowed key makes exactly one read.
    let token = saved.action.cookie_value().unwrap().to_owned();
    assert_eq!(overflow_loads(&sealer, &token).await, Ok(true));
    assert_eq!(store.calls.swap(0, Ordering::SeqCst), 1);
}

/// Saves a change to a cookie-resident key only, as a request would, at
/// the clock's time: returns the new token.
async fn resident_change(sealer: &sealed_session::Sealer, token: &str, n: u32) -> String {
    let mut s = sealer.open_async(token).await.unwrap();
    s.insert("counter", n).unwrap();
    save_token(sealer, &mut s).await
}

#[tokio::test]
async fn without_an_absolute_lifetime_the_blob_lives_as_long_as_the_session() {
    let (clock, store, sealer) = instrumented_sealer(|b| b.no_max_lifetime());
    let mut session = ten_kb_session(&sealer);
    let mut token = save_token(&sealer, &mut session).await;
    store.calls.swap(0, Ordering::SeqCst);

    // Kept alive by requests every 50 minutes (idle timeout 1 h) for 5 h,
    // far past the blob's first TTL: each save renews it with one call.
    for n in 0..6 {
        clock.advance(3000);
        token = resident_change(&sealer, &token, n).await;
        assert_eq!(store.calls.swap(0, Ordering::SeqCst), 1, "one touch");
    }
    assert_eq!(
        overflow_loads(&sealer, &token).await,
        Ok(true),
        "the blob outlived its first TTL"
    );

    // A store without `touch`: the blob is read and rewritten instead
    // (get, put, delete of the old one), and still outlives its first TTL.
    let plain = Arc::new(WithoutTouch(Instrumented::new(&clock)));
    let sealer = builder(&clock)
        .no_max_lifetime()
        .overflow_store(plain.clone())
        .build()
        .unwrap();
    let mut session = ten_kb_session(&sealer);
    let mut token = save_token(&sealer, &mut session).await;
    plain.0.calls.swap(0, Ordering::SeqCst);
    for n in 0..3 {
        clock.advance(3000);
        token = resident_change(&sealer, &token, n).await;
        assert_eq!(
            plain.0.calls.swap(0, Ordering::SeqCst),
            3,
            "get, put, delete"
        );
    }
    assert_eq!(overflow_loads(&sealer, &token).await, Ok(true));
}

#[tokio::test]
async fn renewing_a_blob_never_shortens_it() {
    // Without an absolute lifetime, a request that moves the session's own
    // expiry nearer renews the blob; an earlier cookie, still within its
    // idle window, still finds the blob.
    let (clock, store, sealer) = instrumented_sealer(|b| b.no_max_lifetime());
    let mut session = ten_kb_session(&sealer);
    let earlier = save_token(&sealer, &mut session).await;
    clock.advance(60);
    let mut s = sealer.open_async(&earlier).await.unwrap();
    s.set_expiry_in(Duration::from_secs(60));
    let _ = sealer.save_async(&mut s).await.unwrap();
    // The save did renew the blob, and not to an earlier end.
    let blob = store.inner.keys().pop().unwrap();
    let expiries = store.expiries_of(&blob);
    assert_eq!(expiries.len(), 2, "written, then renewed");
    assert!(expiries[0] <= expiries[1], "{expiries:?}");
    clock.advance(600);
    assert_eq!(overflow_loads(&sealer, &earlier).await, Ok(true));

    // A renewal the store cannot make does not fail a save that leaves
    // the blob alone: the new cookie keeps it, as it was.
    let mut s = sealer.open_async(&earlier).await.unwrap();
    s.insert("counter", 1u32).unwrap();
    store.set_down(true);
    let (logs, _guard) = Logs::capture(tracing::Level::WARN);
    let saved = sealer.save_async(&mut s).await.unwrap();
    assert!(
        logs.text().contains("event=\"blob-not-renewed\""),
        "{}",
        logs.text()
    );
    assert!(saved.report.dropped.is_empty());
    store.set_down(false);
    let token = saved.action.cookie_value().unwrap();
    let mut s = sealer.open_async(token).await.unwrap();
    assert_eq!(s.get::<u32>("counter").unwrap(), Some(1));
    assert_eq!(overflow_loads(&sealer, token).await, Ok(true));
    // A write that needs a new blob still fails while the store is down.
    s.insert_with_priority("history", "h".repeat(3000), Priority::Low)
        .unwrap();
    store.set_down(true);
    assert_eq!(
        sealer.save_async(&mut s).await.unwrap_err(),
        Error::Store(StoreError::Unavailable)
    );
    assert!(s.needs_save());
}

#[tokio::test]
async fn a_save_that_finds_its_blob_gone_drops_and_reports_its_entries() {
    let (_, store, sealer) = instrumented_sealer(|b| b.no_max_lifetime());
    let mut session = ten_kb_session(&sealer);
    let token = save_token(&sealer, &mut session).await;
    let mut s = sealer.open_async(&token).await.unwrap();
    let overflowed = overflowed_keys(&s);
    assert!(!overflowed.is_empty());
    evict_all(&store.inner).await;
    s.insert("counter", 1u32).unwrap();
    let saved = sealer.save_async(&mut s).await.unwrap();
    let mut reported: Vec<String> = saved.report.dropped.iter().map(|d| d.key.clone()).collect();
    reported.sort();
    let mut expected = overflowed.clone();
    expected.sort();
    assert_eq!(reported, expected);
    // The new cookie opens without them, and later saves work.
    let token = saved.action.cookie_value().unwrap().to_owned();
    let mut s = sealer.open_async(&token).await.unwrap();
    assert!(overflowed.iter().all(|k| !s.contains(k)));
    assert_eq!(s.get::<u32>("counter").unwrap(), Some(1));
    s.insert("counter", 2u32).unwrap();
    assert!(sealer.save_async(&mut s).await.is_ok());
}

#[tokio::test]
async fn reading_an_entry_whose_blob_is_gone_drops_its_entries_and_marks_the_session() {
    let (clock, store, sealer) = instrumented_sealer(|b| b.no_max_lifetime());
    let first = save_token(&sealer, &mut ten_kb_session(&sealer)).await;
    let mut s = sealer.open_async(&first).await.unwrap();
    let overflowed = overflowed_keys(&s);
    evict_all(&store.inner).await;
    assert!(!s.needs_save());
    let read = sealer.get_loading::<serde_json::Value>(&mut s, &overflowed[0]);
    assert_eq!(read.await, Ok(None));
    // Every overflowed entry is gone, and the session must be saved so
    // that the client stops presenting the dead reference.
    assert!(overflowed.iter().all(|k| !s.contains(k)));
    assert!(s.needs_save());
    // The save that succeeds reports them, once; one that fails (the store
    // is down for a new entry's blob) keeps them for it.
    s.insert_with_priority("history", "h".repeat(3000), Priority::Low)
        .unwrap();
    store.set_down(true);
    let failed = sealer.save_async(&mut s).await;
    assert_eq!(failed.unwrap_err(), Error::Store(StoreError::Unavailable));
    store.set_down(false);
    let saved = sealer.save_async(&mut s).await.unwrap();
    assert_eq!(saved.report.dropped_keys(), overflowed);
    assert_eq!(saved.report.overflowed[0].key, "history");
    s.insert("counter", 1u32).unwrap();
    let again = sealer.save_async(&mut s).await.unwrap();
    assert!(again.report.dropped.is_empty());
    let s = sealer
        .open_async(again.action.cookie_value().unwrap())
        .await
        .unwrap();
    assert!(overflowed.iter().all(|k| !s.contains(k)));
    assert_eq!(s.get::<u64>("user_id").unwrap(), Some(4217));

    // The synchronous save reports them too.
    let mut s = sealer.open_async(&first).await.unwrap();
    let read = sealer.get_loading::<serde_json::Value>(&mut s, &overflowed[0]);
    assert_eq!(read.await, Ok(None));
    assert_eq!(
        sealer.save(&mut s).unwrap().report.dropped_keys(),
        overflowed
    );

    // A server set up without the store cannot read the blob: a setup
    // mistake, not an outage (an outage answers 503, this 500).
    let storeless = builder(&clock).no_max_lifetime().build().unwrap();
    let mut s = storeless.open(&first).unwrap();
    let read = storeless.get_loading::<serde_json::Value>(&mut s, &overflowed[0]);
    assert_eq!(read.await, Err(Error::Store(StoreError::NotConfigured)));
}

#[tokio::test]
async fn a_sync_save_drops_overflowed_entries_it_cannot_vouch_for() {
    let (clock, store, no_lifetime) = instrumented_sealer(|b| b.no_max_lifetime());
    // With an absolute lifetime too: a concurrent `save_async` may have
    // retired the blob, and only `save_async` would renew it.
    let with_lifetime = builder(&clock)
        .overflow_store(store.clone())
        .build()
        .unwrap();
    for sealer in [&no_lifetime, &with_lifetime] {
        let mut session = ten_kb_session(sealer);
        let token = save_token(sealer, &mut session).await;
        let mut s = sealer.open_async(&token).await.unwrap();
        let key = saved_overflowed_key(&s);
        s.insert("counter", 1u32).unwrap();
        let saved = sealer.save(&mut s).unwrap();
        assert!(saved.report.dropped.iter().any(|d| d.key == key));
        assert!(!s.contains(&key));
        let token = saved.action.cookie_value().unwrap().to_owned();
        let reopened = sealer.open(&token).unwrap();
        assert!(!reopened.contains(&key));
        assert_eq!(reopened.get::<u32>("counter").unwrap(), Some(1));
    }
}

/// A preview of a session opened from a cookie with an overflow blob:
/// where the blob is kept, and on a server without the store (whose save
/// drops the blob's entries), it is the save's report; where a new entry
/// leaves the cookie, it names it, among what the rewrite then lists.
#[tokio::test]
async fn a_preview_of_a_session_with_a_blob_foresees_its_save() {
    let clock = clock();
    let (_store, sealer) = with_memory_store(&clock, |b| b);
    let mut session = ten_kb_session(&sealer);
    let token = save_token(&sealer, &mut session).await;

    let mut kept = sealer.open_async(&token).await.unwrap();
    kept.insert_with_priority("theme", "dark", Priority::Critical)
        .unwrap();
    let preview = sealer.preview_save(&kept).unwrap();
    assert!(preview.overflowed.is_empty() && preview.dropped.is_empty());
    let saved = sealer.save_async(&mut kept).await.unwrap();
    assert_eq!(preview, saved.report);

    let plain = builder(&clock).build().unwrap();
    let mut elsewhere = plain.open(&token).unwrap();
    elsewhere.insert("theme", "light").unwrap();
    let preview = plain.preview_save(&elsewhere).unwrap();
    assert!(!preview.dropped.is_empty(), "the blob's entries");
    let saved = plain.save(&mut elsewhere).unwrap();
    assert_eq!(preview, saved.report);

    let mut moving = sealer.open_async(&token).await.unwrap();
    moving
        .insert_with_priority("history", "h".repeat(3000), Priority::Low)
        .unwrap();
    let preview = sealer.preview_save(&moving).unwrap();
    assert_eq!(preview.overflowed.len(), 1, "{preview:?}");
    assert_eq!(preview.overflowed[0].key, "history");
    let saved = sealer.save_async(&mut moving).await.unwrap();
    let listed = saved.report.overflowed.iter().map(|e| &e.key);
    assert!(listed.clone().any(|key| key == "history"), "{saved:?}");
    assert!(listed.count() > 1, "the blob's entries again");
}

/// A preview refuses what every save refuses (a user entry the revocation
/// check cannot read), and, beside a store, draws no blob reference for a
/// session that fits whole, as the save draws none.
#[tokio::test]
async fn a_preview_fails_as_the_save_and_draws_only_what_the_save_would() {
    let clock = clock();
    let revocations = Arc::new(MemoryRevocations::with_clock(clock.clone()));
    let sealer = builder(&clock)
        .revocation_store(revocations, Some("user"))
        .build()
        .unwrap();
    let mut session = sealer.new_session().unwrap();
    session.insert("user", [1u8, 2, 3]).unwrap();
    let refused = Err(Error::Value(sealed_session::ValueError::UserId));
    assert_eq!(sealer.preview_save(&session), refused);
    assert_eq!(sealer.save(&mut session).map(|s| s.report), refused);

    let random = Arc::new(CountingRandom(AtomicUsize::new(0)));
    let (_store, sealer) = with_memory_store(&clock, |b| b.random(random.clone()));
    let mut session = sealer.new_session().unwrap();
    session.insert("theme", "dark").unwrap();
    let before = random.0.load(Ordering::SeqCst);
    let preview = sealer.preview_save(&session).unwrap();
    assert_eq!(random.0.load(Ordering::SeqCst), before, "nothing drawn");
    let saved = sealer.save_async(&mut session).await.unwrap();
    assert_eq!(preview, saved.report);
}

#[tokio::test]
async fn a_request_from_the_previous_cookie_still_finds_the_replaced_blob() {
    // Two requests start from the same cookie. A moves a new entry to the
    // store (a new blob; the old one is retired with a grace period); B
    // only changes a counter and renews the old blob. B's cookie works,
    // whichever the browser keeps.
    for absolute_lifetime in [false, true] {
        let clock = clock();
        let store = instrumented(&clock);
        let mut builder = builder(&clock).overflow_store(store.clone());
        if !absolute_lifetime {
            builder = builder.no_max_lifetime();
        }
        let sealer = builder.build().unwrap();
        let mut session = ten_kb_session(&sealer);
        let c0 = save_token(&sealer, &mut session).await;

        let mut a = sealer.open_async(&c0).await.unwrap();
        a.insert_with_priority("more", "m".repeat(500), Priority::Low)
            .unwrap();
        let token_a = save_token(&sealer, &mut a).await;
        let token_b = resident_change(&sealer, &c0, 1).await;

        clock.advance(1800);
        for token in [&token_a, &token_b] {
            assert_eq!(
                overflow_loads(&sealer, token).await,
                Ok(true),
                "absolute lifetime: {absolute_lifetime}"
            );
        }
    }
}

/// A blob altered in the store (here another blob's bytes under its key,
/// which fail authentication there) is rejected: the first read of one of
/// its entries, or the save that must rewrite it, drops its entries as for
/// a missing blob, reported and logged at `WARN`, instead of failing every
/// later save (a login's included).
#[tokio::test]
async fn an_altered_blob_is_dropped_like_a_missing_one() {
    let (_, store, sealer) = instrumented_sealer(|b| b);
    let mut session = ten_kb_session(&sealer);
    let token = save_token(&sealer, &mut session).await;
    let keys = store.inner.keys();
    let mut other = ten_kb_session(&sealer);
    save_token(&sealer, &mut other).await;
    let other_key = store
        .inner
        .keys()
        .into_iter()
        .find(|k| !keys.contains(k))
        .unwrap();
    let other_blob = store.inner.get(&other_key).await.unwrap().unwrap();
    store
        .inner
        .put(&keys[0], other_blob, Duration::from_secs(600))
        .await
        .unwrap();
    let (logs, _guard) = Logs::capture(tracing::Level::WARN);
    // Still rejected where the caller asks for the blob itself.
    let mut s = sealer.open_async(&token).await.unwrap();
    assert_eq!(
        sealer.load_overflow(&mut s).await,
        Err(Error::Store(StoreError::Rejected))
    );
    let overflowed = overflowed_keys(&s);
    assert!(!overflowed.is_empty());

    // A read: the entry reads as absent, the session is to be saved.
    let mut read = sealer.open_async(&token).await.unwrap();
    let value: Option<String> = sealer.get_loading(&mut read, &overflowed[0]).await.unwrap();
    assert_eq!(value, None);
    assert!(read.needs_save());
    let saved = sealer.save_async(&mut read).await.unwrap();
    for key in &overflowed {
        assert!(saved.report.dropped.iter().any(|d| &d.key == key), "{key}");
    }
    // A login's save (a new id) rewrites what is left, without them.
    let mut login = sealer.open_async(&token).await.unwrap();
    login.cycle_id().unwrap();
    let saved = sealer.save_async(&mut login).await.unwrap();
    assert_eq!(saved.report.dropped.len(), overflowed.len());
    let cookie = saved.action.cookie_value().expect("a cookie").to_owned();
    let reopened = sealer.open_async(&cookie).await.unwrap();
    assert_eq!(reopened.get::<u64>("user_id").unwrap(), Some(4217));
    assert!(overflowed.iter().all(|key| !reopened.contains(key)));
    let text = logs.text();
    assert_eq!(text.matches("cause=\"blob-rejected\"").count(), 2, "{text}");
    assert!(text.contains(" WARN "), "{text}");

    // Bytes that are no token at all: not UTF-8, not base64url, too short.
    for altered in [&b"\xff\xfe"[..], b"not base64!", b"AAAA"] {
        let mut session = ten_kb_session(&sealer);
        let keys_before = store.inner.keys();
        let token = save_token(&sealer, &mut session).await;
        let blob_key = (store.inner.keys().into_iter())
            .find(|k| !keys_before.contains(k))
            .unwrap();
        (store
            .inner
            .put(&blob_key, altered.to_vec(), Duration::from_secs(600)))
        .await
        .unwrap();
        let mut read = sealer.open_async(&token).await.unwrap();
        let key = overflowed_keys(&read)[0].clone();
        let value: Option<String> = sealer.get_loading(&mut read, &key).await.unwrap();
        assert_eq!(value, None, "{altered:?}");
    }
}

/// Each fill one repeated byte, counting up from 1 (all zeros is refused):
/// two sealers given one each draw the same session ids, references and
/// nonces.
#[derive(Default)]
struct RepeatableRandom(AtomicUsize);

impl sealed_session::RandomSource for RepeatableRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        buf.fill((self.0.fetch_add(1, Ordering::Relaxed) % 255 + 1) as u8);
        Ok(())
    }
}

/// A blob that another server could read but this one cannot (sealed
/// under a key of that server's ring, or over this server's limits) is
/// dropped here too, as a server without the store drops overflowed
/// entries, rather than fail every save that must rewrite it.
#[tokio::test]
async fn a_blob_another_server_could_read_is_dropped_here_too() {
    let clock = clock();
    let on = |ring: KeyRing, store: &Arc<MemoryStore>| {
        builder_with(ring, &clock)
            .random(Arc::new(RepeatableRandom::default()))
            .overflow_store(store.clone())
            .build()
            .unwrap()
    };
    let (ours, theirs) = (
        Arc::new(MemoryStore::with_clock(clock.clone())),
        Arc::new(MemoryStore::with_clock(clock.clone())),
    );
    let sealer = on(KeyRing::new(key(1)), &ours);
    let other = on(KeyRing::new(key(3)), &theirs);
    let token = save_token(&sealer, &mut ten_kb_session(&sealer)).await;
    save_token(&other, &mut ten_kb_session(&other)).await;
    let (blob_key, their_key) = (ours.keys(), theirs.keys());
    assert_eq!(blob_key, their_key, "the same draws, the same store key");
    let their_blob = theirs.get(&their_key[0]).await.unwrap().unwrap();
    ours.put(&blob_key[0], their_blob, Duration::from_secs(600))
        .await
        .unwrap();
    // Over this server's limits: the store refuses to hand it over.
    let stricter = builder(&clock)
        .overflow_store(ours.clone())
        .limits(Limits::default().with_max_decompressed(2048))
        .build()
        .unwrap();
    for (name, sealer) in [("another key", &sealer), ("stricter limits", &stricter)] {
        let mut s = sealer.open_async(&token).await.unwrap();
        let overflowed = overflowed_keys(&s);
        assert!(!overflowed.is_empty(), "{name}");
        assert_eq!(
            sealer.load_overflow(&mut s).await,
            Err(Error::Store(StoreError::Rejected)),
            "{name}"
        );
        s.insert_with_priority("more", "m".repeat(500), Priority::Low)
            .unwrap();
        let saved = sealer.save_async(&mut s).await.unwrap();
        let dropped: Vec<_> = saved.report.dropped.iter().map(|d| d.key.clone()).collect();
        assert!(
            overflowed.iter().all(|key| dropped.contains(key)),
            "{name}: {dropped:?}"
        );
    }
}

#[tokio::test]
async fn moved_entries_over_the_decompression_limit_are_dropped_least_important_first() {
    // The blob must open again on this server: what does not fit under
    // `max_decompressed` is dropped and reported, not the whole save.
    const CAP: usize = 2000;
    let (_, store, sealer) = instrumented_sealer(|b| {
        b.limits(sealed_session::Limits::default().with_max_decompressed(CAP))
    });
    let original = ten_kb_session(&sealer);
    let mut session = ten_kb_session(&sealer);
    // A save that fails after dropping (the store is down) leaves the
    // drops to the next save's report.
    store.set_down(true);
    assert_eq!(
        sealer.save_async(&mut session).await.unwrap_err(),
        Error::Store(StoreError::Unavailable)
    );
    assert!(session.len() < original.len());
    store.set_down(false);
    let saved = sealer.save_async(&mut session).await.unwrap();
    // Each entry once: dropped, or still in the session (moved ones too).
    assert_eq!(saved.report.dropped.len() + session.len(), original.len());
    let token = saved.action.cookie_value().expect("a Set-Cookie");
    let (dropped, moved) = (&saved.report.dropped, &saved.report.overflowed);
    assert!(
        !dropped.is_empty() && !moved.is_empty(),
        "{:?}",
        saved.report
    );
    assert_eq!(store.inner.len(), 1);
    assert!(session
        .keys()
        .all(|k| !saved.report.dropped_keys().contains(&k)));

    // Dropped in the budget's order: lower priority, then larger, first.
    let rank = |e: &sealed_session::RemovedEntry| (e.priority, std::cmp::Reverse(e.size));
    let last_dropped = dropped.last().unwrap();
    assert!(moved.iter().all(|m| rank(last_dropped) <= rank(m)));
    // No more than needed: the blob's fixed fields take at least 22 bytes.
    let moved_bytes: usize = moved.iter().map(|m| m.size).sum();
    assert!(
        moved_bytes <= CAP && moved_bytes + last_dropped.size + 22 > CAP,
        "{moved_bytes} {} {} {}",
        last_dropped.size,
        dropped.len(),
        moved.len()
    );

    let mut reopened = sealer.open_async(token).await.unwrap();
    for entry in dropped {
        assert!(reopened.keys().all(|k| k != entry.key), "{}", entry.key);
    }
    for entry in moved {
        let value: serde_json::Value = sealer
            .get_loading(&mut reopened, &entry.key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(Some(value), original.get(&entry.key).unwrap());
    }
}

#[tokio::test]
async fn without_any_timeout_a_renewal_does_not_follow_the_own_expiry() {
    // No idle timeout, no absolute lifetime: a cookie with a 60-day own
    // expiry, then a save that moves the expiry to one day. The blob lives
    // 30 days from that save, not one day.
    let (clock, store, sealer) = instrumented_sealer(|b| b.no_idle_timeout().no_max_lifetime());
    let mut session = ten_kb_session(&sealer);
    session.set_expiry_in(Duration::from_secs(60 * 86_400));
    let earlier = save_token(&sealer, &mut session).await;
    let mut s = sealer.open_async(&earlier).await.unwrap();
    s.set_expiry_in(Duration::from_secs(86_400));
    let _ = sealer.save_async(&mut s).await.unwrap();
    clock.advance(20 * 86_400);
    assert_eq!(overflow_loads(&sealer, &earlier).await, Ok(true));
    // The blob's expiry never moved back, though the own expiry did.
    let blob = store.inner.keys().pop().unwrap();
    let expiries = store.expiries_of(&blob);
    assert_eq!(expiries.len(), 2, "written, then renewed");
    assert!(expiries.windows(2).all(|w| w[0] <= w[1]), "{expiries:?}");
}

#[tokio::test]
async fn without_any_timeout_a_long_own_idle_window_keeps_the_blob() {
    // No idle timeout, no absolute lifetime, a 90-day idle window of the
    // session's own: a read-only session refreshes only at 45 days, so the
    // blob must outlive the 30 days it gets otherwise.
    let (clock, _store, sealer) = instrumented_sealer(|b| b.no_idle_timeout().no_max_lifetime());
    let mut session = ten_kb_session(&sealer);
    session.set_expiry(sealed_session::Expiry::Idle(Duration::from_secs(
        90 * 86_400,
    )));
    let cookie = save_token(&sealer, &mut session).await;
    clock.advance(44 * 86_400);
    let opened = sealer.open_async(&cookie).await.unwrap();
    assert!(!opened.refresh_due());
    assert_eq!(overflow_loads(&sealer, &cookie).await, Ok(true));
}

#[tokio::test]
async fn without_any_timeout_a_long_browser_session_idle_window_keeps_the_blob() {
    // The same with a cookie that ends with the browser, whose idle window
    // is the sealer's `browser_session_max_idle` (60 days, refreshed at 54).
    let (clock, _store, sealer) = instrumented_sealer(|b| {
        b.no_idle_timeout()
            .no_max_lifetime()
            .browser_session_max_idle(Duration::from_secs(60 * 86_400))
            .refresh_fraction(0.9)
    });
    let mut session = ten_kb_session(&sealer);
    session.set_expiry(sealed_session::Expiry::BrowserSession);
    let cookie = save_token(&sealer, &mut session).await;
    clock.advance(31 * 86_400);
    let opened = sealer.open_async(&cookie).await.unwrap();
    assert!(!opened.refresh_due());
    assert_eq!(overflow_loads(&sealer, &cookie).await, Ok(true));
}

/// A sealer of `ring` on the tests' settings, overflowing to `store`.
fn sealer_on_store(ring: KeyRing, clock: &Arc<FixedClock>, store: &Arc<Instrumented>) -> Sealer {
    builder_with(ring, clock)
        .overflow_store(store.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_blob_is_resealed_with_its_cookie_after_a_key_rotation() {
    // A blob sealed under the old key is rewritten under the new primary
    // when the cookie is (opened with a fallback key), so removing the old
    // key later loses nothing.
    let clock = clock();
    let store = instrumented(&clock);
    let old_ring = builder(&clock)
        .overflow_store(store.clone())
        .build()
        .unwrap();
    let mut session = ten_kb_session(&old_ring);
    let token = save_token(&old_ring, &mut session).await;

    let rotate = |ring: KeyRing| sealer_on_store(ring, &clock, &store);
    let rotating = rotate(KeyRing::with_fallbacks(key(2), [key(1)]).unwrap());
    let token = resident_change(&rotating, &token, 1).await;

    let new_only = rotate(KeyRing::new(key(2)));
    assert_eq!(overflow_loads(&new_only, &token).await, Ok(true));

    // The sync save cannot re-seal a blob: after a rotation it drops the
    // overflowed entries and reports them, rather than keep a reference to
    // a blob that will not open once the old key is gone.
    let mut session = ten_kb_session(&old_ring);
    let token = save_token(&old_ring, &mut session).await;
    let mut s = rotating.open(&token).unwrap();
    assert!(s.opened_with_fallback());
    let overflowed = saved_overflowed_key(&s);
    let saved = rotating.save(&mut s).unwrap();
    assert!(saved.report.dropped.iter().any(|d| d.key == overflowed));
    let token = saved.action.cookie_value().unwrap().to_owned();
    let s = new_only.open(&token).unwrap();
    assert!(!s.contains(&overflowed));
}

#[tokio::test]
async fn a_rotation_rolled_back_after_step_two_loses_no_blob() {
    // Step 2 reached some servers (the new key sealed a cookie and its
    // blob), then the rotation is rolled back: a server still at step 1
    // (the new key incoming) changes the session, and the new key is
    // removed. The cookie it sealed under the old key must still find its
    // blob, so the blob cannot stay sealed under the incoming key.
    let clock = clock();
    let store = instrumented(&clock);
    let with_ring = |ring: KeyRing| sealer_on_store(ring, &clock, &store);
    let step_two = with_ring(KeyRing::with_fallbacks(key(2), [key(1)]).unwrap());
    let mut session = ten_kb_session(&step_two);
    let token = save_token(&step_two, &mut session).await;

    let step_one = with_ring(KeyRing::new(key(1)).with_incoming(key(2)).unwrap());
    let opened = step_one.open_async(&token).await.unwrap();
    assert!(
        !opened.needs_save(),
        "an incoming key alone re-seals nothing"
    );
    let token = resident_change(&step_one, &token, 1).await;

    let rolled_back = with_ring(KeyRing::new(key(1)));
    assert_eq!(overflow_loads(&rolled_back, &token).await, Ok(true));
}

#[tokio::test]
async fn a_later_session_expiry_keeps_the_blob() {
    // The blob is written while the session's own expiry is near; the
    // expiry is then moved later by a request that touches only
    // cookie-resident keys. The blob must not end with the old expiry.
    let (clock, _, sealer) = instrumented_sealer(|b| b.max_idle(Duration::from_secs(86_400)));
    let mut session = ten_kb_session(&sealer);
    session.set_expiry_in(Duration::from_secs(600));
    let token = save_token(&sealer, &mut session).await;
    let mut s = sealer.open_async(&token).await.unwrap();
    s.set_expiry_in(Duration::from_secs(7200));
    let token = save_token(&sealer, &mut s).await;
    clock.advance(3600);
    assert_eq!(
        overflow_loads(&sealer, &token).await,
        Ok(true),
        "the blob ended with the session's first expiry"
    );
}

fn saved_overflowed_key(s: &sealed_session::Session) -> String {
    s.keys()
        .find(|k| s.is_overflowed(k))
        .expect("an overflowed key")
        .to_owned()
}

#[tokio::test]
async fn store_faults_are_reported_not_hidden() {
    let (_, store, sealer) = instrumented_sealer(|b| b);
    let mut session = ten_kb_session(&sealer);
    let token = save_token(&sealer, &mut session).await;

    store.set_down(true);
    // Read: resident keys work, overflowed keys give a clear error.
    let mut s = sealer.open_async(&token).await.unwrap();
    assert_eq!(s.get::<u64>("user_id").unwrap(), Some(4217));
    let key = saved_overflowed_key(&s);
    // Listed as stored: the overflowed ones without a value.
    let raw: Vec<_> = s.iter_raw().collect();
    assert_eq!(raw.len(), s.len());
    for (k, priority, value) in raw {
        assert_eq!(Some(priority), s.priority(k), "{k}");
        assert_eq!(value, s.get_raw(k), "{k}");
        assert_eq!(value.is_none(), s.is_overflowed(k), "{k}");
    }
    assert!(s.iter_raw().any(|(_, _, value)| value.is_none()));
    assert_eq!(
        sealer
            .get_loading::<serde_json::Value>(&mut s, &key)
            .await
            .unwrap_err(),
        Error::Store(StoreError::Unavailable)
    );
    // Write: the save fails and the session still needs saving.
    let mut fresh = ten_kb_session(&sealer);
    assert_eq!(
        sealer.save_async(&mut fresh).await.unwrap_err(),
        Error::Store(StoreError::Unavailable)
    );
    assert!(fresh.needs_save());
    assert_eq!(fresh.len(), ten_kb_session(&sealer).len());
    // Back up: the same save succeeds, and keeps every entry.
    store.set_down(false);
    let token = save_token(&sealer, &mut fresh).await;
    assert!(!fresh.needs_save());
    let mut reopened = sealer.open_async(&token).await.unwrap();
    assert!(!overflowed_keys(&reopened).is_empty());
    assert_same_entries(&sealer, &ten_kb_session(&sealer), &mut reopened).await;
}

#[tokio::test]
async fn altered_swapped_and_expired_blobs_are_rejected() {
    let clock = clock();
    let (store, sealer) = with_memory_store(&clock, |b| b);
    let (token_b, key_b) = altered_and_swapped_blobs_are_rejected(&sealer, &*store, || {
        let keys = store.keys();
        async move { keys }
    })
    .await;

    // Expired: the blob's TTL follows the session's remaining lifetime.
    let mut s = sealer.open(&token_b).unwrap();
    assert!(sealer.load_overflow(&mut s).await.is_ok());
    let mut opened_before = sealer.open(&token_b).unwrap();
    clock.advance(86_400 + 61);
    assert!(store.get(&key_b).await.unwrap().is_none());
    // A session opened just before, loading its blob just after.
    assert!(matches!(
        sealer.load_overflow(&mut opened_before).await,
        Err(Error::Store(StoreError::Missing))
    ));
}

#[tokio::test]
async fn flush_deletes_old_blobs_and_rewrites_and_cycle_id_retire_them() {
    let clock = clock();
    let (store, sealer) = with_memory_store(&clock, |b| b);
    let mut s = ten_kb_session(&sealer);
    let token = save_token(&sealer, &mut s).await;
    let first = store.keys();
    assert_eq!(first.len(), 1);

    // A rewrite with more overflow replaces the blob. The old one stays
    // readable for a grace period (a request from the previous cookie may
    // still be running), then expires.
    let mut s = sealer.open(&token).unwrap();
    s.insert_with_priority("more", "m".repeat(500), Priority::Low)
        .unwrap();
    let previous = token;
    let token = save_token(&sealer, &mut s).await;
    assert_eq!(store.keys().len(), 2);
    let mut late = sealer.open(&previous).unwrap();
    assert!(sealer.load_overflow(&mut late).await.is_ok());
    clock.advance(60 + 60 + 1);
    let second = store.keys();
    assert_eq!(second.len(), 1);
    assert_ne!(first, second);

    // cycle_id (a login): new id, data kept, blob rebound. The old blob is
    // retired, not deleted: a page read in another tab from the previous
    // cookie while the login saves still finds its entries, and so has
    // nothing to save (it would otherwise send a cookie without them,
    // which undoes the login if it arrives last).
    let previous = token.clone();
    let mut s = sealer.open(&token).unwrap();
    let old_id = s.id();
    s.cycle_id().unwrap();
    let token = save_token(&sealer, &mut s).await;
    assert_eq!(store.keys().len(), 2);
    let mut other_tab = sealer.open_async(&previous).await.unwrap();
    let more: Option<String> = sealer.get_loading(&mut other_tab, "more").await.unwrap();
    assert_eq!(more.map(|m| m.len()), Some(500));
    assert!(!other_tab.needs_save());
    let saved = sealer.save_async(&mut other_tab).await.unwrap();
    assert!(matches!(saved.action, CookieAction::Unchanged));
    clock.advance(60 + 60 + 1);
    let third = store.keys();
    assert_eq!(third.len(), 1);
    assert!(!third[0].contains(&old_id.to_string()));
    let mut reopened = sealer.open(&token).unwrap();
    assert_eq!(reopened.id(), s.id());
    sealer.load_overflow(&mut reopened).await.unwrap();
    assert!(reopened.get::<String>("more").unwrap().is_some());

    // flush: deletion cookie and no blob left.
    reopened.flush().unwrap();
    assert!(matches!(
        sealer.save_async(&mut reopened).await.unwrap().action,
        CookieAction::Delete(_)
    ));
    assert!(store.is_empty());
}

/// A client replaying one old cookie makes every save rewrite the blob
/// under a new reference that no cookie it keeps uses: the store keeps
/// only the session's newest blobs, so replays cannot grow it without
/// bound, and the newest cookie still reads its entries.
#[tokio::test]
async fn replaying_one_cookie_keeps_at_most_a_few_blobs_of_its_session() {
    use sealed_session::store::MAX_BLOBS_PER_SESSION;
    let clock = clock();
    let (store, sealer) = with_memory_store(&clock, |b| b);
    // Another session's blob, which the replays must leave alone.
    let mut other = ten_kb_session(&sealer);
    let other_token = save_token(&sealer, &mut other).await;
    let mut s = ten_kb_session(&sealer);
    let replayed = save_token(&sealer, &mut s).await;
    let mut newest = replayed.clone();
    for i in 0..3 * MAX_BLOBS_PER_SESSION {
        let mut s = sealer.open(&replayed).unwrap();
        s.insert_with_priority("more", "m".repeat(500 + i), Priority::Low)
            .unwrap();
        newest = save_token(&sealer, &mut s).await;
    }
    // The other session's one blob, and this one's newest.
    assert_eq!(store.keys().len(), 1 + MAX_BLOBS_PER_SESSION);
    let mut reopened = sealer.open(&newest).unwrap();
    sealer.load_overflow(&mut reopened).await.unwrap();
    assert_eq!(
        reopened.get::<String>("more").unwrap(),
        Some("m".repeat(500 + 3 * MAX_BLOBS_PER_SESSION - 1))
    );
    let mut other = sealer.open(&other_token).unwrap();
    sealer.load_overflow(&mut other).await.unwrap();
    // The replayed cookie's own blob was among the oldest: gone.
    let mut old = sealer.open(&replayed).unwrap();
    assert_eq!(
        sealer.load_overflow(&mut old).await.unwrap_err(),
        Error::Store(StoreError::Missing)
    );
}

/// A sealer checking in-memory revocations, user entry "user".
fn memory_revocation_sealer() -> (Arc<FixedClock>, Arc<MemoryRevocations>, Sealer) {
    let clock = clock();
    let revocations = Arc::new(MemoryRevocations::with_clock(clock.clone()));
    let sealer = builder(&clock)
        .revocation(revocations.clone(), Some("user"))
        .build()
        .unwrap();
    (clock, revocations, sealer)
}

#[tokio::test]
async fn memory_revocations() {
    let (clock, revocations, sealer) = memory_revocation_sealer();
    #[cfg(feature = "test-util")]
    check_revocation_store(&sealer, &clock, &*revocations, |s| {
        clock.advance(s);
        async {}
    })
    .await;
    #[cfg(not(feature = "test-util"))]
    let _ = (revocations, sealer);

    // One handle for both jobs, whatever the backend: the sealer checks
    // through it and the application revokes through it.
    let store: Arc<dyn sealed_session::store::RevocationStore> =
        Arc::new(MemoryRevocations::with_clock(clock.clone()));
    let sealer = builder(&clock)
        .revocation(store.clone(), None)
        .build()
        .unwrap();
    let mut session = sealer.new_session().unwrap();
    session.insert("k", 1u8).unwrap();
    let token = sealer.seal(&mut session).unwrap();
    // Under a second is kept for a whole one, not dropped at once.
    store
        .revoke_session(session.id(), Duration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(sealer.open_async(&token).await.unwrap_err(), Error::Revoked);
    clock.advance(1);
    assert!(sealer.open_async(&token).await.is_ok());
}

#[tokio::test]
async fn a_revocation_store_revokes_the_id_that_flush_or_cycle_id_gives_up() {
    let clock = clock();
    let revocations = Arc::new(FlakyRevocations::with_clock(&clock));
    let sealer = builder(&clock)
        .budget(400)
        .revocation_store(revocations.clone(), Some("user"))
        .build()
        .unwrap();
    let records = || revocations.inner.len();

    // A session no cookie carried has nothing to revoke.
    let mut session = sealer.new_session().unwrap();
    session.insert("cart", [1, 2, 3]).unwrap();
    session.cycle_id().unwrap();
    let anonymous = save_token(&sealer, &mut session).await;
    assert_eq!(records(), 0);

    // Login: a new id. The anonymous cookie's id is given up but not
    // revoked: it names no user, so a copy acts as nobody, and anonymous
    // traffic must not fill the store with records.
    let mut s = sealer.open_async(&anonymous).await.unwrap();
    s.cycle_id().unwrap();
    s.insert_with_priority("user", "ada", Priority::Critical)
        .unwrap();
    let first_login = save_token(&sealer, &mut s).await;
    assert_eq!(records(), 0);
    assert!(sealer.open_async(&anonymous).await.is_ok());
    // The cart came along under the new id.
    let s = sealer.open_async(&first_login).await.unwrap();
    assert_eq!(s.get::<Vec<u8>>("cart").unwrap(), Some(vec![1, 2, 3]));

    // Logging in again from a cookie that names a user gives up an id that
    // is revoked. A save that fails (too large) revokes nothing: the client
    // keeps the old cookie, which must still open.
    let mut s = sealer.open_async(&first_login).await.unwrap();
    s.cycle_id().unwrap();
    s.insert_with_priority("user", "u".repeat(500), Priority::Critical)
        .unwrap();
    assert!(matches!(
        sealer.save_async(&mut s).await.unwrap_err(),
        Error::TooLarge { .. }
    ));
    assert_eq!(records(), 0);
    assert!(sealer.open_async(&first_login).await.is_ok());

    // The synchronous forms cannot write the record, so they refuse.
    s.insert_with_priority("user", "ada", Priority::Critical)
        .unwrap();
    for refused in [sealer.save(&mut s).map(drop), sealer.seal(&mut s).map(drop)] {
        assert_eq!(refused.unwrap_err(), Error::Store(StoreError::NeedsAsync));
    }
    let saved = sealer.save_async(&mut s).await.unwrap();
    assert_eq!(saved.report.unrevoked, None);
    let logged_in = saved.action.cookie_value().unwrap().to_owned();
    assert_eq!(records(), 1);
    assert_eq!(
        sealer.open_async(&first_login).await.unwrap_err(),
        Error::Revoked
    );

    // The store down at logout: the deletion cookie is sent all the same
    // (the browser must drop the cookie), and the report says that copies
    // stay valid.
    let mut s = sealer.open_async(&logged_in).await.unwrap();
    s.flush().unwrap();
    revocations.set_down(true);
    let saved = sealer.save_async(&mut s).await.unwrap();
    revocations.set_down(false);
    assert!(matches!(saved.action, CookieAction::Delete(_)));
    assert_eq!(
        saved.report.unrevoked,
        Some(Error::Store(StoreError::Unavailable))
    );
    assert!(sealer.open_async(&logged_in).await.is_ok());

    // Logout: the deletion cookie, and the logged-in cookie is revoked.
    let mut s = sealer.open_async(&logged_in).await.unwrap();
    s.flush().unwrap();
    let saved = sealer.save_async(&mut s).await.unwrap();
    assert!(matches!(saved.action, CookieAction::Delete(_)));
    assert_eq!(
        sealer.open_async(&logged_in).await.unwrap_err(),
        Error::Revoked
    );
    assert_eq!(records(), 2);

    // A flush after a cycle in one request revokes the cookie's id, the
    // one copies carry (and not the id that never left the server).
    let copy = login(&sealer, "ada").1;
    let mut s = sealer.open_async(&copy).await.unwrap();
    s.cycle_id().unwrap();
    s.flush().unwrap();
    let _ = sealer.save_async(&mut s).await.unwrap();
    assert_eq!(records(), 3, "one record");
    assert_eq!(sealer.open_async(&copy).await.unwrap_err(), Error::Revoked);

    // Flushing an anonymous session writes nothing, and neither does
    // flushing one whose user was removed before the cookie the request
    // came with was sealed.
    let copy = anonymous_copy(&sealer).await;
    let mut s = sealer.open_async(&copy).await.unwrap();
    s.flush().unwrap();
    let saved = sealer.save_async(&mut s).await.unwrap();
    assert!(matches!(saved.action, CookieAction::Delete(_)));
    let mut s = sealer.open_async(&login(&sealer, "ada").1).await.unwrap();
    s.remove("user");
    let without_user = save_token(&sealer, &mut s).await;
    let mut s = sealer.open_async(&without_user).await.unwrap();
    s.flush().unwrap();
    let _ = sealer.save_async(&mut s).await.unwrap();
    assert_eq!(records(), 3);
    assert!(sealer.open_async(&copy).await.is_ok());

    // What counts is the latest cookie sent out: a session opened
    // anonymous that logs in without a new id, then out in the same
    // process, revokes the cookie that named the user.
    let mut s = sealer.open_async(&copy).await.unwrap();
    s.insert("user", "ada").unwrap();
    let named = sealer.save_async(&mut s).await.unwrap();
    let named = named.action.cookie_value().unwrap().to_owned();
    s.flush().unwrap();
    let _ = sealer.save_async(&mut s).await.unwrap();
    assert_eq!(records(), 4);
    assert_eq!(sealer.open_async(&named).await.unwrap_err(), Error::Revoked);
}

/// The cookie of a fresh session with one entry.
async fn anonymous_copy(sealer: &Sealer) -> String {
    let mut session = sealer.new_session().unwrap();
    session.insert("k", 1u8).unwrap();
    save_token(sealer, &mut session).await
}

#[tokio::test]
async fn sessions_that_outlive_revocation_records_are_refused() {
    let clock = clock();
    let revocations = Arc::new(MemoryRevocations::with_clock(clock.clone()));
    let with_revocations = |b: SealerBuilder| b.revocation_store(revocations.clone(), None);
    let refused = Err(Error::InvalidSetting(
        InvalidSetting::SessionsOutliveRevocations,
    ));
    // No timeout: such cookies open for ever, a record lasts a century.
    let unbounded = builder(&clock).no_idle_timeout().no_max_lifetime();
    assert_eq!(with_revocations(unbounded).build().map(|_| ()), refused);
    let century = Duration::from_secs(100 * 365 * 86_400);
    for (idle, skew) in [
        (century, Duration::ZERO),
        (Duration::from_secs(600), century),
    ] {
        let long = builder(&clock)
            .max_idle(idle)
            .no_max_lifetime()
            .clock_skew(skew);
        assert_eq!(with_revocations(long).build().map(|_| ()), refused);
    }
    // Without a revocation store nothing needs records.
    let unbounded = builder(&clock).no_idle_timeout().no_max_lifetime();
    assert!(unbounded.build().is_ok());

    // The longest lifetime accepted: a revoked cookie stays revoked to
    // its last second.
    let lifetime = century - Duration::from_secs(60 + 60 + 1);
    let sealer = with_revocations(
        builder(&clock)
            .no_idle_timeout()
            .max_lifetime(lifetime)
            .clock_skew(Duration::from_secs(60)),
    )
    .build()
    .unwrap();
    let cookie = anonymous_copy(&sealer).await;
    let mut s = sealer.open_async(&cookie).await.unwrap();
    s.flush().unwrap();
    let _ = sealer.save_async(&mut s).await.unwrap();
    clock.advance(lifetime.as_secs());
    assert_eq!(
        sealer.open_async(&cookie).await.unwrap_err(),
        Error::Revoked
    );
    let longer = lifetime + Duration::from_secs(1);
    let build = with_revocations(builder(&clock).no_idle_timeout().max_lifetime(longer));
    assert_eq!(
        build
            .clock_skew(Duration::from_secs(60))
            .build()
            .map(|_| ()),
        refused
    );
}

#[tokio::test]
async fn memory_revocation_records_end_after_keep_for() {
    let (clock, revocations, sealer) = memory_revocation_sealer();
    let login = |user: &str| login(&sealer, user);
    let (id, guest) = login("bob");
    let (_, ada) = login("ada");
    let minute = Duration::from_secs(60);
    assert!(revocations.is_empty());
    // Its Debug shows no record (a session id, a user name).
    assert_eq!(format!("{revocations:?}"), "MemoryRevocations { .. }");
    revocations.revoke_session(id, minute).unwrap();
    revocations.revoke_user("ada", minute).unwrap();
    assert_eq!(revocations.len(), 2);
    assert!(!revocations.is_empty());
    clock.advance(59);
    assert_eq!(sealer.open_async(&guest).await.unwrap_err(), Error::Revoked);
    assert_eq!(sealer.open_async(&ada).await.unwrap_err(), Error::Revoked);
    // Past `keep_for` the records no longer count (such cookies would be
    // expired by then under a sealer whose revocation_ttl this was), and
    // a later write purges them: the store does not grow without end.
    clock.advance(1);
    assert!(sealer.open_async(&guest).await.is_ok());
    assert!(sealer.open_async(&ada).await.is_ok());
    revocations.revoke_user("carol", minute).unwrap();
    // Writes purge once the count reaches 64 (then twice what a purge
    // left), not on every write: each purge scans every record under the
    // lock that checks take.
    for n in 1..=61u8 {
        let id = sealed_session::SessionId::from_bytes([n; 16]);
        revocations.revoke_session(id, minute).unwrap();
    }
    assert_eq!(revocations.len(), 64, "the ended records wait for a purge");
    revocations.revoke_user("dave", minute).unwrap();
    assert_eq!(revocations.len(), 63, "the two ended records are purged");
    // That purge left 62 records: the next comes at 124 (with dave's,
    // 63 records, all ended a minute from now).
    clock.advance(60);
    for n in 62..=122u8 {
        let id = sealed_session::SessionId::from_bytes([n; 16]);
        revocations.revoke_session(id, minute).unwrap();
    }
    assert_eq!(revocations.len(), 124, "no purge below twice 62 records");
    revocations.revoke_user("erin", minute).unwrap();
    assert_eq!(revocations.len(), 62, "the 63 ended records are purged");
}

#[tokio::test]
async fn the_user_entry_is_read_or_dropped_with_its_blob_or_the_revocation_check_fails_closed() {
    let clock = clock();
    let revocations = Arc::new(MemoryRevocations::with_clock(clock.clone()));
    let (store, sealer) =
        with_memory_store(&clock, |b| b.revocation(revocations.clone(), Some("user")));
    // The user id at low priority in a session too big for the cookie,
    // saved by a sealer without the check (one with it keeps the entry in
    // the cookie): it moves to the store, and is loaded for the check.
    let unchecked = builder(&clock)
        .overflow_store(store.clone())
        .build()
        .unwrap();
    let mut overflowed = ten_kb_session(&unchecked);
    overflowed
        .insert_with_priority("user", "ada", Priority::Low)
        .unwrap();
    let overflowed = save_token(&unchecked, &mut overflowed).await;
    assert!(!store.is_empty());
    let session = unchecked.open(&overflowed).unwrap();
    assert!(session.is_overflowed("user"), "the case under test");
    // A user that is not a string or an integer, sealed without the
    // check; and null, which is none.
    let unreadable = login(&unchecked, &serde_json::json!({"id": "ada"})).1;
    let null = login(&sealer, &serde_json::Value::Null).1;
    let number = login(&sealer, &7).1;
    // Read from the store, and brought into the cookie by the next save,
    // due at once, so that later opens need not read the store for it.
    let mut opened = sealer.open_async(&overflowed).await.unwrap();
    assert!(opened.needs_save() && !opened.is_modified());
    let resaved = save_token(&sealer, &mut opened).await;
    let resaved = unchecked.open(&resaved).unwrap();
    assert!(resaved.contains("user") && !resaved.is_overflowed("user"));
    assert_eq!(
        sealer.open_async(&unreadable).await.unwrap_err(),
        Error::Value(sealed_session::ValueError::UserId)
    );
    // The sealer with the check refuses to write such a cookie, rather
    // than every later open failing: by seal, save and save_async alike.
    let refused = Err(Error::Value(sealed_session::ValueError::UserId));
    for user in [
        serde_json::json!({"id": "ada"}),
        serde_json::json!(["ada"]),
        serde_json::json!(true),
        serde_json::json!(7.5),
    ] {
        let mut session = sealer.new_session().unwrap();
        session.insert("user", &user).unwrap();
        assert_eq!(sealer.seal(&mut session).map(|_| ()), refused, "{user}");
        assert_eq!(sealer.save(&mut session).map(|_| ()), refused, "{user}");
        let saved = sealer.save_async(&mut session).await.map(|_| ());
        assert_eq!(saved, refused, "{user}");
        let unchecked_token = unchecked.seal(&mut session).unwrap();
        let opened = sealer.open_async(&unchecked_token).await.map(|_| ());
        assert_eq!(opened, refused, "{user}");
    }
    // A small bignum decodes as an integer, but the save refuses it: so
    // does the open, by the same rule.
    let bignum = ciborium::Value::Tag(2, Box::new(ciborium::Value::Bytes(vec![7])));
    let mut session = sealer.new_session().unwrap();
    session.insert("user", &bignum).unwrap();
    assert_eq!(sealer.seal(&mut session).map(|_| ()), refused);
    let bignum_token = login(&unchecked, &bignum).1;
    let opened = sealer.open_async(&bignum_token).await.map(|_| ());
    assert_eq!(opened, refused);
    // Such a user entry in the overflow store (put there by a sealer
    // without the check, under a smaller budget): a save that rewrites
    // the blob loads it and refuses it, whether it then fits the cookie
    // (first) or not (second).
    let small_budget = builder(&clock)
        .overflow_store(store.clone())
        .budget(2000)
        .build()
        .unwrap();
    for user_len in [400, 3000] {
        let mut session = small_budget.new_session().unwrap();
        let user = serde_json::json!({ "id": "a".repeat(user_len) });
        session
            .insert_with_priority("pad", "p".repeat(1100), Priority::Critical)
            .unwrap();
        session
            .insert_with_priority("user", &user, Priority::Low)
            .unwrap();
        session
            .insert_with_priority("other", "o".repeat(3000), Priority::Low)
            .unwrap();
        let token = save_token(&small_budget, &mut session).await;
        let mut session = small_budget.open(&token).unwrap();
        let both = session.is_overflowed("user") && session.is_overflowed("other");
        assert!(both, "the case under test ({user_len})");
        // Removing a blob entry makes the save rewrite the blob. The cases
        // differ in whether the user entry, which the check keeps in the
        // cookie, fits there: a valid id of its length saves, or not.
        let mut valid = small_budget.open(&token).unwrap();
        valid.remove("other");
        let valid_id = "a".repeat(user_len + 9);
        valid
            .insert_with_priority("user", &valid_id, Priority::Low)
            .unwrap();
        match sealer.save_async(&mut valid).await {
            Ok(_) => assert_eq!(user_len, 400),
            Err(error) => assert!(
                user_len == 3000 && matches!(error, Error::TooLarge { .. }),
                "{user_len}: {error:?}"
            ),
        }
        session.remove("other");
        let saved = sealer.save_async(&mut session).await.map(|_| ());
        assert_eq!(saved, refused, "{user_len}");
    }
    assert!(sealer.open_async(&null).await.is_ok());
    assert!(sealer.open_async(&number).await.is_ok());
    // Byte strings: a UUID (its CBOR form) as it displays, others in hex.
    let uuid = uuid::Uuid::from_u128(0x6c84fb90_12c4_41e2_a5f2_3ba61e8e1d2f);
    let by_uuid = login(&sealer, &uuid).1;
    let by_bytes = login(&sealer, &ciborium::Value::Bytes(vec![0x0a, 0xff, 0x01])).1;
    let negative = login(&sealer, &-42i64).1;
    assert!(sealer.open_async(&by_uuid).await.is_ok());

    clock.advance(1);
    let day = Duration::from_secs(86_400);
    revocations.revoke_user("ada", day).unwrap();
    revocations.revoke_user("7", day).unwrap();
    assert_eq!(
        sealer.open_async(&overflowed).await.unwrap_err(),
        Error::Revoked
    );
    assert_eq!(
        sealer.open_async(&number).await.unwrap_err(),
        Error::Revoked
    );
    assert!(sealer.open_async(&null).await.is_ok());
    assert!(sealer.open_async(&by_uuid).await.is_ok());
    // The blob holding the user entry is gone: the entry goes with it, and
    // the session, which no longer names a user, opens.
    evict_all(&store).await;
    let opened = sealer.open_async(&overflowed).await.unwrap();
    assert!(!opened.contains("user") && opened.needs_save());
    revocations.revoke_user(&uuid.to_string(), day).unwrap();
    revocations.revoke_user("0aff01", day).unwrap();
    revocations.revoke_user("-42", day).unwrap();
    for token in [&by_uuid, &by_bytes, &negative] {
        assert_eq!(sealer.open_async(token).await.unwrap_err(), Error::Revoked);
    }
}

/// A sealer with a revocation check keeps the user entry in the cookie at
/// any priority, whether the others are dropped or overflowed; the same
/// session without the check loses it first, as its priority says.
#[tokio::test]
async fn the_revocation_user_entry_stays_in_the_cookie_whatever_its_priority() {
    let clock = clock();
    let revocations = Arc::new(MemoryRevocations::with_clock(clock.clone()));
    let big_low_user = |sealer: &Sealer| {
        let mut session = ten_kb_session(sealer);
        // Larger than any other low entry, so first in the drop order.
        session
            .insert_with_priority("user", "a".repeat(500), Priority::Low)
            .unwrap();
        session
    };
    // Dropping, no store.
    let checked = builder(&clock)
        .revocation(revocations.clone(), Some("user"))
        .build()
        .unwrap();
    let saved = checked.save(&mut big_low_user(&checked)).unwrap();
    assert!(!saved.report.dropped.is_empty());
    assert!(!saved.report.dropped_keys().contains(&"user"));
    let unchecked = builder(&clock).build().unwrap();
    let cookie = saved.action.cookie_value().unwrap();
    assert!(unchecked.open(cookie).unwrap().contains("user"));
    let saved = unchecked.save(&mut big_low_user(&unchecked)).unwrap();
    assert_eq!(saved.report.dropped_keys()[0], "user");
    // Overflowing.
    let (store, checked) =
        with_memory_store(&clock, |b| b.revocation(revocations.clone(), Some("user")));
    let token = save_token(&checked, &mut big_low_user(&checked)).await;
    // Looked at without the check, which would load the blob.
    let plain = builder(&clock).overflow_store(store).build().unwrap();
    let opened = plain.open(&token).unwrap();
    assert!(!overflowed_keys(&opened).is_empty());
    assert!(opened.contains("user") && !opened.is_overflowed("user"));
    let (_store, unchecked) = with_memory_store(&clock, |b| b);
    let token = save_token(&unchecked, &mut big_low_user(&unchecked)).await;
    assert!(unchecked.open(&token).unwrap().is_overflowed("user"));
}

fn arb_priority() -> impl Strategy<Value = Priority> {
    prop_oneof![
        Just(Priority::Low),
        Just(Priority::Normal),
        Just(Priority::High),
        Just(Priority::Critical)
    ]
}

/// The builder of the budget property: `budget`, and compression above 64
/// bytes if `compress`.
fn budget_builder(clock: &Arc<FixedClock>, budget: usize, compress: bool) -> SealerBuilder {
    let b = builder(clock).budget(budget);
    if compress {
        b.compression(Compression::Above(64))
    } else {
        b
    }
}

proptest! {

    /// No save ever produces a Set-Cookie header over the budget: it fits,
    /// or it fails with TooLarge and nothing is emitted.
    #[test]
    fn no_header_over_budget(
        entries in proptest::collection::vec(("[a-z]{1,12}", arb_priority(), 0usize..900), 0..40),
        budget in 150usize..5000,
        compress in any::<bool>(),
        with_store in any::<bool>(),
    ) {
        let clock = clock();
        let mut b = budget_builder(&clock, budget, compress);
        if with_store {
            b = b.overflow_store(Arc::new(MemoryStore::with_clock(clock.clone())));
        }
        let sealer = match b.build() {
            Ok(sealer) => sealer,
            // Refused when not even an empty session's cookie fits.
            Err(Error::TooLarge { needed, .. }) => {
                prop_assert!(needed > budget && needed < 256);
                return Ok(());
            }
            Err(error) => panic!("{error:?}"),
        };
        let mut session = sealer.new_session().unwrap();
        for (i, (key, priority, len)) in entries.iter().enumerate() {
            session.insert_with_priority(&format!("{key}{i}"), "v".repeat(*len), *priority).unwrap();
        }
        let preview = sealer.preview_save(&session);
        let keys = session.keys().map(str::to_owned).collect::<Vec<_>>();
        prop_assert_eq!(keys.len(), entries.len(), "the preview changed nothing");
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let saved = runtime.block_on(sealer.save_async(&mut session));
        // The preview is the save's report, but beside a store with
        // compression: a new blob's reference is drawn anew, and its bytes
        // change the compressed length.
        if !(with_store && compress) {
            prop_assert_eq!(&preview, &saved.clone().map(|saved| saved.report));
        }
        match saved {
            Ok(saved) => {
                let header = saved.action.header_value().map(str::to_owned).unwrap_or_default();
                // A new session with entries always sends its cookie (so
                // the checks below always run for one).
                prop_assert_eq!(header.is_empty(), entries.is_empty());
                if !header.is_empty() {
                    prop_assert!("Set-Cookie: ".len() + header.len() <= budget);
                    prop_assert_eq!(saved.report.header_len, "Set-Cookie: ".len() + header.len());
                    // What this sealer emits, it opens again (its token
                    // limit can be tighter than the budget).
                    prop_assert!(sealer.open(&cookie_value(&header)).is_ok());
                }
                prop_assert!(saved.report.dropped.iter().all(|d| d.priority != Priority::Critical));
                if with_store && !saved.report.dropped.is_empty() {
                    // Only when the overflow list itself cannot fit: then
                    // nothing goes to the store.
                    prop_assert!(saved.report.overflowed.is_empty());
                }
            }
            Err(Error::TooLarge { needed, budget: b }) => {
                // The budget, or less where the token-length limit is tighter.
                prop_assert!(b <= budget);
                prop_assert!(needed > b);
                // Too large with a store only when too large without one:
                // the critical entries alone do not fit. The same session
                // (a refused save leaves it as it was), so that its random
                // id compresses the same. (Without a store the sealer is
                // that one already.)
                if with_store {
                    let plain = budget_builder(&clock, budget, compress).build().unwrap();
                    let refused = matches!(plain.save(&mut session), Err(Error::TooLarge { .. }));
                    prop_assert!(refused);
                }
            }
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}

#[tokio::test]
async fn sync_save_reports_overflowed_entries_it_cannot_carry() {
    let clock = clock();
    let (_store, sealer) = with_memory_store(&clock, |b| b);
    let mut s = ten_kb_session(&sealer);
    let token = save_token(&sealer, &mut s).await;
    let mut reopened = sealer.open(&token).unwrap();
    let overflowed = overflowed_keys(&reopened);
    assert!(!overflowed.is_empty());
    // A new id without the store: the blob cannot follow, so the entries
    // are reported as dropped rather than vanishing.
    reopened.cycle_id().unwrap();
    let saved = sealer.save(&mut reopened).unwrap();
    for key in &overflowed {
        assert!(
            saved.report.dropped.iter().any(|d| &d.key == key),
            "{key} not reported"
        );
        assert!(!reopened.contains(key));
    }
}

#[test]
fn a_budget_above_the_token_limit_never_emits_an_unopenable_cookie() {
    let clock = clock();
    for (budget, limits) in [
        (8192, Limits::default()),
        (4096, Limits::default().with_max_token_len(2048)),
    ] {
        let sealer = builder(&clock)
            .budget(budget)
            .limits(limits)
            .build()
            .unwrap();
        let mut s = sealer.new_session().unwrap();
        s.insert_with_priority("user", "ada", Priority::Critical)
            .unwrap();
        s.insert_with_priority("notes", "n".repeat(5000), Priority::Low)
            .unwrap();
        let saved = sealer.save(&mut s).unwrap();
        assert_eq!(saved.report.dropped[0].key, "notes", "budget {budget}");
        let reopened = sealer.open(saved.action.cookie_value().unwrap()).unwrap();
        assert!(reopened.contains("user"));
    }
}

#[tokio::test]
async fn sync_save_logs_the_overflowed_entries_it_drops_even_when_it_then_fails() {
    let clock = clock();
    let (_store, sealer) = with_memory_store(&clock, |b| b);
    let mut s = ten_kb_session(&sealer);
    let mut reopened = sealer.open(&save_token(&sealer, &mut s).await).unwrap();
    let overflowed = overflowed_keys(&reopened);
    assert!(!overflowed.is_empty());
    // Critical entries that cannot fit: the save fails after the drop.
    reopened
        .insert_with_priority("huge", "h".repeat(5000), Priority::Critical)
        .unwrap();
    let (result, text) = logged(|| sealer.save(&mut reopened));
    assert!(matches!(result, Err(Error::TooLarge { .. })), "{result:?}");
    assert!(
        text.contains("overflowed session entries dropped"),
        "{text}"
    );
    for key in &overflowed {
        assert!(text.contains(key.as_str()), "{key} not logged: {text}");
        assert!(!reopened.contains(key));
    }
    // The failed save returned no report: the next one lists them, first,
    // and once only.
    reopened.remove("huge");
    let saved = sealer.save(&mut reopened).unwrap();
    assert_eq!(saved.report.dropped_keys(), overflowed);
    reopened.insert("theme", "dark").unwrap();
    assert!(sealer
        .save(&mut reopened)
        .unwrap()
        .report
        .dropped
        .is_empty());
}

#[tokio::test]
async fn a_server_without_the_store_says_why_it_drops_the_overflowed_entries() {
    let clock = clock();
    let (_store, with_store) = with_memory_store(&clock, |b| b);
    let mut s = ten_kb_session(&with_store);
    let token = save_token(&with_store, &mut s).await;
    // Another server of the deployment, with the same key and no store.
    let without_store = builder(&clock).build().unwrap();
    // The `cause` is a stable field (docs/LOGGING.md), the reason a
    // sentence.
    for (sealer, cause, reason) in [
        (&with_store, "synchronous-save", "use save_async"),
        (
            &without_store,
            "no-overflow-store",
            "no overflow store is configured on this server",
        ),
    ] {
        let mut opened = sealer.open(&token).unwrap();
        let overflowed = overflowed_keys(&opened);
        assert!(!overflowed.is_empty());
        opened.insert("theme", "dark").unwrap();
        let (logs, guard) = Logs::capture(tracing::Level::WARN);
        // The store-less server's async save, as the HTTP layer makes it;
        // the other's synchronous save, which cannot reach its store.
        let saved = if std::ptr::eq(sealer, &without_store) {
            sealer.save_async(&mut opened).await.unwrap()
        } else {
            sealer.save(&mut opened).unwrap()
        };
        drop(guard);
        let text = logs.text();
        assert!(text.contains(reason), "{reason:?} not in {text}");
        let cause = format!("cause=\"{cause}\"");
        assert!(text.contains(&cause), "{cause} not in {text}");
        for key in &overflowed {
            assert!(saved.report.dropped.iter().any(|d| &d.key == key), "{key}");
        }
    }
}

/// Counts the nonces and ids drawn, to see how often a save seals.
struct CountingRandom(AtomicUsize);

impl sealed_session::RandomSource for CountingRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        sealed_session::RandomSource::fill(&sealed_session::OsRandom, buf)
    }
}

/// Without a store, a compressed save that must drop one big entry among
/// many small ones seals a few times, not once per halving of all of them.
#[test]
fn a_compressed_save_without_a_store_that_drops_one_entry_seals_few_times() {
    let clock = clock();
    let random = Arc::new(CountingRandom(AtomicUsize::new(0)));
    let sealer = builder(&clock)
        .compression(Compression::Above(0))
        .random(random.clone())
        .build()
        .unwrap();
    for small in [30, 120] {
        let mut session = sealer.new_session().unwrap();
        for i in 0..small {
            session.insert(&format!("k{i}"), i).unwrap();
        }
        session
            .insert_with_priority("big", incompressible(7, 6000), Priority::Low)
            .unwrap();
        let before = random.0.load(Ordering::SeqCst);
        let saved = sealer.save(&mut session).unwrap();
        assert_eq!(saved.report.dropped_keys(), ["big"]);
        let draws = random.0.load(Ordering::SeqCst) - before;
        assert!(draws <= 4, "{small} small entries: {draws} draws");
    }
}

#[test]
fn an_uncompressed_session_too_long_for_the_cookie_is_not_sealed_to_find_out() {
    let clock = clock();
    let random = Arc::new(CountingRandom(AtomicUsize::new(0)));
    let sealer = builder(&clock).random(random.clone()).build().unwrap();
    let mut session = ten_kb_session(&sealer);
    let before = random.0.load(Ordering::SeqCst);
    let saved = sealer.save(&mut session).unwrap();
    assert!(!saved.report.dropped.is_empty());
    assert_eq!(
        random.0.load(Ordering::SeqCst) - before,
        1,
        "one nonce: only the cookie that is sent is sealed"
    );
    assert_eq!(
        sealer.seal(&mut ten_kb_session(&sealer)).unwrap_err(),
        Error::LimitExceeded(sealed_session::Limit::TokenLength)
    );
}

#[tokio::test]
async fn a_save_that_keeps_its_blob_draws_only_the_nonce() {
    let random = Arc::new(CountingRandom(AtomicUsize::new(0)));
    let (_, store, sealer) = instrumented_sealer(|b| b.random(random.clone()));
    let mut session = ten_kb_session(&sealer);
    let token = save_token(&sealer, &mut session).await;
    store.calls.swap(0, Ordering::SeqCst);
    let before = random.0.load(Ordering::SeqCst);
    let token = resident_change(&sealer, &token, 1).await;
    assert_eq!(store.calls.swap(0, Ordering::SeqCst), 1, "one touch: kept");
    assert_eq!(
        random.0.load(Ordering::SeqCst) - before,
        1,
        "the cookie's nonce only: no new blob reference"
    );
    assert_eq!(overflow_loads(&sealer, &token).await, Ok(true));
}

/// A session whose critical entry leaves almost no room: `filler` bytes.
fn nearly_full(sealer: &Sealer, filler: usize) -> sealed_session::Session {
    let mut s = sealer.new_session().unwrap();
    s.insert_with_priority("user", "u".repeat(filler), Priority::Critical)
        .unwrap();
    s
}

/// The longest `nearly_full` filler that still saves (binary search).
async fn largest_filler(sealer: &Sealer) -> usize {
    let (mut fits, mut too_long) = (0, 4096);
    while too_long - fits > 1 {
        let mid = (fits + too_long) / 2;
        match sealer.save_async(&mut nearly_full(sealer, mid)).await {
            Ok(_) => fits = mid,
            Err(Error::TooLarge { .. }) => too_long = mid,
            Err(e) => panic!("{e}"),
        }
    }
    fits
}

/// The cookie of a session with a critical `user` and, in its overflow
/// blob, 2000 bytes at low priority under each of `keys`.
async fn cookie_with_blob(sealer: &Sealer, keys: &[&str]) -> String {
    let mut s = sealer.new_session().unwrap();
    s.insert_with_priority("user", "ada", Priority::Critical)
        .unwrap();
    for key in keys {
        s.insert_with_priority(key, "n".repeat(2000), Priority::Low)
            .unwrap();
    }
    let saved = sealer.save_async(&mut s).await.unwrap();
    assert_eq!(saved.report.overflowed.len(), keys.len());
    saved.action.cookie_value().unwrap().to_owned()
}

#[tokio::test]
async fn when_the_overflow_list_itself_does_not_fit_entries_are_dropped_not_refused() {
    let clock = clock();
    let (store, sealer) = with_memory_store(&clock, |b| b);
    // The longest critical entry that still fits alone.
    let fits = largest_filler(&sealer).await;
    // Room for a few bytes, not for an overflow element (a 16-byte
    // reference and the key): the low entry is dropped, as without a store.
    let mut s = nearly_full(&sealer, fits);
    s.insert_with_priority("notes", "n".repeat(100), Priority::Low)
        .unwrap();
    let (logs, capture) = Logs::capture(tracing::Level::WARN);
    let saved = sealer.save_async(&mut s).await.unwrap();
    drop(capture);
    // Logged with the reason, which a server without a store does not have.
    assert!(logs.text().contains(
        r#"event="entries-dropped" cause="overflow-list-over-budget" dropped=["notes"]"#
    ));
    assert_eq!(saved.report.dropped.len(), 1);
    assert_eq!(saved.report.dropped[0].key, "notes");
    assert!(saved.report.overflowed.is_empty());
    assert!(saved.report.header_len <= 4096);
    assert_eq!(store.len(), 0, "no blob written");
    let CookieAction::Set(cookie) = saved.action else {
        panic!("a cookie is set");
    };
    let value = cookie_value(&cookie);
    let reopened = sealer.open(&value).unwrap();
    assert_eq!(reopened.keys().collect::<Vec<_>>(), ["user"]);
    // The same as the save without a store.
    let plain = builder(&clock).build().unwrap();
    let mut s = nearly_full(&plain, fits);
    s.insert_with_priority("notes", "n".repeat(100), Priority::Low)
        .unwrap();
    let (saved, logs) = logged(|| plain.save(&mut s).unwrap());
    assert_eq!(saved.report.dropped[0].key, "notes");
    assert!(logs.contains(r#"event="entries-dropped" cause="over-budget" dropped=["notes"]"#));
    // One byte more and the critical entry alone is too large, store or not.
    assert!(matches!(
        sealer.save_async(&mut nearly_full(&sealer, fits + 1)).await,
        Err(Error::TooLarge { .. })
    ));
}

#[tokio::test]
async fn a_blob_outlives_the_last_second_its_cookie_opens() {
    let clock = clock();
    let (_store, sealer) = with_memory_store(&clock, |b| b.clock_skew(Duration::ZERO).budget(1000));
    let token = cookie_with_blob(&sealer, &["notes"]).await;
    // The idle timeout is 3600 s: at an age of exactly 3600 the cookie
    // opens, and so must its blob.
    clock.advance(3600);
    let mut opened = sealer.open(&token).unwrap();
    sealer.load_overflow(&mut opened).await.unwrap();
    assert_eq!(
        opened.get::<String>("notes").unwrap().map(|n| n.len()),
        Some(2000)
    );
    clock.advance(1);
    assert!(sealer.open(&token).is_err());
}

#[tokio::test]
async fn seal_removes_unloaded_overflowed_entries_from_the_session_too() {
    let clock = clock();
    let (_store, sealer) = with_memory_store(&clock, |b| b.budget(1000));
    let token = cookie_with_blob(&sealer, &["notes"]).await;
    let mut opened = sealer.open(&token).unwrap();
    assert!(opened.contains("notes"), "listed");
    assert!(
        opened.is_overflowed("notes") && opened.has_unloaded_overflow(),
        "not loaded"
    );
    let (resealed, text) = logged(|| sealer.seal(&mut opened));
    let resealed = resealed.unwrap();
    assert!(
        text.contains(r#"cause="synchronous-seal""#) && text.contains("notes"),
        "{text}"
    );
    // What the new cookie cannot carry is gone from the session as well,
    // not kept there as if it had been saved.
    assert!(!opened.contains("notes"));
    assert!(!opened.has_unloaded_overflow());
    assert_eq!(
        sealer.open(&resealed).unwrap().keys().collect::<Vec<_>>(),
        ["user"]
    );
}

#[tokio::test]
async fn a_blob_is_rewritten_once_one_of_its_entries_is_removed() {
    let clock = clock();
    let (store, sealer) = with_memory_store(&clock, |b| b.budget(1000));
    let token = cookie_with_blob(&sealer, &["notes", "draft"]).await;
    let first_blob = store.keys();

    // A change to the cookie's own entries keeps the blob as it is.
    let mut opened = sealer.open(&token).unwrap();
    opened.insert("theme", "dark").unwrap();
    let _ = sealer.save_async(&mut opened).await.unwrap();
    assert_eq!(store.keys(), first_blob, "kept");

    // Removing one of its entries rewrites it without that entry.
    let mut opened = sealer.open(&token).unwrap();
    assert!(opened.remove("notes"));
    let token = save_token(&sealer, &mut opened).await;
    let mut reopened = sealer.open(&token).unwrap();
    sealer.load_overflow(&mut reopened).await.unwrap();
    assert!(!reopened.contains("notes"));
    assert_eq!(
        reopened.get::<String>("draft").unwrap().map(|d| d.len()),
        Some(2000)
    );
    // A new blob; the old one only lives out its grace period.
    let keys = store.keys();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&first_blob[0]));
    // The grace is one minute plus the clock skew: kept in its last
    // second, gone at its end (a TTL ends before its last instant).
    clock.advance(60 + 60 - 1);
    assert_eq!(store.keys().len(), 2);
    clock.advance(1);
    assert!(!store.keys().contains(&first_blob[0]));
    assert_eq!(store.keys().len(), 1);
}

#[tokio::test]
async fn a_blob_whose_entry_was_replaced_is_rewritten_despite_a_later_resident_change() {
    let clock = clock();
    let (store, sealer) = with_memory_store(&clock, |b| b.budget(1000));
    let token = cookie_with_blob(&sealer, &["notes", "draft"]).await;
    let first_blob = store.keys();
    // Without loading the blob: replace one of its entries, then change
    // one of the cookie's own; the blob must still be rewritten, or the
    // store would go on holding the old `notes` until the blob expires.
    let mut opened = sealer.open(&token).unwrap();
    opened.insert("notes", "short").unwrap();
    opened.insert("user", "bob").unwrap();
    let token = save_token(&sealer, &mut opened).await;
    let keys = store.keys();
    assert_eq!(keys.len(), 2, "a new blob beside the old one's grace");
    assert!(keys.contains(&first_blob[0]));
    let mut reopened = sealer.open(&token).unwrap();
    sealer.load_overflow(&mut reopened).await.unwrap();
    assert_eq!(
        reopened.get::<String>("notes").unwrap().as_deref(),
        Some("short")
    );
    assert_eq!(
        reopened.get::<String>("draft").unwrap().map(|d| d.len()),
        Some(2000)
    );
}

#[test]
fn a_budget_always_has_room_for_an_empty_session_and_a_logout() {
    let clock = clock();
    // The room is measured for any clock: the minimum budget at the epoch
    // (a created-at of one CBOR byte) still saves a session created today
    // and after 2106 (nine bytes).
    clock.set(0);
    let Err(Error::TooLarge { needed, budget }) = builder(&clock).budget(50).build() else {
        panic!("a 50-byte budget cannot hold a session cookie");
    };
    assert_eq!(budget, 50);
    let at_epoch = builder(&clock).budget(needed).build().unwrap();
    for now in [T0, 1 << 32] {
        clock.set(now);
        let mut s = at_epoch.new_session().unwrap();
        s.insert_with_priority("k", 1u8, Priority::Low).unwrap();
        assert!(at_epoch.save(&mut s).is_ok(), "at {now}");
    }
    // Exactly that much is accepted: a session whose entries may all be
    // dropped saves (empty), and logging out fits too; measured when the
    // created-at takes its longest form.
    let sealer = builder(&clock).budget(needed).build().unwrap();
    let mut s = sealer.new_session().unwrap();
    s.insert_with_priority("k", "v".repeat(40), Priority::Low)
        .unwrap();
    let saved = sealer.save(&mut s).unwrap();
    assert_eq!(saved.report.dropped_keys(), ["k"]);
    // Measured on the empty session's cookie actually sent.
    let CookieAction::Set(cookie) = &saved.action else {
        panic!("a cookie: {saved:?}");
    };
    assert_eq!("Set-Cookie: ".len() + cookie.len(), needed);
    let token = saved.action.cookie_value().unwrap();
    let mut s = sealer.open(token).unwrap();
    s.flush().unwrap();
    let saved = sealer.save(&mut s).unwrap();
    assert!(matches!(saved.action, CookieAction::Delete(_)), "{saved:?}");
    assert!(saved.report.header_len < needed);
    // One byte less is refused, and so are limits with no room for the
    // empty session's token or payload.
    assert!(matches!(
        builder(&clock).budget(needed - 1).build(),
        Err(Error::TooLarge { .. })
    ));
    let at_most = |len| Limits::default().with_max_token_len(len);
    assert!(builder(&clock).limits(at_most(token.len())).build().is_ok());
    for (limits, limit) in [
        (at_most(token.len() - 1), Limit::TokenLength),
        (
            Limits::default().with_max_decompressed(8),
            Limit::DecompressedSize,
        ),
    ] {
        let built = builder(&clock).limits(limits).build().map(|_| ());
        assert_eq!(built, Err(Error::LimitExceeded(limit)));
    }
    // A name too long for any session cookie is accepted (for tokens used
    // outside cookies) only while its deletion cookie fits.
    let named = |len: usize| builder(&clock).cookie_name("n".repeat(len)).build();
    assert!(named(3990).is_ok());
    assert!(matches!(
        named(4050),
        Err(Error::TooLarge { budget: 4096, .. })
    ));
}

#[tokio::test]
async fn critical_entries_over_the_payload_limit_fail_as_that_limit() {
    // Not `TooLarge`: no budget would help, and its `needed` would be a
    // placeholder, not a length.
    let clock = clock();
    let limits = Limits::default().with_max_decompressed(200);
    let (_store, with_store) = with_memory_store(&clock, |b| b.limits(limits));
    let without = builder(&clock).limits(limits).build().unwrap();
    for sealer in [&without, &with_store] {
        let mut s = sealer.new_session().unwrap();
        s.insert_with_priority("low", "l".repeat(100), Priority::Low)
            .unwrap();
        s.insert_with_priority("user", "u".repeat(300), Priority::Critical)
            .unwrap();
        assert_eq!(
            sealer.save_async(&mut s).await.unwrap_err(),
            Error::LimitExceeded(Limit::DecompressedSize)
        );
        // Within it, the low entry goes as usual.
        s.insert_with_priority("user", "u".repeat(100), Priority::Critical)
            .unwrap();
        let saved = sealer.save_async(&mut s).await.unwrap();
        assert!(saved.action.cookie_value().is_some());
    }
    // With a store, the cookie's list of moved keys alone can be over the
    // limit: then entries are dropped, as without a store, not refused.
    let limits = Limits::default().with_max_decompressed(1000);
    let (_store, with_store) = with_memory_store(&clock, |b| b.limits(limits));
    let without = builder(&clock).limits(limits).build().unwrap();
    for sealer in [&without, &with_store] {
        let mut s = sealer.new_session().unwrap();
        for i in 0..40 {
            s.insert_with_priority(&format!("{i:030}"), i, Priority::Low)
                .unwrap();
        }
        let saved = sealer.save_async(&mut s).await.unwrap();
        assert!(!saved.report.dropped.is_empty(), "{:?}", saved.report);
        assert!(saved.report.overflowed.is_empty(), "{:?}", saved.report);
        assert!(saved.action.cookie_value().is_some());
    }
}

#[tokio::test]
async fn a_critical_entry_still_in_the_blob_is_never_dropped_to_fit() {
    let clock = clock();
    let (store, sealer) = with_memory_store(&clock, |b| b.budget(1000));
    let token = cookie_with_blob(&sealer, &["x"]).await;
    // The largest critical filler that fits beside nothing else.
    let fits = largest_filler(&sealer).await;
    // "x" becomes critical while it is still in the blob, and the filler
    // leaves no room for the overflow list: "x" must be loaded, and since
    // it cannot fit, the save fails rather than drop a critical entry.
    let mut opened = sealer.open(&token).unwrap();
    assert!(opened.is_overflowed("x"));
    assert!(opened.set_priority("x", Priority::Critical));
    opened
        .insert_with_priority("user", "u".repeat(fits), Priority::Critical)
        .unwrap();
    assert!(matches!(
        sealer.save_async(&mut opened).await,
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(
        opened.get::<String>("x").unwrap().map(|x| x.len()),
        Some(2000)
    );
    assert_eq!(store.len(), 1, "the old blob stays for the old cookie");
}

#[tokio::test]
async fn take_and_get_or_insert_with_leave_an_unloaded_overflowed_entry_alone() {
    let clock = clock();
    let (_store, sealer) = with_memory_store(&clock, |b| b.budget(1000));
    let token = cookie_with_blob(&sealer, &["x"]).await;
    let mut opened = sealer.open(&token).unwrap();
    assert!(opened.is_overflowed("x"));
    let not_loaded = Error::Store(StoreError::NotLoaded);
    assert_eq!(opened.take::<String>("x").unwrap_err(), not_loaded);
    let mut called = false;
    let read = opened.get_or_insert_with("x", || {
        called = true;
        String::new()
    });
    assert_eq!(read.unwrap_err(), not_loaded);
    assert!(!called, "never replaced by the default");
    assert!(opened.is_overflowed("x") && !opened.is_modified());
    // Loaded, both read the stored value.
    sealer.load_overflow(&mut opened).await.unwrap();
    let read = opened.get_or_insert_with("x", String::new).unwrap();
    assert_eq!(read.len(), 2000);
    let taken = opened.take::<String>("x").unwrap();
    assert_eq!(taken.map(|x| x.len()), Some(2000));
    assert!(!opened.contains("x"));
}

#[tokio::test]
async fn when_no_blob_within_the_cap_lets_the_cookie_fit_the_save_drops_as_without_a_store() {
    // Only compression makes this happen: the cookie fits because listing a
    // long key lifts its payload over the threshold, so it is compressed.
    // Once that entry is dropped (its blob would exceed `max_decompressed`),
    // what is left falls under the threshold, is sealed as it is, and no
    // longer fits, with or without moving the rest: the save then drops as
    // without a store.
    const THRESHOLD: usize = 1000;
    let configure = |b: SealerBuilder| {
        b.compression(Compression::Above(THRESHOLD))
            .limits(Limits::default().with_max_decompressed(1500))
    };
    let clock = clock();
    let session = |sealer: &Sealer| {
        let mut s = sealer.new_session().unwrap();
        s.insert_with_priority("user", "u".repeat(600), Priority::Critical)
            .unwrap();
        s
    };
    // The budget: exactly the cookie of the critical entry alone, under the
    // threshold and so uncompressed.
    let (_, probe) = with_memory_store(&clock, configure);
    let budget = probe
        .save_async(&mut session(&probe))
        .await
        .unwrap()
        .report
        .header_len;
    let (store, sealer) = with_memory_store(&clock, |b| configure(b).budget(budget));
    // The listed key takes about 150 bytes of the cookie: with it the
    // payload is over the threshold, without it (about 900 bytes) under.
    let notes = format!("notes-{}", "n".repeat(120));
    let mut s = session(&sealer);
    s.insert_with_priority("draft", "d".repeat(250), Priority::Normal)
        .unwrap();
    s.insert_with_priority(&notes, "n".repeat(1000), Priority::Low)
        .unwrap();
    let saved = sealer.save_async(&mut s).await.unwrap();
    assert_eq!(saved.report.overflowed.len(), 1);
    assert_eq!(saved.report.overflowed[0].key, notes);
    let token = saved.action.cookie_value().unwrap().to_owned();
    let old_blob = store.keys();
    assert_eq!(old_blob.len(), 1);

    // The notes grow past the blob's cap: they must be dropped, and then
    // "draft" fits neither in the cookie nor (its key listed) beside it.
    let mut opened = sealer.open_async(&token).await.unwrap();
    opened
        .insert_with_priority(&notes, "n".repeat(2000), Priority::Low)
        .unwrap();
    let (logs, capture) = Logs::capture(tracing::Level::WARN);
    let saved = sealer.save_async(&mut opened).await.unwrap();
    drop(capture);
    assert_eq!(saved.report.dropped_keys(), [notes.as_str(), "draft"]);
    // Logged as the list's: no way to move them leaves a cookie that fits.
    let logged = format!(r#"cause="overflow-list-over-budget" dropped=["{notes}", "draft"]"#);
    assert!(logs.text().contains(&logged), "{}", logs.text());
    assert!(saved.report.overflowed.is_empty());
    assert_eq!(saved.report.header_len, budget);
    assert_eq!(opened.keys().collect::<Vec<_>>(), ["user"]);
    let reopened = sealer.open(saved.action.cookie_value().unwrap()).unwrap();
    assert_eq!(reopened.keys().collect::<Vec<_>>(), ["user"]);
    assert!(!reopened.has_unloaded_overflow());
    // No new blob; the old one is retired: readable for its grace period
    // (by a request from the previous cookie), then gone.
    assert_eq!(store.keys(), old_blob);
    clock.advance(60 + 60);
    assert!(store.is_empty());
}

#[tokio::test]
async fn when_dropping_the_entries_over_the_blob_cap_is_not_enough_more_are_dropped_not_all() {
    // With compression, dropping the entry whose blob would exceed
    // `max_decompressed` takes its long listed key out of the cookie, whose
    // payload then falls under the threshold and is sealed as it is: too
    // large. Dropping the next moved entry too lets the last one move;
    // saving as without a store would drop all three.
    let clock = clock();
    let (store, sealer) = with_memory_store(&clock, |b| {
        b.budget(500)
            .compression(Compression::Above(1000))
            .limits(Limits::default().with_max_decompressed(1500))
    });
    let long_key = "k".repeat(352);
    let mut s = sealer.new_session().unwrap();
    s.insert_with_priority("user", "ada", Priority::Critical)
        .unwrap();
    s.insert_with_priority(&long_key, "v".repeat(800), Priority::Low)
        .unwrap();
    s.insert_with_priority("l", "l".repeat(1000), Priority::Normal)
        .unwrap();
    s.insert_with_priority("y", "y".repeat(600), Priority::High)
        .unwrap();
    let saved = sealer.save_async(&mut s).await.unwrap();
    assert_eq!(saved.report.dropped_keys(), [long_key.as_str(), "l"]);
    assert_eq!(saved.report.overflowed.len(), 1);
    assert_eq!(saved.report.overflowed[0].key, "y");
    assert!(saved.report.header_len <= 500);
    assert_eq!(store.len(), 1);
    let token = saved.action.cookie_value().unwrap();
    let mut reopened = sealer.open_async(token).await.unwrap();
    assert_eq!(overflowed_keys(&reopened), ["y"]);
    let y: Option<String> = sealer.get_loading(&mut reopened, "y").await.unwrap();
    assert_eq!(y.as_deref(), Some("y".repeat(600).as_str()));
}

#[test]
fn is_complete_says_whether_the_save_dropped_anything() {
    let clock = clock();
    let sealer = builder(&clock).build().unwrap();
    let mut small = sealer.new_session().unwrap();
    small.insert("theme", "dark").unwrap();
    let saved = sealer.save(&mut small).unwrap();
    assert!(saved.report.dropped.is_empty());
    assert!(saved.report.is_complete());
    let mut large = ten_kb_session(&sealer);
    let saved = sealer.save(&mut large).unwrap();
    assert!(!saved.report.dropped.is_empty());
    assert!(!saved.report.is_complete());
}

/// The decompression cap is inclusive for a blob as for a cookie: moved
/// entries whose blob takes exactly `max_decompressed` bytes are written
/// whole, and the blob opens again on this server.
#[tokio::test]
async fn a_blob_of_exactly_the_decompression_cap_is_kept_whole() {
    let clock = clock();
    let session = |sealer: &Sealer| {
        let mut s = sealer.new_session().unwrap();
        s.insert_with_priority("user", "ada", Priority::Critical)
            .unwrap();
        for i in 0..4 {
            s.insert_with_priority(&format!("notes-{i}"), "n".repeat(1500), Priority::Low)
                .unwrap();
        }
        s
    };
    let capped = |cap: usize| {
        move |b: SealerBuilder| {
            b.compression(Compression::Off)
                .limits(Limits::default().with_max_decompressed(cap))
        }
    };
    // Under the default cap: what moves, and the bytes of its entries.
    let (_, probe) = with_memory_store(&clock, |b| b.compression(Compression::Off));
    let saved = probe.save_async(&mut session(&probe)).await.unwrap();
    assert!(saved.report.dropped.is_empty());
    let moved_keys = |saved: &sealed_session::Saved| -> Vec<String> {
        saved
            .report
            .overflowed
            .iter()
            .map(|e| e.key.clone())
            .collect()
    };
    let moved = moved_keys(&saved);
    assert!(moved.len() >= 2, "{moved:?}");
    let body: usize = saved.report.overflowed.iter().map(|e| e.size).sum();
    // The blob is those entries and its fixed fields (a few dozen bytes):
    // under every cap from `body` up, the save succeeds, dropping until
    // the blob fits; the first cap that needs no drop is the blob's exact
    // length.
    let mut exact = None;
    for cap in body..body + 100 {
        let (store, sealer) = with_memory_store(&clock, capped(cap));
        let mut s = session(&sealer);
        let saved = match sealer.save_async(&mut s).await {
            Ok(saved) => saved,
            Err(e) => panic!("cap {cap}: {e:?}"),
        };
        if saved.report.dropped.is_empty() {
            assert_eq!(moved_keys(&saved), moved, "cap {cap}");
            exact = Some((cap, store, sealer, saved));
            break;
        }
    }
    let (cap, store, sealer, saved) = exact.expect("no cap within 100 bytes lets the blob fit");
    assert!(cap > body);
    assert_eq!(store.len(), 1);
    // Read back under the same cap.
    let mut reopened = sealer
        .open_async(saved.action.cookie_value().unwrap())
        .await
        .unwrap();
    sealer.load_overflow(&mut reopened).await.unwrap();
    for key in &moved {
        let value: Option<String> = reopened.get(key).unwrap();
        assert_eq!(value, Some("n".repeat(1500)), "{key}");
    }
}

/// A cookie whose payload takes exactly `max_decompressed` bytes can be
/// sealed: a save drops only what must go for the rest to get there.
#[test]
fn a_cookie_payload_of_exactly_the_decompression_cap_drops_no_more() {
    let clock = clock();
    let session = |sealer: &Sealer, with_notes: bool| {
        let mut s = sealer.new_session().unwrap();
        s.insert_with_priority("user", "ada", Priority::Critical)
            .unwrap();
        s.insert_with_priority("draft", "d".repeat(700), Priority::Normal)
            .unwrap();
        if with_notes {
            s.insert_with_priority("notes", "n".repeat(1000), Priority::Low)
                .unwrap();
        }
        s
    };
    let mut caps_that_fit = 0;
    for cap in 700..800 {
        let sealer = builder(&clock)
            .compression(Compression::Off)
            .limits(Limits::default().with_max_decompressed(cap))
            .build()
            .unwrap();
        // Whether "user" and "draft" alone can be sealed under this cap.
        let fits = sealer.seal(&mut session(&sealer, false)).is_ok();
        caps_that_fit += usize::from(fits);
        let saved = sealer.save(&mut session(&sealer, true)).unwrap();
        let expected: &[&str] = match fits {
            true => &["notes"],
            false => &["notes", "draft"],
        };
        assert_eq!(saved.report.dropped_keys(), expected, "cap {cap}");
    }
    // The range covers both sides of the boundary.
    assert!(caps_that_fit > 0 && caps_that_fit < 100, "{caps_that_fit}");
}

/// The smallest `max_decompressed` the builder accepts is exactly the
/// payload of a new empty session whose created-at takes its longest form
/// (after 2106): that cap holds such a cookie, one byte less cannot.
#[test]
fn a_decompression_cap_of_exactly_an_empty_session_is_accepted() {
    let clock = clock();
    clock.set(1 << 32);
    let sealer = builder(&clock).build().unwrap();
    let token = sealer.seal(&mut sealer.new_session().unwrap()).unwrap();
    let opened = sealed_session::token::open(sealer.key_ring(), "id", &token, &Limits::default());
    let empty = opened.unwrap().plaintext().len();
    let capped = |cap: usize| {
        builder(&clock)
            .limits(Limits::default().with_max_decompressed(cap))
            .build()
    };
    let sealer = capped(empty).unwrap();
    let mut session = sealer.new_session().unwrap();
    session
        .insert_with_priority("k", "v".repeat(40), Priority::Low)
        .unwrap();
    let saved = sealer.save(&mut session).unwrap();
    assert_eq!(saved.report.dropped_keys(), ["k"]);
    assert!(sealer.open(saved.action.cookie_value().unwrap()).is_ok());
    assert_eq!(
        capped(empty - 1).map(|_| ()),
        Err(Error::LimitExceeded(Limit::DecompressedSize))
    );
}

/// `len` characters that deflate does not shrink much (a fixed
/// pseudo-random sequence over 64 symbols).
fn incompressible(seed: u64, len: usize) -> String {
    const SYMBOLS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            SYMBOLS[(state >> 58) as usize] as char
        })
        .collect()
}

/// When dropping the entries over the blob's cap leaves a cookie that no
/// longer fits (compression off below its threshold), up to eight more of
/// the moved entries are dropped, one at a time: here exactly eight more
/// must go before the last one can move, and it does.
#[tokio::test]
async fn eight_more_drops_are_tried_before_the_save_gives_up_the_store() {
    let clock = clock();
    let (store, sealer) = with_memory_store(&clock, |b| {
        b.budget(500)
            .compression(Compression::Above(2200))
            .limits(Limits::default().with_max_decompressed(3500))
    });
    let long_key = format!("l{}", "k".repeat(399));
    let listed: Vec<String> = (0..8)
        .map(|i| format!("n{i}-{}", "x".repeat(236)))
        .collect();
    let mut s = sealer.new_session().unwrap();
    s.insert_with_priority("user", "ada", Priority::Critical)
        .unwrap();
    s.insert_with_priority(&long_key, incompressible(1, 3000), Priority::Low)
        .unwrap();
    for (i, key) in listed.iter().enumerate() {
        s.insert_with_priority(key, incompressible(10 + i as u64, 100), Priority::Low)
            .unwrap();
    }
    let y = incompressible(2, 600);
    s.insert_with_priority("y", &y, Priority::High).unwrap();
    // The first plan moves every entry but "user": the cookie lists all
    // their keys, over 2200 bytes, so it is compressed and fits. Their blob
    // is over the 3500-byte cap by the long entry alone, which is dropped;
    // then the listed keys (about 2000 bytes) stay under the threshold and
    // the cookie, sealed as it is, cannot list even one of the eight long
    // keys within 500 bytes. Only once all eight are dropped too does "y"
    // move.
    let saved = sealer.save_async(&mut s).await.unwrap();
    let moved: Vec<&str> = (saved.report.overflowed.iter())
        .map(|e| e.key.as_str())
        .collect();
    assert_eq!(moved, ["y"]);
    let mut expected = vec![long_key.as_str()];
    expected.extend(listed.iter().rev().map(String::as_str));
    assert_eq!(saved.report.dropped_keys(), expected);
    assert!(saved.report.header_len <= 500);
    assert_eq!(store.len(), 1);
    let mut reopened = sealer
        .open_async(saved.action.cookie_value().unwrap())
        .await
        .unwrap();
    assert_eq!(reopened.keys().collect::<Vec<_>>(), ["user", "y"]);
    let value: Option<String> = sealer.get_loading(&mut reopened, "y").await.unwrap();
    assert_eq!(value, Some(y));
}

/// The sealer's accessors give what it was built with.
#[test]
fn the_sealer_reports_its_cookie_settings_budget_and_overflow_store() {
    let clock = clock();
    let settings = sealed_session::CookieSettings::default()
        .with_path("/app")
        .with_domain("example.com");
    assert_ne!(settings, sealed_session::CookieSettings::default());
    let sealer = builder(&clock)
        .cookie_settings(settings.clone())
        .budget(3000)
        .build()
        .unwrap();
    assert_eq!(sealer.cookie_settings(), &settings);
    assert_eq!(sealer.budget(), 3000);
    assert!(!sealer.has_overflow_store());
    let (_store, with_store) = with_memory_store(&clock, |b| b);
    assert!(with_store.has_overflow_store());
}

/// A save that sends nothing reports the budget; a logout reports the
/// length of its deletion header too.
#[test]
fn unchanged_and_logout_saves_report_their_header_length_and_budget() {
    let clock = clock();
    let sealer = builder(&clock).budget(3000).build().unwrap();
    let mut session = sealer.new_session().unwrap();
    let saved = sealer.save(&mut session).unwrap();
    assert_eq!(saved.action, CookieAction::Unchanged);
    assert_eq!((saved.report.header_len, saved.report.budget), (0, 3000));
    session.insert("a", 1).unwrap();
    let saved = sealer.save(&mut session).unwrap();
    let mut session = sealer.open(saved.action.cookie_value().unwrap()).unwrap();
    session.flush().unwrap();
    let saved = sealer.save(&mut session).unwrap();
    let CookieAction::Delete(removal) = &saved.action else {
        panic!("{saved:?}")
    };
    assert_eq!(
        saved.report.header_len,
        "Set-Cookie: ".len() + removal.len()
    );
    assert_eq!(saved.report.budget, 3000);
}

/// Entries dropped to fit the budget are logged, with their keys, not
/// only reported; a save that drops nothing logs no such event.
#[test]
fn entries_dropped_over_budget_are_logged_with_their_keys() {
    let clock = clock();
    let sealer = builder(&clock).build().unwrap();
    let mut session = ten_kb_session(&sealer);
    let (saved, text) = logged(|| sealer.save(&mut session).unwrap());
    assert!(!saved.report.dropped.is_empty());
    assert!(
        text.contains("entries-dropped") && text.contains("over-budget"),
        "{text}"
    );
    for key in saved.report.dropped_keys() {
        assert!(text.contains(key), "{key} not logged: {text}");
    }
    let mut small = sealer.new_session().unwrap();
    small.insert("theme", "dark").unwrap();
    let (saved, text) = logged(|| sealer.save(&mut small).unwrap());
    assert!(saved.report.dropped.is_empty());
    assert!(!text.contains("entries-dropped"), "{text}");
}

/// The cookie lists overflowed keys in session order, and the blob and the
/// report in removal order (FORMAT.md §11.3, §14.3): a writer that used
/// removal order for the cookie would seal other bytes, and an opened
/// session would give its keys in another order.
#[tokio::test]
async fn the_cookie_lists_overflowed_keys_in_session_order() {
    let clock = clock();
    let (_store, sealer) = with_memory_store(&clock, |b| b.budget(450));
    let mut session = sealer.new_session().unwrap();
    // Inserted normal then low; the low one is removed first.
    for (key, priority) in [("a_normal", Priority::Normal), ("b_low", Priority::Low)] {
        session
            .insert_with_priority(key, "v".repeat(300), priority)
            .unwrap();
    }
    session
        .insert_with_priority("u", 1u8, Priority::Critical)
        .unwrap();
    let saved = sealer.save_async(&mut session).await.unwrap();
    let removed: Vec<&str> = saved
        .report
        .overflowed
        .iter()
        .map(|e| e.key.as_str())
        .collect();
    assert_eq!(removed, ["b_low", "a_normal"]);
    let opened = sealer
        .open(saved.action.cookie_value().expect("a cookie"))
        .unwrap();
    // Cookie-resident entries, then the overflow element's keys in its order.
    assert_eq!(
        opened.keys().collect::<Vec<_>>(),
        ["u", "a_normal", "b_low"]
    );
    assert_eq!(overflowed_keys(&opened), ["a_normal", "b_low"]);
}

/// A session's own expiry, for the proptest below.
fn arb_expiry() -> impl Strategy<Value = sealed_session::Expiry> {
    use sealed_session::Expiry;
    prop_oneof![
        Just(Expiry::Default),
        Just(Expiry::BrowserSession),
        (0u64..4_000_000_000).prop_map(Expiry::At),
        (1u64..4_000_000_000).prop_map(|secs| Expiry::Idle(Duration::from_secs(secs))),
    ]
}

proptest! {

    /// Whatever the cookie's name, attributes, time policy and the
    /// session's own expiry (which set `Max-Age` and its digits), neither
    /// the session's `Set-Cookie` header nor the one that deletes it (a
    /// flush) is over the budget; a sealer whose empty session cannot fit
    /// is refused when built.
    #[test]
    fn no_header_over_budget_whatever_the_cookie_settings(
        name in "[A-Za-z0-9_-]{1,40}",
        path in "(/[a-z0-9._-]{0,20}){1,4}",
        domain in proptest::option::of("[a-z0-9]{1,20}(\\.[a-z0-9]{1,20}){0,3}"),
        same_site in prop_oneof![
            Just(Some(sealed_session::SameSite::Strict)),
            Just(Some(sealed_session::SameSite::Lax)),
            Just(Some(sealed_session::SameSite::None)),
            Just(None),
        ],
        (secure, http_only, partitioned, persistent, expires) in any::<(bool, bool, bool, bool, bool)>(),
        idle in proptest::option::of(1u64..4_000_000_000),
        lifetime in proptest::option::of(1u64..4_000_000_000),
        expiry in arb_expiry(),
        entries in proptest::collection::vec(("[a-z]{1,12}", arb_priority(), 0usize..900), 0..20),
        budget in 150usize..5000,
    ) {
        let clock = clock();
        let settings = sealed_session::CookieSettings::default()
            .with_path(path)

            .with_secure(secure)
            .with_http_only(http_only)
            .with_partitioned(partitioned)
            .with_persistent(persistent)
            .with_expires(expires);
        let settings = match domain {
            Some(domain) => settings.with_domain(domain),
            None => settings,
        };
        let settings = match same_site {
            Some(same_site) => settings.with_same_site(same_site),
            None => settings.without_same_site(),
        };
        let b = Sealer::builder(KeyRing::new(key(1)))
            .cookie_name(name)
            .clock(clock.clone())
            .cookie_settings(settings)
            .budget(budget);
        let sealer = match with_timeouts(b, idle, lifetime).build() {
            Ok(sealer) => sealer,
            Err(Error::TooLarge { needed, .. }) => {
                prop_assert!(needed > budget);
                return Ok(());
            }
            // Every generated setting is one the cookie rules take.
            Err(error) => panic!("{error:?}"),
        };
        let mut session = sealer.new_session().unwrap();
        session.set_expiry(expiry);
        for (i, (key, priority, len)) in entries.iter().enumerate() {
            session.insert_with_priority(&format!("{key}{i}"), "v".repeat(*len), *priority).unwrap();
        }
        match sealer.save(&mut session) {
            Ok(saved) => {
                if let Some(header) = saved.action.header_value() {
                    prop_assert!("Set-Cookie: ".len() + header.len() <= budget, "{}", header);
                    prop_assert_eq!(saved.report.header_len, "Set-Cookie: ".len() + header.len());
                }
            }
            Err(Error::TooLarge { needed, budget: b }) => prop_assert!(needed > b && b <= budget),
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
        session.flush().unwrap();
        let deleted = sealer.save(&mut session).unwrap();
        if let Some(header) = deleted.action.header_value() {
            prop_assert!("Set-Cookie: ".len() + header.len() <= budget, "{}", header);
        }
    }
}

#[tokio::test]
async fn an_entry_raised_to_critical_in_the_blob_goes_back_into_the_cookie() {
    let clock = clock();
    let (store, sealer) = with_memory_store(&clock, |b| b);
    let mut session = ten_kb_session(&sealer);
    let token = save_token(&sealer, &mut session).await;
    let mut session = sealer.open_async(&token).await.unwrap();
    let raised = overflowed_keys(&session)[0].clone();
    assert!(session.set_priority(&raised, Priority::Critical));
    // The synchronous save and seal, which cannot load the blob, refuse
    // rather than drop it with the blob's other entries.
    let needs_async = Err(Error::Store(StoreError::NeedsAsync));
    assert_eq!(sealer.save(&mut session).map(|_| ()), needs_async);
    assert_eq!(sealer.seal(&mut session).map(|_| ()), needs_async);
    assert!(session.is_overflowed(&raised), "left as it was");
    let token = save_token(&sealer, &mut session).await;

    let mut reopened = sealer.open_async(&token).await.unwrap();
    assert!(!reopened.is_overflowed(&raised));
    assert_eq!(reopened.priority(&raised), Some(Priority::Critical));
    // Where a store's eviction cannot lose it.
    evict_all(&store).await;
    let line: serde_json::Value = sealer
        .get_loading(&mut reopened, &raised)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Some(line), ten_kb_session(&sealer).get(&raised).unwrap());
}

#[tokio::test]
async fn an_entry_raised_to_critical_that_does_not_fit_fails_the_save_as_if_stored_now() {
    let clock = clock();
    let (store, sealer) = with_memory_store(&clock, |b| b.budget(1000));
    let mut session = sealer.new_session().unwrap();
    session
        .insert_with_priority("big", "b".repeat(2000), Priority::Low)
        .unwrap();
    let token = save_token(&sealer, &mut session).await;
    let mut session = sealer.open_async(&token).await.unwrap();
    assert!(session.is_overflowed("big"));
    assert!(session.set_priority("big", Priority::Critical));
    assert!(matches!(
        sealer.save_async(&mut session).await,
        Err(Error::TooLarge { .. })
    ));
    // The request's change is lost; its cookie still opens, in full.
    let mut before = sealer.open_async(&token).await.unwrap();
    assert_eq!(before.priority("big"), Some(Priority::Low));
    let big: String = sealer
        .get_loading(&mut before, "big")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(big.len(), 2000);
    // An application that lowers it again saves, and retires the old
    // blob, still the session's after the failure.
    session.set_priority("big", Priority::Normal);
    let saved = save_token(&sealer, &mut session).await;
    assert_eq!(store.keys().len(), 2, "the new blob, and the old one");
    clock.advance(120);
    assert_eq!(store.keys().len(), 1, "the old one retired");
    let mut reopened = sealer.open_async(&saved).await.unwrap();
    let big: String = sealer
        .get_loading(&mut reopened, "big")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(big.len(), 2000);
}

/// Counts fills: one per seal (its nonce), one per new blob reference.
#[derive(Default)]
struct CountedRandom(AtomicUsize);

impl sealed_session::RandomSource for CountedRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        self.0.fetch_add(1, Ordering::Relaxed);
        sealed_session::OsRandom.fill(buf)
    }
}

/// A compressed save measures the token by sealing it, so it must not
/// seal once per entry it takes out: with 250 overflowed entries, a save
/// after a request read one and changed another (which re-plans every
/// entry) stays within 30 draws, one per seal and blob reference (24
/// here; 38 when the search counted up from none removed, and 478 when
/// the planner removed one entry at a time). `--release --nocapture`
/// prints the figures SECURITY.md quotes.
#[tokio::test]
async fn a_compressed_save_of_many_overflowed_entries_seals_a_logarithmic_number_of_times() {
    for compression in [Compression::Off, Compression::Above(0)] {
        let random = Arc::new(CountedRandom::default());
        let sealer = Sealer::builder(KeyRing::new(
            sealed_session::MasterKey::from_bytes(&[3; 32]).unwrap(),
        ))
        .clock(Arc::new(FixedClock::new(1_800_000_000)))
        .random(random.clone())
        .compression(compression)
        .overflow_store(Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        // Random letters and digits, which deflate shrinks by about a quarter.
        let mut text = || -> String {
            const ALPHABET: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            (0..200)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    ALPHABET[(state % 62) as usize] as char
                })
                .collect()
        };
        let mut session = sealer.new_session().unwrap();
        session
            .insert_with_priority("user", "ada", Priority::Critical)
            .unwrap();
        for i in 0..250 {
            session
                .insert_with_priority(&format!("k{i:03}"), text(), Priority::Low)
                .unwrap();
        }
        let saved = sealer.save_async(&mut session).await.unwrap();
        assert!(saved.report.overflowed.len() > 200, "{compression:?}");
        let mut cookie = saved.action.cookie_value().unwrap().to_owned();
        let (mut seals, started) = (0, std::time::Instant::now());
        for round in 0..10 {
            let mut session = sealer.open(&cookie).unwrap();
            let key = session
                .keys()
                .find(|k| session.is_overflowed(k))
                .unwrap()
                .to_owned();
            let _: Option<String> = sealer.get_loading(&mut session, &key).await.unwrap();
            session
                .insert_with_priority("user", format!("ada{round}"), Priority::Critical)
                .unwrap();
            let before = random.0.load(Ordering::Relaxed);
            let saved = sealer.save_async(&mut session).await.unwrap();
            seals = seals.max(random.0.load(Ordering::Relaxed) - before);
            cookie = saved.action.cookie_value().unwrap().to_owned();
        }
        println!(
            "{compression:?}: at most {seals} random draws per save, {:?} per request",
            started.elapsed() / 10
        );
        assert!(seals <= 30, "{compression:?}: {seals} draws");
    }
}
