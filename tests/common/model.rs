//! The model the property tests of a session's life hold one browser's
//! cookie to (`tests/proptest_lifecycle.rs`, `tests/proptest_layer.rs`).

use proptest::prelude::*;
use sealed_session::{Expiry, Priority};
use std::collections::{BTreeMap, BTreeSet};

/// The servers' idle timeout (`builder_with`'s) and absolute lifetime
/// (shorter than its, so that sessions reach it).
pub const MAX_IDLE: u64 = 3600;
pub const MAX_LIFETIME: u64 = 5000;

/// What the application stored: key → (value, priority).
pub type Model = BTreeMap<String, (String, Priority)>;

/// What the current cookie should hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub entries: Model,
    /// Entries whose blob the store lost, not yet reported.
    pub lost: BTreeSet<String>,
    pub issued_at: u64,
    pub created_at: u64,
    pub expiry: Expiry,
}

impl Expected {
    /// A session created at `now`, holding nothing.
    pub fn new(now: u64) -> Self {
        Expected {
            entries: Model::new(),
            lost: BTreeSet::new(),
            issued_at: now,
            created_at: now,
            expiry: Expiry::Default,
        }
    }

    /// The last second the cookie opens (FORMAT.md §12): the idle timeout,
    /// the absolute lifetime and the session's own expiry, the first to
    /// end.
    pub fn last_live_second(&self) -> u64 {
        let own = match self.expiry {
            Expiry::At(end) => Some(end - 1),
            Expiry::Idle(window) => Some(self.issued_at + window.as_secs()),
            _ => None,
        };
        [
            Some(self.issued_at + MAX_IDLE),
            Some(self.created_at + MAX_LIFETIME),
            own,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap()
    }

    /// Whether the cookie still opens at `now`.
    pub fn live_at(&self, now: u64) -> bool {
        now <= self.last_live_second()
    }

    /// Whether an unchanged session is re-sealed at `now` (refresh
    /// fraction 0.5 of the shorter idle window).
    pub fn refresh_due_at(&self, now: u64) -> bool {
        let window = match self.expiry {
            Expiry::Idle(own) => own.as_secs().min(MAX_IDLE),
            _ => MAX_IDLE,
        };
        now - self.issued_at >= window / 2
    }

    /// When a browser drops the cookie `set` at `now`, whose `Max-Age` runs
    /// to the cookie's end: the browser keeps it through the last second
    /// it opens, or up to that second.
    pub fn browser_drops_at(&self, now: u64, set: &cookie::Cookie) -> Result<u64, TestCaseError> {
        let max_age = set.max_age().map(|age| age.whole_seconds());
        let last = self.last_live_second();
        let drops_at = max_age
            .and_then(|age| u64::try_from(age).ok())
            .map(|age| now + age);
        prop_assert!(
            drops_at == Some(last) || drops_at == Some(last + 1),
            "Max-Age {:?} at {}, last second {}",
            max_age,
            now,
            last
        );
        Ok(drops_at.unwrap())
    }
}
