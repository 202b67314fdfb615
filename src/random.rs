//! Injectable source of randomness for nonces, session ids and new keys.
//!
//! The default is the operating system's generator. WebAssembly hosts (which
//! have no OS generator under `wasm32-unknown-unknown`) pass their own, for
//! example one backed by `crypto.getRandomValues`.

use crate::Error;

/// A cryptographically secure random number generator.
///
/// Implementations must be unpredictable: the nonces of XChaCha20-Poly1305
/// and the session ids come from here. A deterministic source is only for
/// generating test vectors.
pub trait RandomSource: Send + Sync + 'static {
    /// Fills `buf` with random bytes, or reports that no entropy is available.
    ///
    /// The crate clears `buf` before the call and refuses a result of all
    /// zero bytes with [`Error::Random`], so a source that returns `Ok`
    /// without writing fails every seal instead of repeating a nonce.
    ///
    /// # Errors
    ///
    /// [`Error::Random`] when no entropy is available (the crate's sources
    /// return no other error).
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error>;
}

/// The operating system's generator (via `getrandom`). On Linux with glibc
/// it calls the C library's `getrandom`, which glibc 2.41 and later answer
/// from the kernel's vDSO generator without a system call (Linux 6.11 and
/// later on x86_64; other architectures need later kernels). With musl, or
/// where the call is refused, it makes the system call or reads
/// `/dev/urandom`.
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
impl RandomSource for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        getrandom::fill(buf).map_err(|_| Error::Random)
    }
}

/// Fills `buf` (at least 16 bytes) from `random`, refusing a result of all
/// zero bytes with [`Error::Random`].
///
/// The buffer is cleared first, so a source that returns `Ok` without
/// writing (a host binding that filled a copy of the memory, not the
/// memory itself, or a stub) is refused instead of sealing every cookie
/// under one nonce, which would expose the keystream and let cookies be
/// forged. Sixteen or more random bytes are all zero with probability
/// 2^-128 at most.
pub(crate) fn fill_nonzero(random: &dyn RandomSource, buf: &mut [u8]) -> Result<(), Error> {
    debug_assert!(buf.len() >= 16, "too short to refuse all zeros");
    buf.fill(0);
    random.fill(buf)?;
    if buf.iter().all(|&byte| byte == 0) {
        return Err(Error::Random);
    }
    Ok(())
}

impl<R: RandomSource> RandomSource for std::sync::Arc<R> {
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        (**self).fill(buf)
    }
}

/// The default source on this target, if it has one.
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub(crate) fn default_source() -> Option<std::sync::Arc<dyn RandomSource>> {
    Some(std::sync::Arc::new(OsRandom))
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub(crate) fn default_source() -> Option<std::sync::Arc<dyn RandomSource>> {
    None
}

/// Each fill is one repeated byte, counting up from 1 (never 0, which
/// [`fill_nonzero`] refuses): for tests, and for the
/// budget vectors, whose outcome (sizes, kept and dropped keys) does not
/// depend on the session id or the nonce, so that they also run where the
/// platform offers no generator (`wasm32-unknown-unknown`). Never a
/// source for real sessions.
#[cfg(any(test, feature = "vectors"))]
#[derive(Default)]
pub(crate) struct CountingRandom(core::sync::atomic::AtomicU8);

#[cfg(any(test, feature = "vectors"))]
impl RandomSource for CountingRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        let count = self.0.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        buf.fill(count % 255 + 1);
        Ok(())
    }
}
