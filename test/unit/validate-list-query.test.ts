// Checks that validateListQuery fills in defaults, accepts limits from 1 to listLimitMax written as plain digits, and refuses out-of-range or malformed limits, repeated parameters (arrays), ill-formed Unicode and oversized prefixes; by boundary cases.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { validateListQuery } from '../../src/http/validate.ts';
import { limits } from '../../src/limits.ts';
import { throwsPeerkv } from './assert-peerkv-error.ts';

describe('validateListQuery', () => {
  test('defaults: empty prefix and after, default limit', () => {
    assert.deepEqual(validateListQuery({}), {
      prefix: '',
      after: '',
      limit: limits.listLimitDefault,
    });
  });

  test('passes prefix, after and limit through', () => {
    assert.deepEqual(validateListQuery({ prefix: 'user/', after: 'user/7', limit: '25' }), {
      prefix: 'user/',
      after: 'user/7',
      limit: 25,
    });
  });

  test('accepts the limit bounds 1 and listLimitMax', () => {
    assert.equal(validateListQuery({ limit: '1' }).limit, 1);
    assert.equal(
      validateListQuery({ limit: String(limits.listLimitMax) }).limit,
      limits.listLimitMax,
    );
  });

  for (const limit of [
    '0',
    String(limits.listLimitMax + 1),
    '-1',
    '1.5',
    '1e2',
    '0x10',
    ' 5',
    '5 ',
    '+5',
    '',
    'ten',
    '99999999999999999999',
  ]) {
    test(`rejects limit ${JSON.stringify(limit)} with BAD_REQUEST`, () => {
      const error = throwsPeerkv(() => validateListQuery({ limit }), 'BAD_REQUEST');
      assert.equal(error.status, 400);
    });
  }

  for (const name of ['prefix', 'after', 'limit']) {
    test(`rejects a repeated ${name} (an array) with BAD_REQUEST`, () => {
      const error = throwsPeerkv(() => validateListQuery({ [name]: ['1', '2'] }), 'BAD_REQUEST');
      assert.match(error.message, new RegExp(name));
    });
  }

  test('rejects a prefix or after with a lone surrogate', () => {
    throwsPeerkv(() => validateListQuery({ prefix: 'a\uD800' }), 'BAD_REQUEST');
    throwsPeerkv(() => validateListQuery({ after: '\uDC00' }), 'BAD_REQUEST');
  });

  test('prefix and after are at most keyBytesMax UTF-8 bytes', () => {
    assert.equal(validateListQuery({ prefix: 'é'.repeat(512) }).prefix, 'é'.repeat(512));
    throwsPeerkv(() => validateListQuery({ prefix: `${'é'.repeat(512)}a` }), 'KEY_TOO_LARGE');
    throwsPeerkv(() => validateListQuery({ after: 'a'.repeat(1025) }), 'KEY_TOO_LARGE');
  });
});
