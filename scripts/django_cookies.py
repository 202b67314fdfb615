#!/usr/bin/env python3
"""Make and check Django `signed_cookies` session cookies with real Django.

Used by the crate's Django tests (tests/django_fixtures.rs,
tests/django_live.rs). Needs Django >= 4.1 (for `SECRET_KEY_FALLBACKS`; `pip install "django>=4.1"`).

Subcommands (JSON in on stdin where noted, JSON out on stdout):

  fixtures [--now UNIX_SECS]
      Print the fixture file (tests/data/django/cookies.json): cookies made
      by Django's own session backend (some after set_expiry, with Django's
      account of that expiry), plus well-signed bad inputs made with
      django.core.signing, each with Django's own verdict when loading it.

  dumps   {"cases": [{"name", "secret", "session", "now"}]}
      Write each session as the signed_cookies backend does
      (SessionStore.save() at the given time); prints {"results": [{"name",
      "cookie"}]}.

  load    {"cases": [{"name", "secret", "fallback_secrets", "cookie", "now",
                      "max_age"}]}
      Load each cookie as the backend's load() does (signing.loads with
      max_age=SESSION_COOKIE_AGE) and through SessionStore itself; prints
      {"results": [{"name", "ok", "session" | "error"}]}.

Regenerate the fixture file with:

  python3 scripts/django_cookies.py fixtures > tests/data/django/cookies.json
"""

import argparse
import base64
import datetime
import json
import random
import sys
import zlib
from unittest import mock

import django
from django.conf import settings

SALT = "django.contrib.sessions.backends.signed_cookies"
FIXTURE_NOW = 1_700_000_000
DEFAULT_AGE = 1_209_600

settings.configure(
    SECRET_KEY="placeholder",
    SECRET_KEY_FALLBACKS=[],
    INSTALLED_APPS=["django.contrib.sessions"],
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    SESSION_SERIALIZER="django.contrib.sessions.serializers.JSONSerializer",
    USE_TZ=True,
)
django.setup()

from django.contrib.sessions.backends.signed_cookies import SessionStore  # noqa: E402
from django.core import signing  # noqa: E402


def configure(secret, fallbacks=(), max_age=DEFAULT_AGE):
    settings.SECRET_KEY = secret
    settings.SECRET_KEY_FALLBACKS = list(fallbacks)
    settings.SESSION_COOKIE_AGE = max_age


def at(now):
    """Patch the clock Django's signing module reads (time.time)."""
    return mock.patch("time.time", return_value=float(now))


def aware_at(now):
    """Patch the clock Django's session expiry reads (timezone.now)."""
    moment = datetime.datetime.fromtimestamp(now, tz=datetime.timezone.utc)
    return mock.patch("django.utils.timezone.now", return_value=moment)


def backend_dumps(session, secret, now):
    """A cookie exactly as the signed_cookies backend writes it."""
    return backend_dumps_with_expiry(session, secret, now, None)[0]


def backend_dumps_with_expiry(session, secret, now, expiry, at_browser_close=False):
    """A cookie the backend writes after `set_expiry(expiry)` (none when
    `expiry` is None), with Django's own account of that expiry at `now`:
    the age it gives the cookie, and whether it ends with the browser
    (under SESSION_EXPIRE_AT_BROWSER_CLOSE = `at_browser_close`)."""
    configure(secret)
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = at_browser_close
    try:
        store = SessionStore()
        store.update(session)
        with at(now), aware_at(now):
            if expiry is not None:
                store.set_expiry(expiry)
            store.save()
            view = {
                "expiry_age": store.get_expiry_age(),
                "browser_close": store.get_expire_at_browser_close(),
            }
    finally:
        settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = False
    return store.session_key, view


def signer(secret):
    return signing.TimestampSigner(key=secret, salt=SALT, fallback_keys=[])


def sign_inner(secret, inner, now):
    """Sign an arbitrary inner value as TimestampSigner does (for bad input)."""
    with at(now):
        return signer(secret).sign(inner)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def django_load(cookie, secret, fallbacks, now, max_age):
    """Django's verdict: what SessionStore.load() would do, with its error."""
    configure(secret, fallbacks, max_age)
    with at(now):
        try:
            value = signing.loads(
                cookie,
                serializer=signing.JSONSerializer,
                max_age=max_age,
                salt=SALT,
            )
        except Exception as exc:  # what load() swallows
            return {"ok": False, "error": type(exc).__name__}
        store_value = SessionStore(session_key=cookie).load()
    if store_value != value:
        return {"ok": False, "error": "SessionStore.load() disagrees with signing.loads()"}
    return {"ok": True, "session": value}


def sorted_session(session):
    """Sorted keys, so the crate's (sorted) maps write the same JSON."""
    return json.loads(json.dumps(session, sort_keys=True))


def fixtures(now):
    secret = "django-insecure-fixture-secret-0123456789abcdefghijklmnop"
    old = "django-insecure-previous-secret"
    cases = []

    def case(name, cookie, expect_error=None, *, secret=secret, fallbacks=(),
             check_now=None, max_age=DEFAULT_AGE, expiry=None, at_browser_close=False):
        check_now = now if check_now is None else check_now
        entry = {
            "name": name,
            "secret": secret,
            "fallback_secrets": list(fallbacks),
            "max_age": max_age,
            "now": check_now,
            "cookie": cookie,
            "compressed": cookie.startswith("."),
            "django": django_load(cookie, secret, fallbacks, check_now, max_age),
        }
        if expect_error:
            entry["expect_error"] = expect_error
        if expiry is not None:
            entry["django_expiry"] = expiry
        if at_browser_close:
            entry["expire_at_browser_close"] = True
        cases.append(entry)

    login = sorted_session({
        "_auth_user_id": "42",
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": "9f2c4b1e8d7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e",
    })
    case("login", backend_dumps(login, secret, now))
    case("empty", backend_dumps({}, secret, now))
    cart = sorted_session({"cart": [{"sku": "sku-%d" % i, "qty": i % 3 + 1} for i in range(40)]})
    case("compressed-cart", backend_dumps(cart, secret, now))
    unicode = sorted_session({
        "name": "José Müller",
        "city": "東京",
        "emoji": "😀🎉",
        "controls": "tab\tnewline\nnul\u0000del\u007fsep\u2028",
        "quotes": "\"double\" and \\backslash\\",
    })
    case("unicode", backend_dumps(unicode, secret, now))
    numbers = sorted_session({
        "int": 7,
        "negative": -123456789,
        "i64_min": -(2 ** 63),
        "u64_max": 2 ** 64 - 1,
        "floats": [0.1, 1.5, -2.25, 1e16, 1e15, 1e-05, 0.0001, 1.2345678901234568e17, -0.0, 3.0],
        "flags": [True, False, None],
        "nested": {"b": {"c": [1, [2, [3]]]}, "a": {}},
    })
    case("numbers-and-nesting", backend_dumps(numbers, secret, now))
    # Small sessions stay uncompressed: the crate must write them byte for byte.
    case("small-login", backend_dumps({"_auth_user_id": "1"}, secret, now))
    case("small-unicode", backend_dumps({"n": "é😀\u0000\u007f"}, secret, now))
    case("small-floats", backend_dumps({"f": [1e16, 1e-05, 0.1, 2.0, 1.0715660391465826e-75]}, secret, now))

    case("fallback-secret", backend_dumps(login, old, now),
         fallbacks=["unrelated-secret", old], secret="django-insecure-new-secret")
    case("fallback-not-configured", backend_dumps(login, old, now),
         "authentication-failed", secret="django-insecure-new-secret")
    case("wrong-secret", backend_dumps(login, secret, now), "authentication-failed",
         secret="another-secret")
    case("max-age-boundary", backend_dumps(login, secret, now), check_now=now + DEFAULT_AGE)
    case("expired", backend_dumps(login, secret, now), "expired-idle",
         check_now=now + DEFAULT_AGE + 1)
    case("expired-custom-age", backend_dumps(login, secret, now), "expired-idle",
         check_now=now + 61, max_age=60)
    case("timestamp-in-future", backend_dumps(login, secret, now + 3600))

    # request.session.set_expiry(...) as Django stores it (USE_TZ = True),
    # each with Django's own account of the expiry at `now`.
    utc = datetime.timezone.utc
    for name, expiry in [
        ("expiry-seconds", 300),
        ("expiry-browser-close", 0),
        ("expiry-timedelta", datetime.timedelta(hours=1)),
        ("expiry-datetime", datetime.datetime.fromtimestamp(now + 86400, tz=utc)),
    ]:
        cookie, view = backend_dumps_with_expiry(login, secret, now, expiry)
        case(name, cookie, expiry=view)
    # A date as a string of its own (set_expiry stores it as given), with a
    # space where isoformat() writes "T": Python's fromisoformat reads it.
    cookie, view = backend_dumps_with_expiry(
        login, secret, now,
        datetime.datetime.fromtimestamp(now + 7200, tz=utc).isoformat(" "))
    case("expiry-date-string-with-space", cookie, expiry=view)
    # No expiry of its own on a site with SESSION_EXPIRE_AT_BROWSER_CLOSE.
    cookie, view = backend_dumps_with_expiry(login, secret, now, None, at_browser_close=True)
    case("expiry-none-expire-at-browser-close", cookie, expiry=view, at_browser_close=True)
    # An end already past: Django 5.2 checks only max_age, this crate also
    # the session's own end.
    cookie, _ = backend_dumps_with_expiry(
        login, secret, now, datetime.datetime.fromtimestamp(now - 60, tz=utc))
    case("expiry-past", cookie, "expired-session")

    good = backend_dumps(login, secret, now)
    payload, ts, sig = good.rsplit(":", 2)
    flipped = payload[:5] + ("A" if payload[5] != "A" else "B") + payload[6:]
    case("tampered-payload", f"{flipped}:{ts}:{sig}", "authentication-failed")
    case("tampered-timestamp", f"{payload}:{signing.b62_encode(now + 1)}:{sig}",
         "authentication-failed")
    case("tampered-signature", f"{payload}:{ts}:{sig[:-1]}{'A' if sig[-1] != 'A' else 'B'}",
         "authentication-failed")
    case("truncated", good[: good.rindex(":")], "malformed:truncated")
    case("no-separator", payload, "malformed:truncated")

    case("bad-base64", sign_inner(secret, "eyJhIjoxfQaaa", now), "malformed:base64")
    with at(now):
        bad_b62 = signing.Signer(key=secret, salt=SALT, fallback_keys=[]).sign(
            b64(b'{"a":1}') + ":1*")
    case("bad-base62", bad_b62, "malformed:timestamp")
    case("bad-zlib", sign_inner(secret, "." + b64(b"not zlib data"), now),
         "malformed:compression")
    case("truncated-zlib",
         sign_inner(secret, "." + b64(zlib.compress(json.dumps(cart).encode())[:-8]), now),
         "malformed:compression")
    with at(now):
        not_object = signing.dumps([1, 2, 3], key=secret, salt=SALT, compress=True)
    case("json-not-an-object", not_object, "malformed:json")
    case("bad-json", sign_inner(secret, b64(b'{"a":'), now), "malformed:json")
    bomb = zlib.compress(b'{"a":"' + b"x" * 1_000_000 + b'"}', 9)
    case("decompression-over-cap", sign_inner(secret, "." + b64(bomb), now),
         "limit-exceeded:decompressed-size")
    rng = random.Random(5)
    noise = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(6000))
    case("oversized", backend_dumps({"noise": noise}, secret, now), "limit-exceeded:token-length")

    return {
        "description": "Django signed_cookies session cookies made by real Django, "
                       "with Django's own verdict on each; expect_error is the "
                       "sealed-session error for inputs it refuses.",
        "generator": "scripts/django_cookies.py fixtures",
        "django_version": django.get_version(),
        "salt": SALT,
        "cases": cases,
    }


def cmd_dumps(request):
    results = []
    for c in request["cases"]:
        results.append({
            "name": c["name"],
            "cookie": backend_dumps(c["session"], c["secret"], c["now"]),
        })
    return {"django_version": django.get_version(), "results": results}


def cmd_load(request):
    results = []
    for c in request["cases"]:
        verdict = django_load(c["cookie"], c["secret"], c.get("fallback_secrets", []),
                              c["now"], c.get("max_age", DEFAULT_AGE))
        verdict["name"] = c["name"]
        results.append(verdict)
    return {"django_version": django.get_version(), "results": results}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fx = sub.add_parser("fixtures")
    fx.add_argument("--now", type=int, default=FIXTURE_NOW)
    sub.add_parser("dumps")
    sub.add_parser("load")
    args = parser.parse_args()
    if args.command == "fixtures":
        out = fixtures(args.now)
    elif args.command == "dumps":
        out = cmd_dumps(json.load(sys.stdin))
    else:
        out = cmd_load(json.load(sys.stdin))
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
