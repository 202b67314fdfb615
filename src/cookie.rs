//! Cookie attributes and the exact `Set-Cookie` header the budget counts.
//!
//! Headers are built with the `cookie` crate; the size budget is measured on
//! the header exactly as it will be sent.

use core::fmt::Write as _;
use core::time::Duration;

use cookie::{time, Cookie, SameSite};

use crate::error::InvalidCookie;

/// Bytes of `Set-Cookie: ` that precede the cookie string on the wire.
pub const SET_COOKIE_PREFIX_LEN: usize = "Set-Cookie: ".len();
/// The default budget for the whole `Set-Cookie` header: 4096 bytes, the
/// size browsers are required to keep (RFC 6265 §6.1).
pub const DEFAULT_BUDGET: usize = 4096;

/// Attributes of the session cookie, with secure defaults: `HttpOnly`,
/// `Secure`, `SameSite=Lax`, `Path=/`, no `Domain`, persistent (`Max-Age`
/// follows the session's expiry).
///
/// A cookie name starting with `__Host-` forces `Secure`, `Path=/` and no
/// `Domain`; one starting with `__Secure-` forces `Secure`; `__Http-`
/// forces `Secure` and `HttpOnly`, and `__Host-Http-` adds `HttpOnly` to
/// what `__Host-` forces (the browsers' rules for those prefixes, which
/// they match case-insensitively, as here). `SameSite=None` also forces
/// `Secure`: browsers refuse such a cookie without it. A sealer built with
/// a setting so overridden (`with_secure(false)` and a `__Host-` name,
/// say) logs it at `WARN` (event `cookie-setting-overridden`).
///
/// ```
/// use sealed_session::{CookieSettings, SameSite};
/// use std::time::Duration;
/// let settings = CookieSettings::default().with_same_site(SameSite::Strict).with_path("/app");
/// let header = settings.set_cookie("id", "TOKEN", Some(Duration::from_secs(60)));
/// assert_eq!(header, "id=TOKEN; HttpOnly; SameSite=Strict; Secure; Path=/app; Max-Age=60");
/// let host = settings.set_cookie("__Host-id", "TOKEN", None);
/// assert_eq!(host, "__Host-id=TOKEN; HttpOnly; SameSite=Strict; Secure; Path=/");
/// assert_eq!((settings.path(), settings.domain()), ("/app", None));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    path: String,
    domain: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: Option<SameSite>,
    partitioned: bool,
    persistent: bool,
    expires: bool,
}

/// The latest time an `Expires` date can name (9999-12-31 23:59:59 UTC):
/// the four-digit years of an HTTP date.
const LATEST_EXPIRES: i64 = 253_402_300_799;

impl Default for CookieSettings {
    fn default() -> Self {
        CookieSettings {
            path: "/".to_owned(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: Some(SameSite::Lax),
            partitioned: false,
            persistent: true,
            expires: false,
        }
    }
}

impl CookieSettings {
    /// The `Path` attribute (default `/`); it must start with `/`, and
    /// characters browsers percent-encode in a URL's path must be given
    /// percent-encoded (`/my%20app`; see
    /// [`InvalidCookie::Path`](crate::InvalidCookie::Path)).
    ///
    /// Changing the path (or the domain) of a deployed cookie leaves
    /// browsers holding the old cookie beside the new one until it
    /// expires: deletions and new cookies go to the new coordinates only.
    /// Both are sent, the longer path first, and the first that opens is
    /// the session (`docs/FORMAT.md` §14.4), so a still-valid old cookie
    /// can shadow the new one, and a logout does not end it unless a
    /// revocation store revokes its id. Change the cookie name at the same
    /// time, so that the old cookie is no candidate at all: each user then
    /// starts a new session, once, unless the old name and settings go to
    /// [`SealerBuilder::previous_cookie`](crate::SealerBuilder::previous_cookie),
    /// which carries the sessions over to the new name and deletes the old
    /// cookies where they were set.
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// The `Domain` attribute (default none: host-only). Its syntax is
    /// checked when the sealer is built; whether browsers accept it is
    /// not: they refuse a public suffix (`com`, `github.io`) and a domain
    /// that does not match the responding host, and keep no cookie then.
    /// Changing it on a deployed cookie: see [`Self::with_path`].
    #[must_use]
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Whether to set `Secure` (default yes; turn off only for plain-HTTP
    /// development). Forced on by the `__Host-` and `__Secure-` prefixes,
    /// `SameSite=None` and `Partitioned`.
    #[must_use]
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Whether to set `HttpOnly` (default yes). Forced on by the
    /// `__Http-` and `__Host-Http-` prefixes.
    #[must_use]
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// The `SameSite` attribute (default `Lax`).
    #[must_use]
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = Some(same_site);
        self
    }

    /// Leaves the `SameSite` attribute out (not `SameSite=None`, which
    /// [`Self::with_same_site`] sends), as Django's
    /// `SESSION_COOKIE_SAMESITE = False` does, for clients that mishandle
    /// it. Each browser then applies its own default: Chromium treats the
    /// cookie as `Lax` (sending it on cross-site top-level POSTs within two
    /// minutes of its setting), Firefox and Safari send it on cross-site
    /// requests, top-level POSTs included, so cross-site request forgery is
    /// then the application's alone to stop.
    ///
    /// ```
    /// use sealed_session::CookieSettings;
    /// let unset = CookieSettings::default().without_same_site();
    /// assert_eq!(unset.same_site(), None);
    /// assert_eq!(unset.set_cookie("id", "TOKEN", None), "id=TOKEN; HttpOnly; Secure; Path=/");
    /// ```
    #[must_use]
    pub fn without_same_site(mut self) -> Self {
        self.same_site = None;
        self
    }

    /// Whether to set `Partitioned` (CHIPS; default no). Partitioned
    /// cookies serve an app embedded in other sites' pages, whose requests
    /// are cross-site: pair it with [`SameSite::None`], as browsers send
    /// neither a `Lax` nor a `Strict` cookie there.
    #[must_use]
    pub fn with_partitioned(mut self, partitioned: bool) -> Self {
        self.partitioned = partitioned;
        self
    }

    /// Persistent cookies carry `Max-Age` (the session's remaining
    /// lifetime; none, hence a browser-session cookie after all, for a
    /// session with no idle timeout, lifetime or end); browser-session
    /// cookies carry none (default persistent).
    /// A session can also choose for itself: a browser-session cookie with
    /// [`Expiry::BrowserSession`](crate::Expiry::BrowserSession), a
    /// persistent one with [`Expiry::At`](crate::Expiry::At) or
    /// [`Expiry::Idle`](crate::Expiry::Idle).
    #[must_use]
    pub fn with_persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// Whether a cookie with `Max-Age` also carries `Expires`, the same
    /// end as an HTTP date (default no). Browsers take `Max-Age` when both
    /// are given; `Expires` serves clients that know only it (Django and
    /// Rails send both, tower-sessions `Max-Age` alone). It takes 39 bytes
    /// of the budget, which the save counts.
    ///
    /// ```
    /// use sealed_session::CookieSettings;
    /// use std::time::Duration;
    /// let settings = CookieSettings::default().with_expires(true);
    /// // Sealed at 2023-11-14 22:13:20 UTC, for a minute.
    /// let header = settings.set_cookie_at("id", "TOKEN", Some(Duration::from_secs(60)), 1_700_000_000);
    /// assert!(header.ends_with("; Max-Age=60; Expires=Tue, 14 Nov 2023 22:14:20 GMT"), "{header}");
    /// ```
    #[must_use]
    pub fn with_expires(mut self, expires: bool) -> Self {
        self.expires = expires;
        self
    }

    /// Whether cookies with `Max-Age` also carry `Expires`.
    pub fn sends_expires(&self) -> bool {
        self.expires
    }

    /// Whether cookies are persistent by default.
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// The `Path` attribute as configured (a `__Host-` name forces `/`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The `Domain` attribute as configured (a `__Host-` name forces none).
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// Whether `Secure` is configured (the cookie name's prefix,
    /// `SameSite=None` and `Partitioned` can force it on besides).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Whether `HttpOnly` is configured (the cookie name's prefix can
    /// force it on besides).
    pub fn is_http_only(&self) -> bool {
        self.http_only
    }

    /// The `SameSite` attribute, if one is sent.
    pub fn same_site(&self) -> Option<SameSite> {
        self.same_site
    }

    /// Whether `Partitioned` is set.
    pub fn is_partitioned(&self) -> bool {
        self.partitioned
    }

    /// Logs at `WARN` each of [`Self::overridden`] for `name`.
    pub(crate) fn warn_overridden(&self, name: &str) {
        for (setting, by) in self.overridden(name) {
            warn_setting_overridden(setting, by);
        }
    }

    /// The configured attributes that `name`'s prefix, `SameSite=None` or
    /// `Partitioned` override, each with what overrides it: all of them
    /// were set on purpose (none is a default), so a sealer warns of them.
    pub(crate) fn overridden(&self, name: &str) -> Vec<(&'static str, &'static str)> {
        let host = has_prefix(name, HOST_PREFIX);
        let host_http = has_prefix(name, HOST_HTTP_PREFIX);
        let http = has_prefix(name, HTTP_PREFIX);
        let mut overridden = Vec::new();
        let secure_by = [
            (host_http, "the __Host-Http- prefix"),
            (host, "the __Host- prefix"),
            (http, "the __Http- prefix"),
            (has_prefix(name, SECURE_PREFIX), "the __Secure- prefix"),
            (self.same_site == Some(SameSite::None), "SameSite=None"),
            (self.partitioned, "Partitioned"),
        ]
        .into_iter()
        .find_map(|(applies, by)| applies.then_some(by));
        if let (false, Some(by)) = (self.secure, secure_by) {
            overridden.push(("secure", by));
        }
        match (self.http_only, host_http, http) {
            (false, true, _) => overridden.push(("http_only", "the __Host-Http- prefix")),
            (false, _, true) => overridden.push(("http_only", "the __Http- prefix")),
            _ => {}
        }
        if host && self.path != "/" {
            overridden.push(("path", "the __Host- prefix"));
        }
        if host && self.domain.is_some() {
            overridden.push(("domain", "the __Host- prefix"));
        }
        overridden
    }

    fn build<'c>(&'c self, name: &'c str, value: &'c str) -> cookie::CookieBuilder<'c> {
        let host = has_prefix(name, HOST_PREFIX);
        // `__Host-Http-` starts with `__Host-`, which covers the rest.
        let http = has_prefix(name, HTTP_PREFIX) || has_prefix(name, HOST_HTTP_PREFIX);
        let secure = self.secure
            || host
            || http
            || has_prefix(name, SECURE_PREFIX)
            || self.same_site == Some(SameSite::None)
            || self.partitioned;
        let mut builder = Cookie::build((name, value))
            .http_only(self.http_only || http)
            .secure(secure)
            .partitioned(self.partitioned)
            .path(if host { "/" } else { self.path.as_str() });
        if let (Some(domain), false) = (&self.domain, host) {
            builder = builder.domain(domain.as_str());
        }
        if let Some(same_site) = self.same_site {
            builder = builder.same_site(same_site);
        }
        builder
    }

    /// The cookie string of a `Set-Cookie` header (without `Set-Cookie: `),
    /// with `Max-Age` when `max_age` is given, in whole seconds rounded up
    /// (`Max-Age=0` deletes a cookie: only a zero `max_age` gives it).
    ///
    /// Nothing is checked here: a name, path or domain that [`Self::check`]
    /// refuses, or a value with `;`, gives a string that may carry
    /// attributes of its own. A [`Sealer`](crate::Sealer) checks its
    /// settings when built, and its values are base64url.
    ///
    /// It never carries `Expires`, which needs the time of the save:
    /// [`Self::set_cookie_at`] adds it when [`Self::with_expires`] asks.
    pub fn set_cookie(&self, name: &str, value: &str, max_age: Option<Duration>) -> String {
        self.cookie_string(name, value, max_age, None)
    }

    /// As [`Self::set_cookie`], for a cookie sent at `now` (Unix seconds):
    /// with [`Self::with_expires`] and a `max_age`, it also carries
    /// `Expires` at `now` plus `max_age` (at most the end of year 9999).
    pub fn set_cookie_at(
        &self,
        name: &str,
        value: &str,
        max_age: Option<Duration>,
        now: u64,
    ) -> String {
        self.cookie_string(name, value, max_age, Some(now).filter(|_| self.expires))
    }

    fn cookie_string(
        &self,
        name: &str,
        value: &str,
        max_age: Option<Duration>,
        expires_from: Option<u64>,
    ) -> String {
        let mut builder = self.build(name, value);
        if let Some(max_age) = max_age {
            let seconds = i64::try_from(crate::sealer::whole_seconds(max_age)).unwrap_or(i64::MAX);
            builder = builder.max_age(time::Duration::seconds(seconds));
            if let Some(now) = expires_from {
                let now = i64::try_from(now).unwrap_or(i64::MAX);
                let end = now.saturating_add(seconds).min(LATEST_EXPIRES);
                if let Ok(end) = time::OffsetDateTime::from_unix_timestamp(end) {
                    builder = builder.expires(end);
                }
            }
        }
        // Sized up front: `to_string` would grow the string several times
        // on every save.
        let expires = if expires_from.is_some() { 40 } else { 0 };
        let attributes =
            96 + expires + self.path.len() + self.domain.as_ref().map_or(0, String::len);
        let mut header = String::with_capacity(name.len() + value.len() + attributes);
        write!(header, "{}", builder.build()).expect("writing to a String cannot fail");
        header
    }

    /// These settings without a `Domain`: a host-only cookie's.
    #[cfg(feature = "axum")]
    pub(crate) fn host_only(mut self) -> Self {
        self.domain = None;
        self
    }

    /// The cookie string that deletes the cookie (empty value, `Max-Age=0`
    /// and an expiry in the past), with the same path and domain. Unchecked,
    /// as [`Self::set_cookie`].
    pub fn removal(&self, name: &str) -> String {
        // A fixed past date, not `Cookie::make_removal`: that reads the
        // system clock, which panics on `wasm32-unknown-unknown`.
        self.build(name, "")
            .max_age(time::Duration::ZERO)
            .expires(time::OffsetDateTime::UNIX_EPOCH)
            .build()
            .to_string()
    }

    /// Refuses a name, path or domain that cannot be sent as configured:
    /// found at start-up rather than as a missing `Set-Cookie` on every
    /// response. [`SealerBuilder::build`](crate::SealerBuilder::build)
    /// calls it; so should code that builds cookie strings with
    /// [`Self::set_cookie`] from settings of its own.
    ///
    /// # Errors
    ///
    /// The [`InvalidCookie`] kind of the first setting refused.
    ///
    /// ```
    /// use sealed_session::{CookieSettings, InvalidCookie};
    /// let settings = CookieSettings::default().with_path("/app; Domain=example.com");
    /// assert_eq!(settings.check("id"), Err(InvalidCookie::Path));
    /// assert_eq!(CookieSettings::default().check("a b"), Err(InvalidCookie::Name));
    /// ```
    pub fn check(&self, name: &str) -> Result<(), InvalidCookie> {
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(token) {
            return Err(InvalidCookie::Name);
        }
        // A path not starting with `/` is replaced by each response's
        // directory (RFC 6265 5.2.4), so copies would pile up under several
        // paths, each beyond the reach of one deletion cookie. Under the
        // `__Host-` prefix the path is not sent (it is `/`).
        let path_sent = !has_prefix(name, HOST_PREFIX);
        // Browsers ignore a longer `Path` or `Domain` (RFC 6265bis §5.6),
        // so the path would again be each response's directory. They keep
        // a path with a character they percent-encode in URLs (a space,
        // `"`, …) or read as a separator (`?`, `#`, `\`), but no request
        // path ever matches it: the cookie would never come back.
        let path_ok = self.path.len() <= MAX_ATTRIBUTE_LEN
            && self.path.starts_with('/')
            && self
                .path
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b";\"#<>?\\^`{|}".contains(&b));
        if path_sent && !path_ok {
            return Err(InvalidCookie::Path);
        }
        let host = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.';
        if let Some(domain) = &self.domain {
            // Empty (or only the leading dot browsers ignore), or with an
            // empty label (`a..b`, a trailing dot), it names no host the
            // browser would match: at best a host-only cookie, not what
            // was asked.
            let host_name = domain.strip_prefix('.').unwrap_or(domain);
            if host_name.split('.').any(str::is_empty)
                || !domain.bytes().all(host)
                // As sent: without the leading dot.
                || host_name.len() > MAX_ATTRIBUTE_LEN
            {
                return Err(InvalidCookie::Domain);
            }
        }
        Ok(())
    }
}

/// Logs that a cookie setting given (`setting`) is overridden, and by what.
pub(crate) fn warn_setting_overridden(setting: &'static str, by: &'static str) {
    tracing::warn!(
        event = "cookie-setting-overridden",
        setting,
        by,
        "a cookie setting given is overridden, as browsers require"
    );
}

/// The cookie-name prefix that binds a cookie to this host.
pub(crate) const HOST_PREFIX: &str = "__Host-";
const SECURE_PREFIX: &str = "__Secure-";
const HTTP_PREFIX: &str = "__Http-";
const HOST_HTTP_PREFIX: &str = "__Host-Http-";

/// The longest `Path` or `Domain` value browsers accept, in bytes.
const MAX_ATTRIBUTE_LEN: usize = 1024;

/// The most bytes of a cookie's name and value together that browsers
/// keep: RFC 6265bis has them ignore a longer cookie entirely, whatever
/// the header's length (Chromium reports `NameValuePairExceedsMaxSize`;
/// Firefox, like Chromium, keeps the previous cookie). Saves hold the
/// session cookie to it under any budget.
pub const MAX_NAME_VALUE_LEN: usize = 4096;

/// Whether `name` starts with `prefix`, ignoring ASCII case (as browsers
/// match the cookie name prefixes).
pub(crate) fn has_prefix(name: &str, prefix: &str) -> bool {
    name.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

/// Whether `pair`, one `;`-separated piece of a `Cookie` header, is a
/// cookie named exactly `name` (FORMAT.md §14.4). Only the separators' own
/// white space, SP and HTAB, is taken from around the name: browsers apply
/// the `__Host-` and `__Secure-` rules to the name as sent, so one that
/// differs by any other character (U+2000, NBSP) is another cookie, which
/// a sibling subdomain may set.
pub(crate) fn is_named(pair: &str, name: &str) -> bool {
    pair.split_once('=')
        .is_some_and(|(sent, _)| sent.trim_matches([' ', '\t']) == name)
}

/// Bytes of the whole header line `Set-Cookie: <cookie string>`, as the
/// budget counts it.
pub fn header_len(cookie_string: &str) -> usize {
    SET_COOKIE_PREFIX_LEN + cookie_string.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_follows_max_age_when_asked_for() {
        let with = CookieSettings::default().with_expires(true);
        let minute = Some(Duration::from_secs(60));
        let t0 = 1_700_000_000;
        assert!(with
            .set_cookie_at("id", "v", minute, t0)
            .ends_with("; Max-Age=60; Expires=Tue, 14 Nov 2023 22:14:20 GMT"));
        // Neither without a Max-Age, nor unasked, nor from `set_cookie`.
        assert!(!with.set_cookie_at("id", "v", None, t0).contains("Expires"));
        let without = CookieSettings::default();
        assert!(!without
            .set_cookie_at("id", "v", minute, t0)
            .contains("Expires"));
        assert!(!with.set_cookie("id", "v", minute).contains("Expires"));
        // The same length at any time: the year stops at 9999.
        let far = with.set_cookie_at("id", "v", Some(Duration::from_secs(u64::MAX)), u64::MAX);
        assert!(
            far.ends_with("; Expires=Fri, 31 Dec 9999 23:59:59 GMT"),
            "{far}"
        );
        let early = with.set_cookie_at("id", "v", Some(Duration::ZERO), 0);
        assert!(
            early.ends_with("; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
            "{early}"
        );
    }

    #[test]
    fn max_age_rounds_up_so_only_zero_deletes() {
        let settings = CookieSettings::default();
        let max_age = |d: Duration| settings.set_cookie("id", "v", Some(d));
        assert!(max_age(Duration::ZERO).ends_with("; Max-Age=0"));
        assert!(max_age(Duration::from_millis(1)).ends_with("; Max-Age=1"));
        assert!(max_age(Duration::from_secs(60)).ends_with("; Max-Age=60"));
        assert!(max_age(Duration::from_millis(60_001)).ends_with("; Max-Age=61"));
        assert!(max_age(Duration::MAX).ends_with(&format!("; Max-Age={}", i64::MAX)));
    }

    #[test]
    fn only_sp_and_htab_surround_a_cookie_name() {
        for pair in [
            "__Host-id=v",
            " __Host-id=v",
            "\t__Host-id \t=v",
            "__Host-id=",
        ] {
            assert!(is_named(pair, "__Host-id"), "{pair:?}");
        }
        // `str::trim`, which the cookie crate's parser applies, would take
        // these for `__Host-id`; browsers do not, and let any host set them.
        for pair in [
            "\u{2000}__Host-id=v",
            "\u{a0}__Host-id=v",
            "__Host-id\u{3000}=v",
            "\n__Host-id=v",
            "__host-id=v",
            "__Host-id",
            "__Host-idx=v",
        ] {
            assert!(!is_named(pair, "__Host-id"), "{pair:?}");
        }
    }

    #[test]
    fn prefixes_are_matched_ignoring_case() {
        let settings = CookieSettings::default()
            .with_secure(false)
            .with_path("/app")
            .with_domain("example.com");
        assert_eq!(
            settings.set_cookie("__HOST-id", "v", None),
            "__HOST-id=v; HttpOnly; SameSite=Lax; Secure; Path=/"
        );
        assert!(settings
            .set_cookie("__secure-id", "v", None)
            .contains("; Secure;"));
        assert!(!settings
            .set_cookie("__Hostile", "v", None)
            .contains("Secure"));
        assert!(!settings.set_cookie("id", "v", None).contains("Secure"));
    }

    #[test]
    fn http_prefixes_force_http_only() {
        let lax = CookieSettings::default()
            .with_secure(false)
            .with_http_only(false)
            .with_path("/app")
            .with_domain("example.com");
        assert_eq!(
            lax.set_cookie("__Http-id", "v", None),
            "__Http-id=v; HttpOnly; SameSite=Lax; Secure; Path=/app; Domain=example.com"
        );
        assert_eq!(
            lax.set_cookie("__host-http-id", "v", None),
            "__host-http-id=v; HttpOnly; SameSite=Lax; Secure; Path=/"
        );
        assert_eq!(
            lax.removal("__HTTP-id"),
            "__HTTP-id=; HttpOnly; SameSite=Lax; Secure; Path=/app; Domain=example.com; \
             Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(
            lax.set_cookie("__Httpx", "v", None),
            "__Httpx=v; SameSite=Lax; Path=/app; Domain=example.com"
        );
    }

    #[test]
    fn a_path_or_domain_over_1024_bytes_is_refused() {
        let path = |len: usize| format!("/{}", "a".repeat(len - 1));
        let domain = |len: usize| format!("{}.com", "a".repeat(len - 4));
        let settings = CookieSettings::default();
        assert!(settings.clone().with_path(path(1024)).check("id").is_ok());
        assert_eq!(
            settings.clone().with_path(path(1025)).check("id"),
            Err(InvalidCookie::Path)
        );
        // Not sent under `__Host-`, so not checked.
        assert!(settings
            .clone()
            .with_path(path(1025))
            .check("__Host-id")
            .is_ok());
        assert!(settings
            .clone()
            .with_domain(domain(1024))
            .check("id")
            .is_ok());
        let dotted = format!(".{}", domain(1024));
        assert!(settings.clone().with_domain(dotted).check("id").is_ok());
        assert_eq!(
            settings.with_domain(domain(1025)).check("id"),
            Err(InvalidCookie::Domain)
        );
    }

    #[test]
    fn overridden_settings_are_named_with_what_overrides_them() {
        let defaults = CookieSettings::default();
        for name in [
            "id",
            "__Host-id",
            "__Secure-id",
            "__Http-id",
            "__Host-Http-id",
        ] {
            assert_eq!(defaults.overridden(name), [], "{name}");
        }
        let loose = defaults
            .with_secure(false)
            .with_http_only(false)
            .with_path("/app")
            .with_domain("example.com");
        assert_eq!(loose.overridden("id"), []);
        assert_eq!(
            loose.overridden("__host-http-id"),
            [
                ("secure", "the __Host-Http- prefix"),
                ("http_only", "the __Host-Http- prefix"),
                ("path", "the __Host- prefix"),
                ("domain", "the __Host- prefix"),
            ]
        );
        assert_eq!(
            loose.overridden("__Host-id"),
            [
                ("secure", "the __Host- prefix"),
                ("path", "the __Host- prefix"),
                ("domain", "the __Host- prefix"),
            ]
        );
        assert_eq!(
            loose.overridden("__Http-id"),
            [
                ("secure", "the __Http- prefix"),
                ("http_only", "the __Http- prefix")
            ]
        );
        assert_eq!(
            loose.overridden("__Secure-id"),
            [("secure", "the __Secure- prefix")]
        );
        let cross_site = loose.clone().with_same_site(SameSite::None);
        assert_eq!(cross_site.overridden("id"), [("secure", "SameSite=None")]);
        let partitioned = loose.with_partitioned(true);
        assert_eq!(partitioned.overridden("id"), [("secure", "Partitioned")]);
    }

    #[test]
    fn same_site_none_and_partitioned_force_secure() {
        let plain = CookieSettings::default().with_secure(false);
        let none = plain.clone().with_same_site(SameSite::None);
        assert!(none
            .set_cookie("id", "v", None)
            .contains("SameSite=None; Secure"));
        assert!(none.removal("id").contains("Secure"));
        let partitioned = plain.with_partitioned(true).set_cookie("id", "v", None);
        assert_eq!(partitioned.matches("Secure").count(), 1, "{partitioned}");
    }

    /// Without `SameSite`, neither the cookie nor its removal carries the
    /// attribute, and `Secure` stays as configured.
    #[test]
    fn same_site_can_be_left_out() {
        let unset = CookieSettings::default()
            .with_secure(false)
            .without_same_site();
        assert_eq!(unset.same_site(), None);
        let header = unset.set_cookie("id", "v", Some(Duration::from_secs(60)));
        assert_eq!(header, "id=v; HttpOnly; Path=/; Max-Age=60");
        let removal = unset.removal("id");
        assert!(
            !removal.contains("SameSite") && !removal.contains("Secure"),
            "{removal}"
        );
    }

    /// The getters report what the builder methods set, and `Partitioned`
    /// is sent when set.
    #[test]
    fn getters_report_the_settings() {
        let default = CookieSettings::default();
        let read = |s: &CookieSettings| {
            (
                s.path().to_owned(),
                s.domain().map(str::to_owned),
                s.is_secure(),
                s.is_http_only(),
                s.same_site(),
                s.is_partitioned(),
                s.is_persistent(),
            )
        };
        assert_eq!(
            read(&default),
            (
                "/".into(),
                None,
                true,
                true,
                Some(SameSite::Lax),
                false,
                true
            )
        );
        let custom = default
            .with_path("/app")
            .with_domain("example.com")
            .with_secure(false)
            .with_http_only(false)
            .with_same_site(SameSite::Strict)
            .with_partitioned(true)
            .with_persistent(false);
        assert_eq!(
            read(&custom),
            (
                "/app".into(),
                Some("example.com".into()),
                false,
                false,
                Some(SameSite::Strict),
                true,
                false
            )
        );
        assert_eq!(
            custom.set_cookie("id", "v", None),
            "id=v; SameSite=Strict; Partitioned; Secure; Path=/app; Domain=example.com"
        );
    }

    /// The longest path and domain `check` accepts still give a header
    /// (the capacity computed for it must not underflow).
    #[test]
    fn the_longest_path_and_domain_accepted_give_a_header() {
        let path = format!("/{}", "p".repeat(1023));
        let domain = format!("{}.com", "d".repeat(1020));
        for (path, domain) in [(path.as_str(), "example.com"), ("/", domain.as_str())] {
            let settings = CookieSettings::default()
                .with_path(path)
                .with_domain(domain);
            assert_eq!(settings.check("id"), Ok(()));
            assert_eq!(
                settings.set_cookie("id", "v", Some(Duration::from_secs(60))),
                format!(
                    "id=v; HttpOnly; SameSite=Lax; Secure; Path={path}; Domain={domain}; Max-Age=60"
                )
            );
        }
    }
}
