//! `sealed-session django …`: open and seal Django `signed_cookies` session
//! cookies.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use sealed_session::django::{DjangoCodec, DjangoCodecBuilder, UtcOffset, DEFAULT_MAX_AGE};
use sealed_session::FixedClock;

use crate::streams::{cookie_argument, print};
use crate::Failure;
use zeroize::Zeroizing;

/// Django subcommands.
#[derive(clap::Args)]
pub struct DjangoArgs {
    #[command(subcommand)]
    command: DjangoCommand,
}

#[derive(Subcommand)]
enum DjangoCommand {
    /// Verify a Django session cookie and print the session as a JSON object.
    Open {
        #[command(flatten)]
        secrets: SecretArgs,
        /// A secret from SECRET_KEY_FALLBACKS, tried after --secret in the
        /// order given (repeatable). Without this flag, read from
        /// DJANGO_SECRET_KEY_FALLBACKS, comma-separated. Prefer
        /// --fallback-secret-file or the variable: a command line is
        /// visible to other users of the machine.
        #[arg(
            long = "fallback-secret",
            value_name = "SECRET",
            allow_hyphen_values = true
        )]
        fallback_secrets: Vec<Zeroizing<String>>,
        /// A file holding a secret from SECRET_KEY_FALLBACKS, as
        /// --secret-file reads it (repeatable; tried after any
        /// --fallback-secret; when given, DJANGO_SECRET_KEY_FALLBACKS is
        /// not read).
        #[arg(long = "fallback-secret-file", value_name = "PATH")]
        fallback_secret_files: Vec<PathBuf>,
        /// SESSION_COOKIE_AGE: the oldest accepted cookie, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = DEFAULT_MAX_AGE.as_secs())]
        max_age: u64,
        /// SESSION_COOKIE_NAME: the cookie to take from a whole Cookie header.
        #[arg(long, default_value = "sessionid")]
        name: String,
        /// The UTC offset of TIME_ZONE (+HH:MM, -HH:MM, +HHMM, +HH or Z), for a
        /// set_expiry date written without one (USE_TZ = False). Default
        /// +14:00, the earliest instant such a date can mean.
        #[arg(long, value_name = "+HH:MM", value_parser = parse_offset, allow_hyphen_values = true)]
        naive_dates_offset: Option<UtcOffset>,
        /// The cookie value (what Django sets in the `sessionid` cookie),
        /// NAME=VALUE or a whole Cookie header, or - to read any of them
        /// from stdin, which keeps a live session's credential out of the
        /// process list.
        cookie: String,
    },
    /// Read a JSON object on stdin and print it as a Django session cookie value.
    Seal {
        #[command(flatten)]
        secrets: SecretArgs,
    },
}

#[derive(clap::Args)]
struct SecretArgs {
    /// Django's SECRET_KEY. Without it or --secret-file, read from
    /// DJANGO_SECRET_KEY. Prefer --secret-file or the variable: a command
    /// line is visible to other users of the machine.
    // Read by hand, as the main key is (see `KeyArg`).
    #[arg(
        long,
        value_name = "SECRET",
        allow_hyphen_values = true,
        conflicts_with = "secret_file"
    )]
    secret: Option<Zeroizing<String>>,
    /// A file holding SECRET_KEY (surrounding whitespace is ignored). When
    /// given, DJANGO_SECRET_KEY is not read.
    #[arg(long, value_name = "PATH")]
    secret_file: Option<PathBuf>,
    /// Current time in Unix seconds (default: the system clock).
    #[arg(long, value_name = "UNIX_SECS")]
    now: Option<u64>,
}

impl SecretArgs {
    fn builder(&self) -> Result<DjangoCodecBuilder, Failure> {
        let builder = DjangoCodec::builder(&crate::secret_text(
            self.secret_file.as_deref(),
            self.secret.as_ref(),
            "secret file",
            "DJANGO_SECRET_KEY",
            "--secret, --secret-file",
        )?);
        Ok(match self.now {
            Some(now) => builder.clock(Arc::new(FixedClock::new(now))),
            None => builder,
        })
    }
}

/// `+HH:MM` or `-HH:MM` as Python's `isoformat` writes an offset, or
/// `+HHMM`, `+HH` and `Z`, which `datetime.fromisoformat` also reads.
fn parse_offset(text: &str) -> Result<UtcOffset, String> {
    let invalid = || "expected +HH:MM, -HH:MM, +HHMM, +HH or Z (hours 0 to 25)".to_owned();
    if text.eq_ignore_ascii_case("z") {
        return Ok(UtcOffset::UTC);
    }
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(invalid()),
    };
    // Every accepted form is ASCII digits and one optional colon, so the
    // byte slicing below stays on character boundaries.
    if !rest.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        return Err(invalid());
    }
    let (hours, minutes) = match (rest.len(), rest.as_bytes().get(2)) {
        (2, _) => (rest, "00"),
        (4, Some(b'0'..=b'9')) => rest.split_at(2),
        (5, Some(b':')) => (&rest[..2], &rest[3..]),
        _ => return Err(invalid()),
    };
    let two_digits = |s: &str| -> Result<i8, String> {
        match s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) {
            true => s.parse().map_err(|_| invalid()),
            false => Err(invalid()),
        }
    };
    let (hours, minutes) = (two_digits(hours)?, two_digits(minutes)?);
    UtcOffset::from_hms(sign * hours, sign * minutes, 0).map_err(|_| invalid())
}

/// Runs a Django subcommand; the error is one line, without the cookie or
/// the secrets.
pub fn run(args: DjangoArgs) -> Result<(), Failure> {
    match args.command {
        DjangoCommand::Open {
            secrets,
            fallback_secrets,
            fallback_secret_files,
            max_age,
            name,
            naive_dates_offset,
            cookie,
        } => {
            let mut fallbacks = if fallback_secret_files.is_empty() {
                crate::or_from_env(fallback_secrets, "DJANGO_SECRET_KEY_FALLBACKS")?
            } else {
                fallback_secrets
            };
            for (i, path) in fallback_secret_files.iter().enumerate() {
                let which = format!("fallback secret file {}", i + 1);
                fallbacks.push(crate::read_secret_file(path, &which)?);
            }
            let mut builder = (fallbacks.iter())
                .fold(secrets.builder()?, |b, s| b.fallback_secret(s))
                .max_age(Duration::from_secs(max_age));
            if let Some(offset) = naive_dates_offset {
                builder = builder.naive_dates_offset(offset);
            }
            let codec = builder.build().map_err(failed("bad secret"))?;
            let cookie = cookie_argument(cookie)?;
            // Django binds no cookie name: a pasted `sessionid=` is dropped.
            let (_, value) = crate::streams::pasted_cookie(&cookie, &name)?;
            let session = codec
                .open_session(value)
                .map_err(|e| Failure::Refused(failed("cannot open Django cookie")(e)))?;
            if session.opened_with_fallback() {
                crate::streams::note("note: signed with a fallback secret, not --secret");
            }
            print(crate::streams::json(&session.into_entries())?)?;
        }
        DjangoCommand::Seal { secrets } => {
            let codec = secrets.builder()?.build().map_err(failed("bad secret"))?;
            let entries = crate::stdin_json_object()?;
            let cookie = codec
                .seal(&entries)
                .map_err(failed("cannot seal Django cookie"))?;
            print(cookie)?;
        }
    }
    Ok(())
}

/// The one-line error for a library failure while doing `what`: its kind
/// first, as every CLI error.
fn failed(what: &str) -> impl FnOnce(sealed_session::Error) -> String + '_ {
    move |e| format!("{}: {what}: {e}", e.kind())
}
