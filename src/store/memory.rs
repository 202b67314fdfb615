//! [`MemoryStore`]: an in-process overflow store with TTLs and a byte cap.

use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use super::{poisoned, BoxFuture, OverflowStore};
use crate::clock::Clock;
use crate::error::StoreError;
use crate::session::SessionId;
use crate::Error;

/// What [`MemoryStore::new`] holds at most: 64 MiB of keys and blobs.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// An in-process overflow store with TTLs and a cap on the bytes it holds:
/// for tests, development and single-process deployments.
///
/// Expired blobs are purged as time passes them. When a new blob would
/// take the store over its cap, the least recently used blobs (written,
/// read or renewed longest ago) are evicted first, as a Redis `maxmemory`
/// with an LRU policy would (a blob whose TTL is shortened, as a replaced
/// one is, is not thereby used): a session whose blob was evicted loses
/// those entries, dropped and logged with their keys when one is
/// read or the session is next saved. So a
/// flood of new sessions that overflow costs at most the cap, and pushes
/// out idle sessions' blobs before active ones'. The cap counts the bytes
/// of keys and blobs, not the allocator's or the indexes' overhead (about
/// 100 bytes per blob more, and another copy of the key for a blob
/// written for a session, whose newest blobs it keeps:
/// [`OverflowStore::put_for_session`]).
///
/// ```
/// use sealed_session::store::{MemoryStore, OverflowStore};
/// use sealed_session::FixedClock;
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sealed_session::Error> {
/// let store = MemoryStore::with_clock(Arc::new(FixedClock::new(1_700_000_000))).max_bytes(100);
/// store.put("a", vec![0; 40], Duration::from_secs(60)).await?;
/// store.put("b", vec![0; 40], Duration::from_secs(60)).await?;
/// store.get("a").await?; // "a" is now the more recently used
/// store.put("c", vec![0; 40], Duration::from_secs(60)).await?;
/// assert_eq!(store.keys(), ["a", "c"]); // "b" was evicted
/// assert_eq!((store.bytes(), store.evictions()), (82, 1));
/// # Ok(())
/// # }
/// ```
pub struct MemoryStore {
    blobs: Mutex<Blobs>,
    clock: Arc<dyn Clock>,
    max_bytes: usize,
}

/// The blobs and two orders over them: by last use (for eviction) and by
/// expiry (for purging), so neither needs a scan of the whole store.
#[derive(Default)]
struct Blobs {
    by_key: HashMap<String, Slot>,
    /// Use stamp → key; the first is the least recently used.
    by_use: BTreeMap<u64, String>,
    /// (expiry, use stamp); the first expires soonest.
    by_expiry: BTreeSet<(u64, u64)>,
    /// Each session's blobs written through `put_for_session`, oldest
    /// first; a session with none has no entry.
    by_session: HashMap<SessionId, Vec<String>>,
    /// Bytes of keys and blobs held.
    bytes: usize,
    /// The next use stamp: counts up, so stamps are unique.
    next_use: u64,
    evictions: u64,
}

struct Slot {
    blob: Vec<u8>,
    expires: u64,
    used: u64,
    /// The session it was written for, if written by `put_for_session`.
    session: Option<SessionId>,
}

fn cost(key: &str, blob: &[u8]) -> usize {
    key.len().saturating_add(blob.len())
}

impl Blobs {
    fn stamp(&mut self) -> u64 {
        self.next_use += 1;
        self.next_use
    }

    /// Adds a blob under `key`, which must not be held (`put` removes the
    /// old value first, so that it is not counted against the new one).
    fn insert(&mut self, key: &str, blob: Vec<u8>, expires: u64, session: Option<SessionId>) {
        let used = self.stamp();
        self.bytes += cost(key, &blob);
        self.by_use.insert(used, key.to_owned());
        self.by_expiry.insert((expires, used));
        if let Some(sid) = session {
            self.by_session.entry(sid).or_default().push(key.to_owned());
        }
        self.by_key.insert(
            key.to_owned(),
            Slot {
                blob,
                expires,
                used,
                session,
            },
        );
    }

    fn remove(&mut self, key: &str) {
        if let Some(used) = self.by_key.get(key).map(|slot| slot.used) {
            self.remove_used(used);
        }
    }

    /// Removes the blob with use stamp `used`, taken off both orders: the
    /// key comes back from the use order, so nothing is copied, and every
    /// call shrinks the orders (no loop can spin on a stale entry).
    fn remove_used(&mut self, used: u64) {
        if let Some(key) = self.by_use.remove(&used) {
            if let Some(slot) = self.by_key.remove(&key) {
                self.by_expiry.remove(&(slot.expires, slot.used));
                self.bytes -= cost(&key, &slot.blob);
                if let Some(sid) = slot.session {
                    self.forget_for_session(&sid, &key);
                }
            }
        }
    }

    /// Takes `key` off the list of `sid`'s blobs (at most `keep` long).
    fn forget_for_session(&mut self, sid: &SessionId, key: &str) {
        if let Some(keys) = self.by_session.get_mut(sid) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.by_session.remove(sid);
            }
        }
    }

    /// Removes the blobs of `sid` beyond the `keep` written last.
    fn keep_newest(&mut self, sid: &SessionId, keep: usize) {
        let Some(keys) = self.by_session.get(sid) else {
            return;
        };
        let excess = keys.len().saturating_sub(keep);
        // Copied out: each removal also takes its key off the list.
        let oldest: Vec<String> = keys.iter().take(excess).cloned().collect();
        for key in oldest {
            self.remove(&key);
        }
    }

    /// Drops every blob whose expiry is `now` or earlier.
    fn purge(&mut self, now: u64) {
        while let Some(&(expires, used)) = self.by_expiry.first() {
            if expires > now {
                break;
            }
            self.by_expiry.pop_first();
            self.remove_used(used);
        }
    }

    /// Evicts least recently used blobs until `incoming` more bytes fit
    /// under `max_bytes`.
    fn make_room(&mut self, incoming: usize, max_bytes: usize) {
        while self.bytes.saturating_add(incoming) > max_bytes {
            let Some((&used, _)) = self.by_use.first_key_value() else {
                break;
            };
            self.remove_used(used);
            self.evictions += 1;
        }
    }

    /// Marks `key` as just used and moves its expiry to `expires`, if given.
    /// A move to an earlier expiry (a replaced blob kept for a grace period)
    /// is not a use: the blob keeps its place in the eviction order.
    /// Returns the blob's slot, if `key` is held.
    fn mark_used(&mut self, key: &str, expires: Option<u64>) -> Option<&Slot> {
        let slot = self.by_key.get_mut(key)?;
        self.by_expiry.remove(&(slot.expires, slot.used));
        if expires.is_none_or(|expires| expires >= slot.expires) {
            self.next_use += 1;
            // The key moves to the new stamp: its `String` is reused.
            if let Some(owned) = self.by_use.remove(&slot.used) {
                self.by_use.insert(self.next_use, owned);
            }
            slot.used = self.next_use;
        }
        if let Some(expires) = expires {
            slot.expires = expires;
        }
        self.by_expiry.insert((slot.expires, slot.used));
        Some(slot)
    }
}

impl core::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("len", &self.len())
            .field("bytes", &self.bytes())
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl MemoryStore {
    /// An empty store timed by the system clock, holding at most
    /// [`DEFAULT_MAX_BYTES`].
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    pub fn new() -> Self {
        Self::with_clock(Arc::new(crate::clock::SystemClock))
    }

    /// An empty store timed by `clock` (TTLs expire when it says so),
    /// holding at most [`DEFAULT_MAX_BYTES`].
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        MemoryStore {
            blobs: Mutex::new(Blobs::default()),
            clock,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// Caps the bytes of keys and blobs held at `max_bytes`. A single blob
    /// larger than that is refused with [`StoreError::OverCapacity`].
    #[must_use]
    pub fn max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// `put`, and for `put_for_session` the session and how many of its
    /// blobs to keep.
    fn write(
        &self,
        session: Option<(SessionId, usize)>,
        key: &str,
        blob: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), Error> {
        let incoming = cost(key, &blob);
        if incoming > self.max_bytes {
            return Err(Error::Store(StoreError::OverCapacity));
        }
        let now = self.clock.now();
        let mut blobs = self.blobs.lock().map_err(|_| poisoned())?;
        blobs.purge(now);
        // The old value under this key is replaced, so it makes no room
        // for the new one by being evicted.
        blobs.remove(key);
        if let Some((sid, keep)) = session {
            // Room for the new one among the session's own first.
            blobs.keep_newest(&sid, keep.saturating_sub(1));
        }
        blobs.make_room(incoming, self.max_bytes);
        let expires = now.saturating_add(crate::store::ttl_secs(ttl));
        blobs.insert(key, blob, expires, session.map(|(sid, _)| sid));
        Ok(())
    }

    fn live<T>(&self, read: impl FnOnce(&Blobs) -> T) -> Option<T> {
        let now = self.clock.now();
        let mut blobs = self.blobs.lock().ok()?;
        blobs.purge(now);
        Some(read(&blobs))
    }

    /// Number of live blobs.
    pub fn len(&self) -> usize {
        self.live(|b| b.by_key.len()).unwrap_or(0)
    }

    /// Whether no blob is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the live blobs and their keys: what the cap counts.
    pub fn bytes(&self) -> usize {
        self.live(|b| b.bytes).unwrap_or(0)
    }

    /// How many live blobs have been evicted to make room since the store
    /// was made (expired ones are not counted).
    pub fn evictions(&self) -> u64 {
        self.live(|b| b.evictions).unwrap_or(0)
    }

    /// The keys of live blobs, sorted (for tests and tools).
    pub fn keys(&self) -> Vec<String> {
        let mut keys = self
            .live(|b| b.by_key.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        keys.sort();
        keys
    }
}

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl OverflowStore for MemoryStore {
    fn put<'a>(
        &'a self,
        key: &'a str,
        blob: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { self.write(None, key, blob, ttl) })
    }

    fn put_for_session<'a>(
        &'a self,
        session_id: &'a SessionId,
        key: &'a str,
        blob: Vec<u8>,
        ttl: Duration,
        keep: usize,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { self.write(Some((*session_id, keep)), key, blob, ttl) })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        Box::pin(async move {
            let now = self.clock.now();
            let mut blobs = self.blobs.lock().map_err(|_| poisoned())?;
            blobs.purge(now);
            Ok(blobs.mark_used(key, None).map(|slot| slot.blob.clone()))
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.blobs.lock().map_err(|_| poisoned())?.remove(key);
            Ok(())
        })
    }

    fn touch<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let now = self.clock.now();
            let mut blobs = self.blobs.lock().map_err(|_| poisoned())?;
            blobs.purge(now);
            let expires = now.saturating_add(crate::store::ttl_secs(ttl));
            Ok(blobs.mark_used(key, Some(expires)).is_some())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    const T0: u64 = 1_700_000_000;

    fn block_on<F: core::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn store(max_bytes: usize) -> (Arc<FixedClock>, MemoryStore) {
        let clock = Arc::new(FixedClock::new(T0));
        (
            clock.clone(),
            MemoryStore::with_clock(clock).max_bytes(max_bytes),
        )
    }

    /// The three indexes describe the same blobs, and the byte count is theirs.
    fn assert_consistent(store: &MemoryStore) {
        let blobs = store.blobs.lock().unwrap();
        assert_eq!(blobs.by_use.len(), blobs.by_key.len());
        assert_eq!(blobs.by_expiry.len(), blobs.by_key.len());
        let mut bytes = 0;
        for (key, slot) in &blobs.by_key {
            assert_eq!(blobs.by_use.get(&slot.used), Some(key));
            assert!(blobs.by_expiry.contains(&(slot.expires, slot.used)));
            bytes += cost(key, &slot.blob);
        }
        assert_eq!(blobs.bytes, bytes);
        assert!(blobs.bytes <= store.max_bytes);
        let listed: usize = blobs.by_session.values().map(Vec::len).sum();
        let written_for_a_session = blobs.by_key.values().filter(|s| s.session.is_some());
        assert_eq!(listed, written_for_a_session.count());
        for (sid, keys) in &blobs.by_session {
            assert!(!keys.is_empty());
            for key in keys {
                assert_eq!(blobs.by_key[key].session, Some(*sid));
            }
        }
    }

    #[test]
    fn a_session_keeps_only_its_newest_blobs() {
        let (clock, store) = store(10_000);
        let (a, b) = (
            SessionId::from_bytes([1; 16]),
            SessionId::from_bytes([2; 16]),
        );
        let ttl = Duration::from_secs(60);
        block_on(async {
            store
                .put_for_session(&b, "b0", vec![0; 10], ttl, 3)
                .await
                .unwrap();
            store.put("plain", vec![0; 10], ttl).await.unwrap();
            for i in 0..5 {
                let key = format!("a{i}");
                store
                    .put_for_session(&a, &key, vec![0; 10], ttl, 3)
                    .await
                    .unwrap();
                // Reading an old one does not make it newer.
                store.get("a0").await.unwrap();
                assert_consistent(&store);
            }
            assert_eq!(store.keys(), ["a2", "a3", "a4", "b0", "plain"]);
            // Rewriting a key already held keeps one copy of it.
            store
                .put_for_session(&a, "a3", vec![1; 10], ttl, 3)
                .await
                .unwrap();
            assert_eq!(store.keys(), ["a2", "a3", "a4", "b0", "plain"]);
            store
                .put_for_session(&a, "a5", vec![0; 10], ttl, 3)
                .await
                .unwrap();
            assert_eq!(store.keys(), ["a3", "a4", "a5", "b0", "plain"]);
            // Deleted, expired and evicted blobs leave the session's list.
            store.delete("a4").await.unwrap();
            clock.advance(61);
            store
                .put_for_session(&a, "a6", vec![0; 10], ttl, 3)
                .await
                .unwrap();
            assert_eq!(store.keys(), ["a6"]);
            assert_consistent(&store);
            assert_eq!(store.blobs.lock().unwrap().by_session.len(), 1);
        });
    }

    #[test]
    fn a_ttl_counts_whole_seconds_rounded_up() {
        let (clock, store) = store(1000);
        block_on(async {
            // Half a second is a whole one, never zero (which would end the
            // blob as it is written); 1.5 s below is two, not one.
            store
                .put("k", vec![7; 9], Duration::from_millis(500))
                .await
                .unwrap();
            assert!(store.get("k").await.unwrap().is_some());
            assert!(store.touch("k", Duration::from_millis(1500)).await.unwrap());
            clock.advance(1);
            assert!(store.get("k").await.unwrap().is_some());
            clock.advance(1);
            assert_eq!(store.get("k").await.unwrap(), None);
        });
    }

    #[test]
    fn the_least_recently_used_blob_is_evicted_first() {
        let (_, store) = store(3 * 11);
        block_on(async {
            let ttl = Duration::from_secs(60);
            for key in ["k1", "k2", "k3"] {
                store.put(key, vec![7; 9], ttl).await.unwrap();
            }
            // Reading k1 and renewing k2 leaves k3 the least recently used.
            assert!(store.get("k1").await.unwrap().is_some());
            assert!(store.touch("k2", ttl).await.unwrap());
            store.put("k4", vec![7; 9], ttl).await.unwrap();
            assert_eq!(store.keys(), ["k1", "k2", "k4"]);
            assert_eq!(store.evictions(), 1);
            // A blob twice the size pushes out the two least recent.
            store.put("k5", vec![7; 20], ttl).await.unwrap();
            assert_eq!(store.keys(), ["k4", "k5"]);
            assert_eq!(store.evictions(), 3);
            assert_eq!(store.bytes(), 11 + 22);
            assert_consistent(&store);
        });
    }

    #[test]
    fn shortening_a_blobs_ttl_is_not_a_use() {
        let (_, store) = store(3 * 11);
        block_on(async {
            let ttl = Duration::from_secs(600);
            for key in ["k1", "k2", "k3"] {
                store.put(key, vec![7; 9], ttl).await.unwrap();
            }
            // k1 is retired (kept a minute for requests still running):
            // it stays the first to go.
            assert!(store.touch("k1", Duration::from_secs(60)).await.unwrap());
            store.put("k4", vec![7; 9], ttl).await.unwrap();
            assert_eq!(store.keys(), ["k2", "k3", "k4"]);
            assert_consistent(&store);
        });
    }

    #[test]
    fn replacing_a_blob_counts_only_the_new_value() {
        let (_, store) = store(40);
        block_on(async {
            let ttl = Duration::from_secs(60);
            store.put("a", vec![1; 19], ttl).await.unwrap();
            store.put("b", vec![1; 19], ttl).await.unwrap();
            // "a" is replaced, not evicted to make room for itself; "b" stays.
            store.put("a", vec![2; 19], ttl).await.unwrap();
            assert_eq!(store.keys(), ["a", "b"]);
            assert_eq!(store.get("a").await.unwrap(), Some(vec![2; 19]));
            assert_eq!((store.bytes(), store.evictions()), (40, 0));
            assert_consistent(&store);
        });
    }

    #[test]
    fn expired_blobs_are_purged_and_free_their_bytes() {
        let (clock, store) = store(1000);
        block_on(async {
            store
                .put("short", vec![0; 100], Duration::from_secs(10))
                .await
                .unwrap();
            store
                .put("long", vec![0; 100], Duration::from_secs(100))
                .await
                .unwrap();
            assert_eq!(store.bytes(), 105 + 104);
            clock.advance(10);
            // Expired at its expiry second, as a TTL of 10 s means.
            assert_eq!(store.get("short").await.unwrap(), None);
            assert!(!store.touch("short", Duration::from_secs(10)).await.unwrap());
            assert_eq!(
                (store.keys(), store.bytes()),
                (vec!["long".to_owned()], 104)
            );
            // Renewing moves the expiry: "long" outlives its first TTL.
            assert!(store.touch("long", Duration::from_secs(500)).await.unwrap());
            clock.advance(400);
            assert!(store.get("long").await.unwrap().is_some());
            clock.advance(100);
            assert!(store.is_empty());
            assert_eq!((store.bytes(), store.evictions()), (0, 0));
            assert_consistent(&store);
        });
    }

    #[test]
    fn a_blob_larger_than_the_cap_is_refused_and_evicts_nothing() {
        let (_, store) = store(50);
        block_on(async {
            let ttl = Duration::from_secs(60);
            store.put("a", vec![0; 10], ttl).await.unwrap();
            let refused = store.put("b", vec![0; 50], ttl).await;
            assert!(matches!(
                refused,
                Err(Error::Store(StoreError::OverCapacity))
            ));
            assert_eq!(store.keys(), ["a"]);
            // Exactly the cap fits (by evicting "a").
            store.put("c", vec![0; 49], ttl).await.unwrap();
            assert_eq!((store.keys(), store.bytes()), (vec!["c".to_owned()], 50));
        });
    }

    /// Random operations against a plain model: the store holds what the
    /// model says, evicts in least-recently-used order, and stays within
    /// its cap.
    #[test]
    fn random_operations_agree_with_a_model() {
        use proptest::prelude::*;
        #[derive(Debug, Clone)]
        enum Op {
            Put(u8, usize, u64),
            Get(u8),
            Touch(u8, u64),
            Delete(u8),
            Advance(u64),
        }
        let op = prop_oneof![
            (0u8..12, 0usize..60, 1u64..50).prop_map(|(k, n, t)| Op::Put(k, n, t)),
            (0u8..12).prop_map(Op::Get),
            (0u8..12, 1u64..50).prop_map(|(k, t)| Op::Touch(k, t)),
            (0u8..12).prop_map(Op::Delete),
            (0u64..20).prop_map(Op::Advance),
        ];
        proptest!(|(ops in proptest::collection::vec(op, 1..200))| {
            let (clock, store) = store(200);
            // Model: key → (len, expires), most recently used last.
            let mut model: Vec<(String, usize, u64)> = Vec::new();
            let mut evictions = 0u64;
            block_on(async {
                for op in ops {
                    let now = clock.now();
                    model.retain(|(_, _, exp)| *exp > now);
                    match op {
                        Op::Put(k, n, t) => {
                            let key = format!("k{k}");
                            store.put(&key, vec![k; n], Duration::from_secs(t)).await.unwrap();
                            model.retain(|(m, _, _)| *m != key);
                            let mut held: usize = model.iter().map(|(m, n, _)| m.len() + n).sum();
                            while held + key.len() + n > 200 {
                                let (m, len, _) = model.remove(0);
                                held -= m.len() + len;
                                evictions += 1;
                            }
                            model.push((key, n, now + t));
                        }
                        Op::Get(k) => {
                            let key = format!("k{k}");
                            let got = store.get(&key).await.unwrap();
                            let at = model.iter().position(|(m, _, _)| *m == key);
                            assert_eq!(got.map(|b| b.len()), at.map(|i| model[i].1));
                            if let Some(i) = at {
                                let used = model.remove(i);
                                model.push(used);
                            }
                        }
                        Op::Touch(k, t) => {
                            let key = format!("k{k}");
                            let renewed = store.touch(&key, Duration::from_secs(t)).await.unwrap();
                            let at = model.iter().position(|(m, _, _)| *m == key);
                            assert_eq!(renewed, at.is_some());
                            if let Some(i) = at {
                                // A shorter TTL keeps the blob's place.
                                if now + t < model[i].2 {
                                    model[i].2 = now + t;
                                } else {
                                    let (m, n, _) = model.remove(i);
                                    model.push((m, n, now + t));
                                }
                            }
                        }
                        Op::Delete(k) => {
                            let key = format!("k{k}");
                            store.delete(&key).await.unwrap();
                            model.retain(|(m, _, _)| *m != key);
                        }
                        Op::Advance(s) => clock.advance(s),
                    }
                    assert_consistent(&store);
                }
            });
            let now = clock.now();
            model.retain(|(_, _, exp)| *exp > now);
            let mut keys: Vec<String> = model.iter().map(|(m, _, _)| m.clone()).collect();
            keys.sort();
            prop_assert_eq!(store.keys(), keys);
            prop_assert_eq!(store.evictions(), evictions);
        });
    }
}
