'use strict';
// Checks reader.js against the published vectors, as test-vectors/README.md
// describes, plus self-checks of what no vector pins.
//   node scripts/reference_reader_node/run.js [test-vectors directory]
// Prints one line per failure and ends with `N passed, M failed` (one per
// vector or case, and one for the self-checks); exits 1 if M > 0.
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { isDeepStrictEqual } = require('node:util');
const { parse } = require('./json');
const R = require('./reader');

const hex = (text) => Buffer.from(text, 'hex');
const isFormatError = (e) => e instanceof R.FormatError;
const priorityName = (p) => R.PRIORITIES[p];
const priorityValue = (name) => R.PRIORITIES.indexOf(name);

function readerFor(v) {
  return new R.Reader({ primary: hex(v.keys.primary), fallbacks: v.keys.fallbacks.map(hex), limits: v.limits, policy: v.policy });
}

// Runs fn; a FormatError is returned as { error }, anything else is thrown.
function attempt(fn) {
  try {
    return { result: fn() };
  } catch (e) {
    if (!isFormatError(e)) throw e;
    return { error: e };
  }
}

// A decoded value against its JSON form. Numbers compare by value (a BigInt
// against a Number included); maps compare as sets of string keys, since a
// JavaScript object puts integer-like keys first (value_cbor_hex pins the order).
function sameAsJson(decoded, json) {
  if (json === null || typeof json === 'boolean' || typeof json === 'string') return decoded === json;
  if (typeof json === 'bigint' || typeof json === 'number') {
    // Loose equality compares a BigInt and a Number exactly, by value.
    return (typeof decoded === 'bigint' || typeof decoded === 'number') && decoded == json;
  }
  if (Array.isArray(json)) return Array.isArray(decoded) && decoded.length === json.length && json.every((x, i) => sameAsJson(decoded[i], x));
  const keys = Object.keys(json);
  return decoded instanceof Map && decoded.size === keys.length && keys.every((k) => decoded.has(k) && sameAsJson(decoded.get(k), json[k]));
}

// Entries (key, priority, value bytes) against the vector's, whose values are
// decoded under the vector's own max_depth.
function entriesDiffer(got, want, reader) {
  if (got.length !== want.length) return `${got.length} entries, expected ${want.length}`;
  for (const [i, w] of want.entries()) {
    const e = got[i];
    if (e.key !== w.key || priorityName(e.priority) !== w.priority) {
      return `entry ${i}: got (${JSON.stringify(e.key)}, ${priorityName(e.priority)}), expected (${JSON.stringify(w.key)}, ${w.priority})`;
    }
    if (e.value.toString('hex') !== w.value_cbor_hex) return `entry ${JSON.stringify(w.key)}: value bytes differ`;
    const decoded = attempt(() => reader.decodeValue(e.value));
    if (w.value === undefined) {
      // A value that does not decode (§11.5): the token opened all the same,
      // and reading the value fails with the kind value_error names.
      if (!decoded.error) return `entry ${JSON.stringify(w.key)}: the value decodes, expected ${w.value_error}`;
      if (decoded.error.kind !== w.value_error) return `entry ${JSON.stringify(w.key)}: reading gives ${decoded.error.message}, expected ${w.value_error}`;
      continue;
    }
    if (decoded.error) return `entry ${JSON.stringify(w.key)}: the value does not decode: ${decoded.error.message}`;
    if (!sameAsJson(decoded.result, w.value)) return `entry ${JSON.stringify(w.key)}: the decoded value differs from the JSON value`;
  }
  return null;
}

function sessionDiffers(s, x, reader) {
  const got = {
    session_id: s.sessionId.toString('hex'), created_at: s.createdAt, issued_at: s.issuedAt, expires_at: s.expiresAt,
    idle_timeout: s.idleTimeout, browser_session: s.browserSession, compressed: s.compressed,
    used_fallback: s.usedFallback, refresh_due: s.refreshDue,
  };
  for (const [field, value] of Object.entries(got)) {
    const want = field === 'idle_timeout' ? x.idle_timeout ?? null : x[field];
    if (value !== want) return `${field}: got ${value}, expected ${want}`;
  }
  const wantOverflow = x.overflow ?? null;
  if ((s.overflow === null) !== (wantOverflow === null)) return `overflow: got ${s.overflow ? 'one' : 'none'}, expected ${wantOverflow ? 'one' : 'none'}`;
  if (wantOverflow !== null) {
    if (s.overflow.reference.toString('hex') !== wantOverflow.reference) return 'overflow.reference differs';
    const keys = s.overflow.keys.map((k) => ({ key: k.key, priority: priorityName(k.priority) }));
    if (!isDeepStrictEqual(keys, wantOverflow.keys.map((k) => ({ key: k.key, priority: k.priority })))) return 'overflow.keys differ';
  }
  return entriesDiffer(s.entries, x.entries, reader);
}

// The session of `expected`, as the writer takes it (README, "Testing a writer").
function sessionFromExpected(x) {
  const entry = (e) => ({ key: e.key, priority: priorityValue(e.priority), value: hex(e.value_cbor_hex) });
  return {
    createdAt: x.created_at, expiresAt: x.expires_at, idleTimeout: x.idle_timeout ?? null,
    browserSession: x.browser_session, sessionId: hex(x.session_id), entries: x.entries.map(entry),
    overflow: x.overflow ? { reference: hex(x.overflow.reference), keys: x.overflow.keys.map((k) => ({ key: k.key, priority: priorityValue(k.priority) })) } : null,
  };
}

function writerDiffers(v, reader, notes) {
  const { sealing, expected: x } = v;
  if (sealing.issued_at !== x.issued_at) return 'sealing.issued_at differs from expected.issued_at';
  const session = sessionFromExpected(x);
  if (R.encodePayload(session).toString('hex') !== v.plaintext_hex) return "the writer's payload encoding differs from plaintext_hex";
  const token = R.seal({
    masterKey: hex(sealing.key), cookieName: v.cookie_name, issuedAt: sealing.issued_at, session,
    compressionThreshold: sealing.compression_threshold, limits: v.limits, nonce: hex(sealing.nonce),
  });
  if (token === v.token) return null;
  if (!x.compressed) return 're-sealing gives a different token';
  // Compressed bytes are not canonical (FORMAT.md §10): compare the framing and what the token carries.
  const mine = R.b64urlDecodeStrict(token), theirs = R.b64urlDecodeStrict(v.token);
  if (!mine.subarray(0, 42).equals(theirs.subarray(0, 42))) return 're-sealed compressed token: header or nonce differs';
  const reopened = reader.unseal(v.cookie_name, token);
  if (!reopened.compressed || reopened.plaintext.toString('hex') !== v.plaintext_hex) return 're-sealed compressed token does not carry plaintext_hex';
  notes.push(`${v.name}: node:zlib's deflate stream differs from the published one (${mine.length - R.OVERHEAD} vs ${theirs.length - R.OVERHEAD} bytes); checked by opening it`);
  return null;
}

function checkFormatVector(v, notes) {
  const hasError = v.expected_error !== undefined && v.expected_error !== null;
  if (hasError === (v.expected !== undefined && v.expected !== null)) return 'needs exactly one of expected and expected_error';
  const ring = attempt(() => readerFor(v));
  const reader = ring.result;
  // plaintext_hex is present exactly when the ring is valid and steps 2-8 of
  // §8 succeed (no length limit, with the cap), and then it is their output.
  const layers = reader ? attempt(() => reader.unseal(v.cookie_name, v.token, null)) : ring;
  const hasPlaintext = v.plaintext_hex !== undefined && v.plaintext_hex !== null;
  if (layers.error && hasPlaintext) return `plaintext_hex given, but steps 2-8 fail: ${layers.error.message}`;
  if (!layers.error && !hasPlaintext) return 'steps 2-8 succeed, but the vector has no plaintext_hex';
  if (hasPlaintext && layers.result.plaintext.toString('hex') !== v.plaintext_hex) return 'the plaintext differs from plaintext_hex';

  const opened = reader ? attempt(() => reader.open(v.cookie_name, v.token, v.now)) : ring;
  if (hasError) {
    if (!opened.error) return `expected ${v.expected_error}, but it opened`;
    return opened.error.kind === v.expected_error ? null : `expected ${v.expected_error}, got ${opened.error.message}`;
  }
  if (opened.error) return `expected a session, got ${opened.error.message}`;
  return sessionDiffers(opened.result, v.expected, reader) ?? (v.sealing ? writerDiffers(v, reader, notes) : null);
}

// §16 has one kind `store`; the overflow vectors name it by its reason (§15.1).
const overflowVectorKind = (e) => (e.kind === 'store' ? `store-${e.reason}` : e.kind);

function checkOverflowVector(v) {
  const reader = readerFor(v);
  const opened = attempt(() => reader.open(v.cookie_name, v.token, v.now));
  if (opened.error) return `the cookie does not open: ${opened.error.message}`;
  if (opened.result.overflow === null) return 'the cookie lists no overflowed keys';
  const loaded = attempt(() => reader.loadOverflow(opened.result, new Map(Object.entries(v.store))));
  const expectedError = v.expected_error ?? null;
  if (loaded.error) {
    if (expectedError === null) return `expected entries, got ${loaded.error.message}`;
    return overflowVectorKind(loaded.error) === expectedError ? null : `expected ${expectedError}, got ${loaded.error.message}`;
  }
  if (expectedError !== null) return `expected ${expectedError}, but the blob loaded`;
  return entriesDiffer(loaded.result, v.expected_entries, reader);
}

// budget-v1.json's fixed parameters (test-vectors/README.md).
const BUDGET_NOW = 1767225600n;
const BUDGET_CREATED_AT = BUDGET_NOW - 600n;
const BUDGET_MAX_IDLE = 3600n;
const BUDGET_MAX_LIFETIME = 86400n;
const BUDGET_MAX_TOKEN_LEN = 4096;
const BUDGET_MAX_DECOMPRESSED = 65536;
// What browsers keep of a cookie's name and value together (§14.3).
const MAX_NAME_VALUE_LEN = 4096;

function safeNumber(x) {
  if (!Number.isSafeInteger(Number(x)) || BigInt(Number(x)) !== BigInt(x)) throw new RangeError(`not a safe integer: ${x}`);
  return Number(x);
}

// §14.3: drops candidates until the header fits, or fails with too-large.
function checkBudgetCase(c) {
  const headLen = (major, n) => R.cborHead(major, n).length;
  const entries = c.entries.map((e) => {
    const valueLen = safeNumber(e.value_len);
    const value = Buffer.concat([R.cborHead(3, valueLen), Buffer.alloc(valueLen, 'a')]);
    const keyLen = Buffer.byteLength(e.key, 'utf8');
    return { key: e.key, priority: priorityValue(e.priority), value, size: 1 + headLen(3, keyLen) + keyLen + 1 + headLen(2, value.length) + value.length };
  });
  for (const [i, e] of entries.entries()) {
    if (e.priority < 0) return `entry ${JSON.stringify(e.key)}: bad priority`;
    if (BigInt(e.size) !== c.entries[i].encoded_size) return `entry ${JSON.stringify(e.key)}: encoded size ${e.size}, file says ${c.entries[i].encoded_size}`;
  }
  const lifetimeLeft = BUDGET_CREATED_AT + BUDGET_MAX_LIFETIME - BUDGET_NOW;
  const maxAge = lifetimeLeft < BUDGET_MAX_IDLE ? lifetimeLeft : BUDGET_MAX_IDLE;
  const cookieString = (token) => `${c.cookie_name}=${token}; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=${maxAge}`;
  const headerLen = (token) => Buffer.byteLength(`Set-Cookie: ${cookieString(token)}`, 'utf8');
  // Without compression the token length follows from the payload length (§14.2).
  const payloadLen = (kept) => 1 + headLen(0, BUDGET_CREATED_AT) + 1 + 17 + 1 + headLen(4, kept.length) + kept.reduce((sum, e) => sum + e.size, 0);
  // The writer's max_token_len: the case's when it gives one, else the default.
  const maxTokenLen = c.max_token_len === undefined ? BUDGET_MAX_TOKEN_LEN : safeNumber(c.max_token_len);
  const maxToken = Math.min(maxTokenLen, Math.max(0, MAX_NAME_VALUE_LEN - Buffer.byteLength(c.cookie_name, 'utf8')));
  const budget = Math.min(safeNumber(c.budget), headerLen('') + maxToken);
  const candidates = entries.filter((e) => e.priority !== 3).sort((a, b) =>
    a.priority - b.priority || b.size - a.size || Buffer.compare(Buffer.from(b.key, 'utf8'), Buffer.from(a.key, 'utf8')));
  let kept = entries, dropped = [], length = null, error = null;
  for (let next = 0; ; next++) {
    const payload = payloadLen(kept);
    const candidateLen = headerLen('') + R.b64len(R.OVERHEAD + payload);
    if (candidateLen <= budget && payload <= BUDGET_MAX_DECOMPRESSED) { length = candidateLen; break; }
    if (next === candidates.length) { error = 'too-large'; break; }
    dropped.push(candidates[next].key);
    kept = kept.filter((e) => e !== candidates[next]);
  }
  if (error) { kept = entries; dropped = []; }
  const keys = (list) => list.map((e) => e.key);
  if (!isDeepStrictEqual(dropped, c.expected_dropped)) return `dropped ${dropped}, expected ${c.expected_dropped}`;
  if (!isDeepStrictEqual(keys(kept), c.expected_kept)) return `kept ${keys(kept)}, expected ${c.expected_kept}`;
  if ((length === null ? null : BigInt(length)) !== c.expected_header_len) return `header length ${length}, expected ${c.expected_header_len}`;
  if (error !== c.expected_error) return `error ${error}, expected ${c.expected_error}`;
  if (length !== null) {
    // Seal for real (random key and nonce) and measure the header, not just the formula.
    const token = R.seal({
      masterKey: crypto.randomBytes(32), cookieName: c.cookie_name, issuedAt: BUDGET_NOW,
      session: { createdAt: BUDGET_CREATED_AT, expiresAt: null, idleTimeout: null, browserSession: false, sessionId: crypto.randomBytes(16), entries: kept, overflow: null },
    });
    if (headerLen(token) !== length) return `the sealed header is ${headerLen(token)} bytes, the size formula said ${length}`;
  }
  return null;
}

// FORMAT.md §18, the worked example (the small-session vector).
const WORKED_EXAMPLE = {
  masterKey: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
  prk: '413e493f156fbdd9bcab7b08ff9e26b855056a66650a4fab146fabce1c8c1941',
  encKey: '74c8bb2cec2fc7a11d85af2be8e0180981648d86175d98d633a6ffcd5494d932',
  keyId: 'be53bfb77a8c1662',
  keyIdB: '5b8fe8767643e004', // §2, key B = bytes 0x20..0x3f
  now: 1767225600n,
  token: 'AQC-U7-3eowWYgAAAABpVbjEY0MTt-Ha9TE4JVa8Drci3a4NIAQ3bKvPSyJDKBcJH2HI4wEMXto3CsNSQoexJ-R9zzStFVBsLNG84V2rcWhKN-rfRqlVk6AMhIFHpyVpuD8210VFi4A3sunmciG95LcM7ZzW4qNhjbSoyoDCjwNsVr7_K1AiGIJQmA',
  tokenChars: 186,
  tokenBytes: 139,
  subkey: '25fa8e7de3a27099281335cad73ef29266c04ebbabe005a0c989f4849947d64d',
  chachaNonce: '00000000ae0d2004376cabcf',
  plaintext: '851a69559ce0f6508edadb35a9a37d72b1d218eb10e7e70b00838367757365725f696403431910798364637372660251706b334a66397330615131785a70324c6d83666c6f63616c65014665656e2d4742',
  sessionId: '8edadb35a9a37d72b1d218eb10e7e70b',
  keys: ['user_id', 'csrf', 'locale'],
};
const TEST_LIMITS = { max_token_len: 4096, max_decompressed: 65536, max_depth: 32, max_entries: 256 };
const TEST_POLICY = { max_idle: 3600, max_lifetime: 86400, clock_skew: 60, refresh_fraction: 0.5 };

// What no vector pins; returns the failures.
function selfChecks(formatVectors) {
  const failures = [];
  const check = (ok, what) => { if (!ok) failures.push(what); };
  const kind = (fn) => { try { fn(); return 'ok'; } catch (e) { return isFormatError(e) ? e.kind : e.name; } };
  const keyA = hex(WORKED_EXAMPLE.masterKey);
  const keyB = Buffer.from(keyA.map((b) => b + 32));

  // HChaCha20, draft-irtf-cfrg-xchacha §2.2.1.
  check(R.hchacha20(keyA, hex('000000090000004a0000000031415927')).toString('hex') ===
    '82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc', 'HChaCha20 test vector');

  // §18: keys, token, lengths, cipher input, plaintext, session, re-sealing.
  const derived = R.deriveKeys(keyA);
  check(derived.prk.toString('hex') === WORKED_EXAMPLE.prk, '§18 PRK');
  check(derived.encKey.toString('hex') === WORKED_EXAMPLE.encKey, '§18 K_enc');
  check(derived.keyId.toString('hex') === WORKED_EXAMPLE.keyId, '§18 KID of key A');
  check(R.deriveKeys(keyB).keyId.toString('hex') === WORKED_EXAMPLE.keyIdB, '§2 KID of key B');
  const small = formatVectors.find((v) => v.name === 'small-session');
  check(small && small.token === WORKED_EXAMPLE.token && small.plaintext_hex === WORKED_EXAMPLE.plaintext, '§18 token and plaintext are the small-session vector\'s');
  const raw = R.b64urlDecodeStrict(WORKED_EXAMPLE.token);
  check(WORKED_EXAMPLE.token.length === WORKED_EXAMPLE.tokenChars && raw.length === WORKED_EXAMPLE.tokenBytes &&
    raw.length === R.OVERHEAD + WORKED_EXAMPLE.plaintext.length / 2, '§18 lengths');
  check(R.hchacha20(derived.encKey, raw.subarray(18, 34)).toString('hex') === WORKED_EXAMPLE.subkey, '§18 HChaCha20 subkey');
  check('00000000' + raw.subarray(34, 42).toString('hex') === WORKED_EXAMPLE.chachaNonce, '§18 ChaCha20 nonce');
  const reader = new R.Reader({ primary: keyA, fallbacks: [keyB], limits: TEST_LIMITS, policy: TEST_POLICY });
  check(reader.unseal('session', WORKED_EXAMPLE.token).plaintext.toString('hex') === WORKED_EXAMPLE.plaintext, '§18 plaintext');
  const session = reader.open('session', WORKED_EXAMPLE.token, WORKED_EXAMPLE.now);
  check(session.sessionId.toString('hex') === WORKED_EXAMPLE.sessionId && isDeepStrictEqual(session.entries.map((e) => e.key), WORKED_EXAMPLE.keys) &&
    !session.usedFallback && !session.refreshDue && !session.compressed && !session.browserSession, '§18 session');
  check(R.encodePayload(session).toString('hex') === WORKED_EXAMPLE.plaintext &&
    R.seal({ masterKey: keyA, cookieName: 'session', issuedAt: session.issuedAt, session, nonce: raw.subarray(18, 42) }) === WORKED_EXAMPLE.token, '§18 re-sealing');
  // Number and BigInt arguments alike; absent limits as null or undefined.
  check(isDeepStrictEqual(reader.open('session', WORKED_EXAMPLE.token, Number(WORKED_EXAMPLE.now)), session), 'now as a Number');
  check(kind(() => reader.open('session', WORKED_EXAMPLE.token, 2 ** 60)) === 'RangeError', 'an unsafe Number is refused');
  check(kind(() => new R.Reader({ primary: keyA, limits: TEST_LIMITS, policy: { ...TEST_POLICY, max_idle: undefined, max_lifetime: null } })
    .open('session', WORKED_EXAMPLE.token, WORKED_EXAMPLE.now)) === 'ok', 'absent max_idle and max_lifetime');
  check(kind(() => new R.Reader({ primary: keyA, limits: { ...TEST_LIMITS, max_decompressed: 1n << 40n }, policy: TEST_POLICY })) === 'RangeError',
    'a max_decompressed node:zlib cannot cap is refused up front');
  // §12: the refresh fraction is clamped to [0, 1], NaN counting as 1 (the token's age is 60).
  for (const [fraction, due] of [[NaN, false], [-1, true], [5, false], [60 / 3600, true], [61 / 3600, false]]) {
    const refreshReader = new R.Reader({ primary: keyA, limits: TEST_LIMITS, policy: { ...TEST_POLICY, refresh_fraction: fraction } });
    check(refreshReader.open('session', WORKED_EXAMPLE.token, WORKED_EXAMPLE.now).refreshDue === due, `refresh_fraction ${fraction}`);
  }

  // §3, §9: token length = b64len(decoded length); base64url round trips.
  for (let n = 0; n < 40; n++) {
    const data = crypto.randomBytes(n), text = R.b64urlEncode(data);
    check(text.length === R.b64len(n) && R.b64urlDecodeStrict(text).equals(data), `base64url round trip of ${n} bytes`);
  }
  for (const v of formatVectors) {
    const decoded = attempt(() => R.b64urlDecodeStrict(v.token));
    check(decoded.error || R.b64len(decoded.result.length) === v.token.length, `${v.name}: token length is not b64len of its bytes`);
  }

  // §11.4: the overflow element parses, and its keys count for duplicates.
  const sid = Buffer.alloc(16, 1), ref = Buffer.alloc(16, 2);
  const withOverflow = (key) => R.encodePayload({ createdAt: 1, expiresAt: null, idleTimeout: null, browserSession: false, sessionId: sid,
    entries: [{ key: 'a', priority: 1, value: hex('01') }], overflow: { reference: ref, keys: [{ key, priority: 0 }] } });
  check(isDeepStrictEqual(R.parsePayload(withOverflow('b'), 256).overflow, { reference: ref, keys: [{ key: 'b', priority: 0 }] }), 'overflow element parses');
  check(kind(() => R.parsePayload(withOverflow('a'), 256)) === 'malformed', 'a key in the entries and the overflow is a duplicate');
  check(kind(() => R.parsePayload(hex(`8700f650${'00'.repeat(16)}0083`), 2)) === 'malformed', 'an array of 7 is refused before the entry count');

  // §11.5: values.
  const deep = (levels, inner) => Buffer.concat([Buffer.alloc(levels, 0x81), hex(inner)]);
  const valueCases = [
    ['64efbbbf41', '\ufeffA'], ['62c328', 'value'], ['', 'value'], ['0001', 'value'], ['1c', 'value'], ['ff', 'value'],
    ['1f', 'value'], ['f818', 'value'], ['9bffffffffffffffff', 'value'], ['5f4101ff', hex('01')], ['7f6161ff', 'a'], ['7f4161ff', 'value'],
    ['9f0102ff', [1n, 2n]], ['bf6161f5ff', new Map([['a', true]])], ['1bffffffffffffffff', (1n << 64n) - 1n], ['3b0000000000000000', -1n],
    ['f93c00', 1], ['f97bff', 65504], ['f90001', 2 ** -24], ['fa3fc00000', 1.5], ['fb3ff8000000000000', 1.5], ['f7', undefined], ['f6', null],
    ['a2010102f6', new Map([[1n, 1n], [2n, null]])], ['a2010101f6', 'value'], ['a2410100410100', 'value'], ['a1a0f6', new Map([[new Map(), null]])],
    ['a1695f5f70726f746f5f5f01', new Map([['__proto__', 1n]])], ['c24101', 1n], ['c34100', -1n], ['c25001' + '00'.repeat(15), 1n << 120n],
    ['c1c2', 'value'], ['f0', new R.CborSimple(16)], ['c1781a', 'value'],
  ];
  for (const [bytes, want] of valueCases) {
    const got = attempt(() => R.decodeValue(hex(bytes), 32));
    const ok = typeof want === 'string' && (want === 'value' || want === 'limit-exceeded')
      ? got.error?.kind === want : !got.error && isDeepStrictEqual(got.result, want);
    check(ok, `decodeValue(${bytes}): got ${got.error ? got.error.message : String(got.result)}`);
  }
  check(Number.isNaN(R.decodeValue(hex('f97e00'))), 'half-float NaN');
  check(kind(() => R.decodeValue(deep(32, 'c24101'), 32)) === 'ok', 'a bignum inside 32 arrays is 32 levels');
  check(kind(() => R.decodeValue(deep(33, '01'), 32)) === 'limit-exceeded', '33 levels against max_depth 32');
  check(kind(() => R.decodeValue(hex('81c101'), 1)) === 'limit-exceeded', 'a tag is a level');
  check(kind(() => R.decodeValue(hex('80'), 0)) === 'limit-exceeded', 'an empty array is a level');
  check(kind(() => R.decodeValue(deep(100000, '01'), 1n << 63n)) === 'ok', '100000 levels decode without exhausting the stack');

  // §7 step 0 and the created_at clamp.
  const entries = [{ key: 'k', priority: 1, value: Buffer.concat([R.cborHead(3, 300), Buffer.alloc(300, 'a')]) }];
  const base = { createdAt: 100, expiresAt: null, idleTimeout: null, browserSession: false, sessionId: sid, entries, overflow: null };
  const payloadLen = R.encodePayload(base).length;
  const sealWith = (limits, compressionThreshold = null, session = base) =>
    R.seal({ masterKey: keyA, cookieName: 'session', issuedAt: 200, session, compressionThreshold, limits });
  check(kind(() => sealWith({ max_token_len: 4096, max_decompressed: payloadLen - 1 })) === 'limit-exceeded', 'seal: payload over max_decompressed');
  check(kind(() => sealWith({ max_token_len: R.b64len(R.OVERHEAD + payloadLen), max_decompressed: payloadLen })) === 'ok', 'seal: token at max_token_len');
  check(kind(() => sealWith({ max_token_len: R.b64len(R.OVERHEAD + payloadLen) - 1, max_decompressed: 65536 })) === 'limit-exceeded', 'seal: token over max_token_len');
  check(kind(() => sealWith({ max_token_len: 100, max_decompressed: 65536 }, 0)) === 'limit-exceeded', 'seal: compressed token over max_token_len');
  check(sealWith(TEST_LIMITS) !== sealWith(TEST_LIMITS), 'seal: a fresh random nonce by default');
  const clampReader = new R.Reader({ primary: keyA, limits: TEST_LIMITS, policy: TEST_POLICY });
  check(clampReader.open('session', sealWith(TEST_LIMITS, null, { ...base, createdAt: 300 }), 250).createdAt === 200n, 'seal: created_at clamped to issued_at');
  check(clampReader.unseal('session', sealWith(TEST_LIMITS, 0)).compressed, 'seal: compresses when shorter');
  check(kind(() => R.encodePayload({ ...base, entries: [{ ...entries[0], key: '_x' }] })) === 'invalid-entry-key', 'seal: reserved key refused');

  // §15: a blob written by seal() loads; store failures carry their reason.
  const storeKey = R.overflowStoreKey(sid, ref);
  const cookie = sealWith(TEST_LIMITS, null, { ...base, overflow: { reference: ref, keys: [{ key: 'cart', priority: 2 }] } });
  const blob = R.seal({ masterKey: keyA, cookieName: storeKey, issuedAt: 200, session: { ...base, entries: [{ key: 'cart', priority: 0, value: hex('03') }] } });
  const opened = clampReader.open('session', cookie, 250);
  const loaded = clampReader.loadOverflow(opened, new Map([[storeKey, blob]]));
  check(isDeepStrictEqual(loaded.map((e) => [e.key, e.priority, e.value.toString('hex')]), [['k', 1, entries[0].value.toString('hex')], ['cart', 2, '03']]), '§15.1 blob loads');
  const storeReason = (store) => { try { clampReader.loadOverflow(opened, store); return 'loaded'; } catch (e) { return `${e.kind}/${e.reason}`; } };
  check(storeReason(null) === 'store/not-configured', 'store: not configured');
  check(storeReason({ get() { throw new Error('down'); } }) === 'store/unavailable', 'store: no answer');
  check(storeReason(new Map()) === 'store/missing', 'store: missing');
  check(storeReason(new Map([[storeKey, Buffer.from([0xff])]])) === 'store/rejected', 'store: not UTF-8');
  check(storeReason(new Map([[storeKey, Buffer.from(blob)]])) === 'loaded', 'store: bytes');
  return failures;
}

// One line: the error and where it was thrown.
const describeCrash = (e) => (e instanceof Error && e.stack ? e.stack.split('\n').slice(0, 2).map((l) => l.trim()).join(' ') : String(e));

const VECTOR_FILES = {
  'budget-v1.json': { list: 'cases', check: checkBudgetCase, label: (c) => `budget/${c.name}` },
  'format-v1.json': { list: 'vectors', check: checkFormatVector, label: (v) => v.name },
  'overflow-v1.json': { list: 'vectors', check: checkOverflowVector, label: (v) => v.name },
};

function main() {
  const dir = process.argv[2] ?? path.join(__dirname, '..', '..', 'test-vectors');
  let passed = 0, failed = 0;
  const notes = [];
  const fail = (line) => { failed++; console.log(`FAIL ${line}`); };
  let formatVectors = [];
  try {
    for (const name of fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
      if (!Object.hasOwn(VECTOR_FILES, name)) fail(`${name}: unknown vector file`);
    }
    for (const [name, { list, check, label }] of Object.entries(VECTOR_FILES)) {
      const file = path.join(dir, name);
      if (!fs.existsSync(file)) { fail(`${name}: missing from ${dir}`); continue; }
      const cases = parse(fs.readFileSync(file, 'utf8'))[list];
      if (!Array.isArray(cases)) { fail(`${name}: no "${list}" array`); continue; }
      if (name === 'format-v1.json') formatVectors = cases;
      for (const c of cases) {
        let failure;
        try {
          failure = check(c, notes);
        } catch (e) { // a crash is a failure, never a pass
          failure = `crashed: ${describeCrash(e)}`;
        }
        if (failure === null) passed++;
        else fail(`${name} ${label(c)}: ${failure}`);
      }
    }
    let selfFailures;
    try {
      selfFailures = selfChecks(formatVectors);
    } catch (e) {
      selfFailures = [`crashed: ${describeCrash(e)}`];
    }
    for (const failure of selfFailures) console.log(`FAIL self-check: ${failure}`);
    if (selfFailures.length) failed++;
    else passed++;
  } catch (e) {
    fail(`run.js: ${describeCrash(e)}`);
  }
  for (const note of notes) console.log(`note: ${note}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

main();
