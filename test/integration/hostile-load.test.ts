// Goal: greedy clients and peers get a clean 503 with Retry-After instead of a 500, an exhausted
// node or a locked-out peer; method: real nodes flooded with concurrent requests (400 POST
// /sync/rows at once, huge request bodies), the answers classified, the node's log read for
// internal errors, and the node checked for health afterwards.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getJson, postJson } from '../helpers/http.ts';
import { useOneNode } from '../helpers/node-process.ts';
import { MiB, processMemory, RssSampler } from '../helpers/process-memory.ts';
import { buildRequest, errorLogLines, errorShapeProblem, exchange } from './hostile-support.ts';

const JSON_TYPE: [string, string] = ['Content-Type', 'application/json'];
const BUCKETS = 4096;
const SEEDED_ENTRIES = 4_000;
const ROWS_FLOOD = 400;
const LOGICAL_PER_MS = 1024;
/** The figure: 16 concurrent 57 MB /replicate bodies grew a node by 2,166 MiB. */
const HUGE_BODIES = 32;
const HUGE_BODY_BYTES = 60 * 1000 * 1000;
/**
 * The bound: the body budget (64 MiB of bodies in flight) decoded and parsed, plus room for the
 * allocator; 32 bodies of 60 MB read whole would be ~1.9 GB before parsing.
 */
const HUGE_RSS_GROWTH_MAX = 200 * MiB;
const FILLER = Buffer.alloc(MiB, 0x61);
const CHUNKED_FILLER = Buffer.concat([
  Buffer.from(`${MiB.toString(16)}\r\n`),
  FILLER,
  Buffer.from('\r\n'),
]);

/** The chunks of one huge POST /replicate: framed by Content-Length or chunked, the same 1 MiB. */
function hugeReplicate(chunked: boolean): Buffer[] {
  const head = chunked
    ? 'POST /replicate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
      'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n'
    : 'POST /replicate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${HUGE_BODY_BYTES}\r\nConnection: close\r\n\r\n`;
  const count = Math.ceil(HUGE_BODY_BYTES / MiB);
  const body = Array.from({ length: count }, () => (chunked ? CHUNKED_FILLER : FILLER));
  return [Buffer.from(head), ...body, Buffer.from(chunked ? '0\r\n\r\n' : '')];
}

function versionAt(ms: number, nodeId: string): string {
  return `${(ms * LOGICAL_PER_MS).toString(16).padStart(14, '0')}-${nodeId}`;
}

describe('400 concurrent POST /sync/rows', () => {
  const one = useOneNode();

  test('answer 200 or 503 with Retry-After, never a 500, and log no internal error', async () => {
    const version = versionAt(Date.now(), '00000000000000aa');
    const entries = Array.from({ length: SEEDED_ENTRIES }, (_, i) => ({
      key: `k${i}`,
      value: 'v'.repeat(200),
      version,
    }));
    const seeded = await postJson(`${one.url}/replicate`, { from: '00000000000000aa', entries });
    assert.equal(seeded.status, 200, seeded.text);
    const body = JSON.stringify({
      buckets: Array.from({ length: BUCKETS }, (_, b) => b),
      after: null,
      values: true,
    });
    const raw = buildRequest('POST', '/sync/rows', { headers: [JSON_TYPE], body });
    const answers = await Promise.all(
      Array.from({ length: ROWS_FLOOD }, () => exchange(one.port, raw, { timeoutMs: 30_000 })),
    );
    const byStatus = new Map<string, number>();
    for (const answer of answers) {
      const name = String(answer.status ?? answer.outcome);
      byStatus.set(name, (byStatus.get(name) ?? 0) + 1);
    }
    const seen = JSON.stringify(Object.fromEntries(byStatus));
    assert.ok((byStatus.get('200') ?? 0) > 0, `some must be served: ${seen}`);
    for (const answer of answers) {
      assert.ok(answer.status === 200 || answer.status === 503, `statuses ${seen}`);
      if (answer.status === 503) {
        assert.equal(answer.headers['retry-after'], '1');
        assert.equal(errorShapeProblem(answer.json, answer.text), undefined);
        assert.equal((answer.json as { code: string }).code, 'OVERLOADED');
      }
    }
    assert.deepEqual(errorLogLines(one.node.logPath), []);
    const ping = await getJson(`${one.url}/ping`);
    assert.equal(ping.status, 200);
  });
});

describe(`${HUGE_BODIES} concurrent ${HUGE_BODY_BYTES / 1e6} MB POST /replicate bodies`, () => {
  const one = useOneNode();

  test('are refused with 413/503 before or while they are read, and RSS growth stays bounded', async (t) => {
    const hashBefore = (await getJson(`${one.url}/store/hash`)).body;
    const pid = one.node.pid;
    assert.ok(pid !== undefined);
    const baseline = processMemory(pid)?.rssBytes ?? 0;
    const sampler = new RssSampler(pid, 20);
    const answers = await Promise.all(
      Array.from({ length: HUGE_BODIES }, (_, i) =>
        exchange(one.port, hugeReplicate(i % 2 === 1), { timeoutMs: 60_000, earlyAnswerMs: 100 }),
      ),
    ).finally(() => sampler.stop());
    const growth = sampler.maxBytes - baseline;
    t.diagnostic(`RSS growth ${(growth / MiB).toFixed(0)} MiB`);
    const statuses = answers.map((answer) => answer.status ?? answer.outcome);
    for (const answer of answers) {
      assert.ok(answer.status === 413 || answer.status === 503, `statuses ${statuses.join(',')}`);
      assert.equal(errorShapeProblem(answer.json, answer.text), undefined);
      if (answer.status === 503) assert.equal(answer.headers['retry-after'], '1');
    }
    assert.ok(
      growth < HUGE_RSS_GROWTH_MAX,
      `RSS grew by ${(growth / MiB).toFixed(0)} MiB (bound ${HUGE_RSS_GROWTH_MAX / MiB} MiB)`,
    );
    assert.deepEqual((await getJson(`${one.url}/store/hash`)).body, hashBefore);
    const version = versionAt(Date.now(), '00000000000000bb');
    const after = await postJson(`${one.url}/replicate`, {
      from: '00000000000000bb',
      entries: [{ key: 'after-flood', value: 1, version }],
    });
    assert.equal(after.status, 200, after.text);
    assert.deepEqual(errorLogLines(one.node.logPath), []);
  });
});
