'use strict';
// A strict JSON parser (RFC 8259) that keeps every integer exact as a BigInt:
// the vector files hold 64-bit times beyond 2^53, which JSON.parse rounds.
// Numbers with a fraction or an exponent stay Numbers. Objects have no
// prototype, so a key such as "__proto__" is an ordinary key; a repeated key
// is an error.
const ESCAPES = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;

function parse(text) {
  let i = 0;
  const error = (what) => { throw new SyntaxError(`json: ${what} at offset ${i}`); };
  const skipSpace = () => { while (i < text.length && ' \t\r\n'.includes(text[i])) i++; };
  const expect = (c) => { if (text[i] !== c) error(`expected ${c}`); i++; };

  function string() {
    expect('"');
    let out = '';
    for (;;) {
      if (i >= text.length) error('unterminated string');
      const c = text[i];
      if (c === '"') { i++; return out; }
      if (c < ' ') error('control character in a string');
      if (c !== '\\') { out += c; i++; continue; }
      const e = text[i + 1];
      if (e === 'u') {
        const digits = text.slice(i + 2, i + 6);
        if (!HEX4.test(digits)) error('bad \\u escape');
        out += String.fromCharCode(parseInt(digits, 16)); // surrogate pairs join as two escapes
        i += 6;
      } else if (e !== undefined && Object.hasOwn(ESCAPES, e)) {
        out += ESCAPES[e];
        i += 2;
      } else error('unknown escape');
    }
  }

  function value() {
    skipSpace();
    const c = text[i];
    if (c === '{') {
      i++;
      const object = Object.create(null);
      skipSpace();
      if (text[i] === '}') { i++; return object; }
      for (;;) {
        skipSpace();
        const key = string();
        if (Object.hasOwn(object, key)) error(`repeated key ${JSON.stringify(key)}`);
        skipSpace();
        expect(':');
        object[key] = value();
        skipSpace();
        if (text[i] === '}') { i++; return object; }
        expect(',');
      }
    }
    if (c === '[') {
      i++;
      const array = [];
      skipSpace();
      if (text[i] === ']') { i++; return array; }
      for (;;) {
        array.push(value());
        skipSpace();
        if (text[i] === ']') { i++; return array; }
        expect(',');
      }
    }
    if (c === '"') return string();
    for (const [word, literal] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(word, i)) { i += word.length; return literal; }
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) error('bad value');
    i = NUMBER.lastIndex;
    return m[1] || m[2] ? Number(m[0]) : BigInt(m[0]);
  }

  const result = value();
  skipSpace();
  if (i !== text.length) error('trailing data');
  return result;
}

module.exports = { parse };
