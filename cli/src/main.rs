//! `sealed-session`: make keys, seal and open cookies, inspect tokens and
//! check the published test vectors from the command line.
#![forbid(unsafe_code)]

mod django;
mod streams;
mod usage;

use clap::{Parser, Subcommand};
use sealed_session::{
    store::{MemoryStore, OverflowStore},
    token, Compression, Error, Expiry, FixedClock, InvalidKey, KeyRing, Limit, Limits, MasterKey,
    Priority, Sealer,
};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use streams::{note, print};
use zeroize::Zeroizing;

/// Seal, open and inspect sealed-session cookies.
#[derive(Parser)]
#[command(
    name = "sealed-session",
    version,
    about,
    after_help = "Exit status: 0 success; 1 an error of the tool's own (a key, a file, \
the output, a vector that fails); 2 a command line that cannot be used; 3 the cookie \
was refused (open, inspect, django open: the error's kind says why)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a new random master key (unpadded base64url, as --key reads),
    /// or write it to a new file with --out.
    Keygen {
        /// Write the key to a new file at PATH, readable by its owner only
        /// (mode 0600), instead of stdout; an existing file is never
        /// overwritten. The key's id goes to stderr. (`keygen > PATH`
        /// leaves the file readable by others under the usual umask, and
        /// replaces a key already there.)
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// Print the id of the key given with --key, --key-file or
    /// SEALED_SESSION_KEY: the id `inspect` shows for the tokens it seals.
    KeyId {
        #[command(flatten)]
        key: KeyArg,
    },
    /// Read a JSON object of entries on stdin and print the cookie value.
    Seal(SealArgs),
    /// Open a cookie value and print its entries as a JSON object; values
    /// with no JSON form go under "_cbor_hex" (key: CBOR in hex), keys of
    /// entries in the overflow store under "_overflowed".
    Open(OpenArgs),
    /// Print a token's header fields without a key (nothing is authenticated).
    Inspect {
        /// Print one JSON object instead of lines of text.
        #[arg(long)]
        json: bool,
        /// The cookie to take from a whole Cookie header (default "session").
        #[arg(long)]
        name: Option<String>,
        /// The cookie value, NAME=VALUE or a whole Cookie header, or - to
        /// read it from stdin. Surrounding whitespace (a pasted line's
        /// newline) is ignored.
        token: String,
    },
    /// Check every vector file in a directory; ends with "N passed, M failed".
    VerifyVectors {
        /// Directory holding the JSON vector files.
        dir: PathBuf,
    },
    /// Regenerate the published vector files into a directory.
    GenerateVectors {
        /// Directory to write the JSON vector files to.
        dir: PathBuf,
    },
    /// Read and write Django `signed_cookies` session cookies.
    Django(django::DjangoArgs),
}

#[derive(clap::Args)]
struct KeyArg {
    /// Master key: base64 (unpadded base64url as keygen prints it; the
    /// standard alphabet and padding are read too), or hex prefixed by
    /// "hex:". Without it or --key-file, read from SEALED_SESSION_KEY.
    /// Prefer --key-file or the variable: a command line is visible to
    /// other users of the machine.
    // The variable is read by hand, not through clap's `env`: clap would
    // count it as given and refuse it beside --key-file, which wins.
    #[arg(long, allow_hyphen_values = true, conflicts_with = "key_file")]
    key: Option<Zeroizing<String>>,
    /// A file holding the master key, as --key reads it (a mounted secret,
    /// a systemd credential); surrounding whitespace is ignored. When
    /// given, SEALED_SESSION_KEY is not read.
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
}

/// The most a key file may hold: a key in any accepted form is far
/// shorter, and a wrong path (a log, a device) costs no more than this.
const MAX_KEY_FILE: u64 = 4096;

impl KeyArg {
    fn master_key(&self) -> Result<MasterKey, Failure> {
        let text = secret_text(
            self.key_file.as_deref(),
            self.key.as_ref(),
            "key file",
            "SEALED_SESSION_KEY",
            "--key, --key-file",
        )?;
        parse_key(&text, self.key_file.is_some().then_some("key file"))
    }
}

/// A secret from its file (`what`: "key file", "secret file"), else from
/// its flag, else from the environment variable `variable` (clap refuses
/// the file beside the flag). `flags` names the two flags for the error
/// when none is given; an empty variable counts as unset, as clap treats
/// one it reads.
pub(crate) fn secret_text(
    file: Option<&std::path::Path>,
    flag: Option<&Zeroizing<String>>,
    what: &str,
    variable: &str,
    flags: &str,
) -> Result<Zeroizing<String>, Failure> {
    if let Some(path) = file {
        return read_secret_file(path, what);
    }
    if let Some(text) = flag {
        return Ok(text.clone());
    }
    match std::env::var_os(variable).filter(|value| !value.is_empty()) {
        None => Err(Failure::Usage(format!(
            "one of {flags} or {variable} is required"
        ))),
        Some(value) => value
            .into_string()
            .map(Zeroizing::new)
            .map_err(|_| Failure::Usage(format!("{variable} is not UTF-8"))),
    }
}

/// The text of a file holding a secret (`what`: "key file", "secret
/// file"), at most [`MAX_KEY_FILE`] bytes, wiped from memory when dropped.
/// Errors name neither the content nor the path: a secret given by
/// mistake in place of its file's path (`--key-file "$KEY"`) would
/// otherwise go to stderr, and from there to a CI log.
pub(crate) fn read_secret_file(
    path: &std::path::Path,
    what: &str,
) -> Result<Zeroizing<String>, Failure> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("input: cannot read {what}: {e}"))?;
    // Allocated once: a growing buffer would leave unwiped copies behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE as usize + 1));
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("input: cannot read {what}: {e}"))?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(format!("input: {what} is longer than {MAX_KEY_FILE} bytes").into());
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.trim().to_owned())),
        Err(_) => Err(format!("input: {what} is not UTF-8 text").into()),
    }
}

#[derive(clap::Args)]
struct KeyArgs {
    #[command(flatten)]
    key: KeyArg,
    /// Cookie name the token is bound to: a token opens only under the
    /// name it was sealed for, with any `__Host-` prefix (the layer's
    /// `host_prefix` adds one). Default "session" (or, for `open`, the NAME
    /// of a NAME=VALUE cookie argument).
    #[arg(long)]
    name: Option<String>,
    /// Current time in Unix seconds (default: the system clock).
    #[arg(long, value_name = "UNIX_SECS")]
    now: Option<u64>,
}

#[derive(clap::Args)]
struct SealArgs {
    #[command(flatten)]
    common: KeyArgs,
    /// Compress (raw deflate) when the payload is at least 256 bytes and it helps.
    #[arg(long)]
    compress: bool,
    /// Budget in bytes for the whole Set-Cookie header; low-priority
    /// entries are dropped to fit (listed on stderr). Browsers ignore a
    /// cookie whose name and value exceed 4096 bytes, so a larger budget
    /// holds no more (the report on stderr gives the budget applied).
    #[arg(long, value_name = "BYTES", default_value_t = sealed_session::DEFAULT_BUDGET)]
    budget: usize,
    /// Priority of an entry, as KEY=LEVEL (low, normal, high, critical);
    /// repeatable. KEY must be in the input.
    #[arg(long = "priority", value_name = "KEY=LEVEL", value_parser = parse_priority)]
    priorities: Vec<(String, Priority)>,
    /// Fail instead of dropping entries to fit the budget.
    #[arg(long)]
    strict: bool,
}

#[derive(clap::Args)]
struct OpenArgs {
    #[command(flatten)]
    common: KeyArgs,
    /// A fallback key that still opens (repeatable). Without this flag or
    /// --fallback-key-file, read from SEALED_SESSION_FALLBACK_KEYS,
    /// comma-separated, and the next primary key from
    /// SEALED_SESSION_INCOMING_KEY, as a server's KeyRing::from_env reads
    /// them; with them, neither variable is read (give a server's incoming
    /// key as a --fallback-key). Prefer --fallback-key-file or the
    /// variables: a command line is visible to other users of the machine.
    #[arg(long = "fallback-key", value_name = "KEY", allow_hyphen_values = true)]
    fallback_keys: Vec<Zeroizing<String>>,
    /// A file holding a fallback key, as --key-file reads it (repeatable;
    /// used with any --fallback-key).
    #[arg(long = "fallback-key-file", value_name = "PATH")]
    fallback_key_files: Vec<PathBuf>,
    /// Idle timeout in seconds, or "none" (default two weeks), as the
    /// server that set the cookie has it.
    #[arg(long, value_name = "SECS|none", value_parser = parse_window)]
    max_idle: Option<Window>,
    /// Absolute lifetime in seconds, or "none" (default 30 days).
    #[arg(long, value_name = "SECS|none", value_parser = parse_window)]
    max_lifetime: Option<Window>,
    /// How far in the future an issued-at may be, in seconds (default 60).
    #[arg(long, value_name = "SECS")]
    clock_skew: Option<u64>,
    /// The fraction of the idle timeout after which a server re-seals a
    /// session that was only read (default 0.5; 0: on every request, as
    /// Django does; 1: never; clamped to 0..=1, as the server clamps it).
    /// Only --meta's "refresh_due" depends on it.
    #[arg(long, value_name = "F", allow_negative_numbers = true, value_parser = parse_fraction)]
    refresh_fraction: Option<f64>,
    /// Longest cookie value accepted, in bytes (default 4096). With the
    /// three flags below: the limits of the server that set the cookie.
    #[arg(long, value_name = "BYTES")]
    max_token_len: Option<usize>,
    /// Largest plaintext after decompression, in bytes (default 65536);
    /// it also bounds an overflow blob.
    #[arg(long, value_name = "BYTES")]
    max_decompressed: Option<usize>,
    /// Deepest nesting of a value (default 32).
    #[arg(long, value_name = "N")]
    max_depth: Option<usize>,
    /// Most entries, overflowed ones included (default 256).
    #[arg(long, value_name = "N")]
    max_entries: Option<usize>,
    /// Print {"session": {...}, "entries": {...}}: beside the entries, the
    /// session id, created-at and issued-at (Unix seconds), when the
    /// cookie stops opening unless re-sealed ("cookie_expires_at": the
    /// first of its idle timeout, lifetime and own expiry under this time
    /// policy, or null), whether the payload was compressed, its own expiry
    /// ("default", "browser-session", {"at": UNIX_SECS} or {"idle": SECS}),
    /// whether a fallback key opened it, whether a server with this time
    /// policy would re-seal it now (sliding refresh), each entry's
    /// priority, and the store key of the overflow blob the cookie
    /// references ("overflow_key", or null).
    #[arg(long)]
    meta: bool,
    /// A file holding the overflow blob the cookie references (the value
    /// its store holds at the key --meta prints as "overflow_key"), or "-"
    /// to read it from stdin. It is checked as a server checks it, and its
    /// entries are printed with the cookie's instead of under
    /// "_overflowed". Surrounding whitespace is ignored.
    #[arg(long, value_name = "PATH|-")]
    blob: Option<PathBuf>,
    /// Print the cookie value sealed again under --key instead of the
    /// entries, as a server re-seals a cookie a fallback key opened: the
    /// same session id, created-at, expiry, entries and priorities, issued
    /// now (--now), compressed if it was. For moving one cookie to a new
    /// key by hand (give the old key with --fallback-key). A cookie that
    /// references an overflow blob is refused: a server re-seals both.
    #[arg(long, conflicts_with_all = ["meta", "blob"])]
    reseal: bool,
    /// The cookie value, NAME=VALUE (as a browser shows the cookie) or a
    /// whole Cookie header (the cookie named --name is taken from it), or
    /// "-" to read any of them from stdin (which keeps it out of the process
    /// list). Surrounding whitespace (a pasted line's newline) is ignored;
    /// whitespace inside is refused, as servers refuse it.
    token: String,
}

/// A time limit given on the command line.
#[derive(Clone, Copy)]
enum Window {
    Seconds(u64),
    /// `none`: no limit.
    Unlimited,
}

fn parse_window(text: &str) -> Result<Window, String> {
    match text {
        "none" => Ok(Window::Unlimited),
        _ => text
            .parse()
            .map(Window::Seconds)
            .map_err(|_| "expected whole seconds or \"none\"".to_owned()),
    }
}

/// `--refresh-fraction`: any finite number (the sealer clamps it).
fn parse_fraction(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .ok_or_else(|| "expected a number, such as 0.5".to_owned())
}

/// `KEY=LEVEL` of `--priority`. The error names neither (clap adds which
/// argument it was).
fn parse_priority(spec: &str) -> Result<(String, Priority), String> {
    let (key, level) = spec
        .split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .ok_or("expected KEY=LEVEL")?;
    let level = level
        .parse()
        .map_err(|_| "the level is not one of low, normal, high, critical")?;
    Ok((key.to_owned(), level))
}

/// `values` given with a repeatable flag or, without any, the non-empty
/// comma-separated items of the environment variable `name` (only the
/// variable is split: a flag's value is taken whole).
pub(crate) fn or_from_env(
    values: Vec<Zeroizing<String>>,
    name: &str,
) -> Result<Vec<Zeroizing<String>>, Failure> {
    if !values.is_empty() {
        return Ok(values);
    }
    let Some(list) = env_secret(name)? else {
        return Ok(Vec::new());
    };
    Ok(list
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| Zeroizing::new(item.to_owned()))
        .collect())
}

/// The environment variable `name`, if set. One that is not UTF-8 is a
/// usage error, as `SEALED_SESSION_KEY` is: ignored, it would drop every
/// key it lists.
fn env_secret(name: &str) -> Result<Option<Zeroizing<String>>, Failure> {
    let Some(value) = std::env::var_os(name) else {
        return Ok(None);
    };
    let text = value
        .into_string()
        .map_err(|_| Failure::Usage(format!("{name} is not UTF-8")))?;
    Ok(Some(Zeroizing::new(text)))
}

/// Session entries from stdin, a JSON object.
pub(crate) fn stdin_json_object() -> Result<serde_json::Map<String, serde_json::Value>, Failure> {
    let input = streams::read_stdin("a JSON object of session entries")?;
    // Parsed first: serde_json's nesting limit (128) then bounds the
    // recursion of the integer check, which reads raw values unbounded.
    let entries = serde_json::from_str(&input).map_err(|e| not_a_json_object(&e))?;
    if has_integer_beyond_64_bits(&input) {
        // serde_json read it as the nearest float, silently.
        let message = "input: stdin has an integer beyond 64 bits, which would lose precision";
        return Err(message.to_owned().into());
    }
    Ok(entries)
}

/// Whether the JSON text holds an integer literal (no fraction, no
/// exponent) that fits neither `i64` nor `u64`. Invalid JSON is left to the
/// parser that follows.
fn has_integer_beyond_64_bits(json: &str) -> bool {
    use serde_json::value::RawValue;
    use std::collections::BTreeMap;
    fn beyond(raw: &RawValue) -> bool {
        let text = raw.get();
        match text.as_bytes().first() {
            // (Owned keys: a key with an escape cannot be borrowed.)
            Some(b'{') => serde_json::from_str::<BTreeMap<String, &RawValue>>(text)
                .is_ok_and(|map| map.values().any(|v| beyond(v))),
            Some(b'[') => serde_json::from_str::<Vec<&RawValue>>(text)
                .is_ok_and(|items| items.iter().any(|v| beyond(v))),
            Some(b'-' | b'0'..=b'9') if !text.contains(['.', 'e', 'E']) => {
                text.parse::<i64>().is_err() && text.parse::<u64>().is_err()
            }
            _ => false,
        }
    }
    serde_json::from_str::<&RawValue>(json).is_ok_and(beyond)
}

/// The failure for stdin that is not a JSON object: where, never what (the
/// parser's own message quotes the input, which may hold session data).
fn not_a_json_object(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match error.classify() {
        // (Parsed from a string already read: no I/O error can come.)
        Category::Io | Category::Data => "input: stdin is not a JSON object".to_owned(),
        Category::Syntax | Category::Eof => format!(
            "input: stdin is not a JSON object (invalid JSON at line {}, column {})",
            error.line(),
            error.column()
        ),
    }
}

/// Why the command failed.
enum Failure {
    /// One line: the error kind and what it means (exit status 1).
    Message(String),
    /// A command line that makes no sense, after parsing (exit status 2).
    Usage(String),
    /// The cookie given was refused, one line as `Message` (exit status
    /// [`REFUSED_STATUS`]): a script can tell a bad cookie from a bad key
    /// file without reading the message.
    Refused(String),
    /// Stdout's reader went away: nothing more to say (exit status 1).
    StdoutClosed,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Message(format!("{}: {e}", e.kind()))
    }
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure::Message(s)
    }
}

/// clap's status for a command line it cannot parse.
const USAGE_STATUS: u8 = 2;

/// The status for a cookie that was refused (see [`Failure::Refused`]).
const REFUSED_STATUS: u8 = 3;

impl Failure {
    /// A library error met while opening or reading a cookie.
    pub(crate) fn refused(e: &Error) -> Self {
        Failure::Refused(format!("{}: {e}", e.kind()))
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help, --version, and the help for a bare command: clap's own
        // text, which quotes nothing typed.
        Err(e)
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            e.exit()
        }
        Err(e) => {
            note(format_args!("error: usage: {}", usage::message(&e)));
            return ExitCode::from(USAGE_STATUS);
        }
    };
    match run(cli.command) {
        Ok(code) => code,
        Err(Failure::Message(message)) => {
            note(format_args!("error: {message}"));
            ExitCode::FAILURE
        }
        Err(Failure::Usage(message)) => {
            note(format_args!("error: usage: {message}"));
            ExitCode::from(USAGE_STATUS)
        }
        Err(Failure::Refused(message)) => {
            note(format_args!("error: {message}"));
            ExitCode::from(REFUSED_STATUS)
        }
        Err(Failure::StdoutClosed) => ExitCode::FAILURE,
    }
}

fn run(command: Command) -> Result<ExitCode, Failure> {
    match command {
        Command::Keygen { out: None } => print(&*MasterKey::generate()?.to_base64())?,
        Command::Keygen { out: Some(path) } => write_new_key(&path)?,
        Command::KeyId { key } => print(key.master_key()?.key_id())?,
        Command::Seal(args) => seal(args)?,
        Command::Open(args) => open(args)?,
        Command::Inspect { json, name, token } => {
            let cookie = streams::cookie_argument(token)?;
            let name = name
                .as_deref()
                .unwrap_or(sealed_session::DEFAULT_COOKIE_NAME);
            inspect(streams::pasted_cookie(&cookie, name)?.1, json)?;
        }
        Command::VerifyVectors { dir } => return verify_vectors(&dir),
        Command::GenerateVectors { dir } => {
            for (name, text) in sealed_session::vectors::generate()? {
                let path = dir.join(&name);
                std::fs::write(&path, text)
                    .map_err(|e| format!("output: cannot write {}: {e}", path.display()))?;
                note(format_args!("wrote {}", path.display()));
            }
        }
        Command::Django(args) => django::run(args)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `keygen --out`: a new key in a new file that only its owner can read.
/// Errors do not show the path, as for a key file read (see
/// [`read_secret_file`]).
fn write_new_key(path: &std::path::Path) -> Result<(), Failure> {
    use std::io::Write;
    let key = MasterKey::generate()?;
    let mut options = std::fs::OpenOptions::new();
    // `create_new`: never over a key already there (O_EXCL, so not over a
    // symbolic link either).
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            "output: the key file already exists; keygen never overwrites one".to_owned()
        }
        _ => format!("output: cannot create the key file: {e}"),
    })?;
    let line = Zeroizing::new(format!("{}\n", &*key.to_base64()));
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("output: cannot write the key file: {e}"))?;
    note(format_args!("wrote a new key, id {}", key.key_id()));
    Ok(())
}

fn inspect(token: &str, json: bool) -> Result<(), Failure> {
    let info = token::inspect(token).map_err(|e| Failure::refused(&e))?;
    let h = info.header;
    if json {
        return print(serde_json::json!({
            "version": h.version,
            "flags": h.flags,
            "compressed": h.is_compressed(),
            "key_id": h.key_id.to_string(),
            "issued_at": h.issued_at,
            "token_len": info.token_len,
            "ciphertext_len": info.ciphertext_len,
        }));
    }
    let compressed = if h.is_compressed() {
        " (compressed)"
    } else {
        ""
    };
    print(format_args!("version: {}", h.version))?;
    print(format_args!("flags: {:#04x}{compressed}", h.flags))?;
    print(format_args!("key id: {}", h.key_id))?;
    print(format_args!(
        "issued at: {}{}",
        h.issued_at,
        utc_date(h.issued_at).unwrap_or_default()
    ))?;
    print(format_args!("token length: {} characters", info.token_len))?;
    print(format_args!(
        "ciphertext length: {} bytes (without nonce and tag)",
        info.ciphertext_len
    ))
}

/// ` (2026-01-01T00:00:00Z)`: Unix seconds as an RFC 3339 date in UTC, for
/// a time `time` can represent (up to the year 9999).
fn utc_date(unix_secs: u64) -> Option<String> {
    let secs = i64::try_from(unix_secs).ok()?;
    let date = time::OffsetDateTime::from_unix_timestamp(secs).ok()?;
    let text = date
        .format(&time::format_description::well_known::Rfc3339)
        .ok()?;
    Some(format!(" ({text})"))
}

/// Checks the directory's vector files; every published file must be there
/// (a directory missing one would otherwise pass on the others alone).
fn verify_vectors(dir: &std::path::Path) -> Result<ExitCode, Failure> {
    use sealed_session::vectors::{check_dir, FILES};
    for name in FILES {
        if !dir.join(name).is_file() {
            return Err(format!("input: {} has no {name}", dir.display()).into());
        }
    }
    let outcomes = check_dir(dir).map_err(|e| format!("input: {e}"))?;
    let failed: Vec<_> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    for o in &failed {
        print(format_args!(
            "FAIL {}: {}",
            streams::terminal_safe(&o.name),
            streams::terminal_safe(o.failure.as_deref().unwrap_or_default())
        ))?;
    }
    print(format_args!(
        "{} passed, {} failed",
        outcomes.len() - failed.len(),
        failed.len()
    ))?;
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A key as `--key` reads it; `which` names it in the error when there are
/// several (a fallback key).
fn parse_key(text: &str, which: Option<&str>) -> Result<MasterKey, Failure> {
    text.parse::<MasterKey>().map_err(|e| {
        let which = which.map(|which| format!("{which}: ")).unwrap_or_default();
        let hint = match e {
            Error::InvalidKey(InvalidKey::LooksLikeHex) => " (prefix it with \"hex:\")",
            _ => "",
        };
        Failure::Message(format!("{}: {which}{e}{hint}", e.kind()))
    })
}

impl KeyArgs {
    /// `--name`, else the NAME of a cookie given as NAME=VALUE (`pasted`),
    /// else the default; a `--name` that contradicts `pasted` is a usage
    /// error.
    fn cookie_name<'a>(&'a self, pasted: Option<&'a str>) -> Result<&'a str, Failure> {
        match (self.name.as_deref(), pasted) {
            (Some(given), Some(pasted)) if given != pasted => Err(Failure::Usage(
                "--name differs from the NAME of the NAME=VALUE cookie".to_owned(),
            )),
            (Some(name), _) | (None, Some(name)) => Ok(name),
            (None, None) => Ok(sealed_session::DEFAULT_COOKIE_NAME),
        }
    }
}

fn builder(common: &KeyArgs, name: &str, ring: KeyRing) -> sealed_session::SealerBuilder {
    let builder = Sealer::builder(ring).cookie_name(name);
    match common.now {
        Some(now) => builder.clock(Arc::new(FixedClock::new(now))),
        None => builder,
    }
}

fn seal(args: SealArgs) -> Result<(), Failure> {
    let ring = KeyRing::new(args.common.key.master_key()?);
    let entries = stdin_json_object()?;
    // A misspelt key would leave its entry at normal priority, silently.
    if let Some(n) = args
        .priorities
        .iter()
        .position(|(key, _)| !entries.contains_key(key))
    {
        return Err(Failure::Usage(format!(
            "--priority number {} names a key the input does not have",
            n + 1
        )));
    }

    let name = args.common.cookie_name(None)?;
    let mut b = builder(&args.common, name, ring).budget(args.budget);
    if args.compress {
        b = b.compression(Compression::Above(256));
    }
    let sealer = b.build().map_err(unusable_setting)?;
    let mut session = sealer.new_session()?;
    for (key, value) in &entries {
        let priority = args
            .priorities
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, p)| *p)
            .unwrap_or_default();
        session.insert_with_priority(key, value, priority)?;
    }
    let saved = sealer.save(&mut session)?;
    let dropped = saved.report.dropped.len();
    if dropped > 0 && (args.strict || session.is_empty()) {
        return Err(format!(
            "too-large: {dropped} of {} entries do not fit in {} bytes{}; nothing sealed",
            entries.len(),
            saved.report.budget,
            if args.strict { " (--strict)" } else { "" }
        )
        .into());
    }
    for dropped in &saved.report.dropped {
        note(format_args!(
            "dropped: {} ({} priority, {} bytes)",
            streams::terminal_safe(&dropped.key),
            dropped.priority.name(),
            dropped.size
        ));
    }
    if !saved.report.dropped.is_empty() {
        note(format_args!(
            "Set-Cookie header: {} bytes, budget {} bytes",
            saved.report.header_len, saved.report.budget
        ));
    }
    let value = saved
        .action
        .cookie_value()
        .ok_or_else(|| "input: nothing to seal (no entries)".to_owned())?;
    print(value)
}

/// The ring `open` opens with: `--key` (or its file or variable) as the
/// primary, and without fallback flags the other variables a server's
/// `KeyRing::from_env("SEALED_SESSION")` reads, which it reads and names
/// in errors as the server would.
fn open_ring(args: &OpenArgs) -> Result<KeyRing, Failure> {
    let primary = args.common.key.master_key()?;
    if args.fallback_keys.is_empty() && args.fallback_key_files.is_empty() {
        // Read here, so that one that is not UTF-8 is a usage error.
        let fallbacks = env_secret("SEALED_SESSION_FALLBACK_KEYS")?;
        let incoming = env_secret("SEALED_SESSION_INCOMING_KEY")?;
        let primary = primary.to_base64();
        let ring = KeyRing::from_env_with("SEALED_SESSION", |name| {
            let value = match name {
                "SEALED_SESSION_KEY" => Some(&primary),
                "SEALED_SESSION_FALLBACK_KEYS" => fallbacks.as_ref(),
                "SEALED_SESSION_INCOMING_KEY" => incoming.as_ref(),
                _ => None,
            };
            value.map(|text| text.to_string())
        })?;
        return Ok(ring);
    }
    // Each key with the name an error gives it.
    let mut keys = Vec::new();
    for (i, text) in args.fallback_keys.iter().enumerate() {
        let which = format!("fallback key {}", i + 1);
        keys.push((parse_key(text, Some(&which))?, which));
    }
    for (i, path) in args.fallback_key_files.iter().enumerate() {
        let which = format!("fallback key file {}", i + 1);
        let text = read_secret_file(path, &which)?;
        keys.push((parse_key(&text, Some(&which))?, which));
    }
    // A key given twice is named, as a bad one is (the ring's own check
    // would not say which).
    let mut ids = vec![primary.key_id()];
    for (key, which) in &keys {
        if ids.contains(&key.key_id()) {
            let e = Error::InvalidKey(InvalidKey::DuplicateKeyId);
            return Err(Failure::Message(format!("{}: {which}: {e}", e.kind())));
        }
        ids.push(key.key_id());
    }
    let fallbacks: Vec<MasterKey> = keys.into_iter().map(|(key, _)| key).collect();
    Ok(KeyRing::with_fallbacks(primary, fallbacks)?)
}

fn open(args: OpenArgs) -> Result<(), Failure> {
    let ring = open_ring(&args)?;
    let blob_from_stdin = args.blob.as_deref() == Some(std::path::Path::new("-"));
    if blob_from_stdin && args.token == "-" {
        return Err(Failure::Usage(
            "the cookie and --blob cannot both be read from stdin".to_owned(),
        ));
    }
    let cookie = streams::cookie_argument(args.token)?;
    let from_header = args.common.cookie_name(None)?;
    let (pasted_name, token) = streams::pasted_cookie(&cookie, from_header)?;
    let name = args.common.cookie_name(pasted_name)?;
    // Key ids are public (SECURITY.md): named when no key matches.
    let ring_ids: Vec<String> = std::iter::once(ring.primary_id())
        .chain(ring.fallback_ids())
        .chain(ring.incoming_ids())
        .map(|id| id.to_string())
        .collect();
    // Opening sets no cookie: no budget applies (a long --name must not
    // make it fail for want of room for a deletion cookie).
    let mut b = builder(&args.common, name, ring).budget(usize::MAX);
    match args.max_idle {
        Some(Window::Seconds(idle)) => b = b.max_idle(Duration::from_secs(idle)),
        Some(Window::Unlimited) => b = b.no_idle_timeout(),
        None => {}
    }
    match args.max_lifetime {
        Some(Window::Seconds(lifetime)) => b = b.max_lifetime(Duration::from_secs(lifetime)),
        Some(Window::Unlimited) => b = b.no_max_lifetime(),
        None => {}
    }
    if let Some(skew) = args.clock_skew {
        b = b.clock_skew(Duration::from_secs(skew));
    }
    if let Some(fraction) = args.refresh_fraction {
        b = b.refresh_fraction(fraction);
    }
    let mut limits = Limits::default();
    if let Some(bytes) = args.max_token_len {
        limits = limits.with_max_token_len(bytes);
    }
    if let Some(bytes) = args.max_decompressed {
        limits = limits.with_max_decompressed(bytes);
    }
    if let Some(depth) = args.max_depth {
        limits = limits.with_max_depth(depth);
    }
    if let Some(entries) = args.max_entries {
        limits = limits.with_max_entries(entries);
    }
    b = b.limits(limits);
    // The blob is loaded as a server loads it, from a store holding it.
    let store = args.blob.is_some().then(|| Arc::new(MemoryStore::new()));
    if let Some(store) = &store {
        b = b.overflow_store(store.clone());
    }
    // Re-sealed as it came: compressed if it was (and it still helps).
    // Read only where it is shown or used.
    let compressed = (args.meta || args.reseal)
        && token::inspect_with_limits(token, &limits).is_ok_and(|info| info.header.is_compressed());
    if args.reseal && compressed {
        b = b.compression(Compression::Above(0));
    }
    let sealer = b.build().map_err(|e| match e {
        // A name pasted with the cookie is input, not a setting.
        Error::InvalidCookie(_) if args.common.name.is_none() && pasted_name.is_some() => {
            Failure::Refused(
                "malformed: the pasted NAME of NAME=VALUE is not a cookie name".to_owned(),
            )
        }
        // Only the flags can make the limits too small for any session.
        Error::LimitExceeded(limit @ (Limit::TokenLength | Limit::DecompressedSize)) => {
            let flag = match limit {
                Limit::TokenLength => "--max-token-len",
                _ => "--max-decompressed",
            };
            Failure::Usage(format!("{flag}: too small for an empty session"))
        }
        e => unusable_setting(e),
    })?;
    let mut session = sealer.open(token).map_err(|e| match e {
        // The key id matched a key: the name is the likeliest other cause.
        Error::AuthenticationFailed => Failure::Refused(format!(
            "{}: {e}: altered, or sealed for a cookie name other than {name:?} \
             (--name; the __Host- prefix is part of the name)",
            e.kind()
        )),
        Error::UnknownKeyId => {
            let sealed_under = token::inspect_with_limits(token, &limits)
                .map(|info| info.header.key_id.to_string())
                .unwrap_or_default();
            Failure::Refused(format!(
                "{}: {e}: the cookie's is {sealed_under}, the keys given have {} \
                 (key-id prints a key's; a retired key goes in --fallback-key-file)",
                e.kind(),
                ring_ids.join(", ")
            ))
        }
        e => Failure::refused(&e),
    })?;
    if session.opened_with_fallback() {
        // Not advice to re-seal by hand: during a rotation's first step the
        // new key is given as a fallback here, and is not the primary yet.
        note(format_args!(
            "note: sealed under a fallback key, not --key; a server whose primary key is --key re-seals it on its next response"
        ));
    }
    if args.reseal {
        return reseal(&sealer, session);
    }
    let overflow_key = (session.overflow_reference())
        .map(|reference| sealed_session::store::overflow_key(&session.id(), reference));
    if let (Some(path), Some(store)) = (&args.blob, &store) {
        let Some(key) = &overflow_key else {
            return Err(Failure::Usage(
                "--blob: the cookie references no overflow blob".to_owned(),
            ));
        };
        let blob = if blob_from_stdin {
            streams::read_stdin("the overflow blob")?
        } else {
            streams::read_text_file(path, "the overflow blob")?
        };
        // Nothing (piped) or `(nil)` (on a terminal) is what `redis-cli
        // GET` prints for a key that is gone: missing, as a server finds
        // it, not an altered blob.
        let blob = blob.trim();
        if !blob.is_empty() && blob != "(nil)" {
            let ttl = Duration::from_secs(60);
            ready(store.put(key, blob.as_bytes().to_vec(), ttl))??;
        }
        // `redis-cli` on a terminal (without --raw) quotes what it prints.
        let quoted = blob.len() > 1 && blob.starts_with('"') && blob.ends_with('"');
        ready(sealer.load_overflow(&mut session))?.map_err(|e| match e {
            Error::Store(why) => Failure::Refused(format!(
                "{}: --blob: {why}{}",
                e.kind(),
                if quoted {
                    " (it is in quotes: give the value without them, as `redis-cli --raw` prints it)"
                } else {
                    ""
                }
            )),
            e => Failure::refused(&e),
        })?;
    }
    let mut object = serde_json::Map::new();
    let mut unreadable = serde_json::Map::new();
    let mut overflowed = Vec::new();
    for key in session.keys() {
        if session.is_overflowed(key) {
            overflowed.push(serde_json::Value::from(key));
        } else if let Some(value) = json_form(&session, key) {
            object.insert(key.to_owned(), value);
        } else {
            let cbor = hex::encode(session.get_raw(key).unwrap_or_default());
            unreadable.insert(key.to_owned(), cbor.into());
        }
    }
    // Entry keys never start with `_` (reserved), so these cannot collide.
    if !unreadable.is_empty() {
        object.insert("_cbor_hex".to_owned(), unreadable.into());
    }
    if !overflowed.is_empty() {
        object.insert("_overflowed".to_owned(), overflowed.into());
    }
    if !args.meta {
        return print(streams::json(&object)?);
    }
    let expiry = match session.expiry() {
        Expiry::Default => serde_json::json!("default"),
        Expiry::BrowserSession => serde_json::json!("browser-session"),
        Expiry::At(at) => serde_json::json!({ "at": at }),
        Expiry::Idle(window) => serde_json::json!({ "idle": window.as_secs() }),
        // A kind this build does not know by name.
        other => serde_json::json!(format!("{other:?}")),
    };
    let priorities: serde_json::Map<_, _> = session
        .keys_with_priority()
        .map(|(key, priority)| (key.to_owned(), priority.name().into()))
        .collect();
    print(streams::json(&serde_json::json!({
        "session": {
            "id": session.id().to_string(),
            "created_at": session.created_at(),
            "issued_at": session.issued_at(),
            "cookie_expires_at": session.cookie_expires_at(),
            "compressed": compressed,
            "expiry": expiry,
            "opened_with_fallback": session.opened_with_fallback(),
            "refresh_due": session.refresh_due(),
            "priorities": priorities,
            "overflow_key": overflow_key,
        },
        "entries": object,
    }))?)
}

/// A sealer the flags' values keep from being built (a zero `--max-idle`,
/// a `--name` that is no cookie name, a `--budget` too small for any
/// cookie): a command line that cannot be used.
fn unusable_setting(e: Error) -> Failure {
    match e {
        Error::InvalidSetting(_) | Error::InvalidCookie(_) | Error::TooLarge { .. } => {
            Failure::Usage(format!("{}: {e}", e.kind()))
        }
        e => e.into(),
    }
}

/// `open --reseal`: prints `session` sealed again under the primary key.
fn reseal(sealer: &Sealer, mut session: sealed_session::Session) -> Result<(), Failure> {
    if session.overflow_reference().is_some() {
        return Err(Failure::Usage(
            "--reseal: the cookie references an overflow blob; a server re-seals both on its next response"
                .to_owned(),
        ));
    }
    // Re-sealed whether or not anything changed (it may have opened under
    // the primary already).
    session.mark_modified();
    let saved = sealer.save(&mut session)?;
    let value = (saved.action.cookie_value())
        .ok_or_else(|| "input: nothing to re-seal (no entries)".to_owned())?;
    print(value)
}

/// The output of a future of the in-memory store, which never waits.
fn ready<F: std::future::Future>(future: F) -> Result<F::Output, Failure> {
    use std::task::{Context, Poll, Waker};
    match std::pin::pin!(future)
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => Ok(output),
        Poll::Pending => Err("internal: the in-memory store did not answer at once"
            .to_owned()
            .into()),
    }
}

/// An entry's value as JSON, if it has an exact JSON form: no byte string,
/// tag, `undefined`, non-finite float, non-text or repeated map key
/// anywhere inside, and CBOR that decoding and re-encoding give back byte
/// for byte (the generic decoder folds `undefined` into null and small
/// bignums into integers; this catches those).
fn json_form(session: &sealed_session::Session, key: &str) -> Option<serde_json::Value> {
    fn exact(value: &ciborium::Value) -> bool {
        use ciborium::Value as V;
        match value {
            V::Integer(_) | V::Text(_) | V::Bool(_) | V::Null => true,
            V::Float(f) => f.is_finite(),
            V::Array(items) => items.iter().all(exact),
            V::Map(pairs) => pairs.iter().enumerate().all(|(i, (k, v))| {
                k.is_text() && !pairs[..i].iter().any(|(earlier, _)| earlier == k) && exact(v)
            }),
            _ => false,
        }
    }
    let raw = session.get_raw(key)?;
    let cbor: ciborium::Value = session.get(key).ok()??;
    let mut again = Vec::with_capacity(raw.len());
    ciborium::into_writer(&cbor, &mut again).ok()?;
    if !exact(&cbor) || again != raw {
        return None;
    }
    // From the value already decoded (integers beyond 64 bits fail here).
    serde_json::to_value(&cbor).ok()
}
