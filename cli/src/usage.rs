//! Command lines that cannot be parsed: one line that names what is wrong
//! and which argument, never the value given. clap's own message quotes the
//! value, and a misplaced key or cookie (`seal "$KEY"`) would be printed to
//! a terminal or a CI log.

use clap::error::{ContextKind, ContextValue, Error, ErrorKind};

/// The message for a parse error, without the leading `error: usage: `.
pub fn message(error: &Error) -> String {
    // clap reports a flag given twice as a conflict with itself.
    let repeated = error.kind() == ErrorKind::ArgumentConflict
        && error.get(ContextKind::PriorArg).is_some()
        && error.get(ContextKind::PriorArg) == error.get(ContextKind::InvalidArg);
    let mut message = match repeated {
        true => "an argument was given more than once",
        false => error
            .kind()
            .as_str()
            .unwrap_or("the command line cannot be parsed"),
    }
    .to_owned();
    let named = match error.kind() {
        // The context holds what was typed: shown only if it is a flag's
        // or a command's spelling, not a value that may be a secret.
        ErrorKind::UnknownArgument => context(error, ContextKind::InvalidArg)
            .filter(|typed| looks_like_a_flag(typed))
            .map(str::to_owned),
        ErrorKind::InvalidSubcommand => context(error, ContextKind::InvalidSubcommand)
            .filter(|typed| looks_like_a_word(typed))
            .map(str::to_owned),
        // Otherwise it is the argument's name as this program declares it.
        _ => match error.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(name)) => Some(name.clone()),
            Some(ContextValue::Strings(names)) => Some(names.join(", ")),
            _ => None,
        },
    };
    if let Some(named) = named {
        message.push_str(&format!(": {named}"));
    }
    // The reason a value was refused (a number that is not one, a priority
    // level that is not known): the parsers' own words, without the value.
    if error.kind() == ErrorKind::ValueValidation {
        if let Some(reason) = std::error::Error::source(error) {
            message.push_str(&format!(" ({reason})"));
        }
    }
    let suggested = [ContextKind::SuggestedArg, ContextKind::SuggestedSubcommand]
        .into_iter()
        .find_map(|kind| match error.get(kind) {
            Some(ContextValue::String(s)) => Some(s.clone()),
            Some(ContextValue::Strings(s)) => s.first().cloned(),
            _ => None,
        });
    if let Some(suggested) = suggested {
        message.push_str(&format!("; did you mean {suggested}?"));
    }
    message.push_str("; see --help");
    message
}

fn context(error: &Error, kind: ContextKind) -> Option<&str> {
    match error.get(kind) {
        Some(ContextValue::String(typed)) => Some(typed),
        _ => None,
    }
}

/// `--some-flag`: short, lowercase, no `=value`. Keys and cookies are long
/// and mixed-case, so one given where a flag was expected is not shown.
fn looks_like_a_flag(typed: &str) -> bool {
    typed
        .strip_prefix("--")
        .or_else(|| typed.strip_prefix('-'))
        .is_some_and(looks_like_a_word)
}

fn looks_like_a_word(typed: &str) -> bool {
    (1..=24).contains(&typed.len())
        && typed
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
