//! Saving a session under the size budget: priority-based dropping, the
//! overflow store, deletion cookies, and opening with the revocation check.

use core::time::Duration;

use crate::budget::{drop_order, CookieAction, RemovedEntry, SaveReport, Saved};
use crate::cookie::header_len;
use crate::error::StoreError;
use crate::payload::{self, PayloadWriter, SESSION_ID_LEN};
use crate::session::{Bytes, Entry, Expiry, Session, SessionId, Value};
use crate::store::{overflow_key, RevocationQuery};
use crate::token::{self, OVERHEAD};
use crate::{Error, Sealer};

/// Where each entry goes in a save.
struct Plan {
    /// `true`: in the cookie; `false`: dropped or overflowed.
    keep: Vec<bool>,
    /// Indices taken out of the cookie, in drop order (resident entries only).
    removed: Vec<usize>,
}

/// Bytes of an overflow blob's payload as `seal_blob` writes it: the
/// fixed fields (no expiry, no flags, no overflow element) and `count`
/// entries taking `body` bytes.
fn blob_len(created_at: u64, count: usize, body: usize) -> usize {
    payload::begin_len(created_at, None, 0, count) + body
}

/// Length of unpadded base64 for `n` bytes (`usize::MAX` if that overflows).
pub(crate) fn base64_len(n: usize) -> usize {
    base64::encoded_len(n, false).unwrap_or(usize::MAX)
}

/// Blob TTL, in seconds, when the sealer has neither an idle timeout nor an
/// absolute lifetime.
const UNBOUNDED_BLOB_TTL: u64 = 30 * 24 * 3600;

/// Seconds a replaced blob stays readable (plus the clock skew) for
/// requests that started from the previous cookie.
const BLOB_GRACE: u64 = 60;

impl Sealer {
    /// The cookie attributes.
    pub fn cookie_settings(&self) -> &crate::CookieSettings {
        &self.cookie
    }

    /// The `Set-Cookie` budget in bytes.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Whether an overflow store is configured.
    pub fn has_overflow_store(&self) -> bool {
        self.overflow_store.is_some()
    }

    /// The `Max-Age` the cookie gets when saved now: `None` for a
    /// browser-session cookie.
    pub fn max_age(&self, session: &Session) -> Option<u64> {
        self.max_age_at(session, self.clock.now())
    }

    fn max_age_at(&self, session: &Session, now: u64) -> Option<u64> {
        match session.expiry {
            Expiry::BrowserSession => None,
            Expiry::Default if !self.cookie.is_persistent() => None,
            Expiry::Default | Expiry::At(_) | Expiry::Idle(_) => session.expiry_age_at(now),
        }
    }

    /// Bytes of the `Set-Cookie` header if the entries marked in `keep` stay
    /// in the cookie and the others go to the overflow `reference` (or are
    /// dropped when there is none); `around_value` is the header's length
    /// without the value. The reference is the real one: with compression
    /// on, its bytes change the compressed size.
    fn header_len_for(
        &self,
        session: &Session,
        keep: &[bool],
        reference: Option<&[u8; SESSION_ID_LEN]>,
        around_value: usize,
        now: u64,
    ) -> Result<usize, Error> {
        let overflow_listed = reference.is_some() && keep.iter().any(|k| !k);
        let payload_len = self.payload_len_for(session, Some(keep), overflow_listed, now);
        if payload_len > self.limits.decompressed() {
            // Cannot be sealed at all: as good as over budget.
            return Ok(usize::MAX);
        }
        let token_len = match self.compression {
            token::Compression::Off => base64_len(OVERHEAD + payload_len),
            // Compressed sizes are measured, not estimated.
            token::Compression::Above(_) => self
                .seal_selected_up_to(
                    session,
                    Some(keep),
                    reference.filter(|_| overflow_listed),
                    now,
                    usize::MAX,
                )?
                .len(),
        };
        Ok(around_value + token_len)
    }

    /// Chooses what stays in the cookie: everything that fits, taking
    /// entries out in [`drop_order`] until the header is within budget.
    /// Unloaded overflowed entries can only stay referenced (`reference`)
    /// or be dropped.
    fn plan(
        &self,
        session: &Session,
        reference: Option<&[u8; SESSION_ID_LEN]>,
        now: u64,
    ) -> Result<Plan, Error> {
        let around_value = header_len(&self.cookie.set_cookie(
            &self.cookie_name,
            "",
            self.max_age_at(session, now),
        ));
        // A token longer than this sealer's own limit could not be opened
        // again: that limit can be tighter than the budget.
        let budget = self
            .budget
            .min(around_value.saturating_add(self.limits.token_len()));
        let mut keep: Vec<bool> = session
            .entries
            .iter()
            .map(|e| matches!(e.value, Value::Resident(_)))
            .collect();
        let sizes: Vec<(&str, crate::Priority, usize)> = session
            .entries
            .iter()
            .map(|e| {
                let key = session.entry_key(e);
                let size = session
                    .resident_value(e)
                    .map_or(0, |v| payload::entry_len(key.len(), v.len()));
                (key, e.priority, size)
            })
            .collect();
        let resident = keep.clone();
        let mut order = drop_order(&sizes).into_iter().filter(|&i| resident[i]);
        let mut removed = Vec::new();
        loop {
            let len = self.header_len_for(session, &keep, reference, around_value, now)?;
            if len <= budget {
                return Ok(Plan { keep, removed });
            }
            match order.next() {
                Some(i) => {
                    keep[i] = false;
                    removed.push(i);
                }
                None => {
                    return Err(Error::TooLarge {
                        needed: len,
                        budget,
                    })
                }
            }
        }
    }

    fn removed_entries(session: &Session, indices: &[usize]) -> Vec<RemovedEntry> {
        indices
            .iter()
            .map(|&i| {
                let e = &session.entries[i];
                let key = session.entry_key(e);
                RemovedEntry {
                    key: key.to_owned(),
                    priority: e.priority,
                    size: session
                        .resident_value(e)
                        .map_or(0, |v| payload::entry_len(key.len(), v.len())),
                }
            })
            .collect()
    }

    /// Builds the header and marks the session saved; refuses (and leaves
    /// the session unsaved) if the header is over budget, whatever the plan
    /// said.
    fn finish(
        &self,
        session: &mut Session,
        token: &str,
        now: u64,
    ) -> Result<(String, usize), Error> {
        let max_age = self.max_age_at(session, now);
        let cookie = self.cookie.set_cookie(&self.cookie_name, token, max_age);
        let len = header_len(&cookie);
        if len > self.budget {
            return Err(Error::TooLarge {
                needed: len,
                budget: self.budget,
            });
        }
        self.mark_saved(session, now);
        Ok((cookie, len))
    }

    fn deletion(&self, session: &mut Session) -> Saved {
        self.mark_saved(session, self.clock.now());
        session.overflow = None;
        Saved {
            action: CookieAction::Delete(self.removal.clone()),
            report: SaveReport {
                header_len: header_len(&self.removal),
                budget: self.budget,
                ..SaveReport::default()
            },
        }
    }

    /// Saves without the overflow store: seals what fits in the budget,
    /// dropping entries lowest priority first (critical ones never), and
    /// reports what was dropped. Dropped entries are removed from the
    /// session too, so it matches the cookie.
    ///
    /// This save does not reach the overflow store: entries that live
    /// there and were not loaded are dropped and reported, as only
    /// [`Sealer::save_async`] can renew, re-seal or rewrite their blob. Use
    /// `save_async` whenever a store is configured.
    ///
    /// Returns [`CookieAction::Unchanged`] when nothing needs saving and a
    /// deletion cookie after [`Session::flush`]. Fails with
    /// [`Error::TooLarge`] if the critical entries alone do not fit.
    ///
    /// ```
    /// use sealed_session::{CookieAction, KeyRing, MasterKey, Priority, Sealer};
    /// let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?)).budget(600).build()?;
    /// let mut session = sealer.new_session()?;
    /// session.insert_with_priority("user", "ada", Priority::Critical)?;
    /// session.insert_with_priority("history", &"x".repeat(1000), Priority::Low)?;
    /// let saved = sealer.save(&mut session)?;
    /// assert_eq!(saved.report.dropped[0].key, "history");
    /// assert!(saved.report.header_len <= 600);
    /// assert!(matches!(saved.action, CookieAction::Set(_)));
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    pub fn save(&self, session: &mut Session) -> Result<Saved, Error> {
        self.check_sync_save(session)?;
        let saved = self.save_unreported(session)?;
        Ok(Self::report_earlier_drops(session, saved))
    }

    /// The synchronous save and seal cannot write the revocation record of
    /// an id the session gave up: they refuse such a session.
    pub(crate) fn check_sync_save(&self, session: &Session) -> Result<(), Error> {
        match self.revocation_store.is_some() && session.replaced.is_some() {
            true => Err(Error::Store(StoreError::NeedsAsync)),
            false => Ok(()),
        }
    }

    /// Lists first in `saved`'s report the entries dropped since the last
    /// save and not reported yet (their blob was gone when read, or an
    /// earlier save dropped them to keep its blob within the cap).
    fn report_earlier_drops(session: &mut Session, mut saved: Saved) -> Saved {
        if !session.dropped_unreported.is_empty() {
            let mut dropped = core::mem::take(&mut session.dropped_unreported);
            dropped.append(&mut saved.report.dropped);
            saved.report.dropped = dropped;
        }
        saved
    }

    /// [`Sealer::save`], but for the entries dropped before it.
    fn save_unreported(&self, session: &mut Session) -> Result<Saved, Error> {
        if session.should_delete_cookie() {
            return Ok(self.deletion(session));
        }
        if !session.needs_save() {
            return Ok(self.unchanged());
        }
        // Overflowed entries that were not loaded live in a blob that only
        // `save_async` can renew, re-seal or retire: a cookie sealed here
        // cannot vouch for it, so they are dropped (and reported). The old
        // blob expires by its TTL.
        self.save_dropping(
            session,
            self.clock.now(),
            "the synchronous save cannot keep their blob (use save_async)",
        )
    }

    /// Saves without an overflow blob: unloaded overflowed entries are
    /// dropped (reported with `reason`), and what does not fit is dropped
    /// in the budget's order. The session's blob reference is cleared;
    /// retiring the blob is the caller's.
    fn save_dropping(&self, session: &mut Session, now: u64, reason: &str) -> Result<Saved, Error> {
        let mut dropped = Self::drop_unloaded(session, reason);
        session.overflow = None;
        if let Some((cookie, len)) = self.seal_whole_if_fits(session, now)? {
            return Ok(self.set(cookie, len, dropped, Vec::new()));
        }
        let plan = self.plan(session, None, now)?;
        let over_budget = Self::removed_entries(session, &plan.removed);
        let mut index = 0;
        session.entries.retain(|_| {
            index += 1;
            !plan.removed.contains(&(index - 1))
        });
        let token = self.seal_selected(session, None, None, now)?;
        let (cookie, len) = self.finish(session, &token, now)?;
        self.report_drops(&over_budget, len);
        dropped.extend(over_budget);
        Ok(self.set(cookie, len, dropped, Vec::new()))
    }

    /// The result of a save that sends nothing.
    pub(crate) fn unchanged(&self) -> Saved {
        Saved {
            action: CookieAction::Unchanged,
            report: SaveReport {
                budget: self.budget,
                ..SaveReport::default()
            },
        }
    }

    /// The result of a save that sends `cookie` (`len` bytes of header).
    fn set(
        &self,
        cookie: String,
        len: usize,
        dropped: Vec<RemovedEntry>,
        overflowed: Vec<RemovedEntry>,
    ) -> Saved {
        Saved {
            action: CookieAction::Set(cookie),
            report: SaveReport {
                dropped,
                overflowed,
                header_len: len,
                budget: self.budget,
                ..SaveReport::default()
            },
        }
    }

    /// The common case first: the whole session, sealed once, fits. Returns
    /// `None` (and leaves the session unsaved) when it does not.
    fn seal_whole_if_fits(
        &self,
        session: &mut Session,
        now: u64,
    ) -> Result<Option<(String, usize)>, Error> {
        let token = match self.seal_selected(session, None, None, now) {
            Ok(token) => token,
            Err(Error::LimitExceeded(
                crate::Limit::DecompressedSize | crate::Limit::TokenLength,
            )) => return Ok(None),
            Err(e) => return Err(e),
        };
        match self.finish(session, &token, now) {
            Ok(done) => Ok(Some(done)),
            Err(Error::TooLarge { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn report_drops(&self, dropped: &[RemovedEntry], header_len: usize) {
        if !dropped.is_empty() {
            let keys = crate::budget::keys_of(dropped);
            tracing::warn!(
                dropped = ?keys,
                header_len,
                budget = self.budget,
                "session entries dropped to fit the cookie budget"
            );
        }
    }

    /// How long an overflow blob must live, plus the clock skew: as long as
    /// the cookie sealed now can open, which is until the earlier of the
    /// idle timeout from now and the session's absolute end. That moment
    /// moves back from one save to the next by at most the clock skew (the
    /// absolute end moves only when `open` clamps a creation time ahead of
    /// a slower server's clock; the idle window only slides forward), which
    /// the added skew covers, so a renewal never cuts short an older
    /// cookie; every save that keeps the blob renews it
    /// ([`OverflowStore::touch`]). The session's own expiry (an end or an
    /// idle timeout) does not shorten it: it can move either way, and an
    /// older cookie may carry a longer one. With neither timeout (sessions
    /// that never end), 30 days from the last save, or the session's own
    /// idle window if longer; after that a save drops the entries and
    /// reports them.
    fn blob_ttl(&self, session: &Session, now: u64) -> Duration {
        let remaining_lifetime = self.policy.max_lifetime.map(|lifetime| {
            session
                .created_at
                .saturating_add(lifetime)
                .saturating_sub(now)
        });
        let shorter = remaining_lifetime
            .into_iter()
            .chain(self.policy.max_idle)
            .min();
        let secs = match shorter {
            Some(secs) => secs,
            // Never shorter than a window of the session's own, or a
            // read-only session refreshed late in a long window would
            // open without its blob.
            None => match session.expiry {
                Expiry::Idle(window) => window.max(UNBOUNDED_BLOB_TTL),
                _ => UNBOUNDED_BLOB_TTL,
            },
        };
        // One second more: a cookie still opens at an age of exactly
        // `max_idle` (or at the lifetime's last second), and a store keeps
        // a blob only while its end is after now.
        Duration::from_secs(
            secs.saturating_add(self.policy.clock_skew)
                .saturating_add(1),
        )
    }

    /// Saves with the overflow store when one is configured (otherwise as
    /// [`Sealer::save`]): entries that do not fit are sealed, bound to the
    /// session id and a fresh reference, written to the store, and the
    /// cookie keeps the reference; the previous blob is retired (see
    /// below). If even moving every candidate leaves the header over budget
    /// (the list of moved keys is part of it), the blob's entries are loaded
    /// and the session is saved as [`Sealer::save`] does, dropping and
    /// reporting; so [`Error::TooLarge`] means, here too, that the critical
    /// entries alone do not fit. A blob is kept within
    /// [`Limits::max_decompressed`](crate::Limits::max_decompressed), so
    /// that this server can read it back: when the moved entries exceed it
    /// together, the fewest of them are dropped (and reported), in the
    /// budget's order.
    ///
    /// A request that changed only cookie-resident entries makes one store
    /// call ([`OverflowStore::touch`](crate::store::OverflowStore::touch),
    /// to renew the blob's TTL; a store without it gets a rewrite of the
    /// blob instead). If the store cannot
    /// be written the save fails with [`StoreError::Unavailable`] and the
    /// session is left as it was (keep the previous cookie), except that
    /// entries whose blob was found missing, or dropped to keep the new
    /// blob within `max_decompressed`, have been removed from it: they
    /// cannot come back (the previous cookie still lists them, and the
    /// next save from it drops and reports them; so does the next
    /// successful save of this session).
    ///
    /// With a revocation store, a save after [`Session::flush`] or
    /// [`Session::cycle_id`] then revokes the old id (see
    /// [`SealerBuilder::revocation_store`](crate::SealerBuilder::revocation_store)).
    ///
    /// Entries the cookie no longer references are deleted from the store
    /// at once after [`Session::flush`] or [`Session::cycle_id`]; after
    /// any other rewrite, with a store that implements
    /// [`OverflowStore::touch`](crate::store::OverflowStore::touch), they
    /// stay readable for a minute plus the clock skew, for requests still
    /// running from the previous cookie (a store without it deletes them at
    /// once; if the touch fails they keep their TTL).
    pub async fn save_async(&self, session: &mut Session) -> Result<Saved, Error> {
        let replaced = session.replaced;
        let mut saved = match self.overflow_store.as_deref() {
            Some(store) => self.save_with_store(store, session).await?,
            None => self.save_unreported(session)?,
        };
        if let (Some(store), Some((id, cookie_expiry))) = (&self.revocation_store, replaced) {
            // Only after a save that succeeded: a failed one leaves the old
            // cookie in use, so it must stay valid. A failure here does not
            // hold back the new cookie (or the deletion cookie of a
            // logout): the browser must still drop the old one.
            let keep_for = self.revocation_keep_for(cookie_expiry, session.now);
            if let Err(e) = store.revoke_session(id, keep_for).await {
                tracing::error!(
                    error = %e,
                    "could not revoke the session id given up by flush or cycle_id; \
                     copies of the old cookie stay valid until they expire"
                );
                saved.report.unrevoked = Some(e);
            }
        }
        Ok(Self::report_earlier_drops(session, saved))
    }

    /// How long to keep the record of a revoked id whose cookie has its own
    /// `cookie_expiry`: [`Sealer::revocation_ttl`], or without timeouts as
    /// long as that expiry lets it open from `now` (plus the clock skew and
    /// a second), or as long as records are kept.
    fn revocation_keep_for(&self, cookie_expiry: Expiry, now: u64) -> Duration {
        self.revocation_ttl().unwrap_or_else(|| {
            match crate::session::own_expiry_age(cookie_expiry, now) {
                Some(age) => {
                    let skew = self.policy.clock_skew.saturating_add(1);
                    Duration::from_secs(age.saturating_add(skew))
                }
                None => crate::store::MAX_TTL,
            }
        })
    }

    /// [`Sealer::save_async`] with its store, but for the entries dropped
    /// before it.
    async fn save_with_store(
        &self,
        store: &dyn crate::store::OverflowStore,
        session: &mut Session,
    ) -> Result<Saved, Error> {
        if session.should_delete_cookie() {
            if let Some((sid, reference)) = session.overflow {
                self.delete_blob(store, &sid, &reference).await;
            }
            return Ok(self.deletion(session));
        }
        if !session.needs_save() {
            return Ok(self.unchanged());
        }
        let now = self.clock.now();
        if !session.has_unloaded_overflow() {
            if let Some((cookie, len)) = self.seal_whole_if_fits(session, now)? {
                if let Some((sid, reference)) = session.overflow.take() {
                    self.retire_blob(store, session, &sid, &reference).await;
                }
                return Ok(self.set(cookie, len, Vec::new(), Vec::new()));
            }
        }

        let bound = session.overflow.filter(|(sid, _)| *sid == session.id);
        let bound_ref = bound.map(|(_, r)| r);
        // A new blob reference, drawn only when no bound blob may be kept.
        let fresh_reference = || -> Result<[u8; SESSION_ID_LEN], Error> {
            let mut fresh = [0u8; SESSION_ID_LEN];
            self.random.fill(&mut fresh)?;
            Ok(fresh)
        };
        let fresh = match bound_ref {
            Some(_) => None,
            None => Some(fresh_reference()?),
        };
        let mut plan = match self.plan(session, bound_ref.as_ref().or(fresh.as_ref()), now) {
            Err(Error::TooLarge { .. }) => return self.drop_instead(store, session, now).await,
            planned => planned?,
        };
        let moved_now = !plan.removed.is_empty();
        let has_unloaded = session.has_unloaded_overflow();
        // Keep the old blob when nothing new leaves the cookie, it is bound
        // to this id, none of its entries was removed or replaced (it would
        // go on holding their old values), and the cookie did not need a
        // fallback key (then the blob is re-sealed under the primary too,
        // or it would outlive the old key). Its TTL is renewed: without an absolute lifetime the
        // idle window moves on, and with one a request running at the same
        // time may have retired it. If the store cannot renew it (absent,
        // or no `touch`), it is rewritten.
        let mut reuse = has_unloaded && !moved_now && bound.is_some();
        reuse &= !session.opened_with_fallback() && !session.overflow_stale;
        if let (true, Some(reference)) = (reuse, &bound_ref) {
            let key = overflow_key(&session.id, reference);
            reuse = store.touch(&key, self.blob_ttl(session, now)).await?;
        }
        if reuse {
            let token = self.seal_selected(session, Some(&plan.keep), bound_ref.as_ref(), now)?;
            let (cookie, len) = self.finish(session, &token, now)?;
            return Ok(self.set(cookie, len, Vec::new(), Vec::new()));
        }
        // The blob is rewritten: everything in it must be in hand.
        self.load_or_drop_missing(session).await?;
        let fresh = match fresh {
            Some(fresh) => fresh,
            None => fresh_reference()?,
        };
        if has_unloaded || bound_ref.is_some() {
            // Planned against the old reference; the new blob gets `fresh`.
            plan = match self.plan(session, Some(&fresh), now) {
                Err(Error::TooLarge { .. }) => return self.drop_instead(store, session, now).await,
                planned => planned?,
            };
        }
        // The blob must open again on this server: the least important of
        // the moved entries are dropped until it fits under
        // `max_decompressed`. They are gone from the session now, so they
        // are logged now, and reported by this save or, if it fails, the
        // next.
        let Some((plan, dropped)) = self.drop_until_blob_fits(session, plan, &fresh, now)? else {
            return self.drop_instead(store, session, now).await;
        };
        if !dropped.is_empty() {
            let keys = crate::budget::keys_of(&dropped);
            tracing::warn!(
                dropped = ?keys,
                max_decompressed = self.limits.decompressed(),
                "session entries dropped: the overflow blob would exceed the decompression limit"
            );
            session.dropped_unreported.extend(dropped);
        }
        let overflowed = Self::removed_entries(session, &plan.removed);
        let old = session.overflow;
        let (cookie, len) = if plan.removed.is_empty() {
            let token = self.seal_selected(session, Some(&plan.keep), None, now)?;
            let done = self.finish(session, &token, now)?;
            session.overflow = None;
            done
        } else {
            let reference = fresh;
            let key = overflow_key(&session.id, &reference);
            let blob = self.seal_blob(session, &plan.removed, &key, now)?;
            if let Err(e) = store
                .put(&key, blob.into_bytes(), self.blob_ttl(session, now))
                .await
            {
                // The write may have happened all the same (a lost reply):
                // nothing will ever reference this key.
                self.delete_blob(store, &session.id, &reference).await;
                return Err(e);
            }
            let done = self
                .seal_selected(session, Some(&plan.keep), Some(&reference), now)
                .and_then(|token| self.finish(session, &token, now));
            match done {
                Ok(done) => {
                    session.overflow = Some((session.id, reference));
                    done
                }
                Err(e) => {
                    self.delete_blob(store, &session.id, &reference).await;
                    return Err(e);
                }
            }
        };
        if let Some((sid, reference)) = old {
            if session.overflow != Some((sid, reference)) {
                self.retire_blob(store, session, &sid, &reference).await;
            }
        }
        Ok(self.set(cookie, len, Vec::new(), overflowed))
    }

    /// Loads the entries still in the overflow blob, if any. A blob that is
    /// gone (evicted, or expired in a session without timeouts) cannot come
    /// back: its entries are dropped (logged, and kept for the next save's
    /// report) and the session is marked modified, or every later read and
    /// save would fail on it. One this server cannot read (`Rejected`:
    /// tampered, or a key or limit of another server) is an error.
    pub(crate) async fn load_or_drop_missing(&self, session: &mut Session) -> Result<(), Error> {
        // `load_overflow` returns at once when nothing is unloaded.
        match self.load_overflow(session).await {
            Ok(()) => Ok(()),
            Err(Error::Store(StoreError::Missing)) => {
                session.modified = true;
                let dropped = Self::drop_unloaded(session, "their blob is missing from the store");
                session.dropped_unreported.extend(dropped);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The save when even moving every candidate to the store leaves the
    /// header over budget, the overflow element's own bytes (a reference,
    /// and a key per moved entry) being part of it: the session is saved as
    /// without a store, dropping (and reporting) instead of moving, and the
    /// old blob is retired. The blob's entries are loaded first, so they
    /// take their turn in the budget's order (and a critical one among them
    /// is never dropped). Fails with `TooLarge` only if the critical entries
    /// alone do not fit.
    async fn drop_instead(
        &self,
        store: &dyn crate::store::OverflowStore,
        session: &mut Session,
        now: u64,
    ) -> Result<Saved, Error> {
        self.load_or_drop_missing(session).await?;
        let old = session.overflow;
        let saved = self.save_dropping(
            session,
            now,
            "the overflow list itself does not fit in the budget",
        )?;
        if let Some((sid, reference)) = old {
            self.retire_blob(store, session, &sid, &reference).await;
        }
        Ok(saved)
    }

    /// Removes the overflowed entries that were not loaded, for a report,
    /// and logs their keys with `reason` at once: a save that fails after
    /// this returns no report, and the entries are gone from the session.
    pub(crate) fn drop_unloaded(session: &mut Session, reason: &str) -> Vec<RemovedEntry> {
        let unloaded: Vec<usize> = (0..session.entries.len())
            .filter(|&i| matches!(session.entries[i].value, Value::Overflowed))
            .collect();
        // Size 0: an unloaded entry has no value in the session.
        let dropped = Self::removed_entries(session, &unloaded);
        session
            .entries
            .retain(|e| matches!(e.value, Value::Resident(_)));
        if !dropped.is_empty() {
            let keys = crate::budget::keys_of(&dropped);
            tracing::warn!(dropped = ?keys, reason, "overflowed session entries dropped");
        }
        dropped
    }

    /// Retires a blob the new cookie no longer references. If the session
    /// keeps its id, a request running at the same time from the previous
    /// cookie may still need it, so it is left [`BLOB_GRACE`] seconds (plus
    /// the clock skew) to live rather than deleted; after `flush` or
    /// `cycle_id` (a new id) it is deleted at once.
    async fn retire_blob(
        &self,
        store: &dyn crate::store::OverflowStore,
        session: &Session,
        sid: &SessionId,
        reference: &[u8; SESSION_ID_LEN],
    ) {
        if *sid == session.id {
            let grace = Duration::from_secs(BLOB_GRACE.saturating_add(self.policy.clock_skew));
            match store.touch(&overflow_key(sid, reference), grace).await {
                // Retired: it expires after the grace period.
                Ok(true) => return,
                // The store may not support `touch`: delete instead.
                Ok(false) => {}
                Err(_) => {
                    // Left as it is: it expires by its own TTL.
                    tracing::warn!(
                        "could not retire a replaced overflow blob; it will expire by its TTL"
                    );
                    return;
                }
            }
        }
        self.delete_blob(store, sid, reference).await;
    }

    async fn delete_blob(
        &self,
        store: &dyn crate::store::OverflowStore,
        sid: &SessionId,
        reference: &[u8; SESSION_ID_LEN],
    ) {
        if store.delete(&overflow_key(sid, reference)).await.is_err() {
            // The blob is unreadable without the cookie and expires by TTL.
            tracing::warn!(
                "could not delete an unreferenced overflow blob; it will expire by its TTL"
            );
        }
    }

    /// Drops the fewest entries, in the budget's order (critical ones
    /// never), for the blob of the entries `plan` then moves to fit under
    /// `max_decompressed`; returns the plan for what is left and the
    /// dropped entries (removed from the session), or `None`, with the
    /// session untouched, when dropping all `plan.removed` entries does not
    /// make the blob fit: then the caller saves as without a store. (With
    /// compression the blob need not shrink as `d` grows, so the search
    /// below may settle on more drops than the fewest.) Dropping more only shrinks the
    /// cookie's list of moved keys, so the plan moves fewer entries and the
    /// blob shrinks: whether `d` drops suffice changes once as `d` grows,
    /// and a binary search finds the least `d` in a few plans. Dropping the
    /// prefix of `plan.removed` whose absence lets the rest fit is enough,
    /// which bounds the search.
    fn drop_until_blob_fits(
        &self,
        session: &mut Session,
        plan: Plan,
        reference: &[u8; SESSION_ID_LEN],
        now: u64,
    ) -> Result<Option<(Plan, Vec<RemovedEntry>)>, Error> {
        let most = self.blob_overflow_count(session, &plan.removed, now);
        if most == 0 {
            return Ok(Some((plan, Vec::new())));
        }
        let candidates = plan.removed[..most].to_vec();
        let mut dropped = Self::removed_entries(session, &candidates);
        let all = core::mem::take(&mut session.entries);
        let without_first = |d: usize| -> Vec<Entry> {
            let doomed = &candidates[..d];
            (all.iter().enumerate())
                .filter(|(i, _)| !doomed.contains(i))
                .map(|(_, e)| e.clone())
                .collect()
        };
        // The plan after `d` drops, if its blob fits.
        let fitting_plan = |session: &mut Session, d: usize| -> Result<Option<Plan>, Error> {
            session.entries = without_first(d);
            match self.plan(session, Some(reference), now) {
                Ok(plan) if self.blob_overflow_count(session, &plan.removed, now) == 0 => {
                    Ok(Some(plan))
                }
                Ok(_) | Err(Error::TooLarge { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        };
        let mut search = || -> Result<Option<(usize, Plan)>, Error> {
            let Some(mut best) = fitting_plan(session, most)? else {
                return Ok(None);
            };
            let (mut too_few, mut enough) = (0, most);
            while enough - too_few > 1 {
                let d = too_few + (enough - too_few) / 2;
                match fitting_plan(session, d)? {
                    Some(plan) => (enough, best) = (d, plan),
                    None => too_few = d,
                }
            }
            Ok(Some((enough, best)))
        };
        match search() {
            Ok(Some((enough, plan))) => {
                session.entries = without_first(enough);
                session.modified = true;
                dropped.truncate(enough);
                Ok(Some((plan, dropped)))
            }
            other => {
                session.entries = all;
                other.map(|_| None)
            }
        }
    }

    /// How many of `moved` (in drop order, least important first) must be
    /// left out for the blob of the rest to fit under `max_decompressed`:
    /// 0 when all of them fit.
    fn blob_overflow_count(&self, session: &Session, moved: &[usize], now: u64) -> usize {
        let sizes: Vec<usize> = moved
            .iter()
            .map(|&i| {
                let e = &session.entries[i];
                let value_len = session.resident_value(e).map_or(0, <[u8]>::len);
                payload::entry_len(session.entry_key(e).len(), value_len)
            })
            .collect();
        let mut body: usize = sizes.iter().sum();
        for (left_out, size) in sizes.iter().enumerate() {
            let count = moved.len() - left_out;
            if blob_len(session.created_at_sealed(now), count, body) <= self.limits.decompressed() {
                return left_out;
            }
            body -= size;
        }
        moved.len()
    }

    /// Seals the entries at `indices` as an overflow blob.
    fn seal_blob(
        &self,
        session: &Session,
        indices: &[usize],
        key: &str,
        now: u64,
    ) -> Result<String, Error> {
        let plaintext = Self::blob_plaintext(session, indices, now);
        // A blob this server could not read back is refused now, not
        // discovered on the next request.
        if plaintext.len() > self.limits.decompressed() {
            return Err(Error::LimitExceeded(crate::Limit::DecompressedSize));
        }
        token::seal(
            &self.ring,
            // The store key (`overflow_key`) is also the name the blob is
            // sealed for: it binds the blob to one session id and one
            // reference.
            key,
            now,
            &plaintext,
            self.compression,
            &*self.random,
        )
    }

    /// The payload of a blob holding the entries at `indices`.
    fn blob_plaintext(session: &Session, indices: &[usize], now: u64) -> Vec<u8> {
        let mut plaintext = Vec::new();
        let mut writer = PayloadWriter::begin(
            &mut plaintext,
            session.created_at_sealed(now),
            None,
            session.id.as_bytes(),
            0,
            indices.len(),
            false,
        );
        for &i in indices {
            let e = &session.entries[i];
            writer.entry(
                session.entry_key(e),
                e.priority,
                session.resident_value(e).unwrap_or_default(),
            );
        }
        plaintext
    }

    /// Loads every overflowed entry from the store (one read). A blob that
    /// is missing or expired gives [`StoreError::Missing`]; one that was
    /// altered or belongs to another session, [`StoreError::Rejected`]; a
    /// sealer without an overflow store, [`StoreError::NotConfigured`].
    pub async fn load_overflow(&self, session: &mut Session) -> Result<(), Error> {
        if !session.has_unloaded_overflow() {
            return Ok(());
        }
        let Some((sid, reference)) = session.overflow else {
            return Err(Error::Store(StoreError::Missing));
        };
        let store = self
            .overflow_store
            .as_ref()
            .ok_or(Error::Store(StoreError::NotConfigured))?;
        // The blob's store key is also the name its token is sealed for.
        let key = overflow_key(&sid, &reference);
        // The store is not trusted: bound the blob like a cookie, scaled to
        // the decompression cap, and ask the store for no more.
        let limits = self.limits.max_token_len(base64_len(
            self.limits.decompressed().saturating_add(OVERHEAD),
        ));
        let blob = store
            .get_bounded(&key, limits.token_len())
            .await?
            .ok_or(Error::Store(StoreError::Missing))?;
        let text = core::str::from_utf8(&blob).map_err(|_| Error::Store(StoreError::Rejected))?;
        let opened = token::open(&self.ring, &key, text, &limits)
            .map_err(|_| Error::Store(StoreError::Rejected))?;
        let plaintext = opened.plaintext();
        let indexed = payload::index(plaintext, self.limits.entries())
            .map_err(|_| Error::Store(StoreError::Rejected))?;
        if indexed.session_id != *sid.as_bytes() {
            return Err(Error::Store(StoreError::Rejected));
        }
        let mut found: Vec<(usize, Box<[u8]>)> = Vec::new();
        for blob_entry in &indexed.entries {
            let (Bytes::Shared(key), Value::Resident(Bytes::Shared(value))) =
                (&blob_entry.key, &blob_entry.value)
            else {
                continue;
            };
            let key = &plaintext[key.clone()];
            if let Some(i) = session.entries.iter().position(|e: &Entry| {
                matches!(e.value, Value::Overflowed) && session.entry_key(e).as_bytes() == key
            }) {
                found.push((i, plaintext[value.clone()].into()));
            }
        }
        let missing = session.entries.iter().enumerate().any(|(i, e)| {
            matches!(e.value, Value::Overflowed) && !found.iter().any(|(j, _)| *j == i)
        });
        if missing {
            return Err(Error::Store(StoreError::Rejected));
        }
        for (i, value) in found {
            session.entries[i].value = Value::Resident(Bytes::Owned(value));
        }
        Ok(())
    }

    /// Reads a value, loading the overflow store first if the entry lives
    /// there (the only case that makes a store call). If the blob is gone
    /// from the store (evicted, or expired), its entries are dropped from
    /// the session with a warning that names their keys (and the next
    /// save's report lists them as dropped), the session is
    /// marked modified so that the next save writes a cookie without them,
    /// and the entry reads as absent; a blob that fails authentication is
    /// an error ([`StoreError::Rejected`]).
    pub async fn get_loading<T: serde::de::DeserializeOwned>(
        &self,
        session: &mut Session,
        key: &str,
    ) -> Result<Option<T>, Error> {
        if session.is_overflowed(key) {
            self.load_or_drop_missing(session).await?;
        }
        session.get(key)
    }

    /// The checks of [`Sealer::open`], then the revocation check if one is
    /// configured ([`Error::Revoked`]; a check that cannot answer fails the
    /// open).
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
                // blob gone from the store takes the user entry with it:
                // the session no longer names a user.
                Some(key) => user_text(self.get_loading(session, key).await?)?,
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
}

/// The user id entry as text: a string as is, an integer in decimal, a
/// 16-byte byte string as a hyphenated lower-case UUID (a `uuid::Uuid`
/// serializes to CBOR as its 16 bytes, and displays that way), any other
/// byte string in lower-case hex; none when it is absent or null. Any other
/// value is an error ([`ValueError::Deserialize`](crate::ValueError::Deserialize)),
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
        Some(_) => return Err(Error::Value(crate::ValueError::Deserialize)),
    };
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::{base64_len, blob_len};
    use crate::{KeyRing, MasterKey, Priority, Sealer};
    use base64::Engine as _;

    #[test]
    fn blob_length_matches_the_written_blob() {
        let sealer = Sealer::builder(KeyRing::new(MasterKey::generate().unwrap()))
            .limits(crate::Limits::default().max_entries(300))
            .build()
            .unwrap();
        let mut session = sealer.new_session().unwrap();
        // Counts and sizes across the CBOR head widths (23/24, 255/256).
        for i in 0..300 {
            let value = "v".repeat(i % 7 * 40);
            session
                .insert_with_priority(&format!("k{i}"), &value, Priority::Low)
                .unwrap();
        }
        for now in [0, 23, 24, 1 << 40] {
            for count in [0, 1, 23, 24, 255, 256, 300] {
                let indices: Vec<usize> = (0..count).collect();
                let body: usize = session.entries[..count]
                    .iter()
                    .map(|e| {
                        let value = session.resident_value(e).unwrap();
                        crate::payload::entry_len(session.entry_key(e).len(), value.len())
                    })
                    .sum();
                let written = Sealer::blob_plaintext(&session, &indices, now);
                let created_at = session.created_at_sealed(now);
                assert_eq!(
                    blob_len(created_at, count, body),
                    written.len(),
                    "{now} {count}"
                );
            }
        }
    }

    #[test]
    fn base64_length_saturates_for_huge_configured_limits() {
        // `max_decompressed(usize::MAX)` ("no cap") reaches this on every
        // overflow-blob load: it must not overflow (a panic in debug).
        assert_eq!(base64_len(usize::MAX), usize::MAX);
        assert_eq!(base64_len(usize::MAX / 4 * 3), usize::MAX / 4 * 4);
    }

    #[test]
    fn base64_length_matches_the_encoder() {
        for n in 0..100 {
            let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(vec![0u8; n]);
            assert_eq!(base64_len(n), encoded.len());
        }
    }
}
