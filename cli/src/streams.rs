//! Standard input and output: bounded reads, and writes whose failure is
//! an error line instead of a panic.

use std::io::{ErrorKind, IsTerminal, Read, Write};

use crate::Failure;

/// The most the command reads from stdin: far above any cookie or session
/// it can seal, and a bound on what a stray `</dev/zero` costs.
pub const MAX_STDIN: usize = 1 << 20;

/// All of stdin as text, at most [`MAX_STDIN`] bytes. `what` says what the
/// command waits for, shown when stdin is a terminal (where it would
/// otherwise wait silently).
pub fn read_stdin(what: &str) -> Result<String, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("reading {what} from stdin (end with Ctrl-D)");
    }
    bounded_text(stdin.lock(), "stdin")
}

/// A file's text, at most [`MAX_STDIN`] bytes, as [`read_stdin`] reads
/// stdin. `what` names it in errors.
pub fn read_text_file(path: &std::path::Path, what: &str) -> Result<String, Failure> {
    let source = format!("{what} {}", path.display());
    let file =
        std::fs::File::open(path).map_err(|e| format!("input: cannot read {source}: {e}"))?;
    bounded_text(file, &source)
}

/// All of `input` as text, at most [`MAX_STDIN`] bytes; `source` names it
/// in errors.
fn bounded_text(input: impl Read, source: &str) -> Result<String, Failure> {
    let mut bytes = Vec::new();
    input
        .take(MAX_STDIN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("input: cannot read {source}: {e}"))?;
    if bytes.len() > MAX_STDIN {
        return Err(format!("input: {source} is longer than {MAX_STDIN} bytes").into());
    }
    String::from_utf8(bytes).map_err(|_| format!("input: {source} is not UTF-8 text").into())
}

/// A cookie value given as an argument, or read from stdin when the
/// argument is `-` (which keeps it out of the process list and the shell's
/// history). Surrounding whitespace is dropped either way.
pub fn cookie_argument(argument: String) -> Result<String, Failure> {
    let text = if argument == "-" {
        read_stdin("the cookie value")?
    } else {
        argument
    };
    Ok(text.trim().to_owned())
}

/// A pasted cookie as a name (when one was pasted) and a value. It may be
/// the value alone, `NAME=VALUE` as a browser's developer tools show it,
/// or a whole `Cookie` header (`a=1; NAME=VALUE`, with or without
/// `Cookie:`), from which the one pair named `header_name` is taken. A
/// header with none, or several (a server tries those in order), is a
/// usage error: which value to open is then for the user to say.
pub fn pasted_cookie<'t>(
    text: &'t str,
    header_name: &str,
) -> Result<(Option<&'t str>, &'t str), Failure> {
    let header = match text.get(..COOKIE_HEADER.len()) {
        Some(start) if start.eq_ignore_ascii_case(COOKIE_HEADER) => &text[COOKIE_HEADER.len()..],
        _ if text.contains(';') => text,
        _ => return Ok(cookie_pair(text)),
    };
    let mut named = header
        .split(';')
        .map(|pair| cookie_pair(pair.trim()))
        .filter(|(name, _)| *name == Some(header_name));
    match (named.next(), named.count()) {
        (Some(pair), 0) => Ok(pair),
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

/// A cookie argument split into its name and value when it is given as
/// `NAME=VALUE`, as a browser's developer tools and a `Cookie` header show
/// it. A token's characters (base64url) hold no `=`, nor do a Django
/// cookie's, so the first one can only end a name.
fn cookie_pair(cookie: &str) -> (Option<&str>, &str) {
    match cookie.split_once('=') {
        Some((name, value)) if !name.is_empty() => (Some(name.trim_end()), value.trim_start()),
        _ => (None, cookie),
    }
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
