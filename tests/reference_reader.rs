//! The independent Python reader/writer of the token format
//! (`scripts/reference_reader.py`, written from `docs/FORMAT.md`) must pass
//! every published vector.
//!
//! Runs whenever `python3 -c "import nacl, cbor2"` works. Without those
//! modules it says so on stderr and passes, except under `CI=true`, where it
//! fails (install them with `python3 -m pip install pynacl cbor2`).

mod common;

use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Whether python3 can import PyNaCl and cbor2; panics under CI when not.
fn modules_available() -> bool {
    common::service_available(
        common::python_imports("nacl, cbor2"),
        "PyNaCl and cbor2",
        "python3 -m pip install pynacl cbor2",
    )
}

#[test]
fn python_reference_reader_passes_every_vector() {
    if !modules_available() {
        return;
    }
    let out = Command::new("python3")
        .args(["scripts/reference_reader.py", "test-vectors"])
        .current_dir(ROOT)
        .output()
        .expect("cannot run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/reference_reader.py failed:\n{stdout}\n{stderr}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    let (passed, failed) = last
        .split_once(" passed, ")
        .and_then(|(p, f)| Some((p.parse::<usize>().ok()?, f.strip_suffix(" failed")?)))
        .unwrap_or_else(|| panic!("no `N passed, M failed` line in:\n{stdout}"));
    assert_eq!(failed, "0", "{stdout}");
    // Every vector of every published file, plus the script's self-checks
    // (counted as one): a file the script skipped would show here.
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
        "{passed} passed for {vectors} vectors:\n{stdout}"
    );
}
