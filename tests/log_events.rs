//! docs/LOGGING.md lists every event the crate emits: each `tracing` call
//! in `src/` has a stable `event` field, and the page's table names exactly
//! those events, with the levels and targets the sources give them and
//! every field they carry.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

#[derive(Debug, Default, PartialEq)]
struct Logged {
    levels: BTreeSet<String>,
    targets: BTreeSet<String>,
    /// In the sources: the field names; in the page: the text of the
    /// fields column.
    fields: BTreeSet<String>,
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

/// The macro names a call may use: each must be spelled `tracing::name!(`.
const MACROS: [&str; 11] = [
    "trace",
    "debug",
    "info",
    "warn",
    "error",
    "event",
    "span",
    "trace_span",
    "debug_span",
    "info_span",
    "warn_span",
];

/// Fails on a `tracing` macro this scanner would not read: imported
/// without its path, `tracing::event!`, braces, or a `target:` override.
fn check_spelling(file: &Path, text: &str) {
    for name in MACROS {
        let call = format!("{name}!");
        for (at, _) in text.match_indices(&call) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue; // part of another name (`debug_assert!`, `compile_error!`)
            }
            let line = text[..at].lines().last().unwrap_or_default().trim_start();
            if line.starts_with("//") {
                continue;
            }
            assert!(
                text[..at].ends_with("tracing::")
                    && name != "event"
                    && text[at + call.len()..].starts_with('('),
                "{}: write `tracing::<level>!(event = ..., ...)`, as docs/LOGGING.md's test \
                 reads it: {}",
                file.display(),
                &text[at..(at + 60).min(text.len())]
            );
        }
    }
}

/// The field names of a call's arguments (`name = value`, `?name`,
/// `%name`, `name`), the message and `event` left out.
fn fields(call: &str) -> Vec<String> {
    let mut arguments = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    let mut previous = ' ';
    for (i, c) in call.char_indices() {
        match c {
            '"' if previous != '\\' => quoted = !quoted,
            '(' | '[' | '{' if !quoted => depth += 1,
            ')' | ']' | '}' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                arguments.push(&call[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        previous = c;
    }
    arguments.push(&call[start..]);
    arguments
        .into_iter()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.starts_with('"'))
        .map(|a| {
            let name = a.split('=').next().unwrap_or(a);
            name.trim().trim_start_matches(['?', '%']).to_owned()
        })
        .filter(|name| name != "event")
        .collect()
}

/// Every `tracing::<level>!` call in `src/`: event name → levels, targets,
/// fields. A call whose level is a variable of a `macro_rules!` macro
/// (`tracing::$level!`) takes the levels the file passes that macro.
fn events_in_sources() -> BTreeMap<String, Logged> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut events: BTreeMap<String, Logged> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable source");
        check_spelling(&file, &text);
        let mut offset = 0;
        while let Some(at) = text[offset..].find("tracing::") {
            let start = offset + at;
            offset = start + "tracing::".len();
            let rest = &text[offset..];
            let Some(bang) = rest.find("!(") else { break };
            let level = &rest[..bang];
            let levels: Vec<String> = if LEVELS.contains(&level) {
                vec![level.to_uppercase()]
            } else if level == "$level" {
                let defined = text[..start]
                    .rfind("macro_rules! ")
                    .map(|m| &text[m + "macro_rules! ".len()..])
                    .and_then(|after| after.split_whitespace().next())
                    .unwrap_or_else(|| {
                        panic!("`tracing::$level!` outside a macro in {}", file.display())
                    });
                LEVELS
                    .iter()
                    .filter(|l| text.contains(&format!("{defined}!({l})")))
                    .map(|l| l.to_uppercase())
                    .collect()
            } else {
                continue;
            };
            assert!(
                !levels.is_empty(),
                "no level for a call in {}",
                file.display()
            );
            let call = arguments(&rest[bang + 2..]);
            assert!(
                !call.contains("target:"),
                "a target override in {}",
                file.display()
            );
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
            logged.levels.extend(levels);
            logged.targets.insert(target_of(&file));
            logged.fields.extend(fields(call));
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
            fields: BTreeSet::from([cells[4].to_owned()]),
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
        assert_eq!(listed.levels, logged.levels, "levels of {name}");
        let column = listed.fields.iter().next().expect("a fields column");
        for field in &logged.fields {
            assert!(
                column.contains(&format!("`{field}`")),
                "docs/LOGGING.md does not list the field {field} of {name}"
            );
        }
    }
}
