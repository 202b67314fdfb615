//! `sealed-session`: make keys, seal and open cookies, inspect tokens and
//! check the published test vectors from the command line.
#![forbid(unsafe_code)]

mod django;

use clap::{Parser, Subcommand};
use sealed_session::{
    token, Compression, Error, FixedClock, InvalidKey, KeyRing, MasterKey, Priority, Sealer,
};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Seal, open and inspect sealed-session cookies.
#[derive(Parser)]
#[command(name = "sealed-session", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a new random master key (unpadded base64url, as --key reads).
    Keygen,
    /// Read a JSON object of entries on stdin and print the cookie value.
    Seal(SealArgs),
    /// Open a cookie value and print its entries as a JSON object; values
    /// with no JSON form go under "_cbor_hex" (key: CBOR in hex), keys of
    /// entries in the overflow store under "_overflowed".
    Open(OpenArgs),
    /// Print a token's header fields without a key (nothing is authenticated).
    Inspect {
        /// The cookie value.
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
struct KeyArgs {
    /// Master key: unpadded base64url (as keygen prints), or hex prefixed by
    /// "hex:". Prefer the environment variable: a command line is visible
    /// to other users of the machine.
    #[arg(
        long,
        env = "SEALED_SESSION_KEY",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    key: String,
    /// Cookie name the token is bound to.
    #[arg(long, default_value = sealed_session::DEFAULT_COOKIE_NAME)]
    name: String,
    /// Current time in Unix seconds (default: the system clock).
    #[arg(long)]
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
    /// entries are dropped to fit (listed on stderr).
    #[arg(long, default_value_t = sealed_session::DEFAULT_BUDGET)]
    budget: usize,
    /// Priority of an entry, as KEY=LEVEL (low, normal, high, critical); repeatable.
    #[arg(long = "priority", value_name = "KEY=LEVEL")]
    priorities: Vec<String>,
}

#[derive(clap::Args)]
struct OpenArgs {
    #[command(flatten)]
    common: KeyArgs,
    /// A fallback key that still opens (repeatable). Without this flag,
    /// read from SEALED_SESSION_FALLBACK_KEYS, comma-separated.
    #[arg(long = "fallback-key", allow_hyphen_values = true)]
    fallback_keys: Vec<String>,
    /// Idle timeout in seconds (default two weeks).
    #[arg(long)]
    max_idle: Option<u64>,
    /// Absolute lifetime in seconds (default 30 days).
    #[arg(long)]
    max_lifetime: Option<u64>,
    /// The cookie value.
    token: String,
}

/// `values` given with a repeatable flag or, without any, the non-empty
/// comma-separated items of the environment variable `name` (only the
/// variable is split: a flag's value is taken whole).
pub(crate) fn or_from_env(values: Vec<String>, name: &str) -> Vec<String> {
    if !values.is_empty() {
        return values;
    }
    std::env::var(name)
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Session entries from stdin, a JSON object.
pub(crate) fn stdin_json_object() -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| format!("input: cannot read stdin: {e}"))?;
    serde_json::from_str(&input).map_err(|e| not_a_json_object(&e))
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

/// A one-line failure: the error kind and what it means.
struct Failure(String);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure(format!("{}: {e}", e.kind()))
    }
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure(s)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<ExitCode, Failure> {
    match command {
        Command::Keygen => {
            println!("{}", &*MasterKey::generate()?.to_base64());
        }
        Command::Seal(args) => seal(args)?,
        Command::Open(args) => open(args)?,
        Command::Inspect { token } => {
            let info = token::inspect(token.trim())?;
            let h = info.header;
            println!("version: {}", h.version);
            println!(
                "flags: {:#04x}{}",
                h.flags,
                if h.is_compressed() {
                    " (compressed)"
                } else {
                    ""
                }
            );
            println!("key id: {}", h.key_id);
            println!("issued at: {}", h.issued_at);
            println!("token length: {} characters", info.token_len);
            println!("ciphertext length: {} bytes", info.ciphertext_len);
        }
        Command::VerifyVectors { dir } => {
            let outcomes =
                sealed_session::vectors::check_dir(&dir).map_err(|e| format!("input: {e}"))?;
            let failed: Vec<_> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
            for o in &failed {
                println!(
                    "FAIL {}: {}",
                    o.name,
                    o.failure.as_deref().unwrap_or_default()
                );
            }
            println!(
                "{} passed, {} failed",
                outcomes.len() - failed.len(),
                failed.len()
            );
            if !failed.is_empty() || outcomes.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::GenerateVectors { dir } => {
            for (name, text) in sealed_session::vectors::generate()? {
                let path = dir.join(&name);
                std::fs::write(&path, text)
                    .map_err(|e| format!("output: cannot write {}: {e}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
        }
        Command::Django(args) => django::run(args)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_key(text: &str) -> Result<MasterKey, Failure> {
    match text.trim().strip_prefix("hex:") {
        Some(hex) => Ok(MasterKey::from_hex(hex)?),
        None => MasterKey::from_base64(text).map_err(|e| match e {
            Error::InvalidKey(InvalidKey::LooksLikeHex) => {
                Failure(format!("{}: {e} (prefix it with \"hex:\")", e.kind()))
            }
            e => e.into(),
        }),
    }
}

fn builder(common: &KeyArgs, ring: KeyRing) -> sealed_session::SealerBuilder {
    let builder = Sealer::builder(ring).cookie_name(common.name.clone());
    match common.now {
        Some(now) => builder.clock(Arc::new(FixedClock::new(now))),
        None => builder,
    }
}

fn seal(args: SealArgs) -> Result<(), Failure> {
    let ring = KeyRing::new(parse_key(&args.common.key)?);
    let mut priorities = Vec::new();
    for spec in &args.priorities {
        let (key, level) = spec
            .split_once('=')
            .ok_or_else(|| format!("usage: bad --priority {spec:?}: expected KEY=LEVEL"))?;
        let level: Priority = level.parse().map_err(|_| {
            format!("usage: bad priority level {level:?}: expected low, normal, high or critical")
        })?;
        priorities.push((key.to_owned(), level));
    }
    let entries = stdin_json_object()?;

    let mut b = builder(&args.common, ring).budget(args.budget);
    if args.compress {
        b = b.compression(Compression::Above(256));
    }
    let sealer = b.build()?;
    let mut session = sealer.new_session()?;
    for (key, value) in &entries {
        let priority = priorities
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, p)| *p)
            .unwrap_or_default();
        session.insert_with_priority(key, value, priority)?;
    }
    let saved = sealer.save(&mut session)?;
    for dropped in &saved.report.dropped {
        eprintln!(
            "dropped: {} ({} priority, {} bytes)",
            dropped.key,
            dropped.priority.name(),
            dropped.size
        );
    }
    if !saved.report.dropped.is_empty() {
        eprintln!(
            "Set-Cookie header: {} bytes, budget {} bytes",
            saved.report.header_len, saved.report.budget
        );
    }
    let value = saved
        .action
        .cookie_value()
        .ok_or_else(|| "input: nothing to seal (no entries)".to_owned())?;
    println!("{value}");
    Ok(())
}

fn open(args: OpenArgs) -> Result<(), Failure> {
    let primary = parse_key(&args.common.key)?;
    let fallbacks = or_from_env(args.fallback_keys, "SEALED_SESSION_FALLBACK_KEYS")
        .iter()
        .map(|k| parse_key(k))
        .collect::<Result<Vec<_>, _>>()?;
    let ring = KeyRing::with_fallbacks(primary, fallbacks)?;
    // Opening sets no cookie: no budget applies (a long --name must not
    // make it fail for want of room for a deletion cookie).
    let mut b = builder(&args.common, ring).budget(usize::MAX);
    if let Some(idle) = args.max_idle {
        b = b.max_idle(Duration::from_secs(idle));
    }
    if let Some(lifetime) = args.max_lifetime {
        b = b.max_lifetime(Duration::from_secs(lifetime));
    }
    let sealer = b.build()?;
    let session = sealer.open(args.token.trim())?;
    if session.opened_with_fallback() {
        eprintln!("note: opened with a fallback key; re-seal under the primary key");
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
    println!("{}", serde_json::Value::Object(object));
    Ok(())
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
