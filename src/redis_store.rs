//! Redis implementations of the overflow store and the revocation check
//! (feature `redis`). The module is private: what users need is in
//! [`RedisStore`]'s docs, which rustdoc shows.

use core::time::Duration;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use crate::clock::Clock;
use crate::error::{InvalidSetting, StoreError};
use crate::session::SessionId;
use crate::store::{
    at_most, ttl_secs, BoxFuture, OverflowStore, RevocationCheck, RevocationQuery, RevocationStore,
    MAX_TTL,
};
use crate::Error;

/// A Redis error as the store's error: a key holding another type than
/// this crate writes (WRONGTYPE: written by someone else, or under a
/// colliding namespace) is altered content, `Rejected` like an altered
/// value; a server out of memory under its `maxmemory` (OOM) is
/// `OverCapacity`; anything else is `Unavailable`. The cause is logged at
/// `WARN`, as the error kind alone cannot tell an outage from a
/// misconfigured server (NOAUTH, READONLY, MOVED): its category and the
/// server's error codes, not its messages, which may quote a command's
/// arguments (session ids, user ids).
fn store_error(e: redis::RedisError) -> Error {
    failure(e).error
}

/// A failed request: the store's error, whether the connection it went
/// out on is to be replaced (see [`RedisStore`]), whether the server was
/// out of reach (the request timed out, or the connection was refused),
/// and whether it answered (with an error).
struct Failure {
    error: Error,
    stale_connection: bool,
    unreachable: bool,
    answered: bool,
}

/// [`store_error`], and whether the request timed out or was answered
/// `READONLY` or `MASTERDOWN` (a replica, its primary out of reach).
fn failure(e: redis::RedisError) -> Failure {
    let category = e.category().to_owned();
    #[cfg(feature = "redis-tls")]
    let tls = tls_failure(&e);
    #[cfg(not(feature = "redis-tls"))]
    let tls = "";
    let (timeout, refused) = (e.is_timeout(), e.is_connection_refusal());
    // A server error, or a pipeline's errors (one per failed command).
    let codes: Vec<String> = e
        .into_server_errors()
        .map(|errors| {
            errors
                .iter()
                .map(|(_, error)| error.code().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let has = |code: &str| codes.iter().any(|c| c == code);
    let kind = if has("WRONGTYPE") {
        StoreError::Rejected
    } else if has("OOM") {
        StoreError::OverCapacity
    } else {
        StoreError::Unavailable
    };
    tracing::warn!(
        event = "redis-failed",
        category,
        codes = ?codes,
        timeout,
        refused,
        store_error = %kind,
        tls,
        "a Redis store request failed"
    );
    Failure {
        error: Error::Store(kind),
        stale_connection: timeout || has("READONLY") || has("MASTERDOWN"),
        unreachable: timeout || refused,
        answered: !codes.is_empty(),
    }
}

/// What TLS refused, when it did: a class, for a failure that would
/// otherwise read as any I/O error (never the error's text, which names
/// hosts).
#[cfg(feature = "redis-tls")]
fn tls_failure(e: &redis::RedisError) -> &'static str {
    use rustls::{CertificateError, Error as Tls};
    use std::error::Error as _;
    type Shared = Arc<dyn std::error::Error + Send + Sync>;
    // The client wraps the I/O error in an `Arc`; the I/O error carries
    // the TLS one.
    let mut next = e.source();
    for _ in 0..8 {
        let Some(error) = next else { break };
        next = if let Some(shared) = error.downcast_ref::<Shared>() {
            Some(&**shared)
        } else if let Some(io) = error.downcast_ref::<std::io::Error>() {
            io.get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static))
        } else if let Some(tls) = error.downcast_ref::<Tls>() {
            return match tls {
                Tls::InvalidCertificate(CertificateError::UnknownIssuer) => {
                    "certificate-unknown-issuer"
                }
                Tls::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => "certificate-for-another-name",
                Tls::InvalidCertificate(
                    CertificateError::Expired | CertificateError::ExpiredContext { .. },
                ) => "certificate-expired",
                Tls::InvalidCertificate(_) => "certificate-invalid",
                Tls::AlertReceived(_) => "refused-by-server",
                _ => "handshake-failed",
            };
        } else {
            error.source()
        };
    }
    ""
}

/// The connection the requests go out on, and, unless the application
/// gave the manager (`from_manager`), what it takes to make another.
struct Connection {
    current: RwLock<Current>,
    remake: Option<Remake>,
    breaker: Breaker,
}

/// Fails requests at once while one server is out of reach: after a
/// request times out or is refused a connection, one request at a time
/// goes out (a probe) until the server answers one, and the others fail
/// without waiting (nor logging more than at `DEBUG`). A frozen server
/// (paused, swapping, its host gone with the connection open) otherwise
/// costs every request that touches the store the full timeouts, a few
/// seconds each, and holds as many requests open as arrive; one that is
/// down, the manager's reconnection and retry.
///
/// Not on a Redis Cluster: there a timeout concerns one node, and the
/// other nodes' keys must still go out.
#[derive(Default)]
struct Breaker {
    /// A request timed out or was refused, and no answer has come since.
    tripped: AtomicBool,
    /// A probe is out.
    probing: AtomicBool,
}

/// What [`Breaker::admit`] lets a request do.
enum Admission<'b> {
    /// Go out: the server has not been out of reach since its last answer.
    Send,
    /// Go out as the probe (others fail until it ends).
    Probe(Probe<'b>),
    /// Fail at once: another request is probing.
    Refuse,
}

/// The probe's turn, given back when it ends, even if its request is
/// dropped before an answer (the client went away).
struct Probe<'b>(&'b AtomicBool);

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Breaker {
    fn admit(&self) -> Admission<'_> {
        if !self.tripped.load(Ordering::Acquire) {
            return Admission::Send;
        }
        match (self.probing).compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Admission::Probe(Probe(&self.probing)),
            Err(_) => Admission::Refuse,
        }
    }

    /// A request timed out or was refused.
    fn trip(&self) {
        if !self.tripped.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                event = "redis-failing-fast",
                "Redis is out of reach: until it answers a request, one request at a time goes out and the others fail at once"
            );
        }
    }

    /// The server answered a request.
    fn reset(&self) {
        if self.tripped.swap(false, Ordering::AcqRel) {
            tracing::info!(
                event = "redis-answering-again",
                "Redis answers again: requests go out again"
            );
        }
    }
}

/// What makes another connection like the first.
enum Remake {
    Single(redis::Client, ConnectionManagerConfig),
    #[cfg(feature = "redis-cluster")]
    Cluster(redis::cluster::ClusterClient),
}

/// A manager, how many have been replaced before it, and when the last
/// replacement was.
#[derive(Clone)]
struct Current {
    generation: u64,
    manager: Manager,
    replaced_at: Option<Instant>,
}

/// What requests go out on (a clone shares its connections).
#[derive(Clone)]
enum Manager {
    /// One server.
    Single(ConnectionManager),
    /// A Redis Cluster: the connection follows its slots and failovers by
    /// itself, but keeps a connection to a node that stops answering.
    #[cfg(feature = "redis-cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Manager {
    async fn query<T: redis::FromRedisValue>(
        &mut self,
        request: Request<'_>,
    ) -> redis::RedisResult<T> {
        match self {
            Manager::Single(manager) => request.query(manager).await,
            #[cfg(feature = "redis-cluster")]
            Manager::Cluster(cluster) => request.query(cluster).await,
        }
    }
}

/// The least time between two replacements: an address that keeps leading
/// to a server that refuses writes (a replica, before a failover moves the
/// address) costs a new connection a second, not one per request.
const MIN_REPLACEMENT_INTERVAL: Duration = Duration::from_secs(1);

impl Connection {
    fn new(manager: Manager, remake: Option<Remake>) -> Self {
        Connection {
            current: RwLock::new(Current {
                generation: 0,
                manager,
                replaced_at: None,
            }),
            remake,
            breaker: Breaker::default(),
        }
    }

    /// A single server's, which `client` and `config` can remake.
    fn single(
        manager: ConnectionManager,
        client: redis::Client,
        config: ConnectionManagerConfig,
    ) -> Self {
        Self::new(
            Manager::Single(manager),
            Some(Remake::Single(client, config)),
        )
    }

    /// Whether it is a Redis Cluster's: every cluster connection keeps its
    /// client to remake it (read without the lock).
    fn is_cluster(&self) -> bool {
        match &self.remake {
            #[cfg(feature = "redis-cluster")]
            Some(Remake::Cluster(_)) => true,
            _ => false,
        }
    }

    /// The manager to send on (a clone shares its connection).
    fn current(&self) -> Current {
        // A panic cannot leave the pair half-written: take it as it is.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the manager of `generation` by one that connects on its
    /// first request (a cluster's, made on a task of its own, as the
    /// cluster client connects at once: the requests until it is ready
    /// use the old one); nothing if another request has replaced it
    /// already (one replacement for all the requests that failed on it),
    /// if the last replacement was less than [`MIN_REPLACEMENT_INTERVAL`]
    /// ago, or if the application gave the manager.
    fn replace(self: &Arc<Self>, generation: u64) {
        let Some(remake) = &self.remake else {
            return;
        };
        {
            let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
            let recent =
                (current.replaced_at).is_some_and(|at| at.elapsed() < MIN_REPLACEMENT_INTERVAL);
            if current.generation != generation || recent {
                return;
            }
            match remake {
                Remake::Single(client, config) => {
                    // The client and configuration made the first manager:
                    // they cannot fail now.
                    let Ok(manager) =
                        ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                    else {
                        return;
                    };
                    *current = Current {
                        generation: generation + 1,
                        manager: Manager::Single(manager),
                        replaced_at: Some(Instant::now()),
                    };
                }
                #[cfg(feature = "redis-cluster")]
                Remake::Cluster(client) => {
                    // Defensive: the client's own timeouts already need a
                    // Tokio runtime.
                    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                        return;
                    };
                    current.replaced_at = Some(Instant::now());
                    let (connection, client) = (Arc::clone(self), client.clone());
                    runtime.spawn(async move {
                        // A failure (logged) leaves the old connection, and
                        // the next request that fails on it tries again.
                        let cluster = match client.get_async_connection().await {
                            Ok(cluster) => cluster,
                            Err(e) => {
                                // Logged by `failure`; nothing to replace.
                                let _ = failure(e);
                                return;
                            }
                        };
                        let mut current = connection
                            .current
                            .write()
                            .unwrap_or_else(PoisonError::into_inner);
                        if current.generation == generation {
                            *current = Current {
                                generation: generation + 1,
                                manager: Manager::Cluster(cluster),
                                replaced_at: Some(Instant::now()),
                            };
                        }
                    });
                }
            }
        }
        tracing::warn!(
            event = "redis-reconnecting",
            "a Redis request timed out or was refused as to a replica: the next ones go out on a new connection"
        );
    }
}

/// A command or a pipeline, as [`send`] takes it.
#[derive(Clone, Copy)]
enum Request<'r> {
    Command(&'r redis::Cmd),
    Pipeline(&'r redis::Pipeline),
}

impl Request<'_> {
    async fn query<T: redis::FromRedisValue>(
        self,
        connection: &mut impl redis::aio::ConnectionLike,
    ) -> redis::RedisResult<T> {
        match self {
            Request::Command(command) => command.query_async(connection).await,
            Request::Pipeline(pipeline) => pipeline.query_async(connection).await,
        }
    }
}

impl<'r> From<&'r mut redis::Cmd> for Request<'r> {
    fn from(command: &'r mut redis::Cmd) -> Self {
        Request::Command(command)
    }
}

impl<'r> From<&'r mut redis::Pipeline> for Request<'r> {
    fn from(pipeline: &'r mut redis::Pipeline) -> Self {
        Request::Pipeline(pipeline)
    }
}

/// Sends `request`, once more if the connection it went out on had been
/// dropped. The manager reconnects on that error but hands it on, so
/// without a second try the first request on each connection after a
/// server restart, a failover or an idle-connection reaper (Redis'
/// `timeout`, a NAT, a load balancer) fails although the server answers: a
/// logged-in user looks logged out, a save answers 503. Every request of
/// this module may run twice (SET, GET, GETRANGE, DEL, PEXPIRE, EXISTS,
/// and a transaction of SETs and a DEL), as one that reached the server
/// before the drop might. Not after a timeout (the server may be stuck: a
/// second try would double the wait) nor a refused connection (the server
/// is down: the reconnection's own retry has been made).
async fn send<'r, T: redis::FromRedisValue>(
    connection: &Arc<Connection>,
    request: impl Into<Request<'r>>,
) -> Result<T, Error> {
    let request = request.into();
    let clustered = connection.is_cluster();
    // Held until the request ends.
    let _probe = match connection.breaker.admit() {
        Admission::Send => None,
        Admission::Probe(probe) => Some(probe),
        Admission::Refuse => {
            tracing::debug!(
                event = "redis-skipped",
                "a Redis request failed at once: the server has not answered since it was out of reach"
            );
            return Err(Error::Store(StoreError::Unavailable));
        }
    };
    // A clone of the manager, which shares its connection.
    let mut current = connection.current();
    let result = match current.manager.query(request).await {
        // (A cluster's client has reconnected and retried by itself.)
        Err(e)
            if e.is_connection_dropped()
                && !e.is_connection_refusal()
                && !e.is_timeout()
                && !clustered =>
        {
            tracing::debug!(
                event = "redis-resent",
                "a Redis connection was dropped: sending once more on a new one"
            );
            current.manager.query(request).await
        }
        result => result,
    };
    let result = result.map_err(failure);
    if !clustered {
        match &result {
            Ok(_) => connection.breaker.reset(),
            Err(failure) if failure.answered => connection.breaker.reset(),
            Err(failure) if failure.unreachable => connection.breaker.trip(),
            Err(_) => {}
        }
    }
    result.map_err(|failure| {
        if failure.stale_connection {
            connection.replace(current.generation);
        }
        failure.error
    })
}

/// Connects a connection manager with short timeouts, so that a server that
/// is down fails a request quickly instead of hanging it; kept with what
/// makes another.
async fn connect(url: &str) -> Result<Connection, Error> {
    connect_client(open(url)?).await
}

/// A client for `url` (not connected), or why the URL does not parse.
fn open(url: &str) -> Result<redis::Client, Error> {
    // Not logged: the URL may hold a password, and the error quotes it.
    redis::Client::open(url).map_err(|_| Error::InvalidSetting(unparsed_address(url)))
}

/// Why `url` does not parse: it asks for TLS and this build of the client
/// has none, or it is no Redis URL.
fn unparsed_address(url: &str) -> InvalidSetting {
    let asks_tls = ["rediss://", "valkeys://"].iter().any(|scheme| {
        url.get(..scheme.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(scheme))
    });
    // Whether the client has TLS depends on its features, which the
    // application may have enabled without `redis-tls`: asked, not assumed.
    let client_has_tls = redis::Client::open("rediss://127.0.0.1/").is_ok();
    if asks_tls && !client_has_tls {
        InvalidSetting::StoreTls
    } else {
        InvalidSetting::StoreAddress
    }
}

/// Refuses TLS that skips the server's certificate check, and readies
/// rustls for TLS.
fn check_tls(address: &redis::ConnectionAddr) -> Result<(), Error> {
    if let redis::ConnectionAddr::TcpTls { insecure, .. } = address {
        // Revocation records are not sealed: whoever sits between this
        // server and an unverified store could make revoked sessions open.
        if *insecure {
            return Err(Error::InvalidSetting(InvalidSetting::StoreTls));
        }
        #[cfg(feature = "redis-tls")]
        install_crypto_provider();
    }
    Ok(())
}

/// The timeouts and retries of every single-server connection.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)))
        .set_number_of_retries(1)
}

async fn connect_client(client: redis::Client) -> Result<Connection, Error> {
    connect_client_with_config(client, manager_config()).await
}

/// [`connect_client`] with the application's timeouts and retries.
async fn connect_client_with_config(
    client: redis::Client,
    config: ConnectionManagerConfig,
) -> Result<Connection, Error> {
    check_tls(client.get_connection_info().addr())?;
    let manager = ConnectionManager::new_with_config(client.clone(), config.clone())
        .await
        .map_err(store_error)?;
    Ok(Connection::single(manager, client, config))
}

/// A connection to `url` made on its first request, so that a server
/// can start while Redis is down. The manager spawns its task at once:
/// outside a Tokio runtime that would panic, so it is refused.
fn connect_lazy(url: &str) -> Result<Connection, Error> {
    let client = open(url)?;
    check_tls(client.get_connection_info().addr())?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::InvalidSetting(InvalidSetting::NoRuntime));
    }
    let config = manager_config();
    let manager = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
        .map_err(store_error)?;
    Ok(Connection::single(manager, client, config))
}

/// Connects to a Redis Cluster through `nodes`, with the timeouts of
/// [`connect`], and three seconds for a request with its redirections
/// (a slot that moved, a failover).
#[cfg(feature = "redis-cluster")]
async fn connect_cluster(nodes: &[&str]) -> Result<Connection, Error> {
    let mut addresses = Vec::with_capacity(nodes.len());
    for url in nodes {
        let address = open(url)?.get_connection_info().clone();
        check_tls(address.addr())?;
        addresses.push(address);
    }
    // The cluster client compares only what the first node sets, and
    // would send a database a cluster refuses: a setup mistake either way.
    let settings = |address: &redis::ConnectionInfo| {
        let redis = address.redis_settings();
        let tls = matches!(address.addr(), redis::ConnectionAddr::TcpTls { .. });
        (
            redis.username().map(str::to_owned),
            redis.password().map(str::to_owned),
            redis.protocol(),
            tls,
        )
    };
    let agree = addresses
        .iter()
        .all(|address| settings(address) == settings(&addresses[0]));
    if !agree || addresses.iter().any(|a| a.redis_settings().db() != 0) {
        return Err(Error::InvalidSetting(InvalidSetting::StoreAddress));
    }
    connect_cluster_with(redis::cluster::ClusterClientBuilder::new(addresses)).await
}

/// Builds `builder` with this crate's timeouts and retries, and connects.
#[cfg(feature = "redis-cluster")]
async fn connect_cluster_with(
    builder: redis::cluster::ClusterClientBuilder,
) -> Result<Connection, Error> {
    // No node, nodes that differ in password, user, TLS or protocol, or a
    // Unix socket (a cluster gives its nodes' addresses as TCP).
    let client = builder
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(1))
        .overall_response_timeout(Some(Duration::from_secs(3)))
        // Redirections are retried at once; a node refusing connections
        // or a cluster down, after short waits, within the 3 s.
        .retries(3)
        .min_retry_wait(100)
        .max_retry_wait(500)
        .build()
        .map_err(|_| Error::InvalidSetting(InvalidSetting::StoreAddress))?;
    let cluster = client.get_async_connection().await.map_err(store_error)?;
    Ok(Connection::new(
        Manager::Cluster(cluster),
        Some(Remake::Cluster(client)),
    ))
}

/// rustls builds each connection's configuration on the process-wide
/// crypto provider. When none is installed it picks the one built in, and
/// panics if there are several (ring from this crate, aws-lc-rs from
/// another): so ring's is installed first, unless the application has
/// installed one.
#[cfg(feature = "redis-tls")]
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // An error means another thread installed one meanwhile: kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A TTL in milliseconds for `PX` / `PEXPIRE`: at least 1 (0 is an error
/// for Redis), at most [`MAX_TTL`].
fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.min(MAX_TTL).as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// [`RedisStore`]'s `put_for_session`. KEYS: the blob, the session's
/// index; ARGV: the blob, its TTL in milliseconds, how many to keep. The
/// score counts writes up from the index's highest (no `TIME`: a script
/// that reads the clock may not write on older servers).
const KEEP_NEWEST_SCRIPT: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local score = 1
if top[2] then score = tonumber(top[2]) + 1 end
redis.call('ZADD', KEYS[2], score, KEYS[1])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if excess > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
  redis.call('DEL', unpack(old))
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
end
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
";

/// [`RedisStore`]'s `touch` of a blob. KEYS: the blob, its session's
/// index; ARGV: the TTL in milliseconds. The index lives at least as long
/// as the blob, and a blob that outlived its index (or was left out of a
/// later one) joins it again as the oldest: otherwise a client renewing
/// several cookies of one session keeps blobs that no index counts, and
/// the next writes start a fresh index of
/// [`MAX_BLOBS_PER_SESSION`](crate::store::MAX_BLOBS_PER_SESSION). An
/// index of another type (written by someone else) is left alone.
const TOUCH_SCRIPT: &str = r"
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return 0 end
local kind = redis.call('TYPE', KEYS[2]).ok
if kind ~= 'zset' and kind ~= 'none' then return 1 end
if not redis.call('ZSCORE', KEYS[2], KEYS[1]) then
  local low = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  local score = 0
  if low[2] then score = tonumber(low[2]) - 1 end
  redis.call('ZADD', KEYS[2], score, KEYS[1])
end
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
return 1
";

/// The overflow store on Redis: `SET … PX ttl` (in a script that also
/// keeps at most [`MAX_BLOBS_PER_SESSION`](crate::store::MAX_BLOBS_PER_SESSION)
/// blobs a session), `GETRANGE`, `DEL`, `PEXPIRE` (in a script that keeps
/// the session's index at least as long).
///
/// This and [`RedisRevocations`] are the Redis implementations of the
/// overflow store and the revocation check (feature `redis`). What follows
/// holds for both.
///
/// They run on the `redis` crate's async connection manager, which
/// reconnects by itself after the server comes back. A request whose
/// connection had been dropped (a server restart, a failover, an idle
/// connection closed by Redis' `timeout` or by a NAT) is sent once more on
/// the new connection, so that the server's coming back does not fail the
/// first request of each connection.
///
/// The manager keeps a connection that stays open but no longer answers
/// (the server's host gone without closing it, a network partition: Linux
/// gives up on it only after its retransmissions, about 15 minutes with
/// the default `tcp_retries2` by tcp(7)), and one to a
/// primary demoted to a replica in a failover, which refuses every write
/// (`READONLY`). So after a request times out or is answered `READONLY`,
/// a store made by any constructor but `from_manager` replaces its
/// manager (at most once a second):
/// the next requests go out on a new connection, to whichever server the
/// address now leads to. A demoted primary still answers reads, unless it
/// runs with `replica-serve-stale-data no` (then `MASTERDOWN`, which also
/// moves the store): until a write or a timeout moves the store, its reads
/// miss what the new primary records (a revocation, a blob).
///
/// Made by any constructor but the `connect_cluster` ones, they talk to
/// one Redis server (or a replica set's primary): the connection manager
/// does not speak the
/// Redis Cluster protocol, so a cluster node would answer `MOVED` for keys
/// in other slots, which the store reports as unavailable. With the
/// feature `redis-cluster`, `connect_cluster` talks to a Redis Cluster.
/// The keys carry hash tags, so that a session's keys share a slot, and so
/// do a user's two revocation keys, whatever the user id (the tag starts
/// with `user:`, so that an empty id, or one beginning with `}`, cannot
/// empty it). A namespace with a `{` or `}` takes over the tags (a lone `{` or an
/// empty `{}` splits every user's records; `{app}` puts every key of the
/// application in one slot): give a cluster a namespace without braces.
/// A cluster connection follows moved slots and failovers by itself; one
/// to a node that stops answering is replaced after a request times out
/// on it, as above (the new one is made on a task of its own, so the
/// requests until it is ready still fail). On a cluster every failed
/// request costs up to three seconds, whatever the cause, and its log
/// may say only `timeout`, without the Redis error codes or the TLS
/// refusal.
///
/// With the feature `redis-tls` they reach Redis over TLS (`rediss://`),
/// checking its certificate (see [`RedisStore::connect`]).
///
/// Their requests must run inside a Tokio runtime with its timers (the
/// `redis` client's timeouts need them).
///
/// Key layout:
///
/// - `sealed-session:overflow:{<session id>}:<reference>` — a sealed blob, with a TTL.
/// - `sealed-session:overflow-index:{<session id>}` — a sorted set of the
///   session's blob keys, oldest first, living as long as its longest blob.
/// - `sealed-session:revoked:{<session id>}` — a revoked session, with a TTL.
/// - `sealed-session:revoked-user:{user:<user>}` — Unix time: the user's
///   sessions created at or before it are revoked.
/// - `sealed-session:revoked-user-keep:{user:<user>}` — the hex id of the one
///   session of the user kept by `revoke_user_except`, with the same TTL.
///
/// With a namespace (`RedisStore::namespace`, `RedisRevocations::namespace`),
/// every key starts with it and a colon instead.
///
/// Commands, for an ACL (`ACL SETUSER`): `RedisStore` sends `EVAL` (its
/// scripts call `SET`, `ZRANGE`, `ZADD`, `ZCARD`, `ZSCORE`, `TYPE`, `DEL`,
/// `ZREMRANGEBYRANK`, `PTTL` and `PEXPIRE`, on the blob and index keys
/// above), `SET`, `GET`, `GETRANGE`, `PEXPIRE` and `DEL`; `RedisRevocations`
/// sends `EXISTS`, `GETRANGE`, `MULTI`, `EXEC`, `SET` and `DEL`. With a
/// namespace `app`, for example: `ACL SETUSER web on >password
/// ~app:sealed-session:* +eval +set +get +getrange +pexpire +del +exists
/// +multi +exec` (a script's calls are checked against the user's
/// permissions too, so the commands it calls must be allowed as well:
/// `+zrange +zadd +zcard +zscore +type +zremrangebyrank +pttl`). A
/// command or key the ACL refuses fails like a store out of reach
/// (`StoreError::Unavailable`), on every write that overflows.
#[derive(Clone)]
pub struct RedisStore {
    connection: Arc<Connection>,
    namespace: Namespace,
}

impl core::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url` (for example `redis://127.0.0.1:6379/`), with a
    /// connection timeout and a response timeout of one second and one
    /// retry: a server that is down or stops answering fails a store call
    /// within a few seconds (a second for a response timeout, up to about
    /// two more while a new connection is tried, twice) instead of hanging
    /// it. After a timeout or a `READONLY` answer the next request goes
    /// out on a new connection (see [`RedisStore`]). After a timeout or a
    /// refused connection, until the server answers a request, one request
    /// at a time goes out and the others fail at once as
    /// [`StoreError::Unavailable`]: a frozen server (paused, swapping, its
    /// host gone with the connection open) costs one request at a time
    /// the wait, not every request (logged once, `redis-failing-fast`; not
    /// on a Redis Cluster, where each node's keys go out on their own).
    /// A command that timed out may still be carried out later by the
    /// server (an id reported as not revoked can end up revoked).
    ///
    /// TLS (`rediss://`, `valkeys://`) needs the feature `redis-tls`.
    /// The server's certificate is then checked against the system's root
    /// certificates, or those of the PEM file that `SSL_CERT_FILE` names
    /// (as built by this crate: the `redis` crate's own TLS features,
    /// if the application enables others, change where roots come from),
    /// and an address that turns the check off (`#insecure`) is refused.
    /// What TLS refused is logged (`tls`: an unknown issuer, a certificate
    /// for another name, …). For a private CA or a client certificate,
    /// build the client with `redis::Client::build_with_tls` and pass it
    /// to [`RedisStore::connect_client`]. A password in the URL is
    /// percent-encoded (a `#` in it would start the URL's fragment).
    ///
    /// # Errors
    ///
    /// [`InvalidSetting::StoreAddress`](crate::InvalidSetting::StoreAddress)
    /// if `url` is not a Redis URL,
    /// [`InvalidSetting::StoreTls`](crate::InvalidSetting::StoreTls) for a
    /// TLS one that this build cannot serve or that turns the certificate
    /// check off; [`StoreError::Unavailable`] if no connection can be made
    /// (a certificate that does not check out included; the cause logged
    /// at `WARN`).
    pub async fn connect(url: &str) -> Result<Self, Error> {
        connect(url).await.map(Self::on)
    }

    /// As [`RedisStore::connect`], but the connection is made by the first
    /// request that needs it: a server starting while Redis is down (a
    /// rolling deploy during maintenance) serves in the degraded mode the
    /// layer documents, as the running ones do, instead of failing to
    /// start. A wrong address or password then shows only in the first
    /// requests' errors (logged at `WARN`), not at start-up. Call it
    /// within a Tokio runtime (the connection's task is spawned at once).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), sealed_session::Error> {
    /// use sealed_session::RedisStore;
    /// // Succeeds whether or not Redis answers now.
    /// let store = RedisStore::connect_lazy("redis://127.0.0.1:6379/")?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidSetting::StoreAddress`](crate::InvalidSetting::StoreAddress)
    /// and [`InvalidSetting::StoreTls`](crate::InvalidSetting::StoreTls) as
    /// [`RedisStore::connect`];
    /// [`InvalidSetting::NoRuntime`](crate::InvalidSetting::NoRuntime)
    /// outside a Tokio runtime.
    pub fn connect_lazy(url: &str) -> Result<Self, Error> {
        connect_lazy(url).map(Self::on)
    }

    /// Connects through `client`, built by the application (with
    /// `redis::Client::build_with_tls` for a private CA or a client
    /// certificate, say), with the timeouts and the replacement of
    /// connections of [`RedisStore::connect`]. Of its TLS settings only
    /// `#insecure` is refused: a client built to skip the host name check
    /// (`danger_accept_invalid_hostnames`, which needs the `redis` crate's
    /// `tls-rustls-insecure` feature) is taken as built.
    ///
    /// # Errors
    ///
    /// [`InvalidSetting::StoreTls`](crate::InvalidSetting::StoreTls) if
    /// the client skips the server's certificate check;
    /// [`StoreError::Unavailable`] if no connection can be made.
    pub async fn connect_client(client: redis::Client) -> Result<Self, Error> {
        connect_client(client).await.map(Self::on)
    }

    /// As [`RedisStore::connect_client`], with the application's timeouts
    /// and retries instead of this crate's (a second to connect, a second
    /// for each answer, one retry): for a distant server whose answers may
    /// take longer, or an application that would rather fail sooner. The
    /// connection is still replaced after a timeout, and requests still
    /// fail at once while one tries a server that stopped answering (see
    /// [`RedisStore::connect`]); both need a response timeout: without
    /// one, a server that stops answering holds every request that reaches
    /// the store.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), sealed_session::Error> {
    /// use core::time::Duration;
    /// use redis::aio::ConnectionManagerConfig;
    /// use sealed_session::RedisStore;
    ///
    /// let client = redis::Client::open("redis://10.0.0.7:6379/").expect("a Redis URL");
    /// let config = ConnectionManagerConfig::new()
    ///     .set_connection_timeout(Some(Duration::from_secs(2)))
    ///     .set_response_timeout(Some(Duration::from_millis(300)))
    ///     .set_number_of_retries(1);
    /// let store = RedisStore::connect_client_with_config(client, config).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`RedisStore::connect_client`].
    pub async fn connect_client_with_config(
        client: redis::Client,
        config: ConnectionManagerConfig,
    ) -> Result<Self, Error> {
        connect_client_with_config(client, config)
            .await
            .map(Self::on)
    }

    /// Connects to a Redis Cluster (feature `redis-cluster`) through
    /// `nodes`, the URLs of some of its nodes (one is enough to find the
    /// others, but the client reconnects through them: give several, or
    /// a name that resolves to several), which must agree on password,
    /// user, TLS and protocol, and name database 0 (or none). Connecting
    /// and each answer time out after a second, and a request gets three
    /// seconds in all with the redirections of a slot that moved or of a
    /// failover, which the connection follows by itself: a request that
    /// fails, whatever the cause, costs up to those three seconds. Over
    /// TLS the nodes must announce names their certificates cover
    /// (`cluster-preferred-endpoint-type hostname`): the client connects
    /// to the addresses they announce and checks the certificate against
    /// them, so nodes that announce IP addresses fail every request unless
    /// a client builder maps them ([`RedisStore::connect_cluster_with`]).
    ///
    /// # Errors
    ///
    /// As [`RedisStore::connect`] for each URL, and
    /// [`InvalidSetting::StoreAddress`](crate::InvalidSetting::StoreAddress)
    /// if `nodes` is empty, its URLs disagree, or one names a database.
    #[cfg(feature = "redis-cluster")]
    pub async fn connect_cluster(nodes: &[&str]) -> Result<Self, Error> {
        connect_cluster(nodes).await.map(Self::on)
    }

    /// Connects to a Redis Cluster as [`RedisStore::connect_cluster`]
    /// does, through a client builder the application configures: its
    /// `node_address_map` (nodes that announce IP addresses behind TLS
    /// certificates for host names), `certs` (a private CA, a client
    /// certificate), credentials. This crate sets its timeouts and
    /// retries on it, and takes its TLS as built (nothing is refused, and
    /// no rustls provider is installed).
    ///
    /// # Errors
    ///
    /// [`InvalidSetting::StoreAddress`](crate::InvalidSetting::StoreAddress)
    /// if the builder does not build; [`StoreError::Unavailable`] if no
    /// connection can be made.
    #[cfg(feature = "redis-cluster")]
    pub async fn connect_cluster_with(
        builder: redis::cluster::ClusterClientBuilder,
    ) -> Result<Self, Error> {
        connect_cluster_with(builder).await.map(Self::on)
    }

    /// Uses an existing connection manager, with its timeouts (keep a
    /// response timeout, `ConnectionManagerConfig::set_response_timeout`:
    /// without one, a server that stops answering hangs every request that
    /// reaches the store; see [`RedisStore::connect`] for the ones it
    /// sets). This
    /// manager is never replaced: a connection that stops answering, or
    /// one to a demoted primary, stays in use as long as the manager keeps
    /// it ([`RedisStore`] says when that is). Nothing of its TLS is
    /// checked.
    pub fn from_manager(connection: ConnectionManager) -> Self {
        Self::on(Connection::new(Manager::Single(connection), None))
    }

    fn on(connection: Connection) -> Self {
        RedisStore {
            connection: Arc::new(connection),
            namespace: Namespace::default(),
        }
    }

    /// Puts `namespace` and a colon before every key (see
    /// [`RedisRevocations::namespace`]). Overflow keys hold a random
    /// reference and cannot collide across applications; a namespace
    /// separates them for listing and clean-up.
    #[must_use]
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Namespace::new(namespace);
        self
    }

    /// The index of a session's blobs (`session_id` in hex): a sorted set
    /// under the blobs' hash tag, so that it shares their cluster slot,
    /// and apart from their prefix, so that listing blobs lists only
    /// blobs.
    fn index_key(&self, session_id: &str) -> String {
        format!(
            "{}sealed-session:overflow-index:{{{session_id}}}",
            self.namespace.prefix()
        )
    }
}

/// A prefix for every key, so that applications sharing one Redis
/// database do not share records.
#[derive(Clone, Default)]
struct Namespace(Option<Arc<str>>);

impl Namespace {
    /// No prefix for an empty namespace.
    fn new(namespace: &str) -> Self {
        Namespace((!namespace.is_empty()).then(|| Arc::from(format!("{namespace}:"))))
    }

    /// The prefix: the namespace and a colon, or nothing.
    fn prefix(&self) -> &str {
        self.0.as_deref().unwrap_or_default()
    }

    /// `key` under the namespace (a copy only with a namespace).
    fn key<'k>(&self, key: &'k str) -> std::borrow::Cow<'k, str> {
        match &self.0 {
            Some(prefix) => format!("{prefix}{key}").into(),
            None => key.into(),
        }
    }
}

/// The session id (hex) in a key of [`overflow_key`](crate::store::overflow_key)'s
/// layout, `sealed-session:overflow:{<session id>}:<reference>`.
fn blob_session_tag(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("sealed-session:overflow:{")?;
    let (session_id, reference) = rest.split_once("}:")?;
    let hex =
        |text: &str, len: usize| text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(session_id, 2 * crate::SESSION_ID_LEN) && hex(reference, 32)).then_some(session_id)
}

impl OverflowStore for RedisStore {
    fn put<'a>(
        &'a self,
        key: &'a str,
        blob: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let mut set = redis::cmd("SET");
            set.arg(&*self.namespace.key(key))
                .arg(blob)
                .arg("PX")
                .arg(ttl_millis(ttl));
            send(&self.connection, &mut set).await
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        Box::pin(async move {
            send(
                &self.connection,
                redis::cmd("GET").arg(&*self.namespace.key(key)),
            )
            .await
        })
    }

    /// `GETRANGE key 0 max_len`: Redis sends at most `max_len + 1` bytes,
    /// whatever the key holds. It answers an empty string for a missing
    /// key; the crate never writes an empty blob, so that is `None`.
    fn get_bounded<'a>(
        &'a self,
        key: &'a str,
        max_len: usize,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        Box::pin(async move {
            // Redis reads the end as a signed 64-bit integer: a bound past
            // it (a sealer without a decompression cap) would be an error.
            let end = max_len.min(i64::MAX as usize - 1);
            let mut range = redis::cmd("GETRANGE");
            range.arg(&*self.namespace.key(key)).arg(0).arg(end);
            let blob: Vec<u8> = send(&self.connection, &mut range).await?;
            at_most(Some(blob).filter(|blob| !blob.is_empty()), max_len)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            send(
                &self.connection,
                redis::cmd("DEL").arg(&*self.namespace.key(key)),
            )
            .await
        })
    }

    /// One script, so that the write and the clean-up cannot be split by
    /// a failure: `SET`, then the key joins the session's index (a sorted
    /// set under `sealed-session:overflow-index:{<session id>}`, in the
    /// blob's slot, scored by write), and the keys beyond the `keep` newest are
    /// deleted with their index entries. The index lives as long as the
    /// longest blob written to it.
    fn put_for_session<'a>(
        &'a self,
        session_id: &'a SessionId,
        key: &'a str,
        blob: Vec<u8>,
        ttl: Duration,
        keep: usize,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let index = self.index_key(&session_id.to_string());
            let mut eval = redis::cmd("EVAL");
            eval.arg(KEEP_NEWEST_SCRIPT)
                .arg(2)
                .arg(&*self.namespace.key(key))
                .arg(&index)
                .arg(blob)
                .arg(ttl_millis(ttl))
                .arg(keep.max(1));
            send(&self.connection, &mut eval).await
        })
    }

    /// `PEXPIRE`; for a key of [`overflow_key`](crate::store::overflow_key)'s
    /// layout, in one script that also keeps the session's index at least
    /// as long as the blob and counts the blob in it.
    fn touch<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let mut command = match blob_session_tag(key) {
                Some(session_id) => {
                    let mut eval = redis::cmd("EVAL");
                    eval.arg(TOUCH_SCRIPT)
                        .arg(2)
                        .arg(&*self.namespace.key(key))
                        .arg(self.index_key(session_id));
                    eval
                }
                None => {
                    let mut expire = redis::cmd("PEXPIRE");
                    expire.arg(&*self.namespace.key(key));
                    expire
                }
            };
            command.arg(ttl_millis(ttl));
            // 1 if the key exists (and now expires as asked), 0 if not.
            let set: i64 = send(&self.connection, &mut command).await?;
            Ok(set == 1)
        })
    }
}

/// Revocation records on Redis: one small key per revoked session (expiring
/// when the session would have anyway) and one per user who logged out
/// everywhere. What [`RedisStore`]'s docs say of connections, clusters,
/// TLS and keys holds here too.
#[derive(Clone)]
pub struct RedisRevocations {
    connection: Arc<Connection>,
    clock: Arc<dyn Clock>,
    namespace: Namespace,
}

impl core::fmt::Debug for RedisRevocations {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RedisRevocations").finish_non_exhaustive()
    }
}

/// The longest revocation record accepted; its values (a Unix time, a
/// 32-digit hex id) are shorter. One byte more is read, to tell.
const RECORD_MAX_LEN: usize = 63;

impl RedisRevocations {
    /// Connects to `url`; `clock` dates "log out everywhere". The timeouts
    /// are those of [`RedisStore::connect`].
    ///
    /// # Errors
    ///
    /// As [`RedisStore::connect`].
    pub async fn connect(url: &str, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        connect(url)
            .await
            .map(|connection| Self::on(connection, clock))
    }

    /// Connects on the first request, as [`RedisStore::connect_lazy`]:
    /// until Redis answers, every check fails closed (cookies open as
    /// fresh sessions, and are kept) and logouts are not recorded.
    ///
    /// # Errors
    ///
    /// As [`RedisStore::connect_lazy`].
    pub fn connect_lazy(url: &str, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        connect_lazy(url).map(|connection| Self::on(connection, clock))
    }

    /// Connects through `client`, as [`RedisStore::connect_client`].
    ///
    /// # Errors
    ///
    /// As [`RedisStore::connect_client`].
    pub async fn connect_client(
        client: redis::Client,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        connect_client(client)
            .await
            .map(|connection| Self::on(connection, clock))
    }

    /// Connects through `client` with the application's timeouts and
    /// retries, as [`RedisStore::connect_client_with_config`].
    ///
    /// # Errors
    ///
    /// As [`RedisStore::connect_client`].
    pub async fn connect_client_with_config(
        client: redis::Client,
        config: ConnectionManagerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        connect_client_with_config(client, config)
            .await
            .map(|connection| Self::on(connection, clock))
    }

    /// Connects to a Redis Cluster, as [`RedisStore::connect_cluster`].
    /// With a user key, a check asks the session's node and the user's
    /// at once: two requests where one server takes one, in the time of
    /// the slower.
    ///
    /// # Errors
    ///
    /// As [`RedisStore::connect_cluster`].
    #[cfg(feature = "redis-cluster")]
    pub async fn connect_cluster(nodes: &[&str], clock: Arc<dyn Clock>) -> Result<Self, Error> {
        connect_cluster(nodes)
            .await
            .map(|connection| Self::on(connection, clock))
    }

    /// Connects to a Redis Cluster through a client builder, as
    /// [`RedisStore::connect_cluster_with`].
    ///
    /// # Errors
    ///
    /// As [`RedisStore::connect_cluster_with`].
    #[cfg(feature = "redis-cluster")]
    pub async fn connect_cluster_with(
        builder: redis::cluster::ClusterClientBuilder,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        connect_cluster_with(builder)
            .await
            .map(|connection| Self::on(connection, clock))
    }

    /// Uses an existing connection manager, with its timeouts (see
    /// [`RedisStore::from_manager`]).
    pub fn from_manager(connection: ConnectionManager, clock: Arc<dyn Clock>) -> Self {
        Self::on(Connection::new(Manager::Single(connection), None), clock)
    }

    fn on(connection: Connection, clock: Arc<dyn Clock>) -> Self {
        RedisRevocations {
            connection: Arc::new(connection),
            clock,
            namespace: Namespace::default(),
        }
    }

    /// Puts `namespace` and a colon before every key
    /// (`<namespace>:sealed-session:revoked-user:{user:42}`). Set one when
    /// applications or environments share a Redis database: without it
    /// they share the per-user records, and "log out everywhere" in one
    /// logs user 42 out of the others. Every server of one application
    /// must use the same namespace, or revocations written by one are not
    /// seen by another. A `{` or `}` in it would take over the keys' hash
    /// tags (on a Redis Cluster, splitting a user's records: see
    /// [`RedisStore`]).
    #[must_use]
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Namespace::new(namespace);
        self
    }

    fn session_key(&self, id: &SessionId) -> String {
        format!("{}sealed-session:revoked:{{{id}}}", self.namespace.prefix())
    }

    fn user_key(&self, user: &str) -> String {
        format!(
            "{}sealed-session:revoked-user:{{user:{user}}}",
            self.namespace.prefix()
        )
    }

    fn user_keep_key(&self, user: &str) -> String {
        format!(
            "{}sealed-session:revoked-user-keep:{{user:{user}}}",
            self.namespace.prefix()
        )
    }

    /// [`RevocationStore::revoke_session`], callable without the trait.
    ///
    /// # Errors
    ///
    /// [`StoreError::OverCapacity`] if Redis is out of memory under its
    /// `maxmemory` (an `OOM` answer), [`StoreError::Unavailable`] for any
    /// other failure (the cause logged at `WARN`).
    pub async fn revoke_session(&self, id: SessionId, keep_for: Duration) -> Result<(), Error> {
        self.record_session(id, keep_for).await
    }

    async fn record_session(&self, id: SessionId, keep_for: Duration) -> Result<(), Error> {
        let mut set = redis::cmd("SET");
        set.arg(self.session_key(&id))
            .arg(1)
            .arg("EX")
            .arg(ttl_secs(keep_for));
        send(&self.connection, &mut set).await
    }

    /// [`RevocationStore::revoke_user`], callable without the trait.
    ///
    /// # Errors
    ///
    /// As [`Self::revoke_session`].
    pub async fn revoke_user(&self, user: &str, keep_for: Duration) -> Result<(), Error> {
        self.record_user(user, None, keep_for).await
    }

    /// [`RevocationStore::revoke_user_except`], callable without the
    /// trait. A server running a version without this method reads only
    /// the time and revokes the kept session as well (it fails closed).
    ///
    /// # Errors
    ///
    /// As [`Self::revoke_session`].
    pub async fn revoke_user_except(
        &self,
        user: &str,
        keep: SessionId,
        keep_for: Duration,
    ) -> Result<(), Error> {
        self.record_user(user, Some(keep), keep_for).await
    }

    /// The user's records, written together: the time in `revoked-user`
    /// (the format a reader without `revoke_user_except` knows: it then
    /// revokes the kept session too, failing closed) and the kept id, if
    /// any, in `revoked-user-keep` (deleted otherwise, so that an older
    /// exception does not outlive a plain `revoke_user`).
    async fn record_user(
        &self,
        user: &str,
        keep: Option<SessionId>,
        keep_for: Duration,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let ttl = ttl_secs(keep_for);
        let mut transaction = redis::pipe();
        transaction
            .atomic()
            .cmd("SET")
            .arg(self.user_key(user))
            .arg(now)
            .arg("EX")
            .arg(ttl)
            .ignore();
        match keep {
            Some(id) => transaction
                .cmd("SET")
                .arg(self.user_keep_key(user))
                .arg(id.to_string())
                .arg("EX")
                .arg(ttl)
                .ignore(),
            None => transaction
                .cmd("DEL")
                .arg(self.user_keep_key(user))
                .ignore(),
        };
        send(&self.connection, &mut transaction).await
    }
}

impl RevocationStore for RedisRevocations {
    fn revoke_session<'a>(
        &'a self,
        id: SessionId,
        keep_for: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        // The private helpers, not the inherent methods of the same names:
        // were one renamed, that path would resolve to this trait method
        // and recurse.
        Box::pin(self.record_session(id, keep_for))
    }

    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        keep_for: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.record_user(user, None, keep_for))
    }

    fn revoke_user_except<'a>(
        &'a self,
        user: &'a str,
        keep: SessionId,
        keep_for: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.record_user(user, Some(keep), keep_for))
    }
}

impl RevocationCheck for RedisRevocations {
    fn is_revoked<'a>(&'a self, query: RevocationQuery<'a>) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let Some(user) = query.user else {
                let mut exists = redis::cmd("EXISTS");
                exists.arg(self.session_key(&query.session_id));
                return send(&self.connection, &mut exists).await;
            };
            // One round trip on one server (two at once on a cluster, see
            // below), no command spanning two hash tags (cluster slots). The
            // user's two records (one slot) are read in a
            // transaction, as `record_user` writes them: separate reads
            // could pair a new time with an old kept id (or none, expired
            // in between) and revoke the very session a "log out other
            // sessions" kept. GETRANGE rather than GET: a record is a few
            // dozen bytes, and an altered one must not make every request
            // of the user read a large value (a longer one fails: closed).
            // A missing key reads as "", as does an empty one (whoever can
            // write one could as well delete the record). Bytes, not text:
            // a record that is not UTF-8 is altered content, not an outage.
            let session_key = self.session_key(&query.session_id);
            let (keep_key, user_key) = (self.user_keep_key(user), self.user_key(user));
            let getrange = |pipe: &mut redis::Pipeline, key: &str| {
                pipe.cmd("GETRANGE").arg(key).arg(0).arg(RECORD_MAX_LEN);
            };
            let (kept, not_before): (Vec<u8>, Vec<u8>) = if self.connection.is_cluster() {
                // A cluster takes a pipeline to one slot only: the
                // session's record and the user's two are asked for in two
                // requests, sent together (the first failure fails both).
                let mut exists = redis::cmd("EXISTS");
                exists.arg(&session_key);
                let mut reads = redis::pipe();
                reads.atomic();
                getrange(&mut reads, &keep_key);
                getrange(&mut reads, &user_key);
                let (revoked, records): (bool, _) = futures_util::future::try_join(
                    send(&self.connection, &mut exists),
                    send(&self.connection, &mut reads),
                )
                .await?;
                if revoked {
                    return Ok(true);
                }
                records
            } else {
                let mut reads = redis::pipe();
                reads.cmd("EXISTS").arg(&session_key).cmd("MULTI").ignore();
                getrange(&mut reads, &keep_key);
                reads.ignore();
                getrange(&mut reads, &user_key);
                reads.ignore().cmd("EXEC");
                let (revoked, records): (bool, (Vec<u8>, Vec<u8>)) =
                    send(&self.connection, &mut reads).await?;
                if revoked {
                    return Ok(true);
                }
                records
            };
            if not_before.len() > RECORD_MAX_LEN || kept.len() > RECORD_MAX_LEN {
                return Err(Error::Store(StoreError::Rejected));
            }
            if not_before.is_empty() {
                return Ok(false);
            }
            let kept = Some(kept).filter(|kept| !kept.is_empty());
            // A record this code did not write: fail closed.
            let not_before: u64 = core::str::from_utf8(&not_before)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or(Error::Store(StoreError::Rejected))?;
            if query.created_at > not_before {
                return Ok(false);
            }
            // Only now the kept id is compared (its text is built for that).
            Ok(kept.is_none_or(|id| id != query.session_id.to_string().as_bytes()))
        })
    }
}
