//! Saving a session under the size budget: priority-based dropping,
//! deletion cookies, and the asynchronous save that reaches the stores
//! (the overflow store's side is in `overflow.rs`).

use core::time::Duration;

use crate::budget::{drop_order, CookieAction, RemovedEntry, SaveReport, Saved};
use crate::cookie::{header_len, MAX_NAME_VALUE_LEN};
use crate::error::StoreError;
use crate::overflow::BlobNotKept;
use crate::payload::SESSION_ID_LEN;
use crate::session::{Expiry, Session, Value};
use crate::token::{self, OVERHEAD};
use crate::{Error, Limit, Sealer};

/// Where each entry goes in a save.
pub(crate) struct Plan {
    /// `true`: in the cookie; `false`: dropped or overflowed.
    pub(crate) keep: Vec<bool>,
    /// Indices taken out of the cookie, in drop order (resident entries only).
    pub(crate) removed: Vec<usize>,
    /// Bytes of the header with only the `keep` entries (measured by
    /// sealing, with compression).
    pub(crate) header_len: usize,
    /// The effective budget (FORMAT.md §14.3).
    pub(crate) budget: usize,
}

/// A `Set-Cookie` header a save built and checked.
pub(crate) struct SealedHeader {
    /// The header's value (after `Set-Cookie: `).
    pub(crate) cookie: String,
    /// Bytes of the whole header.
    pub(crate) len: usize,
    /// The effective budget it was held to (FORMAT.md §14.3).
    pub(crate) budget: usize,
}

/// Length of unpadded base64 for `n` bytes (`usize::MAX` if that overflows).
pub(crate) fn base64_len(n: usize) -> usize {
    base64::encoded_len(n, false).unwrap_or(usize::MAX)
}

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

    /// The `Max-Age` the cookie of `session` gets when saved now (whole
    /// seconds): `None` for a browser-session cookie. (With a revocation
    /// check, a request that ran over a minute past the check's last pass,
    /// or its session's start, is counted as saved a minute after that;
    /// [`Sealer::save_async`] asks the check again
    /// first, and if it passes, saves at the real time: a `Max-Age` that
    /// runs to the session's end or its absolute lifetime is then shorter
    /// by the difference.)
    pub fn cookie_max_age(&self, session: &Session) -> Option<Duration> {
        self.max_age_at(session, self.save_time(session))
    }

    fn max_age_at(&self, session: &Session, now: u64) -> Option<Duration> {
        match session.expiry {
            Expiry::BrowserSession => None,
            // Non-persistent settings, or no timeout to give a `Max-Age`
            // (a `browser_session_max_idle` must not give it one).
            Expiry::Default if self.policy.default_is_browser_session => None,
            Expiry::Default | Expiry::At(_) | Expiry::Idle(_) => {
                session.expiry_age_at(now).map(Duration::from_secs)
            }
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
        if payload_len > self.limits.max_decompressed() {
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
    pub(crate) fn plan(
        &self,
        session: &Session,
        reference: Option<&[u8; SESSION_ID_LEN]>,
        now: u64,
    ) -> Result<Plan, Error> {
        let around_value = header_len(&self.cookie.set_cookie_at(
            &self.cookie_name,
            "",
            self.max_age_at(session, now),
            now,
        ));
        let budget = self.effective_budget(around_value);
        let resident: Vec<bool> = session
            .entries
            .iter()
            .map(|e| matches!(e.value, Value::Resident(_)))
            .collect();
        let sizes: Vec<(&str, crate::Priority, usize)> = session
            .entries
            .iter()
            .map(|e| {
                let key = session.entry_key(e);
                let priority = if self.is_revocation_user_key(key) {
                    crate::Priority::Critical
                } else {
                    e.priority
                };
                (key, priority, session.resident_size(e))
            })
            .collect();
        let mut order = drop_order(&sizes);
        order.retain(|&i| resident[i]);
        let (count, len, keep) = match self.compression {
            // Computed lengths: one candidate at a time finds the least.
            token::Compression::Off => {
                let mut keep = resident.clone();
                let mut count = 0;
                loop {
                    let len = self.header_len_for(session, &keep, reference, around_value, now)?;
                    if len <= budget || count == order.len() {
                        break (count, len, keep);
                    }
                    keep[order[count]] = false;
                    count += 1;
                }
            }
            // Measured lengths cost a seal each (deflate and encrypt,
            // up to `max_decompressed`): searched, they cost O(log n)
            // seals rather than n, which a client adding entries would
            // make quadratic over a session's life.
            token::Compression::Above(_) => {
                // The header with the first `removed` candidates out.
                let len_without = |removed: usize| {
                    let mut keep = resident.clone();
                    for &i in &order[..removed] {
                        keep[i] = false;
                    }
                    self.header_len_for(session, &keep, reference, around_value, now)
                        .map(|len| (len, keep))
                };
                // Beside a store most entries leave; without one, few do.
                let most_leave = reference.is_some();
                search_removals(order.len(), budget, most_leave, len_without)?
            }
        };
        if len <= budget {
            return Ok(Plan {
                keep,
                removed: order[..count].to_vec(),
                header_len: len,
                budget,
            });
        }
        // What may not be dropped is over the sealer's own limit for a
        // payload: not a length anyone could budget for. (With a
        // reference, the list of moved keys may be what is over: the store
        // path then drops instead.)
        if len == usize::MAX && reference.is_none() {
            return Err(Error::LimitExceeded(Limit::DecompressedSize));
        }
        Err(Error::TooLarge {
            needed: len,
            budget,
        })
    }

    /// Whether `key` names the user id the revocation check reads (only a
    /// revocation source sets `user_key`): that entry stays in the cookie
    /// whatever its priority, since a blob can go missing (evicted,
    /// expired), and the check would then see no user and let a session of
    /// a user logged out everywhere through.
    fn is_revocation_user_key(&self, key: &str) -> bool {
        self.user_key.as_deref() == Some(key)
    }

    pub(crate) fn removed_entries(session: &Session, indices: &[usize]) -> Vec<RemovedEntry> {
        indices
            .iter()
            .map(|&i| {
                let e = &session.entries[i];
                RemovedEntry {
                    key: session.entry_key(e).to_owned(),
                    priority: e.priority,
                    size: session.resident_size(e),
                }
            })
            .collect()
    }

    /// The budget a header of `around_value` bytes without its value is
    /// held to (FORMAT.md §14.3): the configured one, unless the token
    /// would be longer than this sealer's own reader opens
    /// ([`Limits::max_token_len`](crate::Limits)) or than a browser keeps
    /// beside the cookie's name.
    fn effective_budget(&self, around_value: usize) -> usize {
        let max_token_len = self
            .limits
            .max_token_len()
            .min(MAX_NAME_VALUE_LEN.saturating_sub(self.cookie_name.len()));
        self.budget.min(around_value.saturating_add(max_token_len))
    }

    /// Whether a cookie under this sealer's name can hold even an empty
    /// session's token within the name and value browsers keep.
    pub(crate) fn name_leaves_room_for_a_token(&self) -> bool {
        self.cookie_name.len() + Self::empty_session_token_len() <= MAX_NAME_VALUE_LEN
    }

    /// The longest payload of a new empty session: its created-at is
    /// counted at its longest CBOR form, so that a budget checked while
    /// the clock reads little (a test clock, a device booting at the
    /// epoch) still holds later.
    fn empty_session_payload_len() -> usize {
        crate::payload::begin_len(u64::MAX, None, 0, 0)
    }

    fn empty_session_token_len() -> usize {
        base64_len(OVERHEAD + Self::empty_session_payload_len())
    }

    /// Refuses limits or a budget under which not even a new empty
    /// session's cookie can be set (it is longer than the deletion
    /// cookie): every save that sets a cookie would fail, whatever it
    /// dropped.
    pub(crate) fn check_room_for_an_empty_session(&self) -> Result<(), Error> {
        if Self::empty_session_payload_len() > self.limits.max_decompressed() {
            return Err(Error::LimitExceeded(Limit::DecompressedSize));
        }
        let token_len = Self::empty_session_token_len();
        if token_len > self.limits.max_token_len() {
            return Err(Error::LimitExceeded(Limit::TokenLength));
        }
        let needed = if self.name_leaves_room_for_a_token() {
            let max_age = match self.cookie.is_persistent() {
                true => self.policy.shortest_timeout().map(Duration::from_secs),
                false => None,
            };
            // An `Expires` date has the same length at any time.
            let around_value = self.cookie.set_cookie_at(&self.cookie_name, "", max_age, 0);
            header_len(&around_value) + token_len
        } else {
            // No session cookie helps under such a name (a rule of its
            // own, `InvalidCookie::NameTooLong`, which the HTTP layer
            // refuses), but a logout's deletion cookie still must fit.
            header_len(&self.removal)
        };
        match needed > self.budget {
            true => Err(Error::TooLarge {
                needed,
                budget: self.budget,
            }),
            false => Ok(()),
        }
    }

    /// Builds the header and marks the session saved; refuses (and leaves
    /// the session unsaved) if the header is over the effective budget,
    /// whatever the plan said.
    pub(crate) fn finish(
        &self,
        session: &mut Session,
        token: &str,
        now: u64,
    ) -> Result<SealedHeader, Error> {
        let max_age = self.max_age_at(session, now);
        let cookie = self
            .cookie
            .set_cookie_at(&self.cookie_name, token, max_age, now);
        let len = header_len(&cookie);
        let budget = self.effective_budget(len - token.len());
        if len > budget {
            return Err(Error::TooLarge {
                needed: len,
                budget,
            });
        }
        self.mark_saved(session, now);
        Ok(SealedHeader {
            cookie,
            len,
            budget,
        })
    }

    pub(crate) fn deletion(&self, session: &mut Session) -> Saved {
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
    /// dropping entries lowest priority first (critical ones never, nor the
    /// user entry a revocation check reads), and
    /// reports what was dropped. Dropped entries are removed from the
    /// session too, so it matches the cookie.
    ///
    /// This save does not reach the overflow store: entries that live
    /// there and were not loaded are dropped and reported, as only
    /// [`Sealer::save_async`] can renew, re-seal or rewrite their blob. Use
    /// `save_async` whenever a store is configured.
    ///
    /// Returns [`CookieAction::Unchanged`] when nothing needs saving and a
    /// deletion cookie after [`Session::flush`].
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] if the entries that may not be dropped do not
    /// fit, and [`Error::LimitExceeded`] if they are over
    /// [`Limits::max_decompressed`](crate::Limits::max_decompressed);
    /// [`StoreError::NeedsAsync`] for a session whose id was replaced
    /// ([`Session::flush`], [`Session::cycle_id`]) on a sealer with a
    /// revocation store, or one with an entry raised to critical while in
    /// the overflow blob (which only [`Sealer::save_async`] can load);
    /// [`ValueError::UserId`](crate::ValueError::UserId)
    /// if the revocation check's user entry is not a string, an integer, a
    /// byte string or null; [`Error::Random`] if the nonce cannot be drawn;
    /// [`Error::HeldByLayer`] for the session of a
    /// `http::LazySession`, which the layer saves.
    ///
    /// ```
    /// use sealed_session::{CookieAction, KeyRing, MasterKey, Priority, Sealer};
    /// let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?)).budget(600).build()?;
    /// let mut session = sealer.new_session()?;
    /// session.insert_with_priority("user", "ada", Priority::Critical)?;
    /// session.insert_with_priority("history", "x".repeat(1000), Priority::Low)?;
    /// let saved = sealer.save(&mut session)?;
    /// assert_eq!(saved.report.dropped[0].key, "history");
    /// assert!(saved.report.header_len <= 600);
    /// assert!(matches!(saved.action, CookieAction::Set(_)));
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    pub fn save(&self, session: &mut Session) -> Result<Saved, Error> {
        Self::check_not_held_by_layer(session)?;
        self.save_held(session)
    }

    /// What a save of `session` would report now, without saving it:
    /// the entries it would drop, those it would move to the overflow
    /// store, and the `Set-Cookie` header's length and budget. Nothing is
    /// sent, stored, logged or changed, so a handler can find out whether
    /// what it just stored will reach the client, and say so in this
    /// response (a cart that is full) rather than find it missing on the
    /// next request. It draws random bytes where a save would: nonces to
    /// measure a compressed token, and with an overflow store a blob
    /// reference when entries would move there.
    ///
    /// The report is of the session as it is now: anything stored after
    /// it, a message reporting it included ([`Session::push_flash`]),
    /// takes room and may make the save drop more. Ask last, or ask again
    /// after such a change until nothing new is dropped.
    ///
    /// Without an overflow store the report is the one [`Sealer::save`]
    /// or [`Sealer::save_async`] would give (`unrevoked` aside, which only
    /// a revocation store's write can set), for a session that needs a
    /// save; for one that needs none, an empty report, as a save's. One
    /// exception: a request that ran over a minute on a sealer with a
    /// revocation check, where `save_async` asks the check again and may
    /// save at the later time (a `Max-Age` a few seconds longer can lengthen
    /// the header by a byte). With
    /// a store it follows [`Sealer::save_async`] up to the store: it lists
    /// the entries that would leave the cookie now, and the header with
    /// the blob's reference. Not foreseen there: entries a save drops to
    /// keep the blob within
    /// [`Limits::max_decompressed`](crate::Limits::max_decompressed), the
    /// blob's entries a rewrite lists again, and, when even the list of
    /// moved keys does not fit, the save's dropping of entries after
    /// reading the blob (reported here as the drops of a save without the
    /// store: the blob's entries among them).
    ///
    /// ```
    /// use sealed_session::{KeyRing, MasterKey, Priority, Sealer};
    /// let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?)).budget(600).build()?;
    /// let mut session = sealer.new_session()?;
    /// session.insert_with_priority("user", "ada", Priority::Critical)?;
    /// session.insert_with_priority("cart", "sku-1,".repeat(200), Priority::Low)?;
    /// let preview = sealer.preview_save(&session)?;
    /// assert_eq!(preview.dropped_keys(), ["cart"]);
    /// assert!(session.contains("cart"), "nothing changed");
    /// let saved = sealer.save(&mut session)?;
    /// assert_eq!(saved.report, preview);
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Sealer::save`]'s: [`Error::TooLarge`] when the entries that may
    /// not be dropped do not fit, [`Error::LimitExceeded`] when they are
    /// over `max_decompressed`, [`ValueError::UserId`](crate::ValueError::UserId)
    /// when the revocation check's user entry is not a string, an integer,
    /// a byte string or null, [`Error::Random`] when a nonce or a blob
    /// reference cannot be drawn.
    pub fn preview_save(&self, session: &Session) -> Result<SaveReport, Error> {
        let mut report = SaveReport {
            dropped: session.dropped_unreported.clone(),
            budget: self.budget,
            ..SaveReport::default()
        };
        if session.should_delete_cookie() {
            report.header_len = header_len(&self.removal);
            return Ok(report);
        }
        if !session.needs_save() {
            return Ok(report);
        }
        // Every save refuses such a session before sealing it.
        self.check_user_id_entry(session)?;
        let now = self.save_time(session);
        let unloaded = session.unloaded_indices();
        // As the save with a store, the whole session first: when it fits,
        // nothing moves and no blob reference is drawn.
        if self.overflow_store.is_some() && unloaded.is_empty() {
            if let Ok(plan) = self.plan(session, None, now) {
                if plan.removed.is_empty() {
                    report.header_len = plan.header_len;
                    report.budget = plan.budget;
                    return Ok(report);
                }
            }
        }
        // With a store, the blob's entries stay referenced; a new blob
        // gets a fresh reference, whose bytes a compressed token measures.
        let reference = match (&self.overflow_store, session.overflow) {
            (None, _) => None,
            (Some(_), Some((sid, reference))) if sid == session.id => Some(reference),
            (Some(_), _) => {
                let mut fresh = [0u8; SESSION_ID_LEN];
                crate::random::fill_nonzero(&*self.random, &mut fresh)?;
                Some(fresh)
            }
        };
        let (plan, moves) = match self.plan(session, reference.as_ref(), now) {
            Ok(plan) => (plan, reference.is_some()),
            Err(Error::TooLarge { .. }) if reference.is_some() => {
                (self.plan(session, None, now)?, false)
            }
            Err(error) => return Err(error),
        };
        if !moves {
            report
                .dropped
                .extend(Self::removed_entries(session, &unloaded));
        }
        let removed = Self::removed_entries(session, &plan.removed);
        match moves {
            true => report.overflowed = removed,
            false => report.dropped.extend(removed),
        }
        report.header_len = plan.header_len;
        report.budget = plan.budget;
        Ok(report)
    }

    /// [`Sealer::save`], for a session held by the HTTP layer as well
    /// (the request saves: [`Sealer::save_request`]).
    pub(crate) fn save_held(&self, session: &mut Session) -> Result<Saved, Error> {
        // A session that needs no save is left as it is, whatever it holds.
        if session.needs_save() {
            self.check_sync_save(session)?;
        }
        let saved = self.save_unreported(session)?;
        Ok(Self::report_earlier_drops(session, saved))
    }

    /// Refuses a handler's save or seal of the session the HTTP layer
    /// holds: the layer's own save would then find nothing to do.
    pub(crate) fn check_not_held_by_layer(session: &Session) -> Result<(), Error> {
        match session.held_by_layer {
            true => Err(Error::HeldByLayer),
            false => Ok(()),
        }
    }

    /// The synchronous save and seal cannot write the revocation record of
    /// an id the session gave up, nor load the overflow blob: they refuse
    /// such a session, and one whose blob holds an entry raised to
    /// critical ([`Session::set_priority`]), which they would otherwise
    /// drop with the blob's other entries.
    pub(crate) fn check_sync_save(&self, session: &Session) -> Result<(), Error> {
        let gives_up_an_id = self.revocation_store.is_some() && session.replaced.is_some();
        let critical_in_blob = self.overflow_store.is_some()
            && session.entries.iter().any(|entry| {
                entry.priority == crate::Priority::Critical
                    && matches!(entry.value, Value::Overflowed)
            });
        match gives_up_an_id || critical_in_blob {
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
        let why = self.blob_not_kept(BlobNotKept::SynchronousSave);
        self.save_dropping(session, self.save_time(session), why)
    }

    /// Why a save drops a cookie's unloaded overflowed entries: this server
    /// has no store (another server of the deployment wrote the blob), or
    /// it has one that this save cannot reach (`unreachable`).
    pub(crate) fn blob_not_kept(&self, unreachable: BlobNotKept) -> BlobNotKept {
        match self.overflow_store {
            None => BlobNotKept::NoStore,
            Some(_) => unreachable,
        }
    }

    /// Saves without an overflow blob: unloaded overflowed entries are
    /// dropped (logged with `why`, and reported by this save or, if it
    /// fails, the next), and what does not fit is dropped in the budget's
    /// order. The session's blob reference is cleared once it is saved
    /// (a save that fails leaves it, for a later save to retire the blob);
    /// retiring the blob is the caller's.
    pub(crate) fn save_dropping(
        &self,
        session: &mut Session,
        now: u64,
        why: BlobNotKept,
    ) -> Result<Saved, Error> {
        // Gone from the session now: a save that fails after this must
        // leave them to the next one's report (which lists them first,
        // as this one's would).
        let unloaded = Self::drop_unloaded(session, why);
        session.dropped_unreported.extend(unloaded);
        if let Some(header) = self.seal_whole_if_fits(session, now)? {
            session.overflow = None;
            return Ok(self.set(header, Vec::new(), Vec::new()));
        }
        let plan = self.plan(session, None, now)?;
        let over_budget = Self::removed_entries(session, &plan.removed);
        let mut index = 0;
        session.entries.retain(|_| {
            index += 1;
            !plan.removed.contains(&(index - 1))
        });
        let token = self.seal_selected(session, None, None, now)?;
        let header = self.finish(session, &token, now)?;
        session.overflow = None;
        self.report_drops(&over_budget, &header, why);
        Ok(self.set(header, over_budget, Vec::new()))
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

    /// The result of a save that sends `header`.
    pub(crate) fn set(
        &self,
        header: SealedHeader,
        dropped: Vec<RemovedEntry>,
        overflowed: Vec<RemovedEntry>,
    ) -> Saved {
        Saved {
            action: CookieAction::Set(header.cookie),
            report: SaveReport {
                dropped,
                overflowed,
                header_len: header.len,
                budget: header.budget,
                ..SaveReport::default()
            },
        }
    }

    /// The common case first: the whole session, sealed once, fits. Returns
    /// `None` (and leaves the session unsaved) when it does not.
    pub(crate) fn seal_whole_if_fits(
        &self,
        session: &mut Session,
        now: u64,
    ) -> Result<Option<SealedHeader>, Error> {
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

    /// Logs the entries dropped in the budget's order: for the budget
    /// alone, or, on a server with a store (`why`), because no way of
    /// moving entries to the store left a cookie that fits.
    fn report_drops(&self, dropped: &[RemovedEntry], header: &SealedHeader, why: BlobNotKept) {
        if !dropped.is_empty() {
            let keys = crate::budget::keys_of(dropped);
            let cause = match why {
                BlobNotKept::ListOverBudget => why.cause(),
                _ => "over-budget",
            };
            tracing::warn!(
                event = "entries-dropped",
                cause,
                dropped = ?keys,
                header_len = header.len,
                budget = header.budget,
                "session entries dropped to fit the cookie budget"
            );
        }
    }

    /// Saves with the overflow store when one is configured (otherwise as
    /// [`Sealer::save`]): entries that do not fit are sealed, bound to the
    /// session id and a fresh reference, written to the store, and the
    /// cookie keeps the reference; the previous blob is retired (see
    /// below). If even moving every candidate leaves the header over budget
    /// (the list of moved keys is part of it), the blob's entries are loaded
    /// and the session is saved as [`Sealer::save`] does, dropping and
    /// reporting; so [`Error::TooLarge`] means, here too, that the entries
    /// that may not be dropped (the critical ones, and the user entry a
    /// revocation check reads) do not fit. A blob is kept within
    /// [`Limits::max_decompressed`](crate::Limits::max_decompressed), so
    /// that this server can read it back: when the moved entries exceed it
    /// together, the fewest of them are dropped (and reported), in the
    /// budget's order.
    ///
    /// A request that changed only cookie-resident entries makes one store
    /// call ([`OverflowStore::touch`](crate::store::OverflowStore::touch),
    /// to renew the blob's TTL; a store without it gets a rewrite of the
    /// blob instead); if the store cannot answer it, the save of a
    /// modified session succeeds all the same, and the blob lives by its
    /// own TTL (logged as `blob-not-renewed`), while a sliding refresh
    /// alone fails (the previous cookie stays valid). If a blob cannot
    /// be written the save fails with [`StoreError::Unavailable`] and the
    /// session is left as it was (keep the previous cookie), except that
    /// entries whose blob was found missing, or dropped to keep the new
    /// blob within `max_decompressed`, have been removed from it: they
    /// cannot come back (the previous cookie still lists them, and the
    /// next save from it drops and reports them; so does the next
    /// successful save of this session).
    ///
    /// With a revocation store, a save after [`Session::cycle_id`] then
    /// revokes the old id, and one after [`Session::flush`] (logout)
    /// revokes it first (see
    /// [`SealerBuilder::revocation_store`](crate::SealerBuilder::revocation_store)).
    ///
    /// Entries the cookie no longer references are deleted from the store
    /// at once after [`Session::flush`] or [`Session::cycle_id`]; after
    /// any other rewrite, with a store that implements
    /// [`OverflowStore::touch`](crate::store::OverflowStore::touch), they
    /// stay readable for a minute plus the clock skew, for requests still
    /// running from the previous cookie (a store without it deletes them at
    /// once; if the touch fails they keep their TTL).
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] and [`Error::LimitExceeded`] as [`Sealer::save`];
    /// [`ValueError::UserId`](crate::ValueError::UserId) if the revocation
    /// check's user entry is not a string, an integer, a byte string or
    /// null; [`Error::Random`] if a nonce or a new blob reference cannot be
    /// drawn. With an overflow store, also the
    /// store's errors writing or renewing a blob
    /// ([`StoreError::Unavailable`], [`StoreError::OverCapacity`]), and
    /// those of [`Sealer::load_overflow`] loading a blob it rewrites (a
    /// missing or rejected one only drops its entries, reported). A logout
    /// never fails. [`Error::HeldByLayer`] as [`Sealer::save`].
    pub async fn save_async(&self, session: &mut Session) -> Result<Saved, Error> {
        Self::check_not_held_by_layer(session)?;
        self.save_async_held(session).await
    }

    /// [`Sealer::save_async`], for a session held by the HTTP layer as
    /// well (the request saves: [`Sealer::save_request_async`]).
    pub(crate) async fn save_async_held(&self, session: &mut Session) -> Result<Saved, Error> {
        let replaced = session.replaced;
        // A logout revokes first: its save cannot fail, and if the save is
        // cancelled midway (the request dropped), the session is still
        // flushed and unsaved, so whoever finishes it revokes again (see
        // the HTTP layer), rather than the old cookie staying valid after
        // its overflow blob was deleted.
        let revoked_first = match session.should_delete_cookie() {
            true => Some(self.revoke_replaced(replaced).await),
            false => None,
        };
        // A flush followed by new entries revokes after the save, which
        // clears the flush: a request dropped before then must still show
        // the HTTP layer a logout to finish.
        session.revoking_after_save = match revoked_first.is_none() && session.flushed {
            true => replaced,
            false => None,
        };
        self.recheck_if_late(session).await;
        let saved = match self.overflow_store.as_deref() {
            Some(store) => self.save_with_store(store, session).await,
            None => self.save_unreported(session),
        };
        let mut saved = match saved {
            Ok(saved) => saved,
            Err(error) => {
                session.revoking_after_save = None;
                return Err(error);
            }
        };
        saved.report.unrevoked = match revoked_first {
            Some(unrevoked) => unrevoked,
            // Only after a save that succeeded: a failed one leaves the old
            // cookie in use, so it must stay valid.
            None => self.revoke_replaced(replaced).await,
        };
        session.revoking_after_save = None;
        Ok(Self::report_earlier_drops(session, saved))
    }

    /// Revokes the id of a cookie a save gave up (after a flush or
    /// `cycle_id`, or with a session the save emptied), with a revocation
    /// store; returns the store's error. A failure does not hold back the
    /// new cookie (or the deletion cookie of a logout): the browser must
    /// still drop the old one.
    pub(crate) async fn revoke_replaced(
        &self,
        replaced: Option<crate::SessionId>,
    ) -> Option<Error> {
        let (Some(store), Some(id)) = (&self.revocation_store, replaced) else {
            return None;
        };
        let keep_for = self.revocation_keep_for();
        let error = store.revoke_session(id, keep_for).await.err()?;
        tracing::error!(
            event = "revocation-failed",
            kind = error.kind(),
            error = %error,
            "could not revoke the session id of a cookie the save gave up; \
             copies of the old cookie stay valid until they expire"
        );
        Some(error)
    }
}

/// How many counts below "all of them" [`search_removals`] tries when
/// that is over budget.
const UNSHRINKING_TRIES: usize = 8;

/// The fewest first candidates whose removal brings the header within
/// `budget` (`len_without` measures), with that header's length and keep
/// flags. After "none out" it gallops from the end where the answer
/// likely is, then halves the interval: a measurement costs a seal of
/// what stays in the cookie. Beside a store (`most_leave`) it keeps 1, 2,
/// 4, … candidates until a count is over budget, so it seals little;
/// without one, where a big entry or two must go, it removes 1, 2, 4, …
/// until one fits. Compressed sizes nearly always shrink with each
/// removal; where they do not, this may remove more than the least
/// (FORMAT.md §14.3), never too few. When even all of them out is over
/// budget, the largest of the few counts below that fits, or all of
/// them and that length.
fn search_removals(
    candidates: usize,
    budget: usize,
    most_leave: bool,
    len_without: impl Fn(usize) -> Result<(usize, Vec<bool>), Error>,
) -> Result<(usize, usize, Vec<bool>), Error> {
    let (len, keep) = len_without(0)?;
    if len <= budget || candidates == 0 {
        return Ok((0, len, keep));
    }
    // `over` removed is known over budget, `fits` removed within it.
    let (mut over, mut fits, mut fits_len, mut fits_keep);
    if most_leave {
        let (len, keep) = len_without(candidates)?;
        if len > budget {
            return all_out_over_budget(candidates, budget, (len, keep), &len_without);
        }
        (over, fits, fits_len, fits_keep) = (0, candidates, len, keep);
        let mut kept = 1;
        while kept < candidates - over {
            let count = candidates - kept;
            let (len, keep) = len_without(count)?;
            if len > budget {
                over = count;
                break;
            }
            (fits, fits_len, fits_keep) = (count, len, keep);
            kept *= 2;
        }
    } else {
        over = 0;
        let mut count = 1;
        loop {
            let (len, keep) = len_without(count)?;
            if len <= budget {
                (fits, fits_len, fits_keep) = (count, len, keep);
                break;
            }
            if count == candidates {
                return all_out_over_budget(candidates, budget, (len, keep), &len_without);
            }
            over = count;
            count = (count * 2).min(candidates);
        }
    }
    while fits - over > 1 {
        let middle = over + (fits - over) / 2;
        let (len, keep) = len_without(middle)?;
        if len <= budget {
            (fits, fits_len, fits_keep) = (middle, len, keep);
        } else {
            over = middle;
        }
    }
    Ok((fits, fits_len, fits_keep))
}

/// Where sizes do not shrink with each removal, a count below all may fit
/// although all of them out does not: the few below are tried before
/// giving up (the loop without compression tries every count).
fn all_out_over_budget(
    candidates: usize,
    budget: usize,
    all_out: (usize, Vec<bool>),
    len_without: &impl Fn(usize) -> Result<(usize, Vec<bool>), Error>,
) -> Result<(usize, usize, Vec<bool>), Error> {
    for count in (1..candidates).rev().take(UNSHRINKING_TRIES) {
        let (len, keep) = len_without(count)?;
        if len <= budget {
            return Ok((count, len, keep));
        }
    }
    let (len, keep) = all_out;
    Ok((candidates, len, keep))
}

#[cfg(test)]
mod tests {
    use super::{base64_len, search_removals};
    use base64::Engine as _;
    use std::cell::Cell;

    /// Runs the search over `lens` (the header's length with 0, 1, …
    /// candidates out), counting the measurements.
    fn search_from(lens: &[usize], budget: usize, most_leave: bool) -> (usize, usize, usize) {
        let measured = Cell::new(0);
        let (count, len, keep) = search_removals(lens.len() - 1, budget, most_leave, |removed| {
            measured.set(measured.get() + 1);
            Ok((lens[removed], vec![true; removed]))
        })
        .unwrap();
        assert_eq!(keep.len(), count, "the flags of the count found");
        (count, len, measured.get())
    }

    /// Both ways of searching find the same count and length: that, and
    /// the larger number of measurements.
    fn search(lens: &[usize], budget: usize) -> (usize, usize, usize) {
        let (count, len, from_all) = search_from(lens, budget, true);
        let (other_count, other_len, from_none) = search_from(lens, budget, false);
        assert_eq!((count, len), (other_count, other_len), "budget {budget}");
        (count, len, from_all.max(from_none))
    }

    /// Without a store, where only the first candidate or two must go, a
    /// few measurements find them; from "all out" it would take ~20.
    #[test]
    fn the_removal_search_without_a_store_measures_few_for_few_removals() {
        let lens: Vec<usize> = (0..=1000).map(|removed| 5000 - removed * 4).collect();
        for (least, most) in [(1, 2), (2, 3), (3, 5)] {
            let (count, _, measured) = search_from(&lens, lens[least], false);
            assert_eq!(count, least);
            assert!(measured <= most, "{least}: {measured} measurements");
        }
        assert!(search_from(&lens, lens[1], true).2 > 10);
    }

    #[test]
    fn the_removal_search_finds_the_least_count_in_few_measurements() {
        // Lengths that shrink with every removal: 1000 candidates.
        let lens: Vec<usize> = (0..=1000).map(|removed| 5000 - removed * 4).collect();
        for least in [0, 1, 2, 3, 7, 8, 9, 500, 999, 1000] {
            let (count, len, measured) = search(&lens, lens[least]);
            assert_eq!((count, len), (least, lens[least]));
            assert!(measured <= 22, "{least}: {measured} measurements");
        }
        // Over budget with every candidate out: all of them, and that length.
        let (count, len, _) = search(&lens, 999);
        assert_eq!((count, len), (1000, 1000));
        assert_eq!(search(&[10], 5), (0, 10, 1));
    }

    /// Where most candidates leave (beside a store), the measurements after
    /// the first seal little: the candidates each keeps add up to a small
    /// multiple of what stays, not of all of them.
    #[test]
    fn the_removal_search_measures_mostly_what_stays() {
        let lens: Vec<usize> = (0..=1000).map(|removed| 5000 - removed * 4).collect();
        for least in [900, 990, 999] {
            let kept = Cell::new(0);
            let (count, _, _) = search_removals(1000, lens[least], true, |removed| {
                if removed > 0 {
                    kept.set(kept.get() + 1000 - removed);
                }
                Ok((lens[removed], Vec::new()))
            })
            .unwrap();
            assert_eq!(count, least);
            let stays = 1000 - least;
            assert!(kept.get() <= 10 * stays, "{least}: {} kept", kept.get());
        }
    }

    #[test]
    fn the_removal_search_tries_a_few_counts_below_all_before_giving_up() {
        // Every candidate out is over budget, but 9 out fit: found.
        let mut lens = vec![900; 11];
        lens[9] = 500;
        assert_eq!(search(&lens, 600).0, 9);
        // None and all 19 out are over, then 18 down to 11: 3 out, which
        // fits, is not found.
        let mut lens = vec![900; 20];
        lens[3] = 500;
        let (count, len, _) = search(&lens, 600);
        assert_eq!((count, len), (19, 900));
    }

    #[test]
    fn the_removal_search_never_removes_too_few() {
        // Lengths that grow here and there: whatever count it settles
        // on fits, and the one before it does not.
        let lens = [900, 880, 905, 850, 870, 800, 820, 700, 760, 650, 600];
        for budget in 600..=900 {
            for most_leave in [true, false] {
                let (count, len, _) = search_from(&lens, budget, most_leave);
                assert!(len <= budget && lens[count] == len, "{budget}");
                assert!(count == 0 || lens[count - 1] > budget, "{budget}");
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

    /// A cookie from another writer may list an overflowed entry as
    /// critical (FORMAT.md §11 allows any priority). Opened and left
    /// unchanged, it needs no save: the synchronous save leaves it as it is
    /// rather than refuse; `seal`, which always writes, still refuses.
    #[test]
    fn an_unchanged_session_with_a_critical_entry_in_its_blob_saves_synchronously() {
        use crate::clock::{Clock, FixedClock};
        use crate::error::StoreError;
        use crate::store::MemoryStore;
        use crate::{CookieAction, Error, KeyRing, MasterKey, Priority, Sealer};
        use std::sync::Arc;

        let clock = Arc::new(FixedClock::new(1_700_000_000));
        let sealer = Sealer::builder(KeyRing::new(MasterKey::from_bytes(&[7; 32]).unwrap()))
            .budget(600)
            .clock(clock.clone())
            .overflow_store(Arc::new(MemoryStore::with_clock(clock.clone())))
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut session = sealer.new_session().unwrap();
        session
            .insert_with_priority("user", "ada", Priority::Critical)
            .unwrap();
        let big = "x".repeat(2000);
        session
            .insert_with_priority("big", &big, Priority::Low)
            .unwrap();
        let saved = runtime.block_on(sealer.save_async(&mut session)).unwrap();
        let token = saved.action.cookie_value().unwrap().to_owned();
        // The other writer's cookie: the same, with `big` listed critical.
        let mut other = sealer.open(&token).unwrap();
        let index = other.position("big").unwrap();
        other.entries[index].priority = Priority::Critical;
        let reference = other.overflow.unwrap().1;
        let token = sealer
            .seal_selected(&other, None, Some(&reference), clock.now())
            .unwrap();

        let mut opened = sealer.open(&token).unwrap();
        assert!(opened.is_overflowed("big") && !opened.needs_save());
        let saved = sealer.save(&mut opened).unwrap();
        assert_eq!(saved.action, CookieAction::Unchanged);
        assert_eq!(opened.priority("big"), Some(Priority::Critical));
        assert_eq!(
            sealer.seal(&mut opened).unwrap_err(),
            Error::Store(StoreError::NeedsAsync)
        );
        // Changed, it needs the blob: the synchronous save refuses.
        opened.insert("seen", true).unwrap();
        assert_eq!(
            sealer.save(&mut opened).unwrap_err(),
            Error::Store(StoreError::NeedsAsync)
        );
        let saved = runtime.block_on(sealer.save_async(&mut opened)).unwrap();
        assert!(saved.report.dropped.is_empty(), "{:?}", saved.report);
    }
}
