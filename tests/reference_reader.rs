//! The independent readers/writers of the token format, written from
//! `docs/FORMAT.md`, must pass every published vector: the Python one
//! (`scripts/reference_reader.py`) and the Node.js one
//! (`scripts/reference_reader_node/`).
//!
//! Each runs when its interpreter (and, for Python, PyNaCl and cbor2) is
//! present. Without them it says so on stderr and passes, except under
//! `CI=true`, where it fails.

mod common;

use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn python_reference_reader_passes_every_vector() {
    if !common::service_available(
        common::python_imports("nacl, cbor2"),
        "PyNaCl and cbor2",
        "python3 -m pip install pynacl cbor2",
    ) {
        return;
    }
    let out = Command::new("python3")
        .args(["scripts/reference_reader.py", "test-vectors"])
        .current_dir(ROOT)
        .output()
        .expect("cannot run python3");
    assert_passes_every_vector("scripts/reference_reader.py", &out);
}

#[test]
fn node_reference_reader_passes_every_vector() {
    if !common::service_available(
        common::node_major().is_some_and(|major| major >= 18),
        "Node.js 18 or later",
        "apt-get install nodejs",
    ) {
        return;
    }
    let out = Command::new("node")
        .args(["scripts/reference_reader_node/run.js", "test-vectors"])
        .current_dir(ROOT)
        .output()
        .expect("cannot run node");
    assert_passes_every_vector("scripts/reference_reader_node/run.js", &out);
}

/// The reader exited 0 and its last line says `N passed, 0 failed`, where
/// N counts every vector of every published file plus the reader's
/// self-checks (counted as one): a file the reader skipped would show here.
fn assert_passes_every_vector(reader: &str, out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{reader} failed:\n{stdout}\n{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    let (passed, failed) = last
        .split_once(" passed, ")
        .and_then(|(p, f)| Some((p.parse::<usize>().ok()?, f.strip_suffix(" failed")?)))
        .unwrap_or_else(|| panic!("{reader}: no `N passed, M failed` line in:\n{stdout}"));
    assert_eq!(failed, "0", "{reader}:\n{stdout}");
    let mut files: Vec<_> = std::fs::read_dir(format!("{ROOT}/test-vectors"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    let vectors = files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            json.get("vectors")
                .or_else(|| json.get("cases"))
                .and_then(|v| v.as_array())
                .map_or(0, Vec::len)
        })
        .sum::<usize>();
    assert_eq!(
        passed,
        vectors + 1,
        "{reader}: {passed} passed for {vectors} vectors:\n{stdout}"
    );
}
