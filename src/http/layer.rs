//! The tower layer, its builder and its service.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll};
use core::time::Duration;
use std::sync::Arc;

use http::{header, HeaderMap, HeaderValue, Request, Response, Uri};
use tower_layer::Layer;
use tower_service::Service;

use super::extractor::{CookieHeaders, LazySession};
use crate::cache_control::private_cache_control;
use crate::cookie::{has_prefix, HOST_PREFIX};
use crate::error::InvalidSetting;
use crate::store::{OverflowStore, RevocationCheck, RevocationStore};
use crate::{
    Clock, Compression, CookieSettings, Error, KeyRing, Limits, RandomSource, SameSite, SaveReport,
    Sealer, SealerBuilder,
};

type SaveErrorHook = Arc<dyn Fn(&SaveFailure<'_>) + Send + Sync>;
type SaveReportHook = Arc<dyn Fn(&SaveReport, &Uri) + Send + Sync>;
type Configure = Box<dyn FnOnce(SealerBuilder) -> SealerBuilder + Send>;

/// What the layer shares with every request.
pub(crate) struct Shared {
    pub(crate) sealer: Sealer,
    pub(crate) save_on_server_error: bool,
    error_on_lost_changes: bool,
    pub(crate) open_every_request: bool,
    on_save_error: Option<SaveErrorHook>,
    on_save_report: Option<SaveReportHook>,
    /// For a per-host domain's cookie: the deletion of a host-only cookie
    /// of the same name (from before `domains`), which browsers send
    /// before it and which would hide it.
    host_only_removal: Option<HeaderValue>,
}

impl Shared {
    pub(crate) fn save_failed(&self, error: &Error, uri: &Uri) {
        tracing::error!(
            event = "save-failed",
            kind = error.kind(),
            error = %error,
            "session not saved; the client keeps its previous cookie"
        );
        if let Some(hook) = &self.on_save_error {
            hook(&SaveFailure { error, uri });
        }
    }

    pub(crate) fn saved(&self, report: &SaveReport, uri: &Uri) {
        if report.dropped.is_empty() && report.overflowed.is_empty() && report.unrevoked.is_none() {
            return;
        }
        if let Some(hook) = &self.on_save_report {
            hook(report, uri);
        }
    }
}

/// A save that failed, as passed to [`SessionLayerBuilder::on_save_error`].
///
/// The response goes out without `Set-Cookie`, so the client keeps the
/// cookie it had; changes made during the request are lost (and the
/// response is an empty 500 or 503 instead of the handler's when there
/// were changes, unless [`SessionLayerBuilder::error_on_lost_changes`] is
/// off).
#[derive(Debug)]
#[non_exhaustive]
pub struct SaveFailure<'a> {
    /// Why: [`Error::TooLarge`] when the entries that may not be dropped
    /// exceed the budget ([`Error::LimitExceeded`] when they exceed
    /// [`Limits::max_decompressed`](crate::Limits::max_decompressed)),
    /// [`Error::Store`] when the overflow store failed,
    /// [`Error::Random`] when the operating system's generator failed (for
    /// the nonce, or a new blob reference). Or [`Error::Store`] from the
    /// revocation check that kept the request's cookie from opening: the
    /// layer does not replace that cookie with the request's fresh session
    /// while the store is down.
    pub error: &'a Error,
    /// The request's URI.
    pub uri: &'a Uri,
}

/// In the extensions of the empty response that replaces the handler's when
/// a failed save lost its changes
/// ([`SessionLayerBuilder::error_on_lost_changes`]): why. An outer layer
/// can render its own page or JSON error for it, keeping the status and
/// the `Cache-Control: no-store`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LostChanges {
    /// What the save failed with (see [`SaveFailure::error`]).
    pub error: Error,
}

/// A `tower` layer that opens the session cookie lazily and writes it back
/// after the handler (see the [module documentation](super)).
///
/// Cheap to clone; build one with [`SessionLayer::builder`].
#[derive(Clone)]
pub struct SessionLayer {
    shared: Arc<Shared>,
    by_domain: Arc<[ForDomain]>,
}

/// What requests to one of [`SessionLayerBuilder::domains`] share.
struct ForDomain {
    /// Lowercase, without a leading dot, to compare with hosts.
    domain: String,
    shared: Arc<Shared>,
}

/// The shared state for a request to `host` (port aside): that of the
/// per-host domain `host` is or is under (at most one: `build` refuses
/// nested ones), else `default`.
fn shared_for_host<'a>(
    default: &'a Arc<Shared>,
    by_domain: &'a [ForDomain],
    host: Option<&str>,
) -> &'a Arc<Shared> {
    let Some(host) = host else {
        return default;
    };
    // The FQDN form, `example.com.`, names the same host.
    let host = host.strip_suffix('.').unwrap_or(host);
    by_domain
        .iter()
        .find(|d| is_under(host, &d.domain))
        .map_or(default, |d| &d.shared)
}

/// A domain as hosts are compared with it: lowercase, without a leading
/// dot.
fn domain_key(domain: &str) -> String {
    domain
        .strip_prefix('.')
        .unwrap_or(domain)
        .to_ascii_lowercase()
}

/// Whether the host or domain `host` is `domain` or under it, in any
/// case (`domain` without a leading dot).
fn is_under(host: &str, domain: &str) -> bool {
    let (host, domain) = (host.as_bytes(), domain.as_bytes());
    host.len().checked_sub(domain.len()).is_some_and(|start| {
        host[start..].eq_ignore_ascii_case(domain) && (start == 0 || host[start - 1] == b'.')
    })
}

/// The host a request was sent to, without its port: its URI's (HTTP/2,
/// or an absolute-form target), else its `Host` header's. `None` for an
/// IP address in brackets, a missing or unreadable host.
fn request_host<B>(request: &Request<B>) -> Option<&str> {
    let host = match request.uri().host() {
        Some(host) => host,
        None => {
            let value = request.headers().get(header::HOST)?.to_str().ok()?;
            // A name has no colon; what follows one is the port.
            value.split(':').next().unwrap_or_default()
        }
    };
    (!host.is_empty() && !host.starts_with('[')).then_some(host)
}

impl fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("sealer", &self.shared.sealer)
            .field(
                "domains",
                &self.by_domain.iter().map(|d| &d.domain).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl SessionLayer {
    /// Starts configuring a layer that seals with `ring`'s primary key.
    ///
    /// The defaults are those of [`Sealer::builder`] and
    /// [`CookieSettings::default`]: cookie `session`, `HttpOnly`, `Secure`,
    /// `SameSite=Lax`, `Path=/`, no `Domain`, persistent (`Max-Age` follows
    /// the session's expiry), a 4096-byte budget, no compression, no
    /// overflow store, no revocation check; a failed save that loses the
    /// handler's changes answers 500 or 503
    /// ([`SessionLayerBuilder::error_on_lost_changes`]).
    pub fn builder(ring: KeyRing) -> SessionLayerBuilder {
        SessionLayerBuilder {
            ring,
            cookie_name: crate::DEFAULT_COOKIE_NAME.to_owned(),
            host_prefix: false,
            settings: CookieSettings::default(),
            configure: Vec::new(),
            domains: Vec::new(),
            save_on_server_error: false,
            error_on_lost_changes: true,
            open_every_request: false,
            on_save_error: None,
            on_save_report: None,
        }
    }

    /// The sealer the layer uses (its cookie name includes any prefix);
    /// with [`SessionLayerBuilder::domains`], the one for hosts under none
    /// of them.
    pub fn sealer(&self) -> &Sealer {
        &self.shared.sealer
    }

    /// The sealer the layer uses for requests to `host` (without a port):
    /// with [`SessionLayerBuilder::domains`], the one whose cookie carries
    /// the `Domain` that `host` is or is under, else [`Self::sealer`].
    ///
    /// ```
    /// use sealed_session::http::SessionLayer;
    /// use sealed_session::{KeyRing, MasterKey};
    /// # let ring = KeyRing::new(MasterKey::generate()?);
    /// let layer = SessionLayer::builder(ring)
    ///     .domains(["example.com", "example.org"])
    ///     .build()?;
    /// let domain = |host| layer.sealer_for_host(host).cookie_settings().domain();
    /// assert_eq!(domain("shop.example.org"), Some("example.org"));
    /// assert_eq!(domain("example.com"), Some("example.com"));
    /// assert_eq!(domain("example.net"), None);
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    pub fn sealer_for_host(&self, host: &str) -> &Sealer {
        &shared_for_host(&self.shared, &self.by_domain, Some(host)).sealer
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            shared: Arc::clone(&self.shared),
            by_domain: Arc::clone(&self.by_domain),
        }
    }
}

/// Configures a [`SessionLayer`]; every method takes and returns `self`.
#[must_use]
pub struct SessionLayerBuilder {
    ring: KeyRing,
    cookie_name: String,
    host_prefix: bool,
    settings: CookieSettings,
    configure: Vec<Configure>,
    domains: Vec<String>,
    save_on_server_error: bool,
    error_on_lost_changes: bool,
    open_every_request: bool,
    on_save_error: Option<SaveErrorHook>,
    on_save_report: Option<SaveReportHook>,
}

impl fmt::Debug for SessionLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayerBuilder")
            .field("ring", &self.ring)
            .field("cookie_name", &self.cookie_name)
            .field("host_prefix", &self.host_prefix)
            .field("settings", &self.settings)
            .field("domains", &self.domains)
            .finish_non_exhaustive()
    }
}

impl SessionLayerBuilder {
    fn with(mut self, f: impl FnOnce(SealerBuilder) -> SealerBuilder + Send + 'static) -> Self {
        self.configure.push(Box::new(f));
        self
    }

    /// The key ring: the primary key seals, fallback keys only open (a
    /// cookie opened with one is re-sealed under the primary).
    pub fn key_ring(mut self, ring: KeyRing) -> Self {
        self.ring = ring;
        self
    }

    /// The cookie name (default `session`). Tokens are bound to it.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// Prefixes the cookie name with `__Host-` (default no). Browsers then
    /// accept the cookie only with `Secure`, `Path=/` and no `Domain`, from
    /// this host alone; the layer forces those attributes, overriding
    /// [`Self::path`], [`Self::domain`], [`Self::domains`] and
    /// [`Self::secure`] (a setting so overridden is logged at `WARN` when
    /// the layer is built: event `cookie-setting-overridden`). A name that
    /// already has the prefix in another case gets it as `__Host-`.
    /// (`__Host-Http-` and `__Http-` names, which browsers also require to
    /// be `HttpOnly`, get `HttpOnly` forced besides.)
    pub fn host_prefix(mut self, enabled: bool) -> Self {
        self.host_prefix = enabled;
        self
    }

    /// The `Domain` attribute (default none: the cookie goes to this host
    /// only). Ignored with the `__Host-` prefix. Browsers refuse a public
    /// suffix and a domain that does not match the host (see
    /// [`CookieSettings::with_domain`]).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.settings = self.settings.with_domain(domain);
        self
    }

    /// A `Domain` attribute chosen per request, as with Rails' list of
    /// domains: a request to one of `domains` or to a host under one gets
    /// a cookie for that domain, which its sibling subdomains share; a
    /// request to any other host gets [`Self::domain`]'s (none by
    /// default: this host only; Rails gives those none). Replaces the
    /// list given before; ignored with a `__Host-` name (from
    /// [`Self::host_prefix`] or given so). Each is
    /// checked as [`Self::domain`]'s is, by [`Self::build`], which also
    /// refuses a domain that is, or is under, another of them or
    /// [`Self::domain`]'s ([`InvalidSetting::NestedDomains`]): a browser
    /// would hold a cookie for each and send the older first, which would
    /// open on every request and hide every write to the other.
    ///
    /// The host is the request URI's (HTTP/2) or its `Host` header's,
    /// port aside; a proxy in front must pass the client's `Host` on
    /// (`X-Forwarded-Host` is not read, where Rails reads it). A client
    /// that sends another host only chooses the `Domain` of its own
    /// cookie, which its browser refuses unless the host was the one it
    /// visited. Sessions are the same on every domain: a cookie from one
    /// opens on all.
    ///
    /// Turning this on for a deployed host-only cookie: browsers keep the
    /// old cookie beside the new one and send it first, so it would open
    /// on every request and hide the new one. So whenever a response to a
    /// request that carried a cookie of the session's name sets or
    /// deletes the session cookie for a listed domain, it also deletes a
    /// host-only cookie of that name and path, in a `Set-Cookie` of its
    /// own sent first (about 100 more bytes, on every such response, not
    /// counted in [`Self::budget`], which is per header): the first save
    /// moves the session to the new cookie. This layer sets no host-only
    /// cookie on such a host, so the deletion hits an old one, or another
    /// application's of the same name and path on that host. Switch every
    /// instance at once: during a rolling deploy, or after a rollback
    /// (taking a domain off the list, changing [`Self::domain`]), an old
    /// cookie hides the new one, so writes are lost and, without a
    /// revocation store, logouts do not hold; nothing here solves that
    /// direction but a new cookie name. Renaming the cookie in the same
    /// deploy: give the old, host-only cookie's settings with
    /// [`Self::previous_cookie`], or its deletion carries the domain.
    ///
    /// ```
    /// use sealed_session::http::SessionLayer;
    /// use sealed_session::{KeyRing, MasterKey};
    /// # let ring = KeyRing::new(MasterKey::generate()?);
    /// // www.example.com and shop.example.com share the session;
    /// // so do the hosts under example.co.uk, apart from those.
    /// let layer = SessionLayer::builder(ring)
    ///     .domains(["example.com", "example.co.uk"])
    ///     .build()?;
    /// let sealer = layer.sealer_for_host("www.example.co.uk");
    /// assert_eq!(sealer.cookie_settings().domain(), Some("example.co.uk"));
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    pub fn domains<I>(mut self, domains: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.domains = domains.into_iter().map(Into::into).collect();
        self
    }

    /// The `Path` attribute (default `/`). Ignored with the `__Host-` prefix.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.settings = self.settings.with_path(path);
        self
    }

    /// The `SameSite` attribute (default `Lax`).
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.settings = self.settings.with_same_site(same_site);
        self
    }

    /// Leaves the `SameSite` attribute out: see
    /// [`CookieSettings::without_same_site`] for what browsers then do.
    pub fn without_same_site(mut self) -> Self {
        self.settings = self.settings.without_same_site();
        self
    }

    /// Whether to set `Partitioned` (CHIPS; default no). A partitioned
    /// cookie is always sent with `Secure`, whatever [`Self::secure`] says.
    /// For an app embedded in other sites' pages, also set
    /// `same_site(SameSite::None)`: browsers do not send the default `Lax`
    /// cookie on those cross-site requests.
    pub fn partitioned(mut self, partitioned: bool) -> Self {
        self.settings = self.settings.with_partitioned(partitioned);
        self
    }

    /// Whether to set `Secure` (default yes). Browsers treat `localhost`
    /// and loopback addresses as secure, so turn it off only to serve plain
    /// HTTP on other hosts. Forced on with the `__Host-` and `__Secure-`
    /// name prefixes, with `Partitioned` and with `SameSite=None` (browsers
    /// refuse such cookies without it).
    pub fn secure(mut self, secure: bool) -> Self {
        self.settings = self.settings.with_secure(secure);
        self
    }

    /// Whether to set `HttpOnly` (default yes). Forced on with the
    /// `__Http-` and `__Host-Http-` name prefixes.
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.settings = self.settings.with_http_only(http_only);
        self
    }

    /// Persistent cookies (the default) carry `Max-Age`, the time left
    /// before the session expires; browser-session cookies (`false`) carry
    /// none and end when the browser closes. A session can choose for
    /// itself with [`Expiry::BrowserSession`](crate::Expiry::BrowserSession),
    /// or for a persistent cookie with [`Expiry::At`](crate::Expiry::At)
    /// ("remember me") or [`Expiry::Idle`](crate::Expiry::Idle).
    pub fn persistent(mut self, persistent: bool) -> Self {
        self.settings = self.settings.with_persistent(persistent);
        self
    }

    /// Whether a persistent cookie also carries `Expires`, the same end as
    /// its `Max-Age` (default no; see
    /// [`CookieSettings::with_expires`](crate::CookieSettings::with_expires)).
    pub fn expires(mut self, expires: bool) -> Self {
        self.settings = self.settings.with_expires(expires);
        self
    }

    /// Replaces every cookie attribute at once, those set by the methods
    /// above before this call included (call them after it to adjust).
    pub fn cookie_settings(mut self, settings: CookieSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Resource limits for opening cookies.
    pub fn limits(self, limits: Limits) -> Self {
        self.with(move |b| b.limits(limits))
    }

    /// Most bytes the whole `Set-Cookie` header may take (default 4096;
    /// [`Self::build`] refuses one too small for a new empty session's
    /// cookie). The
    /// token also stays within [`Limits::max_token_len`] (see
    /// [`SealerBuilder::budget`]). The budget is per header: a response
    /// can also carry the deletion of a previous name's cookie
    /// ([`Self::previous_cookie_name`]) and, with [`Self::domains`], of a
    /// host-only cookie, each a `Set-Cookie` of about 100 bytes more
    /// (longer with a long name or path), which a proxy's limit on all of
    /// a response's headers must leave room for.
    pub fn budget(self, bytes: usize) -> Self {
        self.with(move |b| b.budget(bytes))
    }

    /// Whether and from which size to compress.
    pub fn compression(self, compression: Compression) -> Self {
        self.with(move |b| b.compression(compression))
    }

    /// A server-side store for entries that do not fit in the budget.
    pub fn overflow_store(self, store: Arc<dyn OverflowStore>) -> Self {
        self.with(move |b| b.overflow_store(store))
    }

    /// A revocation check consulted when a cookie is opened; `user_key`
    /// names the entry holding the user id (for "log out everywhere"): a
    /// string, a 64-bit integer or a byte string such as a UUID, not a struct
    /// (a save that would write another value fails with
    /// [`ValueError::UserId`](crate::ValueError::UserId); see
    /// [`SealerBuilder::revocation`]).
    /// A layer has one revocation source: this replaces an earlier
    /// [`Self::revocation_store`], and the other way round.
    pub fn revocation(self, check: Arc<dyn RevocationCheck>, user_key: Option<&str>) -> Self {
        let user_key = user_key.map(str::to_owned);
        self.with(move |b| b.revocation(check, user_key.as_deref()))
    }

    /// As [`Self::revocation`], with a store that also records
    /// revocations: [`LazySession::flush`](super::LazySession::flush) and
    /// [`LazySession::cycle_id`](super::LazySession::cycle_id) then revoke
    /// the id they replace; with a `user_key`, only if the cookie carried
    /// the user entry ([`SealerBuilder::revocation_store`]).
    pub fn revocation_store(self, store: Arc<dyn RevocationStore>, user_key: Option<&str>) -> Self {
        let user_key = user_key.map(str::to_owned);
        self.with(move |b| b.revocation_store(store, user_key.as_deref()))
    }

    /// The idle timeout (default two weeks; not zero, see
    /// [`SealerBuilder::max_idle`]).
    pub fn max_idle(self, max_idle: Duration) -> Self {
        self.with(move |b| b.max_idle(max_idle))
    }

    /// The absolute lifetime (default 30 days; not zero).
    pub fn max_lifetime(self, max_lifetime: Duration) -> Self {
        self.with(move |b| b.max_lifetime(max_lifetime))
    }

    /// A shorter idle timeout for sessions whose cookie ends with the
    /// browser (default none; not zero, see
    /// [`SealerBuilder::browser_session_max_idle`]): "remember me" keeps
    /// [`Self::max_idle`], an ordinary login's browser-session cookie stops
    /// opening this long after its last use.
    pub fn browser_session_max_idle(self, max_idle: Duration) -> Self {
        self.with(move |b| b.browser_session_max_idle(max_idle))
    }

    /// Fraction of the idle window after which a session that was only
    /// read is re-sealed anyway (default 0.5).
    pub fn refresh_fraction(self, fraction: f64) -> Self {
        self.with(move |b| b.refresh_fraction(fraction))
    }

    /// No idle timeout ([`SealerBuilder::no_idle_timeout`]; not
    /// recommended).
    pub fn no_idle_timeout(self) -> Self {
        self.with(SealerBuilder::no_idle_timeout)
    }

    /// No absolute lifetime ([`SealerBuilder::no_max_lifetime`]).
    pub fn no_max_lifetime(self) -> Self {
        self.with(SealerBuilder::no_max_lifetime)
    }

    /// How far in the future a cookie's issued-at may be (default 60 s;
    /// [`SealerBuilder::clock_skew`]).
    pub fn clock_skew(self, skew: Duration) -> Self {
        self.with(move |b| b.clock_skew(skew))
    }

    /// The time source (the system clock by default).
    pub fn clock(self, clock: Arc<dyn Clock>) -> Self {
        self.with(move |b| b.clock(clock))
    }

    /// The source of session ids and nonces (the operating system's
    /// generator by default; [`SealerBuilder::random`]).
    pub fn random(self, random: Arc<dyn RandomSource>) -> Self {
        self.with(move |b| b.random(random))
    }

    /// Any other [`SealerBuilder`] setting.
    /// The cookie's name and attributes belong to this builder: the
    /// layer's [`Self::cookie_name`], prefix and attributes replace any a
    /// closure sets.
    pub fn configure_sealer(
        self,
        f: impl FnOnce(SealerBuilder) -> SealerBuilder + Send + 'static,
    ) -> Self {
        self.with(f)
    }

    /// How many cookies with the session's name are tried, in order, before
    /// giving up and starting a fresh session (default 4, at least 1; see
    /// [`SealerBuilder::max_cookies_tried`]).
    pub fn max_cookies_tried(self, count: usize) -> Self {
        self.with(move |b| b.max_cookies_tried(count))
    }

    /// The name the session cookie had before (see
    /// [`SealerBuilder::previous_cookie_name`]): turning on
    /// [`Self::host_prefix`] or changing [`Self::cookie_name`] then logs
    /// no one out. A request without a cookie of the current name has its
    /// cookie of the previous name opened; the response carries the
    /// session under the new name and deletes the old cookie, with this
    /// layer's path and domain: the old cookie must have had the same ones
    /// ([`Self::previous_cookie`] otherwise; see the sealer's docs for what
    /// happens when the deletion misses it). Remove it once
    /// the transition is over (after the idle timeout, say): until then a
    /// cookie of the old name, without the new name's protection, is
    /// accepted.
    ///
    /// Do not give as the previous name the current name of a layer still
    /// in use: on routes that layer does not wrap, this one opens its
    /// cookies as its own, re-seals them under the new name and deletes
    /// them. Where the two layers are nested (in either order, at any
    /// depth), the cookies of that name are left to the other layer on the
    /// routes they share: this one neither opens nor deletes them, except
    /// that a middleware between them that opens the outer session before
    /// the inner layer runs sees the inner one's cookie opened as the
    /// outer's (it is still not deleted).
    ///
    /// ```
    /// use sealed_session::http::SessionLayer;
    /// use sealed_session::{KeyRing, MasterKey};
    /// # let ring = KeyRing::new(MasterKey::generate()?);
    /// // Cookies were `session=…`; now `__Host-session=…`.
    /// let layer = SessionLayer::builder(ring)
    ///     .host_prefix(true)
    ///     .previous_cookie_name("session")
    ///     .build()?;
    /// assert_eq!(layer.sealer().previous_cookie_name(), Some("session"));
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    pub fn previous_cookie_name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.with(move |b| b.previous_cookie_name(name))
    }

    /// As [`Self::previous_cookie_name`], for an old cookie whose path or
    /// domain differed from this layer's: its deletion carries
    /// `settings`' (see [`SealerBuilder::previous_cookie`]).
    ///
    /// ```
    /// use sealed_session::http::SessionLayer;
    /// use sealed_session::{CookieSettings, KeyRing, MasterKey};
    /// # let ring = KeyRing::new(MasterKey::generate()?);
    /// // Cookies were `session=…; Path=/shop`; now `__Host-session=…; Path=/`.
    /// let layer = SessionLayer::builder(ring)
    ///     .host_prefix(true)
    ///     .previous_cookie("session", CookieSettings::default().with_path("/shop"))
    ///     .build()?;
    /// let removal = layer.sealer().previous_cookie_removal().unwrap();
    /// assert!(removal.starts_with("session=;") && removal.contains("Path=/shop"));
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    pub fn previous_cookie(self, name: impl Into<String>, settings: CookieSettings) -> Self {
        let name = name.into();
        self.with(move |b| b.previous_cookie(name, settings))
    }

    /// Whether the layer opens the session cookie of every request that
    /// carries one, also when no handler touched the session (default no:
    /// the cookie is opened when a handler first touches the session).
    /// Then the sliding refresh and a fallback key's re-seal happen on
    /// every route, so a user who only visits routes that never read the
    /// session is not logged out by the idle timeout; with
    /// [`Self::refresh_fraction`] at 0.0 this is Django's
    /// `SESSION_SAVE_EVERY_REQUEST` and tower-sessions' `with_always_save`.
    /// It costs an open (and a revocation check, which waits out a store
    /// outage) per such request; server-error responses open nothing
    /// (unless [`Self::save_on_server_error`] is on).
    ///
    /// A cookie store has no server copy to merge into: each re-sealed
    /// response carries the contents its request read, so with a short
    /// refresh interval the responses of parallel requests (assets, XHR)
    /// can overwrite a cookie that a concurrent login, cart change or
    /// logout just set. Apply the layer with this option to page routes
    /// only (or have the other handlers call
    /// [`LazySession::skip_save`](super::LazySession::skip_save)), and keep
    /// `refresh_fraction` well above 0.
    pub fn open_every_request(mut self, open: bool) -> Self {
        self.open_every_request = open;
        self
    }

    /// Whether a session is saved when the handler's response is a server
    /// error (5xx; default no, as in Django: what a failed request changed
    /// is not kept, and the client keeps the cookie it had). A session the
    /// handler flushed (logout) still ends, as in Django: the deletion
    /// cookie is sent and a revocation store records the old id; entries
    /// stored after the flush are not kept.
    pub fn save_on_server_error(mut self, save: bool) -> Self {
        self.save_on_server_error = save;
        self
    }

    /// Whether a save that fails and loses the handler's changes replaces
    /// the handler's response with an empty `500 Internal Server Error`, or
    /// `503 Service Unavailable` when a store could not be reached (default
    /// yes). A response must not claim what did not happen: a login that
    /// redirects to the account page although the session that says so
    /// was not saved, say. tower-sessions and Rails answer 500 for any
    /// failed save; here a save that carried no change of the handler's (a
    /// sliding refresh, a re-seal under the primary key) never replaces
    /// the response, so a store outage does not fail pages that only read.
    /// Turned off, the handler's response goes out without `Set-Cookie`
    /// (the client keeps its previous cookie), for applications that
    /// prefer the page to the session's changes. The failure is reported
    /// either way ([`Self::on_save_error`]). The empty response carries the
    /// error as a [`LostChanges`] extension, for an outer layer to render.
    pub fn error_on_lost_changes(mut self, enabled: bool) -> Self {
        self.error_on_lost_changes = enabled;
        self
    }

    /// Called when a save fails (see [`SaveFailure`]), after the `ERROR`
    /// event the layer always logs. Runs on the request's task (or, for
    /// the logout of a dropped request, on the task that finishes it): keep
    /// it quick.
    pub fn on_save_error(
        mut self,
        hook: impl Fn(&SaveFailure<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_save_error = Some(Arc::new(hook));
        self
    }

    /// Called after a save that dropped entries to fit the budget or moved
    /// them to the overflow store, with the report (keys, priorities and
    /// sizes; never values) and the request's URI (which route filled the
    /// session); or whose revocation store could not record the id a
    /// `flush` or `cycle_id` gave up ([`SaveReport::unrevoked`]). Runs on
    /// the request's task (or, for the logout of a dropped request, on the
    /// task that finishes it): keep it quick.
    pub fn on_save_report(
        mut self,
        hook: impl Fn(&SaveReport, &Uri) + Send + Sync + 'static,
    ) -> Self {
        self.on_save_report = Some(Arc::new(hook));
        self
    }

    /// Builds the layer.
    ///
    /// # Errors
    ///
    /// As [`SealerBuilder::build`], and
    /// [`InvalidCookie::NameTooLong`](crate::InvalidCookie::NameTooLong)
    /// for a cookie name (prefix included) that leaves no room for even an
    /// empty session's token within the 4096 bytes of name and value
    /// browsers keep: every cookie the layer set would be ignored.
    pub fn build(self) -> Result<SessionLayer, Error> {
        // The prefix in its exact case: browsers that still match it
        // case-sensitively would not bind `__host-id` to this host.
        let name = match self.host_prefix {
            true => {
                let rest = match has_prefix(&self.cookie_name, HOST_PREFIX) {
                    true => &self.cookie_name[HOST_PREFIX.len()..],
                    false => &self.cookie_name[..],
                };
                format!("{HOST_PREFIX}{rest}")
            }
            false => self.cookie_name,
        };
        let mut builder = Sealer::builder(self.ring);
        for configure in self.configure {
            builder = configure(builder);
        }
        // Last, so that a `configure_sealer` closure cannot undo the
        // `__Host-` prefix or the cookie's attributes.
        let sealer = builder
            .cookie_name(name)
            .cookie_settings(self.settings)
            .build()?;
        if !sealer.name_leaves_room_for_a_token() {
            return Err(Error::InvalidCookie(
                crate::error::InvalidCookie::NameTooLong,
            ));
        }
        let shared = |sealer, host_only_removal| {
            Arc::new(Shared {
                sealer,
                save_on_server_error: self.save_on_server_error,
                error_on_lost_changes: self.error_on_lost_changes,
                open_every_request: self.open_every_request,
                on_save_error: self.on_save_error.clone(),
                on_save_report: self.on_save_report.clone(),
                host_only_removal,
            })
        };
        let mut by_domain = Vec::new();
        // The prefix forbids `Domain`, as for `Self::domain`, whether
        // `host_prefix` added it or the name came with it (the cookie
        // would be host-only, and its host-only deletion would delete it).
        let host_only = has_prefix(sealer.cookie_name(), HOST_PREFIX);
        if host_only && !self.domains.is_empty() {
            crate::cookie::warn_setting_overridden("domains", "the __Host- prefix");
        }
        if !host_only {
            let host_only = sealer.cookie_settings().clone().host_only();
            let removal = HeaderValue::from_str(&host_only.removal(sealer.cookie_name()))
                .map_err(|_| Error::InvalidCookie(crate::error::InvalidCookie::Name))?;
            let own = sealer.cookie_settings().domain().map(domain_key);
            for domain in &self.domains {
                let key = domain_key(domain);
                if by_domain.iter().any(|d: &ForDomain| d.domain == key) {
                    continue;
                }
                // One cookie's domain under another's: the browser would
                // hold both and send the older first.
                let nested = |other: &str| is_under(&key, other) || is_under(other, &key);
                if by_domain.iter().any(|d| nested(&d.domain)) || own.as_deref().is_some_and(nested)
                {
                    return Err(Error::InvalidSetting(InvalidSetting::NestedDomains));
                }
                by_domain.push(ForDomain {
                    domain: key,
                    shared: shared(sealer.with_cookie_domain(domain)?, Some(removal.clone())),
                });
            }
        }
        Ok(SessionLayer {
            shared: shared(sealer, None),
            by_domain: by_domain.into(),
        })
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
    by_domain: Arc<[ForDomain]>,
}

impl<S: fmt::Debug> fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // Only the header values are kept; they are parsed when a handler
        // first touches the session.
        let cookies = CookieHeaders::of(request.headers());
        let shared = match self.by_domain.is_empty() {
            true => &self.shared,
            false => shared_for_host(&self.shared, &self.by_domain, request_host(&request)),
        };
        // A host-only cookie of the session's name, from before
        // `domains`, would open before this domain's: whenever this
        // response sets or deletes the cookie, it deletes that one too.
        let host_only_removal = shared.host_only_removal.as_ref().filter(|_| {
            let name = shared.sealer.cookie_name();
            let mut values = request.headers().get_all(header::COOKIE).iter();
            values.any(|value| crate::request::carries_cookie(value.as_bytes(), name))
        });
        let host_only_removal = host_only_removal.cloned();
        let session = LazySession::new(Arc::clone(shared), cookies);
        if let Some(outer) = request.extensions_mut().insert(session.clone()) {
            let sealer = &shared.sealer;
            // Every layer around this one, nearest first.
            let mut enclosing = Some(&outer);
            while let Some(layer) = enclosing {
                // Handlers now see this layer's session only; on the same
                // cookie name under other keys, it would delete the outer
                // one's cookie.
                if layer.sealer().cookie_name() == sealer.cookie_name() {
                    tracing::warn!(
                        event = "layers-share-cookie-name",
                        "two session layers use the same cookie name on one route; the inner one hides the outer"
                    );
                }
                // A layer's previous name that is another's current one:
                // those cookies are the other layer's, to neither open nor
                // delete.
                if layer.sealer().previous_cookie_name() == Some(sealer.cookie_name()) {
                    layer.leave_previous_name();
                }
                if sealer.previous_cookie_name() == Some(layer.sealer().cookie_name()) {
                    session.leave_previous_name();
                }
                enclosing = layer.enclosing();
            }
            session.set_enclosing(outer);
        }
        let uri = request.uri().clone();
        let response = self.inner.call(request);
        let save_on_server_error = self.shared.save_on_server_error;
        let error_on_lost_changes = self.shared.error_on_lost_changes;
        // Outside the future, so that dropping it even before its first
        // poll ends the request for the session.
        let guard = EndOnDrop {
            session,
            uri,
            finished: AtomicBool::new(false),
            span: tracing::Span::current(),
        };
        Box::pin(async move {
            let (session, uri) = (&guard.session, &guard.uri);
            let mut response = match response.await {
                Ok(response) => response,
                Err(error) => {
                    // No response to carry a cookie, so nothing is saved,
                    // but a logout still revokes the old id (with a
                    // revocation store), as on an error response.
                    session.finish(uri, false).await;
                    guard.finished.store(true, Ordering::Relaxed);
                    return Err(error);
                }
            };
            let save = save_on_server_error || !response.status().is_server_error();
            let finished = session.finish(uri, save).await;
            guard.finished.store(true, Ordering::Relaxed);
            if let (true, Some(error)) = (error_on_lost_changes, &finished.lost) {
                return Ok(lost_changes_response(error));
            }
            let headers = response.headers_mut();
            if finished.opened && !varies_on_cookie(headers) {
                headers.append(header::VARY, HeaderValue::from_static("cookie"));
            }
            let name = session.sealer().cookie_name();
            let cookie = finished.set_cookie.filter(|_| {
                if !sets_cookie_named(headers, name) {
                    return true;
                }
                if finished.changed {
                    tracing::warn!(
                        event = "set-cookie-overridden",
                        "the response already sets the session cookie; the layer's Set-Cookie follows it and takes precedence"
                    );
                } else {
                    // Only a refresh, a re-seal or a bad cookie's deletion:
                    // what the response sets (an inner layer's session,
                    // hiding this one from the handlers, or the handler's
                    // own cookie) is newer.
                    tracing::debug!(
                        event = "set-cookie-yielded",
                        "the response already sets the session cookie; the layer's unchanged session is not re-sealed over it"
                    );
                }
                finished.changed
            });
            let sends_cookie = cookie.is_some();
            // Before the session cookie: on a listed domain's own host, a
            // client jar that tells cookies apart by name, domain and path
            // alone (RFC 6265 §5.3, step 11) takes the deletion for the new
            // cookie's, and applies it first.
            if let (true, Some(removal)) = (sends_cookie, host_only_removal) {
                headers.append(header::SET_COOKIE, removal);
            }
            if let Some(cookie) = cookie {
                headers.append(header::SET_COOKIE, cookie);
            }
            let previous_removal = finished.previous_removal.filter(|removal| {
                (sends_cookie || removal.without_session_cookie)
                    // What the response sets under that name (another
                    // layer's cookie) is not the stale one.
                    && !session
                        .sealer()
                        .previous_cookie_name()
                        .is_some_and(|previous| sets_cookie_named(headers, previous))
            });
            let sends_removal = previous_removal.is_some();
            if let Some(removal) = previous_removal {
                headers.append(header::SET_COOKIE, removal.header);
            }
            // A shared cache must not hand this cookie to others: `Vary:
            // Cookie` alone would let it replay one new visitor's session
            // to every visitor without a cookie.
            if sends_cookie || sends_removal {
                make_private(headers);
            }
            Ok(response)
        })
    }
}

/// Ends the request for its session when the layer's future is dropped
/// before `finish` returned (which ends it itself): a change made after
/// that (from a task that outlived a request whose client went away, say)
/// is reported as lost, and a logout the request did not finish is
/// finished on a task of its own.
struct EndOnDrop {
    session: LazySession,
    uri: Uri,
    /// The layer's `finish` returned: it ended the request itself.
    finished: AtomicBool,
    /// The request's span when the layer was called: a future is often
    /// dropped outside it (`tower_http::trace` enters its span only to
    /// call and poll), and what the drop logs belongs to the request.
    span: tracing::Span,
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        if !self.finished.load(Ordering::Relaxed) {
            let _entered = self.span.enter();
            self.session.end_dropped(&mut self.uri);
        }
    }
}

/// The response that replaces the handler's when a failed save lost its
/// changes ([`SessionLayerBuilder::error_on_lost_changes`]): empty, with
/// none of the handler's headers (its `Location`, its cookies), and the
/// error in its extensions ([`LostChanges`]).
fn lost_changes_response<B: Default>(error: &Error) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = super::error_status(error);
    // It depends on the session, and must not be cached in its place.
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("cookie"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.extensions_mut().insert(LostChanges {
        error: error.clone(),
    });
    response
}

/// Whether the response already has a `Set-Cookie` for `name` (set by the
/// handler or an inner layer).
fn sets_cookie_named(headers: &HeaderMap, name: &str) -> bool {
    headers.get_all(header::SET_COOKIE).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|v| crate::cookie::is_named(v, name))
    })
}

/// The trimmed items of the comma-separated header `name`, over all its
/// lines (values that are not text are skipped).
fn list_items(headers: &HeaderMap, name: header::HeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
}

/// Makes the response's `Cache-Control` `private` by the rule of
/// [`private_cache_control`], over all its lines.
fn make_private(headers: &mut HeaderMap) {
    let lines: Option<Vec<&str>> = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .map(|line| line.to_str().ok())
        .collect();
    let Some(lines) = lines else {
        // A line that cannot be read may say anything: it is left as it
        // is, with `private` on a line of its own.
        headers.append(header::CACHE_CONTROL, HeaderValue::from_static("private"));
        return;
    };
    let Some(merged) = private_cache_control(lines) else {
        return;
    };
    // Made of visible text and `, `, so always valid.
    if let Ok(value) = HeaderValue::from_str(&merged) {
        headers.insert(header::CACHE_CONTROL, value);
    }
}

/// Whether the response already varies on `Cookie` (or on everything).
fn varies_on_cookie(headers: &HeaderMap) -> bool {
    list_items(headers, header::VARY)
        .any(|field| field == "*" || field.eq_ignore_ascii_case("cookie"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_control(headers: &HeaderMap) -> Vec<&str> {
        let lines = headers.get_all(header::CACHE_CONTROL).iter();
        lines.map(|line| line.to_str().unwrap()).collect()
    }

    #[test]
    fn make_private_merges_every_line_into_one() {
        let mut headers = HeaderMap::new();
        let lines = [r#"no-cache="a\", b", max-age=1"#, r#" public ,"x,y""#];
        for line in lines {
            headers.append(header::CACHE_CONTROL, HeaderValue::from_static(line));
        }
        make_private(&mut headers);
        assert_eq!(
            cache_control(&headers),
            [r#"private, no-cache="a\", b", max-age=1, "x,y""#]
        );

        let mut headers = HeaderMap::new();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        make_private(&mut headers);
        assert_eq!(cache_control(&headers), ["no-store"]);
    }

    #[test]
    fn make_private_keeps_a_line_that_is_not_text() {
        let mut headers = HeaderMap::new();
        let opaque = HeaderValue::from_bytes(b"public, x=\xff").unwrap();
        headers.insert(header::CACHE_CONTROL, opaque.clone());
        make_private(&mut headers);
        let lines: Vec<_> = headers.get_all(header::CACHE_CONTROL).iter().collect();
        assert_eq!(lines, [&opaque, &HeaderValue::from_static("private")]);
    }
}
