//! The format vectors (`format-v1.json`): tokens that open to a session,
//! and tokens that must fail with a given error kind.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::sync::Arc;
use std::time::Duration;

use crate::token::{self, Compression};
use crate::{Error, Expiry, FixedClock, KeyRing, Limits, MasterKey, Priority};

use super::{
    default_limits, default_policy, derive, derive_array, expected_entry, key_a, key_b, key_c,
    overflow_cookie_payload, ring, ring_a_b, seal_raw, sealer_builder, ExpectedEntry, Keys,
    Outcome, Policy, ScriptedRandom, VectorLimits, NOW,
};

/// Name of the file holding the format vectors.
pub const FORMAT_FILE: &str = "format-v1.json";

/// A vector file: every case shares the schema, valid or not. The overflow
/// file has the same shape with its own cases ([`OverflowFile`](super::OverflowFile)).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VectorFile<V = Vector> {
    /// What the file pins.
    pub description: String,
    /// The command that regenerates it.
    pub generator: String,
    /// The cases.
    pub vectors: Vec<V>,
}

/// One case: open `token` with `keys` at `now` under `cookie_name`, `limits`
/// and `policy`; expect `expected` or `expected_error`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Vector {
    /// Unique name.
    pub name: String,
    /// What the case shows.
    pub description: String,
    /// Cookie name bound into the associated data.
    pub cookie_name: String,
    /// Master keys of the opening key ring, hex.
    pub keys: Keys,
    /// Unix seconds at opening.
    pub now: u64,
    /// Limits in force when opening.
    pub limits: VectorLimits,
    /// Time policy in force when opening.
    pub policy: Policy,
    /// The cookie value.
    pub token: String,
    /// How the token was sealed (valid cases): enough to reproduce it byte
    /// for byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealing: Option<Sealing>,
    /// The plaintext before compression, hex (cases that authenticate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext_hex: Option<String>,
    /// The opened session (valid cases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Expected>,
    /// The error kind ([`Error::kind`]) opening must fail with (invalid cases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_error: Option<String>,
}

/// What reproduces a valid token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sealing {
    /// Master key that sealed, hex.
    pub key: String,
    /// Header issued-at.
    pub issued_at: u64,
    /// The 24-byte nonce, hex.
    pub nonce: String,
    /// Compression threshold in force, `null` for off.
    pub compression_threshold: Option<usize>,
}

/// The session a valid token opens to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Expected {
    /// Session id, hex.
    pub session_id: String,
    /// Start of the session.
    pub created_at: u64,
    /// Issued-at from the header.
    pub issued_at: u64,
    /// The session's own end; null when the payload holds an idle timeout
    /// (`idle_timeout`).
    pub expires_at: Option<u64>,
    /// The session's own idle timeout in seconds (payload flag bit 1, the
    /// window in the `expires_at` field; `expires_at` is then null here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<u64>,
    /// Whether the cookie is a browser-session cookie.
    pub browser_session: bool,
    /// Whether the payload was compressed.
    pub compressed: bool,
    /// Whether a fallback key opened it (so it must be re-sealed).
    pub used_fallback: bool,
    /// Whether the sliding refresh is due.
    pub refresh_due: bool,
    /// The cookie-resident entries, in order.
    pub entries: Vec<ExpectedEntry>,
    /// The entries that live in an overflow blob (a 6-element payload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overflow: Option<ExpectedOverflow>,
}

/// The overflow element of a payload: what the cookie says of the entries
/// that live server-side (their values are not in the token).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExpectedOverflow {
    /// The blob's 16-byte reference, hex.
    pub reference: String,
    /// The overflowed keys with their priorities, in order.
    pub keys: Vec<ExpectedOverflowKey>,
}

/// One overflowed key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExpectedOverflowKey {
    /// The key.
    pub key: String,
    /// `low`, `normal`, `high` or `critical`.
    pub priority: String,
}

/// A valid case to generate: a session to seal and how.
struct ValidSpec {
    name: &'static str,
    description: &'static str,
    cookie_name: &'static str,
    seal_key: String,
    ring: Keys,
    created_at: u64,
    issued_at: u64,
    now: u64,
    expiry: Expiry,
    compression: Option<usize>,
    entries: Vec<(String, Priority, Json)>,
    policy: Policy,
}

impl ValidSpec {
    fn new(name: &'static str, description: &'static str) -> Self {
        ValidSpec {
            name,
            description,
            cookie_name: "session",
            seal_key: key_a(),
            ring: ring_a_b(),
            created_at: NOW - 7200,
            issued_at: NOW - 60,
            now: NOW,
            expiry: Expiry::Default,
            compression: None,
            entries: Vec::new(),
            policy: default_policy(),
        }
    }

    fn entry(mut self, key: &str, priority: Priority, value: Json) -> Self {
        self.entries.push((key.to_owned(), priority, value));
        self
    }
}

/// Seals a spec with the public API and a scripted random source, returning
/// the token.
fn seal_spec(spec: &ValidSpec) -> Result<String, Error> {
    let clock = Arc::new(FixedClock::new(spec.created_at));
    let random = Arc::new(ScriptedRandom::new(vec![
        derive("session-id", spec.name, 16),
        derive("nonce", spec.name, 24),
    ]));
    let compression = spec
        .compression
        .map_or(Compression::Off, Compression::Above);
    let sealer = sealer_builder(
        KeyRing::new(MasterKey::from_hex(&spec.seal_key)?),
        spec.cookie_name,
        &default_limits(),
        &spec.policy,
        compression,
        clock.clone(),
        random,
    )
    .build()?;
    let mut session = sealer.new_session()?;
    for (key, priority, value) in &spec.entries {
        session.insert_with_priority(key, value, *priority)?;
    }
    session.set_expiry(spec.expiry);
    clock.set(spec.issued_at);
    sealer.seal(&mut session)
}

/// Opens a token with the vector's parameters (public API only).
fn open_vector(v: &Vector) -> Result<crate::Session, Error> {
    let sealer = sealer_builder(
        ring(&v.keys)?,
        &v.cookie_name,
        &v.limits,
        &v.policy,
        Compression::Off,
        Arc::new(FixedClock::new(v.now)),
        Arc::new(ScriptedRandom::new(Vec::new())),
    )
    .build()?;
    sealer.open(&v.token)
}

/// The plaintext a token decrypts and inflates to under `keys` and the
/// decompression cap `max_decompressed`, without a length limit.
fn plaintext_hex(
    keys: &Keys,
    cookie_name: &str,
    token: &str,
    max_decompressed: usize,
) -> Option<String> {
    let limits = Limits::default()
        .with_max_token_len(usize::MAX)
        .with_max_decompressed(max_decompressed);
    let opened = token::open(&ring(keys).ok()?, cookie_name, token, &limits).ok()?;
    Some(hex::encode(opened.plaintext()))
}

fn valid_vector(spec: ValidSpec) -> Result<Vector, Error> {
    let token = seal_spec(&spec)?;
    let mut v = Vector {
        name: spec.name.to_owned(),
        description: spec.description.to_owned(),
        cookie_name: spec.cookie_name.to_owned(),
        keys: spec.ring.clone(),
        now: spec.now,
        limits: default_limits(),
        policy: spec.policy.clone(),
        plaintext_hex: plaintext_hex(
            &spec.ring,
            spec.cookie_name,
            &token,
            default_limits().max_decompressed,
        ),
        token,
        // A created-at in the reader's future is reported as `now` (FORMAT.md
        // §11.2), so a writer cannot get the token back from `expected`.
        sealing: (spec.created_at <= spec.now).then(|| Sealing {
            key: spec.seal_key.clone(),
            issued_at: spec.issued_at,
            nonce: hex::encode(derive("nonce", spec.name, 24)),
            compression_threshold: spec.compression,
        }),
        expected: None,
        expected_error: None,
    };
    let expected = expected_of(&v)?;
    check_against_spec(&spec, &expected);
    v.expected = Some(expected);
    Ok(v)
}

/// The reader's account of a token the generator just sealed must be what
/// was sealed: `expected` comes from the reader, so this is the check that
/// it is also the spec (the Python reader checks it once more).
fn check_against_spec(spec: &ValidSpec, expected: &Expected) {
    let (expires_at, idle_timeout) = expiry_columns(spec.expiry);
    let sealed: Vec<(&str, &str, Option<&Json>)> = spec
        .entries
        .iter()
        .map(|(key, priority, value)| (key.as_str(), priority.name(), Some(value)))
        .collect();
    let opened: Vec<(&str, &str, Option<&Json>)> = expected
        .entries
        .iter()
        .map(|e| (e.key.as_str(), e.priority.as_str(), e.value.as_ref()))
        .collect();
    let agree = [
        (
            "session_id",
            expected.session_id == hex::encode(derive("session-id", spec.name, 16)),
        ),
        // A created-at in the reader's future reads as now.
        (
            "created_at",
            expected.created_at == spec.created_at.min(spec.now),
        ),
        ("issued_at", expected.issued_at == spec.issued_at),
        ("expires_at", expected.expires_at == expires_at),
        ("idle_timeout", expected.idle_timeout == idle_timeout),
        (
            "browser_session",
            expected.browser_session == (spec.expiry == Expiry::BrowserSession),
        ),
        (
            "used_fallback",
            expected.used_fallback == (spec.seal_key != spec.ring.primary),
        ),
        (
            "compressed",
            !expected.compressed || spec.compression.is_some(),
        ),
        ("entries", opened == sealed),
    ];
    for (field, ok) in agree {
        assert!(
            ok,
            "vector {}: the reader's {field} is not the spec's",
            spec.name
        );
    }
}

/// What opening `v` gives, as the vector states it (public API only).
fn expected_of(v: &Vector) -> Result<Expected, Error> {
    let session = open_vector(v)?;
    let header = token::inspect(&v.token)?.header;
    let entries = session
        .keys_with_priority()
        .filter(|(key, _)| !session.is_overflowed(key))
        .map(|(key, priority)| expected_entry(&session, key, priority))
        .collect::<Result<_, _>>()?;
    let (expires_at, idle_timeout) = expiry_columns(session.expiry());
    Ok(Expected {
        session_id: hex::encode(session.id().as_bytes()),
        created_at: session.created_at(),
        issued_at: header.issued_at,
        expires_at,
        idle_timeout,
        browser_session: session.expiry() == Expiry::BrowserSession,
        compressed: header.is_compressed(),
        used_fallback: session.opened_with_fallback(),
        refresh_due: session.refresh_due(),
        entries,
        overflow: overflow_of(&session),
    })
}

fn overflow_of(session: &crate::Session) -> Option<ExpectedOverflow> {
    Some(ExpectedOverflow {
        reference: hex::encode(session.overflow_reference()?),
        keys: session
            .keys_with_priority()
            .filter(|(key, _)| session.is_overflowed(key))
            .map(|(key, priority)| ExpectedOverflowKey {
                key: key.to_owned(),
                priority: priority.name().to_owned(),
            })
            .collect(),
    })
}

/// An invalid case: a token, the parameters that differ from the defaults,
/// and the error kind opening must give.
struct InvalidSpec {
    name: &'static str,
    description: &'static str,
    token: String,
    cookie_name: &'static str,
    now: u64,
    limits: VectorLimits,
    policy: Policy,
    expected_error: &'static str,
}

fn invalid(
    name: &'static str,
    description: &'static str,
    token: String,
    expected_error: &'static str,
) -> InvalidSpec {
    InvalidSpec {
        name,
        description,
        token,
        cookie_name: "session",
        now: NOW,
        limits: default_limits(),
        policy: default_policy(),
        expected_error,
    }
}

/// An invalid case whose token authenticates under key A (issued a minute
/// before `NOW`, uncompressed) but whose plaintext must be refused with
/// `expected_error`.
fn authentic_payload(
    name: &'static str,
    description: &'static str,
    plaintext: &[u8],
    expected_error: &'static str,
) -> Result<InvalidSpec, Error> {
    let token = seal_raw(name, &key_a(), NOW - 60, plaintext, Compression::Off)?;
    Ok(invalid(name, description, token, expected_error))
}

/// Rewrites the decoded bytes of a token.
fn mutate(token: &str, f: impl FnOnce(&mut Vec<u8>)) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let mut bytes = URL_SAFE_NO_PAD
        .decode(token)
        .expect("generated tokens are valid base64url");
    f(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A CBOR payload written by hand, for structures the API never produces.
fn cbor_payload(
    created_at: u64,
    flags: u64,
    entries: &[(&str, u64, &[u8])],
    entry_count_override: Option<u64>,
) -> Vec<u8> {
    use ciborium_ll::{simple, Encoder, Header};
    let mut out = Vec::new();
    let mut e = Encoder::from(&mut out);
    let _ = e.push(Header::Array(Some(5)));
    let _ = e.push(Header::Positive(created_at));
    let _ = e.push(Header::Simple(simple::NULL));
    let _ = e.bytes(&[0x11; 16], None);
    let _ = e.push(Header::Positive(flags));
    let count = entry_count_override.unwrap_or(entries.len() as u64);
    let _ = e.push(Header::Array(Some(count as usize)));
    for (k, p, v) in entries {
        let _ = e.push(Header::Array(Some(3)));
        let _ = e.text(k, None);
        let _ = e.push(Header::Positive(*p));
        let _ = e.bytes(v, None);
    }
    out
}

pub(super) fn format_vectors() -> Result<Vec<Vector>, Error> {
    use serde_json::json;
    let mut out = Vec::new();

    let small = || {
        ValidSpec::new(
            "small-session",
            "A typical login: user id (critical), CSRF token (high), locale.",
        )
        .entry("user_id", Priority::Critical, json!(4217))
        .entry("csrf", Priority::High, json!("k3Jf9s0aQ1xZp2Lm"))
        .entry("locale", Priority::Normal, json!("en-GB"))
    };
    // The small session under refresh fraction `fraction`, `age` seconds
    // after it was issued.
    let refresh_at_age = |name, description, fraction, age| {
        let mut s = small();
        s.name = name;
        s.description = description;
        s.policy.refresh_fraction = fraction;
        s.issued_at = NOW - age;
        s
    };
    let valid_specs = vec![
        ValidSpec::new("empty-session", "A session with no entries."),
        small(),
        ValidSpec::new(
            "unicode",
            "Unicode keys and values, including astral-plane characters.",
        )
        .entry("имя", Priority::Normal, json!("Zoë Ōkubo"))
        .entry("emoji", Priority::Normal, json!("🍪🔐"))
        .entry("中文", Priority::Low, json!(["漢字", "かな"])),
        ValidSpec::new(
            "key-with-byte-order-mark",
            "Keys that begin with U+FEFF (bytes ef bb bf) are keys of their own: \"\\u{feff}role\" is not \"role\", and \"\\u{feff}_note\" is not reserved (only a first byte 0x5f is). A UTF-8 decoder that strips a leading byte-order mark, as some do by default, reads two entries named role.",
        )
        .entry("role", Priority::Normal, json!("user"))
        .entry("\u{feff}role", Priority::Normal, json!("admin"))
        .entry("\u{feff}_note", Priority::Low, json!("\u{feff}kept")),
        ValidSpec::new(
            "nested-values",
            "Maps in arrays in maps, booleans, null, negative and large integers.",
        )
        .entry(
            "prefs",
            Priority::Normal,
            json!({"theme": {"name": "dark", "contrast": [1, 2, 3]}, "beta": true, "tz": null}),
        )
        .entry(
            "numbers",
            Priority::Low,
            json!([-1, 0, 255, 65536, 4294967296_u64, -9007199254740991_i64]),
        ),
        ValidSpec::new(
            "every-priority",
            "One entry at each of the four priorities.",
        )
        .entry("a-low", Priority::Low, json!(1))
        .entry("b-normal", Priority::Normal, json!(2))
        .entry("c-high", Priority::High, json!(3))
        .entry("d-critical", Priority::Critical, json!(4)),
        {
            let mut s = ValidSpec::new(
                "compressed",
                "A repetitive cart above the compression threshold: flag bit 0 set, raw deflate.",
            );
            s.compression = Some(256);
            let lines: Vec<Json> = (0..18)
                .map(|i| json!({"sku": format!("SKU-{:05}", 10_000 + i), "qty": 1 + i % 3, "price_cents": 1999 + i}))
                .collect();
            s.entries
                .push(("cart".into(), Priority::Low, Json::Array(lines)));
            s
        },
        {
            let mut s = ValidSpec::new("compression-not-smaller", "Compression enabled and above the threshold but incompressible: sent uncompressed, flag clear.");
            s.compression = Some(16);
            s.entries.push((
                "noise".into(),
                Priority::Normal,
                json!(hex::encode(derive("noise", "x", 32))),
            ));
            s
        },
        {
            let mut s = ValidSpec::new(
                "near-4kb",
                "A session whose token is just under the default 4096-character limit.",
            );
            // 41 entries of 58-character strings: the token lands a little
            // under 4096 characters.
            for i in 0..41 {
                let value = hex::encode(derive("filler", &i.to_string(), 29));
                s.entries
                    .push((format!("item-{i:02}"), Priority::Low, json!(value)));
            }
            s
        },
        {
            let mut s = small();
            s.name = "fallback-key";
            s.description = "Sealed under the fallback key of the ring: opens, flagged as needing a re-seal under the primary.";
            s.seal_key = key_b();
            s
        },
        {
            let mut s = small();
            s.name = "session-expiry";
            s.description = "The session's own expiry is set (one hour after now).";
            s.expiry = Expiry::At(NOW + 3600);
            s
        },
        {
            let mut s = small();
            s.name = "browser-session";
            s.description = "Browser-session cookie: payload flag bit 0 set, no expiry.";
            s.expiry = Expiry::BrowserSession;
            s
        },
        {
            let mut s = small();
            s.name = "refresh-due";
            s.description =
                "Issued 40 minutes ago with a one-hour idle timeout: valid, sliding refresh due.";
            s.issued_at = NOW - 2400;
            s
        },
        refresh_at_age(
            "refresh-fraction-quarter",
            "Refresh fraction 0.25: the refresh is due from age floor(3600 x 0.25) = 900, and this token is exactly 900 s old.",
            0.25,
            900,
        ),
        refresh_at_age(
            "refresh-fraction-quarter-not-due",
            "Refresh fraction 0.25, issued 899 s ago: one second before the refresh is due.",
            0.25,
            899,
        ),
        refresh_at_age(
            "refresh-fraction-truncated",
            "Refresh fraction 0.3333: 3600 x 0.3333 = 1199.88 is truncated to 1199, so the refresh is due at age 1199 (a reader that rounds gets 1200 and says not due).",
            0.3333,
            1199,
        ),
        refresh_at_age(
            "refresh-fraction-zero",
            "Refresh fraction 0, issued now: the refresh is due at every age, 0 included.",
            0.0,
            0,
        ),
        refresh_at_age(
            "refresh-fraction-one",
            "Refresh fraction 1, issued exactly max_idle seconds ago: valid, and the refresh is never due with f = 1.",
            1.0,
            3600,
        ),
        refresh_at_age(
            "refresh-fraction-above-one",
            "Refresh fraction 1.0001, clamped to 1: never due, not even at age max_idle = 3600 (a reader that does not clamp gets floor(3600 x 1.0001) = 3600 and says due).",
            1.0001,
            3600,
        ),
        refresh_at_age(
            "refresh-fraction-negative",
            "Refresh fraction -0.5, clamped to 0: due at every age, 0 included (a reader that converts the negative product -1800 to an unsigned integer without clamping can get a huge threshold and say not due).",
            -0.5,
            0,
        ),
        {
            let mut s = small();
            s.name = "idle-expiry-refresh-fraction";
            s.description = "Own idle timeout 600 s, refresh fraction 0.25, issued 150 s ago: the fraction applies to the shorter window, so the refresh is due from age 150.";
            s.expiry = Expiry::Idle(Duration::from_secs(600));
            s.policy.refresh_fraction = 0.25;
            s.issued_at = NOW - 150;
            s
        },
        {
            let mut s = small();
            s.name = "other-cookie-name";
            s.description = "Bound to the cookie name __Host-id.";
            s.cookie_name = "__Host-id";
            s
        },
        {
            let mut s = small();
            s.name = "idle-boundary";
            s.description =
                "Issued exactly max_idle seconds ago: still valid (expired only when older).";
            s.issued_at = NOW - 3600;
            s
        },
        {
            let mut s = small();
            s.name = "lifetime-boundary";
            s.description =
                "Created exactly max_lifetime seconds ago: still valid (expired only when older).";
            s.created_at = NOW - 86_400;
            s
        },
        {
            let mut s = small();
            s.name = "skew-boundary";
            s.description = "Issued exactly clock_skew seconds in the future: still valid.";
            s.issued_at = NOW + 60;
            s
        },
        {
            let mut s = small();
            s.name = "created-after-now";
            s.description = "Created 30 s and issued 60 s in the future (the writer's clock ahead, within clock_skew): valid, its age 0. A reader that subtracts in unsigned arithmetic without saturating gets an age near 2^64 and wrongly reports the lifetime expired. The session's created-at is reported as now (FORMAT.md 11.2), so no writer gets this token back from expected: no sealing.";
            s.created_at = NOW + 30;
            s.issued_at = NOW + 60;
            s
        },
        {
            let mut s = small();
            s.name = "now-max";
            s.description = "now is 2^64 - 1, issued a minute and created two hours before: valid. A reader that computes now + clock_skew without saturating gets 59 and wrongly reports issued-in-future.";
            s.now = u64::MAX;
            s.created_at = u64::MAX - 7200;
            s.issued_at = u64::MAX - 60;
            s
        },
        {
            let mut s = small();
            s.name = "session-expiry-boundary";
            s.description =
                "The session's own expiry one second after now: still valid (expired from that second on).";
            s.expiry = Expiry::At(NOW + 1);
            s
        },
        {
            let mut s = small();
            s.name = "idle-expiry";
            s.description = "The session's own idle timeout of 600 seconds (payload flag bit 1; expires_at holds the window); issued a minute ago.";
            s.expiry = Expiry::Idle(Duration::from_secs(600));
            s
        },
        {
            let mut s = small();
            s.name = "idle-expiry-refresh-due";
            s.description = "Own idle timeout 600 s, issued 300 s ago: the refresh is due at half the shorter window (300 s), not at half of max_idle.";
            s.expiry = Expiry::Idle(Duration::from_secs(600));
            s.issued_at = NOW - 300;
            s
        },
        {
            let mut s = small();
            s.name = "idle-expiry-boundary";
            s.description = "Own idle timeout 600 s, issued exactly 600 s ago: still valid (expired only when older).";
            s.expiry = Expiry::Idle(Duration::from_secs(600));
            s.issued_at = NOW - 600;
            s
        },
        {
            let mut s = small();
            s.name = "idle-expiry-longer-than-max-idle";
            s.description = "Own idle timeout 7200 s, longer than max_idle (3600): the shorter window rules, so the refresh is due at age 1800.";
            s.expiry = Expiry::Idle(Duration::from_secs(7200));
            s.issued_at = NOW - 1800;
            s
        },
        {
            let mut s = small();
            s.name = "idle-expiry-without-max-idle";
            s.description = "No max_idle (policy null); own idle timeout 600 s, issued 400 s ago: valid, and the refresh is due from age 300.";
            s.expiry = Expiry::Idle(Duration::from_secs(600));
            s.issued_at = NOW - 400;
            s.policy.max_idle = None;
            s
        },
        {
            let mut s = small();
            s.name = "expiry-beyond-32-bits";
            s.description = "An expiry of 2^40 seconds: an 8-byte CBOR integer head (readers must hold times as 64-bit integers).";
            s.expiry = Expiry::At(1 << 40);
            s
        },
        {
            let mut s = small();
            s.name = "expiry-max";
            s.description = "An expiry of 2^64 - 1, the largest time: valid, as it ends only when now reaches it. Readers must neither wrap nor round it (the expected expires_at is beyond 2^53: parse it as an exact integer).";
            s.expiry = Expiry::At(u64::MAX);
            s
        },
        {
            let mut s = small();
            s.name = "idle-expiry-max";
            s.description = "A session's own idle timeout of 2^64 - 1 (flag bit 1): it never expires, and the refresh is not due.";
            s.expiry = Expiry::Idle(Duration::from_secs(u64::MAX));
            s
        },
    ];
    for spec in valid_specs {
        out.push(valid_vector(spec)?);
    }
    {
        let mut s = small();
        s.name = "long-master-key";
        s.description = "Sealed and opened under a 64-byte master key (keys are at least 32 bytes; HKDF takes any length).";
        let long = format!("{}{}", key_a(), key_c());
        s.seal_key = long.clone();
        s.ring = Keys {
            primary: long,
            fallbacks: Vec::new(),
        };
        out.push(valid_vector(s)?);
    }
    {
        let mut s = small();
        s.name = "second-fallback-key";
        s.description = "A ring of primary C and fallbacks A, B; sealed under B: found by key id, flagged for a re-seal.";
        s.seal_key = key_b();
        s.ring = Keys {
            primary: key_c(),
            fallbacks: vec![key_a(), key_b()],
        };
        out.push(valid_vector(s)?);
    }
    // Limits at their boundary: the small session opens with a token limit
    // equal to its length, and with an entry limit equal to its count.
    let small_vector = valid_vector(small())?;
    let mut at_length = small_vector.clone();
    at_length.name = "token-at-length-limit".into();
    at_length.description =
        "max_token_len equal to the token's length in bytes: still valid.".into();
    at_length.limits.max_token_len = at_length.token.len();
    out.push(at_length);
    // The invalid cases below alter this token.
    let base = small_vector.token.clone();
    let mut at_entries = small_vector;
    at_entries.name = "entries-at-limit".into();
    at_entries.description = "max_entries equal to the session's 3 entries: still valid.".into();
    at_entries.limits.max_entries = 3;
    out.push(at_entries);
    // The value depth limit's boundary (FORMAT.md 11.5): `prefs` in
    // `nested-values` nests 3 levels (a map, a map, an array).
    let mut at_depth = out
        .iter()
        .find(|v| v.name == "nested-values")
        .cloned()
        .expect("the nested-values vector is built above");
    at_depth.name = "value-at-depth-limit".into();
    at_depth.description = "max_depth 3, and the prefs value nests exactly 3 levels (a map in a map holding an array): every value still decodes (FORMAT.md 11.5). Only this side is pinned: a reader may count depth its own way as long as it accepts what the rule accepts.".into();
    at_depth.limits.max_depth = 3;
    out.push(at_depth);
    out.push(overflow_vector()?);
    out.push(nonzero_padding_vector()?);
    // The decompression cap's boundary, on the `compressed` token (the
    // invalid side, one byte below, is `decompressed-over-limit`).
    let mut at_cap = out
        .iter()
        .find(|v| v.name == "compressed")
        .cloned()
        .expect("the compressed vector is built above");
    let inflated_len = at_cap
        .plaintext_hex
        .as_ref()
        .expect("a valid vector has its plaintext")
        .len()
        / 2;
    let compressed_token = at_cap.token.clone();
    at_cap.name = "decompressed-at-limit".into();
    at_cap.description = format!("The compressed token with max_decompressed equal to the {inflated_len} bytes it inflates to: still valid.");
    at_cap.limits.max_decompressed = inflated_len;
    out.push(at_cap);
    // A token whose length is 3 mod 4, for the non-canonical case whose
    // last character carries two unused bits (`base` is 2 mod 4: four).
    let three_mod_four = out
        .iter()
        .find(|v| v.name == "unicode")
        .map(|v| v.token.clone())
        .expect("the unicode vector is built above");
    assert_eq!(three_mod_four.len() % 4, 3);

    let a = key_a();
    let mut inv = vec![
        invalid(
            "header-version-tampered",
            "Version byte changed from 1 to 2.",
            mutate(&base, |b| b[0] = 2),
            "malformed",
        ),
        invalid(
            "header-unknown-flag",
            "Flag bit 1 set (undefined in v1).",
            mutate(&base, |b| b[1] |= 0b10),
            "malformed",
        ),
        invalid(
            "header-compressed-flag-toggled",
            "Compressed flag set on an uncompressed token: the header is authenticated.",
            mutate(&base, |b| b[1] |= 0b1),
            "authentication-failed",
        ),
        invalid(
            "header-key-id-tampered",
            "One bit of the key id flipped: no such key.",
            mutate(&base, |b| b[2] ^= 1),
            "unknown-key-id",
        ),
        invalid(
            "header-issued-at-tampered",
            "Issued-at moved one second: the header is authenticated.",
            mutate(&base, |b| b[17] ^= 1),
            "authentication-failed",
        ),
        invalid(
            "nonce-tampered",
            "One bit of the nonce flipped.",
            mutate(&base, |b| b[18] ^= 1),
            "authentication-failed",
        ),
        invalid(
            "ciphertext-tampered",
            "One bit of the ciphertext flipped.",
            mutate(&base, |b| b[42] ^= 0x80),
            "authentication-failed",
        ),
        invalid(
            "tag-tampered",
            "One bit of the tag flipped.",
            mutate(&base, |b| {
                let n = b.len();
                b[n - 1] ^= 1
            }),
            "authentication-failed",
        ),
        invalid(
            "truncated-one-byte",
            "Last byte removed.",
            mutate(&base, |b| {
                b.pop();
            }),
            "authentication-failed",
        ),
        invalid(
            "truncated-below-overhead",
            "Cut to 57 bytes, shorter than header, nonce and tag.",
            mutate(&base, |b| b.truncate(57)),
            "malformed",
        ),
        invalid(
            "extended-one-byte",
            "A zero byte appended.",
            mutate(&base, |b| b.push(0)),
            "authentication-failed",
        ),
        invalid(
            "empty-token",
            "The empty string.",
            String::new(),
            "malformed",
        ),
        invalid(
            "base64-padding",
            "Padding '=' appended.",
            format!("{base}="),
            "malformed",
        ),
        invalid(
            "base64-whitespace",
            "A space inside the token.",
            format!("{} {}", &base[..10], &base[10..]),
            "malformed",
        ),
        invalid(
            "base64-newline",
            "A line feed inside the token (Go's strict base64url decoder skips it).",
            format!("{}\n{}", &base[..10], &base[10..]),
            "malformed",
        ),
        invalid(
            "base64-carriage-return",
            "A carriage return inside the token (Go's strict base64url decoder skips it).",
            format!("{}\r{}", &base[..10], &base[10..]),
            "malformed",
        ),
        invalid(
            "order-unknown-flag-before-key-id",
            "Flag bit 1 set (undefined in v1) and a key id no key has: the flags (step 5) are checked before the key is looked up (step 6).",
            mutate(&base, |b| {
                b[1] |= 0b10;
                b[2] ^= 0xff;
            }),
            "malformed",
        ),
        {
            // Two bytes a character: 4098 bytes in 2049 characters.
            let mut s = invalid(
                "token-length-in-bytes",
                "2049 two-byte characters (4098 bytes of UTF-8) against max_token_len 4096: the length is counted in bytes (step 1), so this is limit-exceeded; a reader that counts characters or UTF-16 units (JavaScript's length) sees 2049 and fails later, at decoding.",
                "\u{e9}".repeat(2049),
                "limit-exceeded",
            );
            s.limits.max_token_len = 4096;
            s
        },
        invalid(
            "base64-standard-alphabet",
            "A '+' (standard alphabet) inside the token.",
            format!("+{}", &base[1..]),
            "malformed",
        ),
        invalid(
            "base64-non-canonical",
            "Last character changed so that unused trailing bits are set.",
            non_canonical(&base),
            "malformed",
        ),
        invalid(
            "base64-non-canonical-3-mod-4",
            "The unicode vector's token, 3 mod 4 characters long, with its last character changed so that one of its two unused trailing bits is set.",
            non_canonical(&three_mod_four),
            "malformed",
        ),
        invalid(
            "unknown-key-id",
            "Sealed under a key the ring does not hold.",
            seal_raw(
                "unknown-key-id",
                &key_c(),
                NOW - 60,
                &cbor_payload(NOW - 7200, 0, &[], None),
                Compression::Off,
            )?,
            "unknown-key-id",
        ),
        {
            let mut s = invalid(
                "wrong-cookie-name",
                "Sealed for the cookie name 'session', opened as 'admin'.",
                base.clone(),
                "authentication-failed",
            );
            s.cookie_name = "admin";
            s
        },
        invalid(
            "idle-expired",
            "Issued 3601 seconds ago with a 3600-second idle timeout.",
            seal_raw(
                "idle-expired",
                &a,
                NOW - 3601,
                &cbor_payload(NOW - 7200, 0, &[], None),
                Compression::Off,
            )?,
            "expired-idle",
        ),
        authentic_payload(
            "lifetime-expired",
            "Re-sealed a minute ago but created 86401 seconds ago (lifetime 86400).",
            &cbor_payload(NOW - 86_401, 0, &[], None),
            "expired-lifetime",
        )?,
        invalid(
            "session-expired",
            "The session's own expiry is now (expired at that instant).",
            {
                let mut spec = small();
                spec.name = "session-expired";
                spec.expiry = Expiry::At(NOW);
                seal_spec(&spec)?
            },
            "expired-session",
        ),
        invalid(
            "idle-expiry-expired",
            "Own idle timeout 600 s, issued 601 s ago (max_idle 3600 would still allow it).",
            {
                let mut spec = small();
                spec.name = "idle-expiry-expired";
                spec.expiry = Expiry::Idle(Duration::from_secs(600));
                spec.issued_at = NOW - 601;
                seal_spec(&spec)?
            },
            "expired-idle",
        ),
        {
            let mut spec = small();
            spec.name = "idle-expiry-expired-without-max-idle";
            spec.expiry = Expiry::Idle(Duration::from_secs(600));
            spec.issued_at = NOW - 601;
            let mut case = invalid(
                "idle-expiry-expired-without-max-idle",
                "No max_idle (policy null); own idle timeout 600 s, issued 601 s ago: the session's own window alone ends it.",
                seal_spec(&spec)?,
                "expired-idle",
            );
            case.policy.max_idle = None;
            case
        },
        authentic_payload(
            "cbor-idle-flag-without-window",
            "Authenticates; payload flag bit 1 (idle timeout) with expires_at null: no window.",
            &cbor_payload(NOW - 7200, 0b10, &[("k", 1, b"\x01")], None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-idle-and-browser-flags",
            "Authenticates; payload flags 3: an idle timeout on a browser-session cookie, which no writer produces.",
            &with_expires_and_flags(&[0x19, 0x02, 0x58], 0b11),
            "malformed",
        )?,
        authentic_payload(
            "cbor-browser-flag-with-expiry",
            "Authenticates; payload flags 1 (browser-session cookie) with an end in expires_at, which no writer produces: one session, one plaintext.",
            &with_expires_and_flags(&[0x1a, 0x69, 0x56, 0x2f, 0x00], 0b01),
            "malformed",
        )?,
        invalid(
            "issued-in-future",
            "Issued 61 seconds in the future with 60 seconds of allowed skew.",
            seal_raw(
                "issued-in-future",
                &a,
                NOW + 61,
                &cbor_payload(NOW - 7200, 0, &[], None),
                Compression::Off,
            )?,
            "issued-in-future",
        ),
        {
            let bomb = vec![0u8; 1 << 20];
            let mut s = invalid(
                "decompression-bomb",
                "1 MiB of zeros deflated to about 1 KiB; the cap is 64 KiB.",
                seal_raw(
                    "decompression-bomb",
                    &a,
                    NOW - 60,
                    &bomb,
                    Compression::Above(1),
                )?,
                "limit-exceeded",
            );
            s.limits.max_token_len = 8192;
            s
        },
        // Tokens that break two steps of FORMAT.md §8: the earlier step
        // decides.
        {
            let mut s = invalid(
                "order-length-before-base64",
                "4097 characters that are not base64url, against max_token_len 4096: the length (step 1) is checked before decoding (step 2).",
                "!".repeat(4097),
                "limit-exceeded",
            );
            s.limits.max_token_len = 4096;
            s
        },
        {
            let bomb = vec![0u8; 1 << 20];
            invalid(
                "order-bomb-before-idle-expiry",
                "1 MiB of zeros deflated, issued 3601 seconds ago against max_idle 3600: the decompression cap (step 8) comes before the idle check (step 10).",
                seal_raw(
                    "order-bomb-before-idle-expiry",
                    &a,
                    NOW - 3601,
                    &bomb,
                    Compression::Above(1),
                )?,
                "limit-exceeded",
            )
        },
        invalid(
            "order-idle-expiry-before-payload",
            "Authenticates; issued 3601 seconds ago against max_idle 3600, and the plaintext is not CBOR: the idle check (step 10) comes before the payload is walked (step 11).",
            seal_raw(
                "order-idle-expiry-before-payload",
                &a,
                NOW - 3601,
                b"\xff\x00not cbor",
                Compression::Off,
            )?,
            "expired-idle",
        ),
        invalid(
            "issued-at-max",
            "Authenticates; the header's issued-at is 2^64 - 1 (0xff in all 8 bytes): far in the future. A reader that holds it as a signed 64-bit integer sees -1, passes the skew check and reports expired-idle instead.",
            seal_raw("issued-at-max", &a, u64::MAX, &raw_payload(&one_entry(), None), Compression::Off)?,
            "issued-in-future",
        ),
        {
            let name = "order-created-after-issued-before-lifetime";
            let payload = cbor_payload(NOW - 90_000 + 30, 0, &[], None);
            let mut s = invalid(
                name,
                "Authenticates; created-at 30 seconds after issued-at, both more than max_lifetime before now, with no idle timeout: created-at after issued-at (step 12) is checked before the lifetime (step 13).",
                seal_raw(name, &a, NOW - 90_000, &payload, Compression::Off)?,
                "malformed",
            );
            s.policy.max_idle = None;
            s
        },
        authentic_payload(
            "order-lifetime-before-session-expiry",
            "Authenticates; created 86401 seconds ago (lifetime 86400) and the session's own expiry 10 seconds ago: the lifetime (step 13) is checked before the session's expiry (step 14).",
            &[
                &[0x85, 0x1a][..],
                &u32::try_from(NOW - 86_401).unwrap_or(0).to_be_bytes(),
                &[0x1a],
                &u32::try_from(NOW - 10).unwrap_or(0).to_be_bytes(),
                &byte_string(16),
                &[0x00, 0x80],
            ]
            .concat(),
            "expired-lifetime",
        )?,
        {
            const TWO_53: u64 = 1 << 53;
            let payload = cbor_payload(TWO_53 + 1, 0, &[], None);
            let mut s = invalid(
                "created-after-issued-above-2-53",
                "Authenticates; issued-at 2^53 and created-at 2^53 + 1, now 2^53 + 60: created-at after issued-at, malformed. As doubles the two times are equal, so a reader that compares them as floating-point numbers accepts the token.",
                seal_raw("created-after-issued-above-2-53", &a, TWO_53, &payload, Compression::Off)?,
                "malformed",
            );
            s.now = TWO_53 + 60;
            s
        },
        {
            let mut s = invalid("token-over-length-limit", "A valid token opened with max_token_len one below its length: refused before decoding.", base.clone(), "limit-exceeded");
            s.limits.max_token_len = base.len() - 1;
            s
        },
        authentic_payload(
            "malformed-cbor",
            "Authenticates, but the plaintext is not CBOR of the v1 schema.",
            b"\xff\x00not cbor",
            "malformed",
        )?,
        authentic_payload(
            "cbor-trailing-bytes",
            "Authenticates; a valid payload followed by one extra byte.",
            &{
                let mut p = cbor_payload(NOW - 7200, 0, &[], None);
                p.push(0);
                p
            },
            "malformed",
        )?,
        authentic_payload(
            "cbor-duplicate-key",
            "Authenticates; the same key twice.",
            &cbor_payload(NOW - 7200, 0, &[("k", 1, b"\x01"), ("k", 1, b"\x02")], None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-bad-priority",
            "Authenticates; priority 4 does not exist.",
            &cbor_payload(NOW - 7200, 0, &[("k", 4, b"\x01")], None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-unknown-payload-flag",
            "Authenticates; payload flag bit 2 set (only bits 0 and 1 are defined).",
            &cbor_payload(NOW - 7200, 4, &[], None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-entry-count-lie",
            "Authenticates; declares 2^32 entries: refused before allocating.",
            &cbor_payload(NOW - 7200, 0, &[], Some(1 << 32)),
            "limit-exceeded",
        )?,
        {
            let entries: Vec<(String, u64, Vec<u8>)> =
                (0..257).map(|i| (format!("k{i}"), 1, vec![0x01])).collect();
            let borrowed: Vec<(&str, u64, &[u8])> = entries
                .iter()
                .map(|(k, p, v)| (k.as_str(), *p, &v[..]))
                .collect();
            authentic_payload(
                "too-many-entries",
                "Authenticates; 257 entries against a limit of 256.",
                &cbor_payload(NOW - 7200, 0, &borrowed, None),
                "limit-exceeded",
            )?
        },
        authentic_payload(
            "cbor-non-minimal-head",
            "Authenticates; created_at written with an 8-byte argument where 4 bytes suffice (heads must be in shortest form).",
            &{
                let p = cbor_payload(NOW - 7200, 0, &[("k", 1, b"\x01")], None);
                // 0x85, then created_at as 0x1a and 4 bytes.
                assert_eq!(p[1], 0x1a);
                let mut long = vec![0x85, 0x1b];
                long.extend_from_slice(&(NOW - 7200).to_be_bytes());
                long.extend_from_slice(&p[6..]);
                long
            },
            "malformed",
        )?,
        authentic_payload(
            "cbor-two-byte-null",
            "Authenticates; expires_at is null written as the two-byte simple value 0xf8 0x16, which RFC 8949 says is not well-formed.",
            &{
                let p = cbor_payload(NOW - 7200, 0, &[("k", 1, b"\x01")], None);
                assert_eq!(p[6], 0xf6);
                let mut two_byte = p[..6].to_vec();
                two_byte.extend_from_slice(&[0xf8, 0x16]);
                two_byte.extend_from_slice(&p[7..]);
                two_byte
            },
            "malformed",
        )?,
        authentic_payload(
            "cbor-empty-key",
            "Authenticates; an entry with the empty key.",
            &cbor_payload(NOW - 7200, 0, &[("", 1, b"\x01")], None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-reserved-key",
            "Authenticates; an entry whose key starts with '_' (reserved).",
            &cbor_payload(NOW - 7200, 0, &[("_k", 1, b"\x01")], None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-empty-overflow",
            "Authenticates; a 6-element payload whose overflow element lists no keys (writers leave the element out instead).",
            &{
                let mut p = cbor_payload(NOW - 7200, 0, &[("k", 1, b"\x01")], None);
                assert_eq!(p[0], 0x85);
                p[0] = 0x86;
                // [reference: 16 bytes, keys: []]
                p.extend_from_slice(&[0x82, 0x50]);
                p.extend_from_slice(&[0x22; 16]);
                p.push(0x80);
                p
            },
            "malformed",
        )?,
        {
            let mut spec = authentic_payload(
                "order-payload-flag-before-entry-count",
                "Authenticates; payload flag bit 2 set (undefined) and 3 entries against max_entries 2: the flags (§11.4 step 5) are met before the entry count (step 6).",
                &cbor_payload(NOW - 7200, 4, &[("a", 1, b"\x01"), ("b", 1, b"\x01"), ("c", 1, b"\x01")], None),
                "malformed",
            )?;
            spec.limits.max_entries = 2;
            spec
        },
        {
            let mut spec = authentic_payload(
                "order-entry-count-before-duplicate-key",
                "Authenticates; 3 entries, two with the key a, against max_entries 2: the entry count (§11.4 step 6) is met before the duplicate key (step 10, after the walk).",
                &cbor_payload(NOW - 7200, 0, &[("a", 1, b"\x01"), ("b", 1, b"\x01"), ("a", 1, b"\x02")], None),
                "limit-exceeded",
            )?;
            spec.limits.max_entries = 2;
            spec
        },
        authentic_payload(
            "created-after-issued",
            "Authenticates; created-at later than issued-at.",
            &cbor_payload(NOW - 30, 0, &[], None),
            "malformed",
        )?,
        authentic_payload(
            "created-at-max",
            "Authenticates; created_at is 2^64 - 1, later than issued-at (read as a signed integer it would be -1, before it).",
            &with_created_head(0x1b, &u64::MAX.to_be_bytes()),
            "malformed",
        )?,
        authentic_payload(
            "cbor-reserved-additional-info",
            "Authenticates; created_at's head has additional information 28, which CBOR reserves.",
            &with_created_head(0x1c, &created_head()[1..]),
            "malformed",
        )?,
        authentic_payload(
            "cbor-reserved-additional-info-29",
            "Authenticates; created_at's head has additional information 29, which CBOR reserves.",
            &with_created_head(0x1d, &created_head()[1..]),
            "malformed",
        )?,
        authentic_payload(
            "cbor-reserved-additional-info-30",
            "Authenticates; created_at's head has additional information 30, which CBOR reserves.",
            &with_created_head(0x1e, &created_head()[1..]),
            "malformed",
        )?,
        authentic_payload(
            "cbor-integer-additional-info-31",
            "Authenticates; created_at's head is 0x1f: additional information 31 (indefinite length) on an unsigned integer, which is not well-formed CBOR.",
            &with_created_head(0x1f, &created_head()[1..]),
            "malformed",
        )?,
        authentic_payload(
            "cbor-session-id-text",
            "Authenticates; a session id written as a text string of 16 bytes, not a byte string.",
            &[&[0x85][..], &created_head(), &[0xf6, 0x70], &[b'a'; 16], &[0x00, 0x80]].concat(),
            "malformed",
        )?,
        authentic_payload(
            "cbor-flags-not-integer",
            "Authenticates; the payload flags are false instead of an unsigned integer.",
            &[&[0x85][..], &created_head(), &[0xf6], &byte_string(16), &[0xf4, 0x80]].concat(),
            "malformed",
        )?,
        authentic_payload(
            "cbor-priority-text",
            "Authenticates; an entry whose priority is the text \"1\", not an unsigned integer.",
            &raw_payload(&[0x81, 0x83, 0x61, b'k', 0x61, b'1', 0x41, 0x01], None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-key-bytes",
            "Authenticates; an entry key written as a byte string, not a text string.",
            &raw_payload(&[0x81, 0x83, 0x41, b'k', 0x01, 0x41, 0x01], None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-key-indefinite",
            "Authenticates; an entry key written as an indefinite-length text string of one chunk (0x7f 0x61 'k' 0xff): strings have definite length.",
            &raw_payload(&[0x81, 0x83, 0x7f, 0x61, b'k', 0xff, 0x01, 0x41, 0x01], None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-value-indefinite",
            "Authenticates; an entry value written as an indefinite-length byte string of one chunk (0x5f 0x41 0x01 0xff).",
            &raw_payload(&[0x81, 0x83, 0x61, b'k', 0x01, 0x5f, 0x41, 0x01, 0xff], None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-key-not-utf8",
            "Authenticates; an entry key that is not valid UTF-8.",
            &raw_payload(&[0x81, 0x83, 0x61, 0xff, 0x01, 0x41, 0x01], None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-key-encoded-surrogate",
            "Authenticates; an entry key holding an encoded surrogate (0xed 0xa0 0x80, U+D800), which UTF-8 (RFC 3629) excludes: a decoder that replaces it instead of failing accepts it.",
            &raw_payload(&[0x81, 0x83, 0x63, 0xed, 0xa0, 0x80, 0x01, 0x41, 0x01], None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-key-overlong",
            "Authenticates; an entry key holding an overlong form of '/' (0xc0 0xaf), which UTF-8 (RFC 3629) excludes.",
            &raw_payload(&[0x81, 0x83, 0x62, 0xc0, 0xaf, 0x01, 0x41, 0x01], None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-session-id-15-bytes",
            "Authenticates; a session id of 15 bytes.",
            &[&[0x85][..], &created_head(), &[0xf6], &byte_string(15), &[0x00, 0x80]].concat(),
            "malformed",
        )?,
        authentic_payload(
            "cbor-session-id-17-bytes",
            "Authenticates; a session id of 17 bytes.",
            &[&[0x85][..], &created_head(), &[0xf6], &byte_string(17), &[0x00, 0x80]].concat(),
            "malformed",
        )?,
        authentic_payload(
            "cbor-entry-two-elements",
            "Authenticates; an entry of 2 elements (key, priority; no value).",
            &raw_payload(&[0x81, 0x82, 0x61, b'k', 0x01], None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-entry-four-elements",
            "Authenticates; an entry of 4 elements.",
            &raw_payload(&[0x81, 0x84, 0x61, b'k', 0x01, 0x41, 0x01, 0x00], None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-value-not-bytes",
            "Authenticates; an entry whose value is a text string, not a byte string.",
            &raw_payload(&[0x81, 0x83, 0x61, b'k', 0x01, 0x61, b'x'], None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-payload-four-elements",
            "Authenticates; a payload array of 4 elements (no entries).",
            &[&[0x84][..], &created_head(), &[0xf6], &byte_string(16), &[0x00]].concat(),
            "malformed",
        )?,
        authentic_payload(
            "cbor-payload-seven-elements",
            "Authenticates; a payload array of 7 elements (a valid overflow element, then 0).",
            &{
                let mut p = raw_payload(&one_entry(), Some(&overflow_element(16, &[b"o"])));
                p[0] = 0x87;
                p.push(0x00);
                p
            },
            "malformed",
        )?,
        authentic_payload(
            "cbor-expires-negative",
            "Authenticates; expires_at is the negative integer -1.",
            &with_expires(&[0x20]),
            "malformed",
        )?,
        authentic_payload(
            "cbor-expires-false",
            "Authenticates; expires_at is false.",
            &with_expires(&[0xf4]),
            "malformed",
        )?,
        authentic_payload(
            "cbor-expires-undefined",
            "Authenticates; expires_at is undefined.",
            &with_expires(&[0xf7]),
            "malformed",
        )?,
        authentic_payload(
            "cbor-expires-tagged",
            "Authenticates; expires_at wrapped in tag 1 (epoch time): no tags in the outer structure.",
            &with_expires(&[&[0xc1, 0x1a][..], &((NOW + 3600) as u32).to_be_bytes()].concat()),
            "malformed",
        )?,
        authentic_payload(
            "cbor-created-at-float",
            "Authenticates; created_at written as a double-precision float.",
            &[
                &[0x85, 0xfb][..],
                &((NOW - 7200) as f64).to_be_bytes(),
                &[0xf6],
                &byte_string(16),
                &[0x00, 0x80],
            ]
            .concat(),
            "malformed",
        )?,
        authentic_payload(
            "cbor-created-at-negative",
            "Authenticates; created_at is the negative integer -1.",
            &with_created_head(0x20, &[]),
            "malformed",
        )?,
        authentic_payload(
            "cbor-flags-negative",
            "Authenticates; the payload flags are the negative integer -1.",
            &[&[0x85][..], &created_head(), &[0xf6], &byte_string(16), &[0x20, 0x80]].concat(),
            "malformed",
        )?,
        authentic_payload(
            "cbor-priority-negative",
            "Authenticates; an entry whose priority is the negative integer -1.",
            &raw_payload(&[0x81, 0x83, 0x61, b'k', 0x20, 0x41, 0x01], None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-non-minimal-head-1-byte",
            "Authenticates; the payload flags 0 written with a 1-byte argument (0x18 0x00) where the head alone suffices.",
            &[&[0x85][..], &created_head(), &[0xf6], &byte_string(16), &[0x18, 0x00, 0x80]].concat(),
            "malformed",
        )?,
        authentic_payload(
            "cbor-non-minimal-head-2-byte",
            "Authenticates; the entries array's count 1 written with a 2-byte argument (0x99 0x00 0x01).",
            &raw_payload(&[&[0x99, 0x00, 0x01][..], ENTRY_K].concat(), None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-non-minimal-head-4-byte",
            "Authenticates; the session id's length 16 written with a 4-byte argument (0x5a 0x00 0x00 0x00 0x10).",
            &[
                &[0x85][..],
                &created_head(),
                &[0xf6, 0x5a, 0x00, 0x00, 0x00, 0x10],
                &[0x11; 16],
                &[0x00, 0x80],
            ]
            .concat(),
            "malformed",
        )?,
        authentic_payload(
            "cbor-indefinite-entries",
            "Authenticates; the entries array has indefinite length (0x9f ... 0xff).",
            &raw_payload(&[&[0x9f][..], ENTRY_K, &[0xff]].concat(), None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-entry-count-beyond-bytes",
            "Authenticates; the entries array declares 200 entries (within max_entries) but 6 bytes follow: refused before anything is allocated for them.",
            &raw_payload(&[&[0x98, 200][..], ENTRY_K].concat(), None),
            "malformed",
        )?,
        authentic_payload(
            "cbor-overflow-reference-15-bytes",
            "Authenticates; an overflow element whose reference is 15 bytes.",
            &raw_payload(&one_entry(), Some(&overflow_element(15, &[b"o"]))),
            "malformed",
        )?,
        authentic_payload(
            "cbor-overflow-key-three-elements",
            "Authenticates; an overflowed key given as [key, priority, 0].",
            &{
                let mut o = vec![0x82];
                o.extend_from_slice(&byte_string(16));
                o.extend_from_slice(&[0x81, 0x83, 0x61, b'o', 0x01, 0x00]);
                raw_payload(&one_entry(), Some(&o))
            },
            "malformed",
        )?,
        authentic_payload(
            "cbor-overflow-duplicate-key",
            "Authenticates; an overflowed key equal to an entry's key (keys are unique across both).",
            &raw_payload(&one_entry(), Some(&overflow_element(16, &[b"k"]))),
            "malformed",
        )?,
        {
            let mut spec = authentic_payload(
                "cbor-overflow-over-entry-limit",
                "Authenticates; 1 entry and 2 overflowed keys against max_entries 2 (entries and overflowed keys share the limit).",
                &raw_payload(&one_entry(), Some(&overflow_element(16, &[b"o", b"p"]))),
                "limit-exceeded",
            )?;
            spec.limits.max_entries = 2;
            spec
        },
        authentic_payload(
            "order-entries-type-before-count",
            "Authenticates; the entries element is a map head declaring 2^32 pairs: its type is checked before its count (§11.4 step 6), so malformed, not limit-exceeded.",
            &raw_payload(&MAP_OF_2_POW_32, None),
            "malformed",
        )?,
        authentic_payload(
            "order-overflow-keys-type-before-count",
            "Authenticates; the overflow element's key list is a map head declaring 2^32 pairs: its type is checked before its count (§11.4 step 8), so malformed, not limit-exceeded.",
            &raw_payload(
                &one_entry(),
                Some(&[&[0x82][..], &byte_string(16), &MAP_OF_2_POW_32].concat()),
            ),
            "malformed",
        )?,
        invalid(
            "base64-length-one-mod-four",
            "A token of 4n+1 characters, which no byte string encodes to.",
            {
                let mut t = base.clone();
                while t.len() % 4 != 1 {
                    t.push('A');
                }
                t
            },
            "malformed",
        ),
        invalid(
            "bad-deflate",
            "Authenticates; compressed flag set but the payload is not raw deflate.",
            seal_with_flag("bad-deflate", NOW - 60, b"\xff\xff\xff\xff not deflate")?,
            "malformed",
        ),
        invalid(
            "deflate-distance-too-far-back",
            "Authenticates; compressed: a stored block of the payload's first 8 bytes, then a fixed-Huffman block whose first match (length 17, distance 100) reaches before the start of the output. Invalid deflate (zlib: \"invalid distance too far back\"); an inflater with a zero-filled window would read 17 zeros there, a valid payload with an all-zero session id.",
            seal_with_flag("deflate-distance-too-far-back", NOW - 60, &distance_too_far_back())?,
            "malformed",
        ),
        invalid(
            "deflate-trailing-bytes",
            "Authenticates; compressed: a valid payload as one final stored block, then one more byte. Trailing data after the final block is malformed (§10); an inflater that stops at the end of the stream would open it.",
            {
                let mut stream = DeflateBits::default();
                stream.stored_block(&raw_payload(&one_entry(), None), true);
                let mut body = stream.bytes;
                body.push(0);
                seal_with_flag("deflate-trailing-bytes", NOW - 60, &body)?
            },
            "malformed",
        ),
        invalid(
            "deflate-no-final-block",
            "Authenticates; compressed: a valid payload as one stored block without the final bit, and nothing after it. The stream ends before its final block: malformed (§10); an inflater that hands back the output so far would open it.",
            {
                let mut stream = DeflateBits::default();
                stream.stored_block(&raw_payload(&one_entry(), None), false);
                seal_with_flag("deflate-no-final-block", NOW - 60, &stream.bytes)?
            },
            "malformed",
        ),
        invalid(
            "deflate-empty-body",
            "Authenticates; compressed flag set on an empty body, issued 3601 seconds ago against max_idle 3600: an empty stream is truncated, malformed (§10), and inflating (step 8) comes before the idle check (step 10).",
            {
                seal_with_flag("deflate-empty-body", NOW - 3601, &[])?
            },
            "malformed",
        ),
    ];
    let mut over_cap = invalid(
        "decompressed-over-limit",
        "The compressed token with max_decompressed one byte below what it inflates to: limit-exceeded.",
        compressed_token,
        "limit-exceeded",
    );
    over_cap.limits.max_decompressed = inflated_len - 1;
    inv.push(over_cap);
    // Rings that must be refused before any token is looked at.
    let short_key = key_a()[..62].to_owned();
    for (name, description, keys) in [
        (
            "ring-short-key",
            "The ring's primary master key has 31 bytes (at least 32 are required): refused as a key, whatever the token.",
            Keys {
                primary: short_key,
                fallbacks: Vec::new(),
            },
        ),
        (
            "ring-short-fallback-key",
            "The ring's fallback master key has 31 bytes: refused like a short primary, though it only opens.",
            Keys {
                primary: key_a(),
                fallbacks: vec![key_b()[..62].to_owned()],
            },
        ),
        (
            "ring-duplicate-key",
            "Key A is both the primary and a fallback: two keys with one key id make lookup ambiguous, so the ring is refused.",
            Keys {
                primary: key_a(),
                fallbacks: vec![key_a()],
            },
        ),
    ] {
        out.push(Vector {
            name: name.to_owned(),
            description: description.to_owned(),
            cookie_name: "session".to_owned(),
            keys,
            now: NOW,
            limits: default_limits(),
            policy: default_policy(),
            plaintext_hex: None,
            token: base.clone(),
            sealing: None,
            expected: None,
            expected_error: Some("invalid-key".to_owned()),
        });
    }
    out.extend(inv.drain(..).map(invalid_vector));
    // Added after the vectors above, which stay as they were published:
    // behaviours the spec requires that no vector above tells apart.
    let added_valid = pinned_valid_vectors(&out)?;
    out.extend(added_valid);
    out.extend(pinned_invalid_vectors()?.into_iter().map(invalid_vector));
    Ok(out)
}

/// The vector of an invalid case, opened with keys A and B.
fn invalid_vector(spec: InvalidSpec) -> Vector {
    let mut v = Vector {
        name: spec.name.to_owned(),
        description: spec.description.to_owned(),
        cookie_name: spec.cookie_name.to_owned(),
        keys: ring_a_b(),
        now: spec.now,
        limits: spec.limits,
        policy: spec.policy,
        plaintext_hex: None,
        token: spec.token,
        sealing: None,
        expected: None,
        expected_error: Some(spec.expected_error.to_owned()),
    };
    v.plaintext_hex = plaintext_hex(&v.keys, &v.cookie_name, &v.token, v.limits.max_decompressed);
    v
}

/// Valid vectors that each fail a reader or writer with one deviation
/// from the spec, which every vector before them lets through. `earlier`
/// is the vectors already built (some are reused).
fn pinned_valid_vectors(earlier: &[Vector]) -> Result<Vec<Vector>, Error> {
    use serde_json::json;
    let mut out = Vec::new();
    // The writer compresses a plaintext of at least T bytes (FORMAT.md §7
    // step 1): with T = len(P) it compresses, with T = len(P) + 1 not.
    let cart = |name, description, threshold| {
        let mut s = ValidSpec::new(name, description);
        s.compression = threshold;
        let lines: Vec<Json> = (0..6)
            .map(|i| json!({"sku": format!("SKU-{:05}", 10_000 + i), "qty": 1}))
            .collect();
        s.entries
            .push(("cart".into(), Priority::Low, Json::Array(lines)));
        s
    };
    for (name, description, above, compressed) in [
        (
            "compression-threshold-equals-length",
            "Compression threshold equal to the plaintext's length: a plaintext of at least T bytes is compressed (FORMAT.md §7 step 1), so flag bit 0 is set. A writer that compresses only above T seals it uncompressed.",
            0,
            true,
        ),
        (
            "compression-threshold-above-length",
            "Compression threshold one byte above the plaintext's length: not compressed, flag bit 0 clear (the other side of compression-threshold-equals-length).",
            1,
            false,
        ),
    ] {
        let plaintext_len = valid_vector(cart(name, description, None))?
            .plaintext_hex
            .map_or(0, |hex| hex.len() / 2);
        let v = valid_vector(cart(name, description, Some(plaintext_len + above)))?;
        assert_eq!(
            v.expected.as_ref().map(|e| e.compressed),
            Some(compressed),
            "{name}"
        );
        out.push(v);
    }
    // The decompression cap bounds inflating only (FORMAT.md §13): an
    // uncompressed plaintext longer than it opens.
    let mut uncompressed = earlier
        .iter()
        .find(|v| v.name == "small-session")
        .cloned()
        .expect("the small-session vector is built above");
    let plaintext_len = uncompressed.plaintext_hex.as_ref().map_or(0, String::len) / 2;
    uncompressed.name = "uncompressed-over-decompressed-limit".into();
    uncompressed.description = format!("The small-session token (uncompressed, its plaintext {plaintext_len} bytes) with max_decompressed {}, one byte less: valid, as the cap bounds inflating only (FORMAT.md §10, §13); a reader that also measures an uncompressed plaintext against it refuses the token. No sealing: a writer under these limits refuses to seal this payload (§7 step 0), and small-session's sealing reproduces the token.", plaintext_len - 1);
    uncompressed.limits.max_decompressed = plaintext_len - 1;
    uncompressed.sealing = None;
    out.push(uncompressed);
    out.push(undecodable_values_vector()?);
    Ok(out)
}

/// A valid token whose entries hold values that do not decode: the token
/// opens (values are decoded only when read, FORMAT.md §11.5), and reading
/// each of those values fails with kind `value`.
fn undecodable_values_vector() -> Result<Vector, Error> {
    let name = "value-not-decodable";
    let session_id: [u8; 16] = derive_array("session-id", name);
    let entries: [(&str, Priority, Vec<u8>); 3] = [
        ("user", Priority::Critical, super::cbor_of("ada")?),
        // One item (1), then a byte more: not exactly one item.
        ("trailing", Priority::Normal, vec![0x01, 0x01]),
        // A break code with no indefinite-length item: not well formed.
        ("break", Priority::Low, vec![0xff]),
    ];
    let mut plaintext = Vec::new();
    let mut writer = crate::payload::PayloadWriter::begin(
        &mut plaintext,
        NOW - 7200,
        None,
        &session_id,
        0,
        entries.len(),
        false,
    );
    for (key, priority, value) in &entries {
        writer.entry(key, *priority, value);
    }
    let v = hand_sealed(
        name,
        "Three entries: user (\"ada\"), trailing (the bytes 01 01: one item and a byte more) and break (the byte ff, a break code outside any indefinite-length item). The token is valid: values are not decoded when opening (FORMAT.md §8, §11.5), so a reader that decodes them then refuses it. Reading trailing or break fails with kind value (value_error), and the session stays open.".to_owned(),
        &plaintext,
    )?;
    let errors: Vec<Option<&str>> = v
        .expected
        .iter()
        .flat_map(|e| &e.entries)
        .map(|e| e.value_error.as_deref())
        .collect();
    assert_eq!(errors, [None, Some("value"), Some("value")], "{name}");
    Ok(v)
}

/// Invalid cases that each fail a reader with one deviation from the
/// spec, which every vector before them lets through.
fn pinned_invalid_vectors() -> Result<Vec<InvalidSpec>, Error> {
    let duplicate_entries = [
        &[0x82][..],
        &[0x83, 0x61, b'a', 0x01, 0x41, 0x01],
        &[0x83, 0x61, b'a', 0x01, 0x41, 0x02],
    ]
    .concat();
    let mut after_walk = authentic_payload(
        "order-overflow-key-count-before-duplicate-key",
        "Authenticates; entries a and a (a duplicate), then an overflow element listing o and p, against max_entries 3: the overflow key count 2 is over max_entries minus the 2 entries (§11.4 step 8, limit-exceeded), met before the duplicate key, which is checked only after the walk (step 10). A reader that checks for duplicates as it meets each key says malformed.",
        &raw_payload(&duplicate_entries, Some(&overflow_element(16, &[b"o", b"p"]))),
        "limit-exceeded",
    )?;
    after_walk.limits.max_entries = 3;
    let bomb = invalid(
        "deflate-bomb-then-invalid-data",
        "Authenticates; compressed: a fixed-Huffman block that produces 258001 zero bytes, then a block of the reserved type 3 (invalid data). The stream produces far more than max_decompressed + 32768 bytes before it turns invalid, so it is limit-exceeded whatever the inflater (§10); a reader that inflates the whole body before measuring it against the cap (a one-shot inflate without an output limit) meets the invalid block first and says malformed.",
        seal_with_flag("deflate-bomb-then-invalid-data", NOW - 60, &bomb_then_invalid())?,
        "limit-exceeded",
    );
    // The description's count, and far beyond the range where either kind
    // is allowed.
    assert_eq!(BOMB_OUTPUT, 258_001);
    assert!(BOMB_OUTPUT > default_limits().max_decompressed + 32_768 * 2);
    Ok(vec![after_walk, bomb])
}

/// Matches of 258 bytes in [`bomb_then_invalid`].
const BOMB_MATCHES: usize = 1000;

/// The bytes [`bomb_then_invalid`] produces before its invalid block.
const BOMB_OUTPUT: usize = 1 + 258 * BOMB_MATCHES;

/// The body of `deflate-bomb-then-invalid-data`: a non-final
/// fixed-Huffman block of [`BOMB_OUTPUT`] zero bytes (a literal, then
/// matches of 258 at distance 1), then a final block of the reserved
/// type 3. It produces far more than the cap plus 32 KiB before it turns
/// invalid: limit-exceeded whatever the inflater (§10).
fn bomb_then_invalid() -> Vec<u8> {
    let mut stream = DeflateBits::default();
    stream.field(0, 1); // not the final block
    stream.field(0b01, 2); // fixed Huffman codes
    stream.literal(0);
    for _ in 0..BOMB_MATCHES {
        stream.code(0xc5, 8); // length code 285: 258 bytes ...
        stream.code(0, 5); // ... at distance code 0: distance 1
    }
    stream.code(0, 7); // end of block
    stream.field(1, 1); // final block ...
    stream.field(0b11, 2); // ... of the reserved type 3: invalid
    stream.bytes
}

/// The entry `["k", 1, h'01']` (CBOR).
const ENTRY_K: &[u8] = &[0x83, 0x61, b'k', 0x01, 0x41, 0x01];

/// A map head declaring 2^32 pairs, with nothing after it.
const MAP_OF_2_POW_32: [u8; 9] = [0xbb, 0, 0, 0, 1, 0, 0, 0, 0];

/// `created_at` two hours before `NOW`, as a CBOR head.
fn created_head() -> Vec<u8> {
    let mut head = vec![0x1a];
    head.extend_from_slice(&u32::try_from(NOW - 7200).unwrap_or(0).to_be_bytes());
    head
}

/// A CBOR byte string of `len` (< 24) bytes of 0x11.
fn byte_string(len: u8) -> Vec<u8> {
    let mut out = vec![0x40 + len];
    out.resize(1 + usize::from(len), 0x11);
    out
}

/// A payload created two hours before `NOW`, without expiry, flags 0, with
/// `entries` (the raw CBOR of the whole element) and, as a 6th element,
/// `overflow`.
fn raw_payload(entries: &[u8], overflow: Option<&[u8]>) -> Vec<u8> {
    let head = if overflow.is_some() { 0x86 } else { 0x85 };
    let mut out = [
        &[head][..],
        &created_head(),
        &[0xf6],
        &byte_string(16),
        &[0x00],
    ]
    .concat();
    out.extend_from_slice(entries);
    out.extend_from_slice(overflow.unwrap_or_default());
    out
}

/// The entries element `[["k", 1, h'01']]`.
fn one_entry() -> Vec<u8> {
    [&[0x81][..], ENTRY_K].concat()
}

/// A payload without entries whose created_at is the head byte `head`
/// followed by `argument` (raw CBOR): no expiry, flags 0.
fn with_created_head(head: u8, argument: &[u8]) -> Vec<u8> {
    [
        &[0x85, head][..],
        argument,
        &[0xf6],
        &byte_string(16),
        &[0x00, 0x80],
    ]
    .concat()
}

/// A payload with the entry `k` whose expires_at is `expires` (raw CBOR).
fn with_expires(expires: &[u8]) -> Vec<u8> {
    with_expires_and_flags(expires, 0)
}

/// As [`with_expires`], with payload flags `flags` (< 24).
fn with_expires_and_flags(expires: &[u8], flags: u8) -> Vec<u8> {
    [
        &[0x85][..],
        &created_head(),
        expires,
        &byte_string(16),
        &[flags, 0x81],
        ENTRY_K,
    ]
    .concat()
}

/// An overflow element: a reference of `reference_len` bytes and the given
/// short keys (under 24 bytes), each with priority 1.
fn overflow_element(reference_len: u8, keys: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![0x82];
    out.extend_from_slice(&byte_string(reference_len));
    out.push(0x80 + keys.len() as u8);
    for key in keys {
        out.extend_from_slice(&[0x82, 0x60 + key.len() as u8]);
        out.extend_from_slice(key);
        out.push(0x01);
    }
    out
}

/// A valid vector whose token was built by hand from `plaintext`, opened
/// with keys A and B at `NOW` under the default limits and policy.
fn hand_built(
    name: &str,
    description: String,
    token: String,
    plaintext: &[u8],
    sealing: Option<Sealing>,
) -> Result<Vector, Error> {
    let mut v = Vector {
        name: name.to_owned(),
        description,
        cookie_name: "session".to_owned(),
        keys: ring_a_b(),
        now: NOW,
        limits: default_limits(),
        policy: default_policy(),
        plaintext_hex: Some(hex::encode(plaintext)),
        token,
        sealing,
        expected: None,
        expected_error: None,
    };
    v.expected = Some(expected_of(&v)?);
    Ok(v)
}

/// A valid token whose payload has the 6th element: one entry in the
/// cookie, two in an overflow blob. Written with the payload writer, as
/// the public API writes one only through a store.
fn overflow_vector() -> Result<Vector, Error> {
    let name = "overflow-reference";
    let (session_id, reference): ([u8; 16], [u8; 16]) = (
        derive_array("session-id", name),
        derive_array("reference", name),
    );
    let plaintext = overflow_cookie_payload(&session_id, &reference)?;
    hand_sealed(
        name,
        "A 6-element payload: the entry user in the cookie; cart (low) and history (normal) in the overflow blob the reference names (their values are not in the token).".to_owned(),
        &plaintext,
    )
}

/// A hand-built payload sealed uncompressed under key A, issued a minute
/// before `NOW`, with the nonce derived from `name`: the token and the
/// `sealing` that reproduces it come from the same figures.
fn hand_sealed(name: &str, description: String, plaintext: &[u8]) -> Result<Vector, Error> {
    let (issued_at, compression) = (NOW - 60, Compression::Off);
    let token = seal_raw(name, &key_a(), issued_at, plaintext, compression)?;
    let sealing = Sealing {
        key: key_a(),
        issued_at,
        nonce: hex::encode(derive("nonce", name, 24)),
        compression_threshold: None,
    };
    hand_built(name, description, token, plaintext, Some(sealing))
}

/// A valid token that no writer produces: its deflate stream (one final
/// fixed-Huffman block of literals) ends inside a byte whose padding bits
/// after the end-of-block code are all ones, which a reader accepts
/// (FORMAT.md §10). No `sealing`: writers pad with zeros.
fn nonzero_padding_vector() -> Result<Vector, Error> {
    let name = "deflate-nonzero-padding";
    let plaintext = raw_payload(&one_entry(), None);
    let mut stream = DeflateBits::default();
    stream.field(1, 1); // final block
    stream.field(0b01, 2); // fixed Huffman codes
    plaintext.iter().for_each(|&byte| stream.literal(byte));
    stream.code(0, 7); // end of block
    let padding = 8 - stream.used;
    assert!(stream.used != 0, "the stream must end inside a byte");
    if let Some(last) = stream.bytes.last_mut() {
        *last |= 0xff << stream.used;
    }
    let token = seal_with_flag(name, NOW - 60, &stream.bytes)?;
    hand_built(
        name,
        format!("Compressed: the payload of entry k as one final fixed-Huffman block of literals, whose last byte has its {padding} padding bits after the end-of-block code set to 1. Valid: a reader must accept any padding (§10). No writer produces it (they write zeros), so it has no sealing."),
        token,
        &plaintext,
        None,
    )
}

/// Raw deflate written field by field (RFC 1951 §3.1.1: fields from the
/// least significant bit, Huffman codes from the most significant), for
/// streams that no encoder writes.
#[derive(Default)]
struct DeflateBits {
    bytes: Vec<u8>,
    /// Bits already used in the last byte (0: start a new byte).
    used: u32,
}

impl DeflateBits {
    fn bit(&mut self, bit: u32) {
        if self.used == 0 {
            self.bytes.push(0);
        }
        if let Some(last) = self.bytes.last_mut() {
            *last |= u8::from(bit & 1 == 1) << self.used;
        }
        self.used = (self.used + 1) % 8;
    }

    fn field(&mut self, value: u32, len: u32) {
        (0..len).for_each(|i| self.bit(value >> i));
    }

    fn code(&mut self, code: u32, len: u32) {
        (0..len).rev().for_each(|i| self.bit(code >> i));
    }

    /// A stored block (at most 65535 bytes): header, padding to a byte,
    /// LEN, NLEN, the bytes.
    fn stored_block(&mut self, data: &[u8], last: bool) {
        self.field(u32::from(last), 1);
        self.field(0b00, 2);
        self.used = 0;
        let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self.bytes.extend_from_slice(&(!len).to_le_bytes());
        self.bytes.extend_from_slice(&data[..usize::from(len)]);
    }

    /// A literal byte in the fixed Huffman code (§3.2.6).
    fn literal(&mut self, byte: u8) {
        match u32::from(byte) {
            b @ 0..=143 => self.code(0x30 + b, 8),
            b => self.code(0x190 + b - 144, 9),
        }
    }
}

/// The body of `deflate-distance-too-far-back`: the payload of entry `k`
/// with an all-zero session id, whose 17 zero bytes (the id and the flags)
/// come from a match reaching 92 bytes before the output's start.
fn distance_too_far_back() -> Vec<u8> {
    let payload = [
        &[0x85][..],
        &created_head(),
        &[0xf6, 0x50],
        &[0; 17], // the session id, then flags 0
        &one_entry(),
    ]
    .concat();
    let mut stream = DeflateBits::default();
    stream.stored_block(&payload[..8], false);
    stream.field(1, 1); // final block
    stream.field(0b01, 2); // fixed Huffman codes
    stream.code(268 - 256, 7); // length code 268 (17 and 18) ...
    stream.field(0, 1); // ... + 0: 17
    stream.code(13, 5); // distance code 13 (97 to 128) ...
    stream.field(3, 5); // ... + 3: 100, with 8 bytes written
    payload[8 + 17..].iter().for_each(|&b| stream.literal(b));
    stream.code(0, 7); // end of block (256)
    stream.bytes
}

/// Seals `body` as it is, with the compressed flag set, under key A and
/// the nonce derived from the vector's `name`: for deflate streams written
/// by hand (or not deflate at all).
fn seal_with_flag(name: &str, issued_at: u64, body: &[u8]) -> Result<String, Error> {
    let ring = KeyRing::new(MasterKey::from_hex(&key_a())?);
    let random = ScriptedRandom::new(vec![derive("nonce", name, 24)]);
    token::seal_flagged(
        &ring,
        "session",
        issued_at,
        body,
        token::FLAG_COMPRESSED,
        &random,
    )
}

fn non_canonical(token: &str) -> String {
    // With a length of 2 or 3 mod 4 the last character carries unused low
    // bits; setting one of them keeps the bytes but breaks canonicity.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut chars = token.as_bytes().to_vec();
    if let Some(last) = chars.last_mut() {
        let index = ALPHABET.iter().position(|c| c == last).unwrap_or(0);
        *last = ALPHABET[index ^ 1];
    }
    String::from_utf8(chars).unwrap_or_default()
}

/// Checks every vector of a parsed file through the public API.
pub fn check(file: &VectorFile) -> Vec<Outcome> {
    file.vectors
        .iter()
        .map(|v| Outcome {
            name: v.name.clone(),
            failure: check_one(v).err(),
        })
        .collect()
}

fn check_one(v: &Vector) -> Result<(), String> {
    let opened = open_vector(v);
    match (&v.expected_error, &v.expected, opened) {
        (Some(kind), _, Err(e)) if e.kind() == kind => Ok(()),
        (Some(kind), _, Err(e)) => Err(format!("expected error {kind}, got {}", e.kind())),
        (Some(kind), _, Ok(_)) => Err(format!("expected error {kind}, but it opened")),
        (None, Some(_), Err(e)) => Err(format!("expected a session, got error {}", e.kind())),
        (None, Some(expected), Ok(session)) => check_valid(v, expected, &session),
        (None, None, _) => Err("vector has neither expected nor expected_error".into()),
    }
}

/// A vector's `expires_at` and `idle_timeout` for a session's own expiry
/// (written by the generator, compared by the checker).
fn expiry_columns(expiry: Expiry) -> (Option<u64>, Option<u64>) {
    match expiry {
        Expiry::At(end) => (Some(end), None),
        Expiry::Idle(window) => (None, Some(window.as_secs())),
        Expiry::Default | Expiry::BrowserSession => (None, None),
    }
}

fn check_valid(v: &Vector, expected: &Expected, session: &crate::Session) -> Result<(), String> {
    let header = token::inspect(&v.token)
        .map_err(|e| e.kind().to_owned())?
        .header;
    let (expires_at, idle_timeout) = expiry_columns(session.expiry());
    let checks = [
        (
            "session_id",
            hex::encode(session.id().as_bytes()) == expected.session_id,
        ),
        ("created_at", session.created_at() == expected.created_at),
        ("issued_at", header.issued_at == expected.issued_at),
        ("expires_at", expires_at == expected.expires_at),
        ("idle_timeout", idle_timeout == expected.idle_timeout),
        (
            "browser_session",
            (session.expiry() == Expiry::BrowserSession) == expected.browser_session,
        ),
        ("compressed", header.is_compressed() == expected.compressed),
        (
            "used_fallback",
            session.opened_with_fallback() == expected.used_fallback,
        ),
        ("refresh_due", session.refresh_due() == expected.refresh_due),
        (
            "entry count",
            session.len()
                == expected.entries.len() + expected.overflow.as_ref().map_or(0, |o| o.keys.len()),
        ),
        ("overflow", overflow_of(session) == expected.overflow),
    ];
    if let Some((field, _)) = checks.iter().find(|(_, ok)| !ok) {
        return Err(format!("{field} differs"));
    }
    let resident = session
        .keys_with_priority()
        .filter(|(key, _)| !session.is_overflowed(key));
    for (want, (key, priority)) in expected.entries.iter().zip(resident) {
        if want.key != key || want.priority != priority.name() {
            return Err(format!("entry {:?} differs in key or priority", want.key));
        }
        let raw = hex::encode(session.get_raw(key).unwrap_or_default());
        if raw != want.value_cbor_hex {
            return Err(format!("entry {:?}: CBOR differs", want.key));
        }
        // A value that does not decode must fail to, with the kind the
        // vector names; the token opened all the same.
        match (&want.value, &want.value_error, session.get::<Json>(key)) {
            (Some(json), None, Ok(value)) if value.as_ref() == Some(json) => {}
            (None, Some(kind), Err(e)) if e.kind() == kind => {}
            (_, _, Ok(_)) => return Err(format!("entry {:?}: value differs", want.key)),
            (_, _, Err(e)) => {
                return Err(format!(
                    "entry {:?}: reading the value gives {}",
                    want.key,
                    e.kind()
                ))
            }
        }
    }
    if let Some(plaintext) = &v.plaintext_hex {
        let decrypted = plaintext_hex(&v.keys, &v.cookie_name, &v.token, v.limits.max_decompressed);
        if decrypted.as_ref() != Some(plaintext) {
            return Err("plaintext differs".into());
        }
    }
    // The other direction: sealing the same session with the same nonce
    // must give the same token, byte for byte. (The public API writes an
    // overflow element only through a store, so for those vectors the
    // writer is pinned by `plaintext_hex` alone.)
    if let (Some(sealing), None) = (&v.sealing, &expected.overflow) {
        let resealed =
            reseal(v, expected, sealing).map_err(|e| format!("re-seal failed: {}", e.kind()))?;
        if resealed != v.token {
            return Err("re-sealing gives a different token".into());
        }
    }
    Ok(())
}

fn reseal(v: &Vector, expected: &Expected, sealing: &Sealing) -> Result<String, Error> {
    let session_id = hex::decode(&expected.session_id).map_err(|_| Error::Random)?;
    let nonce = hex::decode(&sealing.nonce).map_err(|_| Error::Random)?;
    let clock = Arc::new(FixedClock::new(expected.created_at));
    let sealer = sealer_builder(
        KeyRing::new(MasterKey::from_hex(&sealing.key)?),
        &v.cookie_name,
        &v.limits,
        &v.policy,
        sealing
            .compression_threshold
            .map_or(Compression::Off, Compression::Above),
        clock.clone(),
        Arc::new(ScriptedRandom::new(vec![session_id, nonce])),
    )
    .build()?;
    let mut session = sealer.new_session()?;
    for entry in &expected.entries {
        let priority = entry
            .priority
            .parse::<Priority>()
            .map_err(|_| Error::Value(crate::ValueError::Deserialize))?;
        match &entry.value {
            Some(value) => session.insert_with_priority(&entry.key, value, priority)?,
            // A value that does not decode cannot come from JSON: its bytes.
            None => session.insert_raw(
                &entry.key,
                hex::decode(&entry.value_cbor_hex)
                    .map_err(|_| Error::Value(crate::ValueError::Deserialize))?
                    .into_boxed_slice(),
                priority,
            )?,
        }
    }
    session.set_expiry(
        match (
            expected.expires_at,
            expected.idle_timeout,
            expected.browser_session,
        ) {
            (Some(t), _, _) => Expiry::At(t),
            (None, Some(window), _) => Expiry::Idle(Duration::from_secs(window)),
            (None, None, true) => Expiry::BrowserSession,
            (None, None, false) => Expiry::Default,
        },
    );
    clock.set(sealing.issued_at);
    sealer.seal(&mut session)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generator's own check must be able to fail: a reader whose
    /// account of a freshly sealed token differs from the spec in any
    /// field stops the generation, naming the field.
    #[test]
    fn the_generators_self_check_names_each_field_a_reader_gets_wrong() {
        let spec = || {
            ValidSpec::new("self-check", "one entry").entry(
                "user",
                Priority::High,
                serde_json::json!(42),
            )
        };
        let expected = valid_vector(spec()).unwrap().expected.unwrap();
        type Change = fn(&mut Expected);
        let changes: [(&str, Change); 9] = [
            ("session_id", |e| e.session_id = "00".repeat(16)),
            ("created_at", |e| e.created_at += 1),
            ("issued_at", |e| e.issued_at += 1),
            ("expires_at", |e| e.expires_at = Some(NOW + 1)),
            ("idle_timeout", |e| e.idle_timeout = Some(60)),
            ("browser_session", |e| e.browser_session = true),
            ("used_fallback", |e| e.used_fallback = true),
            ("compressed", |e| e.compressed = true),
            ("entries", |e| e.entries[0].priority = "low".into()),
        ];
        for (field, change) in changes {
            let mut wrong = expected.clone();
            change(&mut wrong);
            let panic =
                std::panic::catch_unwind(|| check_against_spec(&spec(), &wrong)).expect_err(field);
            let message = panic.downcast_ref::<String>().expect("a formatted message");
            assert!(
                message.contains(&format!("the reader's {field} is not the spec's")),
                "{message}"
            );
        }
    }

    /// The bomb's stream is what its vector says: an inflater without an
    /// output cap produces exactly its zeros, then meets invalid data
    /// (so it says malformed); ours stops at the cap.
    #[test]
    fn the_bomb_then_invalid_stream_turns_invalid_only_after_its_output() {
        let body = bomb_then_invalid();
        let mut uncapped = flate2::Decompress::new(false);
        let mut out = Vec::with_capacity(BOMB_OUTPUT + 1024);
        let result = uncapped.decompress_vec(&body, &mut out, flate2::FlushDecompress::Finish);
        assert!(result.is_err(), "{result:?}");
        assert_eq!(out.len(), BOMB_OUTPUT);
        assert!(out.iter().all(|&b| b == 0));
        assert_eq!(
            crate::inflate::inflate_capped(&body, BOMB_OUTPUT, crate::inflate::Wrapper::Raw),
            Err(Error::Malformed(crate::error::Malformed::Compression))
        );
        assert_eq!(
            crate::inflate::inflate_capped(&body, 65_536, crate::inflate::Wrapper::Raw),
            Err(Error::LimitExceeded(crate::error::Limit::DecompressedSize))
        );
    }

    /// An entry's `value` field: absent (a value that does not decode) is
    /// `None`, and a JSON null is the value null, both ways.
    #[test]
    fn an_entry_value_of_null_is_not_an_absent_value() {
        let null = r#"{"key":"k","priority":"low","value":null,"value_cbor_hex":"f6"}"#;
        let entry: ExpectedEntry = serde_json::from_str(null).unwrap();
        assert_eq!(entry.value, Some(Json::Null));
        assert_eq!(serde_json::to_string(&entry).unwrap(), null);
        let absent = r#"{"key":"k","priority":"low","value_cbor_hex":"ff","value_error":"value"}"#;
        let entry: ExpectedEntry = serde_json::from_str(absent).unwrap();
        assert_eq!(entry.value, None);
        assert_eq!(entry.value_error.as_deref(), Some("value"));
        assert_eq!(serde_json::to_string(&entry).unwrap(), absent);
    }

    /// The vector tells strict readers from lenient ones: an inflater with
    /// a zero-filled window (flate2's streaming mode) reads a valid payload
    /// out of it, ours refuses it.
    #[test]
    fn the_too_far_back_stream_reads_as_a_payload_through_a_zero_window() {
        let body = distance_too_far_back();
        let mut lenient = flate2::Decompress::new(false);
        let mut out = Vec::with_capacity(1024);
        let status = lenient
            .decompress_vec(&body, &mut out, flate2::FlushDecompress::None)
            .unwrap();
        assert_eq!(status, flate2::Status::StreamEnd);
        assert_eq!(lenient.total_in() as usize, body.len());
        let expected = [
            &[0x85][..],
            &created_head(),
            &[0xf6, 0x50],
            &[0; 17],
            &[0x81],
            ENTRY_K,
        ]
        .concat();
        assert_eq!(out, expected);
        assert!(crate::payload::index(&out, 16).is_ok());
        assert_eq!(
            crate::inflate::inflate_capped(&body, 1024, crate::inflate::Wrapper::Raw),
            Err(Error::Malformed(crate::error::Malformed::Compression))
        );
    }
}
