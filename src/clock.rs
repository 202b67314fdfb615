//! Injectable time source.
//!
//! Validation never reads the wall clock directly: it asks a [`Clock`]. Tests
//! use [`FixedClock`]; WebAssembly hosts without `SystemTime` supply their own.

use core::sync::atomic::{AtomicU64, Ordering};

/// A source of the current time as whole seconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// Seconds since 1970-01-01T00:00:00Z.
    fn now(&self) -> u64;
}

/// The operating system's clock (`std::time::SystemTime`).
///
/// Not available on `wasm32-unknown-unknown`, where the host must supply a
/// [`Clock`].
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            // A clock set before 1970 is treated as the epoch itself.
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// A clock that stays where it is put: for tests, vectors and the CLI's `--now`.
///
/// ```
/// use sealed_session::{Clock, FixedClock};
/// let clock = FixedClock::new(1_700_000_000);
/// clock.advance(60);
/// assert_eq!(clock.now(), 1_700_000_060);
/// ```
#[derive(Debug, Default)]
pub struct FixedClock(AtomicU64);

impl FixedClock {
    /// A clock reading `unix_seconds`.
    pub fn new(unix_seconds: u64) -> Self {
        FixedClock(AtomicU64::new(unix_seconds))
    }

    /// Moves the clock to `unix_seconds`.
    pub fn set(&self, unix_seconds: u64) {
        self.0.store(unix_seconds, Ordering::SeqCst);
    }

    /// Moves the clock forward by `seconds`, stopping at the largest time
    /// rather than wrapping to the epoch.
    ///
    /// ```
    /// use sealed_session::{Clock, FixedClock};
    /// let clock = FixedClock::new(u64::MAX - 1);
    /// clock.advance(5);
    /// assert_eq!(clock.now(), u64::MAX);
    /// ```
    pub fn advance(&self, seconds: u64) {
        // The closure always returns `Some`, so the update cannot fail.
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(seconds))
            });
    }
}

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl<C: Clock> Clock for std::sync::Arc<C> {
    fn now(&self) -> u64 {
        (**self).now()
    }
}

/// The default clock on this target, if it has one (`wasm32-unknown-unknown`
/// has no wall clock: the host must supply one).
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub(crate) fn default_clock() -> Option<std::sync::Arc<dyn Clock>> {
    Some(std::sync::Arc::new(SystemClock))
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub(crate) fn default_clock() -> Option<std::sync::Arc<dyn Clock>> {
    None
}

#[cfg(all(test, not(all(target_arch = "wasm32", target_os = "unknown"))))]
mod tests {
    use super::*;

    fn wall_clock() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the test machine's clock is after 1970")
            .as_secs()
    }

    /// The system clock reads the wall clock, in seconds.
    #[test]
    fn the_system_clock_reads_the_wall_clock() {
        let before = wall_clock();
        let now = SystemClock.now();
        let after = wall_clock();
        assert!(
            before <= now && now <= after,
            "{before} <= {now} <= {after}"
        );
        assert!(now > 1_700_000_000, "{now}");
    }
}
