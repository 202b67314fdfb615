//! The `Cache-Control` of a response that sets or deletes the session
//! cookie: what the HTTP layer sends, for hosts without it.

/// The one `Cache-Control` line to send, in place of the response's own
/// `lines`, when the response carries a session `Set-Cookie`; `None` when
/// the lines already keep it out of shared caches (send them as they are).
///
/// A shared cache must not hand one visitor's new cookie to the next, and
/// `Vary: Cookie` alone would let it replay the cookie to every visitor
/// without one. So the result is `private` followed by the response's
/// other directives, in place of `public` and of a `private` with a field
/// list (`private="X-Foo"` lets a shared cache store the response without
/// those fields, and the session's `Set-Cookie` is not among them). It is
/// one line, `private` first: a cache that reads only the first line (as
/// some do) sees it, and a quoted string the handler left open cannot
/// swallow it. Lines that already say `no-store`, or `private` without a
/// field list, and say `public` nowhere, are kept (`None`).
///
/// The HTTP layer applies this to every response with a session
/// `Set-Cookie`; a host on the request API
/// ([`Sealer::set_cookie_headers`](crate::Sealer::set_cookie_headers))
/// applies it itself. A line that is not text (in a host's own header
/// type) may say anything: keep it, and send `private` on a line of its
/// own, as the layer does.
///
/// ```
/// use sealed_session::private_cache_control;
///
/// let handler_said = ["public, max-age=60"];
/// assert_eq!(private_cache_control(handler_said).as_deref(), Some("private, max-age=60"));
/// assert_eq!(private_cache_control([]).as_deref(), Some("private"));
/// assert_eq!(private_cache_control(["no-store"]), None);
/// ```
pub fn private_cache_control<'a, I>(lines: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
    I::IntoIter: Clone,
{
    let lines = lines.into_iter();
    let (mut kept_out, mut public, mut left_open) = (false, false, false);
    for directive in cache_directives(lines.clone()) {
        kept_out |= directive_name(directive).eq_ignore_ascii_case("no-store")
            || directive.eq_ignore_ascii_case("private");
        public |= directive_name(directive).eq_ignore_ascii_case("public");
        // A quoted string left open may hide a `public`.
        left_open |= QuoteScan::leaves_open(directive);
    }
    if kept_out && !public && !left_open {
        return None;
    }
    let mut merged = String::from("private");
    for directive in cache_directives(lines) {
        let superseded = directive_name(directive).eq_ignore_ascii_case("public")
            || directive_name(directive).eq_ignore_ascii_case("private");
        if !directive.is_empty() && !superseded {
            merged.push_str(", ");
            merged.push_str(directive);
        }
    }
    Some(merged)
}

/// A `Cache-Control` directive's name (what comes before any `=`).
fn directive_name(directive: &str) -> &str {
    directive.split('=').next().unwrap_or_default().trim_end()
}

/// Where a scan of a header value stands with its quoted strings
/// (RFC 9110 §5.6.4: `"` opens and closes one, `\` escapes the next
/// character inside one).
#[derive(Default, Clone, Copy)]
struct QuoteScan {
    quoted: bool,
    escaped: bool,
}

impl QuoteScan {
    /// Takes in `c`; returns whether it stands outside a quoted string
    /// and is not a quote itself.
    fn step(&mut self, c: char) -> bool {
        match (self.quoted, self.escaped, c) {
            (true, true, _) => self.escaped = false,
            (true, false, '\\') => self.escaped = true,
            (_, _, '"') => self.quoted = !self.quoted,
            (false, _, _) => return true,
            _ => {}
        }
        false
    }

    /// Whether `text` ends inside a quoted string.
    fn leaves_open(text: &str) -> bool {
        let mut scan = QuoteScan::default();
        text.chars().for_each(|c| {
            scan.step(c);
        });
        scan.quoted
    }
}

/// The trimmed directives of `lines`, split at the commas outside quoted
/// strings: a field list (`no-cache="Set-Cookie, Foo"`) is one directive.
fn cache_directives<'a>(lines: impl Iterator<Item = &'a str>) -> impl Iterator<Item = &'a str> {
    lines
        .flat_map(|line| {
            let mut scan = QuoteScan::default();
            line.split(move |c: char| scan.step(c) && c == ',')
        })
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_split_outside_quoted_strings() {
        let lines = [r#"no-cache="a\", b", max-age=1"#, r#" public ,"x,y""#];
        let directives: Vec<_> = cache_directives(lines.into_iter()).collect();
        assert_eq!(
            directives,
            [r#"no-cache="a\", b""#, "max-age=1", "public", r#""x,y""#]
        );
        assert_eq!(
            private_cache_control(lines).as_deref(),
            Some(r#"private, no-cache="a\", b", max-age=1, "x,y""#)
        );
    }

    #[test]
    fn lines_that_keep_shared_caches_out_are_kept() {
        assert_eq!(private_cache_control(["no-store, max-age=0"]), None);
        assert_eq!(private_cache_control(["max-age=5", "PRIVATE"]), None);
        // ... unless they also say `public`, or `private` names fields.
        assert_eq!(
            private_cache_control(["no-store", "public"]).as_deref(),
            Some("private, no-store")
        );
        assert_eq!(
            private_cache_control([r#"private="X-Foo", max-age=9"#]).as_deref(),
            Some("private, max-age=9")
        );
    }

    #[test]
    fn a_quoted_string_left_open_does_not_hide_public() {
        // A `no-store` before a quoted string left open (an escaped quote
        // does not close it) does not keep out a `public` inside it.
        assert_eq!(
            private_cache_control([r#"no-store, x="a\", public"#]).as_deref(),
            Some(r#"private, no-store, x="a\", public"#)
        );
    }
}
