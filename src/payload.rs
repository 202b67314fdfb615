//! The v1 plaintext: a CBOR array indexed without decoding the values.
//!
//! ```text
//! payload  = [created_at: uint, expires_at: uint / null, session_id: bstr .size 16,
//!             flags: uint, entries: [* entry], ? overflow]
//! entry    = [key: tstr, priority: uint (0..=3), value: bstr]   ; value = one CBOR item
//! overflow = [reference: bstr .size 16, [+ [key: tstr, priority: uint]]]
//! ```
//!
//! Each value is a CBOR item wrapped in a byte string, so opening only walks
//! the outer structure (a handful of heads per entry, no allocation per
//! entry) and each value is decoded when the application reads it.

use ciborium_ll::{simple, Encoder, Header};
use core::ops::Range;
use serde::{Deserialize, Serialize};

use crate::error::{Limit, Malformed};
use crate::session::{Bytes, Entry, Expiry, Value};
use crate::Error;

/// Bytes of a session id.
pub const SESSION_ID_LEN: usize = 16;
/// Payload flag bit: the cookie is a browser-session cookie (no Max-Age).
pub const PAYLOAD_FLAG_BROWSER_SESSION: u64 = 0b1;
/// Payload flag bit: `expires_at` holds the session's own idle timeout in
/// seconds, not a point in time.
pub const PAYLOAD_FLAG_IDLE: u64 = 0b10;
const KNOWN_PAYLOAD_FLAGS: u64 = PAYLOAD_FLAG_BROWSER_SESSION | PAYLOAD_FLAG_IDLE;

/// How much an entry matters when the cookie is over its size budget.
///
/// Entries are dropped lowest priority first; [`Priority::Critical`] entries
/// are never dropped. Serialized (in a debug page, a log) by
/// [`Priority::name`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Dropped first (caches, recently viewed items, cart lines).
    Low = 0,
    /// The default.
    #[default]
    Normal = 1,
    /// Dropped only after every normal and low entry.
    High = 2,
    /// Never dropped (user id, CSRF secret).
    Critical = 3,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Critical,
    ];

    /// The wire value.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The priority of a wire value, if it is one.
    pub fn from_u8(value: u8) -> Option<Self> {
        Self::ALL.get(usize::from(value)).copied()
    }

    /// `low`, `normal`, `high` or `critical`.
    pub fn name(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }
}

/// Its [`Priority::name`].
impl core::fmt::Display for Priority {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.pad(self.name())
    }
}

/// A [`Priority::name`], in any case.
///
/// ```
/// use sealed_session::Priority;
/// assert_eq!("High".parse::<Priority>(), Ok(Priority::High));
/// assert_eq!(Priority::Low.to_string(), "low");
/// assert!("urgent".parse::<Priority>().is_err());
/// ```
impl core::str::FromStr for Priority {
    type Err = ParsePriorityError;
    fn from_str(s: &str) -> Result<Self, ParsePriorityError> {
        Self::ALL
            .iter()
            .copied()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or(ParsePriorityError)
    }
}

/// A text that names no [`Priority`] (`low`, `normal`, `high` or
/// `critical`, in any case). The text is not kept: it may come from
/// anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsePriorityError;

impl core::fmt::Display for ParsePriorityError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("not a priority (low, normal, high or critical)")
    }
}

impl std::error::Error for ParsePriorityError {}

/// The outer structure of a payload; entries point into the plaintext.
#[derive(Debug)]
pub(crate) struct IndexedPayload {
    pub created_at: u64,
    /// From `expires_at` and the flags (see [`expiry_fields`]).
    pub expiry: Expiry,
    pub session_id: [u8; SESSION_ID_LEN],
    /// Cookie-resident entries, then overflowed keys.
    pub entries: Vec<Entry>,
    pub overflow_ref: Option<[u8; SESSION_ID_LEN]>,
}

/// The payload's `expires_at` and flags for an expiry setting (FORMAT.md
/// §11); [`index`] reads them back.
pub(crate) fn expiry_fields(expiry: Expiry) -> (Option<u64>, u64) {
    match expiry {
        Expiry::Default => (None, 0),
        Expiry::At(end) => (Some(end), 0),
        Expiry::BrowserSession => (None, PAYLOAD_FLAG_BROWSER_SESSION),
        Expiry::Idle(window) => (Some(window.as_secs()), PAYLOAD_FLAG_IDLE),
    }
}

fn malformed() -> Error {
    Error::Malformed(Malformed::Payload)
}

/// A cursor that pulls CBOR heads from a slice and hands out byte ranges.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// Reads one head straight from the slice (opening reads a few heads
    /// per entry, and building a `ciborium_ll::Decoder` per head headed the
    /// profile of open outside the cipher: BENCHMARKS.md, "What changed").
    /// Accepts what `ciborium_ll::Decoder::pull` accepts, minus floats
    /// (every caller refuses them) and minus heads that are not in their
    /// shortest form (FORMAT.md §11.4: one plaintext, one encoding).
    fn head(&mut self) -> Result<Header, Error> {
        let initial = *self.bytes.get(self.pos).ok_or_else(malformed)?;
        let (major, info) = (initial >> 5, initial & 0x1f);
        let extra = match info {
            0..=23 => 0,
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            31 => {
                self.pos += 1;
                return match major {
                    2 => Ok(Header::Bytes(None)),
                    3 => Ok(Header::Text(None)),
                    4 => Ok(Header::Array(None)),
                    5 => Ok(Header::Map(None)),
                    7 => Ok(Header::Break),
                    _ => Err(malformed()),
                };
            }
            _ => return Err(malformed()),
        };
        let start = self.pos + 1;
        let argument = self.bytes.get(start..start + extra).ok_or_else(malformed)?;
        let n = match extra {
            0 => u64::from(info),
            _ => argument.iter().fold(0, |n, &b| n << 8 | u64::from(b)),
        };
        // Shortest form only; a one-byte simple value below 32 is not even
        // well-formed (RFC 8949 §3.3).
        let shortest = match extra {
            0 => true,
            1 if major == 7 => n >= 32,
            _ => head_len(n) == 1 + extra,
        };
        if !shortest {
            return Err(malformed());
        }
        self.pos = start + extra;
        // Saturated where `usize` is narrower than 64 bits (wasm32): no
        // such length or count fits in the input or under a limit, so the
        // checks that follow refuse it with the same error as on 64 bits.
        let len = || usize::try_from(n).unwrap_or(usize::MAX);
        Ok(match major {
            0 => Header::Positive(n),
            1 => Header::Negative(n),
            2 => Header::Bytes(Some(len())),
            3 => Header::Text(Some(len())),
            4 => Header::Array(Some(len())),
            5 => Header::Map(Some(len())),
            6 => Header::Tag(n),
            // Major 7: simple values (inline or in one byte); floats refused.
            _ if extra <= 1 => Header::Simple(n as u8),
            _ => return Err(malformed()),
        })
    }

    fn uint(&mut self) -> Result<u64, Error> {
        match self.head()? {
            Header::Positive(n) => Ok(n),
            _ => Err(malformed()),
        }
    }

    fn array(&mut self) -> Result<usize, Error> {
        match self.head()? {
            Header::Array(Some(n)) => Ok(n),
            _ => Err(malformed()),
        }
    }

    fn take(&mut self, len: usize) -> Result<Range<usize>, Error> {
        let end = self.pos.checked_add(len).ok_or_else(malformed)?;
        if end > self.bytes.len() {
            return Err(malformed());
        }
        let range = self.pos..end;
        self.pos = end;
        Ok(range)
    }

    fn bytes(&mut self) -> Result<Range<usize>, Error> {
        match self.head()? {
            Header::Bytes(Some(len)) => self.take(len),
            _ => Err(malformed()),
        }
    }

    /// An entry key: UTF-8, not empty, not starting with `_` (the keys the
    /// session API accepts).
    fn key(&mut self) -> Result<Range<usize>, Error> {
        match self.head()? {
            Header::Text(Some(len)) => {
                let range = self.take(len)?;
                let key =
                    core::str::from_utf8(&self.bytes[range.clone()]).map_err(|_| malformed())?;
                if key.is_empty() || key.starts_with('_') {
                    return Err(malformed());
                }
                Ok(range)
            }
            _ => Err(malformed()),
        }
    }

    fn session_id(&mut self) -> Result<[u8; SESSION_ID_LEN], Error> {
        let range = self.bytes()?;
        self.bytes[range].try_into().map_err(|_| malformed())
    }

    fn priority(&mut self) -> Result<Priority, Error> {
        let n = self.uint()?;
        u8::try_from(n)
            .ok()
            .and_then(Priority::from_u8)
            .ok_or_else(malformed)
    }

    /// An array count, refused before any allocation if it cannot fit in
    /// the remaining bytes or exceeds the entry limit.
    fn bounded_array(&mut self, max_entries: usize) -> Result<usize, Error> {
        let count = self.array()?;
        if count > max_entries {
            return Err(Error::LimitExceeded(Limit::Entries));
        }
        // Every element takes at least one byte.
        if count > self.bytes.len() - self.pos {
            return Err(malformed());
        }
        Ok(count)
    }
}

/// Indexes a plaintext. Checks the schema, UTF-8 keys, priorities, the entry
/// limit (before allocating the index) and duplicate keys; does not decode
/// values.
pub(crate) fn index(plaintext: &[u8], max_entries: usize) -> Result<IndexedPayload, Error> {
    let mut cur = Cursor {
        bytes: plaintext,
        pos: 0,
    };
    let fields = cur.array()?;
    if fields != 5 && fields != 6 {
        return Err(malformed());
    }
    let created_at = cur.uint()?;
    let expires_at = match cur.head()? {
        Header::Positive(n) => Some(n),
        Header::Simple(simple::NULL) => None,
        _ => return Err(malformed()),
    };
    let session_id = cur.session_id()?;
    let flags = cur.uint()?;
    if flags & !KNOWN_PAYLOAD_FLAGS != 0 {
        return Err(malformed());
    }
    let idle = flags & PAYLOAD_FLAG_IDLE != 0;
    let browser_session = flags & PAYLOAD_FLAG_BROWSER_SESSION != 0;
    let expiry = match (expires_at, idle, browser_session) {
        (Some(window), true, false) => Expiry::Idle(core::time::Duration::from_secs(window)),
        // An idle timeout needs its length; a browser-session cookie has none.
        (_, true, _) => return Err(malformed()),
        // A browser-session cookie has no end of its own: one session,
        // one plaintext.
        (Some(_), false, true) => return Err(malformed()),
        (Some(end), false, false) => Expiry::At(end),
        (None, false, true) => Expiry::BrowserSession,
        (None, false, false) => Expiry::Default,
    };

    let count = cur.bounded_array(max_entries)?;
    // Reserve for the overflow keys too only once they are counted.
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        if cur.array()? != 3 {
            return Err(malformed());
        }
        let key = cur.key()?;
        let priority = cur.priority()?;
        let value = cur.bytes()?;
        entries.push(Entry {
            key: Bytes::Shared(key),
            priority,
            value: Value::Resident(Bytes::Shared(value)),
        });
    }

    let overflow_ref = if fields == 6 {
        if cur.array()? != 2 {
            return Err(malformed());
        }
        let reference = cur.session_id()?;
        let count = cur.bounded_array(max_entries - entries.len())?;
        if count == 0 {
            // Writers leave the element out when nothing overflowed.
            return Err(malformed());
        }
        entries.reserve_exact(count);
        for _ in 0..count {
            if cur.array()? != 2 {
                return Err(malformed());
            }
            let key = cur.key()?;
            let priority = cur.priority()?;
            entries.push(Entry {
                key: Bytes::Shared(key),
                priority,
                value: Value::Overflowed,
            });
        }
        Some(reference)
    } else {
        None
    };

    if cur.pos != plaintext.len() {
        return Err(malformed());
    }
    if has_duplicate_keys(plaintext, &entries) {
        return Err(malformed());
    }
    Ok(IndexedPayload {
        created_at,
        expiry,
        session_id,
        entries,
        overflow_ref,
    })
}

fn has_duplicate_keys(plaintext: &[u8], entries: &[Entry]) -> bool {
    let key = |i: usize| match &entries[i].key {
        Bytes::Shared(range) => &plaintext[range.clone()],
        Bytes::Owned(bytes) => &bytes[..],
    };
    let total = entries.len();
    // Sessions are small (bounded by the entry limit): a quadratic scan
    // without allocation beats sorting for the usual twenty keys.
    (0..total).any(|i| (i + 1..total).any(|j| key(i) == key(j)))
}

/// Writes payloads; the caller provides the output buffer so that a seal
/// can encode straight into the token buffer.
pub(crate) struct PayloadWriter<'a> {
    encoder: Encoder<&'a mut Vec<u8>>,
}

/// Bytes [`PayloadWriter::begin`] writes for these fields: the payload's
/// head, the fixed fields and the head of the entry array.
pub(crate) fn begin_len(
    created_at: u64,
    expires_at: Option<u64>,
    flags: u64,
    entry_count: usize,
) -> usize {
    1 + head_len(created_at)
        + expires_at.map_or(1, head_len)
        + 1
        + SESSION_ID_LEN
        + head_len(flags)
        + head_len(entry_count as u64)
}

impl<'a> PayloadWriter<'a> {
    /// Writes the fixed fields and the head of the entry array.
    pub fn begin(
        out: &'a mut Vec<u8>,
        created_at: u64,
        expires_at: Option<u64>,
        session_id: &[u8; SESSION_ID_LEN],
        flags: u64,
        entry_count: usize,
        with_overflow: bool,
    ) -> Self {
        let mut encoder = Encoder::from(out);
        // Writes into a Vec cannot fail.
        let _ = encoder.push(Header::Array(Some(if with_overflow { 6 } else { 5 })));
        let _ = encoder.push(Header::Positive(created_at));
        let _ = match expires_at {
            Some(t) => encoder.push(Header::Positive(t)),
            None => encoder.push(Header::Simple(simple::NULL)),
        };
        let _ = encoder.bytes(session_id, None);
        let _ = encoder.push(Header::Positive(flags));
        let _ = encoder.push(Header::Array(Some(entry_count)));
        PayloadWriter { encoder }
    }

    /// Writes one entry.
    pub fn entry(&mut self, key: &str, priority: Priority, value: &[u8]) {
        let _ = self.encoder.push(Header::Array(Some(3)));
        let _ = self.encoder.text(key, None);
        let _ = self.encoder.push(Header::Positive(priority as u64));
        let _ = self.encoder.bytes(value, None);
    }

    /// Writes the overflow reference and the head of its key array.
    pub fn overflow(&mut self, reference: &[u8; SESSION_ID_LEN], key_count: usize) {
        let _ = self.encoder.push(Header::Array(Some(2)));
        let _ = self.encoder.bytes(reference, None);
        let _ = self.encoder.push(Header::Array(Some(key_count)));
    }

    /// Writes one overflowed key.
    pub fn overflow_key(&mut self, key: &str, priority: Priority) {
        let _ = self.encoder.push(Header::Array(Some(2)));
        let _ = self.encoder.text(key, None);
        let _ = self.encoder.push(Header::Positive(priority as u64));
    }
}

/// Size in bytes of the CBOR head for an item of length/value `n`.
pub(crate) fn head_len(n: u64) -> usize {
    match n {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Encoded size of one entry, as `PayloadWriter::entry` writes it.
pub(crate) fn entry_len(key_len: usize, value_len: usize) -> usize {
    1 + head_len(key_len as u64) + key_len + 1 + head_len(value_len as u64) + value_len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(entries: &[(&str, Priority, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = PayloadWriter::begin(&mut out, 10, Some(20), &[7; 16], 0, entries.len(), false);
        for (k, p, v) in entries {
            w.entry(k, *p, v);
        }
        out
    }

    #[test]
    fn priorities_have_the_wire_values_of_format_md() {
        let wire: Vec<u8> = Priority::ALL.iter().map(|p| p.as_u8()).collect();
        assert_eq!(wire, [0, 1, 2, 3]);
        for p in Priority::ALL {
            assert_eq!(Priority::from_u8(p.as_u8()), Some(p));
        }
        assert_eq!(Priority::from_u8(4), None);
    }

    #[test]
    fn index_round_trip() {
        let out = encode(&[
            ("a", Priority::Low, b"\x01"),
            ("bé", Priority::Critical, b"\x61\x78"),
        ]);
        let idx = index(&out, 10).unwrap();
        assert_eq!(idx.created_at, 10);
        assert_eq!(idx.expiry, Expiry::At(20));
        assert_eq!(idx.entries.len(), 2);
        let Bytes::Shared(key) = &idx.entries[1].key else {
            panic!("owned key")
        };
        assert_eq!(&out[key.clone()], "bé".as_bytes());
        assert_eq!(idx.entries[1].priority, Priority::Critical);
        let Value::Resident(Bytes::Shared(value)) = &idx.entries[1].value else {
            panic!("value")
        };
        assert_eq!(&out[value.clone()], b"\x61\x78");
        let expected = entry_len(1, 1) + entry_len(3, 2);
        let fixed = index(&encode(&[]), 10).map(|_| encode(&[]).len()).unwrap();
        assert_eq!(out.len(), fixed + expected);
    }

    #[test]
    fn head_reads_like_ciborium() {
        // Every initial byte, with every argument length cut short or whole,
        // and arguments below, at and above the shortest-form limits.
        for initial in 0..=255u8 {
            for (tail, fill) in
                (0..=8).flat_map(|t| [0x00u8, 0x16, 0x18, 0x1f, 0x20, 0xff].map(|f| (t, f)))
            {
                let mut bytes = vec![initial];
                bytes.extend((0..tail).map(|i| {
                    if i == 0 {
                        fill
                    } else {
                        fill.wrapping_add(i as u8)
                    }
                }));
                let mut cur = Cursor {
                    bytes: &bytes,
                    pos: 0,
                };
                let ours = cur.head();
                let mut decoder = ciborium_ll::Decoder::from(&bytes[..]);
                let theirs = decoder.pull();
                let read = decoder.offset();
                // What ciborium read, in shortest form, is a different
                // (shorter) byte string when the head was not minimal; a
                // one-byte simple value below 32 is not well-formed at all.
                let minimal = |header: &Header| match header {
                    Header::Simple(n) if read == 2 => *n >= 32,
                    _ => {
                        let mut out = Vec::new();
                        let _ = Encoder::from(&mut out).push(*header);
                        out.len() == read
                    }
                };
                match (ours, theirs) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{bytes:02x?}");
                        assert_eq!(cur.pos, read, "{bytes:02x?}");
                        assert!(minimal(&b), "{bytes:02x?} accepted but not minimal");
                    }
                    (Err(_), Ok(Header::Float(_))) | (Err(_), Err(_)) => {}
                    (Err(_), Ok(b)) if !minimal(&b) => {}
                    (a, b) => panic!("{bytes:02x?}: ours {a:?}, ciborium {b:?}"),
                }
            }
        }
    }

    #[test]
    fn heads_must_be_in_shortest_form() {
        let read = |bytes: &[u8]| {
            let mut cur = Cursor { bytes, pos: 0 };
            cur.head().map(|h| format!("{h:?}"))
        };
        // (head, accepted): each limit from both sides.
        let cases: &[(&[u8], bool)] = &[
            (b"\x17", true),
            (b"\x18\x17", false),
            (b"\x18\x18", true),
            (b"\x18\xff", true),
            (b"\x19\x00\xff", false),
            (b"\x19\x01\x00", true),
            (b"\x19\xff\xff", true),
            (b"\x1a\x00\x00\xff\xff", false),
            (b"\x1a\x00\x01\x00\x00", true),
            (b"\x1a\xff\xff\xff\xff", true),
            (b"\x1b\x00\x00\x00\x00\xff\xff\xff\xff", false),
            (b"\x1b\x00\x00\x00\x01\x00\x00\x00\x00", true),
            // The same rule for lengths and counts.
            (b"\x98\x05", false),
            (b"\x78\x17", false),
            (b"\x59\x00\x18", false),
            // Simple values: inline below 24; one byte only from 32.
            (b"\xf6", true),
            (b"\xf8\x16", false),
            (b"\xf8\x1f", false),
            (b"\xf8\x20", true),
        ];
        for (bytes, accepted) in cases {
            assert_eq!(
                read(bytes).is_ok(),
                *accepted,
                "{bytes:02x?}: {:?}",
                read(bytes)
            );
        }
    }

    #[test]
    fn rejects_bad_structure() {
        let good = encode(&[("a", Priority::Low, b"\x01")]);
        assert_eq!(
            index(&good, 0).unwrap_err(),
            Error::LimitExceeded(Limit::Entries)
        );
        for cut in 0..good.len() {
            assert!(index(&good[..cut], 10).is_err(), "cut at {cut}");
        }
        let mut extended = good.clone();
        extended.push(0);
        assert!(index(&extended, 10).is_err());
        let dup = encode(&[("a", Priority::Low, b"\x01"), ("a", Priority::Low, b"\x02")]);
        assert!(index(&dup, 10).is_err());
        // Keys the session API refuses are refused when read, too.
        assert!(index(&encode(&[("", Priority::Low, b"\x01")]), 10).is_err());
        assert!(index(&encode(&[("_a", Priority::Low, b"\x01")]), 10).is_err());
        // The same payload with a longer-than-needed head is refused: one
        // plaintext, one encoding. `good` starts 0x85 0x0a (created_at 10).
        assert_eq!(&good[..2], b"\x85\x0a");
        let mut long_head = vec![0x85, 0x18, 0x0a];
        long_head.extend_from_slice(&good[2..]);
        assert!(index(&long_head, 10).is_err());
        // A zero-key overflow element is refused.
        let mut empty_overflow = Vec::new();
        let mut w = PayloadWriter::begin(&mut empty_overflow, 10, None, &[7; 16], 0, 0, true);
        w.overflow(&[8; 16], 0);
        assert!(index(&empty_overflow, 10).is_err());
        let mut one_key = Vec::new();
        let mut w = PayloadWriter::begin(&mut one_key, 10, None, &[7; 16], 0, 0, true);
        w.overflow(&[8; 16], 1);
        w.overflow_key("k", Priority::Low);
        assert!(index(&one_key, 10).is_ok());
        // A huge declared count is refused without allocating for it.
        let mut huge = encode(&[]);
        let n = huge.len();
        huge[n - 1] = 0x9b; // array, 8-byte count follows
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(index(&huge, usize::MAX).is_err());
    }
}
