//! Moving users from Django's `signed_cookies` sessions to sealed sessions
//! without logging anyone out.
//!
//! During the migration a request may carry either cookie. This example
//! handles one request: a sealed-session cookie is opened as usual; a Django
//! cookie is verified with Django's `SECRET_KEY` (and its fallbacks) and its
//! entries are re-issued as a sealed-session cookie, after which the Django
//! cookie can be deleted.
//!
//! Run with `cargo run --example django_migration --features django`.

use std::sync::Arc;
use std::time::Duration;

use sealed_session::django::{migrate_session, DjangoCodec};
use sealed_session::{Error, FixedClock, KeyRing, MasterKey, Sealer, Session};

fn main() -> Result<(), Error> {
    let clock = Arc::new(FixedClock::new(1_700_000_000));

    // Django's settings: SECRET_KEY, SECRET_KEY_FALLBACKS, SESSION_COOKIE_AGE.
    let django = DjangoCodec::builder("django-insecure-current-secret")
        .fallback_secret("django-insecure-previous-secret")
        .max_age(Duration::from_secs(1_209_600))
        .clock(clock.clone())
        .build()?;
    // The Rust service's sealer (load the master key from your secret store).
    let sealer = Sealer::builder(KeyRing::new(MasterKey::from_bytes(&[42; 32])?))
        .cookie_name("session")
        .clock(clock)
        .build()?;

    // What Django's `sessionid` cookie holds for a logged-in user (made here
    // with the crate's writer, which Django reads).
    let mut entries = serde_json::Map::new();
    entries.insert("_auth_user_id".into(), "42".into());
    entries.insert(
        "_auth_user_backend".into(),
        "django.contrib.auth.backends.ModelBackend".into(),
    );
    entries.insert("cart".into(), serde_json::json!(["sku-1", "sku-2"]));
    let django_cookie = django.seal(&entries)?;

    // First request: only Django's cookie. The sealed one is new.
    let first = handle(&django, &sealer, None, Some(&django_cookie))?;
    for header in &first.set_cookie {
        println!("Set-Cookie: {header}");
    }
    let sealed_cookie = first.sealed_value.expect("migrated");

    // Next request: if Django's cookie still comes along (Django set it
    // again, or under another path), the sealed one wins. Django's `_`-prefixed keys live under `django_…`
    // (sealed sessions reserve `_`).
    let next = handle(&django, &sealer, Some(&sealed_cookie), Some(&django_cookie))?;
    assert!(next.set_cookie.is_empty(), "nothing to re-issue");
    let user: Option<String> = next.session.get("django_auth_user_id")?;
    let cart: Option<Vec<String>> = next.session.get("cart")?;
    println!("user id {user:?}, cart {cart:?}");
    assert_eq!(user.as_deref(), Some("42"));

    // A forged or expired Django cookie is refused with an error kind.
    let forged = format!("e{django_cookie}");
    match handle(&django, &sealer, None, Some(&forged)) {
        Err(refused) => println!("forged Django cookie: {}", refused.kind()),
        Ok(_) => unreachable!("a forged Django cookie was accepted"),
    }
    Ok(())
}

/// What one request's handler ends with.
struct Handled {
    session: Session,
    /// `Set-Cookie` header values to send.
    set_cookie: Vec<String>,
    /// The new sealed cookie's value (a browser would send it back).
    sealed_value: Option<String>,
}

/// One request during the migration: the sealed cookie if there is one,
/// otherwise Django's, re-issued as a sealed cookie. (With a revocation
/// check or an overflow store on the sealer, use `open_async` and
/// `migrate_cookie_async` instead.)
fn handle(
    django: &DjangoCodec,
    sealer: &Sealer,
    sealed: Option<&str>,
    django_cookie: Option<&str>,
) -> Result<Handled, Error> {
    // A sealed cookie that does not open (forged, expired) is no session,
    // as without the migration; Django's is then tried.
    if let Some(Ok(session)) = sealed.map(|value| sealer.open(value)) {
        return Ok(Handled {
            session,
            set_cookie: Vec::new(),
            sealed_value: None,
        });
    }
    let Some(value) = django_cookie else {
        return Ok(Handled {
            session: sealer.new_session()?,
            set_cookie: Vec::new(),
            sealed_value: None,
        });
    };
    // The handler would use the session here, then save it. The sealer's
    // attributes, `Max-Age` and size budget apply, as to any save; dropped
    // entries are listed in `saved.report`. (`migrate_cookie` does both
    // steps.)
    let mut session = migrate_session(django, sealer, value)?;
    let saved = sealer.save(&mut session)?;
    let sealed_value = saved.action.cookie_value().map(str::to_owned);
    let mut set_cookie: Vec<String> = saved
        .action
        .header_value()
        .map(str::to_owned)
        .into_iter()
        .collect();
    // Delete Django's cookie with the Path (and Domain, if any) Django set it
    // with (SESSION_COOKIE_PATH, SESSION_COOKIE_DOMAIN), or the browser keeps
    // it; skip this while Django still serves the same users.
    set_cookie.push("sessionid=; Max-Age=0; Path=/".to_owned());
    Ok(Handled {
        session,
        set_cookie,
        sealed_value,
    })
}
