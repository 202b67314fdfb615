//! The session an application reads and writes during one request.

use core::fmt;
use core::ops::Range;
use core::time::Duration;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::budget::RemovedEntry;
use crate::error::{InvalidEntryKey, Limit, ValueError};
use crate::key::KeyRole;
use crate::payload::{Priority, SESSION_ID_LEN};
use crate::random::RandomSource;
use crate::sealer::TimePolicy;
use crate::{Error, Limits};

/// A random 128-bit session identifier, kept across re-seals and replaced by
/// [`Session::cycle_id`] and [`Session::flush`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; SESSION_ID_LEN]);

impl SessionId {
    /// Wraps 16 raw bytes.
    pub const fn from_bytes(bytes: [u8; SESSION_ID_LEN]) -> Self {
        SessionId(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; SESSION_ID_LEN] {
        &self.0
    }

    pub(crate) fn random(random: &dyn RandomSource) -> Result<Self, Error> {
        let mut id = [0u8; SESSION_ID_LEN];
        crate::random::fill_nonzero(random, &mut id)?;
        Ok(SessionId(id))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::with_capacity(2 * SESSION_ID_LEN);
        crate::key::push_hex(&mut text, &self.0);
        f.pad(&text)
    }
}

/// Parses the 32 hexadecimal digits [`SessionId`]'s `Display` writes (either
/// case), e.g. an id kept from a [`RevocationQuery`](crate::store::RevocationQuery)
/// or a device list, to revoke it later.
///
/// ```
/// use sealed_session::SessionId;
/// let id: SessionId = "000102030405060708090a0b0c0d0e0f".parse()?;
/// assert_eq!(id.as_bytes()[15], 15);
/// assert_eq!(id.to_string().parse::<SessionId>()?, id);
/// assert!("0x0102030405060708090a0b0c0d0e0f".parse::<SessionId>().is_err());
/// # Ok::<(), sealed_session::Error>(())
/// ```
impl core::str::FromStr for SessionId {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let mut id = [0u8; SESSION_ID_LEN];
        crate::key::decode_hex(text.as_bytes(), &mut id)
            .ok_or(Error::Malformed(crate::Malformed::SessionId))?;
        Ok(SessionId(id))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// As the 32 hexadecimal digits of `Display`: for a list of a user's
/// devices kept in the session or a database, say.
///
/// ```
/// use sealed_session::{KeyRing, MasterKey, Sealer, SessionId};
/// let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?)).build()?;
/// let mut session = sealer.new_session()?;
/// let laptop = SessionId::from_bytes([7; 16]);
/// session.insert("devices", vec![laptop])?;
/// assert_eq!(session.get::<Vec<SessionId>>("devices")?, Some(vec![laptop]));
/// assert_eq!(session.get::<Vec<String>>("devices")?, Some(vec!["07".repeat(16)]));
/// session.insert("not an id", "07")?;
/// assert!(session.get::<SessionId>("not an id").is_err());
/// # Ok::<(), sealed_session::Error>(())
/// ```
impl Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Parses what `Serialize` writes (either case), as `FromStr`.
impl<'de> serde::Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map_err(|_| serde::de::Error::custom("not a session id (32 hexadecimal digits)"))
    }
}

/// When the session ends on its own, besides the sealer's idle timeout and
/// absolute lifetime (which always apply), and, for a cookie that ends
/// with the browser, its
/// [`browser_session_max_idle`](crate::SealerBuilder::browser_session_max_idle).
///
/// With serde it is `"default"`, `{"at": unix_seconds}`,
/// `"browser_session"` or `{"idle": seconds}` (a window's fraction of a
/// second rounded up, as [`Session::set_expiry`] does), e.g. to keep a
/// user's "remember me" choice:
///
/// ```
/// use sealed_session::Expiry;
/// use std::time::Duration;
/// let idle = Expiry::Idle(Duration::from_millis(1500));
/// assert_eq!(serde_json::to_string(&idle)?, r#"{"idle":2}"#);
/// let at: Expiry = serde_json::from_str(r#"{"at":1800000000}"#)?;
/// assert_eq!(at, Expiry::At(1_800_000_000));
/// assert_eq!(serde_json::to_string(&Expiry::BrowserSession)?, r#""browser_session""#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Expiry {
    /// Only the sealer's timeouts apply; the cookie is persistent, its
    /// `Max-Age` the time left (a browser-session cookie instead when the
    /// cookie settings are not persistent, or when the sealer has neither
    /// an idle timeout nor a lifetime, leaving no time to give).
    #[default]
    Default,
    /// The session ends at this Unix time (seconds), or earlier: the
    /// sealer's idle timeout and absolute lifetime still apply, so this
    /// can shorten a session but never extend it (unlike Django and
    /// tower-sessions, where an explicit expiry replaces the global age; a
    /// cookie whose lifetime the server cannot bound is what those limits
    /// exist to refuse). The cookie is persistent even when the cookie
    /// settings are not (as an explicit expiry overrides "expire at
    /// browser close" in Django): this is how "remember me" is built on
    /// browser-session defaults, with [`Session::expires_at`] telling when
    /// it really ends. A time already past ends the session: the cookie is
    /// sent with `Max-Age=0`, which the browser drops, and it no longer
    /// opens; the rest of the request still reads the session.
    At(u64),
    /// The cookie has no `Max-Age`: the browser drops it when it closes.
    /// The server still enforces the sealer's timeouts, and its
    /// [`browser_session_max_idle`](crate::SealerBuilder::browser_session_max_idle)
    /// if set.
    BrowserSession,
    /// The session ends after this long without a re-seal: an
    /// idle timeout of its own, which slides with use as the sealer's
    /// does (Django's `set_expiry(seconds)`, tower-sessions'
    /// `Expiry::OnInactivity`). It applies besides the sealer's idle
    /// timeout, so it can only be shorter (an admin session that idles
    /// out after 15 minutes on a site whose sessions idle out after two
    /// weeks); the sliding refresh then follows the shorter window. The
    /// cookie is persistent, as with [`Expiry::At`]; an expired one gives
    /// [`Expired::Idle`](crate::Expired::Idle). The window is whole
    /// seconds, as the cookie carries it: [`Session::set_expiry`] rounds a
    /// fraction of a second up, as the sealer's builder does its time
    /// settings, so a window under a second is one of a second. A
    /// window of 0 ends the
    /// session within the second it was sealed (its cookie gets
    /// `Max-Age=0`): Django's `set_expiry(0)` is [`Expiry::BrowserSession`]
    /// here.
    Idle(#[serde(with = "whole_seconds_serde")] Duration),
}

impl Expiry {
    /// [`Expiry::At`] the given time, rounded down to the second (the
    /// session may end sooner, never later); a time before 1970 is 0,
    /// already past.
    ///
    /// ```
    /// use sealed_session::Expiry;
    /// use std::time::{Duration, UNIX_EPOCH};
    /// let at = UNIX_EPOCH + Duration::from_millis(1_800_000_000_900);
    /// assert_eq!(Expiry::at(at), Expiry::At(1_800_000_000));
    /// ```
    pub fn at(time: SystemTime) -> Expiry {
        Expiry::At(
            time.duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs()),
        )
    }
}

/// An idle window as whole seconds, a fraction rounded up.
mod whole_seconds_serde {
    use core::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(
        window: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(crate::sealer::whole_seconds(*window))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        <u64 as serde::Deserialize>::deserialize(deserializer).map(Duration::from_secs)
    }
}

/// A Unix time in seconds as a `SystemTime`. One past what `SystemTime`
/// holds on this platform (hundreds of billions of years on Unix) comes
/// out as the latest whole second it holds: never a panic.
fn system_time(unix_seconds: u64) -> SystemTime {
    let after_epoch = |seconds| UNIX_EPOCH.checked_add(Duration::from_secs(seconds));
    if let Some(time) = after_epoch(unix_seconds) {
        return time;
    }
    // Every time before one that fits fits too: bisect for the last.
    let (mut fits, mut too_far) = (0, unix_seconds);
    while too_far - fits > 1 {
        let middle = fits + (too_far - fits) / 2;
        if after_epoch(middle).is_some() {
            fits = middle;
        } else {
            too_far = middle;
        }
    }
    after_epoch(fits).unwrap_or(UNIX_EPOCH)
}

/// Bytes that live either in the decrypted token or in their own allocation.
#[derive(Debug, Clone)]
pub(crate) enum Bytes {
    Shared(Range<usize>),
    Owned(Box<[u8]>),
}

impl Bytes {
    fn get<'a>(&'a self, buffer: &'a [u8]) -> &'a [u8] {
        match self {
            Bytes::Shared(range) => &buffer[range.clone()],
            Bytes::Owned(bytes) => bytes,
        }
    }
}

/// Where an entry's value is.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// In the cookie (the decrypted buffer or an owned copy): one CBOR item.
    Resident(Bytes),
    /// In the overflow store, not loaded yet.
    Overflowed,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: Bytes,
    pub priority: Priority,
    pub value: Value,
}

/// A session: entries with priorities, created-at, expiry and an id.
///
/// This is the core type of the layer-less API, not an axum extractor:
/// under the HTTP layer, handlers take `http::LazySession` (feature
/// `axum`), which opens this type on first use.
///
/// The API follows Django's `SessionBase` in Rust idioms. Values are stored
/// as CBOR and decoded only when read, each with its priority for the size
/// budget. Keys starting with `_` are reserved for the crate. CBOR is a
/// compact format (serde's `is_human_readable` is false), so types that
/// choose their form by it take the compact one: a `uuid::Uuid` is stored
/// as 16 bytes, an `IpAddr` as its octets; a value written by JSON-based
/// session code in another language reads differently.
///
/// ```
/// use sealed_session::{KeyRing, MasterKey, Priority, Sealer};
/// let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?)).build()?;
/// let mut session = sealer.new_session()?;
/// session.insert_with_priority("user_id", 42u64, Priority::Critical)?;
/// session.insert("theme", "dark")?;
/// let cookie = sealer.seal(&mut session)?;
///
/// let reopened = sealer.open(&cookie)?;
/// assert_eq!(reopened.get::<u64>("user_id")?, Some(42));
/// assert_eq!(reopened.get::<String>("theme")?.as_deref(), Some("dark"));
/// assert!(!reopened.needs_save());
/// # Ok::<(), sealed_session::Error>(())
/// ```
pub struct Session {
    pub(crate) id: SessionId,
    pub(crate) created_at: u64,
    pub(crate) now: u64,
    pub(crate) issued_at: Option<u64>,
    pub(crate) expiry: Expiry,
    pub(crate) buffer: Vec<u8>,
    pub(crate) entries: Vec<Entry>,
    /// The overflow blob this session's cookie refers to: the session id it
    /// is bound to (the id when it was written) and its reference.
    pub(crate) overflow: Option<(SessionId, [u8; SESSION_ID_LEN])>,
    pub(crate) modified: bool,
    /// Counts every change, saved or not (wrapping): by it the HTTP layer
    /// tells a change made after the request ended, when `modified` may
    /// already be set.
    pub(crate) changes: u32,
    /// The HTTP layer holds it, and saves it when the response goes out:
    /// a save or seal by a handler is refused ([`Error::HeldByLayer`]).
    pub(crate) held_by_layer: bool,
    pub(crate) refresh_due: bool,
    /// The key of the ring that opened the cookie (the primary for a new
    /// session, and once saved): after a fallback the session is re-sealed;
    /// after a fallback or an incoming key its overflow blob is rewritten
    /// under the primary rather than kept.
    pub(crate) opened_with: KeyRole,
    /// An entry that lives in the overflow blob was removed or replaced
    /// since the blob was written (the blob must be rewritten rather than
    /// kept, or it would go on holding the old value), or raised to
    /// critical (it must go back into the cookie).
    pub(crate) overflow_stale: bool,
    pub(crate) flushed: bool,
    /// The id a cookie sent out carried, given up since by `flush` or
    /// `cycle_id` (or by `save_request_async` deleting the cookie): a
    /// sealer with a revocation store revokes it on save.
    pub(crate) replaced: Option<SessionId>,
    /// The id a flush gave up, while the save that sets the cookie of
    /// what was stored after the flush (a login as someone else) has yet
    /// to revoke it: the save clears the flush before that, so this is how
    /// the HTTP layer still sees a logout to finish if the request is
    /// dropped in between.
    pub(crate) revoking_after_save: Option<SessionId>,
    /// The latest cookie (as opened, or as last saved) had no entry under
    /// the revocation source's user key: giving up its id writes no
    /// revocation record, so that anonymous traffic cannot fill the store
    /// (a copy of it names no user to act as).
    pub(crate) cookie_without_user: bool,
    /// Up to when revocations are accounted for: the revocation check ran
    /// (at the open, or again before a late save), the session was
    /// created, or the first token of its new id was sealed. A save dated
    /// more than a minute later could outlast a revocation recorded since
    /// ([`Sealer::save_time`](crate::Sealer)). `None` once it took a new
    /// id, until it is saved: that save dates it, created-at included, not
    /// the request's start, so that a "log out everywhere" recorded while
    /// the request ran (during a slow password check, before the login)
    /// does not cover the new id.
    pub(crate) revocations_seen_at: Option<u64>,
    /// Entries removed since the last successful save and not reported
    /// yet: their overflow blob was gone when read, or a save dropped them
    /// to keep its blob within the decompression limit. The next save's
    /// report lists them.
    pub(crate) dropped_unreported: Vec<RemovedEntry>,
    pub(crate) policy: TimePolicy,
    pub(crate) limits: Limits,
    pub(crate) random: Arc<dyn RandomSource>,
}

impl fmt::Debug for Session {
    // Keys and priorities only: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .field("issued_at", &self.issued_at)
            .field("expiry", &self.expiry)
            .field("keys", &self.keys().collect::<Vec<_>>())
            .field("modified", &self.modified)
            .finish_non_exhaustive()
    }
}

pub(crate) fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::InvalidEntryKey(InvalidEntryKey::Empty));
    }
    if key.starts_with('_') {
        return Err(Error::InvalidEntryKey(InvalidEntryKey::Reserved));
    }
    Ok(())
}

/// Values up to this many bytes are decoded with a scratch buffer this
/// large on the stack, instead of the 4 KiB one ciborium zeroes per call.
const SMALL_VALUE: usize = 32;

fn decode_value<T: DeserializeOwned>(bytes: &[u8], max_depth: usize) -> Result<T, Error> {
    let mut reader = bytes;
    // Each nesting level of the data takes at least one byte, so a value no
    // longer than `max_depth` bytes cannot exceed the limit: the fast path
    // gives the same result. (Only types whose deserializer nests without
    // reading input, like ciborium's tag wrappers, could differ, by a depth
    // their type fixes. A string longer than the scratch buffer would only
    // be read through an owned `String`; none fits in a small value.)
    let value = if bytes.len() <= SMALL_VALUE.min(max_depth) {
        let mut scratch = [0u8; SMALL_VALUE];
        ciborium::de::from_reader_with_buffer(&mut reader, &mut scratch)
    } else {
        ciborium::de::from_reader_with_recursion_limit(&mut reader, max_depth)
    }
    .map_err(|e| match e {
        ciborium::de::Error::RecursionLimitExceeded => Error::LimitExceeded(Limit::Depth),
        _ => Error::Value(ValueError::Deserialize),
    })?;
    if !reader.is_empty() {
        // A value is exactly one CBOR item.
        return Err(Error::Value(ValueError::Deserialize));
    }
    Ok(value)
}

impl Session {
    pub(crate) fn position(&self, key: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.key.get(&self.buffer) == key.as_bytes())
    }

    pub(crate) fn entry_key<'a>(&'a self, entry: &'a Entry) -> &'a str {
        // Keys were checked to be UTF-8 when indexed or inserted.
        core::str::from_utf8(entry.key.get(&self.buffer)).unwrap_or_default()
    }

    pub(crate) fn resident_value<'a>(&'a self, entry: &'a Entry) -> Option<&'a [u8]> {
        match &entry.value {
            Value::Resident(bytes) => Some(bytes.get(&self.buffer)),
            Value::Overflowed => None,
        }
    }

    /// Bytes the entry takes in a payload's entry list; 0 while its value
    /// is in the overflow store.
    pub(crate) fn resident_size(&self, entry: &Entry) -> usize {
        self.resident_value(entry).map_or(0, |value| {
            crate::payload::entry_len(self.entry_key(entry).len(), value.len())
        })
    }

    /// Reads and decodes a value; `Ok(None)` if the key is absent.
    ///
    /// # Errors
    ///
    /// [`Error::Value`] if the stored value is not a `T`
    /// ([`Error::LimitExceeded`] if it nests deeper than the limit), with a
    /// `WARN` event naming the key and `T`, never the value, since the
    /// error itself names neither;
    /// [`StoreError::NotLoaded`](crate::StoreError::NotLoaded) if the entry
    /// lives in the overflow store and has not been loaded (see
    /// [`Sealer::load_overflow`](crate::Sealer::load_overflow)).
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let read = self.read::<T>(key);
        if read.as_ref().is_err_and(is_undecodable) {
            warn_undecodable::<T>(key, false);
        }
        read
    }

    /// As [`Session::get`], without its warning.
    pub(crate) fn read<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let Some(i) = self.position(key) else {
            return Ok(None);
        };
        match self.resident_value(&self.entries[i]) {
            Some(bytes) => decode_value(bytes, self.limits.max_depth()).map(Some),
            None => Err(Error::Store(crate::error::StoreError::NotLoaded)),
        }
    }

    /// As [`Session::get`], but a value that does not decode as `T` (its
    /// type changed in a deploy, or it nests deeper than this server's
    /// limit) is removed, with a `WARN` event naming its key and `T` (never
    /// the value), and reads as absent. With `get`, such an entry fails
    /// every request until the session expires (the error answers 500,
    /// which saves nothing); removed, the next save drops it.
    ///
    /// # Errors
    ///
    /// Only [`StoreError::NotLoaded`](crate::StoreError::NotLoaded), as
    /// [`Session::get`].
    ///
    /// ```
    /// use sealed_session::{KeyRing, MasterKey, Sealer};
    /// let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?)).build()?;
    /// let mut session = sealer.new_session()?;
    /// session.insert("cart", "3 books")?; // an older release stored text
    /// assert!(session.get::<Vec<u32>>("cart").is_err());
    /// assert_eq!(session.get_or_remove::<Vec<u32>>("cart")?, None);
    /// assert!(!session.contains("cart"));
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    pub fn get_or_remove<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>, Error> {
        match self.read(key) {
            Err(error) if is_undecodable(&error) => {
                warn_undecodable::<T>(key, true);
                self.remove(key);
                Ok(None)
            }
            read => read,
        }
    }

    /// The raw CBOR bytes of a cookie-resident value.
    pub fn get_raw(&self, key: &str) -> Option<&[u8]> {
        let i = self.position(key)?;
        self.resident_value(&self.entries[i])
    }

    /// Stores a value at normal priority, or, if the key exists, at the
    /// priority it already has. Marks the session modified only if the
    /// stored bytes change.
    ///
    /// A [`Priority::Normal`] entry may be dropped to fit the size budget
    /// (after every `Low` one; the save succeeds and reports it in
    /// `SaveReport::dropped`); store what must never be dropped at
    /// [`Priority::Critical`] with [`Session::insert_with_priority`].
    ///
    /// # Errors
    ///
    /// As [`Session::insert_with_priority`].
    pub fn insert<T: Serialize>(&mut self, key: &str, value: T) -> Result<(), Error> {
        let priority = self
            .position(key)
            .map(|i| self.entries[i].priority)
            .unwrap_or_default();
        self.insert_with_priority(key, value, priority)
    }

    /// Stores a value with an explicit priority.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEntryKey`] for an empty key or one starting with
    /// `_`, [`ValueError::Serialize`] if the value cannot be serialized,
    /// and [`Error::LimitExceeded`]: [`Limit::Entries`] for a new key
    /// beyond the entry limit and [`Limit::Depth`] for a value nested
    /// deeper than reads accept (both from the sealer's
    /// [`Limits`](crate::Limits)), so that whatever is stored can be read
    /// back.
    pub fn insert_with_priority<T: Serialize>(
        &mut self,
        key: &str,
        value: T,
        priority: Priority,
    ) -> Result<(), Error> {
        let encoded = self.encode_entry(key, &value)?;
        self.insert_raw(key, encoded, priority)
    }

    /// What [`Self::insert_with_priority`] stores, checked as it checks
    /// it (all but the entry limit), without storing it: for writes of
    /// several entries that must all be taken or none.
    pub(crate) fn encode_entry<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<Box<[u8]>, Error> {
        check_key(key)?;
        let mut encoded = Vec::new();
        ciborium::ser::into_writer(value, &mut encoded)
            .map_err(|_| Error::Value(ValueError::Serialize))?;
        // A value nested deeper than reads allow would be sealed and then
        // never read again: refused now, as reads count it (walked without
        // building it). Each level takes a byte: short values cannot be.
        // A walk of the heads clears the common, shallow value without
        // decoding it (as costly as reading it back).
        if encoded.len() > self.limits.max_depth()
            && !crate::nesting::within_depth(&encoded, self.limits.max_depth())
        {
            if let Err(Error::LimitExceeded(limit)) =
                decode_value::<serde::de::IgnoredAny>(&encoded, self.limits.max_depth())
            {
                return Err(Error::LimitExceeded(limit));
            }
        }
        Ok(encoded.into_boxed_slice())
    }

    pub(crate) fn insert_raw(
        &mut self,
        key: &str,
        encoded: Box<[u8]>,
        priority: Priority,
    ) -> Result<(), Error> {
        match self.position(key) {
            Some(i) => {
                let unchanged = self.entries[i].priority == priority
                    && self.resident_value(&self.entries[i]) == Some(&encoded[..]);
                if !unchanged {
                    self.overflow_stale |= self.is_overflowed_at(i);
                    let entry = &mut self.entries[i];
                    entry.priority = priority;
                    entry.value = Value::Resident(Bytes::Owned(encoded));
                    self.mark_modified();
                }
            }
            None => {
                if self.entries.len() >= self.limits.max_entries() {
                    return Err(Error::LimitExceeded(Limit::Entries));
                }
                self.entries.push(Entry {
                    key: Bytes::Owned(key.as_bytes().into()),
                    priority,
                    value: Value::Resident(Bytes::Owned(encoded)),
                });
                self.mark_modified();
            }
        }
        Ok(())
    }

    /// Changes the priority of an existing entry; returns whether it exists.
    pub fn set_priority(&mut self, key: &str, priority: Priority) -> bool {
        match self.position(key) {
            Some(i) => {
                if self.entries[i].priority != priority {
                    // The cookie's overflow list carries the priority, not
                    // the blob: the blob stays valid. But a critical entry
                    // is never left in the store, whose eviction would lose
                    // it: raised to critical, it goes back into the cookie
                    // (the blob is loaded and rewritten), or the save fails
                    // with `TooLarge` as for a critical entry stored now
                    // (a synchronous save, which cannot load, refuses).
                    self.overflow_stale |=
                        priority == Priority::Critical && self.is_overflowed_at(i);
                    self.entries[i].priority = priority;
                    self.mark_modified();
                }
                true
            }
            None => false,
        }
    }

    /// The priority of an entry.
    pub fn priority(&self, key: &str) -> Option<Priority> {
        self.position(key).map(|i| self.entries[i].priority)
    }

    /// Removes an entry; returns whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        match self.position(key) {
            Some(i) => {
                self.overflow_stale |= self.is_overflowed_at(i);
                self.entries.remove(i);
                self.mark_modified();
                true
            }
            None => false,
        }
    }

    /// Removes an entry and returns its value (Django's `pop`,
    /// tower-sessions' `remove`). A value that does not decode as `T` is
    /// removed all the same and reads as absent, with the `WARN` event of
    /// [`Session::get_or_remove`]: the caller asked for it to go, and an
    /// error would fail every request (a flash message whose type changed
    /// in a deploy, say) until the session expires.
    ///
    /// # Errors
    ///
    /// Only [`StoreError::NotLoaded`](crate::StoreError::NotLoaded) (the
    /// entry lives in the overflow store), which leaves it in place.
    #[doc(alias = "pop")]
    pub fn take<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>, Error> {
        let value = self.get_or_remove(key)?;
        self.remove(key);
        Ok(value)
    }

    /// The value at `key`, or, if there is none, `default()`, stored there
    /// (at normal priority) and returned: Django's `setdefault`. A value
    /// that does not decode as `T` is an error and stays, as with
    /// [`Session::get`] (to replace it instead, [`Session::get_or_remove`]
    /// first); so is an entry that lives in the overflow store and is not
    /// loaded (the HTTP layer's `LazySession::get_or_insert_with` loads
    /// it).
    ///
    /// # Errors
    ///
    /// Those of [`Session::get`], then, storing the default, those of
    /// [`Session::insert_with_priority`].
    ///
    /// ```
    /// use sealed_session::{KeyRing, MasterKey, Sealer};
    /// let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?)).build()?;
    /// let mut session = sealer.new_session()?;
    /// assert_eq!(session.get_or_insert_with("theme", || "light".to_owned())?, "light");
    /// assert_eq!(session.get_or_insert_with("theme", || "dark".to_owned())?, "light");
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    #[doc(alias = "setdefault")]
    pub fn get_or_insert_with<T: Serialize + DeserializeOwned>(
        &mut self,
        key: &str,
        default: impl FnOnce() -> T,
    ) -> Result<T, Error> {
        if let Some(value) = self.get(key)? {
            return Ok(value);
        }
        let value = default();
        self.insert(key, &value)?;
        Ok(value)
    }

    /// Whether this entry lives in the overflow store and is not loaded yet.
    pub fn is_overflowed(&self, key: &str) -> bool {
        self.position(key).is_some_and(|i| self.is_overflowed_at(i))
    }

    fn is_overflowed_at(&self, i: usize) -> bool {
        matches!(self.entries[i].value, Value::Overflowed)
    }

    /// The reference of the overflow blob the cookie named (§15 of
    /// `docs/FORMAT.md`): with [`Self::id`] it makes the blob's store key
    /// ([`store::overflow_key`](crate::store::overflow_key)). `None` when
    /// nothing overflowed.
    pub fn overflow_reference(&self) -> Option<&[u8; SESSION_ID_LEN]> {
        self.overflow.as_ref().map(|(_, reference)| reference)
    }

    /// The indices of the entries that live in the overflow store and are
    /// not loaded yet.
    pub(crate) fn unloaded_indices(&self) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|&i| self.is_overflowed_at(i))
            .collect()
    }

    /// Whether any entry lives in the overflow store and is not loaded yet.
    pub fn has_unloaded_overflow(&self) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(e.value, Value::Overflowed))
    }

    /// Whether the session has this key (cookie-resident or overflowed).
    pub fn contains(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// The keys, in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries.iter().map(|e| self.entry_key(e))
    }

    /// Keys with their priorities, in insertion order.
    pub fn keys_with_priority(&self) -> impl Iterator<Item = (&str, Priority)> + '_ {
        self.entries.iter().map(|e| (self.entry_key(e), e.priority))
    }

    /// Every entry as stored, in insertion order: its key, its priority,
    /// and its value's raw CBOR bytes (as [`Self::get_raw`]), `None` for an
    /// entry in the overflow store that is not loaded. For debug and admin
    /// pages, and for copying chosen entries into another session: a value
    /// read with [`Self::get`] as a `ciborium::Value` is inserted unchanged.
    ///
    /// ```
    /// use sealed_session::{KeyRing, MasterKey, Priority, Sealer};
    /// let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?)).build()?;
    /// let mut session = sealer.new_session()?;
    /// session.insert_with_priority("user", "ada", Priority::Critical)?;
    /// session.insert("visits", 3u8)?;
    /// let sizes: Vec<(&str, Priority, usize)> = session
    ///     .iter_raw()
    ///     .map(|(key, priority, value)| (key, priority, value.map_or(0, <[u8]>::len)))
    ///     .collect();
    /// // "ada" is 4 bytes of CBOR (a head and 3 bytes), 3 is 1.
    /// assert_eq!(sizes, [("user", Priority::Critical, 4), ("visits", Priority::Normal, 1)]);
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    pub fn iter_raw(&self) -> impl Iterator<Item = (&str, Priority, Option<&[u8]>)> + '_ {
        self.entries
            .iter()
            .map(|e| (self.entry_key(e), e.priority, self.resident_value(e)))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every entry; keeps the id, created-at and expiry.
    pub fn clear(&mut self) {
        if !self.entries.is_empty() {
            // (No entry is left in the store, so the blob cannot be reused
            // anyway: `overflow_stale` need not change.)
            self.entries.clear();
            self.mark_modified();
        }
    }

    /// Ends the session (logout): removes every entry, takes a new id and
    /// sets the expiry back to [`Expiry::Default`] (as Django, where the
    /// expiry is part of the session's data). Unless something is stored
    /// again before saving, the caller sends a deletion cookie (see
    /// [`Session::is_flushed`]).
    ///
    /// # Errors
    ///
    /// [`Error::Random`] if the new id cannot be drawn; the session is then
    /// left unchanged.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.take_new_id()?;
        self.entries.clear();
        self.expiry = Expiry::Default;
        self.flushed = true;
        Ok(())
    }

    /// Takes a new id and keeps the data (entries and expiry): call it at
    /// login, against session fixation; when the session already names
    /// another user, [`Session::flush`] instead (as Django's `login()`),
    /// or that user's data carries over to the new one. The session
    /// counts as created when it is next saved: its
    /// absolute lifetime starts again, and a "log out everywhere" recorded
    /// in an earlier second than that save, even during this request,
    /// ([`RevocationStore::revoke_user`](crate::store::RevocationStore::revoke_user))
    /// no longer applies to it, so a user can log in again after one (times
    /// are whole seconds: one recorded in the same second still does; to
    /// end the user's other sessions and keep this one, as after a password
    /// change, use `log_out_other_sessions` on the sealer or the extractor
    /// instead).
    ///
    /// Call it only once credentials have been checked, not on a path any
    /// cookie holder can trigger (such as periodic id rotation): each call
    /// restarts the absolute lifetime.
    ///
    /// # Errors
    ///
    /// [`Error::Random`] if the new id cannot be drawn; the session is then
    /// left unchanged.
    pub fn cycle_id(&mut self) -> Result<(), Error> {
        // An overflow blob bound to the old id is rewritten on the next
        // save, and the old one retired (left a minute for requests still
        // running from the previous cookie).
        self.take_new_id()
    }

    /// A new random id, the session created at its next save, the old id
    /// kept for revocation; nothing changes if no id can be drawn.
    fn take_new_id(&mut self) -> Result<(), Error> {
        let id = SessionId::random(&*self.random)?;
        self.record_replaced_id();
        self.id = id;
        self.created_at = self.now;
        self.revocations_seen_at = None;
        self.mark_modified();
        Ok(())
    }

    /// Remembers the current id for revocation if a cookie carried it (the
    /// first one only: that of the cookie the request came with).
    pub(crate) fn record_replaced_id(&mut self) {
        if self.replaced.is_none() {
            self.replaced = self.revocable_cookie();
        }
    }

    /// The id of the latest cookie sent out, if giving it up is worth a
    /// revocation record: a cookie carried it, and it named a user (or no
    /// user key is configured).
    pub(crate) fn revocable_cookie(&self) -> Option<SessionId> {
        (self.issued_at.is_some() && !self.cookie_without_user).then_some(self.id)
    }

    /// Sets when the session ends (see [`Expiry`]).
    pub fn set_expiry(&mut self, expiry: Expiry) {
        let expiry = match expiry {
            Expiry::Idle(window) => {
                Expiry::Idle(Duration::from_secs(crate::sealer::whole_seconds(window)))
            }
            other => other,
        };
        if self.expiry != expiry {
            self.expiry = expiry;
            self.mark_modified();
        }
    }

    /// Ends the session `after` this request's time (whole seconds, a
    /// fraction rounded up as in [`Expiry::Idle`]), at a fixed time that
    /// does not move with activity, capped by the sealer's timeouts (see
    /// [`Expiry::At`]). For Django's `set_expiry(seconds)`,
    /// an inactivity window, use [`Expiry::Idle`].
    pub fn set_expiry_in(&mut self, after: Duration) {
        self.set_expiry(Expiry::At(
            self.now.saturating_add(crate::sealer::whole_seconds(after)),
        ));
    }

    /// The expiry setting.
    pub fn expiry(&self) -> Expiry {
        self.expiry
    }

    /// How long the session stays valid if saved in this request (its time
    /// is read once, when it is opened or created), in whole seconds: the
    /// smallest of the idle timeout, the time left in the absolute
    /// lifetime, the time left before its own expiry (Django's
    /// `get_expiry_age`) and, for a cookie that ends with the browser, the
    /// sealer's `browser_session_max_idle`. `None` if no limit applies.
    pub fn expiry_age(&self) -> Option<Duration> {
        self.expiry_age_at(self.now).map(Duration::from_secs)
    }

    /// The Unix time (seconds) the session ends if saved in this request: the request's
    /// time plus [`Self::expiry_age`] (Django's `get_expiry_date`). `None`
    /// if no limit applies.
    pub fn expires_at(&self) -> Option<u64> {
        self.expiry_age_at(self.now)
            .map(|age| self.now.saturating_add(age))
    }

    /// [`Self::expires_at`] as a `SystemTime`; a time past what
    /// `SystemTime` holds (an `Expiry::At` near `u64::MAX`) comes out as
    /// the latest whole second it holds.
    pub fn expires_at_time(&self) -> Option<SystemTime> {
        self.expires_at().map(system_time)
    }

    /// The Unix time (seconds) the cookie this session was opened from
    /// stops opening, if nothing re-seals it: the first of its idle
    /// timeout (counted from [`Self::issued_at`]), its absolute lifetime
    /// and its own expiry, as this sealer's policy has them. The cookie
    /// still opens during that second when an idle timeout or the
    /// lifetime ends it (a limit is exceeded only after it), not when its
    /// own [`Expiry::At`] does (which, as Django's, ends at that instant).
    /// `None` for a new session, or if no limit applies. To tell a user
    /// when an unused session ends, or to see why a cookie stopped
    /// opening.
    ///
    /// ```
    /// use sealed_session::{FixedClock, KeyRing, MasterKey, Sealer};
    /// use std::{sync::Arc, time::Duration};
    /// let clock = Arc::new(FixedClock::new(1_700_000_000));
    /// let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?))
    ///     .max_idle(Duration::from_secs(3600))
    ///     .clock(clock.clone())
    ///     .build()?;
    /// let mut session = sealer.new_session()?;
    /// assert_eq!(session.cookie_expires_at(), None);
    /// session.insert("user", "ada")?;
    /// let cookie = sealer.seal(&mut session)?;
    /// clock.advance(600);
    /// let opened = sealer.open(&cookie)?;
    /// assert_eq!(opened.cookie_expires_at(), Some(1_700_000_000 + 3600));
    /// // Saved now, it would last until an hour from now.
    /// assert_eq!(opened.expires_at(), Some(1_700_000_600 + 3600));
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    pub fn cookie_expires_at(&self) -> Option<u64> {
        let issued_at = self.issued_at?;
        self.expiry_age_at(issued_at)
            .map(|age| issued_at.saturating_add(age))
    }

    pub(crate) fn expiry_age_at(&self, now: u64) -> Option<u64> {
        let idle = self.policy.max_idle;
        let lifetime = self.policy.max_lifetime.map(|l| {
            self.created_at_sealed(now)
                .saturating_add(l)
                .saturating_sub(now)
        });
        let end = match self.expiry {
            Expiry::At(t) => Some(t.saturating_sub(now)),
            _ => None,
        };
        // Its own idle window (or the browser session's): sealed now, it
        // starts now.
        let own_idle = self.policy.own_idle(self.expiry);
        [idle, lifetime, end, own_idle].into_iter().flatten().min()
    }

    /// The session id. A new session's id is random and reaches a cookie
    /// only when the session is sealed.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// When the session started (Unix seconds), or took its current id
    /// ([`Session::cycle_id`]); kept across re-seals. A session given a
    /// new id in this request counts as created when it is saved: until
    /// then this is the request's start ([`Session::now`]), and the save
    /// sets it to the save's time.
    pub fn created_at(&self) -> u64 {
        self.created_at
    }

    /// [`Self::created_at`] as a `SystemTime`.
    pub fn created_at_time(&self) -> SystemTime {
        system_time(self.created_at)
    }

    /// The created-at a token sealed at `now` carries: never after its
    /// issued-at, so that a clock stepped back since the session took its
    /// creation time (at login, say) cannot yield a token every reader
    /// refuses. The sealer's size estimate and its writer both use it.
    pub(crate) fn created_at_sealed(&self, now: u64) -> u64 {
        match self.revocations_seen_at {
            // A new id, not yet sealed: created by this save.
            None => now,
            Some(_) => self.created_at.min(now),
        }
    }

    /// When the cookie it came from was sealed; `None` for a new session.
    pub fn issued_at(&self) -> Option<u64> {
        self.issued_at
    }

    /// [`Self::issued_at`] as a `SystemTime`.
    pub fn issued_at_time(&self) -> Option<SystemTime> {
        self.issued_at.map(system_time)
    }

    /// The time this session was opened or created at (the request's "now").
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Whether it was created in this request rather than opened from a cookie.
    pub fn is_new(&self) -> bool {
        self.issued_at.is_none()
    }

    /// Marks the session changed, so that the next save re-seals it (with
    /// a new issued-at, which moves the idle window on) although nothing
    /// in it changed: Django's `request.session.modified = True`. An empty
    /// session still gets no cookie under the HTTP layer.
    pub fn mark_modified(&mut self) {
        self.modified = true;
        self.changes = self.changes.wrapping_add(1);
    }

    /// Whether an entry, the expiry or the id changed, or
    /// [`Session::mark_modified`] was called (or the library dropped
    /// entries whose overflow blob was gone).
    pub fn is_modified(&self) -> bool {
        self.modified
    }

    /// Whether a re-seal without changes is due: the sliding refresh (the
    /// cookie was read after the configured fraction of the idle window),
    /// or bringing back into the cookie the user entry a revocation check
    /// had to read from the overflow store.
    pub fn refresh_due(&self) -> bool {
        self.refresh_due
    }

    /// Whether a fallback key opened it (re-seal under the primary). An
    /// incoming key ([`KeyRing::with_incoming`](crate::KeyRing::with_incoming))
    /// does not count.
    pub fn opened_with_fallback(&self) -> bool {
        self.opened_with == KeyRole::Fallback
    }

    /// Whether [`Session::flush`] was called.
    pub fn is_flushed(&self) -> bool {
        self.flushed
    }

    /// Whether saving now would change anything for the client: modified,
    /// refresh due, opened with a fallback key, or flushed.
    pub fn needs_save(&self) -> bool {
        self.modified || self.refresh_due || self.opened_with_fallback() || self.flushed
    }

    /// Whether saving should send a deletion cookie: flushed and nothing
    /// stored since.
    pub fn should_delete_cookie(&self) -> bool {
        self.flushed && self.entries.is_empty()
    }
}

/// A stored value that cannot be read as the type asked for (its type
/// changed in a deploy, or it nests deeper than this server's limit).
fn is_undecodable(error: &Error) -> bool {
    matches!(
        error,
        Error::Value(ValueError::Deserialize) | Error::LimitExceeded(Limit::Depth)
    )
}

/// Names the key and the type asked for, never the value.
pub(crate) fn warn_undecodable<T>(key: &str, removed: bool) {
    // `?`: quoted and escaped by every subscriber, not only the default
    // formatter (a key may hold user input).
    tracing::warn!(
        event = "entry-undecodable",
        key = ?key,
        expected = core::any::type_name::<T>(),
        removed,
        "session entry does not decode as the expected type"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_past_what_system_time_holds_comes_out_as_the_latest_it_holds() {
        let far = system_time(u64::MAX);
        assert!(far >= system_time(1 << 40), "{far:?}");
        // The latest whole second: one more does not fit (where every
        // `u64` fits, `u64::MAX` itself comes back).
        let seconds = far.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert!(seconds == u64::MAX || far.checked_add(Duration::from_secs(1)).is_none());
        assert_eq!(system_time(seconds), far);
        // Not merely some time that fits: halving would give 2^62 where
        // 2^63 does not fit (as on Unix).
        if UNIX_EPOCH
            .checked_add(Duration::from_secs(1 << 63))
            .is_none()
        {
            assert_eq!(system_time(1 << 63), far);
        }
        assert_eq!(system_time(7), UNIX_EPOCH + Duration::from_secs(7));
    }

    #[test]
    fn an_expiry_reads_back_what_it_writes() {
        for expiry in [
            Expiry::Default,
            Expiry::At(1_800_000_000),
            Expiry::BrowserSession,
            Expiry::Idle(Duration::from_secs(900)),
        ] {
            let json = serde_json::to_string(&expiry).unwrap();
            assert_eq!(
                serde_json::from_str::<Expiry>(&json).unwrap(),
                expiry,
                "{json}"
            );
        }
        for refused in [
            r#""at""#,
            r#"{"idle":-1}"#,
            r#"{"idle":{"secs":1,"nanos":0}}"#,
            r#""never""#,
        ] {
            assert!(
                serde_json::from_str::<Expiry>(refused).is_err(),
                "{refused}"
            );
        }
    }

    /// The small-value fast path of `decode_value` answers as ciborium's
    /// own limit does, for every depth limit up to past the values' size.
    #[test]
    fn the_fast_path_agrees_with_the_recursion_limit() {
        let nested = |levels: usize| {
            let mut bytes = vec![0x81; levels];
            bytes.push(0x01);
            bytes
        };
        let mut values: Vec<Vec<u8>> = (0..=SMALL_VALUE).map(nested).collect();
        values.push(vec![0x1b, 0, 0, 0, 1, 0, 0, 0, 0]); // u64
        values.push([&[0x78, 31][..], &[b'a'; 31]].concat()); // text, 31 bytes
        values.push([&[0xa1, 0x61, b'k'][..], &nested(4)].concat()); // map
        values.push(vec![0xc1, 0x81, 0xc1, 0x01]); // tags count as levels
        for bytes in &values {
            for max_depth in 0..=SMALL_VALUE + 2 {
                let mut reader = &bytes[..];
                let slow: Result<ciborium::Value, _> =
                    ciborium::de::from_reader_with_recursion_limit(&mut reader, max_depth);
                let slow = match slow {
                    Ok(value) if reader.is_empty() => Ok(value),
                    Ok(_) => Err(Error::Value(ValueError::Deserialize)),
                    Err(ciborium::de::Error::RecursionLimitExceeded) => {
                        Err(Error::LimitExceeded(Limit::Depth))
                    }
                    Err(_) => Err(Error::Value(ValueError::Deserialize)),
                };
                let fast = decode_value::<ciborium::Value>(bytes, max_depth);
                assert_eq!(fast, slow, "{bytes:02x?} at depth {max_depth}");
            }
        }
    }
}
