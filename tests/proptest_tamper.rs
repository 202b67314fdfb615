//! Properties: a token opens only exactly as sealed. Every single-bit flip
//! (of the text and of the decoded bytes) and every truncation is
//! rejected; a token never opens under a key ring without its key, nor
//! under another cookie name.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use proptest::prelude::*;
use sealed_session::token::{self, Compression, CIPHERTEXT_OFFSET, FLAG_COMPRESSED};
use sealed_session::{
    Error, FixedClock, KeyRing, Limits, Malformed, MasterKey, Priority, Sealer, KEY_ID_LEN,
};
use std::sync::Arc;

const NOW: u64 = 1_700_000_000;

fn sealer_for(ring: KeyRing, name: &str, compression: Compression) -> Sealer {
    Sealer::builder(ring)
        .cookie_name(name)
        .compression(compression)
        .clock(Arc::new(FixedClock::new(NOW)))
        .build()
        .unwrap()
}

fn key(bytes: [u8; 32]) -> MasterKey {
    MasterKey::from_bytes(&bytes).unwrap()
}

/// A small sealed session: a few entries, possibly compressed.
fn sealed(sealer: &Sealer, entries: &[(String, u8, Vec<u8>)]) -> Result<String, TestCaseError> {
    let mut session = sealer.new_session().unwrap();
    for (k, p, v) in entries {
        session
            .insert_with_priority(k, v, Priority::from_u8(*p).unwrap())
            .unwrap();
    }
    let token = sealer.seal(&mut session).unwrap();
    prop_assert!(sealer.open(&token).is_ok());
    Ok(token)
}

fn entries() -> impl Strategy<Value = Vec<(String, u8, Vec<u8>)>> {
    proptest::collection::vec(
        (
            "[a-z]{1,6}",
            0u8..4,
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..12),
                // Repetitive, so that compression kicks in.
                (any::<u8>(), 40usize..80).prop_map(|(b, n)| vec![b; n]),
            ],
        ),
        0..3,
    )
}

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![Just(Compression::Off), Just(Compression::Above(0))]
}

/// The error a one-bit change of the decoded token must give, by position.
fn expected_after_flip(byte: usize, bit: u8) -> Error {
    match byte {
        0 => Error::Malformed(Malformed::UnknownVersion(1 ^ (1 << bit))),
        // The compression flag is defined (set or cleared, it is part of
        // the associated data): only authentication catches it.
        1 if 1 << bit == FLAG_COMPRESSED => Error::AuthenticationFailed,
        1 => Error::Malformed(Malformed::UnknownFlags(1 << bit)),
        b if b < 2 + KEY_ID_LEN => Error::UnknownKeyId,
        _ => Error::AuthenticationFailed,
    }
}

proptest! {
    // Each case makes about 10 opens per token byte; tokens are small.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_bit_flip_of_the_decoded_token_is_rejected(
        entries in entries(),
        compression in compression(),
        name in "[a-z]{1,8}",
    ) {
        let sealer = sealer_for(KeyRing::new(key([1; 32])), &name, compression);
        let token = sealed(&sealer, &entries)?;
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        prop_assert_eq!(bytes[1] & FLAG_COMPRESSED != 0,
            token::inspect(&token).unwrap().header.is_compressed());
        for byte in 0..bytes.len() {
            for bit in 0..8u8 {
                let mut changed = bytes.clone();
                changed[byte] ^= 1 << bit;
                let changed = URL_SAFE_NO_PAD.encode(&changed);
                prop_assert_eq!(sealer.open(&changed).unwrap_err(), expected_after_flip(byte, bit),
                    "byte {} bit {}", byte, bit);
            }
        }
    }

    #[test]
    fn every_bit_flip_of_the_text_and_every_truncation_is_rejected(
        entries in entries(),
        compression in compression(),
    ) {
        let sealer = sealer_for(KeyRing::new(key([2; 32])), "id", compression);
        let token = sealed(&sealer, &entries)?;
        let text = token.as_bytes();
        for i in 0..text.len() {
            for bit in 0..8u8 {
                let mut changed = text.to_vec();
                changed[i] ^= 1 << bit;
                // A flip into a non-ASCII byte is not UTF-8: the replacement
                // character stands in for it, still a changed token.
                let changed = String::from_utf8_lossy(&changed);
                prop_assert!(sealer.open(&changed).is_err(), "char {} bit {}", i, bit);
            }
        }
        for cut in 0..token.len() {
            let err = sealer.open(&token[..cut]).unwrap_err();
            prop_assert!(
                matches!(err, Error::Malformed(_) | Error::AuthenticationFailed),
                "cut at {}: {:?}", cut, err
            );
        }
        // Cut from the front too, and extended at either end.
        for cut in 1..token.len() {
            prop_assert!(sealer.open(&token[cut..]).is_err(), "front cut at {}", cut);
        }
        for extra in ["A", "AA", "AAA", "AAAA", "=", " ", "\n"] {
            let (after, before) = (format!("{token}{extra}"), format!("{extra}{token}"));
            prop_assert!(sealer.open(&after).is_err());
            prop_assert!(sealer.open(&before).is_err());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn never_opens_under_a_ring_without_its_key(
        sealing in any::<[u8; 32]>(),
        others in proptest::collection::vec(any::<[u8; 32]>(), 1..4),
        entries in entries(),
    ) {
        prop_assume!(others.iter().all(|o| *o != sealing));
        // Distinct keys (a ring refuses two equal ones), checked here so
        // that any other refusal of the ring fails the test.
        prop_assume!(others.iter().enumerate().all(|(i, o)| !others[..i].contains(o)));
        let sealer = sealer_for(KeyRing::new(key(sealing)), "id", Compression::Off);
        let token = sealed(&sealer, &entries)?;

        let mut rest = others.iter().map(|o| key(*o));
        let ring = KeyRing::with_fallbacks(rest.next().unwrap(), rest).unwrap();
        let limits = Limits::default();
        prop_assert_eq!(
            token::open(&ring, "id", &token, &limits).unwrap_err(),
            Error::UnknownKeyId
        );

        // Relabelled with the key id of a key the ring has: the tag does
        // not verify under that key.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[2..2 + KEY_ID_LEN].copy_from_slice(ring.primary_id().as_bytes());
        let relabelled = URL_SAFE_NO_PAD.encode(&bytes);
        prop_assert_eq!(
            token::open(&ring, "id", &relabelled, &limits).unwrap_err(),
            Error::AuthenticationFailed
        );

        // With the sealing key as a fallback, it opens and asks for a re-seal.
        let ring = KeyRing::with_fallbacks(key(others[0]), [key(sealing)]).unwrap();
        let rotated = sealer_for(ring, "id", Compression::Off);
        prop_assert!(rotated.open(&token).unwrap().opened_with_fallback());
    }

    #[test]
    fn never_opens_under_another_cookie_name(
        // Names a sealer accepts (RFC 6265 tokens); any other text reaches
        // the token layer through the `near` names below.
        name in "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}",
        other in "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}",
        text in "\\PC{0,16}",
        entries in entries(),
        compression in compression(),
    ) {
        prop_assume!(name != other);
        let ring = || KeyRing::new(key([3; 32]));
        let sealer = sealer_for(ring(), &name, compression);
        let token = sealed(&sealer, &entries)?;
        let elsewhere = sealer_for(ring(), &other, compression);
        prop_assert_eq!(elsewhere.open(&token).unwrap_err(), Error::AuthenticationFailed);
        // Names that share a prefix with the real one, or extend it.
        let near_names = [
            format!("{name}\0"),
            format!("{name}{other}"),
            format!("{other}{name}"),
            format!("{name}{text}"),
            format!("{text}{name}"),
            text.clone(),
        ];
        for near in near_names {
            if near == name {
                continue;
            }
            prop_assert_eq!(
                token::open(&ring(), &near, &token, &Limits::default()).unwrap_err(),
                Error::AuthenticationFailed
            );
        }
    }
}

#[test]
fn the_header_layout_the_flip_test_assumes() {
    // Version, flags, key id, issued-at, then the nonce: the flip test
    // predicts errors by these offsets.
    assert_eq!(CIPHERTEXT_OFFSET, 1 + 1 + KEY_ID_LEN + 8 + 24);
}
