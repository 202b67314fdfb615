//! The whole mission in one run: seal, open, rotate keys, expire, compress,
//! fit a session into the cookie budget (dropping, then overflowing to a
//! server-side store) and revoke. Prints every cookie and its size, then
//! exits.
//!
//! Run with `cargo run --example walkthrough`.

use sealed_session::store::{MemoryRevocations, MemoryStore};
use sealed_session::{
    token, Compression, CookieAction, Error, Expiry, FixedClock, KeyRing, MasterKey, Priority,
    Sealer,
};
use std::sync::Arc;
use std::time::Duration;

const HOUR: u64 = 3600;

fn show(label: &str, cookie: &str) {
    let info = token::inspect(cookie).expect("our own token parses");
    println!(
        "  {label}: {} chars, key id {}, {}",
        cookie.len(),
        info.header.key_id,
        if info.header.is_compressed() {
            "compressed"
        } else {
            "uncompressed"
        }
    );
    let shown = if cookie.len() > 72 {
        format!("{}…", &cookie[..72])
    } else {
        cookie.to_owned()
    };
    println!("    {shown}");
}

fn cart_line(i: usize) -> serde_json::Value {
    serde_json::json!({"sku": format!("SKU-{:05}", 10_000 + i), "qty": 1 + i % 3, "price_cents": 1999 + i})
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // A fixed clock so the walk-through can move time forward.
    let clock = Arc::new(FixedClock::new(1_767_225_600));
    let old_key = MasterKey::generate()?;
    println!("1. Seal and open");
    let sealer = Sealer::builder(KeyRing::new(MasterKey::from_base64(&old_key.to_base64())?))
        .cookie_name("__Host-session")
        .max_idle(Duration::from_secs(HOUR))
        .max_lifetime(Duration::from_secs(24 * HOUR))
        .clock(clock.clone())
        .build()?;
    let mut session = sealer.new_session()?;
    session.insert_with_priority("user_id", 4217u64, Priority::Critical)?;
    session.insert_with_priority("csrf", "k3Jf9s0aQ1xZp2Lm", Priority::High)?;
    session.insert("locale", "fr-FR")?;
    // A one-time message for the page after the login's redirect.
    session.push_flash("messages", "Signed in")?;
    let cookie = sealer.seal(&mut session)?;
    show("login cookie", &cookie);
    let mut opened = sealer.open(&cookie)?;
    println!(
        "  opened: user_id={:?}, locale={:?}, {} entries, session id {}",
        opened.get::<u64>("user_id")?,
        opened.get::<String>("locale")?,
        opened.len(),
        opened.id()
    );
    let messages: Vec<String> = opened.take_flashes("messages")?;
    println!("  flash messages, shown once: {messages:?}");
    println!(
        "  under another cookie name: {}",
        sealer.open_for_name_check(&cookie)
    );
    let mut tampered = cookie.clone().into_bytes();
    tampered[60] = if tampered[60] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ASCII");
    println!(
        "  one character changed: {}",
        sealer.open(&tampered).unwrap_err()
    );
    // From a request's `Cookie` header, in any framework (FORMAT.md §14.4).
    let header = format!("theme=dark; __Host-session={cookie}");
    let request = sealer.open_request([&header])?;
    println!(
        "  from a Cookie header among others: user_id={:?}",
        request.session().get::<u64>("user_id")?
    );
    let mut request = sealer.open_request([format!("__Host-session={tampered}")])?;
    let answer = match sealer.save_request(&mut request)?.action {
        CookieAction::Delete(_) => "a deletion cookie",
        _ => "something else",
    };
    println!(
        "  a tampered one: a fresh session ({} logged, never the value), answered with {answer}",
        request.rejected_cookie().map_or("nothing", Error::kind)
    );

    println!("\n2. Rotate keys: new primary, old key as fallback");
    let rotated = Sealer::builder(KeyRing::with_fallbacks(MasterKey::generate()?, [old_key])?)
        .cookie_name("__Host-session")
        .max_idle(Duration::from_secs(HOUR))
        .max_lifetime(Duration::from_secs(24 * HOUR))
        .clock(clock.clone())
        .build()?;
    let mut session = rotated.open(&cookie)?;
    println!(
        "  opened with a fallback key: {} (needs save: {})",
        session.opened_with_fallback(),
        session.needs_save()
    );
    let resealed = rotated.seal(&mut session)?;
    show("re-sealed under the new primary", &resealed);
    println!(
        "  the old-key sealer can no longer open it: {}",
        sealer.open(&resealed).unwrap_err()
    );

    println!("\n3. Time: sliding refresh, idle timeout, absolute lifetime, own expiry");
    clock.advance(40 * 60);
    let session = rotated.open(&resealed)?;
    println!(
        "  after 40 min: refresh due = {} (half the idle window passed)",
        session.refresh_due()
    );
    clock.advance(30 * 60);
    println!(
        "  after 70 min untouched: {}",
        rotated.open(&resealed).unwrap_err()
    );
    let mut short = rotated.new_session()?;
    short.set_expiry_in(Duration::from_secs(600));
    let short_cookie = rotated.seal(&mut short)?;
    clock.advance(601);
    println!(
        "  a session that set a 10-minute expiry, 601 s later: {}",
        rotated.open(&short_cookie).unwrap_err()
    );
    // An idle timeout of its own (Django's set_expiry(600)): used every
    // 9 minutes it lives on; left alone for 601 s it ends.
    let mut admin = rotated.new_session()?;
    admin.insert("admin", true)?;
    admin.set_expiry(Expiry::Idle(Duration::from_secs(600)));
    let mut admin_cookie = rotated.seal(&mut admin)?;
    for _ in 0..3 {
        clock.advance(9 * 60);
        let mut used = rotated.open(&admin_cookie)?;
        admin_cookie = rotated.seal(&mut used)?;
    }
    clock.advance(601);
    println!(
        "  a session with its own 10-minute idle timeout, used every 9 min for 27 min, then left 601 s: {}",
        rotated.open(&admin_cookie).unwrap_err()
    );
    let mut active = rotated.new_session()?;
    active.insert("user_id", 1u64)?;
    let mut cookie = rotated.seal(&mut active)?;
    let mut rounds = 0;
    let ended = loop {
        clock.advance(HOUR - 60);
        match rotated.open(&cookie) {
            Ok(mut s) => {
                s.insert("last_seen", rotated.now())?;
                cookie = rotated.seal(&mut s)?;
                rounds += 1;
            }
            Err(e) => break e,
        }
    };
    println!("  active every 59 min: still open after {rounds} rounds, then: {ended}");

    println!("\n4. Compression (off by default; see SECURITY.md)");
    let compressing = Sealer::builder(KeyRing::new(MasterKey::generate()?))
        .compression(Compression::Above(256))
        .clock(clock.clone())
        .build()?;
    let plain = Sealer::builder(KeyRing::new(MasterKey::generate()?))
        .clock(clock.clone())
        .build()?;
    let fill = |s: &mut sealed_session::Session| -> Result<(), Error> {
        s.insert_with_priority("user_id", 4217u64, Priority::Critical)?;
        for i in 0..18 {
            s.insert_with_priority(&format!("cart-{i:02}"), cart_line(i), Priority::Low)?;
        }
        Ok(())
    };
    let mut a = plain.new_session()?;
    fill(&mut a)?;
    let mut b = compressing.new_session()?;
    fill(&mut b)?;
    show("18-line cart, uncompressed", &plain.seal(&mut a)?);
    show("18-line cart, compressed", &compressing.seal(&mut b)?);

    println!("\n5. The 4096-byte Set-Cookie budget");
    let budgeted = Sealer::builder(KeyRing::new(MasterKey::generate()?))
        .clock(clock.clone())
        .build()?;
    let big = |sealer: &Sealer| -> Result<sealed_session::Session, Error> {
        let mut s = sealer.new_session()?;
        s.insert_with_priority("user_id", 4217u64, Priority::Critical)?;
        s.insert_with_priority("csrf", "k3Jf9s0aQ1xZp2Lm", Priority::Critical)?;
        s.insert_with_priority(
            "prefs",
            serde_json::json!({"theme": "dark"}),
            Priority::High,
        )?;
        for i in 0..60 {
            s.insert_with_priority(&format!("cart-{i:02}"), cart_line(i), Priority::Low)?;
        }
        for i in 0..20 {
            s.insert_with_priority(&format!("viewed-{i:02}"), "p".repeat(120), Priority::Normal)?;
        }
        Ok(s)
    };
    let mut session = big(&budgeted)?;
    let value_bytes: usize = session
        .keys()
        .map(|k| session.get_raw(k).map_or(0, <[u8]>::len))
        .sum();
    println!(
        "  a session of {} entries, {value_bytes} bytes of CBOR values",
        session.len()
    );
    // What the save will drop, asked before it (nothing sealed or changed):
    // a handler can tell the user in the same response.
    let preview = budgeted.preview_save(&session)?;
    let saved = budgeted.save(&mut session)?;
    assert_eq!(preview.dropped_keys(), saved.report.dropped_keys());
    println!(
        "  preview_save foresaw it: {} entries to drop, a {}-byte header",
        preview.dropped.len(),
        preview.header_len
    );
    if let CookieAction::Set(header) = &saved.action {
        println!(
            "  Set-Cookie header: {} bytes (budget {})",
            saved.report.header_len, saved.report.budget
        );
        println!("    {}…", &header[..72]);
    }
    let dropped = saved.report.dropped_keys();
    println!(
        "  dropped {} entries, lowest priority first (reported, never silent): {} …",
        dropped.len(),
        dropped[..6].join(", ")
    );
    println!("  kept: {} entries, critical ones included", session.len());

    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let overflowing = Sealer::builder(KeyRing::new(MasterKey::generate()?))
        .overflow_store(store.clone())
        .clock(clock.clone())
        .build()?;
    let mut session = big(&overflowing)?;
    let saved = overflowing.save_async(&mut session).await?;
    let value = saved.action.cookie_value().expect("a cookie");
    println!(
        "  with an overflow store: header {} bytes, {} entries moved to the store (sealed, bound to the session), {} dropped",
        saved.report.header_len,
        saved.report.overflowed.len(),
        saved.report.dropped.len()
    );
    let mut reopened = overflowing.open_async(value).await?;
    let resident: Option<u64> = reopened.get("user_id")?;
    println!("  reopened: user_id={resident:?} read from the cookie without touching the store");
    let line: Option<serde_json::Value> = overflowing.get_loading(&mut reopened, "cart-59").await?;
    println!(
        "  cart-59 loaded lazily from the store: {}",
        line.unwrap_or_default()
    );

    println!("\n6. Revocation (logout, and log out everywhere)");
    let revocations = Arc::new(MemoryRevocations::with_clock(clock.clone()));
    // A store, not just a check: the save after a logout (flush) or a
    // login (cycle_id) revokes the id the cookie carried.
    let guarded = Sealer::builder(KeyRing::new(MasterKey::generate()?))
        .revocation_store(revocations, Some("user_id"))
        .clock(clock.clone())
        .build()?;
    let mut laptop = guarded.new_session()?;
    laptop.insert_with_priority("user_id", 4217u64, Priority::Critical)?;
    let laptop_cookie = guarded.seal(&mut laptop)?;
    let mut logging_out = guarded.open_async(&laptop_cookie).await?;
    logging_out.flush()?;
    let saved = guarded.save_async(&mut logging_out).await?;
    println!(
        "  logout sends {}; a copy of the old cookie: {}",
        saved.action.header_value().unwrap_or_default(),
        guarded.open_async(&laptop_cookie).await.unwrap_err()
    );
    // Two more devices of the same user.
    let device = || -> Result<String, Error> {
        let mut session = guarded.new_session()?;
        session.insert_with_priority("user_id", 4217u64, Priority::Critical)?;
        guarded.seal(&mut session)
    };
    let (phone_cookie, tablet_cookie) = (device()?, device()?);
    // A password change on the phone (its password checked again): the
    // other devices are logged out, the phone stays in under a new id.
    let mut phone = guarded.open_async(&phone_cookie).await?;
    guarded.log_out_other_sessions(&mut phone).await?;
    let saved = guarded.save_async(&mut phone).await?;
    let phone_cookie = saved.action.cookie_value().unwrap_or_default().to_owned();
    guarded.open_async(&phone_cookie).await?; // the phone's new cookie opens
    println!(
        "  log_out_other_sessions on the phone: the phone's new cookie opens; the tablet's: {}",
        guarded.open_async(&tablet_cookie).await.unwrap_err()
    );
    // "Log out everywhere", this device included.
    let mut phone = guarded.open_async(&phone_cookie).await?;
    guarded.log_out_everywhere(&mut phone).await?;
    let saved = guarded.save_async(&mut phone).await?;
    println!(
        "  log_out_everywhere sends {}; the phone's cookie: {}",
        saved.action.header_value().unwrap_or_default(),
        guarded.open_async(&phone_cookie).await.unwrap_err()
    );
    println!("\nDone.");
    Ok(())
}

trait NameCheck {
    fn open_for_name_check(&self, cookie: &str) -> String;
}

impl NameCheck for Sealer {
    /// Opens the cookie as if it had been sent under another name.
    fn open_for_name_check(&self, cookie: &str) -> String {
        let ring = self.key_ring();
        match token::open(ring, "other-name", cookie, self.limits()) {
            Ok(_) => "opened (wrong!)".to_owned(),
            Err(e) => e.to_string(),
        }
    }
}
