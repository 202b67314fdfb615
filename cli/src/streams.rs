//! Standard input and output: bounded reads, writes whose failure is an
//! error line (stdout) or ignored (stderr) instead of a panic, and text
//! from cookies made safe to show on a terminal.

use std::borrow::Cow;
use std::io::{ErrorKind, IsTerminal, Read, Write};

use crate::Failure;

/// The most the command reads from stdin: far above any cookie or session
/// it can seal, and a bound on what a stray `</dev/zero` costs.
pub const MAX_STDIN: usize = 1 << 20;

/// All of stdin as text, at most [`MAX_STDIN`] bytes. `what` says what the
/// command waits for, shown when stdin is a terminal (where it would
/// otherwise wait silently).
pub fn read_stdin(what: &str) -> Result<String, Failure> {
    read_stdin_as(what, own_input)
}

/// Why a text cannot be taken.
#[derive(Clone, Copy)]
enum Unfit {
    TooLong,
    NotUtf8,
}

/// The tool's own input (a key, a file, JSON) that cannot be taken: a
/// failure of its own, status 1.
fn own_input(_: Unfit, message: String) -> Failure {
    Failure::Message(message)
}

/// A cookie read from stdin that no server would take: refused, as a
/// cookie that fails to open is (its kind first, as the library's).
fn refused_cookie(why: Unfit, message: String) -> Failure {
    let kind = match why {
        Unfit::TooLong => "limit-exceeded",
        Unfit::NotUtf8 => "malformed",
    };
    Failure::Refused(format!("{kind}: {message}"))
}

/// [`read_stdin`], with a text too long or not UTF-8 reported through
/// `unfit`.
fn read_stdin_as(what: &str, unfit: fn(Unfit, String) -> Failure) -> Result<String, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        note(format_args!("reading {what} from stdin (end with Ctrl-D)"));
    }
    bounded_text(stdin.lock(), "stdin", unfit)
}

/// A file's text, at most [`MAX_STDIN`] bytes, as [`read_stdin`] reads
/// stdin. `what` names it in errors.
pub fn read_text_file(path: &std::path::Path, what: &str) -> Result<String, Failure> {
    let source = format!("{what} {}", path.display());
    let file =
        std::fs::File::open(path).map_err(|e| format!("input: cannot read {source}: {e}"))?;
    bounded_text(file, &source, own_input)
}

/// All of `input` as text, at most [`MAX_STDIN`] bytes; `source` names it
/// in errors, and `unfit` makes the error of a text too long or not UTF-8.
fn bounded_text(
    input: impl Read,
    source: &str,
    unfit: fn(Unfit, String) -> Failure,
) -> Result<String, Failure> {
    let mut bytes = Vec::new();
    input
        .take(MAX_STDIN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("input: cannot read {source}: {e}"))?;
    if bytes.len() > MAX_STDIN {
        return Err(unfit(
            Unfit::TooLong,
            format!("input: {source} is longer than {MAX_STDIN} bytes"),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| unfit(Unfit::NotUtf8, format!("input: {source} is not UTF-8 text")))
}

/// A cookie value given as an argument, or read from stdin when the
/// argument is `-` (which keeps it out of the process list and the shell's
/// history). Surrounding whitespace is dropped either way.
pub fn cookie_argument(argument: String) -> Result<String, Failure> {
    let text = if argument == "-" {
        read_stdin_as("the cookie value", refused_cookie)?
    } else {
        argument
    };
    Ok(text.trim().to_owned())
}

/// A pasted cookie as a name (when one was pasted) and a value. It may be
/// the value alone, `NAME=VALUE` as a browser's developer tools show it,
/// or a whole `Cookie` header (`a=1; NAME=VALUE`, with or without
/// `Cookie:`), from which the one cookie named `header_name` is taken by
/// the rule a server applies (`sealed_session::cookie_values`: the name
/// as sent, the value up to a comma, quotes removed). A header with none,
/// or several (a server tries those in order), is a usage error: which
/// value to open is then for the user to say.
pub fn pasted_cookie<'t>(
    text: &'t str,
    header_name: &'t str,
) -> Result<(Option<&'t str>, &'t str), Failure> {
    // A `Set-Cookie` line (as `curl -i` prints it, or `curl -v` after
    // "< "): its cookie is the pair before the attributes.
    let response_line = text.strip_prefix("< ").unwrap_or(text);
    if let Some(start) = response_line.get(..SET_COOKIE_HEADER.len()) {
        if start.eq_ignore_ascii_case(SET_COOKIE_HEADER) {
            let line = &response_line[SET_COOKIE_HEADER.len()..];
            let pair = line.split(';').next().unwrap_or_default();
            return Ok(cookie_pair(pair.trim()));
        }
    }
    let header = match text.get(..COOKIE_HEADER.len()) {
        Some(start) if start.eq_ignore_ascii_case(COOKIE_HEADER) => &text[COOKIE_HEADER.len()..],
        _ if text.contains(';') => text,
        _ => return Ok(cookie_pair(text)),
    };
    let mut named = sealed_session::cookie_values(header, header_name);
    match (named.next(), named.count()) {
        (Some(value), 0) => Ok((Some(header_name), value.trim())),
        (None, _) => Err(Failure::Usage(format!(
            "the pasted Cookie header has no cookie named {header_name:?} (--name)"
        ))),
        (Some(_), more) => Err(Failure::Usage(format!(
            "the pasted Cookie header has {} cookies named {header_name:?} \
             (a server tries them in order and keeps the first that opens): give one",
            more + 1
        ))),
    }
}

const COOKIE_HEADER: &str = "cookie:";
const SET_COOKIE_HEADER: &str = "set-cookie:";

/// A cookie argument split into its name and value when it is given as
/// `NAME=VALUE`, as a browser's developer tools and a `Cookie` header show
/// it. A token's characters (base64url) hold no `=`, nor do a Django
/// cookie's, so the first one can only end a name.
fn cookie_pair(cookie: &str) -> (Option<&str>, &str) {
    match cookie.split_once('=') {
        Some((name, value)) if !name.is_empty() => {
            (Some(name.trim_end()), unquoted(value.trim_start()))
        }
        _ => (None, unquoted(cookie)),
    }
}

/// A cookie value with one pair of surrounding double quotes removed, as
/// a server removes them from a `Cookie` header's (RFC 6265 allows them).
fn unquoted(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(value)
}

/// Writes `text` and a newline to stdout. A reader that went away ends the
/// command quietly with a failure status (what was printed did not arrive);
/// any other write error is an `output` failure.
pub fn print(text: impl std::fmt::Display) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(|e| match e.kind() {
            ErrorKind::BrokenPipe => Failure::StdoutClosed,
            _ => Failure::Message(format!("output: cannot write to stdout: {e}")),
        })
}

/// Writes `text` and a newline to stderr. A failed write (a full disk, a
/// reader gone) is ignored: a note must not cost the command its result,
/// nor panic as `eprintln!` would.
pub fn note(text: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Whether a terminal may act on `c` rather than show it: C0 and C1
/// controls (escape sequences start with one), DEL, the line and paragraph
/// separators, and the bidirectional controls (which reorder what is
/// shown: a value could then read as another).
fn acts_on_terminal(c: char) -> bool {
    matches!(
        c,
        '\0'..='\x1f'
            | '\x7f'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// `text` with each character a terminal acts on written as `\u{…}`, and
/// a backslash as `\\` (so that an escape cannot be faked). Keys and
/// values come from cookies and sessions, whose text an attacker may have
/// chosen, and are shown to an operator.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    if !text.contains(|c| c == '\\' || acts_on_terminal(c)) {
        return Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\\' {
            safe.push_str("\\\\");
        } else if acts_on_terminal(c) {
            safe.push_str(&c.escape_unicode().to_string());
        } else {
            safe.push(c);
        }
    }
    Cow::Owned(safe)
}

/// `value` as compact JSON in which every character a terminal acts on is
/// escaped (`\uXXXX`): serde_json escapes only C0 controls, and the output
/// still parses to the same value.
pub fn json(value: &impl serde::Serialize) -> Result<String, Failure> {
    let mut out = Vec::new();
    value
        .serialize(&mut serde_json::Serializer::with_formatter(
            &mut out,
            TerminalSafeJson,
        ))
        .map_err(|e| format!("output: {e}"))?;
    // serde_json writes UTF-8, and the escapes are ASCII.
    String::from_utf8(out).map_err(|_| "output: not UTF-8".to_owned().into())
}

/// serde_json's compact formatter, with [`acts_on_terminal`] characters
/// inside strings escaped. All of them are in the Basic Multilingual
/// Plane, so one `\uXXXX` each.
struct TerminalSafeJson;

impl serde_json::ser::Formatter for TerminalSafeJson {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| acts_on_terminal(c)) {
            writer.write_all(&rest.as_bytes()[..at])?;
            write!(writer, "\\u{:04x}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character below U+3000 and some beyond the Basic Multilingual
    /// Plane, in a key and a value: the JSON reads back as the same object,
    /// and no character a terminal acts on is left raw in it.
    /// What must never reach a terminal raw, listed apart from
    /// `acts_on_terminal`.
    fn controls() -> impl Iterator<Item = char> {
        let ranges = [
            0..=0x1f,
            0x7f..=0x9f,
            0x61c..=0x61c,
            0x200e..=0x200f,
            0x2028..=0x202e,
            0x2066..=0x2069,
        ];
        ranges.into_iter().flatten().filter_map(char::from_u32)
    }

    #[test]
    fn terminal_safe_json_reads_back_the_same_and_hides_controls() {
        let text: String = (0..0x3000u32)
            .filter_map(char::from_u32)
            .chain(['\u{1f600}', '\u{10ffff}', '\u{e0001}'])
            .collect();
        let value = serde_json::json!({ text.clone(): [text.clone(), { "k": text }] });
        let Ok(json) = json(&value) else {
            panic!("not written")
        };
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json).unwrap(),
            value
        );
        for c in controls() {
            assert!(!json.contains(c), "{c:?} left raw");
        }
        // The plain-text form: nothing raw either, and backslashes doubled.
        let text: String = (0..0x3000u32).filter_map(char::from_u32).collect();
        let safe = terminal_safe(&text);
        for c in controls() {
            assert!(!safe.contains(c), "{c:?} left raw");
        }
        assert_eq!(safe.matches("\\\\").count(), 1);
        assert!(safe.contains("\\u{1b}") && safe.contains("\\u{9b}"));
    }
}
