// Checks that valueToJson stores any JSON value up to the byte limit exactly, refuses a missing or oversized value, and turns values it cannot serialise (100000 nested arrays, BigInt) into a PeerkvError rather than a crash; by boundary cases.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { valueToJson } from '../../src/http/validate.ts';
import { throwsPeerkv } from './assert-peerkv-error.ts';

function nestedArrays(depth: number): unknown {
  let value: unknown[] = [];
  for (let level = 1; level < depth; level += 1) value = [value];
  return value;
}

function nestedObjects(depth: number): unknown {
  let value: Record<string, unknown> = {};
  for (let level = 1; level < depth; level += 1) value = { a: value };
  return value;
}

describe('valueToJson', () => {
  test('refuses a missing value (undefined) with BAD_VALUE', () => {
    const error = throwsPeerkv(() => valueToJson(undefined, 1_000), 'BAD_VALUE');
    assert.equal(error.status, 400);
  });

  test('stores every JSON value as its JSON text', () => {
    assert.equal(valueToJson(null, 100), 'null');
    assert.equal(valueToJson(false, 100), 'false');
    assert.equal(valueToJson(0, 100), '0');
    assert.equal(valueToJson('', 100), '""');
    assert.equal(valueToJson('world', 100), '"world"');
    assert.equal(valueToJson({ a: [1, 'b', null] }, 100), '{"a":[1,"b",null]}');
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const json = valueToJson(value, 1_000_000);
        assert.deepEqual(JSON.parse(json), JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  test('accepts a value of exactly valueBytesMax bytes and refuses one more byte', () => {
    // '"abcdefgh"' is 10 bytes.
    assert.equal(valueToJson('abcdefgh', 10), '"abcdefgh"');
    const error = throwsPeerkv(() => valueToJson('abcdefghi', 10), 'VALUE_TOO_LARGE');
    assert.equal(error.status, 413);
  });

  test('counts the limit in UTF-8 bytes of the JSON text, not in characters', () => {
    // '"éééé"' is 6 characters but 10 bytes.
    assert.equal(valueToJson('éééé', 10), '"éééé"');
    throwsPeerkv(() => valueToJson('ééééé', 11), 'VALUE_TOO_LARGE');
    // Escapes count too: '"\\n"' is 4 bytes of JSON for a 1-character string.
    assert.equal(valueToJson('\n', 4), '"\\n"');
    throwsPeerkv(() => valueToJson('\n', 3), 'VALUE_TOO_LARGE');
  });

  test('a large value at a 1 MiB limit: boundary exact', () => {
    const limit = 1024 * 1024;
    const fits = 'x'.repeat(limit - 2);
    assert.equal(valueToJson(fits, limit).length, limit);
    throwsPeerkv(() => valueToJson(`${fits}x`, limit), 'VALUE_TOO_LARGE');
  });

  test('100000 nested arrays give a PeerkvError, not a crash', () => {
    const error = throwsPeerkv(() => valueToJson(nestedArrays(100_000), 1024 * 1024), 'BAD_VALUE');
    assert.equal(error.status, 400);
    assert.ok(error.cause instanceof Error, 'keeps the original error as cause');
  });

  test('100000 nested objects give a PeerkvError, not a crash', () => {
    throwsPeerkv(() => valueToJson(nestedObjects(100_000), 64 * 1024 * 1024), 'BAD_VALUE');
  });

  test('moderate nesting is fine', () => {
    assert.equal(valueToJson(nestedArrays(500), 10_000).length, 1_000);
  });

  test('a value JSON cannot serialise (BigInt) gives a PeerkvError', () => {
    throwsPeerkv(() => valueToJson({ n: 1n }, 1_000), 'BAD_VALUE');
  });
});
