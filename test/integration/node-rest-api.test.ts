// Checks the REST face (PUT/GET/DELETE /kv/:key and the paginated GET /kv listing) on one real node
// process, with awkward keys, every kind of JSON value, deletes, and ~250 keys paged through.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { del, getJson, httpRequest, putJson } from '../helpers/http.ts';
import { useOneNode } from '../helpers/node-process.ts';
import { assertError, mapConcurrent, rawHttp, readKey, VERSION_PATTERN } from './node-support.ts';

const WRITE_WIDTH = 50;
const PAGES_MAX = 400;

interface ListPage {
  items: { key: string; value: unknown; version: string }[];
  next: string | null;
}

function kvUrl(url: string, key: string): string {
  return `${url}/kv/${encodeURIComponent(key)}`;
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

async function listPage(url: string, query: Record<string, string>): Promise<ListPage> {
  const answer = await getJson(`${url}/kv?${new URLSearchParams(query)}`);
  assert.equal(answer.status, 200, answer.text);
  const page = answer.body as ListPage;
  assert.ok(Array.isArray(page.items), answer.text.slice(0, 200));
  assert.ok(page.next === null || typeof page.next === 'string');
  return page;
}

/** Follows `next` from the first page to the last; returns every item in order and the pages. */
async function listAll(
  url: string,
  prefix: string,
  limit: number | undefined,
): Promise<{ items: ListPage['items']; pages: number }> {
  const items: ListPage['items'] = [];
  let after: string | null = '';
  let pages = 0;
  while (after !== null) {
    pages += 1;
    assert.ok(pages <= PAGES_MAX, 'pagination does not end');
    const query: Record<string, string> = { prefix };
    if (limit !== undefined) query.limit = String(limit);
    if (after !== '') query.after = after;
    const page = await listPage(url, query);
    assert.ok(page.items.length <= (limit ?? 100), `page of ${page.items.length} > limit`);
    if (page.next !== null) {
      assert.ok(page.items.length > 0, 'a page with a next key holds items');
      assert.equal(page.next, page.items.at(-1)?.key, 'next is the last key of the page');
    }
    items.push(...page.items);
    after = page.next;
  }
  return { items, pages };
}

describe('the REST face of one node', () => {
  const one = useOneNode();
  let url = '';
  let port = 0;

  before(() => {
    url = one.url;
    port = one.port;
  });

  test('keys with slashes, spaces, unicode and percent signs round-trip through the path', async () => {
    const keys = [
      'user/42',
      '/leading/slash',
      'trailing/',
      'a//double',
      'with spaces  and\ttab',
      'plus+sign',
      'café ☕ 日本語',
      'emoji 😀 key',
      '100%',
      '%2F is not a slash',
      'query?and#hash&amp=1',
      '...',
      'x'.repeat(1024),
    ];
    for (const [index, key] of keys.entries()) {
      const value = { index, key };
      const put = await putJson(kvUrl(url, key), value);
      assert.equal(put.status, 200, `${key}: ${put.text}`);
      const putBody = put.body as { key: string; version: string };
      assert.equal(putBody.key, key);
      assert.match(putBody.version, VERSION_PATTERN);

      const got = await getJson(kvUrl(url, key));
      assert.equal(got.status, 200, `${key}: ${got.text}`);
      assert.deepEqual(got.body, { key, value, version: putBody.version });
      // The seed's read route sees the same entry.
      assert.deepEqual((await readKey(url, key)).body, { value });
    }
  });

  test("the README's curl PUT (form content type, as curl -d sends) stores the JSON body", async () => {
    const put = await httpRequest('PUT', `${url}/kv/user%2F42`, {
      rawBody: '{"name":"Ada","langs":["en"]}',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(put.status, 200, put.text);
    const version = (put.body as { version: string }).version;
    assert.deepEqual(put.body, { key: 'user/42', version });
    const got = await getJson(`${url}/kv/user%2F42`);
    assert.equal(
      got.text,
      `{"key":"user/42","value":{"name":"Ada","langs":["en"]},"version":"${version}"}`,
    );
  });

  test('a key written with raw slashes in the path is the same key as its encoded form', async () => {
    const put = await rawHttp(port, 'PUT', '/kv/dir/sub/leaf', {
      headers: { 'Content-Type': 'application/json' },
      body: '"raw"',
    });
    assert.equal(put.status, 200, put.text);
    assert.equal((put.body as { key: string }).key, 'dir/sub/leaf');
    const got = await getJson(kvUrl(url, 'dir/sub/leaf'));
    assert.equal(got.status, 200, got.text);
    assert.equal((got.body as { value: unknown }).value, 'raw');
  });

  test('the keys "." and ".." travel percent-encoded (clients would resolve them as dots)', async () => {
    for (const [key, target] of [
      ['.', '/kv/%2E'],
      ['..', '/kv/%2E%2E'],
    ] as const) {
      const put = await rawHttp(port, 'PUT', target, {
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ dots: key }),
      });
      assert.equal(put.status, 200, `${key}: ${put.text}`);
      assert.equal((put.body as { key: string }).key, key);
      const got = await rawHttp(port, 'GET', target);
      assert.equal(got.status, 200, got.text);
      assert.deepEqual((got.body as { value: unknown }).value, { dots: key });
      assert.deepEqual((await readKey(url, key)).body, { value: { dots: key } });
    }
  });

  test('every kind of JSON value round-trips, through /kv and through /store/key', async () => {
    const deep: unknown[] = [];
    let cursor = deep;
    for (let depth = 0; depth < 50; depth += 1) {
      const inner: unknown[] = [];
      cursor.push(depth, inner);
      cursor = inner;
    }
    const values: unknown[] = [
      { name: 'Ada', langs: ['en'], nested: { a: { b: [1, { c: null }] } } },
      {},
      [],
      [1, 'two', null, true, { three: 3 }],
      0,
      42,
      -1.5,
      1e300,
      Number.MAX_SAFE_INTEGER,
      null,
      '',
      'a string with "quotes", \\ backslashes, \n newlines and \u0000 nul',
      'ünïcödé 😀',
      true,
      false,
      deep,
    ];
    for (const [index, value] of values.entries()) {
      const key = `value-kind/${index}`;
      const put = await putJson(kvUrl(url, key), value);
      assert.equal(put.status, 200, `${JSON.stringify(value)}: ${put.text}`);
      const got = await getJson(kvUrl(url, key));
      assert.equal(got.status, 200, got.text);
      assert.deepEqual((got.body as { value: unknown }).value, value, `value ${index}`);
      assert.deepEqual((await readKey(url, key)).body, { value }, `value ${index} via /store/key`);
    }
  });

  test('DELETE answers with the tombstone, GET after it is 404, and a later PUT revives the key', async () => {
    const key = 'to/delete';
    const put = await putJson(kvUrl(url, key), { alive: true });
    assert.equal(put.status, 200, put.text);
    const putVersion = (put.body as { version: string }).version;

    const removed = await del(kvUrl(url, key));
    assert.equal(removed.status, 200, removed.text);
    const body = removed.body as {
      key: string;
      version: string;
      deleted: boolean;
      existed: boolean;
    };
    assert.deepEqual(Object.keys(body).sort(), ['deleted', 'existed', 'key', 'version']);
    assert.equal(body.key, key);
    assert.equal(body.deleted, true);
    assert.equal(body.existed, true);
    assert.match(body.version, VERSION_PATTERN);
    assert.ok(body.version > putVersion, 'the tombstone orders after the write it deletes');

    assertError(await getJson(kvUrl(url, key)), 404, 'KEY_NOT_FOUND', 'GET /kv after DELETE');
    assertError(await readKey(url, key), 404, 'KEY_NOT_FOUND', 'GET /store/key after DELETE');

    const again = await del(kvUrl(url, key));
    assert.equal(again.status, 200, again.text);
    assert.equal((again.body as { existed: boolean }).existed, false, 'second delete');
    const never = await del(kvUrl(url, 'never/written'));
    assert.equal(never.status, 200, never.text);
    assert.equal((never.body as { existed: boolean }).existed, false, 'delete of a fresh key');
    assertError(await getJson(kvUrl(url, 'never/written')), 404, 'KEY_NOT_FOUND');

    assert.equal((await putJson(kvUrl(url, key), 'back')).status, 200);
    assert.equal(((await getJson(kvUrl(url, key))).body as { value: unknown }).value, 'back');
  });

  test('GET /kv pages through ~250 keys in UTF-8 byte order: each live key once, deleted ones never', async () => {
    const prefix = 'page/';
    const keys: string[] = [];
    for (let index = 0; index < 240; index += 1) keys.push(`${prefix}${index.toString(36)}`);
    // Keys whose UTF-16 order differs from their UTF-8 byte order, and other awkward ones.
    keys.push(`${prefix}\ufb01`, `${prefix}😀`, `${prefix}é`, `${prefix}Z`, `${prefix}zz~`);
    keys.push(`${prefix} space`, `${prefix}a/b`, `${prefix}%`, `${prefix}_`, `${prefix}\u007f`);
    const outside = ['page', 'pagd/x', 'pagf', 'pag', 'Page/x', 'xpage/1'];
    assert.equal(new Set(keys).size, keys.length, 'the keys are distinct');
    const deleted = new Set(keys.filter((_, index) => index % 11 === 3));

    await mapConcurrent([...keys, ...outside], WRITE_WIDTH, async (key) => {
      const answer = await putJson(kvUrl(url, key), { key });
      assert.equal(answer.status, 200, `${key}: ${answer.text}`);
    });
    await mapConcurrent([...deleted], WRITE_WIDTH, async (key) => {
      assert.equal((await del(kvUrl(url, key))).status, 200);
    });
    const live = keys.filter((key) => !deleted.has(key)).sort(byteOrder);
    assert.ok(live.length > 200);

    for (const limit of [7, 1, undefined, 1000]) {
      const { items, pages } = await listAll(url, prefix, limit);
      const seen = items.map((item) => item.key);
      assert.deepEqual(seen, live, `limit ${limit}: every live key once, in byte order`);
      for (const item of items) {
        assert.deepEqual(item.value, { key: item.key });
        assert.match(item.version, VERSION_PATTERN);
      }
      const pagesMin = Math.ceil(live.length / (limit ?? 100));
      assert.ok(pages >= pagesMin && pages <= pagesMin + 1, `limit ${limit}: ${pages} pages`);
    }
  });

  test('GET /kv starts after `after` (exclusive) and filters by prefix', async () => {
    for (const key of ['list/a', 'list/b', 'list/c', 'list/d', 'lisu']) {
      assert.equal((await putJson(kvUrl(url, key), key)).status, 200);
    }
    const page = await listPage(url, { prefix: 'list/', after: 'list/b', limit: '2' });
    assert.deepEqual(
      page.items.map((item) => item.key),
      ['list/c', 'list/d'],
    );
    const rest = await listPage(url, { prefix: 'list/', after: 'list/d', limit: '2' });
    assert.deepEqual(rest, { items: [], next: null });
    const last = await listPage(url, { prefix: 'list/', after: 'list/b', limit: '3' });
    assert.equal(last.next, null, 'a short page is the last');
    const none = await listPage(url, { prefix: 'no-such-prefix/' });
    assert.deepEqual(none, { items: [], next: null });
  });

  test('GET /kv refuses a limit outside 1..1000 or not an integer with 400', async () => {
    for (const limit of ['0', '1001', 'abc', '-1', '1.5', '', '1e2', '10abc']) {
      const answer = await getJson(`${url}/kv?limit=${encodeURIComponent(limit)}`);
      assertError(answer, 400, 'BAD_REQUEST', `limit=${limit}`);
    }
    for (const limit of ['1', '1000']) {
      const answer = await getJson(`${url}/kv?limit=${limit}`);
      assert.equal(answer.status, 200, `limit=${limit}: ${answer.text}`);
    }
    const twice = await httpRequest('GET', `${url}/kv?limit=1&limit=2`);
    assertError(twice, 400, 'BAD_REQUEST', 'limit given twice');
  });
});
