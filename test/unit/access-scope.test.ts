// Checks the key scoping of a prefix-limited token (src/security/access.ts): which keys it allows,
// which prefixes a listing scans, and that a scoped listing over a model store shows exactly the
// allowed keys in byte order, page by page, for seeded random prefixes and keys.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { accessTo, listingPrefixes, openAccess, scopedList } from '../../src/security/access.ts';
import { throwsPeerkv } from './assert-peerkv-error.ts';

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** A model of the store's list(): keys > after, starting with prefix, in UTF-8 byte order. */
function modelList(keys: readonly string[]) {
  const sorted = [...keys].sort(byteOrder);
  return (prefix: string, after: string, limit: number) =>
    sorted
      .filter((key) => key.startsWith(prefix) && byteOrder(key, after) > 0)
      .slice(0, limit)
      .map((key) => ({ key }));
}

describe('access', () => {
  test('an unlimited access allows every key', () => {
    assert.ok(openAccess.allows('anything'));
    openAccess.requireKey('');
    assert.deepEqual(listingPrefixes(openAccess, 'x/'), ['x/']);
  });

  test('a prefix-limited access allows keys under its prefixes only, and says 403 otherwise', () => {
    const access = accessTo('app', ['app/', 'shared/']);
    assert.ok(access.allows('app/1'));
    assert.ok(access.allows('shared/'));
    assert.ok(!access.allows('app'));
    assert.ok(!access.allows('other/app/'));
    throwsPeerkv(() => access.requireKey('apple'), 'FORBIDDEN');
  });

  test('a listing scans the covering prefix, or the token prefixes under it, without overlap', () => {
    const access = accessTo('t', ['b/', 'a/x/', 'a/', 'é/', 'z/']);
    assert.deepEqual(listingPrefixes(access, ''), ['a/', 'b/', 'z/', 'é/']);
    assert.deepEqual(listingPrefixes(access, 'a/x/1'), ['a/x/1']);
    assert.deepEqual(listingPrefixes(access, 'a'), ['a/']);
    assert.deepEqual(listingPrefixes(access, 'c'), []);
  });

  test('scoped listings show exactly the allowed keys in order, page by page (seeded)', () => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    let state = seed;
    const random = () => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state / 2 ** 31;
    };
    const word = (length: number) =>
      Array.from({ length }, () => 'ab/é'[Math.floor(random() * 4)]).join('');
    for (let round = 0; round < 200; round += 1) {
      const keys = [
        ...new Set(Array.from({ length: 30 }, () => word(1 + Math.floor(random() * 4)))),
      ];
      const prefixes = Array.from({ length: 1 + Math.floor(random() * 3) }, () =>
        word(1 + Math.floor(random() * 2)),
      );
      const access = accessTo('t', prefixes);
      const listPrefix = random() < 0.5 ? '' : word(1);
      const expected = [...keys]
        .sort(byteOrder)
        .filter((key) => key.startsWith(listPrefix) && access.allows(key));
      const limit = 1 + Math.floor(random() * 4);
      const seen: string[] = [];
      let after = '';
      for (let page = 0; page < 100; page += 1) {
        const items = scopedList(access, { prefix: listPrefix, after, limit }, modelList(keys));
        assert.ok(items.length <= limit);
        seen.push(...items.map((item) => item.key));
        if (items.length < limit) break;
        after = items.at(-1)!.key;
      }
      assert.deepEqual(
        seen,
        expected,
        `seed ${seed} round ${round} prefixes ${JSON.stringify(prefixes)}`,
      );
    }
  });
});
