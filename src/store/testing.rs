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

use crate::store::{overflow_key, OverflowStore, RevocationStore};
use crate::{Error, FixedClock, Priority, Sealer, SessionId, StoreError};

/// Checks an [`OverflowStore`]: put, get and delete, replacing a blob,
/// bounded reads, `touch`, TTLs (`wait(seconds)` must let that much of
/// the store's time pass: advance its clock, or sleep for a store timed
/// by a server) and a TTL of `Duration::MAX`. Uses keys of the session id
/// `07…07`.
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
    // A bounded read gives a blob up to the bound, refuses a longer one
    // (an altered store) and reads a missing one as absent.
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

    // `touch` renews a blob that is there, and only that.
    assert!(!store.touch(&k, Duration::from_secs(60)).await.unwrap());
    let short = overflow_key(&sid, &[2; 16]);
    let renewed = overflow_key(&sid, &[3; 16]);
    // Two seconds: the touch below must come before the TTL ends, on a
    // busy machine too.
    for key in [&short, &renewed] {
        store
            .put(key, b"brief".to_vec(), Duration::from_secs(2))
            .await
            .unwrap();
    }
    assert!(store.get(&short).await.unwrap().is_some());
    assert!(store
        .touch(&renewed, Duration::from_secs(60))
        .await
        .unwrap());
    wait(3).await;
    assert_eq!(store.get(&short).await.unwrap(), None, "TTL not honoured");
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

    // A TTL as long as a setting like `max_lifetime(Duration::MAX)` asks
    // for is accepted (kept for a very long time), not an error.
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
/// be timed by `clock`, which the check advances by a few seconds.
///
/// # Panics
///
/// At the first property the store does not have, or on any store error.
pub async fn check_revocation_store(
    sealer: &Sealer,
    clock: &FixedClock,
    store: &dyn RevocationStore,
) {
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
    anonymous.insert("cart", &3u8).unwrap();
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
    guest.insert("cart", &1u8).unwrap();
    let guest_token = sealer.seal(&mut guest).unwrap();
    assert!(sealer.open_async(&guest_token).await.is_ok());
    revoke_one(guest.id()).await;
    assert_eq!(
        sealer.open_async(&guest_token).await.unwrap_err(),
        Error::Revoked
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
