//! What a WebAssembly host (no `SystemClock`, no `OsRandom`) relies on:
//! a sealer runs entirely on the clock and random source it is given, and
//! no step reads the system clock behind its back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use sealed_session::{CookieAction, Error, FixedClock, KeyRing, MasterKey, RandomSource, Sealer};

/// A host generator that counts its calls (deterministic: test only).
struct HostRandom(AtomicU64);

impl RandomSource for HostRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (n as u8).wrapping_mul(31).wrapping_add(i as u8);
        }
        Ok(())
    }
}

/// A host whose generator has no entropy to give.
struct NoEntropy;

impl RandomSource for NoEntropy {
    fn fill(&self, _: &mut [u8]) -> Result<(), Error> {
        Err(Error::Random)
    }
}

fn sealer(clock: Arc<FixedClock>, random: Arc<dyn RandomSource>) -> Sealer {
    Sealer::builder(KeyRing::new(MasterKey::from_bytes(&[9; 32]).unwrap()))
        .cookie_name("id")
        .clock(clock)
        .random(random)
        .build()
        .unwrap()
}

#[test]
fn the_host_clock_and_random_source_are_the_only_ones_used() {
    let clock = Arc::new(FixedClock::new(1_000_000));
    let random = Arc::new(HostRandom(AtomicU64::new(0)));
    let sealer = sealer(clock.clone(), random.clone());

    let mut session = sealer.new_session().unwrap();
    assert_eq!(session.created_at(), 1_000_000);
    session.insert("k", 1).unwrap();
    let token = sealer.seal(&mut session).unwrap();
    // One session id and one nonce, both from the host.
    assert_eq!(random.0.load(Ordering::SeqCst), 2);
    assert_eq!(
        sealed_session::token::inspect(&token)
            .unwrap()
            .header
            .issued_at,
        1_000_000
    );

    // Time moves only when the host says so: at the idle timeout's last
    // second the cookie opens (by the system clock it would have expired
    // decades ago), one second later it does not.
    clock.set(1_000_000 + 14 * 24 * 3600);
    assert!(sealer.open(&token).is_ok());
    clock.set(1_000_000 + 14 * 24 * 3600 + 1);
    assert_eq!(
        sealer.open(&token).unwrap_err(),
        Error::Expired(sealed_session::Expired::Idle)
    );

    let failing = sealer_with_no_entropy();
    assert_eq!(failing.new_session().unwrap_err(), Error::Random);
}

/// A host binding that returns `Ok` and, once `writes` is off, writes
/// nothing (it filled a copy of the memory, say): every seal would reuse
/// one nonce.
struct StopsWriting {
    writes: AtomicBool,
    inner: HostRandom,
}

impl RandomSource for StopsWriting {
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        if self.writes.load(Ordering::SeqCst) {
            self.inner.fill(buf)
        } else {
            Ok(())
        }
    }
}

#[test]
fn a_random_source_that_returns_without_writing_is_refused() {
    let random = Arc::new(StopsWriting {
        writes: AtomicBool::new(true),
        inner: HostRandom(AtomicU64::new(0)),
    });
    let sealer = sealer(Arc::new(FixedClock::new(1_000_000)), random.clone());
    let mut session = sealer.new_session().unwrap();
    session.insert("user", 7).unwrap();
    let token = sealer.seal(&mut session).unwrap();

    random.writes.store(false, Ordering::SeqCst);
    // The nonce, a new session's id and a new key are each refused, as
    // is every later seal: no two cookies share a nonce.
    assert_eq!(sealer.seal(&mut session).unwrap_err(), Error::Random);
    assert_eq!(sealer.seal(&mut session).unwrap_err(), Error::Random);
    assert_eq!(sealer.new_session().unwrap_err(), Error::Random);
    assert_eq!(
        MasterKey::generate_with(&*random).err(),
        Some(Error::Random)
    );
    let mut request = sealer.open_request([format!("id={token}")]).unwrap();
    request.session_mut().insert("user", 8).unwrap();
    assert_eq!(
        sealer.save_request(&mut request).unwrap_err(),
        Error::Random
    );

    random.writes.store(true, Ordering::SeqCst);
    assert_ne!(sealer.seal(&mut session).unwrap(), token);
}

fn sealer_with_no_entropy() -> Sealer {
    sealer(Arc::new(FixedClock::new(1)), Arc::new(NoEntropy))
}

/// Regression: the deletion cookie used `Cookie::make_removal`, which
/// reads the system clock for its `Expires` (and panics on
/// `wasm32-unknown-unknown`). It is now the same at any time.
#[test]
fn the_deletion_cookie_does_not_depend_on_the_time() {
    let sealer = sealer(
        Arc::new(FixedClock::new(1_700_000_000)),
        Arc::new(HostRandom(AtomicU64::new(0))),
    );
    let mut session = sealer.new_session().unwrap();
    session.insert("user", 7).unwrap();
    let token = sealer.seal(&mut session).unwrap();
    let mut session = sealer.open(&token).unwrap();
    session.flush().unwrap();
    let CookieAction::Delete(removal) = sealer.save(&mut session).unwrap().action else {
        panic!("a flushed session deletes its cookie");
    };
    assert_eq!(
        removal,
        "id=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; \
         Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    );
}
