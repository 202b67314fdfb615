//! A session's life over many requests, against a model of what the
//! application stored: every request opens the latest cookie, does one
//! thing (writes, removes or reads an entry, logs out, takes a new id, waits,
//! rotates the key, or has the overflow store evict everything), and saves.
//! Across all of them, on a tight budget with an overflow store:
//!
//! - each entry reads back with the value last written, unless a save's
//!   report listed it as dropped: nothing is lost silently, nothing removed
//!   or overwritten comes back;
//! - no `Set-Cookie` header exceeds the budget, and a save fails only when
//!   critical entries are there (the failed request's changes are lost, and
//!   the cookie before it still opens in full);
//! - the cookie a save replaced still opens in full right after it (a
//!   request still in flight), unless the save gave up its id;
//! - entries whose blob was evicted are reported dropped by the first save
//!   that needs the blob, and until then their cookie says the blob is
//!   missing rather than show anything else.

mod common;

use common::*;
use proptest::prelude::*;
use sealed_session::store::{overflow_key, MemoryStore, OverflowStore};
use sealed_session::token;
use sealed_session::{
    Compression, CookieAction, Error, KeyRing, Limit, Limits, Priority, Sealer, Session, StoreError,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One request's action on the session.
#[derive(Debug, Clone)]
enum Step {
    Insert {
        key: u8,
        len: usize,
        priority: Priority,
    },
    Remove {
        key: u8,
    },
    SetPriority {
        key: u8,
        priority: Priority,
    },
    /// Removes every entry, keeping the id.
    Clear,
    Read {
        key: u8,
    },
    /// Opens the cookie and changes nothing (a refresh may be due).
    Touch,
    /// The request comes this many seconds after the previous one.
    Wait {
        secs: u64,
    },
    Flush,
    CycleId,
    /// The request reaches a server whose primary key is new, the previous
    /// primary its fallback.
    Rotate,
    /// The store loses every blob before the request.
    Evict,
}

fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![
        3 => Just(Priority::Low),
        3 => Just(Priority::Normal),
        2 => Just(Priority::High),
        1 => Just(Priority::Critical),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let key = 0u8..8;
    prop_oneof![
        6 => (key.clone(), 0usize..700, priority())
            .prop_map(|(key, len, priority)| Step::Insert { key, len, priority }),
        2 => key.clone().prop_map(|key| Step::Remove { key }),
        1 => (key.clone(), priority()).prop_map(|(key, priority)| Step::SetPriority { key, priority }),
        1 => Just(Step::Clear),
        2 => key.prop_map(|key| Step::Read { key }),
        1 => Just(Step::Touch),
        1 => (0u64..1200).prop_map(|secs| Step::Wait { secs }),
        1 => Just(Step::Flush),
        1 => Just(Step::CycleId),
        1 => Just(Step::Rotate),
        1 => Just(Step::Evict),
    ]
}

/// What the application stored: key → (value, priority).
type Model = BTreeMap<String, (String, Priority)>;

fn entry_key(key: u8) -> String {
    format!("k{key}")
}

/// The keys of `session` whose values are in the store.
fn overflowed(session: &Session) -> BTreeSet<String> {
    session
        .keys()
        .filter(|k| session.is_overflowed(k))
        .map(str::to_owned)
        .collect()
}

/// The cookie holds exactly the model's keys and priorities; loaded, their
/// values are the model's, or, while entries the model holds have lost
/// their blob (`lost`), the load says the blob is missing.
async fn assert_cookie_holds(
    sealer: &Sealer,
    store: &MemoryStore,
    cookie: Option<&str>,
    model: &Model,
    lost: &BTreeSet<String>,
) -> Result<(), TestCaseError> {
    let Some(cookie) = cookie else {
        prop_assert!(
            model.is_empty(),
            "no cookie, yet the model holds {:?}",
            model.keys()
        );
        return Ok(());
    };
    let mut session = sealer
        .open_async(cookie)
        .await
        .map_err(|e| TestCaseError::fail(format!("own cookie refused: {e:?}")))?;
    let keys: BTreeMap<String, Priority> = session
        .keys_with_priority()
        .map(|(k, p)| (k.to_owned(), p))
        .collect();
    let want: BTreeMap<String, Priority> =
        model.iter().map(|(k, (_, p))| (k.clone(), *p)).collect();
    prop_assert_eq!(&keys, &want);
    // A critical entry is never left in the store, whose eviction would
    // lose it.
    prop_assert!(keys
        .iter()
        .all(|(k, p)| *p != Priority::Critical || !session.is_overflowed(k)));
    if model.keys().any(|k| lost.contains(k)) {
        prop_assert_eq!(
            sealer.load_overflow(&mut session).await,
            Err(Error::Store(StoreError::Missing))
        );
        for (key, (value, _)) in model {
            if !session.is_overflowed(key) {
                let read: Option<String> = session.get(key).unwrap();
                prop_assert_eq!(read.as_ref(), Some(value));
            }
        }
    } else {
        let listed = overflowed(&session);
        if let Some(reference) = session.overflow_reference() {
            let in_blob = blob_keys(sealer, store, &overflow_key(&session.id(), reference)).await;
            prop_assert_eq!(
                in_blob,
                listed,
                "the blob holds what the cookie lists, no more"
            );
        }
        prop_assert_eq!(sealer.load_overflow(&mut session).await, Ok(()));
        for (key, (value, _)) in model {
            let read: Option<String> = session.get(key).unwrap();
            prop_assert_eq!(read.as_ref(), Some(value));
        }
    }
    Ok(())
}

/// The keys of the entries in the blob at `store_key`: a value removed or
/// replaced since it was written must not stay in the store for as long as
/// the cookie is renewed.
async fn blob_keys(sealer: &Sealer, store: &MemoryStore, store_key: &str) -> BTreeSet<String> {
    let blob = store
        .get(store_key)
        .await
        .unwrap()
        .expect("the blob is there");
    let text = String::from_utf8(blob).unwrap();
    let opened = token::open(
        sealer.key_ring(),
        store_key,
        &text,
        &Limits::default().with_max_token_len(1 << 20),
    )
    .unwrap();
    let payload: ciborium::Value = ciborium::de::from_reader(opened.plaintext()).unwrap();
    let entries = payload.as_array().unwrap()[4].as_array().unwrap();
    entries
        .iter()
        .map(|entry| entry.as_array().unwrap()[0].as_text().unwrap().to_owned())
        .collect()
}

async fn live(
    steps: Vec<Step>,
    budget: usize,
    compress: bool,
    max_decompressed: usize,
) -> Result<(), TestCaseError> {
    let clock = clock();
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let sealer_for = |ring: KeyRing| {
        let b = builder_with(ring, &clock)
            .budget(budget)
            .limits(Limits::default().with_max_decompressed(max_decompressed))
            .overflow_store(store.clone());
        let b = if compress {
            b.compression(Compression::Above(64))
        } else {
            b
        };
        b.build().unwrap()
    };
    let mut primary = 1u8;
    let mut sealer = sealer_for(KeyRing::new(key(primary)));
    let mut cookie: Option<String> = None;
    let mut model = Model::new();
    // Entries of the model whose blob the store lost, not yet reported.
    let mut lost = BTreeSet::new();

    for (n, step) in steps.into_iter().enumerate() {
        let (model_before, lost_before) = (model.clone(), lost.clone());
        match step {
            Step::Wait { secs } => clock.advance(secs),
            Step::Rotate => {
                primary += 1;
                let ring = KeyRing::with_fallbacks(key(primary), [key(primary - 1)]).unwrap();
                sealer = sealer_for(ring);
            }
            Step::Evict => {
                if let Some(c) = &cookie {
                    lost.extend(overflowed(&sealer.open_async(c).await.unwrap()));
                }
                evict_all(&store).await;
            }
            _ => {}
        }
        let mut session = match &cookie {
            Some(c) => sealer.open_async(c).await.unwrap(),
            None => sealer.new_session().unwrap(),
        };
        match step {
            Step::Insert { key, len, priority } => {
                let key = entry_key(key);
                let value = format!("{n}:{}", "v".repeat(len));
                session
                    .insert_with_priority(&key, &value, priority)
                    .unwrap();
                lost.remove(&key);
                model.insert(key, (value, priority));
            }
            Step::Remove { key } => {
                let key = entry_key(key);
                prop_assert_eq!(session.remove(&key), model.remove(&key).is_some());
                lost.remove(&key);
            }
            Step::SetPriority { key, priority } => {
                let key = entry_key(key);
                let held = model.get_mut(&key);
                prop_assert_eq!(session.set_priority(&key, priority), held.is_some());
                if let Some((_, p)) = held {
                    *p = priority;
                }
            }
            Step::Clear => {
                session.clear();
                model.clear();
                lost.clear();
            }
            Step::Read { key } => {
                let key = entry_key(key);
                let read: Option<String> = sealer.get_loading(&mut session, &key).await.unwrap();
                if lost.contains(&key) {
                    prop_assert_eq!(read, None);
                } else {
                    prop_assert_eq!(read.as_ref(), model.get(&key).map(|(v, _)| v));
                }
            }
            Step::Flush => {
                session.flush().unwrap();
                model.clear();
                lost.clear();
            }
            Step::CycleId => session.cycle_id().unwrap(),
            Step::Touch | Step::Wait { .. } | Step::Rotate | Step::Evict => {}
        }

        match sealer.save_async(&mut session).await {
            Ok(saved) => {
                let report = &saved.report;
                prop_assert!(
                    report.header_len <= budget,
                    "{} > {budget}",
                    report.header_len
                );
                for dropped in &report.dropped {
                    // A critical entry only with its blob (it was not
                    // critical when it went there).
                    prop_assert!(
                        dropped.priority != Priority::Critical
                            || lost_before.contains(&dropped.key)
                    );
                    let held = model.remove(&dropped.key);
                    prop_assert_eq!(held.map(|(_, p)| p), Some(dropped.priority));
                }
                lost.retain(|k| model.contains_key(k));
                match &saved.action {
                    CookieAction::Set(_) => {
                        let replaced = cookie.replace(saved.action.cookie_value().unwrap().into());
                        // A request that carried the replaced cookie and is
                        // still running reads all of it.
                        if !matches!(step, Step::Flush | Step::CycleId) {
                            assert_cookie_holds(
                                &sealer,
                                &store,
                                replaced.as_deref(),
                                &model_before,
                                &lost_before,
                            )
                            .await?;
                        }
                    }
                    CookieAction::Delete(_) => {
                        prop_assert!(model.is_empty());
                        cookie = None;
                    }
                    CookieAction::Unchanged => {
                        prop_assert_eq!(&model, &model_before);
                        prop_assert!(report.dropped.is_empty());
                    }
                    other => prop_assert!(false, "unexpected {other:?}"),
                }
            }
            // The entries that may not be dropped do not fit the budget,
            // or their payload exceeds the payload limit.
            Err(Error::TooLarge { .. } | Error::LimitExceeded(Limit::DecompressedSize)) => {
                prop_assert!(
                    model.values().any(|(_, p)| *p == Priority::Critical),
                    "refused without a critical entry"
                );
                // The request failed: its changes are lost, its cookie stays.
                model = model_before;
                lost = lost_before;
            }
            Err(other) => prop_assert!(false, "step {n} {step:?}: {other:?}"),
        }
        assert_cookie_holds(&sealer, &store, cookie.as_deref(), &model, &lost).await?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn a_session_keeps_what_was_stored_unless_a_save_reports_it_dropped(
        steps in proptest::collection::vec(step(), 1..40),
        budget in 350usize..2500,
        compress in any::<bool>(),
        max_decompressed in prop_oneof![Just(65_536usize), 600usize..3000],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(live(steps, budget, compress, max_decompressed))?;
    }
}
