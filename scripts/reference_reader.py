#!/usr/bin/env python3
"""An independent reader and writer of the sealed-session v1 token format.

Written from docs/FORMAT.md and test-vectors/README.md, not from the Rust
sources: if this script and the crate disagree, one of the documents or the
crate is wrong.

Usage:  python3 scripts/reference_reader.py [test-vectors]

Checks every file of the directory:

* format-v1.json: each token opens to the expected session or fails with the
  expected error kind; the decrypted plaintext equals plaintext_hex; every
  valid token is re-sealed from its session data, key, nonce and issued-at
  and must come out identical (compressed tokens: see FORMAT.md section 10 --
  compressed bytes are not canonical, so a different deflate stream is
  checked by decrypting it instead).
* budget-v1.json: the drop algorithm run on the listed entries keeps and
  drops the expected keys and gives the expected Set-Cookie header length.
* overflow-v1.json: each cookie opens, its overflow blob loads from the
  listed store contents into the expected entries, or fails with the
  expected store error (section 15).

Not covered (the vectors do not pin them, or only the Rust tests do):
the value depth limit and most of the `value` kind of section 11.5 (values
are decoded with cbor2, which has no depth limit, only to compare them with
the JSON; so `value-at-depth-limit`, which pins only that a value at the
limit decodes, passes here without a depth check; what is checked of the
`value` kind is that a value which is not exactly one item cbor2 can read
fails, as `value-not-decodable` has it); writing an
overflow blob (section 15; reading one is checked); the budget with a
store or with compression,
and Max-Age beyond the budget file's fixed policy (section 14); the writer's
own limits (section 7 step 0); taking the token from a request (14.4).

Prints one line per failure and ends with `N passed, M failed`; exits 1 on
any failure. Needs PyNaCl and cbor2 (`python3 -m pip install pynacl cbor2`).
"""

import hashlib
import hmac
import io
import json
import math
import os
import struct
import sys
import zlib

import cbor2
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError

# --- FORMAT.md section 2: keys ---------------------------------------------

HKDF_SALT = b"sealed-session/v1"
INFO_KEY = b"sealed-session/v1 XChaCha20-Poly1305 key"
INFO_KEY_ID = b"sealed-session/v1 key id"
MIN_MASTER_KEY_LEN = 32

# --- FORMAT.md section 3: layout -------------------------------------------

VERSION = 1
FLAG_COMPRESSED = 0x01
HEADER_LEN = 18
NONCE_LEN = 24
TAG_LEN = 16
OVERHEAD = HEADER_LEN + NONCE_LEN + TAG_LEN  # 58

# --- FORMAT.md section 11: payload -----------------------------------------

PAYLOAD_FLAG_BROWSER_SESSION = 0x01
PAYLOAD_FLAG_IDLE = 0x02  # expires_at holds the session's own idle timeout
PRIORITIES = ["low", "normal", "high", "critical"]

B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
B64_INDEX = {c: i for i, c in enumerate(B64_ALPHABET)}


class OpenError(Exception):
    """Opening failed; `kind` is the error kind of FORMAT.md section 16."""

    def __init__(self, kind, why):
        super().__init__(f"{kind}: {why}")
        self.kind = kind
        self.why = why


# --- HKDF-SHA256 (RFC 5869) -------------------------------------------------


def hkdf_sha256(salt, ikm, info, length):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


class Key:
    def __init__(self, master):
        if len(master) < MIN_MASTER_KEY_LEN:
            raise OpenError("invalid-key", "master keys are at least 32 bytes")
        self.aead_key = hkdf_sha256(HKDF_SALT, master, INFO_KEY, 32)
        self.key_id = hkdf_sha256(HKDF_SALT, master, INFO_KEY_ID, 8)


class Ring:
    """A primary key and fallbacks, looked up by key id (primary first)."""

    def __init__(self, primary, fallbacks=()):
        self.keys = [Key(primary)] + [Key(k) for k in fallbacks]
        ids = [k.key_id for k in self.keys]
        if len(set(ids)) != len(ids):
            raise OpenError("invalid-key", "two keys of the ring share a key id")

    def find(self, key_id):
        for i, key in enumerate(self.keys):
            if key.key_id == key_id:
                return key, i > 0
        return None, False


# --- strict unpadded base64url (FORMAT.md section 9) ------------------------


def b64url_encode(data):
    out = []
    for i in range(0, len(data), 3):
        chunk = data[i : i + 3]
        n = int.from_bytes(chunk + b"\0" * (3 - len(chunk)), "big")
        chars = [B64_ALPHABET[(n >> s) & 63] for s in (18, 12, 6, 0)]
        out.extend(chars[: len(chunk) + 1])
    return "".join(out)


def b64url_decode_strict(text):
    if len(text) % 4 == 1:
        raise OpenError("malformed", "base64 length is 1 mod 4")
    bits, nbits, out = 0, 0, bytearray()
    for c in text:
        v = B64_INDEX.get(c)
        if v is None:
            raise OpenError("malformed", f"character {c!r} is not in the base64url alphabet")
        bits = (bits << 6) | v
        nbits += 6
        if nbits >= 8:
            nbits -= 8
            out.append((bits >> nbits) & 0xFF)
            bits &= (1 << nbits) - 1
    if bits != 0:
        raise OpenError("malformed", "non-zero unused trailing bits")
    return bytes(out)


def b64url_len(n):
    return n // 3 * 4 + [0, 2, 3][n % 3]


# --- associated data and the AEAD (FORMAT.md sections 5, 7, 10) ------------


def associated_data(header, cookie_name):
    name = cookie_name.encode("utf-8")
    return header + struct.pack(">I", len(name)) + name


def header_bytes(flags, key_id, issued_at):
    return bytes([VERSION, flags]) + key_id + struct.pack(">Q", issued_at)


def deflate_raw(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def inflate_raw_capped(data, cap):
    d = zlib.decompressobj(-15)
    try:
        out = d.decompress(data, cap + 1)
    except zlib.error as e:
        raise OpenError("malformed", f"not raw deflate: {e}")
    if len(out) > cap:
        raise OpenError("limit-exceeded", f"inflates past the cap of {cap} bytes")
    if not d.eof:
        if d.unconsumed_tail:
            # Output stopped at cap + 1 without reaching it: impossible, but be safe.
            raise OpenError("limit-exceeded", "inflates past the cap")
        raise OpenError("malformed", "deflate stream is truncated")
    if d.unused_data:
        raise OpenError("malformed", "bytes after the end of the deflate stream")
    return out


def seal(master, cookie_name, issued_at, plaintext, nonce, compression_threshold=None):
    """FORMAT.md section 7: sealing."""
    key = Key(master)
    flags = 0
    body = plaintext
    if compression_threshold is not None and len(plaintext) >= compression_threshold and plaintext:
        compressed = deflate_raw(plaintext)
        if len(compressed) < len(plaintext):
            body, flags = compressed, FLAG_COMPRESSED
    header = header_bytes(flags, key.key_id, issued_at)
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(
        body, associated_data(header, cookie_name), nonce, key.aead_key
    )
    return b64url_encode(header + nonce + sealed)


def open_token(ring, cookie_name, token, limits):
    """FORMAT.md section 8, steps 1-8. Returns (header dict, plaintext, used_fallback)."""
    # surrogatepass: a lone surrogate (which no HTTP header decodes to) is
    # measured as 3 bytes, as step 1 comes before the alphabet check that
    # refuses it.
    if len(token.encode("utf-8", "surrogatepass")) > limits["max_token_len"]:
        raise OpenError("limit-exceeded", "token longer than max_token_len")
    raw = b64url_decode_strict(token)
    if len(raw) < OVERHEAD:
        raise OpenError("malformed", f"{len(raw)} bytes, shorter than {OVERHEAD}")
    if raw[0] != VERSION:
        raise OpenError("malformed", f"unknown version {raw[0]}")
    if raw[1] & ~FLAG_COMPRESSED & 0xFF:
        raise OpenError("malformed", f"unknown flag bits {raw[1]:#04x}")
    header = raw[:HEADER_LEN]
    key_id = raw[2:10]
    issued_at = struct.unpack(">Q", raw[10:18])[0]
    key, used_fallback = ring.find(key_id)
    if key is None:
        raise OpenError("unknown-key-id", key_id.hex())
    nonce = raw[HEADER_LEN : HEADER_LEN + NONCE_LEN]
    try:
        body = crypto_aead_xchacha20poly1305_ietf_decrypt(
            raw[HEADER_LEN + NONCE_LEN :],
            associated_data(header, cookie_name),
            nonce,
            key.aead_key,
        )
    except CryptoError:
        raise OpenError("authentication-failed", "tag does not verify")
    compressed = bool(raw[1] & FLAG_COMPRESSED)
    plaintext = inflate_raw_capped(body, limits["max_decompressed"]) if compressed else body
    head = {"flags": raw[1], "key_id": key_id, "issued_at": issued_at, "compressed": compressed}
    return head, plaintext, used_fallback


# --- the payload: a strict walker of the outer CBOR structure (section 11.4)


class Walker:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def bad(self, why):
        raise OpenError("malformed", f"payload: {why} at offset {self.pos}")

    def head(self):
        """Returns (major, argument); indefinite lengths, reserved additional
        information, floats and heads longer than needed are refused."""
        if self.pos >= len(self.data):
            self.bad("unexpected end")
        initial = self.data[self.pos]
        major, info = initial >> 5, initial & 0x1F
        if info < 24:
            self.pos += 1
            return major, info
        if info in (24, 25, 26, 27):
            n = 1 << (info - 24)
            if major == 7 and n > 1:
                self.bad("float")
            arg = self.data[self.pos + 1 : self.pos + 1 + n]
            if len(arg) != n:
                self.bad("truncated head")
            self.pos += 1 + n
            value = int.from_bytes(arg, "big")
            if major == 7:
                if value < 32:
                    self.bad("one-byte simple value below 32")
            elif value < (24 if n == 1 else 1 << (4 * n)):
                self.bad("head not in shortest form")
            return major, value
        self.bad("indefinite length or reserved additional information")

    def uint(self):
        major, n = self.head()
        if major != 0:
            self.bad("expected an unsigned integer")
        return n

    def array(self):
        major, n = self.head()
        if major != 4:
            self.bad("expected an array")
        return n

    def take(self, n):
        if self.pos + n > len(self.data):
            self.bad("string runs past the end")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def bstr(self):
        major, n = self.head()
        if major != 2:
            self.bad("expected a byte string")
        return self.take(n)

    def tstr(self):
        major, n = self.head()
        if major != 3:
            self.bad("expected a text string")
        raw = self.take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.bad("text string is not UTF-8")

    def key(self):
        key = self.tstr()
        if key == "" or key.startswith("_"):
            self.bad("empty or reserved key")
        return key

    def priority(self):
        n = self.uint()
        if n > 3:
            self.bad(f"priority {n}")
        return PRIORITIES[n]

    def bounded_array(self, max_entries):
        n = self.array()
        if n > max_entries:
            raise OpenError("limit-exceeded", f"{n} entries, limit {max_entries}")
        if n > len(self.data) - self.pos:
            self.bad(f"{n} elements cannot fit in the remaining bytes")
        return n


def parse_payload(plaintext, max_entries):
    w = Walker(plaintext)
    fields = w.array()
    if fields not in (5, 6):
        w.bad(f"array of {fields}, not 5 or 6")
    created_at = w.uint()
    major, n = w.head()
    if major == 0:
        expires_at = n
    elif major == 7 and n == 22:
        expires_at = None
    else:
        w.bad("expires_at is neither uint nor null")
    session_id = w.bstr()
    if len(session_id) != 16:
        w.bad("session id is not 16 bytes")
    flags = w.uint()
    if flags & ~(PAYLOAD_FLAG_BROWSER_SESSION | PAYLOAD_FLAG_IDLE):
        w.bad(f"unknown payload flags {flags:#x}")
    if flags & PAYLOAD_FLAG_IDLE and (expires_at is None or flags & PAYLOAD_FLAG_BROWSER_SESSION):
        w.bad("idle flag without a window, or with the browser-session flag")
    if flags & PAYLOAD_FLAG_BROWSER_SESSION and expires_at is not None:
        w.bad("browser-session flag with an end")
    entries = []
    for _ in range(w.bounded_array(max_entries)):
        if w.array() != 3:
            w.bad("entry is not an array of 3")
        key = w.key()
        priority = w.priority()
        value = w.bstr()
        entries.append({"key": key, "priority": priority, "value": value})
    overflow = None
    if fields == 6:
        if w.array() != 2:
            w.bad("overflow is not an array of 2")
        reference = w.bstr()
        if len(reference) != 16:
            w.bad("overflow reference is not 16 bytes")
        keys = []
        count = w.bounded_array(max_entries - len(entries))
        if count == 0:
            w.bad("overflow element lists no keys")
        for _ in range(count):
            if w.array() != 2:
                w.bad("overflow key is not an array of 2")
            keys.append({"key": w.key(), "priority": w.priority()})
        overflow = {"reference": reference, "keys": keys}
    if w.pos != len(plaintext):
        w.bad("trailing bytes")
    all_keys = [e["key"] for e in entries] + [k["key"] for k in (overflow or {"keys": []})["keys"]]
    if len(set(k.encode("utf-8") for k in all_keys)) != len(all_keys):
        w.bad("duplicate key")
    return {
        "created_at": created_at,
        "expires_at": expires_at,
        "session_id": session_id,
        "flags": flags,
        "entries": entries,
        "overflow": overflow,
    }


def open_session(ring, cookie_name, token, now, limits, policy):
    """FORMAT.md section 8, all steps, with the time rules of section 12."""
    head, plaintext, used_fallback = open_token(ring, cookie_name, token, limits)
    issued_at = head["issued_at"]
    if issued_at > now + policy["clock_skew"]:
        raise OpenError("issued-in-future", f"issued at {issued_at}, now {now}")
    age = max(0, now - issued_at)
    if policy["max_idle"] is not None and age > policy["max_idle"]:
        raise OpenError("expired-idle", f"age {age} > {policy['max_idle']}")
    p = parse_payload(plaintext, limits["max_entries"])
    if p["created_at"] > issued_at:
        raise OpenError("malformed", "created_at is later than issued_at")
    if policy["max_lifetime"] is not None and max(0, now - p["created_at"]) > policy["max_lifetime"]:
        raise OpenError("expired-lifetime", "older than max_lifetime")
    # With flag bit 1 the expires_at field is the session's own idle timeout.
    idle_timeout = p["expires_at"] if p["flags"] & PAYLOAD_FLAG_IDLE else None
    if idle_timeout is not None:
        if age > idle_timeout:
            raise OpenError("expired-idle", f"age {age} > own idle timeout {idle_timeout}")
        p["expires_at"] = None
    elif p["expires_at"] is not None and now >= p["expires_at"]:
        raise OpenError("expired-session", "now >= expires_at")
    fraction = min(max(policy["refresh_fraction"], 0.0), 1.0)
    windows = [w for w in (policy["max_idle"], idle_timeout) if w is not None]
    refresh_due = False
    if windows and fraction < 1.0:
        refresh_due = age >= math.floor(min(windows) * fraction)
    p.update(
        # Section 11.2: the session's created-at is never in the reader's future.
        created_at=min(p["created_at"], now),
        issued_at=issued_at,
        compressed=head["compressed"],
        used_fallback=used_fallback,
        refresh_due=refresh_due,
        idle_timeout=idle_timeout,
        browser_session=p["expires_at"] is None and bool(p["flags"] & PAYLOAD_FLAG_BROWSER_SESSION),
        plaintext=plaintext,
    )
    return p


# --- the writer: canonical payload encoding (section 11.3) ------------------


def cbor_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    raise ValueError("argument too large")


def encode_payload(created_at, expires_at, session_id, flags, entries, overflow=None):
    out = bytearray(cbor_head(4, 6 if overflow else 5))
    out += cbor_head(0, created_at)
    out += cbor_head(0, expires_at) if expires_at is not None else b"\xf6"
    out += cbor_head(2, len(session_id)) + session_id
    out += cbor_head(0, flags)
    out += cbor_head(4, len(entries))
    for key, priority, value in entries:
        k = key.encode("utf-8")
        out += b"\x83" + cbor_head(3, len(k)) + k + cbor_head(0, PRIORITIES.index(priority))
        out += cbor_head(2, len(value)) + value
    if overflow:
        reference, keys = overflow
        out += b"\x82" + cbor_head(2, len(reference)) + reference + cbor_head(4, len(keys))
        for key, priority in keys:
            k = key.encode("utf-8")
            out += b"\x82" + cbor_head(3, len(k)) + k + cbor_head(0, PRIORITIES.index(priority))
    return bytes(out)


def encode_json_value(v):
    """A JSON value as the reference writer encodes it (test-vectors/README.md):
    minimal heads, definite lengths, map keys in byte order, floats in the
    shortest form that keeps the value."""
    if v is None:
        return b"\xf6"
    if v is True:
        return b"\xf5"
    if v is False:
        return b"\xf4"
    if isinstance(v, int):
        return cbor_head(0, v) if v >= 0 else cbor_head(1, -1 - v)
    if isinstance(v, float):
        for fmt, initial in (("e", 0xF9), ("f", 0xFA)):
            try:
                packed = struct.pack(">" + fmt, v)
            except OverflowError:
                continue
            if struct.unpack(">" + fmt, packed)[0] == v or (v != v):
                return bytes([initial]) + packed
        return b"\xfb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode("utf-8")
        return cbor_head(3, len(b)) + b
    if isinstance(v, list):
        return cbor_head(4, len(v)) + b"".join(encode_json_value(x) for x in v)
    if isinstance(v, dict):
        items = sorted(v.items(), key=lambda kv: kv[0].encode("utf-8"))
        return cbor_head(5, len(items)) + b"".join(
            encode_json_value(k) + encode_json_value(x) for k, x in items
        )
    raise TypeError(type(v))


def decode_value(value):
    """Section 11.5, reading a value: exactly one CBOR item, nothing after
    it. Raises OpenError('value'). (No depth limit: see the docstring.)"""
    stream = io.BytesIO(value)
    try:
        item = cbor2.CBORDecoder(stream).decode()
    except cbor2.CBORDecodeError as e:
        raise OpenError("value", f"not a CBOR item: {e}")
    if stream.read():
        raise OpenError("value", "bytes after the item")
    return item


def cbor_to_json(item):
    """A decoded CBOR value compared with its JSON form."""
    if isinstance(item, dict):
        return {k: cbor_to_json(v) for k, v in item.items()}
    if isinstance(item, list):
        return [cbor_to_json(x) for x in item]
    return item


# --- the Set-Cookie budget (section 14) -------------------------------------

SET_COOKIE_PREFIX = "Set-Cookie: "


def has_prefix(name, prefix):
    """Browsers match the cookie-name prefixes ignoring ASCII case."""
    return name[:len(prefix)].lower() == prefix.lower()


def cookie_string(name, value, max_age=None, path="/", domain=None, secure=True,
                  http_only=True, same_site="Lax", partitioned=False):
    host = has_prefix(name, "__Host-")
    secure = (secure or host or has_prefix(name, "__Secure-") or partitioned
              or same_site == "None")
    parts = [f"{name}={value}"]
    if http_only:
        parts.append("HttpOnly")
    parts.append(f"SameSite={same_site}")
    if partitioned:
        parts.append("Partitioned")
    if secure:
        parts.append("Secure")
    parts.append(f"Path={'/' if host else path}")
    if domain is not None and not host:
        parts.append(f"Domain={domain}")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


def entry_size(key, value):
    """Encoded size of one payload entry [key, priority, bstr(value)]."""
    k = len(key.encode("utf-8"))
    return 1 + len(cbor_head(3, k)) + k + 1 + len(cbor_head(2, len(value))) + len(value)


def drop_order(entries):
    """Indices of droppable entries in the order they are removed."""
    candidates = [i for i, e in enumerate(entries) if e["priority"] != "critical"]
    # priority ascending, then size descending, then key bytes descending
    candidates.sort(key=lambda i: entries[i]["key"].encode("utf-8"), reverse=True)
    candidates.sort(key=lambda i: entry_size(entries[i]["key"], entries[i]["value"]), reverse=True)
    candidates.sort(key=lambda i: PRIORITIES.index(entries[i]["priority"]))
    return candidates


MAX_NAME_VALUE_LEN = 4096


def fit_budget(cookie_name, budget, session, max_age, max_token_len=4096):
    """FORMAT.md section 14.3: returns (kept indices, dropped indices, header length) or
    raises OpenError('too-large')."""
    around_value = len(SET_COOKIE_PREFIX) + len(cookie_string(cookie_name, "", max_age))
    # browsers keep at most 4096 bytes of name and value together
    max_token = min(max_token_len, max(0, MAX_NAME_VALUE_LEN - len(cookie_name.encode("utf-8"))))
    budget = min(budget, around_value + max_token)
    entries = session["entries"]
    keep = [True] * len(entries)
    dropped = []
    order = iter(drop_order(entries))
    while True:
        kept = [(e["key"], e["priority"], e["value"]) for e, k in zip(entries, keep) if k]
        plaintext = encode_payload(session["created_at"], session["expires_at"],
                                   session["session_id"], session["flags"], kept)
        token_len = b64url_len(OVERHEAD + len(plaintext))
        header_len = around_value + token_len
        if header_len <= budget:
            return [i for i, k in enumerate(keep) if k], dropped, header_len
        nxt = next(order, None)
        if nxt is None:
            raise OpenError("too-large", f"{header_len} bytes needed, budget {budget}")
        keep[nxt] = False
        dropped.append(nxt)


# --- overflow blobs (section 15) --------------------------------------------


def overflow_store_key(session_id, reference):
    return f"sealed-session:overflow:{{{session_id.hex()}}}:{reference.hex()}"


def load_overflow(ring, session, store, limits):
    """Section 15, loading: the session's entries, cookie-resident first, then
    the overflowed ones in overflow order with their values from the blob.
    Raises OpenError('store-missing' or 'store-rejected')."""
    overflow = session["overflow"]
    key = overflow_store_key(session["session_id"], overflow["reference"])
    if key not in store:
        raise OpenError("store-missing", "nothing under the store key")
    blob_limits = dict(limits, max_token_len=b64url_len(limits["max_decompressed"] + OVERHEAD))
    try:
        # Steps 1-8 only: no time check on a blob.
        _, plaintext, _ = open_token(ring, key, store[key], blob_limits)
        blob = parse_payload(plaintext, limits["max_entries"])
    except OpenError as e:
        raise OpenError("store-rejected", f"blob: {e.kind}: {e.why}")
    if blob["session_id"] != session["session_id"]:
        raise OpenError("store-rejected", "blob bound to another session id")
    values = {e["key"].encode("utf-8"): e["value"] for e in blob["entries"]}
    entries = list(session["entries"])
    for listed in overflow["keys"]:
        value = values.get(listed["key"].encode("utf-8"))
        if value is None:
            raise OpenError("store-rejected", f"blob lacks {listed['key']!r}")
        # The cookie's priority stands; the blob's is ignored.
        entries.append({"key": listed["key"], "priority": listed["priority"], "value": value})
    return entries


# --- the checks --------------------------------------------------------------


def ring_of(keys):
    return Ring(bytes.fromhex(keys["primary"]), [bytes.fromhex(k) for k in keys["fallbacks"]])


def entries_differ(got, want):
    """How the entries `got` (key, priority, value bytes) differ from the
    expected ones, or None."""
    if len(got) != len(want):
        return f"{len(got)} entries, expected {len(want)}"
    for e, w in zip(got, want):
        if (e["key"], e["priority"]) != (w["key"], w["priority"]):
            return f"entry {w['key']!r}: got ({e['key']!r}, {e['priority']})"
        if e["value"].hex() != w["value_cbor_hex"]:
            return f"entry {w['key']!r}: value bytes differ"
        if "value" not in w:
            # A value that does not decode (section 11.5): the session opened
            # all the same, and reading the value fails with value_error.
            try:
                decode_value(e["value"])
            except OpenError as err:
                if err.kind != w.get("value_error"):
                    return f"entry {w['key']!r}: reading gives {err.kind}, expected {w.get('value_error')}"
                continue
            return f"entry {w['key']!r}: the value decodes, expected {w.get('value_error')}"
        try:
            decoded = decode_value(e["value"])
        except OpenError as err:
            return f"entry {w['key']!r}: the value does not decode: {err.why}"
        if cbor_to_json(decoded) != w["value"]:
            return f"entry {w['key']!r}: decoded value differs from the JSON value"
        if encode_json_value(w["value"]).hex() != w["value_cbor_hex"]:
            return f"entry {w['key']!r}: re-encoding the JSON value gives other CBOR"
    return None


def check_valid(v, exp, notes):
    ring = ring_of(v["keys"])
    s = open_session(ring, v["cookie_name"], v["token"], v["now"], v["limits"], v["policy"])
    got = {
        "session_id": s["session_id"].hex(),
        "created_at": s["created_at"],
        "issued_at": s["issued_at"],
        "expires_at": s["expires_at"],
        "browser_session": s["browser_session"],
        "compressed": s["compressed"],
        "used_fallback": s["used_fallback"],
        "refresh_due": s["refresh_due"],
        "idle_timeout": s["idle_timeout"],
    }
    for field, value in got.items():
        if exp.get(field) != value:
            return f"{field}: got {value!r}, expected {exp.get(field)!r}"
    # The overflow element (section 15): only its reference and keys are in
    # the token; the values live in the blob.
    overflow = s["overflow"]
    got_overflow = None if overflow is None else {
        "reference": overflow["reference"].hex(),
        "keys": overflow["keys"],
    }
    if exp.get("overflow") != got_overflow:
        return f"overflow: got {got_overflow!r}, expected {exp.get('overflow')!r}"
    failure = entries_differ(s["entries"], exp["entries"])
    if failure is not None:
        return failure
    if v.get("plaintext_hex") is not None and s["plaintext"].hex() != v["plaintext_hex"]:
        return "plaintext differs from plaintext_hex"

    # The writer: the same session, key, nonce and issued-at give the same token.
    sealing = v.get("sealing")
    if sealing is None:
        # A token no writer reproduces (test-vectors/README.md): reader checks only.
        return None
    if sealing["issued_at"] != exp["issued_at"]:
        return "sealing.issued_at differs from expected.issued_at"
    flags = PAYLOAD_FLAG_BROWSER_SESSION if exp["browser_session"] else 0
    expires_field = exp["expires_at"]
    if exp.get("idle_timeout") is not None:
        flags, expires_field = PAYLOAD_FLAG_IDLE, exp["idle_timeout"]
    exp_overflow = exp.get("overflow")
    plaintext = encode_payload(
        exp["created_at"], expires_field, bytes.fromhex(exp["session_id"]), flags,
        [(e["key"], e["priority"], bytes.fromhex(e["value_cbor_hex"])) for e in exp["entries"]],
        None if exp_overflow is None else (
            bytes.fromhex(exp_overflow["reference"]),
            [(k["key"], k["priority"]) for k in exp_overflow["keys"]],
        ),
    )
    if v.get("plaintext_hex") is not None and plaintext.hex() != v["plaintext_hex"]:
        return "the writer's payload encoding differs from plaintext_hex"
    token = seal(bytes.fromhex(sealing["key"]), v["cookie_name"], sealing["issued_at"], plaintext,
                 bytes.fromhex(sealing["nonce"]), sealing["compression_threshold"])
    if token != v["token"]:
        if not exp["compressed"]:
            return "re-sealing gives a different token"
        # Compressed bytes are not canonical (FORMAT.md section 10): compare what
        # both tokens carry instead, and their framing.
        mine = b64url_decode_strict(token)
        theirs = b64url_decode_strict(v["token"])
        if mine[:HEADER_LEN + NONCE_LEN] != theirs[:HEADER_LEN + NONCE_LEN]:
            return "re-sealed compressed token: header or nonce differs"
        head, mine_plain, _ = open_token(ring, v["cookie_name"], token, v["limits"])
        if not head["compressed"] or mine_plain != s["plaintext"]:
            return "re-sealed compressed token does not carry the same plaintext"
        notes.append(f"{v['name']}: zlib's deflate stream differs from the published one "
                     f"({len(mine) - OVERHEAD} vs {len(theirs) - OVERHEAD} bytes); "
                     "checked by decrypting both")
    return None


def check_format_vector(v, notes):
    if v.get("expected_error") is not None:
        try:
            # A ring that must be refused fails here, with invalid-key.
            ring = ring_of(v["keys"])
            open_session(ring, v["cookie_name"], v["token"], v["now"], v["limits"], v["policy"])
        except OpenError as e:
            if e.kind != v["expected_error"]:
                return f"expected {v['expected_error']}, got {e.kind} ({e.why})"
        else:
            return f"expected {v['expected_error']}, but it opened"
        if v.get("plaintext_hex") is not None:
            limits = dict(v["limits"], max_token_len=1 << 62)
            try:
                _, plaintext, _ = open_token(ring, v["cookie_name"], v["token"], limits)
            except OpenError as e:
                return f"plaintext_hex given but the token does not decrypt: {e}"
            if plaintext.hex() != v["plaintext_hex"]:
                return "plaintext differs from plaintext_hex"
        return None
    if v.get("expected") is None:
        return "neither expected nor expected_error"
    try:
        return check_valid(v, v["expected"], notes)
    except OpenError as e:
        return f"expected a session, got {e.kind} ({e.why})"


def check_overflow_vector(v):
    ring = ring_of(v["keys"])
    try:
        session = open_session(ring, v["cookie_name"], v["token"], v["now"], v["limits"], v["policy"])
    except OpenError as e:
        return f"the cookie does not open: {e.kind} ({e.why})"
    if session["overflow"] is None:
        return "the cookie lists no overflowed keys"
    try:
        entries = load_overflow(ring, session, v["store"], v["limits"])
    except OpenError as e:
        if v.get("expected_error") is None:
            return f"expected entries, got {e.kind} ({e.why})"
        if e.kind != v["expected_error"]:
            return f"expected {v['expected_error']}, got {e.kind} ({e.why})"
        return None
    if v.get("expected_error") is not None:
        return f"expected {v['expected_error']}, but the blob loaded"
    return entries_differ(entries, v["expected_entries"])


# Parameters of every budget case (test-vectors/README.md).
BUDGET_NOW = 1_767_225_600
BUDGET_CREATED_AT = BUDGET_NOW - 600
BUDGET_MAX_IDLE = 3600
BUDGET_MAX_LIFETIME = 86_400


def check_budget_case(case):
    entries = []
    for e in case["entries"]:
        if e["priority"] not in PRIORITIES:
            return f"bad priority {e['priority']!r}"
        text = "a" * e["value_len"]
        value = encode_json_value(text)
        if entry_size(e["key"], value) != e["encoded_size"]:
            return f"entry {e['key']!r}: encoded size {entry_size(e['key'], value)}, file says {e['encoded_size']}"
        entries.append({"key": e["key"], "priority": e["priority"], "value": value})
    session = {
        "created_at": BUDGET_CREATED_AT,
        "expires_at": None,
        "session_id": os.urandom(16),  # any id: sizes do not depend on it
        "flags": 0,
        "entries": entries,
    }
    max_age = min(BUDGET_MAX_IDLE, BUDGET_CREATED_AT + BUDGET_MAX_LIFETIME - BUDGET_NOW)
    try:
        # The writer's max_token_len, when the case gives one (README).
        kept, dropped, header_len = fit_budget(case["cookie_name"], case["budget"], session, max_age,
                                               case.get("max_token_len", 4096))
        error = None
    except OpenError as e:
        if e.kind != "too-large":
            raise
        kept, dropped, header_len, error = list(range(len(entries))), [], None, e.kind
    got_dropped = [entries[i]["key"] for i in dropped]
    got_kept = [entries[i]["key"] for i in kept]
    if got_dropped != case["expected_dropped"]:
        return f"dropped {got_dropped}, expected {case['expected_dropped']}"
    if got_kept != case["expected_kept"]:
        return f"kept {got_kept}, expected {case['expected_kept']}"
    if header_len != case["expected_header_len"]:
        return f"header length {header_len}, expected {case['expected_header_len']}"
    if error != case["expected_error"]:
        return f"error {error}, expected {case['expected_error']}"
    if header_len is not None:
        # Seal for real and measure the header, not just the formula.
        kept_entries = [(entries[i]["key"], entries[i]["priority"], entries[i]["value"]) for i in kept]
        plaintext = encode_payload(session["created_at"], None, session["session_id"], 0, kept_entries)
        token = seal(os.urandom(32), case["cookie_name"], BUDGET_NOW, plaintext, os.urandom(24))
        real = len(SET_COOKIE_PREFIX + cookie_string(case["cookie_name"], token, max_age))
        if real != header_len:
            return f"sealed header is {real} bytes, the size formula said {header_len}"
    return None


def self_checks():
    """Properties of the spec that no vector pins: returns failures."""
    failures = []
    for n in range(0, 40):
        data = os.urandom(n)
        text = b64url_encode(data)
        if len(text) != b64url_len(n) or b64url_decode_strict(text) != data:
            failures.append(f"self-check: base64url round trip of {n} bytes")
    # Cookie attributes (section 14.1): the prefixes ignore ASCII case and
    # SameSite=None forces Secure, as browsers require.
    for got, want in [
        (cookie_string("__HOST-id", "v", secure=False, path="/x", domain="example.com"),
         "__HOST-id=v; HttpOnly; SameSite=Lax; Secure; Path=/"),
        (cookie_string("__secure-id", "v", secure=False),
         "__secure-id=v; HttpOnly; SameSite=Lax; Secure; Path=/"),
        (cookie_string("id", "v", secure=False, same_site="None"),
         "id=v; HttpOnly; SameSite=None; Secure; Path=/"),
        (cookie_string("__Hostile", "v", secure=False), "__Hostile=v; HttpOnly; SameSite=Lax; Path=/"),
    ]:
        if got != want:
            failures.append(f"self-check: cookie string {got!r}, expected {want!r}")
    # Heads in shortest form only: each limit from both sides.
    for head, accepted in [
        ("17", True), ("1817", False), ("1818", True), ("18ff", True),
        ("1900ff", False), ("190100", True), ("19ffff", True),
        ("1a0000ffff", False), ("1a00010000", True), ("1affffffff", True),
        ("1b00000000ffffffff", False), ("1b0000000100000000", True),
        ("9805", False), ("7817", False), ("590018", False),
        ("f6", True), ("f816", False), ("f81f", False), ("f820", True),
    ]:
        try:
            Walker(bytes.fromhex(head)).head()
            ok = True
        except OpenError:
            ok = False
        if ok != accepted:
            failures.append(f"self-check: head {head} accepted={ok}, expected {accepted}")
    # A payload with an overflow element parses, and its keys count for duplicates.
    sid, ref = bytes(range(16)), bytes(range(16, 32))
    p = encode_payload(1, None, sid, 0, [("a", "normal", b"\x01")], (ref, [("b", "low")]))
    parsed = parse_payload(p, 256)
    if parsed["overflow"] != {"reference": ref, "keys": [{"key": "b", "priority": "low"}]}:
        failures.append("self-check: overflow element not parsed")
    dup = encode_payload(1, None, sid, 0, [("a", "normal", b"\x01")], (ref, [("a", "low")]))
    try:
        parse_payload(dup, 256)
        failures.append("self-check: duplicate key across entries and overflow accepted")
    except OpenError:
        pass
    return failures


def main(argv):
    directory = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "test-vectors")
    passed, failed, notes = 0, 0, []
    files = sorted(f for f in os.listdir(directory) if f.endswith(".json"))
    if not files:
        print(f"no vector files in {directory}")
        failed += 1
    for name in files:
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            data = json.load(f)
        if name.startswith("format-"):
            cases = [(v["name"], lambda v=v: check_format_vector(v, notes)) for v in data["vectors"]]
        elif name.startswith("budget-"):
            cases = [(f"budget/{c['name']}", lambda c=c: check_budget_case(c)) for c in data["cases"]]
        elif name.startswith("overflow-"):
            cases = [(v["name"], lambda v=v: check_overflow_vector(v)) for v in data["vectors"]]
        else:
            print(f"FAIL {name}: unknown vector file")
            failed += 1
            continue
        for case_name, run in cases:
            try:
                failure = run()
            except Exception as e:  # a crash is a failure, never a pass
                failure = f"crashed: {type(e).__name__}: {e}"
            if failure is None:
                passed += 1
            else:
                failed += 1
                print(f"FAIL {name} {case_name}: {failure}")
    self_failures = self_checks()
    for failure in self_failures:
        print(f"FAIL {failure}")
    if self_failures:
        failed += 1
    else:
        passed += 1
    for note in notes:
        print(f"note: {note}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
