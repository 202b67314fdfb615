//! docs/LOGGING.md lists every event the crate emits: each `tracing` call
//! in `src/` has a stable `event` field, and the page's table names exactly
//! those events, with the levels and targets the sources give them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

#[derive(Debug, Default, PartialEq)]
struct Logged {
    levels: BTreeSet<String>,
    targets: BTreeSet<String>,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/http/layer.rs` is `sealed_session::http::layer`; `mod.rs` and
/// `lib.rs` name their directory's module.
fn target_of(file: &Path) -> String {
    let relative = file.strip_prefix(root().join("src")).expect("under src");
    let mut parts = vec!["sealed_session".to_owned()];
    for part in relative.with_extension("").iter() {
        let part = part.to_str().expect("utf-8 path");
        if part != "mod" && part != "lib" {
            parts.push(part.to_owned());
        }
    }
    parts.join("::")
}

/// The text of a macro call's arguments, from just after its opening
/// parenthesis to the matching close.
fn arguments(text: &str) -> &str {
    let mut depth = 1usize;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced macro call: {text}")
}

/// Every `tracing::<level>!` call in `src/`: event name → levels, targets.
/// A call whose level is a macro variable (`tracing::$level!`) adds no
/// level; the HTTP tests check those levels.
fn events_in_sources() -> BTreeMap<String, Logged> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut events: BTreeMap<String, Logged> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable source");
        let mut rest = text.as_str();
        while let Some(at) = rest.find("tracing::") {
            rest = &rest[at + "tracing::".len()..];
            let Some(bang) = rest.find("!(") else { break };
            let level = &rest[..bang];
            let literal = LEVELS.contains(&level);
            if !literal && level != "$level" {
                continue;
            }
            let call = arguments(&rest[bang + 2..]);
            let name = call
                .split("event = \"")
                .nth(1)
                .and_then(|after| after.split('"').next())
                .unwrap_or_else(|| {
                    panic!(
                        "a tracing call in {} has no `event` field: {call}",
                        file.display()
                    )
                });
            let logged = events.entry(name.to_owned()).or_default();
            if literal {
                logged.levels.insert(level.to_uppercase());
            }
            logged.targets.insert(target_of(&file));
        }
    }
    events
}

/// The rows of the page's "Events" table: event → levels, targets.
fn events_in_doc() -> BTreeMap<String, Logged> {
    let page = std::fs::read_to_string(root().join("docs/LOGGING.md")).expect("docs/LOGGING.md");
    let table = page.split("## Events").nth(1).expect("an Events section");
    let names = |cell: &str| -> BTreeSet<String> {
        cell.split(',')
            .map(|s| s.trim().trim_matches('`').to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let mut events = BTreeMap::new();
    let rows = table
        .lines()
        .skip_while(|l| !l.starts_with("|---"))
        .skip(1)
        .take_while(|l| l.starts_with('|'));
    for row in rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_owned();
        let logged = Logged {
            levels: names(cells[2]),
            targets: names(cells[3]),
        };
        assert!(
            events.insert(name.clone(), logged).is_none(),
            "{name} listed twice"
        );
    }
    events
}

#[test]
fn every_event_is_documented_with_its_levels_and_targets() {
    let sources = events_in_sources();
    let doc = events_in_doc();
    assert!(sources.len() >= 20, "too few events found: {sources:?}");
    let undocumented: Vec<_> = sources.keys().filter(|k| !doc.contains_key(*k)).collect();
    let gone: Vec<_> = doc.keys().filter(|k| !sources.contains_key(*k)).collect();
    assert!(
        undocumented.is_empty() && gone.is_empty(),
        "docs/LOGGING.md lacks {undocumented:?} and lists {gone:?}, which no source emits"
    );
    for (name, logged) in &sources {
        let listed = &doc[name];
        assert_eq!(listed.targets, logged.targets, "targets of {name}");
        if logged.levels.is_empty() {
            assert!(!listed.levels.is_empty(), "levels of {name}");
        } else {
            assert_eq!(listed.levels, logged.levels, "levels of {name}");
        }
    }
}
