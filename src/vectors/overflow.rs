//! `overflow-v1.json`: cookies that list overflowed keys, what the store
//! holds, and the session that loading the blob gives (FORMAT.md §15), or
//! the store error it must fail with. Pins the blob rules that let servers
//! in two languages share one store.

use core::future::Future;
use core::task::{Context, Poll, Waker};
use std::collections::BTreeMap;

use super::{
    cbor_of, default_limits, default_policy, derive, derive_array, expected_entry, key_a, key_b,
    overflow_cookie_payload, ring_a_b, seal_raw, sealer_builder, ExpectedEntry, Json, Keys,
    Outcome, Policy, ScriptedRandom, VectorLimits, NOW,
};
use crate::payload::PayloadWriter;
use crate::store::{overflow_key, MemoryStore, OverflowStore};
use crate::token::{self, Compression};
use crate::{Error, FixedClock, KeyRing, MasterKey, Priority, SessionId, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Name of the file holding the overflow vectors.
pub const OVERFLOW_FILE: &str = "overflow-v1.json";

/// The overflow vector file: the format file's shape, with overflow cases.
pub type OverflowFile = super::VectorFile<OverflowVector>;

/// One case: open `token` (a valid cookie that lists overflowed keys) as a
/// format vector is opened, then load its blob from `store`; expect
/// `expected_entries` or `expected_error`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OverflowVector {
    /// Unique name.
    pub name: String,
    /// What the case shows.
    pub description: String,
    /// Cookie name bound into the cookie's associated data.
    pub cookie_name: String,
    /// Master keys of the ring that opens the cookie and the blob, hex.
    pub keys: Keys,
    /// Unix seconds at opening.
    pub now: u64,
    /// Limits in force when opening (they bound the blob too).
    pub limits: VectorLimits,
    /// Time policy in force when opening the cookie (not the blob).
    pub policy: Policy,
    /// The cookie value.
    pub token: String,
    /// What the store holds: store key → the stored bytes, as text.
    pub store: BTreeMap<String, String>,
    /// The session after loading: every entry in session order (the
    /// cookie's entries, then the overflowed ones in overflow order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_entries: Option<Vec<ExpectedEntry>>,
    /// `store-missing` or `store-rejected`: how loading must fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_error: Option<String>,
}

/// Keys listed as overflowed, with their priorities.
type ListedKeys = Vec<(&'static str, Priority)>;

/// A blob as a writer would store it, with every field a case may change.
struct Blob {
    /// The master key that seals it, hex.
    key: String,
    /// The store key bound into its associated data.
    sealed_for: String,
    session_id: [u8; 16],
    issued_at: u64,
    created_at: u64,
    expires_at: Option<u64>,
    flags: u64,
    entries: Vec<(&'static str, Priority, Json)>,
    /// A 6th payload element (reference, listed keys), which a writer
    /// leaves out of a blob and a reader ignores.
    overflow: Option<([u8; 16], ListedKeys)>,
    compression: Compression,
}

impl Blob {
    fn plaintext(&self) -> Result<Vec<u8>, Error> {
        let mut plaintext = Vec::new();
        let mut writer = PayloadWriter::begin(
            &mut plaintext,
            self.created_at,
            self.expires_at,
            &self.session_id,
            self.flags,
            self.entries.len(),
            self.overflow.is_some(),
        );
        for (key, priority, value) in &self.entries {
            writer.entry(key, *priority, &cbor_of(value)?);
        }
        if let Some((reference, keys)) = &self.overflow {
            writer.overflow(reference, keys.len());
            for (key, priority) in keys {
                writer.overflow_key(key, *priority);
            }
        }
        Ok(plaintext)
    }

    fn seal(&self, name: &str) -> Result<String, Error> {
        let plaintext = self.plaintext()?;
        let ring = KeyRing::new(MasterKey::from_hex(&self.key)?);
        let random = ScriptedRandom::new(vec![derive("blob nonce", name, 24)]);
        token::seal(
            &ring,
            &self.sealed_for,
            self.issued_at,
            &plaintext,
            self.compression,
            &random,
        )
    }
}

/// The limits a case opens with, when not the defaults.
enum CaseLimits {
    Default,
    MaxEntries(usize),
    /// `max_decompressed` this many bytes below the length of the case's
    /// (uncompressed) blob plaintext, so that the blob's token is exactly
    /// at its length limit (0), or over it.
    MaxDecompressedBelowBlob(usize),
    /// `max_decompressed` this many bytes below the length the case's
    /// compressed blob inflates to: at the cap (0), or over it. Its token
    /// is within the length limit either way, being shorter.
    CapBelowInflated(usize),
}

/// What a case's store holds under the store key.
enum Stored {
    Blob(Blob),
    Text(&'static str),
    Nothing,
}

/// What loading must give, from the case itself: the cookie's `user`, then
/// the keys it lists as overflowed, with the cookie's priorities and the
/// blob's values.
fn expected_from(blob: &Blob) -> Result<Vec<ExpectedEntry>, Error> {
    let blob_value = |key: &str| {
        blob.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or(Json::Null, |(_, _, value)| value.clone())
    };
    [
        ("user", Priority::Critical, json!("ada")),
        ("cart", Priority::Low, blob_value("cart")),
        ("history", Priority::Normal, blob_value("history")),
    ]
    .into_iter()
    .map(|(key, priority, value)| {
        Ok(ExpectedEntry {
            key: key.to_owned(),
            priority: priority.name().to_owned(),
            value_cbor_hex: hex::encode(cbor_of(&value)?),
            value: Some(value),
            value_error: None,
        })
    })
    .collect()
}

fn cart() -> Json {
    json!([{"sku": "SKU-10000", "qty": 2}, {"sku": "SKU-10001", "qty": 1}])
}

/// A cart that deflate shrinks.
fn long_cart() -> Json {
    (0..12)
        .map(|i| json!({"sku": format!("SKU-{:05}", 10_000 + i), "qty": 1}))
        .collect()
}

fn history() -> Json {
    json!(["/p/1", "/p/2", "/p/3"])
}

/// Generates the file.
pub(super) fn generate() -> Result<OverflowFile, Error> {
    let session_id: [u8; 16] = derive_array("session-id", "overflow");
    let reference: [u8; 16] = derive_array("reference", "overflow");
    let store_key = overflow_key(&SessionId::from_bytes(session_id), &reference);
    let base = || Blob {
        key: key_a(),
        sealed_for: store_key.clone(),
        session_id,
        issued_at: NOW - 60,
        created_at: NOW - 7200,
        expires_at: None,
        flags: 0,
        entries: vec![
            ("cart", Priority::Low, cart()),
            ("history", Priority::Normal, history()),
        ],
        overflow: None,
        compression: Compression::Off,
    };
    // A cart of 12 lines, compressed.
    let compressed = || Blob {
        compression: Compression::Above(1),
        entries: vec![
            ("cart", Priority::Low, long_cart()),
            ("history", Priority::Normal, history()),
        ],
        ..base()
    };
    // The cookie: `user` in it, `cart` and `history` in the blob.
    let token = seal_raw(
        "overflow",
        &key_a(),
        NOW - 60,
        &overflow_cookie_payload(&session_id, &reference)?,
        Compression::Off,
    )?;
    let cases: Vec<(&str, &str, Stored, Option<&str>, CaseLimits)> = vec![
        (
            "overflow-loaded",
            "The cookie holds user and lists cart (low) and history (normal) as overflowed; the blob holds both.",
            Stored::Blob(base()),
            None,
            CaseLimits::Default,
        ),
        (
            "overflow-blob-ignored-fields",
            "The blob's own fields do not count: it was issued a year before now and its expires_at lies in the past (no time check is made on a blob), its entries give other priorities (the cookie's stand), and it also holds user with another value and a key the cookie does not list (both ignored: the cookie's user stands).",
            Stored::Blob(Blob {
                issued_at: NOW - 365 * 86_400,
                created_at: NOW - 366 * 86_400,
                expires_at: Some(NOW - 300 * 86_400),
                entries: vec![
                    ("user", Priority::Low, json!("mallory")),
                    ("history", Priority::Critical, history()),
                    ("stray", Priority::Normal, json!(1)),
                    ("cart", Priority::High, cart()),
                ],
                ..base()
            }),
            None,
            CaseLimits::Default,
        ),
        (
            "overflow-blob-compressed",
            "The blob is compressed (flag bit 0; a cart of 12 lines): it inflates under the reader's max_decompressed.",
            Stored::Blob(compressed()),
            None,
            CaseLimits::Default,
        ),
        (
            "overflow-blob-fallback-key",
            "The blob was sealed under key B, a fallback of the ring: it opens (blobs use the same ring as cookies).",
            Stored::Blob(Blob {
                key: key_b(),
                ..base()
            }),
            None,
            CaseLimits::Default,
        ),
        (
            "overflow-blob-missing",
            "The store holds nothing under the store key.",
            Stored::Nothing,
            Some("store-missing"),
            CaseLimits::Default,
        ),
        (
            "overflow-blob-other-session-id",
            "The blob is sealed for the right store key but its payload carries another session id.",
            Stored::Blob(Blob {
                session_id: derive_array("session-id", "overflow-other"),
                ..base()
            }),
            Some("store-rejected"),
            CaseLimits::Default,
        ),
        (
            "overflow-blob-moved",
            "The blob was sealed for another reference's store key and copied to this one: its associated data differs, so it fails authentication.",
            Stored::Blob(Blob {
                sealed_for: overflow_key(&SessionId::from_bytes(session_id), &[0x42; 16]),
                ..base()
            }),
            Some("store-rejected"),
            CaseLimits::Default,
        ),
        (
            "overflow-blob-lacks-a-listed-key",
            "The blob holds cart but not history, which the cookie lists: never a partial session.",
            Stored::Blob(Blob {
                entries: vec![("cart", Priority::Low, cart())],
                ..base()
            }),
            Some("store-rejected"),
            CaseLimits::Default,
        ),
        (
            "overflow-blob-unknown-flag",
            "The blob's payload has flag bit 2 set, undefined in v1: the blob must pass the payload rules of §11.4.",
            Stored::Blob(Blob { flags: 4, ..base() }),
            Some("store-rejected"),
            CaseLimits::Default,
        ),
        (
            "overflow-blob-not-a-token",
            "The store holds text that is not a token under the store key.",
            Stored::Text("not a token"),
            Some("store-rejected"),
            CaseLimits::Default,
        ),
        (
            "overflow-blob-lists-overflowed-keys",
            "The blob's payload has a 6th element (a reference and a listed key), which a writer leaves out of a blob: a reader ignores it (§15.1), the listed key counting only towards max_entries and duplicate keys.",
            Stored::Blob(Blob {
                overflow: Some(([0x42; 16], vec![("elsewhere", Priority::Normal)])),
                ..base()
            }),
            None,
            CaseLimits::Default,
        ),
        (
            "overflow-blob-created-after-issued",
            "The blob's created_at is an hour after its issued-at, which a cookie may not have: a blob's times are not checked (§15.1 step 3).",
            Stored::Blob(Blob {
                created_at: NOW - 60 + 3600,
                ..base()
            }),
            None,
            CaseLimits::Default,
        ),
        (
            "overflow-blob-at-entry-limit",
            "max_entries 3: the cookie's one entry and two listed keys, and a blob of three entries (one of them a key the cookie does not list): at the limit, it loads.",
            Stored::Blob(Blob {
                entries: vec![
                    ("cart", Priority::Low, cart()),
                    ("history", Priority::Normal, history()),
                    ("stray", Priority::Normal, json!(1)),
                ],
                ..base()
            }),
            None,
            CaseLimits::MaxEntries(3),
        ),
        (
            "overflow-blob-over-entry-limit",
            "max_entries 3 and a blob of four entries: the reader's own max_entries bounds the blob as it bounds a cookie (§15.1 step 4).",
            Stored::Blob(Blob {
                entries: vec![
                    ("cart", Priority::Low, cart()),
                    ("history", Priority::Normal, history()),
                    ("stray", Priority::Normal, json!(1)),
                    ("stray2", Priority::Normal, json!(2)),
                ],
                ..base()
            }),
            Some("store-rejected"),
            CaseLimits::MaxEntries(3),
        ),
        (
            "overflow-blob-duplicate-key",
            "The blob holds cart twice: every rule of §11.4 applies to a blob, duplicate keys included.",
            Stored::Blob(Blob {
                entries: vec![
                    ("cart", Priority::Low, cart()),
                    ("history", Priority::Normal, history()),
                    ("cart", Priority::Low, json!([])),
                ],
                ..base()
            }),
            Some("store-rejected"),
            CaseLimits::Default,
        ),
        (
            "overflow-blob-at-length-limit",
            "max_decompressed is the blob's plaintext length, so the blob's token is exactly b64len(max_decompressed + 58) characters long, the blob's length limit (§15.1 step 3): it loads.",
            Stored::Blob(base()),
            None,
            CaseLimits::MaxDecompressedBelowBlob(0),
        ),
        (
            "overflow-blob-over-length-limit",
            "max_decompressed is one byte less than the blob's plaintext, so the blob's token is over b64len(max_decompressed + 58), the blob's length limit, though far under the cookie's max_token_len: rejected.",
            Stored::Blob(base()),
            Some("store-rejected"),
            CaseLimits::MaxDecompressedBelowBlob(1),
        ),
        // Added after the cases above, which stay as they were published.
        (
            "overflow-blob-listed-keys-at-entry-limit",
            "max_entries 3: the blob holds cart and history and, in a 6th element, lists one overflowed key of its own (elsewhere). Its 2 entries and 1 listed key are 3, at the limit: it loads, the listed key ignored.",
            Stored::Blob(Blob {
                overflow: Some(([0x42; 16], vec![("elsewhere", Priority::Normal)])),
                ..base()
            }),
            None,
            CaseLimits::MaxEntries(3),
        ),
        (
            "overflow-blob-listed-keys-over-entry-limit",
            "max_entries 3: the blob holds cart and history and lists two overflowed keys of its own (elsewhere, later). 2 entries and 2 listed keys are over the limit: the blob's own overflow list counts towards max_entries (§15.1 step 4, as §11.4 has it for a cookie), so it is rejected, though the reader then ignores the list. A reader that leaves the blob's list out of the count loads it.",
            Stored::Blob(Blob {
                overflow: Some((
                    [0x42; 16],
                    vec![("elsewhere", Priority::Normal), ("later", Priority::Low)],
                )),
                ..base()
            }),
            Some("store-rejected"),
            CaseLimits::MaxEntries(3),
        ),
        (
            "overflow-blob-compressed-at-cap",
            "The compressed blob of overflow-blob-compressed with max_decompressed equal to the length it inflates to: it loads.",
            Stored::Blob(compressed()),
            None,
            CaseLimits::CapBelowInflated(0),
        ),
        (
            "overflow-blob-compressed-over-cap",
            "The compressed blob of overflow-blob-compressed with max_decompressed one byte below the length it inflates to: its token is within the blob's length limit, but inflating it passes the reader's cap (§15.1 step 3, §8 step 8): rejected. A reader that inflates a blob without the cap loads it.",
            Stored::Blob(compressed()),
            Some("store-rejected"),
            CaseLimits::CapBelowInflated(1),
        ),
    ];
    let mut vectors = Vec::new();
    for (name, description, stored, expected_error, case_limits) in cases {
        let mut limits = default_limits();
        match (case_limits, &stored) {
            (CaseLimits::Default, _) => {}
            (CaseLimits::MaxEntries(max), _) => limits.max_entries = max,
            (CaseLimits::MaxDecompressedBelowBlob(below), Stored::Blob(blob)) => {
                assert_eq!(blob.compression, Compression::Off, "{name}");
                limits.max_decompressed = blob.plaintext()?.len() - below;
            }
            (CaseLimits::CapBelowInflated(below), Stored::Blob(blob)) => {
                assert_ne!(blob.compression, Compression::Off, "{name}");
                limits.max_decompressed = blob.plaintext()?.len() - below;
            }
            (CaseLimits::MaxDecompressedBelowBlob(_) | CaseLimits::CapBelowInflated(_), _) => {
                panic!("{name}: no blob to measure")
            }
        }
        let mut store = BTreeMap::new();
        match &stored {
            Stored::Blob(blob) => {
                let sealed = blob.seal(name)?;
                let compressed = token::inspect(&sealed)?.header.is_compressed();
                assert_eq!(
                    compressed,
                    matches!(blob.compression, Compression::Above(_)),
                    "{name}: the blob is compressed exactly when the case asks"
                );
                store.insert(store_key.clone(), sealed);
            }
            Stored::Text(text) => {
                store.insert(store_key.clone(), (*text).to_owned());
            }
            Stored::Nothing => {}
        }
        let mut v = OverflowVector {
            name: name.to_owned(),
            description: description.to_owned(),
            cookie_name: "session".to_owned(),
            keys: ring_a_b(),
            now: NOW,
            limits,
            policy: default_policy(),
            token: token.clone(),
            store,
            expected_entries: None,
            expected_error: expected_error.map(str::to_owned),
        };
        if let (None, Stored::Blob(blob)) = (expected_error, &stored) {
            // From the case, not from the loader; the loader must agree.
            let expected = expected_from(blob)?;
            assert_eq!(load(&v), Ok(expected.clone()), "{name}");
            v.expected_entries = Some(expected);
        }
        vectors.push(v);
    }
    Ok(OverflowFile {
        description: "sealed-session format v1: cookies whose entries overflowed to a server-side store, the store's contents, and the session loading gives or the store error it fails with (FORMAT.md section 15). Schema: test-vectors/README.md.".to_owned(),
        generator: super::GENERATOR.to_owned(),
        vectors,
    })
}

/// The name of a store error in the vectors: `store-` and the variant.
fn error_name(error: &Error) -> String {
    match error {
        Error::Store(StoreError::Missing) => "store-missing".to_owned(),
        Error::Store(StoreError::Rejected) => "store-rejected".to_owned(),
        other => other.kind().to_owned(),
    }
}

/// Drives a future of the in-memory store, which never waits, to its end.
fn now_or_never<F: Future>(future: F) -> Option<F::Output> {
    let mut future = core::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

/// Opens the case's cookie, fills an in-memory store with its `store` and
/// loads the overflow: the entries in session order, or the error's name.
fn load(v: &OverflowVector) -> Result<Vec<ExpectedEntry>, String> {
    let clock = Arc::new(FixedClock::new(v.now));
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let ring = super::ring(&v.keys).map_err(|e| e.kind().to_owned())?;
    let random = Arc::new(ScriptedRandom::new(Vec::new()));
    let sealer = sealer_builder(
        ring,
        &v.cookie_name,
        &v.limits,
        &v.policy,
        Compression::Off,
        clock,
        random,
    )
    .overflow_store(store.clone())
    .build()
    .map_err(|e| e.kind().to_owned())?;
    for (key, text) in &v.store {
        let put = store.put(key, text.as_bytes().to_vec(), Duration::from_secs(86_400));
        now_or_never(put)
            .ok_or("the in-memory store waited")?
            .map_err(|e| error_name(&e))?;
    }
    let mut session = sealer
        .open(&v.token)
        .map_err(|e| format!("the cookie does not open: {}", e.kind()))?;
    now_or_never(sealer.load_overflow(&mut session))
        .ok_or("the in-memory store waited")?
        .map_err(|e| error_name(&e))?;
    session
        .keys_with_priority()
        .map(|(key, priority)| expected_entry(&session, key, priority))
        .collect::<Result<_, _>>()
        .map_err(|e| e.kind().to_owned())
}

/// Checks every case of a parsed overflow file through the public API.
pub fn check_overflow(file: &OverflowFile) -> Vec<Outcome> {
    file.vectors
        .iter()
        .map(|v| Outcome {
            name: v.name.clone(),
            failure: check_one(v).err(),
        })
        .collect()
}

fn check_one(v: &OverflowVector) -> Result<(), String> {
    match (&v.expected_error, &v.expected_entries, load(v)) {
        (Some(want), None, Err(got)) if *want == got => Ok(()),
        (Some(want), None, Err(got)) => Err(format!("expected {want}, got {got}")),
        (Some(want), None, Ok(_)) => Err(format!("expected {want}, but the blob loaded")),
        (None, Some(want), Ok(got)) if *want == got => Ok(()),
        (None, Some(_), Ok(_)) => Err("the loaded entries differ".to_owned()),
        (None, Some(_), Err(got)) => Err(format!("expected entries, got {got}")),
        _ => Err("a case needs exactly one of expected_entries and expected_error".to_owned()),
    }
}
