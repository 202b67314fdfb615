//! Ending a user's sessions when their password changes, without a
//! revocation store: Django's session auth hash.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::payload::Priority;
use crate::{Error, Session};

/// Bytes of the digest kept in the session.
const DIGEST_LEN: usize = 16;

/// The entry's CBOR: a byte string of [`DIGEST_LEN`] bytes, a digest of
/// `auth_hash` (so that a password hash given as it is never sits in a
/// cookie, even sealed). Not keyed: the cookie is encrypted, and a
/// digest of a password hash helps no one log in.
fn stored_form(auth_hash: &[u8]) -> [u8; 1 + DIGEST_LEN] {
    let digest = Sha256::new()
        .chain_update(b"sealed-session auth hash v1\0")
        .chain_update(auth_hash)
        .finalize();
    let mut stored = [0u8; 1 + DIGEST_LEN];
    // CBOR major type 2 (byte string), length 16 in the head.
    stored[0] = 0x40 | DIGEST_LEN as u8;
    stored[1..].copy_from_slice(&digest[..DIGEST_LEN]);
    stored
}

impl Session {
    /// Stores, under `key`, a digest of `auth_hash`: whatever changes when
    /// the user's credentials do (the password hash, a counter of
    /// password changes), as Django's `get_session_auth_hash`. Call it at
    /// login, after [`Session::cycle_id`] (or [`Session::flush`] when
    /// another user was logged in), and again after a password change in
    /// this session (Django's `update_session_auth_hash`). The entry is
    /// critical: the budget never drops it.
    ///
    /// Then [`Session::verify_auth_hash`] on each request ends every
    /// other copy of the session once the credentials change, with no
    /// server-side store: the cookie's digest no longer matches.
    ///
    /// # Errors
    ///
    /// As [`Session::insert_with_priority`] (a reserved or empty key, the
    /// entry limit).
    pub fn set_auth_hash(&mut self, key: &str, auth_hash: &[u8]) -> Result<(), Error> {
        crate::session::check_key(key)?;
        let stored = stored_form(auth_hash);
        self.insert_raw(key, Box::new(stored), Priority::Critical)
    }

    /// Whether the digest stored under `key` by [`Session::set_auth_hash`]
    /// matches `current`, the user's auth hash now. When it does not, or
    /// none is stored (a session from before the application set one),
    /// the session is flushed ([`Session::flush`]: the user is logged out,
    /// and the response deletes the cookie) and the answer is `false`, as
    /// Django's `get_user`. Call it on each request, after loading the
    /// user the session names; the comparison takes the same time
    /// wherever the digests differ.
    ///
    /// ```
    /// use sealed_session::{KeyRing, MasterKey, Priority, Sealer};
    /// let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?)).build()?;
    /// let mut session = sealer.new_session()?;
    /// session.insert_with_priority("user_id", 42u64, Priority::Critical)?;
    /// session.set_auth_hash("auth", b"password hash, version 1")?;
    /// let cookie = sealer.seal(&mut session)?;
    ///
    /// // A later request, before the password changes: still logged in.
    /// let mut later = sealer.open(&cookie)?;
    /// assert!(later.verify_auth_hash("auth", b"password hash, version 1")?);
    /// // After it changes, every copy of the old cookie logs out.
    /// let mut stolen = sealer.open(&cookie)?;
    /// assert!(!stolen.verify_auth_hash("auth", b"password hash, version 2")?);
    /// assert!(stolen.is_flushed() && stolen.is_empty());
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Random`] if the flush cannot draw a new id (the session is
    /// then left unchanged).
    pub fn verify_auth_hash(&mut self, key: &str, current: &[u8]) -> Result<bool, Error> {
        let expected = stored_form(current);
        // `ct_eq` on slices of different lengths is false.
        let matches = self
            .get_raw(key)
            .is_some_and(|stored| bool::from(stored.ct_eq(&expected[..])));
        if !matches {
            self.flush()?;
        }
        Ok(matches)
    }
}

#[cfg(test)]
mod tests {
    use super::stored_form;

    #[test]
    fn the_stored_form_is_a_cbor_byte_string_of_the_digest() {
        let stored = stored_form(b"hash");
        let value: ciborium::Value = ciborium::de::from_reader(&stored[..]).unwrap();
        let bytes = value.as_bytes().expect("a byte string");
        assert_eq!(bytes.len(), 16);
        assert_ne!(stored_form(b"hash"), stored_form(b"hasH"));
    }
}
