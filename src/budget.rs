//! Fitting a session into the `Set-Cookie` budget by priority.
//!
//! Drop order (documented in `docs/FORMAT.md` and pinned by
//! `test-vectors/budget-v1.json`): entries that may be dropped (every
//! priority but critical) are ordered by priority, lowest first; within one
//! priority the largest encoded entry goes first (fewest entries lost), and
//! equal sizes go in descending byte order of the key. Entries are taken
//! off in that order until the header fits; nothing else is ever removed.

use core::cmp::Reverse;
use core::fmt;

use crate::payload::Priority;

/// What happened to the entries of a session on save.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SaveReport {
    /// Entries left out of the cookie and lost, in drop order: first any
    /// that a read found gone from the overflow store since the last save
    /// (size 0), then those this save dropped. Entries a failed save had
    /// already taken out of the session (to keep an overflow blob within
    /// [`Limits::max_decompressed`](crate::Limits::max_decompressed), or
    /// overflowed entries it could not carry) are reported by the next save
    /// that succeeds.
    pub dropped: Vec<RemovedEntry>,
    /// Entries moved to the overflow store, in the same order.
    pub overflowed: Vec<RemovedEntry>,
    /// Bytes of the `Set-Cookie` header sent (`Set-Cookie: ` included);
    /// 0 when nothing is sent.
    pub header_len: usize,
    /// The budget the header sent was held to: the configured one
    /// ([`Sealer::budget`](crate::Sealer::budget)), or less where it would
    /// let the token pass the reader's token limit
    /// ([`Limits::max_token_len`](crate::Limits::max_token_len)) or the
    /// cookie's name and value pass the 4096 bytes browsers keep
    /// (`docs/FORMAT.md` §14.3; [`Error::TooLarge`](crate::Error::TooLarge)
    /// gives the same figure). For a deletion cookie, or when nothing is
    /// sent, the configured budget.
    pub budget: usize,
    /// Set when the sealer has a revocation store
    /// ([`SealerBuilder::revocation_store`](crate::SealerBuilder::revocation_store))
    /// and it could not record an id given up (by `flush` or `cycle_id`,
    /// or by a deletion of the cookie in `save_request_async`):
    /// the cookie was saved all the same (a logout still deletes it), but
    /// copies of the old cookie stay valid until they expire. Also logged
    /// at `ERROR`.
    pub unrevoked: Option<crate::Error>,
}

impl SaveReport {
    /// Whether every entry made it into the cookie (or the store).
    pub fn is_complete(&self) -> bool {
        self.dropped.is_empty()
    }

    /// The keys of [`Self::dropped`], in order: what to log or show.
    pub fn dropped_keys(&self) -> Vec<&str> {
        keys_of(&self.dropped)
    }
}

/// The keys of removed entries, in order.
pub(crate) fn keys_of(entries: &[RemovedEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.key.as_str()).collect()
}

/// An entry that did not stay in the cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemovedEntry {
    /// Its key.
    pub key: String,
    /// Its priority.
    pub priority: Priority,
    /// Bytes it took in the payload (key, priority and value, CBOR-encoded).
    pub size: usize,
}

/// What to send to the client after a save. Its `Debug` shows the cookie
/// string's length, never the string: the cookie is a bearer credential.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "a cookie to set or delete must reach the client as a Set-Cookie header"]
pub enum CookieAction {
    /// Nothing changed: send no `Set-Cookie`.
    Unchanged,
    /// Send this cookie string as a `Set-Cookie` header.
    Set(String),
    /// The session was flushed: send this deletion cookie string.
    Delete(String),
}

impl fmt::Debug for CookieAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CookieAction::Unchanged => f.write_str("Unchanged"),
            CookieAction::Set(cookie) => write!(f, "Set({} bytes)", cookie.len()),
            CookieAction::Delete(cookie) => write!(f, "Delete({} bytes)", cookie.len()),
        }
    }
}

impl CookieAction {
    /// The `Set-Cookie` header value to send, if any.
    pub fn header_value(&self) -> Option<&str> {
        match self {
            CookieAction::Unchanged => None,
            CookieAction::Set(s) | CookieAction::Delete(s) => Some(s),
        }
    }

    /// The cookie's value, which the client presents (as `name=value`) on
    /// its next request: the token of a `Set`, empty for a `Delete`, `None`
    /// when nothing is sent. For hosts and tests that pass the cookie on
    /// without a browser.
    ///
    /// ```
    /// use sealed_session::{KeyRing, MasterKey, Sealer};
    /// let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?)).build()?;
    /// let mut session = sealer.new_session()?;
    /// session.insert("theme", "dark")?;
    /// let saved = sealer.save(&mut session)?;
    /// let next_request = sealer.open(saved.action.cookie_value().expect("a cookie"))?;
    /// assert_eq!(next_request.get::<String>("theme")?.as_deref(), Some("dark"));
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    pub fn cookie_value(&self) -> Option<&str> {
        let header = self.header_value()?;
        let pair = header.split_once(';').map_or(header, |(pair, _)| pair);
        Some(pair.split_once('=').map_or("", |(_, value)| value))
    }
}

/// The result of [`Sealer::save`](crate::Sealer::save).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use = "the session is saved only once `action` reaches the client as a Set-Cookie header"]
pub struct Saved {
    /// What to send.
    pub action: CookieAction,
    /// What was dropped or moved, and the final size.
    pub report: SaveReport,
}

/// The order in which entries are removed to fit: indices into `entries`
/// (`(key, priority, encoded size)`), critical entries excluded. (A sealer
/// with a revocation check passes the user entry it reads as critical.)
pub fn drop_order(entries: &[(&str, Priority, usize)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].1 != Priority::Critical)
        .collect();
    order.sort_by_key(|&i| {
        let (key, priority, size) = entries[i];
        (priority, Reverse(size), Reverse(key.as_bytes()))
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_priority_then_largest_then_key() {
        let entries = [
            ("a", Priority::Normal, 10),
            ("b", Priority::Low, 5),
            ("c", Priority::Low, 50),
            ("d", Priority::Critical, 999),
            ("e", Priority::Low, 5),
            ("f", Priority::High, 1),
        ];
        let order: Vec<&str> = drop_order(&entries).iter().map(|&i| entries[i].0).collect();
        assert_eq!(order, ["c", "e", "b", "a", "f"]);
    }
}
