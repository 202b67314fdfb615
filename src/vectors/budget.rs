//! The size-budget vectors (`budget-v1.json`): which entries a save under
//! a `Set-Cookie` budget drops, in which order, and the header it writes.

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

use crate::{Error, FixedClock, KeyRing, Limits, MasterKey, Priority, Sealer};

use super::{default_policy, key_a, Outcome, NOW};

/// Name of the file holding the size-budget vectors.
pub const BUDGET_FILE: &str = "budget-v1.json";

/// The size-budget vector file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BudgetFile {
    /// What the file pins.
    pub description: String,
    /// The command that regenerates it.
    pub generator: String,
    /// The cases.
    pub cases: Vec<BudgetCase>,
}

/// One budget case. The session is opened at [`NOW`] with an idle timeout
/// of 3600 s and a lifetime of 86400 s, default cookie attributes
/// (`Max-Age=3600`), no compression, no overflow store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BudgetCase {
    /// Unique name.
    pub name: String,
    /// What the case shows.
    pub description: String,
    /// The cookie name.
    pub cookie_name: String,
    /// Bytes allowed for `Set-Cookie: <cookie string>`.
    pub budget: usize,
    /// The writer's `max_token_len`, when not the default 4096 (FORMAT.md
    /// 14.3: it bounds the effective budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_token_len: Option<usize>,
    /// Entries in insertion order; each value is a CBOR text string of
    /// `value_len` letters `a`.
    pub entries: Vec<BudgetEntry>,
    /// Keys dropped, in drop order.
    pub expected_dropped: Vec<String>,
    /// Keys kept, in insertion order.
    pub expected_kept: Vec<String>,
    /// Length of the header sent (`Set-Cookie: ` included), if it fits.
    pub expected_header_len: Option<usize>,
    /// `too-large` when even the critical entries do not fit.
    pub expected_error: Option<String>,
}

/// An entry of a budget case.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BudgetEntry {
    /// The key.
    pub key: String,
    /// `low`, `normal`, `high` or `critical`.
    pub priority: String,
    /// Length of the text value in bytes.
    pub value_len: usize,
    /// Bytes the entry takes in the payload (CBOR of key, priority, value).
    pub encoded_size: usize,
}

struct BudgetOutcome {
    dropped: Vec<String>,
    kept: Vec<String>,
    header_len: Option<usize>,
    error: Option<String>,
}

fn run_budget(
    cookie_name: &str,
    budget: usize,
    max_token_len: Option<usize>,
    entries: &[(String, Priority, usize)],
) -> Result<BudgetOutcome, Error> {
    let clock = Arc::new(FixedClock::new(NOW - 600));
    let policy = default_policy();
    let limits = max_token_len.map_or_else(Limits::default, |len| {
        Limits::default().with_max_token_len(len)
    });
    let sealer = Sealer::builder(KeyRing::new(MasterKey::from_hex(&key_a())?))
        .cookie_name(cookie_name)
        .limits(limits)
        .max_idle(Duration::from_secs(policy.max_idle.unwrap_or_default()))
        .max_lifetime(Duration::from_secs(policy.max_lifetime.unwrap_or_default()))
        .budget(budget)
        .clock(clock.clone())
        .random(Arc::new(crate::random::CountingRandom::default()))
        .build()?;
    let mut session = sealer.new_session()?;
    for (key, priority, len) in entries {
        session.insert_with_priority(key, "a".repeat(*len), *priority)?;
    }
    clock.set(NOW);
    Ok(match sealer.save(&mut session) {
        Ok(saved) => BudgetOutcome {
            dropped: saved.report.dropped.iter().map(|d| d.key.clone()).collect(),
            kept: session.keys().map(str::to_owned).collect(),
            header_len: Some(saved.report.header_len),
            error: None,
        },
        Err(e @ Error::TooLarge { .. }) => BudgetOutcome {
            dropped: Vec::new(),
            kept: session.keys().map(str::to_owned).collect(),
            header_len: None,
            error: Some(e.kind().to_owned()),
        },
        Err(e) => return Err(e),
    })
}

pub(super) fn budget_cases() -> Result<Vec<BudgetCase>, Error> {
    use Priority::*;
    let e = |k: &str, p: Priority, n: usize| (k.to_owned(), p, n);
    let mixed: Vec<(String, Priority, usize)> = {
        let mut v = vec![
            e("user_id", Critical, 8),
            e("csrf", Critical, 32),
            e("prefs", High, 200),
        ];
        for i in 0..40 {
            v.push(e(&format!("cart-{i:02}"), Low, 100 + (i * 7) % 60));
        }
        for i in 0..30 {
            v.push(e(&format!("seen-{i:02}"), Normal, 150));
        }
        v
    };
    type Spec = (
        &'static str,
        &'static str,
        usize,
        Vec<(String, Priority, usize)>,
    );
    let specs: Vec<Spec> = vec![
        (
            "fits",
            "Everything fits: nothing dropped.",
            4096,
            vec![e("user", Critical, 10), e("cart", Low, 500)],
        ),
        (
            "drop-largest-low",
            "Over budget: the largest low-priority entry goes first and is enough.",
            700,
            vec![
                e("user", Critical, 10),
                e("small-low", Low, 50),
                e("big-low", Low, 400),
                e("normal", Normal, 100),
            ],
        ),
        (
            "tie-break-by-key",
            "Equal priority and size: the key later in byte order goes first.",
            600,
            vec![
                e("user", Critical, 10),
                e("a", Low, 150),
                e("c", Low, 150),
                e("b", Low, 150),
            ],
        ),
        (
            "low-before-normal",
            "Every low entry is dropped before any normal one, even a larger normal.",
            520,
            vec![
                e("user", Critical, 10),
                e("n1", Normal, 300),
                e("l1", Low, 60),
                e("l2", Low, 70),
            ],
        ),
        (
            "high-after-normal",
            "High entries go only after every normal and low one.",
            420,
            vec![
                e("user", Critical, 10),
                e("h", High, 200),
                e("n", Normal, 20),
                e("l", Low, 20),
            ],
        ),
        (
            "critical-never-dropped",
            "Critical entries alone exceed the budget: too-large, nothing emitted.",
            300,
            vec![e("user", Critical, 300), e("l", Low, 10)],
        ),
        (
            "ten-kb-mixed",
            "About 10 KB of mixed priorities under the default 4096-byte budget.",
            4096,
            mixed,
        ),
        (
            "budget-above-token-limit",
            "An 8192-byte budget the whole session fits, but its token is over 4094 bytes, what the 4096 bytes browsers keep of name and value leave for the value after the name id (FORMAT.md 14.3; the writer's 4096-byte token limit is not the term that binds): the low entry goes.",
            8192,
            vec![
                e("user", Critical, 10),
                e("notes", Low, 3500),
                e("more", Normal, 2000),
            ],
        ),
    ];
    let mut cases = Vec::new();
    for (name, description, budget, entries) in &specs {
        cases.push(budget_case(name, description, *budget, entries)?);
    }
    // The boundary: a budget of exactly the header length fits, one byte
    // less drops.
    let boundary = vec![e("user", Critical, 10), e("l", Low, 100)];
    let exact = run_budget("id", 4096, None, &boundary)?
        .header_len
        .unwrap_or_default();
    cases.push(budget_case(
        "budget-exact",
        "The budget equals the header length: fits.",
        exact,
        &boundary,
    )?);
    cases.push(budget_case(
        "budget-one-short",
        "The budget is one byte short of the full header: the low entry goes.",
        exact - 1,
        &boundary,
    )?);
    // A long cookie name: browsers' limit on name and value together binds
    // before the token limit does.
    cases.push(named_budget_case(
        &"n".repeat(200),
        "name-and-value-limit",
        "An 8192-byte budget and a 200-byte cookie name: the whole session's token is within the 4096-byte token limit, but name and value together would exceed the 4096 bytes browsers keep (FORMAT.md 14.3): the low entry goes.",
        8192,
        None,
        &[
            e("user", Critical, 10),
            e("notes", Low, 2500),
            e("more", Normal, 400),
        ],
    )?);
    // A writer's own max_token_len below 4096 - len(name): that term of
    // the effective budget binds, which no case above shows.
    cases.push(named_budget_case(
        "id",
        "writer-token-limit",
        "An 8192-byte budget and the writer's max_token_len 3000, below the 4094 bytes the browsers' limit leaves for the value after the name id: the whole session's token (3507 bytes) fits both of those but not the writer's own token limit (FORMAT.md 14.3), so the low entry goes. A writer that leaves max_token_len out of the effective budget keeps it.",
        8192,
        Some(3000),
        &[
            e("user", Critical, 10),
            e("notes", Low, 2000),
            e("more", Normal, 500),
        ],
    )?);
    Ok(cases)
}

/// Encoded size of a budget entry whose value is a text of `value_len` bytes.
fn budget_entry_size(key: &str, value_len: usize) -> usize {
    crate::payload::entry_len(
        key.len(),
        crate::payload::head_len(value_len as u64) + value_len,
    )
}

/// Runs one budget case through the sealer, with the cookie named `id`,
/// and records its outcome.
fn budget_case(
    name: &str,
    description: &str,
    budget: usize,
    entries: &[(String, Priority, usize)],
) -> Result<BudgetCase, Error> {
    named_budget_case("id", name, description, budget, None, entries)
}

/// As [`budget_case`], with the cookie named `cookie_name` and the
/// writer's `max_token_len` (`None`: the default).
fn named_budget_case(
    cookie_name: &str,
    name: &str,
    description: &str,
    budget: usize,
    max_token_len: Option<usize>,
    entries: &[(String, Priority, usize)],
) -> Result<BudgetCase, Error> {
    let outcome = run_budget(cookie_name, budget, max_token_len, entries)?;
    Ok(BudgetCase {
        name: name.to_owned(),
        description: description.to_owned(),
        cookie_name: cookie_name.to_owned(),
        budget,
        max_token_len,
        entries: entries
            .iter()
            .map(|(k, p, n)| BudgetEntry {
                key: k.clone(),
                priority: p.name().to_owned(),
                value_len: *n,
                encoded_size: budget_entry_size(k, *n),
            })
            .collect(),
        expected_dropped: outcome.dropped,
        expected_kept: outcome.kept,
        expected_header_len: outcome.header_len,
        expected_error: outcome.error,
    })
}

/// Checks every budget case through the public API.
pub fn check_budget(file: &BudgetFile) -> Vec<Outcome> {
    file.cases
        .iter()
        .map(|case| Outcome {
            name: format!("budget/{}", case.name),
            failure: check_budget_case(case).err(),
        })
        .collect()
}

fn check_budget_case(case: &BudgetCase) -> Result<(), String> {
    let mut entries = Vec::new();
    for entry in &case.entries {
        let priority = entry
            .priority
            .parse::<Priority>()
            .map_err(|_| format!("bad priority {:?}", entry.priority))?;
        if budget_entry_size(&entry.key, entry.value_len) != entry.encoded_size {
            return Err(format!("entry {:?}: encoded size differs", entry.key));
        }
        entries.push((entry.key.clone(), priority, entry.value_len));
    }
    let outcome = run_budget(&case.cookie_name, case.budget, case.max_token_len, &entries)
        .map_err(|e| e.kind().to_owned())?;
    if outcome.dropped != case.expected_dropped {
        return Err(format!(
            "dropped {:?}, expected {:?}",
            outcome.dropped, case.expected_dropped
        ));
    }
    if outcome.kept != case.expected_kept {
        return Err("kept keys differ".into());
    }
    if outcome.header_len != case.expected_header_len {
        return Err(format!(
            "header length {:?}, expected {:?}",
            outcome.header_len, case.expected_header_len
        ));
    }
    if outcome.error != case.expected_error {
        return Err(format!(
            "error {:?}, expected {:?}",
            outcome.error, case.expected_error
        ));
    }
    Ok(())
}
