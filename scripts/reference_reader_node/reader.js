'use strict';
// A reader and writer of the sealed-session v1 token format, written from
// docs/FORMAT.md and test-vectors/README.md only (section numbers below are
// FORMAT.md's). Node 18+ (checked with 18.20.4 and 20.20.2), no dependencies.
const crypto = require('node:crypto');
const zlib = require('node:zlib');
const { constants: bufferConstants } = require('node:buffer');

const U64_MAX = (1n << 64n) - 1n;
const HEADER_LEN = 18;
const NONCE_LEN = 24;
const TAG_LEN = 16;
const OVERHEAD = HEADER_LEN + NONCE_LEN + TAG_LEN; // 58
const MIN_MASTER_KEY_LEN = 32;
const PRIORITIES = ['low', 'normal', 'high', 'critical'];
const DEFAULT_LIMITS = { max_token_len: 4096, max_decompressed: 65536, max_depth: 32, max_entries: 256 };

// One decoder for all text: fatal, so bad UTF-8 is an error rather than U+FFFD,
// and ignoreBOM, so a leading U+FEFF is kept as part of the text ("\u{feff}role"
// is a key of its own, not "role").
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// kind: the error kinds of §16. reason: for kind `store`, which failure of §15.1
// (missing, unavailable, not-configured, rejected).
class FormatError extends Error {
  constructor(kind, detail, reason = null, options = undefined) {
    super(kind + (reason ? ` (${reason})` : '') + (detail ? `: ${detail}` : ''), options);
    this.kind = kind;
    this.reason = reason;
  }
}
const fail = (kind, detail) => { throw new FormatError(kind, detail); };
const storeFail = (reason, detail) => { throw new FormatError('store', detail, reason); };

// The text, or null when the bytes are not UTF-8.
function utf8OrNull(bytes) {
  try {
    return UTF8.decode(bytes);
  } catch (e) {
    if (e.code !== 'ERR_ENCODING_INVALID_ENCODED_DATA') throw e;
    return null;
  }
}

// ---------- arguments (§12, §13) ----------
// Times, durations and limits are unsigned 64-bit integers, held as BigInt. A
// Number is accepted only as a safe integer: a larger one has already been rounded.
function u64(name, x) {
  if (typeof x === 'number' && Number.isSafeInteger(x)) x = BigInt(x);
  if (typeof x !== 'bigint' || x < 0n || x > U64_MAX) {
    throw new RangeError(`${name} must be an integer from 0 to 2^64 - 1 (a BigInt, or a Number up to 2^53 - 1); got ${typeof x} ${String(x)}`);
  }
  return x;
}
const optionalU64 = (name, x) => (x === null || x === undefined ? null : u64(name, x));

// node:zlib cannot cap its output beyond this, so a larger max_decompressed is
// refused when the reader is built rather than misreported per token.
const MAX_INFLATE_CAP = bufferConstants.MAX_LENGTH;

function readerLimits(limits) {
  if (limits === null || typeof limits !== 'object') throw new TypeError('limits must be an object');
  const maxDecompressed = u64('limits.max_decompressed', limits.max_decompressed);
  if (maxDecompressed > BigInt(MAX_INFLATE_CAP)) {
    throw new RangeError(`limits.max_decompressed ${maxDecompressed} is above what node:zlib can cap (${MAX_INFLATE_CAP})`);
  }
  return {
    maxTokenLen: u64('limits.max_token_len', limits.max_token_len),
    maxDecompressed: Number(maxDecompressed),
    maxDepth: u64('limits.max_depth', limits.max_depth),
    maxEntries: u64('limits.max_entries', limits.max_entries),
  };
}

function readerPolicy(policy) {
  if (policy === null || typeof policy !== 'object') throw new TypeError('policy must be an object');
  let fraction = policy.refresh_fraction;
  if (typeof fraction === 'bigint') fraction = Number(fraction);
  if (typeof fraction !== 'number') throw new TypeError('policy.refresh_fraction must be a number');
  return {
    maxIdle: optionalU64('policy.max_idle', policy.max_idle),
    maxLifetime: optionalU64('policy.max_lifetime', policy.max_lifetime),
    clockSkew: u64('policy.clock_skew', policy.clock_skew),
    // §12: clamped to [0, 1], NaN treated as 1.
    refreshFraction: Number.isNaN(fraction) ? 1 : Math.min(1, Math.max(0, fraction)),
  };
}

function byteString(name, x, length) {
  if (!(x instanceof Uint8Array) || (length !== undefined && x.length !== length)) {
    throw new TypeError(`${name} must be a Uint8Array${length === undefined ? '' : ` of ${length} bytes`}`);
  }
  return Buffer.from(x.buffer, x.byteOffset, x.length);
}

// ---------- §2 keys ----------
const HKDF_SALT = Buffer.from('sealed-session/v1');
const INFO_ENC_KEY = Buffer.from('sealed-session/v1 XChaCha20-Poly1305 key');
const INFO_KEY_ID = Buffer.from('sealed-session/v1 key id');
const hmacSha256 = (key, message) => crypto.createHmac('sha256', key).update(message).digest();

// Both outputs fit in the first HKDF-Expand block (§2).
function deriveKeys(masterKey) {
  const master = byteString('master key', masterKey);
  if (master.length < MIN_MASTER_KEY_LEN) fail('invalid-key', 'master key shorter than 32 bytes');
  const prk = hmacSha256(HKDF_SALT, master);
  return {
    prk,
    encKey: hmacSha256(prk, Buffer.concat([INFO_ENC_KEY, Buffer.from([1])])).subarray(0, 32),
    keyId: hmacSha256(prk, Buffer.concat([INFO_KEY_ID, Buffer.from([1])])).subarray(0, 8),
  };
}

// The primary first, then the fallbacks in lookup order.
function buildRing(primary, fallbacks) {
  if (!Array.isArray(fallbacks)) throw new TypeError('fallbacks must be an array');
  const seen = new Set();
  return [primary, ...fallbacks].map((master, index) => {
    const { encKey, keyId } = deriveKeys(master);
    const id = keyId.toString('hex');
    if (seen.has(id)) fail('invalid-key', 'two keys of the ring have the same key id');
    seen.add(id);
    return { encKey, keyId, fallback: index > 0 };
  });
}

// ---------- §1 XChaCha20-Poly1305: HChaCha20 here, the rest from node:crypto ----------
const rotl32 = (x, n) => ((x << n) | (x >>> (32 - n))) >>> 0;
function quarterRound(s, a, b, c, d) {
  s[a] = (s[a] + s[b]) >>> 0; s[d] = rotl32(s[d] ^ s[a], 16);
  s[c] = (s[c] + s[d]) >>> 0; s[b] = rotl32(s[b] ^ s[c], 12);
  s[a] = (s[a] + s[b]) >>> 0; s[d] = rotl32(s[d] ^ s[a], 8);
  s[c] = (s[c] + s[d]) >>> 0; s[b] = rotl32(s[b] ^ s[c], 7);
}
function hchacha20(key, nonce16) {
  const s = new Uint32Array(16);
  s.set([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);
  for (let i = 0; i < 8; i++) s[4 + i] = key.readUInt32LE(4 * i);
  for (let i = 0; i < 4; i++) s[12 + i] = nonce16.readUInt32LE(4 * i);
  for (let round = 0; round < 10; round++) {
    quarterRound(s, 0, 4, 8, 12); quarterRound(s, 1, 5, 9, 13); quarterRound(s, 2, 6, 10, 14); quarterRound(s, 3, 7, 11, 15);
    quarterRound(s, 0, 5, 10, 15); quarterRound(s, 1, 6, 11, 12); quarterRound(s, 2, 7, 8, 13); quarterRound(s, 3, 4, 9, 14);
  }
  const subkey = Buffer.alloc(32);
  [0, 1, 2, 3, 12, 13, 14, 15].forEach((word, i) => subkey.writeUInt32LE(s[word], 4 * i));
  return subkey;
}
// draft-irtf-cfrg-xchacha: ChaCha20-Poly1305 under HChaCha20(key, nonce[0..16])
// with the 12-byte nonce 0x00000000 || nonce[16..24].
function chachaKeyAndNonce(key, nonce24) {
  return [hchacha20(key, nonce24.subarray(0, 16)), Buffer.concat([Buffer.alloc(4), nonce24.subarray(16, 24)])];
}
// The body, or null when the tag does not verify (§8 step 7: the output is wiped).
function xchachaOpen(key, nonce24, aad, ciphertext, tag) {
  const decipher = crypto.createDecipheriv('chacha20-poly1305', ...chachaKeyAndNonce(key, nonce24), { authTagLength: TAG_LEN });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const body = decipher.update(ciphertext);
  try {
    decipher.final();
    return body;
  } catch {
    body.fill(0);
    return null;
  }
}
function xchachaSeal(key, nonce24, aad, body) {
  const cipher = crypto.createCipheriv('chacha20-poly1305', ...chachaKeyAndNonce(key, nonce24), { authTagLength: TAG_LEN });
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(body), cipher.final(), cipher.getAuthTag()]);
}

// §5
function associatedData(header, cookieName) {
  if (typeof cookieName !== 'string') throw new TypeError('the cookie name must be a string');
  const name = Buffer.from(cookieName, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(name.length);
  return Buffer.concat([header, length, name]);
}

// ---------- §9 base64url ----------
const B64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64_VALUE[B64_ALPHABET.charCodeAt(i)] = i;

// Checks the alphabet itself (no padding, white space or line breaks) and the trailing bits.
function b64urlDecodeStrict(text) {
  if (text.length % 4 === 1) fail('malformed', 'base64: length 1 modulo 4');
  const sextets = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? B64_VALUE[c] : -1;
    if (v < 0) fail('malformed', 'base64: character outside the url alphabet');
    sextets[i] = v;
  }
  const quads = Math.floor(text.length / 4), rest = text.length % 4;
  const out = Buffer.alloc(quads * 3 + [0, 0, 1, 2][rest]);
  let o = 0, i = 0;
  for (let q = 0; q < quads; q++, i += 4) {
    const n = (sextets[i] << 18) | (sextets[i + 1] << 12) | (sextets[i + 2] << 6) | sextets[i + 3];
    out[o++] = n >> 16; out[o++] = (n >> 8) & 255; out[o++] = n & 255;
  }
  if (rest === 2) {
    if (sextets[i + 1] & 0x0f) fail('malformed', 'base64: non-canonical trailing bits');
    out[o++] = (sextets[i] << 2) | (sextets[i + 1] >> 4);
  } else if (rest === 3) {
    if (sextets[i + 2] & 0x03) fail('malformed', 'base64: non-canonical trailing bits');
    out[o++] = (sextets[i] << 2) | (sextets[i + 1] >> 4);
    out[o++] = ((sextets[i + 1] & 0x0f) << 4) | (sextets[i + 2] >> 2);
  }
  return out;
}
const b64urlEncode = (bytes) => Buffer.from(bytes).toString('base64url'); // unpadded
const b64len = (m) => 4 * Math.floor(m / 3) + [0, 2, 3][m % 3];

// ---------- §10 capped raw inflate ----------
// node:zlib's inflater decodes nothing ahead of its output and checks the cap
// after each chunk, so an invalid stream is malformed unless it produced more
// than cap + 1 chunk first; the gap is within the 32 KiB that §10 allows.
const INFLATE_CHUNK = 1024;
const ZLIB_DATA_ERRORS = new Set(['Z_DATA_ERROR', 'Z_BUF_ERROR']); // invalid data; truncated stream

function inflateCapped(body, cap) {
  if (body.length === 0) fail('malformed', 'deflate: empty body (no block)');
  let result;
  try {
    // maxOutputLength is at least 1; output over it throws. A cap of 0 is checked below.
    result = zlib.inflateRawSync(body, { info: true, maxOutputLength: Math.max(cap, 1), chunkSize: INFLATE_CHUNK });
  } catch (e) {
    if (e.code === 'ERR_BUFFER_TOO_LARGE') fail('limit-exceeded', 'decompressed size over max_decompressed');
    if (ZLIB_DATA_ERRORS.has(e.code)) fail('malformed', `deflate: ${e.message}`);
    throw e;
  }
  if (result.buffer.length > cap) fail('limit-exceeded', 'decompressed size over max_decompressed');
  // zlib stops at the end of the final block: anything after it is unread.
  if (result.engine.bytesWritten !== body.length) fail('malformed', 'deflate: bytes after the final block');
  return result.buffer;
}

// ---------- §11.4 the payload walker ----------
const SHORTEST_MIN = { 24: 24n, 25: 256n, 26: 65536n, 27: 1n << 32n }; // smallest argument each head width may carry

class PayloadCursor {
  constructor(bytes) { this.bytes = bytes; this.pos = 0; }
  left() { return this.bytes.length - this.pos; }
  // One head, refused unless well formed, definite and in shortest form.
  head() {
    if (this.pos >= this.bytes.length) fail('malformed', 'cbor: head past the end of the plaintext');
    const initial = this.bytes[this.pos++];
    const major = initial >> 5, info = initial & 31;
    if (info >= 28) fail('malformed', info === 31 ? 'cbor: indefinite length or additional information 31' : 'cbor: reserved additional information');
    if (info < 24) return { major, info, arg: BigInt(info) };
    const width = 1 << (info - 24);
    if (this.left() < width) fail('malformed', 'cbor: head argument past the end');
    let arg = 0n;
    for (let k = 0; k < width; k++) arg = (arg << 8n) | BigInt(this.bytes[this.pos++]);
    if (major === 7) {
      // info 25..27 are floats: well formed, refused where a field is read.
      if (info === 24 && arg < 32n) fail('malformed', 'cbor: two-byte simple value below 32');
    } else if (arg < SHORTEST_MIN[info]) fail('malformed', 'cbor: head not in shortest form');
    return { major, info, arg };
  }
  uint(what) {
    const h = this.head();
    if (h.major !== 0) fail('malformed', `cbor: ${what} not an unsigned integer`);
    return h.arg;
  }
  take(h, what) {
    if (h.arg > BigInt(this.left())) fail('malformed', `cbor: ${what} runs past the end of the plaintext`);
    const n = Number(h.arg);
    return Buffer.from(this.bytes.subarray(this.pos, (this.pos += n)));
  }
  bstr(what) {
    const h = this.head();
    if (h.major !== 2) fail('malformed', `cbor: ${what} not a byte string`);
    return this.take(h, what);
  }
  arrayCount(what) {
    const h = this.head();
    if (h.major !== 4) fail('malformed', `cbor: ${what} not an array`);
    return h.arg;
  }
  key() {
    const h = this.head();
    if (h.major !== 3) fail('malformed', 'cbor: key not a text string');
    const bytes = this.take(h, 'key');
    const key = utf8OrNull(bytes);
    if (key === null) fail('malformed', 'cbor: key not valid UTF-8');
    if (bytes.length === 0) fail('malformed', 'cbor: empty key');
    if (bytes[0] === 0x5f) fail('malformed', 'cbor: reserved key (leading _)');
    return key;
  }
  priority() {
    const p = this.uint('priority');
    if (p > 3n) fail('malformed', 'cbor: priority above 3');
    return Number(p);
  }
}

// §11.4, in its order. Keys are valid UTF-8 (so strings compare as their bytes).
function parsePayload(plaintext, maxEntries) {
  const limit = u64('max_entries', maxEntries);
  const c = new PayloadCursor(plaintext);
  const length = c.arrayCount('payload');
  if (length !== 5n && length !== 6n) fail('malformed', 'cbor: payload not an array of 5 or 6');
  const createdAt = c.uint('created_at');
  const expiresHead = c.head();
  let expiresAt = null;
  if (expiresHead.major === 0) expiresAt = expiresHead.arg;
  else if (!(expiresHead.major === 7 && expiresHead.info === 22)) fail('malformed', 'cbor: expires_at neither an unsigned integer nor null');
  const sessionId = c.bstr('session_id');
  if (sessionId.length !== 16) fail('malformed', 'cbor: session_id not 16 bytes');
  const flags = c.uint('flags');
  if (flags & ~3n) fail('malformed', 'payload: unknown flag bits');
  if (flags & 2n) {
    if (expiresAt === null) fail('malformed', 'payload: flag bit 1 without expires_at');
    if (flags & 1n) fail('malformed', 'payload: flag bits 0 and 1 together');
  }
  if ((flags & 1n) && expiresAt !== null) fail('malformed', 'payload: browser-session flag with expires_at');

  const entryCount = c.arrayCount('entries');
  if (entryCount > limit) fail('limit-exceeded', 'entry count over max_entries');
  if (entryCount > BigInt(c.left())) fail('malformed', 'cbor: entry count larger than the bytes left');
  const entries = [];
  for (let k = 0n; k < entryCount; k++) {
    if (c.arrayCount('entry') !== 3n) fail('malformed', 'cbor: entry not an array of 3');
    const key = c.key();
    const priority = c.priority();
    entries.push({ key, priority, value: c.bstr('value') });
  }

  let overflow = null;
  if (length === 6n) {
    if (c.arrayCount('overflow') !== 2n) fail('malformed', 'cbor: overflow not an array of 2');
    const reference = c.bstr('reference');
    if (reference.length !== 16) fail('malformed', 'cbor: reference not 16 bytes');
    const keyCount = c.arrayCount('overflow keys');
    if (keyCount > limit - entryCount) fail('limit-exceeded', 'overflowed keys over max_entries minus the entries');
    if (keyCount > BigInt(c.left())) fail('malformed', 'cbor: overflow key count larger than the bytes left');
    if (keyCount === 0n) fail('malformed', 'cbor: empty overflow key list');
    const keys = [];
    for (let k = 0n; k < keyCount; k++) {
      if (c.arrayCount('overflow key') !== 2n) fail('malformed', 'cbor: overflow key not an array of 2');
      const key = c.key();
      keys.push({ key, priority: c.priority() });
    }
    overflow = { reference, keys };
  }

  if (c.left() !== 0) fail('malformed', 'cbor: bytes after the payload array');
  const seen = new Set();
  for (const { key } of [...entries, ...(overflow ? overflow.keys : [])]) {
    if (seen.has(key)) fail('malformed', 'payload: duplicate key');
    seen.add(key);
  }
  return { createdAt, expiresAt, sessionId, flags, entries, overflow };
}

// ---------- §8 opening ----------
const saturatingSub = (a, b) => (a >= b ? a - b : 0n);
const saturatingAdd = (a, b) => (a + b > U64_MAX ? U64_MAX : a + b);

// §12 sliding refresh: the one value computed in double precision (BigInt to
// Number rounds to nearest, ties to even).
function isRefreshDue(age, idleWindow, fraction) {
  if (idleWindow === null || fraction >= 1) return false;
  const after = BigInt(Math.floor(Number(idleWindow) * fraction));
  return age >= (after > U64_MAX ? U64_MAX : after);
}

const overflowStoreKey = (sessionId, reference) =>
  `sealed-session:overflow:{${sessionId.toString('hex')}}:${reference.toString('hex')}`;

// Whether a string holds no lone surrogate, so that it has a UTF-8 form
// (String.prototype.isWellFormed, without needing Node 20).
const isWellFormed = (text) => !/\p{Surrogate}/u.test(text);

// The text of a stored blob (§15.1 step 2): a string, or bytes that must be UTF-8.
function blobText(stored) {
  if (typeof stored === 'string') {
    if (!isWellFormed(stored)) storeFail('rejected', 'the stored value is not UTF-8');
    return stored;
  }
  if (stored instanceof Uint8Array) {
    const text = utf8OrNull(stored);
    if (text === null) storeFail('rejected', 'the stored value is not UTF-8');
    return text;
  }
  throw new TypeError('store.get must return a string, a Uint8Array, or undefined/null when missing');
}

class Reader {
  // primary, fallbacks: master keys (Uint8Array). limits, policy: the fields of a
  // vector's `limits` and `policy`, each a Number or a BigInt; max_idle and
  // max_lifetime may be null or undefined (no limit).
  constructor({ primary, fallbacks = [], limits, policy }) {
    this.ring = buildRing(primary, fallbacks);
    this.limits = readerLimits(limits);
    this.policy = readerPolicy(policy);
  }

  // §8 steps 1-8: { issuedAt, compressed, usedFallback, plaintext }. maxTokenLen
  // null skips step 1 (test-vectors/README.md checks plaintext_hex that way).
  unseal(cookieName, token, maxTokenLen = this.limits.maxTokenLen) {
    if (typeof token !== 'string') throw new TypeError('the token must be a string');
    const lengthLimit = maxTokenLen === null ? null : u64('maxTokenLen', maxTokenLen);
    if (lengthLimit !== null && BigInt(Buffer.byteLength(token, 'utf8')) > lengthLimit) {
      fail('limit-exceeded', 'token longer than max_token_len');
    }
    const raw = b64urlDecodeStrict(token);
    if (raw.length < OVERHEAD) fail('malformed', 'decoded token shorter than 58 bytes');
    if (raw[0] !== 1) fail('malformed', 'version byte not 1');
    if (raw[1] & 0xfe) fail('malformed', 'unknown header flag');
    const keyId = raw.subarray(2, 10);
    const key = this.ring.find((k) => k.keyId.equals(keyId));
    if (!key) fail('unknown-key-id', 'no key of the ring has this key id');
    const header = raw.subarray(0, HEADER_LEN);
    const body = xchachaOpen(key.encKey, raw.subarray(HEADER_LEN, HEADER_LEN + NONCE_LEN), associatedData(header, cookieName),
      raw.subarray(HEADER_LEN + NONCE_LEN, raw.length - TAG_LEN), raw.subarray(raw.length - TAG_LEN));
    if (body === null) fail('authentication-failed', 'the tag does not verify');
    const compressed = (raw[1] & 1) === 1;
    return {
      issuedAt: raw.readBigUInt64BE(10),
      compressed,
      usedFallback: key.fallback,
      plaintext: compressed ? inflateCapped(body, this.limits.maxDecompressed) : body,
    };
  }

  // §8: the session, or a FormatError whose kind is that of the first failing step.
  open(cookieName, token, now) {
    now = u64('now', now);
    const { issuedAt, compressed, usedFallback, plaintext } = this.unseal(cookieName, token);
    const { maxIdle, maxLifetime, clockSkew, refreshFraction } = this.policy;
    if (issuedAt > saturatingAdd(now, clockSkew)) fail('issued-in-future', 'issued_at after now + clock_skew'); // 9
    const age = saturatingSub(now, issuedAt);
    if (maxIdle !== null && age > maxIdle) fail('expired-idle', 'older than max_idle'); // 10
    const payload = parsePayload(plaintext, this.limits.maxEntries); // 11
    if (payload.createdAt > issuedAt) fail('malformed', 'created_at after issued_at'); // 12
    if (maxLifetime !== null && saturatingSub(now, payload.createdAt) > maxLifetime) fail('expired-lifetime', 'older than max_lifetime'); // 13
    const ownIdleTimeout = (payload.flags & 2n) !== 0n ? payload.expiresAt : null;
    const end = ownIdleTimeout === null ? payload.expiresAt : null;
    if (end !== null && now >= end) fail('expired-session', 'the session\'s own end is reached'); // 14
    if (ownIdleTimeout !== null && age > ownIdleTimeout) fail('expired-idle', 'older than the session\'s own idle timeout'); // 14′
    let idleWindow = maxIdle;
    if (ownIdleTimeout !== null && (idleWindow === null || ownIdleTimeout < idleWindow)) idleWindow = ownIdleTimeout;
    return {
      sessionId: payload.sessionId,
      createdAt: payload.createdAt < now ? payload.createdAt : now, // §11.2
      issuedAt,
      expiresAt: end,
      idleTimeout: ownIdleTimeout,
      browserSession: (payload.flags & 1n) !== 0n,
      compressed,
      usedFallback,
      refreshDue: isRefreshDue(age, idleWindow, refreshFraction),
      entries: payload.entries, // [{ key, priority (0-3), value (the CBOR bytes) }]
      overflow: payload.overflow, // null, or { reference, keys: [{ key, priority }] }
    };
  }

  // §15.1: the session's entries, the cookie's then the overflowed ones. store:
  // anything with a synchronous get(storeKey) returning a string or bytes, or
  // undefined/null when missing (a Map will do). Fails with kind `store`.
  loadOverflow(session, store) {
    if (session.overflow === null) return session.entries.slice();
    const storeKey = overflowStoreKey(session.sessionId, session.overflow.reference);
    if (store === null || store === undefined) storeFail('not-configured', 'no store');
    let stored;
    try {
      stored = store.get(storeKey);
    } catch (cause) {
      throw new FormatError('store', 'the store did not answer', 'unavailable', { cause });
    }
    if (stored === undefined || stored === null) storeFail('missing', `nothing under ${storeKey}`);
    const text = blobText(stored);
    let blob;
    try {
      // Steps 1-8 only, under the store key and the blob's own length limit.
      const { plaintext } = this.unseal(storeKey, text, BigInt(b64len(this.limits.maxDecompressed + OVERHEAD)));
      blob = parsePayload(plaintext, this.limits.maxEntries);
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      storeFail('rejected', `blob: ${e.message}`);
    }
    if (!blob.sessionId.equals(session.sessionId)) storeFail('rejected', 'the blob belongs to another session id');
    const blobValues = new Map(blob.entries.map((e) => [e.key, e.value]));
    const entries = session.entries.slice();
    for (const listed of session.overflow.keys) {
      if (!blobValues.has(listed.key)) storeFail('rejected', `the blob lacks ${JSON.stringify(listed.key)}`);
      // The cookie's priority stands; the blob's is ignored.
      entries.push({ key: listed.key, priority: listed.priority, value: blobValues.get(listed.key) });
    }
    return entries;
  }

  decodeValue(bytes) {
    return decodeValue(bytes, this.limits.maxDepth);
  }
}

// ---------- §11.5 values ----------
class CborTag { constructor(tag, value) { this.tag = tag; this.value = value; } }
class CborSimple { constructor(value) { this.value = value; } }

function halfToNumber(bits) {
  const sign = bits & 0x8000 ? -1 : 1, exponent = (bits >> 10) & 0x1f, fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1024 + fraction) * 2 ** (exponent - 25);
}

// Decodes one CBOR item, and nothing after it, with kind `value` for anything
// else and `limit-exceeded` above maxDepth levels: each array, map and tag is a
// level, except a tag 2 or 3 around a byte string of at most 16 bytes, which is
// a bignum (as the reference counts). Iterative, so a deep item cannot overflow
// the JavaScript stack. Results:
//   integers and bignums: BigInt (exact whatever the size); floats: Number;
//   byte strings: Buffer; text: string (a leading U+FEFF kept);
//   false, true, null, undefined: themselves; other simple values: CborSimple;
//   arrays: Array; other tags: CborTag;
//   maps: Map, in encoded order. A Map takes keys of any type and has no
//   prototype keys such as __proto__ to collide with. A key that repeats (equal
//   as a JavaScript primitive, or byte for byte for other keys) is refused:
//   which value would win is not defined (RFC 8949 §5.6).
function decodeValue(bytes, maxDepth = DEFAULT_LIMITS.max_depth) {
  const buf = byteString('value', bytes);
  const depthLimit = u64('max_depth', maxDepth);
  const bad = (why) => fail('value', why);
  let pos = 0;

  function head() {
    if (pos >= buf.length) bad('the item runs past the end');
    const start = pos;
    const initial = buf[pos++];
    const major = initial >> 5, info = initial & 31;
    if (info < 24) return { start, major, info, arg: BigInt(info) };
    if (info === 31) return { start, major, info, arg: null }; // indefinite length, or break
    if (info >= 28) bad('reserved additional information');
    const width = 1 << (info - 24);
    if (buf.length - pos < width) bad('the head runs past the end');
    let arg = 0n;
    for (let k = 0; k < width; k++) arg = (arg << 8n) | BigInt(buf[pos++]);
    return { start, major, info, arg };
  }
  function take(length) {
    if (length > BigInt(buf.length - pos)) bad('a string runs past the end');
    return buf.subarray(pos, (pos += Number(length)));
  }
  function text(bytes, what) {
    const decoded = utf8OrNull(bytes);
    return decoded === null ? bad(`${what} is not valid UTF-8`) : decoded;
  }
  function string(h) {
    let bytes;
    if (h.arg !== null) bytes = take(h.arg);
    else { // indefinite: definite chunks of the same major type up to a break
      const chunks = [];
      for (;;) {
        if (pos < buf.length && buf[pos] === 0xff) { pos++; break; }
        const chunk = head();
        if (chunk.major !== h.major || chunk.arg === null) bad('bad chunk in an indefinite-length string');
        chunks.push(take(chunk.arg));
        if (h.major === 3) text(chunks[chunks.length - 1], 'a text chunk');
      }
      bytes = Buffer.concat(chunks);
    }
    return h.major === 2 ? Buffer.from(bytes) : text(bytes, 'a text string');
  }
  // The byte string of a bignum at pos (tag 2 or 3 just read), or null.
  function bignumBytes() {
    if (pos >= buf.length || buf[pos] >> 5 !== 2) return null;
    const info = buf[pos] & 31;
    if (info >= 28 || (info >= 24 && buf.length - pos - 1 < 1 << (info - 24))) return null;
    const saved = pos;
    const h = head();
    if (h.arg <= 16n && h.arg <= BigInt(buf.length - pos)) return take(h.arg);
    pos = saved;
    return null;
  }
  function simpleOrFloat(h) {
    switch (h.info) {
      case 20: return false;
      case 21: return true;
      case 22: return null;
      case 23: return undefined;
      case 24:
        if (h.arg < 32n) bad('a two-byte simple value below 32');
        return new CborSimple(Number(h.arg));
      case 25: return halfToNumber(buf.readUInt16BE(pos - 2));
      case 26: return buf.readFloatBE(pos - 4);
      case 27: return buf.readDoubleBE(pos - 8);
      default: return new CborSimple(h.info);
    }
  }

  const containers = []; // being filled, outermost first; each is a level
  const enter = (frame) => {
    if (BigInt(containers.length + 1) > depthLimit) fail('limit-exceeded', 'value nested deeper than max_depth');
    containers.push(frame);
  };
  const NOTHING = Symbol('nothing'); // `undefined` is a CBOR value
  for (;;) {
    const h = head();
    let value = NOTHING;
    let start = h.start; // where the value being handed up begins (to compare map keys)
    if (h.major === 7 && h.info === 31) { // break
      const top = containers[containers.length - 1];
      if (!top || top.remaining !== null || top.kind === 'tag' || (top.kind === 'map' && top.pendingKey !== NOTHING)) bad('unexpected break');
      containers.pop();
      value = top.kind === 'array' ? top.items : top.map;
      start = top.start;
    } else if (h.arg === null && h.major !== 2 && h.major !== 3 && h.major !== 4 && h.major !== 5) {
      bad('additional information 31 on a type without indefinite length');
    } else {
      switch (h.major) {
        case 0: value = h.arg; break;
        case 1: value = -1n - h.arg; break;
        case 2: case 3: value = string(h); break;
        case 4: case 5: {
          const perItem = h.major === 4 ? 1n : 2n;
          // Each item takes at least a byte: a count the bytes cannot hold allocates nothing.
          if (h.arg !== null && h.arg * perItem > BigInt(buf.length - pos)) bad('a count larger than the bytes left');
          const frame = h.major === 4
            ? { kind: 'array', start: h.start, remaining: h.arg, items: [] }
            : { kind: 'map', start: h.start, remaining: h.arg, map: new Map(), rawKeys: new Set(), pendingKey: NOTHING };
          enter(frame);
          if (h.arg === 0n) { containers.pop(); value = frame.items || frame.map; }
          break;
        }
        case 6: {
          const big = h.arg === 2n || h.arg === 3n ? bignumBytes() : null;
          if (big !== null) {
            const n = big.length ? BigInt('0x' + big.toString('hex')) : 0n;
            value = h.arg === 2n ? n : -1n - n;
          } else enter({ kind: 'tag', start: h.start, tag: h.arg });
          break;
        }
        default: value = simpleOrFloat(h); // 7
      }
    }
    // Hand the finished value to its container, closing every container it completes.
    while (value !== NOTHING) {
      const top = containers[containers.length - 1];
      if (!top) {
        if (pos !== buf.length) bad('bytes after the item');
        return value;
      }
      let done = false;
      if (top.kind === 'tag') {
        value = new CborTag(top.tag, value);
        done = true;
      } else if (top.kind === 'array') {
        top.items.push(value);
        done = top.remaining !== null && BigInt(top.items.length) === top.remaining;
        if (done) value = top.items;
      } else if (top.pendingKey === NOTHING) {
        const raw = typeof value === 'object' && value !== null ? buf.toString('hex', start, pos) : null;
        if (raw === null ? top.map.has(value) : top.rawKeys.has(raw)) bad('a map key repeats');
        if (raw !== null) top.rawKeys.add(raw);
        top.pendingKey = value;
      } else {
        top.map.set(top.pendingKey, value);
        top.pendingKey = NOTHING;
        done = top.remaining !== null && BigInt(top.map.size) === top.remaining;
        if (done) value = top.map;
      }
      if (!done) break;
      containers.pop();
      start = top.start;
    }
  }
}

// ---------- §11.3 the canonical payload, §7 sealing ----------
function cborHead(major, n) {
  n = BigInt(n);
  const m = major << 5;
  if (n < 24n) return Buffer.from([m | Number(n)]);
  if (n < 256n) return Buffer.from([m | 24, Number(n)]);
  if (n < 65536n) { const b = Buffer.alloc(3); b[0] = m | 25; b.writeUInt16BE(Number(n), 1); return b; }
  if (n < 1n << 32n) { const b = Buffer.alloc(5); b[0] = m | 26; b.writeUInt32BE(Number(n), 1); return b; }
  const b = Buffer.alloc(9); b[0] = m | 27; b.writeBigUInt64BE(n, 1); return b;
}

function encodeKey(key, priority) {
  if (typeof key !== 'string' || !isWellFormed(key)) throw new TypeError('an entry key must be a well-formed string');
  if (key === '' || key[0] === '_') fail('invalid-entry-key', `empty or reserved key ${JSON.stringify(key)}`);
  if (!Number.isInteger(priority) || priority < 0 || priority > 3) throw new RangeError('a priority is 0 to 3');
  const bytes = Buffer.from(key, 'utf8');
  return [cborHead(3, bytes.length), bytes, cborHead(0, priority)];
}

// The payload of a session shaped as open() returns it: { createdAt, expiresAt
// (an end, or null), idleTimeout (or null), browserSession, sessionId, entries,
// overflow (or null) }. It does not clamp createdAt: seal() does.
function encodePayload(session) {
  const { entries, overflow = null } = session;
  const idleTimeout = optionalU64('idleTimeout', session.idleTimeout);
  const end = optionalU64('expiresAt', session.expiresAt);
  if (idleTimeout !== null && end !== null) throw new RangeError('a session has an end or an idle timeout of its own, not both');
  if (session.browserSession && (idleTimeout !== null || end !== null)) throw new RangeError('a browser-session cookie has no expiry of its own');
  const flags = idleTimeout !== null ? 2 : session.browserSession ? 1 : 0;
  const expiresField = idleTimeout ?? end;
  const parts = [cborHead(4, overflow ? 6 : 5), cborHead(0, u64('createdAt', session.createdAt)),
    expiresField === null ? Buffer.from([0xf6]) : cborHead(0, expiresField),
    cborHead(2, 16), byteString('sessionId', session.sessionId, 16), cborHead(0, flags), cborHead(4, entries.length)];
  for (const { key, priority, value } of entries) {
    const valueBytes = byteString('an entry value', value);
    parts.push(Buffer.from([0x83]), ...encodeKey(key, priority), cborHead(2, valueBytes.length), valueBytes);
  }
  if (overflow) {
    if (overflow.keys.length === 0) throw new RangeError('an overflow element lists at least one key');
    parts.push(Buffer.from([0x82]), cborHead(2, 16), byteString('overflow.reference', overflow.reference, 16), cborHead(4, overflow.keys.length));
    for (const { key, priority } of overflow.keys) parts.push(Buffer.from([0x82]), ...encodeKey(key, priority));
  }
  return Buffer.concat(parts);
}

// §7: the token text. compressionThreshold: null (off) or T. limits: the
// writer's own max_token_len and max_decompressed (step 0). nonce: only to
// reproduce the vectors; a writer uses a fresh random one each time (§6).
function seal({ masterKey, cookieName, issuedAt, session, compressionThreshold = null, limits = DEFAULT_LIMITS, nonce = crypto.randomBytes(NONCE_LEN) }) {
  const { encKey, keyId } = deriveKeys(masterKey);
  issuedAt = u64('issuedAt', issuedAt);
  const threshold = optionalU64('compressionThreshold', compressionThreshold);
  const maxTokenLen = u64('limits.max_token_len', limits.max_token_len);
  const maxDecompressed = u64('limits.max_decompressed', limits.max_decompressed);
  const nonceBytes = byteString('nonce', nonce, NONCE_LEN);
  // §11.1: every token has created_at <= issued_at.
  const createdAt = u64('createdAt', session.createdAt);
  const plaintext = encodePayload({ ...session, createdAt: createdAt < issuedAt ? createdAt : issuedAt });
  // Step 0: never emit what the writer's own reader would refuse on size.
  if (BigInt(plaintext.length) > maxDecompressed) fail('limit-exceeded', 'payload longer than max_decompressed');
  if (threshold === null && BigInt(b64len(OVERHEAD + plaintext.length)) > maxTokenLen) fail('limit-exceeded', 'token longer than max_token_len');
  let body = plaintext, flags = 0;
  if (threshold !== null && plaintext.length > 0 && BigInt(plaintext.length) >= threshold) {
    const deflated = zlib.deflateRawSync(plaintext, { level: 6 });
    if (deflated.length < plaintext.length) { body = deflated; flags = 1; }
  }
  const header = Buffer.alloc(HEADER_LEN);
  header[0] = 1; header[1] = flags; keyId.copy(header, 2); header.writeBigUInt64BE(issuedAt, 10);
  const token = b64urlEncode(Buffer.concat([header, nonceBytes, xchachaSeal(encKey, nonceBytes, associatedData(header, cookieName), body)]));
  if (threshold !== null && BigInt(token.length) > maxTokenLen) fail('limit-exceeded', 'token longer than max_token_len');
  return token;
}

module.exports = {
  Reader, FormatError, CborTag, CborSimple, PRIORITIES, U64_MAX, OVERHEAD,
  deriveKeys, hchacha20, b64urlDecodeStrict, b64urlEncode, b64len, inflateCapped, parsePayload,
  overflowStoreKey, decodeValue, cborHead, encodePayload, seal,
};
