#![cfg(feature = "django")]
//! Django-written cookies kept as fixed test data (made by real Django with
//! `scripts/django_cookies.py fixtures`), so the reader is checked even where
//! Python is missing. `tests/django_live.rs` checks against Django itself.

use std::sync::Arc;
use std::time::Duration;

use sealed_session::django::{migrate_session, DjangoCodec};
use sealed_session::{Error, Expiry, FixedClock, KeyRing, Limit, Malformed, MasterKey, Sealer};
use serde_json::{Map, Value};

const FIXTURES: &str = include_str!("data/django/cookies.json");

/// The fixture's name for an error: the kind, and for malformed and limit
/// errors which check failed.
fn error_name(e: &Error) -> String {
    match e {
        Error::Malformed(m) => format!(
            "malformed:{}",
            match m {
                Malformed::Base64 => "base64",
                Malformed::Truncated => "truncated",
                Malformed::Timestamp => "timestamp",
                Malformed::Compression => "compression",
                Malformed::Json => "json",
                other => panic!("unexpected malformed kind {other:?}"),
            }
        ),
        Error::LimitExceeded(l) => format!(
            "limit-exceeded:{}",
            match l {
                Limit::TokenLength => "token-length",
                Limit::DecompressedSize => "decompressed-size",
                other => panic!("unexpected limit {other:?}"),
            }
        ),
        other => other.kind().to_owned(),
    }
}

fn codec_for(case: &Value, now: u64) -> DjangoCodec {
    let mut builder = DjangoCodec::builder(case["secret"].as_str().unwrap())
        .max_age(Duration::from_secs(case["max_age"].as_u64().unwrap()))
        .clock(Arc::new(FixedClock::new(now)))
        .expire_at_browser_close(case["expire_at_browser_close"].as_bool().unwrap_or(false));
    for s in case["fallback_secrets"].as_array().unwrap() {
        builder = builder.fallback_secret(s.as_str().unwrap());
    }
    builder.build().unwrap()
}

/// Checks every case of a fixture document made by the script; returns the
/// number of cases checked. `django_live.rs` includes this file and runs the
/// same checks on a document Django generates during the test.
pub fn check_document(doc: &Value) -> usize {
    assert_eq!(doc["generator"], "scripts/django_cookies.py fixtures");
    let cases = doc["cases"].as_array().unwrap();
    let mut byte_exact = 0;
    let mut expiries = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let cookie = case["cookie"].as_str().unwrap();
        let now = case["now"].as_u64().unwrap();
        let codec = codec_for(case, now);
        let django = &case["django"];
        let django_ok = django["ok"].as_bool().unwrap();
        let result = codec.open_session(cookie);

        match case.get("expect_error").and_then(Value::as_str) {
            Some(expected) => {
                let err = result.expect_err(name);
                assert_eq!(error_name(&err), expected, "{name}");
                // Where Django verifies signatures and ages, agree with it.
                match django["error"].as_str() {
                    Some("SignatureExpired") => assert_eq!(expected, "expired-idle", "{name}"),
                    Some("BadSignature") => assert!(
                        expected == "authentication-failed" || expected == "malformed:truncated",
                        "{name}"
                    ),
                    _ => {}
                }
            }
            None => {
                assert!(django_ok, "{name}: Django refused it, so must the crate");
                let opened = result.unwrap_or_else(|e| panic!("{name}: crate refused it: {e:?}"));
                let Value::Object(want) = &django["session"] else {
                    panic!("{name}: Django's session is not an object")
                };
                assert_eq!(opened.entries(), want, "{name}");
                assert_eq!(opened.was_compressed(), cookie.starts_with('.'), "{name}");
                assert_eq!(
                    opened.opened_with_fallback(),
                    !case["fallback_secrets"].as_array().unwrap().is_empty(),
                    "{name}"
                );
                if let Some(django_expiry) = case.get("django_expiry") {
                    check_migrated_expiry(name, &codec, cookie, now, django_expiry);
                    expiries += 1;
                }

                // Writing the same session at the same time under the key
                // that verified it gives Django's cookie back, byte for byte,
                // when neither side compresses (zlib output differs between
                // zlib builds, Django's included).
                let signer_secret = if opened.opened_with_fallback() {
                    None
                } else {
                    Some(case["secret"].as_str().unwrap())
                };
                if let Some(secret) = signer_secret {
                    let writer = DjangoCodec::builder(secret)
                        .clock(Arc::new(FixedClock::new(opened.timestamp() as u64)))
                        .build()
                        .unwrap();
                    let written = writer.seal(opened.entries()).unwrap();
                    assert_eq!(
                        written.starts_with('.'),
                        cookie.starts_with('.'),
                        "{name}: compression decision differs from Django's"
                    );
                    if !cookie.starts_with('.') {
                        assert_eq!(written, cookie, "{name}");
                        byte_exact += 1;
                    }
                }
            }
        }
    }
    assert!(byte_exact >= 3, "too few uncompressed cases to compare");
    assert!(expiries >= 4, "too few set_expiry cases: {expiries}");
    cases.len()
}

/// A cookie written after `set_expiry` migrates to a sealed session that
/// ends as Django says it does: with the browser (the server-side age is
/// then the sealer's own), or after the age Django gives the cookie
/// (`get_expiry_age`) at the cookie's time, as an inactivity window for a
/// number of seconds and as an end for a date.
fn check_migrated_expiry(name: &str, codec: &DjangoCodec, cookie: &str, now: u64, django: &Value) {
    let sealer = Sealer::builder(KeyRing::new(MasterKey::from_bytes(&[5; 32]).unwrap()))
        .clock(Arc::new(FixedClock::new(now)))
        .build()
        .unwrap();
    let session = migrate_session(codec, &sealer, cookie)
        .unwrap_or_else(|e| panic!("{name}: migration failed: {e:?}"));
    if django["browser_close"].as_bool().unwrap() {
        assert_eq!(session.expiry(), Expiry::BrowserSession, "{name}");
        return;
    }
    let stored = &codec.open(cookie).unwrap()["_session_expiry"];
    match (stored, session.expiry()) {
        (Value::Number(_), Expiry::Idle(_)) | (Value::String(_), Expiry::At(_)) => {}
        (stored, expiry) => panic!("{name}: {stored} became {expiry:?}"),
    }
    assert_eq!(
        session.expiry_age(),
        django["expiry_age"].as_u64().map(Duration::from_secs),
        "{name}"
    );
}

#[test]
fn django_written_fixtures_open_as_django_opens_them() {
    let doc: Value = serde_json::from_str(FIXTURES).unwrap();
    let checked = check_document(&doc);
    assert!(checked >= 20, "only {checked} fixture cases");
}

#[test]
fn fixtures_cover_every_required_case() {
    let doc: Value = serde_json::from_str(FIXTURES).unwrap();
    let names: Vec<&str> = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for required in [
        "login",
        "compressed-cart",
        "unicode",
        "fallback-secret",
        "expired",
        "max-age-boundary",
        "tampered-payload",
        "truncated",
        "bad-base64",
        "bad-base62",
        "bad-zlib",
        "json-not-an-object",
        "decompression-over-cap",
        "oversized",
        "expiry-seconds",
        "expiry-browser-close",
        "expiry-timedelta",
        "expiry-datetime",
        "expiry-past",
    ] {
        assert!(names.contains(&required), "missing fixture case {required}");
    }
}

#[test]
fn fixture_with_login_reads_expected_types() {
    let doc: Value = serde_json::from_str(FIXTURES).unwrap();
    let case = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "login")
        .unwrap();
    let codec = codec_for(case, case["now"].as_u64().unwrap());
    let entries: Map<String, Value> = codec.open(case["cookie"].as_str().unwrap()).unwrap();
    assert_eq!(entries["_auth_user_id"], "42");
    assert!(entries.contains_key("_auth_user_hash"));
}
