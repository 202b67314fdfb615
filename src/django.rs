//! Django `signed_cookies` session cookies: read, write, and migrate to
//! sealed sessions.
//!
//! With `SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"`
//! Django keeps the whole session in the cookie, *signed but not encrypted*,
//! as `django.core.signing.dumps(session, salt=SESSION_SALT, compress=True)`
//! with its JSON serializer and HMAC-SHA256 signatures (Django 4.0 and
//! later, and 3.1–3.2 with the default `DEFAULT_HASHING_ALGORITHM =
//! "sha256"`; sites that kept the transitional `"sha1"` sign with SHA-1,
//! which this module does not read or write):
//!
//! ```text
//! [.]BASE64URL(JSON or zlib(JSON)) ":" BASE62(unix seconds) ":" BASE64URL(HMAC-SHA256)
//! ```
//!
//! - the JSON is compact (`,` and `:` separators) and ASCII only (every
//!   other character is a `\uXXXX` escape, astral ones as surrogate pairs);
//! - it is zlib-compressed, marked by a leading `.`, only when the
//!   compressed form is more than one byte shorter;
//! - base64 is URL-safe without `=` padding;
//! - the signature is HMAC-SHA256 over everything before the last `:`,
//!   under the key `SHA-256(salt + "signer" + SECRET_KEY)`;
//! - `SECRET_KEY` is tried first, then each of `SECRET_KEY_FALLBACKS` in
//!   order, each comparison in constant time;
//! - the session is too old when `now − timestamp > max_age`
//!   (`SESSION_COOKIE_AGE`, two weeks by default), in whole seconds: an age
//!   of exactly `max_age` is still valid here, where Django, comparing
//!   fractional seconds, expires it during that second;
//! - a `_session_expiry` entry (`set_expiry`) ends the session if it comes
//!   first; Django's backend enforces it from ticket #27775 on, where a
//!   later one also outlives `max_age`
//!   ([`DjangoCodecBuilder::own_expiry_replaces_max_age`]).
//!
//! [`DjangoCodec`] reads and writes that format; [`migrate_cookie`] turns a
//! Django cookie into a sealed-session cookie. `docs/DJANGO.md` explains how
//! to share sessions with a Django application.
//!
//! ```
//! use std::sync::Arc;
//! use sealed_session::django::DjangoCodec;
//! use sealed_session::{Error, FixedClock};
//!
//! let codec = DjangoCodec::builder("django-insecure-example-secret")
//!     .fallback_secret("the-previous-secret")
//!     .clock(Arc::new(FixedClock::new(1_700_000_000)))
//!     .build()?;
//!
//! let mut entries = serde_json::Map::new();
//! entries.insert("_auth_user_id".into(), "42".into());
//! let cookie = codec.seal(&entries)?;
//! assert_eq!(codec.open(&cookie)?, entries);
//!
//! // Tampering, truncation, garbage: an error kind, never a panic.
//! let tampered = format!("e{cookie}");
//! assert_eq!(codec.open(&tampered).unwrap_err().kind(), "authentication-failed");
//! assert_eq!(codec.open("garbage").unwrap_err().kind(), "malformed");
//! # Ok::<(), Error>(())
//! ```
//!
//! ## What differs from Django
//! - JSON objects are held in a `serde_json::Map`, which keeps keys sorted:
//!   a session written back lists its keys in sorted order (Django does not
//!   care about the order).
//! - Integers beyond 64 bits become floats (beyond a float's range they
//!   are refused), and cookies whose JSON holds `NaN`, `Infinity`, lone
//!   surrogates or 128 levels of nesting or more are refused as
//!   [`Malformed::Json`]; Django writes these only for such values.
//! - Only canonical base64 (as Django writes it) is accepted, and nothing
//!   may follow the zlib stream; timestamps must fit in 64 bits.
//! - zlib implementations differ in the bytes they produce: a compressed
//!   cookie written here is not byte-identical to Django's, but Django reads
//!   it. The decision to compress applies Django's rule to this crate's
//!   compressor output.

use core::fmt;
use core::time::Duration;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use flate2::{Compress, FlushCompress, Status};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

/// The offset type of [`DjangoCodecBuilder::naive_dates_offset`], from the
/// `time` crate.
pub use time::UtcOffset;

use crate::clock::Clock;
use crate::{
    Error, Expired, Expiry, InvalidEntryKey, InvalidKey, Limit, Limits, Malformed, Priority, Saved,
    Sealer, Session, ValueError,
};

/// The salt Django's `signed_cookies` session backend signs with.
pub const SESSION_SALT: &str = "django.contrib.sessions.backends.signed_cookies";

/// Django's default `SESSION_COOKIE_AGE`: two weeks.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(14 * 24 * 3600);

/// Prefix given to Django's `_`-prefixed keys by [`migrated_key`].
pub const MIGRATED_KEY_PREFIX: &str = "django";

/// Separator between payload, timestamp and signature (Django's `Signer.sep`).
const SEP: char = ':';
/// The zlib level of Python's `zlib.compress` default (`Z_DEFAULT_COMPRESSION`).
const ZLIB_LEVEL: u32 = 6;
/// Django's base62 alphabet (`signing.BASE62_ALPHABET`).
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

const _: () = assert!(BASE62.len() == 62);

use crate::inflate::{inflate_capped, Wrapper};
use crate::key::django_signature::{DerivedKey, ENCODED_LEN};

/// Reads and writes Django `signed_cookies` session cookies under one
/// `SECRET_KEY`, its fallbacks, a salt, a max age, limits and a clock.
///
/// Build one with [`DjangoCodec::builder`]; it is `Send + Sync`.
pub struct DjangoCodec {
    /// The primary key first, then the fallbacks in the order given.
    keys: Vec<DerivedKey>,
    max_age: Option<u64>,
    own_expiry_replaces_max_age: bool,
    expire_at_browser_close: bool,
    naive_dates_offset: UtcOffset,
    limits: Limits,
    compress: bool,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for DjangoCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DjangoCodec")
            .field("keys", &self.keys.len())
            .field("max_age", &self.max_age)
            .field("naive_dates_offset", &self.naive_dates_offset)
            .field("limits", &self.limits)
            .field("compress", &self.compress)
            .finish_non_exhaustive()
    }
}

/// Builder for [`DjangoCodec`].
#[must_use]
pub struct DjangoCodecBuilder {
    secrets: Vec<Zeroizing<Vec<u8>>>,
    salt: String,
    max_age: Option<u64>,
    own_expiry_replaces_max_age: bool,
    expire_at_browser_close: bool,
    naive_dates_offset: UtcOffset,
    limits: Limits,
    compress: bool,
    clock: Option<Arc<dyn Clock>>,
}

impl fmt::Debug for DjangoCodecBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DjangoCodecBuilder")
            .field("secrets", &self.secrets.len())
            .field("salt", &self.salt)
            .field("max_age", &self.max_age)
            .field("naive_dates_offset", &self.naive_dates_offset)
            .finish_non_exhaustive()
    }
}

impl DjangoCodec {
    /// Starts a codec for Django's `SECRET_KEY` (its UTF-8 bytes, as Django's
    /// `force_bytes` gives them).
    ///
    /// Defaults: salt [`SESSION_SALT`], max age [`DEFAULT_MAX_AGE`],
    /// dates without an offset read at UTC+14
    /// ([`DjangoCodecBuilder::naive_dates_offset`]), [`Limits::default`],
    /// compression as Django's backend does, the system clock.
    pub fn builder(secret: impl AsRef<[u8]>) -> DjangoCodecBuilder {
        DjangoCodecBuilder {
            secrets: vec![Zeroizing::new(secret.as_ref().to_vec())],
            salt: SESSION_SALT.to_owned(),
            max_age: Some(DEFAULT_MAX_AGE.as_secs()),
            own_expiry_replaces_max_age: false,
            expire_at_browser_close: false,
            naive_dates_offset: EARLIEST_OFFSET,
            limits: Limits::default(),
            compress: true,
            clock: None,
        }
    }
}

impl DjangoCodecBuilder {
    /// Adds a secret from `SECRET_KEY_FALLBACKS`; fallbacks are tried after
    /// `SECRET_KEY`, in the order added, as Django tries them. An empty one
    /// fails [`DjangoCodecBuilder::build`] (Django signs with `SECRET_KEY`
    /// in its place, which is tried anyway: leave it out).
    pub fn fallback_secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.secrets.push(Zeroizing::new(secret.as_ref().to_vec()));
        self
    }

    /// The signing salt (default [`SESSION_SALT`]); another salt reads and
    /// writes `signing.dumps(..., salt=..., compress=True)` values of other
    /// Django components, when they are JSON objects: `_session_expiry`
    /// is still read as a session's, and the max age still applies (two
    /// weeks unless changed; `signing.loads` defaults to none, as
    /// [`DjangoCodecBuilder::no_max_age`]).
    pub fn salt(mut self, salt: impl Into<String>) -> Self {
        self.salt = salt.into();
        self
    }

    /// Maximum age, whole seconds, a fraction rounded up as the sealer's
    /// settings are (Django's `SESSION_COOKIE_AGE`, default
    /// [`DEFAULT_MAX_AGE`]).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(crate::sealer::whole_seconds(max_age));
        self
    }

    /// Accepts cookies of any age (`signing.loads(..., max_age=None)`).
    pub fn no_max_age(mut self) -> Self {
        self.max_age = None;
        self
    }

    /// Whether a session's own expiry (`_session_expiry`, from
    /// `set_expiry`) replaces the max age, so that a later one keeps the
    /// session valid past it, as Django's backend decides from ticket
    /// #27775 on (Django's main branch as of this writing). Default no: a
    /// session ends at the earlier of the two. Django 5.2 and earlier check
    /// only the max age on the server (the own expiry reaches the browser
    /// as the cookie's `Max-Age`), so this never accepts a cookie they
    /// would refuse.
    pub fn own_expiry_replaces_max_age(mut self, replaces: bool) -> Self {
        self.own_expiry_replaces_max_age = replaces;
        self
    }

    /// Django's `SESSION_EXPIRE_AT_BROWSER_CLOSE` (default `false`, as in
    /// Django): whether a session without an expiry of its own (no
    /// `_session_expiry`, or `null`) ends when the browser closes. Set it
    /// as the Django site does, or [`migrate_session`] and
    /// [`migrate_cookie`] turn such a site's "until the browser closes"
    /// sessions into persistent cookies (a login that outlives the browser
    /// on a shared computer). Opening and sealing Django cookies do not
    /// depend on it: Django's own middleware decides the `Max-Age`.
    pub fn expire_at_browser_close(mut self, enabled: bool) -> Self {
        self.expire_at_browser_close = enabled;
        self
    }

    /// The UTC offset of the Django site's `TIME_ZONE`, for a
    /// `_session_expiry` date written without one (`USE_TZ = False`
    /// writes local time; Django reads it in `TIME_ZONE`). Default
    /// UTC+14, the largest offset in use: such a date is read as the
    /// earliest instant it can mean, so that a session never ends later
    /// than Django says, whatever the zone (west of it, it ends earlier,
    /// by as much as the offsets differ: a short `set_expiry` may then be
    /// already past). For a zone with daylight saving time, give the
    /// larger of its offsets (usually its summer one): early by the
    /// difference the rest of the year, never late. Dates with an offset (`USE_TZ = True`,
    /// Django's default) are read as written.
    ///
    /// ```
    /// use sealed_session::django::{DjangoCodec, UtcOffset};
    /// // TIME_ZONE = "Asia/Tokyo", USE_TZ = False
    /// let codec = DjangoCodec::builder("django-insecure-secret")
    ///     .naive_dates_offset(UtcOffset::from_hms(9, 0, 0)?)
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn naive_dates_offset(mut self, offset: UtcOffset) -> Self {
        self.naive_dates_offset = offset;
        self
    }

    /// Input and decompression limits. Only [`Limits::max_token_len`] (longest
    /// cookie accepted or written) and [`Limits::max_decompressed`] (largest
    /// JSON after decompression) apply here. Django has no decompression
    /// limit: a cookie of highly repetitive JSON (zlib reaches about
    /// 1000:1) that Django reads can exceed the default 64 KiB here and be
    /// refused with [`Limit::DecompressedSize`]; raise
    /// [`Limits::with_max_decompressed`] if your sessions hold such data.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether [`DjangoCodec::seal`] may compress (default `true`, as the
    /// session backend's `compress=True`). Reading always accepts both.
    pub fn compress(mut self, compress: bool) -> Self {
        self.compress = compress;
        self
    }

    /// The clock used for timestamps and max-age checks (default: the system
    /// clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Derives the signing keys.
    ///
    /// # Errors
    ///
    /// [`InvalidKey::EmptySecret`] if any secret is empty (Django
    /// refuses an empty `SECRET_KEY`), and with [`InvalidKey::EmptySalt`]
    /// for an empty salt (Django's signer replaces it with the path of its
    /// class, which differs between Django's signers). On
    /// `wasm32-unknown-unknown` a clock must be given, as for [`Sealer`], or
    /// this fails with [`Error::NoClock`].
    pub fn build(self) -> Result<DjangoCodec, Error> {
        if self.secrets.iter().any(|s| s.is_empty()) {
            return Err(Error::InvalidKey(InvalidKey::EmptySecret));
        }
        if self.salt.is_empty() {
            return Err(Error::InvalidKey(InvalidKey::EmptySalt));
        }
        let keys = self
            .secrets
            .iter()
            .map(|s| DerivedKey::derive(&self.salt, s))
            .collect();
        let clock = match self.clock {
            Some(clock) => clock,
            None => crate::clock::default_clock().ok_or(Error::NoClock)?,
        };
        Ok(DjangoCodec {
            keys,
            max_age: self.max_age,
            own_expiry_replaces_max_age: self.own_expiry_replaces_max_age,
            expire_at_browser_close: self.expire_at_browser_close,
            naive_dates_offset: self.naive_dates_offset,
            limits: self.limits,
            compress: self.compress,
            clock,
        })
    }
}

/// An opened Django cookie: the session entries and what the cookie said
/// about itself.
#[derive(Clone, PartialEq)]
pub struct DjangoSession {
    entries: Map<String, Value>,
    timestamp: i64,
    compressed: bool,
    key_index: usize,
}

/// Keys only: the values are the session's contents (`_auth_user_hash`
/// among them).
impl fmt::Debug for DjangoSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DjangoSession")
            .field("keys", &self.entries.keys().collect::<Vec<_>>())
            .field("timestamp", &self.timestamp)
            .field("compressed", &self.compressed)
            .field("key_index", &self.key_index)
            .finish()
    }
}

impl DjangoSession {
    /// The session dictionary.
    pub fn entries(&self) -> &Map<String, Value> {
        &self.entries
    }

    /// The session dictionary, by value.
    pub fn into_entries(self) -> Map<String, Value> {
        self.entries
    }

    /// When the cookie was signed, in Unix seconds.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Whether the payload was zlib-compressed.
    pub fn was_compressed(&self) -> bool {
        self.compressed
    }

    /// Whether a fallback secret (not `SECRET_KEY`) verified the signature:
    /// the cookie should be written again under the current secret.
    pub fn opened_with_fallback(&self) -> bool {
        self.key_index > 0
    }
}

impl DjangoCodec {
    /// Opens a cookie into the session dictionary.
    ///
    /// # Errors
    ///
    /// Checks, in order: length ([`Limit::TokenLength`]), structure
    /// ([`Malformed::Truncated`]), signature
    /// ([`Error::AuthenticationFailed`]), timestamp
    /// ([`Malformed::Timestamp`]), base64 ([`Malformed::Base64`]),
    /// zlib and size ([`Malformed::Compression`],
    /// [`Limit::DecompressedSize`]), JSON ([`Malformed::Json`], also for a
    /// `_session_expiry` Django would not read), then whether the session
    /// has ended: at its own expiry from `set_expiry` ([`Expired::Session`])
    /// or `max_age` after the signed time ([`Expired::Idle`]), whichever
    /// comes first (see [`DjangoCodecBuilder::own_expiry_replaces_max_age`]
    /// for Django's newer rule). Nothing is decoded or decompressed before
    /// the signature verifies.
    pub fn open(&self, cookie: &str) -> Result<Map<String, Value>, Error> {
        self.open_session(cookie).map(DjangoSession::into_entries)
    }

    /// Opens a cookie, also reporting its timestamp, compression and whether
    /// a fallback secret verified it.
    ///
    /// # Errors
    ///
    /// As [`DjangoCodec::open`].
    pub fn open_session(&self, cookie: &str) -> Result<DjangoSession, Error> {
        if cookie.len() > self.limits.max_token_len() {
            return Err(Error::LimitExceeded(Limit::TokenLength));
        }
        // Signer.unsign: the signature follows the last separator.
        let (signed, sig) = cookie
            .rsplit_once(SEP)
            .ok_or(Error::Malformed(Malformed::Truncated))?;
        // TimestampSigner.unsign: the timestamp follows the next one.
        let (payload, timestamp) = signed
            .rsplit_once(SEP)
            .ok_or(Error::Malformed(Malformed::Truncated))?;
        if sig.len() != ENCODED_LEN {
            return Err(Error::AuthenticationFailed);
        }

        let key_index = self
            .keys
            .iter()
            .position(|key| key.verify(signed.as_bytes(), sig.as_bytes()))
            .ok_or(Error::AuthenticationFailed)?;
        // Read only once signed, as Django does (and as the docs say of
        // everything else): a forged cookie is `AuthenticationFailed`.
        let timestamp = b62_decode(timestamp)?;

        let (compressed, encoded) = match payload.strip_prefix('.') {
            Some(rest) => (true, rest),
            None => (false, payload),
        };
        let data = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| Error::Malformed(Malformed::Base64))?;
        let data = if compressed {
            inflate_capped(&data, self.limits.max_decompressed(), Wrapper::Zlib)?
        } else {
            if data.len() > self.limits.max_decompressed() {
                return Err(Error::LimitExceeded(Limit::DecompressedSize));
            }
            data
        };

        // JSONSerializer.loads decodes the bytes as Latin-1.
        let text: String = data.iter().map(|&b| char::from(b)).collect();
        let entries = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => map,
            _ => return Err(Error::Malformed(Malformed::Json)),
        };
        // The session ends at the earlier of its own expiry (`set_expiry`)
        // and `max_age` after the signed time (the last modification), or,
        // with Django's #27775 rule, at its own expiry when it has one.
        let now = self.clock.now();
        let own_end_reached = session_expiry(&entries, timestamp, self.naive_dates_offset)?
            .end(timestamp)
            .map(|end| end <= now as f64);
        let too_old = self
            .max_age
            .is_some_and(|max_age| i128::from(now) - i128::from(timestamp) > i128::from(max_age));
        let expired = match own_end_reached {
            Some(true) => Some(Expired::Session),
            Some(false) if self.own_expiry_replaces_max_age => None,
            _ => too_old.then_some(Expired::Idle),
        };
        if let Some(kind) = expired {
            return Err(Error::Expired(kind));
        }
        Ok(DjangoSession {
            entries,
            timestamp,
            compressed,
            key_index,
        })
    }

    /// Writes a session dictionary as Django's backend would, signed under
    /// `SECRET_KEY` with the clock's time.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] if the cookie would be longer than
    /// [`Limits::max_token_len`], with
    /// [`Error::LimitExceeded`]`(`[`Limit::DecompressedSize`]`)` if its JSON
    /// is longer than [`Limits::max_decompressed`] (compressed, it could
    /// fit in a cookie: either way [`open`](Self::open) would refuse it),
    /// and with
    /// [`ValueError::Serialize`] on a number JSON cannot carry (only
    /// possible with `serde_json`'s `arbitrary_precision` feature).
    ///
    /// The cookie's name is not known here, so the 4096 bytes of name and
    /// value browsers keep ([`MAX_NAME_VALUE_LEN`](crate::MAX_NAME_VALUE_LEN))
    /// are the caller's to check: a value within the default token limit
    /// (4096) can pass them beside Django's `sessionid`.
    pub fn seal(&self, entries: &Map<String, Value>) -> Result<String, Error> {
        let mut json = String::new();
        write_object(&mut json, entries)?;
        let data = json.into_bytes();
        if data.len() > self.limits.max_decompressed() {
            return Err(Error::LimitExceeded(Limit::DecompressedSize));
        }

        let mut payload = String::new();
        let compressed = if self.compress {
            deflate(&data).filter(|c| c.len() + 1 < data.len())
        } else {
            None
        };
        match compressed {
            Some(c) => {
                payload.push('.');
                URL_SAFE_NO_PAD.encode_string(c, &mut payload);
            }
            None => URL_SAFE_NO_PAD.encode_string(&data, &mut payload),
        }
        payload.push(SEP);
        payload.push_str(&b62_encode(self.clock.now()));

        let primary = self
            .keys
            .first()
            .unwrap_or_else(|| unreachable!("the builder always holds SECRET_KEY"));
        let sig = primary.sign(payload.as_bytes());
        payload.push(SEP);
        payload.push_str(&sig);

        if payload.len() > self.limits.max_token_len() {
            return Err(Error::TooLarge {
                needed: payload.len(),
                budget: self.limits.max_token_len(),
            });
        }
        Ok(payload)
    }

    /// The configured max age, if any.
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age.map(Duration::from_secs)
    }

    /// Whether a session without an expiry of its own ends when the browser
    /// closes (see [`DjangoCodecBuilder::expire_at_browser_close`]).
    pub fn expires_at_browser_close(&self) -> bool {
        self.expire_at_browser_close
    }
}

/// `signing.b62_encode` of a non-negative timestamp.
fn b62_encode(mut n: u64) -> String {
    if n == 0 {
        return "0".to_owned();
    }
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    digits.iter().rev().map(|&d| char::from(d)).collect()
}

/// `signing.b62_decode`: an optional `-` then base62 digits. Unlike Django,
/// an empty digit string is refused and the value must fit in an `i64`.
fn b62_decode(text: &str) -> Result<i64, Error> {
    let bad = Error::Malformed(Malformed::Timestamp);
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if digits.is_empty() {
        return Err(bad);
    }
    let mut value: i64 = 0;
    for byte in digits.bytes() {
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'A'..=b'Z' => byte - b'A' + 10,
            b'a'..=b'z' => byte - b'a' + 36,
            _ => return Err(bad),
        };
        value = value
            .checked_mul(62)
            .and_then(|v| v.checked_add(i64::from(digit)))
            .ok_or(bad.clone())?;
    }
    Ok(if negative { -value } else { value })
}

/// zlib-deflates `data` at Python's default level; `None` only if the
/// compressor misbehaves (then the caller writes the data uncompressed).
fn deflate(data: &[u8]) -> Option<Vec<u8>> {
    let mut deflater = Compress::new(flate2::Compression::new(ZLIB_LEVEL), true);
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.len().max(64));
        }
        let consumed = usize::try_from(deflater.total_in()).ok()?;
        let status = deflater
            .compress_vec(data.get(consumed..)?, &mut out, FlushCompress::Finish)
            .ok()?;
        if status == Status::StreamEnd {
            return Some(out);
        }
    }
}

/// Writes `map` as Python's `json.dumps(obj, separators=(",", ":"))` does
/// (with `ensure_ascii=True`).
fn write_object(out: &mut String, map: &Map<String, Value>) -> Result<(), Error> {
    out.push('{');
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        write_value(out, value)?;
    }
    out.push('}');
    Ok(())
}

/// Fails with [`ValueError::Serialize`] on a number that is neither a
/// 64-bit integer nor a finite `f64` (possible only with `serde_json`'s
/// `arbitrary_precision`, say `1e400`): leaving it out would sign invalid
/// JSON, and Python's `Infinity` is not JSON either.
fn write_value(out: &mut String, value: &Value) -> Result<(), Error> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else if let Some(f) = n.as_f64().filter(|f| f.is_finite()) {
                write_float(out, f);
            } else {
                return Err(Error::Value(ValueError::Serialize));
            }
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item)?;
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map)?,
    }
    Ok(())
}

/// Python's `py_encode_basestring_ascii`: `"` and `\` escaped, `\n \r \t \b
/// \f` as short escapes, everything else outside `' '..='~'` as lowercase
/// `\uXXXX` (astral characters as a surrogate pair).
fn write_string(out: &mut String, s: &str) {
    use fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Python's `float.__repr__` (shortest round-trip digits; exponent form
/// when the decimal exponent is below -4 or at least 16).
fn write_float(out: &mut String, f: f64) {
    if f == 0.0 {
        out.push_str(if f.is_sign_negative() { "-0.0" } else { "0.0" });
        return;
    }
    if !f.is_finite() {
        // serde_json numbers are always finite; Python's spelling regardless.
        out.push_str(if f.is_nan() {
            "NaN"
        } else if f > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        });
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "d.ddde±x".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    // Python's `decpt`: the value is 0.DIGITS × 10^decpt.
    let decpt = exponent + 1;
    if f.is_sign_negative() {
        out.push('-');
    }
    let n = digits.len() as i32;
    if decpt <= -4 || decpt > 16 {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        out.push_str(&format!("e{sign}{:02}", exponent.unsigned_abs()));
    } else if decpt <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat(decpt.unsigned_abs() as usize));
        out.push_str(&digits);
    } else if decpt >= n {
        out.push_str(&digits);
        out.push_str(&"0".repeat((decpt - n) as usize));
        out.push_str(".0");
    } else {
        out.push_str(&digits[..decpt as usize]);
        out.push('.');
        out.push_str(&digits[decpt as usize..]);
    }
}

/// The sealed-session key for a Django session key: keys starting with `_`
/// (reserved in sealed sessions; Django's own, like `_auth_user_id`) get the
/// [`MIGRATED_KEY_PREFIX`] in front (`_auth_user_id` → `django_auth_user_id`);
/// other keys are kept.
///
/// ```
/// use sealed_session::django::migrated_key;
/// assert_eq!(migrated_key("_auth_user_id"), "django_auth_user_id");
/// assert_eq!(migrated_key("cart"), "cart");
/// ```
pub fn migrated_key(django_key: &str) -> String {
    if django_key.starts_with('_') {
        format!("{MIGRATED_KEY_PREFIX}{django_key}")
    } else {
        django_key.to_owned()
    }
}

/// Django's entry for `request.session.set_expiry(...)`.
pub const SESSION_EXPIRY_KEY: &str = "_session_expiry";

/// What a Django session's [`SESSION_EXPIRY_KEY`] entry asks for, read as
/// Django's `SessionBase.get_expiry_date` reads it.
enum SessionExpiry {
    /// No entry (or `null`): `SESSION_COOKIE_AGE` from the last change.
    Unset,
    /// `0`: the cookie ends when the browser closes (the server still
    /// applies `SESSION_COOKIE_AGE`).
    BrowserClose,
    /// An empty list or map (only a hand-written entry holds one): false
    /// in Python, so Django applies `SESSION_COOKIE_AGE`; but neither
    /// `None` nor `0`, so the cookie outlives the browser even under
    /// `SESSION_EXPIRE_AT_BROWSER_CLOSE`.
    DefaultAge,
    /// Seconds of inactivity (`set_expiry(int)`, or a float): the session
    /// ends this long after the last change (the cookie's timestamp).
    Seconds(f64),
    /// An ISO 8601 date, in Unix seconds. Django writes it with
    /// `datetime.isoformat()`; one without an offset (`USE_TZ = False`)
    /// is read at the codec's [`DjangoCodecBuilder::naive_dates_offset`].
    At(i64),
}

impl SessionExpiry {
    /// When a session last changed at `modified_at` ends by its own
    /// expiry, in Unix seconds; `None` when it has none.
    fn end(&self, modified_at: i64) -> Option<f64> {
        match *self {
            SessionExpiry::Unset | SessionExpiry::BrowserClose | SessionExpiry::DefaultAge => None,
            SessionExpiry::Seconds(seconds) => Some(modified_at as f64 + seconds),
            SessionExpiry::At(at) => Some(at as f64),
        }
    }
}

/// The Unix times Python's `datetime` can hold (0001-01-01 to the end of
/// 9999-12-31, UTC): Django cannot read an expiry outside them.
const PYTHON_UNIX_RANGE: core::ops::Range<f64> = -62_135_596_800.0..253_402_300_800.0;

/// `text` with a `T` between an extended-format date and what follows:
/// Python's `datetime.fromisoformat` takes any one character there
/// (`isoformat(" ")` writes a space), the ISO 8601 parser only `T`.
fn with_t_separator(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let date_first = bytes.len() > 10 && bytes[4] == b'-' && bytes[7] == b'-';
    match text.get(10..).and_then(|rest| rest.chars().next()) {
        Some(separator) if date_first && separator != 'T' => {
            let time = &text[10 + separator.len_utf8()..];
            std::borrow::Cow::Owned(format!("{}T{time}", &text[..10]))
        }
        _ => std::borrow::Cow::Borrowed(text),
    }
}

/// UTC+14, the largest offset of any time zone: a local time read there
/// is the earliest instant it can mean anywhere.
const EARLIEST_OFFSET: UtcOffset = match UtcOffset::from_hms(14, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("UTC+14 is a valid offset"),
};

/// Reads [`SESSION_EXPIRY_KEY`] from a session signed at `modified_at`,
/// reading a date without an offset at `naive_offset`.
fn session_expiry(
    entries: &Map<String, Value>,
    modified_at: i64,
    naive_offset: UtcOffset,
) -> Result<SessionExpiry, Error> {
    use time::format_description::well_known::Iso8601;
    let bad = || Error::Malformed(Malformed::Json);
    let expiry = match entries.get(SESSION_EXPIRY_KEY) {
        None | Some(Value::Null) => SessionExpiry::Unset,
        // `set_expiry(False)` (as in `set_expiry(remember and AGE)`):
        // `get_expire_at_browser_close` compares with 0, and `False == 0`
        // in Python; the age is the default one, as for 0.
        Some(Value::Bool(false)) => SessionExpiry::BrowserClose,
        // `True == 1` in Python: a one-second window.
        Some(Value::Bool(true)) => SessionExpiry::Seconds(1.0),
        Some(Value::Array(items)) if items.is_empty() => SessionExpiry::DefaultAge,
        Some(Value::Object(map)) if map.is_empty() => SessionExpiry::DefaultAge,
        Some(Value::Number(n)) => {
            let seconds = n.as_f64().filter(|s| s.is_finite()).ok_or_else(bad)?;
            if seconds == 0.0 {
                SessionExpiry::BrowserClose
            } else {
                SessionExpiry::Seconds(seconds)
            }
        }
        Some(Value::String(text)) => {
            let text = &*with_t_separator(text);
            let at = match time::OffsetDateTime::parse(text, &Iso8601::DEFAULT) {
                Ok(at) => at.unix_timestamp(),
                Err(_) => {
                    let local = time::PrimitiveDateTime::parse(text, &Iso8601::DEFAULT)
                        .map_err(|_| bad())?;
                    // In plain seconds: a local time near year 1 or 9999
                    // has no `OffsetDateTime` at some offsets.
                    local.assume_utc().unix_timestamp() - i64::from(naive_offset.whole_seconds())
                }
            };
            SessionExpiry::At(at)
        }
        Some(_) => return Err(bad()),
    };
    match expiry.end(modified_at) {
        Some(end) if !PYTHON_UNIX_RANGE.contains(&end) => Err(bad()),
        _ => Ok(expiry),
    }
}

/// Puts the entries of a Django session into a new sealed session, under
/// the keys [`migrated_key`] gives. Django's authentication entries
/// (`_auth_user_*`) get [`Priority::Critical`] so they are never dropped to
/// fit the cookie budget; the rest get [`Priority::Normal`].
///
/// Django's own expiry ([`SESSION_EXPIRY_KEY`], from `set_expiry`) becomes
/// the session's [`Expiry`] rather than an entry: none, the sealer's
/// default (for a site with `SESSION_EXPIRE_AT_BROWSER_CLOSE`, set
/// [`Expiry::BrowserSession`] on the result, or migrate with
/// [`migrate_session`] and
/// [`DjangoCodecBuilder::expire_at_browser_close`]); `0` a browser-session
/// cookie ("don't remember me"), a number of seconds, Django's inactivity
/// window, [`Expiry::Idle`] (whole seconds rounded down; under a second, or
/// already past from the cookie's time in [`migrate_cookie`], fails with
/// [`Expired::Session`]), a date [`Expiry::At`] that date (one without an
/// offset read at UTC+14, the earliest instant it can mean: to give the
/// site's zone, migrate with [`migrate_session`] and
/// [`DjangoCodecBuilder::naive_dates_offset`]).
///
/// # Errors
///
/// [`InvalidEntryKey::Reserved`] if two Django keys map to the
/// same key (`_x` and `django_x`), [`Malformed::Json`] for an expiry
/// Django would not read, [`Expired::Session`] for one already past, and
/// the session's own errors (an empty key, too many entries, a value
/// nested deeper than [`Limits::max_depth`](crate::Limits::max_depth);
/// [`Error::Random`] for its id).
pub fn to_sealed_session(entries: &Map<String, Value>, sealer: &Sealer) -> Result<Session, Error> {
    migrate_entries(entries, None, false, EARLIEST_OFFSET, sealer)
}

/// [`to_sealed_session`], checking against `modified_at` (the Django
/// cookie's time) instead of now whether an inactivity window has already
/// run out, and ending a session without an expiry of its own with the
/// browser if `unset_ends_with_browser` (`SESSION_EXPIRE_AT_BROWSER_CLOSE`).
fn migrate_entries(
    entries: &Map<String, Value>,
    modified_at: Option<i64>,
    unset_ends_with_browser: bool,
    naive_offset: UtcOffset,
    sealer: &Sealer,
) -> Result<Session, Error> {
    let mut session = sealer.new_session()?;
    let now = session.now();
    let since = modified_at.unwrap_or_else(|| i64::try_from(now).unwrap_or(i64::MAX));
    // The session began no later than its Django cookie was signed: dated
    // now, a copy of that cookie migrated again would escape "log out
    // everywhere" (which ends sessions created before it) and restart the
    // absolute lifetime.
    // A cookie signed further ahead than the sealer's clock skew is refused
    // as a sealed cookie would be: dated now, each copy migrated before
    // its time would begin after any "log out everywhere" in between.
    // Read as a sealed cookie issued when it was signed, with the same
    // checks: one that would no longer open is refused. Revocation records
    // are kept only as long as such a cookie could open (`revocation_ttl`),
    // so an older Django cookie would escape a "log out everywhere".
    // A time before 1970 (Django never signs one) counts as 1970: the
    // oldest, not "now".
    if let Some(signed_at) = modified_at.map(|t| u64::try_from(t).unwrap_or(0)) {
        sealer.policy.check_issued_at(now, signed_at)?;
        session.created_at = session.created_at.min(signed_at);
    }
    sealer.policy.check_lifetime(now, session.created_at)?;
    let expiry = session_expiry(entries, since, naive_offset)?;
    let end = match expiry.end(since) {
        // Whole seconds, rounded down: never later than Django's end.
        Some(end) => match u64::try_from(end.floor() as i64) {
            Ok(at) if at > now => Some(at),
            _ => return Err(Error::Expired(Expired::Session)),
        },
        None => None,
    };
    match (expiry, end) {
        (SessionExpiry::BrowserClose, _) => session.set_expiry(Expiry::BrowserSession),
        (SessionExpiry::Unset, _) if unset_ends_with_browser => {
            session.set_expiry(Expiry::BrowserSession);
        }
        // Django's inactivity window becomes the session's own idle
        // timeout: sealed now, it starts now, as it would at a Django save.
        // Under a second it would end at once (a cookie with a timestamp
        // ahead of this server's clock could still be in it).
        (SessionExpiry::Seconds(seconds), _) if seconds < 1.0 => {
            return Err(Error::Expired(Expired::Session));
        }
        (SessionExpiry::Seconds(seconds), _) => {
            session.set_expiry(Expiry::Idle(Duration::from_secs(seconds.floor() as u64)));
        }
        (SessionExpiry::At(_), Some(at)) => session.set_expiry(Expiry::At(at)),
        // A date always has an end; nothing else to carry over.
        (SessionExpiry::At(_), None) | (SessionExpiry::Unset | SessionExpiry::DefaultAge, _) => {}
    }
    // The session's idle window counts from the Django cookie's signature,
    // as for a sealed cookie issued then: sealed now, a stale cookie would
    // get it afresh. (A browser-session cookie's is the sealer's
    // `browser_session_max_idle`; Django's own window, checked above as
    // its end, can only pass here.)
    let window = sealer.policy.own_idle(session.expiry());
    if let (Some(signed_at), Some(window)) = (modified_at, window) {
        let signed_at = u64::try_from(signed_at).unwrap_or(0);
        if now.saturating_sub(signed_at) > window {
            return Err(Error::Expired(Expired::Idle));
        }
    }
    for (key, value) in entries {
        if key == SESSION_EXPIRY_KEY {
            continue;
        }
        let new_key = migrated_key(key);
        if session.contains(&new_key) {
            return Err(Error::InvalidEntryKey(InvalidEntryKey::Reserved));
        }
        let priority = if key.starts_with("_auth_user_") {
            Priority::Critical
        } else {
            Priority::Normal
        };
        session.insert_with_priority(&new_key, value, priority)?;
    }
    Ok(session)
}

/// Opens a Django cookie and puts its entries into a new sealed session,
/// ready to save (see [`to_sealed_session`] for the key mapping). The
/// session's created-at is the Django cookie's signing time (now, if that
/// is later), so that a copy migrated again after a `revoke_user` is still
/// revoked and the absolute lifetime does not restart. (Django signs a
/// session again at each save: a copy it signed again after the
/// revocation counts from then. While Django still serves, revoke there
/// too; see SECURITY.md.) Save it with
/// [`Sealer::save_async`] to use an overflow store, or see
/// [`migrate_cookie`].
///
/// # Errors
///
/// Those of [`DjangoCodec::open`], then those of [`to_sealed_session`]
/// (an inactivity window counted from the cookie's time), and
/// [`Error::IssuedInFuture`] for a cookie signed more than the sealer's
/// clock skew ahead of its clock, as for a sealed cookie (Django itself
/// accepts it, and so does [`DjangoCodec::open`]). A Django cookie is
/// read as a sealed cookie issued when it was signed:
/// [`Expired::Idle`] when that was longer ago than the sealer's
/// `max_idle`, [`Expired::Lifetime`] longer than its `max_lifetime`
/// (otherwise a copy could outlive the revocation records, which are kept
/// only as long as a sealed cookie could open). To migrate every Django
/// session Django itself still accepts, set `max_idle` to at least
/// `SESSION_COOKIE_AGE` while migrating.
///
/// A sealer with a revocation check refuses to migrate here, with
/// [`StoreError::NeedsAsync`](crate::StoreError::NeedsAsync), as
/// [`Sealer::open`] refuses to open: skipping the check would let a copy
/// of the Django cookie past a `revoke_user`. Use
/// [`migrate_session_async`].
pub fn migrate_session(
    codec: &DjangoCodec,
    sealer: &Sealer,
    django_cookie: &str,
) -> Result<Session, Error> {
    if sealer.revocation.is_some() {
        return Err(Error::Store(crate::StoreError::NeedsAsync));
    }
    migrate_unchecked(codec, sealer, django_cookie)
}

/// [`migrate_session`], then the sealer's revocation check if it has one,
/// as [`Sealer::open_async`] runs it on a sealed cookie: the migrated
/// session is dated from the Django cookie, so a `revoke_user` made since
/// that cookie was signed refuses it with [`Error::Revoked`]. (Its session
/// id is new, so `revoke_session` cannot refuse it.)
///
/// # Errors
///
/// Those of [`migrate_session`] (never
/// [`StoreError::NeedsAsync`](crate::StoreError::NeedsAsync)), then those
/// of the revocation check ([`Sealer::open_async`]).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use sealed_session::django::{migrate_session_async, DjangoCodec};
/// use sealed_session::store::MemoryRevocations;
/// use sealed_session::{Error, FixedClock, KeyRing, MasterKey, Sealer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// let clock = Arc::new(FixedClock::new(1_700_000_000));
/// let django = DjangoCodec::builder("django-secret").clock(clock.clone()).build()?;
/// let revocations = Arc::new(MemoryRevocations::with_clock(clock.clone()));
/// let sealer = Sealer::builder(KeyRing::new(MasterKey::from_bytes(&[7; 32])?))
///     .clock(clock.clone())
///     .revocation_store(revocations.clone(), Some("django_auth_user_id"))
///     .build()?;
///
/// let mut entries = serde_json::Map::new();
/// entries.insert("_auth_user_id".into(), "42".into());
/// let django_cookie = django.seal(&entries)?;
/// let session = migrate_session_async(&django, &sealer, &django_cookie).await?;
/// assert_eq!(session.get::<String>("django_auth_user_id")?.as_deref(), Some("42"));
///
/// // "Log out everywhere": the same Django cookie no longer migrates.
/// revocations.revoke_user("42", Duration::from_secs(14 * 24 * 3600))?;
/// let refused = migrate_session_async(&django, &sealer, &django_cookie).await;
/// assert_eq!(refused.unwrap_err().kind(), "revoked");
/// # Ok(())
/// # }
/// ```
pub async fn migrate_session_async(
    codec: &DjangoCodec,
    sealer: &Sealer,
    django_cookie: &str,
) -> Result<Session, Error> {
    let mut session = migrate_unchecked(codec, sealer, django_cookie)?;
    sealer.check_revocation(&mut session).await?;
    Ok(session)
}

/// [`migrate_session`] without the revocation guard.
fn migrate_unchecked(
    codec: &DjangoCodec,
    sealer: &Sealer,
    django_cookie: &str,
) -> Result<Session, Error> {
    let opened = codec.open_session(django_cookie)?;
    migrate_entries(
        opened.entries(),
        Some(opened.timestamp()),
        codec.expire_at_browser_close,
        codec.naive_dates_offset,
        sealer,
    )
}

/// [`migrate_session`], saved: the `Set-Cookie` header value of the new
/// sealed-session cookie, with the sealer's attributes and `Max-Age`, in
/// the size budget (entries that do not fit are dropped, lowest priority
/// first, and listed in the report; Django's `_auth_user_*` entries are
/// critical). A Django session with no entries and no expiry of its own
/// gives [`CookieAction::Unchanged`](crate::CookieAction::Unchanged): there
/// is nothing to keep, and no cookie to set.
///
/// # Errors
///
/// Those of [`migrate_session`], then those of [`Sealer::save`]. For a
/// sealer with a revocation check or an overflow store, use
/// [`migrate_cookie_async`].
///
/// ```
/// use std::sync::Arc;
/// use sealed_session::django::{migrate_cookie, DjangoCodec};
/// use sealed_session::{Error, FixedClock, KeyRing, MasterKey, Sealer};
///
/// let clock = Arc::new(FixedClock::new(1_700_000_000));
/// let django = DjangoCodec::builder("django-secret").clock(clock.clone()).build()?;
/// let sealer = Sealer::builder(KeyRing::new(MasterKey::from_bytes(&[7; 32])?))
///     .clock(clock)
///     .build()?;
///
/// let mut entries = serde_json::Map::new();
/// entries.insert("_auth_user_id".into(), "42".into());
/// entries.insert("theme".into(), "dark".into());
/// let django_cookie = django.seal(&entries)?;
///
/// let saved = migrate_cookie(&django, &sealer, &django_cookie)?;
/// let set_cookie = saved.action.header_value().expect("a new cookie");
/// assert!(set_cookie.contains("; Max-Age=") && saved.report.dropped.is_empty());
/// // The next request presents the cookie's value.
/// let session = sealer.open(saved.action.cookie_value().expect("a cookie"))?;
/// assert_eq!(session.get::<String>("django_auth_user_id")?.as_deref(), Some("42"));
/// assert_eq!(session.get::<String>("theme")?.as_deref(), Some("dark"));
/// # Ok::<(), Error>(())
/// ```
pub fn migrate_cookie(
    codec: &DjangoCodec,
    sealer: &Sealer,
    django_cookie: &str,
) -> Result<Saved, Error> {
    let mut session = migrate_session(codec, sealer, django_cookie)?;
    sealer.save(&mut session)
}

/// [`migrate_session_async`], saved with [`Sealer::save_async`] (which
/// uses the sealer's overflow store, if any): [`migrate_cookie`] for a
/// sealer with a revocation check or an overflow store.
///
/// # Errors
///
/// Those of [`migrate_session_async`], then those of
/// [`Sealer::save_async`].
pub async fn migrate_cookie_async(
    codec: &DjangoCodec,
    sealer: &Sealer,
    django_cookie: &str,
) -> Result<Saved, Error> {
    let mut session = migrate_session_async(codec, sealer, django_cookie).await?;
    sealer.save_async(&mut session).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FixedClock;

    const NOW: u64 = 1_700_000_000;

    fn codec() -> DjangoCodec {
        codec_at(NOW)
    }

    fn entries(json: &str) -> Map<String, Value> {
        match serde_json::from_str(json).unwrap() {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    /// Signs an arbitrary inner value as TimestampSigner would, to build
    /// well-signed bad payloads.
    fn sign_raw(codec: &DjangoCodec, payload: &str, timestamp: &str) -> String {
        let signed = format!("{payload}:{timestamp}");
        let sig = codec.keys[0].sign(signed.as_bytes());
        format!("{signed}:{sig}")
    }

    /// A sealed-session sealer whose clock reads [`NOW`].
    fn sealer_at_now() -> Sealer {
        let key = crate::MasterKey::from_bytes(&[7; 32]).unwrap();
        Sealer::builder(crate::KeyRing::new(key))
            .clock(Arc::new(FixedClock::new(NOW)))
            .build()
            .unwrap()
    }

    fn codec_at(now: u64) -> DjangoCodec {
        DjangoCodec::builder("secret")
            .clock(Arc::new(FixedClock::new(now)))
            .build()
            .unwrap()
    }

    /// A Django cookie that ends with the browser is migrated only while a
    /// sealed one issued when it was signed would open under
    /// `browser_session_max_idle`.
    #[test]
    fn a_stale_browser_close_cookie_is_not_migrated_past_its_window() {
        let sealer = Sealer::builder(crate::KeyRing::new(
            crate::MasterKey::from_bytes(&[7; 32]).unwrap(),
        ))
        .browser_session_max_idle(Duration::from_secs(7200))
        .clock(Arc::new(FixedClock::new(NOW)))
        .build()
        .unwrap();
        let json = r#"{"_auth_user_id": "42", "_session_expiry": 0}"#;
        let fresh = codec_at(NOW - 7200).seal(&entries(json)).unwrap();
        let session = migrate_session(&codec(), &sealer, &fresh).unwrap();
        assert_eq!(session.expiry(), Expiry::BrowserSession);
        let stale = codec_at(NOW - 7201).seal(&entries(json)).unwrap();
        assert_eq!(
            migrate_session(&codec(), &sealer, &stale).map(|_| ()),
            Err(Error::Expired(Expired::Idle))
        );
        // A persistent one keeps max_idle (two weeks).
        let kept = codec_at(NOW - 7201).seal(&entries(r#"{"a": 1}"#)).unwrap();
        assert!(migrate_session(&codec(), &sealer, &kept).is_ok());
    }

    /// A date without an offset (`USE_TZ = False`) is local time in the
    /// site's `TIME_ZONE`: read at the offset given, or else at UTC+14,
    /// never later than Django's end.
    #[test]
    fn a_date_without_an_offset_is_read_at_the_sites_offset() {
        let tokyo = DjangoCodec::builder("secret")
            .naive_dates_offset(UtcOffset::from_hms(9, 0, 0).unwrap())
            .clock(Arc::new(FixedClock::new(NOW)))
            .build()
            .unwrap();
        let chicago = DjangoCodec::builder("secret")
            .naive_dates_offset(UtcOffset::from_hms(-6, 0, 0).unwrap())
            .clock(Arc::new(FixedClock::new(NOW)))
            .build()
            .unwrap();
        // NOW is 2023-11-14T22:13:20Z: 07:13:20 the next day in Tokyo,
        // 16:13:20 in Chicago.
        for (local, codec, opens) in [
            ("2023-11-15T07:13:21", &tokyo, true),
            ("2023-11-15T07:13:20", &tokyo, false),
            ("2023-11-14T16:13:21", &chicago, true),
            ("2023-11-14T16:13:20", &chicago, false),
            ("2023-11-15T07:13:21", &codec(), false),
            ("2023-11-15T12:13:21", &codec(), true),
        ] {
            let json = format!(r#"{{"_session_expiry": "{local}"}}"#);
            let cookie = codec_at(NOW - 60).seal(&entries(&json)).unwrap();
            assert_eq!(codec.open(&cookie).is_ok(), opens, "{local} by {codec:?}");
        }
        // A migrated session ends then too.
        let json = r#"{"_session_expiry": "2023-11-15T08:00:00"}"#;
        let cookie = codec_at(NOW - 60).seal(&entries(json)).unwrap();
        let session = migrate_session(&tokyo, &sealer_at_now(), &cookie).unwrap();
        // 08:00 in Tokyo is 23:00 UTC, 46 min 40 s after NOW.
        assert_eq!(session.expiry(), Expiry::At(NOW + 2800));
        assert_eq!(
            migrate_session(&codec(), &sealer_at_now(), &cookie).map(|_| ()),
            Err(Error::Expired(Expired::Session))
        );
    }

    #[test]
    fn seal_writes_nothing_its_open_would_refuse_on_size() {
        let c = DjangoCodec::builder("secret")
            .limits(Limits::default().with_max_decompressed(100))
            .clock(Arc::new(FixedClock::new(NOW)))
            .build()
            .unwrap();
        // `{"a":"…"}` is the value's length plus 8 bytes of JSON; repeated,
        // it compresses to a short cookie either way.
        let at_limit = entries(&format!(r#"{{"a":"{}"}}"#, "x".repeat(92)));
        let cookie = c.seal(&at_limit).unwrap();
        assert!(cookie.starts_with('.'), "compressed");
        assert_eq!(c.open(&cookie).unwrap(), at_limit);
        let over = entries(&format!(r#"{{"a":"{}"}}"#, "x".repeat(93)));
        assert_eq!(
            c.seal(&over).unwrap_err(),
            Error::LimitExceeded(Limit::DecompressedSize)
        );
    }

    #[test]
    fn debug_shows_keys_not_values() {
        let cookie = codec()
            .seal(&entries(
                r#"{"_auth_user_hash": "s3cr3t-hash", "cart": [1]}"#,
            ))
            .unwrap();
        let printed = format!("{:?}", codec().open_session(&cookie).unwrap());
        assert!(printed.contains("_auth_user_hash"), "{printed}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
    }

    #[test]
    fn set_expiry_is_enforced_on_open() {
        let cases = [
            (r#"{"_session_expiry": 300}"#, 200, None),
            (r#"{"_session_expiry": 300}"#, 300, Some(Expired::Session)),
            // `set_expiry(300.5)` stores a float.
            (r#"{"_session_expiry": 300.5}"#, 300, None),
            (r#"{"_session_expiry": 300.0}"#, 300, Some(Expired::Session)),
            (r#"{"_session_expiry": 0.0}"#, 3600, None),
            (r#"{"_session_expiry": -1}"#, 0, Some(Expired::Session)),
            // Later than max_age (two weeks): max_age still ends it by
            // default, as in Django 5.2 (see the opt-in below).
            (
                r#"{"_session_expiry": 7776000}"#,
                30 * 86_400,
                Some(Expired::Idle),
            ),
            (r#"{"_session_expiry": false}"#, 3600, None),
            // `True` is 1 in Python: a one-second window.
            (r#"{"_session_expiry": true}"#, 0, None),
            (r#"{"_session_expiry": true}"#, 1, Some(Expired::Session)),
            // Empty collections are false: the default age applies.
            (r#"{"_session_expiry": []}"#, 3600, None),
            (
                r#"{"_session_expiry": {}}"#,
                14 * 86_400 + 1,
                Some(Expired::Idle),
            ),
            (r#"{"a": 1}"#, 14 * 86_400 + 1, Some(Expired::Idle)),
            (
                r#"{"_session_expiry": 0}"#,
                14 * 86_400 + 1,
                Some(Expired::Idle),
            ),
            (r#"{"_session_expiry": 0}"#, 3600, None),
            (r#"{"_session_expiry": null}"#, 3600, None),
            (
                r#"{"_session_expiry": "2023-11-14T22:13:21+00:00"}"#,
                0,
                None,
            ),
            (
                r#"{"_session_expiry": "2023-11-14T22:13:20.5+00:00"}"#,
                0,
                Some(Expired::Session),
            ),
            (
                r#"{"_session_expiry": "2023-11-15T00:13:20+02:00"}"#,
                0,
                Some(Expired::Session),
            ),
            // Without an offset: read at UTC+14 by default, the earliest
            // instant it can mean (10 s ahead as UTC, 14 h past there).
            (
                r#"{"_session_expiry": "2023-11-14T22:13:30"}"#,
                0,
                Some(Expired::Session),
            ),
            (r#"{"_session_expiry": "2023-11-15T12:13:30"}"#, 0, None),
            (
                r#"{"_session_expiry": "2023-11-15T12:13:20"}"#,
                0,
                Some(Expired::Session),
            ),
        ];
        for (json, age, want) in cases {
            let cookie = codec_at(NOW - age).seal(&entries(json)).unwrap();
            match (codec().open(&cookie), want) {
                (Ok(_), None) => {}
                (Err(Error::Expired(got)), Some(want)) => assert_eq!(got, want, "{json}"),
                (got, _) => panic!("{json} aged {age}: {got:?}"),
            }
        }
        // With #27775's rule a later own expiry keeps the session valid;
        // an earlier one still ends it.
        let replacing = DjangoCodec::builder("secret")
            .own_expiry_replaces_max_age(true)
            .clock(Arc::new(FixedClock::new(NOW)))
            .build()
            .unwrap();
        for (json, age, opens) in [
            (r#"{"_session_expiry": 7776000}"#, 30 * 86_400, true),
            (
                r#"{"_session_expiry": "2024-01-01T00:00:00.123456+00:00"}"#,
                30 * 86_400,
                true,
            ),
            (r#"{"_session_expiry": 300}"#, 300, false),
            (r#"{"a": 1}"#, 14 * 86_400 + 1, false),
        ] {
            let cookie = codec_at(NOW - age).seal(&entries(json)).unwrap();
            assert_eq!(replacing.open(&cookie).is_ok(), opens, "{json} aged {age}");
        }
        for json in [
            // Django's `get_expiry_date` refuses these (`fromisoformat`,
            // `timedelta`, or a date Python cannot hold).
            r#"{"_session_expiry": ""}"#,
            r#"{"_session_expiry": [0]}"#,
            r#"{"_session_expiry": {"a": 1}}"#,
            r#"{"_session_expiry": 1e15}"#,
            r#"{"_session_expiry": -1e11}"#,
            r#"{"_session_expiry": "next tuesday"}"#,
            // Year 0: `time` parses it, Python's `datetime` cannot hold it.
            r#"{"_session_expiry": "0000-01-01T00:00:00+00:00"}"#,
        ] {
            let cookie = codec().seal(&entries(json)).unwrap();
            assert_eq!(
                codec().open(&cookie).unwrap_err(),
                Error::Malformed(Malformed::Json),
                "{json}"
            );
        }
    }

    /// The value of the cookie `migrate_cookie` sets for `django_cookie`.
    fn migrated(sealer: &Sealer, django_cookie: &str) -> String {
        let saved = migrate_cookie(&codec(), sealer, django_cookie).unwrap();
        saved.action.cookie_value().expect("a cookie").to_owned()
    }

    #[test]
    fn a_django_cookie_that_would_not_open_as_a_sealed_one_is_not_migrated() {
        // Read as a sealed cookie issued when the Django one was signed:
        // past the idle timeout or the absolute lifetime, it is refused at
        // once, as its open would refuse it.
        let builder = || {
            Sealer::builder(crate::KeyRing::new(
                crate::MasterKey::from_bytes(&[7; 32]).unwrap(),
            ))
            .clock(Arc::new(FixedClock::new(NOW)))
        };
        let idle = builder()
            .max_idle(Duration::from_secs(500))
            .build()
            .unwrap();
        let lifetime = builder()
            .max_lifetime(Duration::from_secs(1000))
            .build()
            .unwrap();
        let user = entries(r#"{"_auth_user_id": "42"}"#);
        for (sealer, limit, want) in [
            (&idle, 500, Expired::Idle),
            (&lifetime, 1000, Expired::Lifetime),
        ] {
            let at_limit = codec_at(NOW - limit).seal(&user).unwrap();
            let session = sealer.open(&migrated(sealer, &at_limit)).unwrap();
            assert_eq!(session.created_at(), NOW - limit);
            let over = codec_at(NOW - limit - 1).seal(&user).unwrap();
            for result in [
                migrate_session(&codec(), sealer, &over).map(|_| ()),
                migrate_cookie(&codec(), sealer, &over).map(|_| ()),
            ] {
                assert_eq!(result.unwrap_err(), Error::Expired(want));
            }
        }
    }

    #[test]
    fn a_django_cookie_signed_before_1970_counts_as_signed_in_1970() {
        // Django never signs one, but a holder of its secret can: dated
        // now instead, it would pass the idle and lifetime checks and
        // escape any "log out everywhere".
        use base64::Engine as _;
        let codec = DjangoCodec::builder("secret")
            .no_max_age()
            .clock(Arc::new(FixedClock::new(NOW)))
            .build()
            .unwrap();
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"_auth_user_id":"42"}"#);
        let before_1970 = sign_raw(&codec, &payload, "-1");
        assert!(codec.open(&before_1970).is_ok());
        let sealer = sealer_at_now();
        for result in [
            migrate_session(&codec, &sealer, &before_1970).map(|_| ()),
            migrate_cookie(&codec, &sealer, &before_1970).map(|_| ()),
        ] {
            assert_eq!(result.unwrap_err(), Error::Expired(Expired::Idle));
        }
        let no_idle_timeout = Sealer::builder(crate::KeyRing::new(
            crate::MasterKey::from_bytes(&[7; 32]).unwrap(),
        ))
        .clock(Arc::new(FixedClock::new(NOW)))
        .no_idle_timeout()
        .no_max_lifetime()
        .build()
        .unwrap();
        let session = migrate_session(&codec, &no_idle_timeout, &before_1970).unwrap();
        assert_eq!(session.created_at(), 0);
    }

    #[tokio::test]
    async fn migration_runs_the_revocation_check_or_refuses_to_skip_it() {
        use crate::store::MemoryRevocations;
        let clock = Arc::new(FixedClock::new(NOW));
        let revocations = Arc::new(MemoryRevocations::with_clock(clock.clone()));
        let sealer = Sealer::builder(crate::KeyRing::new(
            crate::MasterKey::from_bytes(&[7; 32]).unwrap(),
        ))
        .clock(clock.clone())
        // Shorter than the codec's 14 days: the record is kept a day.
        .max_idle(Duration::from_secs(86_400))
        .revocation_store(revocations.clone(), Some("django_auth_user_id"))
        .build()
        .unwrap();
        let user = entries(r#"{"_auth_user_id": "42", "theme": "dark"}"#);
        let stolen = codec_at(NOW - 100).seal(&user).unwrap();
        // The synchronous forms cannot consult the check.
        for result in [
            migrate_session(&codec(), &sealer, &stolen).map(|_| ()),
            migrate_cookie(&codec(), &sealer, &stolen).map(|_| ()),
        ] {
            assert!(matches!(
                result,
                Err(Error::Store(crate::StoreError::NeedsAsync))
            ));
        }
        let session = migrate_session_async(&codec(), &sealer, &stolen)
            .await
            .unwrap();
        assert_eq!(session.created_at(), NOW - 100);
        let saved = migrate_cookie_async(&codec(), &sealer, &stolen)
            .await
            .unwrap();
        let sealed = saved.action.cookie_value().expect("a cookie").to_owned();
        assert!(sealer.open_async(&sealed).await.is_ok());

        // "Log out everywhere" for another user leaves this one alone.
        revocations
            .revoke_user("7", Duration::from_secs(3600))
            .unwrap();
        assert!(migrate_session_async(&codec(), &sealer, &stolen)
            .await
            .is_ok());
        // For this user it refuses the Django cookie, however often it
        // is presented (later: the migrated session is dated from the
        // Django cookie, not from the migration), and the sealed cookie
        // migrated from it.
        revocations
            .revoke_user("42", sealer.revocation_keep_for())
            .unwrap();
        clock.set(NOW + 10);
        for _ in 0..2 {
            let refused = migrate_session_async(&codec(), &sealer, &stolen).await;
            assert!(matches!(refused, Err(Error::Revoked)));
            let refused = migrate_cookie_async(&codec(), &sealer, &stolen).await;
            assert!(matches!(refused, Err(Error::Revoked)));
        }
        assert!(matches!(
            sealer.open_async(&sealed).await,
            Err(Error::Revoked)
        ));
        // Once the record is gone, the Django cookie is past the idle
        // timeout it was kept for: still refused.
        let expired = NOW + sealer.revocation_keep_for().as_secs() + 1;
        clock.set(expired);
        let late = migrate_session_async(&codec_at(expired), &sealer, &stolen).await;
        assert!(matches!(late, Err(Error::Expired(Expired::Idle))));
        // A Django login after the revocation migrates.
        clock.set(NOW + 10);
        let fresh = codec_at(NOW + 10).seal(&user).unwrap();
        let session = migrate_session_async(&codec_at(NOW + 10), &sealer, &fresh)
            .await
            .unwrap();
        assert_eq!(session.created_at(), NOW + 10);
    }

    #[test]
    fn migrate_cookie_sets_max_age_and_keeps_to_the_budget() {
        let sealer = sealer_at_now();
        let mut big = entries(r#"{"_auth_user_id": "42", "theme": "dark"}"#);
        // Incompressible, so that it cannot fit in a 4096-byte header.
        let noise: String = (0..6000u32)
            .map(|i| char::from(b'a' + (i.wrapping_mul(2_654_435_761) >> 27) as u8 % 26))
            .collect();
        big.insert("cart".into(), noise.into());
        let django_cookie = codec().seal(&big).unwrap();
        let saved = migrate_cookie(&codec(), &sealer, &django_cookie).unwrap();
        let header = saved.action.header_value().unwrap();
        assert!(
            "Set-Cookie: ".len() + header.len() <= 4096,
            "{}",
            header.len()
        );
        assert!(header.contains("; Max-Age="), "{header}");
        let dropped = saved.report.dropped_keys();
        assert_eq!(dropped, ["cart"]);
        let session = sealer.open(&migrated(&sealer, &django_cookie)).unwrap();
        assert_eq!(
            session
                .get::<String>("django_auth_user_id")
                .unwrap()
                .as_deref(),
            Some("42")
        );
        assert_eq!(
            session.get::<String>("theme").unwrap().as_deref(),
            Some("dark")
        );
    }

    #[test]
    fn an_empty_django_session_migrates_to_no_cookie() {
        let sealer = sealer_at_now();
        let empty = codec().seal(&entries("{}")).unwrap();
        let saved = migrate_cookie(&codec(), &sealer, &empty).unwrap();
        assert_eq!(saved.action, crate::CookieAction::Unchanged);
    }

    #[test]
    fn migration_turns_set_expiry_into_the_sessions_expiry() {
        let sealer = sealer_at_now();
        let cases = [
            (r#"{"_session_expiry": 0, "a": 1}"#, Expiry::BrowserSession),
            (
                r#"{"_session_expiry": false, "a": 1}"#,
                Expiry::BrowserSession,
            ),
            (r#"{"_session_expiry": null, "a": 1}"#, Expiry::Default),
            (r#"{"_session_expiry": [], "a": 1}"#, Expiry::Default),
            // Seconds of inactivity: the session's own idle timeout,
            // whole seconds rounded down.
            (
                r#"{"_session_expiry": 300, "a": 1}"#,
                Expiry::Idle(Duration::from_secs(300)),
            ),
            (
                r#"{"_session_expiry": 300.9, "a": 1}"#,
                Expiry::Idle(Duration::from_secs(300)),
            ),
            (
                r#"{"_session_expiry": "2023-11-15T00:00:00+00:00", "a": 1}"#,
                Expiry::At(1_700_006_400),
            ),
            // Python's `fromisoformat` takes any one character between the
            // date and the time (`isoformat(" ")`, a string given to
            // `set_expiry`).
            (
                r#"{"_session_expiry": "2023-11-15 01:00:00+01:00", "a": 1}"#,
                Expiry::At(1_700_006_400),
            ),
            // Without an offset: at UTC+14 unless the codec says otherwise.
            (
                r#"{"_session_expiry": "2023-11-15\u00e914:00:00", "a": 1}"#,
                Expiry::At(1_700_006_400),
            ),
            (r#"{"a": 1}"#, Expiry::Default),
        ];
        for (json, want) in cases {
            let cookie = codec_at(NOW - 100).seal(&entries(json)).unwrap();
            let session = sealer.open(&migrated(&sealer, &cookie)).unwrap();
            assert_eq!(session.expiry(), want, "{json}");
            assert_eq!(session.keys().collect::<Vec<_>>(), ["a"], "{json}");
            // Dated from the Django cookie, not from the migration: a copy
            // migrated again after "log out everywhere" is still older
            // than it, and the absolute lifetime does not start afresh.
            assert_eq!(session.created_at(), NOW - 100, "{json}");
        }
        // A Django cookie dated ahead of this server's clock, within the
        // sealer's skew (60 s), dates the session now; beyond it, it is
        // refused as a sealed cookie would be.
        // `SESSION_EXPIRE_AT_BROWSER_CLOSE`: a session without an expiry
        // of its own ends with the browser; one with its own keeps it.
        let closing = DjangoCodec::builder("django-secret")
            .clock(Arc::new(FixedClock::new(NOW - 100)))
            .expire_at_browser_close(true)
            .build()
            .unwrap();
        assert!(closing.expires_at_browser_close() && !codec().expires_at_browser_close());
        for (json, want) in [
            (r#"{"a": 1}"#, Expiry::BrowserSession),
            (
                r#"{"_session_expiry": null, "a": 1}"#,
                Expiry::BrowserSession,
            ),
            (
                r#"{"_session_expiry": 300, "a": 1}"#,
                Expiry::Idle(Duration::from_secs(300)),
            ),
            // An empty list or map is neither `None` nor `0`: Django's
            // `get_expire_at_browser_close` is False, the cookie persists.
            (r#"{"_session_expiry": [], "a": 1}"#, Expiry::Default),
            (r#"{"_session_expiry": {}, "a": 1}"#, Expiry::Default),
        ] {
            let cookie = closing.seal(&entries(json)).unwrap();
            let session = migrate_session(&closing, &sealer, &cookie).unwrap();
            assert_eq!(session.expiry(), want, "{json}");
        }
        let ahead = codec_at(NOW + 60).seal(&entries(r#"{"a": 1}"#)).unwrap();
        let sealed = migrated(&sealer, &ahead);
        assert_eq!(sealer.open(&sealed).unwrap().created_at(), NOW);
        let too_far = codec_at(NOW + 61).seal(&entries(r#"{"a": 1}"#)).unwrap();
        assert!(codec().open(&too_far).is_ok());
        assert_eq!(
            migrate_session(&codec(), &sealer, &too_far).unwrap_err(),
            Error::IssuedInFuture
        );
        let past = entries(r#"{"_session_expiry": "2023-11-14T00:00:00+00:00"}"#);
        assert_eq!(
            to_sealed_session(&past, &sealer).unwrap_err(),
            Error::Expired(Expired::Session)
        );
        // An inactivity window the Django cookie has already outlived (the
        // codec would refuse such a cookie first; migration checks on its
        // own), and one under a second.
        for json in [
            r#"{"_session_expiry": 50, "a": 1}"#,
            r#"{"_session_expiry": 0.5, "a": 1}"#,
        ] {
            let modified_at = Some(i64::try_from(NOW).unwrap() - 100);
            assert_eq!(
                migrate_entries(&entries(json), modified_at, false, EARLIEST_OFFSET, &sealer)
                    .unwrap_err(),
                Error::Expired(Expired::Session),
                "{json}"
            );
        }
        // Under `SESSION_EXPIRE_AT_BROWSER_CLOSE`, Django ends a session
        // without an expiry with the browser, and one whose expiry is an
        // empty collection (not `None`, not 0) with its default age.
        for (json, want) in [
            (r#"{"a": 1}"#, Expiry::BrowserSession),
            (
                r#"{"_session_expiry": null, "a": 1}"#,
                Expiry::BrowserSession,
            ),
            (r#"{"_session_expiry": {}, "a": 1}"#, Expiry::Default),
            // `True` is 1 in Python: a one-second window.
            (
                r#"{"_session_expiry": true, "a": 1}"#,
                Expiry::Idle(Duration::from_secs(1)),
            ),
        ] {
            let session =
                migrate_entries(&entries(json), None, true, EARLIEST_OFFSET, &sealer).unwrap();
            assert_eq!(session.expiry(), want, "{json}");
        }
        let ahead = Some(i64::try_from(NOW).unwrap() + 10);
        assert_eq!(
            migrate_entries(
                &entries(r#"{"_session_expiry": 0.5}"#),
                ahead,
                false,
                EARLIEST_OFFSET,
                &sealer
            )
            .unwrap_err(),
            Error::Expired(Expired::Session)
        );
    }

    #[test]
    fn base62_round_trips_and_matches_django_examples() {
        // From Django's tests: b62_encode(0) == "0", (-1) == "-1", 61 == "z".
        assert_eq!(b62_encode(0), "0");
        assert_eq!(b62_encode(61), "z");
        assert_eq!(b62_encode(62), "10");
        assert_eq!(b62_decode("-1").unwrap(), -1);
        for n in [0u64, 1, 61, 62, 3843, NOW, i64::MAX as u64] {
            assert_eq!(b62_decode(&b62_encode(n)).unwrap(), n as i64);
        }
        for bad in ["", "-", "1*", "é", "zzzzzzzzzzzzzzzzzz"] {
            assert_eq!(
                b62_decode(bad).unwrap_err(),
                Error::Malformed(Malformed::Timestamp),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn float_repr_matches_python_rules() {
        let cases = [
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e300, "1e+300"),
            (123.456, "123.456"),
        ];
        for (f, want) in cases {
            let mut s = String::new();
            write_float(&mut s, f);
            assert_eq!(s, want, "{f:e}");
        }
    }

    #[test]
    fn strings_are_escaped_like_python_ensure_ascii() {
        let mut s = String::new();
        write_string(&mut s, "a\"\\\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}é\u{2028}😀");
        assert_eq!(
            s,
            r#""a\"\\\n\r\t\b\f\u0000\u001f\u007f\u00e9\u2028\ud83d\ude00""#
        );
    }

    #[test]
    fn seal_then_open_round_trips() {
        let c = codec();
        for json in [
            r#"{}"#,
            r#"{"a":1,"b":[true,null,1.5,"x"],"c":{"d":"é😀"}}"#,
            &format!(r#"{{"big":"{}"}}"#, "ab".repeat(500)),
        ] {
            let e = entries(json);
            let cookie = c.seal(&e).unwrap();
            let opened = c.open_session(&cookie).unwrap();
            assert_eq!(opened.entries(), &e);
            assert_eq!(opened.timestamp(), NOW as i64);
            assert!(!opened.opened_with_fallback());
        }
        // Only the large repetitive one is worth compressing.
        assert!(c.seal(&entries(r#"{"a":1}"#)).unwrap().starts_with("eyJ"));
        let big = entries(&format!(r#"{{"big":"{}"}}"#, "ab".repeat(500)));
        assert!(c.seal(&big).unwrap().starts_with('.'));
    }

    #[test]
    fn every_fallback_secret_opens() {
        let sealed_with = |secret: &str| {
            DjangoCodec::builder(secret)
                .clock(Arc::new(FixedClock::new(NOW)))
                .build()
                .unwrap()
                .seal(&entries(r#"{"k":"v"}"#))
                .unwrap()
        };
        let rotated = DjangoCodec::builder("new")
            .fallback_secret("older")
            .fallback_secret("old")
            .clock(Arc::new(FixedClock::new(NOW)))
            .build()
            .unwrap();
        // The first and the last fallback, and the primary.
        for secret in ["older", "old"] {
            let cookie = sealed_with(secret);
            let s = rotated.open_session(&cookie).unwrap();
            assert!(s.opened_with_fallback(), "{secret}");
            assert_eq!(
                codec().open(&cookie).unwrap_err(),
                Error::AuthenticationFailed
            );
        }
        let s = rotated.open_session(&sealed_with("new")).unwrap();
        assert!(!s.opened_with_fallback());
        assert_eq!(
            rotated.open(&sealed_with("oldest")).unwrap_err(),
            Error::AuthenticationFailed
        );
    }

    #[test]
    fn max_age_boundary_is_inclusive_in_whole_seconds() {
        let clock = Arc::new(FixedClock::new(NOW));
        let c = DjangoCodec::builder("secret")
            .max_age(Duration::from_secs(100))
            .clock(clock.clone())
            .build()
            .unwrap();
        let cookie = c.seal(&entries(r#"{"a":1}"#)).unwrap();
        clock.set(NOW + 100);
        assert!(c.open(&cookie).is_ok());
        clock.set(NOW + 101);
        assert_eq!(c.open(&cookie).unwrap_err(), Error::Expired(Expired::Idle));
        // A timestamp in the future is not an error for Django either.
        clock.set(NOW - 1000);
        assert!(c.open(&cookie).is_ok());

        // A fraction of a second rounds up, not down to an age of 0.
        clock.set(NOW);
        let c = DjangoCodec::builder("secret")
            .max_age(Duration::from_millis(500))
            .clock(clock.clone())
            .build()
            .unwrap();
        clock.set(NOW + 1);
        assert!(c.open(&cookie).is_ok());
        clock.set(NOW + 2);
        assert_eq!(c.open(&cookie).unwrap_err(), Error::Expired(Expired::Idle));
    }

    #[test]
    fn bad_input_gives_error_kinds() {
        let c = codec();
        let ok = c.seal(&entries(r#"{"a":1}"#)).unwrap();
        let cases: Vec<(String, Error)> = vec![
            ("".into(), Error::Malformed(Malformed::Truncated)),
            ("abc".into(), Error::Malformed(Malformed::Truncated)),
            ("abc:def".into(), Error::Malformed(Malformed::Truncated)),
            (ok[..ok.len() - 1].into(), Error::AuthenticationFailed),
            (format!("x{ok}"), Error::AuthenticationFailed),
            ("a".repeat(5000), Error::LimitExceeded(Limit::TokenLength)),
            (
                sign_raw(&c, "!!!!", &b62_encode(NOW)),
                Error::Malformed(Malformed::Base64),
            ),
            (
                sign_raw(&c, "eyJhIjoxfQ", "1*"),
                Error::Malformed(Malformed::Timestamp),
            ),
            // Unsigned, the same timestamp is not read: forged.
            (
                format!("eyJhIjoxfQ:1*:{}", "A".repeat(43)),
                Error::AuthenticationFailed,
            ),
            (
                sign_raw(&c, ".eyJhIjoxfQ", &b62_encode(NOW)),
                Error::Malformed(Malformed::Compression),
            ),
            (
                sign_raw(&c, &URL_SAFE_NO_PAD.encode("[1,2]"), &b62_encode(NOW)),
                Error::Malformed(Malformed::Json),
            ),
            (
                sign_raw(&c, &URL_SAFE_NO_PAD.encode("{\"a\":"), &b62_encode(NOW)),
                Error::Malformed(Malformed::Json),
            ),
        ];
        for (cookie, want) in cases {
            assert_eq!(c.open(&cookie).unwrap_err(), want, "{want:?}");
        }
    }

    #[test]
    fn decompression_is_capped_and_strict() {
        let c = codec();
        let bomb = deflate(&vec![b' '; 1_000_000]).unwrap();
        let cookie = sign_raw(
            &c,
            &format!(".{}", URL_SAFE_NO_PAD.encode(&bomb)),
            &b62_encode(NOW),
        );
        assert_eq!(
            c.open(&cookie).unwrap_err(),
            Error::LimitExceeded(Limit::DecompressedSize)
        );

        // The inflater's own cases (truncation, trailing bytes, a bad
        // checksum) are tested in inflate.rs.
    }

    #[test]
    fn latin1_payload_bytes_are_read_as_django_reads_them() {
        let c = codec();
        // Raw UTF-8 "é" is two Latin-1 characters to Django.
        let raw = "{\"a\":\"\u{e9}\"}".as_bytes();
        let cookie = sign_raw(&c, &URL_SAFE_NO_PAD.encode(raw), &b62_encode(NOW));
        assert_eq!(c.open(&cookie).unwrap(), entries(r#"{"a":"Ã©"}"#));
    }

    #[test]
    fn empty_secret_or_salt_is_refused_and_debug_hides_keys() {
        assert_eq!(
            DjangoCodec::builder("").build().unwrap_err(),
            Error::InvalidKey(InvalidKey::EmptySecret)
        );
        assert_eq!(
            DjangoCodec::builder("secret").salt("").build().unwrap_err(),
            Error::InvalidKey(InvalidKey::EmptySalt)
        );
        let builder = DjangoCodec::builder("topsecret").fallback_secret("oldsecret");
        assert!(!format!("{builder:?}").contains("secret\""));
        assert!(!format!("{builder:?}").contains("topsecret"));
        let c = builder.build().unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("topsecret") && !shown.contains("oldsecret"));
    }

    #[test]
    fn migration_maps_reserved_keys_and_detects_collisions() {
        let sealer = sealer_at_now();
        let e = entries(r#"{"_auth_user_id":"1","_auth_user_hash":"h","n":[1,2]}"#);
        let s = to_sealed_session(&e, &sealer).unwrap();
        assert_eq!(s.priority("django_auth_user_id"), Some(Priority::Critical));
        assert_eq!(s.priority("n"), Some(Priority::Normal));
        assert_eq!(s.get::<Vec<u8>>("n").unwrap(), Some(vec![1, 2]));
        let clash = entries(r#"{"_x":1,"django_x":2}"#);
        assert_eq!(
            to_sealed_session(&clash, &sealer).unwrap_err(),
            Error::InvalidEntryKey(InvalidEntryKey::Reserved)
        );
    }

    #[test]
    fn default_max_age_is_django_two_weeks() {
        // `SESSION_COOKIE_AGE`'s default, 1209600 seconds; the CLI's
        // default `--max-age` too.
        assert_eq!(DEFAULT_MAX_AGE, Duration::from_secs(1_209_600));
        assert_eq!(codec().max_age(), Some(DEFAULT_MAX_AGE));
        let custom = DjangoCodec::builder("secret")
            .max_age(Duration::from_secs(60))
            .clock(Arc::new(FixedClock::new(NOW)))
            .build()
            .unwrap();
        assert_eq!(custom.max_age(), Some(Duration::from_secs(60)));
        // By default a cookie exactly two weeks old still opens.
        let cookie = codec_at(NOW - 1_209_600)
            .seal(&entries(r#"{"a":1}"#))
            .unwrap();
        assert!(codec().open(&cookie).is_ok());
    }

    #[test]
    fn debug_shows_key_count_and_settings() {
        // The secrets are hidden (see above), but not everything: a codec
        // printed for a misconfiguration says how many keys and what age.
        let builder = DjangoCodec::builder("topsecret").fallback_secret("oldsecret");
        let shown = format!("{builder:?}");
        assert!(shown.starts_with("DjangoCodecBuilder {"), "{shown}");
        assert!(shown.contains("secrets: 2"), "{shown}");
        assert!(shown.contains(SESSION_SALT), "{shown}");
        let shown = format!("{:?}", builder.build().unwrap());
        assert!(shown.starts_with("DjangoCodec {"), "{shown}");
        assert!(shown.contains("keys: 2"), "{shown}");
        assert!(shown.contains("max_age: Some(1209600)"), "{shown}");
    }

    #[test]
    fn a_cookie_exactly_at_the_token_limit_is_written_and_read() {
        // The limit is inclusive both ways: what `seal` writes at the limit,
        // `open` reads; a byte less of limit refuses it on both sides.
        let e = entries(r#"{"a":1}"#);
        let cookie = codec().seal(&e).unwrap();
        let limited = |max_token_len| {
            DjangoCodec::builder("secret")
                .limits(Limits::default().with_max_token_len(max_token_len))
                .clock(Arc::new(FixedClock::new(NOW)))
                .build()
                .unwrap()
        };
        let exact = limited(cookie.len());
        assert_eq!(exact.seal(&e).unwrap(), cookie);
        assert_eq!(exact.open(&cookie).unwrap(), e);
        let short = limited(cookie.len() - 1);
        assert_eq!(
            short.seal(&e).unwrap_err(),
            Error::TooLarge {
                needed: cookie.len(),
                budget: cookie.len() - 1
            }
        );
        assert_eq!(
            short.open(&cookie).unwrap_err(),
            Error::LimitExceeded(Limit::TokenLength)
        );
    }

    #[test]
    fn an_uncompressed_payload_exactly_at_the_decompression_cap_opens() {
        // The cap applies to the JSON whether or not it was compressed
        // (the compressed side is above): 100 bytes open under a 100-byte
        // cap, 101 do not.
        let c = DjangoCodec::builder("secret")
            .limits(Limits::default().with_max_decompressed(100))
            .compress(false)
            .clock(Arc::new(FixedClock::new(NOW)))
            .build()
            .unwrap();
        let at_limit = entries(&format!(r#"{{"a":"{}"}}"#, "x".repeat(92)));
        let cookie = c.seal(&at_limit).unwrap();
        assert!(cookie.starts_with("eyJ"), "uncompressed: {cookie}");
        assert_eq!(c.open(&cookie).unwrap(), at_limit);
        let over = format!(r#"{{"a":"{}"}}"#, "x".repeat(93));
        let cookie = sign_raw(&c, &URL_SAFE_NO_PAD.encode(over), &b62_encode(NOW));
        assert_eq!(
            c.open(&cookie).unwrap_err(),
            Error::LimitExceeded(Limit::DecompressedSize)
        );
    }

    #[test]
    fn compression_must_save_more_than_one_byte() {
        // Django's rule: compressed only if `len(compressed) < len(data) - 1`.
        // A value whose repeated tail grows makes the saving climb one byte
        // at a time; find the sessions that save exactly one and two bytes.
        let saving_of = |saving: usize| {
            (0..200)
                .map(|n| entries(&format!(r#"{{"k":"q8Zx!3vR_{}"}}"#, "w".repeat(n))))
                .find(|e| {
                    let mut json = String::new();
                    write_object(&mut json, e).unwrap();
                    deflate(json.as_bytes()).unwrap().len() + saving == json.len()
                })
                .expect("the saving passes through every value")
        };
        let one = saving_of(1);
        let two = saving_of(2);
        let c = codec();
        let written = c.seal(&one).unwrap();
        assert!(!written.starts_with('.'), "saves one byte: {written}");
        assert_eq!(c.open(&written).unwrap(), one);
        let written = c.seal(&two).unwrap();
        assert!(written.starts_with('.'), "saves two bytes: {written}");
        assert_eq!(c.open(&written).unwrap(), two);
    }

    #[test]
    fn incompressible_data_deflates_past_the_first_buffer() {
        // The output buffer starts at half the input: data that does not
        // compress has to grow it. A compressor that never grew it would
        // spin without output, so it runs on a thread the test stops
        // waiting for: a failure, not a hung test run.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: Vec<u8> = (0..4000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let (sender, receiver) = std::sync::mpsc::channel();
        let input = noise.clone();
        std::thread::spawn(move || sender.send(deflate(&input)));
        let deflated = receiver
            .recv_timeout(Duration::from_secs(20))
            .expect("deflate finishes")
            .unwrap();
        assert!(deflated.len() > noise.len() / 2 + 64, "{}", deflated.len());
        assert_eq!(
            inflate_capped(&deflated, noise.len(), Wrapper::Zlib).unwrap(),
            noise
        );
        // Through `seal`: printable noise still compresses (to about 82%,
        // past the first buffer too) and opens.
        let text: String = noise.iter().map(|b| char::from(b'!' + b % 94)).collect();
        let e = entries(&serde_json::json!({ "n": text }).to_string());
        let c = DjangoCodec::builder("secret")
            .limits(Limits::default().with_max_token_len(8192))
            .clock(Arc::new(FixedClock::new(NOW)))
            .build()
            .unwrap();
        let cookie = c.seal(&e).unwrap();
        assert!(cookie.starts_with('.'), "compressed");
        assert_eq!(c.open(&cookie).unwrap(), e);
    }

    #[test]
    fn short_expiry_strings_are_refused_without_panicking() {
        // Too short for a date and a time; Python's `fromisoformat` refuses
        // them too. Nothing may index past their end.
        for text in ["1", "2023", "2023-11", "2023-11-1"] {
            let cookie = codec()
                .seal(&entries(&format!(r#"{{"_session_expiry": "{text}"}}"#)))
                .unwrap();
            assert_eq!(
                codec().open(&cookie).unwrap_err(),
                Error::Malformed(Malformed::Json),
                "{text}"
            );
        }
    }

    #[test]
    fn basic_format_expiry_dates_are_read_unchanged() {
        // Python 3.11's `fromisoformat` (so Django) reads the basic format;
        // only an extended-format date gets its separator replaced, which
        // would break `20231115T000000Z` (its 11th character is a digit).
        let sealer = sealer_at_now();
        for text in ["20231115T000000Z", "20231115T010000+0100"] {
            let e = entries(&format!(r#"{{"_session_expiry": "{text}", "a": 1}}"#));
            let session = to_sealed_session(&e, &sealer).unwrap();
            assert_eq!(session.expiry(), Expiry::At(1_700_006_400), "{text}");
        }
    }

    #[test]
    fn migration_ends_at_the_boundaries_of_its_own_expiry() {
        let sealer = sealer_at_now();
        // A date of exactly now has passed: nothing is left of the session.
        let now = entries(r#"{"_session_expiry": "2023-11-14T22:13:20+00:00"}"#);
        assert_eq!(
            to_sealed_session(&now, &sealer).unwrap_err(),
            Error::Expired(Expired::Session)
        );
        let next = entries(r#"{"_session_expiry": "2023-11-14T22:13:21+00:00"}"#);
        let session = to_sealed_session(&next, &sealer).unwrap();
        assert_eq!(session.expiry(), Expiry::At(NOW + 1));
        // One second of inactivity is the shortest window kept (under a
        // second is refused, above).
        let one = entries(r#"{"_session_expiry": 1}"#);
        let session = to_sealed_session(&one, &sealer).unwrap();
        assert_eq!(session.expiry(), Expiry::Idle(Duration::from_secs(1)));
    }
}
