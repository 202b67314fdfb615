//! Property: opening never panics and never accepts what was not sealed,
//! whatever the string: arbitrary Unicode, base64url-looking text of any
//! length, and well-framed tokens (right version and key id) with
//! arbitrary contents.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use proptest::prelude::*;
use sealed_session::token::{self, OVERHEAD};
use sealed_session::{Error, FixedClock, KeyRing, Limit, Malformed, MasterKey, Sealer};
use std::sync::Arc;

fn sealer() -> Sealer {
    Sealer::builder(KeyRing::new(MasterKey::from_bytes(&[4; 32]).unwrap()))
        .cookie_name("id")
        .clock(Arc::new(FixedClock::new(1_700_000_000)))
        .build()
        .unwrap()
}

/// Opening fails, with one of the kinds decided before or at
/// authentication; `inspect`, which stops at the header, succeeds exactly
/// when opening got as far as the key, and otherwise fails the same way.
fn refused(sealer: &Sealer, text: &str) -> Result<Error, TestCaseError> {
    let err = match sealer.open(text) {
        Ok(_) => return Err(TestCaseError::fail(format!("opened {text:?}"))),
        Err(err) => err,
    };
    prop_assert!(
        matches!(
            err,
            Error::Malformed(_)
                | Error::LimitExceeded(Limit::TokenLength)
                | Error::UnknownKeyId
                | Error::AuthenticationFailed
        ),
        "{:?}",
        err
    );
    match token::inspect(text) {
        Ok(_) => prop_assert!(
            matches!(err, Error::UnknownKeyId | Error::AuthenticationFailed),
            "inspect read a header open refused with {:?}",
            err
        ),
        Err(inspected) => prop_assert_eq!(&inspected, &err),
    }
    Ok(err)
}

proptest! {

    #[test]
    fn arbitrary_strings(text in any::<String>()) {
        refused(&sealer(), &text)?;
    }

    #[test]
    fn printable_unicode(text in "\\PC{0,300}") {
        refused(&sealer(), &text)?;
    }

    #[test]
    fn base64url_alphabet_of_any_length(text in "[A-Za-z0-9_-]{0,5000}") {
        let err = refused(&sealer(), &text)?;
        if text.len() > 4096 {
            prop_assert_eq!(err, Error::LimitExceeded(Limit::TokenLength));
        } else if text.len() % 4 == 1 {
            // No base64 text has this length.
            prop_assert_eq!(err, Error::Malformed(Malformed::Base64));
        }
    }

    #[test]
    fn well_framed_tokens_with_arbitrary_contents(
        body in proptest::collection::vec(any::<u8>(), 0..600),
        flags in prop_oneof![Just(0u8), Just(1u8), any::<u8>()],
    ) {
        let sealer = sealer();
        let mut bytes = vec![1, flags];
        bytes.extend_from_slice(sealer.key_ring().primary_id().as_bytes());
        bytes.extend_from_slice(&body);
        let text = URL_SAFE_NO_PAD.encode(&bytes);
        let err = refused(&sealer, &text)?;
        let expected = if bytes.len() < OVERHEAD {
            Error::Malformed(Malformed::Truncated)
        } else if flags > 1 {
            Error::Malformed(Malformed::UnknownFlags(flags & !1))
        } else {
            Error::AuthenticationFailed
        };
        prop_assert_eq!(err, expected);
    }
}
