//! The published test vectors: a deterministic generator and a checker that
//! goes through the public API only.
//!
//! The schema is documented in `test-vectors/README.md`. Regenerate with
//! `cargo run -p sealed-session-cli -- generate-vectors test-vectors`; the
//! test suite fails when the files drift from what this generator produces.
//!
//! This module serves the CLI and the test suite. Its Rust types (the
//! files' schema structs, the checkers' signatures) are not covered by the
//! crate's version promises and may change in any release; the published
//! JSON files and their schema are.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::payload::PayloadWriter;
use crate::token::{self, Compression};
use crate::{
    Error, FixedClock, KeyRing, Limits, MasterKey, Priority, RandomSource, Sealer, SealerBuilder,
};

mod budget;
mod format;
mod overflow;
pub use budget::{check_budget, BudgetCase, BudgetEntry, BudgetFile, BUDGET_FILE};
pub use format::{
    check, Expected, ExpectedOverflow, ExpectedOverflowKey, Sealing, Vector, VectorFile,
    FORMAT_FILE,
};
pub use overflow::{check_overflow, OverflowFile, OverflowVector, OVERFLOW_FILE};

/// Every published vector file, as [`generate`] writes them.
pub const FILES: [&str; 3] = [FORMAT_FILE, BUDGET_FILE, OVERFLOW_FILE];

/// The command that writes the vector files, as each file states it.
const GENERATOR: &str = "cargo run -p sealed-session-cli -- generate-vectors test-vectors";

/// Unix time the vectors are opened at: 2026-01-01T00:00:00Z.
pub const NOW: u64 = 1_767_225_600;

/// Master keys, hex.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Keys {
    /// The primary key.
    pub primary: String,
    /// Fallback keys, in order.
    pub fallbacks: Vec<String>,
}

/// [`Limits`] as numbers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VectorLimits {
    /// Longest token, in bytes of the cookie value.
    pub max_token_len: usize,
    /// Decompression cap in bytes.
    pub max_decompressed: usize,
    /// Deepest CBOR nesting in a value.
    pub max_depth: usize,
    /// Most entries.
    pub max_entries: usize,
}

/// Time policy as seconds; `null` means no limit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Policy {
    /// Idle timeout.
    pub max_idle: Option<u64>,
    /// Absolute lifetime.
    pub max_lifetime: Option<u64>,
    /// Tolerated clock skew.
    pub clock_skew: u64,
    /// Sliding refresh after this fraction of the shorter of `max_idle` and
    /// the session's own idle timeout.
    pub refresh_fraction: f64,
}

/// One entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExpectedEntry {
    /// The key.
    pub key: String,
    /// `low`, `normal`, `high` or `critical`.
    pub priority: String,
    /// The value as JSON (for reading); absent when the value does not
    /// decode (then `value_error` says how reading it fails). A JSON
    /// `null` is the value null, not an absent one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_json"
    )]
    pub value: Option<Json>,
    /// The value's exact CBOR encoding, hex (authoritative).
    pub value_cbor_hex: String,
    /// The error kind reading the value gives, for a value that is not
    /// exactly one well-formed CBOR item (FORMAT.md 11.5): opening the
    /// token succeeds all the same, as values are not decoded then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_error: Option<String>,
}

/// A field that is present: `null` included, as `Some(Json::Null)`.
fn present_json<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Json>, D::Error> {
    Json::deserialize(d).map(Some)
}

/// Hands out scripted byte strings in order; for reproducing vectors only.
pub struct ScriptedRandom(Mutex<Vec<Vec<u8>>>);

impl std::fmt::Debug for ScriptedRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let left = self.0.lock().map_or(0, |chunks| chunks.len());
        f.debug_struct("ScriptedRandom")
            .field("chunks_left", &left)
            .finish()
    }
}

impl ScriptedRandom {
    /// A source that returns `chunks` in order, one per `fill`.
    pub fn new(chunks: Vec<Vec<u8>>) -> Self {
        let mut chunks = chunks;
        chunks.reverse();
        ScriptedRandom(Mutex::new(chunks))
    }
}

impl RandomSource for ScriptedRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        let mut chunks = self.0.lock().map_err(|_| Error::Random)?;
        let chunk = chunks.pop().ok_or(Error::Random)?;
        if chunk.len() != buf.len() {
            return Err(Error::Random);
        }
        buf.copy_from_slice(&chunk);
        Ok(())
    }
}

fn derive(label: &str, name: &str, len: usize) -> Vec<u8> {
    let digest = Sha256::digest(format!("sealed-session vectors {label} {name}").as_bytes());
    digest[..len].to_vec()
}

/// [`derive`] as an array (a session id or a blob reference, say).
fn derive_array<const N: usize>(label: &str, name: &str) -> [u8; N] {
    derive(label, name, N)
        .try_into()
        .expect("derive gives N bytes")
}

fn key_hex(first: u8) -> String {
    hex::encode((first..first + 32).collect::<Vec<u8>>())
}

/// The primary key of the vectors: bytes 0x00..=0x1f.
pub fn key_a() -> String {
    key_hex(0x00)
}

/// The fallback key of the vectors: bytes 0x20..=0x3f.
pub fn key_b() -> String {
    key_hex(0x20)
}

/// Key C, bytes 0x40..=0x5f: seals `unknown-key-id` (no A/B ring holds it),
/// and is the primary of `second-fallback-key`.
pub fn key_c() -> String {
    key_hex(0x40)
}

fn default_limits() -> VectorLimits {
    let l = Limits::default();
    VectorLimits {
        max_token_len: l.max_token_len(),
        max_decompressed: l.max_decompressed(),
        max_depth: l.max_depth(),
        max_entries: l.max_entries(),
    }
}

fn default_policy() -> Policy {
    Policy {
        max_idle: Some(3600),
        max_lifetime: Some(86_400),
        clock_skew: 60,
        refresh_fraction: 0.5,
    }
}

fn ring(keys: &Keys) -> Result<KeyRing, Error> {
    let primary = MasterKey::from_hex(&keys.primary)?;
    let fallbacks = keys
        .fallbacks
        .iter()
        .map(|k| MasterKey::from_hex(k))
        .collect::<Result<Vec<_>, _>>()?;
    KeyRing::with_fallbacks(primary, fallbacks)
}

fn limits(l: &VectorLimits) -> Limits {
    Limits::default()
        .with_max_token_len(l.max_token_len)
        .with_max_decompressed(l.max_decompressed)
        .with_max_depth(l.max_depth)
        .with_max_entries(l.max_entries)
}

/// A sealer for a vector's parameters, before `build`.
fn sealer_builder(
    ring: KeyRing,
    cookie_name: &str,
    l: &VectorLimits,
    p: &Policy,
    compression: Compression,
    clock: Arc<FixedClock>,
    random: Arc<dyn RandomSource>,
) -> SealerBuilder {
    let mut b = Sealer::builder(ring)
        .cookie_name(cookie_name)
        .limits(limits(l))
        .clock_skew(Duration::from_secs(p.clock_skew))
        .refresh_fraction(p.refresh_fraction)
        .compression(compression)
        .clock(clock)
        .random(random);
    b = match p.max_idle {
        Some(s) => b.max_idle(Duration::from_secs(s)),
        None => b.no_idle_timeout(),
    };
    match p.max_lifetime {
        Some(s) => b.max_lifetime(Duration::from_secs(s)),
        None => b.no_max_lifetime(),
    }
}

/// A session's entry as a vector states it.
fn expected_entry(
    session: &crate::Session,
    key: &str,
    priority: Priority,
) -> Result<ExpectedEntry, Error> {
    let (value, value_error) = match session.get::<Json>(key) {
        Ok(value) => (Some(value.unwrap_or(Json::Null)), None),
        // Values are not decoded when a token opens (FORMAT.md 11.5): one
        // that does not decode is part of a valid session.
        Err(e @ Error::Value(_)) => (None, Some(e.kind().to_owned())),
        Err(e) => return Err(e),
    };
    Ok(ExpectedEntry {
        key: key.to_owned(),
        priority: priority.name().to_owned(),
        value,
        value_cbor_hex: hex::encode(session.get_raw(key).unwrap_or_default()),
        value_error,
    })
}

/// The CBOR encoding of `value`, as the session API writes values.
fn cbor_of<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out)
        .map_err(|_| Error::Value(crate::ValueError::Serialize))?;
    Ok(out)
}

/// Seals an arbitrary plaintext with the low-level codec (for payloads the
/// session API would never write).
fn seal_raw(
    name: &str,
    key: &str,
    issued_at: u64,
    plaintext: &[u8],
    compression: Compression,
) -> Result<String, Error> {
    let ring = KeyRing::new(MasterKey::from_hex(key)?);
    let random = ScriptedRandom::new(vec![derive("nonce", name, 24)]);
    token::seal(&ring, "session", issued_at, plaintext, compression, &random)
}

/// Generates every vector file: `(file name, JSON text)`.
///
/// # Errors
///
/// The inputs are fixed, so an error is a bug in the generator: the
/// [`Error`] of the call that failed while building a vector or writing
/// it as JSON.
pub fn generate() -> Result<Vec<(String, String)>, Error> {
    let file = VectorFile {
        description: "sealed-session format v1: valid tokens with the sessions they open to, and invalid tokens with the error kind they must give. Schema: test-vectors/README.md.".to_owned(),
        generator: GENERATOR.to_owned(),
        vectors: format::format_vectors()?,
    };
    let budget = BudgetFile {
        description: "sealed-session size budget v1: sessions (entries with priorities and value sizes) saved under a Set-Cookie budget, with the entries dropped (in order), the entries kept and the final header length. Schema: test-vectors/README.md.".to_owned(),
        generator: GENERATOR.to_owned(),
        cases: budget::budget_cases()?,
    };
    Ok(vec![
        (FORMAT_FILE.to_owned(), to_json(&file)?),
        (BUDGET_FILE.to_owned(), to_json(&budget)?),
        (OVERFLOW_FILE.to_owned(), to_json(&overflow::generate()?)?),
    ])
}

fn to_json<T: Serialize>(value: &T) -> Result<String, Error> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|_| Error::Value(crate::ValueError::Serialize))?;
    text.push('\n');
    Ok(text)
}

/// The payload of a cookie with the entry `user` (critical, "ada") and the
/// overflowed keys `cart` (low) and `history` (normal), in the canonical
/// encoding of FORMAT.md 11.3 through the writer the sealer uses (the
/// Python reader re-encodes it independently).
fn overflow_cookie_payload(session_id: &[u8; 16], reference: &[u8; 16]) -> Result<Vec<u8>, Error> {
    let mut plaintext = Vec::new();
    let mut writer = PayloadWriter::begin(&mut plaintext, NOW - 7200, None, session_id, 0, 1, true);
    writer.entry("user", Priority::Critical, &cbor_of("ada")?);
    writer.overflow(reference, 2);
    writer.overflow_key("cart", Priority::Low);
    writer.overflow_key("history", Priority::Normal);
    Ok(plaintext)
}

/// Keys A (primary) and B (fallback): the ring most vectors open with.
fn ring_a_b() -> Keys {
    Keys {
        primary: key_a(),
        fallbacks: vec![key_b()],
    }
}

/// The outcome of checking one vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Vector name.
    pub name: String,
    /// `None` when it passed, otherwise what differed.
    pub failure: Option<String>,
}

/// Checks the published vector files ([`FILES`]) of a directory, in that
/// order. Other files in it are not read (a backup copy, a `package.json`).
///
/// # Errors
///
/// A message naming the path, when one of the files cannot be read (a
/// missing file included: a directory with one file alone is no pass), or
/// as [`check_file_text`]. A vector that does not pass is an [`Outcome`],
/// not an error.
pub fn check_dir(dir: &Path) -> Result<Vec<Outcome>, String> {
    let mut outcomes = Vec::new();
    for name in FILES {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        outcomes.extend(check_file_text(name, &text)?);
    }
    Ok(outcomes)
}

/// Checks the text of the vector file called `name` (`format-v1.json`,
/// `budget-v1.json` or `overflow-v1.json`): what [`check_dir`] does for
/// each file, for platforms without a file system.
///
/// # Errors
///
/// A message naming the file, when `name` is not one of [`FILES`], `text`
/// does not parse as that file's schema, or it holds no vector (an emptied
/// file would otherwise pass). A vector that does not pass is an
/// [`Outcome`], not an error.
pub fn check_file_text(name: &str, text: &str) -> Result<Vec<Outcome>, String> {
    fn parse<T: serde::de::DeserializeOwned>(name: &str, text: &str) -> Result<T, String> {
        serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))
    }
    let outcomes = match name {
        FORMAT_FILE => check(&parse(name, text)?),
        BUDGET_FILE => check_budget(&parse(name, text)?),
        OVERFLOW_FILE => check_overflow(&parse(name, text)?),
        _ => return Err(format!("{name}: not a known vector file")),
    };
    if outcomes.is_empty() {
        return Err(format!("{name}: holds no vector"));
    }
    Ok(outcomes)
}
