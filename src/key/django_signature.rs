//! Django's signing construction, beside the crate's own key derivation so
//! that every HMAC and hash-based key lives under `key`: `salted_hmac` with
//! SHA-256, as Django's `Signer.signature` calls it.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Length of an unpadded base64url HMAC-SHA256: 32 bytes → 43 characters.
pub(crate) const ENCODED_LEN: usize = 43;
const _: () = assert!(ENCODED_LEN == (32usize * 8).div_ceil(6));

/// A derived signing key: `SHA-256(salt + "signer" + secret)`, as
/// `salted_hmac(salt + "signer", value, secret, algorithm="sha256")`
/// derives it.
pub(crate) struct DerivedKey(Zeroizing<[u8; 32]>);

impl DerivedKey {
    pub(crate) fn derive(salt: &str, secret: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(salt.as_bytes());
        hasher.update(b"signer");
        hasher.update(secret);
        // Straight into the wiped buffer: no copy of ours (sha2 keeps one
        // temporary it does not wipe; SECURITY.md).
        let mut key = Zeroizing::new([0u8; 32]);
        hasher.finalize_into((&mut *key).into());
        DerivedKey(key)
    }

    /// The signature of `value`, as Django writes it (unpadded base64url).
    pub(crate) fn sign(&self, value: &[u8]) -> String {
        use base64::Engine;
        // HMAC accepts keys of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(value);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Whether `signature` is the signature of `value`, compared in
    /// constant time (like Django's `constant_time_compare`).
    pub(crate) fn verify(&self, value: &[u8], signature: &[u8]) -> bool {
        self.sign(value).as_bytes().ct_eq(signature).into()
    }
}
