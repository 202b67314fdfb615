//! Opening with the revocation check: a session the cookie authenticates
//! is still refused when the application's revocation check says so, and
//! a save that gives up an id has it revoked for as long as its cookies
//! could open.

use core::time::Duration;

use std::sync::Arc;

use crate::session::Session;
use crate::store::{RevocationQuery, RevocationStore};
use crate::{Error, InvalidSetting, Sealer};

/// How long a request that opened a session before its id was revoked
/// may still run: revocation checks only opening, so such a request can
/// still re-seal the id. Its cookie is dated no later than this after
/// revocations were last accounted for (the check passed, or the session
/// or its new id began: [`Sealer::save_time`]); the records the crate writes itself
/// outlast such a cookie by this much, and a replaced overflow blob stays
/// readable as long for such requests.
pub(crate) const RUNNING_REQUEST_GRACE: Duration = Duration::from_secs(60);

impl Sealer {
    /// The time a save seals `session` at: now, but, with a revocation
    /// check, no later than [`RUNNING_REQUEST_GRACE`] after revocations
    /// were last accounted for (the open, its creation, the first save of
    /// a new id, or [`Sealer::recheck_if_late`]). A request running longer (a slow
    /// upload) would otherwise re-seal an id revoked while it ran with an
    /// issued-at that outlasts the revocation's record. A session given a
    /// new id in this request has nothing to outlast: its save dates it.
    pub(crate) fn save_time(&self, session: &Session) -> u64 {
        let now = self.clock.now();
        match (&self.revocation, session.revocations_seen_at) {
            (Some(_), Some(seen)) => now.min(seen.saturating_add(RUNNING_REQUEST_GRACE.as_secs())),
            _ => now,
        }
    }

    /// Before an asynchronous save that [`Sealer::save_time`] would date
    /// back: asks the revocation check again, so that a session still
    /// valid is saved at the real time (dated back, a slow upload's cookie
    /// would arrive old, or already past a short idle timeout). A revoked
    /// session, or one the check cannot answer for now, stays dated back:
    /// its cookie then ends before the revocation's record does. So does
    /// one whose request ran as long as a record is kept
    /// ([`Sealer::revocation_keep_for`]): a record written while it ran may
    /// be gone already, and the check would not see it (with an idle
    /// timeout shorter than the request ran, its cookie is then already
    /// expired: the save logs the user out).
    pub(crate) async fn recheck_if_late(&self, session: &mut Session) {
        let (Some(_), Some(seen)) = (&self.revocation, session.revocations_seen_at) else {
            return;
        };
        let now = self.clock.now();
        // Every save comes here: the usual one, within the minute, stops.
        if now <= seen.saturating_add(RUNNING_REQUEST_GRACE.as_secs()) {
            return;
        }
        // With a margin of the clock skew: records end by the store's own
        // clock, and this one may have been stepped back since `seen`.
        let records_kept = now.saturating_add(self.policy.clock_skew)
            < seen.saturating_add(self.revocation_keep_for().as_secs());
        let worth_asking = session.needs_save() && !session.should_delete_cookie();
        if records_kept && worth_asking && self.check_revocation(session).await.is_ok() {
            session.revocations_seen_at = Some(now);
        }
    }

    /// How long to keep the record of a revoked id:
    /// [`Sealer::revocation_ttl`] plus [`RUNNING_REQUEST_GRACE`], which
    /// the builder checks is within what a store keeps
    /// ([`Sealer::revocations_outlive_cookies`]).
    pub(crate) fn revocation_keep_for(&self) -> Duration {
        self.revocation_ttl().map_or(crate::store::MAX_TTL, |ttl| {
            ttl.saturating_add(RUNNING_REQUEST_GRACE)
        })
    }

    /// Whether a user key is configured and `session` has no entry under
    /// it: a cookie of such a session is not worth a revocation record.
    pub(crate) fn names_no_user(&self, session: &Session) -> bool {
        self.user_key
            .as_deref()
            .is_some_and(|key| !session.contains(key))
    }

    /// The checks of [`Sealer::open`], then the revocation check if one is
    /// configured ([`Error::Revoked`]; a check that cannot answer fails the
    /// open).
    ///
    /// # Errors
    ///
    /// Those of [`Sealer::open`] (never
    /// [`StoreError::NeedsAsync`](crate::StoreError::NeedsAsync)), then
    /// [`Error::Revoked`], or the check's own error
    /// ([`StoreError::Unavailable`](crate::StoreError::Unavailable) when it
    /// cannot answer). With a `user_key`, [`Error::Value`] when that entry
    /// is not a string, an integer, a byte string or null; if it lives in
    /// the overflow store it is loaded first, failing as
    /// [`Sealer::load_overflow`] does except for a blob missing or rejected
    /// (whose entries are dropped).
    pub async fn open_async(&self, cookie_value: &str) -> Result<Session, Error> {
        let mut session = self.open_unrevoked(cookie_value)?;
        self.check_revocation(&mut session).await?;
        Ok(session)
    }

    /// The revocation check of [`Sealer::open_async`] on a session that
    /// [`Sealer::open_unrevoked`] opened.
    pub(crate) async fn check_revocation(&self, session: &mut Session) -> Result<(), Error> {
        if let Some(check) = &self.revocation {
            let user = match self.user_key.as_deref() {
                // Skipping an entry that cannot be read would skip "log out
                // everywhere" for it: it is loaded, or the open fails. A
                // blob gone from the store, or one that cannot be read here,
                // takes the user entry with it: the session no longer names
                // a user (whoever can write the store could delete it).
                Some(key) => {
                    // Overflowed by a sealer without this check: the next
                    // save brings it into the cookie (saves here pin it),
                    // rather than every open reading the store for it.
                    if session.is_overflowed(key) {
                        session.refresh_due = true;
                    }
                    self.user_of(session, key).await?
                }
                None => None,
            };
            let query = RevocationQuery {
                session_id: session.id,
                created_at: session.created_at,
                user: user.as_deref(),
            };
            if check.is_revoked(query).await? {
                return Err(Error::Revoked);
            }
        }
        Ok(())
    }

    /// "Log out my other devices", as after a password change (Django's
    /// `update_session_auth_hash`): every other session of the user that
    /// `session` names is revoked, and `session` stays logged in under a
    /// new id ([`Session::cycle_id`], so that a copy of its current cookie
    /// is revoked with the others). Save it as usual afterwards
    /// ([`Sealer::save_async`], or the layer does).
    ///
    /// The user is the entry under the sealer's user key, in the text the
    /// revocation check compares
    /// ([`SealerBuilder::revocation_store`](crate::SealerBuilder::revocation_store));
    /// the record is kept for [`Sealer::revocation_ttl`] plus a minute for
    /// requests still running. Returns `false`, revoking nothing and
    /// keeping the id, when the session names no user. The session keeps
    /// its created-at: its absolute lifetime is not restarted.
    ///
    /// Call it after checking the user's password again, as Django's
    /// password change does: any holder of the cookie could otherwise log
    /// the user's other devices out. The record is written at once, so if
    /// the new cookie then does not reach the browser (a server error, a
    /// failed save), this device is logged out as well: the safe side.
    /// With [`Sealer::open_request_async`], check
    /// [`RequestSession::held_back_by`](crate::RequestSession::held_back_by)
    /// first: while the check is down, the session is a fresh one and
    /// names no user (`http::LazySession`'s form
    /// returns that error instead).
    ///
    /// # Errors
    ///
    /// [`InvalidSetting::NoUserRevocation`](crate::InvalidSetting::NoUserRevocation)
    /// without a revocation store and a user key; [`Error::Value`] for a
    /// user entry the check could not read; those of
    /// [`Sealer::load_overflow`] if the user entry is in the overflow
    /// store; [`Error::Revoked`] for a session revoked since it was opened
    /// (another device logged the user out everywhere meanwhile: it asks
    /// the revocation check again first, so as not to replace that record
    /// with one that spares this session); [`Error::Random`] for the new
    /// id; then the store's
    /// ([`StoreError::Unavailable`](crate::StoreError::Unavailable),
    /// [`StoreError::OverCapacity`](crate::StoreError::OverCapacity)), the
    /// session then having its new id (unless the check failed so).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sealed_session::{store::MemoryRevocations, KeyRing, MasterKey, Sealer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sealed_session::Error> {
    /// let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?))
    ///     .revocation_store(Arc::new(MemoryRevocations::new()), Some("user_id"))
    ///     .build()?;
    /// let mut laptop = sealer.new_session()?;
    /// laptop.insert("user_id", 42u64)?;
    /// let laptop_cookie = sealer.seal(&mut laptop)?;
    /// let mut phone = sealer.open_async(&laptop_cookie).await?; // a copy
    ///
    /// assert!(sealer.log_out_other_sessions(&mut phone).await?);
    /// let phone_cookie = sealer.save_async(&mut phone).await?;
    /// let phone_cookie = phone_cookie.action.cookie_value().expect("a new id");
    /// assert!(sealer.open_async(phone_cookie).await.is_ok());
    /// assert_eq!(sealer.open_async(&laptop_cookie).await.unwrap_err().kind(), "revoked");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn log_out_other_sessions(&self, session: &mut Session) -> Result<bool, Error> {
        let Some((store, user)) = self.revocable_user(session).await? else {
            return Ok(false);
        };
        // Revoked since it was opened (another device logged out
        // everywhere while this request ran): the record below would
        // replace that one and spare this session. A new id taken in this
        // request (a login) has no earlier record to escape.
        if session.revocations_seen_at.is_some() {
            self.check_revocation(session).await?;
        }
        // A new id, but not a new session: the absolute lifetime keeps
        // running (the record's exception is the id, not the time), so
        // that repeating this cannot keep a cookie alive for ever.
        let kept = (session.created_at, session.revocations_seen_at);
        session.cycle_id()?;
        (session.created_at, session.revocations_seen_at) = kept;
        store
            .revoke_user_except(&user, session.id, self.revocation_keep_for())
            .await?;
        Ok(true)
    }

    /// "Log out everywhere": every session of the user that `session`
    /// names is revoked, and `session` is flushed ([`Session::flush`]),
    /// so that its save deletes this cookie. Returns `false` when the
    /// session names no user: it is flushed all the same.
    ///
    /// The cautions of [`Sealer::log_out_other_sessions`] apply (check
    /// the password first; with `open_request_async`, check
    /// `held_back_by`).
    ///
    /// # Errors
    ///
    /// As [`Sealer::log_out_other_sessions`] (except the new id); the
    /// session is flushed only once the record is written.
    pub async fn log_out_everywhere(&self, session: &mut Session) -> Result<bool, Error> {
        let revoked = match self.revocable_user(session).await? {
            Some((store, user)) => {
                store.revoke_user(&user, self.revocation_keep_for()).await?;
                true
            }
            None => false,
        };
        session.flush()?;
        Ok(revoked)
    }

    /// The revocation store and the user `session` names, in the check's
    /// text; none when it names no user.
    async fn revocable_user(
        &self,
        session: &mut Session,
    ) -> Result<Option<(&Arc<dyn RevocationStore>, String)>, Error> {
        let (Some(store), Some(key)) = (&self.revocation_store, self.user_key.as_deref()) else {
            return Err(Error::InvalidSetting(InvalidSetting::NoUserRevocation));
        };
        Ok(self.user_of(session, key).await?.map(|user| (store, user)))
    }

    /// The user the entry under `key` names, in the text the revocation
    /// check compares (loaded first if it is in the overflow store); none
    /// when it is absent or null.
    async fn user_of(&self, session: &mut Session, key: &str) -> Result<Option<String>, Error> {
        if session.is_overflowed(key) {
            self.load_or_drop_unreadable(session).await?;
        }
        // The save's rule before decoding, so that open and save agree on
        // encodings the decoder would bend (CBOR's `undefined` reads as
        // null, a small bignum as an integer).
        self.check_user_id_entry(session)?;
        user_text(session.get(key)?)
    }

    /// Refuses to seal a session whose user id entry the revocation check
    /// could not read: every later open of its cookie would fail, logging
    /// the user out on each request, while the save that caused it
    /// succeeded. Only a cookie-resident entry is checked, by its CBOR
    /// head: a 64-bit integer, a byte or text string, or null (what
    /// [`user_text`] accepts). An entry in the overflow store is checked
    /// once loaded: by the open's revocation check, or when a save that
    /// loaded it seals it into the cookie.
    pub(crate) fn check_user_id_entry(&self, session: &Session) -> Result<(), Error> {
        // Only a revocation source sets `user_key`.
        let Some(key) = self.user_key.as_deref() else {
            return Ok(());
        };
        match session.get_raw(key).and_then(|cbor| cbor.first()) {
            // Unsigned and negative integers, byte and text strings, null.
            Some(&head) if head >> 5 > 3 && head != 0xf6 => {
                Err(Error::Value(crate::ValueError::UserId))
            }
            _ => Ok(()),
        }
    }
}

/// The user id entry as text: a string as is, an integer in decimal, a
/// 16-byte byte string as a hyphenated lower-case UUID (a `uuid::Uuid`
/// serializes to CBOR as its 16 bytes, and displays that way), any other
/// byte string in lower-case hex; none when it is absent or null. Any other
/// value is an error ([`ValueError::UserId`](crate::ValueError::UserId)),
/// so that the check fails closed.
fn user_text(value: Option<ciborium::Value>) -> Result<Option<String>, Error> {
    use ciborium::Value as Cbor;
    let text = match value {
        None | Some(Cbor::Null) => return Ok(None),
        Some(Cbor::Text(text)) => text,
        Some(Cbor::Integer(n)) => i128::from(n).to_string(),
        Some(Cbor::Bytes(bytes)) => {
            let mut text = String::with_capacity(2 * bytes.len() + 4);
            if bytes.len() == 16 {
                // A UUID's groups: 8-4-4-4-12 digits.
                for (i, group) in [0..4, 4..6, 6..8, 8..10, 10..16].into_iter().enumerate() {
                    if i > 0 {
                        text.push('-');
                    }
                    crate::key::push_hex(&mut text, &bytes[group]);
                }
            } else {
                crate::key::push_hex(&mut text, &bytes);
            }
            text
        }
        Some(_) => return Err(Error::Value(crate::ValueError::UserId)),
    };
    Ok(Some(text))
}
