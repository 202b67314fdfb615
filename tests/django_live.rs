#![cfg(feature = "django")]
//! Both directions against real Django, through `scripts/django_cookies.py`:
//! cookies Django writes now are read by the crate, and cookies the crate
//! writes are loaded by Django's session backend.
//!
//! Runs whenever `python3 -c "import django"` works. Without Django it says
//! so and passes, except under `CI=true`, where it fails.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use sealed_session::django::DjangoCodec;
use sealed_session::{Clock, FixedClock, SystemClock};
use serde_json::{json, Map, Value};

mod common;

// The fixture checks, run here on freshly generated cookies.
#[path = "django_fixtures.rs"]
mod fixtures;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/django_cookies.py");
const SECRET: &str = "django-insecure-live-test-secret";
const OLD_SECRET: &str = "django-insecure-live-test-previous";
const DEFAULT_AGE: u64 = 1_209_600;

/// Whether Django can be imported; panics under CI when it cannot.
fn django_available() -> bool {
    common::service_available(
        common::python_imports("django"),
        "Django",
        "python3 -m pip install django",
    )
}

/// Runs the script with `args`, feeding `input` as JSON on stdin.
fn script(args: &[&str], input: Option<&Value>) -> Value {
    let mut child = Command::new("python3")
        .arg(SCRIPT)
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run python3");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin
            .write_all(serde_json::to_string(input).unwrap().as_bytes())
            .unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{SCRIPT} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("script output is not JSON")
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn codec(secret: &str, now: u64) -> DjangoCodec {
    DjangoCodec::builder(secret)
        .clock(Arc::new(FixedClock::new(now)))
        .build()
        .unwrap()
}

#[test]
fn django_written_cookies_are_read_by_the_crate() {
    if !django_available() {
        return;
    }
    // Generated now by the installed Django, at the current time.
    let now = SystemClock.now().to_string();
    let doc = script(&["fixtures", "--now", &now], None);
    let checked = fixtures::check_document(&doc);
    assert!(checked >= 20);

    // The committed fixtures still match what Django makes (drift check),
    // for every cookie that does not depend on the zlib build.
    let fresh = script(&["fixtures"], None);
    let committed: Value = serde_json::from_str(include_str!("data/django/cookies.json")).unwrap();
    let (fresh, committed) = (
        fresh["cases"].as_array().unwrap(),
        committed["cases"].as_array().unwrap(),
    );
    assert_eq!(fresh.len(), committed.len(), "regenerate the fixtures");
    for (f, c) in fresh.iter().zip(committed) {
        assert_eq!(f["name"], c["name"], "regenerate the fixtures");
        let (fc, cc) = (f["cookie"].as_str().unwrap(), c["cookie"].as_str().unwrap());
        if !fc.starts_with('.') && !cc.starts_with('.') {
            assert_eq!(fc, cc, "fixture {} drifted: regenerate it", c["name"]);
        }
        assert_eq!(f["django"]["ok"], c["django"]["ok"], "{}", c["name"]);
    }
}

/// Sessions the crate writes for Django to load.
fn sessions() -> Vec<(String, Map<String, Value>)> {
    let mut out = vec![
        ("empty".to_owned(), Map::new()),
        (
            "login".to_owned(),
            object(json!({
                "_auth_user_id": "42",
                "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
                "_auth_user_hash": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            })),
        ),
        (
            "unicode".to_owned(),
            object(json!({
                "latin": "José Müller",
                "cjk": "東京",
                "astral": "😀🎉𝄞",
                "controls": "\u{0}\u{1}\u{8}\u{c}\n\r\t\u{1f}\u{7f}\u{80}\u{2028}\u{feff}\u{ffff}",
                "quotes": "\"\\/",
                "ключ": "значение",
            })),
        ),
        (
            "numbers".to_owned(),
            object(json!({
                "ints": [0, 1, -1, i64::MIN, i64::MAX, u64::MAX],
                "floats": [0.1, -2.5, 1e16, 1e15, 1e-5, 1e-4, 5e-324, 1.7976931348623157e308, -0.0],
                "misc": [true, false, null, [], {}],
            })),
        ),
        (
            "compressible-cart".to_owned(),
            object(json!({
                "cart": (0..60).map(|i| json!({"sku": format!("sku-{i}"), "qty": i % 4})).collect::<Vec<_>>(),
            })),
        ),
    ];
    // Float formatting, value by value, against Python's repr: pseudo-random
    // bit patterns over the whole range, each small enough to stay uncompressed.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut floats = 0;
    while floats < 300 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let f = f64::from_bits(state);
        if f.is_finite() {
            out.push((format!("float-{floats}"), object(json!({ "f": f }))));
            floats += 1;
        }
    }
    out
}

#[test]
fn crate_written_cookies_are_loaded_by_django() {
    if !django_available() {
        return;
    }
    let now = SystemClock.now();
    let writer = codec(SECRET, now);
    let sessions = sessions();

    // 1. Django loads every cookie the crate writes, to the same session.
    let mut cases = Vec::new();
    let mut cookies = Vec::new();
    for (name, entries) in &sessions {
        let cookie = writer.seal(entries).unwrap();
        cases.push(json!({"name": name, "secret": SECRET, "cookie": cookie, "now": now}));
        cookies.push(cookie);
    }
    // 2. Fallback secrets, max age boundaries and tampering, on Django's side.
    let login = object(json!({"_auth_user_id": "7"}));
    let old_cookie = codec(OLD_SECRET, now).seal(&login).unwrap();
    let cookie = writer.seal(&login).unwrap();
    let mut tampered = cookie.clone();
    tampered.replace_range(0..1, if cookie.starts_with('A') { "B" } else { "A" });
    let expect_error = [
        json!({"name": "fallback", "secret": SECRET, "fallback_secrets": [OLD_SECRET],
               "cookie": old_cookie, "now": now}),
        json!({"name": "fallback-missing", "secret": SECRET, "cookie": old_cookie, "now": now,
               "expect": "BadSignature"}),
        json!({"name": "boundary", "secret": SECRET, "cookie": cookie, "now": now + DEFAULT_AGE}),
        json!({"name": "expired", "secret": SECRET, "cookie": cookie,
               "now": now + DEFAULT_AGE + 1, "expect": "SignatureExpired"}),
        json!({"name": "expired-custom", "secret": SECRET, "cookie": cookie,
               "now": now + 61, "max_age": 60, "expect": "SignatureExpired"}),
        json!({"name": "tampered", "secret": SECRET, "cookie": tampered, "now": now,
               "expect": "BadSignature"}),
    ];
    cases.extend(expect_error.iter().cloned());

    let loaded = script(&["load"], Some(&json!({ "cases": cases })));
    let results = loaded["results"].as_array().unwrap();
    assert_eq!(results.len(), cases.len());
    for (i, (name, entries)) in sessions.iter().enumerate() {
        let r = &results[i];
        assert_eq!(r["name"], name.as_str());
        assert_eq!(r["ok"], true, "{name}: Django refused it: {}", r["error"]);
        assert_eq!(r["session"], Value::Object(entries.clone()), "{name}");
    }
    for (case, r) in expect_error.iter().zip(&results[sessions.len()..]) {
        let name = &case["name"];
        match case.get("expect") {
            Some(error) => {
                assert_eq!(r["ok"], false, "{name}");
                assert_eq!(&r["error"], error, "{name}");
            }
            None => {
                assert_eq!(r["ok"], true, "{name}: {}", r["error"]);
                assert_eq!(r["session"], Value::Object(login.clone()), "{name}");
            }
        }
    }

    // 3. Django writes the same sessions at the same time: identical cookies
    //    whenever neither side compresses, and the same decision to compress.
    let dump_cases: Vec<Value> = sessions
        .iter()
        .map(|(name, entries)| json!({"name": name, "secret": SECRET, "session": entries, "now": now}))
        .collect();
    let dumped = script(&["dumps"], Some(&json!({ "cases": dump_cases })));
    assert_eq!(
        dumped["results"].as_array().map(Vec::len),
        Some(sessions.len()),
        "one Django cookie per session"
    );
    let mut identical = 0;
    for ((name, _), (ours, r)) in sessions
        .iter()
        .zip(cookies.iter().zip(dumped["results"].as_array().unwrap()))
    {
        let theirs = r["cookie"].as_str().unwrap();
        assert_eq!(
            ours.starts_with('.'),
            theirs.starts_with('.'),
            "{name}: compression decision differs"
        );
        if !theirs.starts_with('.') {
            assert_eq!(ours, theirs, "{name}");
            identical += 1;
        }
        // And each side reads the other's.
        assert_eq!(
            writer.open(theirs).unwrap(),
            sessions.iter().find(|(n, _)| n == name).unwrap().1,
            "{name}"
        );
    }
    assert!(identical >= 300, "only {identical} byte-identical cookies");
}
