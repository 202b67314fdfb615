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

use sealed_session::django::{migrate_cookie, DjangoCodec};
use sealed_session::{Error, FixedClock, KeyRing, MasterKey, Sealer};

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

    // The request handler: prefer the sealed cookie, fall back to Django's.
    let saved = migrate_cookie(&django, &sealer, &django_cookie)?;
    // The sealer's attributes, `Max-Age` and size budget apply, as to any save.
    let set_cookie = saved.action.header_value().unwrap_or_default();
    println!("Set-Cookie: {set_cookie}");
    println!("Set-Cookie: sessionid=; Max-Age=0; Path=/");
    let sealed_cookie = saved.action.cookie_value().unwrap_or_default();

    // Next request: the sealed cookie carries the same entries. Django's
    // `_`-prefixed keys live under `django_…` (sealed sessions reserve `_`).
    let session = sealer.open(sealed_cookie)?;
    let user: Option<String> = session.get("django_auth_user_id")?;
    let cart: Option<Vec<String>> = session.get("cart")?;
    println!("user id {user:?}, cart {cart:?}");
    assert_eq!(user.as_deref(), Some("42"));

    // A forged or expired Django cookie is refused with an error kind.
    let forged = format!("e{django_cookie}");
    let refused = migrate_cookie(&django, &sealer, &forged).unwrap_err();
    println!("forged Django cookie: {}", refused.kind());
    Ok(())
}
