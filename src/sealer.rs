//! The configured sealer: opens cookies into sessions and seals them back,
//! enforcing the time limits.

use core::time::Duration;
use std::sync::Arc;

use crate::clock::Clock;
use crate::cookie::{CookieSettings, DEFAULT_BUDGET};
use crate::error::{Expired, InvalidSetting, StoreError};
use crate::key::KeyRole;
use crate::payload::{self, PayloadWriter};
use crate::random::RandomSource;
use crate::session::{Bytes, Expiry, Session, SessionId, Value};
use crate::store::{OverflowStore, RevocationCheck, RevocationStore};
use crate::token::{self, Compression, CIPHERTEXT_OFFSET, OVERHEAD};
use crate::{Error, KeyRing, Limits};

/// Default idle timeout: two weeks, Django's `SESSION_COOKIE_AGE`.
pub const DEFAULT_MAX_IDLE: Duration = Duration::from_secs(14 * 24 * 3600);
/// Default absolute lifetime: 30 days.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default tolerated clock skew between servers: 60 seconds.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);
/// Default cookie name.
pub const DEFAULT_COOKIE_NAME: &str = "session";

/// The time limits, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TimePolicy {
    pub max_idle: Option<u64>,
    pub max_lifetime: Option<u64>,
    /// The idle timeout of sessions whose cookie ends with the browser
    /// ([`SealerBuilder::browser_session_max_idle`]).
    pub browser_session_max_idle: Option<u64>,
    /// Whether an [`Expiry::Default`] session's cookie ends with the
    /// browser (non-persistent cookie settings, or no timeout to give
    /// its `Max-Age`).
    pub default_is_browser_session: bool,
    pub clock_skew: u64,
    /// Fraction of the idle window after which a read-only session is
    /// re-sealed, in `[0, 1]` (1: never).
    pub refresh_fraction: f64,
}

impl TimePolicy {
    /// The session's idle timeout besides the sealer's: its own
    /// ([`Expiry::Idle`]), or for a session whose cookie ends with the
    /// browser, [`Self::browser_session_max_idle`].
    pub(crate) fn own_idle(&self, expiry: Expiry) -> Option<u64> {
        match expiry {
            Expiry::Idle(window) => Some(window.as_secs()),
            Expiry::BrowserSession => self.browser_session_max_idle,
            Expiry::Default if self.default_is_browser_session => self.browser_session_max_idle,
            Expiry::Default | Expiry::At(_) => None,
        }
    }

    /// Age (now − issued-at) from which a read-only session is re-sealed:
    /// a fraction of the shorter of the sealer's idle timeout and the
    /// session's own (`docs/FORMAT.md` §12). `None`: never.
    pub(crate) fn refresh_after(&self, own_idle: Option<u64>) -> Option<u64> {
        let window = self.max_idle.into_iter().chain(own_idle).min()?;
        // `as` saturates: a window near 2^64 cannot wrap.
        (self.refresh_fraction < 1.0).then_some((window as f64 * self.refresh_fraction) as u64)
    }

    /// The shorter of the idle timeout and the absolute lifetime: how long
    /// a new session's cookie can open. `None` without either.
    pub(crate) fn shortest_timeout(&self) -> Option<u64> {
        self.max_idle.into_iter().chain(self.max_lifetime).min()
    }

    /// A cookie's issued-at against the clock (`docs/FORMAT.md` §8): not
    /// further ahead than the clock skew, not older than the idle timeout.
    /// Returns its age.
    pub(crate) fn check_issued_at(&self, now: u64, issued_at: u64) -> Result<u64, Error> {
        if issued_at > now.saturating_add(self.clock_skew) {
            return Err(Error::IssuedInFuture);
        }
        let age = now.saturating_sub(issued_at);
        match self.max_idle {
            Some(max_idle) if age > max_idle => Err(Error::Expired(Expired::Idle)),
            _ => Ok(age),
        }
    }

    /// A session's created-at against the absolute lifetime.
    pub(crate) fn check_lifetime(&self, now: u64, created_at: u64) -> Result<(), Error> {
        match self.max_lifetime {
            Some(max_lifetime) if now.saturating_sub(created_at) > max_lifetime => {
                Err(Error::Expired(Expired::Lifetime))
            }
            _ => Ok(()),
        }
    }
}

/// Seals sessions into cookie values and opens them, under one key ring,
/// cookie name, set of limits and time policy.
///
/// Build one at start-up with [`Sealer::builder`] and share it (it is
/// `Send + Sync`; wrap it in an `Arc`).
///
/// ```
/// use std::time::Duration;
/// use sealed_session::{Compression, Error, FixedClock, KeyRing, MasterKey, Sealer};
/// use std::sync::Arc;
///
/// let clock = Arc::new(FixedClock::new(1_700_000_000));
/// let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?))
///     .cookie_name("app-session")
///     .max_idle(Duration::from_secs(3600))
///     .compression(Compression::Above(512))
///     .clock(clock.clone())
///     .build()?;
/// let mut session = sealer.new_session()?;
/// session.insert("cart", vec!["sku-1", "sku-2"])?;
/// let cookie = sealer.seal(&mut session)?;
///
/// clock.advance(3601);
/// assert_eq!(sealer.open(&cookie).unwrap_err(), Error::Expired(sealed_session::Expired::Idle));
/// # Ok::<(), Error>(())
/// ```
pub struct Sealer {
    /// Shared, so that the HTTP layer's sealers for several cookie domains
    /// hold one copy of the keys.
    pub(crate) ring: Arc<KeyRing>,
    pub(crate) cookie_name: String,
    pub(crate) limits: Limits,
    pub(crate) policy: TimePolicy,
    pub(crate) compression: Compression,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn RandomSource>,
    pub(crate) cookie: CookieSettings,
    pub(crate) budget: usize,
    pub(crate) overflow_store: Option<Arc<dyn OverflowStore>>,
    pub(crate) revocation: Option<Arc<dyn RevocationCheck>>,
    /// Set by [`SealerBuilder::revocation_store`]: ids replaced by a flush
    /// or a new id are recorded here.
    pub(crate) revocation_store: Option<Arc<dyn RevocationStore>>,
    pub(crate) user_key: Option<String>,
    pub(crate) max_cookies_tried: usize,
    /// The deletion cookie string (constant: built once, at `build`).
    pub(crate) removal: String,
    /// The name cookies had before this one, opened when no cookie of
    /// this name does, and its deletion cookie
    /// ([`SealerBuilder::previous_cookie_name`]).
    pub(crate) previous: Option<(String, String)>,
    /// The previous cookie's own settings, when they are not this
    /// sealer's ([`SealerBuilder::previous_cookie`]).
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    previous_settings: Option<CookieSettings>,
    /// Spaces out the WARNs for cookies held back by a store out of reach.
    pub(crate) store_refusals: Arc<crate::request::StoreRefusals>,
}

impl core::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sealer")
            .field("ring", &self.ring)
            .field("cookie_name", &self.cookie_name)
            .field("limits", &self.limits)
            .field("policy", &self.policy)
            .field("compression", &self.compression)
            .field("cookie", &self.cookie)
            .field("budget", &self.budget)
            .field("overflow_store", &self.overflow_store.is_some())
            .field("revocation", &self.revocation.is_some())
            .field("revocation_store", &self.revocation_store.is_some())
            .field("max_cookies_tried", &self.max_cookies_tried)
            .field("previous_cookie_name", &self.previous_cookie_name())
            .finish_non_exhaustive()
    }
}

/// Key ids and settings, as [`Sealer`]'s `Debug`: no key material.
impl core::fmt::Debug for SealerBuilder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SealerBuilder")
            .field("ring", &self.ring)
            .field("cookie_name", &self.cookie_name)
            .field("limits", &self.limits)
            .field("max_idle", &self.max_idle)
            .field("max_lifetime", &self.max_lifetime)
            .field("browser_session_max_idle", &self.browser_session_max_idle)
            .field("clock_skew", &self.clock_skew)
            .field("refresh_fraction", &self.refresh_fraction)
            .field("compression", &self.compression)
            .field("cookie", &self.cookie)
            .field("budget", &self.budget)
            .field("overflow_store", &self.overflow_store.is_some())
            .field("revocation", &self.revocation.is_some())
            .field("revocation_store", &self.revocation_store.is_some())
            .field("user_key", &self.user_key)
            .field("max_cookies_tried", &self.max_cookies_tried)
            .field("previous_cookie", &self.previous_cookie)
            .finish_non_exhaustive()
    }
}

/// Configures a [`Sealer`]; every method takes and returns `self`.
#[must_use]
pub struct SealerBuilder {
    ring: KeyRing,
    cookie_name: String,
    limits: Limits,
    max_idle: Option<Duration>,
    max_lifetime: Option<Duration>,
    browser_session_max_idle: Option<Duration>,
    clock_skew: Duration,
    refresh_fraction: f64,
    compression: Compression,
    clock: Option<Arc<dyn Clock>>,
    random: Option<Arc<dyn RandomSource>>,
    cookie: CookieSettings,
    budget: usize,
    overflow_store: Option<Arc<dyn OverflowStore>>,
    revocation: Option<Arc<dyn RevocationCheck>>,
    revocation_store: Option<Arc<dyn RevocationStore>>,
    user_key: Option<String>,
    max_cookies_tried: usize,
    /// The previous name, and the old cookie's settings when they were
    /// not this sealer's (its path and domain, for its deletion).
    previous_cookie: Option<(String, Option<CookieSettings>)>,
}

impl Sealer {
    /// Starts configuring a sealer with this key ring and the defaults:
    /// cookie name `session`, idle timeout two weeks, absolute lifetime 30
    /// days, clock skew 60 s, sliding refresh after half the idle window,
    /// compression off, [`Limits::default`], secure cookie attributes
    /// ([`CookieSettings::default`]), a 4096-byte `Set-Cookie` budget, no
    /// overflow store, no revocation check, the system clock and the OS
    /// random generator (on `wasm32-unknown-unknown`, which has neither,
    /// the host gives both: [`SealerBuilder::clock`],
    /// [`SealerBuilder::random`]).
    pub fn builder(ring: KeyRing) -> SealerBuilder {
        SealerBuilder {
            ring,
            cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
            limits: Limits::default(),
            max_idle: Some(DEFAULT_MAX_IDLE),
            max_lifetime: Some(DEFAULT_MAX_LIFETIME),
            browser_session_max_idle: None,
            clock_skew: DEFAULT_CLOCK_SKEW,
            refresh_fraction: 0.5,
            compression: Compression::Off,
            clock: None,
            random: None,
            cookie: CookieSettings::default(),
            budget: DEFAULT_BUDGET,
            overflow_store: None,
            revocation: None,
            revocation_store: None,
            user_key: None,
            max_cookies_tried: crate::request::DEFAULT_MAX_COOKIES_TRIED,
            previous_cookie: None,
        }
    }
}

impl SealerBuilder {
    /// The cookie name, bound into every token: a token sealed for one
    /// name does not open under another.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// Resource limits for opening.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// A session not re-sealed for this long is expired (checked against
    /// the token's issued-at). Like every duration of the time policy it
    /// counts in whole seconds, rounded up (the token's times are seconds).
    /// Zero is refused by [`SealerBuilder::build`]
    /// ([`InvalidSetting`](crate::InvalidSetting)); for no idle timeout,
    /// [`SealerBuilder::no_idle_timeout`]. Browsers keep a cookie at most
    /// 400 days whatever its `Max-Age` (RFC 6265bis): a longer window
    /// lasts that long in a persistent cookie. The absolute lifetime
    /// ([`SealerBuilder::max_lifetime`], 30 days by default) still ends a
    /// session: for a "remember me" longer than that, raise it too (an idle
    /// timeout longer than the lifetime is logged at `WARN` when the sealer
    /// is built: event `idle-timeout-beyond-lifetime`).
    pub fn max_idle(mut self, max_idle: Duration) -> Self {
        self.max_idle = Some(max_idle);
        self
    }

    /// No idle timeout (not recommended: a stolen cookie then lives as long
    /// as the absolute lifetime).
    pub fn no_idle_timeout(mut self) -> Self {
        self.max_idle = None;
        self
    }

    /// A session older than this (since created-at) is expired, however
    /// active. Zero is refused by [`SealerBuilder::build`], as for
    /// [`SealerBuilder::max_idle`].
    pub fn max_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.max_lifetime = Some(max_lifetime);
        self
    }

    /// No absolute lifetime.
    pub fn no_max_lifetime(mut self) -> Self {
        self.max_lifetime = None;
        self
    }

    /// An idle timeout of its own for sessions whose cookie ends when the
    /// browser closes ([`Expiry::BrowserSession`], or
    /// [`Expiry::Default`] when the cookie settings are not persistent),
    /// besides [`SealerBuilder::max_idle`]: so that "remember me" can
    /// keep the long idle timeout while a copy of an ordinary login's
    /// cookie, left behind on a shared computer or stolen, stops opening
    /// soon after its last use. A browser cannot be trusted to drop the
    /// cookie (many restore sessions on restart); the server then ends it.
    /// The sliding refresh follows the shorter window. Whole seconds, as
    /// [`SealerBuilder::max_idle`]; zero is refused by
    /// [`SealerBuilder::build`]. Default: none (Django and Rails apply
    /// their one idle timeout to every session).
    ///
    /// ```
    /// use std::time::Duration;
    /// use sealed_session::{KeyRing, MasterKey, Sealer};
    ///
    /// let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?))
    ///     .max_idle(Duration::from_secs(30 * 24 * 3600)) // "remember me"
    ///     .browser_session_max_idle(Duration::from_secs(2 * 3600))
    ///     .build()?;
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    pub fn browser_session_max_idle(mut self, max_idle: Duration) -> Self {
        self.browser_session_max_idle = Some(max_idle);
        self
    }

    /// How far in the future an issued-at may be (servers' clocks differ).
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// Fraction of the idle window after which a session that was only read
    /// is re-sealed anyway (default 0.5; clamped to 0..=1, NaN taken as 1;
    /// 1 disables the refresh).
    pub fn refresh_fraction(mut self, fraction: f64) -> Self {
        self.refresh_fraction = if fraction.is_nan() {
            1.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// Whether and from which size to compress (see [`Compression`]).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// The time source (the system clock by default).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The random source for nonces and session ids (the OS by default).
    pub fn random(mut self, random: Arc<dyn RandomSource>) -> Self {
        self.random = Some(random);
        self
    }

    /// Attributes of the cookie (path, domain, SameSite, …).
    pub fn cookie_settings(mut self, settings: CookieSettings) -> Self {
        self.cookie = settings;
        self
    }

    /// Most bytes the whole `Set-Cookie` header may take (default 4096).
    /// Saving drops (or moves to the overflow store) low-priority entries
    /// to stay within it, and never emits a larger header. It must hold at
    /// least a new empty session's cookie (195 bytes with the default name
    /// and attributes, counting the created-at at its longest), or [`SealerBuilder::build`] fails with
    /// [`Error::TooLarge`]: a session whose entries may all be dropped
    /// then saves, unless its own expiry ([`Session::set_expiry`]) adds
    /// the few bytes of its time and `Max-Age`; a logout always does.
    /// The token also stays within
    /// [`Limits::max_token_len`](crate::Limits::max_token_len) (default
    /// 4096), which every server reading the cookie enforces, and the
    /// cookie's name and value together within 4096 bytes, beyond which
    /// browsers ignore a cookie (RFC 6265bis): a budget above 4096 plus the
    /// header's attributes saves no more into the cookie.
    pub fn budget(mut self, bytes: usize) -> Self {
        self.budget = bytes;
        self
    }

    /// A server-side store for entries that do not fit; used by
    /// [`Sealer::save_async`].
    pub fn overflow_store(mut self, store: Arc<dyn OverflowStore>) -> Self {
        self.overflow_store = Some(store);
        self
    }

    /// A revocation check consulted by [`Sealer::open_async`] (the plain
    /// [`Sealer::open`] then refuses, as it cannot consult it); `user_key`
    /// names the entry holding the user id, passed to the check for "log
    /// out everywhere": a string, a 64-bit integer (passed in decimal), or a byte
    /// string (passed as a hyphenated lower-case UUID if it has 16 bytes,
    /// as a `uuid::Uuid` does, since values are stored in CBOR's compact,
    /// not human-readable, form; otherwise in lower-case hex). An
    /// absent or null entry means no user; an overflowed one is loaded
    /// first; any other value (a struct, say) fails the open
    /// ([`ValueError::UserId`](crate::ValueError::UserId)), as a check that
    /// cannot run must not pass, and so fails a save or seal that would
    /// write it into the cookie. Saves keep that entry in the
    /// cookie whatever its priority, as if it were
    /// [`Priority::Critical`](crate::Priority::Critical): never dropped,
    /// never moved to the overflow store, where it could go missing. (So a
    /// user value too large for the budget fails the save with
    /// [`Error::TooLarge`] rather than being dropped.)
    ///
    /// A sealer has one revocation source: this replaces an earlier
    /// [`Self::revocation_store`] (whose revoking on `flush` and `cycle_id`
    /// then stops), and the other way round.
    pub fn revocation(mut self, check: Arc<dyn RevocationCheck>, user_key: Option<&str>) -> Self {
        self.revocation = Some(check);
        self.revocation_store = None;
        self.user_key = user_key.map(str::to_owned);
        self
    }

    /// As [`Self::revocation`], with a store that also records
    /// revocations; then an id a session gives up is revoked, as Django's
    /// `flush` and `cycle_key` delete the old server-side record: after
    /// [`Session::flush`] (logout) or [`Session::cycle_id`] (login) of a
    /// session that a cookie carried, [`Sealer::save_async`] records its
    /// old id as revoked, so that a copy of that cookie no longer opens.
    /// [`Sealer::save_request_async`] (and the axum layer) does the same
    /// when it deletes the cookie of a session the request emptied, and
    /// for a logout while the store could not check the request's cookie
    /// ([`RequestSession::held_back_by`](crate::RequestSession::held_back_by)).
    /// Removing entries (the user's included) from a session that keeps
    /// others revokes nothing: the copies keep them; log out with `flush`.
    /// With a `user_key`, an id is revoked only if the cookie that carried
    /// it had that entry: a copy of an anonymous cookie acts as no user,
    /// and a record per anonymous logout or login would let any client
    /// fill the store (without a `user_key` every given-up id is revoked).
    /// After `cycle_id` it does so once the save has succeeded: a save
    /// that fails leaves the old cookie in use, and valid. A logout's save
    /// cannot fail, and revokes before anything else (before deleting an
    /// overflow blob), so that a save cancelled midway leaves the session
    /// still flushed, for whoever finishes it (the axum layer does, on a
    /// task of its own, when the request is dropped). If the store cannot
    /// record it, the save still succeeds (a logout's deletion cookie must
    /// reach the browser) and its report says so
    /// ([`SaveReport::unrevoked`](crate::SaveReport::unrevoked), also
    /// logged at `ERROR`). The record is kept for
    /// [`Sealer::revocation_ttl`] and a minute more, for requests that
    /// opened the session before and may still re-seal it. The crate's
    /// stores keep a record at most 100 years: [`SealerBuilder::build`]
    /// refuses a revocation store unless an idle timeout or absolute
    /// lifetime ends every cookie before that
    /// ([`InvalidSetting::SessionsOutliveRevocations`](crate::InvalidSetting::SessionsOutliveRevocations)).
    /// [`Sealer::save`]
    /// and [`Sealer::seal`] refuse such a session
    /// ([`StoreError::NeedsAsync`](crate::StoreError::NeedsAsync)).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sealed_session::{store::MemoryRevocations, CookieAction, KeyRing, MasterKey, Sealer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sealed_session::Error> {
    /// let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?))
    ///     .revocation_store(Arc::new(MemoryRevocations::new()), Some("user_id"))
    ///     .build()?;
    /// let mut session = sealer.new_session()?;
    /// session.insert("user_id", 42u64)?;
    /// let cookie = sealer.seal(&mut session)?;
    ///
    /// let mut copy = sealer.open_async(&cookie).await?;
    /// copy.flush()?; // logout
    /// let logout = sealer.save_async(&mut copy).await?;
    /// assert!(matches!(logout.action, CookieAction::Delete(_))); // send it
    /// assert_eq!(sealer.open_async(&cookie).await.unwrap_err().kind(), "revoked");
    /// # Ok(())
    /// # }
    /// ```
    pub fn revocation_store(
        mut self,
        store: Arc<dyn RevocationStore>,
        user_key: Option<&str>,
    ) -> Self {
        self.revocation = Some(store.clone());
        self.revocation_store = Some(store);
        self.user_key = user_key.map(str::to_owned);
        self
    }

    /// How many cookies with the session's name
    /// [`Sealer::open_request`] tries, in order, before giving up and
    /// starting a fresh session (default 4, at least 1): it bounds the work
    /// one request can cause (`docs/FORMAT.md` §14.4).
    pub fn max_cookies_tried(mut self, count: usize) -> Self {
        self.max_cookies_tried = count.max(1);
        self
    }

    /// The name the session cookie had before [`Self::cookie_name`], for
    /// a rename (to add the `__Host-` prefix, say) that logs no one out.
    /// A request that carries no cookie of the current name (none at all:
    /// one this server cannot open may be newer, sealed under a key it does
    /// not know yet) has its cookies of the previous name tried (tokens bound to that
    /// name, by the same key ring and rules, `docs/FORMAT.md` §14.4); a
    /// session opened from one is re-sealed under the current name when
    /// saved ([`RequestSession::opened_from_previous_name`]). The HTTP
    /// layer deletes a cookie of the previous name whenever the request
    /// carried one and the response sets or deletes the session cookie, so
    /// that a logout leaves no old cookie to open the next request, and
    /// deletes one that was the request's only candidate and can never
    /// open ([`RequestSession::previous_cookie_rejected_for_good`]).
    ///
    /// The deletion carries this sealer's path and domain: give the
    /// previous name so only when the old cookie had the same ones (the
    /// defaults, `Path=/` and no `Domain`, which a `__Host-` name keeps),
    /// and [`Self::previous_cookie`] with the old cookie's settings when it
    /// had others. A deletion with the wrong path or domain deletes
    /// nothing: the old cookie stays in the browser, and while this is set
    /// it opens whenever no current cookie does, after a logout too
    /// (unless a revocation store revoked its id); one that can never open
    /// (tampered, expired) is deleted again, in vain, in every response
    /// that opens the session while it is the request's only candidate,
    /// each then `Cache-Control: private`.
    ///
    /// The name must differ from the current one
    /// ([`InvalidSetting::PreviousNameIsCurrent`] otherwise): a request
    /// carries no path or domain with its cookies, so an old cookie of the
    /// current name cannot be told from the new one.
    ///
    /// Keep it only for the rename's transition (the idle timeout, say):
    /// a cookie under the old name has none of the new name's protection
    /// (a `__Host-` name's, against cookies planted by sibling hosts),
    /// and while this is set, a request without a current cookie accepts
    /// one.
    ///
    /// [`RequestSession::opened_from_previous_name`]: crate::RequestSession::opened_from_previous_name
    /// [`RequestSession::previous_cookie_rejected_for_good`]: crate::RequestSession::previous_cookie_rejected_for_good
    pub fn previous_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.previous_cookie = Some((name.into(), None));
        self
    }

    /// As [`Self::previous_cookie_name`], for an old cookie whose path or
    /// domain differed from this sealer's ([`Self::cookie_settings`]):
    /// its deletion carries `settings`' path and domain (and its `Secure`,
    /// which a `__Host-` or `__Secure-` name needs), so that it reaches
    /// the old cookie. Only the deletion uses them: browsers send no
    /// attributes with a cookie, and a session opened from the old cookie
    /// is re-sealed under the current name and settings.
    ///
    /// When the new path is wider than the old (`/shop` to `/`), a request
    /// outside the old path carries no old cookie. If it starts a session
    /// that sets a cookie (a CSRF token, a one-time message), that session
    /// is the user's from then on: a cookie of the current name keeps the
    /// old one from being tried, and the old one is deleted on the user's
    /// next visit under the old path. That user starts over once, as
    /// without this setting. A site that sets no cookie for anonymous
    /// pages outside the old path carries every session over.
    ///
    /// ```
    /// use sealed_session::{CookieSettings, KeyRing, MasterKey, Sealer};
    /// # let ring = KeyRing::new(MasterKey::generate()?);
    /// // Was `app_session=…; Path=/app; Domain=example.com`, now
    /// // `__Host-session=…; Path=/`.
    /// let old = CookieSettings::default().with_path("/app").with_domain("example.com");
    /// let sealer = Sealer::builder(ring)
    ///     .cookie_name("__Host-session")
    ///     .previous_cookie("app_session", old)
    ///     .build()?;
    /// let removal = sealer.previous_cookie_removal().unwrap();
    /// assert!(removal.starts_with("app_session=;"));
    /// assert!(removal.contains("Path=/app") && removal.contains("Domain=example.com"));
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    pub fn previous_cookie(mut self, name: impl Into<String>, settings: CookieSettings) -> Self {
        self.previous_cookie = Some((name.into(), Some(settings)));
        self
    }

    /// Builds the sealer.
    ///
    /// # Errors
    ///
    /// On `wasm32-unknown-unknown` a clock and a random
    /// source must have been supplied ([`Error::NoClock`] and
    /// [`Error::Random`] otherwise). A
    /// budget too small for a new empty session's cookie fails with
    /// [`Error::TooLarge`], limits too small for its token or payload with
    /// [`Error::LimitExceeded`], a zero idle timeout or lifetime, and a
    /// revocation store with no timeout under 100 years (its records would
    /// end before the cookies they revoke), and a previous cookie name
    /// equal to the current one, with
    /// [`Error::InvalidSetting`], and a cookie name, path or domain that
    /// cannot be sent (or would never come back) with
    /// [`Error::InvalidCookie`]. A name too long to leave room
    /// for any session cookie browsers would keep is accepted (tokens
    /// bound to it can be sealed and opened outside cookies), and each
    /// save that would set a cookie under it fails with
    /// [`Error::TooLarge`]; the HTTP layer's builder
    /// (`http::SessionLayerBuilder::build`) refuses it.
    pub fn build(self) -> Result<Sealer, Error> {
        self.cookie
            .check(&self.cookie_name)
            .map_err(Error::InvalidCookie)?;
        if self.max_idle == Some(Duration::ZERO)
            || self.browser_session_max_idle == Some(Duration::ZERO)
        {
            return Err(Error::InvalidSetting(InvalidSetting::ZeroIdleTimeout));
        }
        if self.max_lifetime == Some(Duration::ZERO) {
            return Err(Error::InvalidSetting(InvalidSetting::ZeroLifetime));
        }
        if let (Some(max_idle), Some(max_lifetime)) = (self.max_idle, self.max_lifetime) {
            // Allowed (a lifetime shortened for a while, say), but a longer
            // idle timeout alone never ends a session: likely a "remember
            // me" whose lifetime was left at the default.
            if max_idle > max_lifetime {
                tracing::warn!(
                    event = "idle-timeout-beyond-lifetime",
                    max_idle_secs = whole_seconds(max_idle),
                    max_lifetime_secs = whole_seconds(max_lifetime),
                    "sessions end at the absolute lifetime, before the idle timeout"
                );
            }
        }
        self.cookie.warn_overridden(&self.cookie_name);
        let removal = self.cookie.removal(&self.cookie_name);
        let previous_settings = self.previous_cookie.as_ref().and_then(|(_, s)| s.clone());
        let previous = match self.previous_cookie {
            // The same name twice would try each cookie twice, and its
            // deletion could not tell the old cookie from the new one.
            Some((name, _)) if name == self.cookie_name => {
                return Err(Error::InvalidSetting(InvalidSetting::PreviousNameIsCurrent))
            }
            Some((name, settings)) => {
                let settings = settings.as_ref().unwrap_or(&self.cookie);
                settings.check(&name).map_err(Error::InvalidCookie)?;
                let removal = settings.removal(&name);
                Some((name, removal))
            }
            None => None,
        };
        let clock = match self.clock {
            Some(clock) => clock,
            None => crate::clock::default_clock().ok_or(Error::NoClock)?,
        };
        let random = match self.random {
            Some(random) => random,
            None => crate::random::default_source().ok_or(Error::Random)?,
        };
        let max_idle = self.max_idle.map(whole_seconds);
        let sealer = Sealer {
            ring: Arc::new(self.ring),
            cookie_name: self.cookie_name,
            limits: self.limits,
            policy: TimePolicy {
                max_idle,
                max_lifetime: self.max_lifetime.map(whole_seconds),
                browser_session_max_idle: self.browser_session_max_idle.map(whole_seconds),
                default_is_browser_session: !self.cookie.is_persistent()
                    || (self.max_idle.is_none() && self.max_lifetime.is_none()),
                clock_skew: whole_seconds(self.clock_skew),
                refresh_fraction: self.refresh_fraction,
            },
            compression: self.compression,
            clock,
            random,
            cookie: self.cookie,
            budget: self.budget,
            overflow_store: self.overflow_store,
            revocation: self.revocation,
            revocation_store: self.revocation_store,
            user_key: self.user_key,
            max_cookies_tried: self.max_cookies_tried,
            removal,
            previous,
            previous_settings,
            store_refusals: Arc::default(),
        };
        sealer.check_room_for_an_empty_session()?;
        if sealer.revocation_store.is_some() && !sealer.revocations_outlive_cookies() {
            return Err(Error::InvalidSetting(
                InvalidSetting::SessionsOutliveRevocations,
            ));
        }
        Ok(sealer)
    }
}

impl Sealer {
    /// This sealer with the cookie's `Domain` attribute set to `domain`
    /// (the HTTP layer's per-host domains), sharing its keys and stores.
    /// Checked as [`SealerBuilder::build`] checks the cookie settings and
    /// the budget.
    #[cfg(feature = "axum")]
    pub(crate) fn with_cookie_domain(&self, domain: &str) -> Result<Sealer, Error> {
        let cookie = self.cookie.clone().with_domain(domain);
        cookie
            .check(&self.cookie_name)
            .map_err(Error::InvalidCookie)?;
        // A previous cookie without settings of its own had this sealer's,
        // so its deletion carries the new domain too.
        let previous = self.previous.as_ref().map(|(name, removal)| {
            let removal = match &self.previous_settings {
                Some(_) => removal.clone(),
                None => cookie.removal(name),
            };
            (name.clone(), removal)
        });
        let sealer = Sealer {
            ring: Arc::clone(&self.ring),
            cookie_name: self.cookie_name.clone(),
            limits: self.limits,
            policy: self.policy,
            compression: self.compression,
            clock: Arc::clone(&self.clock),
            random: Arc::clone(&self.random),
            removal: cookie.removal(&self.cookie_name),
            cookie,
            budget: self.budget,
            overflow_store: self.overflow_store.clone(),
            revocation: self.revocation.clone(),
            revocation_store: self.revocation_store.clone(),
            user_key: self.user_key.clone(),
            max_cookies_tried: self.max_cookies_tried,
            previous,
            previous_settings: self.previous_settings.clone(),
            store_refusals: Arc::clone(&self.store_refusals),
        };
        sealer.check_room_for_an_empty_session()?;
        Ok(sealer)
    }

    /// How long a revocation record must be kept for every cookie this
    /// sealer has issued up to now to stay revoked: the shorter of the
    /// idle timeout and the absolute lifetime, plus the clock skew (a
    /// cookie's times may be that far in this server's future) and a
    /// second. A revoked session is never re-sealed, so after that it is
    /// expired anyway. `None` when the sealer has neither limit: then only
    /// a session's own expiry ends it, and the record must stay until then.
    ///
    /// A request that opened the session before the revocation and saves
    /// it after re-seals it with a later issued-at: with a revocation
    /// check, no later than a minute after the check last passed for it
    /// (or it began). An asynchronous save later than that asks the check
    /// again and, if it passes, saves at the real time; otherwise (the
    /// check refuses the session or cannot answer, or the request ran
    /// about as long as a record is kept) the cookie is dated back. So add
    /// a minute, as the crate's own revocations (after a
    /// `flush` or `cycle_id`, and `log_out_*`) do.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sealed_session::{KeyRing, MasterKey, Sealer};
    /// let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?))
    ///     .max_idle(Duration::from_secs(3600))
    ///     .clock_skew(Duration::from_secs(60))
    ///     .build()?;
    /// assert_eq!(sealer.revocation_ttl(), Some(Duration::from_secs(3661)));
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    pub fn revocation_ttl(&self) -> Option<Duration> {
        Some(self.open_window(self.policy.shortest_timeout()?))
    }

    /// Whether a revocation record, kept as long as any cookie issued up
    /// to now can open and a running request may re-seal it, fits in the
    /// longest time a store keeps one.
    pub(crate) fn revocations_outlive_cookies(&self) -> bool {
        self.revocation_ttl().is_some() && self.revocation_keep_for() <= crate::store::MAX_TTL
    }

    /// How long something must outlive a cookie that can open for `secs`
    /// more seconds: those, plus the clock skew (a cookie's issued-at may
    /// be that far ahead), plus one (a cookie still opens at an age of
    /// exactly `max_idle`, and a store keeps a record only while its end
    /// is after now).
    pub(crate) fn open_window(&self, secs: u64) -> Duration {
        Duration::from_secs(
            secs.saturating_add(self.policy.clock_skew)
                .saturating_add(1),
        )
    }

    /// The cookie name tokens are bound to.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// The name cookies had before [`Sealer::cookie_name`], if one was
    /// given ([`SealerBuilder::previous_cookie_name`]).
    pub fn previous_cookie_name(&self) -> Option<&str> {
        self.previous.as_ref().map(|(name, _)| name.as_str())
    }

    /// The `Set-Cookie` value that deletes the cookie of the previous
    /// name: send it beside the session cookie (or its deletion) when the
    /// request carried a cookie of the previous name
    /// ([`cookie_values`](crate::cookie_values) finds one), as the HTTP
    /// layer does; otherwise a logout leaves the old cookie to open the
    /// next request. Send it alone when
    /// [`RequestSession::previous_cookie_rejected_for_good`](crate::RequestSession::previous_cookie_rejected_for_good).
    /// [`Sealer::set_cookie_headers`] applies these rules.
    pub fn previous_cookie_removal(&self) -> Option<&str> {
        self.previous.as_ref().map(|(_, removal)| removal.as_str())
    }

    /// The key ring.
    pub fn key_ring(&self) -> &KeyRing {
        &self.ring
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The compression policy.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The idle timeout, if any.
    pub fn max_idle(&self) -> Option<Duration> {
        self.policy.max_idle.map(Duration::from_secs)
    }

    /// The absolute lifetime, if any.
    pub fn max_lifetime(&self) -> Option<Duration> {
        self.policy.max_lifetime.map(Duration::from_secs)
    }

    /// How far in the future an issued-at may be.
    pub fn clock_skew(&self) -> Duration {
        Duration::from_secs(self.policy.clock_skew)
    }

    /// The fraction of the idle window after which a read-only session is
    /// re-sealed (see [`SealerBuilder::refresh_fraction`]).
    pub fn refresh_fraction(&self) -> f64 {
        self.policy.refresh_fraction
    }

    /// How many cookies with the session's name a request may have opened
    /// (see [`SealerBuilder::max_cookies_tried`]).
    pub fn max_cookies_tried(&self) -> usize {
        self.max_cookies_tried
    }

    /// The idle timeout of sessions whose cookie ends with the browser
    /// ([`SealerBuilder::browser_session_max_idle`]), if any.
    pub fn browser_session_max_idle(&self) -> Option<Duration> {
        self.policy
            .browser_session_max_idle
            .map(Duration::from_secs)
    }

    /// The current time by the configured clock.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// A new, empty session with a fresh random id, created now.
    ///
    /// # Errors
    ///
    /// [`Error::Random`] if the id cannot be drawn.
    pub fn new_session(&self) -> Result<Session, Error> {
        let now = self.clock.now();
        Ok(Session {
            id: SessionId::random(&*self.random)?,
            created_at: now,
            now,
            issued_at: None,
            expiry: Expiry::Default,
            buffer: Vec::new(),
            entries: Vec::new(),
            overflow: None,
            modified: false,
            changes: 0,
            held_by_layer: false,
            refresh_due: false,
            opened_with: KeyRole::Primary,
            overflow_stale: false,
            flushed: false,
            replaced: None,
            revoking_after_save: None,
            cookie_without_user: false,
            // Created now, as the caller asked; `cycle_id` at login dates
            // it from the save.
            revocations_seen_at: Some(now),
            dropped_unreported: Vec::new(),
            policy: self.policy,
            limits: self.limits,
            random: Arc::clone(&self.random),
        })
    }

    /// Opens a cookie value into a session. Values are decoded later, when
    /// read.
    ///
    /// # Errors
    ///
    /// Each check has its own [`Error`] kind. In order: length limit,
    /// strict base64url, header, key id, authentication, decompression
    /// (capped), issued-at against the clock skew, idle timeout, payload
    /// structure and entry limit, absolute lifetime, the session's own
    /// expiry (`docs/FORMAT.md` §8).
    ///
    /// A sealer with a revocation check ([`SealerBuilder::revocation`])
    /// refuses to open here, with [`StoreError::NeedsAsync`]: the check is
    /// asynchronous, and skipping it would accept revoked cookies. Use
    /// [`Sealer::open_async`].
    pub fn open(&self, cookie_value: &str) -> Result<Session, Error> {
        if self.revocation.is_some() {
            return Err(Error::Store(StoreError::NeedsAsync));
        }
        self.open_unrevoked(cookie_value)
    }

    /// [`Sealer::open`] without the revocation guard, for `open_async`.
    pub(crate) fn open_unrevoked(&self, cookie_value: &str) -> Result<Session, Error> {
        self.open_unrevoked_as(cookie_value, &self.cookie_name)
    }

    /// [`Sealer::open_unrevoked`], for a token bound to `cookie_name`.
    pub(crate) fn open_unrevoked_as(
        &self,
        cookie_value: &str,
        cookie_name: &str,
    ) -> Result<Session, Error> {
        let opened = token::open(&self.ring, cookie_name, cookie_value, &self.limits)?;
        let now = self.clock.now();
        let (header, buffer, plaintext, role) = opened.into_parts();
        let issued_at = header.issued_at;
        let age = self.policy.check_issued_at(now, issued_at)?;

        let mut indexed = payload::index(&buffer[plaintext.clone()], self.limits.max_entries())?;
        if indexed.created_at > issued_at {
            // A session cannot start after the token that carries it was sealed.
            return Err(Error::Malformed(crate::error::Malformed::Payload));
        }
        self.policy.check_lifetime(now, indexed.created_at)?;
        let expiry = indexed.expiry;
        if matches!(expiry, Expiry::At(end) if now >= end) {
            return Err(Error::Expired(Expired::Session));
        }
        let own_idle = self.policy.own_idle(expiry);
        if own_idle.is_some_and(|window| age > window) {
            return Err(Error::Expired(Expired::Idle));
        }
        // The index holds ranges into the plaintext; shift them to the buffer.
        if plaintext.start != 0 {
            for entry in &mut indexed.entries {
                shift(&mut entry.key, plaintext.start);
                if let Value::Resident(bytes) = &mut entry.value {
                    shift(bytes, plaintext.start);
                }
            }
        }
        let refresh_due = self
            .policy
            .refresh_after(own_idle)
            .is_some_and(|after| age >= after);
        if role == KeyRole::Fallback {
            // Public: the id names the key, not its bytes. (A revocation
            // check may still refuse the cookie.)
            tracing::debug!(
                event = "opened-with-fallback-key",
                key_id = %header.key_id,
                "session cookie sealed under a fallback key; its next save re-seals it under the primary"
            );
        }
        let mut session = Session {
            id: SessionId::from_bytes(indexed.session_id),
            // A session created on a server whose clock runs ahead (within
            // the skew) starts no later than now here, so that the token
            // this server re-seals has created-at <= issued-at and opens.
            created_at: indexed.created_at.min(now),
            now,
            issued_at: Some(issued_at),
            expiry,
            buffer,
            entries: indexed.entries,
            overflow: indexed
                .overflow_ref
                .map(|r| (SessionId::from_bytes(indexed.session_id), r)),
            modified: false,
            changes: 0,
            held_by_layer: false,
            refresh_due,
            opened_with: role,
            overflow_stale: false,
            flushed: false,
            replaced: None,
            revoking_after_save: None,
            cookie_without_user: false,
            revocations_seen_at: Some(now),
            dropped_unreported: Vec::new(),
            policy: self.policy,
            limits: self.limits,
            random: Arc::clone(&self.random),
        };
        session.cookie_without_user = self.names_no_user(&session);
        Ok(session)
    }

    /// Seals the whole session (every cookie-resident entry) under the
    /// primary key, issued now, and marks it saved.
    ///
    /// This ignores the size budget and, with it, the 4096 bytes of name
    /// and value browsers keep ([`MAX_NAME_VALUE_LEN`](crate::MAX_NAME_VALUE_LEN));
    /// [`Sealer::save`] applies both. It does apply the token-length limit: a token longer than
    /// [`Limits::max_token_len`](crate::Limits::max_token_len), which this sealer
    /// could not open, fails with [`Limit::TokenLength`](crate::Limit::TokenLength).
    /// Entries in the overflow store that were not loaded cannot be carried
    /// (the store is [`Sealer::save_async`]'s): they are removed from the
    /// session and their keys logged at `WARN`, as [`Sealer::save`] does.
    ///
    /// # Errors
    ///
    /// [`StoreError::NeedsAsync`] for a session whose id was replaced
    /// ([`Session::flush`], [`Session::cycle_id`]) on a sealer with a
    /// revocation store, or one with an entry raised to critical while in
    /// the overflow blob (which only [`Sealer::save_async`] can load);
    /// [`ValueError::UserId`](crate::ValueError::UserId)
    /// if the revocation check's user entry is not a string, an integer, a
    /// byte string or null;
    /// [`Error::LimitExceeded`] for a token over
    /// [`Limits::max_token_len`](crate::Limits::max_token_len) or a payload
    /// over [`Limits::max_decompressed`](crate::Limits::max_decompressed);
    /// [`Error::Random`] if the nonce cannot be drawn. The unloaded
    /// overflowed entries are removed first, even by a seal that then
    /// fails. [`Error::HeldByLayer`] as [`Sealer::save`].
    pub fn seal(&self, session: &mut Session) -> Result<String, Error> {
        Self::check_not_held_by_layer(session)?;
        self.check_sync_save(session)?;
        if session.has_unloaded_overflow() {
            let why = self.blob_not_kept(crate::overflow::BlobNotKept::SynchronousSeal);
            Self::drop_unloaded(session, why);
            session.overflow = None;
        }
        let now = self.save_time(session);
        let token = self.seal_selected(session, None, None, now)?;
        self.mark_saved(session, now);
        Ok(token)
    }

    /// Seals, issued at `now`, the entries whose `keep` flag is set (every
    /// entry when `keep` is `None`); entries not kept and already-overflowed
    /// entries go into the overflow list when a reference is given, and are
    /// left out otherwise.
    pub(crate) fn seal_selected(
        &self,
        session: &Session,
        keep: Option<&[bool]>,
        overflow_ref: Option<&[u8; payload::SESSION_ID_LEN]>,
        now: u64,
    ) -> Result<String, Error> {
        // Never emit a cookie this sealer's own limits would refuse (a
        // budget larger than the token limit allows one).
        // Every cookie any save or seal writes is sealed here (measuring
        // calls `seal_selected_up_to` alone).
        self.check_user_id_entry(session)?;
        self.seal_selected_up_to(
            session,
            keep,
            overflow_ref,
            now,
            self.limits.max_token_len(),
        )
    }

    /// [`Self::seal_selected`] with another bound on the token's length
    /// (`usize::MAX` to measure a token, whatever its length).
    pub(crate) fn seal_selected_up_to(
        &self,
        session: &Session,
        keep: Option<&[bool]>,
        overflow_ref: Option<&[u8; payload::SESSION_ID_LEN]>,
        now: u64,
        max_token_len: usize,
    ) -> Result<String, Error> {
        let is_resident = |i: usize| {
            keep.is_none_or(|k| k[i]) && matches!(session.entries[i].value, Value::Resident(_))
        };
        let resident_count = (0..session.entries.len())
            .filter(|&i| is_resident(i))
            .count();
        let overflow_count = session.entries.len() - resident_count;
        let with_overflow = overflow_ref.is_some() && overflow_count > 0;

        let (expires_at, flags) = payload::expiry_fields(session.expiry);
        let payload_len = self.payload_len_for(session, keep, with_overflow, now);
        if payload_len > self.limits.max_decompressed() {
            // Never emit a cookie this sealer's own limits would refuse.
            return Err(Error::LimitExceeded(crate::Limit::DecompressedSize));
        }
        let too_long = Err(Error::LimitExceeded(crate::Limit::TokenLength));
        // Uncompressed, the token's length is known before sealing: a
        // session too long for the cookie is not sealed to find that out.
        if self.compression == Compression::Off
            && crate::save::base64_len(OVERHEAD + payload_len) > max_token_len
        {
            return too_long;
        }
        let mut buffer = Vec::with_capacity(OVERHEAD + payload_len);
        buffer.resize(CIPHERTEXT_OFFSET, 0);
        let mut writer = PayloadWriter::begin(
            &mut buffer,
            session.created_at_sealed(now),
            expires_at,
            session.id.as_bytes(),
            flags,
            resident_count,
            with_overflow,
        );
        for (i, entry) in session.entries.iter().enumerate() {
            if is_resident(i) {
                let value = session.resident_value(entry).unwrap_or_default();
                writer.entry(session.entry_key(entry), entry.priority, value);
            }
        }
        if let (true, Some(reference)) = (with_overflow, overflow_ref) {
            writer.overflow(reference, overflow_count);
            for (i, entry) in session.entries.iter().enumerate() {
                if !is_resident(i) {
                    writer.overflow_key(session.entry_key(entry), entry.priority);
                }
            }
        }
        debug_assert_eq!(buffer.len(), CIPHERTEXT_OFFSET + payload_len);
        let token = token::seal_buffer(
            &self.ring,
            &self.cookie_name,
            now,
            buffer,
            self.compression,
            &*self.random,
        )?;
        if token.len() > max_token_len {
            return too_long;
        }
        Ok(token)
    }

    /// Exact plaintext length of what `seal_selected` writes.
    pub(crate) fn payload_len_for(
        &self,
        session: &Session,
        keep: Option<&[bool]>,
        with_overflow: bool,
        now: u64,
    ) -> usize {
        let mut resident = 0usize;
        let mut body = 0usize;
        let mut overflow_keys = 0usize;
        let mut overflow_body = 0usize;
        for (i, entry) in session.entries.iter().enumerate() {
            let key_len = session.entry_key(entry).len();
            match (keep.is_none_or(|k| k[i]), session.resident_value(entry)) {
                (true, Some(value)) => {
                    resident += 1;
                    body += payload::entry_len(key_len, value.len());
                }
                _ => {
                    overflow_keys += 1;
                    overflow_body += 1 + payload::head_len(key_len as u64) + key_len + 1;
                }
            }
        }
        let (expires_at, flags) = payload::expiry_fields(session.expiry);
        let mut len =
            payload::begin_len(session.created_at_sealed(now), expires_at, flags, resident) + body;
        if with_overflow {
            len += 1
                + 1
                + payload::SESSION_ID_LEN
                + payload::head_len(overflow_keys as u64)
                + overflow_body;
        }
        len
    }

    /// Records a save whose token was issued at `issued_at`.
    pub(crate) fn mark_saved(&self, session: &mut Session, issued_at: u64) {
        session.created_at = session.created_at_sealed(issued_at);
        // A new id counts from its first token; otherwise a save checks
        // nothing, and a later one stays dated from the last check.
        session.revocations_seen_at.get_or_insert(issued_at);
        session.issued_at = Some(issued_at);
        session.modified = false;
        session.refresh_due = false;
        session.opened_with = KeyRole::Primary;
        session.overflow_stale = false;
        session.flushed = false;
        session.replaced = None;
        session.cookie_without_user = self.names_no_user(session);
    }
}

fn shift(bytes: &mut Bytes, offset: usize) {
    if let Bytes::Shared(range) = bytes {
        *range = range.start + offset..range.end + offset;
    }
}

/// `d` in whole seconds, rounded up: a sub-second setting must not become
/// zero (an idle timeout that expires every session within a second, a
/// record or blob that ends as it is written).
pub(crate) fn whole_seconds(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}
