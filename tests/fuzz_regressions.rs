//! Replays the committed fuzz inputs (`tests/fuzz-regressions/<target>/`)
//! through the same property code the `cargo fuzz` targets run
//! (`fuzz/src/lib.rs`), so that a plain `cargo test` re-checks them.
//! `fuzz/README.md` says how the inputs were chosen.

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod props;

use std::path::Path;

/// Runs `check` on every file of the target's directory; returns how many.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(target);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    paths.sort();
    for path in &paths {
        let data = std::fs::read(path).expect("readable input");
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(result.is_ok(), "{target}: {} fails", path.display());
    }
    assert!(!paths.is_empty(), "no regression inputs for {target}");
    paths.len()
}

#[test]
fn open_token_inputs() {
    replay("open_token", props::open_token);
}

#[test]
fn cookie_header_inputs() {
    replay("cookie_header", props::cookie_header);
}

#[test]
fn roundtrip_inputs() {
    replay("roundtrip", props::roundtrip);
}

#[cfg(feature = "django")]
#[test]
fn django_inputs() {
    replay("django", props::django);
}

/// The header target's success path: the one valid token opens, under its
/// name and among other cookies (the property would panic otherwise).
#[test]
fn cookie_header_with_the_valid_token() {
    let token = props::valid_token();
    for header in [
        format!("{}={token}", props::COOKIE_NAME),
        format!("a=b; {}={token}; other={token}", props::COOKIE_NAME),
        format!("{}= \"{token}\" ", props::COOKIE_NAME),
    ] {
        // The request API opens the token itself (unquoted, in the last
        // case), so the property's own oracle is not what passes it.
        let opened = props::default_sealer().open_request([header.as_str()]);
        assert_eq!(opened.unwrap().cookie_len(), Some(token.len()), "{header}");
        props::cookie_header(header.as_bytes());
    }
}

/// Prints seed inputs for the fuzz corpus: `cargo test --all-features
/// --test fuzz_regressions -- --ignored --nocapture print_seeds`.
#[test]
#[ignore]
fn print_seeds() {
    println!("valid token: {}", props::valid_token());
}
