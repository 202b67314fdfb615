//! Keys as configuration holds them: the text form of one key, and a key
//! ring from environment variables or a host's own secret bindings.

use core::str::FromStr;

use zeroize::Zeroizing;

use super::{KeyRing, MasterKey};
use crate::error::InvalidKey;
use crate::Error;

/// Reads a key as configuration holds it: base64 as
/// [`MasterKey::from_base64`] reads it (`sealed-session keygen` prints
/// unpadded base64url), or hexadecimal prefixed by `hex:` (`openssl rand
/// -hex 32`), surrounding whitespace ignored. The CLI and
/// [`KeyRing::from_env`] read keys by this rule; the prefix keeps a hex key
/// from being read, by one reader or another, as the base64 of other bytes.
///
/// ```
/// use sealed_session::{Error, InvalidKey, MasterKey};
/// let key = MasterKey::generate()?;
/// let again: MasterKey = key.to_base64().parse()?;
/// assert_eq!(again.key_id(), key.key_id());
/// let hex = "hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// assert!(hex.parse::<MasterKey>().is_ok());
/// let bare = &hex[4..];
/// assert_eq!(
///     bare.parse::<MasterKey>().unwrap_err(),
///     Error::InvalidKey(InvalidKey::LooksLikeHex)
/// );
/// # Ok::<(), Error>(())
/// ```
impl FromStr for MasterKey {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        match text.strip_prefix("hex:") {
            Some(hex) => MasterKey::from_hex(hex),
            None => MasterKey::from_base64(text),
        }
    }
}

/// The variables of a ring under `prefix`, and what each holds.
struct Names {
    primary: String,
    fallbacks: String,
    incoming: String,
}

impl Names {
    fn new(prefix: &str) -> Self {
        Names {
            primary: format!("{prefix}_KEY"),
            fallbacks: format!("{prefix}_FALLBACK_KEYS"),
            incoming: format!("{prefix}_INCOMING_KEY"),
        }
    }
}

/// A setting's value, read by `lookup`; an empty one counts as unset, as
/// a shell's `VAR=` or a blank line in an env file means none.
type Lookup<'a> = dyn FnMut(&str) -> Result<Option<Zeroizing<String>>, InvalidKey> + 'a;

fn read(lookup: &mut Lookup<'_>, name: &str) -> Result<Option<Zeroizing<String>>, Error> {
    let value = lookup(name).map_err(|reason| invalid(name, None, reason))?;
    Ok(value.filter(|text| !text.trim().is_empty()))
}

/// An environment variable's value as text; one that is not UTF-8 is no
/// key in any form this reads.
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
fn env_text(value: Option<std::ffi::OsString>) -> Result<Option<Zeroizing<String>>, InvalidKey> {
    match value.map(std::ffi::OsString::into_string) {
        None => Ok(None),
        Some(Ok(text)) => Ok(Some(Zeroizing::new(text))),
        Some(Err(_)) => Err(InvalidKey::Encoding),
    }
}

fn invalid(setting: &str, item: Option<usize>, reason: InvalidKey) -> Error {
    Error::InvalidKeySetting {
        setting: setting.to_owned(),
        item,
        reason,
    }
}

fn reason(error: Error) -> InvalidKey {
    match error {
        Error::InvalidKey(reason) => reason,
        // Parsing and adding a key fail only with `InvalidKey`.
        _ => InvalidKey::Encoding,
    }
}

impl KeyRing {
    /// A ring from the environment: the primary key from `{prefix}_KEY`
    /// (required), retired keys from `{prefix}_FALLBACK_KEYS`
    /// (comma-separated; what they open is re-sealed under the primary)
    /// and the next primary from `{prefix}_INCOMING_KEY` (see
    /// [`KeyRing::with_incoming`]), each key read as [`MasterKey`]'s
    /// `FromStr` reads it. An empty variable counts as unset. A rotation
    /// (SECURITY.md, "Keys") is then a change of variables: set
    /// `_INCOMING_KEY` everywhere; move it to `_KEY` and the old key to
    /// `_FALLBACK_KEYS`; later unset `_FALLBACK_KEYS`.
    ///
    /// The CLI's `open` builds its ring with [`KeyRing::from_env_with`]
    /// over the variables `KeyRing::from_env("SEALED_SESSION")` reads
    /// (its `--key` in place of `SEALED_SESSION_KEY`). Never fall back to a random key when the variable is unset:
    /// every instance and every restart must use the same key.
    ///
    /// ```
    /// use sealed_session::{Error, InvalidKey, KeyRing, MasterKey};
    /// # let (new, old) = (MasterKey::generate()?, MasterKey::generate()?);
    /// # std::env::set_var("DOC_SESSION_KEY", &*new.to_base64());
    /// # std::env::set_var("DOC_SESSION_FALLBACK_KEYS", format!("{}, ", &*old.to_base64()));
    /// // DOC_SESSION_KEY=<new key>  DOC_SESSION_FALLBACK_KEYS=<old key>
    /// let ring = KeyRing::from_env("DOC_SESSION")?;
    /// assert_eq!(ring.fallback_ids().count(), 1);
    /// assert_eq!(ring.incoming_ids().count(), 0);
    /// // Errors name the variable, never its value.
    /// let missing = KeyRing::from_env("DOC_UNSET").unwrap_err();
    /// assert_eq!(
    ///     missing.to_string(),
    ///     "invalid key in DOC_UNSET_KEY: not set (generate one with `sealed-session keygen`)"
    /// );
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKeySetting`], naming the variable (and which item of
    /// the fallback list): [`InvalidKey::Missing`] when `{prefix}_KEY` is
    /// unset or empty, [`InvalidKey::Encoding`] for a value that is not
    /// UTF-8, or any error of reading a key or of
    /// [`KeyRing::with_fallbacks`].
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    pub fn from_env(prefix: &str) -> Result<Self, Error> {
        Self::read_settings(prefix, &mut |name| env_text(std::env::var_os(name)))
    }

    /// As [`KeyRing::from_env`], with the variables' values from `lookup`
    /// instead of the process environment: an edge host's secret bindings
    /// (which `wasm32-unknown-unknown` has no environment for), a secrets
    /// manager, a test. `lookup` gets each variable's name and returns its
    /// value, if set; the values are wiped from memory once read.
    ///
    /// ```
    /// use sealed_session::{Error, KeyRing, MasterKey};
    /// let key = MasterKey::generate()?;
    /// let secrets = [("SESSION_KEY", key.to_base64().to_string())];
    /// let ring = KeyRing::from_env_with("SESSION", |name| {
    ///     secrets.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
    /// })?;
    /// assert_eq!(ring.primary_id(), key.key_id());
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`KeyRing::from_env`].
    pub fn from_env_with(
        prefix: &str,
        mut lookup: impl FnMut(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        Self::read_settings(prefix, &mut |name| Ok(lookup(name).map(Zeroizing::new)))
    }

    fn read_settings(prefix: &str, lookup: &mut Lookup<'_>) -> Result<Self, Error> {
        let names = Names::new(prefix);
        let primary = read(lookup, &names.primary)?
            .ok_or_else(|| invalid(&names.primary, None, InvalidKey::Missing))?;
        let primary: MasterKey = primary
            .parse()
            .map_err(|e| invalid(&names.primary, None, reason(e)))?;
        let mut ring = KeyRing::new(primary);
        if let Some(list) = read(lookup, &names.fallbacks)? {
            // Numbered by position, empty fields counted, as a reader
            // counts the commas.
            let items = list
                .split(',')
                .map(str::trim)
                .enumerate()
                .filter(|(_, item)| !item.is_empty());
            for (index, item) in items {
                let fail = |e| invalid(&names.fallbacks, Some(index + 1), reason(e));
                let key: MasterKey = item.parse().map_err(fail)?;
                ring.push_fallback(&key).map_err(fail)?;
            }
        }
        if let Some(text) = read(lookup, &names.incoming)? {
            let fail = |e| invalid(&names.incoming, None, reason(e));
            let key: MasterKey = text.parse().map_err(fail)?;
            ring = ring.with_incoming(key).map_err(fail)?;
        }
        Ok(ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes(&[byte; 32]).unwrap()
    }

    fn text(byte: u8) -> String {
        key(byte).to_base64().to_string()
    }

    /// A ring from `settings`, recording the names asked for.
    fn ring(settings: &[(&str, &str)]) -> (Result<KeyRing, Error>, Vec<String>) {
        let mut asked = Vec::new();
        let ring = KeyRing::from_env_with("APP", |name| {
            asked.push(name.to_owned());
            let value = settings.iter().find(|(n, _)| *n == name);
            value.map(|(_, v)| (*v).to_owned())
        });
        (ring, asked)
    }

    fn refused(setting: &str, item: Option<usize>, reason: InvalidKey) -> Error {
        Error::InvalidKeySetting {
            setting: setting.to_owned(),
            item,
            reason,
        }
    }

    #[test]
    fn a_ring_reads_its_three_settings() {
        let hex = "hex:0303030303030303030303030303030303030303030303030303030303030303";
        let fallbacks = format!(" {} ,, {hex},", text(2));
        let (ring, asked) = ring(&[
            ("APP_KEY", &format!("  {}\n", text(1))),
            ("APP_FALLBACK_KEYS", &fallbacks),
            ("APP_INCOMING_KEY", &text(4)),
        ]);
        let ring = ring.unwrap();
        assert_eq!(asked, ["APP_KEY", "APP_FALLBACK_KEYS", "APP_INCOMING_KEY"]);
        assert_eq!(ring.primary_id(), key(1).key_id());
        let fallbacks: Vec<_> = ring.fallback_ids().collect();
        assert_eq!(fallbacks, [key(2).key_id(), key(3).key_id()]);
        let incoming: Vec<_> = ring.incoming_ids().collect();
        assert_eq!(incoming, [key(4).key_id()]);
        // The optional ones unset or blank.
        let (ring, _) =
            ring_of_primary_and(&[("APP_FALLBACK_KEYS", " "), ("APP_INCOMING_KEY", "")]);
        let ring = ring.unwrap();
        assert_eq!(ring.fallback_ids().count() + ring.incoming_ids().count(), 0);
    }

    fn ring_of_primary_and(more: &[(&str, &str)]) -> (Result<KeyRing, Error>, Vec<String>) {
        let primary = text(1);
        let mut settings = vec![("APP_KEY", primary.as_str())];
        settings.extend_from_slice(more);
        ring(&settings)
    }

    #[test]
    fn a_bad_setting_is_named_and_its_value_never_shown() {
        for blank in [None, Some(""), Some(" \n")] {
            let settings: Vec<_> = blank.map(|v| ("APP_KEY", v)).into_iter().collect();
            let error = ring(&settings).0.unwrap_err();
            assert_eq!(error, refused("APP_KEY", None, InvalidKey::Missing));
            assert_eq!(error.kind(), "invalid-key");
        }
        let bare_hex = "03".repeat(32);
        let error = ring(&[("APP_KEY", &bare_hex)]).0.unwrap_err();
        assert_eq!(error, refused("APP_KEY", None, InvalidKey::LooksLikeHex));
        let list = format!("{},,{}!", text(2), text(3));
        let error = ring_of_primary_and(&[("APP_FALLBACK_KEYS", &list)])
            .0
            .unwrap_err();
        assert_eq!(
            error,
            refused("APP_FALLBACK_KEYS", Some(3), InvalidKey::Encoding)
        );
        let shown = error.to_string();
        assert_eq!(
            shown,
            "invalid key in APP_FALLBACK_KEYS (item 3): not valid base64 or hex"
        );
        assert!(!shown.contains(&text(3)[..8]), "{shown}");
        // A key twice: the later setting is named.
        let error = ring_of_primary_and(&[("APP_FALLBACK_KEYS", &text(1))])
            .0
            .unwrap_err();
        let duplicate = refused("APP_FALLBACK_KEYS", Some(1), InvalidKey::DuplicateKeyId);
        assert_eq!(error, duplicate);
        let settings = [
            ("APP_FALLBACK_KEYS", text(2)),
            ("APP_INCOMING_KEY", text(2)),
        ];
        let settings: Vec<_> = settings.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let error = ring_of_primary_and(&settings).0.unwrap_err();
        let duplicate = refused("APP_INCOMING_KEY", None, InvalidKey::DuplicateKeyId);
        assert_eq!(error, duplicate);
        let short = ring(&[("APP_KEY", "hex:00")]).0.unwrap_err();
        assert_eq!(short, refused("APP_KEY", None, InvalidKey::TooShort));
    }

    /// A variable that is not UTF-8 is refused by name; the others are
    /// read as set.
    #[cfg(unix)]
    #[test]
    fn a_variable_that_is_not_utf8_is_named() {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt;
        let not_utf8 = || Some(OsString::from_vec(vec![b'k', 0xff, b'y']));
        assert_eq!(env_text(not_utf8()), Err(InvalidKey::Encoding));
        assert_eq!(env_text(None), Ok(None));
        let read = env_text(Some(OsString::from(text(1)))).unwrap().unwrap();
        assert_eq!(read.as_str(), text(1));
        let error = KeyRing::read_settings("APP", &mut |name| match name {
            "APP_KEY" => env_text(Some(OsString::from(text(1)))),
            "APP_FALLBACK_KEYS" => env_text(not_utf8()),
            _ => env_text(None),
        })
        .unwrap_err();
        assert_eq!(
            error,
            refused("APP_FALLBACK_KEYS", None, InvalidKey::Encoding)
        );
    }
}
