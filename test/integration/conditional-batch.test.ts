// Checks conditional writes (If-Match / If-None-Match on PUT and DELETE /kv/KEY) and atomic batches
// (POST /batch) on a real two-node cluster: 412 VERSION_MISMATCH with the current version, exactly
// one winner among concurrent compare-and-swaps on one node, a batch applied whole on both nodes
// or not at all, and hostile bodies and headers refused with nothing applied and no crash.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { del, getJson, httpRequest, postJson, putJson } from '../helpers/http.ts';
import { type Cluster, useCluster, waitFor } from '../helpers/node-process.ts';
import { assertError, storeHash, VERSION_PATTERN } from './node-support.ts';

const kv = (url: string, key: string): string => `${url}/kv/${encodeURIComponent(key)}`;

function assertMismatch(
  answer: { status: number; body: unknown; text: string },
  current: string | null,
  op?: number,
): void {
  assert.equal(answer.status, 412, answer.text);
  const body = answer.body as Record<string, unknown>;
  assert.equal(body.code, 'VERSION_MISMATCH', answer.text);
  assert.equal(typeof body.error, 'string');
  assert.equal(body.current, current, answer.text);
  if (op !== undefined) assert.equal(body.op, op, answer.text);
}

async function versionOf(url: string, key: string): Promise<string> {
  const answer = await getJson(kv(url, key));
  assert.equal(answer.status, 200, answer.text);
  const version = (answer.body as { version: string }).version;
  assert.equal(answer.headers.etag, `"${version}"`);
  return version;
}

describe('conditional writes and atomic batches', () => {
  let cluster: Cluster;
  let a = '';
  let b = '';
  useCluster({ nodes: 2, pingfreq: 0.25, timeout: 2 }, (started) => {
    cluster = started;
  });
  before(() => {
    a = cluster.node(0).url;
    b = cluster.node(1).url;
  });

  test('If-None-Match: * creates once; If-Match writes over the current version only', async () => {
    const created = await putJson(kv(a, 'cas'), 1, { headers: { 'if-none-match': '*' } });
    assert.equal(created.status, 200, created.text);
    const v1 = (created.body as { version: string }).version;
    assert.match(v1, VERSION_PATTERN);
    assert.equal(created.headers.etag, `"${v1}"`);
    assertMismatch(await putJson(kv(a, 'cas'), 2, { headers: { 'if-none-match': '*' } }), v1);
    const swapped = await putJson(kv(a, 'cas'), 3, { headers: { 'if-match': `"${v1}"` } });
    assert.equal(swapped.status, 200, swapped.text);
    const v2 = await versionOf(a, 'cas');
    assertMismatch(await putJson(kv(a, 'cas'), 4, { headers: { 'if-match': `"${v1}"` } }), v2);
    assertMismatch(await del(kv(a, 'cas'), { headers: { 'if-match': `"${v1}"` } }), v2);
    assert.equal(((await getJson(kv(a, 'cas'))).body as { value: number }).value, 3);
    assertMismatch(
      await putJson(kv(a, 'nothing'), 1, { headers: { 'if-match': `"${v1}"` } }),
      null,
    );
    assertMismatch(await putJson(kv(a, 'nothing'), 1, { headers: { 'if-match': '*' } }), null);
    const deleted = await del(kv(a, 'cas'), { headers: { 'if-match': v2 } });
    assert.equal(deleted.status, 200, deleted.text);
    const again = await putJson(kv(a, 'cas'), 5, { headers: { 'if-none-match': '*' } });
    assert.equal(again.status, 200, 'a deleted key is absent');
  });

  test('of 20 concurrent compare-and-swaps from one version on one node, exactly one wins', async () => {
    const start = await putJson(kv(a, 'counter'), 0);
    const version = (start.body as { version: string }).version;
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        putJson(kv(a, 'counter'), index + 1, { headers: { 'if-match': `"${version}"` } }),
      ),
    );
    const winners = answers.filter((answer) => answer.status === 200);
    assert.equal(winners.length, 1, answers.map((answer) => answer.status).join(','));
    const winner = (winners[0]!.body as { version: string }).version;
    for (const answer of answers) if (answer.status !== 200) assertMismatch(answer, winner);
  });

  test('a batch is applied whole, answers every version, and reaches the peer whole', async () => {
    await putJson(kv(a, 'batch/gone'), 'x');
    const ops = [
      ...Array.from({ length: 300 }, (_, i) => ({ op: 'put', key: `batch/${i}`, value: i })),
      { op: 'delete', key: 'batch/gone' },
      { op: 'put', key: 'batch/new', value: true, ifNoneMatch: '*' },
    ];
    const answer = await postJson(`${a}/batch`, { ops });
    assert.equal(answer.status, 200, answer.text);
    const results = (answer.body as { ops: { op: string; key: string; version: string }[] }).ops;
    assert.equal(results.length, ops.length);
    results.forEach((result, index) => {
      assert.equal(result.key, ops[index]!.key);
      assert.equal(result.op, ops[index]!.op);
      assert.match(result.version, VERSION_PATTERN);
    });
    await waitFor(async () => (await storeHash(a)) === (await storeHash(b)), {
      timeoutMs: 10_000,
      message: 'the batch reaches the peer',
    });
    assert.equal(((await getJson(kv(b, 'batch/299'))).body as { value: number }).value, 299);
    assert.equal((await getJson(kv(b, 'batch/gone'))).status, 404);
  });

  test('one failed condition refuses the whole batch: 412 names the op, nothing is applied', async () => {
    const current = await versionOf(a, 'batch/new');
    const hashBefore = await storeHash(a);
    const answer = await postJson(`${a}/batch`, {
      ops: [
        { op: 'put', key: 'refused/1', value: 1 },
        { op: 'delete', key: 'batch/0' },
        { op: 'put', key: 'batch/new', value: 2, ifNoneMatch: '*' },
      ],
    });
    assertMismatch(answer, current, 2);
    assert.equal((answer.body as { key: string }).key, 'batch/new');
    assert.equal(await storeHash(a), hashBefore);
    assert.equal((await getJson(kv(a, 'refused/1'))).status, 404);
    assert.equal((await getJson(kv(a, 'batch/0'))).status, 200);
    const stale = await postJson(`${a}/batch`, {
      ops: [{ op: 'put', key: 'batch/1', value: 0, ifMatch: current }],
    });
    assertMismatch(stale, await versionOf(a, 'batch/1'), 0);
  });

  test('hostile batch bodies and condition headers are refused and change nothing', async () => {
    const hashBefore = await storeHash(a);
    const version = await versionOf(a, 'batch/1');
    const bigValue = 'x'.repeat(1024 * 1024 + 10);
    const cases: [string, unknown, number, string][] = [
      ['not an object', [1, 2], 400, 'BAD_REQUEST'],
      ['no ops', {}, 400, 'BAD_BATCH'],
      ['ops not an array', { ops: { op: 'put' } }, 400, 'BAD_BATCH'],
      ['empty ops', { ops: [] }, 400, 'BAD_BATCH'],
      [
        'unknown top field',
        { ops: [{ op: 'put', key: 'h', value: 1 }], extra: 1 },
        400,
        'BAD_BATCH',
      ],
      ['unknown op', { ops: [{ op: 'incr', key: 'h' }] }, 400, 'BAD_BATCH'],
      ['op null', { ops: [null] }, 400, 'BAD_REQUEST'],
      ['missing key', { ops: [{ op: 'put', value: 1 }] }, 400, 'BAD_KEY'],
      [
        'key too long',
        { ops: [{ op: 'put', key: 'k'.repeat(1025), value: 1 }] },
        400,
        'KEY_TOO_LARGE',
      ],
      ['missing value', { ops: [{ op: 'put', key: 'h' }] }, 400, 'BAD_VALUE'],
      ['delete with value', { ops: [{ op: 'delete', key: 'h', value: 1 }] }, 400, 'BAD_BATCH'],
      ['unknown op field', { ops: [{ op: 'put', key: 'h', value: 1, iff: 1 }] }, 400, 'BAD_BATCH'],
      [
        'bad ifMatch',
        { ops: [{ op: 'put', key: 'h', value: 1, ifMatch: 'v1' }] },
        400,
        'BAD_CONDITION',
      ],
      [
        'ifMatch number',
        { ops: [{ op: 'put', key: 'h', value: 1, ifMatch: 7 }] },
        400,
        'BAD_CONDITION',
      ],
      [
        'bad ifNoneMatch',
        { ops: [{ op: 'put', key: 'h', value: 1, ifNoneMatch: version }] },
        400,
        'BAD_CONDITION',
      ],
      [
        'both conditions',
        { ops: [{ op: 'put', key: 'h', value: 1, ifMatch: version, ifNoneMatch: '*' }] },
        400,
        'BAD_CONDITION',
      ],
      [
        'ifNoneMatch on delete',
        { ops: [{ op: 'delete', key: 'h', ifNoneMatch: '*' }] },
        400,
        'BAD_CONDITION',
      ],
      [
        'duplicate key',
        {
          ops: [
            { op: 'put', key: 'h', value: 1 },
            { op: 'delete', key: 'h' },
          ],
        },
        400,
        'BAD_BATCH',
      ],
      [
        'value too large',
        { ops: [{ op: 'put', key: 'h', value: bigValue }] },
        413,
        'VALUE_TOO_LARGE',
      ],
      [
        '1001 ops',
        { ops: Array.from({ length: 1001 }, (_, i) => ({ op: 'put', key: `h${i}`, value: i })) },
        413,
        'BATCH_TOO_LARGE',
      ],
    ];
    for (const [what, body, status, code] of cases) {
      const answer = await postJson(`${a}/batch`, body);
      assert.equal(answer.status, status, `${what}: ${answer.text.slice(0, 200)}`);
      assert.equal(
        (answer.body as { code: string }).code,
        code,
        `${what}: ${answer.text.slice(0, 200)}`,
      );
    }
    const late = await postJson(`${a}/batch`, {
      ops: [
        { op: 'put', key: 'ok', value: 1 },
        { op: 'put', key: 'bad', value: 1, ttl: 'soon' },
      ],
    });
    assert.equal(late.status, 400, late.text);
    assert.equal((late.body as { op: number }).op, 1, 'the error names the op');
    const raw = await httpRequest('POST', `${a}/batch`, { rawBody: '{"ops":[' });
    assertError(raw, 400, 'BAD_JSON');
    const headerCases: [Record<string, string>, string][] = [
      [{ 'if-match': 'W/"abc"' }, 'weak etag'],
      [{ 'if-match': `"${version}", "${version}"` }, 'list'],
      [{ 'if-none-match': `"${version}"` }, 'If-None-Match with a version'],
      [{ 'if-match': `"${version}"`, 'if-none-match': '*' }, 'both'],
    ];
    for (const [headers, what] of headerCases) {
      assertError(await putJson(kv(a, 'batch/1'), 9, { headers }), 400, 'BAD_CONDITION', what);
    }
    assertError(
      await del(kv(a, 'batch/1'), { headers: { 'if-none-match': '*' } }),
      400,
      'BAD_CONDITION',
    );
    assert.equal(await storeHash(a), hashBefore, 'nothing was applied');
    assert.equal((await getJson(`${a}/ping`)).status, 200);
  });
});
