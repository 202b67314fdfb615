//! The published vectors: no drift from the generator, and every vector
//! holds through the public API.
#![cfg(feature = "vectors")]

use sealed_session::vectors;
use std::path::Path;

fn dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/test-vectors"))
}

#[test]
fn vector_files_match_the_generator() {
    let generated = vectors::generate().expect("generator runs");
    let names: Vec<_> = generated.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, vectors::FILES, "verify-vectors requires every file");
    for (name, generated) in generated {
        let path = dir().join(&name);
        let stored = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} unreadable: {e}", path.display()));
        assert!(
            stored == generated,
            "{name} drifted from the generator; regenerate with \
             `cargo run -p sealed-session-cli -- generate-vectors test-vectors` \
             if the change is intended"
        );
    }
}

#[test]
fn every_vector_passes() {
    let outcomes = vectors::check_dir(dir()).expect("vector files readable");
    let failures: Vec<_> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    assert!(failures.is_empty(), "{failures:#?}");
    let format: vectors::VectorFile = load(vectors::FORMAT_FILE);
    let invalid = format
        .vectors
        .iter()
        .filter(|v| v.expected_error.is_some())
        .count();
    assert!(
        format.vectors.len() >= 35 && invalid >= 18,
        "{} vectors, {invalid} invalid",
        format.vectors.len()
    );
    // Every vector of the three files was checked.
    assert_eq!(
        outcomes.len(),
        format.vectors.len()
            + load::<vectors::BudgetFile>(vectors::BUDGET_FILE)
                .cases
                .len()
            + load::<vectors::OverflowFile>(vectors::OVERFLOW_FILE)
                .vectors
                .len()
    );
}

/// A published vector file, parsed.
fn load<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_json::from_str(&std::fs::read_to_string(dir().join(name)).unwrap()).unwrap()
}

/// A copy of `file` with the one vector `pick` finds changed by `change`.
fn changed<V: Clone>(
    file: &vectors::VectorFile<V>,
    pick: impl Fn(&V) -> bool,
    change: impl FnOnce(&mut V),
) -> vectors::VectorFile<V> {
    let mut changed = file.clone();
    change(changed.vectors.iter_mut().find(|v| pick(v)).unwrap());
    changed
}

/// The failures, as (name, message).
fn failures(outcomes: Vec<vectors::Outcome>) -> Vec<(String, String)> {
    outcomes
        .into_iter()
        .filter_map(|o| Some((o.name, o.failure?)))
        .collect()
}

/// The names of the outcomes that failed.
fn failed_names(outcomes: Vec<vectors::Outcome>) -> Vec<String> {
    outcomes
        .into_iter()
        .filter(|o| o.failure.is_some())
        .map(|o| o.name)
        .collect()
}

#[test]
fn a_changed_overflow_case_is_caught() {
    let file: vectors::OverflowFile = load(vectors::OVERFLOW_FILE);
    let priority = changed(
        &file,
        |v| v.name == "overflow-blob-ignored-fields",
        // The blob gives cart priority high; the cookie's low stands.
        |v| v.expected_entries.as_mut().unwrap()[1].priority = "high".into(),
    );
    let error = changed(
        &file,
        |v| v.name == "overflow-blob-moved",
        |v| v.expected_error = Some("store-missing".into()),
    );
    for (broken, name) in [
        (priority, "overflow-blob-ignored-fields"),
        (error, "overflow-blob-moved"),
    ] {
        assert_eq!(failed_names(vectors::check_overflow(&broken)), [name]);
    }
}

#[test]
fn an_overflow_case_that_fails_says_how() {
    // Each way a case can disagree has its own message, for a reader's
    // author to act on.
    let file: vectors::OverflowFile = load(vectors::OVERFLOW_FILE);
    let loads = |v: &vectors::OverflowVector| v.expected_entries.is_some();
    let refused = |v: &vectors::OverflowVector| v.expected_error.is_some();
    let cases = [
        (
            changed(&file, loads, |v| {
                v.expected_entries.as_mut().unwrap().pop();
            }),
            "the loaded entries differ",
        ),
        (
            changed(&file, loads, |v| {
                v.expected_entries = None;
                v.expected_error = Some("store-missing".into());
            }),
            "expected store-missing, but the blob loaded",
        ),
        (
            changed(&file, refused, |v| {
                v.expected_error = None;
                v.expected_entries = Some(Vec::new());
            }),
            "expected entries, got ",
        ),
        (
            changed(&file, refused, |v| {
                v.expected_error = Some("no-such-error".into());
            }),
            "expected no-such-error, got ",
        ),
        (
            changed(&file, loads, |v| {
                v.expected_error = Some("store-missing".into());
            }),
            "a case needs exactly one of expected_entries and expected_error",
        ),
    ];
    for (broken, message) in cases {
        let failed = failures(vectors::check_overflow(&broken));
        assert_eq!(failed.len(), 1, "{message}: {failed:?}");
        assert!(failed[0].1.starts_with(message), "{failed:?}");
    }
}

#[test]
fn a_changed_entry_key_or_priority_is_caught() {
    let file: vectors::VectorFile = load(vectors::FORMAT_FILE);
    let small = |v: &vectors::Vector| v.name == "small-session";
    let priority = changed(&file, small, |v| {
        let entry = &mut v.expected.as_mut().unwrap().entries[0];
        entry.priority = if entry.priority == "low" {
            "high"
        } else {
            "low"
        }
        .into();
    });
    let key = changed(&file, small, |v| {
        v.expected.as_mut().unwrap().entries[0].key.push('x');
    });
    for broken in [priority, key] {
        let failed = failures(vectors::check(&broken));
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].0, "small-session");
        assert!(
            failed[0].1.contains("differs in key or priority"),
            "{failed:?}"
        );
    }
}

#[test]
fn a_changed_budget_case_is_caught() {
    let mut broken: vectors::BudgetFile = load(vectors::BUDGET_FILE);
    let case = broken
        .cases
        .iter_mut()
        .find(|c| c.expected_header_len.is_some())
        .unwrap();
    *case.expected_header_len.as_mut().unwrap() += 1;
    let name = format!("budget/{}", case.name);
    assert_eq!(failed_names(vectors::check_budget(&broken)), [name]);
}

#[test]
fn a_changed_vector_is_caught() {
    // The checker must be able to fail: corrupt each kind of expectation.
    let file: vectors::VectorFile = load(vectors::FORMAT_FILE);
    let valid = changed(
        &file,
        |v| v.name == "small-session",
        |v| v.expected.as_mut().unwrap().entries[0].value = Some(serde_json::json!(4218)),
    );
    let invalid = changed(
        &file,
        |v| v.name == "tag-tampered",
        |v| v.expected_error = Some("malformed".into()),
    );
    let resealed = changed(
        &file,
        |v| v.name == "compressed",
        |v| v.sealing.as_mut().unwrap().nonce = "00".repeat(24),
    );
    for (broken, name) in [
        (valid, "small-session"),
        (invalid, "tag-tampered"),
        (resealed, "compressed"),
    ] {
        assert_eq!(failed_names(vectors::check(&broken)), [name]);
    }
}
