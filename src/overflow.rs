//! The overflow store's side of saving and opening: entries that do not fit
//! the cookie are sealed into a blob bound to the session id and a fresh
//! reference (docs/FORMAT.md §15), written to the store, renewed, retired
//! and loaded back.

use core::time::Duration;

use crate::budget::{RemovedEntry, Saved};
use crate::error::StoreError;
use crate::key::KeyRole;
use crate::payload::{self, PayloadWriter, SESSION_ID_LEN};
use crate::save::{base64_len, Plan};
use crate::session::{Bytes, Entry, Session, SessionId, Value};
use crate::store::overflow_key;
use crate::token::{self, OVERHEAD};
use crate::{Error, Sealer};

/// Bytes of an overflow blob's payload as `seal_blob` writes it: the
/// fixed fields (no expiry, no flags, no overflow element) and `count`
/// entries taking `body` bytes.
fn blob_len(created_at: u64, count: usize, body: usize) -> usize {
    payload::begin_len(created_at, None, 0, count) + body
}

/// Blob TTL, in seconds, when the sealer has neither an idle timeout nor an
/// absolute lifetime.
const UNBOUNDED_BLOB_TTL: u64 = 30 * 24 * 3600;

/// How many moved entries beyond those whose blob exceeds
/// `max_decompressed` may be dropped for the cookie to fit, before a save
/// gives up the overflow store (see `drop_until_blob_fits`).
const EXTRA_DROPS: usize = 8;

/// Why a save drops the overflowed entries it did not load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlobNotKept {
    /// Their blob is gone from the store.
    Missing,
    /// Their blob cannot be read here: altered in the store, or sealed
    /// under a key or over limits this server does not have.
    Rejected,
    /// No way of moving entries to the store leaves a cookie that fits:
    /// even the list of moved keys does not fit, or (with compression) no
    /// blob within `max_decompressed` does. (Only its `cause` is logged:
    /// that save loads the blob first, so it drops no unloaded entry.)
    ListOverBudget,
    /// This server has no overflow store (another server wrote the blob).
    NoStore,
    /// `Sealer::save`, which cannot reach the store.
    SynchronousSave,
    /// `Sealer::seal`, likewise.
    SynchronousSeal,
}

impl BlobNotKept {
    /// The log's stable `cause` field.
    pub(crate) fn cause(self) -> &'static str {
        match self {
            BlobNotKept::Missing => "blob-missing",
            BlobNotKept::Rejected => "blob-rejected",
            BlobNotKept::ListOverBudget => "overflow-list-over-budget",
            BlobNotKept::NoStore => "no-overflow-store",
            BlobNotKept::SynchronousSave => "synchronous-save",
            BlobNotKept::SynchronousSeal => "synchronous-seal",
        }
    }

    /// The log's explanation.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            BlobNotKept::Missing => "their blob is missing from the store",
            BlobNotKept::Rejected => {
                "their blob cannot be read here (altered, or another server's key or limits)"
            }
            BlobNotKept::ListOverBudget => {
                "no way of moving entries to the store leaves a cookie that fits"
            }
            BlobNotKept::NoStore => "no overflow store is configured on this server",
            BlobNotKept::SynchronousSave => {
                "the synchronous save cannot keep their blob (use save_async)"
            }
            BlobNotKept::SynchronousSeal => "Sealer::seal cannot keep their blob (use save_async)",
        }
    }
}

impl Sealer {
    /// How long an overflow blob must live, plus the clock skew: as long as
    /// the cookie sealed now can open, which is until the earlier of the
    /// idle timeout from now and the session's absolute end. That moment
    /// moves back from one save to the next by at most the clock skew (the
    /// absolute end moves only when `open` clamps a creation time ahead of
    /// a slower server's clock; the idle window only slides forward), which
    /// the added skew covers, so a renewal never cuts short an older
    /// cookie; every save that keeps the blob renews it
    /// ([`OverflowStore::touch`](crate::store::OverflowStore::touch)). The
    /// session's own expiry (an end or an idle timeout) does not shorten
    /// it: it can move either way, and an older cookie may carry a longer
    /// one. With neither timeout (sessions that never end), 30 days from
    /// the last save, or the session's own idle window if longer (its
    /// `Expiry::Idle`, or `browser_session_max_idle` for a cookie that ends
    /// with the browser); after that a save drops the entries and reports
    /// them.
    fn blob_ttl(&self, session: &Session, now: u64) -> Duration {
        let remaining_lifetime = self.policy.max_lifetime.map(|lifetime| {
            session
                .created_at_sealed(now)
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
            None => match self.policy.own_idle(session.expiry) {
                Some(window) => window.max(UNBOUNDED_BLOB_TTL),
                None => UNBOUNDED_BLOB_TTL,
            },
        };
        self.open_window(secs)
    }

    /// [`Sealer::save_async`] with its store, but for the entries dropped
    /// before it.
    pub(crate) async fn save_with_store(
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
        let now = self.save_time(session);
        if !session.has_unloaded_overflow() {
            if let Some(header) = self.seal_whole_if_fits(session, now)? {
                if let Some((sid, reference)) = session.overflow.take() {
                    self.retire_blob(store, session, &sid, &reference).await;
                }
                return Ok(self.set(header, Vec::new(), Vec::new()));
            }
        }

        let bound = session.overflow.filter(|(sid, _)| *sid == session.id);
        let bound_ref = bound.map(|(_, r)| r);
        // A new blob reference, drawn only when no bound blob may be kept.
        let fresh_reference = || -> Result<[u8; SESSION_ID_LEN], Error> {
            let mut fresh = [0u8; SESSION_ID_LEN];
            crate::random::fill_nonzero(&*self.random, &mut fresh)?;
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
        // go on holding their old values), and the primary opened the
        // cookie: after a fallback key the blob is re-sealed under the
        // primary too, or it would outlive the old key; after an incoming
        // key likewise, or a rotation rolled back (the incoming key
        // removed) would leave a blob that no key opens under a cookie
        // that opens. Its TTL is renewed: without an absolute lifetime the
        // idle window moves on, and with one a request running at the same
        // time may have retired it. If the store cannot renew it (absent,
        // or no `touch`), it is rewritten. If the store cannot answer, a
        // modified session keeps the blob as it is, to live by its own TTL:
        // failing the save for the renewal alone would refuse every write
        // of the session until the store is back, though none touches the
        // blob. A refresh alone fails instead: the previous cookie still
        // works, and a new one could outlive the blob it names.
        let mut reuse = has_unloaded && !moved_now && bound.is_some();
        reuse &= session.opened_with == KeyRole::Primary && !session.overflow_stale;
        if let (true, Some(reference)) = (reuse, &bound_ref) {
            let key = overflow_key(&session.id, reference);
            reuse = match store.touch(&key, self.blob_ttl(session, now)).await {
                Ok(renewed) => renewed,
                Err(error) if !session.is_modified() => return Err(error),
                Err(error) => {
                    tracing::warn!(
                        event = "blob-not-renewed",
                        kind = error.kind(),
                        error = %error,
                        "could not renew the overflow blob; the cookie keeps it, and it expires by its TTL"
                    );
                    true
                }
            };
        }
        if reuse {
            let token = self.seal_selected(session, Some(&plan.keep), bound_ref.as_ref(), now)?;
            let header = self.finish(session, &token, now)?;
            return Ok(self.set(header, Vec::new(), Vec::new()));
        }
        // The blob is rewritten: everything in it must be in hand.
        self.load_or_drop_unreadable(session).await?;
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
        let Some((plan, dropped, for_the_cookie)) =
            self.drop_until_blob_fits(session, plan, &fresh, now)?
        else {
            return self.drop_instead(store, session, now).await;
        };
        if !dropped.is_empty() {
            let keys = crate::budget::keys_of(&dropped);
            // `for_the_cookie`: how many of them (the last) were dropped
            // for the cookie's budget, once it is compressed no more.
            tracing::warn!(
                event = "entries-dropped",
                cause = "blob-over-limit",
                dropped = ?keys,
                max_decompressed = self.limits.max_decompressed(),
                for_the_cookie,
                "session entries dropped: the overflow blob would exceed the decompression limit"
            );
            session.dropped_unreported.extend(dropped);
        }
        let overflowed = Self::removed_entries(session, &plan.removed);
        let old = session.overflow;
        let header = if plan.removed.is_empty() {
            let token = self.seal_selected(session, Some(&plan.keep), None, now)?;
            let done = self.finish(session, &token, now)?;
            session.overflow = None;
            done
        } else {
            let reference = fresh;
            let key = overflow_key(&session.id, &reference);
            let blob = self.seal_blob(session, &plan.removed, &key, now)?;
            let ttl = self.blob_ttl(session, now);
            let keep = crate::store::MAX_BLOBS_PER_SESSION;
            let put = store.put_for_session(&session.id, &key, blob.into_bytes(), ttl, keep);
            if let Err(e) = put.await {
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
        Ok(self.set(header, Vec::new(), overflowed))
    }

    /// Loads the entries still in the overflow blob, if any. A blob that is
    /// gone (evicted, or expired in a session without timeouts), or one
    /// this server cannot read (`Rejected`: altered in the store, or a key
    /// or limits of another server), is never read here: its entries are
    /// dropped (logged, and kept for the next save's report) and the
    /// session is marked modified, or every later read and save would fail
    /// on it, a login's included, until the session ends. (A server without
    /// the store drops them likewise.) Only a store that cannot answer is
    /// an error.
    pub(crate) async fn load_or_drop_unreadable(&self, session: &mut Session) -> Result<(), Error> {
        // `load_overflow` returns at once when nothing is unloaded.
        let why = match self.load_overflow(session).await {
            Ok(()) => return Ok(()),
            Err(Error::Store(StoreError::Missing)) => BlobNotKept::Missing,
            Err(Error::Store(StoreError::Rejected)) => BlobNotKept::Rejected,
            Err(e) => return Err(e),
        };
        session.mark_modified();
        let dropped = Self::drop_unloaded(session, why);
        session.dropped_unreported.extend(dropped);
        Ok(())
    }

    /// The save when even moving every candidate to the store leaves the
    /// header over budget, the overflow element's own bytes (a reference,
    /// and a key per moved entry) being part of it, or when no blob within
    /// `max_decompressed` leaves a cookie that fits: the session is saved as
    /// without a store, dropping (and reporting) instead of moving, and the
    /// old blob is retired. The blob's entries are loaded first, so they
    /// take their turn in the budget's order (and a critical one among them
    /// is never dropped). Fails with `TooLarge` only if the entries that
    /// may not be dropped do not fit.
    async fn drop_instead(
        &self,
        store: &dyn crate::store::OverflowStore,
        session: &mut Session,
        now: u64,
    ) -> Result<Saved, Error> {
        self.load_or_drop_unreadable(session).await?;
        let old = session.overflow;
        let saved = self.save_dropping(session, now, BlobNotKept::ListOverBudget)?;
        if let Some((sid, reference)) = old {
            self.retire_blob(store, session, &sid, &reference).await;
        }
        Ok(saved)
    }

    /// Removes the overflowed entries that were not loaded, for a report,
    /// and logs their keys with `why` at once: a save that fails after
    /// this returns no report, and the entries are gone from the session.
    pub(crate) fn drop_unloaded(session: &mut Session, why: BlobNotKept) -> Vec<RemovedEntry> {
        let unloaded = session.unloaded_indices();
        // Size 0: an unloaded entry has no value in the session.
        let dropped = Self::removed_entries(session, &unloaded);
        session
            .entries
            .retain(|e| matches!(e.value, Value::Resident(_)));
        if !dropped.is_empty() {
            let keys = crate::budget::keys_of(&dropped);
            macro_rules! dropped {
                ($level:ident) => {
                    tracing::$level!(
                        event = "entries-dropped",
                        cause = why.cause(),
                        dropped = ?keys,
                        reason = why.reason(),
                        "overflowed session entries dropped"
                    )
                };
            }
            // A blob gone is also what any client gets by replaying an old
            // copy of its cookie (its blob retired): not above INFO.
            match why {
                BlobNotKept::Missing => dropped!(info),
                _ => dropped!(warn),
            }
        }
        dropped
    }

    /// Retires a blob the new cookie no longer references. A request
    /// running at the same time from the previous cookie may still need
    /// it, so it is left
    /// [`RUNNING_REQUEST_GRACE`](crate::revocation::RUNNING_REQUEST_GRACE)
    /// (plus the clock skew) to live rather than deleted, after `cycle_id`
    /// too: a page read in another tab while a login (a new id) saves
    /// would otherwise find the blob gone and answer with a cookie that
    /// drops its entries, and undoes the login if it arrives last; the
    /// blob holds only what the previous cookie could already read. After
    /// `flush` (a logout) it is deleted at once.
    async fn retire_blob(
        &self,
        store: &dyn crate::store::OverflowStore,
        session: &Session,
        sid: &SessionId,
        reference: &[u8; SESSION_ID_LEN],
    ) {
        if *sid == session.id || !session.is_flushed() {
            let grace = crate::revocation::RUNNING_REQUEST_GRACE
                .saturating_add(Duration::from_secs(self.policy.clock_skew));
            match store.touch(&overflow_key(sid, reference), grace).await {
                // Retired: it expires after the grace period.
                Ok(true) => return,
                // The store may not support `touch`: delete instead.
                Ok(false) => {}
                Err(error) => {
                    // Left as it is: it expires by its own TTL.
                    tracing::warn!(
                        event = "blob-not-retired",
                        kind = error.kind(),
                        error = %error,
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
        if let Err(error) = store.delete(&overflow_key(sid, reference)).await {
            // The blob is unreadable without the cookie and expires by TTL.
            tracing::warn!(
                event = "blob-not-deleted",
                kind = error.kind(),
                error = %error,
                "could not delete an unreferenced overflow blob; it will expire by its TTL"
            );
        }
    }

    /// Drops moved entries, a prefix of `plan.removed` (in the budget's
    /// order; critical ones are never moved), until the blob of the
    /// entries the plan then moves fits under `max_decompressed`; returns
    /// the plan for what is left, the dropped entries (removed from the
    /// session) and how many of them went beyond the first `most` (see
    /// below), or `None`, with the session untouched, when no prefix tried
    /// lets the rest fit, cookie and blob: then the caller saves as
    /// without a store.
    ///
    /// Without compression, dropping more only shrinks the cookie's list
    /// of moved keys, so the plan moves fewer entries and the blob
    /// shrinks: whether `d` drops suffice changes once as `d` grows, a
    /// binary search finds the fewest in a few plans, and the prefix
    /// whose absence lets the rest fit (`most`) is enough, which bounds
    /// the search. With compression neither the cookie nor the blob need
    /// shrink as `d` grows, so the search may settle on more drops than
    /// the fewest; and when `most` drops leave a cookie that no longer
    /// fits, up to `EXTRA_DROPS` more are tried, one at a time.
    fn drop_until_blob_fits(
        &self,
        session: &mut Session,
        plan: Plan,
        reference: &[u8; SESSION_ID_LEN],
        now: u64,
    ) -> Result<Option<(Plan, Vec<RemovedEntry>, usize)>, Error> {
        let most = self.blob_overflow_count(session, &plan.removed, now);
        if most == 0 {
            return Ok(Some((plan, Vec::new(), 0)));
        }
        // Beyond the first `most` only when those drops are not enough.
        let candidates = plan.removed.clone();
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
                // Only with compression: the cookie may have fitted because
                // a moved entry's listed key lifted it over the threshold,
                // and without that entry it is sealed as it is and no
                // longer fits. Dropping more of the moved entries, one at a
                // time (the least important first), can still let the rest
                // move. Each try is a whole plan (a seal per entry it
                // leaves out), hence the bound.
                let last = candidates.len().min(most + EXTRA_DROPS);
                for d in most + 1..=last {
                    if let Some(plan) = fitting_plan(session, d)? {
                        return Ok(Some((d, plan)));
                    }
                }
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
                session.mark_modified();
                dropped.truncate(enough);
                Ok(Some((plan, dropped, enough.saturating_sub(most))))
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
        let size = |i: usize| session.resident_size(&session.entries[i]);
        let mut body: usize = moved.iter().map(|&i| size(i)).sum();
        for (left_out, &i) in moved.iter().enumerate() {
            let count = moved.len() - left_out;
            if blob_len(session.created_at_sealed(now), count, body)
                <= self.limits.max_decompressed()
            {
                return left_out;
            }
            body -= size(i);
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
        if plaintext.len() > self.limits.max_decompressed() {
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

    /// Loads every overflowed entry from the store (one read).
    ///
    /// # Errors
    ///
    /// A blob that is missing or expired gives [`StoreError::Missing`]; one
    /// that was altered, belongs to another session or is longer than any
    /// this sealer writes, [`StoreError::Rejected`]; a sealer without an
    /// overflow store, [`StoreError::NotConfigured`]; and a store that
    /// cannot be read, its error ([`StoreError::Unavailable`]). Nothing is
    /// loaded then.
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
        let limits = self.limits.with_max_token_len(base64_len(
            self.limits.max_decompressed().saturating_add(OVERHEAD),
        ));
        let blob = store
            .get_bounded(&key, limits.max_token_len())
            .await?
            .ok_or(Error::Store(StoreError::Missing))?;
        let text = core::str::from_utf8(&blob).map_err(|_| Error::Store(StoreError::Rejected))?;
        let opened = token::open(&self.ring, &key, text, &limits)
            .map_err(|_| Error::Store(StoreError::Rejected))?;
        let plaintext = opened.plaintext();
        let indexed = payload::index(plaintext, self.limits.max_entries())
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
    /// from the store (evicted, or expired) or cannot be read here (altered
    /// in the store, or another server's key or limits), its entries are
    /// dropped from the session, logged (at `INFO`; at `WARN` if it cannot
    /// be read) with their keys (and the next save's report lists them as
    /// dropped), the session is marked modified so that the next save
    /// writes a cookie without them, and the entry reads as absent.
    ///
    /// # Errors
    ///
    /// Those of [`Sealer::load_overflow`] except [`StoreError::Missing`] and
    /// [`StoreError::Rejected`], when the entry lives in the store; then
    /// those of [`Session::get`] except [`StoreError::NotLoaded`].
    pub async fn get_loading<T: serde::de::DeserializeOwned>(
        &self,
        session: &mut Session,
        key: &str,
    ) -> Result<Option<T>, Error> {
        if session.is_overflowed(key) {
            self.load_or_drop_unreadable(session).await?;
        }
        session.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::blob_len;
    use crate::{KeyRing, MasterKey, Priority, Sealer};

    #[test]
    fn blob_length_matches_the_written_blob() {
        let sealer = Sealer::builder(KeyRing::new(MasterKey::generate().unwrap()))
            .limits(crate::Limits::default().with_max_entries(300))
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
                    .map(|e| session.resident_size(e))
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
}
