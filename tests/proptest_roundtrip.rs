//! Property: any session round-trips. Arbitrary keys (ASCII and Unicode),
//! nested CBOR values, priorities, expiry and cookie names, sealed with and
//! without compression, open to exactly the entries that were stored.

use ciborium::Value as Cbor;
use proptest::prelude::*;
use sealed_session::token::{self, Compression};
use sealed_session::{Error, Expiry, FixedClock, KeyRing, Limits, MasterKey, Priority, Sealer};
use std::sync::Arc;

const NOW: u64 = 1_700_000_000;

fn sealer(name: &str, compression: Compression) -> Sealer {
    Sealer::builder(KeyRing::new(MasterKey::from_bytes(&[5; 32]).unwrap()))
        .cookie_name(name)
        .compression(compression)
        // Room for the largest generated sessions: this test is about
        // fidelity, tests/limits.rs about the limits.
        .limits(Limits::default().with_max_token_len(1 << 16))
        .clock(Arc::new(FixedClock::new(NOW)))
        .build()
        .unwrap()
}

fn cbor(value: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).unwrap();
    out
}

/// Nested CBOR values up to six levels deep (under the depth limit).
fn value() -> impl Strategy<Value = Cbor> {
    let leaf = prop_oneof![
        Just(Cbor::Null),
        any::<bool>().prop_map(Cbor::Bool),
        any::<i64>().prop_map(|n| Cbor::Integer(n.into())),
        any::<u64>().prop_map(|n| Cbor::Integer(n.into())),
        any::<f64>().prop_map(Cbor::Float),
        "\\PC{0,24}".prop_map(Cbor::Text),
        proptest::collection::vec(any::<u8>(), 0..48).prop_map(Cbor::Bytes),
    ];
    leaf.prop_recursive(6, 48, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Cbor::Array),
            proptest::collection::vec(("\\PC{0,8}".prop_map(Cbor::Text), inner.clone()), 0..4)
                .prop_map(Cbor::Map),
            // Tags 2 and 3 over short byte strings read back as integers.
            (4u64..1_000_000, inner).prop_map(|(tag, v)| Cbor::Tag(tag, Box::new(v))),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_.:-]{0,15}",
        // Any Unicode, not starting with the reserved '_'.
        "[^_]\\PC{0,11}",
    ]
}

fn priority() -> impl Strategy<Value = Priority> {
    (0u8..4).prop_map(|p| Priority::from_u8(p).unwrap())
}

fn expiry() -> impl Strategy<Value = Expiry> {
    prop_oneof![
        Just(Expiry::Default),
        Just(Expiry::BrowserSession),
        (NOW + 1..NOW + 100_000_000).prop_map(Expiry::At),
        // From 2 s: with the default refresh fraction (0.5) a shorter
        // window makes the refresh due at once, so the opened session
        // would rightly need a save.
        (2..=u64::MAX).prop_map(|secs| Expiry::Idle(std::time::Duration::from_secs(secs))),
    ]
}

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::Off),
        Just(Compression::Above(0)),
        (0usize..512).prop_map(Compression::Above),
    ]
}

/// Stores the entries (later duplicates overwrite earlier ones, as
/// `insert_with_priority` does), seals, opens and compares.
fn round_trip(
    name: &str,
    compression: Compression,
    entries: &[(String, Priority, Cbor)],
    expiry: Expiry,
) -> Result<String, TestCaseError> {
    let sealer = sealer(name, compression);
    let mut session = sealer.new_session().unwrap();
    let mut expected: Vec<(String, Priority, Cbor)> = Vec::new();
    for (key, priority, value) in entries {
        session.insert_with_priority(key, value, *priority).unwrap();
        match expected.iter_mut().find(|(k, _, _)| k == key) {
            Some(slot) => *slot = (key.clone(), *priority, value.clone()),
            None => expected.push((key.clone(), *priority, value.clone())),
        }
    }
    session.set_expiry(expiry);
    let token = sealer.seal(&mut session).unwrap();
    if compression == Compression::Off {
        prop_assert!(!token::inspect(&token).unwrap().header.is_compressed());
    }

    let opened = sealer.open(&token).unwrap();
    prop_assert_eq!(opened.id(), session.id());
    prop_assert_eq!(opened.created_at(), NOW);
    prop_assert_eq!(opened.expiry(), expiry);
    prop_assert!(!opened.needs_save());
    let keys: Vec<&str> = opened.keys().collect();
    let expected_keys: Vec<&str> = expected.iter().map(|(k, _, _)| k.as_str()).collect();
    prop_assert_eq!(keys, expected_keys);
    for (key, priority, value) in &expected {
        let raw = cbor(value);
        prop_assert_eq!(opened.priority(key), Some(*priority));
        prop_assert_eq!(opened.get_raw(key), Some(&raw[..]));
        let decoded: Cbor = opened.get(key).unwrap().unwrap();
        // Compared as CBOR so that NaN equals itself.
        prop_assert_eq!(cbor(&decoded), raw);
    }
    Ok(token)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_session_round_trips(
        name in "[A-Za-z0-9_.-]{1,16}",
        compression in compression(),
        entries in proptest::collection::vec((key(), priority(), value()), 0..12),
        expiry in expiry(),
    ) {
        round_trip(&name, compression, &entries, expiry)?;
    }

    #[test]
    fn round_trips_with_and_without_compression(
        entries in proptest::collection::vec((key(), priority(), value()), 1..8),
        filler in "[a-c]{1,4}",
        repeat in 200usize..400,
        expiry in expiry(),
    ) {
        // A repetitive entry makes the payload compressible, so that
        // `Above(0)` really compresses: at least 200 bytes, as deflate's
        // block header (its code tables) costs up to about 100 bytes of
        // the saving, and the sealer keeps the plaintext when compressing
        // does not make it smaller (a 57-byte filler once fell short).
        let mut entries = entries;
        entries.push(("filler".to_owned(), Priority::Low, Cbor::Text(filler.repeat(repeat))));
        let plain = round_trip("id", Compression::Off, &entries, expiry)?;
        let packed = round_trip("id", Compression::Above(0), &entries, expiry)?;
        prop_assert!(token::inspect(&packed).unwrap().header.is_compressed());
        prop_assert!(packed.len() < plain.len());
    }

    #[test]
    fn typed_values_round_trip(
        number in any::<u64>(),
        text in "\\PC{0,64}",
        list in proptest::collection::vec(any::<i32>(), 0..16),
        pair in any::<(bool, Option<u16>)>(),
    ) {
        let sealer = sealer("id", Compression::Above(64));
        let mut session = sealer.new_session().unwrap();
        session.insert("number", number).unwrap();
        session.insert("text", &text).unwrap();
        session.insert("list", &list).unwrap();
        session.insert("pair", pair).unwrap();
        let opened = sealer.open(&sealer.seal(&mut session).unwrap()).unwrap();
        prop_assert_eq!(opened.get::<u64>("number").unwrap(), Some(number));
        prop_assert_eq!(opened.get::<String>("text").unwrap(), Some(text));
        prop_assert_eq!(opened.get::<Vec<i32>>("list").unwrap(), Some(list));
        prop_assert_eq!(opened.get::<(bool, Option<u16>)>("pair").unwrap(), Some(pair));
        prop_assert!(matches!(opened.get::<u64>("text"), Err(Error::Value(_))));
        prop_assert_eq!(opened.get::<u64>("absent").unwrap(), None);
    }
}
