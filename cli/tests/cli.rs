//! The `sealed-session` binary, end to end.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Variables the binary reads secrets from.
const SECRET_VARIABLES: [&str; 5] = [
    "SEALED_SESSION_KEY",
    "SEALED_SESSION_FALLBACK_KEYS",
    "SEALED_SESSION_INCOMING_KEY",
    "DJANGO_SECRET_KEY",
    "DJANGO_SECRET_KEY_FALLBACKS",
];

fn bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sealed-session"));
    for variable in SECRET_VARIABLES {
        command.env_remove(variable);
    }
    command
}

/// Runs with `vars` set in the environment.
fn run_with_env(args: &[&str], vars: &[(&str, &str)], stdin: &str) -> Output {
    let mut child = bin()
        .args(args)
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    // The binary may exit (on a bad argument) before reading its input:
    // a broken pipe here is not the test's concern, the exit status is.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

#[test]
fn secrets_can_come_from_the_environment_and_help_does_not_show_them() {
    let old = keygen();
    let new = keygen();
    let sealed = run_with_env(
        &["seal", "--now", "1767225600"],
        &[("SEALED_SESSION_KEY", &old)],
        r#"{"user":"ada"}"#,
    );
    assert!(sealed.status.success(), "{}", stderr(&sealed));
    let token = stdout(&sealed);
    let opened = run_with_env(
        &["open", "--now", "1767225660", &token],
        &[
            ("SEALED_SESSION_KEY", &new),
            (
                "SEALED_SESSION_FALLBACK_KEYS",
                &format!("{},{old}", keygen()),
            ),
        ],
        "",
    );
    assert_eq!(success_json(&opened)["user"], "ada");
    // A flag replaces the variable and is taken whole; empty items are
    // skipped, so an empty variable means no fallback.
    let old_via_flag = run_with_env(
        &[
            "open",
            "--now",
            "1767225660",
            "--fallback-key",
            &old,
            &token,
        ],
        &[
            ("SEALED_SESSION_KEY", &new),
            ("SEALED_SESSION_FALLBACK_KEYS", "not-a-key"),
        ],
        "",
    );
    assert_eq!(success_json(&old_via_flag)["user"], "ada");
    let joined = format!("{},{old}", keygen());
    let comma_in_flag = run_with_env(
        &[
            "open",
            "--now",
            "1767225660",
            "--fallback-key",
            &joined,
            &token,
        ],
        &[("SEALED_SESSION_KEY", &new)],
        "",
    );
    assert_one_line_error(&comma_in_flag, "invalid-key: fallback key 1: ");
    let empty = run_with_env(
        &["open", "--now", "1767225660", &token],
        &[
            ("SEALED_SESSION_KEY", &new),
            ("SEALED_SESSION_FALLBACK_KEYS", " , "),
        ],
        "",
    );
    assert_refused(&empty, "unknown-key-id");
    // The variable's fields are numbered as `KeyRing::from_env` numbers
    // them, empty ones counted.
    let third_bad = run_with_env(
        &["open", "--now", "1767225660", &token],
        &[
            ("SEALED_SESSION_KEY", &new),
            ("SEALED_SESSION_FALLBACK_KEYS", ",,not-a-key"),
        ],
        "",
    );
    assert_one_line_error(
        &third_bad,
        "invalid-key: invalid key in SEALED_SESSION_FALLBACK_KEYS (item 3): ",
    );
    // A server's next primary opens as it does on the server, with no
    // re-seal note; key flags replace that variable too.
    let incoming = [
        ("SEALED_SESSION_KEY", &*new),
        ("SEALED_SESSION_INCOMING_KEY", &*old),
    ];
    let via_incoming = run_with_env(&["open", "--now", "1767225660", &token], &incoming, "");
    assert_eq!(success_json(&via_incoming)["user"], "ada");
    assert!(
        !stderr(&via_incoming).contains("fallback"),
        "{}",
        stderr(&via_incoming)
    );
    let spare = keygen();
    let flagged = run_with_env(
        &[
            "open",
            "--now",
            "1767225660",
            "--fallback-key",
            &spare,
            &token,
        ],
        &incoming,
        "",
    );
    assert_refused(&flagged, "unknown-key-id");
    let bad_incoming = run_with_env(
        &["open", "--now", "1767225660", &token],
        &[
            ("SEALED_SESSION_KEY", &new),
            ("SEALED_SESSION_INCOMING_KEY", "not-a-key"),
        ],
        "",
    );
    assert_one_line_error(
        &bad_incoming,
        "invalid-key: invalid key in SEALED_SESSION_INCOMING_KEY: ",
    );
    // A key given twice is named as a bad one is.
    let twice = run_with_env(
        &["open", "--now", "1767225660", &token],
        &[
            ("SEALED_SESSION_KEY", &new),
            ("SEALED_SESSION_FALLBACK_KEYS", &format!("{old},{spare}")),
            ("SEALED_SESSION_INCOMING_KEY", &old),
        ],
        "",
    );
    assert_one_line_error(
        &twice,
        "invalid-key: invalid key in SEALED_SESSION_INCOMING_KEY: ",
    );
    let twice = run_with_env(
        &["open", "--now", "1767225660", &token],
        &[
            ("SEALED_SESSION_KEY", &new),
            ("SEALED_SESSION_FALLBACK_KEYS", &format!("{old}, ,{new}")),
        ],
        "",
    );
    assert_one_line_error(
        &twice,
        "invalid-key: invalid key in SEALED_SESSION_FALLBACK_KEYS (item 3): ",
    );
    let help = run_with_env(&["open", "--help"], &[("SEALED_SESSION_KEY", &new)], "");
    assert!(stdout(&help).contains("SEALED_SESSION_KEY"));
    assert!(!stdout(&help).contains(&new), "help shows the key");
    let django_help = run_with_env(
        &["django", "open", "--help"],
        &[("DJANGO_SECRET_KEY", "django-insecure-help-secret")],
        "",
    );
    assert!(stdout(&django_help).contains("DJANGO_SECRET_KEY"));
    assert!(
        !stdout(&django_help).contains("django-insecure-help-secret"),
        "help shows the secret"
    );

    let secret = "django-insecure-env-secret";
    let cookie = run_with_env(
        &["django", "seal", "--now", "1767225600"],
        &[("DJANGO_SECRET_KEY", secret)],
        r#"{"_auth_user_id":"42"}"#,
    );
    assert!(cookie.status.success(), "{}", stderr(&cookie));
    let opened = run_with_env(
        &["django", "open", "--now", "1767225660", &stdout(&cookie)],
        &[
            ("DJANGO_SECRET_KEY", "the-new-secret"),
            ("DJANGO_SECRET_KEY_FALLBACKS", &format!("other,{secret}")),
        ],
        "",
    );
    assert_eq!(success_json(&opened)["_auth_user_id"], "42");
}

fn run(args: &[&str], stdin: &str) -> Output {
    run_with_env(args, &[], stdin)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_owned()
}

/// A failure of the tool's own (a key, a file, the input, the output):
/// one line naming the kind, status 1, no panic.
fn assert_one_line_error(o: &Output, kind: &str) {
    assert_error_line(o, 1, kind);
}

/// A refused cookie: one line naming the kind, status 3, no panic.
fn assert_refused(o: &Output, kind: &str) {
    assert_error_line(o, 3, kind);
}

fn assert_error_line(o: &Output, status: i32, kind: &str) {
    assert_eq!(o.status.code(), Some(status), "{}", stderr(o));
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!("error: {kind}")), "{err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"));
}

/// A successful run's stdout, parsed as JSON.
fn success_json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_str(&stdout(o)).unwrap()
}

/// `open` of a token sealed for the cookie `sid`, a minute after sealing.
fn open_sid(key: &str, token: &str) -> Output {
    open_sid_with(key, token, &[])
}

/// [`open_sid`] with `extra` flags.
fn open_sid_with(key: &str, token: &str, extra: &[&str]) -> Output {
    let mut args = vec!["open", "--key", key, "--name", "sid", "--now", "1767225660"];
    args.extend_from_slice(extra);
    args.push(token);
    run(&args, "")
}

/// `open` with `key` at 1767225660, a minute after the tests' usual
/// sealing time, with `extra` arguments before the cookie.
fn open_a_minute_later(key: &str, extra: &[&str], cookie: &str) -> Output {
    let args = ["open", "--key", key, "--now", "1767225660"];
    run(&[&args[..], extra, &[cookie]].concat(), "")
}

fn keygen() -> String {
    let o = run(&["keygen"], "");
    assert!(o.status.success());
    stdout(&o)
}

#[test]
fn sealed_token_opens_with_open_and_nothing_else() {
    let key = keygen();
    let other = keygen();
    let sealed = run(
        &[
            "seal",
            "--key",
            &key,
            "--name",
            "sid",
            "--now",
            "1767225600",
        ],
        r#"{"user":"ada","n":[1,2,{"x":null}]}"#,
    );
    assert!(sealed.status.success(), "{}", stderr(&sealed));
    let token = stdout(&sealed);

    let opened = open_sid(&key, &token);
    let json = success_json(&opened);
    assert_eq!(
        json,
        serde_json::json!({"user": "ada", "n": [1, 2, {"x": null}]})
    );

    let now = ["--now", "1767225660"];
    let wrong_key = run(
        &[
            &["open", "--key", &other, "--name", "sid"][..],
            &now,
            &[&token],
        ]
        .concat(),
        "",
    );
    assert_refused(&wrong_key, "unknown-key-id");
    let wrong_name = run(
        &[
            &["open", "--key", &key, "--name", "other"][..],
            &now,
            &[&token],
        ]
        .concat(),
        "",
    );
    assert_refused(&wrong_name, "authentication-failed");
    // Every single-character change is refused, with the kind of the first
    // check of docs/FORMAT.md §8 it breaks. Character i carries bits
    // 6i..6i+5 of the decoded token, laid out (§3) as byte 0 version,
    // 1 flags, 2-9 key id, 10-17 issued-at, 18-41 nonce, then ciphertext
    // and tag; the change adds 1 to the character's 6-bit value.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert!(token.starts_with("AQ"), "{token}");
    // The middle character lies in the ciphertext or the tag.
    assert!(6 * (token.len() / 2) >= 42 * 8, "{token}");
    // The last character: at a length of 2 or 3 mod 4 its lowest bit is
    // one of the trailing bits that must be zero (§9), so +1 is a base64
    // error; at 0 mod 4 it is all tag.
    let last = match token.len() % 4 {
        0 => "authentication-failed",
        _ => "malformed",
    };
    for (i, kind) in [
        (0, "malformed"),              // 'A' to 'B': version 0x05 (step 4)
        (1, "malformed"),              // 'Q' to 'R': flags bit 4 set (step 5)
        (5, "unknown-key-id"),         // bits 30-35: key id bytes 3-4 (step 6)
        (20, "authentication-failed"), // bits 120-125: issued-at, in the AAD (step 7)
        (30, "authentication-failed"), // bits 180-185: nonce
        (45, "authentication-failed"), // bits 270-275: nonce
        (token.len() / 2, "authentication-failed"),
        (token.len() - 1, last),
    ] {
        let mut bytes = token.clone().into_bytes();
        let at = alphabet.iter().position(|c| *c == bytes[i]).unwrap();
        bytes[i] = alphabet[(at + 1) % 64];
        let altered = String::from_utf8(bytes).unwrap();
        let o = run(
            &[
                &["open", "--key", &key, "--name", "sid"][..],
                &now,
                &[&altered],
            ]
            .concat(),
            "",
        );
        assert!(
            stderr(&o).starts_with(&format!("error: {kind}")),
            "position {i}: {}",
            stderr(&o)
        );
        assert_refused(&o, kind);
    }
    // Expired: idle timeout given on the command line.
    let late = run(
        &[
            "open",
            "--key",
            &key,
            "--name",
            "sid",
            "--now",
            "1767229201",
            "--max-idle",
            "3600",
            &token,
        ],
        "",
    );
    assert_refused(&late, "expired-idle");
}

#[test]
fn keys_may_start_with_a_hyphen() {
    // keygen prints unpadded base64url, whose first character can be '-'.
    let key = format!("-{}", "A".repeat(42));
    let sealed = run(&["seal", "--key", &key], r#"{"a":1}"#);
    assert!(sealed.status.success(), "{}", stderr(&sealed));
    // The token opens only through the fallback: a hyphen there too.
    let opened = run(
        &[
            "open",
            "--key",
            &key.replace('-', "_"),
            "--fallback-key",
            &key,
            &stdout(&sealed),
        ],
        "",
    );
    assert!(opened.status.success(), "{}", stderr(&opened));
    assert!(stderr(&opened).contains("fallback key"));

    let secret = "-django-secret-with-a-leading-hyphen";
    let cookie = run(&["django", "seal", "--secret", secret], r#"{"a":1}"#);
    assert!(cookie.status.success(), "{}", stderr(&cookie));
    let opened = run(
        &[
            "django",
            "open",
            "--secret",
            "-another",
            "--fallback-secret",
            secret,
            &stdout(&cookie),
        ],
        "",
    );
    assert_eq!(success_json(&opened)["a"], 1);
    assert!(
        stderr(&opened).contains("fallback secret"),
        "{}",
        stderr(&opened)
    );
    // Opened by the primary secret, with a fallback given: no note.
    let primary = run(
        &[
            "django",
            "open",
            "--secret",
            secret,
            "--fallback-secret",
            "-another",
            &stdout(&cookie),
        ],
        "",
    );
    assert_eq!(success_json(&primary)["a"], 1);
    assert!(stderr(&primary).is_empty(), "{}", stderr(&primary));
}

#[test]
fn key_file_holds_the_key_and_errors_never_show_its_content() {
    // Removed when dropped, also when an assertion fails.
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let write = |name: &str, content: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let key = keygen();
    // A trailing newline, as `keygen > file` writes it.
    let file = write("key", format!("{key}\n").as_bytes());
    let id = |flag: &str, value: &str| {
        let o = run(&["key-id", flag, value], "");
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(id("--key-file", &file), id("--key", &key));

    let sealed = run(
        &["seal", "--key-file", &file, "--now", "1767225600"],
        r#"{"user":"ada"}"#,
    );
    assert!(sealed.status.success(), "{}", stderr(&sealed));
    let token = stdout(&sealed);
    // The file is read instead of the variable; beside --key it is
    // refused, since one of the two would be ignored.
    let other = keygen();
    let opened = run_with_env(
        &["open", "--key-file", &file, "--now", "1767225660", &token],
        &[("SEALED_SESSION_KEY", &other)],
        "",
    );
    assert_eq!(success_json(&opened)["user"], "ada");
    let both = run(&["open", "--key-file", &file, "--key", &other, &token], "");
    assert_usage_error(&both, &[&other, &token, &key]);
    assert!(stderr(&both).contains("--key"), "{}", stderr(&both));
    for vars in [&[][..], &[("SEALED_SESSION_KEY", "")][..]] {
        let none = run_with_env(&["open", &token], vars, "");
        assert_usage_error(&none, &[&token]);
        assert!(
            stderr(&none).contains("SEALED_SESSION_KEY"),
            "{}",
            stderr(&none)
        );
    }

    let not_a_key = write("not-a-key", b"correct horse battery staple\n");
    let refused = run(&["key-id", "--key-file", &not_a_key], "");
    assert_one_line_error(&refused, "invalid-key: key file: ");
    assert!(!stderr(&refused).contains("horse"), "{}", stderr(&refused));
    // The bound is 4096 bytes, whitespace included: a key padded to
    // exactly that is read, one byte more is refused.
    let padded = |len: usize| format!("{key}{}", "\n".repeat(len - key.len()));
    let at_bound = write("at-bound", padded(4096).as_bytes());
    assert_eq!(id("--key-file", &at_bound), id("--key", &key));
    let long = write("long", padded(4097).as_bytes());
    let over = run(&["key-id", "--key-file", &long], "");
    assert_one_line_error(&over, "input: key file is longer than");
    assert!(
        stderr(&over).contains("is longer than 4096 bytes"),
        "{}",
        stderr(&over)
    );
    assert!(!stderr(&over).contains(&key), "{}", stderr(&over));
    let binary = write("binary", &[0xff, 0xfe, 0x00]);
    assert_one_line_error(
        &run(&["key-id", "--key-file", &binary], ""),
        "input: key file is not UTF-8 text",
    );
    let missing_path = dir.join("missing");
    let missing = run(
        &["key-id", "--key-file", missing_path.to_str().unwrap()],
        "",
    );
    assert_one_line_error(&missing, "input: cannot read key file: ");
    assert_one_line_error(
        &run(&["key-id", "--key-file", dir.to_str().unwrap()], ""),
        "input: cannot read key file: ",
    );

    // A retired key in a file opens as a fallback, beside a --fallback-key
    // (which then replaces the variable, as it does alone).
    let new = write("new", format!("{other}\n").as_bytes());
    let fallback_open = |extra: &[&str]| {
        let mut args = vec!["open", "--key-file", &new, "--now", "1767225660"];
        args.extend_from_slice(extra);
        args.push(&token);
        run_with_env(&args, &[("SEALED_SESSION_FALLBACK_KEYS", "not-a-key")], "")
    };
    let spare = keygen();
    let opened = fallback_open(&["--fallback-key", &spare, "--fallback-key-file", &file]);
    assert_eq!(success_json(&opened)["user"], "ada");
    assert!(
        stderr(&opened).contains("fallback key"),
        "{}",
        stderr(&opened)
    );
    let refused = fallback_open(&["--fallback-key-file", &not_a_key]);
    assert_one_line_error(&refused, "invalid-key: fallback key file 1: ");
    assert!(!stderr(&refused).contains("horse"), "{}", stderr(&refused));
    assert_one_line_error(
        &fallback_open(&["--fallback-key-file", missing_path.to_str().unwrap()]),
        "input: cannot read fallback key file 1: ",
    );

    // Django's SECRET_KEY from a file: its trailing newline is not part of
    // the secret, and the file wins over the variable (and is refused
    // beside --secret).
    let secret = "django-insecure-file-secret";
    let secret_file = write("django-secret", format!("{secret}\n").as_bytes());
    let sealed = run(
        &["django", "seal", "--secret", secret, "--now", "1767225600"],
        r#"{"_auth_user_id":"7"}"#,
    );
    assert!(sealed.status.success(), "{}", stderr(&sealed));
    let cookie = stdout(&sealed);
    let opened = run_with_env(
        &[
            "django",
            "open",
            "--secret-file",
            &secret_file,
            "--now",
            "1767225660",
            &cookie,
        ],
        &[("DJANGO_SECRET_KEY", "another-secret")],
        "",
    );
    assert_eq!(success_json(&opened)["_auth_user_id"], "7");
    let both = run(
        &[
            "django",
            "open",
            "--secret-file",
            &secret_file,
            "--secret",
            "another-secret",
            &cookie,
        ],
        "",
    );
    assert_usage_error(&both, &["another-secret", &cookie]);
    let none = run(&["django", "open", &cookie], "");
    assert_usage_error(&none, &[&cookie]);
    assert!(
        stderr(&none).contains("DJANGO_SECRET_KEY"),
        "{}",
        stderr(&none)
    );
    let unreadable = run(
        &[
            "django",
            "open",
            "--secret-file",
            dir.to_str().unwrap(),
            &cookie,
        ],
        "",
    );
    assert_one_line_error(&unreadable, "input: cannot read secret file: ");
    // A cookie the file's secret did not sign: refused, without the secret.
    let other = write("other-secret", b"django-insecure-other-file-secret\n");
    let refused = run(&["django", "open", "--secret-file", &other, &cookie], "");
    assert_refused(&refused, "authentication-failed");
    assert!(
        !stderr(&refused).contains("other-file-secret"),
        "{}",
        stderr(&refused)
    );
    // The signing secret as a retired one, from a file: it opens, and the
    // variable of retired secrets is not read then.
    let args = [
        "django",
        "open",
        "--secret-file",
        &other,
        "--now",
        "1767225660",
    ];
    let retired = run_with_env(
        &[
            &args[..],
            &["--fallback-secret-file", &secret_file, &cookie],
        ]
        .concat(),
        &[("DJANGO_SECRET_KEY_FALLBACKS", "not-it")],
        "",
    );
    assert_eq!(success_json(&retired)["_auth_user_id"], "7");
    assert!(
        stderr(&retired).contains("fallback secret"),
        "{}",
        stderr(&retired)
    );
    let missing = run(
        &[
            &args[..],
            &["--fallback-secret-file", "/nonexistent/secret", &cookie],
        ]
        .concat(),
        "",
    );
    assert_one_line_error(&missing, "input: cannot read fallback secret file 1: ");
    // A secret given in place of its file's path stays out of stderr.
    let secret = "django-insecure-given-as-a-path";
    for flag in ["--secret-file", "--fallback-secret-file"] {
        let mistaken = run(&["django", "open", flag, secret, &cookie], "");
        assert_one_line_error(&mistaken, "input: cannot read ");
        assert!(!stderr(&mistaken).contains(secret), "{}", stderr(&mistaken));
    }
    let key = keygen();
    let other = keygen();
    for args in [
        &["key-id", "--key-file", &key][..],
        &[
            "open",
            "--key",
            &other,
            "--fallback-key-file",
            &key,
            "token",
        ],
    ] {
        let mistaken = run(args, "");
        assert_one_line_error(&mistaken, "input: cannot read ");
        assert!(!stderr(&mistaken).contains(&key), "{}", stderr(&mistaken));
    }
}

#[test]
fn fallback_key_is_reported_on_stderr() {
    let old = keygen();
    let new = keygen();
    let token = stdout(&run(&["seal", "--key", &old], r#"{"a":1}"#));
    let o = run(&["open", "--key", &new, "--fallback-key", &old, &token], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("fallback key"));
    let o = run(&["open", "--key", &new, &token], "");
    assert_refused(&o, "unknown-key-id");
}

#[test]
fn budget_and_priorities_drop_and_report() {
    let key = keygen();
    let input = format!(
        r#"{{"user":"ada","cart":"{}","theme":"dark"}}"#,
        "x".repeat(3000)
    );
    let o = run(
        &[
            "seal",
            "--key",
            &key,
            "--budget",
            "600",
            "--priority",
            "user=critical",
            "--priority",
            "cart=low",
        ],
        &input,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("dropped: cart (low priority"),
        "{}",
        stderr(&o)
    );
    let opened = run(&["open", "--key", &key, &stdout(&o)], "");
    assert_eq!(
        success_json(&opened),
        serde_json::json!({"user": "ada", "theme": "dark"})
    );

    let too_small = run(
        &[
            "seal",
            "--key",
            &key,
            "--budget",
            "100",
            "--priority",
            "user=critical",
        ],
        r#"{"user":"ada"}"#,
    );
    // Too small for any cookie: the flag's value cannot be used.
    assert_usage_error(&too_small, &[]);
    assert!(
        stderr(&too_small).contains("too-large"),
        "{}",
        stderr(&too_small)
    );
    let bad_level = run(
        &["seal", "--key", &key, "--priority", "user=urgent"],
        r#"{"user":1}"#,
    );
    assert_usage_error(&bad_level, &["urgent"]);
    // A misspelt key would leave its entry at normal priority, silently.
    let unknown_key = run(
        &["seal", "--key", &key, "--priority", "usr=critical"],
        r#"{"user":1}"#,
    );
    assert_usage_error(&unknown_key, &["usr"]);
    assert!(stdout(&unknown_key).is_empty());

    // A cookie without any of its entries would log the user out.
    let nothing_fits = run(
        &["seal", "--key", &key, "--budget", "300"],
        &format!(r#"{{"cart":"{}"}}"#, "x".repeat(3000)),
    );
    assert_one_line_error(&nothing_fits, "too-large");
    assert!(stdout(&nothing_fits).is_empty());
    // --strict refuses any drop; without it the same input seals.
    let args = ["seal", "--key", &key, "--budget", "600"];
    assert!(run(&args, &input).status.success());
    let strict = run(&[&args[..], &["--strict"]].concat(), &input);
    assert_one_line_error(&strict, "too-large");
    assert!(stdout(&strict).is_empty());
}

/// A command line that cannot be used: one line, status 2, and none of
/// `hidden` (what was typed) in it.
fn assert_usage_error(o: &Output, hidden: &[&str]) {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: usage: "), "{err}");
    for typed in hidden {
        assert!(!err.contains(typed), "{err}");
    }
}

#[test]
fn usage_errors_name_the_argument_but_never_quote_a_value() {
    let key = keygen();
    let token = stdout(&run(&["seal", "--key", &key], r#"{"a":1}"#));
    // A key given where no value is expected, or as the wrong flag's value
    // (prefixed: clap takes one starting with '-' for a flag, "-h" for help).
    let stray = format!("A{key}");
    assert_usage_error(&run(&["seal", &stray], ""), &[&stray]);
    let o = run(&["seal", "--key", &key, "--budget", &stray], "{}");
    assert_usage_error(&o, &[&stray]);
    assert!(stderr(&o).contains("--budget"), "{}", stderr(&o));
    assert_usage_error(
        &run(&["open", "--key", &key, &stray, &token], ""),
        &[&stray, &token],
    );
    assert_usage_error(&run(&[&token], ""), &[&token]);
    // A misspelt flag or command is shown, with clap's suggestion.
    let o = run(&["seal", "--key", &key, "--compres"], "{}");
    assert_usage_error(&o, &[&key]);
    assert!(stderr(&o).contains("--compres;"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("did you mean --compress?"),
        "{}",
        stderr(&o)
    );
    let o = run(&["sael"], "");
    assert_usage_error(&o, &[]);
    assert!(stderr(&o).contains(": sael;"), "{}", stderr(&o));
    assert!(stderr(&o).contains("did you mean seal?"), "{}", stderr(&o));
    // A flag's spelling may hold digits and hyphens; a short mixed-case
    // word or a long lowercase one (a hex key) is not a flag's spelling.
    let o = run(&["open", "--key", &key, "--max-idel2", &token], "");
    assert!(stderr(&o).contains(": --max-idel2;"), "{}", stderr(&o));
    for typed in [
        "--Hunter2Secret",
        &format!("--{}", "0123456789abcdef".repeat(4)),
    ] {
        assert_usage_error(&run(&["open", "--key", &key, typed, &token], ""), &[typed]);
    }
    // The names of missing arguments; a refused value's reason.
    let o = run(&["open", "--key", &key], "");
    assert_usage_error(&o, &[&key]);
    assert!(stderr(&o).contains("<TOKEN>"), "{}", stderr(&o));
    let o = run(&["seal", "--key", &key, "--budget", "12x"], "{}");
    assert_usage_error(&o, &["12x"]);
    assert!(
        stderr(&o).contains("(invalid digit found in string)"),
        "{}",
        stderr(&o)
    );
    // A flag given twice is said to be, not "conflicting" (clap's word),
    // with or without a value.
    let o = run(&["open", "--key", &key, "--key", &key, &token], "");
    assert_usage_error(&o, &[&key, &token]);
    assert!(
        stderr(&o).contains("given more than once: --key <KEY>;"),
        "{}",
        stderr(&o)
    );
    let o = run(&["open", "--key", &key, "--meta", "--meta", &token], "");
    assert_usage_error(&o, &[&key, &token]);
    assert!(
        stderr(&o).contains("given more than once: --meta;"),
        "{}",
        stderr(&o)
    );
    // Two different flags that exclude each other still conflict.
    let o = run(
        &["open", "--key", &key, "--key-file", "/dev/null", &token],
        "",
    );
    assert_usage_error(&o, &[&key, &token]);
    assert!(
        stderr(&o).contains("cannot be used with one or more"),
        "{}",
        stderr(&o)
    );
    // Help still prints, and succeeds.
    let help = run(&["seal", "--help"], "");
    assert!(help.status.success());
    assert!(stdout(&help).contains("--strict"));
}

#[test]
fn output_that_cannot_be_written_is_an_error_not_a_panic() {
    // A full disk: an error that says so.
    match std::fs::OpenOptions::new().write(true).open("/dev/full") {
        Ok(full) => {
            let o = bin()
                .arg("keygen")
                .stdout(full)
                .stderr(Stdio::piped())
                .output()
                .unwrap();
            assert_one_line_error(&o, "output: cannot write to stdout");
            // Notes on a full stderr are lost, not the result: `seal`
            // reports its drops there before it prints the token.
            let key = keygen();
            let big = format!(r#"{{"a":1,"b":"{}"}}"#, "y".repeat(5000));
            let mut child = bin()
                .args(["seal", "--key", &key, "--priority", "b=low"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open("/dev/full")
                        .unwrap(),
                )
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(big.as_bytes())
                .unwrap();
            let o = child.wait_with_output().unwrap();
            assert!(o.status.success(), "{:?}", o.status);
            let opened = run(&["open", "--key", &key, &stdout(&o)], "");
            assert_eq!(success_json(&opened), serde_json::json!({"a": 1}));
        }
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true: no /dev/full to write to")
        }
        Err(_) => {
            // Straight to stderr: the harness hides `eprintln!` of a
            // passing test (as `tests/common`'s `service_available` does).
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: no /dev/full on this system; checking a closed pipe only"
            );
        }
    }

    // A reader that went away: quiet, and not a success.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = bin()
        .arg("keygen")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "");
}

#[test]
fn integers_keep_their_value_or_are_refused() {
    let key = keygen();
    // serde_json alone would read this as the nearest float.
    let o = run(
        &["seal", "--key", &key],
        r#"{"id":12345678901234567890123}"#,
    );
    assert_one_line_error(&o, "input: stdin has an integer beyond 64 bits");
    let o = run(
        &["seal", "--key", &key],
        r#"{"deep":{"li\"st":[1,{"id":-9223372036854775809}]}}"#,
    );
    assert_one_line_error(&o, "input: stdin has an integer beyond 64 bits");
    // Nesting past serde_json's limit is refused before the check walks it.
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let o = run(&["seal", "--key", &key], &deep);
    assert_one_line_error(&o, "input: stdin is not a JSON object");
    // The extremes that fit are kept exactly; a float stays a float.
    let input = r#"{"n":[18446744073709551615,-9223372036854775808,0,1.5e300]}"#;
    let sealed = run(&["seal", "--key", &key], input);
    assert!(sealed.status.success(), "{}", stderr(&sealed));
    let opened = run(&["open", "--key", &key, &stdout(&sealed)], "");
    let expected: serde_json::Value = serde_json::from_str(input).unwrap();
    assert_eq!(success_json(&opened), expected);
    assert!(stdout(&opened).contains("[18446744073709551615,-9223372036854775808,0,"));
}

#[test]
fn cookies_can_come_from_stdin_and_stdin_is_bounded() {
    let key = keygen();
    let token = stdout(&run(&["seal", "--key", &key], r#"{"a":1}"#));
    let opened = run(&["open", "--key", &key, "-"], &format!("{token}\n"));
    assert_eq!(success_json(&opened)["a"], 1);

    let id = stdout(&run(&["key-id", "--key", &key], ""));
    let info = success_json(&run(&["inspect", "--json", "-"], &token));
    assert_eq!(info["key_id"], id.as_str());
    assert_eq!(info["version"], 1);
    assert_eq!(info["compressed"], false);
    assert_eq!(info["token_len"], token.len());
    let text = stdout(&run(&["inspect", &token], ""));
    assert!(text.contains(&format!("key id: {id}")), "{text}");

    let secret = "django-insecure-stdin";
    let cookie = stdout(&run(&["django", "seal", "--secret", secret], r#"{"a":2}"#));
    let opened = run(&["django", "open", "--secret", secret, "-"], &cookie);
    assert_eq!(success_json(&opened)["a"], 2);

    // A whole Cookie header of one cookie; a pair without a name is a
    // value (and not a token).
    let opened = run(
        &["open", "--key", &key, &format!("Cookie: session={token}")],
        "",
    );
    assert_eq!(success_json(&opened)["a"], 1);
    assert_refused(
        &run(&["open", "--key", &key, &format!("={token}")], ""),
        "malformed",
    );
    // Exactly 1 MiB is read (and refused as a cookie); a byte more is not.
    let most = "A".repeat(1 << 20);
    assert_refused(&run(&["open", "--key", &key, "-"], &most), "limit-exceeded");
    let blob_dir = tempfile::tempdir().unwrap();
    let blob = blob_dir.path().join("blob");
    let (v, _, _) = &overflow_vectors_with_a_blob()[0];
    std::fs::write(&blob, &most).unwrap();
    let o = open_overflow_vector(v, &["--blob", blob.to_str().unwrap()], "");
    assert_refused(&o, "store: --blob: entry rejected");
    std::fs::write(&blob, format!("{most}A")).unwrap();
    let o = open_overflow_vector(v, &["--blob", blob.to_str().unwrap()], "");
    assert_one_line_error(&o, "input: the overflow blob");
    assert!(
        stderr(&o).contains("is longer than 1048576 bytes"),
        "{}",
        stderr(&o)
    );

    let huge = format!(r#"{{"a":"{}"}}"#, "x".repeat(1 << 20));
    let o = run(&["seal", "--key", &key], &huge);
    assert_one_line_error(&o, "input: stdin is longer than");
    // A cookie on stdin that no server would take is refused, as one
    // that fails to open: the input is bad, not the tool.
    assert_refused(
        &run(&["open", "--key", &key, "-"], &huge),
        "limit-exceeded: input: stdin is longer than",
    );
    let mut child = bin()
        .args(["open", "--key", &key, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"\xff\xfe").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_refused(&o, "malformed: input: stdin is not UTF-8 text");
    // A pasted NAME that is no cookie name, too.
    assert_refused(
        &run(&["open", "--key", &key, &format!("sess ion={token}")], ""),
        "malformed: the pasted NAME",
    );
}

#[test]
fn compress_flag_and_inspect() {
    let key = keygen();
    let input = format!(r#"{{"log":"{}"}}"#, "abc".repeat(300));
    let plain = stdout(&run(&["seal", "--key", &key], &input));
    let args = ["seal", "--key", &key, "--compress", "--now", "1767225600"];
    let packed = stdout(&run(&args, &input));
    assert!(packed.len() < plain.len() / 2);
    let info = run(&["inspect", &packed], "");
    assert!(info.status.success());
    let text = stdout(&info);
    assert!(text.contains("version: 1"), "{text}");
    assert!(text.contains("(compressed)"), "{text}");
    let date = "issued at: 1767225600 (2026-01-01T00:00:00Z)\n";
    assert!(text.contains(date), "{text}");
    // Beyond what a date can show (past the year 9999): the seconds alone.
    let far = ["seal", "--key", &key, "--now", "18446744073709551615"];
    let far_text = stdout(&run(&["inspect", &stdout(&run(&far, &input))], ""));
    let seconds_alone = "issued at: 18446744073709551615\n";
    assert!(far_text.contains(seconds_alone), "{far_text}");
    assert!(
        text.contains(&format!("token length: {} characters", packed.len())),
        "{text}"
    );
    assert_refused(&run(&["inspect", "%%%"], ""), "malformed");
}

#[test]
fn bad_inputs_are_one_line_errors() {
    let key = keygen();
    assert_one_line_error(&run(&["seal", "--key", &key], "{}"), "input");
    assert_one_line_error(
        &run(&["verify-vectors", "/nonexistent-vectors-dir"], ""),
        "input",
    );
    assert_one_line_error(&run(&["seal", "--key", "tooshort"], "{}"), "invalid-key");
    assert_one_line_error(
        &run(&["open", "--key", "hex:zz", "AAAA"], ""),
        "invalid-key",
    );
    assert_refused(
        &run(&["open", "--key", &key, "not a token"], ""),
        "malformed",
    );
    // A hex key needs its prefix: read as base64 it would be another key.
    let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let o = run(&["seal", "--key", hex], r#"{"a":1}"#);
    assert_one_line_error(&o, "invalid-key");
    assert!(stderr(&o).contains("\"hex:\""), "{}", stderr(&o));
    let hex_key = format!("hex:{hex}");
    assert!(run(&["seal", "--key", &hex_key], r#"{"a":1}"#)
        .status
        .success());
    let o = run(&["seal", "--key", &key], "{not json");
    assert_one_line_error(
        &o,
        "input: stdin is not a JSON object (invalid JSON at line 1",
    );
    // The input is session data: the message says where, never what.
    for input in [r#""hunter2""#, r#"{"a": hunter2}"#, r#"["hunter2"]"#] {
        let o = run(&["seal", "--key", &key], input);
        assert_one_line_error(&o, "input: stdin is not a JSON object");
        assert!(!stderr(&o).contains("hunter2"), "{}", stderr(&o));
        let o = run(&["django", "seal", "--secret", "s"], input);
        assert_one_line_error(&o, "input: stdin is not a JSON object");
        assert!(!stderr(&o).contains("hunter2"), "{}", stderr(&o));
    }
    assert_one_line_error(
        &run(&["seal", "--key", &key], r#"{"_reserved":1}"#),
        "invalid-entry-key",
    );
    let huge = "A".repeat(100_000);
    assert_refused(&run(&["open", "--key", &key, &huge], ""), "limit-exceeded");
}

#[test]
fn verify_vectors_counts_and_fails_on_a_broken_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-vectors");
    let o = run(&["verify-vectors", dir.to_str().unwrap()], "");
    assert!(o.status.success(), "{}", stdout(&o));
    let last = stdout(&o).lines().last().unwrap_or_default().to_owned();
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    // Every vector of the three files, counted from the files themselves.
    let count = |file: &str, list: &str| {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json[list].as_array().unwrap().len()
    };
    assert_eq!(
        passed,
        count("format-v1.json", "vectors")
            + count("budget-v1.json", "cases")
            + count("overflow-v1.json", "vectors"),
        "{last}"
    );
    assert!(last.ends_with(" passed, 0 failed"), "{last}");

    // A copy with one expectation changed fails, and says which.
    let temp = tempfile::tempdir().unwrap();
    let tmp = temp.path();
    let text = std::fs::read_to_string(dir.join("format-v1.json")).unwrap();
    let broken = text.replacen(
        "\"expected_error\": \"authentication-failed\"",
        "\"expected_error\": \"malformed\"",
        1,
    );
    assert_ne!(broken, text);
    // The vector the change hit, found by comparing the two files.
    let vectors = |text: &str| {
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        json["vectors"].as_array().unwrap().clone()
    };
    let changed: Vec<String> = vectors(&text)
        .iter()
        .zip(vectors(&broken))
        .filter(|(before, after)| *before != after)
        .map(|(before, _)| before["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    let broken_name = &changed[0];
    std::fs::write(tmp.join("format-v1.json"), broken).unwrap();
    // Every published file must be there: one alone is not a pass.
    assert_eq!(sealed_session::vectors::FILES[0], "format-v1.json");
    for name in &sealed_session::vectors::FILES[1..] {
        let o = run(&["verify-vectors", tmp.to_str().unwrap()], "");
        assert_one_line_error(&o, "input");
        assert!(
            stderr(&o).ends_with(&format!("has no {name}")),
            "{}",
            stderr(&o)
        );
        std::fs::copy(dir.join(name), tmp.join(name)).unwrap();
    }
    let o = run(&["verify-vectors", tmp.to_str().unwrap()], "");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // `FAIL name: what differed`, then the count.
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(&format!("FAIL {broken_name}: ")),
        "{out}"
    );
    assert!(lines[1].ends_with(" passed, 1 failed"), "{out}");
    // Other files beside the published ones are not read.
    std::fs::write(tmp.join("package.json"), "{}").unwrap();
    let again = run(&["verify-vectors", tmp.to_str().unwrap()], "");
    assert_eq!(stdout(&again), out, "{}", stderr(&again));
    // A vector file is input too: a name a terminal would act on is
    // printed escaped.
    let mut renamed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.join("format-v1.json")).unwrap())
            .unwrap();
    for v in renamed["vectors"].as_array_mut().unwrap() {
        if v["name"] == broken_name.as_str() {
            v["name"] = "evil\u{1b}[2K\u{9b}".into();
        }
    }
    std::fs::write(tmp.join("format-v1.json"), renamed.to_string()).unwrap();
    let o = run(&["verify-vectors", tmp.to_str().unwrap()], "");
    assert!(
        stdout(&o).starts_with(r"FAIL evil\u{1b}[2K\u{9b}: "),
        "{:?}",
        stdout(&o)
    );
    // A published file emptied of its vectors is no pass.
    let budget = std::fs::read_to_string(dir.join("budget-v1.json")).unwrap();
    let mut emptied: serde_json::Value = serde_json::from_str(&budget).unwrap();
    emptied["cases"] = serde_json::json!([]);
    std::fs::write(tmp.join("budget-v1.json"), emptied.to_string()).unwrap();
    let o = run(&["verify-vectors", tmp.to_str().unwrap()], "");
    assert_one_line_error(&o, "input: budget-v1.json: holds no vector");
}

#[test]
fn django_seal_and_open() {
    let secret = "django-insecure-test-secret-for-the-cli";
    let o = run(
        &["django", "seal", "--secret", secret, "--now", "1767225600"],
        r#"{"_auth_user_id":"42","cart":[1,2]}"#,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let cookie = stdout(&o);
    let opened = run(
        &[
            "django",
            "open",
            "--secret",
            secret,
            "--now",
            "1767225660",
            &cookie,
        ],
        "",
    );
    let json = success_json(&opened);
    // As a browser shows it: Django binds no name, which is dropped.
    let pasted = format!("sessionid={cookie}");
    let args = ["django", "open", "--secret", secret, "--now", "1767225660"];
    assert_eq!(
        success_json(&run(&[&args[..], &[&pasted]].concat(), "")),
        json
    );
    assert_eq!(
        json,
        serde_json::json!({"_auth_user_id": "42", "cart": [1, 2]})
    );
    // A whole Cookie header: the cookie named --name, default "sessionid".
    let header = format!("Cookie: csrftoken=x; sessionid={cookie}; theme=dark");
    assert_eq!(
        success_json(&run(&[&args[..], &[&header]].concat(), "")),
        json
    );
    let renamed = header.replace("sessionid=", "sid=");
    assert_eq!(
        success_json(&run(
            &[&args[..], &["--name", "sid", &renamed]].concat(),
            ""
        )),
        json
    );
    assert_usage_error(&run(&[&args[..], &[&renamed]].concat(), ""), &[&cookie]);
    let wrong = run(
        &[
            "django",
            "open",
            "--secret",
            "another-secret",
            "--now",
            "1767225660",
            &cookie,
        ],
        "",
    );
    // A refused cookie is a status-3 error of the library's kind (neither
    // a usage error, 2, nor a failure of the tool's own, 1).
    assert_refused(&wrong, "authentication-failed: cannot open Django cookie");
    let fallback = run(
        &[
            "django",
            "open",
            "--secret",
            "another-secret",
            "--fallback-secret",
            secret,
            "--now",
            "1767225660",
            &cookie,
        ],
        "",
    );
    assert!(fallback.status.success(), "{}", stderr(&fallback));
    let expired = run(
        &[
            "django",
            "open",
            "--secret",
            secret,
            "--now",
            "1767225700",
            "--max-age",
            "60",
            &cookie,
        ],
        "",
    );
    // 100 s after signing, past --max-age 60 (and no own expiry): idle.
    assert_refused(&expired, "expired-idle: cannot open Django cookie");
    let empty = run(&["django", "open", "--secret", "", &cookie], "");
    assert_one_line_error(&empty, "invalid-key: bad secret");
    assert!(
        stderr(&empty).contains("Django secret must not be empty"),
        "{}",
        stderr(&empty)
    );
}

#[test]
fn open_shows_values_without_a_json_form_as_cbor_and_the_rest_as_json() {
    use sealed_session::{FixedClock, KeyRing, MasterKey, Sealer};
    let key = keygen();
    let sealer = Sealer::builder(KeyRing::new(MasterKey::from_base64(&key).unwrap()))
        .cookie_name("sid")
        .clock(std::sync::Arc::new(FixedClock::new(1_767_225_600)))
        .build()
        .unwrap();
    let mut session = sealer.new_session().unwrap();
    session.insert("user", "ada").unwrap();
    // A map with integer keys: CBOR has it, JSON does not.
    let by_number: std::collections::BTreeMap<u32, u8> = [(1, 2)].into();
    session.insert("by_number", &by_number).unwrap();
    // Looks like the markers, but is an ordinary value.
    session
        .insert("cbor_hex", serde_json::json!({"overflowed": true}))
        .unwrap();
    session.insert("not_a_number", [1.0, f64::NAN]).unwrap();
    // Repeated map keys (JSON would keep one), written as raw CBOR
    // through a type that serializes that way.
    struct Twice;
    impl serde::Serialize for Twice {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(Some(2))?;
            map.serialize_entry("k", &1)?;
            map.serialize_entry("k", &2)?;
            map.end()
        }
    }
    session.insert("twice", &Twice).unwrap();
    let token = sealer.seal(&mut session).unwrap();
    let opened = open_sid(&key, &token);
    assert_eq!(
        success_json(&opened),
        serde_json::json!({
            "user": "ada",
            "cbor_hex": {"overflowed": true},
            "_cbor_hex": {
                "by_number": "a10102",
                "not_a_number": "82f93c00f97e00",
                "twice": "a2616b01616b02",
            },
        })
    );
}

#[test]
fn open_needs_no_budget_even_for_a_very_long_cookie_name() {
    let key = keygen();
    let name = "n".repeat(4050);
    // Sealing under that name cannot fit the default budget...
    let sealed = run(&["seal", "--key", &key, "--name", &name], r#"{"a":1}"#);
    assert_usage_error(&sealed, &[&name]);
    assert!(stderr(&sealed).contains("too-large"), "{}", stderr(&sealed));
    // ...nor any budget, as no browser would keep such a cookie; but a
    // token bound to it (sealed outside any cookie) opens.
    let larger = run(
        &["seal", "--key", &key, "--name", &name, "--budget", "100000"],
        r#"{"a":1}"#,
    );
    assert_one_line_error(&larger, "too-large");
    let token = {
        use sealed_session::{KeyRing, MasterKey, Sealer};
        let sealer = Sealer::builder(KeyRing::new(MasterKey::from_base64(&key).unwrap()))
            .cookie_name(&name)
            .budget(100_000)
            .build()
            .unwrap();
        let mut session = sealer.new_session().unwrap();
        session.insert("a", 1).unwrap();
        sealer.seal(&mut session).unwrap()
    };
    let opened = run(&["open", "--key", &key, "--name", &name, &token], "");
    assert_eq!(success_json(&opened)["a"], 1);
}

#[test]
fn open_meta_shows_the_session_id_times_expiry_and_priorities() {
    use sealed_session::{Expiry, FixedClock, KeyRing, MasterKey, Priority, Sealer};
    let key = keygen();
    let clock = std::sync::Arc::new(FixedClock::new(1_767_225_000));
    let sealer = Sealer::builder(KeyRing::new(MasterKey::from_base64(&key).unwrap()))
        .cookie_name("sid")
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut session = sealer.new_session().unwrap();
    session
        .insert_with_priority("user", "ada", Priority::Critical)
        .unwrap();
    session
        .insert_with_priority("cart", [1, 2], Priority::Low)
        .unwrap();
    session.set_expiry(Expiry::Idle(std::time::Duration::from_secs(600)));
    let created_at = session.created_at();
    // Sealed later than created: the two times differ.
    clock.set(1_767_225_600);
    let token = sealer.seal(&mut session).unwrap();
    let meta = |extra: &[&str]| success_json(&open_sid_with(&key, &token, extra));
    assert_eq!(
        meta(&["--meta"]),
        serde_json::json!({
            "session": {
                "id": session.id().to_string(),
                "created_at": created_at,
                "issued_at": 1_767_225_600,
                // Its own 600-second idle window ends it first.
                "cookie_expires_at": 1_767_226_200,
                "compressed": false,
                "expiry": {"idle": 600},
                "opened_with_fallback": false,
                "refresh_due": false,
                "priorities": {"user": "critical", "cart": "low"},
                "overflow_key": null,
            },
            "entries": {"user": "ada", "cart": [1, 2]},
        })
    );
    assert_eq!(created_at, 1_767_225_000);
    // Half the session's own 600-second idle window later, a server would
    // re-seal it.
    let args = ["open", "--key", &key, "--name", "sid", "--meta"];
    let later = run(&[&args[..], &["--now", "1767225900", &token]].concat(), "");
    assert_eq!(success_json(&later)["session"]["refresh_due"], true);
    // Unless the server's refresh fraction is larger; with 0 (Django's
    // way) it is due a second after it was sealed.
    let due = |now: &str, fraction: &[&str]| {
        let o = run(&[&args[..], fraction, &["--now", now, &token]].concat(), "");
        success_json(&o)["session"]["refresh_due"].clone()
    };
    assert_eq!(due("1767225900", &["--refresh-fraction", "0.9"]), false);
    assert_eq!(due("1767225601", &[]), false);
    assert_eq!(due("1767225601", &["--refresh-fraction", "0"]), true);
    // A compressed payload says so.
    let squeezing = Sealer::builder(KeyRing::new(MasterKey::from_base64(&key).unwrap()))
        .cookie_name("sid")
        .clock(clock.clone())
        .compression(sealed_session::Compression::Above(0))
        .build()
        .unwrap();
    // Compressed only where it helps: a repetitive value.
    let mut repetitive = squeezing.new_session().unwrap();
    repetitive.insert("notes", "ab".repeat(300)).unwrap();
    let compressed = squeezing.seal(&mut repetitive).unwrap();
    let o = open_sid_with(&key, &compressed, &["--meta"]);
    assert_eq!(success_json(&o)["session"]["compressed"], true);
    // Also over the default 4096-character token limit, raised to open it.
    let long_limits = sealed_session::Limits::default().with_max_token_len(16_384);
    let roomy = Sealer::builder(KeyRing::new(MasterKey::from_base64(&key).unwrap()))
        .cookie_name("sid")
        .clock(clock.clone())
        .compression(sealed_session::Compression::Above(0))
        .limits(long_limits)
        .budget(16_384)
        .build()
        .unwrap();
    let mut hexadecimal = roomy.new_session().unwrap();
    // Hex digits of a varying number: half as long once compressed.
    let digits: String = (0u64..1000)
        .map(|i| format!("{:08x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32))
        .collect();
    hexadecimal.insert("digits", &digits).unwrap();
    let long = roomy.seal(&mut hexadecimal).unwrap();
    assert!(long.len() > 4096, "{}", long.len());
    let o = open_sid_with(&key, &long, &["--meta", "--max-token-len", "16384"]);
    assert_eq!(success_json(&o)["session"]["compressed"], true);
    // Without the flag, the entries alone, as before.
    assert_eq!(
        meta(&[]),
        serde_json::json!({"user": "ada", "cart": [1, 2]})
    );

    session.set_expiry(Expiry::At(1_767_300_000));
    let token = sealer.seal(&mut session).unwrap();
    let o = open_sid_with(&key, &token, &["--meta"]);
    assert_eq!(
        success_json(&o)["session"]["expiry"],
        serde_json::json!({"at": 1_767_300_000})
    );
    session.set_expiry(Expiry::BrowserSession);
    let token = sealer.seal(&mut session).unwrap();
    let o = open_sid_with(&key, &token, &["--meta"]);
    assert_eq!(success_json(&o)["session"]["expiry"], "browser-session");
}

#[test]
fn a_pasted_name_value_pair_gives_the_cookie_name_and_a_wrong_name_is_hinted_at() {
    let key = keygen();
    let sealed = run(
        &[
            "seal",
            "--key",
            &key,
            "--name",
            "__Host-sid",
            "--now",
            "1767225600",
        ],
        r#"{"user":"ada"}"#,
    );
    assert!(sealed.status.success(), "{}", stderr(&sealed));
    let token = stdout(&sealed);
    let pasted = format!("__Host-sid={token}");
    let open = |extra: &[&str], cookie: &str| open_a_minute_later(&key, extra, cookie);
    let expected = serde_json::json!({"user": "ada"});
    assert_eq!(success_json(&open(&[], &pasted)), expected);
    assert_eq!(
        success_json(&open(&["--name", "__Host-sid"], &pasted)),
        expected
    );
    // From stdin too, with the newline of a pasted line.
    let args = ["open", "--key", &key, "--now", "1767225660", "-"];
    assert_eq!(success_json(&run(&args, &format!("{pasted}\n"))), expected);
    // A --name that contradicts the pasted name is a usage error.
    let o = open(&["--name", "sid"], &pasted);
    assert_usage_error(&o, &[&token]);
    assert!(stderr(&o).contains("--name"), "{}", stderr(&o));
    // The bare value under the default name: refused, and the message
    // says which name was tried and where to give another.
    let o = open(&[], &token);
    assert_refused(&o, "authentication-failed");
    assert!(
        stderr(&o).contains("\"session\"") && stderr(&o).contains("--name"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains(&token), "{}", stderr(&o));
    // inspect reads the pair as well.
    let header = success_json(&run(&["inspect", "--json", &pasted], ""));
    let key_id = stdout(&run(&["key-id", "--key", &key], ""));
    assert_eq!(header["key_id"], key_id.as_str());
}

#[test]
fn a_whole_cookie_header_gives_the_cookie_of_the_name_wanted() {
    let key = keygen();
    let seal = |name: &str| {
        let args = ["seal", "--key", &key, "--name", name, "--now", "1767225600"];
        let o = run(&args, r#"{"user":"ada"}"#);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let (session, sid) = (seal("session"), seal("__Host-sid"));
    let header = format!("lang=en; session={session};__Host-sid={sid} ; theme=dark");
    let open = |extra: &[&str], cookie: &str| open_a_minute_later(&key, extra, cookie);
    let expected = serde_json::json!({"user": "ada"});
    // The default name, then --name; with or without "Cookie:", from stdin.
    assert_eq!(success_json(&open(&[], &header)), expected);
    assert_eq!(
        success_json(&open(&["--name", "__Host-sid"], &header)),
        expected
    );
    let with_prefix = format!("Cookie: {header}");
    assert_eq!(
        success_json(&open(&["--name", "__Host-sid"], &with_prefix)),
        expected
    );
    let args = ["open", "--key", &key, "--now", "1767225660", "-"];
    assert_eq!(
        success_json(&run(&args, &format!("cookie:{header}\n"))),
        expected
    );
    // A Set-Cookie line, as `curl -i` shows it (or `curl -v`, after "< "):
    // its pair.
    let set_cookie = format!("Set-Cookie: __Host-sid={sid}; Path=/; Secure; HttpOnly");
    assert_eq!(success_json(&open(&[], &set_cookie)), expected);
    let verbose = format!("< set-cookie: __Host-sid={sid}; Path=/");
    assert_eq!(success_json(&open(&[], &verbose)), expected);
    // The pair taken is the one named: "session" sealed the other token,
    // which does not open under "__Host-sid".
    let swapped = format!("session={sid}; __Host-sid={session}");
    assert_refused(
        &open(&["--name", "__Host-sid"], &swapped),
        "authentication-failed",
    );
    // No such cookie, or two of them: usage errors that quote no value.
    let o = open(&["--name", "id"], &header);
    assert_usage_error(&o, &[&session, &sid, "dark"]);
    assert!(
        stderr(&o).contains("no cookie named \"id\""),
        "{}",
        stderr(&o)
    );
    let twice = format!("session={session}; a=1; session={session}");
    let o = open(&[], &twice);
    assert_usage_error(&o, &[&session]);
    assert!(stderr(&o).contains("2 cookies named"), "{}", stderr(&o));
    // The cookie is taken as a server takes it (FORMAT.md §14.4): a
    // quoted value, lines a proxy joined with ", ", and a name planted
    // with a leading U+2000 (which browsers let any host set beside a
    // `__Host-` cookie, and a server ignores) left out.
    let sid_flag = ["--name", "__Host-sid"];
    let quoted = format!("theme=dark; __Host-sid=\"{sid}\"");
    assert_eq!(success_json(&open(&sid_flag, &quoted)), expected);
    let joined = format!("lang=en; __Host-sid={sid}, theme=dark");
    assert_eq!(success_json(&open(&sid_flag, &joined)), expected);
    let planted = format!("lang=en; \u{2000}__Host-sid={session}; __Host-sid={sid}");
    assert_eq!(success_json(&open(&sid_flag, &planted)), expected);
    // inspect takes the named one too.
    let inspect = |extra: &[&str]| {
        let o = run(
            &[&["inspect", "--json"][..], extra, &[&header]].concat(),
            "",
        );
        success_json(&o)["issued_at"].clone()
    };
    assert_eq!(inspect(&[]), 1_767_225_600);
    assert_eq!(inspect(&["--name", "__Host-sid"]), 1_767_225_600);
    assert_usage_error(
        &run(&["inspect", "--name", "x", &header], ""),
        &[&session, &sid],
    );
}

#[cfg(unix)]
#[test]
fn a_fallback_key_variable_that_is_not_utf8_is_a_usage_error_not_an_empty_list() {
    use std::os::unix::ffi::OsStrExt;
    let (old, new) = (keygen(), keygen());
    let token = stdout(&run(&["seal", "--key", &old], r#"{"a":1}"#));
    let mut list = old.into_bytes();
    list.push(0xff);
    let o = bin()
        .args(["open", &token])
        .env("SEALED_SESSION_KEY", &new)
        .env(
            "SEALED_SESSION_FALLBACK_KEYS",
            std::ffi::OsStr::from_bytes(&list),
        )
        .output()
        .unwrap();
    assert_usage_error(&o, &[&new]);
    assert!(
        stderr(&o).contains("SEALED_SESSION_FALLBACK_KEYS is not UTF-8"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn open_takes_the_servers_time_policy_none_included() {
    let key = keygen();
    let sealed = run(
        &["seal", "--key", &key, "--now", "1767225600"],
        r#"{"a":1}"#,
    );
    let token = stdout(&sealed);
    let open_at = |now: u64, extra: &[&str]| {
        let now = now.to_string();
        let args = ["open", "--key", &key, "--now", &now];
        run(&[&args[..], extra, &[&token]].concat(), "")
    };
    let expected = serde_json::json!({"a": 1});
    // 20 days on: past the default idle timeout (two weeks), inside the
    // default lifetime (30 days).
    let twenty_days = 1_767_225_600 + 20 * 86_400;
    assert_refused(&open_at(twenty_days, &[]), "expired-idle");
    assert_eq!(
        success_json(&open_at(twenty_days, &["--max-idle", "none"])),
        expected
    );
    // 40 days on: past the lifetime too, unless there is none.
    let forty_days = 1_767_225_600 + 40 * 86_400;
    assert_refused(
        &open_at(forty_days, &["--max-idle", "none"]),
        "expired-lifetime",
    );
    let no_limits = ["--max-idle", "none", "--max-lifetime", "none"];
    assert_eq!(success_json(&open_at(forty_days, &no_limits)), expected);
    // Sealed 100 s ahead of this clock: beyond the default skew (60 s).
    let early = 1_767_225_500;
    assert_refused(&open_at(early, &[]), "issued-in-future");
    assert_eq!(
        success_json(&open_at(early, &["--clock-skew", "120"])),
        expected
    );
    // Neither seconds nor "none": a usage error naming the flag.
    let o = open_at(early, &["--max-idle", "never"]);
    assert_usage_error(&o, &["never"]);
    assert!(stderr(&o).contains("--max-idle"), "{}", stderr(&o));
}

/// The overflow vectors whose store holds a blob, with that blob.
fn overflow_vectors_with_a_blob() -> Vec<(serde_json::Value, String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-vectors");
    let text = std::fs::read_to_string(dir.join("overflow-v1.json")).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut chosen = Vec::new();
    for v in file["vectors"].as_array().unwrap() {
        let store = v["store"].as_object().unwrap();
        if store.len() != 1 {
            continue;
        }
        let (key, blob) = store.iter().next().unwrap();
        chosen.push((v.clone(), key.clone(), blob.as_str().unwrap().to_owned()));
    }
    chosen
}

/// `open` of an overflow vector's cookie at its time, with its keys and
/// limits.
fn open_overflow_vector(v: &serde_json::Value, extra: &[&str], stdin: &str) -> Output {
    let primary = format!("hex:{}", v["keys"]["primary"].as_str().unwrap());
    let now = v["now"].to_string();
    let mut args = vec!["open", "--key", &primary, "--now", &now];
    let limits: Vec<(String, String)> = (v["limits"].as_object().unwrap().iter())
        .map(|(name, value)| (format!("--{}", name.replace('_', "-")), value.to_string()))
        .collect();
    for (flag, value) in &limits {
        args.extend([flag.as_str(), value.as_str()]);
    }
    let fallbacks: Vec<String> = (v["keys"]["fallbacks"].as_array().unwrap().iter())
        .map(|k| format!("hex:{}", k.as_str().unwrap()))
        .collect();
    for fallback in &fallbacks {
        args.extend(["--fallback-key", fallback]);
    }
    args.extend_from_slice(extra);
    args.push(v["token"].as_str().unwrap());
    run(&args, stdin)
}

#[test]
fn open_with_blob_loads_the_overflow_vectors_as_a_server_does() {
    let vectors = overflow_vectors_with_a_blob();
    let (mut loaded, mut rejected) = (0, 0);
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    for (v, store_key, blob) in &vectors {
        let name = v["name"].as_str().unwrap();
        // Without the blob, the overflowed keys are listed; --meta names
        // the store key the blob is read from.
        let meta = success_json(&open_overflow_vector(v, &["--meta"], ""));
        assert_eq!(
            meta["session"]["overflow_key"],
            store_key.as_str(),
            "{name}"
        );
        assert!(meta["entries"]["_overflowed"].is_array(), "{name}");
        // From a file with a trailing newline, as `redis-cli GET` saves it.
        let path = dir.join(name);
        std::fs::write(&path, format!("{blob}\n")).unwrap();
        let with_file = open_overflow_vector(v, &["--blob", path.to_str().unwrap()], "");
        let from_stdin = open_overflow_vector(v, &["--blob", "-"], blob);
        for o in [&with_file, &from_stdin] {
            match v["expected_error"].as_str() {
                None => {
                    let want: serde_json::Map<_, _> = (v["expected_entries"].as_array().unwrap())
                        .iter()
                        .map(|e| (e["key"].as_str().unwrap().to_owned(), e["value"].clone()))
                        .collect();
                    assert_eq!(success_json(o), serde_json::Value::Object(want), "{name}");
                }
                Some(error) => {
                    assert_eq!(error, "store-rejected", "{name}");
                    assert_refused(o, "store: --blob: entry rejected");
                }
            }
        }
        match v["expected_error"] {
            serde_json::Value::Null => loaded += 1,
            _ => rejected += 1,
        }
    }
    // Both outcomes were exercised, and the limits were applied both
    // ways (an entry count and a length, at and over the limit).
    assert!(
        loaded >= 7 && rejected >= 7,
        "{loaded} loaded, {rejected} rejected"
    );

    // A cookie that references no blob, and two inputs on one stdin, are
    // usage errors.
    let key = keygen();
    let sealed = run(
        &["seal", "--key", &key, "--now", "1767225600"],
        r#"{"a":1}"#,
    );
    let token = stdout(&sealed);
    assert_error_line(
        &open_a_minute_later(&key, &["--blob", "-"], &token),
        2,
        "usage: --blob: the cookie references no overflow blob",
    );
    let (v, _, blob) = &vectors[0];
    let primary = format!("hex:{}", v["keys"]["primary"].as_str().unwrap());
    assert_error_line(
        &run(&["open", "--key", &primary, "--blob", "-", "-"], blob),
        2,
        "usage: the cookie and --blob cannot both be read from stdin",
    );
    // An empty blob is what `redis-cli GET` prints for a key that is
    // gone: missing, as a server finds it, not altered. One in quotes (as
    // `redis-cli` prints it without --raw) is refused with a hint.
    for gone in ["\n", "(nil)\n"] {
        assert_refused(
            &open_overflow_vector(v, &["--blob", "-"], gone),
            "store: --blob: entry missing or expired",
        );
    }
    let quoted = open_overflow_vector(v, &["--blob", "-"], &format!("\"{blob}\"\n"));
    assert_refused(&quoted, "store: --blob: entry rejected");
    assert!(
        stderr(&quoted).contains("redis-cli --raw"),
        "{}",
        stderr(&quoted)
    );
    // A blob file that is not there is the tool's own failure.
    assert_one_line_error(
        &open_overflow_vector(v, &["--blob", "/nonexistent/blob"], ""),
        "input: cannot read the overflow blob",
    );
}

/// Keys and values come from cookies: what a terminal would act on (C1
/// controls, DEL, bidirectional overrides, escape sequences) is printed
/// escaped, in JSON that still reads back as the same values, and in the
/// lines about dropped entries.
#[test]
fn text_a_terminal_would_act_on_is_printed_escaped() {
    let key = keygen();
    let hostile = serde_json::json!({
        "who": "\u{202e}evil\u{202c}",
        "title": "\u{9d}0;pwned\u{9c}",
        "del": "a\u{7f}b",
        "csi\u{9b}2K": "\u{1b}[2K\u{2028}",
        "marks": "\u{200f}\u{2067}\u{61c}",
    });
    let sealed = run(&["seal", "--key", &key], &hostile.to_string());
    let opened = run(&["open", "--key", &key, "--meta", &stdout(&sealed)], "");
    let text = stdout(&opened);
    let raws = [
        '\u{202e}', '\u{9d}', '\u{9c}', '\u{7f}', '\u{9b}', '\u{1b}', '\u{2028}',
    ];
    for raw in raws.into_iter().chain(['\u{200f}', '\u{2067}', '\u{61c}']) {
        assert!(!text.contains(raw), "{raw:?} in {text:?}");
    }
    for escaped in [
        r"\u202e", r"\u009d", r"\u007f", r"\u009b", r"\u001b", r"\u2028", r"\u200f", r"\u2067",
        r"\u061c",
    ] {
        assert!(text.contains(escaped), "{escaped} not in {text}");
    }
    let json = success_json(&opened);
    assert_eq!(json["entries"], hostile);
    // Without --meta, the entries alone, escaped alike.
    let plain = run(&["open", "--key", &key, &stdout(&sealed)], "");
    assert!(!stdout(&plain).contains('\u{9b}'), "{:?}", stdout(&plain));
    assert_eq!(success_json(&plain), hostile);
    assert_eq!(json["session"]["priorities"]["csi\u{9b}2K"], "normal");

    // A dropped entry's key on stderr.
    let big = serde_json::json!({
        "a": 1,
        "x\u{1b}]0;pwned\u{7}": "y".repeat(5000),
        r"fake\u{1b}": "z".repeat(5000),
    });
    let o = run(&["seal", "--key", &key], &big.to_string());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains('\u{1b}'), "{:?}", stderr(&o));
    assert!(
        stderr(&o).contains(r"dropped: x\u{1b}]0;pwned\u{7} (normal priority"),
        "{}",
        stderr(&o)
    );
    // A backslash is doubled: the text "\u{1b}" cannot pass for an escape.
    assert!(
        stderr(&o).contains(r"dropped: fake\\u{1b} (normal priority"),
        "{}",
        stderr(&o)
    );

    // A Django cookie's values too.
    let secret = ["--secret", "django-insecure-terminal-test-secret"];
    let sealed = run(
        &[&["django", "seal"][..], &secret].concat(),
        &hostile.to_string(),
    );
    let cookie = stdout(&sealed);
    let opened = run(
        &[&["django", "open"][..], &secret, &[cookie.as_str()]].concat(),
        "",
    );
    assert!(!stdout(&opened).contains('\u{9d}'), "{}", stdout(&opened));
    assert_eq!(success_json(&opened), hostile);
}

/// `open --reseal` moves one cookie to a new key by hand: the same session
/// (id, created-at, expiry, entries, priorities), issued at --now, under
/// the new key alone; compressed if it was. Not with --meta or --blob, nor
/// for a cookie whose entries live partly in an overflow blob.
#[test]
fn open_reseal_moves_a_cookie_to_the_new_key() {
    let (old, new) = (keygen(), keygen());
    let entries = format!(
        r#"{{"user":"ada","notes":"{}","cart":[1,2]}}"#,
        "ab".repeat(200)
    );
    let seal = |extra: &[&str]| {
        let args = ["seal", "--key", &old, "--now", "1767225600"];
        let o = run(
            &[&args[..], &["--priority", "user=critical"], extra].concat(),
            &entries,
        );
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let meta = |key: &str, token: &str| {
        let o = run(
            &["open", "--key", key, "--meta", "--now", "1767225700", token],
            "",
        );
        success_json(&o)
    };
    for compress in [false, true] {
        let token = seal(if compress { &["--compress"] } else { &[] });
        let args = ["open", "--reseal", "--key", &new, "--fallback-key", &old];
        let o = run(&[&args[..], &["--now", "1767225660", &token]].concat(), "");
        assert!(o.status.success(), "{}", stderr(&o));
        let resealed = stdout(&o);
        assert_ne!(resealed, token);
        let (before, after) = (meta(&old, &token), meta(&new, &resealed));
        assert_eq!(after["entries"], before["entries"]);
        for field in ["id", "created_at", "expiry", "priorities", "compressed"] {
            assert_eq!(after["session"][field], before["session"][field], "{field}");
        }
        assert_eq!(after["session"]["compressed"], compress);
        assert_eq!(after["session"]["issued_at"], 1_767_225_660);
        assert_eq!(after["session"]["opened_with_fallback"], false);
        // The old key alone no longer opens it.
        let o = run(
            &["open", "--key", &old, "--now", "1767225700", &resealed],
            "",
        );
        assert_refused(&o, "unknown-key-id");
    }
    // Under the key it was sealed with, too: issued again.
    let token = seal(&[]);
    let args = ["open", "--reseal", "--key", &old, "--now", "1767225660"];
    let again = stdout(&run(&[&args[..], &[token.as_str()]].concat(), ""));
    assert_eq!(meta(&old, &again)["session"]["issued_at"], 1_767_225_660);
    let o = run(&["open", "--reseal", "--meta", "--key", &new, &token], "");
    assert_usage_error(&o, &[&token]);

    let (v, _, _) = &overflow_vectors_with_a_blob()[0];
    assert_error_line(
        &open_overflow_vector(v, &["--reseal"], ""),
        2,
        "usage: --reseal: the cookie references an overflow blob",
    );
}

/// A `set_expiry` date without an offset (`USE_TZ = False`) is local time:
/// read at `--naive-dates-offset`, or else at +14:00, never later than
/// Django's end.
#[test]
fn django_open_reads_dates_without_an_offset_at_the_given_one() {
    let secret = "django-insecure-test-secret-for-the-cli";
    // 09:30 local on 2026-01-01; the cookie is opened at 00:01 UTC.
    let sealed = run(
        &["django", "seal", "--secret", secret, "--now", "1767225600"],
        r#"{"_session_expiry":"2026-01-01T09:30:00","a":1}"#,
    );
    let cookie = stdout(&sealed);
    let open = |extra: &[&str]| {
        let args = ["django", "open", "--secret", secret, "--now", "1767225660"];
        run(&[&args[..], extra, &[&cookie]].concat(), "")
    };
    // At +09:29 it ends at 00:01 UTC: at or past its end, expired.
    for offset in ["+09:00", "-05:00", "+09:28", "+0928", "+09", "Z", "-00"] {
        let opened = open(&["--naive-dates-offset", offset]);
        assert_eq!(success_json(&opened)["a"], 1, "{offset}");
    }
    let refused: [&[&str]; 4] = [
        &[],
        &["--naive-dates-offset", "+09:29"],
        &["--naive-dates-offset", "+0929"],
        &["--naive-dates-offset", "+10"],
    ];
    for refused in refused {
        assert_refused(&open(refused), "expired-session");
    }
    let bad = [
        "9",
        "+9:00",
        "09:00",
        "+26:00",
        "+09:60",
        "+0:900",
        "+09:0",
        "+090",
        "+09:00:00",
        "+\u{665}\u{669}",
        "ZZ",
    ];
    for bad in bad {
        assert_usage_error(&open(&["--naive-dates-offset", bad]), &[]);
    }
}

/// Limits too small for any session are a usage error naming the flag,
/// not the `limit-exceeded` of a refused cookie.
#[test]
fn limits_too_small_for_any_session_name_their_flag() {
    let key = keygen();
    let token = stdout(&run(&["seal", "--key", &key], r#"{"a":1}"#));
    for (flag, value) in [("--max-token-len", "0"), ("--max-decompressed", "0")] {
        let o = run(&["open", "--key", &key, flag, value, &token], "");
        assert_usage_error(&o, &[&token, &key]);
        assert!(stderr(&o).contains(flag), "{}", stderr(&o));
    }
}

#[test]
fn keygen_out_writes_a_new_file_only_its_owner_reads_and_never_overwrites() {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("k1");
    let path_text = path.to_str().unwrap();
    let o = run(&["keygen", "--out", path_text], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "the key is not printed");
    let written = std::fs::read_to_string(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The key reads back, and stderr gave its id.
    let id = run(&["key-id", "--key-file", path_text], "");
    assert!(stderr(&o).ends_with(&stdout(&id)), "{}", stderr(&o));

    let again = run(&["keygen", "--out", path_text], "");
    assert_one_line_error(&again, "output: the key file already exists");
    assert!(!stderr(&again).contains(path_text));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), written);
}

#[test]
fn flag_values_no_sealer_can_take_are_usage_errors() {
    let key = keygen();
    let token = stdout(&run(&["seal", "--key", &key], r#"{"a":1}"#));
    for flags in [
        &["--max-idle", "0"][..],
        &["--max-lifetime", "0"],
        &["--name", "a b"],
    ] {
        let o = run(
            &[&["open", "--key", &key][..], flags, &[&token]].concat(),
            "",
        );
        assert_usage_error(&o, &[&token]);
    }
    let o = run(&["seal", "--key", &key, "--name", ""], r#"{"a":1}"#);
    assert_usage_error(&o, &[]);
    assert!(stderr(&o).contains("invalid-cookie"), "{}", stderr(&o));

    // A negative refresh fraction is clamped, as the server clamps it; a
    // number that is none is refused.
    let o = run(
        &[
            "open",
            "--key",
            &key,
            "--meta",
            "--refresh-fraction",
            "-1",
            &token,
        ],
        "",
    );
    assert_eq!(success_json(&o)["session"]["refresh_due"], true);
    for not_a_number in ["NaN", "inf"] {
        let o = run(
            &[
                "open",
                "--key",
                &key,
                "--refresh-fraction",
                not_a_number,
                &token,
            ],
            "",
        );
        assert_usage_error(&o, &[&token]);
        assert!(stderr(&o).contains("--refresh-fraction"), "{}", stderr(&o));
    }
}

#[test]
fn a_quoted_cookie_value_opens_in_every_pasted_form() {
    let key = keygen();
    let token = stdout(&run(&["seal", "--key", &key], r#"{"a":1}"#));
    for pasted in [
        format!("a=1; session=\"{token}\""),
        format!("session=\"{token}\""),
        format!("Set-Cookie: session=\"{token}\"; Path=/"),
        format!("\"{token}\""),
    ] {
        let o = run(&["open", "--key", &key, &pasted], "");
        assert_eq!(success_json(&o), serde_json::json!({"a": 1}), "{pasted}");
        let o = run(&["inspect", &pasted], "");
        assert!(o.status.success(), "{pasted}: {}", stderr(&o));
    }
    // One pair only, as a server removes.
    let o = run(&["open", "--key", &key, &format!("\"\"{token}\"\"")], "");
    assert_refused(&o, "malformed");
}

#[test]
fn an_unknown_key_id_is_named_with_the_ids_of_the_keys_given() {
    let key = keygen();
    let other = keygen();
    let retired = keygen();
    let id = |k: &str| stdout(&run(&["key-id", "--key", k], ""));
    let token = stdout(&run(&["seal", "--key", &key], r#"{"a":1}"#));
    let o = run(
        &["open", "--key", &other, "--fallback-key", &retired, &token],
        "",
    );
    assert_refused(&o, "unknown-key-id");
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "the cookie's is {}, the keys given have {}, {}",
            id(&key),
            id(&other),
            id(&retired)
        )),
        "{err}"
    );
    assert!(!err.contains(&key) && !err.contains(&other), "{err}");
}
