//! Sessions on an edge or WebAssembly host that supplies the clock and the
//! random source, as on `wasm32-unknown-unknown`, where the crate has
//! neither `SystemClock` nor `OsRandom`.
//!
//! Nothing here is platform-specific: the host's two capabilities are
//! plain functions handed in at start-up. On a Workers-style runtime they
//! would be `Date.now()` and `crypto.getRandomValues` (see the README's
//! "WebAssembly and edge runtimes" section for the `wasm-bindgen` glue);
//! this binary plays the host with the operating system's clock and
//! generator.
//!
//! Run with `cargo run --example edge_host`.

use std::sync::Arc;

use sealed_session::{
    private_cache_control, Clock, CookieAction, Error, KeyRing, MasterKey, Priority, RandomSource,
    Sealer,
};

/// The host's clock, behind a function returning Unix seconds (on a
/// Workers-style runtime: `Date.now() / 1000`). Read at each use, so
/// concurrent requests each see the time, not one shared setting.
struct HostClock(fn() -> u64);

impl Clock for HostClock {
    fn now(&self) -> u64 {
        (self.0)()
    }
}

/// The host's cryptographically secure generator, behind a function
/// (on a Workers-style runtime: `crypto.getRandomValues`).
struct HostRandom(fn(&mut [u8]) -> Result<(), Error>);

impl RandomSource for HostRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        (self.0)(buf)
    }
}

/// The application: built once per isolate, with the host's capabilities.
struct App {
    sealer: Sealer,
}

impl App {
    fn new(
        master_key: &str,
        now: fn() -> u64,
        random: fn(&mut [u8]) -> Result<(), Error>,
    ) -> Result<Self, Error> {
        let sealer = Sealer::builder(KeyRing::new(MasterKey::from_base64(master_key)?))
            .cookie_name("__Host-session")
            .clock(Arc::new(HostClock(now)))
            .random(Arc::new(HostRandom(random)))
            .build()?;
        Ok(App { sealer })
    }

    /// One request: its `Cookie` header if it had one, and the path.
    /// Returns the response's status and the session's headers.
    fn handle(&self, cookie_header: Option<&str>, path: &str) -> Result<Response, Error> {
        // The session cookie by the rule of FORMAT.md §14.4; an absent,
        // expired or forged one starts a new session.
        let mut request = self.sealer.open_request(cookie_header)?;
        let session = request.session_mut();
        // The page's own caching rule, if it has one.
        let mut cache_control = None;
        let status = match path {
            "/login" => {
                session.cycle_id()?;
                session.insert_with_priority("user_id", 42u64, Priority::Critical)?;
                200
            }
            "/logout" => {
                session.flush()?;
                200
            }
            "/broken" => {
                // A handler that changed the session, then failed.
                session.insert("half-done", true)?;
                500
            }
            "/too-big" => {
                // More than any cookie holds, and not to be dropped: the
                // save fails (with no overflow store), so the change is lost.
                session.insert_with_priority("upload", "x".repeat(5000), Priority::Critical)?;
                200
            }
            _ => {
                let visits = session.get::<u32>("visits")?.unwrap_or(0);
                session.insert_with_priority("visits", visits + 1, Priority::Low)?;
                // Written for an anonymous page that any cache may keep.
                cache_control = Some("public, max-age=60");
                200
            }
        };
        // The response rules the axum layer applies, which a host without
        // it keeps itself. A server error saves nothing, except a logout
        // (without what was stored after it).
        let failed = status >= 500;
        let action = if failed && !request.session().is_flushed() {
            CookieAction::Unchanged
        } else {
            if failed {
                request.session_mut().clear();
            }
            // An emptied session gets no cookie, and loses the one it had.
            match self.sealer.save_request(&mut request) {
                Ok(saved) => saved.action,
                // The handler's changes are lost: answer with an error
                // rather than the page that assumed them, as the layer
                // does (a sliding refresh alone that fails keeps the page).
                Err(error) if request.session().is_modified() => {
                    return Ok(Response::save_failed(&error));
                }
                Err(_) => CookieAction::Unchanged,
            }
        };
        // The page depends on the cookie: shared caches must key it by it.
        let mut headers = vec![("Vary", "Cookie".to_owned())];
        // Each `Set-Cookie` the save calls for, one header apiece: the
        // session cookie and, after a rename (`previous_cookie_name`), the
        // deletion of the old cookie the request carried.
        let set_cookies = self.sealer.set_cookie_headers(&request, &action);
        for set_cookie in &set_cookies {
            headers.push(("Set-Cookie", (*set_cookie).to_owned()));
        }
        // No shared cache may hand one visitor's new cookie to the next:
        // the page's rule becomes `private`, on one line, as the layer
        // does it.
        let line = if set_cookies.is_empty() {
            cache_control.map(str::to_owned)
        } else {
            // `None`: the page's rule already keeps shared caches out.
            private_cache_control(cache_control).or(cache_control.map(str::to_owned))
        };
        if let Some(line) = line {
            headers.push(("Cache-Control", line));
        }
        Ok(Response {
            status,
            headers,
            action,
        })
    }
}

/// What the host sends back.
struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    action: CookieAction,
}

impl Response {
    /// A save that lost the handler's changes: `503` if trying again may
    /// help (a store out of reach), `500` otherwise; nothing to cache.
    fn save_failed(error: &Error) -> Response {
        Response {
            status: if error.is_transient() { 503 } else { 500 },
            headers: vec![
                ("Vary", "Cookie".to_owned()),
                ("Cache-Control", "no-store".to_owned()),
            ],
            action: CookieAction::Unchanged,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
fn main() -> Result<(), Error> {
    use sealed_session::{OsRandom, SystemClock};

    // The host's capabilities; on WebAssembly these come from JavaScript.
    fn host_now() -> u64 {
        SystemClock.now()
    }
    fn host_random(buf: &mut [u8]) -> Result<(), Error> {
        OsRandom.fill(buf)
    }

    // In a real deployment the key comes from a secret binding.
    let app = App::new(
        "c2VjcmV0LWtleS1mb3ItdGhlLWVkZ2UtZXhhbXBsZS0zMi1ieXRlcyE",
        host_now,
        host_random,
    )?;

    let first = app.handle(None, "/")?;
    let header = first.header("Set-Cookie").expect("a new session is saved");
    println!("GET /        -> Set-Cookie: {header}");
    println!(
        "               Cache-Control: {}",
        first.header("Cache-Control").unwrap_or_default()
    );
    assert_eq!(first.header("Cache-Control"), Some("private, max-age=60"));
    assert_eq!(first.header("Vary"), Some("Cookie"));
    // The browser sends the cookie back among others.
    let first = format!(
        "theme=dark; __Host-session={}",
        first.action.cookie_value().unwrap_or_default()
    );
    let broken = app.handle(Some(&first), "/broken")?;
    println!("GET /broken  -> {}, no Set-Cookie", broken.status);
    assert!(broken.header("Set-Cookie").is_none());
    let too_big = app.handle(Some(&first), "/too-big")?;
    println!(
        "POST /too-big -> {}, no Set-Cookie, Cache-Control: {}",
        too_big.status,
        too_big.header("Cache-Control").unwrap_or_default()
    );
    assert_eq!(too_big.status, 500);
    assert!(too_big.header("Set-Cookie").is_none());
    assert_eq!(too_big.header("Cache-Control"), Some("no-store"));
    let login = app.handle(Some(&first), "/login")?;
    let header = login
        .header("Set-Cookie")
        .expect("login changes the session");
    println!("POST /login  -> Set-Cookie: {header}");
    let login = login.action.cookie_value().unwrap_or_default();
    let session = app.sealer.open(login)?;
    assert_eq!(session.get::<u64>("user_id")?, Some(42));
    assert_eq!(session.get::<u32>("visits")?, Some(1));
    let login = format!("__Host-session={login}");
    let logout = app.handle(Some(&login), "/logout")?;
    let CookieAction::Delete(deleted) = &logout.action else {
        panic!("logout deletes the cookie");
    };
    println!("POST /logout -> Set-Cookie: {deleted}");
    assert!(deleted.contains("Max-Age=0"));
    assert_eq!(logout.header("Cache-Control"), Some("private"));
    Ok(())
}

/// On `wasm32-unknown-unknown` the host calls into the module instead (see
/// the README); there is nothing to run on its own.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
fn main() {
    let _ = (
        App::new,
        App::handle,
        Response::header,
        Response::save_failed,
    );
    let _ = |response: Response| (response.status, response.action);
}
