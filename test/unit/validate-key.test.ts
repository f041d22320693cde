// Checks which keys validateKey and keyFromPath accept (any well-formed string of 1 to 1024 UTF-8 bytes, NUL and slashes included) and which they refuse with a typed error; by boundary cases with multibyte characters and a fast-check property.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { keyFromPath, validateKey } from '../../src/http/validate.ts';
import { limits } from '../../src/limits.ts';
import { throwsPeerkv } from './assert-peerkv-error.ts';

describe('validateKey', () => {
  for (const [name, input] of [
    ['a number', 1],
    ['null', null],
    ['undefined', undefined],
    ['an object', { key: 'a' }],
    ['an array', ['a']],
    ['a boolean', true],
  ] as [string, unknown][]) {
    test(`rejects ${name} with BAD_KEY`, () => {
      const error = throwsPeerkv(() => validateKey(input), 'BAD_KEY');
      assert.equal(error.status, 400);
    });
  }

  test('rejects the empty string with BAD_KEY', () => {
    throwsPeerkv(() => validateKey(''), 'BAD_KEY');
  });

  test('the limit is 1024 UTF-8 bytes', () => {
    assert.equal(limits.keyBytesMax, 1024);
  });

  const atLimit: [string, string][] = [
    ['1024 ASCII bytes', 'k'.repeat(1024)],
    ['512 two-byte characters', 'é'.repeat(512)],
    ['341 three-byte characters and one ASCII byte', `${'€'.repeat(341)}a`],
    ['256 four-byte characters (512 UTF-16 units)', '😀'.repeat(256)],
  ];
  for (const [name, key] of atLimit) {
    test(`accepts ${name}`, () => {
      assert.equal(Buffer.byteLength(key), 1024);
      assert.equal(validateKey(key), key);
    });
  }

  const overLimit: [string, string][] = [
    ['1025 ASCII bytes', 'k'.repeat(1025)],
    ['512 two-byte characters and one ASCII byte', `${'é'.repeat(512)}a`],
    ['342 three-byte characters (1026 bytes, 342 UTF-16 units)', '€'.repeat(342)],
    ['255 four-byte characters, two two-byte ones and one ASCII byte', `${'😀'.repeat(255)}éé!`],
    ['1023 ASCII bytes and one two-byte character', `${'k'.repeat(1023)}é`],
  ];
  for (const [name, key] of overLimit) {
    test(`rejects ${name} with KEY_TOO_LARGE`, () => {
      assert.ok(Buffer.byteLength(key) > 1024);
      assert.ok(key.length <= 1025, 'short in UTF-16 units: only the byte count catches it');
      const error = throwsPeerkv(() => validateKey(key), 'KEY_TOO_LARGE');
      assert.equal(error.status, 400);
    });
  }

  for (const [name, key] of [
    ['a lone high surrogate', '\uD800'],
    ['a lone low surrogate inside text', 'a\uDC00b'],
    ['a high surrogate at the end', 'abc\uD83D'],
    ['a reversed surrogate pair', '\uDE00\uD83D'],
  ] as [string, string][]) {
    test(`rejects ${name} with BAD_KEY`, () => {
      throwsPeerkv(() => validateKey(key), 'BAD_KEY');
    });
  }

  for (const key of [
    '\u0000',
    'a\u0000b',
    '/',
    'a/b',
    '/leading',
    'trailing/',
    '../etc/passwd',
    ' ',
    '😀',
    '\uFFFF',
  ]) {
    test(`accepts ${JSON.stringify(key)}`, () => {
      assert.equal(validateKey(key), key);
    });
  }

  test('accepts exactly the well-formed strings of 1..1024 UTF-8 bytes', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' })),
        (key) => {
          const acceptable =
            key.length > 0 && key.isWellFormed() && Buffer.byteLength(key) <= limits.keyBytesMax;
          let accepted = true;
          try {
            validateKey(key);
          } catch {
            // A refusal is what this property compares against `acceptable`.
            accepted = false;
          }
          assert.equal(accepted, acceptable);
        },
      ),
      { numRuns: 1_000 },
    );
  });
});

describe('keyFromPath', () => {
  test('decodes percent-encoding, including encoded slashes, NUL and UTF-8', () => {
    assert.equal(keyFromPath('hello'), 'hello');
    assert.equal(keyFromPath('a%2Fb'), 'a/b');
    assert.equal(keyFromPath('%00'), '\u0000');
    assert.equal(keyFromPath('caf%C3%A9'), 'café');
    assert.equal(keyFromPath('%F0%9F%98%80'), '😀');
    assert.equal(keyFromPath(encodeURIComponent('a b?c#d')), 'a b?c#d');
  });

  for (const [name, encoded] of [
    ['a lone percent sign', '%'],
    ['a truncated escape', 'abc%4'],
    ['a non-hex escape', '%zz'],
    ['a truncated UTF-8 sequence', '%E0%A4%A'],
    ['an invalid UTF-8 byte', '%FF'],
    ['a continuation byte on its own', '%80'],
    ['an overlong encoding', '%C0%AF'],
    ['an encoded surrogate', '%ED%A0%80'],
  ] as [string, string][]) {
    test(`rejects ${name} with BAD_KEY`, () => {
      const error = throwsPeerkv(() => keyFromPath(encoded), 'BAD_KEY');
      assert.equal(error.status, 400);
    });
  }

  test('applies the key rules after decoding', () => {
    throwsPeerkv(() => keyFromPath(''), 'BAD_KEY');
    // 342 characters of 3 bytes: 1026 bytes once decoded.
    throwsPeerkv(() => keyFromPath(encodeURIComponent('€'.repeat(342))), 'KEY_TOO_LARGE');
    assert.equal(keyFromPath(encodeURIComponent('é'.repeat(512))), 'é'.repeat(512));
  });
});
