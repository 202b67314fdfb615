//! The Redis overflow store and revocation check against a real
//! `redis-server`, started on a free loopback port for each test.
//!
//! Without `redis-server` these tests say so and skip, except under
//! `CI=true`, where its absence is a failure.
#![cfg(feature = "redis")]

mod common;

use common::*;
#[cfg(feature = "test-util")]
use sealed_session::store::testing::{check_overflow_store, check_revocation_store};
use sealed_session::store::RevocationStore;
use sealed_session::{Error, RedisRevocations, RedisStore, SessionId, StoreError};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct RedisServer {
    child: Child,
    port: u16,
    /// Further arguments (a TLS port and its certificates), kept for
    /// restarts.
    args: Vec<String>,
}

/// Whether `program` runs (`--version`); if not, says so, or fails under
/// `CI=true` (see [`service_available`]).
fn installed(program: &str, install: &str) -> bool {
    let runs = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    service_available(runs, program, install)
}

/// Asserts that what began at `started` took less than `bound`.
fn assert_took_less(started: Instant, bound: Duration) {
    let took = started.elapsed();
    assert!(took < bound, "{took:?}");
}

/// A fresh directory under the system's temporary one (`what`, the
/// process and a count name it), removed on drop.
#[cfg(any(feature = "redis-tls", feature = "redis-cluster"))]
struct ScratchDir(std::path::PathBuf);

#[cfg(any(feature = "redis-tls", feature = "redis-cluster"))]
impl ScratchDir {
    fn new(what: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sealed-session-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }
}

#[cfg(any(feature = "redis-tls", feature = "redis-cluster"))]
impl std::ops::Deref for ScratchDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

#[cfg(any(feature = "redis-tls", feature = "redis-cluster"))]
impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port free now (tests run in parallel: it may be taken before it is
/// bound).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts `redis-server` on `port` (and what `args` add) and waits
    /// until it answers there with its own process id; `None` if it exits
    /// first (a port was taken meanwhile, say) or another process answers.
    fn spawn(port: u16, args: &[String]) -> Option<Child> {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait().expect("child status").is_some() {
                return None;
            }
            if let Some(pid) = answering_pid(port) {
                if pid == child.id() {
                    return Some(child);
                }
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("redis-server did not listen on {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a server, or returns `None` (skip) when `redis-server` is not
    /// installed outside CI.
    fn start() -> Option<Self> {
        Self::start_with(Vec::new)
    }

    /// [`RedisServer::start`], with the arguments `args` gives for each
    /// attempt (a fresh TLS port each time, say).
    fn start_with(args: impl Fn() -> Vec<String>) -> Option<Self> {
        if !installed("redis-server", "apt-get install redis-server") {
            return None;
        }
        // A free port now may be taken before the server binds it (tests
        // run in parallel): try a few.
        for _ in 0..5 {
            let (port, args) = (free_port(), args());
            if let Some(child) = Self::spawn(port, &args) {
                return Some(RedisServer { child, port, args });
            }
        }
        panic!("redis-server could not start on a free loopback port");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        while TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok() {
            assert!(Instant::now() < deadline, "redis-server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Pauses the server (`-STOP`: it still accepts connections and
    /// answers nothing) or resumes it (`-CONT`); a paused one is still
    /// killed on drop.
    fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args([signal, &pid]).status();
        assert!(sent.expect("kill runs").success(), "kill {signal}");
    }

    /// Kills the server and starts another on its port.
    fn restart(&mut self) {
        self.kill();
        self.child = Self::respawn(self.port, &self.args);
    }

    /// Starts a server on `port`, retrying a few times: the port can take
    /// a moment to be free again.
    fn respawn(port: u16, args: &[String]) -> Child {
        for attempt in 1..=5 {
            if let Some(child) = Self::spawn(port, args) {
                return child;
            }
            std::thread::sleep(Duration::from_millis(100 * attempt));
        }
        panic!("redis-server did not restart on port {port}");
    }
}

/// The process id of the Redis server answering on `port`, if one does.
fn answering_pid(port: u16) -> Option<u32> {
    use std::io::{Read, Write};
    // Bounded: a listener that never accepts (its backlog full) would
    // otherwise hold a plain connect for minutes.
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"INFO server\r\n").ok()?;
    let mut reply = String::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((_, rest)) = reply.split_once("process_id:") {
            if let Some((pid, _)) = rest.split_once("\r\n") {
                return pid.trim().parse().ok();
            }
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        reply.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Writes `value` under `key` as is, as someone other than the crate would.
async fn set_raw(
    conn: &mut redis::aio::MultiplexedConnection,
    key: impl redis::ToRedisArgs + Send + Sync,
    value: impl redis::ToRedisArgs + Send + Sync,
) {
    redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query_async::<()>(conn)
        .await
        .unwrap();
}

/// Replaces `key` with a list, a type the crate never writes.
async fn set_list(conn: &mut redis::aio::MultiplexedConnection, key: &str) {
    redis::pipe()
        .cmd("DEL")
        .arg(key)
        .cmd("RPUSH")
        .arg(key)
        .arg("x")
        .query_async::<()>(conn)
        .await
        .unwrap();
}

/// How many bytes the server has sent to its clients so far.
async fn sent_bytes(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let stats: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(conn)
        .await
        .unwrap();
    stats
        .lines()
        .find_map(|line| line.strip_prefix("total_net_output_bytes:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("total_net_output_bytes in INFO stats")
}

#[cfg(feature = "test-util")]
#[tokio::test]
async fn redis_store_conformance() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&server.url()).await.unwrap();
    check_overflow_store(&store, |s| tokio::time::sleep(Duration::from_secs(s))).await;
}

/// The stores name themselves and nothing of their connection: a URL may
/// hold a password.
#[tokio::test]
async fn redis_stores_debug_without_their_address() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&server.url()).await.unwrap();
    assert_eq!(format!("{store:?}"), "RedisStore { .. }");
    let revocations = RedisRevocations::connect(&server.url(), clock())
        .await
        .unwrap();
    assert_eq!(format!("{revocations:?}"), "RedisRevocations { .. }");
}

#[tokio::test]
async fn ten_kb_session_round_trips_through_redis() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = clock();
    let store = Arc::new(RedisStore::connect(&server.url()).await.unwrap());
    let sealer = builder(&clock).overflow_store(store).build().unwrap();
    overflow_round_trip(&sealer).await;
    let mut conn = raw(&server.url()).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("sealed-session:overflow:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    let ttl: i64 = redis::cmd("TTL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    // The TTL is the idle window (shorter than the remaining lifetime)
    // plus the clock skew and one second.
    // (Redis counts down in whole seconds: 3661 just written, 3659 at
    // worst on a slow machine; without the skew it would be at most 3601.)
    assert!((3_659..=3_661).contains(&ttl), "{ttl}");
}

/// `put_for_session` keeps a session's newest blobs and deletes the rest,
/// under a namespace too; other sessions' blobs and plain `put`s are left
/// alone, and the index expires with the longest blob written to it.
#[tokio::test]
async fn redis_keeps_only_a_sessions_newest_blobs() {
    use sealed_session::store::{overflow_key, OverflowStore};
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&server.url())
        .await
        .unwrap()
        .namespace("app");
    let (a, b) = (
        SessionId::from_bytes([1; 16]),
        SessionId::from_bytes([2; 16]),
    );
    let (short, long) = (Duration::from_secs(60), Duration::from_secs(600));
    let key = |sid: &SessionId, n: u8| overflow_key(sid, &[n; 16]);
    store
        .put_for_session(&b, &key(&b, 0), vec![0], short, 3)
        .await
        .unwrap();
    store.put(&key(&a, 100), vec![0], short).await.unwrap();
    for n in 0..5 {
        let ttl = if n == 1 { long } else { short };
        store
            .put_for_session(&a, &key(&a, n), vec![n], ttl, 3)
            .await
            .unwrap();
    }
    // Rewriting a held key makes it the newest, once.
    store
        .put_for_session(&a, &key(&a, 2), vec![9], short, 3)
        .await
        .unwrap();
    let mut conn = raw(&server.url()).await;
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("app:sealed-session:overflow:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.sort();
    let mut expected: Vec<String> = [key(&a, 2), key(&a, 3), key(&a, 4), key(&a, 100), key(&b, 0)]
        .iter()
        .map(|k| format!("app:{k}"))
        .collect();
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(store.get(&key(&a, 2)).await.unwrap(), Some(vec![9]));
    let index = format!("app:sealed-session:overflow-index:{{{a}}}");
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(&index)
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    // Oldest first: 3, 4, then the rewritten 2.
    let order = [&expected[1], &expected[2], &expected[0]];
    assert_eq!(members.iter().collect::<Vec<_>>(), order);
    // As long as the 600-second blob, now deleted, was to live.
    let ttl: i64 = redis::cmd("TTL")
        .arg(&index)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((590..=600).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn an_uncapped_sealer_reads_its_blobs_from_redis() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = clock();
    let store = Arc::new(RedisStore::connect(&server.url()).await.unwrap());
    // No decompression cap: the blob bound is past what Redis takes as a
    // GETRANGE end, so the store must clamp it.
    let sealer = builder(&clock)
        .limits(sealed_session::Limits::default().with_max_decompressed(usize::MAX))
        .overflow_store(store)
        .build()
        .unwrap();
    overflow_round_trip(&sealer).await;
}

#[tokio::test]
async fn redis_down_and_back() {
    use sealed_session::store::OverflowStore;
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let clock = clock();
    let store = Arc::new(RedisStore::connect(&server.url()).await.unwrap());
    let sealer = builder(&clock)
        .overflow_store(store.clone())
        .build()
        .unwrap();
    let mut session = ten_kb_session(&sealer);
    let saved = sealer.save_async(&mut session).await.unwrap();
    let token = saved.action.cookie_value().unwrap().to_owned();
    let overflowed = saved.report.overflowed[0].key.clone();

    server.kill();
    let (logs, _guard) = Logs::capture(tracing::Level::DEBUG);
    let resent = || logs.text().matches("event=\"redis-resent\"").count();
    // Read: cookie-resident entries still work; the overflowed key fails clearly.
    let mut s = sealer.open_async(&token).await.unwrap();
    assert_eq!(s.get::<u64>("user_id").unwrap(), Some(4217));
    let started = Instant::now();
    assert_eq!(
        sealer
            .get_loading::<serde_json::Value>(&mut s, &overflowed)
            .await
            .unwrap_err(),
        Error::Store(StoreError::Unavailable)
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failed fast: {:?}",
        started.elapsed()
    );
    // The first request may have gone out on the connection the server
    // dropped, and been sent again once; a refused connection is not
    // retried (the manager's reconnection has made its own attempt).
    assert!(resent() <= 1, "{}", logs.text());
    let resent_before = resent();
    // Write: the save fails, nothing is lost from the session.
    let mut fresh = ten_kb_session(&sealer);
    assert_eq!(
        sealer.save_async(&mut fresh).await.unwrap_err(),
        Error::Store(StoreError::Unavailable)
    );
    assert!(fresh.needs_save());
    assert_eq!(resent(), resent_before, "{}", logs.text());
    // Requests together while it is down: one tries it, the others fail
    // at once without going out (and without a warning each).
    let count = |event: &str| logs.text().matches(&format!("event=\"{event}\"")).count();
    let failed_before = count("redis-failed");
    let together = tokio::join!(store.get("a"), store.get("b"), store.get("c"));
    let unavailable = || Err(Error::Store(StoreError::Unavailable));
    assert_eq!(together, (unavailable(), unavailable(), unavailable()));
    assert_eq!(count("redis-failed"), failed_before + 1, "{}", logs.text());
    assert_eq!(count("redis-skipped"), 2, "{}", logs.text());
    assert_eq!(count("redis-failing-fast"), 1, "{}", logs.text());

    server.restart();
    // The manager reconnects; the restarted server kept nothing (no
    // persistence), which reads as a missing blob, not as a crash.
    let mut reconnected = None;
    for _ in 0..50 {
        if let Ok(saved) = sealer.save_async(&mut fresh).await {
            reconnected = Some(saved);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let saved = reconnected.expect("no reconnection after restart");
    // The save that went through kept every entry, overflowed ones in the
    // restarted server.
    assert!(!saved.report.overflowed.is_empty());
    assert!(saved.report.dropped.is_empty());
    let fresh_token = saved.action.cookie_value().expect("a Set-Cookie");
    let mut reopened = sealer.open_async(fresh_token).await.unwrap();
    assert_same_entries(&sealer, &ten_kb_session(&sealer), &mut reopened).await;
    let mut s = sealer.open_async(&token).await.unwrap();
    assert_eq!(
        sealer.load_overflow(&mut s).await.unwrap_err(),
        Error::Store(StoreError::Missing)
    );
}

/// A store made by `connect_lazy` while Redis is down: it starts, its
/// calls fail as in an outage, and once a server answers they succeed.
#[tokio::test]
async fn a_lazy_connection_starts_while_redis_is_down() {
    use sealed_session::store::{OverflowStore, RevocationCheck, RevocationQuery};
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    server.kill();
    let clock = clock();
    let store = RedisStore::connect_lazy(&server.url()).unwrap();
    let revocations = RedisRevocations::connect_lazy(&server.url(), clock.clone()).unwrap();
    let (ttl, id) = (Duration::from_secs(60), SessionId::from_bytes([10; 16]));
    let query = RevocationQuery::new(id, 0, None);
    let unavailable = Error::Store(StoreError::Unavailable);
    assert_eq!(store.put("k", vec![1], ttl).await.unwrap_err(), unavailable);
    assert_eq!(
        revocations.is_revoked(query).await.unwrap_err(),
        unavailable
    );

    server.child = RedisServer::respawn(server.port, &server.args);
    // The manager reconnects on a later request (a second at the least
    // between two replacements of the connection).
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.put("k", vec![1], ttl).await.is_err() {
        assert!(Instant::now() < deadline, "the store never connected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.get("k").await.unwrap(), Some(vec![1]));
    while revocations.revoke_session(id, ttl).await.is_err() {
        assert!(Instant::now() < deadline, "the revocations never connected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(revocations.is_revoked(query).await.unwrap());

    // The address is still checked at once.
    assert_eq!(
        RedisStore::connect_lazy("not a url").unwrap_err(),
        Error::InvalidSetting(sealed_session::InvalidSetting::StoreAddress)
    );
}

/// Outside a Tokio runtime a lazy connection is refused: its task could
/// not be spawned.
#[test]
fn a_lazy_connection_needs_a_runtime() {
    let no_runtime = Error::InvalidSetting(sealed_session::InvalidSetting::NoRuntime);
    let url = "redis://127.0.0.1:6379/";
    assert_eq!(RedisStore::connect_lazy(url).unwrap_err(), no_runtime);
    assert_eq!(
        RedisRevocations::connect_lazy(url, Arc::new(sealed_session::SystemClock)).unwrap_err(),
        no_runtime
    );
}

#[tokio::test]
async fn redis_altered_swapped_and_expired_blobs() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = clock();
    let store = Arc::new(RedisStore::connect(&server.url()).await.unwrap());
    let sealer = builder(&clock)
        .overflow_store(store.clone())
        .build()
        .unwrap();
    let conn = raw(&server.url()).await;
    altered_and_swapped_blobs_are_rejected(&sealer, &*store, || {
        let mut conn = conn.clone();
        async move {
            redis::cmd("KEYS")
                .arg("sealed-session:overflow:*")
                .query_async::<Vec<String>>(&mut conn)
                .await
                .unwrap()
        }
    })
    .await;

    // A blob far longer than any the sealer accepts is refused without
    // being sent whole (the sealer asks for at most its limit plus one).
    let mut s = ten_kb_session(&sealer);
    let token = save_token(&sealer, &mut s).await;
    let mut conn = conn.clone();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("sealed-session:overflow:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    for key in &keys {
        set_raw(&mut conn, key, vec![b'A'; 4 << 20]).await;
    }
    let mut opened = sealer.open(&token).unwrap();
    let sent = sent_bytes(&mut conn).await;
    assert_eq!(
        sealer.load_overflow(&mut opened).await.unwrap_err(),
        Error::Store(StoreError::Rejected)
    );
    let during = sent_bytes(&mut conn).await - sent;
    assert!(during < 1 << 20, "{during} bytes sent");

    // A key of another type (a list) is altered content, not an outage.
    for key in &keys {
        set_list(&mut conn, key).await;
    }
    assert_eq!(
        sealer.load_overflow(&mut opened).await.unwrap_err(),
        Error::Store(StoreError::Rejected)
    );

    // Expired: a session with a two-second lifetime and no skew.
    let short = builder(&clock)
        .max_lifetime(Duration::from_secs(2))
        .clock_skew(Duration::ZERO)
        .overflow_store(store)
        .build()
        .unwrap();
    let mut c = ten_kb_session(&short);
    let token_c = save_token(&short, &mut c).await;
    let mut s = short.open(&token_c).unwrap();
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(
        short.load_overflow(&mut s).await.unwrap_err(),
        Error::Store(StoreError::Missing)
    );
}

/// Closes every client connection but the caller's, as a Redis restart, a
/// failover or its idle `timeout` would.
async fn drop_clients(admin: &mut redis::aio::MultiplexedConnection) {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(admin)
        .await
        .unwrap();
    eprintln!("{list}");
    let killed: u64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query_async(admin)
        .await
        .unwrap();
    // At least the connection that the request before opened.
    assert!(killed >= 1, "no connection to drop");
}

#[tokio::test]
async fn every_redis_request_is_sent_again_once_on_a_dropped_connection() {
    use sealed_session::store::{OverflowStore, RevocationCheck, RevocationQuery};
    use sealed_session::Clock;
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = clock();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let revocations = RedisRevocations::connect(&server.url(), clock.clone())
        .await
        .unwrap();
    let mut admin = raw(&server.url()).await;
    let day = Duration::from_secs(86_400);
    let id = SessionId::from_bytes([3; 16]);
    let (old, kept) = (clock.now() - 10, SessionId::from_bytes([4; 16]));
    // Each request right after the server dropped both connections: it
    // must not fail, as the server answers (the first try fails on the
    // dead connection).
    drop_clients(&mut admin).await;
    store.put("k", b"blob".to_vec(), day).await.unwrap();
    drop_clients(&mut admin).await;
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"blob"[..]));
    drop_clients(&mut admin).await;
    assert_eq!(
        store.get_bounded("k", 2).await,
        Err(Error::Store(StoreError::Rejected))
    );
    drop_clients(&mut admin).await;
    assert!(store.touch("k", day).await.unwrap());
    drop_clients(&mut admin).await;
    store.delete("k").await.unwrap();
    drop_clients(&mut admin).await;
    revocations.revoke_session(id, day).await.unwrap();
    drop_clients(&mut admin).await;
    revocations
        .revoke_user_except("ann", kept, day)
        .await
        .unwrap();
    drop_clients(&mut admin).await;
    let ask = |id, user| RevocationQuery::new(id, old, user);
    assert!(revocations.is_revoked(ask(id, None)).await.unwrap());
    drop_clients(&mut admin).await;
    let other = SessionId::from_bytes([5; 16]);
    assert!(revocations
        .is_revoked(ask(other, Some("ann")))
        .await
        .unwrap());
    assert!(!revocations
        .is_revoked(ask(kept, Some("ann")))
        .await
        .unwrap());
    assert_eq!(store.get("k").await, Ok(None));
}

/// A sealer whose revocation check is `revocations` (user key `user`),
/// once the conformance checks (with `test-util`) have passed on it.
async fn conforming_sealer(
    clock: &Arc<sealed_session::FixedClock>,
    revocations: RedisRevocations,
) -> sealed_session::Sealer {
    let revocations = Arc::new(revocations);
    let sealer = builder(clock)
        .revocation(revocations.clone(), Some("user"))
        .build()
        .unwrap();
    #[cfg(feature = "test-util")]
    check_revocation_store(&sealer, clock, &*revocations, |s| {
        tokio::time::sleep(Duration::from_secs(s))
    })
    .await;
    sealer
}

#[tokio::test]
async fn redis_revocations() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = clock();
    let revocations = RedisRevocations::connect(&server.url(), clock.clone())
        .await
        .unwrap();
    let sealer = conforming_sealer(&clock, revocations).await;
    // A user record this crate did not write fails the open (fail closed).
    let mut conn = raw(&server.url()).await;
    set_raw(
        &mut conn,
        "sealed-session:revoked-user:{user:eve}",
        "not a time",
    )
    .await;
    let mut eve = sealer.new_session().unwrap();
    eve.insert("user", "eve").unwrap();
    let eve = sealer.seal(&mut eve).unwrap();
    assert_eq!(
        sealer.open_async(&eve).await.unwrap_err(),
        Error::Store(StoreError::Rejected)
    );
    // So is a user record of another type (read in a pipeline). (A
    // session record of any type exists, and revokes.)
    set_list(&mut conn, "sealed-session:revoked-user:{user:eve}").await;
    assert_eq!(
        sealer.open_async(&eve).await.unwrap_err(),
        Error::Store(StoreError::Rejected)
    );
    // A record that is not text is altered too, not an outage (which
    // would hold the user's cookies back).
    set_raw(
        &mut conn,
        "sealed-session:revoked-user:{user:eve}",
        &b"17\xff"[..],
    )
    .await;
    assert_eq!(
        sealer.open_async(&eve).await.unwrap_err(),
        Error::Store(StoreError::Rejected)
    );
    // An empty record reads as none (GETRANGE answers a missing key so).
    set_raw(&mut conn, "sealed-session:revoked-user:{user:eve}", "").await;
    assert!(sealer.open_async(&eve).await.is_ok());
    // A record far longer than any this crate writes fails the open and
    // is not sent whole: its first 64 bytes are a valid time, the rest is
    // not, and Redis sends no more than those.
    for key in ["revoked-user", "revoked-user-keep"] {
        set_raw(
            &mut conn,
            format!("sealed-session:{key}:{{user:eve}}"),
            format!("{}x", "0".repeat(1 << 20)),
        )
        .await;
        let sent = sent_bytes(&mut conn).await;
        assert_eq!(
            sealer.open_async(&eve).await.unwrap_err(),
            Error::Store(StoreError::Rejected),
            "{key}"
        );
        // (The reply to the first INFO, about 2 KB, is counted too.)
        let during = sent_bytes(&mut conn).await - sent;
        assert!(during < 16 << 10, "{key}: {during} bytes sent");
        if key == "revoked-user" {
            // A time, for the next round (which alters the kept id).
            set_raw(&mut conn, "sealed-session:revoked-user:{user:eve}", 0).await;
        }
    }
    // The limit is inclusive: a record of 63 bytes, the longest read (one
    // more is fetched, to tell), is still read. A zero-padded time of that
    // length is a time; a kept "id" of that length is compared, and is not
    // eve's, so a time after her cookie's revokes it.
    set_raw(&mut conn, "sealed-session:revoked-user-keep:{user:eve}", "").await;
    set_raw(
        &mut conn,
        "sealed-session:revoked-user:{user:eve}",
        "0".repeat(63),
    )
    .await;
    assert!(sealer.open_async(&eve).await.is_ok());
    set_raw(
        &mut conn,
        "sealed-session:revoked-user:{user:eve}",
        format!("{:0>63}", u64::MAX),
    )
    .await;
    set_raw(
        &mut conn,
        "sealed-session:revoked-user-keep:{user:eve}",
        "k".repeat(63),
    )
    .await;
    assert_eq!(sealer.open_async(&eve).await.unwrap_err(), Error::Revoked);
    // A revocation check that cannot answer fails the open (fail closed).
    drop(server);
    let mut s = sealer.new_session().unwrap();
    let token = sealer.seal(&mut s).unwrap();
    assert_eq!(
        sealer.open_async(&token).await.unwrap_err(),
        Error::Store(StoreError::Unavailable)
    );
    // Connecting to nothing is an error, not a hang or a panic. Port 1:
    // a port this test's own servers never take (they get ephemeral ones),
    // and privileged, so a test run without root cannot listen there.
    let refused = TcpStream::connect(("127.0.0.1", 1)).map(drop).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let started = Instant::now();
    let nowhere = RedisStore::connect("redis://127.0.0.1:1/").await;
    assert_eq!(nowhere.unwrap_err(), Error::Store(StoreError::Unavailable));
    // A URL that does not parse is a setup mistake, not an outage.
    for url in [
        "not a url",
        "http://127.0.0.1:6379/",
        "redis://127.0.0.1:99999/",
    ] {
        assert_eq!(
            RedisStore::connect(url).await.unwrap_err(),
            Error::InvalidSetting(sealed_session::InvalidSetting::StoreAddress),
            "{url}"
        );
    }
    // Without TLS built in, a TLS address is said to be one, not a bad one.
    #[cfg(not(feature = "redis-tls"))]
    for url in [
        "rediss://127.0.0.1:6379/",
        "REDISS://127.0.0.1:6379/",
        "valkeys://127.0.0.1/",
    ] {
        assert_eq!(
            RedisRevocations::connect(url, clock.clone())
                .await
                .unwrap_err(),
            Error::InvalidSetting(sealed_session::InvalidSetting::StoreTls),
            "{url}"
        );
    }
    // With TLS, a TLS address that does not parse is a bad address.
    #[cfg(feature = "redis-tls")]
    for url in ["rediss://127.0.0.1:99999/", "valkeys://[::1/"] {
        assert_eq!(
            RedisRevocations::connect(url, clock.clone())
                .await
                .unwrap_err(),
            Error::InvalidSetting(sealed_session::InvalidSetting::StoreAddress),
            "{url}"
        );
    }
    // Not a hang (refused at once: about 0.15 s here, with the manager's
    // own attempts; the bound leaves room for a loaded machine).
    assert_took_less(started, Duration::from_secs(5));
}

/// A server at its `maxmemory` under `noeviction` (what SECURITY.md
/// asks of the revocations' instance) refuses writes with OOM: the store
/// says so, rather than reporting an outage.
#[tokio::test]
async fn redis_out_of_memory_is_over_capacity() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = clock();
    let revocations = RedisRevocations::connect(&server.url(), clock.clone())
        .await
        .unwrap();
    let id = SessionId::from_bytes([7; 16]);
    let minute = Duration::from_secs(60);
    let mut conn = raw(&server.url()).await;
    let config = |setting: &'static str, value: &'static str| {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg(setting)
            .arg(value)
            .clone()
    };
    for cmd in [
        config("maxmemory-policy", "noeviction"),
        config("maxmemory", "1"),
    ] {
        cmd.query_async::<()>(&mut conn).await.unwrap();
    }
    assert_eq!(
        RevocationStore::revoke_session(&revocations, id, minute).await,
        Err(Error::Store(StoreError::OverCapacity))
    );
    config("maxmemory", "0")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        RevocationStore::revoke_session(&revocations, id, minute).await,
        Ok(())
    );
}

#[tokio::test]
async fn redis_namespaces_keep_applications_apart() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = clock();
    let connect = |namespace: &'static str| {
        let (url, clock) = (server.url(), clock.clone());
        async move {
            let revocations = RedisRevocations::connect(&url, clock.clone())
                .await
                .unwrap();
            let revocations = Arc::new(revocations.namespace(namespace));
            let store = RedisStore::connect(&url)
                .await
                .unwrap()
                .namespace(namespace);
            let sealer = builder(&clock)
                .revocation(revocations.clone(), Some("user"))
                .overflow_store(Arc::new(store))
                .build()
                .unwrap();
            (revocations, sealer)
        }
    };
    let (shop, shop_sealer) = connect("shop").await;
    let (_, blog_sealer) = connect("blog").await;
    let (_, shop_twin) = connect("shop").await;
    let (_, shop_cookie) = login(&shop_sealer, "42");
    let (_, blog_cookie) = login(&blog_sealer, "42");
    shop.revoke_user("42", Duration::from_secs(60))
        .await
        .unwrap();
    // The shop's servers (one namespace) see it; the blog's user 42 does not.
    assert_eq!(
        shop_sealer.open_async(&shop_cookie).await.unwrap_err(),
        Error::Revoked
    );
    assert_eq!(
        shop_twin.open_async(&shop_cookie).await.unwrap_err(),
        Error::Revoked
    );
    assert!(blog_sealer.open_async(&blog_cookie).await.is_ok());
    // Overflow blobs live under the namespace and load through it.
    overflow_round_trip(&shop_sealer).await;
    let mut conn = raw(&server.url()).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        keys.iter()
            .any(|key| key.starts_with("shop:sealed-session:overflow:")),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .all(|key| key.starts_with("shop:sealed-session:")),
        "{keys:?}"
    );
}

/// A TCP proxy on loopback in front of Redis servers, to make connections
/// fail as a network can: `silence` stops passing anything on over the
/// connections made so far, which stay open (a host gone without closing
/// them); `lead_new_to` sends the connections made after it to another
/// server (a failover that moves the address); `delay` holds back what
/// passes, as a distant server would.
struct Proxy {
    port: u16,
    upstream: Arc<AtomicU16>,
    made: Arc<AtomicUsize>,
    silenced_below: Arc<AtomicUsize>,
    delay_ms: Arc<AtomicU64>,
    stopped: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            upstream: Arc::new(AtomicU16::new(upstream)),
            made: Arc::default(),
            silenced_below: Arc::default(),
            delay_ms: Arc::default(),
            stopped: Arc::default(),
        };
        let (upstream, made) = (proxy.upstream.clone(), proxy.made.clone());
        let (silenced_below, stopped) = (proxy.silenced_below.clone(), proxy.stopped.clone());
        let delay_ms = proxy.delay_ms.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(SeqCst) {
                    return;
                }
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream.load(SeqCst))) else {
                    continue;
                };
                let id = made.fetch_add(1, SeqCst);
                let halves = [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ];
                for (mut from, mut to) in halves {
                    let (silenced_below, delay_ms) = (silenced_below.clone(), delay_ms.clone());
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        let mut chunk = [0u8; 16 * 1024];
                        while let Ok(n @ 1..) = from.read(&mut chunk) {
                            // Silenced: read and lost, the socket kept open.
                            if id < silenced_below.load(SeqCst) {
                                continue;
                            }
                            std::thread::sleep(Duration::from_millis(delay_ms.load(SeqCst)));
                            if to.write_all(&chunk[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        proxy
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The connections made so far pass nothing on any more.
    fn silence(&self) {
        self.silenced_below.store(self.made.load(SeqCst), SeqCst);
    }

    /// What passes from now on, either way, is held back by `delay`.
    #[cfg(feature = "redis-cluster")]
    fn delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis().try_into().unwrap(), SeqCst);
    }

    /// Connections made from now on go to the server on `port`.
    fn lead_new_to(&self, port: u16) {
        self.upstream.store(port, SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stopped.store(true, SeqCst);
        // Wakes the accepting thread, which then stops.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Through `proxy`: an overflow store and revocations made by `connect`,
/// and an overflow store on a connection manager the application gave
/// (with the same one-second response timeout).
async fn stores_through(proxy: &Proxy) -> (RedisStore, RedisRevocations, RedisStore) {
    let store = RedisStore::connect(&proxy.url()).await.unwrap();
    let revocations = RedisRevocations::connect(&proxy.url(), clock())
        .await
        .unwrap();
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_secs(1)));
    let client = redis::Client::open(proxy.url()).unwrap();
    let manager = redis::aio::ConnectionManager::new_with_config(client, config);
    let given = RedisStore::from_manager(manager.await.unwrap());
    (store, revocations, given)
}

/// A connection that stays open but no longer answers is replaced after
/// the request that timed out on it, for a store made by `connect`: the
/// connection manager alone would keep it until the kernel gives up on it
/// (about 15 minutes), failing every request.
#[tokio::test]
async fn a_redis_connection_that_stops_answering_is_replaced() {
    use sealed_session::store::{OverflowStore, RevocationCheck, RevocationQuery};
    let Some(server) = RedisServer::start() else {
        return;
    };
    let proxy = Proxy::start(server.port);
    let (store, revocations, given) = stores_through(&proxy).await;
    let day = Duration::from_secs(86_400);
    store.put("k", b"blob".to_vec(), day).await.unwrap();
    let query = RevocationQuery::new(SessionId::from_bytes([6; 16]), 0, Some("ann"));
    assert!(!revocations.is_revoked(query).await.unwrap());
    assert!(given.touch("k", day).await.unwrap());

    proxy.silence();
    let (logs, _guard) = Logs::capture(tracing::Level::WARN);
    let started = Instant::now();
    // Two requests fail on the silent connection: one replacement.
    let (first, second) = tokio::join!(store.get("k"), store.get("k"));
    assert_eq!(first, Err(Error::Store(StoreError::Unavailable)));
    assert_eq!(second, Err(Error::Store(StoreError::Unavailable)));
    assert_eq!(
        revocations.is_revoked(query).await,
        Err(Error::Store(StoreError::Unavailable))
    );
    assert_eq!(
        given.get("k").await,
        Err(Error::Store(StoreError::Unavailable))
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        logs.text().matches("event=\"redis-reconnecting\"").count(),
        2,
        "{}",
        logs.text()
    );
    // The next requests go out on new connections, which answer.
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"blob"[..]));
    assert!(!revocations.is_revoked(query).await.unwrap());
    // A manager the application gave is not replaced: it still sends on
    // the silent connection (what the two above would do without the
    // replacement).
    assert_eq!(
        given.get("k").await,
        Err(Error::Store(StoreError::Unavailable))
    );
    assert_eq!(
        logs.text().matches("event=\"redis-reconnecting\"").count(),
        2,
        "{}",
        logs.text()
    );
}

/// A frozen server (paused: it accepts connections and answers nothing)
/// costs one request the timeouts; until it answers again, one request at
/// a time tries it, and the others fail at once instead of waiting too.
#[tokio::test]
async fn a_frozen_redis_fails_requests_at_once_while_one_tries_it() {
    use sealed_session::store::OverflowStore;
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let blob = Ok(Some(b"blob".to_vec()));
    store
        .put("k", b"blob".to_vec(), Duration::from_secs(600))
        .await
        .unwrap();
    let (logs, _guard) = Logs::capture(tracing::Level::INFO);
    let count = |event: &str| logs.text().matches(&format!("event=\"{event}\"")).count();
    let unavailable = Err(Error::Store(StoreError::Unavailable));

    server.signal("-STOP");
    // The first request waits out the response timeout.
    let started = Instant::now();
    assert_eq!(store.get("k").await, unavailable);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    // The next one tries the server again (on a new connection)…
    let probe = tokio::spawn({
        let store = store.clone();
        async move { store.get("k").await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!probe.is_finished());
    // … and meanwhile the others fail without waiting.
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(store.get("k").await, unavailable);
    }
    assert_took_less(started, Duration::from_millis(500));
    assert_eq!(probe.await.unwrap(), unavailable);
    assert_eq!(count("redis-failing-fast"), 1, "{}", logs.text());
    assert_eq!(count("redis-answering-again"), 0, "{}", logs.text());

    server.signal("-CONT");
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.get("k").await != blob {
        assert!(Instant::now() < deadline, "Redis did not answer again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Answered: requests go out together again.
    let (first, second) = tokio::join!(store.get("k"), store.get("k"));
    assert_eq!((first, second), (blob.clone(), blob));
    assert_eq!(count("redis-failing-fast"), 1, "{}", logs.text());
    assert_eq!(count("redis-answering-again"), 1, "{}", logs.text());
}

/// The timeouts an application gives are the ones a request waits: a
/// fifth of a second against a frozen server, not the default second.
#[tokio::test]
async fn stores_wait_the_timeouts_they_are_given() {
    use sealed_session::store::{OverflowStore, RevocationCheck, RevocationQuery};
    let Some(server) = RedisServer::start() else {
        return;
    };
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(200)))
        .set_response_timeout(Some(Duration::from_millis(200)))
        .set_number_of_retries(0);
    let client = || redis::Client::open(server.url()).unwrap();
    let store = RedisStore::connect_client_with_config(client(), config.clone())
        .await
        .unwrap();
    let revocations = RedisRevocations::connect_client_with_config(client(), config, clock())
        .await
        .unwrap();
    let query = RevocationQuery::new(SessionId::from_bytes([7; 16]), 0, None);
    assert_eq!(store.get("k").await, Ok(None));
    assert_eq!(revocations.is_revoked(query).await, Ok(false));
    server.signal("-STOP");
    let unavailable = Error::Store(StoreError::Unavailable);
    let started = Instant::now();
    assert_eq!(store.get("k").await, Err(unavailable.clone()));
    assert_took_less(started, Duration::from_millis(700));
    let started = Instant::now();
    assert_eq!(revocations.is_revoked(query).await, Err(unavailable));
    assert_took_less(started, Duration::from_millis(700));
}

/// A primary demoted to a replica in a failover keeps its clients'
/// connections and refuses their writes (`READONLY`); after one such
/// answer, a store made by `connect` connects again, and the address now
/// leads to the new primary.
#[tokio::test]
async fn a_redis_store_follows_a_failover_after_a_readonly_answer() {
    use sealed_session::store::{OverflowStore, RevocationCheck, RevocationQuery};
    let (Some(old), Some(new)) = (RedisServer::start(), RedisServer::start()) else {
        return;
    };
    let proxy = Proxy::start(old.port);
    let (store, revocations, given) = stores_through(&proxy).await;
    let day = Duration::from_secs(86_400);
    store.put("k", b"old".to_vec(), day).await.unwrap();
    given.put("k", b"old".to_vec(), day).await.unwrap();

    // The old primary follows a primary that is not there (port 1: see
    // `redis_down_and_back`): a replica, read-only.
    let mut admin = raw(&old.url()).await;
    redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(1)
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    let refused = Err(Error::Store(StoreError::Unavailable));
    let (logs, _guard) = Logs::capture(tracing::Level::WARN);
    let reconnections = || logs.text().matches("event=\"redis-reconnecting\"").count();
    // Before the address moves, the new connection leads to the demoted
    // server again: refused, and not replaced again within the second
    // (unless the machine took that long over the two puts).
    let started = Instant::now();
    assert_eq!(store.put("k", b"new".to_vec(), day).await, refused);
    assert_eq!(store.put("k", b"new".to_vec(), day).await, refused);
    let replaced = reconnections();
    if started.elapsed() < Duration::from_millis(900) {
        assert_eq!(replaced, 1, "{}", logs.text());
    } else {
        assert!((1..=2).contains(&replaced), "{}", logs.text());
    }
    proxy.lead_new_to(new.port);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(store.put("k", b"new".to_vec(), day).await, refused);
    assert_eq!(revocations.revoke_user("ann", day).await, refused);
    assert_eq!(reconnections(), replaced + 2, "{}", logs.text());
    // The next writes reach the new primary.
    store.put("k", b"new".to_vec(), day).await.unwrap();
    revocations.revoke_user("ann", day).await.unwrap();
    let mut on_new = raw(&new.url()).await;
    let value: Option<Vec<u8>> = redis::cmd("GET")
        .arg("k")
        .query_async(&mut on_new)
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some(&b"new"[..]));
    let users: i64 = redis::cmd("EXISTS")
        .arg("sealed-session:revoked-user:{user:ann}")
        .query_async(&mut on_new)
        .await
        .unwrap();
    assert_eq!(users, 1);
    // A replica that serves no stale data answers reads MASTERDOWN: the
    // reads move too (here the revocations', to the new primary, where
    // "ann" is revoked).
    let other = Proxy::start(old.port);
    let reader = RedisRevocations::connect(&other.url(), clock())
        .await
        .unwrap();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("replica-serve-stale-data")
        .arg("no")
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    other.lead_new_to(new.port);
    let query = RevocationQuery::new(SessionId::from_bytes([8; 16]), 0, Some("ann"));
    assert_eq!(
        reader.is_revoked(query).await,
        Err(Error::Store(StoreError::Unavailable))
    );
    assert!(reader.is_revoked(query).await.unwrap());
    // The demoted server kept the connections open: a manager the
    // application gave keeps writing to it, and is refused every time.
    assert_eq!(given.put("k", b"new".to_vec(), day).await, refused);
    assert_eq!(given.put("k", b"new".to_vec(), day).await, refused);
}

/// TLS to Redis (feature `redis-tls`): a server with a TLS port and
/// certificates made for the test, by a CA of its own.
#[cfg(feature = "redis-tls")]
mod tls {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
        ExtendedKeyUsagePurpose, IsCa, KeyPair,
    };
    use sealed_session::store::{OverflowStore, RevocationCheck, RevocationQuery};
    use std::path::{Path, PathBuf};

    /// Where the process that runs `in_a_process_that_trusts_the_test_ca`
    /// finds the certificates.
    const PKI_DIR: &str = "SEALED_SESSION_TEST_PKI";

    /// A directory of PEM files, removed on drop: `ca.pem` (the trusted
    /// CA); the key pairs `server` (for `localhost` and 127.0.0.1, by
    /// that CA), `stranger` (the same names, by another CA), `elsewhere`
    /// (for `elsewhere.example`, by the CA) and `client` (a client's, by
    /// the CA), each as `<name>.pem` and `<name>.key`.
    struct Pki {
        dir: ScratchDir,
    }

    impl Pki {
        fn new() -> Self {
            let dir = ScratchDir::new("pki");
            let ca = authority("test CA");
            let stranger_ca = authority("another CA");
            std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
            let names = || vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
            for (name, issuer, sans, usage) in [
                ("server", &ca, names(), ExtendedKeyUsagePurpose::ServerAuth),
                (
                    "stranger",
                    &stranger_ca,
                    names(),
                    ExtendedKeyUsagePurpose::ServerAuth,
                ),
                (
                    "elsewhere",
                    &ca,
                    vec!["elsewhere.example".to_owned()],
                    ExtendedKeyUsagePurpose::ServerAuth,
                ),
                (
                    "client",
                    &ca,
                    Vec::new(),
                    ExtendedKeyUsagePurpose::ClientAuth,
                ),
            ] {
                let mut params = CertificateParams::new(sans).unwrap();
                params.distinguished_name = named(name);
                params.extended_key_usages.push(usage);
                let key = KeyPair::generate().unwrap();
                let cert = params.signed_by(&key, issuer).unwrap();
                std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
                std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
            }
            Pki { dir }
        }

        fn read(dir: &Path, file: &str) -> Vec<u8> {
            std::fs::read(dir.join(file)).unwrap()
        }
    }

    /// A distinguished name of its own for each certificate: OpenSSL takes
    /// a certificate whose subject is its issuer's for a self-signed one.
    fn named(common_name: &str) -> DistinguishedName {
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, common_name);
        name
    }

    fn authority(common_name: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.distinguished_name = named(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
    }

    /// A Redis server whose TLS port presents `<cert>.pem`, asking
    /// clients for a certificate by the CA if `client_certificates`.
    struct TlsServer {
        server: RedisServer,
    }

    impl TlsServer {
        fn start(pki: &Path, cert: &str, client_certificates: bool) -> Option<Self> {
            let file = |name: String| pki.join(name).to_str().unwrap().to_owned();
            let server = RedisServer::start_with(|| {
                vec![
                    "--tls-port".to_owned(),
                    free_port().to_string(),
                    "--tls-cert-file".to_owned(),
                    file(format!("{cert}.pem")),
                    "--tls-key-file".to_owned(),
                    file(format!("{cert}.key")),
                    "--tls-ca-cert-file".to_owned(),
                    file("ca.pem".to_owned()),
                    "--tls-auth-clients".to_owned(),
                    if client_certificates { "yes" } else { "no" }.to_owned(),
                ]
            })?;
            Some(TlsServer { server })
        }

        fn tls_port(&self) -> &str {
            &self.server.args[1]
        }

        fn url(&self, host: &str) -> String {
            format!("rediss://{host}:{}/", self.tls_port())
        }
    }

    async fn round_trip(store: &RedisStore) {
        let key = "sealed-session:overflow:{00000000000000000000000000000000}:tls";
        let blob = b"sealed blob".to_vec();
        store
            .put(key, blob.clone(), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(store.get(key).await.unwrap(), Some(blob));
    }

    async fn revoke_and_check(revocations: &RedisRevocations) {
        let id = SessionId::from_bytes([9; 16]);
        let query = || RevocationQuery::new(id, 0, None);
        assert!(!revocations.is_revoked(query()).await.unwrap());
        revocations
            .revoke_session(id, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(revocations.is_revoked(query()).await.unwrap());
    }

    /// `connect` checks the server's certificate against the system's
    /// root certificates, which `SSL_CERT_FILE` replaces: set here for a
    /// process of its own, as the variable is read at each connection and
    /// setting it in this process would race with the other tests.
    #[test]
    fn connect_checks_the_certificate_against_the_system_roots() {
        if !installed("redis-server", "apt-get install redis-server") {
            return;
        }
        let pki = Pki::new();
        let output = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "tls::in_a_process_that_trusts_the_test_ca"])
            .args(["--ignored", "--nocapture"])
            .env("SSL_CERT_FILE", pki.dir.join("ca.pem"))
            .env(PKI_DIR, pki.dir.as_os_str())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("1 passed"), "{stdout}");
    }

    #[tokio::test]
    #[ignore = "run by connect_checks_the_certificate_against_the_system_roots"]
    async fn in_a_process_that_trusts_the_test_ca() {
        let Some(pki) = std::env::var_os(PKI_DIR).map(PathBuf::from) else {
            eprintln!("skipping: run by connect_checks_the_certificate_against_the_system_roots");
            return;
        };
        let server = TlsServer::start(&pki, "server", false).expect("redis-server");
        for host in ["localhost", "127.0.0.1"] {
            round_trip(&RedisStore::connect(&server.url(host)).await.unwrap()).await;
        }
        let revocations = RedisRevocations::connect(&server.url("localhost"), clock())
            .await
            .unwrap();
        revoke_and_check(&revocations).await;

        // Not a man in the middle: a certificate by another CA, one for
        // another name.
        // another name; the log says which.
        for (cert, logged) in [
            ("stranger", "certificate-unknown-issuer"),
            ("elsewhere", "certificate-for-another-name"),
        ] {
            let other = TlsServer::start(&pki, cert, false).expect("redis-server");
            let (logs, guard) = Logs::capture(tracing::Level::WARN);
            assert_eq!(
                RedisStore::connect(&other.url("localhost"))
                    .await
                    .unwrap_err(),
                Error::Store(StoreError::Unavailable),
                "{cert}"
            );
            drop(guard);
            let text = logs.text();
            assert!(text.contains(&format!("tls=\"{logged}\"")), "{text}");
        }
        // Turning the check off is a setup mistake, said before connecting.
        for scheme in ["rediss", "valkeys"] {
            let insecure = format!("{scheme}://localhost:{}/#insecure", server.tls_port());
            assert_eq!(
                RedisRevocations::connect(&insecure, clock())
                    .await
                    .unwrap_err(),
                Error::InvalidSetting(sealed_session::InvalidSetting::StoreTls)
            );
        }
        // A plain connection to the TLS port gets no answer it can read.
        let plain = format!("redis://127.0.0.1:{}/", server.tls_port());
        let started = Instant::now();
        assert_eq!(
            RedisStore::connect(&plain).await.unwrap_err(),
            Error::Store(StoreError::Unavailable)
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    /// A private CA and a client certificate, through a client the
    /// application builds: the server refuses a client without one.
    #[tokio::test]
    async fn connect_client_with_a_private_ca_and_a_client_certificate() {
        let pki = Pki::new();
        let Some(server) = TlsServer::start(&pki.dir, "server", true) else {
            return;
        };
        let client = |client_tls| {
            redis::Client::build_with_tls(
                server.url("localhost").as_str(),
                redis::TlsCertificates {
                    client_tls,
                    root_cert: Some(Pki::read(&pki.dir, "ca.pem")),
                },
            )
            .unwrap()
        };
        let with_certificate = || {
            client(Some(redis::ClientTlsConfig {
                client_cert: Pki::read(&pki.dir, "client.pem"),
                client_key: Pki::read(&pki.dir, "client.key"),
            }))
        };
        round_trip(
            &RedisStore::connect_client(with_certificate())
                .await
                .unwrap(),
        )
        .await;
        let revocations = RedisRevocations::connect_client(with_certificate(), clock())
            .await
            .unwrap();
        revoke_and_check(&revocations).await;
        let (logs, guard) = Logs::capture(tracing::Level::WARN);
        assert_eq!(
            RedisStore::connect_client(client(None)).await.unwrap_err(),
            Error::Store(StoreError::Unavailable)
        );
        drop(guard);
        assert!(
            logs.text().contains("tls=\"refused-by-server\""),
            "{}",
            logs.text()
        );
        // The client's roots are checked too.
        let stranger = TlsServer::start(&pki.dir, "stranger", false).expect("redis-server");
        let trusting_the_ca = redis::Client::build_with_tls(
            stranger.url("localhost").as_str(),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(Pki::read(&pki.dir, "ca.pem")),
            },
        )
        .unwrap();
        assert_eq!(
            RedisStore::connect_client(trusting_the_ca)
                .await
                .unwrap_err(),
            Error::Store(StoreError::Unavailable)
        );
    }
}

/// A Redis Cluster (feature `redis-cluster`): three primaries on free
/// loopback ports, each with a replica or none.
#[cfg(feature = "redis-cluster")]
mod cluster {
    use super::*;
    use sealed_session::store::{overflow_key, OverflowStore, RevocationCheck, RevocationQuery};

    /// (The nodes come first: they stop before their directory goes.)
    struct Cluster {
        nodes: Vec<RedisServer>,
        dir: ScratchDir,
    }

    /// What `redis-cli -p <port> <args>` prints.
    fn cli(port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli starts");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    impl Cluster {
        /// Starts the nodes and joins them with `redis-cli --cluster
        /// create` (it comes with `redis-server`), with a replica for each
        /// primary if `replicas`; `None` (skip) as [`RedisServer::start`].
        fn start(replicas: bool) -> Option<Self> {
            if !installed("redis-cli", "apt-get install redis-tools") {
                return None;
            }
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let mut cluster = Cluster {
                nodes: Vec::new(),
                dir: ScratchDir::new("cluster"),
            };
            let count = if replicas { 6 } else { 3 };
            for _ in 0..count {
                let node = RedisServer::start_with(|| {
                    // Its own state file, its files (a replica's copy of
                    // its primary) in the cluster's directory rather than
                    // the working one, and its bus on a free port (the
                    // default, its port + 10000, may be out of range).
                    let file = cluster
                        .dir
                        .join(format!("nodes-{}.conf", NEXT.fetch_add(1, SeqCst)));
                    let dump = format!("dump-{}.rdb", NEXT.fetch_add(1, SeqCst));
                    vec![
                        "--dir".to_owned(),
                        cluster.dir.to_str().unwrap().to_owned(),
                        "--dbfilename".to_owned(),
                        dump,
                        "--cluster-enabled".to_owned(),
                        "yes".to_owned(),
                        "--cluster-config-file".to_owned(),
                        file.to_str().unwrap().to_owned(),
                        "--cluster-port".to_owned(),
                        free_port().to_string(),
                    ]
                })?;
                cluster.nodes.push(node);
            }
            let addresses: Vec<String> = cluster
                .nodes
                .iter()
                .map(|node| format!("127.0.0.1:{}", node.port))
                .collect();
            let created = Command::new("redis-cli")
                .args(["--cluster", "create"])
                .args(&addresses)
                .args(["--cluster-replicas", if replicas { "1" } else { "0" }])
                .arg("--cluster-yes")
                .stdout(Stdio::null())
                .status()
                .expect("redis-cli starts");
            assert!(created.success(), "redis-cli --cluster create");
            let deadline = Instant::now() + Duration::from_secs(20);
            while !cluster.nodes.iter().all(|node| {
                let info = cli(node.port, &["cluster", "info"]);
                info.contains("cluster_state:ok")
                    && info.contains(&format!("cluster_known_nodes:{count}"))
            }) {
                assert!(Instant::now() < deadline, "the cluster did not form");
                std::thread::sleep(Duration::from_millis(100));
            }
            Some(cluster)
        }

        fn urls(&self) -> Vec<String> {
            self.nodes.iter().map(RedisServer::url).collect()
        }

        /// The index of the primary that serves `key` (the others answer
        /// `MOVED`, replicas too).
        async fn owner_of(&self, key: &str) -> usize {
            for (index, node) in self.nodes.iter().enumerate() {
                let mut conn = raw(&node.url()).await;
                let serves: redis::RedisResult<bool> =
                    redis::cmd("EXISTS").arg(key).query_async(&mut conn).await;
                if serves.is_ok() {
                    return index;
                }
            }
            panic!("no node serves {key}");
        }

        /// The first session id (0, 1, …) whose revocation record another
        /// node serves than `user`'s records.
        async fn session_away_from_user(&self, user: &str) -> SessionId {
            let user_node = self
                .owner_of(&format!("sealed-session:revoked-user:{{user:{user}}}"))
                .await;
            for byte in 0..=255u8 {
                let id = SessionId::from_bytes([byte; 16]);
                let key = format!("sealed-session:revoked:{{{id}}}");
                if self.owner_of(&key).await != user_node {
                    return id;
                }
            }
            panic!("no such session id");
        }

        /// The first overflow key (of sessions 0, 1, …) that node 0
        /// serves, or, unless `on_node_0`, that another node serves.
        async fn key_on(&self, on_node_0: bool) -> String {
            for byte in 0..=255u8 {
                let key = overflow_key(&SessionId::from_bytes([byte; 16]), &[byte; 16]);
                if (self.owner_of(&key).await == 0) == on_node_0 {
                    return key;
                }
            }
            panic!("no such key");
        }
    }

    #[cfg(feature = "test-util")]
    #[tokio::test]
    async fn redis_cluster_conformance() {
        let Some(cluster) = Cluster::start(false) else {
            return;
        };
        let urls = cluster.urls();
        let first = [urls[0].as_str()];
        let store = RedisStore::connect_cluster(&first).await.unwrap();
        check_overflow_store(&store, |s| tokio::time::sleep(Duration::from_secs(s))).await;
        let clock = clock();
        let revocations = RedisRevocations::connect_cluster(&first, clock.clone())
            .await
            .unwrap();
        conforming_sealer(&clock, revocations).await;
    }

    /// Sessions spread over the nodes, and a check with a user asks the
    /// session's node and the user's, which differ.
    #[tokio::test]
    async fn a_cluster_spreads_sessions_and_checks_users_on_their_own_node() {
        let Some(cluster) = Cluster::start(false) else {
            return;
        };
        let urls = cluster.urls();
        let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
        let store = RedisStore::connect_cluster(&nodes).await.unwrap();
        let mut holders = std::collections::BTreeSet::new();
        for byte in 0..24u8 {
            let key = overflow_key(&SessionId::from_bytes([byte; 16]), &[byte; 16]);
            let blob = vec![byte; 100];
            store
                .put(&key, blob.clone(), Duration::from_secs(60))
                .await
                .unwrap();
            assert_eq!(store.get(&key).await.unwrap(), Some(blob));
            holders.insert(cluster.owner_of(&key).await);
        }
        assert_eq!(holders.len(), 3, "every node holds some sessions");

        let clock = clock();
        let revocations = RedisRevocations::connect_cluster(&nodes, clock.clone())
            .await
            .unwrap();
        let day = Duration::from_secs(86_400);
        RevocationStore::revoke_user(&revocations, "ada", day)
            .await
            .unwrap();
        // A revoked session on another node than the user's records.
        let id = cluster.session_away_from_user("ada").await;
        RevocationStore::revoke_session(&revocations, id, day)
            .await
            .unwrap();
        let now = sealed_session::Clock::now(&*clock);
        let ask = |id, created_at| {
            revocations.is_revoked(RevocationQuery::new(id, created_at, Some("ada")))
        };
        // Revoked as a session, whatever the user's record says.
        assert!(ask(id, now + 1).await.unwrap());
        // Not revoked as a session: the user's record decides.
        let other = SessionId::from_bytes([200; 16]);
        assert!(ask(other, now).await.unwrap());
        assert!(!ask(other, now + 1).await.unwrap());
        // Any user id keeps its two records in one slot, even one that
        // would empty a bare hash tag (`{}`, `{}ada}`): the records are
        // written together and read back.
        let kept = SessionId::from_bytes([201; 16]);
        for user in ["", "}ada", "a}b{c"] {
            revocations
                .revoke_user_except(user, kept, day)
                .await
                .unwrap();
            let ask = |id| revocations.is_revoked(RevocationQuery::new(id, now, Some(user)));
            assert!(!ask(kept).await.unwrap(), "{user:?}");
            assert!(ask(other).await.unwrap(), "{user:?}");
        }
    }

    /// A check with a user asks the session's node and the user's at
    /// once: with every node's traffic held back, it takes one round
    /// trip's delay, not two.
    #[tokio::test]
    async fn a_clustered_check_asks_both_nodes_at_once() {
        let Some(cluster) = Cluster::start(false) else {
            return;
        };
        // Every node reached through a proxy, which it announces.
        let proxies: Vec<Proxy> = cluster.nodes.iter().map(|n| Proxy::start(n.port)).collect();
        for (node, proxy) in cluster.nodes.iter().zip(&proxies) {
            cli(
                node.port,
                &[
                    "config",
                    "set",
                    "cluster-announce-port",
                    &proxy.port.to_string(),
                ],
            );
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cluster.nodes.iter().all(|node| {
            let known = cli(node.port, &["cluster", "nodes"]);
            proxies
                .iter()
                .all(|p| known.contains(&format!(":{}@", p.port)))
        }) {
            assert!(
                Instant::now() < deadline,
                "the proxies' ports did not spread"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let revocations = RedisRevocations::connect_cluster(&[proxies[0].url().as_str()], clock())
            .await
            .unwrap();
        let id = cluster.session_away_from_user("ada").await;
        let ask = || revocations.is_revoked(RevocationQuery::new(id, 0, Some("ada")));
        // Connections to both nodes made (the first request of each
        // connection may take more).
        assert!(!ask().await.unwrap());
        let delay = Duration::from_millis(250);
        for proxy in &proxies {
            proxy.delay(delay);
        }
        // A round trip is held back twice: the request, then the answer.
        let started = Instant::now();
        assert!(!ask().await.unwrap());
        let took = started.elapsed();
        assert!(took >= 2 * delay && took < 3 * delay, "{took:?}");
    }

    /// A failover hands a primary's slots to its replica: the store follows
    /// on the connection it has (`MOVED`, then the new slot map).
    #[tokio::test]
    async fn a_cluster_store_follows_a_failover() {
        let Some(cluster) = Cluster::start(true) else {
            return;
        };
        let urls = cluster.urls();
        let store = RedisStore::connect_cluster(&[urls[0].as_str()])
            .await
            .unwrap();
        let key = overflow_key(&SessionId::from_bytes([1; 16]), &[1; 16]);
        let ttl = Duration::from_secs(60);
        store.put(&key, b"before".to_vec(), ttl).await.unwrap();
        let owner = cluster.owner_of(&key).await;
        let info = |port: u16| cli(port, &["info", "replication"]);
        let owner_port = cluster.nodes[owner].port;
        let replica = (0..cluster.nodes.len())
            .find(|&i| info(cluster.nodes[i].port).contains(&format!("master_port:{owner_port}")))
            .expect("the primary has a replica");
        // The write has reached the replica.
        let mut conn = raw(&cluster.nodes[owner].url()).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let acknowledged: u32 = redis::cmd("WAIT")
                .arg(1)
                .arg(200)
                .query_async(&mut conn)
                .await
                .unwrap();
            if acknowledged == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "the replica did not catch up");
        }
        // A manual failover that does not finish within Redis' own five
        // seconds is called off, as can happen on a loaded machine: it is
        // asked again, then forced (the replica has every write).
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut attempt = 0;
        'promoted: loop {
            let how: &[&str] = if attempt == 0 {
                &["cluster", "failover"]
            } else {
                &["cluster", "failover", "force"]
            };
            attempt += 1;
            let failover = cli(cluster.nodes[replica].port, how);
            // A replica promoted since the last look refuses the request.
            let promoted = || info(cluster.nodes[replica].port).contains("role:master");
            assert!(failover.contains("OK") || promoted(), "{failover}");
            let asked = Instant::now();
            while asked.elapsed() < Duration::from_secs(8) {
                if promoted() {
                    break 'promoted;
                }
                assert!(
                    Instant::now() < deadline,
                    "no failover after {attempt} requests; the replica:\n{}\nthe primary:\n{}",
                    info(cluster.nodes[replica].port),
                    info(owner_port)
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        assert_eq!(store.get(&key).await.unwrap(), Some(b"before".to_vec()));
        store.put(&key, b"after".to_vec(), ttl).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap(), Some(b"after".to_vec()));
        // The old primary learns of its demotion by gossip (at once after
        // a plain failover, later after a forced one): until then it still
        // answers for the slot.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let owner = cluster.owner_of(&key).await;
            if owner == replica {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {owner} still serves the key, not the promoted node {replica}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A node down (refusing connections) fails the requests for its keys
    /// at once, well within the three seconds a request gets, and not the
    /// others.
    #[tokio::test]
    async fn a_cluster_node_down_fails_its_keys_alone_and_within_bounds() {
        let Some(mut cluster) = Cluster::start(false) else {
            return;
        };
        let urls = cluster.urls();
        let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
        let store = RedisStore::connect_cluster(&nodes).await.unwrap();
        let (down, up) = (cluster.key_on(true).await, cluster.key_on(false).await);
        let ttl = Duration::from_secs(60);
        store.put(&down, b"a".to_vec(), ttl).await.unwrap();
        store.put(&up, b"b".to_vec(), ttl).await.unwrap();
        cluster.nodes[0].kill();
        let started = Instant::now();
        assert_eq!(
            store.get(&down).await.unwrap_err(),
            Error::Store(StoreError::Unavailable)
        );
        assert_took_less(started, Duration::from_secs(4));
        let started = Instant::now();
        assert_eq!(store.get(&up).await.unwrap(), Some(b"b".to_vec()));
        assert_took_less(started, Duration::from_secs(1));
    }

    /// A connection to a node that stops answering (its host gone, the
    /// connection left open) is replaced once a request times out on it.
    #[tokio::test]
    async fn a_cluster_connection_that_stops_answering_is_replaced() {
        let Some(cluster) = Cluster::start(false) else {
            return;
        };
        // Node 0 is reached through a proxy: it announces the proxy's port.
        let proxy = Proxy::start(cluster.nodes[0].port);
        let mut admin = raw(&cluster.nodes[0].url()).await;
        let () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("cluster-announce-port")
            .arg(proxy.port)
            .query_async(&mut admin)
            .await
            .unwrap();
        let store = RedisStore::connect_cluster(&[proxy.url().as_str()])
            .await
            .unwrap();
        let key = cluster.key_on(true).await;
        let blob = b"sealed".to_vec();
        let ttl = Duration::from_secs(60);
        store.put(&key, blob.clone(), ttl).await.unwrap();
        proxy.silence();
        let (logs, guard) = Logs::capture(tracing::Level::WARN);
        // A request on the silent connection costs the three seconds.
        let started = Instant::now();
        assert_eq!(
            store.get(&key).await.unwrap_err(),
            Error::Store(StoreError::Unavailable)
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(5),
            "{took:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.get(&key).await != Ok(Some(blob.clone())) {
            assert!(Instant::now() < deadline, "the connection was not replaced");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(guard);
        // One replacement for the requests that failed.
        assert_eq!(logs.text().matches("redis-reconnecting").count(), 1);
    }

    /// The client builder given is what the store connects with: a
    /// password the cluster does not have fails, none works. (Its address
    /// map, private CA or credentials are not exercised here.)
    #[tokio::test]
    async fn a_cluster_store_connects_with_the_builder_it_is_given() {
        let Some(cluster) = Cluster::start(false) else {
            return;
        };
        let url = cluster.nodes[0].url();
        let builder = || redis::cluster::ClusterClientBuilder::new([url.as_str()]);
        assert_eq!(
            RedisStore::connect_cluster_with(builder().password("not this"))
                .await
                .unwrap_err(),
            Error::Store(StoreError::Unavailable)
        );
        let store = RedisStore::connect_cluster_with(builder()).await.unwrap();
        let key = overflow_key(&SessionId::from_bytes([3; 16]), &[3; 16]);
        let ttl = Duration::from_secs(60);
        store.put(&key, b"x".to_vec(), ttl).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap(), Some(b"x".to_vec()));
        let revocations = RedisRevocations::connect_cluster_with(builder(), clock())
            .await
            .unwrap();
        let id = SessionId::from_bytes([4; 16]);
        RevocationStore::revoke_session(&revocations, id, ttl)
            .await
            .unwrap();
        assert!(revocations
            .is_revoked(RevocationQuery::new(id, 0, None))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn cluster_addresses_that_cannot_serve_are_setup_mistakes() {
        let clock = clock();
        let refused = |nodes: &'static [&'static str]| {
            let clock = clock.clone();
            async move {
                RedisRevocations::connect_cluster(nodes, clock)
                    .await
                    .unwrap_err()
            }
        };
        let invalid = |setting| Error::InvalidSetting(setting);
        use sealed_session::InvalidSetting::{StoreAddress, StoreTls};
        assert_eq!(refused(&[]).await, invalid(StoreAddress));
        assert_eq!(refused(&["not a url"]).await, invalid(StoreAddress));
        // Nodes that disagree (the cluster client checks only what the
        // first sets), or a database, which a cluster refuses.
        for nodes in [
            &["redis://:one@127.0.0.1:1/", "redis://:two@127.0.0.1:2/"][..],
            &["redis://127.0.0.1:1/", "redis://:two@127.0.0.1:2/"],
            &["redis://127.0.0.1:1/", "redis://user:pw@127.0.0.1:2/"],
            &[
                "redis://127.0.0.1:1/",
                "redis://127.0.0.1:2/?protocol=resp3",
            ],
            &["redis://127.0.0.1:1/3"],
        ] {
            assert_eq!(refused(nodes).await, invalid(StoreAddress), "{nodes:?}");
        }
        assert_eq!(
            refused(&["redis+unix:///tmp/redis.sock"]).await,
            invalid(StoreAddress)
        );
        #[cfg(feature = "redis-tls")]
        assert_eq!(
            refused(&["rediss://127.0.0.1:1/#insecure"]).await,
            invalid(StoreTls)
        );
        #[cfg(not(feature = "redis-tls"))]
        assert_eq!(refused(&["rediss://127.0.0.1:1/"]).await, invalid(StoreTls));
    }
}

/// A blob renewed with `touch` keeps its session's index at least as long
/// (a retiring `touch`, shorter, does not shorten it), and a blob that
/// outlived its index joins it again, as the oldest: otherwise a client
/// renewing several cookies of one session keeps blobs no index counts,
/// past the cap of blobs a session.
#[tokio::test]
async fn a_touched_blob_stays_in_its_sessions_index() {
    use sealed_session::store::{overflow_key, OverflowStore};
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&server.url())
        .await
        .unwrap()
        .namespace("app");
    let mut conn = raw(&server.url()).await;
    let sid = SessionId::from_bytes([6; 16]);
    let index = format!("app:sealed-session:overflow-index:{{{sid}}}");
    let key = |n: u8| overflow_key(&sid, &[n; 16]);
    let ttl_of = |key: String| {
        let mut conn = conn.clone();
        async move {
            let ttl: i64 = redis::cmd("TTL")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
            ttl
        }
    };
    let (minute, ten) = (Duration::from_secs(60), Duration::from_secs(600));
    store
        .put_for_session(&sid, &key(0), vec![0], minute, 3)
        .await
        .unwrap();
    assert!((50..=60).contains(&ttl_of(index.clone()).await));
    assert!(store.touch(&key(0), ten).await.unwrap());
    assert!((590..=600).contains(&ttl_of(index.clone()).await));
    assert!(store.touch(&key(0), Duration::from_secs(5)).await.unwrap());
    assert!((590..=600).contains(&ttl_of(index.clone()).await));
    assert!(ttl_of(format!("app:{}", key(0))).await <= 5);

    // The index gone (expired) while the blob lived on: a touch counts
    // it again, so the next writes keep 3 blobs of the session in all.
    assert!(store.touch(&key(0), ten).await.unwrap());
    redis::cmd("DEL")
        .arg(&index)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    assert!(store.touch(&key(0), ten).await.unwrap());
    for n in 1..=3 {
        store
            .put_for_session(&sid, &key(n), vec![n], minute, 3)
            .await
            .unwrap();
    }
    let mut blobs: Vec<String> = redis::cmd("KEYS")
        .arg(format!("app:sealed-session:overflow:{{{sid}}}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    blobs.sort();
    let expected: Vec<String> = (1..=3).map(|n| format!("app:{}", key(n))).collect();
    assert_eq!(blobs, expected);
    // A missing blob is not added to the index.
    assert!(!store.touch(&key(9), ten).await.unwrap());
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(&index)
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(members, expected);
}

/// The ACL that `RedisStore`'s docs give (namespace `app`) lets both
/// stores do everything they do; without the commands the scripts call,
/// the writes that run them fail.
#[tokio::test]
async fn the_documented_acl_is_enough_for_both_stores() {
    use sealed_session::store::{overflow_key, OverflowStore, RevocationCheck, RevocationQuery};
    use sealed_session::Clock;
    let Some(server) = RedisServer::start() else {
        return;
    };
    let admin = raw(&server.url()).await;
    let acl = |extra: &str| {
        let mut conn = admin.clone();
        let line = format!(
            "web on >password ~app:sealed-session:* +eval +set +get +getrange +pexpire \
             +del +exists +multi +exec {extra}"
        );
        async move {
            redis::cmd("ACL")
                .arg("SETUSER")
                .arg("web")
                .arg("reset")
                .query_async::<()>(&mut conn)
                .await
                .unwrap();
            let mut setuser = redis::cmd("ACL");
            setuser.arg("SETUSER");
            for word in line.split_whitespace() {
                setuser.arg(word);
            }
            setuser.query_async::<()>(&mut conn).await.unwrap();
        }
    };
    acl("+zrange +zadd +zcard +zscore +type +zremrangebyrank +pttl").await;
    let url = format!("redis://web:password@127.0.0.1:{}/", server.port);
    let clock = clock();
    let store = RedisStore::connect(&url).await.unwrap().namespace("app");
    let revocations = RedisRevocations::connect(&url, clock.clone())
        .await
        .unwrap()
        .namespace("app");
    let day = Duration::from_secs(86_400);
    let sid = SessionId::from_bytes([3; 16]);
    let key = overflow_key(&sid, &[1; 16]);
    store
        .put_for_session(&sid, &key, b"blob".to_vec(), day, 8)
        .await
        .unwrap();
    assert!(store.touch(&key, day).await.unwrap());
    assert_eq!(
        store.get(&key).await.unwrap().as_deref(),
        Some(&b"blob"[..])
    );
    assert_eq!(
        store.get_bounded(&key, 10).await.unwrap().as_deref(),
        Some(&b"blob"[..])
    );
    store
        .put("sealed-session:plain", b"x".to_vec(), day)
        .await
        .unwrap();
    assert!(store.touch("sealed-session:plain", day).await.unwrap());
    store.delete(&key).await.unwrap();
    store.delete("sealed-session:plain").await.unwrap();
    revocations.revoke_session(sid, day).await.unwrap();
    let kept = SessionId::from_bytes([4; 16]);
    revocations.revoke_user("bob", day).await.unwrap();
    revocations
        .revoke_user_except("ann", kept, day)
        .await
        .unwrap();
    let old = clock.now() - 10;
    let ask = |id, user| RevocationQuery::new(id, old, user);
    assert!(revocations.is_revoked(ask(sid, None)).await.unwrap());
    assert!(revocations
        .is_revoked(ask(kept, Some("bob")))
        .await
        .unwrap());
    assert!(!revocations
        .is_revoked(ask(kept, Some("ann")))
        .await
        .unwrap());

    // The scripts' own calls are checked against the ACL too.
    acl("").await;
    let store = RedisStore::connect(&url).await.unwrap().namespace("app");
    assert_eq!(
        store
            .put_for_session(&sid, &key, b"blob".to_vec(), day, 8)
            .await,
        Err(Error::Store(StoreError::Unavailable))
    );
}
