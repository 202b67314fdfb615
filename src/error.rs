//! The crate's one error type.
//!
//! Every variant names a *kind* of failure; none carries key material, cookie
//! values or session contents, so errors are safe to log.

use core::fmt;

/// Everything that can go wrong while building keys, sealing or opening.
///
/// Match on the variant (or on [`Error::kind`], a stable string used by the
/// published test vectors) to decide what to do; the `Display` text is for
/// humans and may change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The token is not a well-formed v1 token (bad base64, too short, bad
    /// payload structure, …). The inner value says which check failed.
    #[error("malformed token: {0}")]
    Malformed(Malformed),

    /// The token names a key id that is not in the key ring.
    #[error("unknown key id")]
    UnknownKeyId,

    /// The token failed authentication: it was altered, sealed under another
    /// key or for another cookie name. Deliberately says nothing more.
    #[error("authentication failed")]
    AuthenticationFailed,

    /// The token authenticated but the session is over.
    #[error("session expired ({0})")]
    Expired(Expired),

    /// The token claims to have been issued later than now plus the allowed
    /// clock skew (or, migrating a Django cookie, it was signed that far
    /// ahead).
    #[error("token issued in the future beyond the allowed clock skew")]
    IssuedInFuture,

    /// The session was revoked by the configured revocation hook.
    #[error("session revoked")]
    Revoked,

    /// The sealed cookie does not fit in the budget, even after every entry
    /// that may be dropped was dropped.
    #[error("cookie too large: {needed} bytes needed, budget is {budget} bytes")]
    TooLarge {
        /// Size in bytes of the smallest `Set-Cookie` header that could be built.
        needed: usize,
        /// The budget in bytes: the configured one, or less where the
        /// sealer's token-length limit, or the 4096 bytes of name and
        /// value browsers keep, is tighter (`docs/FORMAT.md` §14.3).
        budget: usize,
    },

    /// A resource limit was hit before the costly work it guards.
    #[error("limit exceeded: {0}")]
    LimitExceeded(Limit),

    /// A key could not be built, or a key ring was inconsistent.
    #[error("invalid key: {0}")]
    InvalidKey(InvalidKey),

    /// A key read from a setting ([`KeyRing::from_env`](crate::KeyRing::from_env):
    /// an environment variable) is missing or could not be used. Names the
    /// setting, never its value.
    #[error("{}", key_setting_message(setting, *item, *reason))]
    InvalidKeySetting {
        /// The setting's name (`SESSION_FALLBACK_KEYS`).
        setting: String,
        /// Which field of a comma-separated list, from 1 (empty fields,
        /// which are skipped, counted).
        item: Option<usize>,
        /// What is wrong with it.
        reason: InvalidKey,
    },

    /// The configured cookie name, path or domain cannot be sent in a
    /// `Set-Cookie` header (checked when the sealer is built).
    #[error("invalid cookie setting: {0}")]
    InvalidCookie(InvalidCookie),

    /// A setting of the sealer would break every session: a zero timeout
    /// ends each as it is written, and revocation records that end before
    /// the cookies they revoke let revoked cookies open again (checked
    /// when the sealer is built).
    #[error("invalid setting: {0}")]
    InvalidSetting(InvalidSetting),

    /// An entry's key is reserved (starts with `_`) or empty.
    #[error("invalid entry key: {0}")]
    InvalidEntryKey(InvalidEntryKey),

    /// A value could not be serialized to, or deserialized from, CBOR as the
    /// requested type.
    #[error("value could not be {0}")]
    Value(ValueError),

    /// The random source failed (no entropy available), gave only zero
    /// bytes (it returned without writing: a nonce, session id or key of
    /// 16 or more bytes is refused then), or none was given on a target
    /// without an operating-system generator (`wasm32-unknown-unknown`).
    #[error("random source failed")]
    Random,

    /// No clock was given on a target without a system clock
    /// (`wasm32-unknown-unknown`): the host must supply one.
    #[error("no clock: this target has none, the host must supply one")]
    NoClock,

    /// The server-side overflow store or revocation store failed.
    #[error("server-side store failed: {0}")]
    Store(StoreError),

    /// A handler asked to save or seal the session the HTTP layer holds
    /// (`http::LazySession`). The layer saves it
    /// when the response goes out; a save before would mark it saved, and
    /// the layer would then send nothing (the request's changes lost, a
    /// logout's revocation skipped).
    #[error("the HTTP layer saves this session when the response goes out")]
    HeldByLayer,
}

/// Each payload is an error of its own (for `?` into `Box<dyn Error>`, as
/// [`CookieSettings::check`](crate::CookieSettings::check) returns one),
/// and converts into the [`Error`] variant that carries it. The variant's
/// message already includes the payload's, so it is no `source` of it.
macro_rules! payload_errors {
    ($($payload:ident => $variant:ident),* $(,)?) => {$(
        impl std::error::Error for $payload {}

        impl From<$payload> for Error {
            fn from(payload: $payload) -> Self {
                Error::$variant(payload)
            }
        }
    )*};
}

payload_errors! {
    Malformed => Malformed,
    Expired => Expired,
    Limit => LimitExceeded,
    InvalidKey => InvalidKey,
    InvalidCookie => InvalidCookie,
    InvalidSetting => InvalidSetting,
    InvalidEntryKey => InvalidEntryKey,
    ValueError => Value,
    StoreError => Store,
}

impl Error {
    /// A short, stable, kebab-case name for the kind of error, as used in the
    /// `expected_error` field of the published test vectors.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Malformed(_) => "malformed",
            Error::UnknownKeyId => "unknown-key-id",
            Error::AuthenticationFailed => "authentication-failed",
            Error::Expired(Expired::Idle) => "expired-idle",
            Error::Expired(Expired::Lifetime) => "expired-lifetime",
            Error::Expired(Expired::Session) => "expired-session",
            Error::IssuedInFuture => "issued-in-future",
            Error::Revoked => "revoked",
            Error::TooLarge { .. } => "too-large",
            Error::LimitExceeded(_) => "limit-exceeded",
            Error::InvalidKey(_) | Error::InvalidKeySetting { .. } => "invalid-key",
            Error::InvalidEntryKey(_) => "invalid-entry-key",
            Error::InvalidCookie(_) => "invalid-cookie",
            Error::InvalidSetting(_) => "invalid-setting",
            Error::Value(_) => "value",
            Error::Random => "random",
            Error::NoClock => "no-clock",
            Error::Store(_) => "store",
            Error::HeldByLayer => "held-by-layer",
        }
    }

    /// Whether the same request may succeed if tried again later: only a
    /// store that could not be reached
    /// ([`StoreError::Unavailable`](crate::StoreError::Unavailable)); a
    /// blob that is missing or fails authentication, a cookie too large or
    /// a bad value stay as they are. The axum layer answers a save that
    /// fails so with `503 Service Unavailable`, any other with `500`; a
    /// host without it can do the same.
    ///
    /// ```
    /// use sealed_session::{Error, StoreError};
    /// assert!(Error::Store(StoreError::Unavailable).is_transient());
    /// assert!(!Error::TooLarge { needed: 5000, budget: 4096 }.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Store(crate::StoreError::Unavailable))
    }
}

/// Which structural check a malformed token failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// Not strict unpadded base64url (padding, whitespace, bad characters,
    /// non-canonical trailing bits).
    Base64,
    /// Shorter than a header, nonce and tag.
    Truncated,
    /// The version byte is not one this crate reads.
    UnknownVersion(u8),
    /// Flag bits that this version does not define are set.
    UnknownFlags(u8),
    /// The decrypted payload is not valid CBOR of the v1 schema.
    Payload,
    /// The compressed payload is not valid raw deflate (or zlib, for Django).
    Compression,
    /// A Django cookie's base62 timestamp is missing or invalid.
    Timestamp,
    /// A Django cookie's payload is not a JSON object.
    Json,
    /// Text given as a session id is not 32 hexadecimal digits.
    SessionId,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Base64 => f.write_str("not strict unpadded base64url"),
            Malformed::Truncated => f.write_str("too short"),
            Malformed::UnknownVersion(v) => write!(f, "unknown version {v}"),
            Malformed::UnknownFlags(b) => write!(f, "unknown flag bits {b:#04x}"),
            Malformed::Payload => f.write_str("payload does not match the v1 schema"),
            Malformed::Compression => f.write_str("invalid compressed payload"),
            Malformed::Timestamp => f.write_str("invalid timestamp"),
            Malformed::Json => f.write_str("payload is not a JSON object"),
            Malformed::SessionId => f.write_str("not a session id (32 hexadecimal digits)"),
        }
    }
}

/// Which time limit ended the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expired {
    /// Not re-sealed within the idle timeout: the sealer's, or the
    /// session's own ([`Expiry::Idle`](crate::Expiry::Idle)).
    Idle,
    /// Older than the absolute lifetime (counted from created-at).
    Lifetime,
    /// Past the end the session set for itself
    /// ([`Expiry::At`](crate::Expiry::At)), or, for a Django cookie, past
    /// its own `_session_expiry` (a date or, from the cookie's time, a
    /// number of seconds: Django's rule, `docs/DJANGO.md`).
    Session,
}

impl fmt::Display for Expired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expired::Idle => "idle timeout",
            Expired::Lifetime => "absolute lifetime",
            Expired::Session => "session expiry",
        })
    }
}

/// Which resource limit was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// The token is longer than the maximum (checked before base64 decoding).
    TokenLength,
    /// The payload inflates past the decompression cap.
    DecompressedSize,
    /// A value nests deeper than the maximum CBOR depth.
    Depth,
    /// The session holds more entries than allowed.
    Entries,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::TokenLength => "token length",
            Limit::DecompressedSize => "decompressed size",
            Limit::Depth => "nesting depth",
            Limit::Entries => "entry count",
        })
    }
}

/// Why a key or key ring was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidKey {
    /// Master keys must be at least 32 bytes.
    TooShort,
    /// The text is not valid base64 or hex.
    Encoding,
    /// Two keys of one ring derive the same key id.
    DuplicateKeyId,
    /// Text given as base64 is made only of hexadecimal digits (after an
    /// optional `0x`): read as base64 it would be a different key than the
    /// one meant, so it is refused (read it with `MasterKey::from_hex`).
    LooksLikeHex,
    /// A Django `SECRET_KEY` (or fallback) is empty; Django refuses one too.
    EmptySecret,
    /// A Django signing salt is empty: Django would sign with its signer
    /// class's path instead, which this crate does not guess.
    EmptySalt,
    /// No key was given: the setting that must hold one is unset or empty.
    Missing,
}

impl fmt::Display for InvalidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidKey::TooShort => "master keys must be at least 32 bytes",
            InvalidKey::Encoding => "not valid base64 or hex",
            InvalidKey::DuplicateKeyId => "two keys in the ring share a key id",
            InvalidKey::LooksLikeHex => "the key is hexadecimal, not base64; read it as hex",
            InvalidKey::EmptySecret => "a Django secret must not be empty",
            InvalidKey::EmptySalt => "a Django salt must not be empty",
            InvalidKey::Missing => "no key given",
        })
    }
}

/// [`Error::InvalidKeySetting`]'s text: a missing key says how to make one.
fn key_setting_message(setting: &str, item: Option<usize>, reason: InvalidKey) -> String {
    match (item, reason) {
        (None, InvalidKey::Missing) => {
            format!("invalid key in {setting}: not set (generate one with `sealed-session keygen`)")
        }
        (Some(n), reason) => format!("invalid key in {setting} (item {n}): {reason}"),
        (None, reason) => format!("invalid key in {setting}: {reason}"),
    }
}

/// Which cookie setting a sealer refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidCookie {
    /// The name is empty or not an RFC 6265 token (letters, digits and
    /// ``!#$%&'*+-.^_`|~``).
    Name,
    /// The name leaves no room for even an empty session's token within
    /// the 4096 bytes of name and value browsers keep
    /// ([`MAX_NAME_VALUE_LEN`](crate::MAX_NAME_VALUE_LEN)): every cookie
    /// saved under it would be ignored. Refused by the HTTP layer's
    /// builder; a [`Sealer`](crate::Sealer) accepts such a name for tokens
    /// used outside cookies.
    NameTooLong,
    /// The path does not start with `/`, has a control character, `;`
    /// or a non-ASCII character, is longer than the 1024 bytes browsers
    /// accept, or has a character no request path matches raw because
    /// browsers percent-encode it or read it as a separator (a space,
    /// ``"#<>?\^`{|}``): give its percent-encoded form (`/my%20app`).
    Path,
    /// The domain is empty, has an empty label (`a..b`, a trailing dot),
    /// has a character other than ASCII letters, digits, `-` and `.`
    /// (internationalised names go in their `xn--` form), or is longer
    /// than 1024 bytes.
    Domain,
}

impl fmt::Display for InvalidCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidCookie::Name => "the cookie name is empty or not an RFC 6265 token",
            InvalidCookie::NameTooLong => {
                "the cookie name leaves no room for a session token within the 4096 bytes of name and value browsers keep"
            }
            InvalidCookie::Path => {
                "the path does not start with '/', has a space, a control character, ';', one of \"#<>?\\^`{|} or non-ASCII (percent-encode it), or is over 1024 bytes"
            }
            InvalidCookie::Domain => {
                "the domain is empty, has an empty label, has a character other than A-Z, a-z, 0-9, '-' and '.', or is over 1024 bytes"
            }
        })
    }
}

/// Which setting a sealer refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidSetting {
    /// A zero idle timeout: every session would expire as it is written
    /// (a persistent cookie would go out with `Max-Age=0`, which browsers
    /// take as a deletion). For none, use `no_idle_timeout`.
    ZeroIdleTimeout,
    /// A zero absolute lifetime, likewise. For none, use
    /// `no_max_lifetime`.
    ZeroLifetime,
    /// A revocation store with neither an idle timeout nor an absolute
    /// lifetime, or with one so long (with the clock skew) that its
    /// cookies would outlive the revocation records, which are kept at
    /// most 100 years: a revoked cookie would open again.
    SessionsOutliveRevocations,
    /// A store's address (a Redis URL) does not parse: a setup mistake,
    /// not an outage.
    StoreAddress,
    /// A store's address asks for TLS (`rediss://`, `valkeys://`) that
    /// this build of the Redis client does not have (feature `redis-tls`),
    /// or for TLS without checking the server's certificate (`#insecure`),
    /// which is refused.
    StoreTls,
    /// Logging a user out of other sessions needs a revocation store with
    /// a user key
    /// ([`SealerBuilder::revocation_store`](crate::SealerBuilder::revocation_store)),
    /// and the sealer has none.
    NoUserRevocation,
    /// The previous cookie name given for a rename
    /// ([`SealerBuilder::previous_cookie_name`](crate::SealerBuilder::previous_cookie_name))
    /// is the current name. Every cookie of the current name is already
    /// tried, and a cookie that moves only its path or domain cannot be
    /// told apart from the new one in a request (browsers send neither),
    /// so a move needs a new name.
    PreviousNameIsCurrent,
    /// A domain of the HTTP layer's per-host list
    /// (`http::SessionLayerBuilder::domains`) is, or is under, another of
    /// them or the layer's own domain: a browser that holds cookies for
    /// both sends the older first, which would open on every request and
    /// hide every later write.
    NestedDomains,
    /// A store that connects on its first request
    /// (`RedisStore::connect_lazy`, feature `redis`) was made outside a Tokio runtime, which its connection needs.
    NoRuntime,
}

impl fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidSetting::ZeroIdleTimeout => {
                "a zero idle timeout would end every session as it is written"
            }
            InvalidSetting::ZeroLifetime => {
                "a zero absolute lifetime would end every session as it is written"
            }
            InvalidSetting::SessionsOutliveRevocations => {
                "with a revocation store, sessions need an idle timeout or an absolute lifetime shorter than the 100 years a revocation record is kept"
            }
            InvalidSetting::StoreAddress => "the store's address is not a valid URL for it",
            InvalidSetting::StoreTls => {
                "the store's address asks for TLS that this build of the Redis client lacks, or for TLS without checking the server's certificate"
            }
            InvalidSetting::NoUserRevocation => {
                "logging a user out of other sessions needs a revocation store with a user key"
            }
            InvalidSetting::PreviousNameIsCurrent => {
                "the previous cookie name is the current one; moving a cookie's path or domain needs a new name"
            }
            InvalidSetting::NestedDomains => {
                "a cookie domain of the layer is, or is under, another of its domains; their cookies would shadow each other"
            }
            InvalidSetting::NoRuntime => {
                "a store that connects on its first request must be made within a Tokio runtime"
            }
        })
    }
}

/// Why an entry's key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidEntryKey {
    /// Keys starting with `_` are reserved for the crate.
    Reserved,
    /// Keys must not be empty.
    Empty,
}

impl fmt::Display for InvalidEntryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidEntryKey::Reserved => "keys starting with '_' are reserved",
            InvalidEntryKey::Empty => "keys must not be empty",
        })
    }
}

/// Which direction of value conversion failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueError {
    /// The value could not be serialized.
    Serialize,
    /// The stored value is not valid CBOR or not of the requested type.
    Deserialize,
    /// The entry a revocation check reads as the user id
    /// ([`SealerBuilder::revocation`](crate::SealerBuilder::revocation)'s
    /// `user_key`) is not a string, a 64-bit integer, a byte string or
    /// null (CBOR's `undefined` and bignums are refused too):
    /// refused when a session is saved or sealed with it, and when a
    /// cookie with it is opened (the check must not be skipped).
    UserId,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueError::Serialize => "serialized",
            ValueError::Deserialize => "deserialized as the requested type",
            ValueError::UserId => {
                "read as the revocation check's user id (a string, a 64-bit integer or a byte string)"
            }
        })
    }
}

/// What went wrong with a server-side store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached or answered with an error.
    Unavailable,
    /// The stored blob is missing (expired or deleted).
    Missing,
    /// The stored blob cannot be read here: altered in the store (or bound
    /// to another session or reference), or sealed under a key or over
    /// limits this server does not have.
    Rejected,
    /// The entry lives in the overflow store and was not loaded: call
    /// `Sealer::load_overflow` first (the HTTP layer's `get`, `take` and
    /// `with_loaded` do this for you; `with` does not).
    NotLoaded,
    /// `Sealer::open` on a sealer with a revocation check, which only
    /// `Sealer::open_async` can consult; or `Sealer::open_request` or
    /// `save_request` on a sealer with a revocation check or an overflow
    /// store (use their `_async` forms); or `Sealer::save` or `seal` of a
    /// session whose id was replaced (`flush`, `cycle_id`) on a sealer with
    /// a revocation store, which only `Sealer::save_async` can write to,
    /// or of a session whose overflow blob holds an entry raised to
    /// critical, which only `save_async` can load rather than drop;
    /// or the Django migration's `migrate_session` or `migrate_cookie` on a
    /// sealer with a revocation check (use their `_async` forms).
    NeedsAsync,
    /// The store cannot take the write: a blob larger than its whole
    /// capacity
    /// ([`MemoryStore::max_bytes`](crate::store::MemoryStore::max_bytes)),
    /// a revocation record beyond
    /// [`MemoryRevocations::max_records`](crate::store::MemoryRevocations::max_records),
    /// or a Redis server out of memory under its `maxmemory` (an `OOM`
    /// answer).
    OverCapacity,
    /// The cookie refers to an overflow blob, and this sealer has no
    /// overflow store to read it from: a setup mistake (every server of
    /// a deployment that overflows needs the store), not an outage. When
    /// adding a store to a fleet, add it to every server before any serves
    /// with it: a server without it cannot read the entries moved there.
    NotConfigured,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreError::Unavailable => "unavailable",
            StoreError::Missing => "entry missing or expired",
            StoreError::Rejected => {
                "entry rejected (altered, or not readable with this server's keys and limits)"
            }
            StoreError::NotLoaded => "overflowed entry not loaded from the store",
            StoreError::NeedsAsync => {
                "the revocation check or overflow store is asynchronous: use the _async form"
            }
            StoreError::OverCapacity => "the store is at its capacity",
            StoreError::NotConfigured => "no overflow store is configured",
        })
    }
}
