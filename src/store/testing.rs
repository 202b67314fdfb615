//! Conformance checks for implementers of the store traits (feature
//! `test-util`): the suites this crate's own stores pass, for a store of
//! your own to run in its tests.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::sync::Arc;
//! use sealed_session::store::testing::check_overflow_store;
//! use sealed_session::store::MemoryStore;
//! use sealed_session::FixedClock;
//!
//! let clock = Arc::new(FixedClock::new(1_767_225_600));
//! let store = MemoryStore::with_clock(clock.clone());
//! check_overflow_store(&store, |seconds| {
//!     clock.advance(seconds);
//!     async {}
//! })
//! .await;
//! # }
//! ```

use core::time::Duration;

use crate::store::{overflow_key, OverflowStore, RevocationQuery, RevocationStore};
use crate::{Clock, Error, FixedClock, Priority, Sealer, SessionId, StoreError};

/// Checks an [`OverflowStore`]: put, get and delete, replacing a blob,
/// a blob as long as the largest the crate writes kept byte for byte (a
/// store that cuts or re-encodes values would have every blob rejected
/// when read back, and its entries dropped), bounded reads, `touch` (which the store must implement: renewing and
/// shortening), TTLs honoured in full (`wait(seconds)` must let that much
/// of the store's time pass: advance its clock, or sleep for a store
/// timed by a server), a TTL of a month and one of `Duration::MAX`. Uses
/// keys of the session id `07…07`.
///
/// # Panics
///
/// At the first property the store does not have, or on any store error.
pub async fn check_overflow_store<W, F>(store: &dyn OverflowStore, wait: W)
where
    W: Fn(u64) -> F,
    F: std::future::Future<Output = ()>,
{
    let sid = SessionId::from_bytes([7; 16]);
    let k = overflow_key(&sid, &[1; 16]);
    assert!(k.contains("{07070707070707070707070707070707}"), "{k}");
    assert_eq!(store.get(&k).await.unwrap(), None);
    store
        .put(&k, b"one".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(store.get(&k).await.unwrap().as_deref(), Some(&b"one"[..]));
    store
        .put(&k, b"two".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(store.get(&k).await.unwrap().as_deref(), Some(&b"two"[..]));
    // The longest blob under the default limits: base64url of 64 KiB and
    // the token's overhead, every character of that alphabet.
    let long_key = overflow_key(&sid, &[4; 16]);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let longest = crate::save::base64_len(
        crate::Limits::default().max_decompressed() + crate::token::OVERHEAD,
    );
    let long: Vec<u8> = (0..longest)
        .map(|i| alphabet[(i * 7 + i / 64) % 64])
        .collect();
    store
        .put(&long_key, long.clone(), Duration::from_secs(60))
        .await
        .unwrap();
    let read = store.get_bounded(&long_key, long.len()).await.unwrap();
    assert!(read.as_deref() == Some(&long[..]), "a long blob changed");
    store.delete(&long_key).await.unwrap();
    // A bounded read gives a blob up to the bound, refuses a longer one
    // (an altered store, or another server's limits) and reads a missing
    // one as absent.
    let bounded = store.get_bounded(&k, 3).await.unwrap();
    assert_eq!(bounded.as_deref(), Some(&b"two"[..]));
    assert_eq!(
        store.get_bounded(&k, 2).await.unwrap_err(),
        Error::Store(StoreError::Rejected)
    );
    let absent = overflow_key(&sid, &[9; 16]);
    assert_eq!(store.get_bounded(&absent, 2).await.unwrap(), None);
    store.delete(&k).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap(), None);
    store.delete(&k).await.unwrap();

    // `put_for_session` stores as `put` does, and keeps at least the
    // `keep` newest of a session's blobs (it may delete older ones).
    let written: Vec<String> = (10..13).map(|n| overflow_key(&sid, &[n; 16])).collect();
    for (n, key) in (10u8..).zip(&written) {
        let ttl = Duration::from_secs(60);
        store
            .put_for_session(&sid, key, vec![n], ttl, 2)
            .await
            .unwrap();
    }
    for (n, key) in (11u8..).zip(&written[1..]) {
        assert_eq!(
            store.get(key).await.unwrap(),
            Some(vec![n]),
            "a newest blob lost"
        );
    }
    for key in &written {
        store.delete(key).await.unwrap();
    }

    // `touch` renews a blob that is there, and only that.
    assert!(!store.touch(&k, Duration::from_secs(60)).await.unwrap());
    let short = overflow_key(&sid, &[2; 16]);
    let renewed = overflow_key(&sid, &[3; 16]);
    let longer = overflow_key(&sid, &[5; 16]);
    let retired = overflow_key(&sid, &[6; 16]);
    // Two seconds: the touch below must come before the TTL ends, on a
    // busy machine too.
    for key in [&short, &renewed] {
        store
            .put(key, b"brief".to_vec(), Duration::from_secs(2))
            .await
            .unwrap();
    }
    store
        .put(&longer, b"four".to_vec(), Duration::from_secs(4))
        .await
        .unwrap();
    store
        .put(&retired, b"sixty".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(store.get(&short).await.unwrap().is_some());
    assert!(store
        .touch(&renewed, Duration::from_secs(60))
        .await
        .unwrap());
    // How a replaced blob is retired: its TTL shortened to a grace period.
    assert!(store.touch(&retired, Duration::from_secs(2)).await.unwrap());
    wait(3).await;
    assert_eq!(store.get(&short).await.unwrap(), None, "TTL not honoured");
    assert!(
        store.get(&longer).await.unwrap().is_some(),
        "a blob expired before its TTL"
    );
    assert_eq!(
        store.get(&retired).await.unwrap(),
        None,
        "touch did not shorten the TTL"
    );
    store.delete(&longer).await.unwrap();
    assert!(!store.touch(&short, Duration::from_secs(60)).await.unwrap());
    assert_eq!(
        store.get(&short).await.unwrap(),
        None,
        "touch revived a blob"
    );
    assert_eq!(
        store.get(&renewed).await.unwrap().as_deref(),
        Some(&b"brief"[..]),
        "touch did not renew the TTL"
    );
    store.delete(&renewed).await.unwrap();

    // A month (not read as a point in time, as some stores read TTLs
    // over 30 days), and a TTL as long as a setting like
    // `max_lifetime(Duration::MAX)` asks for: accepted and kept, not an
    // error.
    let month = overflow_key(&sid, &[8; 16]);
    store
        .put(&month, b"month".to_vec(), Duration::from_secs(31 * 86_400))
        .await
        .unwrap();
    assert!(store.get(&month).await.unwrap().is_some(), "a month's TTL");
    store.delete(&month).await.unwrap();
    let forever = overflow_key(&sid, &[4; 16]);
    store
        .put(&forever, b"long".to_vec(), Duration::MAX)
        .await
        .unwrap();
    assert!(store.touch(&forever, Duration::MAX).await.unwrap());
    assert!(store.get(&forever).await.unwrap().is_some());
    store.delete(&forever).await.unwrap();
}

/// Checks a [`RevocationStore`] through the [`RevocationStore`] trait, as
/// an application generic over its backend calls it: revoking one
/// session, every session of a user, every session of a user but one,
/// and an anonymous session by its id. `sealer` must check revocation
/// through `store` with the user entry `"user"` and no overflow store
/// (`revocation(store, Some("user"))`), and `store` and `sealer` must both
/// be timed by `clock`, which the check advances by a few seconds. Then,
/// through the store's own [`RevocationCheck`](crate::store::RevocationCheck)
/// with made-up sessions: that a session's record and its user's are
/// independent, that user ids compare byte for byte, and that each record
/// lasts as long as asked (`wait(seconds)` must let that much of the
/// store's time pass, as for [`check_overflow_store`]).
///
/// # Panics
///
/// At the first property the store does not have, or on any store error.
pub async fn check_revocation_store<W, F>(
    sealer: &Sealer,
    clock: &FixedClock,
    store: &dyn RevocationStore,
    wait: W,
) where
    W: Fn(u64) -> F,
    F: std::future::Future<Output = ()>,
{
    let day = Duration::from_secs(86_400);
    let revoke_one = |id| async move { store.revoke_session(id, day).await.unwrap() };
    let revoke_user = || async move { store.revoke_user("ada", day).await.unwrap() };
    let revoke_user_except =
        |keep| async move { store.revoke_user_except("ada", keep, day).await.unwrap() };
    let login = |user: &str| sealed_login(sealer, user);
    let (id1, a1) = login("ada");
    let (_, a2) = login("ada");
    let (_, b1) = login("bob");
    assert!(sealer.open_async(&a1).await.is_ok());
    revoke_one(id1).await;
    assert_eq!(sealer.open_async(&a1).await.unwrap_err(), Error::Revoked);
    assert!(sealer.open_async(&a2).await.is_ok());
    // The plain open cannot consult the hook, so it refuses.
    assert_eq!(
        sealer.open(&a1).unwrap_err(),
        Error::Store(StoreError::NeedsAsync)
    );
    clock.advance(10);
    let mut anonymous = sealer.new_session().unwrap();
    anonymous.insert("cart", 3u8).unwrap();
    let anonymous = sealer.seal(&mut anonymous).unwrap();
    revoke_user().await;
    assert_eq!(sealer.open_async(&a2).await.unwrap_err(), Error::Revoked);
    assert!(sealer.open_async(&b1).await.is_ok());
    clock.advance(1);
    let (_, a3) = login("ada");
    assert!(
        sealer.open_async(&a3).await.is_ok(),
        "a session started after the revocation"
    );
    // A session that began before the revocation and logs in after it,
    // taking a new id as it should, is a new login.
    let mut s = sealer.open_async(&anonymous).await.unwrap();
    s.cycle_id().unwrap();
    s.insert_with_priority("user", "ada", Priority::Critical)
        .unwrap();
    let relogged = sealer.seal(&mut s).unwrap();
    assert!(
        sealer.open_async(&relogged).await.is_ok(),
        "a login after the revocation"
    );

    // "Log out my other devices": every session of the user but the one
    // making the request, which also takes a new id in the same second.
    clock.advance(1);
    let (_, phone) = login("ada");
    let (_, laptop) = login("ada");
    let mut here = sealer.open_async(&laptop).await.unwrap();
    here.cycle_id().unwrap();
    revoke_user_except(here.id()).await;
    let here = sealer.seal(&mut here).unwrap();
    assert!(sealer.open_async(&here).await.is_ok(), "the kept session");
    assert_eq!(sealer.open_async(&phone).await.unwrap_err(), Error::Revoked);
    assert_eq!(
        sealer.open_async(&laptop).await.unwrap_err(),
        Error::Revoked
    );
    assert!(sealer.open_async(&b1).await.is_ok(), "another user");
    // A later plain revocation does not keep the earlier exception.
    revoke_user().await;
    assert_eq!(sealer.open_async(&here).await.unwrap_err(), Error::Revoked);

    // A session without a user is revoked by its id alone.
    let mut guest = sealer.new_session().unwrap();
    guest.insert("cart", 1u8).unwrap();
    let guest_token = sealer.seal(&mut guest).unwrap();
    assert!(sealer.open_async(&guest_token).await.is_ok());
    revoke_one(guest.id()).await;
    assert_eq!(
        sealer.open_async(&guest_token).await.unwrap_err(),
        Error::Revoked
    );

    check_records(clock, store, wait).await;
}

/// The records of [`check_revocation_store`] asked about directly.
async fn check_records<W, F>(clock: &FixedClock, store: &dyn RevocationStore, wait: W)
where
    W: Fn(u64) -> F,
    F: std::future::Future<Output = ()>,
{
    let day = Duration::from_secs(86_400);
    let id = |n: u8| SessionId::from_bytes([n; 16]);
    let ask = |n: u8, created_at: u64, user: Option<&'static str>| async move {
        store
            .is_revoked(RevocationQuery::new(id(n), created_at, user))
            .await
            .unwrap()
    };
    let before = clock.now() - 5;
    // "Log out my other devices", then the kept device logs out too: the
    // exception spares it the user's record only.
    let keep = id(20);
    store.revoke_user_except("cy", keep, day).await.unwrap();
    assert!(!ask(20, before, Some("cy")).await, "the kept session");
    assert!(ask(21, before, Some("cy")).await, "another of the user's");
    assert!(
        !ask(21, before, Some("Cy")).await,
        "user ids compare byte for byte"
    );
    store.revoke_session(keep, day).await.unwrap();
    assert!(
        ask(20, before, Some("cy")).await,
        "the kept session's own logout"
    );
    // A session started after the user's record, logged out on its own.
    clock.advance(1);
    let after = clock.now();
    store.revoke_session(id(22), day).await.unwrap();
    assert!(
        ask(22, after, Some("cy")).await,
        "a session's record beside its user's"
    );
    assert!(!ask(23, after, Some("cy")).await, "a later login");

    // Each record lasts as long as asked: a sub-second one at least until
    // its second ends, `Duration::MAX` for a very long time.
    store
        .revoke_session(id(30), Duration::from_secs(2))
        .await
        .unwrap();
    store
        .revoke_session(id(31), Duration::from_millis(500))
        .await
        .unwrap();
    store
        .revoke_session(id(32), Duration::from_secs(60))
        .await
        .unwrap();
    store.revoke_user("dee", Duration::MAX).await.unwrap();
    assert!(ask(31, after, None).await, "a sub-second record");
    wait(3).await;
    assert!(
        !ask(30, after, None).await,
        "a record outlived its keep_for"
    );
    assert!(ask(32, after, None).await, "a record ended early");
    assert!(
        ask(33, before, Some("dee")).await,
        "a record kept for Duration::MAX"
    );
}

/// A new session whose critical `user` entry is `user`, sealed: its id
/// and cookie value.
fn sealed_login(sealer: &Sealer, user: &str) -> (SessionId, String) {
    let mut session = sealer.new_session().unwrap();
    session
        .insert_with_priority("user", user, Priority::Critical)
        .unwrap();
    (session.id(), sealer.seal(&mut session).unwrap())
}
