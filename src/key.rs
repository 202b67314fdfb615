//! Master keys, key ids and the key ring.
//!
//! This module and `token` are the only code that touches cryptographic
//! primitives: it derives, with HKDF-SHA256, the XChaCha20-Poly1305 key and
//! the public key id from each master key (the master key itself is never
//! used to encrypt), and its `django_signature` submodule holds Django's
//! HMAC signing for the `django` feature.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use core::fmt;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::error::InvalidKey;
use crate::random::RandomSource;
use crate::Error;

#[cfg(feature = "django")]
pub(crate) mod django_signature;
mod settings;

/// Shortest master key accepted, in bytes.
pub const MIN_MASTER_KEY_LEN: usize = 32;
/// Length of a freshly generated master key, in bytes.
pub const GENERATED_KEY_LEN: usize = 32;
/// Length of a key id, in bytes.
pub const KEY_ID_LEN: usize = 8;

/// HKDF-SHA256 salt for every v1 derivation.
pub(crate) const HKDF_SALT: &[u8] = b"sealed-session/v1";
/// HKDF info for the 32-byte XChaCha20-Poly1305 key.
pub(crate) const INFO_ENCRYPTION_KEY: &[u8] = b"sealed-session/v1 XChaCha20-Poly1305 key";
/// HKDF info for the 8-byte key id.
pub(crate) const INFO_KEY_ID: &[u8] = b"sealed-session/v1 key id";

const _: () = assert!(GENERATED_KEY_LEN >= MIN_MASTER_KEY_LEN);

/// A secret master key: at least 32 bytes, zeroized on drop, never printed.
///
/// ```
/// use sealed_session::MasterKey;
/// let key = MasterKey::generate()?;
/// assert_eq!(format!("{key:?}"), "MasterKey(<redacted>)");
/// let again = MasterKey::from_base64(&key.to_base64())?;
/// assert_eq!(key.key_id(), again.key_id());
/// # Ok::<(), sealed_session::Error>(())
/// ```
pub struct MasterKey(Zeroizing<Vec<u8>>);

impl MasterKey {
    /// Wraps raw key bytes; refuses keys shorter than 32 bytes. The bytes
    /// must be random (from [`MasterKey::generate`], `sealed-session
    /// keygen` or another CSPRNG), not text: 32 characters of a password
    /// have far less than 256 bits of entropy, and this function cannot
    /// tell (SECURITY.md: never derive keys from passwords).
    ///
    /// # Errors
    ///
    /// [`InvalidKey::TooShort`](crate::InvalidKey::TooShort) for fewer than
    /// [`MIN_MASTER_KEY_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < MIN_MASTER_KEY_LEN {
            return Err(Error::InvalidKey(InvalidKey::TooShort));
        }
        Ok(MasterKey(Zeroizing::new(bytes.to_vec())))
    }

    /// Parses base64 (URL-safe or standard alphabet, with or without padding),
    /// as printed by [`MasterKey::to_base64`] and `sealed-session keygen`.
    ///
    /// Text made only of hexadecimal digits (`openssl rand -hex 32`), or
    /// of `0x` and such digits, is
    /// refused with [`InvalidKey::LooksLikeHex`](crate::InvalidKey): it is
    /// also valid base64, of other bytes, so another reader given the same
    /// text as hex would hold a different key. A 32-byte key that
    /// [`MasterKey::to_base64`] prints is all hex digits with a probability
    /// of about 10⁻²⁰.
    ///
    /// Before this check, such text was read as base64: a deployment that
    /// configured a hex key that way has been using its base64 decoding,
    /// and keeps its sessions by passing those bytes to
    /// [`MasterKey::from_bytes`] (or their [`MasterKey::to_base64`] form to
    /// this function) rather than switching to [`MasterKey::from_hex`],
    /// which gives a different key.
    ///
    /// # Errors
    ///
    /// [`InvalidKey::LooksLikeHex`](crate::InvalidKey::LooksLikeHex) for
    /// text made only of hexadecimal digits, after an optional `0x` or
    /// `0X` (unless it is too short as base64 too: then `TooShort`),
    /// [`InvalidKey::Encoding`](crate::InvalidKey::Encoding) for text no
    /// alphabet decodes, and
    /// [`InvalidKey::TooShort`](crate::InvalidKey::TooShort) for fewer than
    /// 32 bytes (empty text included).
    pub fn from_base64(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let digits = strip_hex_prefix(text);
        if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_hexdigit()) {
            // Too short read either way (as hex it is shorter still): say
            // so, rather than point to a "hex:" that would not help.
            let as_base64 = text.len() * 3 / 4;
            return Err(Error::InvalidKey(if as_base64 < MIN_MASTER_KEY_LEN {
                InvalidKey::TooShort
            } else {
                InvalidKey::LooksLikeHex
            }));
        }
        // Decoded into one buffer that is wiped on drop, whichever engine
        // (or none) accepts the text: `Engine::decode` would leave partly
        // decoded key bytes in freed memory after each failed attempt.
        let mut buffer = Zeroizing::new(vec![0u8; base64::decoded_len_estimate(text.len())]);
        let len = [URL_SAFE_NO_PAD, URL_SAFE, STANDARD_NO_PAD, STANDARD]
            .iter()
            .find_map(|engine| engine.decode_slice(text, &mut buffer[..]).ok())
            .ok_or(Error::InvalidKey(InvalidKey::Encoding))?;
        Self::from_bytes(&buffer[..len])
    }

    /// Parses hexadecimal (either case), after an optional `0x` or `0X`.
    ///
    /// # Errors
    ///
    /// [`InvalidKey::Encoding`](crate::InvalidKey::Encoding) for a
    /// character that is not a hex digit or an odd number of digits, and
    /// [`InvalidKey::TooShort`](crate::InvalidKey::TooShort) for fewer than
    /// 32 bytes.
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        let text = strip_hex_prefix(text.trim()).as_bytes();
        let mut bytes = Zeroizing::new(vec![0u8; text.len() / 2]);
        decode_hex(text, &mut bytes).ok_or(Error::InvalidKey(InvalidKey::Encoding))?;
        Self::from_bytes(&bytes)
    }

    /// Generates a new 32-byte key from the operating system's generator.
    ///
    /// # Errors
    ///
    /// [`Error::Random`] if the generator fails.
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    pub fn generate() -> Result<Self, Error> {
        Self::generate_with(&crate::random::OsRandom)
    }

    /// Generates a new 32-byte key from the given random source.
    ///
    /// # Errors
    ///
    /// The source's error ([`Error::Random`] from the crate's sources).
    pub fn generate_with(random: &dyn RandomSource) -> Result<Self, Error> {
        let mut bytes = Zeroizing::new(vec![0u8; GENERATED_KEY_LEN]);
        crate::random::fill_nonzero(random, &mut bytes)?;
        Ok(MasterKey(bytes))
    }

    /// The key as unpadded base64url: the form `keygen` prints and
    /// [`MasterKey::from_base64`] reads. This exposes the secret: store it
    /// like a password.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(URL_SAFE_NO_PAD.encode(&*self.0))
    }

    /// The public key id this key derives (what tokens carry).
    pub fn key_id(&self) -> KeyId {
        DerivedKey::derive(self).id
    }
}

/// The value of one hexadecimal digit, either case.
fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes hexadecimal (either case) into `out`, which `text` must fill
/// exactly (two digits per byte); `None` otherwise.
pub(crate) fn decode_hex(text: &[u8], out: &mut [u8]) -> Option<()> {
    if text.len() != 2 * out.len() {
        return None;
    }
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = hex_digit(pair[0])? << 4 | hex_digit(pair[1])?;
    }
    Some(())
}

/// Appends `bytes` in lower-case hexadecimal.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// The public 8-byte identifier of a master key, carried in every token so
/// that opening picks the key directly.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    /// Wraps 8 raw bytes (as read from a token header).
    pub const fn from_bytes(bytes: [u8; KEY_ID_LEN]) -> Self {
        KeyId(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; KEY_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// The keys derived from one master key. The cipher zeroizes its key on drop
/// (`chacha20poly1305`'s `zeroize` feature; the assertion below keeps it on).
pub(crate) struct DerivedKey {
    pub(crate) id: KeyId,
    pub(crate) cipher: XChaCha20Poly1305,
}

// The long-lived states that hold key material wipe them on drop: the cipher
// (Poly1305's per-message state too, through Cargo.toml's poly1305 line, which
// has no marker to assert), and SHA-256's state, of which HKDF (here) and the
// Django signer's HMAC keep two each (HMAC's types carry no marker, so its
// SHA-256 core is asserted). Temporaries inside those crates are not wiped.
const _: () = {
    const fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    wiped_on_drop::<XChaCha20Poly1305>();
    wiped_on_drop::<Sha256>();
    wiped_on_drop::<<Sha256 as hmac::EagerHash>::Core>();
};

impl DerivedKey {
    fn derive(master: &MasterKey) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), &master.0);
        let mut encryption_key = Zeroizing::new([0u8; 32]);
        let mut id = [0u8; KEY_ID_LEN];
        // Both lengths are far below HKDF-SHA256's 8160-byte output limit.
        hkdf.expand(INFO_ENCRYPTION_KEY, encryption_key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        hkdf.expand(INFO_KEY_ID, &mut id)
            .expect("8 bytes is a valid HKDF-SHA256 output length");
        let cipher = XChaCha20Poly1305::new((&*encryption_key).into());
        encryption_key.zeroize();
        DerivedKey {
            id: KeyId(id),
            cipher,
        }
    }
}

/// One primary key that seals, and fallback keys that still open (like
/// Django's `SECRET_KEY_FALLBACKS`).
///
/// A session opened with a fallback key is flagged so that it gets re-sealed
/// under the primary. Once every cookie the fallback sealed has been
/// re-sealed or has expired (after the idle timeout; without one, after the
/// absolute lifetime), the fallback can be removed.
///
/// A rotation across several servers (SECURITY.md, "Keys") first adds the
/// new key as an *incoming* key ([`KeyRing::with_incoming`]): it opens
/// cookies but never flags them, so servers not yet switched do not re-seal
/// the new key's cookies under the old one.
///
/// ```
/// use sealed_session::{KeyRing, MasterKey};
/// // As the servers read them, from a secret manager or the environment.
/// let old = MasterKey::generate()?.to_base64();
/// let new = MasterKey::generate()?.to_base64();
/// let key = |text: &str| MasterKey::from_base64(text);
/// // Step 1, on every server: the old key seals, the new one opens.
/// let step_one = KeyRing::new(key(&old)?).with_incoming(key(&new)?)?;
/// assert_eq!(step_one.incoming_ids().count(), 1);
/// // Step 2: the new key seals; the old one opens and is re-sealed away from.
/// let step_two = KeyRing::with_fallbacks(key(&new)?, [key(&old)?])?;
/// assert_eq!(step_two.fallback_ids().count(), 1);
/// # Ok::<(), sealed_session::Error>(())
/// ```
pub struct KeyRing {
    /// Boxed, like the fallbacks: the ring is moved by value into the
    /// builder, the sealer and often an `Arc`, and each move of an inline
    /// key would leave an unwiped copy behind.
    primary: Box<DerivedKey>,
    /// Boxed, so that growing the list moves pointers, not key material
    /// (a reallocation frees the old buffer without wiping it).
    #[allow(clippy::vec_box)]
    fallbacks: Vec<Box<DerivedKey>>,
    /// Keys that open without flagging a re-seal (boxed likewise).
    #[allow(clippy::vec_box)]
    incoming: Vec<Box<DerivedKey>>,
}

impl KeyRing {
    /// A ring with only a primary key.
    pub fn new(primary: MasterKey) -> Self {
        KeyRing {
            primary: Box::new(DerivedKey::derive(&primary)),
            fallbacks: Vec::new(),
            incoming: Vec::new(),
        }
    }

    /// A ring with a primary key and fallbacks, tried by key id (never by
    /// trial decryption). Refused if two keys derive the same key id, which
    /// also catches the same key listed twice.
    ///
    /// # Errors
    ///
    /// [`InvalidKey::DuplicateKeyId`](crate::InvalidKey::DuplicateKeyId)
    /// for two keys with one key id.
    pub fn with_fallbacks(
        primary: MasterKey,
        fallbacks: impl IntoIterator<Item = MasterKey>,
    ) -> Result<Self, Error> {
        let mut ring = KeyRing::new(primary);
        for key in fallbacks {
            ring.push_fallback(&key)?;
        }
        Ok(ring)
    }

    /// Adds a fallback key, refused if its id is already in the ring.
    pub(crate) fn push_fallback(&mut self, key: &MasterKey) -> Result<(), Error> {
        let derived = self.derive_new(key)?;
        self.fallbacks.push(derived);
        Ok(())
    }

    /// `key`'s derived key, refused if its id is already in the ring.
    fn derive_new(&self, key: &MasterKey) -> Result<Box<DerivedKey>, Error> {
        let derived = DerivedKey::derive(key);
        match self.find(&derived.id) {
            Some(_) => Err(Error::InvalidKey(InvalidKey::DuplicateKeyId)),
            None => Ok(Box::new(derived)),
        }
    }

    /// Adds a key that opens cookies without flagging them for a re-seal
    /// under the primary: the next primary, during step 1 of a rotation.
    ///
    /// While some servers already seal with the new key and others still
    /// with the old one, a fallback key on the old servers would re-seal
    /// each new-key cookie under the old key, and the new servers would
    /// re-seal it back: a new Set-Cookie (and, with an overflow store, a
    /// new blob) on every response of a client that alternates. Opened with
    /// an incoming key, a session is saved only when it changes or its
    /// refresh is due, like one opened with the primary; such a save
    /// rewrites its overflow blob, if any, under the primary rather than
    /// keep it, so that a rotation rolled back (the key removed) leaves no
    /// cookie whose blob no key opens.
    ///
    /// # Errors
    ///
    /// [`InvalidKey::DuplicateKeyId`](crate::InvalidKey::DuplicateKeyId) if
    /// its key id is already in the ring.
    pub fn with_incoming(mut self, key: MasterKey) -> Result<Self, Error> {
        let derived = self.derive_new(&key)?;
        self.incoming.push(derived);
        Ok(self)
    }

    /// The id of the key that seals.
    pub fn primary_id(&self) -> KeyId {
        self.primary.id
    }

    /// The ids of the fallback keys: they open, and flag what they open
    /// for a re-seal under the primary.
    pub fn fallback_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.fallbacks.iter().map(|k| k.id)
    }

    /// The ids of the incoming keys ([`KeyRing::with_incoming`]): they
    /// open, and flag nothing.
    pub fn incoming_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.incoming.iter().map(|k| k.id)
    }

    pub(crate) fn primary(&self) -> &DerivedKey {
        &self.primary
    }

    /// The key with this id and its role in the ring.
    pub(crate) fn find(&self, id: &KeyId) -> Option<(&DerivedKey, KeyRole)> {
        if self.primary.id == *id {
            return Some((&self.primary, KeyRole::Primary));
        }
        let fallbacks = self.fallbacks.iter().map(|k| (&**k, KeyRole::Fallback));
        let incoming = self.incoming.iter().map(|k| (&**k, KeyRole::Incoming));
        fallbacks.chain(incoming).find(|(k, _)| k.id == *id)
    }
}

/// Which of a ring's keys opened a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRole {
    /// The key that seals.
    Primary,
    /// A retiring key: what it opened is re-sealed under the primary.
    Fallback,
    /// The next primary ([`KeyRing::with_incoming`]): what it opened is
    /// not re-sealed for that alone, but an overflow blob it sealed is not
    /// carried over either (a rotation rolled back removes the key).
    Incoming,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("primary", &self.primary.id)
            .field("fallbacks", &self.fallback_ids().collect::<Vec<_>>())
            .field("incoming", &self.incoming_ids().collect::<Vec<_>>())
            .finish()
    }
}

/// `text` without a leading `0x` or `0X`.
fn strip_hex_prefix(text: &str) -> &str {
    (text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"))).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes(&[byte; 32]).unwrap()
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(
            MasterKey::from_bytes(&[7; 31]).unwrap_err(),
            Error::InvalidKey(InvalidKey::TooShort)
        );
        assert!(MasterKey::from_hex(&"ab".repeat(31)).is_err());
        assert!(MasterKey::from_hex(&"ab".repeat(32)).is_ok());
    }

    #[test]
    fn debug_output_contains_no_key_bytes() {
        let secret = [0x5a; 32];
        let master = MasterKey::from_bytes(&secret).unwrap();
        let mut printed = format!("{master:?}");
        printed += &format!("{:?}", KeyRing::new(master));
        assert!(printed.contains("<redacted>"));
        for needle in ["5a5a", "90, 90", "WlpaWlpa"] {
            assert!(!printed.contains(needle), "{printed}");
        }
    }

    #[test]
    fn encodings_agree() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let from_hex = MasterKey::from_hex(hex).unwrap();
        let from_b64 = MasterKey::from_base64(&from_hex.to_base64()).unwrap();
        assert_eq!(from_hex.key_id(), from_b64.key_id());
        assert_eq!(
            from_hex.key_id(),
            MasterKey::from_hex(&hex.to_uppercase()).unwrap().key_id()
        );
        // Every alphabet and padding variant of the same bytes, of several
        // lengths (the decode buffer is sized from the text).
        for len in [32, 33, 34, 35, 64] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 250) as u8).collect();
            let want = MasterKey::from_bytes(&bytes).unwrap().key_id();
            for engine in [URL_SAFE_NO_PAD, URL_SAFE, STANDARD_NO_PAD, STANDARD] {
                let text = engine.encode(&bytes);
                assert_eq!(
                    MasterKey::from_base64(&text).unwrap().key_id(),
                    want,
                    "{text}"
                );
            }
        }
        assert!(MasterKey::from_hex("zz").is_err());
        assert!(MasterKey::from_base64("not base64!").is_err());
        // Hex text is refused as base64 (it would decode to other bytes).
        assert!(matches!(
            MasterKey::from_base64(hex),
            Err(Error::InvalidKey(InvalidKey::LooksLikeHex))
        ));
        assert!(matches!(
            MasterKey::from_base64(&hex.to_uppercase()),
            Err(Error::InvalidKey(InvalidKey::LooksLikeHex))
        ));
        // So is hex after `0x` (which hex reads as the same key): ending
        // in `A`, it is canonical base64 too.
        let plain = MasterKey::from_hex(hex).unwrap().key_id();
        assert_eq!(
            MasterKey::from_hex(&format!("0x{hex}")).unwrap().key_id(),
            plain
        );
        assert_eq!(
            MasterKey::from_hex(&format!(" 0X{hex}\n"))
                .unwrap()
                .key_id(),
            plain
        );
        let ends_in_a = format!("{}A", &hex[..hex.len() - 1]);
        for prefixed in [format!("0x{ends_in_a}"), format!("0X{ends_in_a}")] {
            assert_eq!(
                MasterKey::from_base64(&prefixed).unwrap_err(),
                Error::InvalidKey(InvalidKey::LooksLikeHex),
                "{prefixed}"
            );
        }
        // Hex digits too few for a key as base64 (42 characters give 31
        // bytes, 43 give 32) are too short, whichever way they are read.
        let digits = "0123456789abcdef".repeat(3);
        for (len, expected) in [
            (3, InvalidKey::TooShort),
            (42, InvalidKey::TooShort),
            (43, InvalidKey::LooksLikeHex),
        ] {
            assert_eq!(
                MasterKey::from_base64(&digits[..len]).unwrap_err(),
                Error::InvalidKey(expected),
                "{len} digits"
            );
        }
    }

    #[test]
    fn key_ids_differ_per_key_and_duplicates_are_refused() {
        assert_ne!(key(1).key_id(), key(2).key_id());
        let err = KeyRing::with_fallbacks(key(1), [key(2), key(1)]).unwrap_err();
        assert_eq!(err, Error::InvalidKey(InvalidKey::DuplicateKeyId));
        let ring = KeyRing::with_fallbacks(key(1), [key(2)]).unwrap();
        assert_eq!(ring.find(&key(1).key_id()).unwrap().1, KeyRole::Primary);
        assert_eq!(ring.find(&key(2).key_id()).unwrap().1, KeyRole::Fallback);
        assert!(ring.find(&key(3).key_id()).is_none());
    }

    #[test]
    fn incoming_keys_open_without_flagging_and_are_not_duplicates() {
        let ring = KeyRing::with_fallbacks(key(1), [key(2)])
            .unwrap()
            .with_incoming(key(3))
            .unwrap();
        let (found, role) = ring.find(&key(3).key_id()).unwrap();
        assert_eq!(found.id, key(3).key_id());
        assert_eq!(role, KeyRole::Incoming);
        assert_eq!(ring.incoming_ids().collect::<Vec<_>>(), [key(3).key_id()]);
        assert_eq!(ring.fallback_ids().collect::<Vec<_>>(), [key(2).key_id()]);
        for taken in [1, 2, 3] {
            let again = KeyRing::with_fallbacks(key(1), [key(2)])
                .unwrap()
                .with_incoming(key(3))
                .unwrap()
                .with_incoming(key(taken));
            assert_eq!(
                again.unwrap_err(),
                Error::InvalidKey(InvalidKey::DuplicateKeyId),
                "{taken}"
            );
        }
        let printed = format!("{ring:?}");
        assert!(printed.contains("incoming: [KeyId("), "{printed}");
    }

    /// Key ids print as 16 lower-case hex digits, and the ring's `Debug`
    /// and `fallback_ids` show the ids (and only them).
    #[test]
    fn key_ids_print_as_hex_and_the_ring_lists_them() {
        let id = KeyId::from_bytes([0x00, 0x01, 0x0a, 0x7f, 0x80, 0xab, 0xfe, 0xff]);
        assert_eq!(id.to_string(), "00010a7f80abfeff");
        assert_eq!(format!("{id:?}"), "KeyId(00010a7f80abfeff)");
        let ring = KeyRing::with_fallbacks(key(1), [key(2), key(3)])
            .unwrap()
            .with_incoming(key(4))
            .unwrap();
        assert_eq!(
            ring.fallback_ids().collect::<Vec<_>>(),
            [key(2).key_id(), key(3).key_id()]
        );
        assert_eq!(
            format!("{ring:?}"),
            format!(
                "KeyRing {{ primary: KeyId({}), fallbacks: [KeyId({}), KeyId({})], incoming: [KeyId({})] }}",
                key(1).key_id(),
                key(2).key_id(),
                key(3).key_id(),
                key(4).key_id()
            )
        );
    }
}
