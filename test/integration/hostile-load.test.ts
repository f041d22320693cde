// Goal: greedy clients and peers get a clean 503 with Retry-After instead of a 500, an exhausted
// node or a locked-out peer; method: real nodes flooded with concurrent requests (400 POST
// /sync/rows at once, huge request bodies), the answers classified, the node's log read for
// internal errors, and the node checked for health afterwards.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getJson, postJson } from '../helpers/http.ts';
import { useOneNode } from '../helpers/node-process.ts';
import { buildRequest, errorLogLines, errorShapeProblem, exchange } from './hostile-support.ts';
import { mapConcurrent } from './node-support.ts';

const JSON_TYPE: [string, string] = ['Content-Type', 'application/json'];
const BUCKETS = 4096;
const SEEDED_ENTRIES = 4_000;
const ROWS_FLOOD = 400;
const LOGICAL_PER_MS = 1024;

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
