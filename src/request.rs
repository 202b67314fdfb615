//! A request's session, for any HTTP framework: which of the request's
//! cookies is the session (`docs/FORMAT.md` §14.4), and what the response
//! sends back. The axum layer is built on this; other hosts (actix, hyper,
//! an edge runtime) call it directly.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::budget::{CookieAction, Saved};
use crate::error::{Malformed, StoreError};
use crate::{Error, Sealer, Session};

/// Default for [`SealerBuilder::max_cookies_tried`](crate::SealerBuilder::max_cookies_tried).
pub const DEFAULT_MAX_COOKIES_TRIED: usize = 4;

/// The session of one request, opened from its `Cookie` headers by
/// [`Sealer::open_request`] or [`Sealer::open_request_async`], with what
/// the request carried; saved for the response by [`Sealer::save_request`]
/// or [`Sealer::save_request_async`].
///
/// A request whose cookies all fail to open (or that has none) gets a
/// fresh session: a bad cookie is the client's state, not an error.
///
/// ```
/// use sealed_session::{CookieAction, Error, KeyRing, MasterKey, Sealer};
///
/// let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?)).build()?;
///
/// // No cookie yet: a fresh session, saved with its first entry.
/// let mut request = sealer.open_request(None::<&str>)?;
/// request.session_mut().insert("theme", "dark")?;
/// let saved = sealer.save_request(&mut request)?;
/// let cookie = saved.action.cookie_value().expect("a cookie to set").to_owned();
///
/// // The next request's `Cookie` header, with a neighbour cookie.
/// let header = format!("lang=en; session={cookie}");
/// let mut request = sealer.open_request([header.as_str()])?;
/// assert_eq!(request.session().get::<String>("theme")?.as_deref(), Some("dark"));
///
/// // Emptied, the session is not kept: its cookie is deleted.
/// request.session_mut().clear();
/// let saved = sealer.save_request(&mut request)?;
/// assert!(matches!(saved.action, CookieAction::Delete(_)));
///
/// // A forged cookie is ignored (and logged, without its value).
/// let request = sealer.open_request(["session=forged"])?;
/// assert!(request.session().is_new());
/// assert_eq!(request.rejected_cookie().map(Error::kind), Some("malformed"));
/// # Ok::<(), sealed_session::Error>(())
/// ```
#[derive(Debug)]
pub struct RequestSession {
    session: Session,
    /// Length of the cookie value the session was opened from.
    cookie_len: Option<usize>,
    /// Why the last candidate failed to open, when none did.
    rejected: Option<Error>,
    /// None opened, and the response may delete the cookie the request
    /// carried: it was the only candidate, and it failed for a reason every
    /// server would agree on (see `fails_everywhere`).
    rejected_for_good: bool,
    /// None opened, and one failed for a passing reason (see
    /// `fails_for_now`): the fresh session must not replace it.
    held_back: Option<HeldBack>,
    /// Opened from a cookie of the previous name
    /// ([`SealerBuilder::previous_cookie_name`](crate::SealerBuilder::previous_cookie_name)).
    from_previous_name: bool,
    /// None opened, and the request's only candidate was a cookie of the
    /// previous name that failed for a reason every server would agree on.
    previous_rejected_for_good: bool,
    /// The request carried a cookie of the previous name (opened or not).
    carried_previous_name: bool,
}

/// A request's `Cookie` headers, passed on unchanged while noting whether
/// one carries a cookie of the previous name (whose deletion the response
/// may then need: [`Sealer::set_cookie_headers`]).
struct Headers<'n, I> {
    inner: I,
    previous_name: Option<&'n str>,
    carried_previous_name: bool,
}

impl<'n, I> Headers<'n, I>
where
    I: Iterator,
    I::Item: AsRef<[u8]>,
{
    fn new(inner: I, previous_name: Option<&'n str>) -> Self {
        Headers {
            inner,
            previous_name,
            carried_previous_name: false,
        }
    }

    /// Whether any header, those not read yet included, carries a cookie
    /// of the previous name.
    fn carried_previous_name(mut self) -> bool {
        while !self.carried_previous_name && self.next().is_some() {}
        self.carried_previous_name
    }
}

impl<I> Iterator for Headers<'_, I>
where
    I: Iterator,
    I::Item: AsRef<[u8]>,
{
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let header = self.inner.next()?;
        if let (Some(name), false) = (self.previous_name, self.carried_previous_name) {
            self.carried_previous_name = carries_cookie(header.as_ref(), name);
        }
        Some(header)
    }
}

/// A cookie that authenticated but could not be checked for revocation
/// because the store could not answer.
#[derive(Debug)]
struct HeldBack {
    error: Error,
    /// Its id, revoked if a logout deletes it.
    cookie: crate::SessionId,
}

impl RequestSession {
    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session, to change.
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Whether a logout of this request has yet to record its revocation:
    /// its save has not run (or was dropped before it got that far) and
    /// there is an id to revoke (that of the cookie the session opened
    /// from, or of one held back), or its save set a new cookie (a new
    /// user after the flush) but has yet to revoke the old id.
    ///
    /// A host whose request can be dropped while it saves (the client
    /// went away, a timeout) asks this after such a drop, and then calls
    /// [`Sealer::finish_dropped_logout`]; see
    /// [`Sealer::save_request_async`].
    pub fn logout_unrecorded(&self) -> bool {
        let unsaved = self.session.is_flushed()
            && (self.session.replaced.is_some() || self.held_back.is_some());
        unsaved || self.session.revoking_after_save.is_some()
    }

    /// The session, leaving the request's cookie facts behind (save it
    /// with [`Sealer::save_async`] then; the rules of
    /// [`Sealer::save_request`] need them).
    pub fn into_session(self) -> Session {
        self.session
    }

    /// Length in characters of the cookie value the session was opened
    /// from; `None` for a new session.
    pub fn cookie_len(&self) -> Option<usize> {
        self.cookie_len
    }

    /// When the request carried session cookies and none opened: why the
    /// last one tried did not ([`Error::Expired`] to say "your session
    /// expired, log in again", [`Error::Revoked`],
    /// [`Error::AuthenticationFailed`], …). `None` otherwise.
    pub fn rejected_cookie(&self) -> Option<&Error> {
        self.rejected.as_ref()
    }

    /// When a cookie did not open only because a store could not answer
    /// ([`StoreError::Unavailable`] from the revocation check, or from the
    /// overflow store while loading the user entry it needs): that error.
    /// The save then keeps that cookie rather than replace it with this
    /// request's fresh session (see [`Sealer::save_request`]).
    pub fn held_back_by(&self) -> Option<&Error> {
        self.held_back.as_ref().map(|held| &held.error)
    }

    /// Whether the response for this session, empty, deletes the session
    /// cookie the request carried: the one it opened from, one that failed
    /// for good, or after a logout whatever it carried, even one that only
    /// failed for now.
    fn deletes_carried_cookie(&self) -> bool {
        self.cookie_len.is_some()
            || match self.session.is_flushed() {
                true => self.rejected.is_some(),
                false => self.rejected_for_good,
            }
    }

    fn opened(session: Session, cookie_len: usize) -> Self {
        RequestSession {
            session,
            cookie_len: Some(cookie_len),
            rejected: None,
            rejected_for_good: false,
            held_back: None,
            from_previous_name: false,
            previous_rejected_for_good: false,
            carried_previous_name: false,
        }
    }

    /// Opened from a cookie of the previous name: due for a re-seal under
    /// the current one, as a refresh is.
    fn opened_from_previous(mut session: Session, cookie_len: usize) -> Self {
        session.refresh_due = true;
        RequestSession {
            from_previous_name: true,
            ..Self::opened(session, cookie_len)
        }
    }

    /// Whether the session was opened from a cookie of the sealer's
    /// previous name ([`SealerBuilder::previous_cookie_name`](crate::SealerBuilder::previous_cookie_name)).
    /// Its save re-seals it under the current name; when that save (or
    /// any save of a request that carried a cookie of the previous name)
    /// sets or deletes the cookie, send
    /// [`Sealer::previous_cookie_removal`] beside it (the HTTP layer
    /// does; [`Sealer::set_cookie_headers`] lists both).
    pub fn opened_from_previous_name(&self) -> bool {
        self.from_previous_name
    }

    /// Whether the request carried a cookie of the sealer's previous name,
    /// whether or not it opened ([`Sealer::set_cookie_headers`] then
    /// deletes it when due).
    pub fn carried_previous_name(&self) -> bool {
        self.carried_previous_name
    }

    /// Whether no session opened and the request's only candidate, a
    /// cookie of the previous name, failed for a reason every server would
    /// agree on (tampered, malformed, expired, revoked, …). Send
    /// [`Sealer::previous_cookie_removal`] with the response, whatever its
    /// save does (the HTTP layer does, and [`Sealer::set_cookie_headers`]
    /// lists it): otherwise that cookie is tried,
    /// and fails, on every request that carries no session cookie. A
    /// cookie that failed only here (an unknown key, a store that could
    /// not answer) is kept.
    pub fn previous_cookie_rejected_for_good(&self) -> bool {
        self.previous_rejected_for_good
    }
}

/// What a request's save resets that [`Sealer::unless_emptied`] needs from
/// before it.
struct BeforeSave {
    /// [`RequestSession::deletes_carried_cookie`]: the save clears the
    /// flush it depends on.
    deletes_carried_cookie: bool,
    issued_at: Option<u64>,
    /// The id of the cookie the session was opened from, if worth a
    /// revocation record ([`Session::revocable_cookie`]) and not given up
    /// already by a flush or `cycle_id` (the save then revokes it itself).
    opened_id: Option<crate::SessionId>,
}

impl BeforeSave {
    fn of(request: &RequestSession) -> Self {
        let session = &request.session;
        BeforeSave {
            deletes_carried_cookie: request.deletes_carried_cookie(),
            issued_at: session.issued_at,
            opened_id: match session.replaced {
                None => session.revocable_cookie(),
                Some(_) => None,
            },
        }
    }
}

/// The candidates tried so far, and how they failed.
#[derive(Default)]
struct Selection {
    tried: usize,
    rejected: Option<Error>,
    /// The last failure would fail on every server (what matters when it
    /// was the only candidate).
    last_for_good: bool,
    held_back: Option<HeldBack>,
    /// The last failure was of a cookie of the previous name that would
    /// fail on every server.
    previous_for_good: bool,
    /// Stopped at `max_cookies_tried` with candidates left.
    capped: bool,
    /// With no candidate so far, a header holds one after a comma in
    /// another cookie's value.
    hidden_after_comma: bool,
}

impl Selection {
    /// Whether one more candidate may be opened; warns once when not.
    fn may_try(&mut self, max: usize) -> bool {
        if self.tried >= max {
            // Anyone can send more: not above DEBUG.
            tracing::debug!(
                event = "cookies-not-tried",
                tried = self.tried,
                "more session cookies than the sealer tries; ignoring the rest"
            );
            self.capped = true;
            return false;
        }
        self.tried += 1;
        true
    }

    /// Records a candidate that did not open (`authenticated`: its id, if
    /// it got past authentication); whether to stop trying.
    fn failed(
        &mut self,
        sealer: &Sealer,
        error: Error,
        len: usize,
        authenticated: Option<crate::SessionId>,
    ) -> bool {
        log_rejected(sealer, &error, len, self.tried);
        self.rejected = Some(error.clone());
        self.last_for_good = fails_everywhere(&error);
        match (fails_for_now(&error), authenticated) {
            // The store is down: the other candidates would each wait for
            // it too, to the same end.
            (true, Some(cookie)) => {
                self.held_back = Some(HeldBack { error, cookie });
                true
            }
            _ => false,
        }
    }

    /// [`Self::failed`] for a cookie of the previous name, which no
    /// deletion of the current name's cookie concerns.
    fn failed_previous(
        &mut self,
        sealer: &Sealer,
        error: Error,
        len: usize,
        authenticated: Option<crate::SessionId>,
    ) -> bool {
        let stop = self.failed(sealer, error, len, authenticated);
        self.previous_for_good = self.last_for_good;
        self.last_for_good = false;
        stop
    }

    /// Notes a session cookie that `text` hides after a comma, while no
    /// candidate was found (only then is the scan worth it: see `fresh`).
    fn note_hidden(&mut self, text: &str, name: &str) {
        if self.tried == 0 && !self.hidden_after_comma {
            self.hidden_after_comma = cookie_after_a_comma(text, name);
        }
    }

    fn fresh(self, sealer: &Sealer) -> Result<RequestSession, Error> {
        if self.tried == 0 && self.hidden_after_comma {
            // A deployment mistake, but anyone can send it: not above INFO.
            tracing::info!(
                event = "cookie-after-comma",
                "no session cookie, but one follows a comma in another cookie's value: \
                 Cookie lines joined with \", \" instead of \"; \" (FORMAT.md §14.4); \
                 pass the lines one by one"
            );
        }
        Ok(RequestSession {
            session: sealer.new_session()?,
            cookie_len: None,
            rejected: self.rejected,
            rejected_for_good: !self.capped && self.tried == 1 && self.last_for_good,
            held_back: self.held_back,
            from_previous_name: false,
            // Old-name cookies are tried only when the request has no
            // cookie of the current name, so one try is one such cookie.
            previous_rejected_for_good: !self.capped && self.tried == 1 && self.previous_for_good,
            carried_previous_name: false,
        })
    }
}

/// A `Cookie` header as text. Browsers send cookies set by scripts as raw
/// UTF-8 (or other bytes) in the same header: such a neighbour must not
/// hide the session cookie, whose own value is base64url and unchanged by
/// the lossy reading (FORMAT §14.4 step 1).
fn header_text(header: &[u8]) -> Cow<'_, str> {
    match core::str::from_utf8(header) {
        Ok(text) => Cow::Borrowed(text),
        // Rare: the lossy reader is several times slower than the check.
        Err(_) => String::from_utf8_lossy(header),
    }
}

/// Whether one `Cookie` header holds a cookie called `name`, by the rule
/// that opening applies.
pub(crate) fn carries_cookie(header: &[u8], name: &str) -> bool {
    named_values(&header_text(header), name).next().is_some()
}

/// The values of the cookies called `name` in one `Cookie` header, in the
/// order a server tries them, by the rule [`Sealer::open_request`] applies
/// (FORMAT.md §14.4): the name matched as sent (only spaces and tabs
/// around it ignored), each value ending before its first comma, one pair
/// of quotes removed. For tools that show which cookie a server would
/// open; opening needs no call to it. (A header that is not UTF-8: read it
/// with `String::from_utf8_lossy`, as a server does.)
///
/// ```
/// let header = "theme=dark; __Host-id=\"abc\"; \u{2000}__Host-id=planted; __Host-id=def, x=1";
/// let values: Vec<&str> = sealed_session::cookie_values(header, "__Host-id").collect();
/// assert_eq!(values, ["abc", "def"]);
/// ```
pub fn cookie_values<'t>(header: &'t str, name: &'t str) -> impl Iterator<Item = &'t str> {
    named_values(header, name)
}

/// [`cookie_values`]: each value parsed by the cookie crate.
fn named_values<'t>(text: &'t str, name: &'t str) -> impl Iterator<Item = &'t str> {
    text.split(';')
        // The name is checked as sent before the cookie crate parses the
        // pair (it trims Unicode white space from names).
        .filter(move |pair| crate::cookie::is_named(pair, name))
        .map(up_to_a_comma_in_the_value)
        .filter_map(|pair| {
            let cookie = ::cookie::Cookie::parse(pair).ok()?;
            let raw = cookie.value_raw()?;
            // RFC 6265 allows a quoted value; a token never contains quotes.
            // The crate decides whether they are a pair; the value returned
            // borrows from the header, not from `cookie`.
            match cookie.value_trimmed().len() < raw.len() {
                true => raw.get(1..raw.len() - 1),
                false => Some(raw),
            }
        })
}

/// `pair` without anything from the first comma after its `=` on. Some
/// proxies join a request's `Cookie` lines with `", "` (the rule for other
/// repeated headers) instead of `"; "`, which would otherwise glue the
/// next cookie onto ours and make a valid session fail as malformed (and
/// be deleted). A token never holds a comma. Pairs are not split at
/// commas: a neighbour's value holding `, __Host-id=…` would then pass
/// for a cookie under a name other hosts cannot set.
fn up_to_a_comma_in_the_value(pair: &str) -> &str {
    let end = pair
        .find('=')
        .and_then(|eq| pair[eq..].find(',').map(|comma| eq + comma));
    &pair[..end.unwrap_or(pair.len())]
}

/// Whether a cookie value in `text` holds `, NAME=`: the session cookie
/// of a `Cookie` line joined to the one before with `", "`, which the
/// rule above does not take (only for the log: it opens nothing).
fn cookie_after_a_comma(text: &str, name: &str) -> bool {
    text.split(';')
        .filter_map(|pair| pair.split_once('=').map(|(_, value)| value))
        .any(|value| {
            value
                .split(',')
                .skip(1)
                .any(|part| crate::cookie::is_named(part, name))
        })
}

impl Sealer {
    /// Opens the session from a request's `Cookie` header values, in the
    /// order received, by the rule of `docs/FORMAT.md` §14.4: the cookies
    /// with the sealer's name are tried in order and the first that opens
    /// is the session; at most
    /// [`SealerBuilder::max_cookies_tried`](crate::SealerBuilder::max_cookies_tried)
    /// are opened. With a
    /// [`previous_cookie_name`](crate::SealerBuilder::previous_cookie_name),
    /// a request with no cookie of the current name has its cookies of the
    /// previous name tried so. If none opens (or there is none) the request gets a
    /// fresh session, and each failure is logged with its kind and length,
    /// never its value (event `cookie-refused`: at `DEBUG` or `INFO` what
    /// anyone can send, at `WARN` what needs one of the ring's keys, or a
    /// store out of reach, at most once per 10 seconds of the sealer's
    /// clock, the rest at `DEBUG`; docs/LOGGING.md).
    ///
    /// # Errors
    ///
    /// Only [`Error::Random`], when a fresh session's id cannot be drawn,
    /// and [`StoreError::NeedsAsync`] when the sealer has a revocation
    /// check or an overflow store, which only the asynchronous forms reach
    /// (use [`Sealer::open_request_async`] and
    /// [`Sealer::save_request_async`]): refused here, before the request's
    /// work, rather than at the save, which would drop the overflowed
    /// entries.
    pub fn open_request<I>(&self, cookie_headers: I) -> Result<RequestSession, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.check_sync_request()?;
        let mut headers = Headers::new(cookie_headers.into_iter(), self.previous_cookie_name());
        let mut request = self.open_request_from(&mut headers)?;
        request.carried_previous_name = headers.carried_previous_name();
        Ok(request)
    }

    /// [`Sealer::open_request`], its headers read through [`Headers`].
    fn open_request_from<I>(&self, headers: &mut Headers<'_, I>) -> Result<RequestSession, Error>
    where
        I: Iterator,
        I::Item: AsRef<[u8]>,
    {
        let mut selection = Selection::default();
        let mut previous = Vec::new();
        for header in headers.by_ref() {
            let text = header_text(header.as_ref());
            for value in named_values(&text, &self.cookie_name) {
                if !selection.may_try(self.max_cookies_tried) {
                    return selection.fresh(self);
                }
                match self.open_unrevoked(value) {
                    Ok(session) => return Ok(RequestSession::opened(session, value.len())),
                    Err(error) => {
                        selection.failed(self, error, value.len(), None);
                    }
                }
            }
            selection.note_hidden(&text, &self.cookie_name);
            self.collect_previous(&text, &selection, &mut previous);
        }
        // Only without a cookie of the current name: one this server
        // cannot open yet (a key it does not know) may be newer.
        if let (Some((name, _)), 0) = (&self.previous, selection.tried) {
            for value in &previous {
                if !selection.may_try(self.max_cookies_tried) {
                    break;
                }
                match self.open_unrevoked_as(value, name) {
                    Ok(session) => {
                        return Ok(RequestSession::opened_from_previous(session, value.len()))
                    }
                    Err(error) => {
                        selection.failed_previous(self, error, value.len(), None);
                    }
                }
            }
        }
        selection.fresh(self)
    }

    /// Keeps, for after the current name's, the values of the cookies of
    /// the previous name in `text` (as many as may be tried: a request
    /// cannot make it hold more), while no cookie of the current name was
    /// met: after one, they are never tried.
    fn collect_previous(&self, text: &str, selection: &Selection, previous: &mut Vec<String>) {
        if let (Some((name, _)), 0) = (&self.previous, selection.tried) {
            let room = self.max_cookies_tried.saturating_sub(previous.len());
            previous.extend(named_values(text, name).take(room).map(str::to_owned));
        }
    }

    /// As [`Sealer::open_request`], opening each candidate with
    /// [`Sealer::open_async`] (the revocation check, and the user entry's
    /// overflow blob). A candidate that fails only because the revocation
    /// store could not answer stops the search: the request gets a fresh
    /// session that [`Sealer::save_request_async`] will not save over that
    /// cookie ([`RequestSession::held_back_by`]).
    ///
    /// # Errors
    ///
    /// Only [`Error::Random`], when a fresh session's id cannot be drawn:
    /// a cookie that does not open, for whatever reason, is no error.
    pub async fn open_request_async<I>(&self, cookie_headers: I) -> Result<RequestSession, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.open_request_async_by(cookie_headers, true).await
    }

    /// [`Sealer::open_request_async`]; with `use_previous` false, the
    /// previous name's cookies are not tried (they are another layer's).
    pub(crate) async fn open_request_async_by<I>(
        &self,
        cookie_headers: I,
        use_previous: bool,
    ) -> Result<RequestSession, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let previous_name = self.previous_cookie_name().filter(|_| use_previous);
        let mut headers = Headers::new(cookie_headers.into_iter(), previous_name);
        let mut request = self
            .open_request_async_from(&mut headers, use_previous)
            .await?;
        request.carried_previous_name = headers.carried_previous_name();
        Ok(request)
    }

    /// [`Sealer::open_request_async_by`], its headers read through
    /// [`Headers`].
    async fn open_request_async_from<I>(
        &self,
        headers: &mut Headers<'_, I>,
        use_previous: bool,
    ) -> Result<RequestSession, Error>
    where
        I: Iterator,
        I::Item: AsRef<[u8]>,
    {
        let mut selection = Selection::default();
        let mut previous = Vec::new();
        'headers: for header in headers.by_ref() {
            let text = header_text(header.as_ref());
            for value in named_values(&text, &self.cookie_name) {
                if !selection.may_try(self.max_cookies_tried) {
                    break 'headers;
                }
                let (error, authenticated) = match self.open_unrevoked(value) {
                    Ok(mut session) => match self.check_revocation(&mut session).await {
                        Ok(()) => return Ok(RequestSession::opened(session, value.len())),
                        Err(error) => (error, Some(session.id)),
                    },
                    Err(error) => (error, None),
                };
                if selection.failed(self, error, value.len(), authenticated) {
                    break 'headers;
                }
            }
            selection.note_hidden(&text, &self.cookie_name);
            if use_previous {
                self.collect_previous(&text, &selection, &mut previous);
            }
        }
        // As in `open_request` (nothing collected when `use_previous` is
        // false).
        if let (Some((name, _)), 0) = (&self.previous, selection.tried) {
            for value in &previous {
                if !selection.may_try(self.max_cookies_tried) {
                    break;
                }
                let (error, authenticated) = match self.open_unrevoked_as(value, name) {
                    Ok(mut session) => match self.check_revocation(&mut session).await {
                        Ok(()) => {
                            return Ok(RequestSession::opened_from_previous(session, value.len()))
                        }
                        Err(error) => (error, Some(session.id)),
                    },
                    Err(error) => (error, None),
                };
                if selection.failed_previous(self, error, value.len(), authenticated) {
                    break;
                }
            }
        }
        selection.fresh(self)
    }

    /// The `Set-Cookie` header values the response to `request` sends, in
    /// order, given the `action` of its save (`saved.action`, or
    /// [`CookieAction::Unchanged`] when the host chose to send none): the
    /// session cookie or its deletion, then the deletion of a cookie of
    /// the previous name ([`SealerBuilder::previous_cookie_name`](crate::SealerBuilder::previous_cookie_name))
    /// that the request carried, when the session cookie is set or deleted
    /// or when that old cookie failed for good
    /// ([`RequestSession::previous_cookie_rejected_for_good`]), as the
    /// HTTP layer sends them. Send each as a header of its own, and when
    /// there is any, the response's `Cache-Control` as
    /// [`private_cache_control`](crate::private_cache_control) makes it.
    /// Without the old cookie's deletion, a logout would not hold: the old
    /// cookie, still in the browser, would open on the next request.
    ///
    /// ```
    /// use sealed_session::{KeyRing, MasterKey, Sealer};
    /// let key = MasterKey::generate()?.to_base64();
    /// let ring = || key.parse::<MasterKey>().map(KeyRing::new);
    /// let before = Sealer::builder(ring()?).build()?; // cookie `session`
    /// let mut session = before.new_session()?;
    /// session.insert("user", 42)?;
    /// let old_cookie = before.seal(&mut session)?;
    ///
    /// // Renamed: the old cookie still opens, until its logout deletes both.
    /// let sealer = Sealer::builder(ring()?)
    ///     .cookie_name("__Host-id")
    ///     .previous_cookie_name("session")
    ///     .build()?;
    /// let mut request = sealer.open_request([format!("session={old_cookie}")])?;
    /// assert!(request.opened_from_previous_name());
    /// request.session_mut().flush()?;
    /// let saved = sealer.save_request(&mut request)?;
    /// let headers = sealer.set_cookie_headers(&request, &saved.action);
    /// assert_eq!(headers.len(), 2);
    /// assert!(headers[0].starts_with("__Host-id=;") && headers[1].starts_with("session=;"));
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    pub fn set_cookie_headers<'a>(
        &'a self,
        request: &RequestSession,
        action: &'a CookieAction,
    ) -> Vec<&'a str> {
        let session_cookie = action.header_value();
        let previous_removal = self.previous_cookie_removal().filter(|_| {
            request.carried_previous_name
                && (session_cookie.is_some() || request.previous_rejected_for_good)
        });
        session_cookie.into_iter().chain(previous_removal).collect()
    }

    /// Saves a request's session for the response, as [`Sealer::save`]
    /// does, with the rules of a web framework's session middleware (as in
    /// Django and tower-sessions):
    ///
    /// - **No empty sessions.** A session without entries gets no cookie
    ///   ([`CookieAction::Unchanged`](crate::CookieAction::Unchanged)); the
    ///   cookie it was opened from is deleted, and so is a cookie that
    ///   failed to open for good (it was the request's only candidate, and
    ///   it is tampered, malformed, expired or revoked: every server would
    ///   refuse it). After [`Session::flush`] (logout) whatever session
    ///   cookie the request carried is deleted. The same holds for a
    ///   session the save itself empties, as when the budget drops every
    ///   entry: its report lists the drops, and no cookie is set for the
    ///   empty session (the token the save sealed is discarded; a new
    ///   session stays unsaved: [`Session::is_new`]).
    /// - **A cookie held back is kept.** When the request's cookie did not
    ///   open only because the revocation store could not answer
    ///   ([`RequestSession::held_back_by`]), a non-empty session is not
    ///   saved over it: this fails with that error, so an outage loses one
    ///   request's changes rather than the user's session. A logout
    ///   ([`Session::flush`] and nothing stored after it) still deletes
    ///   it, and a revocation store revokes its id. (A flush followed by
    ///   new entries is refused like any write: it may be a login, which
    ///   must not turn into a silent logout.)
    /// - **A deleted cookie is given up.** With a revocation store, the id
    ///   of the cookie a deletion removes (a session's the handler or the
    ///   save's budget emptied, a logout's) is revoked, as
    ///   [`Session::flush`] has it revoked.
    ///
    /// [`Sealer::save`] alone writes whatever the session holds, an empty
    /// one included.
    ///
    /// # Errors
    ///
    /// [`StoreError::NeedsAsync`] on a sealer with an overflow store or a
    /// revocation check (see [`Sealer::open_request`]); otherwise those of
    /// [`Sealer::save`], and [`Error::Random`] if the nonce cannot be drawn.
    pub fn save_request(&self, request: &mut RequestSession) -> Result<Saved, Error> {
        self.check_sync_request()?;
        if let Some(saved) = self.settle_request(request)? {
            return Ok(saved);
        }
        let before = BeforeSave::of(request);
        let saved = self.save_held(&mut request.session)?;
        // No revocation store here (refused above): nothing to revoke.
        Ok(self.unless_emptied(request, saved, &before).0)
    }

    /// As [`Sealer::save_request`], saving with [`Sealer::save_async`]
    /// (the overflow store).
    ///
    /// # Cancellation
    ///
    /// Dropped before it returns (the client went away, a timeout), a
    /// logout's save may not have recorded its revocation: no cookie
    /// deletion went out either, so the client and any copy of its cookie
    /// stay logged in. Run a logout's save to completion (on a task of its
    /// own, or through the host's `waitUntil`), or keep the
    /// [`RequestSession`] where a drop can reach it: if
    /// [`RequestSession::logout_unrecorded`], finish it with
    /// [`Sealer::finish_dropped_logout`]. The `axum` layer does the latter.
    ///
    /// # Errors
    ///
    /// The [`StoreError::Unavailable`] that held the request's cookie back
    /// ([`RequestSession::held_back_by`]), unless the session is empty;
    /// otherwise those of [`Sealer::save_async`]. A failed revocation is
    /// no error (see [`SaveReport::unrevoked`](crate::SaveReport::unrevoked)).
    pub async fn save_request_async(&self, request: &mut RequestSession) -> Result<Saved, Error> {
        if let Some(saved) = self.settle_request(request)? {
            return Ok(saved);
        }
        let before = BeforeSave::of(request);
        let saved = self.save_async_held(&mut request.session).await?;
        let (mut saved, given_up) = self.unless_emptied(request, saved, &before);
        // Emptied by the save: as every deletion by a request save, the
        // cookie's id is given up, and a revocation store revokes its
        // copies.
        if let Some(error) = self.revoke_replaced(given_up).await {
            saved.report.unrevoked = Some(error);
        }
        Ok(saved)
    }

    /// The rest of a logout whose save was dropped
    /// ([`RequestSession::logout_unrecorded`]): revokes the id it gives up
    /// and deletes its overflow blob, with no cookie to send (the response
    /// is gone). What the handler stored after the flush cannot reach the
    /// client and is not kept. `Ok(None)` if there is nothing left to do.
    ///
    /// # Errors
    ///
    /// Those of [`Sealer::save_request_async`] for an empty, flushed
    /// session: none today, as a logout never fails (see
    /// [`Sealer::save_async`]). A revocation that fails is no error: the
    /// report's [`unrevoked`](crate::SaveReport::unrevoked) says so.
    pub async fn finish_dropped_logout(
        &self,
        request: &mut RequestSession,
    ) -> Result<Option<crate::SaveReport>, Error> {
        if !request.logout_unrecorded() {
            return Ok(None);
        }
        if request.session.is_flushed() {
            request.session.clear();
            let saved = self.save_request_async(request).await?;
            return Ok(Some(saved.report));
        }
        // Dropped after the save of what was stored after the flush, while
        // it revoked the old id: only that is left to do (the new cookie
        // never reached the client).
        let given_up = request.session.revoking_after_save.take();
        Ok(Some(crate::SaveReport {
            unrevoked: self.revoke_replaced(given_up).await,
            ..Default::default()
        }))
    }

    /// `saved`, unless the save's budget dropped every entry (or it found
    /// every entry's blob gone): an empty session is not worth a cookie
    /// either, so instead of the sealed empty session, what an emptied
    /// session gets (nothing, the session left unsaved, or the deletion of
    /// the cookie the request carried), its report still listing the
    /// drops. With a deletion, also the id it gives up for revocation.
    fn unless_emptied(
        &self,
        request: &mut RequestSession,
        saved: Saved,
        before: &BeforeSave,
    ) -> (Saved, Option<crate::SessionId>) {
        if !matches!(saved.action, CookieAction::Set(_)) || !request.session.is_empty() {
            return (saved, None);
        }
        let session = &mut request.session;
        let (mut instead, given_up) = match before.deletes_carried_cookie {
            true => (self.deletion(session), before.opened_id),
            false => {
                // The save marked it saved, but no cookie carries it.
                session.issued_at = before.issued_at;
                (self.unchanged(), None)
            }
        };
        instead.report.dropped = saved.report.dropped;
        instead.report.unrevoked = saved.report.unrevoked;
        (instead, given_up)
    }

    /// The synchronous request forms reach neither store: they refuse a
    /// sealer that has one.
    fn check_sync_request(&self) -> Result<(), Error> {
        match self.revocation.is_some() || self.overflow_store.is_some() {
            true => Err(Error::Store(StoreError::NeedsAsync)),
            false => Ok(()),
        }
    }

    /// The rules of [`Sealer::save_request`]: `Some` when they decide
    /// without a save; otherwise the session is ready to save (an emptied
    /// session whose cookie goes is marked flushed, for a deletion cookie).
    fn settle_request(&self, request: &mut RequestSession) -> Result<Option<Saved>, Error> {
        if request.session.is_empty() {
            if !request.deletes_carried_cookie() {
                return Ok(Some(self.unchanged()));
            }
            let session = &mut request.session;
            // Marked for the deletion cookie. Not `flush`: the new id it
            // draws would go nowhere, and a generator failure would turn
            // a deletion into an error. The cookie it opened from is given
            // up as by a flush: a revocation store revokes its copies too,
            // or those of the cookie held back (it authenticated).
            session.record_replaced_id();
            if session.replaced.is_none() {
                session.replaced = request.held_back.as_ref().map(|held| held.cookie);
            }
            session.flushed = true;
        } else if let Some(error) = request.held_back_by() {
            return Err(error.clone());
        }
        Ok(None)
    }
}

/// Whether a cookie that failed to open with `error` would fail on every
/// server of the deployment, now and later, so that deleting it loses
/// nothing. Not so for a store that cannot answer (a revocation check
/// during an outage), a key id that a server rolling out a new ring does
/// not know yet, a version or flag from a newer release, a clock that runs
/// behind, or a limit that servers may set differently.
fn fails_everywhere(error: &Error) -> bool {
    match error {
        Error::AuthenticationFailed | Error::Expired(_) | Error::Revoked => true,
        Error::Malformed(kind) => !matches!(
            kind,
            Malformed::UnknownVersion(_) | Malformed::UnknownFlags(_)
        ),
        _ => false,
    }
}

/// Whether a cookie that failed to open with `error` will open again once
/// an outage ends: the revocation store could not answer. Saving a fresh
/// session over such a cookie would log the user out for a moment's
/// trouble, so `save_request` does not. Other failures that another server
/// might not share are not counted: an unknown key id, version or flag, a
/// limit, or an issued-at in this server's future can each last (a retired
/// key, a rolled-back release, a server whose clock stays ahead), and
/// refusing every write until the cookie expires, logging in again
/// included, would lock the user out instead.
pub(crate) fn fails_for_now(error: &Error) -> bool {
    // Not a blob that is missing or fails authentication: that lasts, and
    // whoever can write to the store could otherwise hold cookies back.
    error.is_transient()
}

/// How loudly a cookie that did not open is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loudness {
    Debug,
    Info,
    Warn,
}

/// What anyone can send without a key is never above `INFO`, so that a
/// client cannot flood the warnings: `DEBUG` for the noise (expired, bad
/// base64, a failed tag), `INFO` for what may also be a deployment mistake
/// (a key or version this server lacks, limits lower than another
/// server's) or a replayed copy of a cookie that was logged out. `WARN` is
/// for what only a cookie sealed under a key of the ring, or this
/// server's stores, can cause (a payload that does not decode, an
/// issued-at ahead of this server's clock, a store that fails).
/// Exhaustive, so that a new error kind gets a level on purpose.
fn rejection_loudness(error: &Error) -> Loudness {
    match error {
        Error::Expired(_)
        | Error::AuthenticationFailed
        | Error::Malformed(Malformed::Base64 | Malformed::Truncated) => Loudness::Debug,
        Error::Revoked
        | Error::UnknownKeyId
        | Error::Malformed(Malformed::UnknownVersion(_) | Malformed::UnknownFlags(_))
        | Error::LimitExceeded(_) => Loudness::Info,
        // After authentication, or not from a cookie at all (then a bug).
        Error::Malformed(
            Malformed::Payload
            | Malformed::Compression
            | Malformed::Timestamp
            | Malformed::Json
            | Malformed::SessionId,
        )
        | Error::IssuedInFuture
        | Error::Value(_)
        | Error::Store(_)
        | Error::TooLarge { .. }
        | Error::InvalidKey(_)
        | Error::InvalidKeySetting { .. }
        | Error::InvalidEntryKey(_)
        | Error::InvalidCookie(_)
        | Error::InvalidSetting(_)
        | Error::Random
        | Error::NoClock
        | Error::HeldByLayer => Loudness::Warn,
    }
}

/// Logs a cookie that did not open: its error kind, the error's fixed text
/// (numbers at most: a version byte, flag bits), the cookie's length, never
/// its value.
fn log_rejected(sealer: &Sealer, error: &Error, len: usize, candidate: usize) {
    let kind = error.kind();
    macro_rules! rejected {
        ($level:ident) => {
            tracing::$level!(
                event = "cookie-refused",
                kind,
                error = %error,
                len,
                candidate,
                "session cookie not opened; the request gets a fresh session"
            )
        };
    }
    match rejection_loudness(error) {
        Loudness::Debug => rejected!(debug),
        Loudness::Info => rejected!(info),
        Loudness::Warn if error.is_transient() => {
            match sealer.store_refusals.warn_now(sealer.clock.now()) {
                Some(since_last_warn) => tracing::warn!(
                    event = "cookie-refused",
                    kind,
                    error = %error,
                    len,
                    candidate,
                    since_last_warn,
                    "session cookie not opened; the request gets a fresh session"
                ),
                None => rejected!(debug),
            }
        }
        Loudness::Warn => rejected!(warn),
    }
}

/// Seconds of the sealer's clock between two `cookie-refused` WARNs for a
/// store out of reach: in an outage every request that checks revocation
/// fails alike, and the store reports the outage itself.
const STORE_WARN_INTERVAL: u64 = 10;

/// Spaces out the WARNs for cookies a store out of reach held back (one
/// sealer's, shared with its copies for other cookie domains); the others
/// are logged at `DEBUG`.
#[derive(Debug, Default)]
pub(crate) struct StoreRefusals {
    /// The clock's second from which the next WARN may be logged.
    next_warn: AtomicU64,
    /// Refusals logged at `DEBUG` since the last WARN.
    since_last_warn: AtomicU64,
}

impl StoreRefusals {
    /// For a refusal at `now`: `Some(refusals logged at DEBUG since the
    /// last WARN)` when this one is to be a WARN.
    fn warn_now(&self, now: u64) -> Option<u64> {
        let next = self.next_warn.load(Ordering::Relaxed);
        let next_after = now.saturating_add(STORE_WARN_INTERVAL);
        // A clock set back would otherwise silence the WARNs until it
        // caught up again.
        let due = now >= next || next > next_after;
        if due
            && self
                .next_warn
                .compare_exchange(next, next_after, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.since_last_warn.swap(0, Ordering::Relaxed));
        }
        self.since_last_warn.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_out_of_reach_is_warned_about_once_per_interval() {
        let refusals = StoreRefusals::default();
        let t0 = 1_700_000_000;
        assert_eq!(refusals.warn_now(t0), Some(0));
        assert_eq!(refusals.warn_now(t0), None);
        assert_eq!(refusals.warn_now(t0 + STORE_WARN_INTERVAL - 1), None);
        assert_eq!(refusals.warn_now(t0 + STORE_WARN_INTERVAL), Some(2));
        assert_eq!(refusals.warn_now(t0 + STORE_WARN_INTERVAL), None);
        // The clock set back a day: warned at once, not a day later.
        assert_eq!(refusals.warn_now(t0 - 86_400), Some(1));
        assert_eq!(refusals.warn_now(t0 - 86_400), None);
    }

    #[test]
    fn only_an_unreachable_store_holds_a_cookie_back() {
        assert!(fails_for_now(&Error::Store(StoreError::Unavailable)));
        // A blob gone or forged in the store lasts; holding the cookie back
        // for it would refuse the user's writes until the cookie expired.
        for lasting in [StoreError::Missing, StoreError::Rejected] {
            assert!(!fails_for_now(&Error::Store(lasting)), "{lasting:?}");
        }
        assert!(!fails_for_now(&Error::UnknownKeyId));
    }

    #[test]
    fn named_values_are_the_cookie_crates_with_one_pair_of_quotes_removed() {
        let text = "a=1; id=\"v1\"; \u{2000}id=x; id = v2 ;id=\"\"\"; id=\"";
        let values: Vec<&str> = named_values(text, "id").collect();
        assert_eq!(values, ["v1", "v2", "\"", "\""]);
    }

    #[test]
    fn named_values_end_before_a_comma() {
        // Lines joined with ", " by a proxy, a quoted value among them; a
        // comma only splits our value, never a neighbour into a candidate.
        let text = "id=v1, lang=en; id=\"v2\" ,x=1; a=b, id=v3; id=,v4";
        let values: Vec<&str> = named_values(text, "id").collect();
        assert_eq!(values, ["v1", "v2", ""]);
    }
}
