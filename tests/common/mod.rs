//! Shared helpers: a sealer factory, a 10 KB mixed-priority session, the
//! library's conformance suites for stores (`test-util`), and stores that
//! fail on demand.
#![allow(dead_code)]

pub mod model;

use sealed_session::store::{
    BoxFuture, MemoryRevocations, MemoryStore, OverflowStore, RevocationCheck, RevocationQuery,
    RevocationStore,
};
use sealed_session::{
    Error, FixedClock, KeyRing, MasterKey, Priority, Sealer, SealerBuilder, Session, StoreError,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const T0: u64 = 1_767_225_600;

pub fn key(byte: u8) -> MasterKey {
    MasterKey::from_bytes(&[byte; 32]).unwrap()
}

pub fn builder(clock: &Arc<FixedClock>) -> SealerBuilder {
    builder_with(KeyRing::new(key(1)), clock)
}

/// `b` with an idle timeout and an absolute lifetime of these many seconds,
/// or none (`None`).
pub fn with_timeouts(b: SealerBuilder, idle: Option<u64>, lifetime: Option<u64>) -> SealerBuilder {
    let b = match idle {
        Some(secs) => b.max_idle(Duration::from_secs(secs)),
        None => b.no_idle_timeout(),
    };
    match lifetime {
        Some(secs) => b.max_lifetime(Duration::from_secs(secs)),
        None => b.no_max_lifetime(),
    }
}

/// [`builder`]'s policy over another key ring.
pub fn builder_with(ring: KeyRing, clock: &Arc<FixedClock>) -> SealerBuilder {
    Sealer::builder(ring)
        .cookie_name("id")
        .max_idle(Duration::from_secs(3600))
        .max_lifetime(Duration::from_secs(86_400))
        .clock(clock.clone())
}

/// About 10 KB of entries: critical identity, high CSRF, normal prefs,
/// and many low-priority cart lines and history items.
pub fn ten_kb_session(sealer: &Sealer) -> Session {
    let mut s = sealer.new_session().unwrap();
    s.insert_with_priority("user_id", 4217u64, Priority::Critical)
        .unwrap();
    s.insert_with_priority("csrf", "k3Jf9s0aQ1xZp2LmQ8rT", Priority::Critical)
        .unwrap();
    s.insert_with_priority(
        "prefs",
        serde_json::json!({"theme": "dark", "lang": "fr"}),
        Priority::High,
    )
    .unwrap();
    for i in 0..40 {
        let line = serde_json::json!({"sku": format!("SKU-{i:05}"), "qty": 1 + i % 4, "note": "x".repeat(60)});
        s.insert_with_priority(&format!("cart-{i:02}"), &line, Priority::Low)
            .unwrap();
    }
    for i in 0..30 {
        s.insert_with_priority(&format!("seen-{i:02}"), "y".repeat(150), Priority::Normal)
            .unwrap();
    }
    s
}

/// Every key of `original` reads back equal from `reopened` (loading the
/// overflow store where needed).
pub async fn assert_same_entries(sealer: &Sealer, original: &Session, reopened: &mut Session) {
    let keys: Vec<String> = original.keys().map(str::to_owned).collect();
    assert_eq!(reopened.len(), keys.len());
    for k in &keys {
        let want: serde_json::Value = original.get(k).unwrap().unwrap();
        let got: serde_json::Value = sealer.get_loading(reopened, k).await.unwrap().unwrap();
        assert_eq!(got, want, "{k}");
        assert_eq!(reopened.priority(k), original.priority(k), "{k}");
    }
}

/// A 10 KB session round-trips completely through `store`.
pub async fn overflow_round_trip(sealer: &Sealer) {
    let mut session = ten_kb_session(sealer);
    let original = ten_kb_session(sealer);
    let saved = sealer.save_async(&mut session).await.unwrap();
    let header = saved.action.header_value().unwrap().to_owned();
    assert!(saved.report.header_len <= sealer.budget());
    assert_eq!(saved.report.header_len, "Set-Cookie: ".len() + header.len());
    assert!(saved.report.dropped.is_empty());
    assert!(!saved.report.overflowed.is_empty());
    assert!(saved
        .report
        .overflowed
        .iter()
        .all(|e| e.priority != Priority::Critical));
    let token = cookie_value(&header);
    let mut reopened = sealer.open_async(&token).await.unwrap();
    // Cookie-resident keys read without the store.
    assert_eq!(reopened.get::<u64>("user_id").unwrap(), Some(4217));
    let overflowed = &saved.report.overflowed[0].key;
    assert!(reopened.is_overflowed(overflowed));
    assert_eq!(
        reopened.get::<serde_json::Value>(overflowed).unwrap_err(),
        Error::Store(StoreError::NotLoaded)
    );
    assert_same_entries(sealer, &original, &mut reopened).await;
}

/// Saves with `save_async` and returns the cookie value it sets.
pub async fn save_token(sealer: &Sealer, session: &mut Session) -> String {
    let saved = sealer.save_async(session).await.unwrap();
    let value = saved.action.cookie_value().expect("a Set-Cookie");
    // The crate's own accessor agrees with the tests' parser of the header.
    assert_eq!(value, cookie_value(saved.action.header_value().unwrap()));
    value.to_owned()
}

/// Whether a service a test needs is there (`present`). When it is not:
/// under `CI=true` that is a failure; otherwise the skip is written
/// straight to stderr (the harness hides `eprintln!` of passing tests).
pub fn service_available(present: bool, what: &str, install: &str) -> bool {
    if !present {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{what} required under CI=true, not installed ({install})");
        }
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipping: {what} not installed ({install})"
        );
    }
    present
}

/// Saves two 10 KB sessions through `sealer` (whose overflow store is
/// `store`), then, through the store itself, alters the first one's blob
/// and later puts the second one's blob under the first one's key: loading
/// must reject both. `list_keys` lists the store's keys. Returns the second
/// session's cookie value and blob key.
pub async fn altered_and_swapped_blobs_are_rejected<L, F>(
    sealer: &Sealer,
    store: &dyn OverflowStore,
    list_keys: L,
) -> (String, String)
where
    L: Fn() -> F,
    F: std::future::Future<Output = Vec<String>>,
{
    let mut a = ten_kb_session(sealer);
    let token_a = save_token(sealer, &mut a).await;
    let mut b = ten_kb_session(sealer);
    let token_b = save_token(sealer, &mut b).await;
    let keys = list_keys().await;
    let key_of = |id: sealed_session::SessionId| {
        let id = id.to_string();
        keys.iter()
            .find(|k| k.contains(&id))
            .expect("a blob key")
            .clone()
    };
    let (key_a, key_b) = (key_of(a.id()), key_of(b.id()));
    let ttl = Duration::from_secs(600);

    // Altered: one character of the sealed blob changed.
    let mut blob = store.get(&key_a).await.unwrap().expect("blob a");
    let i = blob.len() / 2;
    blob[i] = if blob[i] == b'A' { b'B' } else { b'A' };
    store.put(&key_a, blob, ttl).await.unwrap();
    let mut s = sealer.open(&token_a).unwrap();
    assert_eq!(
        sealer.load_overflow(&mut s).await.unwrap_err(),
        Error::Store(StoreError::Rejected)
    );

    // Another session's blob under this session's key.
    let other = store.get(&key_b).await.unwrap().expect("blob b");
    store.put(&key_a, other, ttl).await.unwrap();
    let mut s = sealer.open(&token_a).unwrap();
    assert_eq!(
        sealer.load_overflow(&mut s).await.unwrap_err(),
        Error::Store(StoreError::Rejected)
    );
    (token_b, key_b)
}

/// Whether `python3 -c "import <modules>"` succeeds.
pub fn python_imports(modules: &str) -> bool {
    std::process::Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The major version of the `node` on PATH (`v20.20.2` gives 20), or None
/// when there is none.
pub fn node_major() -> Option<u32> {
    let out = std::process::Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    let version = String::from_utf8_lossy(&out.stdout).into_owned();
    version
        .trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// The value of a `Set-Cookie` string.
pub fn cookie_value(set_cookie: &str) -> String {
    let cookie = cookie::Cookie::parse(set_cookie.to_owned()).unwrap();
    cookie.value().to_owned()
}

/// A new session whose critical `user` entry is `user`, sealed: its id and
/// cookie value.
pub fn login<T: serde::Serialize + ?Sized>(
    sealer: &Sealer,
    user: &T,
) -> (sealed_session::SessionId, String) {
    let mut session = sealer.new_session().unwrap();
    session
        .insert_with_priority("user", user, Priority::Critical)
        .unwrap();
    (session.id(), sealer.seal(&mut session).unwrap())
}

/// The keys of `session` whose values are in the overflow store, in its
/// order.
pub fn overflowed_keys(session: &Session) -> Vec<String> {
    session
        .keys()
        .filter(|k| session.is_overflowed(k))
        .map(str::to_owned)
        .collect()
}

/// A memory store that counts calls, fails every call while `down` is
/// set, logs the TTLs it is given, and yields to the runtime before each
/// read, as a network store does (so that concurrent handles really
/// interleave at a load).
pub struct Instrumented {
    pub inner: MemoryStore,
    pub calls: AtomicUsize,
    down: AtomicBool,
    /// Every TTL given to `put` or `touch`: (key, expiry time).
    expiries: std::sync::Mutex<Vec<(String, u64)>>,
    clock: Arc<FixedClock>,
}

impl Instrumented {
    pub fn new(clock: &Arc<FixedClock>) -> Self {
        Instrumented {
            inner: MemoryStore::with_clock(clock.clone()),
            calls: AtomicUsize::new(0),
            down: AtomicBool::new(false),
            expiries: std::sync::Mutex::new(Vec::new()),
            clock: clock.clone(),
        }
    }

    pub fn expiries_of(&self, key: &str) -> Vec<u64> {
        let log = self.expiries.lock().unwrap();
        log.iter()
            .filter(|(k, _)| k == key)
            .map(|(_, e)| *e)
            .collect()
    }

    fn record(&self, key: &str, ttl: Duration) {
        let expiry = sealed_session::Clock::now(&*self.clock) + ttl.as_secs();
        self.expiries.lock().unwrap().push((key.to_owned(), expiry));
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::Store(StoreError::Unavailable));
        }
        Ok(())
    }
}

impl OverflowStore for Instrumented {
    fn put<'a>(
        &'a self,
        key: &'a str,
        blob: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.check()?;
            self.record(key, ttl);
            self.inner.put(key, blob, ttl).await
        })
    }
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            self.check()?;
            self.inner.get(key).await
        })
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.check()?;
            self.inner.delete(key).await
        })
    }
    fn touch<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            self.check()?;
            self.record(key, ttl);
            self.inner.touch(key, ttl).await
        })
    }
}

/// Deletes every blob, as an eviction or expiry would.
pub async fn evict_all(store: &MemoryStore) {
    for key in store.keys() {
        store.delete(&key).await.unwrap();
    }
}

/// A fixed clock at [`T0`].
pub fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(T0))
}

/// In-memory revocations: recording a revocation (a session's, what
/// `flush` and `cycle_id` cause, or a user's) fails while `down` is set,
/// checks fail while `checks_down` is.
pub struct FlakyRevocations {
    pub inner: MemoryRevocations,
    /// Recording a revocation fails.
    down: AtomicBool,
    /// Checking one fails.
    checks_down: AtomicBool,
    /// Recording a revocation never answers.
    hangs: AtomicBool,
    /// Recordings that never answered.
    hung: AtomicUsize,
}

impl FlakyRevocations {
    pub fn with_clock(clock: &Arc<FixedClock>) -> Self {
        FlakyRevocations {
            inner: MemoryRevocations::with_clock(clock.clone()),
            down: AtomicBool::new(false),
            checks_down: AtomicBool::new(false),
            hangs: AtomicBool::new(false),
            hung: AtomicUsize::new(0),
        }
    }

    /// Whether recording a session's revocation never answers.
    pub fn set_hangs(&self, hangs: bool) {
        self.hangs.store(hangs, Ordering::SeqCst);
    }

    /// How many recordings were asked for while `set_hangs` was on.
    pub fn hung(&self) -> usize {
        self.hung.load(Ordering::SeqCst)
    }

    /// Whether recording a session's revocation fails.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Whether checks fail.
    pub fn set_checks_down(&self, down: bool) {
        self.checks_down.store(down, Ordering::SeqCst);
    }
}

impl RevocationCheck for FlakyRevocations {
    fn is_revoked<'a>(&'a self, query: RevocationQuery<'a>) -> BoxFuture<'a, Result<bool, Error>> {
        if self.checks_down.load(Ordering::SeqCst) {
            return Box::pin(async { Err(Error::Store(StoreError::Unavailable)) });
        }
        self.inner.is_revoked(query)
    }
}

impl RevocationStore for FlakyRevocations {
    fn revoke_session<'a>(
        &'a self,
        id: sealed_session::SessionId,
        keep_for: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(async { Err(Error::Store(StoreError::Unavailable)) });
        }
        if self.hangs.load(Ordering::SeqCst) {
            self.hung.fetch_add(1, Ordering::SeqCst);
            return Box::pin(std::future::pending());
        }
        RevocationStore::revoke_session(&self.inner, id, keep_for)
    }
    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        keep_for: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(async { Err(Error::Store(StoreError::Unavailable)) });
        }
        RevocationStore::revoke_user(&self.inner, user, keep_for)
    }
    fn revoke_user_except<'a>(
        &'a self,
        user: &'a str,
        keep: sealed_session::SessionId,
        keep_for: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(async { Err(Error::Store(StoreError::Unavailable)) });
        }
        RevocationStore::revoke_user_except(&self.inner, user, keep, keep_for)
    }
}

/// A revocation store that cannot answer; counts the questions.
#[derive(Default)]
pub struct RevocationsDown(pub AtomicUsize);

impl RevocationCheck for RevocationsDown {
    fn is_revoked<'a>(&'a self, _: RevocationQuery<'a>) -> BoxFuture<'a, Result<bool, Error>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Err(Error::Store(StoreError::Unavailable)) })
    }
}

/// Log output captured from this thread's tracing events.
#[derive(Clone, Default)]
pub struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures this thread's events at `level` and above until the guard
    /// drops.
    pub fn capture(level: tracing::Level) -> (Logs, tracing::subscriber::DefaultGuard) {
        // While only one subscriber is registered, tracing-core (0.1.36)
        // computes the interest of a callsite hit for the first time from
        // the hitting thread's subscriber alone: a callsite that another
        // test's thread, without a capture, hits first would be cached as
        // never, and its events skipped here (one CI run lost a DEBUG line
        // so). A second subscriber, kept for the whole run, makes it ask
        // every live one.
        static SECOND: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
        SECOND.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }

    pub fn is_empty(&self) -> bool {
        self.0.lock().expect("log buffer").is_empty()
    }

    pub fn clear(&self) {
        self.0.lock().expect("log buffer").clear();
    }

    /// The cause logged (`entries-dropped`) for each key dropped.
    pub fn drop_causes(&self) -> std::collections::BTreeMap<String, String> {
        let text = self.text();
        let field = |line: &str, start: &str, end: char| -> String {
            let from = line.find(start).map_or(line.len(), |i| i + start.len());
            line[from..]
                .split(end)
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        let mut causes = std::collections::BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| l.contains(r#"event="entries-dropped""#))
        {
            let cause = field(line, r#"cause=""#, '"');
            for key in field(line, "dropped=[", ']').split(", ") {
                causes.insert(key.trim_matches('"').to_owned(), cause.clone());
            }
        }
        causes
    }
}

/// Runs `f` with the events it emits at `INFO` and above captured: its
/// result and the formatted events.
pub fn logged<R>(f: impl FnOnce() -> R) -> (R, String) {
    let (logs, guard) = Logs::capture(tracing::Level::INFO);
    let result = f();
    drop(guard);
    (result, logs.text())
}
