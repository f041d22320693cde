// Goal: POST /replicate validates a whole batch before applying any of it, and the resync routes
// refuse malformed bodies; method: seeded batches with one malformed entry (or a malformed batch
// field) at a random place are sent to a real node and must be refused with 400/413 while
// /store/hash and a listing of the batch's keys stay unchanged, then a valid batch must apply,
// replay idempotently, and the seed's single {"key","value"} shape must work.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { limits } from '../../src/limits.ts';
import { getJson, httpRequest, postJson } from '../helpers/http.ts';
import { useOneNode } from '../helpers/node-process.ts';
import { buildRequest, errorLogLines, exchange, Rng, seedFrom } from './hostile-support.ts';
import { type Answer, assertError, readKey, storeHash, VERSION_PATTERN } from './node-support.ts';

const SEED_VARIABLE = 'PEERKV_REPLICATE_SEED';
const BAD_BATCHES = 160;
const ENTRIES_PER_BATCH_MAX = 40;
const ENTRIES_MAX = limits.replicateEntriesMax;
const KEY_BYTES_MAX = 1024;
const VALUE_BYTES_MAX = 1024 * 1024;
/** The resync page bound (8 MiB) plus one value (1 MiB) plus 64 KiB of framing: what senders send. */
const REPLICATE_BODY_BYTES_MAX = 8 * 1024 * 1024 + 1024 * 1024 + 64 * 1024;
const LOGICAL_PER_MS = 1024;
const DAY_MS = 86_400_000;
const JSON_HEADERS = { 'Content-Type': 'application/json' };

type Json = Record<string, unknown>;

function versionAt(ms: number, nodeId: string, logical = 0): string {
  return `${(ms * LOGICAL_PER_MS + logical).toString(16).padStart(14, '0')}-${nodeId}`;
}

/** A well-formed entry: a value or a tombstone, with a version from the last hour. */
function validEntry(rng: Rng, key: string): Json {
  const version = versionAt(Date.now() - rng.int(0, 3_600_000), rng.hex(16), rng.int(0, 1023));
  if (rng.chance(0.2)) return { key, deleted: true, version };
  const value = rng.pick<unknown>([rng.hex(8), rng.int(0, 1e6), null, true, [1, 'a'], { n: 1 }]);
  return rng.chance(0.1) ? { key, value, version, deleted: false } : { key, value, version };
}

/** One malformed entry, built from a valid one; each is refused by the README's rules. */
const BAD_ENTRIES: readonly [string, (entry: Json, rng: Rng) => unknown][] = [
  ['uppercase hex version', (e) => ({ ...e, version: String(e.version).toUpperCase() })],
  ['version without dash', (e) => ({ ...e, version: String(e.version).replace('-', '') })],
  ['version with 13 timestamp digits', (e) => ({ ...e, version: String(e.version).slice(1) })],
  ['version with 15 node id digits', (e) => ({ ...e, version: String(e.version).slice(0, -1) })],
  ['version with 17 node id digits', (e) => ({ ...e, version: `${e.version}0` })],
  ['version with a non-hex digit', (e) => ({ ...e, version: `g${String(e.version).slice(1)}` })],
  ['version padded with a space', (e) => ({ ...e, version: ` ${e.version}` })],
  ['version as a number', (e) => ({ ...e, version: 123456 })],
  ['version null', (e) => ({ ...e, version: null })],
  ['version missing', ({ version: _, ...rest }) => rest],
  ['zero timestamp', (e, r) => ({ ...e, version: `00000000000000-${r.hex(16)}` })],
  ['timestamp past 2^53', (e, r) => ({ ...e, version: `ffffffffffffff-${r.hex(16)}` })],
  [
    'version over a day ahead',
    (e, r) => ({
      ...e,
      version: versionAt(Date.now() + DAY_MS + r.int(60_000, 10 * DAY_MS), r.hex(16)),
    }),
  ],
  [
    'version years ahead',
    (e, r) => ({ ...e, version: versionAt(Date.now() + 100 * 365 * DAY_MS, r.hex(16)) }),
  ],
  ['key missing', ({ key: _, ...rest }) => rest],
  ['key a number', (e) => ({ ...e, key: 42 })],
  ['key null', (e) => ({ ...e, key: null })],
  ['key an array', (e) => ({ ...e, key: [e.key] })],
  ['key an object', (e) => ({ ...e, key: { k: e.key } })],
  ['key a boolean', (e) => ({ ...e, key: true })],
  ['key empty', (e) => ({ ...e, key: '' })],
  ['key a lone surrogate', (e) => ({ ...e, key: `${e.key}\ud800` })],
  ['key over 1,024 bytes', (e) => ({ ...e, key: `${e.key}${'k'.repeat(KEY_BYTES_MAX)}` })],
  ['value and deleted', (e) => ({ ...e, value: 'both', deleted: true })],
  ['value null and deleted', (e) => ({ ...e, value: null, deleted: true })],
  ['deleted "yes"', ({ value: _, ...rest }) => ({ ...rest, deleted: 'yes' })],
  ['deleted "true"', ({ value: _, ...rest }) => ({ ...rest, deleted: 'true' })],
  ['deleted 1', ({ value: _, ...rest }) => ({ ...rest, deleted: 1 })],
  ['deleted null', ({ value: _, ...rest }) => ({ ...rest, deleted: null })],
  ['neither value nor deleted', ({ value: _, deleted: __, ...rest }) => rest],
  ['value over 1 MiB', (e) => ({ ...e, deleted: undefined, value: 'v'.repeat(VALUE_BYTES_MAX) })],
  ['entry null', () => null],
  ['entry an array', (e) => [e.key, e.value, e.version]],
  ['entry a string', (e) => String(e.key)],
  ['entry a number', () => 7],
];

/** Batch-level faults: the entries may all be valid. */
const BAD_FROMS: readonly unknown[] = [
  'ABCDEF0123456789',
  '0123456789abcde',
  '0123456789abcdef0',
  'not-a-node-id!!!',
  '',
  42,
  null,
  ['0123456789abcdef'],
];
const BAD_ENTRY_LISTS: readonly unknown[] = [{}, 'entries', null, 5, true, { 0: {} }];

interface BadBatch {
  readonly what: string;
  readonly prefix: string;
  readonly body: Json;
}

function badBatch(rng: Rng, seed: number, index: number): BadBatch {
  const prefix = `bad-${seed}-${index}-`;
  const count = rng.int(0, ENTRIES_PER_BATCH_MAX);
  const entries: unknown[] = Array.from({ length: count }, (_, i) =>
    validEntry(rng, `${prefix}${i}`),
  );
  const from = rng.chance(0.7) ? rng.hex(16) : undefined;
  const fault = rng.int(0, 9);
  if (fault === 0) {
    const badFrom = rng.pick(BAD_FROMS);
    return { what: `from ${JSON.stringify(badFrom)}`, prefix, body: { from: badFrom, entries } };
  }
  if (fault === 1) {
    const list = rng.pick(BAD_ENTRY_LISTS);
    return { what: `entries ${JSON.stringify(list)}`, prefix, body: { from, entries: list } };
  }
  const [what, corrupt] = rng.pick(BAD_ENTRIES);
  const at = rng.int(0, entries.length);
  entries.splice(at, 0, corrupt(validEntry(rng, `${prefix}${count}`), rng));
  return { what: `${what} at ${at} of ${entries.length}`, prefix, body: { from, entries } };
}

/** GET /kv?prefix=...: live keys under a prefix (one page is enough for these batches). */
async function keysUnder(url: string, prefix: string): Promise<string[]> {
  const answer = await getJson(`${url}/kv?${new URLSearchParams({ prefix, limit: '1000' })}`);
  assert.equal(answer.status, 200, answer.text);
  return (answer.body as { items: { key: string }[] }).items.map((item) => item.key);
}

function replicate(url: string, body: unknown): Promise<Answer> {
  return postJson(`${url}/replicate`, body, { timeoutMs: 30_000 });
}

describe('POST /replicate and the resync routes under hostile input', () => {
  const one = useOneNode();
  let url = '';
  let port = 0;

  before(() => {
    url = one.url;
    port = one.port;
  });

  test("the seed's single {key, value} shape is stamped and stored", async () => {
    const answer = await replicate(url, { key: 'seed-shape', value: 'world' });
    assert.equal(answer.status, 200, answer.text);
    const body = answer.body as { key: string; version: string };
    assert.equal(body.key, 'seed-shape');
    assert.match(body.version, VERSION_PATTERN);
    assert.deepEqual((await readKey(url, 'seed-shape')).body, { value: 'world' });
  });

  test(`${BAD_BATCHES} seeded batches with one malformed part are refused whole`, async (t) => {
    const seed = seedFrom(SEED_VARIABLE);
    t.diagnostic(`seed ${seed} (replay with ${SEED_VARIABLE}=${seed})`);
    const rng = new Rng(seed);
    const hashBefore = await storeHash(url);
    for (let index = 0; index < BAD_BATCHES; index += 1) {
      const batch = badBatch(rng, seed, index);
      const what = `seed ${seed}, batch ${index}: ${batch.what}`;
      const answer = await replicate(url, batch.body);
      assertError(answer, 400, 'BAD_BATCH', what);
      assert.equal(await storeHash(url), hashBefore, `${what}: /store/hash changed`);
      assert.deepEqual(await keysUnder(url, batch.prefix), [], `${what}: keys were applied`);
    }
    assert.equal((await getJson(`${url}/ping`)).status, 200);
  });

  test('batches past the entry and byte limits are 413 and change nothing', async () => {
    const hashBefore = await storeHash(url);
    const nodeId = '00000000000000aa';
    const entries = (prefix: string, count: number) =>
      Array.from({ length: count }, (_, i) => ({
        key: `${prefix}${i}`,
        value: i,
        version: versionAt(Date.now(), nodeId, i % 1024),
      }));
    const tooMany = await replicate(url, {
      from: nodeId,
      entries: entries('many-', ENTRIES_MAX + 1),
    });
    assertError(tooMany, 413, 'BATCH_TOO_LARGE', `${ENTRIES_MAX + 1} entries`);
    assert.deepEqual(await keysUnder(url, 'many-'), []);

    // A full batch whose very last entry is bad: validated whole, so none of it lands.
    const lastBad = entries('last-bad-', ENTRIES_MAX) as Json[];
    lastBad[ENTRIES_MAX - 1] = { ...lastBad[ENTRIES_MAX - 1], deleted: 'yes' };
    assertError(await replicate(url, { from: nodeId, entries: lastBad }), 400, 'BAD_BATCH');
    assert.deepEqual(await keysUnder(url, 'last-bad-'), []);

    const head = buildRequest('POST', '/replicate', {
      headers: [
        ['Content-Type', 'application/json'],
        ['Content-Length', String(REPLICATE_BODY_BYTES_MAX + 1)],
      ],
      framing: 'none',
    });
    const oversize = await exchange(port, [head, Buffer.from('{"entries":[')], {
      earlyAnswerMs: 200,
    });
    assert.equal(oversize.status, 413, oversize.text);
    assert.equal((oversize.json as { code: string }).code, 'BODY_TOO_LARGE');
    assert.equal(await storeHash(url), hashBefore);
  });

  test('a valid batch applies; replaying it, in any order, changes nothing', async () => {
    const now = Date.now();
    const [idA, idB] = ['00000000000000a1', '00000000000000b2'];
    const entries: Json[] = [];
    for (let i = 0; i < 200; i += 1) {
      entries.push({
        key: `good-${i}`,
        value: { i, tag: 'first' },
        version: versionAt(now, idA, i),
      });
    }
    // Same key twice in one batch: the higher version wins, whichever comes first.
    entries.push({ key: 'good-dup', value: 'newer', version: versionAt(now, idB, 5) });
    entries.push({ key: 'good-dup', value: 'older', version: versionAt(now, idA, 5) });
    // A tombstone beats an older value of the same key in the same batch.
    entries.push({ key: 'good-0', deleted: true, version: versionAt(now + 1, idB) });
    entries.push({ key: 'good-gone', deleted: true, version: versionAt(now, idA) });
    const hashBefore = await storeHash(url);
    const applied = await replicate(url, { from: idA, entries });
    assert.equal(applied.status, 200, applied.text);
    const hashApplied = await storeHash(url);
    assert.notEqual(hashApplied, hashBefore);
    assert.deepEqual((await readKey(url, 'good-7')).body, { value: { i: 7, tag: 'first' } });
    assert.deepEqual((await readKey(url, 'good-dup')).body, { value: 'newer' });
    assert.equal((await readKey(url, 'good-0')).status, 404);
    assert.equal((await readKey(url, 'good-gone')).status, 404);
    const listed = await keysUnder(url, 'good-');
    assert.equal(listed.length, 200, `live keys: ${listed.length}`);
    const version = (await getJson(`${url}/kv/good-7`)).body as { version: string };
    assert.equal(version.version, versionAt(now, idA, 7));

    for (const order of [entries, [...entries].reverse()]) {
      const replay = await replicate(url, { from: idA, entries: order });
      assert.equal(replay.status, 200, replay.text);
      assert.equal((replay.body as { applied: number }).applied, 0, replay.text);
      assert.equal(await storeHash(url), hashApplied, 'a replay changed /store/hash');
    }
    // An older version of an applied key is stale: nothing changes.
    const stale = await replicate(url, {
      entries: [{ key: 'good-7', value: 'stale', version: versionAt(now - 1, idB) }],
    });
    assert.deepEqual(stale.body, { applied: 0, stale: 1 });
    assert.deepEqual((await readKey(url, 'good-7')).body, { value: { i: 7, tag: 'first' } });
    assert.equal(await storeHash(url), hashApplied);
  });

  test('the resync routes refuse malformed bodies with 4xx and the node stays up', async () => {
    const hashBefore = await storeHash(url);
    const bodies: [string, string | Buffer, number[]][] = [
      ['/sync/rows', '{"buckets":', [400]],
      ['/sync/rows', '', [400]],
      ['/sync/rows', 'null', [400]],
      ['/sync/rows', '[]', [400]],
      ['/sync/rows', '{"buckets":"0"}', [400]],
      ['/sync/rows', '{"buckets":[4096]}', [400]],
      ['/sync/rows', '{"buckets":[-1]}', [400]],
      ['/sync/rows', '{"buckets":[0.5]}', [400]],
      ['/sync/rows', '{"buckets":["0"]}', [400]],
      ['/sync/rows', `{"buckets":[${Array(4097).fill(0).join(',')}]}`, [400]],
      ['/sync/rows', '{"buckets":[0],"after":{"bucket":"x"}}', [400]],
      ['/sync/rows', '{"buckets":[0],"after":{"bucket":0}}', [400]],
      ['/sync/rows', '{"buckets":[0],"after":"k"}', [400]],
      ['/sync/rows', `{"buckets":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, [400]],
      ['/sync/fetch', '{"keys":', [400]],
      ['/sync/fetch', '{"keys":"k"}', [400]],
      ['/sync/fetch', '{"keys":[1,2]}', [400]],
      ['/sync/fetch', '{"keys":[null]}', [400]],
      ['/sync/fetch', `{"keys":[${Array(2001).fill('"k"').join(',')}]}`, [400]],
      ['/sync/fetch', '{}', [400]],
      ['/sync/fetch', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]), [400]],
      ['/sync/buckets', '{"groups":', [400]],
      ['/sync/buckets', '{"groups":[64]}', [400]],
      ['/sync/buckets', '{"groups":[-1]}', [400]],
      ['/sync/buckets', '{"groups":[1.5]}', [400]],
      ['/sync/buckets', '{"groups":["1"]}', [400]],
      ['/sync/buckets', '{"groups":{}}', [400]],
      ['/sync/buckets', `{"groups":[${Array(65).fill(0).join(',')}]}`, [400]],
      ['/sync/buckets', `{"groups":"${'g'.repeat(1024 * 1024)}"}`, [413]],
      ['/sync/digest', '{}', [405]],
    ];
    for (const [target, body, statuses] of bodies) {
      const answer = await httpRequest('POST', `${url}${target}`, {
        rawBody: body,
        headers: JSON_HEADERS,
      });
      const what = `POST ${target} ${String(body).slice(0, 60)}`;
      assert.ok(statuses.includes(answer.status), `${what} -> ${answer.status} ${answer.text}`);
      assertError(answer, answer.status, (answer.body as { code: string }).code, what);
    }
    for (const query of ['from=', 'from=ZZ', 'from=0123456789abcdef&from=x', 'from[]=1']) {
      const digest = await getJson(`${url}/sync/digest?${query}`);
      assert.equal(digest.status, 200, `GET /sync/digest?${query}: ${digest.text}`);
    }
    assert.equal(await storeHash(url), hashBefore);
    assert.equal((await getJson(`${url}/ping`)).status, 200);
    assert.deepEqual(errorLogLines(one.node.logPath), []);
  });
});
