//! The v1 token: framing, XChaCha20-Poly1305 sealing, compression.
//!
//! This is, with `key.rs`, the only file that touches the AEAD. Layout (see
//! `docs/FORMAT.md`):
//!
//! ```text
//! version(1) | flags(1) | key id(8) | issued-at(8, big-endian) | nonce(24) | ciphertext | tag(16)
//! ```
//!
//! The first 18 bytes are the header. The associated data is the header
//! followed by the cookie name, length-prefixed with a 4-byte big-endian
//! count, so a token only opens under the name it was sealed for.
//!
//! Opening runs, in order: length limit → strict base64url → structure →
//! key lookup → authentication → decompression (capped) → hand-off of the
//! plaintext. Nothing is decompressed or decoded before it is authenticated.

use base64_simd::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{Tag, XNonce};
use core::ops::Range;
use flate2::{Compress, Compression as Level, FlushCompress, Status};
use std::cell::RefCell;

use crate::error::{Limit, Malformed};
use crate::inflate::{inflate_capped, Wrapper};
use crate::key::{KeyId, KeyRing, KeyRole, KEY_ID_LEN};
use crate::random::RandomSource;
use crate::{Error, Limits};

/// The only version this crate writes and reads.
pub const VERSION: u8 = 1;
/// Flag bit: the plaintext was raw-deflate compressed before sealing.
pub const FLAG_COMPRESSED: u8 = 0b0000_0001;
/// Every flag bit version 1 defines.
pub const KNOWN_FLAGS: u8 = FLAG_COMPRESSED;
/// Bytes of the authenticated header: version, flags, key id, issued-at.
pub const HEADER_LEN: usize = 1 + 1 + KEY_ID_LEN + 8;
/// Bytes of the XChaCha20 nonce.
pub const NONCE_LEN: usize = 24;
/// Bytes of the Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Where the ciphertext starts in the decoded token.
pub const CIPHERTEXT_OFFSET: usize = HEADER_LEN + NONCE_LEN;
/// Bytes a token adds to its (possibly compressed) plaintext before base64.
pub const OVERHEAD: usize = CIPHERTEXT_OFFSET + TAG_LEN;

const _: () = assert!(HEADER_LEN == 18);
const _: () = assert!(OVERHEAD == 58);

/// When to compress the plaintext.
///
/// Compression is off by default: compressing secrets next to data an
/// attacker controls, then encrypting, leaks information through the length
/// (see SECURITY.md). When on, it applies only to plaintexts of at least the
/// threshold, and only if the result is smaller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Never compress.
    #[default]
    Off,
    /// Compress plaintexts of at least this many bytes when that makes them smaller.
    Above(usize),
}

/// The authenticated header of a token. Readable without a key (by
/// [`inspect`]), but only trustworthy once the token has been opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenHeader {
    /// Format version (1).
    pub version: u8,
    /// Flag bits; see [`FLAG_COMPRESSED`].
    pub flags: u8,
    /// Id of the key that sealed the token.
    pub key_id: KeyId,
    /// When the token was sealed, in Unix seconds.
    pub issued_at: u64,
}

impl TokenHeader {
    /// Whether the payload was compressed.
    pub fn is_compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }

    fn write(&self, out: &mut [u8]) {
        out[0] = self.version;
        out[1] = self.flags;
        out[2..2 + KEY_ID_LEN].copy_from_slice(self.key_id.as_bytes());
        out[2 + KEY_ID_LEN..HEADER_LEN].copy_from_slice(&self.issued_at.to_be_bytes());
    }

    /// Parses the header of a decoded token, rejecting unknown versions and
    /// flag bits.
    fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < OVERHEAD {
            return Err(Error::Malformed(Malformed::Truncated));
        }
        let version = bytes[0];
        if version != VERSION {
            return Err(Error::Malformed(Malformed::UnknownVersion(version)));
        }
        let flags = bytes[1];
        if flags & !KNOWN_FLAGS != 0 {
            return Err(Error::Malformed(Malformed::UnknownFlags(
                flags & !KNOWN_FLAGS,
            )));
        }
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(&bytes[2..2 + KEY_ID_LEN]);
        let mut issued_at = [0u8; 8];
        issued_at.copy_from_slice(&bytes[2 + KEY_ID_LEN..HEADER_LEN]);
        Ok(TokenHeader {
            version,
            flags,
            key_id: KeyId::from_bytes(key_id),
            issued_at: u64::from_be_bytes(issued_at),
        })
    }
}

/// What [`inspect`] can tell about a token without a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenInfo {
    /// The (unauthenticated) header.
    pub header: TokenHeader,
    /// Length of the token text in bytes (characters, for a valid token:
    /// it is ASCII).
    pub token_len: usize,
    /// Length of the ciphertext (without nonce and tag) in bytes.
    pub ciphertext_len: usize,
}

/// Reads the header of a token without a key, under the default
/// [`Limits`] (tokens of at most 4096 bytes). Nothing here is
/// authenticated.
///
/// # Errors
///
/// As [`inspect_with_limits`].
///
/// ```
/// use sealed_session::token::inspect;
/// assert!(inspect("not a token").is_err());
/// ```
pub fn inspect(token: &str) -> Result<TokenInfo, Error> {
    inspect_with_limits(token, &Limits::default())
}

/// As [`inspect`], for tokens of up to `limits`' token length: pass the
/// [`Sealer::limits`](crate::Sealer::limits) of the sealer the token is
/// meant for when it raises them (as for overflow blobs, or cookies past
/// the browsers' 4096 bytes).
///
/// # Errors
///
/// [`Error::LimitExceeded`] ([`Limit::TokenLength`]) over the length
/// limit, then [`Error::Malformed`]: [`Malformed::Base64`] (not strict
/// unpadded base64url), [`Malformed::Truncated`],
/// [`Malformed::UnknownVersion`] or [`Malformed::UnknownFlags`].
///
/// ```
/// use sealed_session::token::{inspect, inspect_with_limits};
/// use sealed_session::{Error, Limit, Limits, Malformed};
/// // 5,000 base64 characters of zero bytes: too long by default; under a
/// // raised limit it is read, and its version (0) is unknown.
/// let long = "A".repeat(5000);
/// assert_eq!(inspect(&long), Err(Error::LimitExceeded(Limit::TokenLength)));
/// let raised = Limits::default().with_max_token_len(8192);
/// assert_eq!(
///     inspect_with_limits(&long, &raised),
///     Err(Error::Malformed(Malformed::UnknownVersion(0)))
/// );
/// ```
pub fn inspect_with_limits(token: &str, limits: &Limits) -> Result<TokenInfo, Error> {
    let bytes = decode_base64(token, limits)?;
    let header = TokenHeader::parse(&bytes)?;
    Ok(TokenInfo {
        header,
        token_len: token.len(),
        ciphertext_len: bytes.len() - OVERHEAD,
    })
}

/// A token that opened: its header, plaintext and which key opened it.
pub struct Opened {
    header: TokenHeader,
    buffer: Vec<u8>,
    plaintext: Range<usize>,
    role: KeyRole,
}

/// The plaintext is the session's contents: only its length is shown.
impl core::fmt::Debug for Opened {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Opened")
            .field("header", &self.header)
            .field("plaintext_len", &self.plaintext.len())
            .field("role", &self.role)
            .finish()
    }
}

impl Opened {
    /// The authenticated header.
    pub fn header(&self) -> &TokenHeader {
        &self.header
    }

    /// The decrypted (and decompressed) plaintext.
    pub fn plaintext(&self) -> &[u8] {
        &self.buffer[self.plaintext.clone()]
    }

    /// Whether a fallback key opened it (it should be re-sealed under the primary).
    pub fn used_fallback(&self) -> bool {
        self.role == KeyRole::Fallback
    }

    pub(crate) fn into_parts(self) -> (TokenHeader, Vec<u8>, Range<usize>, KeyRole) {
        (self.header, self.buffer, self.plaintext, self.role)
    }
}

/// Seals `plaintext` for `cookie_name` under the ring's primary key: the
/// low-level codec under [`Sealer`](crate::Sealer), for tools and other formats.
///
/// # Errors
///
/// The random source's error ([`Error::Random`] from the crate's sources)
/// for the nonce, and [`Error::LimitExceeded`] ([`Limit::DecompressedSize`])
/// for a plaintext over 256 GiB, which the cipher cannot seal. No other
/// limit applies.
///
/// ```
/// use sealed_session::{token, KeyRing, Limits, MasterKey, OsRandom};
/// let ring = KeyRing::new(MasterKey::generate()?);
/// let sealed = token::seal(&ring, "id", 1_700_000_000, b"hello", token::Compression::Off, &OsRandom)?;
/// let opened = token::open(&ring, "id", &sealed, &Limits::default())?;
/// assert_eq!(opened.plaintext(), b"hello");
/// assert!(token::open(&ring, "other", &sealed, &Limits::default()).is_err());
/// # Ok::<(), sealed_session::Error>(())
/// ```
pub fn seal(
    ring: &KeyRing,
    cookie_name: &str,
    issued_at: u64,
    plaintext: &[u8],
    compression: Compression,
    random: &dyn RandomSource,
) -> Result<String, Error> {
    let buffer = framed(plaintext);
    seal_buffer(ring, cookie_name, issued_at, buffer, compression, random)
}

/// A token buffer with room for header and nonce, then `plaintext`, with
/// capacity for the tag.
fn framed(plaintext: &[u8]) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(OVERHEAD + plaintext.len());
    buffer.resize(CIPHERTEXT_OFFSET, 0);
    buffer.extend_from_slice(plaintext);
    buffer
}

/// Seals `plaintext` as is with the given header flags, even ones that do
/// not match it: only for building invalid test vectors.
#[cfg(feature = "vectors")]
#[doc(hidden)]
pub fn seal_flagged(
    ring: &KeyRing,
    cookie_name: &str,
    issued_at: u64,
    plaintext: &[u8],
    flags: u8,
    random: &dyn RandomSource,
) -> Result<String, Error> {
    seal_with_flags(
        ring,
        cookie_name,
        issued_at,
        framed(plaintext),
        flags,
        random,
    )
}

/// Seals a buffer whose plaintext starts at [`CIPHERTEXT_OFFSET`] (the bytes
/// before it are overwritten). Lets the payload encoder write in place, so
/// a seal costs one buffer and one string.
pub(crate) fn seal_buffer(
    ring: &KeyRing,
    cookie_name: &str,
    issued_at: u64,
    mut buffer: Vec<u8>,
    compression: Compression,
    random: &dyn RandomSource,
) -> Result<String, Error> {
    debug_assert!(buffer.len() >= CIPHERTEXT_OFFSET);
    let mut flags = 0;
    if let Compression::Above(threshold) = compression {
        let plaintext_len = buffer.len() - CIPHERTEXT_OFFSET;
        if plaintext_len >= threshold {
            if let Some(compressed) = deflate_if_smaller(&buffer[CIPHERTEXT_OFFSET..]) {
                buffer = compressed;
                flags |= FLAG_COMPRESSED;
            }
        }
    }
    seal_with_flags(ring, cookie_name, issued_at, buffer, flags, random)
}

fn seal_with_flags(
    ring: &KeyRing,
    cookie_name: &str,
    issued_at: u64,
    mut buffer: Vec<u8>,
    flags: u8,
    random: &dyn RandomSource,
) -> Result<String, Error> {
    let key = ring.primary();
    let header = TokenHeader {
        version: VERSION,
        flags,
        key_id: key.id,
        issued_at,
    };
    header.write(&mut buffer[..HEADER_LEN]);
    crate::random::fill_nonzero(random, &mut buffer[HEADER_LEN..CIPHERTEXT_OFFSET])?;
    let nonce = XNonce::try_from(&buffer[HEADER_LEN..CIPHERTEXT_OFFSET])
        .expect("the nonce field is NONCE_LEN bytes");
    let (head, plaintext) = buffer.split_at_mut(CIPHERTEXT_OFFSET);
    let tag = with_associated_data(&head[..HEADER_LEN], cookie_name, |aad| {
        key.cipher
            .encrypt_inout_detached(&nonce, aad, plaintext.into())
    })
    // Only fails for plaintexts over 256 GiB.
    .map_err(|_| Error::LimitExceeded(Limit::DecompressedSize))?;
    buffer.extend_from_slice(&tag);
    Ok(URL_SAFE_NO_PAD.encode_to_string(&buffer))
}

/// Opens a token sealed for `cookie_name` by any key of the ring.
///
/// Checks no time limit: that is [`Sealer::open`](crate::Sealer::open)'s job.
///
/// # Errors
///
/// Those of [`inspect_with_limits`], then [`Error::UnknownKeyId`],
/// [`Error::AuthenticationFailed`], and for a compressed token
/// [`Malformed::Compression`] or [`Limit::DecompressedSize`] past
/// `limits`' cap.
pub fn open(
    ring: &KeyRing,
    cookie_name: &str,
    token: &str,
    limits: &Limits,
) -> Result<Opened, Error> {
    let mut buffer = decode_base64(token, limits)?;
    let header = TokenHeader::parse(&buffer)?;
    let (key, role) = ring.find(&header.key_id).ok_or(Error::UnknownKeyId)?;

    let tag_start = buffer.len() - TAG_LEN;
    let (head, rest) = buffer.split_at_mut(CIPHERTEXT_OFFSET);
    let (ciphertext, tag) = rest.split_at_mut(tag_start - CIPHERTEXT_OFFSET);
    let nonce =
        <&XNonce>::try_from(&head[HEADER_LEN..]).expect("the nonce field is NONCE_LEN bytes");
    let tag = <&Tag>::try_from(&*tag).expect("the tag is TAG_LEN bytes");
    with_associated_data(&head[..HEADER_LEN], cookie_name, |aad| {
        key.cipher
            .decrypt_inout_detached(nonce, aad, ciphertext.into(), tag)
    })
    .map_err(|_| Error::AuthenticationFailed)?;

    if header.is_compressed() {
        let plaintext = inflate_capped(
            &buffer[CIPHERTEXT_OFFSET..tag_start],
            limits.max_decompressed(),
            Wrapper::Raw,
        )?;
        let len = plaintext.len();
        return Ok(Opened {
            header,
            buffer: plaintext,
            plaintext: 0..len,
            role,
        });
    }
    Ok(Opened {
        header,
        buffer,
        plaintext: CIPHERTEXT_OFFSET..tag_start,
        role,
    })
}

/// Strict unpadded base64url, after the length limit.
fn decode_base64(token: &str, limits: &Limits) -> Result<Vec<u8>, Error> {
    if token.len() > limits.max_token_len() {
        return Err(Error::LimitExceeded(Limit::TokenLength));
    }
    // The engine rejects padding, whitespace, foreign characters and
    // non-canonical trailing bits, exactly as the `base64` crate's strict
    // engine does (see the test below); it is SIMD-accelerated, because the
    // scalar codec headed the profile outside the cipher (BENCHMARKS.md,
    // "What changed").
    URL_SAFE_NO_PAD
        .decode_to_vec(token)
        .map_err(|_| Error::Malformed(Malformed::Base64))
}

/// Runs `f` with `header || u32be(len(name)) || name`, on the stack for
/// ordinary cookie names.
fn with_associated_data<T>(header: &[u8], cookie_name: &str, f: impl FnOnce(&[u8]) -> T) -> T {
    const STACK: usize = 256;
    let name = cookie_name.as_bytes();
    let len = HEADER_LEN + 4 + name.len();
    let fill = |out: &mut [u8]| {
        out[..HEADER_LEN].copy_from_slice(header);
        // Cookie names longer than 4 GiB cannot exist; saturate rather than wrap.
        let name_len = u32::try_from(name.len()).unwrap_or(u32::MAX);
        out[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&name_len.to_be_bytes());
        out[HEADER_LEN + 4..].copy_from_slice(name);
    };
    if len <= STACK {
        let mut aad = [0u8; STACK];
        fill(&mut aad[..len]);
        f(&aad[..len])
    } else {
        let mut aad = vec![0u8; len];
        fill(&mut aad);
        f(&aad)
    }
}

thread_local! {
    // The deflate state is large (hundreds of KiB) and costly to set up:
    // keep one per thread and reset it instead of allocating per seal.
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Level::default(), false));
}

/// Compresses `plaintext` into a new buffer that keeps room for the header
/// and nonce, or returns `None` if the result is not smaller.
fn deflate_if_smaller(plaintext: &[u8]) -> Option<Vec<u8>> {
    if plaintext.is_empty() {
        return None;
    }
    COMPRESSOR.with(|cell| {
        let mut compressor = cell.borrow_mut();
        // `compress_vec` writes only into spare capacity, so the capacity is
        // the bound: a stream that does not end inside it is not smaller.
        // The same capacity then holds the tag without reallocating.
        let mut out = Vec::with_capacity(OVERHEAD + plaintext.len() - 1);
        out.resize(CIPHERTEXT_OFFSET, 0);
        let status = compressor.compress_vec(plaintext, &mut out, FlushCompress::Finish);
        // Reset now rather than before the next use: the reset zeroes the
        // window, which holds this plaintext, so the thread-local state
        // does not keep the last session until the thread's next seal.
        compressor.reset();
        match status {
            Ok(Status::StreamEnd) if out.len() - CIPHERTEXT_OFFSET < plaintext.len() => Some(out),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;

    use crate::random::CountingRandom;

    fn ring() -> KeyRing {
        KeyRing::new(MasterKey::from_bytes(&[9; 32]).unwrap())
    }

    #[test]
    fn round_trip_and_name_binding() {
        let rng = CountingRandom::default();
        let token = seal(&ring(), "a", 5, b"payload", Compression::Off, &rng).unwrap();
        let opened = open(&ring(), "a", &token, &Limits::default()).unwrap();
        assert_eq!(opened.plaintext(), b"payload");
        assert_eq!(opened.header().issued_at, 5);
        assert!(!opened.used_fallback());
        assert_eq!(
            open(&ring(), "b", &token, &Limits::default()).unwrap_err(),
            Error::AuthenticationFailed
        );
    }

    #[test]
    fn an_opened_tokens_debug_shows_its_header_and_not_its_plaintext() {
        let rng = CountingRandom::default();
        let token = seal(&ring(), "a", 5, b"secret-payload", Compression::Off, &rng).unwrap();
        let opened = open(&ring(), "a", &token, &Limits::default()).unwrap();
        let shown = format!("{opened:?}");
        assert!(
            shown.starts_with("Opened { header: TokenHeader {"),
            "{shown}"
        );
        assert!(shown.contains("issued_at: 5"), "{shown}");
        assert!(shown.contains("plaintext_len: 14"), "{shown}");
        assert!(shown.contains("role: Primary"), "{shown}");
        assert!(
            !shown.contains("secret") && !shown.contains("115, 101"),
            "{shown}"
        );
    }

    #[test]
    fn fresh_nonce_per_seal() {
        let rng = CountingRandom::default();
        let a = seal(&ring(), "a", 5, b"same", Compression::Off, &rng).unwrap();
        let b = seal(&ring(), "a", 5, b"same", Compression::Off, &rng).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn compression_only_when_smaller() {
        let rng = CountingRandom::default();
        let text = vec![b'x'; 2000];
        let token = seal(&ring(), "a", 5, &text, Compression::Above(100), &rng).unwrap();
        assert!(inspect(&token).unwrap().header.is_compressed());
        assert!(token.len() < 200);
        assert_eq!(
            open(&ring(), "a", &token, &Limits::default())
                .unwrap()
                .plaintext(),
            &text[..]
        );

        let mut random = vec![0u8; 500];
        crate::OsRandom.fill(&mut random).unwrap();
        let token = seal(&ring(), "a", 5, &random, Compression::Above(100), &rng).unwrap();
        assert!(!inspect(&token).unwrap().header.is_compressed());

        let small = seal(&ring(), "a", 5, &text[..50], Compression::Above(100), &rng).unwrap();
        assert!(!inspect(&small).unwrap().header.is_compressed());
    }

    /// Any saving compresses, however small, and none does not: a deflate
    /// stream as long as the plaintext is not used.
    #[test]
    fn compression_when_smaller_by_any_bytes_and_not_when_as_long() {
        let rng = CountingRandom::default();
        let deflated_len = |text: &[u8]| {
            let mut out = Vec::with_capacity(2 * text.len() + 64);
            let mut fresh = Compress::new(Level::default(), false);
            let status = fresh.compress_vec(text, &mut out, FlushCompress::Finish);
            assert_eq!(status.unwrap(), Status::StreamEnd);
            out.len()
        };
        let texts: [&[u8]; 5] = [
            b"aaaaa",
            b"ababab",
            b"xxxxxy",
            b"{\"user\":\"ada\",\"cart\":[1,2,3],\"user2\":\"ada\"}",
            b"{\"theme\":\"dark\",\"lang\":\"fr\",\"theme2\":\"dark\"}",
        ];
        let (mut as_long, mut a_little_smaller) = (0, 0);
        for text in texts {
            let deflated = deflated_len(text);
            as_long += usize::from(deflated == text.len());
            // Saving less than the header and nonce: a comparison that
            // counted them in would not compress.
            let saving = text.len().saturating_sub(deflated);
            a_little_smaller += usize::from(saving > 0 && saving < CIPHERTEXT_OFFSET);
            let token = seal(&ring(), "a", 5, text, Compression::Above(0), &rng).unwrap();
            let info = inspect(&token).unwrap();
            let text_shown = String::from_utf8_lossy(text);
            assert_eq!(
                info.header.is_compressed(),
                deflated < text.len(),
                "{text_shown}"
            );
            assert_eq!(
                info.ciphertext_len,
                deflated.min(text.len()),
                "{text_shown}"
            );
            let opened = open(&ring(), "a", &token, &Limits::default()).unwrap();
            assert_eq!(opened.plaintext(), text);
        }
        // The cases this test is for are among the texts.
        assert!(
            as_long > 0 && a_little_smaller > 0,
            "{as_long} {a_little_smaller}"
        );
    }

    #[test]
    fn inflation_is_capped() {
        let rng = CountingRandom::default();
        let text = vec![0u8; 100_000];
        let token = seal(&ring(), "a", 5, &text, Compression::Above(1), &rng).unwrap();
        let limits = Limits::default()
            .with_max_token_len(10_000)
            .with_max_decompressed(99_999);
        assert_eq!(
            open(&ring(), "a", &token, &limits).unwrap_err(),
            Error::LimitExceeded(Limit::DecompressedSize)
        );
        let limits = limits.with_max_decompressed(100_000);
        assert_eq!(
            open(&ring(), "a", &token, &limits)
                .unwrap()
                .plaintext()
                .len(),
            100_000
        );
    }

    #[test]
    fn base64_engine_is_as_strict_as_the_base64_crate() {
        use base64::Engine as _;
        let reference = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        // Every string of up to five symbols over canonical, non-canonical,
        // padding, foreign, whitespace and non-ASCII characters.
        let symbols = ["A", "B", "Q", "g", "w", "-", "_", "=", "+", "/", " ", "é"];
        let mut level = vec![String::new()];
        let mut strings = level.clone();
        for _ in 0..5 {
            level = level
                .iter()
                .flat_map(|prefix| symbols.iter().map(move |c| format!("{prefix}{c}")))
                .collect();
            strings.extend(level.iter().cloned());
        }
        for text in &strings {
            assert_eq!(
                URL_SAFE_NO_PAD.decode_to_vec(text).ok(),
                reference.decode(text).ok(),
                "{text:?}"
            );
        }
        // Both directions on every length and byte position of real data.
        let data: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for len in 0..=data.len() {
            for start in [0, 1, 2] {
                let bytes = &data[start.min(len)..len];
                let text = URL_SAFE_NO_PAD.encode_to_string(bytes);
                assert_eq!(text, reference.encode(bytes));
                assert_eq!(URL_SAFE_NO_PAD.decode_to_vec(&text).unwrap(), bytes);
            }
        }
    }

    #[test]
    fn strict_base64_and_structure() {
        let limits = Limits::default();
        assert_eq!(
            open(&ring(), "a", "AAAA=", &limits).unwrap_err(),
            Error::Malformed(Malformed::Base64)
        );
        assert_eq!(
            open(&ring(), "a", "AA AA", &limits).unwrap_err(),
            Error::Malformed(Malformed::Base64)
        );
        assert_eq!(
            open(&ring(), "a", "AAAA", &limits).unwrap_err(),
            Error::Malformed(Malformed::Truncated)
        );
        let long = "A".repeat(limits.max_token_len() + 1);
        assert_eq!(
            open(&ring(), "a", &long, &limits).unwrap_err(),
            Error::LimitExceeded(Limit::TokenLength)
        );
    }
}
