//! Properties checked by the fuzz targets: one public function per target,
//! taking the raw fuzz input and panicking when a property fails.
//!
//! The main crate's `tests/fuzz_regressions.rs` includes this file as a
//! module and replays the committed regression inputs
//! (`tests/fuzz-regressions/<target>/`) through the same functions, so a
//! plain `cargo test` re-checks everything the fuzzers found interesting.
//!
//! Everything here is deterministic (fixed key, fixed clock, counter-based
//! nonces) so that a crashing input reproduces exactly.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ciborium::Value as Cbor;
use sealed_session::token::{self, Compression, KNOWN_FLAGS, OVERHEAD, VERSION};
use sealed_session::{
    Error, Expiry, FixedClock, KeyRing, Limit, Limits, Malformed, MasterKey, Priority,
    RandomSource, Sealer, Session, KEY_ID_LEN,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The time every sealer here reads.
pub const NOW: u64 = 1_700_000_000;
/// The cookie name of the default sealer.
pub const COOKIE_NAME: &str = "id";
/// Deepest value nesting that opens under `Limits::default()` (arrays, maps
/// and tags each count one level).
pub const MAX_OK_DEPTH: usize = 32;

const MASTER: [u8; 32] = [7; 32];
const OTHER: [u8; 32] = [8; 32];

/// Deterministic and NOT secure: splitmix64 over a counter, so fuzz runs
/// reproduce. Only for tests.
struct Counter(AtomicU64);

impl RandomSource for Counter {
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        for chunk in buf.chunks_mut(8) {
            let mut z = self
                .0
                .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
                .wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

fn counter(seed: u64) -> Arc<Counter> {
    Arc::new(Counter(AtomicU64::new(seed)))
}

fn ring() -> KeyRing {
    KeyRing::new(MasterKey::from_bytes(&MASTER).expect("32-byte key"))
}

fn other_ring() -> KeyRing {
    KeyRing::new(MasterKey::from_bytes(&OTHER).expect("32-byte key"))
}

fn sealer(cookie_name: &str, limits: Limits, compression: Compression, seed: u64) -> Sealer {
    Sealer::builder(ring())
        .cookie_name(cookie_name)
        .limits(limits)
        .compression(compression)
        .clock(Arc::new(FixedClock::new(NOW)))
        .random(counter(seed))
        .build()
        .expect("sealer with a clock and a random source")
}

/// A cookie name from fuzz text: the text itself if it is an RFC 6265
/// token (the sealer refuses other names), else its bytes in hex (the
/// token layer's binding to names of any text is fuzzed by `cookie_header`,
/// which opens under the names a fuzzed `Cookie` header carries); `id`
/// for none.
fn cookie_name(text: String) -> String {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if text.is_empty() {
        COOKIE_NAME.to_owned()
    } else if text.bytes().all(token) {
        text
    } else {
        text.bytes().map(|b| format!("{b:02x}")).collect()
    }
}

/// The sealer of the cookie `id` with the default limits.
pub fn default_sealer() -> &'static Sealer {
    static SEALER: OnceLock<Sealer> = OnceLock::new();
    SEALER.get_or_init(|| sealer(COOKIE_NAME, Limits::default(), Compression::Off, 1))
}

/// A sealer whose token-length limit never trips, for sealing fuzz bytes
/// as authenticated plaintexts.
fn roomy_sealer() -> &'static Sealer {
    static SEALER: OnceLock<Sealer> = OnceLock::new();
    SEALER.get_or_init(|| {
        let limits = Limits::default().with_max_token_len(1 << 20);
        sealer(COOKIE_NAME, limits, Compression::Off, 2)
    })
}

/// The one token the cookie-header target may see open: a session with
/// `user = 42`, sealed by the default sealer's key for the cookie `id`.
pub fn valid_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let sealer = sealer(COOKIE_NAME, Limits::default(), Compression::Off, 3);
        let mut session = sealer.new_session().expect("session");
        session
            .insert_with_priority("user", 42u32, Priority::Critical)
            .expect("insert");
        sealer.seal(&mut session).expect("seal")
    })
}

/// The error opening must give for a token whose decoded bytes are
/// `bytes` and that was not sealed by the ring: everything before
/// authentication is decided by the structure alone.
fn expected_unsealed_error(
    bytes: &[u8],
    text_len: usize,
    ring: &KeyRing,
    limits: &Limits,
) -> Error {
    if text_len > limits.max_token_len() {
        Error::LimitExceeded(Limit::TokenLength)
    } else if bytes.len() < OVERHEAD {
        Error::Malformed(Malformed::Truncated)
    } else if bytes[0] != VERSION {
        Error::Malformed(Malformed::UnknownVersion(bytes[0]))
    } else if bytes[1] & !KNOWN_FLAGS != 0 {
        Error::Malformed(Malformed::UnknownFlags(bytes[1] & !KNOWN_FLAGS))
    } else if bytes[2..2 + KEY_ID_LEN] != ring.primary_id().as_bytes()[..] {
        Error::UnknownKeyId
    } else {
        Error::AuthenticationFailed
    }
}

/// The one token sealed under the default key that text may hold opens;
/// anything else fails before or at authentication.
fn check_unsealed_text(sealer: &Sealer, text: &str) {
    if text == valid_token() {
        let session = sealer.open(text).expect("the valid token opens");
        assert_eq!(session.get::<u32>("user"), Ok(Some(42)));
        return;
    }
    let err = sealer.open(text).expect_err("opened a token nobody sealed");
    assert!(
        matches!(
            err,
            Error::Malformed(_)
                | Error::LimitExceeded(Limit::TokenLength)
                | Error::UnknownKeyId
                | Error::AuthenticationFailed
        ),
        "unexpected error {err:?}"
    );
}

/// Target `open_token`: arbitrary bytes as a token.
///
/// - As text (when UTF-8): never opens unless it is exactly the one valid
///   token (see [`valid_token`]), and fails before or at authentication.
/// - Base64url-encoded, as the token's decoded bytes: fails with exactly
///   the error its structure calls for (length, truncation, version, flags,
///   key id, then authentication), and `inspect` agrees with the bytes.
/// - Sealed as an authenticated plaintext (as is, and, with the `vectors`
///   feature, flagged as compressed, when the capped inflater must agree
///   with a one-shot reference inflate): whatever opens has at most the entry
///   limit, every value read either decodes or fails with a value or depth
///   error, and it re-seals to a token that opens to the same entries.
pub fn open_token(data: &[u8]) {
    let sealer = default_sealer();
    if let Ok(text) = core::str::from_utf8(data) {
        check_unsealed_text(sealer, text);
        // `inspect` stops at the header: it succeeds exactly when opening
        // got as far as the key, and otherwise fails the same way.
        match (sealer.open(text), token::inspect(text)) {
            (Ok(_), Ok(_)) => {}
            (Err(Error::UnknownKeyId | Error::AuthenticationFailed), Ok(_)) => {}
            (Err(opened), Err(inspected)) => assert_eq!(inspected, opened),
            (opened, inspected) => panic!("open {opened:?} but inspect {inspected:?}"),
        }
    }

    let text = URL_SAFE_NO_PAD.encode(data);
    if text == valid_token() {
        check_unsealed_text(sealer, &text);
    } else {
        let expected =
            expected_unsealed_error(data, text.len(), sealer.key_ring(), sealer.limits());
        assert_eq!(sealer.open(&text).unwrap_err(), expected);
        match token::inspect(&text) {
            Ok(info) => {
                assert!(matches!(
                    expected,
                    Error::UnknownKeyId | Error::AuthenticationFailed
                ));
                assert_eq!(info.header.version, VERSION);
                assert_eq!(info.header.flags, data[1]);
                assert_eq!(info.header.key_id.as_bytes()[..], data[2..2 + KEY_ID_LEN]);
                assert_eq!(info.ciphertext_len + OVERHEAD, data.len());
                assert_eq!(info.token_len, text.len());
            }
            Err(err) => assert_eq!(err, expected),
        }
    }

    open_authenticated(data, false);
    #[cfg(feature = "vectors")]
    open_authenticated(data, true);
}

/// Seals `plaintext` under the real key and opens it with a sealer: the
/// parsers behind authentication facing a hostile (key-holding) sealer.
fn open_authenticated(plaintext: &[u8], flag_compressed: bool) {
    let sealer = roomy_sealer();
    let random = Counter(AtomicU64::new(plaintext.len() as u64));
    let token = if flag_compressed {
        #[cfg(feature = "vectors")]
        {
            token::seal_flagged(
                sealer.key_ring(),
                COOKIE_NAME,
                NOW,
                plaintext,
                token::FLAG_COMPRESSED,
                &random,
            )
        }
        #[cfg(not(feature = "vectors"))]
        unreachable!("compressed plaintexts need the vectors feature")
    } else {
        token::seal(
            sealer.key_ring(),
            COOKIE_NAME,
            NOW,
            plaintext,
            Compression::Off,
            &random,
        )
    }
    .expect("seal");

    if flag_compressed {
        let cap = sealer.limits().max_decompressed();
        let opened = token::open(sealer.key_ring(), COOKIE_NAME, &token, sealer.limits());
        match (reference_inflate(plaintext, cap), opened) {
            (Inflated::Whole(expected), Ok(opened)) => {
                assert_eq!(opened.plaintext(), &expected[..])
            }
            (Inflated::Whole(expected), Err(err)) => {
                panic!("a valid {} byte stream failed: {err:?}", expected.len())
            }
            // Both decode nothing ahead of their output, so the order is
            // exact (FORMAT.md §10, "Cap and invalid data together"):
            // invalid within the cap is malformed, past it over the cap.
            (Inflated::Invalid { delivered }, result) => assert_eq!(
                result.map(|_| ()),
                Err(Error::Malformed(Malformed::Compression)),
                "invalid after {delivered} bytes, cap {cap}"
            ),
            (Inflated::OverCap, result) => assert_eq!(
                result.map(|_| ()),
                Err(Error::LimitExceeded(Limit::DecompressedSize))
            ),
        }
    }

    match sealer.open(&token) {
        Ok(mut session) => check_opened(sealer, &mut session),
        Err(err) => assert!(
            matches!(
                err,
                Error::Malformed(Malformed::Payload | Malformed::Compression)
                    | Error::LimitExceeded(Limit::DecompressedSize | Limit::Entries)
                    | Error::Expired(_)
            ),
            "unexpected error {err:?}"
        ),
    }
}

/// What a one-shot inflate of a raw deflate stream gives.
enum Inflated {
    /// A complete stream, nothing after it, at most the cap.
    Whole(Vec<u8>),
    /// Invalid, truncated, or followed by more bytes, after `delivered`
    /// bytes of output (at most the cap).
    Invalid { delivered: usize },
    /// More than the cap came out before the stream ended or failed.
    OverCap,
}

/// The reference for the capped inflater: one call into an output buffer
/// of the cap plus one byte, allocated whole (the library grows its buffer
/// and resumes). The buffer is the whole window, so a back-reference to
/// before the first byte is invalid, as in zlib (FORMAT.md §10).
fn reference_inflate(compressed: &[u8], cap: usize) -> Inflated {
    use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
    use miniz_oxide::inflate::TINFLStatus;
    let mut out = vec![0u8; cap + 1];
    let (status, read, written) = decompress(
        &mut DecompressorOxide::new(),
        compressed,
        &mut out,
        0,
        inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
    );
    if written > cap {
        return Inflated::OverCap;
    }
    match status {
        TINFLStatus::Done if read == compressed.len() => {
            out.truncate(written);
            Inflated::Whole(out)
        }
        _ => Inflated::Invalid { delivered: written },
    }
}

/// What an opened session holds, cookie-resident entries only.
fn resident_entries(session: &Session) -> Vec<(String, Priority, Vec<u8>)> {
    session
        .keys_with_priority()
        .filter_map(|(key, priority)| {
            let raw = session.get_raw(key)?;
            Some((key.to_owned(), priority, raw.to_vec()))
        })
        .collect()
}

fn check_opened(sealer: &Sealer, session: &mut Session) {
    assert!(session.len() <= sealer.limits().max_entries());
    let keys: Vec<String> = session.keys().map(str::to_owned).collect();
    for key in &keys {
        match session.get_raw(key) {
            Some(_) => match session.get::<Cbor>(key) {
                Ok(_) | Err(Error::Value(_)) | Err(Error::LimitExceeded(Limit::Depth)) => {}
                Err(err) => panic!("reading a value failed with {err:?}"),
            },
            None => assert!(matches!(session.get::<Cbor>(key), Err(Error::Store(_)))),
        }
        // Typed reads go through other deserializer paths: each gives a
        // value, or a value or depth error, and a text agrees with the
        // generic read.
        let typed_ok = |result: Result<(), Error>| {
            assert!(
                matches!(
                    result,
                    Ok(())
                        | Err(Error::Value(_))
                        | Err(Error::LimitExceeded(Limit::Depth))
                        | Err(Error::Store(_))
                ),
                "typed read of {key:?} gave {result:?}"
            )
        };
        let text = session.get::<String>(key);
        if let (Ok(Some(text)), Ok(Some(Cbor::Text(generic)))) = (&text, session.get::<Cbor>(key)) {
            assert_eq!(text, &generic);
        }
        typed_ok(text.map(drop));
        typed_ok(session.get::<Vec<u64>>(key).map(drop));
        typed_ok(
            session
                .get::<std::collections::BTreeMap<String, u8>>(key)
                .map(drop),
        );
    }

    // Whatever opens re-seals to a token that opens to the same entries.
    let before = resident_entries(session);
    let (id, created_at, expiry) = (session.id(), session.created_at(), session.expiry());
    let token = sealer.seal(session).expect("re-seal");
    let reopened = sealer.open(&token).expect("re-sealed token opens");
    assert_eq!(resident_entries(&reopened), before);
    assert_eq!(reopened.len(), before.len());
    assert_eq!(reopened.id(), id);
    assert_eq!(reopened.created_at(), created_at);
    assert_eq!(reopened.expiry(), expiry);
}

/// Target `cookie_header`: an arbitrary `Cookie:` header value.
///
/// As raw bytes, through the request API (FORMAT §14.4): only the valid
/// token opens, and it does when it is the first pair named `id`; saving
/// the request's session never fails. Then, when the bytes are UTF-8,
/// split into name=value pairs: each value opens through the default
/// sealer if and only if it is exactly the one valid token, and through
/// the codec only if the name is also the one it was sealed for.
pub fn cookie_header(data: &[u8]) {
    let sealer = default_sealer();
    let valid = valid_token();
    let mut request = sealer
        .open_request([data])
        .expect("no store and no check: only the random id could fail");
    if request.cookie_len().is_some() {
        assert_eq!(request.session().get::<u32>("user"), Ok(Some(42)));
        assert_eq!(request.cookie_len(), Some(valid.len()));
    }
    // The first pair named `id`, its value read as §14.4 says: up to a
    // comma, white space around it and one pair of quotes removed.
    let first = String::from_utf8_lossy(data).split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        let value = value.split(',').next().unwrap_or(value);
        let value = value.trim_matches([' ', '\t']);
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        (name.trim_matches([' ', '\t']) == COOKIE_NAME).then(|| value.to_owned())
    });
    if first.as_deref() == Some(valid) {
        assert!(
            request.cookie_len().is_some(),
            "the first candidate is valid"
        );
    }
    let _ = sealer
        .save_request(&mut request)
        .expect("saving a request's session");

    let Ok(header) = core::str::from_utf8(data) else {
        return;
    };
    for cookie in cookie::Cookie::split_parse(header) {
        let Ok(cookie) = cookie else { continue };
        let is_valid = cookie.value() == valid;
        match sealer.open(cookie.value()) {
            Ok(session) => {
                assert!(is_valid, "opened a value that is not the sealed token");
                assert_eq!(session.get::<u32>("user"), Ok(Some(42)));
            }
            Err(err) => assert!(!is_valid, "the sealed token failed to open: {err:?}"),
        }
        let by_name = token::open(
            sealer.key_ring(),
            cookie.name(),
            cookie.value(),
            sealer.limits(),
        );
        assert_eq!(
            by_name.is_ok(),
            is_valid && cookie.name() == COOKIE_NAME,
            "name binding"
        );
    }
}

/// Reads a fuzz input as a stream of choices; zeros once exhausted.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        let head = self.take(8);
        bytes[..head.len()].copy_from_slice(head);
        u64::from_le_bytes(bytes)
    }

    fn text(&mut self) -> String {
        let len = usize::from(self.byte() % 24);
        String::from_utf8_lossy(self.take(len)).into_owned()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A CBOR value from the input; at most `40 - level` levels deep.
fn value(input: &mut Input<'_>, level: usize) -> Cbor {
    if level >= 40 {
        return Cbor::Null;
    }
    match input.byte() % 11 {
        0 => Cbor::Null,
        1 => Cbor::Bool(input.byte() & 1 == 1),
        2 => Cbor::Integer((input.u64() as i64).into()),
        3 => Cbor::Float(f64::from_bits(input.u64())),
        4 => Cbor::Text(input.text()),
        5 => {
            let len = usize::from(input.byte());
            Cbor::Bytes(input.take(len).to_vec())
        }
        6 => {
            let len = input.byte() % 5;
            Cbor::Array((0..len).map(|_| value(input, level + 1)).collect())
        }
        7 => {
            let len = input.byte() % 4;
            Cbor::Map(
                (0..len)
                    .map(|_| (Cbor::Text(input.text()), value(input, level + 1)))
                    .collect(),
            )
        }
        8 => {
            // Tags 2 and 3 with short byte strings decode as integers.
            let tag = match input.byte() {
                2 | 3 => 4,
                t => u64::from(t),
            };
            Cbor::Tag(tag, Box::new(value(input, level + 1)))
        }
        9 => Cbor::Integer(u64::MAX.into()),
        _ => {
            // A chain of arrays around the depth limit.
            let levels = usize::from(input.byte() % 40).min(40 - level);
            (0..levels).fold(Cbor::Null, |inner, _| Cbor::Array(vec![inner]))
        }
    }
}

/// Nesting depth as the decoder counts it: arrays, maps and tags.
fn depth(value: &Cbor) -> usize {
    match value {
        Cbor::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Cbor::Map(pairs) => {
            1 + pairs
                .iter()
                .map(|(k, v)| depth(k).max(depth(v)))
                .max()
                .unwrap_or(0)
        }
        Cbor::Tag(_, inner) => 1 + depth(inner),
        _ => 0,
    }
}

fn cbor(value: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("CBOR into a Vec");
    out
}

/// Target `roundtrip`: builds a session from the input (cookie name,
/// compression, expiry, entries with priorities and nested values), checks
/// that each insert succeeds or fails exactly as the rules say, seals it
/// and checks that it opens to the same entries, that each value decodes
/// back to itself (one nested deeper than the limit is refused on insert), and that changed,
/// truncated or extended tokens, another cookie name and a ring without the
/// key are all refused; then saves it under a size budget (see
/// `check_budget`).
pub fn roundtrip(data: &[u8]) {
    let mut input = Input(data);
    let mode = input.byte();
    let compression = if mode & 1 == 0 {
        Compression::Off
    } else {
        Compression::Above(usize::from(input.byte()) * 4)
    };
    let expiry = match (mode >> 1) % 4 {
        0 => Expiry::Default,
        1 => Expiry::BrowserSession,
        2 => Expiry::Idle(std::time::Duration::from_secs(input.u64())),
        _ => Expiry::At(NOW + 1 + (input.u64() >> 40)),
    };
    let name = cookie_name(input.text());
    let limits = Limits::default().with_max_entries(16);
    let sealer = sealer(&name, limits, compression, u64::from(mode));

    let mut session = sealer.new_session().expect("new session");
    let mut expected: Vec<(String, Priority, Cbor)> = Vec::new();
    while !input.is_empty() {
        let key = input.text();
        let priority = Priority::from_u8(input.byte() % 4).expect("0..=3");
        let value = value(&mut input, 0);
        let position = expected.iter().position(|(k, _, _)| *k == key);
        let predicted = if key.is_empty() {
            Err(Error::InvalidEntryKey(
                sealed_session::InvalidEntryKey::Empty,
            ))
        } else if key.starts_with('_') {
            Err(Error::InvalidEntryKey(
                sealed_session::InvalidEntryKey::Reserved,
            ))
        } else if depth(&value) > MAX_OK_DEPTH {
            // Refused on insert, as it could not be read back.
            Err(Error::LimitExceeded(Limit::Depth))
        } else if position.is_none() && expected.len() >= limits.max_entries() {
            Err(Error::LimitExceeded(Limit::Entries))
        } else {
            Ok(())
        };
        assert_eq!(
            session.insert_with_priority(&key, &value, priority),
            predicted
        );
        if predicted.is_ok() {
            match position {
                Some(i) => expected[i] = (key, priority, value),
                None => expected.push((key, priority, value)),
            }
        }
    }
    session.set_expiry(expiry);

    let token = match sealer.seal(&mut session) {
        Ok(token) => token,
        Err(Error::LimitExceeded(Limit::TokenLength)) => {
            // Refused because this sealer could not open it: the same
            // session sealed without the limit is indeed too long.
            let roomy = self::sealer(
                &name,
                limits.with_max_token_len(usize::MAX),
                compression,
                u64::from(mode),
            );
            let long = roomy
                .seal(&mut session)
                .expect("seal without a token limit");
            assert!(
                long.len() > limits.max_token_len(),
                "{} refused",
                long.len()
            );
            return;
        }
        Err(e) => panic!("seal: {e:?}"),
    };
    assert!(token.len() <= limits.max_token_len());
    let opened = sealer.open(&token).expect("a sealed session opens");
    assert_eq!(opened.id(), session.id());
    assert_eq!(opened.created_at(), session.created_at());
    assert_eq!(opened.expiry(), expiry);
    let keys: Vec<&str> = opened.keys().collect();
    let expected_keys: Vec<&str> = expected.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(keys, expected_keys);
    for (key, priority, value) in &expected {
        let raw = cbor(value);
        assert_eq!(opened.priority(key), Some(*priority));
        assert_eq!(opened.get_raw(key), Some(&raw[..]));
        // Only values within the depth limit were stored: each reads back.
        match opened.get::<Cbor>(key) {
            Ok(Some(decoded)) => {
                assert_eq!(cbor(&decoded), raw, "value changed in the round trip");
            }
            other => panic!("reading {key:?} (depth {}) gave {other:?}", depth(value)),
        }
    }

    // Anything but the exact token is refused.
    let seed = data.iter().fold(0usize, |h, &b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    });
    let bytes = token.as_bytes();
    for (i, bit) in [
        (seed, seed >> 8),
        (0, seed >> 3),
        (bytes.len() - 1, seed >> 5),
    ] {
        let mut changed = bytes.to_vec();
        changed[i % bytes.len()] ^= 1 << (bit % 8);
        let changed = String::from_utf8_lossy(&changed);
        assert!(sealer.open(&changed).is_err(), "bit flip at {i} opened");
    }
    for cut in [seed % bytes.len(), bytes.len() - 1] {
        assert!(
            sealer.open(&token[..cut]).is_err(),
            "truncation at {cut} opened"
        );
    }
    assert!(
        sealer.open(&format!("{token}A")).is_err(),
        "extended token opened"
    );

    // Bound to the cookie name and to the key.
    let renamed = format!("{name}\u{0}");
    assert_eq!(
        token::open(sealer.key_ring(), &renamed, &token, &limits).unwrap_err(),
        Error::AuthenticationFailed
    );
    assert_eq!(
        token::open(&other_ring(), &name, &token, &limits).unwrap_err(),
        Error::UnknownKeyId
    );
    let rotated = KeyRing::with_fallbacks(
        MasterKey::from_bytes(&OTHER).expect("key"),
        [MasterKey::from_bytes(&MASTER).expect("key")],
    )
    .expect("distinct keys");
    let via_fallback = token::open(&rotated, &name, &token, &limits).expect("fallback opens");
    assert!(via_fallback.used_fallback());

    check_budget(&name, limits, &token, &expected, seed);
}

/// Saving under a size budget: the header fits, only non-critical entries
/// are dropped, lowest priority first, and the cookie sent opens to exactly
/// the entries kept, in order.
fn check_budget(
    name: &str,
    limits: Limits,
    token: &str,
    expected: &[(String, Priority, Cbor)],
    seed: usize,
) {
    let budget = 64 + seed % 2048;
    let built = Sealer::builder(ring())
        .cookie_name(name)
        .limits(limits)
        .budget(budget)
        .clock(Arc::new(FixedClock::new(NOW)))
        .random(counter(seed as u64))
        .build();
    let sealer = match built {
        Ok(sealer) => sealer,
        // Refused only when not even a new empty session's cookie fits.
        Err(Error::TooLarge { needed, budget: b }) => {
            assert_eq!(b, budget);
            assert!(needed > budget, "refused: {needed} <= {budget}");
            // Name, an empty session's token and the attributes.
            assert!(needed < 256 + name.len(), "{needed} for {name:?}");
            return;
        }
        Err(err) => panic!("build failed with {err:?}"),
    };
    let mut session = sealer
        .open(token)
        .expect("opens under the same key and name");
    session.cycle_id().expect("new id");
    let saved = match sealer.save(&mut session) {
        Ok(saved) => saved,
        Err(Error::TooLarge { needed, budget: b }) => {
            assert_eq!(b, budget);
            assert!(needed > budget, "too large: {needed} <= {budget}");
            return;
        }
        Err(err) => panic!("save failed with {err:?}"),
    };
    let report = saved.report;
    let sealed_session::CookieAction::Set(header) = saved.action else {
        panic!("a modified session is sent: {:?}", saved.action);
    };
    assert!(
        report.overflowed.is_empty(),
        "no store, yet entries overflowed"
    );
    assert_eq!(report.budget, budget);
    assert_eq!(report.header_len, "Set-Cookie: ".len() + header.len());
    assert!(
        report.header_len <= budget,
        "{} > {budget}",
        report.header_len
    );
    let dropped = report.dropped_keys();
    assert!(report
        .dropped
        .iter()
        .all(|e| e.priority != Priority::Critical));
    assert!(report
        .dropped
        .windows(2)
        .all(|w| w[0].priority <= w[1].priority));

    let value = header
        .strip_prefix(&format!("{name}="))
        .and_then(|rest| rest.split(';').next())
        .expect("the header starts with the cookie");
    let kept = sealer.open(value).expect("the cookie sent opens");
    let kept_keys: Vec<&str> = kept.keys().collect();
    let expected_keys: Vec<&str> = expected
        .iter()
        .map(|(k, _, _)| k.as_str())
        .filter(|k| !dropped.contains(k))
        .collect();
    assert_eq!(kept_keys, expected_keys);
    for (key, priority, value) in expected
        .iter()
        .filter(|(k, _, _)| !dropped.contains(&k.as_str()))
    {
        assert_eq!(kept.priority(key), Some(*priority));
        assert_eq!(kept.get_raw(key), Some(&cbor(value)[..]));
    }
}

/// The Django secret of the `django` target.
#[cfg(feature = "django")]
pub const DJANGO_SECRET: &str = "django-insecure-fuzz-secret";

#[cfg(feature = "django")]
fn django_codec() -> &'static sealed_session::django::DjangoCodec {
    static CODEC: OnceLock<sealed_session::django::DjangoCodec> = OnceLock::new();
    CODEC.get_or_init(|| {
        sealed_session::django::DjangoCodec::builder(DJANGO_SECRET)
            .clock(Arc::new(FixedClock::new(NOW)))
            .build()
            .expect("codec")
    })
}

/// Signs `payload:timestamp` as Django's `TimestampSigner` does, written
/// here independently of the crate (HMAC-SHA256 under
/// `SHA-256(salt + "signer" + secret)`), to play a Django that holds the key.
#[cfg(feature = "django")]
pub fn django_sign(payload: &str, timestamp: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::{Digest, Sha256};
    let key = Sha256::new()
        .chain_update(sealed_session::django::SESSION_SALT)
        .chain_update("signer")
        .chain_update(DJANGO_SECRET)
        .finalize();
    let signed = format!("{payload}:{timestamp}");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("any key length");
    mac.update(signed.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signed}:{signature}")
}

/// Target `django`: the Django `signed_cookies` reader.
///
/// - Arbitrary text never opens, and fails before or at the signature.
/// - The input as the payload of a correctly signed cookie (base64url, with
///   the compression mark when the first byte is odd): it opens to a JSON
///   object or fails with a base64, zlib, JSON or size error, or, when it
///   has a `_session_expiry` that has passed, as expired; whatever opens
///   is written back and opens to the same object.
#[cfg(feature = "django")]
pub fn django(data: &[u8]) {
    let codec = django_codec();
    if let Ok(text) = core::str::from_utf8(data) {
        let err = codec.open(text).expect_err("opened a cookie nobody signed");
        assert!(
            matches!(
                err,
                Error::Malformed(Malformed::Truncated | Malformed::Timestamp)
                    | Error::LimitExceeded(Limit::TokenLength)
                    | Error::AuthenticationFailed
            ),
            "unexpected error {err:?}"
        );
    }

    let (compressed, body) = match data.split_first() {
        Some((&mode, rest)) => (mode & 1 == 1, rest),
        None => (false, data),
    };
    let mut payload = String::from(if compressed { "." } else { "" });
    URL_SAFE_NO_PAD.encode_string(body, &mut payload);
    // Django's base62 of NOW.
    let cookie = django_sign(&payload, "1r31eq");
    match codec.open_session(&cookie) {
        Ok(session) => {
            assert_eq!(session.timestamp(), NOW as i64);
            assert_eq!(session.was_compressed(), compressed);
            match codec.seal(session.entries()) {
                Ok(written) => assert_eq!(
                    codec.open(&written).as_ref(),
                    Ok(session.entries()),
                    "written back, the session changed"
                ),
                Err(err) => assert!(matches!(err, Error::TooLarge { .. }), "{err:?}"),
            }
        }
        // The session's own `_session_expiry` may have passed (the cookie
        // is signed now): only a payload that has one, and a date or a
        // non-zero number of seconds (zero is "until the browser closes")
        // that, added to now in the codec's arithmetic (f64), does not pass
        // now, can end that way.
        Err(Error::Expired(sealed_session::Expired::Session)) => {
            let expiry =
                django_json(body, compressed).and_then(|json| json.get("_session_expiry").cloned());
            assert!(
                matches!(&expiry, Some(serde_json::Value::String(_)))
                    || expiry
                        .as_ref()
                        .and_then(serde_json::Value::as_f64)
                        .is_some_and(|n| n != 0.0 && NOW as f64 + n <= NOW as f64),
                "expired with _session_expiry {expiry:?}"
            );
        }
        Err(err) => assert!(
            matches!(
                err,
                Error::Malformed(Malformed::Base64 | Malformed::Compression | Malformed::Json)
                    | Error::LimitExceeded(Limit::DecompressedSize | Limit::TokenLength)
            ),
            "unexpected error {err:?}"
        ),
    }
}

/// The JSON of a Django payload, read as Django reads it (zlib when
/// compressed, bytes as Latin-1), if it is an object.
#[cfg(feature = "django")]
fn django_json(
    body: &[u8],
    compressed: bool,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    use std::io::Read as _;
    let data = if compressed {
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(body)
            .take(1 << 20)
            .read_to_end(&mut out)
            .ok()?;
        out
    } else {
        body.to_vec()
    };
    let text: String = data.iter().map(|&b| char::from(b)).collect();
    match serde_json::from_str(&text).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}
